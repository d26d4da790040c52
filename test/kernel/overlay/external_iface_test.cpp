// Runs inside its own network namespace (see in_netns.sh): makes a veth pair there and reads it
// back through find_external_interface (libnl), as weftd does at start.
#include <array>
#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "overlay/external_iface.hpp"

using weft::IfaceChoice;

namespace {

void sh(const std::string& cmd) { REQUIRE(std::system(cmd.c_str()) == 0); }

// Two veth ends in this namespace: up0 (192.0.2.10/24, MTU 1400, default route) and up1
// (198.51.100.10/24, down).
struct Underlay {
  Underlay() {
    sh("ip link add up0 mtu 1400 type veth peer name up0p && ip link set up0 up && ip link set up0p up");
    sh("ip addr add 192.0.2.10/24 dev up0 && ip route add default via 192.0.2.1 dev up0");
    sh("ip link add up1 type veth peer name up1p && ip addr add 198.51.100.10/24 dev up1");
  }
  ~Underlay() { (void)std::system("ip link del up0 2>/dev/null; ip link del up1 2>/dev/null"); }
};

}  // namespace

TEST_CASE("the default route's interface is found with its index, MTU and state", "[iface]") {
  Underlay u;
  auto ext = weft::find_external_interface(IfaceChoice{});
  REQUIRE(ext);
  CHECK(ext->name == "up0");
  CHECK(ext->iface_addr.str() == "192.0.2.10");
  CHECK(ext->public_ip.str() == "192.0.2.10");
  CHECK(ext->mtu == 1400);
  CHECK(ext->index > 1);  // lo is 1
  CHECK(ext->warnings.empty());
}

TEST_CASE("a lower-metric default route wins", "[iface]") {
  Underlay u;
  sh("ip link set up1 up && ip route del default && ip route add default via 192.0.2.1 dev up0 metric 10 && "
     "ip route add default via 198.51.100.1 dev up1 metric 5");
  CHECK(weft::find_external_interface(IfaceChoice{})->name == "up1");
}

TEST_CASE("iface by name reports a down interface, can-reach follows the route's source", "[iface]") {
  Underlay u;
  IfaceChoice by_name;
  by_name.iface = {"up1"};
  auto down = weft::find_external_interface(by_name);
  REQUIRE(down);
  CHECK(down->iface_addr.str() == "198.51.100.10");
  REQUIRE(down->warnings.size() == 1);
  CHECK_THAT(down->warnings[0], Catch::Contains("is down"));

  IfaceChoice reach;
  reach.can_reach = "203.0.113.9";  // via the default route, from up0's address
  CHECK(weft::find_external_interface(reach)->name == "up0");
  sh("ip link set up1 up");
  reach.can_reach = "198.51.100.77";  // on up1's subnet
  CHECK(weft::find_external_interface(reach)->name == "up1");
}

TEST_CASE("no default route is an error that names the interfaces", "[iface]") {
  Underlay u;
  sh("ip route del default");
  auto err = weft::find_external_interface(IfaceChoice{});
  REQUIRE_FALSE(err);
  CHECK_THAT(err.error(), Catch::Contains("up0 (192.0.2.10)") && Catch::Contains("set --iface"));
}

TEST_CASE("--public-ip on a second local address becomes the VXLAN source", "[iface]") {
  Underlay u;
  sh("ip addr add 192.0.2.77/24 dev up0");
  IfaceChoice c;
  c.iface = {"up0"};
  c.public_ip = "192.0.2.77";
  auto ext = weft::find_external_interface(c);
  REQUIRE(ext);
  CHECK(ext->iface_addr.str() == "192.0.2.10");
  CHECK(ext->vtep_local.str() == "192.0.2.77");
}

TEST_CASE("a re-created interface is followed by name", "[iface]") {
  Underlay u;
  IfaceChoice c;
  c.iface = {"up0"};
  auto was = weft::find_external_interface(c);
  REQUIRE(was);
  auto same = weft::follow_interface(*was, "");
  REQUIRE(same);
  CHECK(same->index == was->index);

  sh("ip link del up0");
  auto gone = weft::follow_interface(*was, "");
  REQUIRE_FALSE(gone);
  CHECK_THAT(gone.error(), Catch::Contains("up0") && Catch::Contains("gone"));

  sh("ip link add up0 mtu 1450 type veth peer name up0p && ip link set up0 up");
  auto bare = weft::follow_interface(*was, "");  // back, but without its address yet
  REQUIRE_FALSE(bare);
  CHECK_THAT(bare.error(), Catch::Contains("without an IPv4 address"));

  sh("ip addr add 192.0.2.10/24 dev up0");
  auto back = weft::follow_interface(*was, "");
  REQUIRE(back);
  CHECK(back->name == "up0");
  CHECK(back->index != was->index);
  CHECK(back->mtu == 1450);
  CHECK(back->iface_addr.str() == "192.0.2.10");
  CHECK(back->vtep_local.str() == "192.0.2.10");
}

namespace {

// An IPv6-only underlay in this namespace, no IPv4 address anywhere but lo's: v6up0
// (2001:db8:1::10/64, MTU 1400, the IPv6 default route), v6up1 (fd0a::10/64), v6up2 (up,
// link-local only). Addresses without DAD, so they are usable (not tentative) at once.
struct Underlay6 {
  Underlay6() {
    for (const char* l : {"v6up0", "v6up1", "v6up2"})
      sh(std::string("ip link add ") + l + " type veth peer name " + l + "p && ip link set " + l + "p up");
    sh("ip link set v6up0 mtu 1400 && ip link set v6up0 up && ip link set v6up1 up && ip link set v6up2 up");
    sh("ip -6 addr add 2001:db8:1::10/64 dev v6up0 nodad && ip -6 addr add fd0a::10/64 dev v6up1 nodad");
    sh("ip -6 route add default via 2001:db8:1::1 dev v6up0");
  }
  ~Underlay6() {
    (void)std::system(
        "ip link del v6up0 2>/dev/null; ip link del v6up1 2>/dev/null; "
        "ip link del v6up2 2>/dev/null");
  }
};

// The fe80:: address the kernel gave dev ("" when none yet).
std::string link_local_of(const std::string& dev) {
  const std::string cmd = "ip -6 addr show dev " + dev + " scope link | awk '/inet6/ {print $2}' | cut -d/ -f1";
  std::unique_ptr<FILE, decltype(&::pclose)> p(::popen(cmd.c_str(), "r"), &::pclose);
  REQUIRE(p);
  std::array<char, 256> buf{};
  std::string out;
  while (std::fgets(buf.data(), buf.size(), p.get())) out += buf.data();
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

}  // namespace

TEST_CASE("IPv6-only: the IPv6 default route's interface is found with its global address, no IPv4 needed",
          "[iface][v6only]") {
  Underlay6 u;
  REQUIRE(std::system("ip -4 addr show dev v6up0 | grep -q inet") != 0);  // really no IPv4 there
  auto c = weft::find_external_interface_v6(IfaceChoice{}, "");
  if (!c) FAIL(c.error());
  CHECK(c->ext.name == "v6up0");
  CHECK(c->ext.mtu == 1400);
  CHECK(c->ext.index > 1);
  CHECK(c->ext.warnings.empty());
  CHECK(c->underlay.public_ip.str() == "2001:db8:1::10");
  CHECK(c->underlay.local.str() == "2001:db8:1::10");
  CHECK(c->ext.iface_addr.is_unspecified());

  // The IPv4 lookup has nothing to offer on this host: the IPv6-only path is the one that works.
  IfaceChoice v4;
  v4.iface = {"v6up0"};
  CHECK_FALSE(weft::find_external_interface(v4));
}

TEST_CASE("IPv6-only: --iface, --iface-can-reach and --public-ipv6 pick their interface from the kernel",
          "[iface][v6only]") {
  Underlay6 u;
  IfaceChoice by_name;
  by_name.iface = {"v6up1"};
  auto named = weft::find_external_interface_v6(by_name, "");
  REQUIRE(named);
  CHECK(named->ext.name == "v6up1");
  CHECK(named->underlay.local.str() == "fd0a::10");

  IfaceChoice by_ip;
  by_ip.iface = {"fd0a::10"};
  CHECK(weft::find_external_interface_v6(by_ip, "")->ext.name == "v6up1");

  IfaceChoice reach;
  reach.can_reach = "fd0a::77";  // on v6up1's prefix
  CHECK(weft::find_external_interface_v6(reach, "")->ext.name == "v6up1");
  reach.can_reach = "2001:db8:99::1";  // by the default route
  CHECK(weft::find_external_interface_v6(reach, "")->ext.name == "v6up0");
  reach.can_reach = "192.0.2.1";
  CHECK_THAT(weft::find_external_interface_v6(reach, "").error(), Catch::Contains("IPv6-only"));

  auto held = weft::find_external_interface_v6(IfaceChoice{}, "fd0a::10");  // the interface holding it
  REQUIRE(held);
  CHECK(held->ext.name == "v6up1");
  CHECK(held->underlay.public_ip.str() == "fd0a::10");
}

TEST_CASE("IPv6-only: an interface with only a link-local address, or no IPv6 default route, is a clear error",
          "[iface][v6only]") {
  Underlay6 u;
  IfaceChoice bare;
  bare.iface = {"v6up2"};
  auto err = weft::find_external_interface_v6(bare, "");
  REQUIRE_FALSE(err);
  CHECK_THAT(err.error(), Catch::Contains("v6up2 has no global IPv6 address") && Catch::Contains("--iface"));

  IfaceChoice by_link_local;  // its fe80:: address is never the underlay
  by_link_local.iface = {link_local_of("v6up2")};
  REQUIRE(by_link_local.iface[0].rfind("fe80:", 0) == 0);
  CHECK_FALSE(weft::find_external_interface_v6(by_link_local, ""));

  sh("ip -6 route del default");
  auto no_route = weft::find_external_interface_v6(IfaceChoice{}, "");
  REQUIRE_FALSE(no_route);
  CHECK_THAT(no_route.error(), Catch::Contains("no IPv6 default route") && Catch::Contains("v6up0 (2001:db8:1::10)"));
}
