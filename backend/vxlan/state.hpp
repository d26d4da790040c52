#pragma once
// Desired and actual kernel state for the VXLAN backend, as plain values.

#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "backend/netlink/types.hpp"
#include "core/lease.hpp"

namespace weft {

// The entries one peer needs: neighbor + FDB entry + onlink route on the VTEP, or, when
// its public IP is directly reachable with DirectRouting, only a route via that IP.
struct PeerEntries {
  std::string peer;
  std::optional<Neighbor> neighbor;
  std::optional<FdbEntry> fdb;
  Route route;
  bool operator==(const PeerEntries&) const = default;
};

// What weft wants in the kernel, per peer.
struct DesiredState {
  std::vector<PeerEntries> peers;
};

// What the kernel holds that weft owns (see owned_state).
struct ActualState {
  std::vector<Neighbor> neighbors;
  std::vector<FdbEntry> fdb;
  std::vector<Route> routes;
};

// Public IPs reachable without a gateway -> the underlay ifindex (DirectRouting).
using DirectHops = std::unordered_map<Ipv4Addr, int>;

PeerEntries peer_entries(const Peer& peer, int vtep_ifindex, std::optional<int> direct_ifindex);
DesiredState desired_state(const std::vector<const Peer*>& peers, int vtep_ifindex, const DirectHops& direct);

// A route weft may change or delete: inside the cluster network, and on the VTEP or
// written by weft (its protocol number). Nothing outside the network is ever touched.
bool owned_route(const Route& route, int vtep_ifindex, const Ipv4Prefix& network);
// Filters kernel dumps to what weft owns: neighbor and FDB entries on the VTEP, owned routes.
ActualState owned_state(std::vector<Neighbor> neighbors, std::vector<FdbEntry> fdb, const std::vector<Route>& routes,
                        int vtep_ifindex, const Ipv4Prefix& network);

}  // namespace weft
