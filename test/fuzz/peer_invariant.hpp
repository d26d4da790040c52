#pragma once
// The peer invariant shared by the annotations and node_json targets: whatever parse_peer
// accepts under a fixed cluster can be routed without leaving the cluster network, and covers
// exactly one of its subnets; in an IPv6-only cluster, a peer is its IPv6 half alone and has a
// routable public-ipv6.

#include <optional>
#include <string>
#include <string_view>

#include "core/lease.hpp"
#include "subnet/annotations.hpp"
#include "test/fuzz/check.hpp"

namespace weft::fuzz {

inline const AnnotationKeys& cluster_keys() {
  static const AnnotationKeys keys = AnnotationKeys::with_prefix("weft.io/");
  return keys;
}

inline FamilyConfig<Ipv6Addr> v6_network() {
  FamilyConfig<Ipv6Addr> v6;
  v6.network = Ipv6Prefix::parse("fd00:10:244::/56").value();
  v6.subnet_len = 64;
  v6.subnet_min = Ipv6Addr::parse("fd00:10:244:1::").value();
  v6.subnet_max = Ipv6Addr::parse("fd00:10:244:ff::").value();
  return v6;
}

// Dual stack: 10.244.0.0/16 in /24s, ours 10.244.1.0/24, VNI 1; the v6 network as below.
inline const PeerRules& cluster_rules() {
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
inline const PeerRules& v6only_rules(bool underlay) {
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

inline bool routable_v6(const Ipv6Addr& ip) {
  const auto top = static_cast<unsigned>(ip.to_uint() >> 112U);
  const bool mapped = (ip.to_uint() >> 32U) == 0xffffU;
  return (top & 0xffc0U) != 0xfe80U && (top >> 8U) != 0xffU && ip.to_uint() > 1 && !mapped;
}

inline void check_v6_half(const std::string& shown, const Ipv6Prefix& subnet, const Mac& mac,
                          const std::optional<Ipv6Addr>& ip, const PeerRules& rules) {
  FUZZ_CHECK(fits_network(subnet, *rules.network_v6), "v6 subnet not one of the network's: " + shown);
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
inline void check_peer(std::string_view name, const Annotations& a, const AnnotationKeys& keys = cluster_keys()) {
  const PeerRules& rules = cluster_rules();
  auto half = parse_peer_v6(a, keys, rules);
  if (!half) {
    FUZZ_CHECK(!half.error().empty(), "a refused v6 half must say why");
  } else if (half->has_value()) {
    const auto& h = **half;
    check_v6_half(h.subnet.str(), h.subnet, h.vtep_mac, h.public_ip, rules);
  }
  auto peer = parse_peer(name, a, keys, rules);
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
  FUZZ_CHECK(fits_network(*peer->subnet, *rules.network), "peer subnet outside SubnetMin..SubnetMax: " + shown);
  FUZZ_CHECK(peer->vtep_mac->is_unicast() && !peer->vtep_mac->is_zero(), "peer VTEP MAC not unicast: " + shown);
  FUZZ_CHECK(!peer->public_ip->is_unspecified(), "peer public IP unspecified: " + shown);
  FUZZ_CHECK(!rules.network->network.contains(*peer->public_ip), "peer public IP inside the network: " + shown);
}

// parse_peer under the IPv6-only cluster, with either v6_underlay.
inline void check_peer_v6only(std::string_view name, const Annotations& a,
                              const AnnotationKeys& keys = cluster_keys()) {
  for (bool underlay : {true, false}) {
    const PeerRules& rules = v6only_rules(underlay);
    auto peer = parse_peer(name, a, keys, rules);
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

}  // namespace weft::fuzz
