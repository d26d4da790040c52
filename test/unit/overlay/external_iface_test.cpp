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

namespace {

weft::LinkInfo link6(const char* name, int index, bool up = true, bool loopback = false) {
  return weft::LinkInfo{name, index, loopback ? 65536 : 1500, up, loopback};
}
weft::InterfaceAddr6 addr6(int index, const char* ip) {
  return weft::InterfaceAddr6{index, *weft::Ipv6Addr::parse(ip)};
}

// An IPv6-only node: eth0 (2001:db8:1::10, the IPv6 default route), eth1 (fd0a::10 and
// fd0a::11, MTU 9000), eth2 (up, no global IPv6 address), eth3 (down, 2001:db8:3::10); no IPv4.
weft::HostInterfaces6 v6_only_host() {
  weft::HostInterfaces6 h;
  h.links = {link6("lo", 1, true, true), link6("eth0", 2), link6("eth1", 3), link6("eth2", 4), link6("eth3", 5, false)};
  h.links[2].mtu = 9000;
  h.addrs = {addr6(1, "::1"), addr6(2, "2001:db8:1::10"), addr6(3, "fd0a::10"), addr6(3, "fd0a::11"),
             addr6(5, "2001:db8:3::10")};
  h.default_route_index = 2;
  return h;
}

// The chosen interface's name and the underlay's public and local IPv6, for short checks.
std::string chose(const weft::Result<weft::Underlay6Choice>& c) {
  if (!c) return "error: " + c.error();
  return c->ext.name + " " + c->underlay.public_ip.str() + " " + c->underlay.local.str();
}

}  // namespace

TEST_CASE("IPv6-only: by default the IPv6 default route's interface and its global address", "[iface][v6only]") {
  auto c = weft::choose_interface_v6(v6_only_host(), IfaceChoice{}, "");
  REQUIRE(c);
  CHECK(chose(c) == "eth0 2001:db8:1::10 2001:db8:1::10");
  CHECK(c->ext.index == 2);
  CHECK(c->ext.mtu == 1500);
  CHECK(c->ext.warnings.empty());
  CHECK(c->ext.iface_addr.is_unspecified());  // no IPv4 anywhere
  CHECK(c->ext.public_ip.is_unspecified());
  CHECK(c->ext.vtep_local.is_unspecified());
}

TEST_CASE("IPv6-only: --iface by name or IPv6 address, first match wins", "[iface][v6only]") {
  IfaceChoice c;
  c.iface = {"eth9", "eth1"};
  auto by_name = weft::choose_interface_v6(v6_only_host(), c, "");
  CHECK(chose(by_name) == "eth1 fd0a::10 fd0a::10");
  CHECK(by_name->ext.mtu == 9000);
  c.iface = {"fd0a:0::11"};  // any spelling; the address asked for is the underlay, as with IPv4
  CHECK(chose(weft::choose_interface_v6(v6_only_host(), c, "")) == "eth1 fd0a::11 fd0a::11");
  // ...and the source of VXLAN to a --public-ipv6 this host does not hold.
  CHECK(chose(weft::choose_interface_v6(v6_only_host(), c, "2001:db8:ff::9")) == "eth1 2001:db8:ff::9 fd0a::11");
  c.iface = {"2001:db8:1::10", "eth1"};
  CHECK(chose(weft::choose_interface_v6(v6_only_host(), c, "")) == "eth0 2001:db8:1::10 2001:db8:1::10");

  c.iface = {"eth7", "192.0.2.10"};  // an IPv4 address names no interface in an IPv6-only cluster
  auto none = weft::choose_interface_v6(v6_only_host(), c, "");
  REQUIRE_FALSE(none);
  CHECK_THAT(none.error(), Catch::Contains("--iface eth7, 192.0.2.10") && Catch::Contains("IPv6") &&
                               Catch::Contains("eth1 (fd0a::10, fd0a::11)") &&
                               Catch::Contains("eth2 (no global IPv6)"));
  CHECK_THAT(none.error(), !Catch::Contains("lo ("));
}

TEST_CASE("IPv6-only: --iface-regex matches IPv6 addresses before names", "[iface][v6only]") {
  IfaceChoice c;
  c.iface_regex = {"^fd0a:"};
  CHECK(chose(weft::choose_interface_v6(v6_only_host(), c, "")) == "eth1 fd0a::10 fd0a::10");
  c.iface_regex = {"eth"};  // no address matches: the first name that does
  CHECK(chose(weft::choose_interface_v6(v6_only_host(), c, "")) == "eth0 2001:db8:1::10 2001:db8:1::10");
  c.iface_regex = {"::1+$"};  // lo's ::1 is never the underlay, eth1's fd0a::11 is (the address matched)
  CHECK(chose(weft::choose_interface_v6(v6_only_host(), c, "")) == "eth1 fd0a::11 fd0a::11");
  c.iface_regex = {"(["};
  CHECK_THAT(weft::choose_interface_v6(v6_only_host(), c, "").error(),
             Catch::Contains("not a valid regular expression"));
  c.iface_regex = {"^wlan"};
  auto none = weft::choose_interface_v6(v6_only_host(), c, "");
  REQUIRE_FALSE(none);
  CHECK_THAT(none.error(), Catch::Contains("--iface-regex ^wlan"));
}

TEST_CASE("IPv6-only: --iface-can-reach takes an IPv6 address and the interface its route leaves by",
          "[iface][v6only]") {
  auto host = v6_only_host();
  IfaceChoice c;
  c.can_reach = "fd0a::99";
  CHECK_THAT(weft::choose_interface_v6(host, c, "").error(), Catch::Contains("no route to --iface-can-reach fd0a::99"));
  host.can_reach_index = 3;
  CHECK(chose(weft::choose_interface_v6(host, c, "")) == "eth1 fd0a::10 fd0a::10");
  host.can_reach_index = 42;
  CHECK_THAT(weft::choose_interface_v6(host, c, "").error(), Catch::Contains("unknown interface"));

  c.can_reach = "192.0.2.99";  // IPv4: there is no IPv4 underlay to reach it by
  auto v4 = weft::choose_interface_v6(host, c, "");
  REQUIRE_FALSE(v4);
  CHECK_THAT(v4.error(), Catch::Contains("--iface-can-reach 192.0.2.99") && Catch::Contains("IPv6-only") &&
                             Catch::Contains("IPv6 address"));
}

TEST_CASE("IPv6-only: without --iface, the interface holding --public-ipv6 is chosen", "[iface][v6only]") {
  CHECK(chose(weft::choose_interface_v6(v6_only_host(), IfaceChoice{}, "fd0a::11")) == "eth1 fd0a::11 fd0a::11");
  // --iface still wins: the published address is held on another interface, and sent from there.
  IfaceChoice c;
  c.iface = {"eth0"};
  CHECK(chose(weft::choose_interface_v6(v6_only_host(), c, "fd0a::11")) == "eth0 fd0a::11 fd0a::11");
}

TEST_CASE("IPv6-only: a --public-ipv6 the host does not hold is published, sent from the interface's address",
          "[iface][v6only]") {
  // Behind a NAT66 or a load balancer: the default route's interface, its own address as source.
  CHECK(chose(weft::choose_interface_v6(v6_only_host(), IfaceChoice{}, "2001:db8:ff::9")) ==
        "eth0 2001:db8:ff::9 2001:db8:1::10");
  // ...but an interface without a global IPv6 address has nothing to send from.
  IfaceChoice c;
  c.iface = {"eth2"};
  auto unsendable = weft::choose_interface_v6(v6_only_host(), c, "2001:db8:ff::9");
  REQUIRE_FALSE(unsendable);
  CHECK_THAT(unsendable.error(), Catch::Contains("--public-ipv6 2001:db8:ff::9") && Catch::Contains("eth2") &&
                                     Catch::Contains("global IPv6 address"));
  // There is no IPv4 to fall back on in an IPv6-only cluster: the error must not suggest it.
  CHECK_THAT(unsendable.error(), !Catch::Contains("IPv4"));
}

TEST_CASE("IPv6-only: an interface without a global IPv6 address is an error that says what to set",
          "[iface][v6only]") {
  IfaceChoice c;
  c.iface = {"eth2"};
  auto bare = weft::choose_interface_v6(v6_only_host(), c, "");
  REQUIRE_FALSE(bare);
  CHECK_THAT(bare.error(), Catch::Contains("eth2 has no global IPv6 address") && Catch::Contains("--public-ipv6") &&
                               Catch::Contains("--iface") && Catch::Contains("eth0 (2001:db8:1::10)"));
  auto host = v6_only_host();
  host.default_route_index = 4;  // the default route by eth2
  CHECK_THAT(weft::choose_interface_v6(host, IfaceChoice{}, "").error(),
             Catch::Contains("eth2 has no global IPv6 address"));
}

TEST_CASE("IPv6-only: no IPv6 default route is an error naming --iface and --iface-can-reach", "[iface][v6only]") {
  auto host = v6_only_host();
  host.default_route_index.reset();
  auto err = weft::choose_interface_v6(host, IfaceChoice{}, "");
  REQUIRE_FALSE(err);
  CHECK_THAT(err.error(), Catch::Contains("no IPv6 default route") && Catch::Contains("--iface") &&
                              Catch::Contains("--iface-can-reach") && Catch::Contains("eth1 (fd0a::10, fd0a::11)"));
  // A --public-ipv6 the host holds still names the interface.
  CHECK(chose(weft::choose_interface_v6(host, IfaceChoice{}, "fd0a::10")) == "eth1 fd0a::10 fd0a::10");
}

TEST_CASE("IPv6-only: link-local, multicast and malformed --public-ipv6 are refused", "[iface][v6only]") {
  auto refused = [](const char* flag, const char* why) {
    auto r = weft::choose_interface_v6(v6_only_host(), IfaceChoice{}, flag);
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error(), Catch::Contains("--public-ipv6") && Catch::Contains(why));
  };
  refused("fe80::10", "link-local");
  refused("ff02::1", "multicast");
  refused("::1", "loopback");
  refused("192.0.2.10", "--public-ipv6");
  refused("2001:db8::zz", "--public-ipv6");
  // A link-local address is never the underlay: --iface by one finds no interface.
  auto host = v6_only_host();
  IfaceChoice c;
  c.iface = {"fe80::10"};
  CHECK_FALSE(weft::choose_interface_v6(host, c, ""));
}

TEST_CASE("IPv6-only: a down interface and an unused --public-ip are warnings", "[iface][v6only]") {
  IfaceChoice c;
  c.iface = {"eth3"};
  c.public_ip = "192.0.2.10";
  auto down = weft::choose_interface_v6(v6_only_host(), c, "");
  REQUIRE(down);
  CHECK(chose(down) == "eth3 2001:db8:3::10 2001:db8:3::10");
  REQUIRE(down->ext.warnings.size() == 2);
  CHECK_THAT(down->ext.warnings[0], Catch::Contains("eth3 is down"));
  CHECK_THAT(down->ext.warnings[1], Catch::Contains("--public-ip 192.0.2.10") && Catch::Contains("IPv6-only"));
}
