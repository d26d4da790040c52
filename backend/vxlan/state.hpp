#pragma once
// Desired and actual kernel state for the VXLAN backend, as plain values. Each comes in the
// overlay's two families: PeerEntries/DesiredState/ActualState for IPv4 on weft.<VNI>, the
// *6 ones for IPv6 on weft-v6.<VNI>.

#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "backend/netlink/types.hpp"
#include "core/lease.hpp"

namespace weft {

// The entries one peer needs: neighbor + FDB entry + onlink route on the VTEP, or, when
// its public IP is directly reachable with DirectRouting (IPv4 only), only a route via that IP.
template <class Ip>
struct BasicPeerEntries {
  std::string peer;
  std::optional<BasicNeighbor<Ip>> neighbor;
  std::optional<FdbEntry> fdb;
  BasicRoute<Ip> route;
  bool operator==(const BasicPeerEntries&) const = default;
};
using PeerEntries = BasicPeerEntries<Ipv4Addr>;
using PeerEntries6 = BasicPeerEntries<Ipv6Addr>;

// What weft wants in the kernel, per peer.
template <class Ip>
struct BasicDesiredState {
  std::vector<BasicPeerEntries<Ip>> peers;
};
using DesiredState = BasicDesiredState<Ipv4Addr>;
using DesiredState6 = BasicDesiredState<Ipv6Addr>;

// What the kernel holds that weft owns (see owned_state).
template <class Ip>
struct BasicActualState {
  std::vector<BasicNeighbor<Ip>> neighbors;
  std::vector<FdbEntry> fdb;
  std::vector<BasicRoute<Ip>> routes;
};
using ActualState = BasicActualState<Ipv4Addr>;
using ActualState6 = BasicActualState<Ipv6Addr>;

// Public IPs reachable without a gateway -> the underlay ifindex (DirectRouting).
using DirectHops = std::unordered_map<Ipv4Addr, int>;

PeerEntries peer_entries(const Peer& peer, int vtep_ifindex, std::optional<int> direct_ifindex);
DesiredState desired_state(const std::vector<const Peer*>& peers, int vtep_ifindex, const DirectHops& direct);

// Public IPv6 addresses reachable without a gateway -> the underlay ifindex (DirectRouting over
// an IPv6 underlay).
using DirectHops6 = std::map<Ipv6Addr, int>;

// The IPv6 entries for a peer with subnet_v6 and vtep_mac_v6 (others get none), on the IPv6
// VTEP: neighbor (network address of subnet_v6 -> vtep_mac_v6), FDB entry (vtep_mac_v6 ->
// public_ip_v6, or public_ip when the peer has no IPv6 one) and the onlink route; with a direct
// hop (its public_ip_v6 on our link, DirectRouting), only a route via public_ip_v6 there.
std::optional<PeerEntries6> peer_entries_v6(const Peer& peer, int vtep_ifindex,
                                            std::optional<int> direct_ifindex = std::nullopt);
DesiredState6 desired_state_v6(const std::vector<const Peer*>& peers, int vtep_ifindex, const DirectHops6& direct = {});

// A route weft may change or delete: inside the cluster network, and on the VTEP or
// written by weft (its protocol number). Nothing outside the network is ever touched.
template <class Ip>
bool owned_route(const BasicRoute<Ip>& route, int vtep_ifindex, const Prefix<Ip>& network) {
  return network.contains(route.dst) && (route.ifindex == vtep_ifindex || route.protocol == kWeftRouteProtocol);
}
// An IPv6 address brings a prefix route even as /128 ("proto kernel metric 256"): the kernel's,
// for the IPv6 VTEP's own address, so never a stale entry (IPv4 adds none for a /32).
void drop_own_address_route(std::vector<Route6>& routes, const Ipv6Addr& vtep_address);

// Filters kernel dumps to what weft owns: neighbor and FDB entries on the VTEP, owned routes.
template <class Ip>
BasicActualState<Ip> owned_state(std::vector<BasicNeighbor<Ip>> neighbors, std::vector<FdbEntry> fdb,
                                 const std::vector<BasicRoute<Ip>>& routes, int vtep_ifindex,
                                 const Prefix<Ip>& network);

extern template ActualState owned_state(std::vector<Neighbor>, std::vector<FdbEntry>, const std::vector<Route>&, int,
                                        const Ipv4Prefix&);
extern template ActualState6 owned_state(std::vector<Neighbor6>, std::vector<FdbEntry>, const std::vector<Route6>&, int,
                                         const Ipv6Prefix&);

}  // namespace weft
