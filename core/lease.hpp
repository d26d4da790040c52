#pragma once
// Lease: this node's share of the cluster network; Peer: another node as the backend needs it.

#include <map>
#include <optional>
#include <string>

#include "core/ip.hpp"
#include "core/mac.hpp"

namespace weft {

// This node's subnet(s), the underlay address(es) peers send VXLAN to, and its VTEP MAC(s).
// The IPv4 half (subnet, vtep_mac) is unset in an IPv6-only cluster, the IPv6 half in an
// IPv4-only one; public_ip is the IPv4 underlay address, unset when VXLAN rides IPv6 only.
struct Lease {
  std::optional<Ipv4Prefix> subnet;
  std::optional<Ipv4Addr> public_ip;
  std::optional<Mac> vtep_mac;
  std::optional<Ipv6Prefix> subnet_v6;
  std::optional<Ipv6Addr> public_ip_v6;
  std::optional<Mac> vtep_mac_v6;
  bool operator==(const Lease&) const = default;
};

// The IPv6 half acquire publishes beside the IPv4 one in a dual-stack cluster.
struct LeaseV6Request {
  Mac vtep_mac;                       // weft-v6.<VNI>'s MAC
  std::optional<Ipv6Addr> public_ip;  // set: IPv6 VXLAN over an IPv6 underlay (public-ipv6)
};

// A peer node, parsed from its annotations. Values here are well-formed but not yet
// checked against the cluster network: the backend validates before programming.
// Halves as in Lease: a peer in an IPv6-only cluster has no IPv4 half.
struct Peer {
  std::string name;
  std::optional<Ipv4Prefix> subnet;
  std::optional<Ipv4Addr> public_ip;
  std::optional<Mac> vtep_mac;
  std::optional<Ipv6Prefix> subnet_v6;
  std::optional<Ipv6Addr> public_ip_v6;
  std::optional<Mac> vtep_mac_v6;
  bool operator==(const Peer&) const = default;
};

// The desired peers, keyed by node name (ordered, so logs and diffs are stable).
using PeerSet = std::map<std::string, Peer>;

}  // namespace weft
