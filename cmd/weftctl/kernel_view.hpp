#pragma once
// weftctl's own reading of the kernel (through the backend's Netlink, in weftctl's network
// namespace): per overlay family, the VTEP, and per desired peer whether its route, neighbour
// and FDB entry are there and equal to what weftd wants; routes in weft's space that no peer
// wants. Dual stack reads the IPv6 family on weft-v6.<VNI> the same way; an IPv6-only weftd
// gets that family alone.

#include <optional>
#include <string>
#include <vector>

#include "backend/netlink/netlink.hpp"
#include "backend/vxlan/state.hpp"
#include "cmd/weftctl/daemon_status.hpp"

namespace weft::ctl {

// One kernel entry of a peer: ok (present and equal), missing, wrong (present, other value),
// or none (not needed: a DirectRouting peer has no neighbour or FDB entry).
struct EntryState {
  enum class Kind { ok, missing, wrong, none };
  Kind kind = Kind::missing;
  std::string detail;  // for wrong: what the kernel has
};
const char* to_string(EntryState::Kind kind);

// One peer's entries in one family (for IPv6: its IPv6 half, on the IPv6 VTEP).
struct PeerKernelState {
  Peer peer;
  bool direct = false;  // DirectRouting (IPv4 only): a route via the public IP on the underlay
  EntryState route, neighbor, fdb;
  bool ok() const;
};

// One overlay family in the kernel.
template <class Ip>
struct FamilyView {
  std::optional<Link> vtep;                    // nullopt: no device by weftd's VTEP name
  std::vector<PeerKernelState> peers;          // IPv6: only the peers with an IPv6 half
  std::vector<BasicRoute<Ip>> foreign_routes;  // on the VTEP (or weft's protocol) in the network; no peer wants them
  bool ok() const;                             // the VTEP is there, every entry as desired, no foreign route
};

// The IPv4 family (inherited), the underlay and, dual stack or IPv6-only, the IPv6 family.
struct KernelView : FamilyView<Ipv4Addr> {
  bool ipv4 = true;  // false: an IPv6-only weftd, the IPv4 family was not read (and is empty)
  std::optional<Link> underlay;
  std::optional<FamilyView<Ipv6Addr>> v6;
  bool ok() const;  // the families weftd has
  // The peer's IPv6 state, if the peer has an IPv6 half weftd wants programmed.
  const PeerKernelState* v6_of(const std::string& node) const;
};

// Reads the kernel and compares it with weftd's desired peers, in each family weftd has.
Result<KernelView> read_kernel(Netlink& nl, const DaemonStatus& d);

// The pure part: desired peers vs. dumped entries (vtep_ifindex 0: no VTEP, all missing).
void compare_peers(KernelView& view, const DaemonStatus& d, int vtep_ifindex, const std::vector<Neighbor>& neighbors,
                   const std::vector<FdbEntry>& fdb, const std::vector<Route>& routes,
                   const std::vector<std::optional<int>>& direct_hops);
// The same for the peers' IPv6 halves on weft-v6.<VNI>, into view.v6 (made if absent); `direct`:
// public IPv6 addresses DirectRouting reaches on the underlay.
void compare_peers_v6(KernelView& view, const DaemonStatus& d, int vtep_ifindex,
                      const std::vector<Neighbor6>& neighbors, const std::vector<FdbEntry>& fdb,
                      const std::vector<Route6>& routes, const DirectHops6& direct = {});

}  // namespace weft::ctl
