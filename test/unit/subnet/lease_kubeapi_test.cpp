// The lease protocol against the API test double (weft's own RBAC: read nodes, patch nodes/status).
#include <barrier>
#include <catch2/catch.hpp>
#include <set>

#include "kube_support.hpp"

using namespace weft;
using namespace weft::test;

namespace {

const Mac kMac = *Mac::parse("0e:00:00:00:00:01");
const Ipv4Addr kIp = *Ipv4Addr::parse("192.0.2.1");

std::string annotation(const KubeApiServer& s, const std::string& node, const std::string& key) {
  auto a = s.get_node(node)["metadata"].value("annotations", nlohmann::json::object());
  return a.value(key, "");
}

}  // namespace

TEST_CASE("lease: podCIDR mode leases spec.podCIDR and publishes every annotation", "[lease]") {
  KubeApiServer s;
  s.create_node("n1", "192.0.2.11", "10.244.7.0/24");
  auto m = real_manager(s, "n1");
  auto own = m->read_own_node();
  REQUIRE(own);
  CHECK(own->pod_cidr->str() == "10.244.7.0/24");
  CHECK(own->internal_ip->str() == "192.0.2.11");
  CHECK_FALSE(own->vtep_mac);
  auto l = m->acquire(kIp, kMac);
  REQUIRE(l);
  CHECK(l->subnet->str() == "10.244.7.0/24");
  CHECK(annotation(s, "n1", "weft.io/subnet") == "10.244.7.0/24");
  CHECK(annotation(s, "n1", "weft.io/public-ip") == "192.0.2.1");
  CHECK(annotation(s, "n1", "weft.io/backend-type") == "vxlan");
  CHECK(annotation(s, "n1", "weft.io/backend-data") == R"({"VNI":1,"VtepMAC":"0e:00:00:00:00:01"})");
  // The next run finds its MAC again.
  CHECK(real_manager(s, "n1")->read_own_node()->vtep_mac == kMac);
}

TEST_CASE("lease: a podCIDR outside the network is an error naming both", "[lease]") {
  KubeApiServer s;
  s.create_node("n1", "192.0.2.11", "10.9.0.0/24");
  auto l = real_manager(s, "n1")->acquire(kIp, kMac);
  REQUIRE_FALSE(l);
  CHECK_THAT(l.error(), Catch::Contains("podCIDR 10.9.0.0/24") && Catch::Contains("10.244.0.0/16"));
}

TEST_CASE("lease: a missing Node is an error naming the node-name setting", "[lease]") {
  KubeApiServer s;
  auto own = real_manager(s, "ghost")->read_own_node();
  REQUIRE_FALSE(own);
  CHECK_THAT(own.error(), Catch::Contains("ghost") && Catch::Contains("--node-name"));
}

TEST_CASE("lease: annotation mode keeps its lease over a restart", "[lease]") {
  KubeApiServer s;
  s.create_node("n1");
  auto first = real_manager(s, "n1")->acquire(kIp, kMac);
  REQUIRE(first);
  CHECK(annotation(s, "n1", "weft.io/subnet") == first->subnet->str());
  CHECK(annotation(s, "n1", "weft.io/subnet-claim").empty());
  s.reset_stats();
  auto again = real_manager(s, "n1")->acquire(kIp, kMac);
  REQUIRE(again);
  CHECK(again->subnet == first->subnet);
  CHECK(s.stats().at("patches").get<int>() == 0);  // already published: nothing written
}

TEST_CASE("lease: a /22 of /24s gives four leases, then a clear network-full error", "[lease]") {
  KubeApiServer s;
  const char* net = R"({"Network":"10.0.0.0/22","SubnetLen":24,"SubnetMin":"10.0.0.0"})";
  std::set<std::string> got;
  for (int i = 0; i < 4; ++i) {
    s.create_node("n" + std::to_string(i));
    auto l = real_manager(s, "n" + std::to_string(i), net)->acquire(kIp, kMac);
    REQUIRE(l);
    got.insert(l->subnet->str());
  }
  CHECK(got == std::set<std::string>{"10.0.0.0/24", "10.0.1.0/24", "10.0.2.0/24", "10.0.3.0/24"});
  s.create_node("n4");
  auto full = real_manager(s, "n4", net)->acquire(kIp, kMac);
  REQUIRE_FALSE(full);
  CHECK_THAT(full.error(), Catch::Contains("network 10.0.0.0/22 is full") && Catch::Contains("all 4 /24"));
}

// Every Node's confirmed subnet, checked for overlaps.
void check_distinct(const KubeApiServer& s, std::size_t expected) {
  std::map<std::string, std::string> by_subnet;
  auto list = s.list_nodes();
  for (const auto& n : list["items"]) {
    auto a = n["metadata"].value("annotations", nlohmann::json::object());
    std::string subnet = a.value("weft.io/subnet", "");
    REQUIRE_FALSE(subnet.empty());
    std::string name = n["metadata"]["name"];
    auto [it, fresh] = by_subnet.emplace(subnet, name);
    INFO(name << " and " << it->second << " both hold " << subnet);
    REQUIRE(fresh);
    CHECK(a.count("weft.io/subnet-claim") == 0);
  }
  CHECK(by_subnet.size() == expected);
}

// Fifty managers (threads, each with its own client) join an empty cluster at once, `rounds` times.
void race(int rounds) {
  KubeApiServer s;
  const int n = 50;
  const char* net = R"({"Network":"10.244.0.0/18"})";  // 63 subnets for 50 nodes: many collisions
  std::uint64_t conflicts = 0;
  auto t_all = std::chrono::steady_clock::now();
  for (int round = 0; round < rounds; ++round) {
    auto old = s.list_nodes();
    for (const auto& node : old["items"]) s.delete_node(node["metadata"]["name"]);
    std::vector<std::unique_ptr<SubnetManager>> ms;
    for (int i = 0; i < n; ++i) {
      std::string name = "r" + std::to_string(round) + "-n" + std::to_string(i);
      s.create_node(name);
      ms.push_back(real_manager(s, name, net));
    }
    std::barrier start(n);
    std::vector<std::string> errors(n);
    std::vector<std::thread> ts;
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < n; ++i) {
      ts.emplace_back([&, i] {
        start.arrive_and_wait();
        auto l = ms[static_cast<std::size_t>(i)]->acquire(kIp, kMac);
        if (!l) errors[static_cast<std::size_t>(i)] = l.error();
      });
    }
    for (auto& t : ts) t.join();
    for (const auto& e : errors) {
      INFO(e);
      REQUIRE(e.empty());
    }
    for (const auto& m : ms) conflicts += m->stats().lease_conflicts;
    WARN("round " << round << ": 50 leases in " << ms_since(t0) << " ms");
    check_distinct(s, n);
  }
  WARN(rounds << " rounds of " << n << " managers: " << ms_since(t_all) << " ms in all, " << conflicts
              << " lost races withdrawn");
}

TEST_CASE("lease: fifty managers joining at once never share a subnet (2 rounds)", "[lease]") { race(2); }

TEST_CASE("lease: fifty managers joining at once never share a subnet (20 rounds)", "[lease][slow]") {
  race(std::getenv("WEFT_RACE_ROUNDS") ? std::atoi(std::getenv("WEFT_RACE_ROUNDS")) : 20);
}

TEST_CASE("lease: against the double, the lease avoids every podCIDR and a /16 does not fill the network",
          "[lease][ownership]") {
  // Issue #15, 2 and 3, over HTTP: the picking list is a full list (spec.podCIDRs included).
  KubeApiServer s;
  const char* net = R"({"Network":"10.0.0.0/22","SubnetLen":24,"SubnetMin":"10.0.0.0","SubnetSource":"lease"})";
  s.create_node("a", "192.0.2.11", "10.0.0.0/24");
  s.create_node("b", "192.0.2.12", "10.0.1.0/24");
  s.create_node("c", "192.0.2.13", "10.0.3.0/24");
  s.create_node("hostile", "192.0.2.14", "", peer_annotations("10.0.0.0/22"));
  s.create_node("me");
  auto l = real_manager(s, "me", net)->acquire(kIp, kMac);
  REQUIRE(l);
  CHECK(l->subnet->str() == "10.0.2.0/24");
  CHECK_FALSE(annotation(s, "me", "weft.io/claimed-at").empty());
}

TEST_CASE("lease: against the double, SubnetSource podCIDR waits until the podCIDR is set", "[lease][ownership]") {
  KubeApiServer s;
  s.create_node("n1");
  auto m = real_manager(s, "n1", R"({"Network":"10.244.0.0/16","SubnetSource":"podCIDR"})");
  std::optional<Result<Lease>> got;
  std::thread t([&] { got = m->acquire(kIp, kMac); });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CHECK(annotation(s, "n1", "weft.io/subnet").empty());
  CHECK(annotation(s, "n1", "weft.io/subnet-claim").empty());
  CHECK_THAT(m->stats().lease_waiting, Catch::Contains("waiting for spec.podCIDR"));
  s.request("PATCH", "/api/v1/nodes/n1", R"({"spec":{"podCIDR":"10.244.9.0/24","podCIDRs":["10.244.9.0/24"]}})",
            "application/merge-patch+json", s.admin_token());
  t.join();
  REQUIRE(got);
  REQUIRE(*got);
  CHECK((*got)->subnet->str() == "10.244.9.0/24");
}

// IPv6-only clusters over HTTP: the lease is the IPv6 subnet, and no IPv4 key is published.
namespace {

const char* kV6OnlyLease =
    R"({"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fd00:10:244::/56","SubnetSource":"lease"})";

Lease v6only_base() {
  Lease base;
  base.public_ip_v6 = *Ipv6Addr::parse("2001:db8::1");
  base.vtep_mac_v6 = *Mac::parse("0e:00:00:00:06:01");
  return base;
}

void check_no_ipv4_keys(const KubeApiServer& s, const std::string& node) {
  for (const char* key : {"weft.io/subnet", "weft.io/subnet-claim", "weft.io/public-ip", "weft.io/backend-data",
                          "weft.io/subnet-v6-claim"}) {
    CAPTURE(key);
    CHECK(annotation(s, node, key).empty());
  }
}

}  // namespace

TEST_CASE("lease: IPv6-only, annotation mode leases an IPv6 subnet and keeps it over a restart", "[lease][ipv6only]") {
  KubeApiServer s;
  s.create_node("n1", "2001:db8::11");
  s.create_node("other", "2001:db8::12", "",
                {{"weft.io/subnet-v6", "fd00:10:244:1::/64"},
                 {"weft.io/public-ipv6", "2001:db8::12"},
                 {"weft.io/backend-type", "vxlan"},
                 {"weft.io/backend-v6-data", R"({"VNI":1,"VtepMAC":"0e:00:00:00:06:12"})"}});
  auto first = real_manager(s, "n1", kV6OnlyLease)->acquire(v6only_base());
  REQUIRE(first);
  REQUIRE(first->subnet_v6);
  CHECK_FALSE(first->subnet);
  CHECK(first->subnet_v6 != test::pfx6("fd00:10:244:1::/64"));
  CHECK(annotation(s, "n1", "weft.io/subnet-v6") == first->subnet_v6->str());
  CHECK(annotation(s, "n1", "weft.io/public-ipv6") == "2001:db8::1");
  CHECK(annotation(s, "n1", "weft.io/backend-v6-data") == R"({"VNI":1,"VtepMAC":"0e:00:00:00:06:01"})");
  CHECK_FALSE(annotation(s, "n1", "weft.io/claimed-at").empty());
  check_no_ipv4_keys(s, "n1");
  s.reset_stats();
  auto again = real_manager(s, "n1", kV6OnlyLease)->acquire(v6only_base());
  REQUIRE(again);
  CHECK(again->subnet_v6 == first->subnet_v6);
  CHECK(s.stats().at("patches").get<int>() == 0);  // already published: nothing written
}

TEST_CASE("lease: IPv6-only, podCIDR mode takes the IPv6 podCIDR and refuses an IPv4 one", "[lease][ipv6only]") {
  KubeApiServer s;
  const char* net =
      R"({"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fd00:10:244::/56","SubnetSource":"podCIDR"})";
  s.create_node("n1", "2001:db8::11", "fd00:10:244:7::/64");
  auto m = real_manager(s, "n1", net);
  auto own = m->read_own_node();
  REQUIRE(own);
  CHECK_FALSE(own->pod_cidr);  // the IPv4 podCIDR: there is none in an IPv6-only cluster
  auto l = m->acquire(v6only_base());
  REQUIRE(l);
  CHECK(l->subnet_v6 == test::pfx6("fd00:10:244:7::/64"));
  CHECK(annotation(s, "n1", "weft.io/subnet-v6") == "fd00:10:244:7::/64");
  check_no_ipv4_keys(s, "n1");

  s.create_node("v4", "2001:db8::12", "10.244.7.0/24");
  auto refused = real_manager(s, "v4", net)->acquire(v6only_base());
  REQUIRE_FALSE(refused);
  CHECK_THAT(refused.error(), Catch::Contains("10.244.7.0/24") && Catch::Contains("IPv6"));
  CHECK(annotation(s, "v4", "weft.io/subnet-v6").empty());
}
