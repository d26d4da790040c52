#pragma once
// The reconcile as a pure function: desired and actual state in, ordered writes out.

#include <string>
#include <vector>

#include "backend/vxlan/state.hpp"

namespace weft {

// Writes are applied phase by phase, in this order: routes go before the neighbor/FDB
// entries they use are removed, and come after the entries they need are written, so the
// kernel never ARPs for a peer's gateway on the VTEP.
enum class Phase { remove_routes, set_neighbors, set_routes, remove_neighbors };

// One write, with the peer it is for (empty for a stale entry no peer wants).
struct Op {
  Phase phase = Phase::set_routes;
  Write write;
  std::string peer;
  bool operator==(const Op&) const = default;
};

// The writes that turn actual into desired, sorted by phase; nothing for what already
// matches. "Neighbor" phases cover FDB entries too. Entries the kernel made itself (its ARP
// cache, learned FDB entries) are never removed, only made permanent when a peer needs them.
std::vector<Op> diff(const DesiredState& desired, const ActualState& actual);
// The same for the IPv6 overlay on weft-v6.<VNI>.
std::vector<Op> diff_v6(const DesiredState6& desired, const ActualState6& actual);

const char* to_string(Phase phase);

}  // namespace weft
