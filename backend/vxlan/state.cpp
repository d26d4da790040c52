#include "backend/vxlan/state.hpp"

#include <algorithm>

namespace weft {

PeerEntries peer_entries(const Peer& peer, int vtep_ifindex, std::optional<int> direct_ifindex) {
  PeerEntries e;
  e.peer = peer.name;
  if (direct_ifindex) {
    e.route = Route{*peer.subnet, *peer.public_ip, *direct_ifindex, false};
    return e;
  }
  // flannel's layout: the peer's subnet address is its VTEP address and our gateway to it.
  const Ipv4Addr gateway = peer.subnet->address();
  e.neighbor = Neighbor{vtep_ifindex, gateway, *peer.vtep_mac, true};
  e.fdb = FdbEntry{vtep_ifindex, *peer.vtep_mac, *peer.public_ip};
  e.route = Route{*peer.subnet, gateway, vtep_ifindex, true};
  return e;
}

std::optional<PeerEntries6> peer_entries_v6(const Peer& peer, int vtep_ifindex, std::optional<int> direct_ifindex) {
  if (!peer.subnet_v6 || !peer.vtep_mac_v6 || (!peer.public_ip_v6 && !peer.public_ip)) return std::nullopt;
  PeerEntries6 e;
  e.peer = peer.name;
  if (direct_ifindex && peer.public_ip_v6) {
    e.route = Route6{*peer.subnet_v6, *peer.public_ip_v6, *direct_ifindex, false, kIpv6RouteMetric};
    return e;
  }
  const Ipv6Addr gateway = peer.subnet_v6->address();  // as for IPv4: the subnet's first address
  const IpAddr remote = peer.public_ip_v6 ? IpAddr(*peer.public_ip_v6) : IpAddr(*peer.public_ip);
  e.neighbor = Neighbor6{vtep_ifindex, gateway, *peer.vtep_mac_v6, true};
  e.fdb = FdbEntry{vtep_ifindex, *peer.vtep_mac_v6, remote};
  e.route = Route6{*peer.subnet_v6, gateway, vtep_ifindex, true, kIpv6RouteMetric};
  return e;
}

DesiredState6 desired_state_v6(const std::vector<const Peer*>& peers, int vtep_ifindex, const DirectHops6& direct) {
  DesiredState6 d;
  d.peers.reserve(peers.size());
  for (const Peer* p : peers) {
    std::optional<int> hop;
    if (p->public_ip_v6) {
      if (auto it = direct.find(*p->public_ip_v6); it != direct.end()) hop = it->second;
    }
    if (auto e = peer_entries_v6(*p, vtep_ifindex, hop)) d.peers.push_back(std::move(*e));
  }
  return d;
}

DesiredState desired_state(const std::vector<const Peer*>& peers, int vtep_ifindex, const DirectHops& direct) {
  DesiredState d;
  d.peers.reserve(peers.size());
  for (const Peer* p : peers) {
    std::optional<int> hop;
    if (auto it = direct.find(*p->public_ip); it != direct.end()) hop = it->second;
    d.peers.push_back(peer_entries(*p, vtep_ifindex, hop));
  }
  return d;
}

void drop_own_address_route(std::vector<Route6>& routes, const Ipv6Addr& vtep_address) {
  constexpr std::uint8_t kKernel = 2;  // RTPROT_KERNEL
  const Ipv6Prefix own = Ipv6Prefix::containing(vtep_address, 128);
  std::erase_if(routes, [&](const Route6& r) { return r.dst == own && r.protocol == kKernel; });
}

template <class Ip>
BasicActualState<Ip> owned_state(std::vector<BasicNeighbor<Ip>> neighbors, std::vector<FdbEntry> fdb,
                                 const std::vector<BasicRoute<Ip>>& routes, int vtep_ifindex,
                                 const Prefix<Ip>& network) {
  BasicActualState<Ip> a;
  a.neighbors = std::move(neighbors);
  a.fdb = std::move(fdb);
  std::erase_if(a.neighbors, [&](const BasicNeighbor<Ip>& n) { return n.ifindex != vtep_ifindex; });
  std::erase_if(a.fdb, [&](const FdbEntry& f) { return f.ifindex != vtep_ifindex; });
  std::copy_if(routes.begin(), routes.end(), std::back_inserter(a.routes),
               [&](const BasicRoute<Ip>& r) { return owned_route(r, vtep_ifindex, network); });
  return a;
}

template ActualState owned_state(std::vector<Neighbor>, std::vector<FdbEntry>, const std::vector<Route>&, int,
                                 const Ipv4Prefix&);
template ActualState6 owned_state(std::vector<Neighbor6>, std::vector<FdbEntry>, const std::vector<Route6>&, int,
                                  const Ipv6Prefix&);

}  // namespace weft
