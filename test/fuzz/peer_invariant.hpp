#pragma once
// The peer invariant shared by the annotations and node_json targets: whatever parse_peer
// accepts under a fixed cluster can be routed without leaving the cluster network, and covers
// exactly one of its subnets.

#include <string>
#include <string_view>

#include "core/lease.hpp"
#include "subnet/annotations.hpp"
#include "test/fuzz/check.hpp"

namespace weft::fuzz {

// The cluster every peer is checked against: 10.244.0.0/16 in /24s, ours is 10.244.1.0/24, VNI 1;
// fd00:10:244::/56 in /64s, ours is fd00:10:244:1::/64.
inline const PeerRules& cluster_rules() {
  static const PeerRules rules = [] {
    PeerRules r;
    r.network.network = Ipv4Prefix::parse("10.244.0.0/16").value();
    r.network.subnet_len = 24;
    r.network.subnet_min = Ipv4Addr::parse("10.244.1.0").value();
    r.network.subnet_max = Ipv4Addr::parse("10.244.255.0").value();
    r.backend_type = "vxlan";
    r.vni = 1;
    r.own_subnet = Ipv4Prefix::parse("10.244.1.0/24").value();
    FamilyConfig<Ipv6Addr> v6;
    v6.network = Ipv6Prefix::parse("fd00:10:244::/56").value();
    v6.subnet_len = 64;
    v6.subnet_min = Ipv6Addr::parse("fd00:10:244:1::").value();
    v6.subnet_max = Ipv6Addr::parse("fd00:10:244:ff::").value();
    r.network_v6 = v6;
    r.own_subnet_v6 = Ipv6Prefix::parse("fd00:10:244:1::/64").value();
    r.v6_underlay = true;  // the corpus's dual-stack nodes publish public-ipv6
    return r;
  }();
  return rules;
}

inline const AnnotationKeys& cluster_keys() {
  static const AnnotationKeys keys = AnnotationKeys::with_prefix("weft.io/");
  return keys;
}

// parse_peer under the fixed cluster; when it accepts, the peer must be routable without
// putting a route outside the cluster network or over our own subnet.
inline void check_peer_v6(const Annotations& a, const AnnotationKeys& keys) {
  const PeerRules& rules = cluster_rules();
  auto half = parse_peer_v6(a, keys, rules);
  if (!half) {
    FUZZ_CHECK(!half.error().empty(), "a refused v6 half must say why");
    return;
  }
  if (!half->has_value()) return;
  const PeerV6& p = **half;
  const std::string shown = p.subnet.str() + " " + p.vtep_mac.str();
  FUZZ_CHECK(fits_network(p.subnet, *rules.network_v6), "v6 subnet not one of the network's: " + shown);
  FUZZ_CHECK(!rules.own_subnet_v6->overlaps(p.subnet), "v6 subnet overlaps our own: " + shown);
  FUZZ_CHECK(p.vtep_mac.is_unicast() && !p.vtep_mac.is_zero(), "v6 VTEP MAC not unicast: " + shown);
  if (p.public_ip) {
    const auto top = static_cast<unsigned>(p.public_ip->to_uint() >> 112U);
    FUZZ_CHECK((top & 0xffc0U) != 0xfe80U && (top >> 8U) != 0xffU && p.public_ip->to_uint() > 1,
               "v6 public IP not a routable unicast address: " + p.public_ip->str());
    FUZZ_CHECK(!rules.network_v6->network.contains(*p.public_ip), "v6 public IP inside the network");
  }
}

// keys: weft's (the default) or flannel's (FlannelCompat, `a` then as flannel_view makes it).
inline void check_peer(std::string_view name, const Annotations& a, const AnnotationKeys& keys = cluster_keys()) {
  check_peer_v6(a, keys);
  const PeerRules& rules = cluster_rules();
  auto peer = parse_peer(name, a, keys, rules);
  if (!peer) {
    FUZZ_CHECK(!peer.error().empty(), "a refused peer must say why");
    return;
  }
  const std::string shown =
      std::string(name) + " " + peer->subnet.str() + " via " + peer->public_ip.str() + " " + peer->vtep_mac.str();
  FUZZ_CHECK(peer->name == name, shown);
  FUZZ_CHECK(rules.network.network.contains(peer->subnet), "peer subnet outside the network: " + shown);
  FUZZ_CHECK(!rules.own_subnet->overlaps(peer->subnet), "peer subnet overlaps our own: " + shown);
  // One subnet of the cluster's length in the leasable range: never a /16 or /17 that would
  // black-hole the nodes inside it.
  FUZZ_CHECK(peer->subnet.length() == rules.network.subnet_len, "peer subnet not a /SubnetLen: " + shown);
  FUZZ_CHECK(fits_network(peer->subnet, rules.network), "peer subnet outside SubnetMin..SubnetMax: " + shown);
  FUZZ_CHECK(peer->vtep_mac.is_unicast() && !peer->vtep_mac.is_zero(), "peer VTEP MAC not unicast: " + shown);
  FUZZ_CHECK(!peer->public_ip.is_unspecified(), "peer public IP unspecified: " + shown);
  FUZZ_CHECK(!rules.network.network.contains(peer->public_ip), "peer public IP inside the network: " + shown);
}

}  // namespace weft::fuzz
