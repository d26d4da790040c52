#pragma once
// Small constructors for backend unit tests.

#include <string>

#include "backend/netlink/types.hpp"
#include "core/lease.hpp"

namespace weft::test {

inline Ipv4Addr ip(const char* text) { return Ipv4Addr::parse(text).value(); }
inline Ipv4Prefix prefix(const char* text) { return Ipv4Prefix::parse(text).value(); }
inline Ipv6Addr ip6(const char* text) { return Ipv6Addr::parse(text).value(); }
inline Ipv6Prefix prefix6(const char* text) { return Ipv6Prefix::parse(text).value(); }
inline Mac mac(const char* text) { return Mac::parse(text).value(); }

inline Peer peer(const std::string& name, const char* subnet, const char* public_ip, const char* vtep_mac) {
  Peer p;
  p.name = name;
  p.subnet = prefix(subnet);
  p.public_ip = ip(public_ip);
  p.vtep_mac = mac(vtep_mac);
  return p;
}

inline Lease lease(const char* subnet, const char* public_ip, const char* vtep_mac) {
  Lease l;
  l.subnet = prefix(subnet);
  l.public_ip = ip(public_ip);
  l.vtep_mac = mac(vtep_mac);
  return l;
}

inline PeerSet peer_set(std::initializer_list<Peer> peers) {
  PeerSet set;
  for (const auto& p : peers) set[p.name] = p;
  return set;
}

// A deleted IPv6 address, neighbour or route (dst6) as the kernel monitor reports it.
inline KernelEvent deleted6(KernelEvent::Kind kind, int ifindex, std::optional<Ipv6Prefix> dst6 = std::nullopt,
                            std::uint8_t protocol = 3) {
  KernelEvent e{kind, true, ifindex, std::nullopt, protocol, false, "x"};
  e.ipv6 = true;
  e.dst6 = dst6;
  return e;
}

}  // namespace weft::test
