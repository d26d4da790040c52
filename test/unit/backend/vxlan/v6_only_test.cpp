// An IPv6-only cluster ("EnableIPv4": false): VxlanBackend without an IPv4 network owns
// weft-v6.<VNI> alone, judges every peer by its IPv6 half over the IPv6 underlay, and never
// reads or writes anything IPv4 (no weft.<VNI>, no IPv4 neighbors, FDB remotes or routes).
#include <catch2/catch.hpp>

#include "backend/netlink/fake_netlink.hpp"
#include "backend/vxlan/peer_check.hpp"
#include "backend/vxlan/vxlan_backend.hpp"
#include "test/unit/backend/helpers.hpp"
#include "test/unit/backend/printers.hpp"

using namespace weft;
using namespace weft::test;

namespace {

constexpr std::uint32_t kVni = 7;  // net-conf.json's Backend.VNI
const Ipv6Prefix kNetwork6 = prefix6("fd10:244::/56");

// A peer of an IPv6-only cluster: no IPv4 half at all.
Peer v6peer(const std::string& name, int n, bool public_v6 = true) {
  const std::string i = std::to_string(n);
  Peer p;
  p.name = name;
  p.subnet_v6 = prefix6(("fd10:244:0:" + i + "::/64").c_str());
  p.vtep_mac_v6 = mac(("0e:00:00:00:06:0" + i).c_str());
  if (public_v6) p.public_ip_v6 = ip6(("fd0a::" + i).c_str());
  return p;
}

Lease own_lease() {
  Lease l;
  l.subnet_v6 = prefix6("fd10:244:0:1::/64");
  l.public_ip_v6 = ip6("fd0a::1");
  l.vtep_mac_v6 = mac("0e:00:00:00:06:01");
  return l;
}

std::vector<std::string> names(const PeerCheck& c) {
  std::vector<std::string> out;
  for (const Peer* p : c.accepted) out.push_back(p->name);
  return out;
}

// The underlay has no IPv4 address: an IPv6-only node may have none.
struct V6OnlyNode {
  FakeNetlink nl;
  int underlay = nl.add_link(Link{0, "eth0", "veth", mac("0e:00:00:00:aa:01"), 1500, true, std::nullopt});
  VxlanBackend backend{nl, std::nullopt, kNetwork6, false};
  Vtep vtep6;

  VtepSpec spec() const {
    VtepSpec s;
    s.vni = kVni;
    s.local_ip6 = ip6("fd0a::1");
    s.underlay_ifindex = underlay;
    s.preferred_mac = mac("0e:00:00:00:06:01");
    return s;
  }
  // As the agent starts an IPv6-only node: ensure_device_v6 and set_lease, no ensure_device.
  void start() {
    auto v6 = backend.ensure_device_v6(spec());
    REQUIRE(v6);
    vtep6 = *v6;
    REQUIRE(backend.set_lease(own_lease()));
  }
  ReconcileReport reconcile(const PeerSet& peers) {
    auto r = backend.reconcile(peers);
    for (const auto& e : r.errors) UNSCOPED_INFO(e);
    return r;
  }
  // Nothing IPv4 in the fake kernel: no IPv4 address, neighbor, IPv4 FDB remote or route, no weft.<VNI>.
  void check_nothing_ipv4() {
    const auto& k = nl.state();
    CHECK(k.addresses.empty());
    CHECK(k.neighbors.empty());
    CHECK(k.routes.empty());
    CHECK(std::none_of(k.fdb.begin(), k.fdb.end(), [](const FdbEntry& f) { return !f.dst.is_v6(); }));
    CHECK_FALSE(nl.get_link("weft." + std::to_string(kVni)).value());
    CHECK(k.links.size() == 2);  // eth0 and weft-v6.<VNI>
  }
};

}  // namespace

TEST_CASE("IPv6-only: ensure_device_v6 makes weft-v6.<VNI> with Backend.VNI over the IPv6 underlay, and no weft.<VNI>",
          "[backend][v6only]") {
  V6OnlyNode n;
  n.start();
  auto link = n.nl.get_link("weft-v6.7").value();
  REQUIRE(link);
  CHECK(link->vxlan == VxlanAttrs{kVni, 8472, ip6("fd0a::1"), n.underlay, false, false});
  CHECK(link->mtu == 1430);  // the underlay's 1500 less IPv6 VXLAN's 70
  CHECK(link->mac == mac("0e:00:00:00:06:01"));
  CHECK(n.vtep6 == Vtep{"weft-v6.7", link->ifindex, link->mac, 1430});
  CHECK(n.nl.state().addresses6 == std::vector<Address6>{{n.vtep6.ifindex, ip6("fd10:244:0:1::"), 128}});
  n.check_nothing_ipv4();
}

TEST_CASE("IPv6-only: set_lease needs only the IPv6 subnet, inside the IPv6 network", "[backend][v6only]") {
  V6OnlyNode n;
  REQUIRE(n.backend.ensure_device_v6(n.spec()));
  CHECK(n.backend.set_lease(own_lease()));
  Lease outside = own_lease();
  outside.subnet_v6 = prefix6("fd99::/64");
  auto st = n.backend.set_lease(outside);
  REQUIRE_FALSE(st);
  CHECK_THAT(st.error(), Catch::Contains("not inside IPv6 network fd10:244::/56"));
  Lease none = own_lease();
  none.subnet_v6.reset();
  CHECK_FALSE(n.backend.set_lease(none));
  n.check_nothing_ipv4();
}

TEST_CASE("IPv6-only: reconcile before ensure_device_v6 is an error and writes nothing", "[backend][v6only]") {
  V6OnlyNode n;
  auto early = n.reconcile(peer_set({v6peer("node2", 2)}));  // no lease yet
  CHECK_FALSE(early.ok());
  CHECK(early.writes == 0);
  REQUIRE(n.backend.set_lease(own_lease()));  // a lease, but no VTEP asked for
  auto r = n.reconcile(peer_set({v6peer("node2", 2)}));
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(r.errors.front(), Catch::Contains("ensure_device_v6"));
  CHECK(r.writes == 0);
  CHECK(n.nl.state().links.size() == 1);
}

TEST_CASE("IPv6-only: each peer's neighbor, FDB entry to its public IPv6 and route go on weft-v6.<VNI>, nothing IPv4",
          "[backend][v6only]") {
  V6OnlyNode n;
  n.start();
  const auto peers = peer_set({v6peer("node2", 2), v6peer("node3", 3)});
  auto r = n.reconcile(peers);
  REQUIRE(r.ok());
  CHECK(r.peers_programmed == 2);
  CHECK(r.peers_programmed_v6 == 2);
  CHECK(r.skipped.empty());
  CHECK(r.entries_set == 6);
  const int v6 = n.vtep6.ifindex;
  const auto& k = n.nl.state();
  CHECK(same_set(k.neighbors6, {Neighbor6{v6, ip6("fd10:244:0:2::"), mac("0e:00:00:00:06:02"), true},
                                Neighbor6{v6, ip6("fd10:244:0:3::"), mac("0e:00:00:00:06:03"), true}}));
  CHECK(same_set(k.fdb, {FdbEntry{v6, mac("0e:00:00:00:06:02"), ip6("fd0a::2")},
                         FdbEntry{v6, mac("0e:00:00:00:06:03"), ip6("fd0a::3")}}));
  CHECK(same_set(k.routes6, {Route6{prefix6("fd10:244:0:2::/64"), ip6("fd10:244:0:2::"), v6, true, 1024},
                             Route6{prefix6("fd10:244:0:3::/64"), ip6("fd10:244:0:3::"), v6, true, 1024}}));
  n.check_nothing_ipv4();

  SECTION("a second reconcile with the same peers writes nothing") {
    auto again = n.reconcile(peers);
    CHECK(again.ok());
    CHECK(again.writes == 0);
    CHECK(again.peers_programmed == 2);
  }
  SECTION("a departed peer's route, neighbor and FDB entry are removed, the other peer's kept") {
    auto left = n.reconcile(peer_set({v6peer("node2", 2)}));
    REQUIRE(left.ok());
    CHECK(left.entries_removed == 3);
    CHECK(left.entries_set == 0);
    CHECK(k.neighbors6 == std::vector<Neighbor6>{{v6, ip6("fd10:244:0:2::"), mac("0e:00:00:00:06:02"), true}});
    CHECK(k.fdb == std::vector<FdbEntry>{{v6, mac("0e:00:00:00:06:02"), ip6("fd0a::2")}});
    CHECK(k.routes6 == std::vector<Route6>{{prefix6("fd10:244:0:2::/64"), ip6("fd10:244:0:2::"), v6, true, 1024}});
    n.check_nothing_ipv4();
  }
  SECTION("a changed public IPv6 moves the FDB entry alone") {
    Peer moved = v6peer("node3", 3);
    moved.public_ip_v6 = ip6("fd0a::33");
    auto m = n.reconcile(peer_set({v6peer("node2", 2), moved}));
    REQUIRE(m.ok());
    CHECK(m.entries_set == 1);
    CHECK(std::count(k.fdb.begin(), k.fdb.end(), FdbEntry{v6, mac("0e:00:00:00:06:03"), ip6("fd0a::33")}) == 1);
    CHECK(k.fdb.size() == 2);
  }
}

TEST_CASE("IPv6-only: hand-deleted entries are restored, exactly those", "[backend][v6only]") {
  V6OnlyNode n;
  n.start();
  const auto peers = peer_set({v6peer("node2", 2), v6peer("node3", 3)});
  REQUIRE(n.reconcile(peers).ok());
  auto& k = n.nl.state();
  const auto before = std::make_tuple(k.neighbors6, k.fdb, k.routes6, k.addresses6);
  k.routes6.erase(k.routes6.begin());
  k.neighbors6.pop_back();
  k.fdb.erase(k.fdb.begin());
  k.addresses6.clear();
  auto r = n.reconcile(peers);
  REQUIRE(r.ok());
  CHECK(r.entries_set == 4);
  CHECK(r.entries_removed == 0);
  CHECK(same_set(k.neighbors6, std::get<0>(before)));
  CHECK(same_set(k.fdb, std::get<1>(before)));
  CHECK(same_set(k.routes6, std::get<2>(before)));
  CHECK(k.addresses6 == std::get<3>(before));
  n.check_nothing_ipv4();
}

TEST_CASE("IPv6-only: a hand-deleted weft-v6.<VNI> is made again and its entries replayed, still no weft.<VNI>",
          "[backend][v6only]") {
  V6OnlyNode n;
  n.start();
  const auto peers = peer_set({v6peer("node2", 2)});
  REQUIRE(n.reconcile(peers).ok());
  REQUIRE(n.nl.delete_link(n.vtep6.ifindex));
  REQUIRE(n.nl.state().routes6.empty());  // the kernel takes the device's entries with it
  auto r = n.reconcile(peers);
  REQUIRE(r.ok());
  CHECK(r.device_recreated);
  auto link = n.nl.get_link("weft-v6.7").value();
  REQUIRE(link);
  CHECK(link->mac == mac("0e:00:00:00:06:01"));  // the MAC peers know
  CHECK(n.nl.state().routes6.size() == 1);
  CHECK(n.nl.state().neighbors6.size() == 1);
  CHECK(n.nl.state().fdb.size() == 1);
  CHECK(n.nl.state().addresses6.size() == 1);
  n.check_nothing_ipv4();
  CHECK(n.reconcile(peers).writes == 0);
}

TEST_CASE("IPv6-only: stale IPv6 entries at start are removed, an earlier run's weft.<VNI> never read or written",
          "[backend][v6only]") {
  V6OnlyNode n;
  // An IPv4 VTEP from an earlier IPv4 run, with an entry of its own: not this backend's business.
  const int old4 = n.nl.add_link(Link{0, "weft.7", "vxlan", mac("0e:00:00:00:00:01"), 1450, true,
                                      VxlanAttrs{kVni, 8472, ip("192.0.2.1"), n.underlay, false, false}});
  n.nl.state().routes.push_back({prefix("10.244.9.0/24"), ip("10.244.9.0"), old4, true, 0});
  n.start();
  const int v6 = n.vtep6.ifindex;
  auto& k = n.nl.state();
  k.routes6.push_back({prefix6("fd10:244:0:9::/64"), ip6("fd10:244:0:9::"), v6, true, 1024});
  k.neighbors6.push_back({v6, ip6("fd10:244:0:9::"), mac("0e:00:00:00:06:09"), true});
  k.fdb.push_back({v6, mac("0e:00:00:00:06:09"), ip6("fd0a::9")});
  const Route6 not_ours{prefix6("fd99::/64"), ip6("fd0a::fe"), n.underlay, false, 1024, 3};
  k.routes6.push_back(not_ours);
  const auto writes_before = n.nl.write_count();
  auto r = n.reconcile(peer_set({v6peer("node2", 2)}));
  REQUIRE(r.ok());
  CHECK(r.entries_removed == 3);
  CHECK(r.entries_set == 3);
  CHECK(n.nl.write_count() - writes_before == 6);
  CHECK(k.neighbors6.size() == 1);
  CHECK(k.fdb.size() == 1);
  CHECK(k.routes6.size() == 2);
  CHECK(std::count(k.routes6.begin(), k.routes6.end(), not_ours) == 1);
  REQUIRE(n.nl.get_link("weft.7").value());
  CHECK(k.routes.size() == 1);  // left as it was
  CHECK(n.nl.writes_of("delete link") == 0);
}

TEST_CASE("IPv6-only: peers without an IPv6 subnet or public IPv6, or with bad IPv6 data, are skipped whole",
          "[backend][v6only]") {
  V6OnlyNode n;
  n.start();
  Peer v4only = peer("v4only", "10.244.8.0/24", "192.0.2.8", "0e:00:00:00:00:08");
  Peer no_public = v6peer("no-public", 4, false);
  Peer outside = v6peer("outside", 5);
  outside.subnet_v6 = prefix6("fd99:0:0:5::/64");
  Peer no_mac = v6peer("no-mac", 6);
  no_mac.vtep_mac_v6.reset();
  Peer looping = v6peer("looping", 3);
  looping.public_ip_v6 = ip6("fd10:244:0:30::1");  // inside the IPv6 network
  auto r = n.reconcile(peer_set({v6peer("good", 2), v4only, no_public, outside, no_mac, looping}));
  REQUIRE(r.ok());
  CHECK(r.peers_programmed == 1);
  CHECK(r.peers_programmed_v6 == 1);
  std::vector<std::string> skipped;
  for (const auto& s : r.skipped) {
    CHECK_FALSE(s.ipv6_half);  // nothing of these peers is programmed
    CHECK_THAT(s.reason, !Catch::Contains("IPv4 routed"));
    skipped.push_back(s.name + ": " + s.reason);
  }
  CHECK(skipped == std::vector<std::string>{
                       "looping: public IPv6 fd10:244:0:30::1 is inside IPv6 network fd10:244::/56 (VXLAN would loop)",
                       "no-mac: IPv6 subnet fd10:244:0:6::/64 but no IPv6 VTEP MAC",
                       "no-public: no public IPv6 address (public-ipv6), and an IPv6-only cluster has no IPv4 underlay",
                       "outside: IPv6 subnet fd99:0:0:5::/64 outside IPv6 network fd10:244::/56",
                       "v4only: no IPv6 subnet, and this cluster is IPv6-only"});
  CHECK(n.nl.state().routes6.size() == 1);
  CHECK(n.nl.state().fdb.size() == 1);
  n.check_nothing_ipv4();
}

TEST_CASE("IPv6-only: a peer with an IPv4 public IP but no public IPv6 is skipped, whatever the lease's IPv4 half",
          "[backend][v6only]") {
  // A lease or annotation that still carries an IPv4 public IP (say from an earlier dual-stack run)
  // must not make the IPv6-only backend send VXLAN to an IPv4 address from weft-v6.<VNI>.
  V6OnlyNode n;
  auto v6 = n.backend.ensure_device_v6(n.spec());
  REQUIRE(v6);
  n.vtep6 = *v6;
  Lease own = own_lease();
  own.public_ip = ip("192.0.2.1");
  REQUIRE(n.backend.set_lease(own));
  Peer old_annotations = v6peer("node2", 2, false);
  old_annotations.public_ip = ip("192.0.2.2");
  auto r = n.reconcile(peer_set({old_annotations, v6peer("node3", 3)}));
  REQUIRE(r.ok());
  CHECK(r.peers_programmed == 1);
  REQUIRE(r.skipped.size() == 1);
  CHECK(r.skipped[0].name == "node2");
  CHECK_THAT(r.skipped[0].reason, Catch::Contains("no public IPv6 address"));
  n.check_nothing_ipv4();
  CHECK(n.nl.state().fdb == std::vector<FdbEntry>{{n.vtep6.ifindex, mac("0e:00:00:00:06:03"), ip6("fd0a::3")}});
}

TEST_CASE("IPv6-only: peers clashing on an IPv6 subnet or VTEP MAC are all skipped", "[backend][v6only]") {
  V6OnlyNode n;
  n.start();
  Peer twin_a = v6peer("twin-a", 2);
  Peer twin_b = v6peer("twin-b", 3);
  twin_b.subnet_v6 = twin_a.subnet_v6;
  Peer mac_a = v6peer("mac-a", 4);
  Peer mac_b = v6peer("mac-b", 5);
  mac_b.vtep_mac_v6 = mac_a.vtep_mac_v6;
  Peer greedy = v6peer("greedy", 6);
  greedy.subnet_v6 = prefix6("fd10:244:0:20::/60");  // contains node7's /64
  Peer inside = v6peer("node7", 7);
  inside.subnet_v6 = prefix6("fd10:244:0:21::/64");
  auto r = n.reconcile(peer_set({twin_a, twin_b, mac_a, mac_b, greedy, inside, v6peer("node8", 8)}));
  REQUIRE(r.ok());
  CHECK(r.peers_programmed == 2);  // node7 and node8
  std::vector<std::string> skipped;
  for (const auto& s : r.skipped) skipped.push_back(s.name + ": " + s.reason);
  CHECK(skipped == std::vector<std::string>{
                       "greedy: IPv6 subnet fd10:244:0:20::/60 contains node node7's IPv6 subnet fd10:244:0:21::/64",
                       "mac-a: IPv6 VTEP MAC 0e:00:00:00:06:04 also used by node mac-b",
                       "mac-b: IPv6 VTEP MAC 0e:00:00:00:06:04 also used by node mac-a",
                       "twin-a: IPv6 subnet fd10:244:0:2::/64 also claimed by node twin-b",
                       "twin-b: IPv6 subnet fd10:244:0:2::/64 also claimed by node twin-a"});
  CHECK(n.nl.state().routes6.size() == 2);
  n.check_nothing_ipv4();
}

TEST_CASE("check_peers_v6_only: every peer by its IPv6 half, skipped ones sorted by name", "[peer_check][v6only]") {
  const Lease own = own_lease();
  Peer mine = v6peer("a-mine", 1);
  mine.vtep_mac_v6 = mac("0e:00:00:00:06:11");
  Peer own_mac = v6peer("b-own-mac", 2);
  own_mac.vtep_mac_v6 = own.vtep_mac_v6;
  Peer own_ip = v6peer("c-own-ip", 3);
  own_ip.public_ip_v6 = own.public_ip_v6;
  Peer multicast_mac = v6peer("d-multicast", 4);
  multicast_mac.vtep_mac_v6 = mac("33:33:00:00:00:01");
  Peer loopback = v6peer("e-loopback", 5);
  loopback.public_ip_v6 = ip6("::1");
  Peer v4only = peer("f-v4only", "10.244.6.0/24", "192.0.2.6", "0e:00:00:00:00:06");
  const PeerSet peers =
      peer_set({v6peer("node8", 8), mine, own_mac, own_ip, multicast_mac, loopback, v4only, v6peer("node9", 9)});
  auto c = check_peers_v6_only(peers, own, kNetwork6);
  CHECK(names(c) == std::vector<std::string>{"node8", "node9"});
  for (const Peer* p : c.accepted) CHECK(p == &peers.at(p->name));  // pointers into the PeerSet
  std::vector<std::string> skipped;
  for (const auto& s : c.skipped) {
    CHECK_FALSE(s.ipv6_half);
    skipped.push_back(s.name + ": " + s.reason);
  }
  CHECK(skipped == std::vector<std::string>{
                       "a-mine: IPv6 subnet fd10:244:0:1::/64 overlaps this node's IPv6 subnet fd10:244:0:1::/64",
                       "b-own-mac: IPv6 VTEP MAC 0e:00:00:00:06:01 is this node's",
                       "c-own-ip: public IPv6 fd0a::1 is this node's",
                       "d-multicast: IPv6 VTEP MAC 33:33:00:00:00:01 is multicast",
                       "e-loopback: public IPv6 ::1 is the loopback address",
                       "f-v4only: no IPv6 subnet, and this cluster is IPv6-only"});
  const PeerSet none;
  CHECK(check_peers_v6_only(none, own, kNetwork6).accepted.empty());
}

TEST_CASE("check_peers_v6_only: a peer is refused without a public IPv6, even when both sides have an IPv4 one",
          "[peer_check][v6only]") {
  Lease own = own_lease();
  own.public_ip = ip("192.0.2.1");
  Peer p = v6peer("node2", 2, false);
  p.public_ip = ip("192.0.2.2");
  const PeerSet peers = peer_set({p});
  auto c = check_peers_v6_only(peers, own, kNetwork6);
  CHECK(c.accepted.empty());
  REQUIRE(c.skipped.size() == 1);
  CHECK_THAT(c.skipped[0].reason, Catch::Contains("no public IPv6 address"));
}

TEST_CASE("IPv6-only: the monitor reports changes to weft-v6.<VNI> with only the IPv6 VTEP watched",
          "[backend][v6only]") {
  V6OnlyNode n;
  n.start();
  std::vector<KernelChange> posted;
  REQUIRE(n.backend.watch([&](const KernelChange& c) { posted.push_back(c); }));
  using K = KernelEvent::Kind;
  const int v6 = n.vtep6.ifindex;
  n.nl.emit(deleted6(K::route, v6, prefix6("fd10:244:0:2::/64")));                              // deleted by hand
  n.nl.emit(deleted6(K::route, n.underlay, prefix6("fd10:244:0:5::/64"), kWeftRouteProtocol));  // weft's, elsewhere
  n.nl.emit(deleted6(K::neighbor, v6));
  n.nl.emit(deleted6(K::address, v6));
  n.nl.emit(KernelEvent{K::fdb, true, v6, std::nullopt, 0, false, "x"});
  n.nl.emit(KernelEvent{K::link, true, v6, std::nullopt, 0, false, "x"});
  n.nl.emit(KernelEvent{K::overflow, false, 0, std::nullopt, 0, false, "x"});
  CHECK(posted.size() == 7);

  posted.clear();
  n.nl.emit(deleted6(K::route, v6, prefix6("fd99::/64")));                   // outside the IPv6 network
  n.nl.emit(deleted6(K::route, n.underlay, prefix6("fd10:244:0:50::/64")));  // someone else's
  n.nl.emit(deleted6(K::neighbor, n.underlay));
  KernelEvent own_write = deleted6(K::route, v6, prefix6("fd10:244:0:2::/64"));
  own_write.own = true;
  n.nl.emit(own_write);
  // IPv4 events: there is no IPv4 network or VTEP, so none is weft's (ifindex 0 is no device).
  n.nl.emit(KernelEvent{K::route, true, v6, prefix("10.244.2.0/24"), kWeftRouteProtocol, false, "x"});
  n.nl.emit(KernelEvent{K::route, true, 0, prefix("10.244.2.0/24"), kWeftRouteProtocol, false, "x"});
  n.nl.emit(KernelEvent{K::neighbor, true, v6, std::nullopt, 0, false, "x"});  // ARP on the IPv6 VTEP
  n.nl.emit(KernelEvent{K::neighbor, true, 0, std::nullopt, 0, false, "x"});
  n.nl.emit(KernelEvent{K::address, true, 0, std::nullopt, 0, false, "x"});
  n.nl.emit(KernelEvent{K::fdb, true, 0, std::nullopt, 0, false, "x"});
  n.nl.emit(KernelEvent{K::link, true, 0, std::nullopt, 0, false, "x"});
  n.nl.emit(KernelEvent{K::fdb, true, n.underlay, std::nullopt, 0, false, "x"});
  for (const auto& c : posted) UNSCOPED_INFO("posted: " << c.what);
  CHECK(posted.empty());
}

TEST_CASE("IPv6-only: before any VTEP is watched, only an overflow wakes the backend", "[backend][v6only]") {
  FakeNetlink nl;
  VxlanBackend backend{nl, std::nullopt, kNetwork6, false};
  KernelEvent route{KernelEvent::Kind::route, true, 5, std::nullopt, kWeftRouteProtocol, false, "x"};
  route.ipv6 = true;
  route.dst6 = prefix6("fd10:244:0:2::/64");
  CHECK_FALSE(backend.relevant(route));
  CHECK_FALSE(backend.relevant(KernelEvent{KernelEvent::Kind::link, true, 0, std::nullopt, 0, false, "x"}));
  CHECK(backend.relevant(KernelEvent{KernelEvent::Kind::overflow, false, 0, std::nullopt, 0, false, "x"}));
}

// DirectRouting over the IPv6 underlay: a peer whose public IPv6 address is on our link gets a
// plain route via that address on the underlay, no neighbour or FDB entry; one behind a router
// stays on VXLAN.
TEST_CASE("v6-only: DirectRouting routes a peer on the underlay's link by its public IPv6 address", "[v6only]") {
  FakeNetlink nl;
  const int underlay = nl.add_link(Link{0, "eth0", "veth", mac("0e:00:00:00:aa:01"), 1500, true, std::nullopt});
  const Write link_address{WriteAction::upsert, Address6{underlay, ip6("fd0a::1"), 64}};
  const Write to_router{WriteAction::upsert,
                        Route6{prefix6("fd0b::/64"), ip6("fd0a::fe"), underlay, false, kIpv6RouteMetric}};
  REQUIRE(nl.write(std::vector<Write>{link_address, to_router}).at(1));
  VxlanBackend backend{nl, std::nullopt, kNetwork6, true};
  VtepSpec spec;
  spec.vni = kVni;
  spec.local_ip6 = ip6("fd0a::1");
  spec.underlay_ifindex = underlay;
  auto vtep = backend.ensure_device_v6(spec);
  REQUIRE(vtep);
  REQUIRE(backend.set_lease(own_lease()));
  Peer near = v6peer("near", 2);  // fd0a::2: on eth0's /64
  Peer far = v6peer("far", 3);
  far.public_ip_v6 = ip6("fd0b::3");  // behind fd0a::fe
  auto r = backend.reconcile(PeerSet{{"near", near}, {"far", far}});
  REQUIRE(r.ok());
  CHECK(r.peers_programmed_v6 == 2);
  const auto& k = nl.state();
  auto route_to = [&](const Ipv6Prefix& dst) {
    auto it = std::find_if(k.routes6.begin(), k.routes6.end(), [&](const Route6& x) { return x.dst == dst; });
    REQUIRE(it != k.routes6.end());
    return *it;
  };
  const Route6 direct = route_to(*near.subnet_v6);
  CHECK(direct.gateway == ip6("fd0a::2"));
  CHECK(direct.ifindex == underlay);
  CHECK_FALSE(direct.onlink);
  const Route6 tunnelled = route_to(*far.subnet_v6);
  CHECK(tunnelled.ifindex == vtep->ifindex);
  CHECK(tunnelled.onlink);
  // Only the far peer has VXLAN entries.
  REQUIRE(k.neighbors6.size() == 1);
  CHECK(k.neighbors6[0].ip == far.subnet_v6->address());
  REQUIRE(k.fdb.size() == 1);
  CHECK(k.fdb[0].mac == *far.vtep_mac_v6);
  // Settled: a second reconcile writes nothing; the near peer moving behind the router puts it on VXLAN.
  CHECK(backend.reconcile(PeerSet{{"near", near}, {"far", far}}).writes == 0);
  near.public_ip_v6 = ip6("fd0b::2");
  REQUIRE(backend.reconcile(PeerSet{{"near", near}, {"far", far}}).ok());
  CHECK(route_to(*near.subnet_v6).ifindex == vtep->ifindex);
  CHECK(nl.state().fdb.size() == 2);
}
