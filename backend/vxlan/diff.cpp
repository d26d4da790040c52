#include "backend/vxlan/diff.hpp"

#include <map>
#include <unordered_map>

namespace weft {
namespace {

// Hashes for the index's keys, either family (IPv4 ones as std::hash does).
struct KeyHash {
  std::size_t operator()(const Ipv4Addr& a) const noexcept { return std::hash<Ipv4Addr>{}(a); }
  std::size_t operator()(const Ipv4Prefix& p) const noexcept { return std::hash<Ipv4Prefix>{}(p); }
  std::size_t operator()(const Ipv6Addr& a) const noexcept {
    const uint128 v = a.to_uint();
    return std::hash<std::uint64_t>{}(static_cast<std::uint64_t>(v >> 64U) ^ static_cast<std::uint64_t>(v));
  }
  std::size_t operator()(const Ipv6Prefix& p) const noexcept {
    return ((*this)(p.address()) << 8U) ^ static_cast<std::size_t>(p.length());
  }
};

template <class Ip>
bool same_route(const BasicRoute<Ip>& want, const BasicRoute<Ip>& have) {
  return have.gateway == want.gateway && have.ifindex == want.ifindex && have.onlink == want.onlink && have.unicast &&
         !have.multipath;
}

template <class Ip>
bool same_neighbor(const BasicNeighbor<Ip>& want, const BasicNeighbor<Ip>& have) {
  return have.mac == want.mac && have.permanent;
}

// The actual state indexed by key, remembering which entries some peer still wants.
template <class Ip>
class ActualIndex {
 public:
  explicit ActualIndex(const BasicActualState<Ip>& actual) : actual_(actual) {
    for (std::size_t i = 0; i < actual.neighbors.size(); ++i) neighbor_by_ip_.try_emplace(actual.neighbors[i].ip, i);
    for (std::size_t i = 0; i < actual.fdb.size(); ++i) fdb_by_mac_[actual.fdb[i].mac].push_back(i);
    for (std::size_t i = 0; i < actual.routes.size(); ++i) routes_by_dst_[actual.routes[i].dst].push_back(i);
    neighbor_used_.assign(actual.neighbors.size(), false);
    fdb_used_.assign(actual.fdb.size(), false);
    route_used_.assign(actual.routes.size(), false);
  }

  const BasicNeighbor<Ip>* take_neighbor(Ip ip) {
    auto it = neighbor_by_ip_.find(ip);
    if (it == neighbor_by_ip_.end()) return nullptr;
    neighbor_used_[it->second] = true;
    return &actual_.neighbors[it->second];
  }

  const BasicRoute<Ip>* take_route(const BasicRoute<Ip>& want) {
    auto it = routes_by_dst_.find(want.dst);
    if (it == routes_by_dst_.end()) return nullptr;
    for (std::size_t i : it->second) {
      if (actual_.routes[i].priority == want.priority && !route_used_[i]) {
        route_used_[i] = true;
        return &actual_.routes[i];
      }
    }
    return nullptr;
  }

  // The remotes the kernel holds for mac (unicast MACs have at most one).
  std::vector<std::size_t> fdb_remotes(const Mac& mac) const {
    auto it = fdb_by_mac_.find(mac);
    return it == fdb_by_mac_.end() ? std::vector<std::size_t>{} : it->second;
  }
  void use_fdb(std::size_t i) { fdb_used_[i] = true; }
  const FdbEntry& fdb(std::size_t i) const { return actual_.fdb[i]; }

  template <class F>
  void for_each_unused(F&& on_stale) const {
    for (std::size_t i = 0; i < actual_.routes.size(); ++i) {
      if (!route_used_[i]) on_stale(Phase::remove_routes, WriteObject{actual_.routes[i]});
    }
    // Entries the kernel made itself (ARP cache, learned FDB) are left to its garbage
    // collector: removing them would only make it recreate them, and wake us again.
    for (std::size_t i = 0; i < actual_.neighbors.size(); ++i) {
      const BasicNeighbor<Ip>& n = actual_.neighbors[i];
      if (!neighbor_used_[i] && n.permanent) on_stale(Phase::remove_neighbors, WriteObject{n});
    }
    for (std::size_t i = 0; i < actual_.fdb.size(); ++i) {
      const FdbEntry& f = actual_.fdb[i];
      if (!fdb_used_[i] && f.permanent) on_stale(Phase::remove_neighbors, WriteObject{f});
    }
  }

 private:
  const BasicActualState<Ip>& actual_;
  std::unordered_map<Ip, std::size_t, KeyHash> neighbor_by_ip_;
  std::map<Mac, std::vector<std::size_t>> fdb_by_mac_;
  std::unordered_map<Prefix<Ip>, std::vector<std::size_t>, KeyHash> routes_by_dst_;
  std::vector<bool> neighbor_used_, fdb_used_, route_used_;
};

// Appends the writes that make the kernel's remotes for want.mac exactly {want.dst}.
template <class Ip>
void diff_fdb(const FdbEntry& want, const std::string& peer, ActualIndex<Ip>& index, std::vector<Op>& out) {
  auto remotes = index.fdb_remotes(want.mac);
  for (std::size_t i : remotes) {
    if (index.fdb(i).dst == want.dst) {
      index.use_fdb(i);  // others (only possible for odd MACs) are removed as stale
      if (!index.fdb(i).permanent) out.push_back({Phase::set_neighbors, {WriteAction::upsert, want}, peer});
      return;
    }
  }
  if (remotes.size() > 1) {  // which remote a replace rewrites is unclear: clear them first
    for (std::size_t i : remotes) {
      out.push_back({Phase::set_neighbors, {WriteAction::remove, index.fdb(i)}, peer});
      index.use_fdb(i);
    }
  } else if (remotes.size() == 1) {
    index.use_fdb(remotes[0]);  // the replace below rewrites it
  }
  out.push_back({Phase::set_neighbors, {WriteAction::upsert, want}, peer});
}

template <class Ip>
std::vector<Op> diff_of(const BasicDesiredState<Ip>& desired, const BasicActualState<Ip>& actual) {
  ActualIndex<Ip> index(actual);
  std::vector<Op> neighbors;
  std::vector<Op> routes;
  for (const BasicPeerEntries<Ip>& p : desired.peers) {
    if (p.neighbor) {
      const BasicNeighbor<Ip>* have = index.take_neighbor(p.neighbor->ip);
      if (!have || !same_neighbor(*p.neighbor, *have)) {
        neighbors.push_back({Phase::set_neighbors, {WriteAction::upsert, *p.neighbor}, p.peer});
      }
    }
    if (p.fdb) diff_fdb(*p.fdb, p.peer, index, neighbors);
    const BasicRoute<Ip>* have = index.take_route(p.route);
    if (!have || !same_route(p.route, *have))
      routes.push_back({Phase::set_routes, {WriteAction::upsert, p.route}, p.peer});
  }
  std::vector<Op> stale_routes;
  std::vector<Op> stale_neighbors;
  index.for_each_unused([&](Phase phase, const WriteObject& object) {
    auto& into = phase == Phase::remove_routes ? stale_routes : stale_neighbors;
    into.push_back({phase, {WriteAction::remove, object}, ""});
  });
  std::vector<Op> out;
  out.reserve(stale_routes.size() + neighbors.size() + routes.size() + stale_neighbors.size());
  for (auto* part : {&stale_routes, &neighbors, &routes, &stale_neighbors}) {
    out.insert(out.end(), part->begin(), part->end());
  }
  return out;
}

}  // namespace

std::vector<Op> diff(const DesiredState& desired, const ActualState& actual) { return diff_of(desired, actual); }
std::vector<Op> diff_v6(const DesiredState6& desired, const ActualState6& actual) { return diff_of(desired, actual); }

const char* to_string(Phase phase) {
  switch (phase) {
    case Phase::remove_routes:
      return "remove routes";
    case Phase::set_neighbors:
      return "set neighbors and FDB entries";
    case Phase::set_routes:
      return "set routes";
    case Phase::remove_neighbors:
      return "remove neighbors and FDB entries";
  }
  return "?";
}

}  // namespace weft
