#include <catch2/catch.hpp>

#include "overlay/external_iface.hpp"

using weft::HostInterfaces;
using weft::IfaceChoice;
using weft::InterfaceAddr;
using weft::Ipv4Addr;

namespace {

InterfaceAddr iface(const char* name, int index, const char* ip, bool loopback = false) {
  InterfaceAddr a;
  a.name = name;
  a.index = index;
  a.addr = Ipv4Addr::parse(ip).value();
  a.up = true;
  a.loopback = loopback;
  a.mtu = loopback ? 65536 : 1500;
  return a;
}

// A VirtualBox VM: NAT interface with the default route, and the private network on eth1.
HostInterfaces vagrant_vm() {
  HostInterfaces h;
  h.addrs = {iface("lo", 1, "127.0.0.1", true), iface("eth0", 2, "10.0.2.15"), iface("eth1", 3, "192.168.56.10")};
  h.default_route_iface = "eth0";
  return h;
}

}  // namespace

TEST_CASE("the default is the default route's interface, with a warning for VirtualBox NAT", "[iface]") {
  auto ext = weft::choose_interface(vagrant_vm(), IfaceChoice{});
  REQUIRE(ext);
  CHECK(ext->name == "eth0");
  REQUIRE(ext->warnings.size() == 1);
  CHECK_THAT(ext->warnings[0], Catch::Contains("VirtualBox NAT") && Catch::Contains("--iface=eth1") &&
                                   Catch::Contains("eth1 (192.168.56.10)"));
}

TEST_CASE("iface by name or address, first match wins", "[iface]") {
  IfaceChoice by_name;
  by_name.iface = {"eth9", "eth1"};
  auto a = weft::choose_interface(vagrant_vm(), by_name);
  REQUIRE(a);
  CHECK(a->name == "eth1");
  CHECK(a->public_ip.str() == "192.168.56.10");
  CHECK(a->index == 3);
  CHECK(a->warnings.empty());

  IfaceChoice by_ip;
  by_ip.iface = {"192.168.56.10"};
  CHECK(weft::choose_interface(vagrant_vm(), by_ip)->name == "eth1");

  IfaceChoice none;
  none.iface = {"eth7"};
  auto err = weft::choose_interface(vagrant_vm(), none);
  REQUIRE_FALSE(err);
  CHECK_THAT(err.error(), Catch::Contains("eth7") && Catch::Contains("eth1 (192.168.56.10)"));
}

TEST_CASE("iface-regex matches addresses before names", "[iface]") {
  IfaceChoice c;
  c.iface_regex = {"^192\\.168\\."};
  CHECK(weft::choose_interface(vagrant_vm(), c)->name == "eth1");
  c.iface_regex = {"^eth1$"};
  CHECK(weft::choose_interface(vagrant_vm(), c)->name == "eth1");
  c.iface_regex = {"(["};
  CHECK_THAT(weft::choose_interface(vagrant_vm(), c).error(), Catch::Contains("not a valid regular expression"));
  c.iface_regex = {"^wlan"};
  CHECK_FALSE(weft::choose_interface(vagrant_vm(), c));
}

TEST_CASE("iface-can-reach uses the route source address, public-ip overrides", "[iface]") {
  auto host = vagrant_vm();
  host.can_reach_source = Ipv4Addr::parse("192.168.56.10").value();
  IfaceChoice c;
  c.can_reach = "192.168.56.11";
  c.public_ip = "203.0.113.7";
  auto ext = weft::choose_interface(host, c);
  REQUIRE(ext);
  CHECK(ext->name == "eth1");
  CHECK(ext->iface_addr.str() == "192.168.56.10");
  CHECK(ext->public_ip.str() == "203.0.113.7");
  c.public_ip = "not-an-ip";
  CHECK_THAT(weft::choose_interface(host, c).error(), Catch::Contains("--public-ip"));
}

TEST_CASE("no default route is a clear error", "[iface]") {
  auto host = vagrant_vm();
  host.default_route_iface.reset();
  CHECK_THAT(weft::choose_interface(host, IfaceChoice{}).error(), Catch::Contains("set --iface"));
}

TEST_CASE("the host's own interfaces can be read", "[iface]") {
  IfaceChoice c;
  c.iface = {"lo"};
  auto ext = weft::find_external_interface(c);
  REQUIRE(ext);
  CHECK(ext->iface_addr.str() == "127.0.0.1");
  CHECK(ext->index > 0);
  CHECK(ext->mtu > 0);
}

TEST_CASE("a public IP the host holds is the VTEP's source, a foreign one is not", "[iface]") {
  auto host = vagrant_vm();
  host.addrs.push_back(iface("eth1", 3, "192.168.56.99"));  // a second address on eth1
  IfaceChoice c;
  c.iface = {"eth1"};
  c.public_ip = "192.168.56.99";
  auto local = weft::choose_interface(host, c);
  REQUIRE(local);
  CHECK(local->iface_addr.str() == "192.168.56.10");
  CHECK(local->public_ip.str() == "192.168.56.99");
  CHECK(local->vtep_local.str() == "192.168.56.99");  // peers allow VXLAN from the published IP

  c.public_ip = "203.0.113.7";  // a NAT's address: packets leave from the interface's own
  CHECK(weft::choose_interface(host, c)->vtep_local.str() == "192.168.56.10");
  c.public_ip.clear();
  CHECK(weft::choose_interface(host, c)->vtep_local.str() == "192.168.56.10");
}

TEST_CASE("the IPv6 underlay: the interface's global address, --public-ipv6, or none", "[iface][ipv6]") {
  auto a6 = [](int index, const char* ip) { return weft::InterfaceAddr6{index, *weft::Ipv6Addr::parse(ip)}; };
  const std::vector<weft::InterfaceAddr6> host{a6(1, "::1"), a6(2, "2001:db8::2"), a6(3, "2001:db8:3::3")};

  auto found = weft::choose_ipv6_underlay(host, 2, "");
  REQUIRE(found);
  REQUIRE(found->has_value());
  CHECK((*found)->public_ip.str() == "2001:db8::2");
  CHECK((*found)->local.str() == "2001:db8::2");

  auto none = weft::choose_ipv6_underlay(host, 4, "");  // no IPv6 there: IPv6 pods ride IPv4
  REQUIRE(none);
  CHECK_FALSE(none->has_value());
  auto loopback_only = weft::choose_ipv6_underlay(host, 1, "");
  REQUIRE(loopback_only);
  CHECK_FALSE(loopback_only->has_value());

  auto nat = weft::choose_ipv6_underlay(host, 2, "2001:db8:ff::9");  // a NAT66's: sent from the interface's
  REQUIRE(nat);
  CHECK((*nat)->public_ip.str() == "2001:db8:ff::9");
  CHECK((*nat)->local.str() == "2001:db8::2");
  auto held = weft::choose_ipv6_underlay(host, 2, "2001:db8:3::3");  // held on another interface: sent from it
  REQUIRE(held);
  CHECK((*held)->local.str() == "2001:db8:3::3");

  auto refused = [&](const char* flag, const char* why) {
    auto r = weft::choose_ipv6_underlay(host, 2, flag);
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error(), Catch::Contains("--public-ipv6") && Catch::Contains(why));
  };
  refused("fe80::1", "link-local");
  refused("ff02::1", "multicast");
  refused("::ffff:192.0.2.1", "IPv4-mapped");
  refused("::1", "loopback");
  refused("192.0.2.1", "--public-ipv6");
  auto unsendable = weft::choose_ipv6_underlay(host, 4, "2001:db8:ff::9");
  REQUIRE_FALSE(unsendable);
  CHECK_THAT(unsendable.error(), Catch::Contains("no global IPv6 address to send"));
}

TEST_CASE("an IPv6 iface-can-reach picks the interface its route leaves by", "[iface][ipv6]") {
  auto host = vagrant_vm();
  IfaceChoice c;
  c.can_reach = "2001:db8:56::11";
  CHECK_THAT(weft::choose_interface(host, c).error(), Catch::Contains("no route to --iface-can-reach 2001:db8:56::11"));
  host.can_reach_index = 3;
  auto ext = weft::choose_interface(host, c);
  REQUIRE(ext);
  CHECK(ext->name == "eth1");
  CHECK(ext->iface_addr.str() == "192.168.56.10");  // the IPv4 underlay of that interface
  host.can_reach_index = 9;                         // an interface with IPv6 only
  CHECK_THAT(weft::choose_interface(host, c).error(),
             Catch::Contains("index 9") && Catch::Contains("no IPv4 address") && Catch::Contains("IPv6-only"));
}

TEST_CASE("an IPv6 iface-can-reach is looked up in the kernel's routes", "[iface][ipv6]") {
  IfaceChoice c;
  c.can_reach = "::1";  // local ::1 dev lo, in every network namespace with IPv6
  auto ext = weft::find_external_interface(c);
  REQUIRE(ext);
  CHECK(ext->name == "lo");
  CHECK(ext->iface_addr.str() == "127.0.0.1");
  c.can_reach = "2001:db8::zz";
  CHECK_THAT(weft::find_external_interface(c).error(), Catch::Contains("--iface-can-reach"));
}
