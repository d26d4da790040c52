// The subnet manager over the in-memory fake client: lease protocol and watch semantics
// without HTTP (the same behaviours are tested against the API test double elsewhere).
#include <atomic>
#include <catch2/catch.hpp>
#include <set>
#include <thread>

#include "fake_kube_client.hpp"
#include "subnet/kube/kube_subnet_manager.hpp"
#include "test_util.hpp"

using namespace weft;
using namespace weft::kube;
using weft::test::FakeKubeClient;
using weft::test::pfx;

namespace {

using Cluster = FakeKubeClient::Cluster;

const Mac kMac = *Mac::parse("0e:00:00:00:00:01");
const Ipv4Addr kIp = *Ipv4Addr::parse("192.0.2.1");

std::unique_ptr<SubnetManager> manager(const std::shared_ptr<Cluster>& c, const std::string& name,
                                       const std::string& netconf = R"({"Network":"10.244.0.0/16"})") {
  KubeSubnetConfig cfg;
  cfg.node_name = name;
  cfg.net = test::net_config(netconf);
  cfg.backoff.initial = std::chrono::milliseconds(1);
  cfg.conflict_backoff = std::chrono::milliseconds(2);
  cfg.auto_wait = std::chrono::milliseconds(20);  // SubnetSource auto in an empty cluster
  cfg.pod_cidr_poll = std::chrono::milliseconds(5);
  auto m = make_kube_subnet_manager(std::make_shared<FakeKubeClient>(c), cfg);
  REQUIRE(m);
  return std::move(*m);
}

std::map<std::string, std::string> peer_annotations(const std::string& subnet) {
  return {{"weft.io/subnet", subnet},
          {"weft.io/public-ip", "192.0.2.9"},
          {"weft.io/backend-type", "vxlan"},
          {"weft.io/backend-data", R"({"VNI":1,"VtepMAC":"0e:00:00:00:00:09"})"}};
}

// Waits (bounded) for a condition the watch thread makes true.
template <class F>
bool eventually(F f) {
  for (int i = 0; i < 2000; ++i) {
    if (f()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return false;
}

// n1 alone in a watch cache frozen before seven other Nodes took 10.244.0-6.0/24: in a /21
// of /24s, a pick from that cache collides 7 times in 8.
std::shared_ptr<Cluster> cluster_behind_cache() {
  auto c = std::make_shared<Cluster>();
  c->add_node("n1");
  c->freeze_cache();
  for (int i = 0; i < 7; ++i) {
    c->add_node("other" + std::to_string(i), peer_annotations("10.244." + std::to_string(i) + ".0/24"));
  }
  return c;
}

}  // namespace

TEST_CASE("fake: podCIDR mode leases spec.podCIDR and publishes the annotations", "[lease][fake]") {
  auto c = std::make_shared<Cluster>();
  c->add_node("n1", {}, {"10.244.7.0/24"});
  auto m = manager(c, "n1");
  auto own = m->read_own_node();
  REQUIRE(own);
  CHECK(own->pod_cidr == pfx("10.244.7.0/24"));
  auto l = m->acquire(kIp, kMac);
  REQUIRE(l);
  CHECK(l->subnet == pfx("10.244.7.0/24"));
  CHECK(c->nodes.at("n1").annotations.at("weft.io/subnet") == "10.244.7.0/24");
  CHECK(c->nodes.at("n1").annotations.at("weft.io/backend-data") == R"({"VNI":1,"VtepMAC":"0e:00:00:00:00:01"})");
}

TEST_CASE("fake: a podCIDR outside the network is an error naming both", "[lease][fake]") {
  auto c = std::make_shared<Cluster>();
  c->add_node("n1", {}, {"10.9.0.0/24"});
  auto l = manager(c, "n1")->acquire(kIp, kMac);
  REQUIRE_FALSE(l);
  CHECK_THAT(l.error(), Catch::Contains("10.9.0.0/24") && Catch::Contains("10.244.0.0/16"));
}

TEST_CASE("fake: no node name is a clear error", "[lease][fake]") {
  ::unsetenv("NODE_NAME");
  KubeSubnetConfig cfg;
  cfg.net = test::net_config(R"({"Network":"10.244.0.0/16"})");
  auto m = make_kube_subnet_manager(std::make_shared<FakeKubeClient>(std::make_shared<Cluster>()), cfg);
  REQUIRE_FALSE(m);
  CHECK_THAT(m.error(), Catch::Contains("--node-name") && Catch::Contains("NODE_NAME"));
  ::setenv("NODE_NAME", "from-env", 1);
  CHECK(*resolve_node_name("") == "from-env");
  CHECK(*resolve_node_name("flag") == "flag");
  ::unsetenv("NODE_NAME");
  CHECK_FALSE(resolve_node_name("Bad_Name"));
}

TEST_CASE("fake: an annotation lease is kept across a restart", "[lease][fake]") {
  auto c = std::make_shared<Cluster>();
  c->add_node("n1");
  auto first = manager(c, "n1")->acquire(kIp, kMac);
  REQUIRE(first);
  auto patches = c->patches;
  auto again = manager(c, "n1")->acquire(kIp, kMac);
  REQUIRE(again);
  CHECK(again->subnet == first->subnet);
  CHECK(c->patches == patches);  // nothing to write: the annotations are already right
  CHECK(c->nodes.at("n1").annotations.count("weft.io/subnet-claim") == 0);
}

TEST_CASE("fake: a restart lists once, from the watch cache, and the watch starts from it", "[lease][fake]") {
  auto c = std::make_shared<Cluster>();
  c->add_node("n1");
  c->add_node("peer", peer_annotations("10.244.9.0/24"));
  REQUIRE(manager(c, "n1")->acquire(kIp, kMac));
  c->lists = c->full_lists = c->cached_lists = c->watches = 0;
  auto m = manager(c, "n1");
  REQUIRE(m->acquire(kIp, kMac));
  m->start_watch([] {});
  REQUIRE(eventually([&] { return m->peers().size() == 1; }));
  m->stop();
  CHECK(c->cached_lists == 1);
  CHECK(c->lists == 0);
  CHECK(c->full_lists == 0);
}

TEST_CASE("fake: a lagging watch cache never makes two nodes share a subnet", "[lease][fake]") {
  // Eight subnets; the cache shows them all free while seven are held: the pick from the cache
  // collides 7 times in 8, and the claim's verification against etcd must catch it.
  const std::string netconf = R"({"Network":"10.244.0.0/21","SubnetLen":24})";
  for (int run = 0; run < 5; ++run) {
    auto c = cluster_behind_cache();
    auto m = manager(c, "n1", netconf);
    auto l = m->acquire(kIp, kMac);
    REQUIRE(l);
    CHECK(l->subnet == pfx("10.244.7.0/24"));
    CHECK(c->cached_lists >= 1);
    CHECK(c->catch_ups >= 1);  // the first claim is verified through the watch
  }
}

TEST_CASE("fake: a claim's catch-up watch that gets 410 falls back to a list from etcd", "[lease][fake]") {
  const std::string netconf = R"({"Network":"10.244.0.0/21","SubnetLen":24})";
  for (int run = 0; run < 5; ++run) {
    auto c = cluster_behind_cache();
    c->compact();  // the cache's resourceVersion is now too old to watch from
    auto l = manager(c, "n1", netconf)->acquire(kIp, kMac);
    REQUIRE(l);
    CHECK(l->subnet == pfx("10.244.7.0/24"));
    CHECK(c->catch_ups >= 1);
    CHECK(c->lists >= 1);
  }
}

TEST_CASE("fake: a claim left by an interrupted run is verified against etcd, not the cache", "[lease][fake]") {
  auto c = std::make_shared<Cluster>();
  c->add_node("n1", {{"weft.io/subnet-claim", "10.244.77.0/24"}});
  c->freeze_cache();
  c->add_node("other", peer_annotations("10.244.77.0/24"));
  auto m = manager(c, "n1");
  auto l = m->acquire(kIp, kMac);
  REQUIRE(l);
  CHECK(l->subnet != pfx("10.244.77.0/24"));
  CHECK(m->stats().lease_conflicts == 1);
}

TEST_CASE("fake: a claim left by an interrupted run is verified and confirmed", "[lease][fake]") {
  auto c = std::make_shared<Cluster>();
  c->add_node("n1", {{"weft.io/subnet-claim", "10.244.77.0/24"}});
  auto l = manager(c, "n1")->acquire(kIp, kMac);
  REQUIRE(l);
  CHECK(l->subnet == pfx("10.244.77.0/24"));
}

TEST_CASE("fake: a claim that collides is withdrawn and another subnet leased", "[lease][fake]") {
  auto c = std::make_shared<Cluster>();
  c->add_node("other", peer_annotations("10.244.77.0/24"));
  c->add_node("n1", {{"weft.io/subnet-claim", "10.244.77.0/24"}});
  auto m = manager(c, "n1");
  auto l = m->acquire(kIp, kMac);
  REQUIRE(l);
  CHECK(l->subnet != pfx("10.244.77.0/24"));
  CHECK(m->stats().lease_conflicts == 1);
}

TEST_CASE("fake: a /22 gives four leases, then network full", "[lease][fake]") {
  auto c = std::make_shared<Cluster>();
  const char* net = R"({"Network":"10.0.0.0/22","SubnetLen":24,"SubnetMin":"10.0.0.0"})";
  std::set<Ipv4Prefix> got;
  for (int i = 0; i < 4; ++i) {
    c->add_node("n" + std::to_string(i));
    auto l = manager(c, "n" + std::to_string(i), net)->acquire(kIp, kMac);
    REQUIRE(l);
    got.insert(*l->subnet);
  }
  CHECK(got.size() == 4);
  c->add_node("n4");
  auto full = manager(c, "n4", net)->acquire(kIp, kMac);
  REQUIRE_FALSE(full);
  CHECK_THAT(full.error(), Catch::Contains("10.0.0.0/22 is full"));
}

TEST_CASE("fake: thirty managers racing never share a subnet", "[lease][fake]") {
  for (int rep = 0; rep < 5; ++rep) {
    auto c = std::make_shared<Cluster>();
    const int n = 30;
    for (int i = 0; i < n; ++i) c->add_node("n" + std::to_string(i));
    std::vector<std::unique_ptr<SubnetManager>> ms;
    for (int i = 0; i < n; ++i) ms.push_back(manager(c, "n" + std::to_string(i), R"({"Network":"10.244.0.0/19"})"));
    std::vector<std::optional<Ipv4Prefix>> leases(n);
    std::vector<std::thread> ts;
    for (int i = 0; i < n; ++i) {
      ts.emplace_back([&, i] {
        auto l = ms[static_cast<std::size_t>(i)]->acquire(kIp, kMac);
        if (l) leases[static_cast<std::size_t>(i)] = l->subnet;
      });
    }
    for (auto& t : ts) t.join();
    std::set<Ipv4Prefix> distinct;
    for (const auto& l : leases) {
      REQUIRE(l);
      distinct.insert(*l);
    }
    CHECK(distinct.size() == static_cast<std::size_t>(n));
  }
}

TEST_CASE("fake: list then watch, 410 gives exactly one relist, an ended watch resumes without one", "[watch][fake]") {
  auto c = std::make_shared<Cluster>();
  c->add_node("me");
  c->add_node("a", peer_annotations("10.244.2.0/24"));
  auto m = manager(c, "me");
  std::atomic<int> calls{0};
  m->start_watch([&] { ++calls; });
  REQUIRE(eventually([&] { return calls >= 1; }));
  CHECK(m->peers().size() == 1);
  c->add_node("b", peer_annotations("10.244.3.0/24"));
  REQUIRE(eventually([&] { return m->peers().size() == 2; }));
  c->end_watches();
  c->set_annotations("b", peer_annotations("10.244.4.0/24"));
  REQUIRE(eventually([&] { return m->peers().count("b") && m->peers().at("b").subnet == pfx("10.244.4.0/24"); }));
  CHECK(m->stats().relists == 0);
  c->add_node_behind_compaction("c", peer_annotations("10.244.5.0/24"));
  REQUIRE(eventually([&] { return m->peers().size() == 3; }));
  CHECK(m->stats().relists == 1);
  CHECK(c->cached_lists == 1);  // the first list, from the watch cache
  CHECK(c->lists == 1);         // the relist after 410, from etcd (the cache may lag)
  m->stop();
}

TEST_CASE("fake: errors are retried, stop() interrupts everything", "[watch][fake]") {
  auto c = std::make_shared<Cluster>();
  c->add_node("me");
  for (int i = 0; i < 3; ++i) c->fail_next.push_back(ApiError{ApiErrorKind::Server, 500, "boom", {}});
  auto m = manager(c, "me");
  std::atomic<int> calls{0};
  m->start_watch([&] { ++calls; });
  REQUIRE(eventually([&] { return calls >= 1; }));
  CHECK(m->stats().api_errors == 3);
  CHECK(m->stats().lists == 1);
  auto t0 = std::chrono::steady_clock::now();
  m->stop();
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(1));
}

TEST_CASE("fake: NetworkUnavailable is one attempt that reports its error", "[condition][fake]") {
  auto c = std::make_shared<Cluster>();
  c->add_node("me");
  auto m = manager(c, "me");
  REQUIRE(m->set_network_unavailable(true, "VTEP missing"));
  REQUIRE(m->set_network_unavailable(false, "weft is running"));
  CHECK(c->conditions["me"].size() == 1);
  CHECK(c->conditions["me"][0].status == "False");
  CHECK(c->conditions["me"][0].reason == "WeftIsUp");
  c->fail_next.push_back(ApiError{ApiErrorKind::Forbidden, 403, "forbidden: may not patch nodes/status", {}});
  auto st = m->set_network_unavailable(true, "x");
  REQUIRE_FALSE(st);
  CHECK_THAT(st.error(), Catch::Contains("NetworkUnavailable=True") && Catch::Contains("may not patch nodes/status"));
}

TEST_CASE("fake: the watch starts from the lease's last list, a node added in between is still seen", "[watch][fake]") {
  auto c = std::make_shared<Cluster>();
  c->add_node("me");
  c->add_node("a", peer_annotations("10.244.2.0/24"));
  auto m = manager(c, "me");
  REQUIRE(m->acquire(kIp, kMac));
  CHECK(c->cached_lists == 1);                          // the lease's list, from the watch cache
  CHECK(c->catch_ups == 1);                             // its verification: a watch up to the claim
  CHECK(c->lists + c->full_lists == 0);                 // no list from etcd
  c->add_node("b", peer_annotations("10.244.3.0/24"));  // after that list, before the watch
  std::atomic<int> calls{0};
  m->start_watch([&] { ++calls; });
  REQUIRE(eventually([&] { return m->peers().size() == 2; }));
  CHECK(c->cached_lists + c->lists + c->full_lists == 1);  // no list of its own
  CHECK(m->stats().lists == 1);
  CHECK(m->stats().relists == 0);
  m->stop();
}
