// check_peers(): which untrusted peers may be programmed.
#include "backend/vxlan/peer_check.hpp"

#include <catch2/catch.hpp>

#include "test/unit/backend/helpers.hpp"

using namespace weft;
using namespace weft::test;

namespace {

const Ipv4Prefix kNetwork = prefix("10.244.0.0/16");
const Lease kOwn = lease("10.244.1.0/24", "192.0.2.1", "0e:00:00:00:00:01");

std::vector<std::string> accepted_names(const PeerCheck& c) {
  std::vector<std::string> out;
  for (const Peer* p : c.accepted) out.push_back(p->name);
  return out;
}

// The one reason a single bad peer next to a good one is skipped for.
std::string reason_for(const Peer& bad) {
  const PeerSet peers = peer_set({bad, peer("good", "10.244.2.0/24", "192.0.2.2", "0e:00:00:00:00:02")});
  auto c = check_peers(peers, kOwn, kNetwork);
  REQUIRE(accepted_names(c) == std::vector<std::string>{"good"});
  REQUIRE(c.skipped.size() == 1);
  CHECK(c.skipped[0].name == bad.name);
  return c.skipped[0].reason;
}

}  // namespace

TEST_CASE("well-formed peers are accepted", "[peers]") {
  const PeerSet peers = peer_set({peer("node2", "10.244.2.0/24", "192.0.2.2", "0e:00:00:00:00:02"),
                                  peer("node3", "10.244.3.0/24", "192.0.2.3", "0e:00:00:00:00:03")});
  auto c = check_peers(peers, kOwn, kNetwork);
  CHECK(accepted_names(c) == std::vector<std::string>{"node2", "node3"});
  CHECK(c.skipped.empty());
}

TEST_CASE("a peer whose subnet lies outside the cluster network is skipped", "[peers]") {
  CHECK(reason_for(peer("node7", "10.9.0.0/24", "192.0.2.7", "0e:00:00:00:00:07")) ==
        "subnet 10.9.0.0/24 outside network 10.244.0.0/16");
  CHECK(reason_for(peer("node7", "10.244.0.0/15", "192.0.2.7", "0e:00:00:00:00:07")) ==
        "subnet 10.244.0.0/15 outside network 10.244.0.0/16");
}

TEST_CASE("a peer overlapping this node's subnet is skipped", "[peers]") {
  CHECK(reason_for(peer("node7", "10.244.1.0/24", "192.0.2.7", "0e:00:00:00:00:07")) ==
        "subnet 10.244.1.0/24 overlaps this node's subnet 10.244.1.0/24");
  CHECK(reason_for(peer("node7", "10.244.0.0/16", "192.0.2.7", "0e:00:00:00:00:07")) ==
        "subnet 10.244.0.0/16 overlaps this node's subnet 10.244.1.0/24");
}

TEST_CASE("a peer with a zero, multicast or our own VTEP MAC is skipped", "[peers]") {
  CHECK(reason_for(peer("node7", "10.244.7.0/24", "192.0.2.7", "00:00:00:00:00:00")) == "VTEP MAC is zero");
  CHECK(reason_for(peer("node7", "10.244.7.0/24", "192.0.2.7", "01:00:5e:00:00:01")) ==
        "VTEP MAC 01:00:5e:00:00:01 is multicast");
  CHECK(reason_for(peer("node7", "10.244.7.0/24", "192.0.2.7", "ff:ff:ff:ff:ff:ff")) ==
        "VTEP MAC ff:ff:ff:ff:ff:ff is multicast");
  CHECK(reason_for(peer("node7", "10.244.7.0/24", "192.0.2.7", "0e:00:00:00:00:01")) ==
        "VTEP MAC 0e:00:00:00:00:01 is this node's");
}

TEST_CASE("a peer whose public IP cannot carry VXLAN is skipped", "[peers]") {
  auto with_ip = [](const char* public_ip) {
    return reason_for(peer("node7", "10.244.7.0/24", public_ip, "0e:00:00:00:00:07"));
  };
  CHECK(with_ip("0.0.0.0") == "public IP 0.0.0.0 is unspecified");
  CHECK(with_ip("127.0.0.1") == "public IP 127.0.0.1 is a loopback address");
  CHECK(with_ip("224.0.0.5") == "public IP 224.0.0.5 is multicast");
  CHECK(with_ip("255.255.255.255") == "public IP 255.255.255.255 is reserved or broadcast");
  CHECK(with_ip("10.244.9.9") == "public IP 10.244.9.9 is inside network 10.244.0.0/16 (VXLAN would loop)");
  CHECK(with_ip("192.0.2.1") == "public IP 192.0.2.1 is this node's");
}

TEST_CASE("peers claiming the same subnet are all skipped, whatever their names", "[peers]") {
  const PeerSet peers = peer_set({peer("a", "10.244.5.0/24", "192.0.2.5", "0e:00:00:00:00:05"),
                                  peer("b", "10.244.5.0/24", "192.0.2.6", "0e:00:00:00:00:06"),
                                  peer("c", "10.244.7.0/24", "192.0.2.7", "0e:00:00:00:00:07")});
  auto c = check_peers(peers, kOwn, kNetwork);
  CHECK(accepted_names(c) == std::vector<std::string>{"c"});
  REQUIRE(c.skipped == std::vector<SkippedPeer>{{"a", "subnet 10.244.5.0/24 also claimed by node b"},
                                                {"b", "subnet 10.244.5.0/24 also claimed by node a"}});
}

TEST_CASE("a peer whose subnet contains other peers' subnets is skipped, they are kept", "[peers]") {
  const PeerSet peers = peer_set({peer("big", "10.244.128.0/17", "192.0.2.9", "0e:00:00:00:00:09"),
                                  peer("x", "10.244.130.0/24", "192.0.2.5", "0e:00:00:00:00:05"),
                                  peer("y", "10.244.200.0/24", "192.0.2.6", "0e:00:00:00:00:06"),
                                  peer("z", "10.244.2.0/24", "192.0.2.7", "0e:00:00:00:00:07")});
  auto c = check_peers(peers, kOwn, kNetwork);
  CHECK(accepted_names(c) == std::vector<std::string>{"x", "y", "z"});
  REQUIRE(c.skipped.size() == 1);
  CHECK(c.skipped[0].name == "big");
  CHECK_THAT(c.skipped[0].reason, Catch::StartsWith("subnet 10.244.128.0/17 contains node "));
}

TEST_CASE("peers sharing a VTEP MAC are all skipped", "[peers]") {
  const PeerSet peers = peer_set({peer("a", "10.244.5.0/24", "192.0.2.5", "0e:00:00:00:00:05"),
                                  peer("b", "10.244.6.0/24", "192.0.2.6", "0e:00:00:00:00:05")});
  auto c = check_peers(peers, kOwn, kNetwork);
  CHECK(c.accepted.empty());
  REQUIRE(c.skipped == std::vector<SkippedPeer>{{"a", "VTEP MAC 0e:00:00:00:00:05 also used by node b"},
                                                {"b", "VTEP MAC 0e:00:00:00:00:05 also used by node a"}});
}

TEST_CASE("an individually bad peer does not knock out a good one it collides with", "[peers]") {
  // "evil" claims node2's subnet but also fails on its own (a multicast MAC): node2 stays.
  const PeerSet peers = peer_set({peer("evil", "10.244.2.0/24", "192.0.2.9", "01:00:00:00:00:09"),
                                  peer("node2", "10.244.2.0/24", "192.0.2.2", "0e:00:00:00:00:02")});
  auto c = check_peers(peers, kOwn, kNetwork);
  CHECK(accepted_names(c) == std::vector<std::string>{"node2"});
}

TEST_CASE("a peer that is this node itself is skipped", "[peers]") {
  // The same node seen through the watch: its own subnet, public IP and VTEP MAC.
  const PeerSet peers = peer_set({peer("self", "10.244.1.0/24", "192.0.2.1", "0e:00:00:00:00:01")});
  auto c = check_peers(peers, kOwn, kNetwork);
  CHECK(c.accepted.empty());
  REQUIRE(c.skipped.size() == 1);
  CHECK(c.skipped[0].name == "self");
  CHECK_THAT(c.skipped[0].reason, Catch::Contains("this node's"));
}

TEST_CASE("the outcome does not depend on peer names or order", "[peers]") {
  // The same four claims under names that sort the other way round.
  auto claims = [](const char* n1, const char* n2, const char* n3, const char* n4) {
    return peer_set({peer(n1, "10.244.5.0/24", "192.0.2.5", "0e:00:00:00:00:05"),
                     peer(n2, "10.244.5.0/24", "192.0.2.6", "0e:00:00:00:00:06"),
                     peer(n3, "10.244.128.0/17", "192.0.2.7", "0e:00:00:00:00:07"),
                     peer(n4, "10.244.130.0/24", "192.0.2.8", "0e:00:00:00:00:08")});
  };
  const PeerSet one = claims("a", "b", "c", "d");
  const PeerSet other = claims("z", "y", "x", "w");
  auto forward = check_peers(one, kOwn, kNetwork);  // accepted points into the set: keep it alive
  auto backward = check_peers(other, kOwn, kNetwork);
  CHECK(accepted_names(forward) == std::vector<std::string>{"d"});
  CHECK(accepted_names(backward) == std::vector<std::string>{"w"});
  CHECK(forward.skipped.size() == 3);
  CHECK(backward.skipped.size() == 3);
}
