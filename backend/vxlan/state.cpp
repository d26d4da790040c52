#include "backend/vxlan/state.hpp"

#include <algorithm>

namespace weft {

PeerEntries peer_entries(const Peer& peer, int vtep_ifindex, std::optional<int> direct_ifindex) {
  PeerEntries e;
  e.peer = peer.name;
  if (direct_ifindex) {
    e.route = Route{peer.subnet, peer.public_ip, *direct_ifindex, false};
    return e;
  }
  // flannel's layout: the peer's subnet address is its VTEP address and our gateway to it.
  const Ipv4Addr gateway = peer.subnet.address();
  e.neighbor = Neighbor{vtep_ifindex, gateway, peer.vtep_mac, true};
  e.fdb = FdbEntry{vtep_ifindex, peer.vtep_mac, peer.public_ip};
  e.route = Route{peer.subnet, gateway, vtep_ifindex, true};
  return e;
}

DesiredState desired_state(const std::vector<const Peer*>& peers, int vtep_ifindex, const DirectHops& direct) {
  DesiredState d;
  d.peers.reserve(peers.size());
  for (const Peer* p : peers) {
    std::optional<int> hop;
    if (auto it = direct.find(p->public_ip); it != direct.end()) hop = it->second;
    d.peers.push_back(peer_entries(*p, vtep_ifindex, hop));
  }
  return d;
}

bool owned_route(const Route& route, int vtep_ifindex, const Ipv4Prefix& network) {
  return network.contains(route.dst) && (route.ifindex == vtep_ifindex || route.protocol == kWeftRouteProtocol);
}

ActualState owned_state(std::vector<Neighbor> neighbors, std::vector<FdbEntry> fdb, const std::vector<Route>& routes,
                        int vtep_ifindex, const Ipv4Prefix& network) {
  ActualState a;
  a.neighbors = std::move(neighbors);
  a.fdb = std::move(fdb);
  std::erase_if(a.neighbors, [&](const Neighbor& n) { return n.ifindex != vtep_ifindex; });
  std::erase_if(a.fdb, [&](const FdbEntry& f) { return f.ifindex != vtep_ifindex; });
  std::copy_if(routes.begin(), routes.end(), std::back_inserter(a.routes),
               [&](const Route& r) { return owned_route(r, vtep_ifindex, network); });
  return a;
}

}  // namespace weft
