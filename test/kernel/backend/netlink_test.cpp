// The libnl implementation against a real kernel, inside fresh network namespaces.
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "backend/netlink/netlink_impl.hpp"
#include "test/kernel/backend/open_in_netns.hpp"
#include "test/support/netns.hpp"
#include "test/unit/backend/printers.hpp"

using namespace weft;
using weft::test::Netns;
using weft::test::same_set;

namespace {

Ipv4Addr ip(const char* text) { return Ipv4Addr::parse(text).value(); }
Ipv6Addr ip6(const char* text) { return Ipv6Addr::parse(text).value(); }
Ipv4Prefix prefix(const char* text) { return Ipv4Prefix::parse(text).value(); }
Mac mac(const char* text) { return Mac::parse(text).value(); }

// A namespace with an up veth pair ul0 (192.0.2.1/24) <-> ul1, and weft's Netlink inside.
struct Lab {
  Netns ns{'b'};
  std::unique_ptr<NetlinkImpl> nl;
  int ul0 = 0;
  Lab() {
    REQUIRE(ns.ip("link add ul0 type veth peer name ul1") == 0);
    REQUIRE(ns.ip("addr add 192.0.2.1/24 dev ul0") == 0);
    REQUIRE(ns.ip("link set ul0 up") == 0);
    REQUIRE(ns.ip("link set ul1 up") == 0);
    nl = weft::test::open_in(ns);
    ul0 = weft::test::require_link(*nl, "ul0").ifindex;
  }
  int make_vtep(const std::string& name = "weft.7") {
    VxlanLinkSpec spec{name, {7, 8472, ip("192.0.2.1"), ul0, false, false}, 1450, mac("0e:00:00:00:00:07")};
    REQUIRE(nl->create_vxlan(spec));
    auto link = nl->get_link(name);
    REQUIRE(link);
    REQUIRE(link->has_value());
    return (*link)->ifindex;
  }
  void write_ok(std::vector<Write> writes) {
    for (const auto& st : nl->write(writes)) REQUIRE(st);
  }
};

}  // namespace

TEST_CASE("netlink: a VXLAN device is created as asked and reads back the same", "[netlink]") {
  Lab lab;
  VxlanLinkSpec spec{"weft.7", {7, 8472, ip("192.0.2.1"), lab.ul0, false, false}, 1450, mac("0e:00:00:00:00:07")};
  REQUIRE(lab.nl->create_vxlan(spec));
  auto got = lab.nl->get_link("weft.7");
  REQUIRE(got);
  REQUIRE(got->has_value());
  const Link& link = **got;
  CHECK(link.kind == "vxlan");
  REQUIRE(link.vxlan);
  CHECK(*link.vxlan == spec.vxlan);
  CHECK(link.mtu == 1450);
  CHECK(link.mac == spec.mac);
  CHECK(link.up);
  auto details = lab.ns.output("ip -d link show weft.7");
  CHECK_THAT(details, Catch::Contains("vxlan id 7") && Catch::Contains("dstport 8472") &&
                          Catch::Contains("nolearning") && Catch::Contains("local 192.0.2.1"));

  CHECK_FALSE(lab.nl->create_vxlan(spec));  // the name is taken
  REQUIRE(lab.nl->set_link(link.ifindex, 1400, true));
  CHECK((*lab.nl->get_link("weft.7"))->mtu == 1400);
  REQUIRE(lab.nl->delete_link(link.ifindex));
  CHECK_FALSE(lab.nl->get_link("weft.7")->has_value());
  CHECK(lab.nl->delete_link(link.ifindex));  // already gone is fine
  CHECK(lab.nl->write_count() == 5);
}

TEST_CASE("netlink: neighbor, FDB and route writes replace and read back", "[netlink]") {
  Lab lab;
  int vtep = lab.make_vtep();
  Neighbor n{vtep, ip("10.244.2.0"), mac("0e:00:00:00:00:02")};
  FdbEntry f{vtep, mac("0e:00:00:00:00:02"), ip("192.0.2.2")};
  Route r{prefix("10.244.2.0/24"), ip("10.244.2.0"), vtep, true};
  lab.write_ok({{WriteAction::upsert, n}, {WriteAction::upsert, f}, {WriteAction::upsert, r}});
  CHECK(*lab.nl->dump_neighbors(vtep) == std::vector<Neighbor>{n});
  CHECK(*lab.nl->dump_fdb(vtep) == std::vector<FdbEntry>{f});
  auto routes = *lab.nl->dump_routes();
  CHECK(std::count(routes.begin(), routes.end(), r) == 1);
  CHECK_THAT(lab.ns.output("ip route show 10.244.2.0/24"),
             Catch::Contains("via 10.244.2.0 dev weft.7 proto 119 onlink"));

  SECTION("writing a changed entry replaces it") {
    Neighbor n2{vtep, n.ip, mac("0e:00:00:00:00:03")};
    FdbEntry f2{vtep, f.mac, ip("192.0.2.3")};
    Route r2{r.dst, ip("10.244.2.1"), vtep, true};
    lab.write_ok({{WriteAction::upsert, n2}, {WriteAction::upsert, f2}, {WriteAction::upsert, r2}});
    CHECK(*lab.nl->dump_neighbors(vtep) == std::vector<Neighbor>{n2});
    CHECK(*lab.nl->dump_fdb(vtep) == std::vector<FdbEntry>{f2});
    routes = *lab.nl->dump_routes();
    CHECK(std::count(routes.begin(), routes.end(), r2) == 1);
    CHECK(std::count_if(routes.begin(), routes.end(), [&](const Route& x) { return x.dst == r.dst; }) == 1);
  }
  SECTION("removal is idempotent and takes one FDB remote at a time") {
    // Only the all-zeros (and multicast) MAC can have several remotes.
    REQUIRE(lab.ns.exec("bridge fdb append 00:00:00:00:00:00 dev weft.7 dst 192.0.2.8 self permanent") == 0);
    REQUIRE(lab.ns.exec("bridge fdb append 00:00:00:00:00:00 dev weft.7 dst 192.0.2.9 self permanent") == 0);
    CHECK(lab.nl->dump_fdb(vtep)->size() == 3);
    std::vector<Write> removals{{WriteAction::remove, r},
                                {WriteAction::remove, n},
                                {WriteAction::remove, FdbEntry{vtep, Mac{}, ip("192.0.2.9")}}};
    lab.write_ok(removals);
    lab.write_ok(removals);  // a second time: already absent
    CHECK(lab.nl->dump_neighbors(vtep)->empty());
    CHECK(same_set(*lab.nl->dump_fdb(vtep), {f, FdbEntry{vtep, Mac{}, ip("192.0.2.8")}}));
    routes = *lab.nl->dump_routes();
    CHECK(std::none_of(routes.begin(), routes.end(), [&](const Route& x) { return x.dst == r.dst; }));
  }
}

TEST_CASE("netlink: a failed write in a batch is reported on its own entry only", "[netlink]") {
  Lab lab;
  int vtep = lab.make_vtep();
  std::vector<Write> writes;
  for (int i = 1; i <= 3000; ++i) {  // several sendmsg batches
    auto dst = Ipv4Prefix::containing(Ipv4Addr(ip("10.0.0.0").to_uint() + (static_cast<unsigned>(i) << 8U)), 24);
    writes.push_back({WriteAction::upsert, Route{dst, dst.address(), vtep, true}});
  }
  writes[1500] = {WriteAction::upsert, Route{prefix("10.250.0.0/24"), ip("10.250.0.0"), 999999, true}};
  auto results = lab.nl->write(writes);
  REQUIRE(results.size() == writes.size());
  for (std::size_t i = 0; i < results.size(); ++i) {
    if (i == 1500) {
      CHECK_FALSE(results[i]);
      CHECK_THAT(results[i].error(), Catch::Contains("10.250.0.0/24") && Catch::Contains("No such device"));
    } else if (!results[i]) {
      FAIL(results[i].error());
    }
  }
  CHECK(lab.nl->dump_routes()->size() >= 2999);
}

TEST_CASE("netlink: route lookup tells a directly reachable address from one behind a gateway", "[netlink]") {
  Lab lab;
  REQUIRE(lab.ns.ip("route add 198.51.100.0/24 via 192.0.2.254 dev ul0") == 0);
  auto direct = lab.nl->lookup_route(ip("192.0.2.2"));
  REQUIRE(direct);
  CHECK(direct->ifindex == lab.ul0);
  CHECK_FALSE(direct->gateway);
  auto routed = lab.nl->lookup_route(ip("198.51.100.7"));
  REQUIRE(routed);
  CHECK(routed->gateway == ip("192.0.2.254"));
  CHECK_FALSE(lab.nl->lookup_route(ip("203.0.113.1")));  // no default route in the namespace
}

TEST_CASE("netlink: IPv6 route lookup tells a directly reachable address from one behind a gateway", "[netlink]") {
  Lab lab;
  REQUIRE(lab.ns.ip("-6 addr add 2001:db8::1/64 dev ul0 nodad") == 0);
  REQUIRE(lab.ns.ip("-6 route add 2001:db8:1::/64 via 2001:db8::fe dev ul0") == 0);
  auto direct = lab.nl->lookup_route6(ip6("2001:db8::2"));
  REQUIRE(direct);
  CHECK(direct->ifindex == lab.ul0);
  CHECK_FALSE(direct->gateway);
  CHECK(direct->unicast);
  auto routed = lab.nl->lookup_route6(ip6("2001:db8:1::7"));
  REQUIRE(routed);
  CHECK(routed->gateway == ip6("2001:db8::fe"));
  CHECK_FALSE(lab.nl->lookup_route6(ip6("2001:db8:5::1")));  // no default route in the namespace
}

TEST_CASE("netlink: the subscription reports a change made by hand, and marks our own", "[netlink]") {
  Lab lab;
  int vtep = lab.make_vtep();
  std::mutex mu;
  std::condition_variable cv;
  std::vector<KernelEvent> events;
  auto sub = lab.nl->subscribe([&](const KernelEvent& e) {
    std::lock_guard<std::mutex> lock(mu);
    events.push_back(e);
    cv.notify_all();
  });
  REQUIRE(sub);
  Route r{prefix("10.244.2.0/24"), ip("10.244.2.0"), vtep, true};
  lab.write_ok({{WriteAction::upsert, r}});
  REQUIRE(lab.ns.ip("route del 10.244.2.0/24 dev weft.7") == 0);
  std::unique_lock<std::mutex> lock(mu);
  auto deleted_by_hand = [&] {
    return std::any_of(events.begin(), events.end(), [&](const KernelEvent& e) {
      return e.kind == KernelEvent::Kind::route && e.deleted && !e.own && e.dst == r.dst && e.ifindex == vtep;
    });
  };
  REQUIRE(cv.wait_for(lock, std::chrono::seconds(2), deleted_by_hand));
  CHECK(std::any_of(events.begin(), events.end(), [&](const KernelEvent& e) {
    return e.kind == KernelEvent::Kind::route && !e.deleted && e.own && e.dst == r.dst;
  }));
}

TEST_CASE("netlink: notifications lost to a full receive buffer are reported as an overflow", "[netlink]") {
  Lab lab;
  int vtep = lab.make_vtep();
  auto small = NetlinkImpl::open(lab.ns.path(), 4096);
  REQUIRE(small);
  std::mutex gate;
  std::unique_lock<std::mutex> closed(gate);
  std::atomic<int> seen{0};
  std::atomic<bool> overflow{false};
  auto sub = (*small)->subscribe([&](const KernelEvent& e) {
    if (seen++ == 0) std::lock_guard<std::mutex> wait(gate);  // stall on the first event
    if (e.kind == KernelEvent::Kind::overflow) overflow = true;
  });
  REQUIRE(sub);
  std::vector<Write> writes;
  for (unsigned i = 1; i <= 500; ++i) {
    auto dst = Ipv4Prefix::containing(Ipv4Addr(ip("10.0.0.0").to_uint() + (i << 8U)), 24);
    writes.push_back({WriteAction::upsert, Route{dst, dst.address(), vtep, true}});
  }
  lab.write_ok(writes);
  closed.unlock();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (!overflow && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  CHECK(overflow);
  CHECK(seen < 500);
}
