// weftctl's comparison of the kernel with weftd's desired peers, for the peers' IPv6 halves on
// weft-v6.<VNI>: the pure compare_peers_v6, then read_kernel against FakeNetlink.
#include <catch2/catch.hpp>

#include "backend/netlink/fake_netlink.hpp"
#include "backend/vxlan/state.hpp"
#include "cmd/weftctl/kernel_view.hpp"
#include "test/unit/cmd/weftctl/status_fixture.hpp"

namespace weft::ctl::test {
namespace {

constexpr int kVtep6 = 7;

// What weftd programs for every peer's IPv6 half (the backend's own layout).
ActualState6 programmed(const DaemonStatus& d, int ifindex) {
  ActualState6 a;
  for (const Peer& p : d.peers) {
    if (auto e = peer_entries_v6(p, ifindex)) {
      a.neighbors.push_back(*e->neighbor);
      a.fdb.push_back(*e->fdb);
      a.routes.push_back(e->route);
    }
  }
  return a;
}

KernelView compare(const DaemonStatus& d, const ActualState6& a, int ifindex = kVtep6) {
  KernelView view;
  compare_peers_v6(view, d, ifindex, a.neighbors, a.fdb, a.routes);
  return view;
}

EntryState::Kind kind(const EntryState& e) { return e.kind; }

}  // namespace

TEST_CASE("compare_peers_v6: a peer's IPv6 entries as weftd writes them are ok", "[weftctl]") {
  for (bool v6_underlay : {true, false}) {
    DaemonStatus d = parsed(status_dual(v6_underlay));
    KernelView view = compare(d, programmed(d, kVtep6));
    REQUIRE(view.v6);
    REQUIRE(view.v6->peers.size() == 1);  // node3 has no IPv6 half
    const PeerKernelState& s = view.v6->peers[0];
    CHECK(s.peer.name == "node2");
    CHECK(kind(s.route) == EntryState::Kind::ok);
    CHECK(kind(s.neighbor) == EntryState::Kind::ok);
    CHECK(kind(s.fdb) == EntryState::Kind::ok);
    CHECK(view.v6->foreign_routes.empty());
    CHECK(view.v6_of("node2") == &s);
    CHECK(view.v6_of("node3") == nullptr);
  }
}

TEST_CASE("compare_peers_v6: the FDB entry goes to the public IPv6 address, else to the IPv4 one", "[weftctl]") {
  DaemonStatus d = parsed(status_dual(false));
  ActualState6 a = programmed(d, kVtep6);
  REQUIRE(a.fdb.at(0).dst == IpAddr(*Ipv4Addr::parse("192.0.2.2")));
  a.fdb[0].dst = *Ipv6Addr::parse("2001:db8::2");  // as if over an IPv6 underlay
  KernelView view = compare(d, a);
  CHECK(kind(view.v6->peers[0].fdb) == EntryState::Kind::wrong);
  CHECK_THAT(view.v6->peers[0].fdb.detail, Catch::Contains("dst 2001:db8::2"));
}

TEST_CASE("compare_peers_v6: missing entries are missing", "[weftctl]") {
  DaemonStatus d = parsed(status_dual(true));
  ActualState6 a = programmed(d, kVtep6);
  SECTION("all") { a = {}; }
  SECTION("the neighbour on another device only") { a.neighbors[0].ifindex = kVtep6 + 1; }
  KernelView view = compare(d, a);
  const PeerKernelState& s = view.v6->peers.at(0);
  CHECK(kind(s.neighbor) == EntryState::Kind::missing);
  CHECK_FALSE(s.ok());
  CHECK_FALSE(view.v6->ok());
}

TEST_CASE("compare_peers_v6: entries with other values are wrong, with what the kernel has", "[weftctl]") {
  DaemonStatus d = parsed(status_dual(true));
  ActualState6 a = programmed(d, kVtep6);
  a.routes[0].gateway = *Ipv6Addr::parse("fd00:10:244:2::1");
  a.neighbors[0].mac = *Mac::parse("0e:00:00:00:06:99");
  a.fdb[0].permanent = false;
  KernelView view = compare(d, a);
  const PeerKernelState& s = view.v6->peers.at(0);
  CHECK(kind(s.route) == EntryState::Kind::wrong);
  CHECK_THAT(s.route.detail, Catch::Contains("fd00:10:244:2::1"));
  CHECK(kind(s.neighbor) == EntryState::Kind::wrong);
  CHECK_THAT(s.neighbor.detail, Catch::Contains("0e:00:00:00:06:99"));
  CHECK(kind(s.fdb) == EntryState::Kind::wrong);
  CHECK_THAT(s.fdb.detail, Catch::Contains("learned"));
}

TEST_CASE("compare_peers_v6: a route on weft-v6 in the IPv6 network that no peer wants is foreign", "[weftctl]") {
  DaemonStatus d = parsed(status_dual(true));
  ActualState6 a = programmed(d, kVtep6);
  Route6 stray{*Ipv6Prefix::parse("fd00:10:244:5::/64"), *Ipv6Addr::parse("fd00:10:244:5::"), kVtep6, true};
  Route6 outside{*Ipv6Prefix::parse("fd00:99::/64"), {}, kVtep6, false};
  outside.protocol = 3;
  a.routes.push_back(stray);
  a.routes.push_back(outside);
  KernelView view = compare(d, a);
  REQUIRE(view.v6->foreign_routes.size() == 1);
  CHECK(view.v6->foreign_routes[0].dst == stray.dst);
  CHECK(kind(view.v6->peers[0].route) == EntryState::Kind::ok);
}

TEST_CASE("compare_peers_v6: with no IPv6 VTEP every entry is missing and nothing is foreign", "[weftctl]") {
  DaemonStatus d = parsed(status_dual(true));
  KernelView view = compare(d, programmed(d, kVtep6), 0);
  const PeerKernelState& s = view.v6->peers.at(0);
  CHECK(kind(s.route) == EntryState::Kind::missing);
  CHECK(kind(s.neighbor) == EntryState::Kind::missing);
  CHECK(kind(s.fdb) == EntryState::Kind::missing);
  CHECK(view.v6->foreign_routes.empty());
}

TEST_CASE("read_kernel reads both families, and a v4-only weftd's view has no IPv6 part", "[weftctl]") {
  FakeNetlink nl;
  DaemonStatus d = parsed(status_dual(true));
  const int underlay = nl.add_underlay("eth0", *Ipv4Addr::parse("192.0.2.9"), 24);
  d.underlay.ifindex = underlay;
  auto vxlan = [&](const VtepStatus& v) {
    return nl.add_link({0, v.name, "vxlan", *Mac::parse("0e:00:00:00:00:01"), v.mtu_wanted, true,
                        VxlanAttrs{v.vni, v.port, v.local_ip, underlay, false, false}});
  };
  const int v4 = vxlan(*d.vtep);
  const int v6 = vxlan(*d.vtep6);
  for (const Peer& p : d.peers) {
    PeerEntries e = peer_entries(p, v4, std::nullopt);
    nl.state().neighbors.push_back(*e.neighbor);
    nl.state().fdb.push_back(*e.fdb);
    nl.state().routes.push_back(e.route);
  }
  ActualState6 a = programmed(d, v6);
  nl.state().neighbors6 = a.neighbors;
  nl.state().fdb.insert(nl.state().fdb.end(), a.fdb.begin(), a.fdb.end());
  nl.state().routes6 = a.routes;

  auto k = read_kernel(nl, d);
  REQUIRE(k);
  CHECK(k->ok());
  REQUIRE(k->v6);
  CHECK(k->v6->vtep->ifindex == v6);
  CHECK(k->v6->peers.size() == 1);

  nl.state().routes6.clear();
  k = read_kernel(nl, d);
  REQUIRE(k);
  CHECK(k->FamilyView<Ipv4Addr>::ok());
  CHECK_FALSE(k->ok());
  CHECK(kind(k->v6_of("node2")->route) == EntryState::Kind::missing);

  k = read_kernel(nl, parsed(status_v4()));
  REQUIRE(k);
  CHECK_FALSE(k->v6);
}

TEST_CASE("compare_peers_v6: the kernel's /128 route for the VTEP's own address is not foreign", "[weftctl]") {
  DaemonStatus d = parsed(status_dual(true));
  REQUIRE(d.lease);
  REQUIRE(d.lease->subnet_v6);
  ActualState6 a = programmed(d, kVtep6);
  const Ipv6Addr own = d.lease->subnet_v6->address();
  Route6 kernel{Ipv6Prefix::containing(own, 128), {}, kVtep6, false};
  kernel.protocol = 2;  // RTPROT_KERNEL, as `ip -6 addr add .../128` leaves it
  a.routes.push_back(kernel);
  CHECK(compare(d, a).v6->foreign_routes.empty());
  kernel.protocol = 3;  // the same route added by hand is foreign
  a.routes.back() = kernel;
  CHECK(compare(d, a).v6->foreign_routes.size() == 1);
}

}  // namespace weft::ctl::test

namespace weft::ctl::test {

TEST_CASE("read_kernel for an IPv6-only weftd reads the IPv6 family alone", "[weftctl]") {
  FakeNetlink nl;
  DaemonStatus d = parsed(status_v6_only());
  const int underlay = nl.add_underlay("eth0", *Ipv4Addr::parse("192.0.2.9"), 24);
  d.underlay.ifindex = underlay;
  const VtepStatus& v = *d.vtep6;
  const int v6 = nl.add_link({0, v.name, "vxlan", *Mac::parse("0e:00:00:00:00:01"), v.mtu_wanted, true,
                              VxlanAttrs{v.vni, v.port, v.local_ip, underlay, false, false}});
  ActualState6 a = programmed(d, v6);
  nl.state().neighbors6 = a.neighbors;
  nl.state().fdb = a.fdb;
  nl.state().routes6 = a.routes;

  auto k = read_kernel(nl, d);
  REQUIRE(k);
  CHECK_FALSE(k->ipv4);
  CHECK_FALSE(k->vtep);  // no weft.<VNI> asked for, and its absence is no fault
  CHECK(k->peers.empty());
  REQUIRE(k->v6);
  CHECK(k->v6->peers.size() == 2);
  CHECK(k->ok());

  nl.state().routes6.pop_back();
  k = read_kernel(nl, d);
  REQUIRE(k);
  CHECK_FALSE(k->ok());
}

}  // namespace weft::ctl::test
