#include <catch2/catch.hpp>

#include "subnet/kube/peer_cache.hpp"
#include "test_util.hpp"

using namespace weft;
using namespace weft::kube;
using weft::test::pfx;

namespace {

const AnnotationKeys kKeys = AnnotationKeys::with_prefix("weft.io");

NodeInfo node(const std::string& name, const std::string& subnet, const std::string& mac = "0e:00:00:00:00:01") {
  NodeInfo n;
  n.name = name;
  n.resource_version = "1";
  n.annotations = {{"weft.io/subnet", subnet},
                   {"weft.io/public-ip", "192.0.2.1"},
                   {"weft.io/backend-type", "vxlan"},
                   {"weft.io/backend-data", R"({"VNI":1,"VtepMAC":")" + mac + "\"}"}};
  return n;
}

PeerCache cache() {
  return PeerCache("me", kKeys,
                   PeerRules{test::v4(R"({"Network":"10.244.0.0/16"})"), "vxlan", 1, pfx("10.244.1.0/24")});
}

WatchEvent ev(WatchEventType t, NodeInfo n) { return WatchEvent{t, std::move(n)}; }

}  // namespace

TEST_CASE("peers come and go with their Nodes; our own Node is not a peer", "[peers]") {
  auto c = cache();
  CHECK(c.replace({node("me", "10.244.1.0/24"), node("a", "10.244.2.0/24")}));
  CHECK(c.peers().size() == 1);
  CHECK(c.apply(ev(WatchEventType::Added, node("b", "10.244.3.0/24"))));
  CHECK(c.apply(ev(WatchEventType::Modified, node("b", "10.244.3.0/24", "0e:00:00:00:00:02"))));
  CHECK(c.peers().at("b").vtep_mac.str() == "0e:00:00:00:00:02");
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

TEST_CASE("bad peers are skipped with a reason; a fix brings them back", "[peers]") {
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

TEST_CASE("two Nodes claiming overlapping subnets are both refused until one leaves", "[peers]") {
  auto c = cache();
  CHECK(c.replace({node("a", "10.244.8.0/24")}));
  CHECK(c.apply(ev(WatchEventType::Added, node("b", "10.244.8.0/23"))));  // contains a's
  CHECK(c.peers().empty());
  CHECK_THAT(c.skip_reasons().at("a"), Catch::Contains("overlaps node b"));
  CHECK_FALSE(c.apply(ev(WatchEventType::Added, node("c", "10.244.8.0/24"))));
  CHECK_FALSE(c.apply(ev(WatchEventType::Deleted, node("b", ""))));  // a and c still collide
  CHECK(c.peers().empty());
  CHECK(c.apply(ev(WatchEventType::Modified, node("c", "10.244.20.0/24"))));
  CHECK(c.peers().size() == 2);
  CHECK(c.skipped() == 0);
}

TEST_CASE("five thousand peers arrive as single events without slowing down", "[peers]") {
  PeerCache c("me", kKeys, PeerRules{test::v4(R"({"Network":"10.0.0.0/8"})"), "vxlan", 1, pfx("10.0.0.0/24")});
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 1; i <= 5000; ++i) {
    auto s = "10." + std::to_string(i / 256) + "." + std::to_string(i % 256) + ".0/24";
    REQUIRE(c.apply(ev(WatchEventType::Added, node("n" + std::to_string(i), s))));
  }
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
  CHECK(c.peers().size() == 5000);
  CHECK(ms < 3000);  // a loose guard against quadratic work; the benchmark has the real figure
}
