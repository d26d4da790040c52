// The IPv6 overlay: desired state, diff and peer check with plain values, and VxlanBackend's
// weft-v6.<VNI> against the in-memory kernel, next to the IPv4 VTEP it must leave alone.
#include <catch2/catch.hpp>

#include "backend/netlink/fake_netlink.hpp"
#include "backend/vxlan/diff.hpp"
#include "backend/vxlan/peer_check.hpp"
#include "backend/vxlan/vxlan_backend.hpp"
#include "test/unit/backend/helpers.hpp"
#include "test/unit/backend/printers.hpp"

using namespace weft;
using namespace weft::test;

namespace {

constexpr int kVtep6 = 9;
const Ipv4Prefix kNetwork = prefix("10.244.0.0/16");
const Ipv6Prefix kNetwork6 = prefix6("fd10:244::/56");

Peer dual(const std::string& name, int n, bool public_v6 = true) {
  const std::string i = std::to_string(n);
  Peer p = peer(name, ("10.244." + i + ".0/24").c_str(), ("192.0.2." + i).c_str(), ("0e:00:00:00:00:0" + i).c_str());
  p.subnet_v6 = prefix6(("fd10:244:0:" + i + "::/64").c_str());
  p.vtep_mac_v6 = mac(("0e:00:00:00:06:0" + i).c_str());
  if (public_v6) p.public_ip_v6 = ip6(("fd0a::" + i).c_str());
  return p;
}

Lease own_lease() {
  Lease l = lease("10.244.1.0/24", "192.0.2.1", "0e:00:00:00:00:01");
  l.subnet_v6 = prefix6("fd10:244:0:1::/64");
  l.public_ip_v6 = ip6("fd0a::1");
  l.vtep_mac_v6 = mac("0e:00:00:00:06:01");
  return l;
}

DesiredState6 want6(const std::vector<Peer>& peers) {
  std::vector<const Peer*> ptrs;
  for (const auto& p : peers) ptrs.push_back(&p);
  return desired_state_v6(ptrs, kVtep6);
}

ActualState6 have6(const std::vector<Peer>& peers) {
  ActualState6 a;
  for (const auto& e : want6(peers).peers) {
    a.neighbors.push_back(*e.neighbor);
    a.fdb.push_back(*e.fdb);
    a.routes.push_back(e.route);
  }
  return a;
}

Op set(Phase phase, WriteObject o, const std::string& peer) { return {phase, {WriteAction::upsert, o}, peer}; }
Op remove(Phase phase, WriteObject o) { return {phase, {WriteAction::remove, o}, ""}; }

}  // namespace

TEST_CASE("an IPv6 peer's entries: NDP neighbor, FDB entry to its public IPv6 and an onlink route", "[diff][ipv6]") {
  auto e = peer_entries_v6(dual("node2", 2), kVtep6);
  REQUIRE(e);
  CHECK(e->neighbor == Neighbor6{kVtep6, ip6("fd10:244:0:2::"), mac("0e:00:00:00:06:02"), true});
  CHECK(e->fdb == FdbEntry{kVtep6, mac("0e:00:00:00:06:02"), ip6("fd0a::2")});
  CHECK(e->route == Route6{prefix6("fd10:244:0:2::/64"), ip6("fd10:244:0:2::"), kVtep6, true, 1024, 119});
}

TEST_CASE("an IPv6 peer without a public IPv6 is reached over its IPv4 public IP", "[diff][ipv6]") {
  auto e = peer_entries_v6(dual("node2", 2, false), kVtep6);
  REQUIRE(e);
  CHECK(e->fdb == FdbEntry{kVtep6, mac("0e:00:00:00:06:02"), ip("192.0.2.2")});
}

TEST_CASE("an IPv4-only peer has no IPv6 entries", "[diff][ipv6]") {
  CHECK_FALSE(peer_entries_v6(peer("node2", "10.244.2.0/24", "192.0.2.2", "0e:00:00:00:00:02"), kVtep6));
  Peer no_mac = dual("node3", 3);
  no_mac.vtep_mac_v6.reset();
  CHECK(want6({no_mac}).peers.empty());
}

TEST_CASE("IPv6 diff: a new peer gets neighbor and FDB entry before its route, a matching kernel nothing",
          "[diff][ipv6]") {
  const Peer p2 = dual("node2", 2);
  auto e = *peer_entries_v6(p2, kVtep6);
  CHECK(diff_v6(want6({p2}), {}) == std::vector<Op>{set(Phase::set_neighbors, *e.neighbor, "node2"),
                                                    set(Phase::set_neighbors, *e.fdb, "node2"),
                                                    set(Phase::set_routes, e.route, "node2")});
  CHECK(diff_v6(want6({p2, dual("node3", 3)}), have6({p2, dual("node3", 3)})).empty());
}

TEST_CASE("IPv6 diff: a departed peer's route goes first, its neighbor and FDB entry last", "[diff][ipv6]") {
  const Peer p2 = dual("node2", 2);
  const Peer p3 = dual("node3", 3);
  auto e3 = *peer_entries_v6(p3, kVtep6);
  CHECK(diff_v6(want6({p2}), have6({p2, p3})) == std::vector<Op>{remove(Phase::remove_routes, e3.route),
                                                                 remove(Phase::remove_neighbors, *e3.neighbor),
                                                                 remove(Phase::remove_neighbors, *e3.fdb)});
}

TEST_CASE("IPv6 diff: a changed public IPv6 or MAC is rewritten in place, a route without metric 1024 replaced",
          "[diff][ipv6]") {
  Peer p2 = dual("node2", 2);
  ActualState6 kernel = have6({p2});
  p2.public_ip_v6 = ip6("fd0a::22");
  auto e = *peer_entries_v6(p2, kVtep6);
  CHECK(diff_v6(want6({p2}), kernel) == std::vector<Op>{set(Phase::set_neighbors, *e.fdb, "node2")});

  kernel.routes[0].priority = 0;  // a hand-made route at another metric is a stale one
  auto ops = diff_v6(want6({dual("node2", 2)}), kernel);
  CHECK(std::count_if(ops.begin(), ops.end(), [](const Op& op) { return op.phase == Phase::remove_routes; }) == 1);
  CHECK(std::count_if(ops.begin(), ops.end(), [](const Op& op) { return op.phase == Phase::set_routes; }) == 1);
}

TEST_CASE("IPv6 ownership: routes inside the IPv6 network on the VTEP or by weft, nothing else", "[diff][ipv6]") {
  const Route6 on_vtep{prefix6("fd10:244:0:5::/64"), {}, kVtep6, false, 1024, 3};
  const Route6 by_weft{prefix6("fd10:244:0:6::/64"), {}, 2, false, 1024, kWeftRouteProtocol};
  const Route6 link_local{prefix6("fe80::/64"), {}, kVtep6, false, 256, 2};
  const Route6 outside{prefix6("fd99::/64"), {}, 2, false, 1024, kWeftRouteProtocol};
  CHECK(owned_route(on_vtep, kVtep6, kNetwork6));
  CHECK(owned_route(by_weft, kVtep6, kNetwork6));
  CHECK_FALSE(owned_route(link_local, kVtep6, kNetwork6));
  CHECK_FALSE(owned_route(outside, kVtep6, kNetwork6));
  auto a = owned_state<Ipv6Addr>({}, {}, {on_vtep, by_weft, link_local, outside}, kVtep6, kNetwork6);
  CHECK(a.routes == std::vector<Route6>{on_vtep, by_weft});
}

TEST_CASE("check_peers_v6 skips bad IPv6 data, clashing IPv6 subnets and MACs, and ignores IPv4-only peers",
          "[peer_check][ipv6]") {
  Peer good = dual("good", 2);
  Peer outside = dual("outside", 3);
  outside.subnet_v6 = prefix6("fd99:0:0:3::/64");
  Peer mine = dual("mine", 4);
  mine.subnet_v6 = prefix6("fd10:244:0:1::/64");
  Peer multicast = dual("multicast", 5);
  multicast.public_ip_v6 = ip6("ff02::1");
  Peer twin_a = dual("twin-a", 6);
  Peer twin_b = dual("twin-b", 7);
  twin_b.subnet_v6 = twin_a.subnet_v6;
  Peer v4only = peer("v4only", "10.244.8.0/24", "192.0.2.8", "0e:00:00:00:00:08");
  std::vector<const Peer*> in{&good, &outside, &mine, &multicast, &twin_a, &twin_b, &v4only};
  auto c = check_peers_v6(in, own_lease(), kNetwork6);
  CHECK(c.accepted == std::vector<const Peer*>{&good});
  std::vector<std::string> skipped;
  for (const auto& s : c.skipped) {
    CHECK(s.ipv6_half);  // the IPv4 half of these peers is still programmed
    skipped.push_back(s.name + ": " + s.reason.substr(s.reason.find(": ") + 2));
    CHECK(s.reason.rfind("IPv6 half refused, IPv4 routed: ", 0) == 0);
  }
  CHECK(skipped == std::vector<std::string>{
                       "mine: IPv6 subnet fd10:244:0:1::/64 overlaps this node's IPv6 subnet fd10:244:0:1::/64",
                       "multicast: public IPv6 ff02::1 is multicast",
                       "outside: IPv6 subnet fd99:0:0:3::/64 outside IPv6 network fd10:244::/56",
                       "twin-a: IPv6 subnet fd10:244:0:6::/64 also claimed by node twin-b",
                       "twin-b: IPv6 subnet fd10:244:0:6::/64 also claimed by node twin-a"});
}

namespace {

struct DualNode {
  FakeNetlink nl;
  int underlay = nl.add_underlay("eth0", ip("192.0.2.1"), 24);
  VxlanBackend backend{nl, kNetwork, kNetwork6, false};
  Vtep vtep;
  Vtep vtep6;

  void start() {
    VtepSpec s;
    s.local_ip = ip("192.0.2.1");
    s.underlay_ifindex = underlay;
    s.preferred_mac = mac("0e:00:00:00:00:01");
    auto v = backend.ensure_device(s);
    REQUIRE(v);
    vtep = *v;
    s.local_ip6 = ip6("fd0a::1");
    s.preferred_mac = mac("0e:00:00:00:06:01");
    auto v6 = backend.ensure_device_v6(s);
    REQUIRE(v6);
    vtep6 = *v6;
    REQUIRE(backend.set_lease(own_lease()));
  }
  ReconcileReport reconcile(const PeerSet& peers) {
    auto r = backend.reconcile(peers);
    for (const auto& e : r.errors) UNSCOPED_INFO(e);
    return r;
  }
};

}  // namespace

TEST_CASE("with an IPv6 network, weft-v6.<VNI> is made with the IPv6 local address, MTU - 70, and the /128",
          "[backend][ipv6]") {
  DualNode n;
  n.start();
  auto link = n.nl.get_link("weft-v6.1").value();
  REQUIRE(link);
  CHECK(link->vxlan == VxlanAttrs{1, 8472, ip6("fd0a::1"), n.underlay, false, false});
  CHECK(link->mtu == 1430);
  CHECK(link->mac == mac("0e:00:00:00:06:01"));
  CHECK(n.nl.state().addresses6 == std::vector<Address6>{{n.vtep6.ifindex, ip6("fd10:244:0:1::"), 128}});
  CHECK(n.nl.get_link("weft.1").value()->vxlan->local == ip("192.0.2.1"));
}

TEST_CASE("without an IPv6 network there is no IPv6 VTEP, and ensure_device_v6 says why", "[backend][ipv6]") {
  FakeNetlink nl;
  VxlanBackend backend{nl, kNetwork, false};
  VtepSpec s;
  s.local_ip6 = ip6("fd0a::1");
  auto v6 = backend.ensure_device_v6(s);
  REQUIRE_FALSE(v6);
  CHECK_THAT(v6.error(), Catch::Contains("no IPv6 network"));
  CHECK_FALSE(nl.get_link("weft-v6.1").value());
}

TEST_CASE("an IPv6 VTEP over the IPv4 underlay with the IPv4 VTEP's VNI and port is refused", "[backend][ipv6]") {
  FakeNetlink nl;
  int underlay = nl.add_underlay("eth0", ip("192.0.2.1"), 24);
  VxlanBackend backend{nl, kNetwork, kNetwork6, false};
  VtepSpec s;
  s.local_ip = ip("192.0.2.1");
  s.underlay_ifindex = underlay;
  REQUIRE(backend.ensure_device(s));
  auto same = backend.ensure_device_v6(s);
  REQUIRE_FALSE(same);
  CHECK_THAT(same.error(), Catch::Contains("another VNI or port"));
  s.vni = 2;
  auto v6 = backend.ensure_device_v6(s);
  REQUIRE(v6);
  CHECK(v6->name == "weft-v6.2");
  CHECK(nl.get_link("weft-v6.2").value()->vxlan->local == ip("192.0.2.1"));
}

TEST_CASE("reconcile programs IPv4 and IPv6 peers on their own VTEPs, and a second one writes nothing",
          "[backend][ipv6]") {
  DualNode n;
  n.start();
  Peer v4only = peer("node4", "10.244.4.0/24", "192.0.2.4", "0e:00:00:00:00:04");
  auto peers = peer_set({dual("node2", 2), dual("node3", 3, false), v4only});
  auto r = n.reconcile(peers);
  REQUIRE(r.ok());
  CHECK(r.peers_programmed == 3);
  CHECK(r.peers_programmed_v6 == 2);
  const auto& k = n.nl.state();
  CHECK(same_set(k.neighbors6, {Neighbor6{n.vtep6.ifindex, ip6("fd10:244:0:2::"), mac("0e:00:00:00:06:02"), true},
                                Neighbor6{n.vtep6.ifindex, ip6("fd10:244:0:3::"), mac("0e:00:00:00:06:03"), true}}));
  CHECK(
      same_set(k.routes6, {Route6{prefix6("fd10:244:0:2::/64"), ip6("fd10:244:0:2::"), n.vtep6.ifindex, true, 1024},
                           Route6{prefix6("fd10:244:0:3::/64"), ip6("fd10:244:0:3::"), n.vtep6.ifindex, true, 1024}}));
  std::vector<FdbEntry> fdb6;
  std::copy_if(k.fdb.begin(), k.fdb.end(), std::back_inserter(fdb6),
               [&](const FdbEntry& f) { return f.ifindex == n.vtep6.ifindex; });
  CHECK(same_set(fdb6, {FdbEntry{n.vtep6.ifindex, mac("0e:00:00:00:06:02"), ip6("fd0a::2")},
                        FdbEntry{n.vtep6.ifindex, mac("0e:00:00:00:06:03"), ip("192.0.2.3")}}));
  CHECK(k.neighbors.size() == 3);  // the IPv4 side, unchanged
  CHECK(k.routes.size() == 3);

  auto again = n.reconcile(peers);
  CHECK(again.ok());
  CHECK(again.writes == 0);
}

TEST_CASE("reconcile restores hand-deleted IPv6 entries and removes stale ones, never touching IPv4 entries",
          "[backend][ipv6]") {
  DualNode n;
  n.start();
  auto peers = peer_set({dual("node2", 2), dual("node3", 3)});
  REQUIRE(n.reconcile(peers).ok());
  auto& k = n.nl.state();
  const auto v4_before = std::make_tuple(k.neighbors, k.routes);
  k.neighbors6.erase(k.neighbors6.begin());
  k.routes6.pop_back();
  std::erase_if(k.fdb,
                [&](const FdbEntry& f) { return f.ifindex == n.vtep6.ifindex && f.mac == *dual("x", 2).vtep_mac_v6; });
  k.routes6.push_back({prefix6("fd10:244:0:9::/64"), ip6("fd10:244:0:9::"), n.vtep6.ifindex, true, 1024});
  k.neighbors6.push_back({n.vtep6.ifindex, ip6("fd10:244:0:9::"), mac("0e:00:00:00:06:09"), true});
  const Route6 own_prefix_route{prefix6("fd10:244:0:1::/128"), {}, n.vtep6.ifindex, false, 256, 2};  // the kernel's
  k.routes6.push_back(own_prefix_route);
  auto r = n.reconcile(peers);
  REQUIRE(r.ok());
  CHECK(r.entries_set == 3);
  CHECK(r.entries_removed == 2);
  CHECK(k.neighbors6.size() == 2);
  CHECK(k.routes6.size() == 3);
  CHECK(std::count(k.routes6.begin(), k.routes6.end(), own_prefix_route) == 1);
  CHECK(std::make_tuple(k.neighbors, k.routes) == v4_before);
  CHECK(n.reconcile(peers).writes == 0);
}

TEST_CASE("set_lease with an IPv6 network needs the lease's IPv6 subnet inside it", "[backend][ipv6]") {
  DualNode n;
  n.start();
  Lease l = own_lease();
  l.subnet_v6 = prefix6("fd99::/64");
  auto st = n.backend.set_lease(l);
  REQUIRE_FALSE(st);
  CHECK_THAT(st.error(), Catch::Contains("not inside IPv6 network fd10:244::/56"));
  l.subnet_v6.reset();
  CHECK_FALSE(n.backend.set_lease(l));
}

TEST_CASE("the monitor passes on IPv6 changes on weft-v6.<VNI> and inside the IPv6 network, nothing else",
          "[backend][ipv6]") {
  DualNode n;
  n.start();
  std::vector<KernelChange> posted;
  REQUIRE(n.backend.watch([&](const KernelChange& c) { posted.push_back(c); }));
  using K = KernelEvent::Kind;
  const int vtep6 = n.vtep6.ifindex;
  n.nl.emit(deleted6(K::route, vtep6, prefix6("fd10:244:0:2::/64")));                           // deleted by hand
  n.nl.emit(deleted6(K::route, n.underlay, prefix6("fd10:244:0:5::/64"), kWeftRouteProtocol));  // weft's elsewhere
  n.nl.emit(deleted6(K::neighbor, vtep6));
  n.nl.emit(deleted6(K::address, vtep6));
  n.nl.emit(KernelEvent{K::fdb, true, vtep6, std::nullopt, 0, false, "x"});
  n.nl.emit(KernelEvent{K::link, true, vtep6, std::nullopt, 0, false, "x"});
  CHECK(posted.size() == 6);

  posted.clear();
  n.nl.emit(deleted6(K::route, vtep6, prefix6("fd99::/64")));                // outside the IPv6 network
  n.nl.emit(deleted6(K::route, n.underlay, prefix6("fd10:244:0:50::/64")));  // someone else's
  n.nl.emit(deleted6(K::address, n.vtep.ifindex));                           // weft.1's link-local address
  n.nl.emit(deleted6(K::neighbor, n.underlay));
  n.nl.emit(KernelEvent{K::neighbor, true, vtep6, std::nullopt, 0, false, "x"});  // ARP on the IPv6 VTEP
  CHECK(posted.empty());
}

TEST_CASE("without an IPv6 network, IPv6 changes never wake the backend", "[backend][ipv6]") {
  FakeNetlink nl;
  int underlay = nl.add_underlay("eth0", ip("192.0.2.1"), 24);
  VxlanBackend backend{nl, kNetwork, false};
  VtepSpec s;
  s.local_ip = ip("192.0.2.1");
  s.underlay_ifindex = underlay;
  auto v = backend.ensure_device(s);
  REQUIRE(v);
  KernelEvent address{KernelEvent::Kind::address, false, v->ifindex, std::nullopt, 0, false, "x"};
  address.ipv6 = true;  // the kernel's fe80:: on weft.1
  CHECK_FALSE(backend.relevant(address));
  KernelEvent route{KernelEvent::Kind::route, true, v->ifindex, std::nullopt, kWeftRouteProtocol, false, "x"};
  route.ipv6 = true;
  route.dst6 = prefix6("fd10:244:0:2::/64");
  CHECK_FALSE(backend.relevant(route));
}
