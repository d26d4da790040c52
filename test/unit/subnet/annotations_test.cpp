#include <catch2/catch.hpp>

#include "subnet/annotations.hpp"
#include "test_util.hpp"

using namespace weft;
using weft::test::pfx;
using weft::test::v4;

namespace {

const AnnotationKeys kKeys = AnnotationKeys::with_prefix("weft.io");

PeerRules rules() {
  PeerRules r{v4(R"({"Network":"10.244.0.0/16"})"), "vxlan", 1, pfx("10.244.1.0/24")};
  return r;
}

Annotations good() {
  return {{"weft.io/subnet", "10.244.7.0/24"},
          {"weft.io/public-ip", "192.0.2.7"},
          {"weft.io/backend-type", "vxlan"},
          {"weft.io/backend-data", R"({"VNI":1,"VtepMAC":"0e:8f:12:34:56:78"})"},
          {"other.io/x", "y"}};
}

std::string refused(Annotations a) {
  auto r = parse_peer("node7", a, kKeys, rules());
  REQUIRE_FALSE(r);
  return r.error();
}

}  // namespace

TEST_CASE("keys hang under the prefix, with or without its slash", "[annotations]") {
  CHECK(AnnotationKeys::with_prefix("weft.io/").subnet == "weft.io/subnet");
  CHECK(AnnotationKeys::with_prefix("example.com").backend_data == "example.com/backend-data");
  CHECK(kKeys.is_ours("weft.io/public-ip"));
  CHECK_FALSE(kKeys.is_ours("other.io/public-ip"));
}

TEST_CASE("a peer with good annotations parses", "[annotations]") {
  auto p = parse_peer("node7", good(), kKeys, rules());
  REQUIRE(p);
  CHECK(p->name == "node7");
  CHECK(p->subnet == pfx("10.244.7.0/24"));
  CHECK(p->public_ip.str() == "192.0.2.7");
  CHECK(p->vtep_mac.str() == "0e:8f:12:34:56:78");
}

TEST_CASE("bad peer annotations are refused with the reason", "[annotations]") {
  auto with = [](const std::string& k, const std::string& v) {
    auto a = good();
    a[k] = v;
    return a;
  };
  auto data = [&](const std::string& v) { return with("weft.io/backend-data", v); };
  CHECK_THAT(refused(data(R"({"VNI":1,"VtepMAC":"0e:8f:12:34:56:zz"})")), Catch::Contains("not a valid MAC"));
  CHECK_THAT(refused(data(R"({"VNI":1,"VtepMAC":"0e:8f:12:34:56"})")), Catch::Contains("not a valid MAC"));
  CHECK_THAT(refused(data(R"({"VNI":1,"VtepMAC":"0e:8f:12:34:56:78:9a"})")), Catch::Contains("not a valid MAC"));
  CHECK_THAT(refused(data(R"({"VNI":1,"VtepMAC":"01:00:5e:00:00:01"})")), Catch::Contains("not a unicast MAC"));
  CHECK_THAT(refused(data("{this is not json")), Catch::Contains("not a JSON object"));
  CHECK_THAT(refused(data("[1,2]")), Catch::Contains("not a JSON object"));
  CHECK_THAT(refused(data(R"({"VNI":1})")), Catch::Contains("no \"VtepMAC\""));
  CHECK_THAT(refused(data(R"({"VNI":2,"VtepMAC":"0e:8f:12:34:56:78"})")), Catch::Contains("VNI 2, ours is 1"));
  CHECK_THAT(refused(data(R"({"VNI":-1,"VtepMAC":"0e:8f:12:34:56:78"})")), Catch::Contains("is not a VNI"));
  CHECK_THAT(refused(data(std::string(5000, '['))), Catch::Contains("too long"));
  CHECK_THAT(refused(with("weft.io/subnet", "10.9.0.0/24")), Catch::Contains("outside network 10.244.0.0/16"));
  CHECK_THAT(refused(with("weft.io/subnet", "10.244.1.0/25")),
             Catch::Contains("overlaps our own subnet 10.244.1.0/24"));
  CHECK_THAT(refused(with("weft.io/subnet", "10.244.0.0/16")), Catch::Contains("overlaps our own"));
  CHECK_THAT(refused(with("weft.io/subnet", "10.244.7.1/24")), Catch::Contains("host bits"));
  CHECK_THAT(refused(with("weft.io/subnet", "garbage")), Catch::Contains("weft.io/subnet"));
  CHECK_THAT(refused(with("weft.io/public-ip", "2001:db8::7")), Catch::Contains("not a valid IPv4 address"));
  CHECK_THAT(refused(with("weft.io/public-ip", "224.0.0.1")), Catch::Contains("not a unicast address"));
  CHECK_THAT(refused(with("weft.io/public-ip", "10.244.9.1")), Catch::Contains("inside the cluster network"));
  CHECK_THAT(refused(with("weft.io/backend-type", "host-gw")), Catch::Contains("ours is vxlan"));
  auto a = good();
  a.erase("weft.io/public-ip");
  CHECK_THAT(refused(a), Catch::Contains("no weft.io/public-ip"));
}

TEST_CASE("a Node without annotations has not joined; one with only a claim is not a peer yet", "[annotations]") {
  CHECK_FALSE(has_lease_annotations({}, kKeys));
  CHECK_FALSE(has_lease_annotations({{"other.io/subnet", "x"}}, kKeys));
  CHECK_THAT(refused({}), Catch::Contains("no weft.io/subnet"));
  Annotations claim{{"weft.io/subnet-claim", "10.244.9.0/24"}};
  CHECK_FALSE(has_lease_annotations(claim, kKeys));
  CHECK_THAT(refused(claim), Catch::Contains("not confirmed"));
}

TEST_CASE("the lease patch publishes what a peer needs and round-trips", "[annotations]") {
  Lease l;
  l.subnet = pfx("10.244.7.0/24");
  l.public_ip = *Ipv4Addr::parse("192.0.2.7");
  l.vtep_mac = *Mac::parse("0e:8f:12:34:56:78");
  BackendConfig b;
  auto patch = lease_patch(l, b, kKeys);
  CHECK(patch.at("weft.io/backend-data") == std::optional<std::string>(R"({"VNI":1,"VtepMAC":"0e:8f:12:34:56:78"})"));
  CHECK_FALSE(patch.at("weft.io/subnet-claim"));
  Annotations a;
  for (const auto& [k, v] : patch) {
    if (v) a[k] = *v;
  }
  PeerRules open_rules;
  open_rules.network = v4(R"({"Network":"10.244.0.0/16"})");
  auto p = parse_peer("n", a, kKeys, open_rules);
  REQUIRE(p);
  CHECK(p->subnet == l.subnet);
  CHECK(p->vtep_mac == l.vtep_mac);
  auto own = parse_own(a, kKeys);
  CHECK(own.subnet == l.subnet);
  CHECK(own.public_ip == l.public_ip);
  CHECK(own.vtep_mac == l.vtep_mac);
}

TEST_CASE("taken subnets include claims and skip malformed values", "[annotations]") {
  std::vector<Ipv4Prefix> taken;
  add_taken_subnets({{"weft.io/subnet", "10.244.2.0/24"}, {"weft.io/subnet-claim", "10.244.3.0/24"}}, kKeys, taken);
  add_taken_subnets({{"weft.io/subnet", "nope"}}, kKeys, taken);
  CHECK(taken == std::vector<Ipv4Prefix>{pfx("10.244.2.0/24"), pfx("10.244.3.0/24")});
}
