#include <catch2/catch.hpp>

#include "core/ip.hpp"

using weft::Ipv4Addr;
using weft::Ipv4Prefix;
using weft::Ipv6Addr;
using weft::Ipv6Prefix;

namespace {
Ipv4Prefix p4(const char* s) { return Ipv4Prefix::parse(s).value(); }
Ipv6Prefix p6(const char* s) { return Ipv6Prefix::parse(s).value(); }
}  // namespace

TEST_CASE("IPv4 addresses parse and format", "[ip]") {
  auto a = Ipv4Addr::parse("10.244.3.7");
  REQUIRE(a);
  CHECK(a->to_uint() == 0x0af40307U);
  CHECK(a->str() == "10.244.3.7");
  CHECK(Ipv4Addr::parse("0.0.0.0")->is_unspecified());
  CHECK(Ipv4Addr::parse("255.255.255.255")->to_uint() == 0xffffffffU);
  CHECK(Ipv4Addr::from_network_order(a->to_network_order()) == *a);
}

TEST_CASE("bad IPv4 text is an error that quotes the input", "[ip]") {
  for (const char* bad : {"", "10.244.0", "10.244.0.256", "10.244.0.1 ", "a.b.c.d", "01.2.3.4", "1.2.3.4/8", "::1"}) {
    auto r = Ipv4Addr::parse(bad);
    INFO(bad);
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error(), Catch::Contains("not a valid IPv4 address"));
    CHECK_THAT(r.error(), Catch::Contains(std::string("\"") + bad + "\""));
  }
  auto huge = Ipv4Addr::parse(std::string(10000, '1'));
  REQUIRE_FALSE(huge);
  CHECK(huge.error().size() < 200);
}

TEST_CASE("IPv6 addresses format in compressed RFC 5952 form", "[ip]") {
  CHECK(Ipv6Addr::parse("fd00:0:0:0:0:0:0:1")->str() == "fd00::1");
  CHECK(Ipv6Addr::parse("2001:DB8:0:0:1:0:0:1")->str() == "2001:db8::1:0:0:1");
  CHECK(Ipv6Addr::parse("2001:db8:0:1:1:1:1:1")->str() == "2001:db8:0:1:1:1:1:1");  // a lone 0 stays
  CHECK(Ipv6Addr::parse("::")->str() == "::");
  CHECK(Ipv6Addr::parse("::")->is_unspecified());
  auto a = Ipv6Addr::parse("fd00:10:244::5").value();
  CHECK(Ipv6Addr::from_bytes(a.to_bytes()) == a);
  CHECK_FALSE(Ipv6Addr::parse("fd00::1::2"));
  CHECK_FALSE(Ipv6Addr::parse("10.0.0.1"));
  CHECK_FALSE(Ipv6Addr::parse("fd00::g"));
}

TEST_CASE("prefixes parse, reject host bits and name the aligned network", "[ip]") {
  CHECK(p4("10.244.0.0/16").str() == "10.244.0.0/16");
  auto r = Ipv4Prefix::parse("10.244.1.0/16");
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error(), Catch::Contains("host bits") && Catch::Contains("10.244.0.0/16"));
  auto r6 = Ipv6Prefix::parse("fd00::1/64");
  REQUIRE_FALSE(r6);
  CHECK_THAT(r6.error(), Catch::Contains("fd00::/64"));
  for (const char* bad : {"10.0.0.0", "10.0.0.0/33", "10.0.0.0/-1", "10.0.0.0/", "10.0.0.0/+8", "10.0.0.0/8x", "x/8"}) {
    INFO(bad);
    CHECK_FALSE(Ipv4Prefix::parse(bad));
  }
  CHECK_FALSE(Ipv6Prefix::parse("fd00::/129"));
}

TEST_CASE("/0 and full-length prefixes", "[ip]") {
  auto all = p4("0.0.0.0/0");
  CHECK(all.contains(Ipv4Addr::parse("255.1.2.3").value()));
  CHECK(all.last().str() == "255.255.255.255");
  CHECK_FALSE(all.next());
  CHECK(all.subnet_count(0) == 1);
  CHECK(all.nth_subnet(0, 0) == all);
  CHECK_FALSE(all.nth_subnet(0, 1));
  CHECK(all.subnet_count(32) == (std::uint64_t{1} << 32U));

  auto host = p4("10.1.2.3/32");
  CHECK(host.first_host() == host.address());
  CHECK(host.last() == host.address());
  CHECK(host.contains(host.address()));
  CHECK_FALSE(host.contains(Ipv4Addr::parse("10.1.2.4").value()));
  CHECK(host.next()->str() == "10.1.2.4/32");
  CHECK_FALSE(p4("255.255.255.255/32").next());

  auto all6 = p6("::/0");
  CHECK(all6.contains(Ipv6Addr::parse("ffff::1").value()));
  CHECK(all6.subnet_count(64) == UINT64_MAX);  // 2^64 saturates
  CHECK(all6.subnet_count(63) == (std::uint64_t{1} << 63U));
  CHECK(all6.subnet_count(128) == UINT64_MAX);
  auto h6 = p6("fd00::7/128");
  CHECK(h6.last() == h6.address());
  CHECK(h6.str() == "fd00::7/128");
  CHECK_FALSE(p6("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128").next());
}

TEST_CASE("contains and overlaps", "[ip]") {
  auto net = p4("10.244.0.0/16");
  CHECK(net.contains(p4("10.244.7.0/24")));
  CHECK_FALSE(net.contains(p4("10.245.0.0/24")));
  CHECK_FALSE(p4("10.244.7.0/24").contains(net));
  CHECK(net.overlaps(p4("10.244.7.0/24")));
  CHECK(p4("10.244.7.0/24").overlaps(net));
  CHECK(p4("10.244.7.0/24").overlaps(p4("10.244.7.128/25")));
  CHECK_FALSE(p4("10.244.7.0/24").overlaps(p4("10.244.8.0/24")));
  CHECK(p6("fd00::/48").overlaps(p6("fd00:0:0:5::/64")));
  CHECK_FALSE(p6("fd00::/64").overlaps(p6("fd00:0:0:1::/64")));
}

TEST_CASE("n-th subnet and iteration", "[ip]") {
  auto net = p4("10.244.0.0/16");
  CHECK(net.subnet_count(24) == 256);
  CHECK(net.subnet_count(15) == 0);
  CHECK(net.nth_subnet(24, 0)->str() == "10.244.0.0/24");
  CHECK(net.nth_subnet(24, 7)->str() == "10.244.7.0/24");
  CHECK(net.nth_subnet(24, 255)->str() == "10.244.255.0/24");
  CHECK_FALSE(net.nth_subnet(24, 256));
  CHECK_FALSE(net.nth_subnet(33, 0));
  CHECK(net.nth_subnet(24, 7)->first_host().str() == "10.244.7.1");

  int seen = 0;
  for (auto s = net.nth_subnet(22, 0); s && net.contains(*s); s = s->next()) ++seen;
  CHECK(seen == 64);

  auto net6 = p6("fd00:10:244::/56");
  CHECK(net6.subnet_count(64) == 256);
  CHECK(net6.nth_subnet(64, 5)->str() == "fd00:10:244:5::/64");
  CHECK(net6.nth_subnet(64, 5)->first_host().str() == "fd00:10:244:5::1");
  CHECK(net6.nth_subnet(64, 255)->str() == "fd00:10:244:ff::/64");
  CHECK(net6.nth_subnet(64, 255)->next()->str() == "fd00:10:244:100::/64");
  CHECK_FALSE(net6.contains(*net6.nth_subnet(64, 255)->next()));
}

TEST_CASE("prefixes are ordered and hashable values", "[ip]") {
  CHECK(p4("10.0.0.0/8") < p4("10.0.0.0/16"));
  CHECK(p4("10.0.0.0/16") < p4("10.1.0.0/16"));
  CHECK(std::hash<Ipv4Prefix>{}(p4("10.1.0.0/16")) != std::hash<Ipv4Prefix>{}(p4("10.1.0.0/24")));
  CHECK(Ipv4Prefix::containing(Ipv4Addr::parse("10.9.8.7").value(), 20).str() == "10.9.0.0/20");
}
