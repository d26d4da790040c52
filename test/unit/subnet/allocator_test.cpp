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

// IPv6-only clusters lease IPv6 subnets with the same allocator.
namespace {

using weft::test::pfx6;

FamilyConfig<Ipv6Addr> v6only(const std::string& keys) {
  return weft::test::v6(R"({"EnableIPv4":false,"EnableIPv6":true,)" + keys + "}");
}

// Every property a leased subnet must have: one /IPv6SubnetLen of the network, in the range, and
// clear of everything taken.
void check_leasable(const Ipv6Prefix& p, const FamilyConfig<Ipv6Addr>& net, const std::vector<Ipv6Prefix>& taken) {
  CAPTURE(p.str());
  CHECK(p.length() == net.subnet_len);
  CHECK(net.network.contains(p));
  CHECK(p.address() >= net.subnet_min);
  CHECK(p.address() <= net.subnet_max);
  for (const auto& t : taken) CHECK_FALSE(t.overlaps(p));
}

}  // namespace

TEST_CASE("IPv6: a /56 of /64s has 255 leasable subnets by default, 256 from the network", "[allocator][ipv6only]") {
  auto net = v6only(R"("IPv6Network":"fd00:10:244::/56")");
  CHECK(leasable_count(net) == 255);
  auto free = free_subnets(net, {});
  REQUIRE(free.size() == 255);
  CHECK(free.front() == pfx6("fd00:10:244:1::/64"));
  CHECK(free.back() == pfx6("fd00:10:244:ff::/64"));
  auto all = v6only(R"("IPv6Network":"fd00:10:244::/56","IPv6SubnetMin":"fd00:10:244::")");
  CHECK(leasable_count(all) == 256);
  CHECK(free_subnets(all, {}).front() == pfx6("fd00:10:244::/64"));
  auto narrow = v6only(R"("IPv6Network":"fd00:10:244::/56","IPv6SubnetMin":"fd00:10:244:10::",)"
                       R"("IPv6SubnetMax":"fd00:10:244:1f::")");
  CHECK(leasable_count(narrow) == 16);
  CHECK(free_subnets(narrow, {}).front() == pfx6("fd00:10:244:10::/64"));
  CHECK(free_subnets(narrow, {}).back() == pfx6("fd00:10:244:1f::/64"));
}

TEST_CASE("IPv6: taken prefixes of any length remove what they cover, outside ones are ignored",
          "[allocator][ipv6only]") {
  auto net = v6only(R"("IPv6Network":"fd00:10:244::/56")");
  std::vector<Ipv6Prefix> taken{pfx6("fd00:10:244:1::/64"),   // one
                                pfx6("fd00:10:244:10::/60"),  // sixteen
                                pfx6("fd00:10:244:ff::/64"),  // the last
                                pfx6("fd00:10:244:20::/80"),  // inside a /64: takes all of it
                                pfx6("fd00:10:244:20::/64"),  // the same /64 again
                                pfx6("2001:db8::/64"),        // outside
                                pfx6("fd00:10:243::/56"),     // the network below
                                pfx6("fd00:10:244::/64")};    // below IPv6SubnetMin
  CHECK(count_free(net, taken) == 255 - 1 - 16 - 1 - 1);
  auto free = free_subnets(net, taken);
  REQUIRE(free.size() == 236);
  CHECK(free.front() == pfx6("fd00:10:244:2::/64"));
  CHECK(free.back() == pfx6("fd00:10:244:fe::/64"));
  for (const auto& p : free) check_leasable(p, net, taken);
  CHECK(count_free(net, {pfx6("fd00::/8")}) == 0);
  CHECK(count_free(net, {pfx6("fd00:10:244::/57")}) == 128);
}

TEST_CASE("IPv6: pick_free_subnet avoids taken prefixes of other lengths and reaches every free subnet",
          "[allocator][ipv6only]") {
  auto net = v6only(R"("IPv6Network":"fd00:10:244::/56")");
  // Free: fd00:10:244:80::/64, fd00:10:244:c5::/64 and fd00:10:244:ff::/64.
  std::vector<Ipv6Prefix> taken{pfx6("fd00:10:244::/57"),    pfx6("fd00:10:244:81::/64"), pfx6("fd00:10:244:82::/63"),
                                pfx6("fd00:10:244:84::/62"), pfx6("fd00:10:244:88::/61"), pfx6("fd00:10:244:90::/60"),
                                pfx6("fd00:10:244:a0::/59"), pfx6("fd00:10:244:c0::/62"), pfx6("fd00:10:244:c4::/64"),
                                pfx6("fd00:10:244:c6::/63"), pfx6("fd00:10:244:c8::/61"), pfx6("fd00:10:244:d0::/60"),
                                pfx6("fd00:10:244:e0::/60"), pfx6("fd00:10:244:f0::/61"), pfx6("fd00:10:244:f8::/62"),
                                pfx6("fd00:10:244:fc::/63"), pfx6("fd00:10:244:fe::/96")};
  CHECK(count_free(net, taken) == 3);
  std::mt19937_64 rng(42);
  std::set<Ipv6Prefix> seen;
  for (int i = 0; i < 300; ++i) {
    auto p = pick_free_subnet(net, taken, rng);
    REQUIRE(p);
    check_leasable(*p, net, taken);
    seen.insert(*p);
  }
  CHECK(seen ==
        std::set<Ipv6Prefix>{pfx6("fd00:10:244:80::/64"), pfx6("fd00:10:244:c5::/64"), pfx6("fd00:10:244:ff::/64")});
}

TEST_CASE("IPv6: a full network is an error naming IPv6Network, the range and the count", "[allocator][ipv6only]") {
  auto net = v6only(R"("IPv6Network":"fd00:10:244::/62")");  // four /64s, three leasable
  std::mt19937_64 rng(1);
  auto r = pick_free_subnet(net, free_subnets(net, {}), rng);
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error(), Catch::Contains("network fd00:10:244::/62 is full") && Catch::Contains("all 3 /64") &&
                            Catch::Contains("IPv6SubnetMin fd00:10:244:1::") &&
                            Catch::Contains("IPv6SubnetMax fd00:10:244:3::") &&
                            Catch::Contains("enlarge IPv6Network in net-conf.json"));
  auto one_left = pick_free_subnet(net, {pfx6("fd00:10:244:1::/64"), pfx6("fd00:10:244:3::/64")}, rng);
  REQUIRE(one_left);
  CHECK(*one_left == pfx6("fd00:10:244:2::/64"));
}

TEST_CASE("IPv6: a /48 of /64s holds 2^16 subnets, picked without enumerating", "[allocator][ipv6only]") {
  auto net = v6only(R"("IPv6Network":"2001:db8:7::/48","IPv6SubnetMin":"2001:db8:7::")");
  CHECK(leasable_count(net) == 65536);
  std::vector<Ipv6Prefix> taken{pfx6("2001:db8:7::/52")};  // 4096 of them
  for (std::uint32_t i = 0; i < 2000; ++i) {
    taken.push_back(
        Ipv6Prefix::containing(Ipv6Addr(net.network.address().to_uint() + (uint128{0x1000U + i * 3U} << 64U)), 64));
  }
  CHECK(count_free(net, taken) == 65536 - 4096 - 2000);
  std::mt19937_64 rng(7);
  for (int i = 0; i < 500; ++i) {
    auto p = pick_free_subnet(net, taken, rng);
    REQUIRE(p);
    check_leasable(*p, net, taken);
  }
  CHECK(free_subnets(net, taken).size() == 65536 - 4096 - 2000);
}

TEST_CASE("IPv6: a /32 of /96s is capped at 2^62 subnets, without overflow", "[allocator][ipv6only]") {
  auto net = v6only(R"("IPv6Network":"2001:db8::/32","IPv6SubnetLen":96)");
  const std::uint64_t cap = std::uint64_t{1} << 62U;
  CHECK(leasable_count(net) == cap);
  CHECK(count_free(net, {}) == cap);
  // A taken /64 covers 2^32 /96s (the first of which is below IPv6SubnetMin); the whole network all of them.
  std::vector<Ipv6Prefix> taken{pfx6("2001:db8::/64"), pfx6("2001:db8:1::/48")};
  CHECK(count_free(net, taken) == cap - ((std::uint64_t{1} << 32U) - 1) - (std::uint64_t{1} << 48U));
  CHECK(count_free(net, {pfx6("2001:db8::/32")}) == 0);
  CHECK(count_free(net, {pfx6("::/0")}) == 0);
  std::mt19937_64 rng(3);
  for (int i = 0; i < 500; ++i) {
    auto p = pick_free_subnet(net, taken, rng);
    REQUIRE(p);
    check_leasable(*p, net, taken);
  }
  auto full = pick_free_subnet(net, {pfx6("2001:db8::/32")}, rng);
  REQUIRE_FALSE(full);
  CHECK_THAT(full.error(), Catch::Contains("is full") && Catch::Contains("/96"));
}

TEST_CASE("IPv6: a leasable range past the 2^62 cap still starts at IPv6SubnetMin", "[allocator][ipv6only]") {
  // The range's upper half only: more than 2^62 subnets lie below IPv6SubnetMin.
  auto net = v6only(R"("IPv6Network":"2001:db8::/32","IPv6SubnetLen":96,"IPv6SubnetMin":"2001:db8:8000::")");
  CHECK(leasable_count(net) == std::uint64_t{1} << 62U);
  std::mt19937_64 rng(5);
  for (int i = 0; i < 200; ++i) {
    auto p = pick_free_subnet(net, {}, rng);
    REQUIRE(p);
    check_leasable(*p, net, {});
  }
  // A narrow range far into the network: exactly its subnets.
  auto far =
      v6only(R"("IPv6Network":"2001:db8::/32","IPv6SubnetLen":96,"IPv6SubnetMin":"2001:db8:ffff:ffff:ffff:fff0::",)"
             R"("IPv6SubnetMax":"2001:db8:ffff:ffff:ffff:fff3::")");
  CHECK(leasable_count(far) == 4);
  auto free = free_subnets(far, {pfx6("2001:db8:ffff:ffff:ffff:fff1::/96")});
  CHECK(free == std::vector<Ipv6Prefix>{pfx6("2001:db8:ffff:ffff:ffff:fff0::/96"),
                                        pfx6("2001:db8:ffff:ffff:ffff:fff2::/96"),
                                        pfx6("2001:db8:ffff:ffff:ffff:fff3::/96")});
  auto p = pick_free_subnet(far, {pfx6("2001:db8:ffff:ffff:ffff:fff0::/95"), pfx6("2001:db8:ffff:ffff:ffff:fff3::/96")},
                            rng);
  REQUIRE(p);
  CHECK(*p == pfx6("2001:db8:ffff:ffff:ffff:fff2::/96"));
}

TEST_CASE("IPv4 allocation is unchanged by the IPv6 one: numbers from SubnetMin", "[allocator]") {
  auto net = v4(R"({"Network":"10.244.0.0/16","SubnetMin":"10.244.200.0","SubnetMax":"10.244.203.0"})");
  CHECK(leasable_count(net) == 4);
  CHECK(free_subnets(net, {pfx("10.244.0.0/17"), pfx("10.244.201.0/24")}) ==
        std::vector<Ipv4Prefix>{pfx("10.244.200.0/24"), pfx("10.244.202.0/24"), pfx("10.244.203.0/24")});
  auto whole = v4(R"({"Network":"0.0.0.0/0","SubnetLen":30})");
  CHECK(leasable_count(whole) == (std::uint64_t{1} << 30U) - 1);
  CHECK(count_free(whole, {pfx("0.0.0.0/1")}) == (std::uint64_t{1} << 29U));
}
