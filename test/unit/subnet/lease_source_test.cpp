// Subnet ownership (issue #15) through the subnet manager over the in-memory fake: where a
// node's subnet comes from (SubnetSource), what the annotation lease avoids, and what a node
// reports when its subnet is not cleanly its own.
#include <atomic>
#include <catch2/catch.hpp>
#include <set>
#include <thread>

#include "fake_kube_client.hpp"
#include "subnet/kube/kube_subnet_manager.hpp"
#include "subnet/kube/lease_protocol.hpp"
#include "test_util.hpp"

using namespace weft;
using namespace weft::kube;
using weft::test::FakeKubeClient;
using weft::test::pfx;

namespace {

using Cluster = FakeKubeClient::Cluster;
using namespace std::chrono_literals;

const Mac kMac = *Mac::parse("0e:00:00:00:00:01");
const Ipv4Addr kIp = *Ipv4Addr::parse("192.0.2.1");

std::unique_ptr<SubnetManager> manager(const std::shared_ptr<Cluster>& c, const std::string& name,
                                       const std::string& netconf, std::chrono::milliseconds auto_wait = 20ms) {
  KubeSubnetConfig cfg;
  cfg.node_name = name;
  cfg.net = test::net_config(netconf);
  cfg.backoff.initial = 1ms;
  cfg.conflict_backoff = 2ms;
  cfg.auto_wait = auto_wait;
  cfg.pod_cidr_poll = 5ms;
  auto m = make_kube_subnet_manager(std::make_shared<FakeKubeClient>(c), cfg);
  REQUIRE(m);
  return std::move(*m);
}

std::map<std::string, std::string> lease_of(const std::string& subnet) {
  return {{"weft.io/subnet", subnet},
          {"weft.io/public-ip", "192.0.2.9"},
          {"weft.io/backend-type", "vxlan"},
          {"weft.io/backend-data", R"({"VNI":1,"VtepMAC":"0e:00:00:00:00:09"})"}};
}

template <class F>
bool eventually(F f, int ms = 3000) {
  for (int i = 0; i < ms; ++i) {
    if (f()) return true;
    std::this_thread::sleep_for(1ms);
  }
  return false;
}

std::map<std::string, std::string> annotations(const std::shared_ptr<Cluster>& c, const std::string& name) {
  std::lock_guard<std::mutex> lock(c->mu);
  return c->nodes.at(name).annotations;
}

const char* kPodCidrMode = R"({"Network":"10.244.0.0/16","SubnetSource":"podCIDR"})";
const char* kAuto = R"({"Network":"10.244.0.0/16"})";
const char* kLease = R"({"Network":"10.244.0.0/16","SubnetSource":"lease"})";

Lease v4_base() {
  Lease base;
  base.public_ip = kIp;
  base.vtep_mac = kMac;
  return base;
}

// Acquires `base` on a thread; the test assigns the podCIDR meanwhile.
struct Acquiring {
  std::unique_ptr<SubnetManager> m;
  std::optional<Result<Lease>> result;  // read only once `done`
  std::atomic<bool> done{false};
  std::thread t;
  explicit Acquiring(std::unique_ptr<SubnetManager> mgr, Lease base = v4_base())
      : m(std::move(mgr)), t([this, base] {
          result = m->acquire(base);
          done = true;
        }) {}
  ~Acquiring() {
    m->stop();
    t.join();
  }
};

}  // namespace

TEST_CASE("SubnetSource podCIDR waits for the controller and never leases on its own", "[lease][ownership]") {
  // Issue #15, 3: a weftd started before node-ipam reached its Node leased a /24 by itself.
  auto c = std::make_shared<Cluster>();
  c->add_node("n1");
  Acquiring a(manager(c, "n1", kPodCidrMode));
  REQUIRE(eventually([&] { return !a.m->stats().lease_waiting.empty(); }));
  CHECK_THAT(a.m->stats().lease_waiting,
             Catch::Contains("waiting for spec.podCIDR of node n1") && Catch::Contains("--allocate-node-cidrs"));
  std::this_thread::sleep_for(50ms);
  CHECK_FALSE(a.done);
  CHECK(annotations(c, "n1").empty());        // no claim, no lease
  c->set_pod_cidrs("n1", {"10.244.0.0/24"});  // the controller's first subnet, below SubnetMin
  REQUIRE(eventually([&] { return a.done.load(); }));
  REQUIRE(*a.result);
  CHECK((*a.result)->subnet == pfx("10.244.0.0/24"));
  CHECK(annotations(c, "n1").at("weft.io/subnet") == "10.244.0.0/24");
  CHECK(annotations(c, "n1").count("weft.io/claimed-at") == 1);
  CHECK(a.m->stats().lease_waiting.empty());
}

TEST_CASE("SubnetSource auto waits for a podCIDR when any Node has one", "[lease][ownership]") {
  auto c = std::make_shared<Cluster>();
  c->add_node("cp", lease_of("10.244.0.0/24"), {"10.244.0.0/24"});
  c->add_node("n1");
  Acquiring a(manager(c, "n1", kAuto));
  REQUIRE(eventually([&] { return !a.m->stats().lease_waiting.empty(); }));
  CHECK_THAT(a.m->stats().lease_waiting, Catch::Contains("node cp has a podCIDR"));
  std::this_thread::sleep_for(60ms);  // well past auto_wait: it never falls back to a lease
  CHECK_FALSE(a.done);
  CHECK(annotations(c, "n1").empty());
  c->set_pod_cidrs("n1", {"10.244.1.0/24"});
  REQUIRE(eventually([&] { return a.done.load(); }));
  REQUIRE(*a.result);
  CHECK((*a.result)->subnet == pfx("10.244.1.0/24"));
}

TEST_CASE("SubnetSource auto leases at once in a cluster of leases, after a short wait in an empty one",
          "[lease][ownership]") {
  auto c = std::make_shared<Cluster>();
  c->add_node("first");
  auto t0 = std::chrono::steady_clock::now();
  auto first = manager(c, "first", kAuto, 100ms)->acquire(kIp, kMac);
  REQUIRE(first);
  CHECK(std::chrono::steady_clock::now() - t0 >= 100ms);
  c->add_node("second");
  t0 = std::chrono::steady_clock::now();
  auto second = manager(c, "second", kAuto, 10s)->acquire(kIp, kMac);
  REQUIRE(second);
  CHECK(std::chrono::steady_clock::now() - t0 < 2s);
  CHECK(second->subnet != first->subnet);
}

TEST_CASE("the annotation lease never picks a subnet that a Node's spec.podCIDR holds", "[lease][ownership]") {
  // Issue #15, 3: the lease avoided other nodes' annotations, not their podCIDRs.
  const char* net = R"({"Network":"10.0.0.0/22","SubnetLen":24,"SubnetMin":"10.0.0.0","SubnetSource":"lease"})";
  for (int rep = 0; rep < 20; ++rep) {
    auto c = std::make_shared<Cluster>();
    c->add_node("a", {}, {"10.0.0.0/24"});  // podCIDRs only: weft is not running there yet
    c->add_node("b", {}, {"10.0.1.0/24"});
    c->add_node("c", {}, {"10.0.3.0/24"});
    c->add_node("me");
    auto l = manager(c, "me", net)->acquire(kIp, kMac);
    REQUIRE(l);
    CHECK(l->subnet == pfx("10.0.2.0/24"));
  }
}

TEST_CASE("a Node claiming the whole network does not make it full", "[lease][ownership]") {
  // Issue #15, 2: one Node annotated 10.244.0.0/16 made a new node's weftd exit with "network full".
  auto c = std::make_shared<Cluster>();
  c->add_node("hostile", lease_of("10.244.0.0/16"));
  c->add_node("wide", {{"weft.io/subnet-claim", "10.244.128.0/17"}});
  c->add_node("me");
  auto l = manager(c, "me", kLease)->acquire(kIp, kMac);
  REQUIRE(l);
  CHECK(l->subnet->length() == 24);
}

TEST_CASE("a published subnet that differs from spec.podCIDR is kept and reported", "[lease][ownership]") {
  // Issue #15, 3: a weftd restarted after its podCIDR arrived switched subnets under its pods.
  auto c = std::make_shared<Cluster>();
  auto published = lease_of("10.244.42.0/24");
  published["weft.io/claimed-at"] = "2026-01-01T00:00:05.000Z";
  c->add_node("n1", published, {"10.244.7.0/24"});
  auto m = manager(c, "n1", kAuto);
  auto l = m->acquire(kIp, kMac);
  REQUIRE(l);
  CHECK(l->subnet == pfx("10.244.42.0/24"));
  CHECK(annotations(c, "n1").at("weft.io/subnet") == "10.244.42.0/24");
  CHECK(annotations(c, "n1").at("weft.io/claimed-at") == "2026-01-01T00:00:05.000Z");
  CHECK_THAT(m->stats().lease_problem, Catch::Contains("spec.podCIDR is 10.244.7.0/24") &&
                                           Catch::Contains("drain the node") && Catch::Contains("weft.io/subnet-") &&
                                           Catch::Contains("restart weftd"));
  // The same with SubnetSource podCIDR: never renumber under running pods.
  auto again = manager(c, "n1", kPodCidrMode);
  REQUIRE(again->acquire(kIp, kMac)->subnet == pfx("10.244.42.0/24"));
  CHECK_FALSE(again->stats().lease_problem.empty());
}

TEST_CASE("a podCIDR of another length than SubnetLen is a clear error", "[lease][ownership]") {
  auto c = std::make_shared<Cluster>();
  c->add_node("n1", {}, {"10.244.4.0/23"});
  auto l = manager(c, "n1", kPodCidrMode)->acquire(kIp, kMac);
  REQUIRE_FALSE(l);
  CHECK_THAT(l.error(), Catch::Contains("/23") && Catch::Contains("--node-cidr-mask-size"));
}

TEST_CASE("the claim time is kept across restarts, a newcomer copying our subnet is told it is skipped",
          "[lease][ownership]") {
  auto c = std::make_shared<Cluster>();
  c->add_node("owner");
  auto owner = manager(c, "owner", kLease);
  auto l = owner->acquire(kIp, kMac);
  REQUIRE(l);
  auto claimed = annotations(c, "owner").at("weft.io/claimed-at");
  std::this_thread::sleep_for(5ms);
  REQUIRE(manager(c, "owner", kLease)->acquire(kIp, kMac));
  CHECK(annotations(c, "owner").at("weft.io/claimed-at") == claimed);

  // The copier: created later, it publishes the owner's subnet as its own (as a hostile Node or a
  // podCIDR clash would). Its weftd keeps serving it but reports that everyone else skips it.
  auto copied = lease_of(l->subnet->str());
  copied["weft.io/claimed-at"] = "2000-01-01T00:00:00.000Z";
  c->add_node("copier", copied);
  auto m = manager(c, "copier", kLease);
  auto mine = m->acquire(kIp, kMac);
  REQUIRE(mine);
  CHECK(mine->subnet == l->subnet);
  m->start_watch([] {});
  REQUIRE(eventually([&] { return !m->stats().own_conflict.empty(); }));
  CHECK_THAT(m->stats().own_conflict, Catch::Contains("node owner claimed " + l->subnet->str()));
  // And the owner sees the copier skipped, itself untouched.
  owner->start_watch([] {});
  REQUIRE(eventually([&] { return owner->stats().outranked_nodes == 0 && owner->stats().skipped_peers == 1; }));
  CHECK(owner->stats().own_conflict.empty());
  CHECK_THAT(owner->skipped_nodes(10).at("copier"), Catch::Contains("overlaps our own subnet"));
  m->stop();
  owner->stop();
}

TEST_CASE("the IPv6 podCIDR of a dual-stack node is taken only when it fits IPv6Network", "[lease][ipv6]") {
  const auto dual = test::net_config(
      R"({"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:10:244::/56","IPv6SubnetLen":64})");
  NodeInfo n;
  n.name = "n1";
  n.pod_cidrs = {"10.244.3.0/24", "fd00:10:244:3::/64"};
  auto got = ipv6_pod_cidr(n, dual.ipv6);
  REQUIRE(got);
  REQUIRE(got->has_value());
  CHECK((*got)->str() == "fd00:10:244:3::/64");
  CHECK(ipv4_pod_cidr(n).value()->str() == "10.244.3.0/24");  // the v4 half is unchanged

  n.pod_cidrs = {"10.244.3.0/24"};
  REQUIRE(ipv6_pod_cidr(n, dual.ipv6));
  CHECK_FALSE(ipv6_pod_cidr(n, dual.ipv6)->has_value());

  n.pod_cidrs = {"10.244.3.0/24", "fd00:10:244:3::/64"};
  auto v4_only = ipv6_pod_cidr(n, std::nullopt);  // a dual-stack controller, a v4-only weft
  REQUIRE_FALSE(v4_only);
  CHECK_THAT(v4_only.error(), Catch::Contains("does not enable IPv6"));
  CHECK(ipv4_pod_cidr(n));  // and IPv4 carries on

  n.pod_cidrs = {"10.244.3.0/24", "2001:db8:3::/64"};
  auto outside = ipv6_pod_cidr(n, dual.ipv6);
  REQUIRE_FALSE(outside);
  CHECK_THAT(outside.error(), Catch::Contains("is not a /64 of IPv6Network fd00:10:244::/56"));
  n.pod_cidrs = {"10.244.3.0/24", "fd00:10:244::/56"};
  CHECK_FALSE(ipv6_pod_cidr(n, dual.ipv6));
  n.pod_cidrs = {"10.244.3.0/24", "fd00:10:244:3::1/64"};
  auto malformed = ipv6_pod_cidr(n, dual.ipv6);
  REQUIRE_FALSE(malformed);
  CHECK_THAT(malformed.error(), Catch::Contains("malformed podCIDR"));
}

namespace {

const char* kDualLease =
    R"({"Network":"10.244.0.0/16","SubnetSource":"lease","EnableIPv6":true,"IPv6Network":"fd00:10:244::/56"})";
const char* kDualPodCidr =
    R"({"Network":"10.244.0.0/16","SubnetSource":"podCIDR","EnableIPv6":true,"IPv6Network":"fd00:10:244::/56"})";
const LeaseV6Request kV6Request{*Mac::parse("0e:00:00:00:06:01"), std::nullopt};

}  // namespace

TEST_CASE("a dual-stack lease takes the IPv6 subnet paired with its IPv4 one and publishes both", "[lease][ipv6]") {
  auto c = std::make_shared<Cluster>();
  c->add_node("n1");
  auto l = manager(c, "n1", kDualLease)->acquire(kIp, kMac, kV6Request);
  REQUIRE(l);
  REQUIRE(l->subnet_v6);
  // 10.244.N.0/24 is subnet N of the /16; fd00:10:244:N::/64 (N in hex) subnet N of the /56.
  const auto n = (l->subnet->address().to_uint() >> 8U) & 0xffU;
  CHECK(l->subnet_v6->str() == fmt::format("fd00:10:244:{:x}::/64", n));
  const auto a = annotations(c, "n1");
  CHECK(a.at("weft.io/subnet-v6") == l->subnet_v6->str());
  CHECK(a.at("weft.io/backend-v6-data") == R"({"VNI":2,"VtepMAC":"0e:00:00:00:06:01"})");  // over IPv4: VNI + 1
  CHECK_FALSE(a.count("weft.io/public-ipv6"));

  // A restart keeps both; an IPv6 underlay publishes public-ipv6 and VNI 1.
  LeaseV6Request over_v6 = kV6Request;
  over_v6.public_ip = *Ipv6Addr::parse("2001:db8::1");
  auto again = manager(c, "n1", kDualLease)->acquire(kIp, kMac, over_v6);
  REQUIRE(again);
  CHECK(again->subnet == l->subnet);
  CHECK(again->subnet_v6 == l->subnet_v6);
  CHECK(annotations(c, "n1").at("weft.io/public-ipv6") == "2001:db8::1");
  CHECK(annotations(c, "n1").at("weft.io/backend-v6-data") == R"({"VNI":1,"VtepMAC":"0e:00:00:00:06:01"})");

  // Without a v6 request (or a v4-only config) nothing IPv6 is leased.
  c->add_node("n2");
  auto v4 = manager(c, "n2", kLease)->acquire(kIp, kMac, kV6Request);
  REQUIRE(v4);
  CHECK_FALSE(v4->subnet_v6);
  CHECK_FALSE(annotations(c, "n2").count("weft.io/subnet-v6"));
}

TEST_CASE("a dual-stack node takes both subnets from spec.podCIDRs, and refuses a v4-only controller",
          "[lease][ipv6]") {
  auto c = std::make_shared<Cluster>();
  c->add_node("dual", {}, {"10.244.5.0/24", "fd00:10:244:9::/64"});
  auto l = manager(c, "dual", kDualPodCidr)->acquire(kIp, kMac, kV6Request);
  REQUIRE(l);
  CHECK(l->subnet == pfx("10.244.5.0/24"));
  REQUIRE(l->subnet_v6);
  CHECK(l->subnet_v6->str() == "fd00:10:244:9::/64");  // the controller's, not the paired one
  CHECK(annotations(c, "dual").at("weft.io/subnet-v6") == "fd00:10:244:9::/64");

  c->add_node("v4only", {}, {"10.244.6.0/24"});
  auto refused = manager(c, "v4only", kDualPodCidr)->acquire(kIp, kMac, kV6Request);
  REQUIRE_FALSE(refused);
  CHECK_THAT(refused.error(), Catch::Contains("has no IPv6 entry") && Catch::Contains("--node-cidr-mask-size-ipv6=64"));
  CHECK_FALSE(annotations(c, "v4only").count("weft.io/subnet"));  // nothing half-published

  c->add_node("outside", {}, {"10.244.7.0/24", "2001:db8:7::/64"});
  auto bad = manager(c, "outside", kDualPodCidr)->acquire(kIp, kMac, kV6Request);
  REQUIRE_FALSE(bad);
  CHECK_THAT(bad.error(), Catch::Contains("is not a /64 of IPv6Network"));
}

// IPv6-only clusters: the IPv6 subnet is the lease, from the v6 podCIDR or by the same
// write-then-verify protocol on subnet-v6 / subnet-v6-claim.
namespace {

const char* kV6OnlyLease =
    R"({"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fd00:10:244::/56","SubnetSource":"lease"})";
const char* kV6OnlyPodCidr =
    R"({"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fd00:10:244::/56","SubnetSource":"podCIDR"})";
const char* kV6OnlyAuto = R"({"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fd00:10:244::/56"})";

Lease v6only_base(const std::string& public_ipv6 = "2001:db8::1") {
  Lease base;
  base.public_ip_v6 = *Ipv6Addr::parse(public_ipv6);
  base.vtep_mac_v6 = *Mac::parse("0e:00:00:00:06:01");
  return base;
}

std::map<std::string, std::string> v6_lease_of(const std::string& subnet_v6) {
  return {{"weft.io/subnet-v6", subnet_v6},
          {"weft.io/public-ipv6", "2001:db8::9"},
          {"weft.io/backend-type", "vxlan"},
          {"weft.io/backend-v6-data", R"({"VNI":1,"VtepMAC":"0e:00:00:00:06:09"})"}};
}

// acquire(base) on a thread, bounded: a protocol that waits forever fails the test, not the run.
Result<Lease> acquire_within(SubnetManager& m, const Lease& base, std::chrono::milliseconds limit = 3s) {
  std::optional<Result<Lease>> result;
  std::atomic<bool> done{false};
  std::thread t([&] {
    result = m.acquire(base);
    done = true;
  });
  bool finished = eventually([&] { return done.load(); }, static_cast<int>(limit.count()));
  if (!finished) m.stop();
  t.join();
  if (!finished)
    FAIL("acquire did not return within " << limit.count() << " ms; it waited: " << m.stats().lease_waiting);
  return std::move(*result);
}

// The published lease of an IPv6-only node: exactly the IPv6 keys, no IPv4 one, no claim left.
void check_v6only_published(const std::map<std::string, std::string>& a, const Lease& l) {
  REQUIRE(l.subnet_v6);
  CHECK(a.at("weft.io/subnet-v6") == l.subnet_v6->str());
  CHECK(a.at("weft.io/public-ipv6") == "2001:db8::1");
  CHECK(a.at("weft.io/backend-type") == "vxlan");
  CHECK(a.at("weft.io/backend-v6-data") == R"({"VNI":1,"VtepMAC":"0e:00:00:00:06:01"})");  // over IPv6: VNI itself
  CHECK(a.count("weft.io/claimed-at") == 1);
  for (const char* key : {"weft.io/subnet", "weft.io/subnet-claim", "weft.io/public-ip", "weft.io/backend-data",
                          "weft.io/subnet-v6-claim"}) {
    CAPTURE(key);
    CHECK_FALSE(a.count(key));
  }
  CHECK(a.size() == 5);
}

}  // namespace

TEST_CASE("IPv6-only podCIDR: the node's IPv6 podCIDR is the lease, published without IPv4 keys", "[lease][ipv6only]") {
  auto c = std::make_shared<Cluster>();
  c->add_node("n1", {}, {"fd00:10:244:9::/64"});
  auto l = acquire_within(*manager(c, "n1", kV6OnlyPodCidr), v6only_base());
  REQUIRE(l);
  CHECK(l->subnet_v6 == test::pfx6("fd00:10:244:9::/64"));
  CHECK_FALSE(l->subnet);
  CHECK_FALSE(l->public_ip);
  CHECK_FALSE(l->vtep_mac);
  CHECK(l->public_ip_v6->str() == "2001:db8::1");
  check_v6only_published(annotations(c, "n1"), *l);

  // A dual-stack controller's podCIDRs: the IPv6 entry is taken, in either order.
  c->add_node("n2", {}, {"10.244.3.0/24", "fd00:10:244:3::/64"});
  auto l2 = acquire_within(*manager(c, "n2", kV6OnlyPodCidr), v6only_base());
  REQUIRE(l2);
  CHECK(l2->subnet_v6 == test::pfx6("fd00:10:244:3::/64"));
  CHECK_FALSE(l2->subnet);
  CHECK_FALSE(annotations(c, "n2").count("weft.io/subnet"));

  // The controller's first subnet is below IPv6SubnetMin: taken all the same.
  c->add_node("n0", {}, {"fd00:10:244::/64"});
  auto l0 = acquire_within(*manager(c, "n0", kV6OnlyAuto), v6only_base());
  REQUIRE(l0);
  CHECK(l0->subnet_v6 == test::pfx6("fd00:10:244::/64"));
}

TEST_CASE("IPv6-only podCIDR: waits for the controller, then takes the podCIDR", "[lease][ipv6only]") {
  auto c = std::make_shared<Cluster>();
  c->add_node("n1");
  Acquiring a(manager(c, "n1", kV6OnlyPodCidr), v6only_base());
  REQUIRE(eventually([&] { return !a.m->stats().lease_waiting.empty(); }));
  CHECK_THAT(a.m->stats().lease_waiting, Catch::Contains("waiting for spec.podCIDR of node n1"));
  CHECK(annotations(c, "n1").empty());
  c->set_pod_cidrs("n1", {"fd00:10:244:5::/64"});
  REQUIRE(eventually([&] { return a.done.load(); }));
  REQUIRE(*a.result);
  CHECK((*a.result)->subnet_v6 == test::pfx6("fd00:10:244:5::/64"));
}

TEST_CASE("IPv6-only podCIDR: an IPv4-only or wrong podCIDR is a clear error, nothing is published",
          "[lease][ipv6only]") {
  auto c = std::make_shared<Cluster>();
  // The controller runs single-stack IPv4: it will never add an IPv6 podCIDR.
  c->add_node("v4only", {}, {"10.244.6.0/24"});
  for (const char* netconf : {kV6OnlyPodCidr, kV6OnlyAuto, kV6OnlyLease}) {
    CAPTURE(netconf);
    auto refused = acquire_within(*manager(c, "v4only", netconf), v6only_base());
    REQUIRE_FALSE(refused);
    CHECK_THAT(refused.error(), Catch::Contains("10.244.6.0/24") && Catch::Contains("IPv6"));
    CHECK(annotations(c, "v4only").empty());
  }

  c->add_node("wide", {}, {"fd00:10:244:10::/60"});
  auto wide = acquire_within(*manager(c, "wide", kV6OnlyPodCidr), v6only_base());
  REQUIRE_FALSE(wide);
  CHECK_THAT(wide.error(), Catch::Contains("fd00:10:244:10::/60") && Catch::Contains("/64"));
  CHECK(annotations(c, "wide").empty());

  c->add_node("outside", {}, {"2001:db8:7::/64"});
  auto outside = acquire_within(*manager(c, "outside", kV6OnlyPodCidr), v6only_base());
  REQUIRE_FALSE(outside);
  CHECK_THAT(outside.error(), Catch::Contains("2001:db8:7::/64") && Catch::Contains("fd00:10:244::/56"));
  CHECK(annotations(c, "outside").empty());

  // An IPv6-only lease needs the IPv6 underlay address.
  c->add_node("noip", {}, {"fd00:10:244:8::/64"});
  Lease no_ip = v6only_base();
  no_ip.public_ip_v6.reset();
  auto r = acquire_within(*manager(c, "noip", kV6OnlyPodCidr), no_ip);
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error(), Catch::Contains("--public-ipv6"));
}

TEST_CASE("IPv6-only lease: a subnet-v6 is claimed, verified, published and kept across restarts",
          "[lease][ipv6only]") {
  auto c = std::make_shared<Cluster>();
  c->add_node("n1");
  auto l = acquire_within(*manager(c, "n1", kV6OnlyLease), v6only_base());
  REQUIRE(l);
  REQUIRE(l->subnet_v6);
  CHECK(fits_network(*l->subnet_v6, test::v6(kV6OnlyLease)));
  CHECK_FALSE(l->subnet);
  auto first = annotations(c, "n1");
  check_v6only_published(first, *l);
  // The protocol wrote a claim first (subnet-v6-claim), then the lease.
  bool claimed = false;
  {
    std::lock_guard<std::mutex> lock(c->mu);
    for (const auto& [rv, e] : c->history) {
      if (e.node.name == "n1" && e.node.annotations.count("weft.io/subnet-v6-claim") &&
          !e.node.annotations.count("weft.io/subnet-v6"))
        claimed = e.node.annotations.at("weft.io/subnet-v6-claim") == l->subnet_v6->str();
    }
  }
  CHECK(claimed);

  std::this_thread::sleep_for(5ms);
  auto again_m = manager(c, "n1", kV6OnlyLease);
  auto again = acquire_within(*again_m, v6only_base());
  REQUIRE(again);
  CHECK(again->subnet_v6 == l->subnet_v6);
  CHECK(annotations(c, "n1") == first);  // claimed-at too
  CHECK(again_m->stats().lease_attempts == 0);

  // Kept even when another Node has since published it (it is the later claim).
  c->add_node("copier", v6_lease_of(l->subnet_v6->str()));
  auto kept = acquire_within(*manager(c, "n1", kV6OnlyAuto), v6only_base());
  REQUIRE(kept);
  CHECK(kept->subnet_v6 == l->subnet_v6);
}

TEST_CASE("IPv6-only lease: avoids other Nodes' v6 leases, claims and podCIDRs, then the network is full",
          "[lease][ipv6only]") {
  // fd00:10:244::/62: four /64s, IPv6SubnetMin at the network.
  const char* net =
      R"({"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fd00:10:244::/62","IPv6SubnetMin":"fd00:10:244::",)"
      R"("SubnetSource":"lease"})";
  for (int rep = 0; rep < 10; ++rep) {
    auto c = std::make_shared<Cluster>();
    c->add_node("leased", v6_lease_of("fd00:10:244::/64"));
    c->add_node("claiming", {{"weft.io/subnet-v6-claim", "fd00:10:244:1::/64"}});
    c->add_node("controller", {}, {"10.244.3.0/24", "fd00:10:244:3::/64"});
    // IPv4 values do not make IPv6 subnets taken.
    c->add_node("v4", lease_of("10.244.2.0/24"));
    c->add_node("me");
    auto l = acquire_within(*manager(c, "me", net), v6only_base());
    REQUIRE(l);
    CHECK(l->subnet_v6 == test::pfx6("fd00:10:244:2::/64"));
  }
  auto c = std::make_shared<Cluster>();
  for (int i = 0; i < 4; ++i) c->add_node("n" + std::to_string(i), v6_lease_of(fmt::format("fd00:10:244:{}::/64", i)));
  c->add_node("me");
  auto full = acquire_within(*manager(c, "me", net), v6only_base());
  REQUIRE_FALSE(full);
  CHECK_THAT(full.error(), Catch::Contains("fd00:10:244::/62 is full") && Catch::Contains("IPv6Network"));
  CHECK(annotations(c, "me").empty());
}

TEST_CASE("IPv6-only lease: a subnet-v6-claim left by a stopped run is verified, then confirmed or withdrawn",
          "[lease][ipv6only]") {
  auto c = std::make_shared<Cluster>();
  c->add_node("n1", {{"weft.io/subnet-v6-claim", "fd00:10:244:77::/64"}});
  auto l = acquire_within(*manager(c, "n1", kV6OnlyLease), v6only_base());
  REQUIRE(l);
  CHECK(l->subnet_v6 == test::pfx6("fd00:10:244:77::/64"));
  check_v6only_published(annotations(c, "n1"), *l);

  // Two crashed runs claimed one subnet: the first to verify sees the other's claim, withdraws
  // its own and leases another; the other then confirms the subnet. One winner.
  c->add_node("a", {{"weft.io/subnet-v6-claim", "fd00:10:244:42::/64"}});
  c->add_node("b", {{"weft.io/subnet-v6-claim", "fd00:10:244:42::/64"}});
  auto ma = manager(c, "a", kV6OnlyLease);
  auto la = acquire_within(*ma, v6only_base());
  REQUIRE(la);
  CHECK(la->subnet_v6 != test::pfx6("fd00:10:244:42::/64"));
  CHECK(ma->stats().lease_conflicts == 1);
  CHECK(annotations(c, "b").at("weft.io/subnet-v6-claim") == "fd00:10:244:42::/64");  // b's untouched
  bool withdrawn = false;  // a's node was once without any v6 claim or lease
  {
    std::lock_guard<std::mutex> lock(c->mu);
    for (const auto& [rv, e] : c->history) {
      if (e.node.name == "a" && e.type == WatchEventType::Modified && !e.node.annotations.count("weft.io/subnet-v6") &&
          !e.node.annotations.count("weft.io/subnet-v6-claim"))
        withdrawn = true;
    }
  }
  CHECK(withdrawn);
  auto lb = acquire_within(*manager(c, "b", kV6OnlyLease), v6only_base());
  REQUIRE(lb);
  CHECK(lb->subnet_v6 == test::pfx6("fd00:10:244:42::/64"));
  CHECK_FALSE(annotations(c, "b").count("weft.io/subnet-v6-claim"));

  // A leftover claim on a subnet another Node has confirmed since: withdrawn, never published.
  c->add_node("late", {{"weft.io/subnet-v6-claim", "fd00:10:244:77::/64"}});
  auto ml = manager(c, "late", kV6OnlyLease);
  auto ll = acquire_within(*ml, v6only_base());
  REQUIRE(ll);
  CHECK(ll->subnet_v6 != test::pfx6("fd00:10:244:77::/64"));
  CHECK(ml->stats().lease_conflicts == 1);
}

TEST_CASE("IPv6-only lease: a lagging watch cache never makes two nodes share a subnet", "[lease][ipv6only]") {
  // me alone in a cache frozen before seven Nodes took seven of the eight /64s.
  const char* net =
      R"({"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fd00:10:244::/61","IPv6SubnetMin":"fd00:10:244::",)"
      R"("SubnetSource":"lease"})";
  for (int rep = 0; rep < 5; ++rep) {
    auto c = std::make_shared<Cluster>();
    c->add_node("me");
    c->freeze_cache();
    for (int i = 0; i < 7; ++i)
      c->add_node("o" + std::to_string(i), v6_lease_of(fmt::format("fd00:10:244:{}::/64", i)));
    auto l = acquire_within(*manager(c, "me", net), v6only_base());
    REQUIRE(l);
    CHECK(l->subnet_v6 == test::pfx6("fd00:10:244:7::/64"));
    CHECK_FALSE(annotations(c, "me").count("weft.io/subnet-v6-claim"));
  }
}

TEST_CASE("IPv6-only lease: thirty managers racing never share a subnet", "[lease][ipv6only]") {
  const char* net = R"({"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fd00:10:244::/59","SubnetSource":"lease"})";
  for (int rep = 0; rep < 3; ++rep) {
    auto c = std::make_shared<Cluster>();
    const int n = 30;  // 31 leasable /64s
    for (int i = 0; i < n; ++i) c->add_node("n" + std::to_string(i));
    std::vector<std::unique_ptr<SubnetManager>> ms;
    for (int i = 0; i < n; ++i) ms.push_back(manager(c, "n" + std::to_string(i), net));
    std::vector<std::optional<Ipv6Prefix>> leases(n);
    std::vector<std::thread> ts;
    for (int i = 0; i < n; ++i) {
      ts.emplace_back([&, i] {
        auto l = ms[static_cast<std::size_t>(i)]->acquire(v6only_base());
        if (l) leases[static_cast<std::size_t>(i)] = l->subnet_v6;
      });
    }
    for (auto& t : ts) t.join();
    std::set<Ipv6Prefix> distinct;
    for (int i = 0; i < n; ++i) {
      REQUIRE(leases[static_cast<std::size_t>(i)]);
      distinct.insert(*leases[static_cast<std::size_t>(i)]);
      auto a = annotations(c, "n" + std::to_string(i));
      CHECK(a.at("weft.io/subnet-v6") == leases[static_cast<std::size_t>(i)]->str());
      CHECK_FALSE(a.count("weft.io/subnet-v6-claim"));
      CHECK_FALSE(a.count("weft.io/subnet"));
    }
    CHECK(distinct.size() == static_cast<std::size_t>(n));
  }
}

TEST_CASE("IPv6-only auto: podCIDR when any Node has one, a lease in a cluster of leases or after the wait",
          "[lease][ipv6only]") {
  // An empty cluster: a lease after auto_wait.
  auto c = std::make_shared<Cluster>();
  c->add_node("first");
  auto t0 = std::chrono::steady_clock::now();
  auto first = acquire_within(*manager(c, "first", kV6OnlyAuto, 100ms), v6only_base());
  REQUIRE(first);
  CHECK(std::chrono::steady_clock::now() - t0 >= 100ms);
  REQUIRE(first->subnet_v6);
  // A cluster of (IPv6) leases: a lease at once.
  c->add_node("second");
  t0 = std::chrono::steady_clock::now();
  auto second = acquire_within(*manager(c, "second", kV6OnlyAuto, 10s), v6only_base());
  REQUIRE(second);
  CHECK(std::chrono::steady_clock::now() - t0 < 2s);
  CHECK(second->subnet_v6 != first->subnet_v6);
  // A kept lease stays, even when a podCIDR appears later.
  c->set_pod_cidrs("second", {"fd00:10:244:99::/64"});
  auto kept_m = manager(c, "second", kV6OnlyAuto);
  auto kept = acquire_within(*kept_m, v6only_base());
  REQUIRE(kept);
  CHECK(kept->subnet_v6 == second->subnet_v6);
  CHECK_THAT(kept_m->stats().lease_problem, Catch::Contains("spec.podCIDR is fd00:10:244:99::/64"));

  // A Node with a podCIDR: wait for ours, never lease.
  auto d = std::make_shared<Cluster>();
  d->add_node("cp", {}, {"fd00:10:244::/64"});
  d->add_node("n1");
  Acquiring a(manager(d, "n1", kV6OnlyAuto), v6only_base());
  REQUIRE(eventually([&] { return !a.m->stats().lease_waiting.empty(); }));
  CHECK_THAT(a.m->stats().lease_waiting, Catch::Contains("node cp has a podCIDR"));
  std::this_thread::sleep_for(60ms);
  CHECK_FALSE(a.done);
  CHECK(annotations(d, "n1").empty());
  d->set_pod_cidrs("n1", {"fd00:10:244:1::/64"});
  REQUIRE(eventually([&] { return a.done.load(); }));
  REQUIRE(*a.result);
  CHECK((*a.result)->subnet_v6 == test::pfx6("fd00:10:244:1::/64"));
}
