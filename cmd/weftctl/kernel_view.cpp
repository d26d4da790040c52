#include "cmd/weftctl/kernel_view.hpp"

#include <map>
#include <set>

#include "backend/vxlan/state.hpp"

namespace weft::ctl {
namespace {

bool same_route(const Route& have, const Route& want) {
  return have.dst == want.dst && have.gateway == want.gateway && have.ifindex == want.ifindex &&
         have.onlink == want.onlink && have.unicast && !have.multipath;
}

// The kernel's entries indexed by what a peer's entry is looked up by (thousands of peers).
struct Index {
  std::multimap<Ipv4Prefix, const Route*> routes;
  std::multimap<Ipv4Addr, const Neighbor*> neighbors;
  std::multimap<Mac, const FdbEntry*> fdb;
};

EntryState route_state(const Index& ix, const Route& want) {
  const Route* seen = nullptr;
  for (auto [it, end] = ix.routes.equal_range(want.dst); it != end; ++it) {
    if (same_route(*it->second, want)) return {EntryState::Kind::ok, ""};
    seen = it->second;
  }
  if (!seen) return {EntryState::Kind::missing, ""};
  return {EntryState::Kind::wrong, to_string(*seen)};
}

EntryState neighbor_state(const Index& ix, const Neighbor& want) {
  for (auto [it, end] = ix.neighbors.equal_range(want.ip); it != end; ++it) {
    const Neighbor& n = *it->second;
    if (n.ifindex != want.ifindex) continue;
    if (n.mac == want.mac && n.permanent) return {EntryState::Kind::ok, ""};
    return {EntryState::Kind::wrong, to_string(n)};
  }
  return {EntryState::Kind::missing, ""};
}

EntryState fdb_state(const Index& ix, const FdbEntry& want) {
  const FdbEntry* seen = nullptr;
  for (auto [it, end] = ix.fdb.equal_range(want.mac); it != end; ++it) {
    const FdbEntry& f = *it->second;
    if (f.ifindex != want.ifindex) continue;
    if (f.dst == want.dst && f.permanent) return {EntryState::Kind::ok, ""};
    seen = &f;
  }
  if (!seen) return {EntryState::Kind::missing, ""};
  return {EntryState::Kind::wrong, to_string(*seen)};
}

}  // namespace

const char* to_string(EntryState::Kind kind) {
  switch (kind) {
    case EntryState::Kind::ok:
      return "ok";
    case EntryState::Kind::missing:
      return "missing";
    case EntryState::Kind::wrong:
      return "wrong";
    case EntryState::Kind::none:
      return "none";
  }
  return "?";
}

bool PeerKernelState::ok() const {
  auto fine = [](const EntryState& e) { return e.kind == EntryState::Kind::ok || e.kind == EntryState::Kind::none; };
  return fine(route) && fine(neighbor) && fine(fdb);
}

void compare_peers(KernelView& view, const DaemonStatus& d, int vtep_ifindex, const std::vector<Neighbor>& neighbors,
                   const std::vector<FdbEntry>& fdb, const std::vector<Route>& routes,
                   const std::vector<std::optional<int>>& direct_hops) {
  Index ix;
  for (const Route& r : routes) ix.routes.emplace(r.dst, &r);
  for (const Neighbor& n : neighbors) ix.neighbors.emplace(n.ip, &n);
  for (const FdbEntry& f : fdb) ix.fdb.emplace(f.mac, &f);
  std::set<Ipv4Prefix> wanted;
  for (std::size_t i = 0; i < d.peers.size(); ++i) {
    const Peer& p = d.peers[i];
    const auto hop = i < direct_hops.size() ? direct_hops[i] : std::nullopt;
    PeerEntries want = peer_entries(p, vtep_ifindex, hop);
    PeerKernelState s;
    s.peer = p;
    s.direct = hop.has_value();
    s.route = vtep_ifindex == 0 && !hop ? EntryState{} : route_state(ix, want.route);
    s.neighbor = !want.neighbor      ? EntryState{EntryState::Kind::none, ""}
                 : vtep_ifindex == 0 ? EntryState{}
                                     : neighbor_state(ix, *want.neighbor);
    s.fdb = !want.fdb           ? EntryState{EntryState::Kind::none, ""}
            : vtep_ifindex == 0 ? EntryState{}
                                : fdb_state(ix, *want.fdb);
    view.peers.push_back(std::move(s));
    wanted.insert(p.subnet);
  }
  if (vtep_ifindex == 0) return;
  for (const Route& r : routes) {
    if (owned_route(r, vtep_ifindex, d.network) && wanted.count(r.dst) == 0) view.foreign_routes.push_back(r);
  }
}

Result<KernelView> read_kernel(Netlink& nl, const DaemonStatus& d) {
  KernelView view;
  auto vtep = nl.get_link(d.vtep.name);
  if (!vtep) return fail("read link " + d.vtep.name + ": " + vtep.error());
  view.vtep = *vtep;
  if (!d.underlay.name.empty()) {
    auto u = nl.get_link(d.underlay.name);
    if (u) view.underlay = *u;
  }
  const int ifindex = view.vtep ? view.vtep->ifindex : 0;
  std::vector<Neighbor> neighbors;
  std::vector<FdbEntry> fdb;
  if (ifindex != 0) {
    auto n = nl.dump_neighbors(ifindex);
    if (!n) return fail("dump neighbours: " + n.error());
    neighbors = std::move(n).value();
    auto f = nl.dump_fdb(ifindex);
    if (!f) return fail("dump FDB: " + f.error());
    fdb = std::move(f).value();
  }
  auto routes = nl.dump_routes();
  if (!routes) return fail("dump routes: " + routes.error());
  // DirectRouting as the backend decides it: a public IP reachable without a gateway.
  std::vector<std::optional<int>> hops(d.peers.size());
  if (d.vtep.direct_routing) {
    for (std::size_t i = 0; i < d.peers.size(); ++i) {
      auto r = nl.lookup_route(d.peers[i].public_ip);
      if (r && !r->gateway && r->unicast && r->ifindex > 0 && r->ifindex != ifindex) hops[i] = r->ifindex;
    }
  }
  compare_peers(view, d, ifindex, neighbors, fdb, *routes, hops);
  return view;
}

}  // namespace weft::ctl
