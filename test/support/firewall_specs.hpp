#pragma once
// The FirewallSpecs the firewall's unit tests (what render_table renders) and kernel tests (what
// nft lists) share, so both check the same tables.

#include "overlay/nftables/firewall.hpp"

namespace weft::test {

// Node 10.244.7.0/24 of 10.244.0.0/16 with masquerade and two IPv4 underlay peers.
inline FirewallSpec v4_spec() {
  FirewallSpec s;
  s.network = Ipv4Prefix::parse("10.244.0.0/16").value();
  s.subnet = Ipv4Prefix::parse("10.244.7.0/24").value();
  s.ip_masq = true;
  s.vxlan_sources = {Ipv4Addr::parse("192.0.2.2").value(), Ipv4Addr::parse("192.0.2.3").value()};
  return s;
}

// v4_spec() made dual stack: an IPv6 network, this node's IPv6 subnet and two IPv6 underlay peers.
inline FirewallSpec dual_spec() {
  auto s = v4_spec();
  s.network_v6 = Ipv6Prefix::parse("fd00:10:244::/56").value();
  s.subnet_v6 = Ipv6Prefix::parse("fd00:10:244:7::/64").value();
  s.vxlan_sources_v6 = {Ipv6Addr::parse("2001:db8::2").value(), Ipv6Addr::parse("2001:db8::3").value()};
  return s;
}

// dual_spec() without its IPv4 half: an IPv6-only cluster, no IPv4 network, subnet or sources.
inline FirewallSpec v6_only_spec() {
  auto s = dual_spec();
  s.network.reset();
  s.subnet.reset();
  s.vxlan_sources.clear();
  return s;
}

}  // namespace weft::test
