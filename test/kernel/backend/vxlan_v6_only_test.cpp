// An IPv6-only cluster with the real kernel: two nodes in fresh namespaces joined by a veth pair
// that carries only fd0a::/64 (no IPv4 address anywhere). Each runs a VxlanBackend without an
// IPv4 network: weft-v6.1 alone, VXLAN over IPv6, and never a weft.1.
#include <algorithm>
#include <catch2/catch.hpp>
#include <functional>
#include <sstream>
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

const Ipv6Prefix kNetwork6 = Ipv6Prefix::parse("fd10:244::/56").value();

Ipv6Addr v6(const std::string& text) { return Ipv6Addr::parse(text).value(); }

// A peer that exists only as annotations (its entries are programmed, nobody answers).
Peer paper_peer(const std::string& name, int n) {
  const std::string i = std::to_string(n);
  Peer p;
  p.name = name;
  p.subnet_v6 = Ipv6Prefix::parse("fd10:244:0:" + i + "::/64").value();
  p.public_ip_v6 = v6("fd0a::" + i);
  p.vtep_mac_v6 = Mac::parse("0e:00:00:00:06:0" + i).value();
  return p;
}

struct V6OnlyNode {
  Netns ns{'b'};
  std::unique_ptr<NetlinkImpl> nl;
  std::unique_ptr<VxlanBackend> backend;
  Lease lease;
  Vtep vtep6;

  // n: 1 or 2; ul0 already holds fd0a::<n>/64. As the agent starts an IPv6-only node.
  void start(int n) {
    const std::string i = std::to_string(n);
    nl = weft::test::open_in(ns);
    backend = std::make_unique<VxlanBackend>(*nl, std::nullopt, kNetwork6, false);
    const Link ul = weft::test::require_link(*nl, "ul0");
    VtepSpec spec;
    spec.local_ip6 = v6("fd0a::" + i);
    spec.underlay_ifindex = ul.ifindex;
    spec.underlay_mtu = ul.mtu;
    auto v = backend->ensure_device_v6(spec);
    if (!v) FAIL(v.error());
    vtep6 = *v;
    lease.subnet_v6 = Ipv6Prefix::parse("fd10:244:0:" + i + "::/64").value();
    lease.public_ip_v6 = spec.local_ip6;
    lease.vtep_mac_v6 = vtep6.mac;
    REQUIRE(backend->set_lease(lease));
  }
  Peer as_peer(const std::string& name) const {
    Peer p;
    p.name = name;
    p.subnet_v6 = lease.subnet_v6;
    p.public_ip_v6 = lease.public_ip_v6;
    p.vtep_mac_v6 = lease.vtep_mac_v6;
    return p;
  }
  bool pings(const std::string& address) const {
    for (int i = 0; i < 3; ++i) {
      if (ns.exec("ping -6 -c1 -W1 " + address + " >/dev/null") == 0) return true;
    }
    return false;
  }
  std::string routes() const { return ns.output("ip -6 route show"); }
  std::string neighbors() const { return ns.output("ip -6 neigh show dev weft-v6.1 nud permanent"); }
  std::string fdb() const { return ns.output("bridge fdb show dev weft-v6.1"); }
  // Everything IPv4 weft could have made but the IPv4 VTEP: IPv4 routes, neighbors and addresses.
  std::string ipv4_state() const { return ns.output("ip -4 route show; ip -4 neigh show; ip -4 addr show"); }
};

struct TwoV6OnlyNodes {
  V6OnlyNode a;
  V6OnlyNode b;
  PeerSet peers_of_a;
  PeerSet peers_of_b;
  TwoV6OnlyNodes() {
    weft::test::join(a.ns, "ul0", "fd0a::1/64", b.ns, "ul0", "fd0a::2/64");
    a.start(1);
    b.start(2);
    peers_of_a = {
        {"node-b", b.as_peer("node-b")}, {"node-c", paper_peer("node-c", 3)}, {"node-d", paper_peer("node-d", 4)}};
    peers_of_b = {{"node-a", a.as_peer("node-a")}};
    auto ra = a.backend->reconcile(peers_of_a);
    auto rb = b.backend->reconcile(peers_of_b);
    for (const auto& e : ra.errors) UNSCOPED_INFO(e);
    for (const auto& e : rb.errors) UNSCOPED_INFO(e);
    REQUIRE(ra.ok());
    REQUIRE(rb.ok());
    REQUIRE(ra.peers_programmed == 3);
  }
};

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// A listing's lines in order: the kernel lists a re-added entry first, the others as before.
std::vector<std::string> sorted_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  std::sort(lines.begin(), lines.end());
  return lines;
}

// No weft.1, and nothing IPv4 on any weft device (the namespace has no IPv4 but lo's).
void check_no_ipv4(const V6OnlyNode& n) {
  CHECK(n.ns.exec("ip link show weft.1 >/dev/null 2>&1") != 0);
  CHECK_THAT(n.ns.output("ip -d link show type vxlan"), !Catch::Contains("weft.1:"));
  const std::string v4 = n.ipv4_state();
  CHECK_THAT(v4, !Catch::Contains("10.244."));
  CHECK_THAT(v4, !Catch::Contains("weft"));
}

}  // namespace

TEST_CASE("vxlan6-only: peers are programmed on weft-v6.1 over the IPv6 underlay, ping -6 works, no weft.1",
          "[vxlan][v6only]") {
  TwoV6OnlyNodes t;
  CHECK_THAT(t.a.ns.output("ip -d link show weft-v6.1"),
             Catch::Contains("id 1 ") && Catch::Contains("local fd0a::1") && Catch::Contains("mtu 1430"));
  CHECK_THAT(t.a.ns.output("ip -6 addr show dev weft-v6.1"), Catch::Contains("fd10:244:0:1::/128"));
  const std::string routes = t.a.routes();
  const std::string neighbors = t.a.neighbors();
  const std::string fdb = t.a.fdb();
  const std::vector<std::pair<int, std::string>> peers{
      {2, t.b.vtep6.mac.str()}, {3, "0e:00:00:00:06:03"}, {4, "0e:00:00:00:06:04"}};
  for (const auto& [n, mac] : peers) {
    const std::string gw = "fd10:244:0:" + std::to_string(n) + "::";
    CHECK_THAT(routes, Catch::Contains(gw + "/64 via " + gw + " dev weft-v6.1 proto 119 metric 1024 onlink"));
    CHECK_THAT(neighbors, Catch::Contains(gw + " lladdr " + mac + " PERMANENT"));
    CHECK_THAT(fdb, Catch::Contains(mac + " dst fd0a::" + std::to_string(n) + " self permanent"));
  }
  check_no_ipv4(t.a);
  check_no_ipv4(t.b);

  CHECK(t.a.pings("fd10:244:0:2::"));
  CHECK(t.b.pings("fd10:244:0:1::"));

  auto again = t.a.backend->reconcile(t.peers_of_a);
  CHECK(again.ok());
  CHECK(again.writes == 0);
  CHECK(again.peers_programmed == 3);
}

TEST_CASE("vxlan6-only: a hand-deleted route, neighbor and FDB entry are restored by a reconcile, exactly those",
          "[vxlan][v6only]") {
  TwoV6OnlyNodes t;
  const std::string mac_b = t.b.vtep6.mac.str();
  const std::string routes = t.a.routes();
  const std::string neighbors = t.a.neighbors();
  const std::string fdb = t.a.fdb();
  REQUIRE(t.a.ns.ip("-6 route del fd10:244:0:3::/64 dev weft-v6.1") == 0);
  REQUIRE(t.a.ns.ip("-6 neigh del fd10:244:0:4:: dev weft-v6.1") == 0);
  REQUIRE(t.a.ns.exec("bridge fdb del " + mac_b + " dev weft-v6.1 dst fd0a::2 self") == 0);
  REQUIRE_FALSE(has(t.a.routes(), "fd10:244:0:3::/64"));
  REQUIRE_FALSE(has(t.a.neighbors(), "fd10:244:0:4::"));
  REQUIRE_FALSE(has(t.a.fdb(), mac_b));

  auto r = t.a.backend->reconcile(t.peers_of_a);
  for (const auto& e : r.errors) UNSCOPED_INFO(e);
  REQUIRE(r.ok());
  CHECK(r.entries_set == 3);  // the three deleted, nothing else rewritten
  CHECK(r.entries_removed == 0);
  CHECK(r.writes == 3);
  CHECK(sorted_lines(t.a.routes()) == sorted_lines(routes));
  CHECK(sorted_lines(t.a.neighbors()) == sorted_lines(neighbors));
  CHECK(sorted_lines(t.a.fdb()) == sorted_lines(fdb));
  check_no_ipv4(t.a);
  CHECK(t.a.pings("fd10:244:0:2::"));
  CHECK(t.a.backend->reconcile(t.peers_of_a).writes == 0);
}

TEST_CASE("vxlan6-only: hand damage is noticed through notifications with only weft-v6.1 watched, and repaired",
          "[vxlan][v6only]") {
  TwoV6OnlyNodes t;
  RepairLoop loop(*t.a.backend, t.peers_of_a);
  REQUIRE(loop.started());
  const std::string mac_b = t.b.vtep6.mac.str();
  std::string damage;
  std::function<bool()> repaired;
  SECTION("the route") {
    damage = "ip -6 route del fd10:244:0:2::/64 dev weft-v6.1";
    repaired = [&t] { return has(t.a.routes(), "fd10:244:0:2::/64 via"); };
  }
  SECTION("the neighbor entry") {
    damage = "ip -6 neigh del fd10:244:0:2:: dev weft-v6.1";
    repaired = [&t] { return has(t.a.neighbors(), "fd10:244:0:2::"); };
  }
  SECTION("the FDB entry") {
    damage = "bridge fdb del " + mac_b + " dev weft-v6.1 dst fd0a::2 self";
    repaired = [&t, mac_b] { return has(t.a.fdb(), mac_b); };
  }
  SECTION("the device") {
    damage = "ip link del weft-v6.1";
    repaired = [&t] { return has(t.a.routes(), "fd10:244:0:2::/64 via"); };
  }
  REQUIRE(repaired());
  REQUIRE(t.a.ns.exec(damage) == 0);
  REQUIRE_FALSE(repaired());
  INFO("after: " << damage);
  CHECK(loop.run_until(repaired, std::chrono::milliseconds(2000)));
  CHECK(t.a.pings("fd10:244:0:2::"));
  check_no_ipv4(t.a);
}

TEST_CASE("vxlan6-only: a departed peer's entries left by an earlier run are removed at start, others' kept",
          "[vxlan][v6only]") {
  V6OnlyNode a;
  V6OnlyNode b;
  weft::test::join(a.ns, "ul0", "fd0a::1/64", b.ns, "ul0", "fd0a::2/64");
  b.start(2);
  // The earlier run: weft-v6.1 with node-b's and node-z's entries, node-z gone since.
  REQUIRE(a.ns.ip("link add weft-v6.1 type vxlan id 1 local fd0a::1 dev ul0 dstport 8472 nolearning") == 0);
  REQUIRE(a.ns.ip("link set weft-v6.1 mtu 1430 up") == 0);
  REQUIRE(a.ns.ip("-6 route add fd10:244:0:9::/64 via fd10:244:0:9:: dev weft-v6.1 onlink proto 119 metric 1024") == 0);
  REQUIRE(a.ns.ip("-6 neigh add fd10:244:0:9:: lladdr 0e:00:00:00:06:09 dev weft-v6.1 nud permanent") == 0);
  REQUIRE(a.ns.exec("bridge fdb add 0e:00:00:00:06:09 dev weft-v6.1 dst fd0a::9 self permanent") == 0);
  REQUIRE(a.ns.ip("-6 route add fd10:244:0:50::/64 via fd0a::2 dev ul0") == 0);  // inside, not weft's
  const std::string ifindex_before = a.ns.output("cat /sys/class/net/weft-v6.1/ifindex");
  a.start(1);
  CHECK(a.ns.output("cat /sys/class/net/weft-v6.1/ifindex") == ifindex_before);  // adopted, not recreated
  auto r = a.backend->reconcile({{"node-b", b.as_peer("node-b")}});
  for (const auto& e : r.errors) UNSCOPED_INFO(e);
  REQUIRE(r.ok());
  CHECK(r.entries_removed == 3);
  CHECK(r.entries_set == 3);
  const std::string routes = a.routes();
  CHECK_THAT(routes, !Catch::Contains("fd10:244:0:9::"));
  CHECK_THAT(routes, Catch::Contains("fd10:244:0:50::/64 via fd0a::2 dev ul0"));
  CHECK_THAT(routes, Catch::Contains("fd10:244:0:2::/64 via fd10:244:0:2:: dev weft-v6.1"));
  CHECK_THAT(a.neighbors(), !Catch::Contains("fd10:244:0:9::"));
  CHECK_THAT(a.fdb(), !Catch::Contains("0e:00:00:00:06:09"));
  check_no_ipv4(a);
  CHECK(a.backend->reconcile({{"node-b", b.as_peer("node-b")}}).writes == 0);
}
