#pragma once
// Peers are untrusted input: check_peers decides which ones may be programmed.

#include <optional>
#include <string>
#include <vector>

#include "core/ip.hpp"
#include "core/lease.hpp"

namespace weft {

// A peer left out, and why (one line for the operator's log).
struct SkippedPeer {
  std::string name;
  std::string reason;
  bool ipv6_half = false;  // only its IPv6 half was refused: its IPv4 half is still programmed
  bool operator==(const SkippedPeer&) const = default;
};

// The outcome: peers to program (pointing into the PeerSet) and the ones skipped.
struct PeerCheck {
  std::vector<const Peer*> accepted;
  std::vector<SkippedPeer> skipped;
};

// Rules, each independent of the order peers arrive in:
//  - the subnet must lie inside the cluster network and not overlap this node's subnet;
//  - the VTEP MAC must be unicast, not zero, and not this node's;
//  - the public IP must be a unicast address outside the cluster network, and not this
//    node's (unspecified, loopback, multicast, class E and broadcast are refused);
//  - among peers that pass those: peers claiming the same subnet are all skipped, a peer
//    whose subnet contains another peer's is skipped (the larger claim is the odd one:
//    leases all have one length), and peers sharing a VTEP MAC are all skipped. A node that
//    claims others' space thus cannot take their traffic, only lose its own.
PeerCheck check_peers(const PeerSet& peers, const Lease& own, const Ipv4Prefix& network);
// `accepted` points into the PeerSet, so a temporary one is refused.
PeerCheck check_peers(PeerSet&& peers, const Lease& own, const Ipv4Prefix& network) = delete;

// The IPv6 overlay's check, over peers check_peers accepted: those with subnet_v6 need it
// inside the IPv6 network and clear of this node's, a unicast vtep_mac_v6 not this node's,
// and, if they have one, a usable public_ip_v6 (else their IPv4 public IP carries VXLAN);
// clashing IPv6 subnets or VTEP MACs skip all involved, as for IPv4. Peers without
// subnet_v6 are neither accepted nor skipped.
PeerCheck check_peers_v6(const std::vector<const Peer*>& peers, const Lease& own, const Ipv6Prefix& network);

// An IPv6-only cluster's check: every peer by its IPv6 half, which must carry public_ip_v6
// (there is no IPv4 underlay); a peer without subnet_v6 is skipped.
PeerCheck check_peers_v6_only(const PeerSet& peers, const Lease& own, const Ipv6Prefix& network);
PeerCheck check_peers_v6_only(PeerSet&& peers, const Lease& own, const Ipv6Prefix& network) = delete;

// Why a public IP cannot be a VXLAN destination (nullopt: it can).
std::optional<std::string> public_ip_problem(Ipv4Addr ip, const Ipv4Prefix& network);

}  // namespace weft
