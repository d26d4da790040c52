#include <catch2/catch.hpp>
#include <set>

#include "subnet/allocator.hpp"
#include "test_util.hpp"

using namespace weft;
using weft::test::pfx;
using weft::test::v4;

TEST_CASE("a /22 of /24s has four subnets with SubnetMin at the network, three by default", "[allocator]") {
  auto all = v4(R"({"Network":"10.0.0.0/22","SubnetLen":24,"SubnetMin":"10.0.0.0"})");
  auto free = free_subnets(all, {});
  REQUIRE(free.size() == 4);
  CHECK(free.front() == pfx("10.0.0.0/24"));
  CHECK(free.back() == pfx("10.0.3.0/24"));
  // flannel's default skips the first subnet (its address is the network's own)
  auto dflt = v4(R"({"Network":"10.0.0.0/22","SubnetLen":24})");
  CHECK(free_subnets(dflt, {}).size() == 3);
  CHECK(leasable_count(dflt) == 3);
}

TEST_CASE("taken prefixes of any length remove what they cover, outside ones are ignored", "[allocator]") {
  auto net = v4(R"({"Network":"10.0.0.0/22","SubnetLen":24,"SubnetMin":"10.0.0.0"})");
  auto free = free_subnets(net, {pfx("10.0.2.0/23"), pfx("10.9.0.0/24"), pfx("10.0.0.128/25")});
  REQUIRE(free.size() == 1);
  CHECK(free[0] == pfx("10.0.1.0/24"));
  CHECK(count_free(net, {pfx("10.0.2.0/23")}) == 2);
  CHECK(count_free(net, {pfx("10.0.0.0/8")}) == 0);
}

TEST_CASE("pick_free_subnet picks only free subnets, and all of them over many draws", "[allocator]") {
  auto net = v4(R"({"Network":"10.244.0.0/16"})");
  std::vector<Ipv4Prefix> taken{pfx("10.244.1.0/24"), pfx("10.244.3.0/24"), pfx("10.244.4.0/23")};
  for (int i = 7; i < 255; ++i) taken.push_back(pfx("10.244." + std::to_string(i) + ".0/24"));
  std::mt19937_64 rng(42);
  std::set<Ipv4Prefix> seen;
  for (int i = 0; i < 500; ++i) {
    auto p = pick_free_subnet(net, taken, rng);
    REQUIRE(p);
    seen.insert(*p);
  }
  CHECK(seen == std::set<Ipv4Prefix>{pfx("10.244.2.0/24"), pfx("10.244.6.0/24"), pfx("10.244.255.0/24")});
}

TEST_CASE("a full network is an error naming the network, the range and the count", "[allocator]") {
  auto net = v4(R"({"Network":"10.0.0.0/22","SubnetLen":24,"SubnetMin":"10.0.0.0"})");
  std::mt19937_64 rng(1);
  auto r = pick_free_subnet(net, free_subnets(net, {}), rng);
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error(), Catch::Contains("10.0.0.0/22") && Catch::Contains("full") && Catch::Contains("all 4 /24") &&
                            Catch::Contains("SubnetMax 10.0.3.0"));
}

TEST_CASE("a big network is allocated without enumerating it", "[allocator]") {
  auto net = v4(R"({"Network":"10.0.0.0/8","SubnetLen":30})");  // 4 million subnets
  std::vector<Ipv4Prefix> taken;
  for (std::uint32_t i = 1; i < 3000; ++i) taken.push_back(Ipv4Prefix::containing(Ipv4Addr(0x0a000000U + i * 4U), 30));
  std::mt19937_64 rng(7);
  for (int i = 0; i < 200; ++i) {
    auto p = pick_free_subnet(net, taken, rng);
    REQUIRE(p);
    for (const auto& t : taken) REQUIRE_FALSE(t.overlaps(*p));
  }
  CHECK(count_free(net, taken) == leasable_count(net) - 2999);
}

TEST_CASE("the IPv6 subnet paired with a lease has the IPv4 subnet's number", "[allocator][ipv6]") {
  auto net4 = v4(R"({"Network":"10.244.0.0/16"})");
  auto net6 = weft::test::v6(R"({"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:10:244::/56"})");
  CHECK(paired_subnet_v6(pfx("10.244.7.0/24"), net4, net6).value().str() == "fd00:10:244:7::/64");
  CHECK(paired_subnet_v6(pfx("10.244.255.0/24"), net4, net6).value().str() == "fd00:10:244:ff::/64");
  // Distinct leases, distinct IPv6 subnets.
  std::set<std::string> seen;
  for (int n = 1; n < 256; ++n)
    seen.insert(paired_subnet_v6(pfx("10.244." + std::to_string(n) + ".0/24"), net4, net6).value().str());
  CHECK(seen.size() == 255);

  // /26 leases: 1,024 of them, but a /56 holds only 256 /64s.
  auto small4 = v4(R"({"Network":"10.244.0.0/16","SubnetLen":26})");
  CHECK(paired_subnet_v6(pfx("10.244.63.192/26"), small4, net6).value().str() == "fd00:10:244:ff::/64");
  auto r = paired_subnet_v6(pfx("10.244.64.0/26"), small4, net6);
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error(), Catch::Contains("number 256") && Catch::Contains("at least as many subnets as Network (1024)"));
}
