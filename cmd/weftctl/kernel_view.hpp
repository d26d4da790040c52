#pragma once
// weftctl's own reading of the kernel (through the backend's Netlink, in weftctl's network
// namespace): the VTEP, and per desired peer whether its route, neighbour and FDB entry are
// there and equal to what weftd wants; routes in weft's space that no peer wants.

#include <optional>
#include <string>
#include <vector>

#include "backend/netlink/netlink.hpp"
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

struct PeerKernelState {
  Peer peer;
  bool direct = false;  // DirectRouting: a route via the public IP on the underlay
  EntryState route, neighbor, fdb;
  bool ok() const;
};

struct KernelView {
  std::optional<Link> vtep;  // nullopt: no device by weftd's VTEP name
  std::optional<Link> underlay;
  std::vector<PeerKernelState> peers;
  std::vector<Route> foreign_routes;  // on the VTEP (or weft's protocol) in the network; no peer wants them
};

// Reads the kernel and compares it with weftd's desired peers.
Result<KernelView> read_kernel(Netlink& nl, const DaemonStatus& d);

// The pure part: desired peers vs. dumped entries (vtep_ifindex 0: no VTEP, all missing).
void compare_peers(KernelView& view, const DaemonStatus& d, int vtep_ifindex, const std::vector<Neighbor>& neighbors,
                   const std::vector<FdbEntry>& fdb, const std::vector<Route>& routes,
                   const std::vector<std::optional<int>>& direct_hops);

}  // namespace weft::ctl
