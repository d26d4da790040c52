#include <catch2/catch.hpp>

#include "subnet/annotations.hpp"
#include "test_util.hpp"

using namespace weft;
using weft::test::pfx;
using weft::test::v4;

namespace {

const AnnotationKeys kKeys = AnnotationKeys::with_prefix("weft.io");

PeerRules rules() {
  PeerRules r{v4(R"({"Network":"10.244.0.0/16"})"), "vxlan", 1, pfx("10.244.1.0/24"), std::nullopt, std::nullopt};
  return r;
}

Annotations good() {
  return {{"weft.io/subnet", "10.244.7.0/24"},
          {"weft.io/public-ip", "192.0.2.7"},
          {"weft.io/backend-type", "vxlan"},
          {"weft.io/backend-data", R"({"VNI":1,"VtepMAC":"0e:8f:12:34:56:78"})"},
          {"other.io/x", "y"}};
}

// The lease good() publishes.
Lease node7_lease() {
  Lease l;
  l.subnet = pfx("10.244.7.0/24");
  l.public_ip = *Ipv4Addr::parse("192.0.2.7");
  l.vtep_mac = *Mac::parse("0e:8f:12:34:56:78");
  return l;
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
  CHECK(p->public_ip->str() == "192.0.2.7");
  CHECK(p->vtep_mac->str() == "0e:8f:12:34:56:78");
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
  CHECK_THAT(refused(with("weft.io/subnet", "10.244.1.0/24")),
             Catch::Contains("overlaps our own subnet 10.244.1.0/24"));
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

TEST_CASE("a Node without annotations has not joined, one with only a claim is not a peer yet", "[annotations]") {
  CHECK_FALSE(has_lease_annotations({}, kKeys));
  CHECK_FALSE(has_lease_annotations({{"other.io/subnet", "x"}}, kKeys));
  CHECK_THAT(refused({}), Catch::Contains("no weft.io/subnet"));
  Annotations claim{{"weft.io/subnet-claim", "10.244.9.0/24"}};
  CHECK_FALSE(has_lease_annotations(claim, kKeys));
  CHECK_THAT(refused(claim), Catch::Contains("not confirmed"));
}

TEST_CASE("the lease patch publishes what a peer needs and round-trips", "[annotations]") {
  Lease l = node7_lease();
  BackendConfig b;
  auto patch = lease_patch(l, b, kKeys, 1767225600123);
  CHECK(patch.at("weft.io/claimed-at") == std::optional<std::string>("2026-01-01T00:00:00.123Z"));
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
  CHECK(own.claimed_at_ms == 1767225600123);
}

TEST_CASE("taken subnets include claims and skip malformed values", "[annotations]") {
  std::vector<Ipv4Prefix> taken;
  auto net = v4(R"({"Network":"10.244.0.0/16"})");
  add_taken_subnets({{"weft.io/subnet", "10.244.2.0/24"}, {"weft.io/subnet-claim", "10.244.3.0/24"}}, kKeys, net,
                    taken);
  add_taken_subnets({{"weft.io/subnet", "nope"}}, kKeys, net, taken);
  CHECK(taken == std::vector<Ipv4Prefix>{pfx("10.244.2.0/24"), pfx("10.244.3.0/24")});
}

TEST_CASE("a peer subnet must be one /SubnetLen of the network, in SubnetMin..SubnetMax", "[annotations][ownership]") {
  auto with_subnet = [](const std::string& v) {
    auto a = good();
    a["weft.io/subnet"] = v;
    return a;
  };
  // Issue #15: a /16 or a /17 inside the network black-holed every node it covers.
  CHECK_THAT(refused(with_subnet("10.244.0.0/16")), Catch::Contains("is a /16") && Catch::Contains("/24 (SubnetLen)"));
  CHECK_THAT(refused(with_subnet("10.244.128.0/17")), Catch::Contains("is a /17"));
  CHECK_THAT(refused(with_subnet("10.244.7.0/25")), Catch::Contains("is a /25"));
  CHECK_THAT(refused(with_subnet("10.244.0.0/24")), Catch::Contains("outside the leasable range 10.244.1.0"));
  PeerRules narrow = rules();
  narrow.network = v4(R"({"Network":"10.244.0.0/16","SubnetMax":"10.244.99.0"})");
  auto r = parse_peer("node7", with_subnet("10.244.150.0/24"), kKeys, narrow);
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error(), Catch::Contains("10.244.1.0 to 10.244.99.0 (SubnetMin, SubnetMax)"));
  // podCIDR clusters: the controller assigns anywhere in the network, 10.244.0.0/24 first.
  narrow.network = whole_network(*narrow.network);
  CHECK(parse_peer("node7", with_subnet("10.244.150.0/24"), kKeys, narrow));
  CHECK(parse_peer("node7", with_subnet("10.244.0.0/24"), kKeys, narrow));
  CHECK_FALSE(parse_peer("node7", with_subnet("10.244.0.0/23"), kKeys, narrow));
}

TEST_CASE("a subnet wider than SubnetLen never counts as taken for the allocator", "[annotations][ownership]") {
  // Issue #15: one Node annotated 10.244.0.0/16 made every new node's weftd exit with "network full".
  auto net = v4(R"({"Network":"10.244.0.0/16"})");
  std::vector<Ipv4Prefix> taken;
  add_taken_subnets({{"weft.io/subnet", "10.244.0.0/16"}}, kKeys, net, taken);
  add_taken_subnets({{"weft.io/subnet-claim", "10.244.128.0/17"}}, kKeys, net, taken);
  add_taken_subnets({{"weft.io/subnet", "10.9.0.0/24"}}, kKeys, net, taken);
  add_taken_subnets({{"weft.io/subnet", "10.244.0.0/24"}}, kKeys, net, taken);  // below SubnetMin
  CHECK(taken.empty());
}

TEST_CASE("RFC3339 times parse to milliseconds and back, bad ones are refused", "[annotations][ownership]") {
  CHECK(parse_rfc3339_ms("1970-01-01T00:00:00Z") == 0);
  CHECK(parse_rfc3339_ms("2026-01-01T00:00:00Z") == 1767225600000);
  CHECK(parse_rfc3339_ms("2026-01-01T00:00:00.5Z") == 1767225600500);
  CHECK(parse_rfc3339_ms("2026-01-01T00:00:00.123456789Z") == 1767225600123);
  CHECK(parse_rfc3339_ms("2024-02-29T23:59:59Z") == 1709251199000);
  CHECK(format_rfc3339_ms(1709251199007) == "2024-02-29T23:59:59.007Z");
  CHECK(parse_rfc3339_ms(format_rfc3339_ms(1767225600123)) == 1767225600123);
  for (const char* bad : {"", "2026-01-01", "2026-01-01T00:00:00", "2026-01-01T00:00:00+01:00", "2026-13-01T00:00:00Z",
                          "2026-01-01T24:00:00Z", "2026-01-01T00:00:00.Z", "1969-12-31T23:59:59Z",
                          "2026-01-01T00:00:00Zx", "20x6-01-01T00:00:00Z"}) {
    CAPTURE(bad);
    CHECK_FALSE(parse_rfc3339_ms(bad));
  }
}

TEST_CASE("a claim ranks at the later of its Node's creation and its claimed-at", "[annotations][ownership]") {
  const std::string created = "2026-01-01T00:00:10Z";
  CHECK(claim_rank(created, {}, kKeys) == 1767225610000);
  // A newcomer that writes an old claimed-at still ranks at its creation.
  CHECK(claim_rank(created, {{"weft.io/claimed-at", "2020-01-01T00:00:00Z"}}, kKeys) == 1767225610000);
  CHECK(claim_rank(created, {{"weft.io/claimed-at", "2026-01-01T00:01:00.250Z"}}, kKeys) == 1767225660250);
  CHECK(claim_rank(created, {{"weft.io/claimed-at", "garbage"}}, kKeys) == 1767225610000);
  CHECK(claim_rank("", {{"weft.io/claimed-at", "2020-01-01T00:00:00Z"}}, kKeys) == kUnknownRank);
}

namespace {

PeerRules dual_rules() {
  PeerRules r = rules();
  r.network_v6 = weft::test::v6(R"({"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:10:244::/56"})");
  r.own_subnet_v6 = weft::test::pfx6("fd00:10:244:1::/64");
  r.v6_underlay = true;
  return r;
}

PeerRules dual_rules_v4_underlay() {
  PeerRules r = dual_rules();
  r.v6_underlay = false;
  return r;
}

Annotations dual() {
  auto a = good();
  a["weft.io/subnet-v6"] = "fd00:10:244:7::/64";
  a["weft.io/backend-v6-data"] = R"({"VNI":1,"VtepMAC":"0e:8f:12:34:56:79"})";
  a["weft.io/public-ipv6"] = "2001:db8::7";
  return a;
}

std::string v6_refused(const std::string& key, const std::string& value) {
  auto a = dual();
  a[key] = value;
  auto r = parse_peer_v6(a, kKeys, dual_rules());
  REQUIRE_FALSE(r);
  return r.error();
}

}  // namespace

TEST_CASE("a peer's IPv6 half parses from flannel-named v6 annotations", "[annotations][ipv6]") {
  CHECK(kKeys.public_ip_v6 == "weft.io/public-ipv6");
  CHECK(kKeys.backend_v6_data == "weft.io/backend-v6-data");
  auto r = parse_peer_v6(dual(), kKeys, dual_rules());
  REQUIRE(r);
  REQUIRE(r->has_value());
  CHECK((*r)->subnet == weft::test::pfx6("fd00:10:244:7::/64"));
  CHECK((*r)->vtep_mac.str() == "0e:8f:12:34:56:79");
  REQUIRE((*r)->public_ip);
  CHECK((*r)->public_ip->str() == "2001:db8::7");

  auto v4_underlay = dual();
  v4_underlay.erase("weft.io/public-ipv6");  // v6 pods over the v4 underlay: VNI + 1
  v4_underlay["weft.io/backend-v6-data"] = R"({"VNI":2,"VtepMAC":"0e:8f:12:34:56:79"})";
  auto u = parse_peer_v6(v4_underlay, kKeys, dual_rules_v4_underlay());
  REQUIRE(u);
  REQUIRE(u->has_value());
  CHECK_FALSE((*u)->public_ip);
}

TEST_CASE("a peer whose IPv6 VXLAN rides the other underlay family is refused", "[annotations][ipv6]") {
  auto v4_underlay = dual();
  v4_underlay.erase("weft.io/public-ipv6");
  v4_underlay["weft.io/backend-v6-data"] = R"({"VNI":2,"VtepMAC":"0e:8f:12:34:56:79"})";
  auto r = parse_peer_v6(v4_underlay, kKeys, dual_rules());  // we send over IPv6
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error(), Catch::Contains("no weft.io/public-ipv6") && Catch::Contains("over IPv4"));
  auto back = parse_peer_v6(dual(), kKeys, dual_rules_v4_underlay());  // we send over IPv4
  REQUIRE_FALSE(back);
  CHECK_THAT(back.error(), Catch::Contains("weft.io/public-ipv6 2001:db8::7") && Catch::Contains("over IPv6"));
  auto same_vni = dual();
  same_vni.erase("weft.io/public-ipv6");  // VNI 1 over IPv4 would clash with weft.1
  auto v = parse_peer_v6(same_vni, kKeys, dual_rules_v4_underlay());
  REQUIRE_FALSE(v);
  CHECK_THAT(v.error(), Catch::Contains("VNI 1, ours is 2") && Catch::Contains("Backend.VNI + 1"));
  CHECK(vni_v6(1, true) == 1);
  CHECK(vni_v6(1, false) == 2);
}

TEST_CASE("no IPv6 half without a v6 network or a v6 subnet annotation", "[annotations][ipv6]") {
  auto v4_only = parse_peer_v6(dual(), kKeys, rules());  // EnableIPv6 is off: v6 annotations are not read
  REQUIRE(v4_only);
  CHECK_FALSE(v4_only->has_value());
  auto no_v6 = parse_peer_v6(good(), kKeys, dual_rules());  // a v4-only peer in a dual-stack cluster
  REQUIRE(no_v6);
  CHECK_FALSE(no_v6->has_value());
  // The v4 half is judged alone: a bad v6 half costs only the v6 routes.
  auto a = dual();
  a["weft.io/subnet-v6"] = "2001:db8:1::/64";
  CHECK(parse_peer("node7", a, kKeys, dual_rules()));
  CHECK_FALSE(parse_peer_v6(a, kKeys, dual_rules()));
}

TEST_CASE("bad IPv6 annotations are refused with the reason", "[annotations][ipv6]") {
  CHECK_THAT(v6_refused("weft.io/subnet-v6", "2001:db8:1::/64"), Catch::Contains("outside network fd00:10:244::/56"));
  CHECK_THAT(v6_refused("weft.io/subnet-v6", "fd00:10:244::/56"), Catch::Contains("it would cover other nodes"));
  CHECK_THAT(v6_refused("weft.io/subnet-v6", "fd00:10:244:1::/64"), Catch::Contains("overlaps our own subnet"));
  CHECK_THAT(v6_refused("weft.io/subnet-v6", "10.244.7.0/24"), Catch::Contains("weft.io/subnet-v6"));
  CHECK_THAT(v6_refused("weft.io/subnet-v6", "fd00:10:244:7::1/64"), Catch::Contains("weft.io/subnet-v6"));
  CHECK_THAT(v6_refused("weft.io/public-ipv6", "fe80::1"), Catch::Contains("link-local"));
  CHECK_THAT(v6_refused("weft.io/public-ipv6", "::1"), Catch::Contains("not a unicast address"));
  CHECK_THAT(v6_refused("weft.io/public-ipv6", "ff02::1"), Catch::Contains("not a unicast address"));
  CHECK_THAT(v6_refused("weft.io/public-ipv6", "::ffff:192.0.2.7"), Catch::Contains("IPv4-mapped"));
  CHECK_THAT(v6_refused("weft.io/public-ipv6", "fd00:10:244:7::5"), Catch::Contains("inside the cluster's IPv6"));
  CHECK_THAT(v6_refused("weft.io/public-ipv6", "192.0.2.7"), Catch::Contains("weft.io/public-ipv6"));
  CHECK_THAT(v6_refused("weft.io/backend-v6-data", R"({"VNI":1,"VtepMAC":"192.0.2.7"})"),
             Catch::Contains("not a valid MAC"));
  CHECK_THAT(v6_refused("weft.io/backend-v6-data", R"({"VNI":1,"VtepMAC":"01:00:5e:00:00:01"})"),
             Catch::Contains("not a unicast MAC"));
  CHECK_THAT(v6_refused("weft.io/backend-v6-data", R"({"VNI":2,"VtepMAC":"0e:8f:12:34:56:79"})"),
             Catch::Contains("VNI 2, ours is 1"));
  auto no_data = dual();
  no_data.erase("weft.io/backend-v6-data");
  auto r = parse_peer_v6(no_data, kKeys, dual_rules());
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error(), Catch::Contains("no weft.io/backend-v6-data"));
}

TEST_CASE("a dual-stack lease publishes its v6 half, which peers parse back", "[annotations][ipv6]") {
  Lease l = node7_lease();
  BackendConfig b;
  auto v4_patch = lease_patch(l, b, kKeys, 1767225600123);
  CHECK_FALSE(v4_patch.count("weft.io/subnet-v6"));  // a v4-only lease leaves the v6 keys alone

  l.subnet_v6 = weft::test::pfx6("fd00:10:244:7::/64");
  l.vtep_mac_v6 = *Mac::parse("0e:8f:12:34:56:79");
  l.public_ip_v6 = *Ipv6Addr::parse("2001:db8::7");
  Annotations a;
  for (const auto& [k, v] : lease_patch(l, b, kKeys, 1767225600123)) {
    if (v) a[k] = *v;
  }
  auto half = parse_peer_v6(a, kKeys, dual_rules());
  REQUIRE(half);
  REQUIRE(half->has_value());
  CHECK((*half)->subnet == *l.subnet_v6);
  CHECK((*half)->vtep_mac == *l.vtep_mac_v6);
  CHECK((*half)->public_ip == l.public_ip_v6);
  auto own = parse_own(a, kKeys);
  CHECK(own.subnet_v6 == l.subnet_v6);
  CHECK(own.vtep_mac_v6 == l.vtep_mac_v6);
  CHECK(own.public_ip_v6 == l.public_ip_v6);

  CHECK(a.at("weft.io/backend-v6-data") == R"({"VNI":1,"VtepMAC":"0e:8f:12:34:56:79"})");

  l.public_ip_v6.reset();  // v6 over the v4 underlay: the old public-ipv6 is removed, VNI + 1
  auto over_v4 = lease_patch(l, b, kKeys, 1767225600123);
  CHECK_FALSE(over_v4.at("weft.io/public-ipv6"));
  CHECK(over_v4.at("weft.io/backend-v6-data") == R"({"VNI":2,"VtepMAC":"0e:8f:12:34:56:79"})");
}

// A merge patch that deletes a key of a Node without annotations is stored as "" by the real
// API server (1.20), so "" must read as absent, and weft must not send such deletes.
TEST_CASE("an empty annotation is no annotation, and deletes of absent keys are not sent", "[annotations][ipv6]") {
  auto a = dual();
  a.erase("weft.io/public-ipv6");
  a["weft.io/backend-v6-data"] = R"({"VNI":2,"VtepMAC":"0e:8f:12:34:56:79"})";
  a["weft.io/subnet-claim"] = "";
  auto blank = a;
  blank["weft.io/public-ipv6"] = "";
  auto half = parse_peer_v6(blank, kKeys, dual_rules_v4_underlay());
  REQUIRE(half);
  REQUIRE(half->has_value());
  CHECK_FALSE((*half)->public_ip);
  CHECK(parse_peer("node7", blank, kKeys, dual_rules_v4_underlay()));
  CHECK_FALSE(parse_own(blank, kKeys).subnet_claim);
  CHECK_FALSE(has_lease_annotations({{"weft.io/subnet", ""}}, kKeys));
  CHECK_THAT(refused({{"weft.io/subnet", ""}}), Catch::Contains("no weft.io/subnet"));

  Lease l = node7_lease();
  l.subnet_v6 = weft::test::pfx6("fd00:10:244:7::/64");
  l.vtep_mac_v6 = *Mac::parse("0e:8f:12:34:56:79");
  auto patch = lease_patch(l, BackendConfig{}, kKeys, 1767225600123);
  REQUIRE(patch.count("weft.io/public-ipv6"));
  auto sent = without_absent_deletes(patch, {});
  CHECK_FALSE(sent.count("weft.io/public-ipv6"));
  CHECK_FALSE(sent.count("weft.io/subnet-claim"));
  CHECK(sent.at("weft.io/subnet") == std::optional<std::string>("10.244.7.0/24"));
  auto kept = without_absent_deletes(patch, {{"weft.io/public-ipv6", "2001:db8::7"}, {"weft.io/subnet-claim", ""}});
  CHECK(kept.count("weft.io/public-ipv6"));  // present keys are still deleted, "" ones too
  CHECK(kept.count("weft.io/subnet-claim"));
  CHECK_FALSE(kept.at("weft.io/public-ipv6"));
}

TEST_CASE("flannel's scheme: a node's lease is its podCIDR, published without weft's own keys",
          "[annotations][flannel]") {
  const AnnotationKeys f = AnnotationKeys::flannel_compat();
  CHECK(f.flannel);
  CHECK(f.backend_data == "flannel.alpha.coreos.com/backend-data");
  CHECK(f.kube_subnet_manager == "flannel.alpha.coreos.com/kube-subnet-manager");
  Lease l = node7_lease();
  l.subnet_v6 = weft::test::pfx6("fd00:10:244:7::/64");
  l.vtep_mac_v6 = *Mac::parse("0e:8f:12:34:56:79");
  l.public_ip_v6 = *Ipv6Addr::parse("2001:db8::7");
  auto patch = lease_patch(l, BackendConfig{}, f, 1767225600123);
  AnnotationPatch want{{"flannel.alpha.coreos.com/backend-type", "vxlan"},
                       {"flannel.alpha.coreos.com/backend-data", R"({"VNI":1,"VtepMAC":"0e:8f:12:34:56:78"})"},
                       {"flannel.alpha.coreos.com/public-ip", "192.0.2.7"},
                       {"flannel.alpha.coreos.com/kube-subnet-manager", "true"},
                       {"flannel.alpha.coreos.com/backend-v6-data", R"({"VNI":1,"VtepMAC":"0e:8f:12:34:56:79"})"},
                       {"flannel.alpha.coreos.com/public-ipv6", "2001:db8::7"}};
  CHECK(patch == want);

  Annotations a;
  for (const auto& [k, v] : patch) a[k] = *v;
  auto seen = flannel_view(a, {"10.244.7.0/24", "fd00:10:244:7::/64"}, f);
  CHECK(seen.at("flannel.alpha.coreos.com/subnet") == "10.244.7.0/24");
  CHECK(seen.at("flannel.alpha.coreos.com/subnet-v6") == "fd00:10:244:7::/64");
  CHECK(flannel_view(a, {"10.244.7.0/24"}, f).count("flannel.alpha.coreos.com/subnet-v6") == 0);
  a.erase("flannel.alpha.coreos.com/kube-subnet-manager");
  CHECK(flannel_view(a, {"10.244.7.0/24"}, f).empty());
  a["flannel.alpha.coreos.com/kube-subnet-manager"] = "false";
  CHECK(flannel_view(a, {"10.244.7.0/24"}, f).empty());
}

// IPv6-only clusters ("EnableIPv4": false): the IPv6 half is the whole peer.
namespace {

const char* kV6OnlyNet = R"({"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fd00:10:244::/56"})";

PeerRules v6only_rules() {
  PeerRules r;
  r.network = std::nullopt;
  r.network_v6 = weft::test::v6(kV6OnlyNet);
  r.own_subnet_v6 = weft::test::pfx6("fd00:10:244:1::/64");
  r.v6_underlay = true;
  return r;
}

Annotations v6only() {
  return {{"weft.io/backend-type", "vxlan"},
          {"weft.io/subnet-v6", "fd00:10:244:7::/64"},
          {"weft.io/backend-v6-data", R"({"VNI":1,"VtepMAC":"0e:8f:12:34:56:79"})"},
          {"weft.io/public-ipv6", "2001:db8::7"},
          {"other.io/x", "y"}};
}

std::string v6only_refused(const Annotations& a, const PeerRules& r = v6only_rules()) {
  auto p = parse_peer("node7", a, kKeys, r);
  REQUIRE_FALSE(p);
  return p.error();
}

Annotations v6only_with(const std::string& key, const std::string& value) {
  auto a = v6only();
  a[key] = value;
  return a;
}

Annotations v6only_without(const std::string& key) {
  auto a = v6only();
  a.erase(key);
  return a;
}

Lease v6only_lease() {
  Lease l;
  l.subnet_v6 = weft::test::pfx6("fd00:10:244:7::/64");
  l.vtep_mac_v6 = *Mac::parse("0e:8f:12:34:56:79");
  l.public_ip_v6 = *Ipv6Addr::parse("2001:db8::7");
  return l;
}

}  // namespace

TEST_CASE("IPv6-only: a peer is its IPv6 half, with no IPv4 values", "[annotations][ipv6only]") {
  auto p = parse_peer("node7", v6only(), kKeys, v6only_rules());
  REQUIRE(p);
  CHECK(p->name == "node7");
  CHECK(p->subnet_v6 == weft::test::pfx6("fd00:10:244:7::/64"));
  CHECK(p->vtep_mac_v6->str() == "0e:8f:12:34:56:79");
  CHECK(p->public_ip_v6->str() == "2001:db8::7");
  CHECK_FALSE(p->subnet);
  CHECK_FALSE(p->public_ip);
  CHECK_FALSE(p->vtep_mac);
  // The VNI may be left out, as in IPv4's backend-data.
  CHECK(parse_peer("node7", v6only_with("weft.io/backend-v6-data", R"({"VtepMAC":"0e:8f:12:34:56:79"})"), kKeys,
                   v6only_rules()));
}

TEST_CASE("IPv6-only: a node without a confirmed IPv6 lease is refused with the reason", "[annotations][ipv6only]") {
  CHECK_THAT(v6only_refused({{"weft.io/backend-type", "vxlan"}}), Catch::Contains("no weft.io/subnet-v6 annotation"));
  auto claim = v6only_without("weft.io/subnet-v6");
  claim["weft.io/subnet-v6-claim"] = "fd00:10:244:7::/64";
  CHECK_THAT(v6only_refused(claim), Catch::Contains("lease not confirmed yet (only weft.io/subnet-v6-claim)"));
  // An IPv4 lease is not an IPv6 one, whatever else the node publishes.
  CHECK_THAT(v6only_refused(good()),
             Catch::Contains("an IPv4 subnet only (weft.io/subnet)") && Catch::Contains("IPv6-only"));
  auto v4_claim = good();
  v4_claim.erase("weft.io/subnet");
  v4_claim["weft.io/subnet-claim"] = "10.244.7.0/24";
  CHECK_THAT(v6only_refused(v4_claim), Catch::Contains("no weft.io/subnet-v6"));
  CHECK_THAT(v6only_refused(v6only_with("weft.io/subnet-v6", "")), Catch::Contains("no weft.io/subnet-v6"));
  CHECK_THAT(v6only_refused(v6only_without("weft.io/backend-type")), Catch::Contains("no weft.io/backend-type"));
  CHECK_THAT(v6only_refused(v6only_with("weft.io/backend-type", "host-gw")), Catch::Contains("ours is vxlan"));
}

TEST_CASE("IPv6-only: bad IPv6 values cost the whole peer, with the reason", "[annotations][ipv6only]") {
  auto subnet = [](const std::string& v) { return v6only_refused(v6only_with("weft.io/subnet-v6", v)); };
  CHECK_THAT(subnet("2001:db8:7::/64"), Catch::Contains("outside network fd00:10:244::/56"));
  CHECK_THAT(subnet("fd00:10:244::/56"), Catch::Contains("is a /56"));
  CHECK_THAT(subnet("fd00:10:244:10::/60"), Catch::Contains("is a /60"));
  CHECK_THAT(subnet("fd00:10:244:7::/80"), Catch::Contains("is a /80"));
  CHECK_THAT(subnet("fd00:10:244::/64"), Catch::Contains("outside the leasable range"));  // below IPv6SubnetMin
  CHECK_THAT(subnet("fd00:10:244:1::/64"), Catch::Contains("overlaps our own subnet fd00:10:244:1::/64"));
  CHECK_THAT(subnet("fd00:10:244:7::1/64"), Catch::Contains("weft.io/subnet-v6"));
  CHECK_THAT(subnet("10.244.7.0/24"), Catch::Contains("weft.io/subnet-v6"));

  auto ip = [](const std::string& v) { return v6only_refused(v6only_with("weft.io/public-ipv6", v)); };
  CHECK_THAT(ip("fe80::7"), Catch::Contains("link-local"));
  CHECK_THAT(ip("::ffff:192.0.2.7"), Catch::Contains("IPv4-mapped"));
  CHECK_THAT(ip("::1"), Catch::Contains("not a unicast address"));
  CHECK_THAT(ip("::"), Catch::Contains("not a unicast address"));
  CHECK_THAT(ip("ff02::1"), Catch::Contains("not a unicast address"));
  CHECK_THAT(ip("fd00:10:244:7::5"), Catch::Contains("inside the cluster's IPv6 network"));
  CHECK_THAT(ip("192.0.2.7"), Catch::Contains("weft.io/public-ipv6"));
  // IPv6 VXLAN needs an IPv6 underlay when there is no IPv4 one.
  CHECK_THAT(v6only_refused(v6only_without("weft.io/public-ipv6")), Catch::Contains("no weft.io/public-ipv6"));
  CHECK_THAT(v6only_refused(v6only_with("weft.io/public-ipv6", "")), Catch::Contains("no weft.io/public-ipv6"));
  // A dual-stack-style public-ip does not stand in for it.
  auto v4_underlay = v6only_without("weft.io/public-ipv6");
  v4_underlay["weft.io/public-ip"] = "192.0.2.7";
  CHECK_THAT(v6only_refused(v4_underlay), Catch::Contains("no weft.io/public-ipv6"));

  auto data = [](const std::string& v) { return v6only_refused(v6only_with("weft.io/backend-v6-data", v)); };
  CHECK_THAT(data(R"({"VNI":1})"), Catch::Contains("weft.io/backend-v6-data has no \"VtepMAC\""));
  CHECK_THAT(data(R"({"VNI":1,"VtepMAC":"192.0.2.7"})"), Catch::Contains("not a valid MAC"));
  CHECK_THAT(data(R"({"VNI":1,"VtepMAC":"01:00:5e:00:00:01"})"), Catch::Contains("not a unicast MAC"));
  CHECK_THAT(data(R"({"VNI":1,"VtepMAC":"00:00:00:00:00:00"})"), Catch::Contains("not a unicast MAC"));
  CHECK_THAT(data("not json"), Catch::Contains("not a JSON object"));
  // Over the IPv6 underlay the v6 VTEP has Backend.VNI itself (no +1: there is no weft.<VNI>).
  CHECK_THAT(data(R"({"VNI":2,"VtepMAC":"0e:8f:12:34:56:79"})"), Catch::Contains("VNI 2, ours is 1"));
  CHECK_THAT(v6only_refused(v6only_without("weft.io/backend-v6-data")),
             Catch::Contains("no weft.io/backend-v6-data annotation"));
}

TEST_CASE("IPv6-only: public-ipv6 is required even when the rules leave v6_underlay unset", "[annotations][ipv6only]") {
  // PeerRules' default is an IPv4 underlay; an IPv6-only cluster has none, so a peer without
  // public-ipv6 would be a peer with no underlay address at all.
  PeerRules r = v6only_rules();
  r.v6_underlay = false;
  CHECK_THAT(v6only_refused(v6only_without("weft.io/public-ipv6"), r), Catch::Contains("no weft.io/public-ipv6"));
  auto p = parse_peer("node7", v6only(), kKeys, r);
  REQUIRE(p);
  CHECK(p->public_ip_v6->str() == "2001:db8::7");
}

TEST_CASE("IPv6-only: a dual-stack node is a peer by its IPv6 half", "[annotations][ipv6only]") {
  auto p = parse_peer("node7", dual(), kKeys, v6only_rules());
  REQUIRE(p);
  CHECK(p->subnet_v6 == weft::test::pfx6("fd00:10:244:7::/64"));
  CHECK(p->public_ip_v6->str() == "2001:db8::7");
  CHECK_FALSE(p->subnet);  // its IPv4 values are not read
  CHECK_FALSE(p->public_ip);
  CHECK_FALSE(p->vtep_mac);
  // Even a broken IPv4 half does not matter here.
  auto a = dual();
  a["weft.io/subnet"] = "garbage";
  a["weft.io/backend-data"] = "garbage";
  CHECK(parse_peer("node7", a, kKeys, v6only_rules()));
}

TEST_CASE("IPv6-only: the lease patch writes exactly the IPv6 keys and drops the v6 claim", "[annotations][ipv6only]") {
  auto patch = lease_patch(v6only_lease(), BackendConfig{}, kKeys, 1767225600123);
  AnnotationPatch want{{"weft.io/backend-type", "vxlan"},
                       {"weft.io/claimed-at", "2026-01-01T00:00:00.123Z"},
                       {"weft.io/subnet-v6", "fd00:10:244:7::/64"},
                       {"weft.io/backend-v6-data", R"({"VNI":1,"VtepMAC":"0e:8f:12:34:56:79"})"},
                       {"weft.io/public-ipv6", "2001:db8::7"},
                       {"weft.io/subnet-v6-claim", std::nullopt}};
  CHECK(patch == want);
  for (const char* v4_key : {"weft.io/subnet", "weft.io/subnet-claim", "weft.io/public-ip", "weft.io/backend-data"}) {
    CAPTURE(v4_key);
    CHECK_FALSE(patch.count(v4_key));
  }
  // A dual-stack lease keeps subnet-v6-claim alone (its v6 half is paired, never claimed).
  Lease d = v6only_lease();
  d.subnet = pfx("10.244.7.0/24");
  d.public_ip = *Ipv4Addr::parse("192.0.2.7");
  d.vtep_mac = *Mac::parse("0e:8f:12:34:56:78");
  CHECK_FALSE(lease_patch(d, BackendConfig{}, kKeys, 0).count("weft.io/subnet-v6-claim"));

  // Round trip: the published lease parses back as the same peer and as our own lease.
  Annotations a;
  for (const auto& [k, v] : patch) {
    if (v) a[k] = *v;
  }
  auto p = parse_peer("node7", a, kKeys, v6only_rules());
  REQUIRE(p);
  CHECK(p->subnet_v6 == v6only_lease().subnet_v6);
  CHECK(p->vtep_mac_v6 == v6only_lease().vtep_mac_v6);
  CHECK(p->public_ip_v6 == v6only_lease().public_ip_v6);
  auto own = parse_own(a, kKeys);
  CHECK(own.subnet_v6 == v6only_lease().subnet_v6);
  CHECK(own.public_ip_v6 == v6only_lease().public_ip_v6);
  CHECK(own.vtep_mac_v6 == v6only_lease().vtep_mac_v6);
  CHECK(own.claimed_at_ms == 1767225600123);
  CHECK_FALSE(own.subnet);
  CHECK_FALSE(own.public_ip);
  CHECK_FALSE(own.vtep_mac);
  CHECK_FALSE(own.subnet_v6_claim);
  CHECK(claim_rank("2026-01-01T00:00:00Z", a, kKeys) == 1767225600123);
}

TEST_CASE("IPv6-only: parse_own reads the subnet-v6-claim a stopped run left", "[annotations][ipv6only]") {
  CHECK(kKeys.subnet_v6_claim == "weft.io/subnet-v6-claim");
  CHECK(AnnotationKeys::with_prefix("example.com/").subnet_v6_claim == "example.com/subnet-v6-claim");
  auto own = parse_own({{"weft.io/subnet-v6-claim", "fd00:10:244:9::/64"}}, kKeys);
  CHECK(own.subnet_v6_claim == weft::test::pfx6("fd00:10:244:9::/64"));
  CHECK_FALSE(own.subnet_v6);
  CHECK_FALSE(own.subnet_claim);
  CHECK_FALSE(parse_own({{"weft.io/subnet-v6-claim", "fd00:10:244:9::1/64"}}, kKeys).subnet_v6_claim);
  CHECK_FALSE(parse_own({{"weft.io/subnet-v6-claim", "10.244.9.0/24"}}, kKeys).subnet_v6_claim);
  CHECK_FALSE(parse_own({{"weft.io/subnet-v6-claim", ""}}, kKeys).subnet_v6_claim);
  // An IPv4 claim is not read as an IPv6 one, nor the other way round.
  CHECK_FALSE(parse_own({{"weft.io/subnet-claim", "fd00:10:244:9::/64"}}, kKeys).subnet_claim);
  CHECK_FALSE(parse_own({{"weft.io/subnet-claim", "fd00:10:244:9::/64"}}, kKeys).subnet_v6_claim);
}

TEST_CASE("IPv6-only: a node with only IPv6 lease keys has joined, one with only a v6 claim has not",
          "[annotations][ipv6only]") {
  CHECK(has_lease_annotations(v6only(), kKeys));
  CHECK(has_lease_annotations({{"weft.io/subnet-v6", "fd00:10:244:7::/64"}}, kKeys));
  CHECK(has_lease_annotations({{"weft.io/public-ipv6", "2001:db8::7"}}, kKeys));
  CHECK(has_lease_annotations({{"weft.io/backend-v6-data", "{}"}}, kKeys));
  CHECK_FALSE(has_lease_annotations({{"weft.io/subnet-v6-claim", "fd00:10:244:7::/64"}}, kKeys));
  CHECK_FALSE(has_lease_annotations({{"weft.io/subnet-v6", ""}}, kKeys));
  CHECK_FALSE(has_lease_annotations({{"other.io/subnet-v6", "fd00:10:244:7::/64"}}, kKeys));
}

TEST_CASE("IPv6-only: taken subnets are the v6 leases and claims that fit the network", "[annotations][ipv6only]") {
  auto net = weft::test::v6(kV6OnlyNet);
  std::vector<Ipv6Prefix> taken;
  add_taken_subnets({{"weft.io/subnet-v6", "fd00:10:244:2::/64"}, {"weft.io/subnet-v6-claim", "fd00:10:244:3::/64"}},
                    kKeys, net, taken);
  add_taken_subnets({{"weft.io/subnet-v6", "nope"}}, kKeys, net, taken);
  add_taken_subnets({{"weft.io/subnet-v6", "fd00:10:244::/56"}}, kKeys, net, taken);           // the whole network
  add_taken_subnets({{"weft.io/subnet-v6-claim", "fd00:10:244:80::/57"}}, kKeys, net, taken);  // half of it
  add_taken_subnets({{"weft.io/subnet-v6", "fd00:10:244:4::/80"}}, kKeys, net, taken);         // not a /64
  add_taken_subnets({{"weft.io/subnet-v6", "2001:db8:4::/64"}}, kKeys, net, taken);            // outside
  add_taken_subnets({{"weft.io/subnet-v6", "fd00:10:244::/64"}}, kKeys, net, taken);           // below IPv6SubnetMin
  // The IPv4 keys are not IPv6 leases, even with an IPv6 value.
  add_taken_subnets({{"weft.io/subnet", "fd00:10:244:5::/64"}, {"weft.io/subnet-claim", "fd00:10:244:6::/64"}}, kKeys,
                    net, taken);
  CHECK(taken ==
        std::vector<Ipv6Prefix>{weft::test::pfx6("fd00:10:244:2::/64"), weft::test::pfx6("fd00:10:244:3::/64")});
}

TEST_CASE("IPv6-only with flannel's keys: the lease is the v6 podCIDR, published without weft's own keys",
          "[annotations][ipv6only][flannel]") {
  const AnnotationKeys f = AnnotationKeys::flannel_compat();
  auto patch = lease_patch(v6only_lease(), BackendConfig{}, f, 1767225600123);
  AnnotationPatch want{{"flannel.alpha.coreos.com/backend-type", "vxlan"},
                       {"flannel.alpha.coreos.com/kube-subnet-manager", "true"},
                       {"flannel.alpha.coreos.com/backend-v6-data", R"({"VNI":1,"VtepMAC":"0e:8f:12:34:56:79"})"},
                       {"flannel.alpha.coreos.com/public-ipv6", "2001:db8::7"}};
  CHECK(patch == want);
  Annotations a;
  for (const auto& [k, v] : patch) a[k] = *v;
  auto seen = flannel_view(a, {"fd00:10:244:7::/64"}, f);
  CHECK(seen.at("flannel.alpha.coreos.com/subnet-v6") == "fd00:10:244:7::/64");
  CHECK_FALSE(seen.count("flannel.alpha.coreos.com/subnet"));
  auto p = parse_peer("flannel-node", seen, f, v6only_rules());
  REQUIRE(p);
  CHECK(p->subnet_v6 == v6only_lease().subnet_v6);
  CHECK(p->public_ip_v6 == v6only_lease().public_ip_v6);
  // Without a v6 podCIDR the node has no subnet to route.
  auto none = parse_peer("flannel-node", flannel_view(a, {}, f), f, v6only_rules());
  REQUIRE_FALSE(none);
  CHECK_THAT(none.error(), Catch::Contains("no flannel.alpha.coreos.com/subnet-v6"));
  auto v4 = parse_peer("flannel-node", flannel_view(a, {"10.244.7.0/24"}, f), f, v6only_rules());
  REQUIRE_FALSE(v4);
  CHECK_THAT(v4.error(), Catch::Contains("an IPv4 subnet only"));
}
