#pragma once
// Lease: this node's share of the cluster network; Peer: another node as the backend needs it.

#include <map>
#include <optional>
#include <string>

#include "core/ip.hpp"
#include "core/mac.hpp"

namespace weft {

// This node's subnet(s), the underlay address peers send VXLAN to, and its VTEP MAC(s).
struct Lease {
  Ipv4Prefix subnet;
  Ipv4Addr public_ip;
  Mac vtep_mac;
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
struct Peer {
  std::string name;
  Ipv4Prefix subnet;
  Ipv4Addr public_ip;
  Mac vtep_mac;
  std::optional<Ipv6Prefix> subnet_v6;
  std::optional<Ipv6Addr> public_ip_v6;
  std::optional<Mac> vtep_mac_v6;
  bool operator==(const Peer&) const = default;
};

// The desired peers, keyed by node name (ordered, so logs and diffs are stable).
using PeerSet = std::map<std::string, Peer>;

}  // namespace weft
