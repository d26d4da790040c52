// VxlanBackend against the in-memory kernel.
#include "backend/vxlan/vxlan_backend.hpp"

#include <catch2/catch.hpp>

#include "backend/netlink/fake_netlink.hpp"
#include "test/unit/backend/helpers.hpp"
#include "test/unit/backend/printers.hpp"

using namespace weft;
using namespace weft::test;

namespace {

const Ipv4Prefix kNetwork = prefix("10.244.0.0/16");
const Peer kNode2 = peer("node2", "10.244.2.0/24", "192.0.2.2", "0e:00:00:00:00:02");
const Peer kNode3 = peer("node3", "10.244.3.0/24", "192.0.2.3", "0e:00:00:00:00:03");

struct Node {
  FakeNetlink nl;
  int underlay = nl.add_underlay("eth0", ip("192.0.2.1"), 24);
  VxlanBackend backend{nl, kNetwork, false};
  Vtep vtep;

  VtepSpec spec() const {
    VtepSpec s;
    s.local_ip = ip("192.0.2.1");
    s.underlay_ifindex = underlay;
    s.preferred_mac = mac("0e:00:00:00:00:01");
    return s;
  }
  // ensure_device + set_lease, as the agent does at start.
  void start() {
    auto v = backend.ensure_device(spec());
    REQUIRE(v);
    vtep = *v;
    REQUIRE(backend.set_lease(lease("10.244.1.0/24", "192.0.2.1", "0e:00:00:00:00:01")));
  }
  ReconcileReport reconcile(const PeerSet& peers) {
    auto r = backend.reconcile(peers);
    for (const auto& e : r.errors) UNSCOPED_INFO(e);
    return r;
  }
  std::vector<Route> routes_on_vtep() const {
    std::vector<Route> out;
    for (const auto& r : const_cast<FakeNetlink&>(nl).state().routes) {
      if (r.ifindex == vtep.ifindex) out.push_back(r);
    }
    return out;
  }
};

}  // namespace

TEST_CASE("ensure_device creates weft.<VNI> up, learning off, MTU underlay - 50, with the preferred MAC", "[backend]") {
  Node n;
  n.start();
  auto link = n.nl.get_link("weft.1").value();
  REQUIRE(link);
  CHECK(link->kind == "vxlan");
  CHECK(link->up);
  CHECK(link->mtu == 1450);
  CHECK(link->mac == mac("0e:00:00:00:00:01"));
  CHECK(link->vxlan == VxlanAttrs{1, 8472, ip("192.0.2.1"), n.underlay, false, false});
  CHECK(n.vtep == Vtep{"weft.1", link->ifindex, link->mac, 1450});
  CHECK(n.nl.state().addresses.back() == Address{link->ifindex, ip("10.244.1.0"), 32});
}

TEST_CASE("ensure_device adopts a matching device, keeps its MAC and fixes its MTU in place", "[backend]") {
  Node n;
  Link existing{0,
                "weft.1",
                "vxlan",
                mac("0e:aa:aa:aa:aa:aa"),
                1500,
                true,
                VxlanAttrs{1, 8472, ip("192.0.2.1"), n.underlay, false, false}};
  int ifindex = n.nl.add_link(existing);
  auto v = n.backend.ensure_device(n.spec());
  REQUIRE(v);
  CHECK(v->ifindex == ifindex);  // same device
  CHECK(v->mac == mac("0e:aa:aa:aa:aa:aa"));
  CHECK(n.nl.state().links.at(ifindex).mtu == 1450);
  CHECK(n.nl.write_count() == 1);  // the MTU fix only
  CHECK(n.backend.ensure_device(n.spec()));
  CHECK(n.nl.write_count() == 1);  // nothing left to fix
}

TEST_CASE("ensure_device recreates a device that does not match, keeping its MAC", "[backend]") {
  Node n;
  Link existing{0,
                "weft.1",
                "vxlan",
                mac("0e:aa:aa:aa:aa:aa"),
                1450,
                true,
                VxlanAttrs{1, 4789, ip("192.0.2.1"), n.underlay, false, false}};
  SECTION("another port") {}
  SECTION("not vxlan at all") {
    existing.kind = "veth";
    existing.vxlan.reset();
  }
  int old_ifindex = n.nl.add_link(existing);
  auto v = n.backend.ensure_device(n.spec());
  REQUIRE(v);
  CHECK(v->ifindex != old_ifindex);
  CHECK(v->mac == mac("0e:aa:aa:aa:aa:aa"));
  CHECK(n.nl.state().links.at(v->ifindex).vxlan->port == 8472);
  CHECK(n.nl.state().links.count(old_ifindex) == 0);
}

TEST_CASE("set_lease puts the subnet address as /32 on the VTEP and removes other addresses", "[backend]") {
  Node n;
  n.start();
  n.nl.state().addresses.push_back({n.vtep.ifindex, ip("10.244.77.0"), 16});
  REQUIRE(n.backend.set_lease(lease("10.244.1.0/24", "192.0.2.1", "0e:00:00:00:00:01")));
  std::vector<Address> on_vtep = n.nl.dump_addresses(n.vtep.ifindex).value();
  CHECK(on_vtep == std::vector<Address>{{n.vtep.ifindex, ip("10.244.1.0"), 32}});
  CHECK_FALSE(n.backend.set_lease(lease("10.9.1.0/24", "192.0.2.1", "0e:00:00:00:00:01")));
}

TEST_CASE("reconcile programs each peer, and a second reconcile with the same peers writes nothing", "[backend]") {
  Node n;
  n.start();
  auto first = n.reconcile(peer_set({kNode2, kNode3}));
  CHECK(first.ok());
  CHECK(first.entries_set == 6);
  CHECK(first.peers_programmed == 2);
  CHECK(n.nl.state().neighbors.size() == 2);
  CHECK(n.nl.state().fdb.size() == 2);
  CHECK(n.routes_on_vtep().size() == 2);

  const auto before = n.nl.write_count();
  auto second = n.reconcile(peer_set({kNode2, kNode3}));
  CHECK(second.ok());
  CHECK(second.writes == 0);
  CHECK(n.nl.write_count() == before);
}

TEST_CASE("entries of a peer no longer in the input are removed", "[backend]") {
  Node n;
  n.start();
  REQUIRE(n.reconcile(peer_set({kNode2, kNode3})).ok());
  auto r = n.reconcile(peer_set({kNode2}));
  CHECK(r.ok());
  CHECK(r.entries_removed == 3);
  CHECK(n.nl.state().neighbors.size() == 1);
  CHECK(n.nl.state().fdb == std::vector<FdbEntry>{{n.vtep.ifindex, *kNode2.vtep_mac, *kNode2.public_ip}});
  CHECK(n.routes_on_vtep().size() == 1);
}

TEST_CASE("stale entries are removed at start, routes outside the network or on other devices stay", "[backend]") {
  Node n;
  n.start();
  auto& k = n.nl.state();
  const Route stale{prefix("10.244.9.0/24"), ip("10.244.9.0"), n.vtep.ifindex, true, 0, 3};
  const Route outside{prefix("203.0.113.0/24"), ip("192.0.2.254"), n.underlay, false, 0, 3};
  const Route foreign{prefix("10.244.50.0/24"), ip("192.0.2.50"), n.underlay, false, 0, 3};
  const Route outside_on_vtep{prefix("198.51.100.0/24"), ip("10.244.9.0"), n.vtep.ifindex, true, 0, 3};
  k.routes = {stale, outside, foreign, outside_on_vtep};
  k.neighbors.push_back({n.vtep.ifindex, ip("10.244.9.0"), mac("0e:00:00:00:00:09"), true});
  k.fdb.push_back({n.vtep.ifindex, mac("0e:00:00:00:00:09"), ip("192.0.2.9")});
  auto r = n.reconcile(peer_set({kNode2}));
  CHECK(r.ok());
  CHECK(r.entries_removed == 3);
  CHECK(std::count(k.routes.begin(), k.routes.end(), stale) == 0);
  CHECK(std::count(k.routes.begin(), k.routes.end(), outside) == 1);
  CHECK(std::count(k.routes.begin(), k.routes.end(), foreign) == 1);
  CHECK(std::count(k.routes.begin(), k.routes.end(), outside_on_vtep) == 1);
  CHECK(k.neighbors.size() == 1);
  CHECK(k.fdb.size() == 1);
}

TEST_CASE("DirectRouting: a peer on the same segment gets a plain route, one behind a gateway gets VXLAN",
          "[backend]") {
  FakeNetlink nl;
  int eth0 = nl.add_underlay("eth0", ip("192.0.2.1"), 24);
  nl.state().routes.push_back({prefix("0.0.0.0/0"), ip("192.0.2.254"), eth0, false, 0, 3});
  VxlanBackend backend(nl, kNetwork, true);
  VtepSpec s;
  s.local_ip = ip("192.0.2.1");
  s.underlay_ifindex = eth0;
  auto vtep = backend.ensure_device(s);
  REQUIRE(vtep);
  REQUIRE(backend.set_lease(lease("10.244.1.0/24", "192.0.2.1", "0e:00:00:00:00:01")));
  Peer far = peer("far", "10.244.4.0/24", "198.51.100.4", "0e:00:00:00:00:04");
  auto r = backend.reconcile(peer_set({kNode2, far}));
  CHECK(r.ok());
  auto& routes = nl.state().routes;
  CHECK(std::count(routes.begin(), routes.end(), Route{*kNode2.subnet, *kNode2.public_ip, eth0, false}) == 1);
  CHECK(std::count(routes.begin(), routes.end(), Route{*far.subnet, far.subnet->address(), vtep->ifindex, true}) == 1);
  CHECK(nl.state().neighbors.size() == 1);  // only the VXLAN peer's
  CHECK(nl.state().fdb.size() == 1);
  CHECK(backend.reconcile(peer_set({kNode2, far})).writes == 0);
}

TEST_CASE("a deleted VTEP is recreated with the same MAC and every peer is replayed", "[backend]") {
  Node n;
  n.start();
  REQUIRE(n.reconcile(peer_set({kNode2, kNode3})).ok());
  REQUIRE(n.nl.delete_link(n.vtep.ifindex));  // by hand
  auto r = n.reconcile(peer_set({kNode2, kNode3}));
  CHECK(r.ok());
  CHECK(r.device_recreated);
  auto link = n.nl.get_link("weft.1").value();
  REQUIRE(link);
  CHECK(link->mac == n.vtep.mac);
  CHECK(n.nl.dump_addresses(link->ifindex)->size() == 1);
  CHECK(n.nl.dump_neighbors(link->ifindex)->size() == 2);
  CHECK(n.nl.dump_fdb(link->ifindex)->size() == 2);
  CHECK(n.backend.vtep()->ifindex == link->ifindex);
}

TEST_CASE("a failed FDB write holds back that peer's route, the others are programmed and the next reconcile finishes",
          "[backend]") {
  Node n;
  n.start();
  n.nl.fail_writes_containing("fdb 0e:00:00:00:00:03", "No buffer space available");
  auto r = n.reconcile(peer_set({kNode2, kNode3}));
  CHECK_FALSE(r.ok());
  REQUIRE(r.errors.size() == 2);
  CHECK_THAT(r.errors[0], Catch::Contains("fdb 0e:00:00:00:00:03") && Catch::Contains("peer node3"));
  CHECK_THAT(r.errors[1], Catch::Contains("route 10.244.3.0/24") && Catch::Contains("held back"));
  CHECK(n.routes_on_vtep().size() == 1);

  FakeNetlink fresh;  // the failure is gone: a new backend on the same kernel state
  fresh.state() = n.nl.state();
  VxlanBackend again(fresh, kNetwork, false);
  REQUIRE(again.ensure_device(n.spec()));
  REQUIRE(again.set_lease(lease("10.244.1.0/24", "192.0.2.1", "0e:00:00:00:00:01")));
  auto retry = again.reconcile(peer_set({kNode2, kNode3}));
  CHECK(retry.ok());
  CHECK(retry.entries_set == 2);  // node3's FDB entry and route
}

TEST_CASE("bad peers are reported and never programmed", "[backend]") {
  Node n;
  n.start();
  Peer outside = peer("node7", "10.9.0.0/24", "192.0.2.7", "0e:00:00:00:00:07");
  auto r = n.reconcile(peer_set({kNode2, outside}));
  CHECK(r.ok());
  REQUIRE(r.skipped == std::vector<SkippedPeer>{{"node7", "subnet 10.9.0.0/24 outside network 10.244.0.0/16"}});
  for (const auto& route : n.nl.state().routes) CHECK(kNetwork.contains(route.dst));
  CHECK(n.routes_on_vtep().size() == 1);
}

TEST_CASE("reconcile before ensure_device and set_lease writes nothing and says why", "[backend]") {
  FakeNetlink nl;
  VxlanBackend backend(nl, kNetwork, false);
  auto r = backend.reconcile(peer_set({kNode2}));
  CHECK_FALSE(r.ok());
  CHECK(nl.write_count() == 0);
}

TEST_CASE("the monitor passes on changes to what weft owns and nothing else", "[backend]") {
  Node n;
  n.start();
  std::vector<KernelChange> posted;
  REQUIRE(n.backend.watch([&](const KernelChange& c) { posted.push_back(c); }));
  using K = KernelEvent::Kind;
  const int vtep = n.vtep.ifindex;
  auto event = [](K kind, int ifindex, std::optional<Ipv4Prefix> dst = std::nullopt, std::uint8_t proto = 3,
                  bool own = false) { return KernelEvent{kind, true, ifindex, dst, proto, own, "x"}; };

  n.nl.emit(event(K::route, vtep, prefix("10.244.2.0/24")));                            // ours: deleted by hand
  n.nl.emit(event(K::link, vtep));                                                      // the VTEP itself
  n.nl.emit(event(K::fdb, vtep));                                                       // an FDB entry on it
  n.nl.emit(event(K::route, n.underlay, prefix("10.244.5.0/24"), kWeftRouteProtocol));  // a DirectRouting route
  n.nl.emit(KernelEvent{});                                                             // overflow
  CHECK(posted.size() == 5);

  posted.clear();
  n.nl.emit(event(K::route, vtep, prefix("10.244.2.0/24"), kWeftRouteProtocol, true));  // our own write
  n.nl.emit(event(K::route, vtep, prefix("203.0.113.0/24")));                           // outside the network
  n.nl.emit(event(K::route, n.underlay, prefix("10.244.50.0/24")));                     // someone else's
  n.nl.emit(event(K::neighbor, n.underlay));                                            // ARP on the underlay
  n.nl.emit(event(K::link, n.underlay));
  CHECK(posted.empty());

  n.backend.unwatch();
  n.nl.emit(KernelEvent{});
  CHECK(posted.empty());
}
