// Runs inside its own network namespace (see in_netns.sh): makes a veth pair there and reads it
// back through find_external_interface (libnl), as weftd does at start.
#include <catch2/catch.hpp>
#include <cstdlib>
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
