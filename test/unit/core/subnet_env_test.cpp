#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "core/subnet_env.hpp"

using weft::SubnetEnv;

namespace {
SubnetEnv sample() {
  SubnetEnv env;
  env.network = weft::Ipv4Prefix::parse("10.244.0.0/16").value();
  env.subnet = weft::Ipv4Prefix::parse("10.244.7.0/24").value();
  env.mtu = 1450;
  env.ipmasq = true;
  return env;
}
}  // namespace

TEST_CASE("subnet.env holds the gateway form of the subnet, the MTU and IPMASQ", "[subnet_env]") {
  CHECK(sample().format() ==
        "WEFT_NETWORK=10.244.0.0/16\nWEFT_SUBNET=10.244.7.1/24\nWEFT_MTU=1450\nWEFT_IPMASQ=true\n");
  auto v6 = sample();
  v6.network_v6 = weft::Ipv6Prefix::parse("fd00:10:244::/56").value();
  v6.subnet_v6 = weft::Ipv6Prefix::parse("fd00:10:244:7::/64").value();
  CHECK_THAT(v6.format(),
             Catch::Contains("WEFT_IPV6_NETWORK=fd00:10:244::/56\nWEFT_IPV6_SUBNET=fd00:10:244:7::1/64\n"));
  CHECK(SubnetEnv::parse(v6.format()).value() == v6);
}

TEST_CASE("subnet.env round-trips and rejects damage", "[subnet_env]") {
  CHECK(SubnetEnv::parse(sample().format()).value() == sample());
  CHECK_THAT(SubnetEnv::parse("WEFT_NETWORK=10.244.0.0/16\n").error(), Catch::Contains("no WEFT_SUBNET"));
  CHECK_THAT(SubnetEnv::parse("garbage\n").error(), Catch::Contains("not KEY=value"));
  CHECK_THAT(SubnetEnv::parse("WEFT_NETWORK=10.244.0.0/16\nWEFT_SUBNET=10.9.0.1/24\nWEFT_MTU=1450\nWEFT_IPMASQ=false\n")
                 .error(),
             Catch::Contains("outside WEFT_NETWORK"));
  CHECK_THAT(
      SubnetEnv::parse("WEFT_NETWORK=10.244.0.0/16\nWEFT_SUBNET=10.244.1.1/24\nWEFT_MTU=big\nWEFT_IPMASQ=false\n")
          .error(),
      Catch::Contains("WEFT_MTU=big"));
  CHECK_THAT(
      SubnetEnv::parse("WEFT_NETWORK=10.244.0.0/16\nWEFT_SUBNET=10.244.1.1/99\nWEFT_MTU=1450\nWEFT_IPMASQ=false\n")
          .error(),
      Catch::Contains("bad prefix length"));
}

TEST_CASE("subnet.env is written atomically and a missing file says weftd is not running", "[subnet_env]") {
  namespace fs = std::filesystem;
  auto dir = fs::temp_directory_path() / ("weft-subnet-env-" + std::to_string(::getpid()));
  auto path = (dir / "run" / "subnet.env").string();
  CHECK_THAT(SubnetEnv::load(path).error(), Catch::Contains("is weftd running on this node?"));
  REQUIRE(sample().write_atomically(path));
  CHECK(SubnetEnv::load(path).value() == sample());
  auto changed = sample();
  changed.mtu = 1400;
  REQUIRE(changed.write_atomically(path));
  CHECK(SubnetEnv::load(path)->mtu == 1400);
  int files = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir / "run")) ++files;
  CHECK(files == 1);  // no temp files left behind
  fs::remove_all(dir);
}

namespace {
SubnetEnv v6_only() {
  SubnetEnv env;
  env.network_v6 = weft::Ipv6Prefix::parse("fd00:10:244::/56").value();
  env.subnet_v6 = weft::Ipv6Prefix::parse("fd00:10:244:7::/64").value();
  env.mtu = 1430;
  return env;
}
const std::string kTail = "WEFT_MTU=1450\nWEFT_IPMASQ=false\n";
const std::string kV4 = "WEFT_NETWORK=10.244.0.0/16\nWEFT_SUBNET=10.244.7.1/24\n";
const std::string kV6 = "WEFT_IPV6_NETWORK=fd00:10:244::/56\nWEFT_IPV6_SUBNET=fd00:10:244:7::1/64\n";
}  // namespace

TEST_CASE("an IPv6-only subnet.env has no IPv4 keys and round-trips", "[subnet_env]") {
  CHECK(v6_only().format() ==
        "WEFT_IPV6_NETWORK=fd00:10:244::/56\nWEFT_IPV6_SUBNET=fd00:10:244:7::1/64\nWEFT_MTU=1430\nWEFT_IPMASQ=false\n");
  auto parsed = SubnetEnv::parse(v6_only().format());
  REQUIRE(parsed);
  CHECK(*parsed == v6_only());
  CHECK_FALSE(parsed->network);
  CHECK_FALSE(parsed->subnet);
  CHECK(parsed->subnet_v6->str() == "fd00:10:244:7::/64");

  namespace fs = std::filesystem;
  auto dir = fs::temp_directory_path() / ("weft-subnet-env-v6-" + std::to_string(::getpid()));
  auto path = (dir / "subnet.env").string();
  REQUIRE(v6_only().write_atomically(path));
  CHECK(SubnetEnv::load(path).value() == v6_only());
  fs::remove_all(dir);
}

TEST_CASE("IPv4-only and dual stack files parse as before, a family at a time", "[subnet_env]") {
  auto v4 = SubnetEnv::parse(kV4 + kTail);
  REQUIRE(v4);
  CHECK(v4->subnet->str() == "10.244.7.0/24");
  CHECK_FALSE(v4->subnet_v6);
  auto dual = SubnetEnv::parse(kV4 + kV6 + kTail);
  REQUIRE(dual);
  CHECK(dual->network->str() == "10.244.0.0/16");
  CHECK(dual->network_v6->str() == "fd00:10:244::/56");
  CHECK(SubnetEnv::parse(dual->format()).value() == *dual);
}

TEST_CASE("a subnet.env without a whole family is refused, naming the missing key", "[subnet_env]") {
  auto error = [](const std::string& text) {
    auto env = SubnetEnv::parse(text);
    REQUIRE_FALSE(env);
    return env.error();
  };
  CHECK_THAT(error(kTail), Catch::Contains("no address family") && Catch::Contains("WEFT_IPV6_SUBNET"));
  CHECK_THAT(error("WEFT_IPV6_NETWORK=fd00:10:244::/56\n" + kTail),
             Catch::Contains("has WEFT_IPV6_NETWORK but no WEFT_IPV6_SUBNET"));
  CHECK_THAT(error("WEFT_IPV6_SUBNET=fd00:10:244:7::1/64\n" + kTail),
             Catch::Contains("has WEFT_IPV6_SUBNET but no WEFT_IPV6_NETWORK"));
  CHECK_THAT(error("WEFT_SUBNET=10.244.7.1/24\n" + kV6 + kTail),
             Catch::Contains("has WEFT_SUBNET but no WEFT_NETWORK"));
  CHECK_THAT(error(kV4 + "WEFT_IPV6_NETWORK=fd00:10:244::/56\n" + kTail), Catch::Contains("no WEFT_IPV6_SUBNET"));
  CHECK_THAT(error("WEFT_IPV6_NETWORK=fd00:10:244::/56\nWEFT_IPV6_SUBNET=fd00:99::1/64\n" + kTail),
             Catch::Contains("WEFT_IPV6_SUBNET fd00:99::/64 is outside WEFT_IPV6_NETWORK fd00:10:244::/56"));
  CHECK_THAT(error("WEFT_IPV6_NETWORK=fd00:10:244::/56\nWEFT_IPV6_SUBNET=fd00:10:244:7::1\n" + kTail),
             Catch::Contains("WEFT_IPV6_SUBNET") && Catch::Contains("expected address/length"));
  CHECK_THAT(error("WEFT_IPV6_NETWORK=10.0.0.0/8\nWEFT_IPV6_SUBNET=fd00:10:244:7::1/64\n" + kTail),
             Catch::Contains("WEFT_IPV6_NETWORK"));
  CHECK_THAT(error(kV6 + "WEFT_IPMASQ=false\n"), Catch::Contains("no WEFT_MTU"));
}
