// The IPv6 overlay with the real kernel: two dual-stack nodes in fresh namespaces joined by
// a veth pair carrying both 192.0.2.0/24 and fd0a::/64 (the underlay). Each runs one
// VxlanBackend with weft.1 (IPv4) and weft-v6.<VNI> (IPv6), and the other as its peer.
#include <catch2/catch.hpp>
#include <functional>
#include <string>
#include <vector>

#include "backend/netlink/netlink_impl.hpp"
#include "backend/vxlan/vxlan_backend.hpp"
#include "test/kernel/backend/open_in_netns.hpp"
#include "test/kernel/backend/repair_loop.hpp"
#include "test/support/netns.hpp"

using namespace weft;
using weft::test::Netns;
using weft::test::RepairLoop;

namespace {

const Ipv4Prefix kNetwork = Ipv4Prefix::parse("10.244.0.0/16").value();
const Ipv6Prefix kNetwork6 = Ipv6Prefix::parse("fd10:244::/56").value();

struct DualNode {
  Netns ns{'b'};
  std::unique_ptr<NetlinkImpl> nl;
  std::unique_ptr<VxlanBackend> backend;
  Lease lease;
  Vtep vtep;
  Vtep vtep6;

  // n: 1 or 2. v6_underlay false: the IPv6 VTEP runs over the IPv4 underlay, with VNI 2.
  void start(int n, bool v6_underlay = true) {
    const std::string i = std::to_string(n);
    REQUIRE(ns.ip("-6 addr add fd0a::" + i + "/64 dev ul0 nodad") == 0);
    nl = weft::test::open_in(ns);
    backend = std::make_unique<VxlanBackend>(*nl, kNetwork, kNetwork6, false);
    const Link ul = weft::test::require_link(*nl, "ul0");
    VtepSpec spec;
    spec.local_ip = Ipv4Addr::parse(("192.0.2." + i).c_str()).value();
    spec.underlay_ifindex = ul.ifindex;
    spec.underlay_mtu = ul.mtu;
    auto v = backend->ensure_device(spec);
    REQUIRE(v);
    vtep = *v;
    if (v6_underlay) {
      spec.local_ip6 = Ipv6Addr::parse("fd0a::" + i).value();
    } else {
      spec.vni = 2;
    }
    auto v6 = backend->ensure_device_v6(spec);
    if (!v6) FAIL(v6.error());
    vtep6 = *v6;
    lease = Lease{Ipv4Prefix::parse("10.244." + i + ".0/24").value(),
                  spec.local_ip,
                  vtep.mac,
                  Ipv6Prefix::parse("fd10:244:0:" + i + "::/64").value(),
                  Ipv6Addr::parse("fd0a::" + i).value(),
                  vtep6.mac};
    if (!v6_underlay) lease.public_ip_v6.reset();
    REQUIRE(backend->set_lease(lease));
  }
  Peer as_peer(const std::string& name) const {
    return Peer{
        name, lease.subnet, lease.public_ip, lease.vtep_mac, lease.subnet_v6, lease.public_ip_v6, lease.vtep_mac_v6};
  }
  // A few tries: the first packet over a fresh path may meet a device still coming up.
  bool pings(const std::string& address, const std::string& family = "-4") const {
    for (int i = 0; i < 3; ++i) {
      if (ns.exec("ping " + family + " -c1 -W1 " + address + " >/dev/null") == 0) return true;
    }
    return false;
  }
  std::string v4_entries() const {
    return ns.output("ip route show; ip neigh show dev weft.1 nud permanent; bridge fdb show dev weft.1");
  }
  std::string v6_routes() const { return ns.output("ip -6 route show"); }
  std::string v6_neighbors(const std::string& dev = "weft-v6.1") const {
    return ns.output("ip -6 neigh show dev " + dev + " nud permanent");
  }
  std::string fdb(const std::string& dev = "weft-v6.1") const { return ns.output("bridge fdb show dev " + dev); }
};

const Peer kV4Only{"node-c",
                   Ipv4Prefix::parse("10.244.3.0/24").value(),
                   Ipv4Addr::parse("192.0.2.3").value(),
                   Mac::parse("0e:00:00:00:00:0c").value(),
                   {},
                   {},
                   {}};

struct TwoDualNodes {
  DualNode a;
  DualNode b;
  PeerSet peers_of_a;
  PeerSet peers_of_b;
  explicit TwoDualNodes(bool v6_underlay = true) {
    weft::test::join(a.ns, "ul0", "192.0.2.1/24", b.ns, "ul0", "192.0.2.2/24");
    a.start(1, v6_underlay);
    b.start(2, v6_underlay);
    peers_of_a = {{"node-b", b.as_peer("node-b")}, {"node-c", kV4Only}};
    peers_of_b = {{"node-a", a.as_peer("node-a")}};
    reconcile_both();
  }
  void reconcile_both() {
    auto ra = a.backend->reconcile(peers_of_a);
    auto rb = b.backend->reconcile(peers_of_b);
    for (const auto& e : ra.errors) UNSCOPED_INFO(e);
    for (const auto& e : rb.errors) UNSCOPED_INFO(e);
    REQUIRE(ra.ok());
    REQUIRE(rb.ok());
  }
};

// Each kind of hand damage to node a's IPv6 entries: the command, and a check that the entry
// is there (false right after the command, true again once repaired).
struct Damage {
  std::string what;
  std::string command;
  std::function<bool()> present;
};

std::vector<Damage> v6_damages(TwoDualNodes& t) {
  const std::string mac_b6 = t.b.vtep6.mac.str();
  auto route_there = [&t] { return t.a.v6_routes().find("fd10:244:0:2::/64 via") != std::string::npos; };
  return {
      {"the route", "ip -6 route del fd10:244:0:2::/64 dev weft-v6.1", route_there},
      {"the neighbor entry", "ip -6 neigh del fd10:244:0:2:: dev weft-v6.1",
       [&t] { return t.a.v6_neighbors().find("fd10:244:0:2::") != std::string::npos; }},
      {"the FDB entry", "bridge fdb del " + mac_b6 + " dev weft-v6.1 dst fd0a::2 self",
       [&t, mac_b6] { return t.a.fdb().find(mac_b6) != std::string::npos; }},
      {"the VTEP address", "ip -6 addr del fd10:244:0:1::/128 dev weft-v6.1",
       [&t] { return t.a.ns.output("ip -6 addr show dev weft-v6.1").find("fd10:244:0:1::/128") != std::string::npos; }},
      {"the device", "ip link del weft-v6.1", route_there},
  };
}

}  // namespace

TEST_CASE("vxlan6: IPv6 peers are programmed on weft-v6.1 and reachable with ping -6, IPv4 working alongside",
          "[vxlan][ipv6]") {
  TwoDualNodes t;
  const std::string mac_b6 = t.b.vtep6.mac.str();
  CHECK_THAT(t.a.ns.output("ip -d link show weft-v6.1"),
             Catch::Contains("local fd0a::1") && Catch::Contains("mtu 1430"));
  CHECK_THAT(t.a.ns.output("ip -6 addr show dev weft-v6.1"), Catch::Contains("fd10:244:0:1::/128"));
  // The kernel's prefix route for the VTEP's own /128 is not a stale entry.
  CHECK_THAT(t.a.v6_routes(), Catch::Contains("fd10:244:0:1:: dev weft-v6.1 proto kernel"));
  CHECK_THAT(t.a.v6_routes(),
             Catch::Contains("fd10:244:0:2::/64 via fd10:244:0:2:: dev weft-v6.1 proto 119 metric 1024 onlink"));
  CHECK_THAT(t.a.v6_neighbors(), Catch::Contains("fd10:244:0:2:: lladdr " + mac_b6 + " PERMANENT"));
  CHECK_THAT(t.a.fdb(), Catch::Contains(mac_b6 + " dst fd0a::2 self permanent"));
  // The IPv4-only peer is on weft.1 only, and IPv4 goes on as before.
  CHECK_THAT(t.a.ns.output("ip route show"),
             Catch::Contains("10.244.3.0/24 via 10.244.3.0 dev weft.1 proto 119 onlink"));
  CHECK_THAT(t.a.v6_routes(), !Catch::Contains("10.244.3"));
  CHECK_THAT(t.a.fdb(), !Catch::Contains("0e:00:00:00:00:0c"));
  CHECK_THAT(t.a.fdb("weft.1"), Catch::Contains(t.b.vtep.mac.str() + " dst 192.0.2.2 self permanent"));

  CHECK(t.a.pings("fd10:244:0:2::", "-6"));
  CHECK(t.b.pings("fd10:244:0:1::", "-6"));
  CHECK(t.a.pings("10.244.2.0"));

  auto again = t.a.backend->reconcile(t.peers_of_a);
  CHECK(again.ok());
  CHECK(again.writes == 0);
  CHECK(again.peers_programmed == 2);
  CHECK(again.peers_programmed_v6 == 1);
}

TEST_CASE("vxlan6: a hand-deleted IPv6 entry is restored by the next reconcile, IPv4 entries untouched",
          "[vxlan][ipv6]") {
  TwoDualNodes t;
  std::string damage;
  std::function<bool()> present;
  for (const auto& d : v6_damages(t)) {
    DYNAMIC_SECTION(d.what) {
      damage = d.command;
      present = d.present;
    }
  }
  const std::string v4_before = t.a.v4_entries();
  REQUIRE(present());
  REQUIRE(t.a.ns.exec(damage) == 0);
  REQUIRE_FALSE(present());
  auto r = t.a.backend->reconcile(t.peers_of_a);
  for (const auto& e : r.errors) UNSCOPED_INFO(e);
  CHECK(r.ok());
  CHECK(r.writes > 0);
  CHECK(present());
  CHECK(t.a.v4_entries() == v4_before);
  CHECK(t.a.pings("fd10:244:0:2::", "-6"));
  CHECK(t.a.backend->reconcile(t.peers_of_a).writes == 0);
}

TEST_CASE("vxlan6: stale IPv6 entries at start are removed, IPv6 routes that are not weft's left alone",
          "[vxlan][ipv6]") {
  DualNode a;
  DualNode b;
  weft::test::join(a.ns, "ul0", "192.0.2.1/24", b.ns, "ul0", "192.0.2.2/24");
  REQUIRE(b.ns.ip("-6 addr add fd0a::2/64 dev ul0 nodad") == 0);
  a.start(1);
  // A node that left while weftd was down (IPv6 and IPv4), and routes of other owners.
  REQUIRE(a.ns.ip("-6 route add fd10:244:0:9::/64 via fd10:244:0:9:: dev weft-v6.1 onlink") == 0);
  REQUIRE(a.ns.ip("-6 neigh add fd10:244:0:9:: lladdr 0e:00:00:00:06:09 dev weft-v6.1 nud permanent") == 0);
  REQUIRE(a.ns.exec("bridge fdb add 0e:00:00:00:06:09 dev weft-v6.1 dst fd0a::9 self permanent") == 0);
  REQUIRE(a.ns.ip("route add 10.244.9.0/24 via 10.244.9.0 dev weft.1 onlink") == 0);
  REQUIRE(a.ns.ip("-6 route add fd10:244:0:50::/64 via fd0a::2 dev ul0") == 0);             // inside, not weft's
  REQUIRE(a.ns.ip("-6 route add fd99::/64 via fd10:244:0:9:: dev weft-v6.1 onlink") == 0);  // outside, on the VTEP
  REQUIRE(a.ns.ip("-6 route add 2001:db8::/64 via fd0a::2 dev ul0 proto 119") == 0);        // outside, weft's protocol
  auto r = a.backend->reconcile({});
  for (const auto& e : r.errors) UNSCOPED_INFO(e);
  CHECK(r.ok());
  CHECK(r.entries_removed == 4);  // three IPv6 entries and the IPv4 route
  CHECK_THAT(a.v6_routes(), Catch::Contains("fd10:244:0:1:: dev weft-v6.1 proto kernel"));
  const std::string routes = a.v6_routes();
  CHECK_THAT(routes, !Catch::Contains("fd10:244:0:9::/64"));
  CHECK_THAT(routes, Catch::Contains("fd10:244:0:50::/64 via fd0a::2 dev ul0"));
  CHECK_THAT(routes, Catch::Contains("fd99::/64 via fd10:244:0:9:: dev weft-v6.1"));
  CHECK_THAT(routes, Catch::Contains("2001:db8::/64 via fd0a::2 dev ul0 proto 119"));
  CHECK_THAT(a.v6_neighbors(), !Catch::Contains("fd10:244:0:9::"));
  CHECK_THAT(a.fdb(), !Catch::Contains("0e:00:00:00:06:09"));
  CHECK_THAT(a.ns.output("ip route show"), !Catch::Contains("10.244.9.0/24"));
  CHECK(a.backend->reconcile({}).writes == 0);
}

TEST_CASE("vxlan6: the IPv6 overlay over the IPv4 underlay (weft-v6.2, FDB to the IPv4 public IP) carries ping -6",
          "[vxlan][ipv6]") {
  TwoDualNodes t(false);
  const std::string mac_b6 = t.b.vtep6.mac.str();
  CHECK_THAT(t.a.ns.output("ip -d link show weft-v6.2"), Catch::Contains("id 2") && Catch::Contains("local 192.0.2.1"));
  CHECK_THAT(t.a.v6_routes(), Catch::Contains("fd10:244:0:2::/64 via fd10:244:0:2:: dev weft-v6.2 proto 119"));
  CHECK_THAT(t.a.fdb("weft-v6.2"), Catch::Contains(mac_b6 + " dst 192.0.2.2 self permanent"));
  CHECK(t.a.pings("fd10:244:0:2::", "-6"));
  CHECK(t.a.pings("10.244.2.0"));
  CHECK(t.a.backend->reconcile(t.peers_of_a).writes == 0);
}

TEST_CASE("vxlan6: hand damage to IPv6 entries is noticed through notifications and repaired", "[vxlan][ipv6]") {
  TwoDualNodes t;
  RepairLoop loop(*t.a.backend, t.peers_of_a);
  REQUIRE(loop.started());
  std::string damage;
  std::function<bool()> repaired;
  for (const auto& d : v6_damages(t)) {
    DYNAMIC_SECTION(d.what) {
      damage = d.command;
      repaired = d.present;
    }
  }
  REQUIRE(repaired());
  REQUIRE(t.a.ns.exec(damage) == 0);
  REQUIRE_FALSE(repaired());
  INFO("after: " << damage);
  CHECK(loop.run_until(repaired, std::chrono::milliseconds(2000)));
  CHECK(t.a.pings("fd10:244:0:2::", "-6"));
}
