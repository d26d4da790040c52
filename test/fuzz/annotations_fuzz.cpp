// Peer annotations: parse_peer on a Node's annotations built from arbitrary bytes, against a
// fixed cluster (10.244.0.0/16 in /24s, ours 10.244.1.0/24). An accepted peer never routes
// outside the network or over our subnet, and has a unicast VTEP MAC and a usable public IP.
//
// Input: lines of key=value; a key without '/' is put under "weft.io/" (so "subnet=10.244.2.0/24"
// is the weft.io/subnet annotation). Values are raw bytes up to the newline, NULs included. Each
// input is also tried as the raw value of every lease annotation in an otherwise valid set.
//
// IPv6-only mode (PeerRules without an IPv4 network, fd00:10:244::/56 in /64s, ours
// fd00:10:244:1::/64): an accepted peer is its IPv6 half alone, one /IPv6SubnetLen of the v6
// network clear of ours, with a routable public-ipv6 (there is no IPv4 underlay), whatever the
// rules' v6_underlay says.
//
// The checks are local: test/fuzz/peer_invariant.hpp (shared with node_json) still reads the
// IPv4 half as always set.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "subnet/annotations.hpp"
#include "test/fuzz/check.hpp"

namespace {

using weft::AnnotationKeys;
using weft::Annotations;
using weft::FamilyConfig;
using weft::Ipv4Addr;
using weft::Ipv4Prefix;
using weft::Ipv6Addr;
using weft::Ipv6Prefix;
using weft::PeerRules;

const AnnotationKeys& cluster_keys() {
  static const AnnotationKeys keys = AnnotationKeys::with_prefix("weft.io/");
  return keys;
}

FamilyConfig<Ipv6Addr> v6_network() {
  FamilyConfig<Ipv6Addr> v6;
  v6.network = Ipv6Prefix::parse("fd00:10:244::/56").value();
  v6.subnet_len = 64;
  v6.subnet_min = Ipv6Addr::parse("fd00:10:244:1::").value();
  v6.subnet_max = Ipv6Addr::parse("fd00:10:244:ff::").value();
  return v6;
}

// Dual stack: 10.244.0.0/16 in /24s, ours 10.244.1.0/24, VNI 1; the v6 network as below.
const PeerRules& cluster_rules() {
  static const PeerRules rules = [] {
    PeerRules r;
    FamilyConfig<Ipv4Addr> v4;
    v4.network = Ipv4Prefix::parse("10.244.0.0/16").value();
    v4.subnet_len = 24;
    v4.subnet_min = Ipv4Addr::parse("10.244.1.0").value();
    v4.subnet_max = Ipv4Addr::parse("10.244.255.0").value();
    r.network = v4;
    r.own_subnet = Ipv4Prefix::parse("10.244.1.0/24").value();
    r.network_v6 = v6_network();
    r.own_subnet_v6 = Ipv6Prefix::parse("fd00:10:244:1::/64").value();
    r.v6_underlay = true;  // the corpus's dual-stack nodes publish public-ipv6
    return r;
  }();
  return rules;
}

// IPv6-only: no IPv4 network. `underlay`: the rules' v6_underlay, which must not matter.
const PeerRules& v6only_rules(bool underlay) {
  static const auto make = [](bool u) {
    PeerRules r;
    r.network_v6 = v6_network();
    r.own_subnet_v6 = Ipv6Prefix::parse("fd00:10:244:1::/64").value();
    r.v6_underlay = u;
    return r;
  };
  static const PeerRules with = make(true), without = make(false);
  return underlay ? with : without;
}

bool routable_v6(const Ipv6Addr& ip) {
  const auto top = static_cast<unsigned>(ip.to_uint() >> 112U);
  const bool mapped = (ip.to_uint() >> 32U) == 0xffffU;
  return (top & 0xffc0U) != 0xfe80U && (top >> 8U) != 0xffU && ip.to_uint() > 1 && !mapped;
}

void check_v6_half(const std::string& shown, const Ipv6Prefix& subnet, const weft::Mac& mac,
                   const std::optional<Ipv6Addr>& ip, const PeerRules& rules) {
  FUZZ_CHECK(weft::fits_network(subnet, *rules.network_v6), "v6 subnet not one of the network's: " + shown);
  FUZZ_CHECK(subnet.length() == rules.network_v6->subnet_len, "v6 subnet not a /IPv6SubnetLen: " + shown);
  FUZZ_CHECK(!rules.own_subnet_v6->overlaps(subnet), "v6 subnet overlaps our own: " + shown);
  FUZZ_CHECK(mac.is_unicast() && !mac.is_zero(), "v6 VTEP MAC not unicast: " + shown);
  if (ip) {
    FUZZ_CHECK(routable_v6(*ip), "v6 public IP not a routable unicast address: " + shown);
    FUZZ_CHECK(!rules.network_v6->network.contains(*ip), "v6 public IP inside the network: " + shown);
  }
}

// parse_peer under the dual-stack cluster: an accepted peer routes inside the network only,
// never over our subnet, with a unicast MAC and a usable public IP; its v6 half likewise.
void check_peer(std::string_view name, const Annotations& a, const AnnotationKeys& keys = cluster_keys()) {
  const PeerRules& rules = cluster_rules();
  auto half = weft::parse_peer_v6(a, keys, rules);
  if (!half) {
    FUZZ_CHECK(!half.error().empty(), "a refused v6 half must say why");
  } else if (half->has_value()) {
    const auto& h = **half;
    check_v6_half(h.subnet.str(), h.subnet, h.vtep_mac, h.public_ip, rules);
  }
  auto peer = weft::parse_peer(name, a, keys, rules);
  if (!peer) {
    FUZZ_CHECK(!peer.error().empty(), "a refused peer must say why");
    return;
  }
  FUZZ_CHECK(peer->subnet && peer->public_ip && peer->vtep_mac, "a dual-stack peer without its IPv4 half");
  const std::string shown =
      std::string(name) + " " + peer->subnet->str() + " via " + peer->public_ip->str() + " " + peer->vtep_mac->str();
  FUZZ_CHECK(peer->name == name, shown);
  FUZZ_CHECK(rules.network->network.contains(*peer->subnet), "peer subnet outside the network: " + shown);
  FUZZ_CHECK(!rules.own_subnet->overlaps(*peer->subnet), "peer subnet overlaps our own: " + shown);
  FUZZ_CHECK(peer->subnet->length() == rules.network->subnet_len, "peer subnet not a /SubnetLen: " + shown);
  FUZZ_CHECK(weft::fits_network(*peer->subnet, *rules.network), "peer subnet outside SubnetMin..SubnetMax: " + shown);
  FUZZ_CHECK(peer->vtep_mac->is_unicast() && !peer->vtep_mac->is_zero(), "peer VTEP MAC not unicast: " + shown);
  FUZZ_CHECK(!peer->public_ip->is_unspecified(), "peer public IP unspecified: " + shown);
  FUZZ_CHECK(!rules.network->network.contains(*peer->public_ip), "peer public IP inside the network: " + shown);
}

// parse_peer under the IPv6-only cluster, with either v6_underlay.
void check_peer_v6only(std::string_view name, const Annotations& a, const AnnotationKeys& keys = cluster_keys()) {
  for (bool underlay : {true, false}) {
    const PeerRules& rules = v6only_rules(underlay);
    auto peer = weft::parse_peer(name, a, keys, rules);
    if (!peer) {
      FUZZ_CHECK(!peer.error().empty(), "a refused IPv6-only peer must say why");
      continue;
    }
    FUZZ_CHECK(peer->name == name, "IPv6-only peer renamed");
    FUZZ_CHECK(!peer->subnet && !peer->public_ip && !peer->vtep_mac, "an IPv6-only peer with IPv4 values");
    FUZZ_CHECK(peer->subnet_v6 && peer->vtep_mac_v6, "an IPv6-only peer without its IPv6 subnet or MAC");
    const std::string shown = std::string(name) + " " + peer->subnet_v6->str() + " " + peer->vtep_mac_v6->str();
    FUZZ_CHECK(peer->public_ip_v6.has_value(), "an IPv6-only peer without public-ipv6: " + shown);
    check_v6_half(shown, *peer->subnet_v6, *peer->vtep_mac_v6, peer->public_ip_v6, rules);
  }
}

Annotations from_lines(std::string_view text, const std::string& prefix = "weft.io/") {
  Annotations a;
  while (!text.empty()) {
    auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    auto eq = line.find('=');
    std::string key(line.substr(0, eq));
    std::string value(eq == std::string_view::npos ? std::string_view() : line.substr(eq + 1));
    if (key.find('/') == std::string::npos) key = prefix + key;
    a[key] = value;  // the last of repeated keys wins, as in a JSON object
  }
  return a;
}

const Annotations& valid_peer() {
  static const Annotations a = {
      {"weft.io/subnet", "10.244.2.0/24"},
      {"weft.io/public-ip", "192.168.50.12"},
      {"weft.io/backend-type", "vxlan"},
      {"weft.io/backend-data", R"({"VNI":1,"VtepMAC":"0e:5a:10:00:00:02"})"},
  };
  return a;
}

const Annotations& valid_v6only_peer() {
  static const Annotations a = {
      {"weft.io/subnet-v6", "fd00:10:244:2::/64"},
      {"weft.io/public-ipv6", "2001:db8::12"},
      {"weft.io/backend-type", "vxlan"},
      {"weft.io/backend-v6-data", R"({"VNI":1,"VtepMAC":"0e:5a:10:00:00:12"})"},
  };
  return a;
}

std::vector<std::string> lines(std::string_view text) {
  std::vector<std::string> out;
  while (!text.empty()) {
    auto nl = text.find('\n');
    out.emplace_back(text.substr(0, nl));
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
  }
  return out;
}

// FlannelCompat: a peer's subnets are its podCIDRs, as untrusted as its annotations. The input
// is flannel's annotations and, line by line, the podCIDRs; and the raw podCIDR of a valid node.
void check_flannel(std::string_view text) {
  static const weft::AnnotationKeys keys = weft::AnnotationKeys::flannel_compat();
  Annotations a = from_lines(text, keys.prefix);
  check_peer("node-fuzz", weft::flannel_view(a, lines(text), keys), keys);
  a[keys.kube_subnet_manager] = "true";
  check_peer("node-fuzz", weft::flannel_view(a, lines(text), keys), keys);
  Annotations valid = {{keys.kube_subnet_manager, "true"},
                       {keys.public_ip, "192.168.50.12"},
                       {keys.backend_type, "vxlan"},
                       {keys.backend_data, R"({"VNI":1,"VtepMAC":"0e:5a:10:00:00:02"})"}};
  check_peer("node-fuzz", weft::flannel_view(valid, {std::string(text)}, keys), keys);
  valid[keys.public_ip_overwrite] = std::string(text);
  check_peer("node-fuzz", weft::flannel_view(valid, {"10.244.2.0/24"}, keys), keys);

  // IPv6-only: the v6 podCIDR is the subnet.
  a = from_lines(text, keys.prefix);
  a[keys.kube_subnet_manager] = "true";
  check_peer_v6only("node-fuzz", weft::flannel_view(a, lines(text), keys), keys);
  Annotations valid6 = {{keys.kube_subnet_manager, "true"},
                        {keys.public_ip_v6, "2001:db8::12"},
                        {keys.backend_type, "vxlan"},
                        {keys.backend_v6_data, R"({"VNI":1,"VtepMAC":"0e:5a:10:00:00:12"})"}};
  check_peer_v6only("node-fuzz", weft::flannel_view(valid6, {std::string(text)}, keys), keys);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto& keys = cluster_keys();

  Annotations a = from_lines(text);
  check_peer("node-fuzz", a);
  (void)weft::has_lease_annotations(a, keys);
  (void)weft::parse_own(a, keys);
  (void)weft::parse_rfc3339_ms(text);
  std::vector<weft::Ipv4Prefix> taken;
  weft::add_taken_subnets(a, keys, *cluster_rules().network, taken);

  for (const auto& p : taken) FUZZ_CHECK(weft::fits_network(p, *cluster_rules().network), "taken: " + p.str());
  for (const std::string* key :
       {&keys.subnet, &keys.subnet_claim, &keys.public_ip, &keys.backend_type, &keys.backend_data, &keys.claimed_at}) {
    Annotations one = valid_peer();
    one[*key] = std::string(text);
    check_peer("node-fuzz", one);
    (void)weft::parse_own(one, keys);
    (void)weft::claim_rank(std::string(text), one, keys);
    weft::add_taken_subnets(one, keys, *cluster_rules().network, taken);
  }
  check_flannel(text);

  // IPv6-only mode.
  check_peer_v6only("node-fuzz", a);
  std::vector<Ipv6Prefix> taken6;
  const FamilyConfig<Ipv6Addr> net6 = v6_network();
  weft::add_taken_subnets(a, keys, net6, taken6);
  for (const std::string* key : {&keys.subnet_v6, &keys.subnet_v6_claim, &keys.public_ip_v6, &keys.backend_type,
                                 &keys.backend_v6_data, &keys.subnet, &keys.public_ip, &keys.claimed_at}) {
    Annotations one = valid_v6only_peer();
    one[*key] = std::string(text);
    check_peer_v6only("node-fuzz", one);
    (void)weft::parse_own(one, keys);
    weft::add_taken_subnets(one, keys, net6, taken6);
  }
  for (const auto& p : taken6) FUZZ_CHECK(weft::fits_network(p, net6), "taken v6: " + p.str());
  return 0;
}
