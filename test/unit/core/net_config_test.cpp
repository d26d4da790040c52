#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>

#include "core/net_config.hpp"

using weft::NetConfig;

namespace {
std::string error_of(const std::string& json) {
  auto r = NetConfig::parse(json);
  REQUIRE_FALSE(r);
  return r.error();
}
}  // namespace

TEST_CASE("the minimal flannel config gets flannel's defaults", "[netconf]") {
  auto r = NetConfig::parse(R"({"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}})");
  REQUIRE(r);
  REQUIRE(r->ipv4);
  CHECK_FALSE(r->ipv6);
  CHECK(r->ipv4->network.str() == "10.244.0.0/16");
  CHECK(r->ipv4->subnet_len == 24);
  CHECK(r->ipv4->subnet_min.str() == "10.244.1.0");  // the first subnet is skipped
  CHECK(r->ipv4->subnet_max.str() == "10.244.255.0");
  CHECK(r->backend.vni == 1);
  CHECK(r->backend.port == 8472);
  CHECK_FALSE(r->backend.mtu);
  CHECK_FALSE(r->backend.learning);
  CHECK_FALSE(r->backend.direct_routing);
  CHECK(r->warnings.empty());
}

TEST_CASE("SubnetLen defaults follow the network size", "[netconf]") {
  CHECK(NetConfig::parse(R"({"Network":"10.0.0.0/22"})")->ipv4->subnet_len == 24);
  CHECK(NetConfig::parse(R"({"Network":"10.0.0.0/23"})")->ipv4->subnet_len == 25);
  CHECK(NetConfig::parse(R"({"Network":"10.0.0.0/28"})")->ipv4->subnet_len == 30);
  CHECK_THAT(error_of(R"({"Network":"10.0.0.0/29"})"), Catch::Contains("too small") && Catch::Contains("/28"));
}

TEST_CASE("every field is read", "[netconf]") {
  auto r = NetConfig::parse(R"({
    "Network": "10.0.0.0/8", "SubnetLen": 20, "SubnetMin": "10.1.0.0", "SubnetMax": "10.9.240.0",
    "EnableIPv6": true, "IPv6Network": "fd00:10::/48", "IPv6SubnetLen": 64,
    "IPv6SubnetMin": "fd00:10:0:10::", "IPv6SubnetMax": "fd00:10:0:20::",
    "Backend": {"Type": "vxlan", "VNI": 4096, "Port": 4789, "MTU": 1400, "GBP": true, "Learning": true,
                "DirectRouting": true}})");
  REQUIRE(r);
  CHECK(r->ipv4->subnet_len == 20);
  CHECK(r->ipv4->subnet_min.str() == "10.1.0.0");
  CHECK(r->ipv4->subnet_max.str() == "10.9.240.0");
  REQUIRE(r->ipv6);
  CHECK(r->ipv6->network.str() == "fd00:10::/48");
  CHECK(r->ipv6->subnet_min.str() == "fd00:10:0:10::");
  CHECK(r->ipv6->subnet_max.str() == "fd00:10:0:20::");
  CHECK(r->backend.vni == 4096);
  CHECK(r->backend.port == 4789);
  CHECK(r->backend.mtu == 1400);
  CHECK(r->backend.gbp);
  CHECK(r->backend.learning);
  CHECK(r->backend.direct_routing);
}

TEST_CASE("IPv6-only config defaults", "[netconf]") {
  auto r = NetConfig::parse(R"({"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fd00:10:244::/56"})");
  REQUIRE(r);
  CHECK_FALSE(r->ipv4);
  CHECK(r->ipv6->subnet_len == 64);
  CHECK(r->ipv6->subnet_min.str() == "fd00:10:244:1::");
  CHECK(r->ipv6->subnet_max.str() == "fd00:10:244:ff::");
}

TEST_CASE("each invalid input names the key, the value and what is allowed", "[netconf]") {
  struct Case {
    const char* json;
    std::vector<const char*> says;
  };
  std::vector<Case> cases = {
      {"not json", {"not valid JSON"}},
      {"[1,2]", {"must be a JSON object"}},
      {"{}", {"\"Network\" is required", "10.244.0.0/16"}},
      {R"({"Network":"10.244.1.0/16"})", {"\"Network\"", "host bits", "10.244.0.0/16"}},
      {R"({"Network":"10.244.0.0"})", {"\"Network\"", "address/length"}},
      {R"({"Network":16})", {"\"Network\" must be a string", "16"}},
      {R"({"Network":"10.244.0.0/16","SubnetLen":"24"})", {"\"SubnetLen\" must be a whole number", "\"24\""}},
      {R"({"Network":"10.244.0.0/16","SubnetLen":24.5})", {"\"SubnetLen\"", "24.5", "whole number"}},
      {R"({"Network":"10.244.0.0/16","SubnetLen":16})", {"\"SubnetLen\" is 16", "from 18 to 30", "10.244.0.0/16"}},
      {R"({"Network":"10.244.0.0/16","SubnetLen":31})", {"\"SubnetLen\" is 31", "from 18 to 30"}},
      {R"({"Network":"10.244.0.0/16","SubnetLen":-3})", {"\"SubnetLen\" is -3", "out of range"}},
      {R"({"Network":"10.244.0.0/16","SubnetMin":"10.244.1.5"})",
       {"\"SubnetMin\" is 10.244.1.5", "/24 boundary", "10.244.1.0"}},
      {R"({"Network":"10.244.0.0/16","SubnetMax":"10.245.0.0"})", {"\"SubnetMax\" is 10.245.0.0", "outside"}},
      {R"({"Network":"10.244.0.0/16","SubnetMin":"10.244.9.0","SubnetMax":"10.244.3.0"})",
       {"\"SubnetMin\" 10.244.9.0 is above \"SubnetMax\" 10.244.3.0"}},
      {R"({"Network":"10.244.0.0/16","SubnetMin":"banana"})", {"\"SubnetMin\"", "banana", "not a valid IPv4"}},
      {R"({"Network":"10.244.0.0/16","Backend":{"Type":"host-gw"}})", {"\"Backend.Type\" is \"host-gw\"", "vxlan"}},
      {R"({"Network":"10.244.0.0/16","Backend":{"VNI":16777216}})", {"\"Backend.VNI\"", "16777216", "1 to 16777215"}},
      {R"({"Network":"10.244.0.0/16","Backend":{"VNI":0}})", {"\"Backend.VNI\" is 0", "1 to 16777215"}},
      {R"({"Network":"10.244.0.0/16","Backend":{"Port":70000}})", {"\"Backend.Port\" is 70000", "1 to 65535"}},
      {R"({"Network":"10.244.0.0/16","Backend":{"MTU":20}})", {"\"Backend.MTU\" is 20", "118 to 65535"}},
      {R"({"Network":"10.244.0.0/16","Backend":{"GBP":"yes"}})", {"\"Backend.GBP\" must be true or false"}},
      {R"({"Network":"10.244.0.0/16","Backend":"vxlan"})", {"\"Backend\" must be an object"}},
      {R"({"Network":"10.244.0.0/16","EnableIPv4":"true"})", {"\"EnableIPv4\" must be true or false"}},
      {R"({"EnableIPv4":false})", {"both false"}},
      {R"({"Network":"10.244.0.0/16","EnableIPv6":true})", {"\"IPv6Network\" is required"}},
      {R"({"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fd00::/56","Backend":{"MTU":1000}})",
       {"\"Backend.MTU\" is 1000", "1280"}},
      {R"({"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fd00::/56","Backend":{"MTU":1349}})",
       {"\"Backend.MTU\" is 1349", "at least 1350", "outer packets"}},
      {R"({"Network":"10.244.0.0/16","Backend":{"VNI":99999999999999999999999}})", {"\"Backend.VNI\""}},
  };
  for (const auto& c : cases) {
    INFO(c.json);
    auto err = error_of(c.json);
    for (const char* s : c.says) CHECK_THAT(err, Catch::Contains(s));
  }
}

TEST_CASE("unknown keys warn but do not fail", "[netconf]") {
  auto r = NetConfig::parse(R"({"Network":"10.244.0.0/16","Colour":"blue","Backend":{"Type":"vxlan","Speed":9}})");
  REQUIRE(r);
  REQUIRE(r->warnings.size() == 2);
  CHECK_THAT(r->warnings[0] + r->warnings[1], Catch::Contains("\"Backend.Speed\"") && Catch::Contains("\"Colour\""));
  // Keys of a disabled family are known keys, not warnings.
  auto off = NetConfig::parse(R"({"Network":"10.244.0.0/16","IPv6Network":"fd00::/56"})");
  REQUIRE(off);
  CHECK(off->warnings.empty());
}

TEST_CASE("the effective config round-trips through to_json", "[netconf]") {
  auto r = NetConfig::parse(R"({"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fd00::/56",
                                "Backend":{"VNI":7,"MTU":1400}})");
  REQUIRE(r);
  auto again = NetConfig::parse(r->to_json());
  REQUIRE(again);
  CHECK(again->ipv4 == r->ipv4);
  CHECK(again->ipv6 == r->ipv6);
  CHECK(again->backend == r->backend);
}

TEST_CASE("load names the file in its errors", "[netconf]") {
  auto missing = NetConfig::load("/nonexistent/net-conf.json");
  REQUIRE_FALSE(missing);
  CHECK_THAT(missing.error(), Catch::Contains("/nonexistent/net-conf.json") && Catch::Contains("--net-config-path"));

  std::string path = "/tmp/weft-netconf-test-" + std::to_string(::getpid()) + ".json";
  std::ofstream(path) << R"({"Network":"10.244.0.0/16","SubnetLen":8})";
  auto bad = NetConfig::load(path);
  std::remove(path.c_str());
  REQUIRE_FALSE(bad);
  CHECK_THAT(bad.error(), Catch::StartsWith(path) && Catch::Contains("\"SubnetLen\" is 8"));
}

TEST_CASE("SubnetSource picks where a node's subnet comes from, auto by default", "[netconf]") {
  CHECK(NetConfig::parse(R"({"Network":"10.244.0.0/16"})")->subnet_source == weft::SubnetSource::Auto);
  CHECK(NetConfig::parse(R"({"Network":"10.244.0.0/16","SubnetSource":"podCIDR"})")->subnet_source ==
        weft::SubnetSource::PodCidr);
  CHECK(NetConfig::parse(R"({"Network":"10.244.0.0/16","SubnetSource":"lease"})")->subnet_source ==
        weft::SubnetSource::Lease);
  auto r = NetConfig::parse(R"({"Network":"10.244.0.0/16","SubnetSource":"lease"})");
  CHECK(r->warnings.empty());
  CHECK_THAT(r->to_json(), Catch::Contains(R"("SubnetSource": "lease")"));
  CHECK_THAT(error_of(R"({"Network":"10.244.0.0/16","SubnetSource":"podcidr"})"),
             Catch::Contains("\"SubnetSource\" is \"podcidr\"") && Catch::Contains("\"podCIDR\"") &&
                 Catch::Contains("\"lease\"") && Catch::Contains("\"auto\""));
  CHECK_THAT(error_of(R"({"Network":"10.244.0.0/16","SubnetSource":1})"), Catch::Contains("must be a string"));
}

TEST_CASE("FlannelCompat takes subnets from spec.podCIDR only", "[netconf][flannel]") {
  auto r = NetConfig::parse(R"({"Network":"10.244.0.0/16","FlannelCompat":true})");
  REQUIRE(r);
  CHECK(r->flannel_compat);
  CHECK(r->subnet_source == weft::SubnetSource::PodCidr);
  CHECK(r->warnings.empty());
  CHECK_THAT(r->to_json(), Catch::Contains(R"("FlannelCompat": true)"));
  CHECK(NetConfig::parse(r->to_json())->flannel_compat);
  CHECK_FALSE(NetConfig::parse(R"({"Network":"10.244.0.0/16"})")->flannel_compat);
  CHECK_THAT(error_of(R"({"Network":"10.244.0.0/16","FlannelCompat":true,"SubnetSource":"lease"})"),
             Catch::Contains("spec.podCIDR only") && Catch::Contains("--allocate-node-cidrs"));
  CHECK_THAT(error_of(R"({"Network":"10.244.0.0/16","FlannelCompat":"yes"})"), Catch::Contains("true or false"));
}
