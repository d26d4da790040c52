// The pure parts of the VTEP step: name, MTU, adoption rule, MAC choice.
#include "backend/vxlan/vtep.hpp"

#include <catch2/catch.hpp>

#include "test/unit/backend/helpers.hpp"

using namespace weft;
using namespace weft::test;

namespace {

VtepSpec spec() {
  VtepSpec s;
  s.vni = 1;
  s.port = 8472;
  s.local_ip = ip("192.0.2.1");
  s.underlay_ifindex = 2;
  s.underlay_mtu = 1500;
  return s;
}

Link vxlan_link(const VtepSpec& s) {
  Link l;
  l.name = vtep_name(s.vni);
  l.kind = "vxlan";
  l.vxlan = VxlanAttrs{s.vni, s.port, s.local_ip, s.underlay_ifindex, s.learning, s.gbp};
  return l;
}

}  // namespace

TEST_CASE("the VTEP is named weft.<VNI> and its MTU is the underlay's (or Backend.MTU) minus 50", "[vtep]") {
  CHECK(vtep_name(1) == "weft.1");
  CHECK(vtep_name(16777215) == "weft.16777215");  // 13 characters: fits IFNAMSIZ
  VtepSpec f = spec();
  f.flannel_names = true;  // FlannelCompat: flannel's device, adopted in place
  CHECK(vtep_name(f) == "flannel.1");
  f.ipv6 = true;
  CHECK(vtep_name(f) == "flannel-v6.1");
  f.flannel_names = false;
  CHECK(vtep_name(f) == "weft-v6.1");
  VtepSpec s = spec();
  CHECK(vtep_mtu(s) == 1450);
  s.underlay_mtu = 9000;
  CHECK(vtep_mtu(s) == 8950);
  s.mtu = 1400;  // flannel's meaning: the outer packets' MTU, so a 1400-byte underlay path works
  CHECK(vtep_mtu(s) == 1350);
  s.local_ip6 = *Ipv6Addr::parse("2001:db8::1");  // IPv6 VXLAN over IPv6: 70 bytes
  CHECK(vtep_mtu(s) == 1330);
  s.mtu.reset();
  CHECK(vtep_mtu(s) == 8930);
}

TEST_CASE("a device is adopted only when VNI, port, local address, underlay, learning and GBP match", "[vtep]") {
  const VtepSpec s = spec();
  CHECK_FALSE(vtep_mismatch(vxlan_link(s), s));
  Link l = vxlan_link(s);
  SECTION("VNI") {
    l.vxlan->vni = 2;
    CHECK(vtep_mismatch(l, s) == "VNI is 2, want 1");
  }
  SECTION("port") {
    l.vxlan->port = 4789;
    CHECK(vtep_mismatch(l, s) == "port is 4789, want 8472");
  }
  SECTION("port 0 means the kernel default 8472") {
    VtepSpec zero = s;
    zero.port = 0;
    CHECK_FALSE(vtep_mismatch(l, zero));
  }
  SECTION("local address") {
    l.vxlan->local = ip("192.0.2.9");
    CHECK(vtep_mismatch(l, s) == "local address is 192.0.2.9, want 192.0.2.1");
  }
  SECTION("underlay") {
    l.vxlan->underlay_ifindex = 3;
    CHECK(vtep_mismatch(l, s) == "underlay ifindex is 3, want 2");
  }
  SECTION("learning") {
    l.vxlan->learning = true;
    CHECK(vtep_mismatch(l, s) == "learning is on");
  }
  SECTION("GBP") {
    l.vxlan->gbp = true;
    CHECK(vtep_mismatch(l, s) == "GBP is on");
  }
  SECTION("not a vxlan device") {
    l.kind = "veth";
    l.vxlan.reset();
    CHECK(vtep_mismatch(l, s) == "it is a veth device, not vxlan");
  }
}

TEST_CASE("the VTEP MAC: the old device's, else the last used, else the preferred, else random", "[vtep]") {
  const Mac a = mac("0e:00:00:00:00:0a");
  const Mac b = mac("0e:00:00:00:00:0b");
  const Mac c = mac("0e:00:00:00:00:0c");
  CHECK(choose_vtep_mac(a, b, c) == a);
  CHECK(choose_vtep_mac(std::nullopt, b, c) == b);
  CHECK(choose_vtep_mac(std::nullopt, std::nullopt, c) == c);
  CHECK(choose_vtep_mac(Mac{}, mac("01:00:00:00:00:01"), c) == c);  // zero and multicast are passed over
  Mac random = choose_vtep_mac(std::nullopt, std::nullopt, std::nullopt);
  CHECK(random.is_unicast());
  CHECK(random.is_local());
  CHECK_FALSE(random.is_zero());
}
