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
