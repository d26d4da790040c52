#include "backend/vxlan/peer_check.hpp"

#include <algorithm>
#include <map>

namespace weft {
namespace {

const Ipv4Prefix kLoopback = Ipv4Prefix::containing(Ipv4Addr(0x7f000000U), 8);
const Ipv4Prefix kMulticast = Ipv4Prefix::containing(Ipv4Addr(0xe0000000U), 4);
const Ipv4Prefix kClassE = Ipv4Prefix::containing(Ipv4Addr(0xf0000000U), 4);  // includes broadcast

std::optional<std::string> individual_problem(const Peer& p, const Lease& own, const Ipv4Prefix& network) {
  if (!p.subnet || !p.vtep_mac || !p.public_ip) return std::string("no IPv4 subnet, VTEP MAC or public IP");
  const Ipv4Prefix& subnet = *p.subnet;
  const Mac& mac = *p.vtep_mac;
  if (!network.contains(subnet)) return "subnet " + subnet.str() + " outside network " + network.str();
  if (own.subnet && subnet.overlaps(*own.subnet))
    return "subnet " + subnet.str() + " overlaps this node's subnet " + own.subnet->str();
  if (mac.is_zero()) return std::string("VTEP MAC is zero");
  if (!mac.is_unicast()) return "VTEP MAC " + mac.str() + " is multicast";
  if (mac == own.vtep_mac) return "VTEP MAC " + mac.str() + " is this node's";
  if (auto problem = public_ip_problem(*p.public_ip, network)) return problem;
  if (p.public_ip == own.public_ip) return "public IP " + p.public_ip->str() + " is this node's";
  return std::nullopt;
}

// Marks peers whose subnets collide, by a sweep over subnets sorted by (address, length):
// the open stack holds the subnets that contain the current one. subnet_of picks the
// family's subnet, label names it in the reason ("subnet", "IPv6 subnet").
template <class SubnetOf>
void mark_subnet_conflicts(std::vector<const Peer*> peers, std::map<const Peer*, std::string>& why, SubnetOf subnet_of,
                           const std::string& label) {
  std::sort(peers.begin(), peers.end(), [&](const Peer* a, const Peer* b) {
    const auto& sa = subnet_of(*a);
    const auto& sb = subnet_of(*b);
    return std::pair(sa.address(), sa.length()) < std::pair(sb.address(), sb.length());
  });
  std::vector<const Peer*> open;
  for (const Peer* p : peers) {
    const auto& subnet = subnet_of(*p);
    while (!open.empty() && !subnet_of(*open.back()).contains(subnet)) open.pop_back();
    for (const Peer* outer : open) {
      const auto& outer_subnet = subnet_of(*outer);
      if (outer_subnet == subnet) {
        why.try_emplace(outer, label + " " + outer_subnet.str() + " also claimed by node " + p->name);
        why.try_emplace(p, label + " " + subnet.str() + " also claimed by node " + outer->name);
      } else {
        why.try_emplace(
            outer, label + " " + outer_subnet.str() + " contains node " + p->name + "'s " + label + " " + subnet.str());
      }
    }
    open.push_back(p);
  }
}

template <class MacOf>
void mark_shared_macs(const std::vector<const Peer*>& peers, std::map<const Peer*, std::string>& why, MacOf mac_of,
                      const std::string& label) {
  std::map<Mac, std::vector<const Peer*>> by_mac;
  for (const Peer* p : peers) by_mac[mac_of(*p)].push_back(p);
  for (const auto& [mac, holders] : by_mac) {
    if (holders.size() < 2) continue;
    for (const Peer* p : holders) {
      const Peer* other = holders[0] == p ? holders[1] : holders[0];
      why.try_emplace(p, label + " " + mac.str() + " also used by node " + other->name);
    }
  }
}

// The second pass of both families' checks: candidates that passed alone are accepted unless
// they collide with another one (subnet or VTEP MAC); skipped peers end up sorted by name.
// family is "" or "IPv6 ", the start of the reasons' labels.
template <class SubnetOf, class MacOf>
void accept_unless_shared(PeerCheck& out, const std::vector<const Peer*>& candidates, SubnetOf subnet_of, MacOf mac_of,
                          const std::string& family) {
  std::map<const Peer*, std::string> why;
  mark_subnet_conflicts(candidates, why, subnet_of, family + "subnet");
  mark_shared_macs(candidates, why, mac_of, family + "VTEP MAC");
  for (const Peer* p : candidates) {
    if (auto it = why.find(p); it != why.end()) {
      out.skipped.push_back({p->name, it->second});
    } else {
      out.accepted.push_back(p);
    }
  }
  std::sort(out.skipped.begin(), out.skipped.end(),
            [](const SkippedPeer& a, const SkippedPeer& b) { return a.name < b.name; });
}

const Ipv6Prefix kLoopback6 = Ipv6Prefix::containing(Ipv6Addr(1), 128);
const Ipv6Prefix kMulticast6 = Ipv6Prefix::containing(Ipv6Addr(uint128{0xff} << 120U), 8);

// ipv4_underlay: IPv6 VXLAN may ride the IPv4 underlay (dual stack); never in an IPv6-only cluster.
std::optional<std::string> individual_problem_v6(const Peer& p, const Lease& own, const Ipv6Prefix& network,
                                                 bool ipv4_underlay) {
  const Ipv6Prefix& subnet = *p.subnet_v6;
  if (!network.contains(subnet)) return "IPv6 subnet " + subnet.str() + " outside IPv6 network " + network.str();
  if (own.subnet_v6 && subnet.overlaps(*own.subnet_v6))
    return "IPv6 subnet " + subnet.str() + " overlaps this node's IPv6 subnet " + own.subnet_v6->str();
  if (!p.vtep_mac_v6) return "IPv6 subnet " + subnet.str() + " but no IPv6 VTEP MAC";
  const Mac& mac = *p.vtep_mac_v6;
  if (mac.is_zero()) return std::string("IPv6 VTEP MAC is zero");
  if (!mac.is_unicast()) return "IPv6 VTEP MAC " + mac.str() + " is multicast";
  if (mac == own.vtep_mac_v6 || mac == own.vtep_mac) return "IPv6 VTEP MAC " + mac.str() + " is this node's";
  if (!p.public_ip_v6 && !ipv4_underlay) {
    return std::string("no public IPv6 address (public-ipv6), and an IPv6-only cluster has no IPv4 underlay");
  }
  if (!p.public_ip_v6 && (!own.public_ip || !p.public_ip)) {
    return "no public IPv6 address (public-ipv6), and IPv6 VXLAN has no IPv4 underlay to ride here";
  }
  if (p.public_ip_v6) {
    const Ipv6Addr ip = *p.public_ip_v6;
    const std::string shown = "public IPv6 " + ip.str();
    if (ip.is_unspecified()) return shown + " is unspecified";
    if (kLoopback6.contains(ip)) return shown + " is the loopback address";
    if (kMulticast6.contains(ip)) return shown + " is multicast";
    if (network.contains(ip)) return shown + " is inside IPv6 network " + network.str() + " (VXLAN would loop)";
    if (ip == own.public_ip_v6) return shown + " is this node's";
  }
  return std::nullopt;
}

}  // namespace

namespace {

PeerCheck check_v6(const std::vector<const Peer*>& peers, const Lease& own, const Ipv6Prefix& network,
                   bool ipv4_underlay) {
  PeerCheck out;
  std::vector<const Peer*> candidates;
  for (const Peer* p : peers) {
    if (auto problem = individual_problem_v6(*p, own, network, ipv4_underlay)) {
      out.skipped.push_back({p->name, *problem});
    } else {
      candidates.push_back(p);
    }
  }
  accept_unless_shared(
      out, candidates, [](const Peer& p) -> const Ipv6Prefix& { return *p.subnet_v6; },
      [](const Peer& p) { return *p.vtep_mac_v6; }, "IPv6 ");
  return out;
}

}  // namespace

PeerCheck check_peers_v6(const std::vector<const Peer*>& peers, const Lease& own, const Ipv6Prefix& network) {
  std::vector<const Peer*> with_v6;
  for (const Peer* p : peers) {
    if (p->subnet_v6) with_v6.push_back(p);  // an IPv4-only peer: nothing to check
  }
  PeerCheck out = check_v6(with_v6, own, network, true);
  for (auto& s : out.skipped) {
    s.ipv6_half = true;
    s.reason = "IPv6 half refused, IPv4 routed: " + s.reason;
  }
  return out;
}

PeerCheck check_peers_v6_only(const PeerSet& peers, const Lease& own, const Ipv6Prefix& network) {
  std::vector<const Peer*> with_v6;
  std::vector<SkippedPeer> without;
  for (const auto& [name, peer] : peers) {
    if (peer.subnet_v6) {
      with_v6.push_back(&peer);
    } else {
      without.push_back({name, "no IPv6 subnet, and this cluster is IPv6-only"});
    }
  }
  PeerCheck out = check_v6(with_v6, own, network, false);  // a lease's stray IPv4 public IP carries nothing
  out.skipped.insert(out.skipped.end(), without.begin(), without.end());
  std::stable_sort(out.skipped.begin(), out.skipped.end(),
                   [](const SkippedPeer& a, const SkippedPeer& b) { return a.name < b.name; });
  return out;
}

std::optional<std::string> public_ip_problem(Ipv4Addr ip, const Ipv4Prefix& network) {
  const std::string shown = "public IP " + ip.str();
  if (ip.is_unspecified()) return shown + " is unspecified";
  if (kLoopback.contains(ip)) return shown + " is a loopback address";
  if (kMulticast.contains(ip)) return shown + " is multicast";
  if (kClassE.contains(ip)) return shown + " is reserved or broadcast";
  if (network.contains(ip)) return shown + " is inside network " + network.str() + " (VXLAN would loop)";
  return std::nullopt;
}

PeerCheck check_peers(const PeerSet& peers, const Lease& own, const Ipv4Prefix& network) {
  PeerCheck out;
  std::vector<const Peer*> candidates;
  for (const auto& [name, peer] : peers) {
    if (auto problem = individual_problem(peer, own, network)) {
      out.skipped.push_back({name, *problem});
    } else {
      candidates.push_back(&peer);
    }
  }
  accept_unless_shared(
      out, candidates, [](const Peer& p) -> const Ipv4Prefix& { return *p.subnet; },
      [](const Peer& p) { return *p.vtep_mac; }, "");
  return out;
}

}  // namespace weft
