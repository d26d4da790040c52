// VxlanBackend with the real kernel: two nodes in fresh namespaces joined by a veth pair
// (the underlay, 192.0.2.0/24), each with weft's VTEP and the other as its peer. The
// backends run in this process; their netlink sockets are opened inside the namespaces
// (NetlinkImpl::open(path) enters the namespace only while creating each socket).
#include <catch2/catch.hpp>
#include <chrono>

#include "backend/netlink/netlink_impl.hpp"
#include "backend/vxlan/vxlan_backend.hpp"
#include "test/kernel/backend/open_in_netns.hpp"
#include "test/kernel/backend/repair_loop.hpp"
#include "test/support/netns.hpp"

using namespace weft;
using weft::test::Netns;
using weft::test::RepairLoop;

namespace {

using Clock = std::chrono::steady_clock;
const Ipv4Prefix kNetwork = Ipv4Prefix::parse("10.244.0.0/16").value();

struct Node {
  Netns ns{'b'};
  std::unique_ptr<NetlinkImpl> nl;
  std::unique_ptr<VxlanBackend> backend;
  Lease lease;
  Vtep vtep;

  // Opens netlink inside the namespace and brings up the VTEP on the underlay ul0.
  void start(const char* public_ip, const char* subnet, bool direct_routing = false) {
    nl = weft::test::open_in(ns);
    backend = std::make_unique<VxlanBackend>(*nl, kNetwork, direct_routing);
    const Link ul = weft::test::require_link(*nl, "ul0");
    VtepSpec spec;
    spec.local_ip = Ipv4Addr::parse(public_ip).value();
    spec.underlay_ifindex = ul.ifindex;
    spec.underlay_mtu = ul.mtu;
    auto v = backend->ensure_device(spec);
    REQUIRE(v);
    vtep = *v;
    lease = Lease{Ipv4Prefix::parse(subnet).value(), spec.local_ip, vtep.mac, {}, {}, {}};
    REQUIRE(backend->set_lease(lease));
  }
  Peer as_peer(const std::string& name) const {
    return Peer{name, lease.subnet, lease.public_ip, lease.vtep_mac, {}, {}, {}};
  }
  bool pings(const std::string& address) const { return ns.exec("ping -c1 -W1 " + address + " >/dev/null") == 0; }
  std::string routes() const { return ns.output("ip route show"); }
};

struct TwoNodes {
  Node a;
  Node b;
  PeerSet peers_of_a;
  PeerSet peers_of_b;
  explicit TwoNodes(bool direct_routing = false) {
    weft::test::join(a.ns, "ul0", "192.0.2.1/24", b.ns, "ul0", "192.0.2.2/24");
    a.start("192.0.2.1", "10.244.1.0/24", direct_routing);
    b.start("192.0.2.2", "10.244.2.0/24", direct_routing);
    peers_of_a = {{"node-b", b.as_peer("node-b")}};
    peers_of_b = {{"node-a", a.as_peer("node-a")}};
    auto ra = a.backend->reconcile(peers_of_a);
    auto rb = b.backend->reconcile(peers_of_b);
    for (const auto& e : ra.errors) UNSCOPED_INFO(e);
    for (const auto& e : rb.errors) UNSCOPED_INFO(e);
    REQUIRE(ra.ok());
    REQUIRE(rb.ok());
  }
};

}  // namespace

TEST_CASE("vxlan: two nodes reach each other's VTEP address, and a second reconcile writes nothing", "[vxlan]") {
  TwoNodes t;
  CHECK_THAT(t.a.routes(), Catch::Contains("10.244.2.0/24 via 10.244.2.0 dev weft.1 proto 119 onlink"));
  CHECK_THAT(t.a.ns.output("ip neigh show dev weft.1"),
             Catch::Contains("10.244.2.0 lladdr " + t.b.vtep.mac.str() + " PERMANENT"));
  CHECK_THAT(t.a.ns.output("bridge fdb show dev weft.1"),
             Catch::Contains(t.b.vtep.mac.str() + " dst 192.0.2.2 self permanent"));
  CHECK(t.a.pings("10.244.2.0"));
  CHECK(t.b.pings("10.244.1.0"));

  const auto before = t.a.nl->write_count();
  auto again = t.a.backend->reconcile(t.peers_of_a);
  CHECK(again.ok());
  CHECK(again.writes == 0);
  CHECK(t.a.nl->write_count() == before);
}

TEST_CASE("vxlan: hand damage is noticed through notifications and repaired within one second", "[vxlan]") {
  TwoNodes t;
  RepairLoop loop(*t.a.backend, t.peers_of_a);
  REQUIRE(loop.started());
  const std::string mac_b = t.b.vtep.mac.str();
  std::string damage;
  std::function<bool()> repaired;
  SECTION("the route") {
    damage = "ip route del 10.244.2.0/24 dev weft.1";
    repaired = [&] {
      return t.a.ns.output("ip route show 10.244.2.0/24 dev weft.1").find("onlink") != std::string::npos;
    };
  }
  SECTION("the neighbor entry") {
    damage = "ip neigh del 10.244.2.0 dev weft.1";
    repaired = [&] {
      return t.a.ns.output("ip neigh show 10.244.2.0 dev weft.1").find("PERMANENT") != std::string::npos;
    };
  }
  SECTION("the FDB entry") {
    damage = "bridge fdb del " + mac_b + " dev weft.1 dst 192.0.2.2 self";
    repaired = [&] { return t.a.ns.output("bridge fdb show dev weft.1").find(mac_b) != std::string::npos; };
  }
  SECTION("the VTEP address") {
    damage = "ip addr del 10.244.1.0/32 dev weft.1";
    repaired = [&] { return t.a.ns.output("ip -4 addr show dev weft.1").find("10.244.1.0/32") != std::string::npos; };
  }
  SECTION("the device's up state") {
    damage = "ip link set weft.1 down";  // the kernel also drops the routes through it
    repaired = [&] { return t.a.ns.output("ip route show 10.244.2.0/24").find("weft.1") != std::string::npos; };
  }
  SECTION("the device's MTU") {
    damage = "ip link set weft.1 mtu 1300";
    repaired = [&] { return t.a.ns.output("cat /sys/class/net/weft.1/mtu") == "1450"; };
  }
  SECTION("the device") {
    damage = "ip link del weft.1";
    repaired = [&] { return t.a.ns.output("ip route show 10.244.2.0/24").find("weft.1") != std::string::npos; };
  }
  REQUIRE(repaired());
  const auto start = Clock::now();
  REQUIRE(t.a.ns.exec(damage) == 0);
  REQUIRE_FALSE(repaired());
  CHECK(loop.run_until(repaired, std::chrono::milliseconds(2000)));
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
  INFO("repaired in " << took.count() << " ms after: " << damage);
  CHECK(took < std::chrono::milliseconds(1000));
  CHECK(t.a.pings("10.244.2.0"));
  CHECK((*t.a.nl->get_link("weft.1"))->mac == t.a.vtep.mac);  // peers still know this MAC
}

TEST_CASE("vxlan: entries of a peer no longer in the input are removed", "[vxlan]") {
  TwoNodes t;
  PeerSet three = t.peers_of_a;
  three["node-c"] = Peer{"node-c",
                         Ipv4Prefix::parse("10.244.3.0/24").value(),
                         Ipv4Addr::parse("192.0.2.3").value(),
                         Mac::parse("0e:00:00:00:00:0c").value(),
                         {},
                         {},
                         {}};
  REQUIRE(t.a.backend->reconcile(three).ok());
  CHECK_THAT(t.a.routes(), Catch::Contains("10.244.3.0/24"));
  auto r = t.a.backend->reconcile(t.peers_of_a);
  CHECK(r.ok());
  CHECK(r.entries_removed == 3);
  CHECK_THAT(t.a.routes(), !Catch::Contains("10.244.3.0"));
  CHECK_THAT(t.a.ns.output("ip neigh show dev weft.1"), !Catch::Contains("10.244.3.0"));
  CHECK_THAT(t.a.ns.output("bridge fdb show dev weft.1"), !Catch::Contains("0e:00:00:00:00:0c"));
  CHECK(t.a.pings("10.244.2.0"));
}

TEST_CASE("vxlan: stale entries at start are removed, routes that are not weft's are left alone", "[vxlan]") {
  Node a;
  Node b;
  weft::test::join(a.ns, "ul0", "192.0.2.1/24", b.ns, "ul0", "192.0.2.2/24");
  a.start("192.0.2.1", "10.244.1.0/24");
  // A node that left while weftd was down, and routes of other owners.
  REQUIRE(a.ns.ip("route add 10.244.9.0/24 via 10.244.9.0 dev weft.1 onlink") == 0);
  REQUIRE(a.ns.ip("neigh add 10.244.9.0 lladdr 0e:00:00:00:00:09 dev weft.1 nud permanent") == 0);
  REQUIRE(a.ns.exec("bridge fdb add 0e:00:00:00:00:09 dev weft.1 dst 192.0.2.9 self permanent") == 0);
  REQUIRE(a.ns.ip("route add 203.0.113.0/24 via 192.0.2.2 dev ul0") == 0);
  REQUIRE(a.ns.ip("route add 10.244.50.0/24 via 192.0.2.2 dev ul0") == 0);
  REQUIRE(a.ns.ip("route add 198.51.100.0/24 via 10.244.9.0 dev weft.1 onlink") == 0);  // outside, on the VTEP
  auto r = a.backend->reconcile({});
  CHECK(r.ok());
  CHECK(r.entries_removed == 3);
  const std::string routes = a.routes();
  CHECK_THAT(routes, !Catch::Contains("10.244.9.0/24"));
  CHECK_THAT(routes, Catch::Contains("203.0.113.0/24 via 192.0.2.2 dev ul0"));
  CHECK_THAT(routes, Catch::Contains("10.244.50.0/24 via 192.0.2.2 dev ul0"));
  CHECK_THAT(routes, Catch::Contains("198.51.100.0/24 via 10.244.9.0 dev weft.1 onlink"));
  CHECK_THAT(a.ns.output("ip neigh show dev weft.1"), !Catch::Contains("10.244.9.0"));
  CHECK_THAT(a.ns.output("bridge fdb show dev weft.1"), !Catch::Contains("0e:00:00:00:00:09"));
}

TEST_CASE("vxlan: an existing matching VTEP is adopted with its MAC, a mismatching one recreated", "[vxlan]") {
  Node a;
  Node b;
  weft::test::join(a.ns, "ul0", "192.0.2.1/24", b.ns, "ul0", "192.0.2.2/24");
  std::string port = "8472";
  SECTION("matching: adopted, MTU fixed in place") {}
  SECTION("another port: recreated, MAC kept") { port = "4789"; }
  REQUIRE(
      a.ns.ip("link add weft.1 address 0e:aa:00:00:00:01 mtu 1500 type vxlan id 1 local 192.0.2.1 dev ul0 dstport " +
              port + " nolearning") == 0);
  const std::string ifindex_before = a.ns.output("cat /sys/class/net/weft.1/ifindex");
  a.start("192.0.2.1", "10.244.1.0/24");
  CHECK(a.vtep.mac.str() == "0e:aa:00:00:00:01");
  CHECK(a.vtep.mtu == 1450);
  const std::string details = a.ns.output("ip -d link show weft.1");
  CHECK_THAT(details,
             Catch::Contains("mtu 1450") && Catch::Contains("dstport 8472") && Catch::Contains("state UNKNOWN"));
  const bool same_device = a.ns.output("cat /sys/class/net/weft.1/ifindex") == ifindex_before;
  CHECK(same_device == (port == "8472"));
}

TEST_CASE("vxlan: DirectRouting sends to a peer on the same segment without VXLAN", "[vxlan]") {
  TwoNodes t(true);
  CHECK_THAT(t.a.routes(), Catch::Contains("10.244.2.0/24 via 192.0.2.2 dev ul0 proto 119"));
  CHECK(t.a.ns.output("ip neigh show dev weft.1").empty());
  CHECK(t.a.ns.output("bridge fdb show dev weft.1").empty());
  CHECK(t.a.pings("10.244.2.0"));
  CHECK(t.a.backend->reconcile(t.peers_of_a).writes == 0);
}
