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
#include "test/fuzz/peer_invariant.hpp"

namespace {

using weft::AnnotationKeys;
using weft::Annotations;
using weft::fuzz::check_peer;
using weft::fuzz::check_peer_v6only;
using weft::fuzz::cluster_keys;
using weft::fuzz::cluster_rules;
using weft::fuzz::v6_network;

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
  std::vector<weft::Ipv6Prefix> taken6;
  const weft::FamilyConfig<weft::Ipv6Addr> net6 = v6_network();
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
