// weftctl's reading of weftd's /status (daemon_status, status) and what peers/status print,
// for a v4-only weftd, a dual-stack one and an IPv6-only one.
#include <catch2/catch.hpp>

#include "cmd/weftctl/output.hpp"
#include "cmd/weftctl/status.hpp"
#include "test/unit/cmd/weftctl/status_fixture.hpp"

namespace weft::ctl::test {
namespace {

Ipv6Prefix v6net(const char* s) { return *Ipv6Prefix::parse(s); }
Ipv6Addr v6(const char* s) { return *Ipv6Addr::parse(s); }
Mac mac(const char* s) { return *Mac::parse(s); }

}  // namespace

TEST_CASE("a v4-only weftd's /status parses as before, with no IPv6 half anywhere", "[weftctl]") {
  DaemonStatus d = parsed(status_v4());
  CHECK_FALSE(d.dual_stack());
  CHECK_FALSE(d.network_v6);
  CHECK(d.vtep->name == "weft.1");
  CHECK(d.vtep->local_ip == IpAddr(*Ipv4Addr::parse("192.0.2.9")));
  REQUIRE(d.lease);
  CHECK(d.lease->subnet->str() == "10.244.9.0/24");
  CHECK_FALSE(d.lease->subnet_v6);
  CHECK_FALSE(d.lease->vtep_mac_v6);
  CHECK_FALSE(d.underlay.address_v6);
  REQUIRE(d.peers.size() == 2);
  for (const Peer& p : d.peers) {
    CHECK_FALSE(p.subnet_v6);
    CHECK_FALSE(p.vtep_mac_v6);
    CHECK_FALSE(p.public_ip_v6);
  }
}

TEST_CASE("a dual-stack /status gives the IPv6 lease, network, VTEP, underlay and peers' halves", "[weftctl]") {
  DaemonStatus d = parsed(status_dual(true));
  REQUIRE(d.dual_stack());
  CHECK(d.network_v6 == v6net("fd00:10:244::/48"));
  CHECK(d.vtep6->name == "weft-v6.1");
  CHECK(d.vtep6->local_ip == IpAddr(v6("2001:db8::9")));
  CHECK(d.vtep6->mtu_wanted == 1430);
  CHECK(d.lease->subnet_v6 == v6net("fd00:10:244:9::/64"));
  CHECK(d.lease->vtep_mac_v6 == mac("0e:00:00:00:06:09"));
  CHECK(d.lease->public_ip_v6 == v6("2001:db8::9"));
  CHECK(d.underlay.address_v6 == v6("2001:db8::9"));
  CHECK(d.underlay.public_ip_v6 == v6("2001:db8::9"));
  REQUIRE(d.peers.size() == 2);
  CHECK(d.peers[0].subnet_v6 == v6net("fd00:10:244:2::/64"));
  CHECK(d.peers[0].vtep_mac_v6 == mac("0e:00:00:00:06:02"));
  CHECK(d.peers[0].public_ip_v6 == v6("2001:db8::2"));
  CHECK_FALSE(d.peers[1].subnet_v6);  // its IPv6 half was refused: IPv4 only
  CHECK(d.skipped.at(0).reason.rfind("IPv6 half refused, IPv4 routed: ", 0) == 0);
}

TEST_CASE("IPv6 VXLAN over the IPv4 underlay: an IPv4 local address, no public IPv6 addresses", "[weftctl]") {
  DaemonStatus d = parsed(status_dual(false));
  REQUIRE(d.dual_stack());
  CHECK(d.vtep6->local_ip == IpAddr(*Ipv4Addr::parse("192.0.2.9")));
  CHECK_FALSE(d.lease->public_ip_v6);
  CHECK_FALSE(d.underlay.address_v6);
  CHECK(d.peers[0].subnet_v6);
  CHECK_FALSE(d.peers[0].public_ip_v6);
}

TEST_CASE("a malformed IPv6 field is an error that names it", "[weftctl]") {
  json j = status_dual(true);
  SECTION("a peer's subnet_v6") {
    j["peers"][0]["subnet_v6"] = "fd00:10:244:2::1/64";
    auto d = parse_datapath_status(j.dump());
    REQUIRE_FALSE(d);
    CHECK_THAT(d.error(), Catch::Contains("peer node2.subnet_v6"));
  }
  SECTION("a peer's IPv6 half without its VTEP MAC") {
    j["peers"][0].erase("vtep_mac_v6");
    auto d = parse_datapath_status(j.dump());
    REQUIRE_FALSE(d);
    CHECK_THAT(d.error(), Catch::Contains("needs both subnet_v6 and vtep_mac_v6"));
  }
  SECTION("the IPv6 network") {
    j.erase("network_v6");
    auto d = parse_datapath_status(j.dump());
    REQUIRE_FALSE(d);
    CHECK_THAT(d.error(), Catch::Contains("network_v6"));
  }
}

TEST_CASE("weftctl status shows the IPv6 lease and VTEP only when dual stack", "[weftctl]") {
  NodeStatus s;
  s.readyz = HttpAnswer{200, "ok\n"};
  auto v4 = parse_daemon_status(status_v4().dump());
  REQUIRE(v4);
  s.daemon = *v4;
  const std::string v4_text = render(s);
  CHECK_THAT(v4_text, Catch::StartsWith("subnet      10.244.9.0/24 (network 10.244.0.0/16, MTU 1450, masquerade on)\n"
                                        "lease       public IP 192.0.2.9, VTEP MAC 0e:00:00:00:00:09\n"
                                        "subnet file /run/weft/subnet.env\n"
                                        "ready       yes\n"));
  CHECK(v4_text.find("v6") == std::string::npos);
  CHECK(status_json(s).find("v6") == std::string::npos);

  auto dual = parse_daemon_status(status_dual(true).dump());
  REQUIRE(dual);
  s.daemon = *dual;
  const std::string text = render(s);
  CHECK_THAT(text, Catch::Contains("subnet v6   fd00:10:244:9::/64 (network fd00:10:244::/48)\n"));
  CHECK_THAT(text, Catch::Contains("lease v6    public IP 2001:db8::9, VTEP MAC 0e:00:00:00:06:09\n"));
  CHECK_THAT(text, Catch::Contains("vtep6       weft-v6.1 (VNI 1, local 2001:db8::9, MTU 1430)\n"));
  auto j = json::parse(status_json(s));
  CHECK(j["lease"]["subnet_v6"] == "fd00:10:244:9::/64");
  CHECK(j["vtep6"]["name"] == "weft-v6.1");

  s.daemon = *parse_daemon_status(status_dual(false).dump());
  CHECK_THAT(render(s), Catch::Contains("lease v6    public IP none (VXLAN over the IPv4 underlay)"));
}

TEST_CASE("weftctl peers: the v4-only table is unchanged, dual stack adds the IPv6 columns", "[weftctl]") {
  DaemonStatus d = parsed(status_v4());
  KernelView k;
  for (const Peer& p : d.peers) k.peers.push_back({p, false, {}, {}, {}});  // all missing
  CHECK(peers_text(d, k) ==
        "NODE   SUBNET         PUBLIC-IP  VTEP-MAC           ROUTE    NEIGH    FDB\n"
        "node2  10.244.2.0/24  192.0.2.2  0e:00:00:00:00:02  missing  missing  missing\n"
        "node3  10.244.3.0/24  192.0.2.3  0e:00:00:00:00:03  missing  missing  missing\n"
        "no device weft.1: nothing can be in the kernel\n");
  CHECK_FALSE(json::parse(peers_json(d, k)).contains("vtep6"));

  d = parsed(status_dual(true));
  k.v6.emplace();
  k.v6->peers.push_back({d.peers[0], false, {EntryState::Kind::ok, ""}, {}, {EntryState::Kind::wrong, "fdb x"}});
  const std::string text = peers_text(d, k);
  CHECK_THAT(text, Catch::Contains("SUBNET-V6           PUBLIC-IP-V6  VTEP-MAC-V6        ROUTE6  NEIGH6   FDB6\n"));
  CHECK_THAT(text, Catch::Contains("fd00:10:244:2::/64  2001:db8::2   0e:00:00:00:06:02  ok      missing  wrong\n"));
  CHECK_THAT(text, Catch::Contains("  -                   -             -                  -       -        -\n"));
  CHECK_THAT(text, Catch::Contains("node2: IPv6 FDB is wrong, the kernel has fdb x\n"));
  CHECK_THAT(text, Catch::Contains("no device weft-v6.1: no IPv6 entry can be in the kernel\n"));
  auto j = json::parse(peers_json(d, k));
  CHECK(j["vtep6"] == "weft-v6.1");
  CHECK(j["vtep6_present"] == false);
  CHECK(j["peers"][0]["v6"]["route"]["state"] == "ok");
  CHECK(j["peers"][0]["v6"]["public_ip"] == "2001:db8::2");
  CHECK(j["peers"][0]["ok"] == false);
  CHECK_FALSE(j["peers"][1].contains("v6"));
}

}  // namespace weft::ctl::test

// ---- IPv6-only (issue #19): weftd omits every IPv4 key.
namespace weft::ctl::test {

TEST_CASE("an IPv6-only /status parses with no IPv4 half", "[weftctl]") {
  DaemonStatus d = parsed(status_v6_only());
  CHECK(d.ipv6_only());
  CHECK_FALSE(d.has_ipv4());
  CHECK_FALSE(d.dual_stack());
  CHECK_FALSE(d.vtep);
  CHECK_FALSE(d.network);
  CHECK(d.network_v6 == v6net("fd00:10:244::/48"));
  CHECK(d.vtep6->name == "weft-v6.1");
  REQUIRE(d.lease);
  CHECK(d.lease->subnet_v6 == v6net("fd00:10:244:9::/64"));
  CHECK(d.lease->vtep_mac_v6 == mac("0e:00:00:00:06:09"));
  CHECK_FALSE(d.underlay.address);
  CHECK_FALSE(d.underlay.public_ip);
  CHECK(d.underlay.public_ip_v6 == v6("2001:db8::9"));
  REQUIRE(d.peers.size() == 2);
  CHECK(d.peers[1].subnet_v6 == v6net("fd00:10:244:3::/64"));
  CHECK(d.peers[1].public_ip_v6 == v6("2001:db8::3"));
}

TEST_CASE("IPv6-only: a missing IPv6 key is an error that names it", "[weftctl]") {
  json j = status_v6_only();
  auto error = [&j] {
    auto d = parse_datapath_status(j.dump());
    REQUIRE_FALSE(d);
    return d.error();
  };
  SECTION("a peer without its IPv6 half") {
    j["peers"][1].erase("subnet_v6");
    CHECK_THAT(error(), Catch::Contains("peer node3") && Catch::Contains("IPv6-only"));
  }
  SECTION("the lease's subnet_v6") {
    j["lease"].erase("subnet_v6");
    CHECK_THAT(error(), Catch::Contains("lease") && Catch::Contains("subnet_v6"));
  }
  SECTION("the IPv6 network") {
    j.erase("network_v6");
    CHECK_THAT(error(), Catch::Contains("network_v6"));
  }
  SECTION("both VTEPs") {
    j.erase("vtep6");
    CHECK_THAT(error(), Catch::Contains("neither \"vtep\" nor \"vtep6\""));
  }
  SECTION("a VTEP that is not an object") {
    j["vtep6"] = "weft-v6.1";
    CHECK_THAT(error(), Catch::Contains("\"vtep6\" is not an object"));
  }
  SECTION("peers that are not a list") {
    j["peers"] = json::object();
    CHECK_THAT(error(), Catch::Contains("\"peers\" is not a list"));
  }
}

// Every key removed, and every value replaced by each JSON type: an error or a status that
// weftctl's outputs and checks handle, never an exception or a crash.
TEST_CASE("no damage to /status makes weftctl throw", "[weftctl]") {
  const json bad_values[] = {nullptr, 7, "x", json::array(), json::object(), true};
  std::vector<json> mutants;
  for (const json& base : {status_v6_only(), status_dual(true), status_v4()}) {
    const json flat = base.flatten();
    for (const auto& ptr : flat.items()) {
      json::json_pointer p(ptr.key());
      for (json::json_pointer at = p; !at.empty(); at = at.parent_pointer()) {
        json erased = base;
        json& parent = erased.at(at.parent_pointer());
        if (parent.is_object()) {
          parent.erase(at.back());
        } else {
          parent.erase(std::stoul(at.back()));
        }
        mutants.push_back(std::move(erased));
        for (const json& v : bad_values) {
          json m = base;
          m[at] = v;
          mutants.push_back(std::move(m));
        }
      }
    }
  }
  for (const json& m : mutants) {
    INFO(m.dump());
    CHECK_NOTHROW([&] {
      auto d = parse_datapath_status(m.dump());
      (void)parse_daemon_status(m.dump());
      if (!d) return;
      KernelView k;
      if (d->vtep6) k.v6.emplace();
      (void)peers_text(*d, k);
      (void)peers_json(*d, k);
    }());
  }
}

TEST_CASE("weftctl status says a weftd is IPv6-only and shows no IPv4 line", "[weftctl]") {
  NodeStatus s;
  s.readyz = HttpAnswer{200, "ok\n"};
  auto d = parse_daemon_status(status_v6_only().dump());
  REQUIRE(d);
  CHECK(d->ipv6_only);
  s.daemon = *d;
  CHECK_THAT(render(s),
             Catch::StartsWith("family      IPv6 only: weftd has no IPv4 half\n"
                               "subnet v6   fd00:10:244:9::/64 (network fd00:10:244::/48, MTU 1430, masquerade on)\n"
                               "lease v6    public IP 2001:db8::9, VTEP MAC 0e:00:00:00:06:09\n"
                               "vtep6       weft-v6.1 (VNI 1, local 2001:db8::9, MTU 1430)\n"
                               "subnet file /run/weft/subnet.env\n"
                               "ready       yes\n"));
  auto j = json::parse(status_json(s));
  CHECK(j["families"] == json::array({"ipv6"}));
  CHECK_FALSE(j["lease"].contains("subnet"));
  CHECK_FALSE(j["lease"].contains("public_ip"));
  CHECK(j["lease"]["subnet_v6"] == "fd00:10:244:9::/64");

  SECTION("from an IPv6-only subnet.env when weftd does not answer /status") {
    s.daemon.reset();
    s.env = SubnetEnv::parse(
        "WEFT_IPV6_NETWORK=fd00:10:244::/48\nWEFT_IPV6_SUBNET=fd00:10:244:9::1/64\nWEFT_MTU=1430\nWEFT_IPMASQ=true\n");
    REQUIRE(s.env);
    CHECK_THAT(render(s), Catch::StartsWith("family      IPv6 only: subnet.env has no IPv4 half\n"
                                            "subnet v6   fd00:10:244:9::/64 (network fd00:10:244::/48, MTU 1430, "
                                            "masquerade on)\n"));
    auto e = json::parse(status_json(s));
    CHECK_FALSE(e["lease"].contains("subnet"));
    CHECK(e["lease"]["subnet_v6"] == "fd00:10:244:9::/64");
  }
}

TEST_CASE("weftctl peers for an IPv6-only weftd: the IPv6 columns alone", "[weftctl]") {
  DaemonStatus d = parsed(status_v6_only());
  KernelView k;
  k.ipv4 = false;
  k.v6.emplace();
  k.v6->peers.push_back({d.peers[0], false, {EntryState::Kind::ok, ""}, {EntryState::Kind::ok, ""}, {}});
  CHECK(peers_text(d, k) ==
        "IPv6-only cluster: weftd has no IPv4 half\n"
        "NODE   SUBNET-V6           PUBLIC-IP-V6  VTEP-MAC-V6        ROUTE6  NEIGH6  FDB6\n"
        "node2  fd00:10:244:2::/64  2001:db8::2   0e:00:00:00:06:02  ok      ok      missing\n"
        "no device weft-v6.1: no IPv6 entry can be in the kernel\n");
  auto j = json::parse(peers_json(d, k));
  CHECK(j["families"] == json::array({"ipv6"}));
  CHECK_FALSE(j.contains("vtep"));
  CHECK(j["vtep6"] == "weft-v6.1");
  CHECK(j["peers"][0]["node"] == "node2");
  CHECK_FALSE(j["peers"][0].contains("subnet"));
  CHECK(j["peers"][0]["v6"]["subnet"] == "fd00:10:244:2::/64");
  CHECK(j["peers"][0]["ok"] == false);
}

}  // namespace weft::ctl::test
