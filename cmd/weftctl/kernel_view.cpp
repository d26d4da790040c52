#include "cmd/weftctl/kernel_view.hpp"

#include <map>
#include <set>
#include <type_traits>

#include "backend/vxlan/state.hpp"

namespace weft::ctl {
namespace {

template <class Ip>
bool same_route(const BasicRoute<Ip>& have, const BasicRoute<Ip>& want) {
  return have.dst == want.dst && have.gateway == want.gateway && have.ifindex == want.ifindex &&
         have.onlink == want.onlink && have.unicast && !have.multipath;
}

// The kernel's entries of one family indexed by what a peer's entry is looked up by (thousands of peers).
template <class Ip>
struct Index {
  std::multimap<Prefix<Ip>, const BasicRoute<Ip>*> routes;
  std::multimap<Ip, const BasicNeighbor<Ip>*> neighbors;
  std::multimap<Mac, const FdbEntry*> fdb;
};

template <class Ip>
EntryState route_state(const Index<Ip>& ix, const BasicRoute<Ip>& want) {
  const BasicRoute<Ip>* seen = nullptr;
  for (auto [it, end] = ix.routes.equal_range(want.dst); it != end; ++it) {
    if (same_route(*it->second, want)) return {EntryState::Kind::ok, ""};
    seen = it->second;
  }
  if (!seen) return {EntryState::Kind::missing, ""};
  return {EntryState::Kind::wrong, to_string(*seen)};
}

template <class Ip>
EntryState neighbor_state(const Index<Ip>& ix, const BasicNeighbor<Ip>& want) {
  for (auto [it, end] = ix.neighbors.equal_range(want.ip); it != end; ++it) {
    const BasicNeighbor<Ip>& n = *it->second;
    if (n.ifindex != want.ifindex) continue;
    if (n.mac == want.mac && n.permanent) return {EntryState::Kind::ok, ""};
    return {EntryState::Kind::wrong, to_string(n)};
  }
  return {EntryState::Kind::missing, ""};
}

template <class Ip>
EntryState fdb_state(const Index<Ip>& ix, const FdbEntry& want) {
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

// A neighbour or FDB entry: none when the peer needs none, missing when there is no VTEP.
template <class Ip, class Entry, class State>
EntryState optional_state(const Index<Ip>& ix, const std::optional<Entry>& want, int vtep_ifindex, State state) {
  if (!want) return {EntryState::Kind::none, ""};
  if (vtep_ifindex == 0) return {};
  return state(ix, *want);
}

// What one peer needs in one family, as the backend computes it.
template <class Ip>
struct Wanted {
  const Peer* peer;
  BasicPeerEntries<Ip> entries;
  bool direct = false;
};

// One family's dumps (no neighbours or FDB entries when there is no VTEP).
template <class Ip>
struct Dumps {
  std::optional<Link> vtep;
  std::vector<BasicNeighbor<Ip>> neighbors;
  std::vector<FdbEntry> fdb;
  std::vector<BasicRoute<Ip>> routes;
  int ifindex() const { return vtep ? vtep->ifindex : 0; }
};

template <class Ip>
void compare_family(FamilyView<Ip>& view, const std::vector<Wanted<Ip>>& wanted, const Prefix<Ip>& network,
                    int vtep_ifindex, const std::vector<BasicNeighbor<Ip>>& neighbors, const std::vector<FdbEntry>& fdb,
                    const std::vector<BasicRoute<Ip>>& routes) {
  Index<Ip> ix;
  for (const auto& r : routes) ix.routes.emplace(r.dst, &r);
  for (const auto& n : neighbors) ix.neighbors.emplace(n.ip, &n);
  for (const FdbEntry& f : fdb) ix.fdb.emplace(f.mac, &f);
  std::set<Prefix<Ip>> wanted_dst;
  for (const Wanted<Ip>& w : wanted) {
    PeerKernelState s;
    s.peer = *w.peer;
    s.direct = w.direct;
    s.route = vtep_ifindex == 0 && !w.direct ? EntryState{} : route_state(ix, w.entries.route);
    s.neighbor = optional_state(ix, w.entries.neighbor, vtep_ifindex, neighbor_state<Ip>);
    s.fdb = optional_state(ix, w.entries.fdb, vtep_ifindex, fdb_state<Ip>);
    view.peers.push_back(std::move(s));
    wanted_dst.insert(w.entries.route.dst);
  }
  if (vtep_ifindex == 0) return;
  for (const auto& r : routes) {
    if (owned_route(r, vtep_ifindex, network) && wanted_dst.count(r.dst) == 0) view.foreign_routes.push_back(r);
  }
}

template <class Ip>
Result<Dumps<Ip>> dump_family(Netlink& nl, const std::string& vtep_name) {
  constexpr bool v6 = std::is_same_v<Ip, Ipv6Addr>;
  Dumps<Ip> out;
  auto vtep = nl.get_link(vtep_name);
  if (!vtep) return fail("read link " + vtep_name + ": " + vtep.error());
  out.vtep = *vtep;
  if (out.vtep) {
    auto n = [&] {
      if constexpr (v6)
        return nl.dump_neighbors6(out.ifindex());
      else
        return nl.dump_neighbors(out.ifindex());
    }();
    if (!n) return fail(std::string(v6 ? "dump IPv6 neighbours: " : "dump neighbours: ") + n.error());
    out.neighbors = std::move(n).value();
    auto f = nl.dump_fdb(out.ifindex());
    if (!f) return fail("dump FDB of " + vtep_name + ": " + f.error());
    out.fdb = std::move(f).value();
  }
  auto r = [&] {
    if constexpr (v6)
      return nl.dump_routes6();
    else
      return nl.dump_routes();
  }();
  if (!r) return fail(std::string(v6 ? "dump IPv6 routes: " : "dump routes: ") + r.error());
  out.routes = std::move(r).value();
  return out;
}

// DirectRouting as the backend decides it: a public IP reachable without a gateway.
std::vector<std::optional<int>> direct_hops(Netlink& nl, const DaemonStatus& d, int vtep_ifindex) {
  std::vector<std::optional<int>> hops(d.peers.size());
  if (!d.vtep || !d.vtep->direct_routing) return hops;
  for (std::size_t i = 0; i < d.peers.size(); ++i) {
    if (!d.peers[i].public_ip) continue;
    auto r = nl.lookup_route(*d.peers[i].public_ip);
    if (r && !r->gateway && r->unicast && r->ifindex > 0 && r->ifindex != vtep_ifindex) hops[i] = r->ifindex;
  }
  return hops;
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

template <class Ip>
bool FamilyView<Ip>::ok() const {
  bool all = vtep.has_value() && foreign_routes.empty();
  for (const auto& p : peers) all = all && p.ok();
  return all;
}
template struct FamilyView<Ipv4Addr>;
template struct FamilyView<Ipv6Addr>;

bool KernelView::ok() const { return (!ipv4 || FamilyView<Ipv4Addr>::ok()) && (!v6 || v6->ok()); }

const PeerKernelState* KernelView::v6_of(const std::string& node) const {
  if (!v6) return nullptr;
  for (const auto& p : v6->peers) {
    if (p.peer.name == node) return &p;
  }
  return nullptr;
}

void compare_peers(KernelView& view, const DaemonStatus& d, int vtep_ifindex, const std::vector<Neighbor>& neighbors,
                   const std::vector<FdbEntry>& fdb, const std::vector<Route>& routes,
                   const std::vector<std::optional<int>>& direct_hops) {
  std::vector<Wanted<Ipv4Addr>> wanted;
  wanted.reserve(d.peers.size());
  for (std::size_t i = 0; i < d.peers.size(); ++i) {
    const auto hop = i < direct_hops.size() ? direct_hops[i] : std::nullopt;
    wanted.push_back({&d.peers[i], peer_entries(d.peers[i], vtep_ifindex, hop), hop.has_value()});
  }
  compare_family(view, wanted, d.network.value_or(Ipv4Prefix{}), vtep_ifindex, neighbors, fdb, routes);
}

namespace {

// The IPv6 twin of direct_hops: a public IPv6 address reachable without a gateway.
DirectHops6 direct_hops6(Netlink& nl, const DaemonStatus& d, int vtep_ifindex) {
  DirectHops6 hops;
  if (!d.vtep6 || !d.vtep6->direct_routing) return hops;
  for (const Peer& p : d.peers) {
    if (!p.public_ip_v6 || hops.count(*p.public_ip_v6) != 0) continue;
    auto r = nl.lookup_route6(*p.public_ip_v6);
    if (r && !r->gateway && r->unicast && r->ifindex > 0 && r->ifindex != vtep_ifindex)
      hops.emplace(*p.public_ip_v6, r->ifindex);
  }
  return hops;
}

}  // namespace

void compare_peers_v6(KernelView& view, const DaemonStatus& d, int vtep_ifindex,
                      const std::vector<Neighbor6>& neighbors, const std::vector<FdbEntry>& fdb,
                      const std::vector<Route6>& routes, const DirectHops6& direct) {
  std::vector<Wanted<Ipv6Addr>> wanted;
  for (const Peer& p : d.peers) {
    std::optional<int> hop;
    if (p.public_ip_v6) {
      if (auto it = direct.find(*p.public_ip_v6); it != direct.end()) hop = it->second;
    }
    if (auto e = peer_entries_v6(p, vtep_ifindex, hop)) wanted.push_back({&p, std::move(*e), hop.has_value()});
  }
  if (!view.v6) view.v6.emplace();
  std::vector<Route6> ours = routes;
  if (d.lease && d.lease->subnet_v6) drop_own_address_route(ours, d.lease->subnet_v6->address());
  compare_family(*view.v6, wanted, d.network_v6.value_or(Ipv6Prefix{}), vtep_ifindex, neighbors, fdb, ours);
}

Result<KernelView> read_kernel(Netlink& nl, const DaemonStatus& d) {
  KernelView view;
  if (!d.underlay.name.empty()) {
    auto u = nl.get_link(d.underlay.name);
    if (u) view.underlay = *u;
  }
  view.ipv4 = d.has_ipv4();
  if (d.vtep) {
    auto v4 = dump_family<Ipv4Addr>(nl, d.vtep->name);
    if (!v4) return v4.take_error();
    view.vtep = v4->vtep;
    compare_peers(view, d, v4->ifindex(), v4->neighbors, v4->fdb, v4->routes, direct_hops(nl, d, v4->ifindex()));
  }
  if (!d.vtep6) return view;
  auto v6 = dump_family<Ipv6Addr>(nl, d.vtep6->name);
  if (!v6) return v6.take_error();
  view.v6.emplace();
  view.v6->vtep = v6->vtep;
  compare_peers_v6(view, d, v6->ifindex(), v6->neighbors, v6->fdb, v6->routes, direct_hops6(nl, d, v6->ifindex()));
  return view;
}

}  // namespace weft::ctl
