// diff() and the desired/actual state builders, with plain values.
#include "backend/vxlan/diff.hpp"

#include <catch2/catch.hpp>

#include "test/unit/backend/helpers.hpp"
#include "test/unit/backend/printers.hpp"

using namespace weft;
using namespace weft::test;

namespace {

constexpr int kVtep = 7;
constexpr int kUnderlay = 2;

const Peer kNode2 = peer("node2", "10.244.2.0/24", "192.0.2.2", "0e:00:00:00:00:02");
const Peer kNode3 = peer("node3", "10.244.3.0/24", "192.0.2.3", "0e:00:00:00:00:03");

DesiredState want(std::initializer_list<Peer> peers) {
  DesiredState d;
  for (const auto& p : peers) d.peers.push_back(peer_entries(p, kVtep, std::nullopt));
  return d;
}

// The kernel after the given peers were programmed.
ActualState have(std::initializer_list<Peer> peers) {
  ActualState a;
  for (const auto& p : peers) {
    auto e = peer_entries(p, kVtep, std::nullopt);
    a.neighbors.push_back(*e.neighbor);
    a.fdb.push_back(*e.fdb);
    a.routes.push_back(e.route);
  }
  return a;
}

Op set(Phase phase, WriteObject o, const std::string& peer) { return {phase, {WriteAction::upsert, o}, peer}; }
Op remove(Phase phase, WriteObject o, const std::string& peer = "") { return {phase, {WriteAction::remove, o}, peer}; }

}  // namespace

TEST_CASE("a peer's entries: neighbor and FDB entry on the VTEP, and an onlink route via its VTEP address", "[diff]") {
  auto e = peer_entries(kNode2, kVtep, std::nullopt);
  CHECK(e.neighbor == Neighbor{kVtep, ip("10.244.2.0"), *kNode2.vtep_mac, true});
  CHECK(e.fdb == FdbEntry{kVtep, *kNode2.vtep_mac, ip("192.0.2.2")});
  CHECK(e.route == Route{prefix("10.244.2.0/24"), ip("10.244.2.0"), kVtep, true, 0, kWeftRouteProtocol});
}

TEST_CASE("a new peer gets its neighbor and FDB entry before its route", "[diff]") {
  auto e = peer_entries(kNode2, kVtep, std::nullopt);
  auto ops = diff(want({kNode2}), {});
  REQUIRE(ops == std::vector<Op>{set(Phase::set_neighbors, *e.neighbor, "node2"),
                                 set(Phase::set_neighbors, *e.fdb, "node2"), set(Phase::set_routes, e.route, "node2")});
}

TEST_CASE("nothing is written when the kernel already matches", "[diff]") {
  CHECK(diff(want({kNode2, kNode3}), have({kNode2, kNode3})).empty());
  CHECK(diff({}, {}).empty());
}

TEST_CASE("a changed VTEP MAC rewrites the neighbor, adds the new FDB entry and removes the old one last", "[diff]") {
  Peer moved = kNode2;
  moved.vtep_mac = mac("0e:00:00:00:00:22");
  auto e = peer_entries(moved, kVtep, std::nullopt);
  auto old = peer_entries(kNode2, kVtep, std::nullopt);
  auto ops = diff(want({moved}), have({kNode2}));
  REQUIRE(ops == std::vector<Op>{set(Phase::set_neighbors, *e.neighbor, "node2"),
                                 set(Phase::set_neighbors, *e.fdb, "node2"),
                                 remove(Phase::remove_neighbors, *old.fdb)});
}

TEST_CASE("a changed public IP replaces the FDB entry in place and nothing else", "[diff]") {
  Peer moved = kNode2;
  moved.public_ip = ip("192.0.2.22");
  auto e = peer_entries(moved, kVtep, std::nullopt);
  REQUIRE(diff(want({moved}), have({kNode2})) == std::vector<Op>{set(Phase::set_neighbors, *e.fdb, "node2")});
}

TEST_CASE("a peer that left loses its route first and its neighbor and FDB entry last", "[diff]") {
  auto old = peer_entries(kNode3, kVtep, std::nullopt);
  auto ops = diff(want({kNode2}), have({kNode2, kNode3}));
  REQUIRE(ops == std::vector<Op>{remove(Phase::remove_routes, old.route),
                                 remove(Phase::remove_neighbors, *old.neighbor),
                                 remove(Phase::remove_neighbors, *old.fdb)});
}

TEST_CASE("stale entries found at start are removed while new peers are added in order", "[diff]") {
  ActualState actual = have({kNode3});
  actual.routes.push_back({prefix("10.244.9.0/24"), ip("10.244.9.0"), kVtep, true, 0, 3});  // made by hand
  auto ops = diff(want({kNode2}), actual);
  std::vector<Phase> phases;
  for (const auto& op : ops) phases.push_back(op.phase);
  CHECK(std::is_sorted(phases.begin(), phases.end()));
  CHECK(ops.size() == 7);  // node2: 3 sets; node3: 3 removals; the hand-made route
  CHECK(std::count_if(ops.begin(), ops.end(), [](const Op& o) { return o.write.action == WriteAction::remove; }) == 4);
  CHECK(ops.front() == remove(Phase::remove_routes, peer_entries(kNode3, kVtep, std::nullopt).route));
}

TEST_CASE("a route that differs in gateway, device, onlink or type is replaced", "[diff]") {
  auto e = peer_entries(kNode2, kVtep, std::nullopt);
  Route bad = e.route;
  SECTION("gateway") { bad.gateway = ip("10.244.2.1"); }
  SECTION("device") { bad.ifindex = kUnderlay; }
  SECTION("onlink") { bad.onlink = false; }
  SECTION("not unicast") { bad.unicast = false; }
  SECTION("multipath") { bad.multipath = true; }
  ActualState actual = have({kNode2});
  actual.routes = {bad};
  REQUIRE(diff(want({kNode2}), actual) == std::vector<Op>{set(Phase::set_routes, e.route, "node2")});
}

TEST_CASE("a route of another protocol that matches otherwise is left alone", "[diff]") {
  ActualState actual = have({kNode2});
  actual.routes[0].protocol = 3;  // made by `ip route add` (boot)
  CHECK(diff(want({kNode2}), actual).empty());
}

TEST_CASE("a neighbor entry that is not permanent is made permanent", "[diff]") {
  ActualState actual = have({kNode2});
  actual.neighbors[0].permanent = false;
  auto e = peer_entries(kNode2, kVtep, std::nullopt);
  REQUIRE(diff(want({kNode2}), actual) == std::vector<Op>{set(Phase::set_neighbors, *e.neighbor, "node2")});
}

TEST_CASE("the kernel's own ARP cache and learned FDB entries are left alone", "[diff]") {
  ActualState actual = have({kNode2});
  actual.neighbors.push_back({kVtep, ip("10.244.9.0"), Mac{}, false});              // an ARP attempt (FAILED)
  actual.fdb.push_back({kVtep, mac("0e:00:00:00:00:09"), ip("192.0.2.9"), false});  // learned
  CHECK(diff(want({kNode2}), actual).empty());
}

TEST_CASE("a learned FDB entry for a peer's MAC is made permanent", "[diff]") {
  ActualState actual = have({kNode2});
  actual.fdb[0].permanent = false;
  auto e = peer_entries(kNode2, kVtep, std::nullopt);
  REQUIRE(diff(want({kNode2}), actual) == std::vector<Op>{set(Phase::set_neighbors, *e.fdb, "node2")});
}

TEST_CASE("a stale route with another metric at a peer's destination goes, the peer's route stays", "[diff]") {
  ActualState actual = have({kNode2});
  Route other = actual.routes[0];
  other.priority = 100;
  actual.routes.push_back(other);
  REQUIRE(diff(want({kNode2}), actual) == std::vector<Op>{remove(Phase::remove_routes, other)});
}

TEST_CASE("an FDB MAC with several remotes is cleared before it is set", "[diff]") {
  auto e = peer_entries(kNode2, kVtep, std::nullopt);
  ActualState actual = have({kNode2});
  FdbEntry a{kVtep, *kNode2.vtep_mac, ip("192.0.2.8")};
  FdbEntry b{kVtep, *kNode2.vtep_mac, ip("192.0.2.9")};
  actual.fdb = {a, b};
  REQUIRE(diff(want({kNode2}), actual) == std::vector<Op>{remove(Phase::set_neighbors, a, "node2"),
                                                          remove(Phase::set_neighbors, b, "node2"),
                                                          set(Phase::set_neighbors, *e.fdb, "node2")});
  actual.fdb.push_back(*e.fdb);  // the wanted remote is there: only the extra ones go
  REQUIRE(diff(want({kNode2}), actual) ==
          std::vector<Op>{remove(Phase::remove_neighbors, a), remove(Phase::remove_neighbors, b)});
}

TEST_CASE("DirectRouting: a directly reachable peer gets only a plain route via its public IP", "[diff]") {
  DesiredState d;
  d.peers.push_back(peer_entries(kNode2, kVtep, kUnderlay));
  Route direct{prefix("10.244.2.0/24"), ip("192.0.2.2"), kUnderlay, false};
  CHECK_FALSE(d.peers[0].neighbor);
  CHECK_FALSE(d.peers[0].fdb);
  CHECK(d.peers[0].route == direct);
  REQUIRE(diff(d, {}) == std::vector<Op>{set(Phase::set_routes, direct, "node2")});

  SECTION("switching from VXLAN replaces the route, then drops the neighbor and FDB entry") {
    auto old = peer_entries(kNode2, kVtep, std::nullopt);
    REQUIRE(diff(d, have({kNode2})) == std::vector<Op>{set(Phase::set_routes, direct, "node2"),
                                                       remove(Phase::remove_neighbors, *old.neighbor),
                                                       remove(Phase::remove_neighbors, *old.fdb)});
  }
  SECTION("desired_state uses the hop found for the peer's public IP") {
    DesiredState via_map = desired_state({&kNode2, &kNode3}, kVtep, DirectHops{{ip("192.0.2.2"), kUnderlay}});
    CHECK(via_map.peers[0].route == direct);
    CHECK(via_map.peers[1] == peer_entries(kNode3, kVtep, std::nullopt));
  }
}

TEST_CASE("weft owns neighbor and FDB entries on its VTEP and routes inside the network there or with its protocol",
          "[diff]") {
  const Ipv4Prefix network = prefix("10.244.0.0/16");
  Route on_vtep{prefix("10.244.9.0/24"), ip("10.244.9.0"), kVtep, true, 0, 3};
  Route outside_on_vtep{prefix("203.0.113.0/24"), ip("10.244.9.0"), kVtep, true, 0, kWeftRouteProtocol};
  Route whole_space_on_vtep{prefix("0.0.0.0/0"), ip("10.244.9.0"), kVtep, true, 0, kWeftRouteProtocol};
  Route direct_ours{prefix("10.244.5.0/24"), ip("192.0.2.5"), kUnderlay, false, 0, kWeftRouteProtocol};
  Route foreign_inside{prefix("10.244.50.0/24"), ip("192.0.2.50"), kUnderlay, false, 0, 3};
  Route pods_bridge{prefix("10.244.1.0/24"), Ipv4Addr{}, 9, false, 0, 2};
  CHECK(owned_route(on_vtep, kVtep, network));
  CHECK(owned_route(direct_ours, kVtep, network));
  CHECK_FALSE(owned_route(outside_on_vtep, kVtep, network));
  CHECK_FALSE(owned_route(whole_space_on_vtep, kVtep, network));
  CHECK_FALSE(owned_route(foreign_inside, kVtep, network));
  CHECK_FALSE(owned_route(pods_bridge, kVtep, network));

  Neighbor elsewhere{kUnderlay, ip("192.0.2.9"), mac("0e:00:00:00:00:09"), false};
  Neighbor ours{kVtep, ip("10.244.9.0"), mac("0e:00:00:00:00:09"), true};
  FdbEntry fdb_elsewhere{kUnderlay, mac("0e:00:00:00:00:09"), Ipv4Addr{}};
  FdbEntry fdb_ours{kVtep, mac("0e:00:00:00:00:09"), ip("192.0.2.9")};
  auto a = owned_state({elsewhere, ours}, {fdb_elsewhere, fdb_ours},
                       {on_vtep, outside_on_vtep, whole_space_on_vtep, direct_ours, foreign_inside, pods_bridge}, kVtep,
                       network);
  CHECK(a.neighbors == std::vector<Neighbor>{ours});
  CHECK(a.fdb == std::vector<FdbEntry>{fdb_ours});
  CHECK(a.routes == std::vector<Route>{on_vtep, direct_ours});
}
