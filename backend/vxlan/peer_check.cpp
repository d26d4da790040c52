#include "backend/vxlan/peer_check.hpp"

#include <algorithm>
#include <map>

namespace weft {
namespace {

const Ipv4Prefix kLoopback = Ipv4Prefix::containing(Ipv4Addr(0x7f000000U), 8);
const Ipv4Prefix kMulticast = Ipv4Prefix::containing(Ipv4Addr(0xe0000000U), 4);
const Ipv4Prefix kClassE = Ipv4Prefix::containing(Ipv4Addr(0xf0000000U), 4);  // includes broadcast

std::optional<std::string> individual_problem(const Peer& p, const Lease& own, const Ipv4Prefix& network) {
  if (!network.contains(p.subnet)) return "subnet " + p.subnet.str() + " outside network " + network.str();
  if (p.subnet.overlaps(own.subnet))
    return "subnet " + p.subnet.str() + " overlaps this node's subnet " + own.subnet.str();
  if (p.vtep_mac.is_zero()) return std::string("VTEP MAC is zero");
  if (!p.vtep_mac.is_unicast()) return "VTEP MAC " + p.vtep_mac.str() + " is multicast";
  if (p.vtep_mac == own.vtep_mac) return "VTEP MAC " + p.vtep_mac.str() + " is this node's";
  if (auto problem = public_ip_problem(p.public_ip, network)) return problem;
  if (p.public_ip == own.public_ip) return "public IP " + p.public_ip.str() + " is this node's";
  return std::nullopt;
}

// Marks peers whose subnets collide, by a sweep over subnets sorted by (address, length):
// the open stack holds the subnets that contain the current one.
void mark_subnet_conflicts(std::vector<const Peer*> peers, std::map<const Peer*, std::string>& why) {
  std::sort(peers.begin(), peers.end(), [](const Peer* a, const Peer* b) {
    return std::pair(a->subnet.address(), a->subnet.length()) < std::pair(b->subnet.address(), b->subnet.length());
  });
  std::vector<const Peer*> open;
  for (const Peer* p : peers) {
    while (!open.empty() && !open.back()->subnet.contains(p->subnet)) open.pop_back();
    for (const Peer* outer : open) {
      if (outer->subnet == p->subnet) {
        why.try_emplace(outer, "subnet " + outer->subnet.str() + " also claimed by node " + p->name);
        why.try_emplace(p, "subnet " + p->subnet.str() + " also claimed by node " + outer->name);
      } else {
        why.try_emplace(outer,
                        "subnet " + outer->subnet.str() + " contains node " + p->name + "'s subnet " + p->subnet.str());
      }
    }
    open.push_back(p);
  }
}

void mark_shared_macs(const std::vector<const Peer*>& peers, std::map<const Peer*, std::string>& why) {
  std::map<Mac, std::vector<const Peer*>> by_mac;
  for (const Peer* p : peers) by_mac[p->vtep_mac].push_back(p);
  for (const auto& [mac, holders] : by_mac) {
    if (holders.size() < 2) continue;
    for (const Peer* p : holders) {
      const Peer* other = holders[0] == p ? holders[1] : holders[0];
      why.try_emplace(p, "VTEP MAC " + mac.str() + " also used by node " + other->name);
    }
  }
}

}  // namespace

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
  std::map<const Peer*, std::string> why;
  mark_subnet_conflicts(candidates, why);
  mark_shared_macs(candidates, why);
  for (const Peer* p : candidates) {
    if (auto it = why.find(p); it != why.end()) {
      out.skipped.push_back({p->name, it->second});
    } else {
      out.accepted.push_back(p);
    }
  }
  std::sort(out.skipped.begin(), out.skipped.end(),
            [](const SkippedPeer& a, const SkippedPeer& b) { return a.name < b.name; });
  return out;
}

}  // namespace weft
