// weftctl doctor's kernel and sysctl checks for a dual-stack weftd (the IPv6 VTEP, the peers'
// IPv6 entries, foreign IPv6 routes, IPv6 forwarding), and that a v4-only weftd gets none.
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "cmd/weftctl/doctor.hpp"
#include "test/unit/cmd/weftctl/status_fixture.hpp"

namespace weft::ctl::test {
namespace {

namespace fs = std::filesystem;

Link vxlan_link(const VtepStatus& v, int ifindex, int mtu) {
  return {ifindex,
          v.name,
          "vxlan",
          *Mac::parse("0e:00:00:00:00:01"),
          mtu,
          true,
          VxlanAttrs{v.vni, v.port, v.local_ip, 2, false, false}};
}

// A healthy kernel for d: both VTEPs as weftd wants them over a 1500-byte eth0, no peers.
KernelView healthy(const DaemonStatus& d) {
  KernelView k;
  if (d.vtep) k.vtep = vxlan_link(*d.vtep, 5, 1450);
  k.underlay = Link{2, "eth0", "", *Mac::parse("0e:00:00:00:00:aa"), 1500, true, std::nullopt};
  if (d.vtep6) {
    k.v6.emplace();
    k.v6->vtep = vxlan_link(*d.vtep6, 6, d.vtep6->mtu_wanted);
  }
  return k;
}

const Check& named(const std::vector<Check>& checks, const std::string& name) {
  auto it = std::find_if(checks.begin(), checks.end(), [&](const Check& c) { return c.name == name; });
  INFO("no check named " << name);
  REQUIRE(it != checks.end());
  return *it;
}

std::vector<std::string> names(const std::vector<Check>& checks) {
  std::vector<std::string> out;
  for (const auto& c : checks) out.push_back(c.name);
  return out;
}

// A directory standing in for /proc/sys, removed at the end.
struct FakeProcSys {
  fs::path root;
  FakeProcSys() {
    std::string tmpl = (fs::temp_directory_path() / "weftctl-sys-XXXXXX").string();
    root = ::mkdtemp(tmpl.data());
    set("net.ipv4.ip_forward", "1");
    set("net.ipv4.conf.all.rp_filter", "0");
    set("net.ipv4.conf.eth0.rp_filter", "2");
  }
  ~FakeProcSys() { fs::remove_all(root); }
  void set(std::string key, const std::string& value) const {
    std::replace(key.begin(), key.end(), '.', '/');
    fs::create_directories((root / key).parent_path());
    std::ofstream(root / key) << value << "\n";
  }
};

}  // namespace

TEST_CASE("a v4-only weftd's kernel and sysctl checks are the IPv4 ones alone", "[weftctl]") {
  DaemonStatus d = parsed(status_v4());
  auto checks = kernel_checks(d, healthy(d));
  CHECK(names(checks) == std::vector<std::string>{"vtep exists", "vtep up", "vtep vxlan", "vtep learning", "vtep mtu",
                                                  "peer entries", "foreign routes"});
  CHECK(named(checks, "vtep mtu").detail == "1450 (eth0 MTU 1500 - 50)");
  FakeProcSys sys;  // no IPv6 sysctls at all: not read
  CHECK(names(sysctl_checks(d, sys.root)) == std::vector<std::string>{"ip_forward", "rp_filter"});
}

TEST_CASE("dual stack: the IPv6 VTEP gets the same checks, named vtep6", "[weftctl]") {
  for (bool v6_underlay : {true, false}) {
    DaemonStatus d = parsed(status_dual(v6_underlay));
    auto checks = kernel_checks(d, healthy(d));
    CHECK(names(checks) == std::vector<std::string>{"vtep exists", "vtep up", "vtep vxlan", "vtep learning", "vtep mtu",
                                                    "peer entries", "foreign routes", "vtep6 exists", "vtep6 up",
                                                    "vtep6 vxlan", "vtep6 learning", "vtep6 mtu", "peer entries v6",
                                                    "foreign routes v6"});
    for (const auto& c : checks) {
      INFO(c.name << ": " << c.detail);
      CHECK(c.pass);
    }
    CHECK(named(checks, "vtep6 mtu").detail ==
          (v6_underlay ? "1430 (eth0 MTU 1500 - 70)" : "1450 (eth0 MTU 1500 - 50)"));
  }
}

TEST_CASE("dual stack: a broken IPv6 VTEP fails its own checks, not the IPv4 ones", "[weftctl]") {
  DaemonStatus d = parsed(status_dual(true));
  KernelView k = healthy(d);
  SECTION("missing") {
    k.v6->vtep.reset();
    auto checks = kernel_checks(d, k);
    CHECK_FALSE(named(checks, "vtep6 exists").pass);
    CHECK_THAT(named(checks, "vtep6 exists").detail, Catch::Contains("no device weft-v6.1"));
    CHECK(named(checks, "vtep exists").pass);
  }
  SECTION("the MTU over an IPv4 underlay's") {
    k.v6->vtep->mtu = 1450;
    auto checks = kernel_checks(d, k);
    const Check& c = named(checks, "vtep6 mtu");
    CHECK_FALSE(c.pass);
    CHECK(c.fix == "ip link set weft-v6.1 mtu 1430 (weftd does it on repair)");
    CHECK(named(checks, "vtep mtu").pass);
  }
  SECTION("another local address, learning on") {
    k.v6->vtep->vxlan->local = *Ipv6Addr::parse("2001:db8::99");
    k.v6->vtep->vxlan->learning = true;
    auto checks = kernel_checks(d, k);
    CHECK_THAT(named(checks, "vtep6 vxlan").detail, Catch::Contains("local 2001:db8::99, want 2001:db8::9"));
    CHECK_FALSE(named(checks, "vtep6 learning").pass);
    CHECK(named(checks, "vtep vxlan").pass);
  }
  SECTION("Backend.MTU, the outer packets' MTU as in flannel, wins over the underlay") {
    d.vtep6->backend_mtu = 1400;
    k.v6->vtep->mtu = 1330;
    CHECK(named(kernel_checks(d, k), "vtep6 mtu").detail == "1330 (Backend.MTU 1400 - 70)");
    k.v6->vtep->mtu = 1400;
    CHECK_FALSE(named(kernel_checks(d, k), "vtep6 mtu").pass);
  }
}

TEST_CASE("dual stack: wrong IPv6 entries and foreign IPv6 routes fail their v6 checks", "[weftctl]") {
  DaemonStatus d = parsed(status_dual(true));
  KernelView k = healthy(d);
  k.v6->peers.push_back({d.peers[0], false, {}, {EntryState::Kind::ok, ""}, {EntryState::Kind::ok, ""}});
  k.v6->foreign_routes.push_back(
      Route6{*Ipv6Prefix::parse("fd00:10:244:5::/64"), *Ipv6Addr::parse("fd00:10:244:5::"), 6, true});
  auto checks = kernel_checks(d, k);
  CHECK(named(checks, "peer entries").pass);
  CHECK(named(checks, "foreign routes").pass);
  const Check& entries = named(checks, "peer entries v6");
  CHECK_FALSE(entries.pass);
  CHECK(entries.detail == "1 of 1 peer: node2: route missing");
  const Check& foreign = named(checks, "foreign routes v6");
  CHECK_FALSE(foreign.pass);
  CHECK_THAT(foreign.fix, Catch::StartsWith("ip -6 route del fd00:10:244:5::/64"));
}

TEST_CASE("dual stack: IPv6 forwarding must be on", "[weftctl]") {
  DaemonStatus d = parsed(status_dual(true));
  FakeProcSys sys;
  CHECK(names(sysctl_checks(d, sys.root)) == std::vector<std::string>{"ip_forward", "ipv6 forwarding", "rp_filter"});
  SECTION("on") {
    sys.set("net.ipv6.conf.all.forwarding", "1");
    const Check c = named(sysctl_checks(d, sys.root), "ipv6 forwarding");
    CHECK(c.pass);
    CHECK(c.detail == "net.ipv6.conf.all.forwarding = 1");
  }
  SECTION("off") {
    sys.set("net.ipv6.conf.all.forwarding", "0");
    const Check c = named(sysctl_checks(d, sys.root), "ipv6 forwarding");
    CHECK_FALSE(c.pass);
    CHECK_THAT(c.detail, Catch::Contains("net.ipv6.conf.all.forwarding = 0"));
    CHECK_THAT(c.fix, Catch::StartsWith("sysctl -w net.ipv6.conf.all.forwarding=1"));
    CHECK(named(sysctl_checks(d, sys.root), "ip_forward").pass);
  }
  SECTION("unreadable") {
    const Check c = named(sysctl_checks(d, sys.root), "ipv6 forwarding");
    CHECK_FALSE(c.pass);
    CHECK_THAT(c.detail, Catch::Contains("cannot read"));
  }
}

}  // namespace weft::ctl::test

// ---- IPv6-only (issue #19): the IPv6 checks as in dual stack, nothing IPv4 demanded.
namespace weft::ctl::test {

TEST_CASE("IPv6-only: a healthy node passes the IPv6 kernel checks and gets no IPv4 one", "[weftctl]") {
  DaemonStatus d = parsed(status_v6_only());
  auto checks = kernel_checks(d, healthy(d));
  CHECK(names(checks) == std::vector<std::string>{"vtep6 exists", "vtep6 up", "vtep6 vxlan", "vtep6 learning",
                                                  "vtep6 mtu", "peer entries v6", "foreign routes v6"});
  for (const auto& c : checks) {
    INFO(c.name << ": " << c.detail);
    CHECK(c.pass);
  }
  CHECK(named(checks, "vtep6 mtu").detail == "1430 (eth0 MTU 1500 - 70)");
}

TEST_CASE("IPv6-only: a missing IPv6 VTEP or entry is named", "[weftctl]") {
  DaemonStatus d = parsed(status_v6_only());
  KernelView k = healthy(d);
  SECTION("a peer's route") {
    k.v6->peers.push_back({d.peers[1], false, {}, {EntryState::Kind::ok, ""}, {EntryState::Kind::ok, ""}});
    const Check c = named(kernel_checks(d, k), "peer entries v6");
    CHECK_FALSE(c.pass);
    CHECK(c.detail == "1 of 1 peer: node3: route missing");
  }
  SECTION("the VTEP") {
    k.v6->vtep.reset();
    const Check c = named(kernel_checks(d, k), "vtep6 exists");
    CHECK_FALSE(c.pass);
    CHECK_THAT(c.detail, Catch::Contains("no device weft-v6.1"));
  }
  SECTION("a view without the IPv6 family fails, it does not skip the checks") {
    k.v6.reset();
    CHECK_FALSE(named(kernel_checks(d, k), "vtep6 exists").pass);
  }
}

TEST_CASE("IPv6-only: only IPv6 forwarding is checked, not ip_forward nor IPv4's rp_filter", "[weftctl]") {
  DaemonStatus d = parsed(status_v6_only());
  FakeProcSys sys;
  sys.set("net.ipv4.ip_forward", "0");          // would fail if it were checked
  sys.set("net.ipv4.conf.all.rp_filter", "1");  // likewise
  sys.set("net.ipv6.conf.all.forwarding", "1");
  auto checks = sysctl_checks(d, sys.root);
  CHECK(names(checks) == std::vector<std::string>{"ipv6 forwarding"});
  CHECK(checks.at(0).pass);
  sys.set("net.ipv6.conf.all.forwarding", "0");
  CHECK_FALSE(named(sysctl_checks(d, sys.root), "ipv6 forwarding").pass);

  SECTION("IPv6 VXLAN over an IPv4 underlay still needs IPv4's rp_filter loose") {
    d.vtep6->local_ip = *Ipv4Addr::parse("192.0.2.9");
    CHECK(names(sysctl_checks(d, sys.root)) == std::vector<std::string>{"ipv6 forwarding", "rp_filter"});
  }
}

}  // namespace weft::ctl::test
