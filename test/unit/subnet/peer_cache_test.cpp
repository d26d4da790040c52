#include <catch2/catch.hpp>

#include "subnet/kube/peer_cache.hpp"
#include "test_util.hpp"

using namespace weft;
using namespace weft::kube;
using weft::test::pfx;

namespace {

const AnnotationKeys kKeys = AnnotationKeys::with_prefix("weft.io");

// Nodes are created at 2026-01-01T00:00:<created>Z.
NodeInfo node(const std::string& name, const std::string& subnet, const std::string& mac = "0e:00:00:00:00:01",
              int created = 1) {
  NodeInfo n;
  n.name = name;
  n.resource_version = "1";
  n.creation_timestamp = format_rfc3339_ms(1767225600000LL + created * 1000LL);
  n.annotations = {{"weft.io/subnet", subnet},
                   {"weft.io/public-ip", "192.0.2.1"},
                   {"weft.io/backend-type", "vxlan"},
                   {"weft.io/backend-data", R"({"VNI":1,"VtepMAC":")" + mac + "\"}"}};
  return n;
}

PeerCache cache() {
  return PeerCache("me", kKeys,
                   PeerRules{test::v4(R"({"Network":"10.244.0.0/16"})"), "vxlan", 1, pfx("10.244.1.0/24"), std::nullopt,
                             std::nullopt},
                   1767225600000);  // our claim ranks before every Node of these tests
}

WatchEvent ev(WatchEventType t, NodeInfo n) { return WatchEvent{t, std::move(n)}; }

}  // namespace

TEST_CASE("peers come and go with their Nodes, our own Node is not a peer", "[peers]") {
  auto c = cache();
  CHECK(c.replace({node("me", "10.244.1.0/24"), node("a", "10.244.2.0/24")}));
  CHECK(c.peers().size() == 1);
  CHECK(c.apply(ev(WatchEventType::Added, node("b", "10.244.3.0/24"))));
  CHECK(c.apply(ev(WatchEventType::Modified, node("b", "10.244.3.0/24", "0e:00:00:00:00:02"))));
  CHECK(c.peers().at("b").vtep_mac->str() == "0e:00:00:00:00:02");
  CHECK_FALSE(c.apply(ev(WatchEventType::Modified, node("b", "10.244.3.0/24", "0e:00:00:00:00:02"))));  // heartbeat
  CHECK_FALSE(c.apply(ev(WatchEventType::Modified, node("me", "10.244.1.0/24", "0e:00:00:00:00:09"))));
  CHECK(c.apply(ev(WatchEventType::Deleted, node("a", "10.244.2.0/24"))));
  CHECK(c.peers().size() == 1);
  // Annotations removed: no longer a peer.
  NodeInfo bare = node("b", "");
  bare.annotations.clear();
  CHECK(c.apply(ev(WatchEventType::Modified, bare)));
  CHECK(c.peers().empty());
  CHECK(c.unjoined() == 1);
  CHECK(c.skipped() == 0);
  // A relist without b drops what is known of it.
  CHECK_FALSE(c.replace({}));
  CHECK(c.unjoined() == 0);
}

TEST_CASE("bad peers are skipped with a reason, a fix brings them back", "[peers]") {
  auto c = cache();
  NodeInfo broken = node("x", "10.244.5.0/24", "zz:00:00:00:00:01");
  CHECK_FALSE(c.replace({broken}));
  CHECK(c.skipped() == 1);
  CHECK_THAT(c.skip_reasons().at("x"), Catch::Contains("not a valid MAC"));
  CHECK_FALSE(c.apply(ev(WatchEventType::Added, node("own-overlap", "10.244.1.0/24"))));
  CHECK_THAT(c.skip_reasons().at("own-overlap"), Catch::Contains("overlaps our own"));
  CHECK(c.apply(ev(WatchEventType::Modified, node("x", "10.244.5.0/24"))));
  CHECK(c.skipped() == 1);
  CHECK(c.peers().count("x") == 1);
}

NodeInfo aged(const std::string& name, const std::string& subnet, int created, const std::string& claimed_at = "") {
  NodeInfo n = node(name, subnet, "0e:00:00:00:00:01", created);
  if (!claimed_at.empty()) n.annotations["weft.io/claimed-at"] = claimed_at;
  return n;
}

TEST_CASE("a Node copying a peer's subnet is skipped, the established owner keeps its route", "[peers][ownership]") {
  // Issue #15, 1: a Node annotated with n2's subnet made n1 and n3 drop n2's route.
  auto c = cache();
  CHECK(c.replace({aged("n2", "10.244.8.0/24", 10, "2026-01-01T00:00:12Z"), aged("n3", "10.244.9.0/24", 11)}));
  CHECK_FALSE(c.apply(ev(WatchEventType::Added, aged("g-overlap", "10.244.8.0/24", 50))));
  CHECK(c.peers().count("n2") == 1);
  CHECK(c.peers().count("n3") == 1);
  CHECK(c.peers().count("g-overlap") == 0);
  CHECK_THAT(c.skip_reasons().at("g-overlap"),
             Catch::Contains("overlaps node n2's 10.244.8.0/24") && Catch::Contains("the earlier claim keeps it"));
  CHECK(c.skipped() == 1);
  CHECK(c.outranked() == 1);
  CHECK(c.skip_reasons().count("n2") == 0);
  // Lying about its claim time does not help: a claim cannot predate its Node.
  CHECK_FALSE(c.apply(ev(WatchEventType::Modified, aged("g-overlap", "10.244.8.0/24", 50, "2000-01-01T00:00:00Z"))));
  CHECK(c.peers().count("n2") == 1);
  // The order events arrive in does not matter: the same verdict from a list with g first.
  auto d = cache();
  d.replace({aged("g-overlap", "10.244.8.0/24", 50, "2000-01-01T00:00:00Z")});
  CHECK(d.peers().count("g-overlap") == 1);  // alone, it is a peer
  CHECK(d.apply(ev(WatchEventType::Added, aged("n2", "10.244.8.0/24", 10))));
  CHECK(d.peers().count("n2") == 1);
  CHECK(d.peers().count("g-overlap") == 0);
  // The intruder leaves: n2 is untouched, nothing to reconcile.
  CHECK_FALSE(c.apply(ev(WatchEventType::Deleted, aged("g-overlap", "10.244.8.0/24", 50))));
  CHECK(c.skipped() == 0);
  CHECK(c.outranked() == 0);
}

TEST_CASE("when the owner leaves, the next claim in rank takes the subnet, ties go to the smaller name",
          "[peers][ownership]") {
  auto c = cache();
  c.replace({aged("a", "10.244.8.0/24", 5), aged("b", "10.244.8.0/24", 7), aged("c", "10.244.8.0/24", 6)});
  CHECK(c.peers().size() == 1);
  CHECK(c.peers().count("a") == 1);
  CHECK(c.apply(ev(WatchEventType::Deleted, aged("a", "", 5))));
  CHECK(c.peers().count("c") == 1);  // created before b
  CHECK_THAT(c.skip_reasons().at("b"), Catch::Contains("overlaps node c's"));
  auto t = cache();
  t.replace({aged("y", "10.244.8.0/24", 5), aged("x", "10.244.8.0/24", 5)});
  CHECK(t.peers().count("x") == 1);
  // A Node without a creationTimestamp ranks last.
  NodeInfo undated = node("0-undated", "10.244.8.0/24");
  undated.creation_timestamp.clear();
  CHECK_FALSE(t.apply(ev(WatchEventType::Added, undated)));
  CHECK(t.peers().count("x") == 1);
}

TEST_CASE("a /16 or /17 inside the network is skipped and takes nobody's route", "[peers][ownership]") {
  // Issue #15, 1: a peer's subnet was not checked against SubnetLen; a /17 black-holed every node in it.
  auto c = cache();
  CHECK(c.replace({node("a", "10.244.8.0/24"), node("b", "10.244.130.0/24")}));
  CHECK_FALSE(c.apply(ev(WatchEventType::Added, aged("wide", "10.244.0.0/17", 0))));
  CHECK_FALSE(c.apply(ev(WatchEventType::Added, aged("whole", "10.244.0.0/16", 0))));
  CHECK(c.peers().size() == 2);
  CHECK_THAT(c.skip_reasons().at("wide"), Catch::Contains("is a /17"));
  CHECK_THAT(c.skip_reasons().at("whole"), Catch::Contains("is a /16"));
  CHECK(c.outranked() == 0);
}

TEST_CASE("an earlier claim on our own subnet is reported: every other node skips us", "[peers][ownership]") {
  // Our claim ranks at 00:00:20; a Node that claimed our subnet at 00:00:05 keeps it everywhere else.
  PeerCache c("me", kKeys,
              PeerRules{test::v4(R"({"Network":"10.244.0.0/16"})"), "vxlan", 1, pfx("10.244.1.0/24"), std::nullopt,
                        std::nullopt},
              1767225620000);
  CHECK_FALSE(c.replace({aged("later", "10.244.1.0/24", 30)}));
  CHECK(c.own_conflict().empty());  // we came first: it is the one skipped
  CHECK_THAT(c.skip_reasons().at("later"), Catch::Contains("overlaps our own subnet"));
  CHECK(c.apply(ev(WatchEventType::Added, aged("owner", "10.244.1.0/24", 5))));
  CHECK_THAT(c.own_conflict(), Catch::Contains("node owner claimed 10.244.1.0/24") &&
                                   Catch::Contains("skips this node") && Catch::Contains("drain this node"));
  CHECK(c.peers().empty());  // our own subnet is never routed away, whoever owns it
  CHECK(c.apply(ev(WatchEventType::Deleted, aged("owner", "", 5))));
  CHECK(c.own_conflict().empty());
}

TEST_CASE("five thousand peers arrive as single events without slowing down", "[peers]") {
  PeerCache c(
      "me", kKeys,
      PeerRules{test::v4(R"({"Network":"10.0.0.0/8"})"), "vxlan", 1, pfx("10.0.0.0/24"), std::nullopt, std::nullopt});
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 1; i <= 5000; ++i) {
    auto s = "10." + std::to_string(i / 256) + "." + std::to_string(i % 256) + ".0/24";
    REQUIRE(c.apply(ev(WatchEventType::Added, node("n" + std::to_string(i), s))));
  }
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
  CHECK(c.peers().size() == 5000);
  CHECK(ms < 3000);  // a loose guard against quadratic work; the benchmark has the real figure
}

namespace {

PeerCache dual_cache() {
  PeerRules r{test::v4(R"({"Network":"10.244.0.0/16"})"), "vxlan", 1, pfx("10.244.1.0/24"), std::nullopt, std::nullopt};
  r.network_v6 = test::v6(R"({"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:10:244::/56"})");
  r.own_subnet_v6 = test::pfx6("fd00:10:244:1::/64");
  return PeerCache("me", kKeys, r, 1767225600000);
}

NodeInfo dual_node(const std::string& name, const std::string& subnet, const std::string& subnet_v6, int created = 1) {
  NodeInfo n = node(name, subnet, "0e:00:00:00:00:01", created);
  // No public-ipv6: IPv6 VXLAN over the IPv4 underlay, on VNI 1 + 1.
  n.annotations["weft.io/subnet-v6"] = subnet_v6;
  n.annotations["weft.io/backend-v6-data"] = R"({"VNI":2,"VtepMAC":"0e:00:00:00:06:01"})";
  return n;
}

}  // namespace

TEST_CASE("a dual-stack peer carries its IPv6 half, a bad one costs only its v6 routes", "[peers][ipv6]") {
  auto c = dual_cache();
  CHECK(c.replace({dual_node("a", "10.244.2.0/24", "fd00:10:244:2::/64")}));
  REQUIRE(c.peers().count("a"));
  CHECK(c.peers().at("a").subnet_v6 == test::pfx6("fd00:10:244:2::/64"));
  CHECK(c.peers().at("a").vtep_mac_v6->str() == "0e:00:00:00:06:01");
  CHECK_FALSE(c.peers().at("a").public_ip_v6);

  // Outside the v6 network: still a v4 peer, no v6 half, and the reason is kept.
  CHECK(c.apply(ev(WatchEventType::Modified, dual_node("a", "10.244.2.0/24", "2001:db8:2::/64"))));
  REQUIRE(c.peers().count("a"));
  CHECK_FALSE(c.peers().at("a").subnet_v6);
  CHECK(c.skipped() == 0);
  REQUIRE(c.v6_skip_reasons().count("a"));
  CHECK_THAT(c.v6_skip_reasons().at("a"), Catch::Contains("outside network fd00:10:244::/56"));

  // Over our own v6 subnet.
  // The peer set is unchanged (its v6 half was already off); only the reason differs.
  CHECK_FALSE(c.apply(ev(WatchEventType::Modified, dual_node("a", "10.244.2.0/24", "fd00:10:244:1::/64"))));
  CHECK_THAT(c.v6_skip_reasons().at("a"), Catch::Contains("overlaps our own"));
  CHECK_FALSE(c.peers().at("a").subnet_v6);

  // Fixed: the v6 half comes back and the reason goes.
  CHECK(c.apply(ev(WatchEventType::Modified, dual_node("a", "10.244.2.0/24", "fd00:10:244:2::/64"))));
  CHECK(c.peers().at("a").subnet_v6);
  CHECK(c.v6_skip_reasons().empty());
}

TEST_CASE("two peers claiming one IPv6 subnet: the earlier claim keeps it", "[peers][ipv6]") {
  auto c = dual_cache();
  CHECK(c.replace({dual_node("old", "10.244.2.0/24", "fd00:10:244:2::/64", 1),
                   dual_node("new", "10.244.3.0/24", "fd00:10:244:2::/64", 5)}));
  CHECK(c.peers().at("old").subnet_v6);
  CHECK(c.peers().count("new"));  // its v4 half is its own
  CHECK_FALSE(c.peers().at("new").subnet_v6);
  CHECK_THAT(c.v6_skip_reasons().at("new"), Catch::Contains("is also node old's") && Catch::Contains("earlier claim"));
  // The owner leaves: the newcomer's v6 half is routed.
  CHECK(c.apply(ev(WatchEventType::Deleted, dual_node("old", "10.244.2.0/24", "fd00:10:244:2::/64", 1))));
  CHECK(c.peers().at("new").subnet_v6 == test::pfx6("fd00:10:244:2::/64"));
  CHECK(c.v6_skip_reasons().empty());
}

TEST_CASE("a v4-only weft ignores the v6 annotations of dual-stack peers", "[peers][ipv6]") {
  auto c = cache();
  CHECK(c.replace({dual_node("a", "10.244.2.0/24", "fd00:10:244:2::/64")}));
  REQUIRE(c.peers().count("a"));
  CHECK_FALSE(c.peers().at("a").subnet_v6);
  CHECK(c.v6_skip_reasons().empty());
}

// Issue #20: FlannelCompat reads flannel's annotations; a node's subnet is its spec.podCIDR.
TEST_CASE("with flannel's keys a peer's subnet is its podCIDR and kube-subnet-manager joins it", "[peers][flannel]") {
  PeerCache c("me", AnnotationKeys::flannel_compat(),
              PeerRules{test::v4(R"({"Network":"10.244.0.0/16"})"), "vxlan", 1, pfx("10.244.1.0/24"), std::nullopt,
                        std::nullopt},
              1767225600000);
  NodeInfo f;
  f.name = "flannel-node";
  f.creation_timestamp = "2026-01-01T00:00:01Z";
  f.pod_cidrs = {"10.244.5.0/24"};
  f.annotations = {{"flannel.alpha.coreos.com/backend-type", "vxlan"},
                   {"flannel.alpha.coreos.com/backend-data", R"({"VNI":1,"VtepMAC":"0e:00:00:00:00:05"})"},
                   {"flannel.alpha.coreos.com/public-ip", "192.0.2.5"},
                   {"flannel.alpha.coreos.com/subnet", "10.244.77.0/24"}};  // never read: flannel writes none
  CHECK_FALSE(c.apply(ev(WatchEventType::Added, f)));  // no kube-subnet-manager: flannel ignores it too
  CHECK(c.unjoined() == 1);
  f.annotations["flannel.alpha.coreos.com/kube-subnet-manager"] = "true";
  CHECK(c.apply(ev(WatchEventType::Modified, f)));
  REQUIRE(c.peers().count("flannel-node"));
  CHECK(c.peers().at("flannel-node").subnet == pfx("10.244.5.0/24"));
  CHECK(c.peers().at("flannel-node").public_ip->str() == "192.0.2.5");
  f.annotations["flannel.alpha.coreos.com/public-ip-overwrite"] = "198.51.100.5";
  CHECK(c.apply(ev(WatchEventType::Modified, f)));
  CHECK(c.peers().at("flannel-node").public_ip->str() == "198.51.100.5");
  f.pod_cidrs = {"10.244.6.0/24"};  // only the spec changed: still an update
  CHECK(c.apply(ev(WatchEventType::Modified, f)));
  CHECK(c.peers().at("flannel-node").subnet == pfx("10.244.6.0/24"));
  f.pod_cidrs.clear();  // no podCIDR: skipped with the reason, never routed
  CHECK(c.apply(ev(WatchEventType::Modified, f)));
  CHECK(c.peers().empty());
  CHECK_THAT(c.skip_reasons().at("flannel-node"), Catch::Contains("flannel.alpha.coreos.com/subnet"));
}

// IPv6-only clusters: the IPv6 half is the whole peer, ranked and checked as IPv4 subnets are.
namespace {

PeerRules v6only_rules() {
  PeerRules r;
  r.network = std::nullopt;
  r.network_v6 = test::v6(R"({"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fd00:10:244::/56"})");
  r.own_subnet_v6 = test::pfx6("fd00:10:244:1::/64");
  r.v6_underlay = true;
  return r;
}

// Our claim ranks at 2026-01-01T00:00:<own_created>Z.
PeerCache v6only_cache(int own_created = 0) {
  return PeerCache("me", kKeys, v6only_rules(), 1767225600000LL + own_created * 1000LL);
}

NodeInfo v6_node(const std::string& name, const std::string& subnet_v6, int created = 1,
                 const std::string& mac = "0e:00:00:00:06:01") {
  NodeInfo n;
  n.name = name;
  n.resource_version = "1";
  n.creation_timestamp = format_rfc3339_ms(1767225600000LL + created * 1000LL);
  n.annotations = {{"weft.io/backend-type", "vxlan"},
                   {"weft.io/subnet-v6", subnet_v6},
                   {"weft.io/public-ipv6", "2001:db8::" + std::to_string(created)},
                   {"weft.io/backend-v6-data", R"({"VNI":1,"VtepMAC":")" + mac + "\"}"}};
  return n;
}

}  // namespace

TEST_CASE("IPv6-only: peers are their IPv6 halves and come and go with their Nodes", "[peers][ipv6only]") {
  auto c = v6only_cache();
  CHECK(c.replace({v6_node("me", "fd00:10:244:1::/64"), v6_node("a", "fd00:10:244:2::/64", 2)}));
  REQUIRE(c.peers().size() == 1);
  const Peer& a = c.peers().at("a");
  CHECK(a.subnet_v6 == test::pfx6("fd00:10:244:2::/64"));
  CHECK(a.public_ip_v6->str() == "2001:db8::2");
  CHECK(a.vtep_mac_v6->str() == "0e:00:00:00:06:01");
  CHECK_FALSE(a.subnet);
  CHECK_FALSE(a.public_ip);
  CHECK_FALSE(a.vtep_mac);
  CHECK(c.apply(ev(WatchEventType::Added, v6_node("b", "fd00:10:244:3::/64", 3))));
  CHECK(c.apply(ev(WatchEventType::Modified, v6_node("b", "fd00:10:244:3::/64", 3, "0e:00:00:00:06:02"))));
  CHECK(c.peers().at("b").vtep_mac_v6->str() == "0e:00:00:00:06:02");
  CHECK_FALSE(c.apply(ev(WatchEventType::Modified, v6_node("b", "fd00:10:244:3::/64", 3, "0e:00:00:00:06:02"))));
  CHECK(c.apply(ev(WatchEventType::Deleted, v6_node("a", "fd00:10:244:2::/64", 2))));
  CHECK(c.peers().size() == 1);
  CHECK(c.skipped() == 0);
  CHECK(c.v6_skip_reasons().empty());  // that map is for dual-stack peers' v6 halves
  // A Node with only a v6 claim has not joined yet; an IPv4-only one is skipped with the reason.
  NodeInfo claiming = v6_node("c", "", 4);
  claiming.annotations = {{"weft.io/subnet-v6-claim", "fd00:10:244:4::/64"}};
  CHECK_FALSE(c.apply(ev(WatchEventType::Added, claiming)));
  CHECK(c.unjoined() == 1);
  CHECK_FALSE(c.apply(ev(WatchEventType::Added, node("v4", "10.244.5.0/24"))));
  CHECK(c.skipped() == 1);
  CHECK_THAT(c.skip_reasons().at("v4"), Catch::Contains("an IPv4 subnet only"));
}

TEST_CASE("IPv6-only: a bad or overlapping IPv6 half costs the whole peer", "[peers][ipv6only]") {
  auto c = v6only_cache();
  CHECK(c.replace({v6_node("a", "fd00:10:244:2::/64")}));
  REQUIRE(c.peers().count("a"));
  CHECK(c.apply(ev(WatchEventType::Modified, v6_node("a", "fd00:10:244:1::/64"))));  // over ours
  CHECK(c.peers().empty());
  CHECK_THAT(c.skip_reasons().at("a"), Catch::Contains("overlaps our own"));
  CHECK(c.outranked() == 0);        // not a later claim: an overlap with us
  CHECK(c.own_conflict().empty());  // our claim ranks first
  CHECK_FALSE(c.apply(ev(WatchEventType::Modified, v6_node("a", "2001:db8:2::/64"))));
  CHECK_THAT(c.skip_reasons().at("a"), Catch::Contains("outside network fd00:10:244::/56"));
  NodeInfo no_ip = v6_node("a", "fd00:10:244:2::/64");
  no_ip.annotations.erase("weft.io/public-ipv6");
  CHECK_FALSE(c.apply(ev(WatchEventType::Modified, no_ip)));
  CHECK_THAT(c.skip_reasons().at("a"), Catch::Contains("no weft.io/public-ipv6"));
  CHECK(c.apply(ev(WatchEventType::Modified, v6_node("a", "fd00:10:244:2::/64"))));  // fixed
  CHECK(c.peers().count("a"));
  CHECK(c.skipped() == 0);
}

TEST_CASE("IPv6-only: two Nodes with one IPv6 subnet: the earlier claim keeps it, the later is outranked",
          "[peers][ipv6only][ownership]") {
  auto c = v6only_cache();
  CHECK(c.replace({v6_node("new", "fd00:10:244:2::/64", 5), v6_node("old", "fd00:10:244:2::/64", 1),
                   v6_node("other", "fd00:10:244:3::/64", 3)}));
  CHECK(c.peers().count("old"));
  CHECK(c.peers().count("other"));
  CHECK_FALSE(c.peers().count("new"));
  CHECK(c.outranked() == 1);
  CHECK(c.skipped() == 1);
  CHECK_THAT(c.skip_reasons().at("new"), Catch::Contains("is also node old's") && Catch::Contains("earlier claim"));
  // A third, later still: outranked too, by the same owner.
  CHECK_FALSE(c.apply(ev(WatchEventType::Added, v6_node("newer", "fd00:10:244:2::/64", 9))));
  CHECK(c.outranked() == 2);
  CHECK_THAT(c.skip_reasons().at("newer"), Catch::Contains("is also node old's"));
  // The owner leaves: the next claim in rank takes the subnet, the later one stays outranked.
  CHECK(c.apply(ev(WatchEventType::Deleted, v6_node("old", "fd00:10:244:2::/64", 1))));
  REQUIRE(c.peers().count("new"));
  CHECK(c.peers().at("new").subnet_v6 == test::pfx6("fd00:10:244:2::/64"));
  CHECK_FALSE(c.peers().count("newer"));
  CHECK(c.outranked() == 1);
  CHECK_THAT(c.skip_reasons().at("newer"), Catch::Contains("is also node new's"));
  // The newcomer moves away: both are routed.
  CHECK(c.apply(ev(WatchEventType::Modified, v6_node("newer", "fd00:10:244:4::/64", 9))));
  CHECK(c.peers().size() == 3);
  CHECK(c.outranked() == 0);
  CHECK(c.skipped() == 0);
  // Same rank: the smaller name keeps it.
  CHECK(c.apply(ev(WatchEventType::Added, v6_node("b-twin", "fd00:10:244:7::/64", 7))));
  CHECK(c.apply(ev(WatchEventType::Added, v6_node("a-twin", "fd00:10:244:7::/64", 7))));
  CHECK(c.peers().count("a-twin"));
  CHECK_FALSE(c.peers().count("b-twin"));
}

TEST_CASE("IPv6-only: an earlier claim on our own IPv6 subnet is reported", "[peers][ipv6only][ownership]") {
  auto c = v6only_cache(5);  // we claimed at :05
  CHECK_FALSE(c.replace({v6_node("late", "fd00:10:244:1::/64", 9)}));
  CHECK(c.own_conflict().empty());  // a later claim: it is the one skipped
  CHECK_THAT(c.skip_reasons().at("late"), Catch::Contains("overlaps our own"));
  CHECK(c.apply(ev(WatchEventType::Added, v6_node("early", "fd00:10:244:1::/64", 2))));
  CHECK_THAT(c.own_conflict(), Catch::Contains("node early claimed fd00:10:244:1::/64") &&
                                   Catch::Contains("before this node's fd00:10:244:1::/64") &&
                                   Catch::Contains("weft.io/subnet-v6") && Catch::Contains("restart weftd"));
  CHECK(c.peers().empty());  // we never route our own subnet elsewhere
  CHECK(c.apply(ev(WatchEventType::Deleted, v6_node("early", "fd00:10:244:1::/64", 2))));
  CHECK(c.own_conflict().empty());
  // A dual-stack cache never reports its v6 half this way: its subnets are paired with the v4 lease.
  auto d = dual_cache();
  CHECK(d.replace({dual_node("early", "10.244.2.0/24", "fd00:10:244:1::/64", 0)}));
  CHECK(d.own_conflict().empty());
}

TEST_CASE("IPv6-only: a dual-stack Node's annotations are a peer by their IPv6 half", "[peers][ipv6only]") {
  auto c = v6only_cache();
  NodeInfo dual = node("dual", "10.244.2.0/24", "0e:00:00:00:00:02", 1);
  dual.annotations["weft.io/subnet-v6"] = "fd00:10:244:2::/64";
  dual.annotations["weft.io/public-ipv6"] = "2001:db8::2";
  dual.annotations["weft.io/backend-v6-data"] = R"({"VNI":1,"VtepMAC":"0e:00:00:00:06:02"})";
  CHECK(c.replace({dual}));
  REQUIRE(c.peers().count("dual"));
  const Peer& p = c.peers().at("dual");
  CHECK(p.subnet_v6 == test::pfx6("fd00:10:244:2::/64"));
  CHECK(p.public_ip_v6->str() == "2001:db8::2");
  CHECK(p.vtep_mac_v6->str() == "0e:00:00:00:06:02");
  CHECK_FALSE(p.subnet);
  CHECK_FALSE(p.public_ip);
  CHECK_FALSE(p.vtep_mac);
  // One over the IPv4 underlay (no public-ipv6, VNI + 1) cannot reach us.
  CHECK(c.apply(ev(WatchEventType::Modified, dual_node("dual", "10.244.2.0/24", "fd00:10:244:2::/64"))));
  CHECK(c.peers().empty());
  CHECK_THAT(c.skip_reasons().at("dual"), Catch::Contains("no weft.io/public-ipv6"));
  // And its v6 subnet against an IPv6-only Node's: ranked by claim as any other.
  dual.creation_timestamp = format_rfc3339_ms(1767225600000LL + 9000);
  CHECK(c.apply(ev(WatchEventType::Modified, dual)));
  CHECK(c.apply(ev(WatchEventType::Added, v6_node("v6", "fd00:10:244:2::/64", 1))));
  CHECK(c.peers().count("v6"));
  CHECK_FALSE(c.peers().count("dual"));
  CHECK(c.outranked() == 1);
}
