// render_table and same_rules are pure: the kernel test (test/kernel/overlay) checks that nft
// lists what they render; these check what they render.
#include <catch2/catch.hpp>

#include "overlay/nftables/firewall.hpp"
#include "test/support/firewall_specs.hpp"

using weft::FirewallSpec;
using weft::Ipv4Addr;
using weft::Ipv4Prefix;
using weft::Ipv6Addr;
using weft::Ipv6Prefix;
using weft::test::dual_spec;
using weft::test::v4_spec;
using weft::test::v6_only_spec;

namespace {

// What render_table(v4_spec()) was before dual stack, byte for byte.
const char* const kV4Table =
    "table ip weft {\n"
    "\tcomment \"managed by weftd: hand edits are reverted\"\n"
    "\tset vxlan-sources {\n"
    "\t\ttype ipv4_addr\n"
    "\t\tflags interval\n"
    "\t\telements = { 192.0.2.2, 192.0.2.3 }\n"
    "\t}\n"
    "\n"
    "\tchain postrouting {\n"
    "\t\ttype nat hook postrouting priority srcnat; policy accept;\n"
    "\t\tmeta mark & 0x00004000 == 0x00004000 return\n"
    "\t\tip saddr 10.244.0.0/16 ip daddr 10.244.0.0/16 return\n"
    "\t\tip saddr 10.244.0.0/16 ip daddr != 224.0.0.0/4 masquerade fully-random\n"
    "\t\tip saddr != 10.244.0.0/16 ip daddr 10.244.7.0/24 return\n"
    "\t\tip saddr != 10.244.0.0/16 ip daddr 10.244.0.0/16 masquerade fully-random\n"
    "\t}\n"
    "\n"
    "\tchain forward {\n"
    "\t\ttype filter hook forward priority filter; policy accept;\n"
    "\t\tip saddr 10.244.0.0/16 accept\n"
    "\t\tip daddr 10.244.0.0/16 accept\n"
    "\t}\n"
    "\n"
    "\tchain input {\n"
    "\t\ttype filter hook input priority filter; policy accept;\n"
    "\t\tudp dport 8472 ip saddr != @vxlan-sources drop\n"
    "\t}\n"
    "}\n";

// The IPv6 twin of kV4Table: ip6 matches, ipv6_addr elements, ff00::/8 as flannel's ip6tables.
const char* const kV6Table =
    "table ip6 weft {\n"
    "\tcomment \"managed by weftd: hand edits are reverted\"\n"
    "\tset vxlan-sources {\n"
    "\t\ttype ipv6_addr\n"
    "\t\tflags interval\n"
    "\t\telements = { 2001:db8::2, 2001:db8::3 }\n"
    "\t}\n"
    "\n"
    "\tchain postrouting {\n"
    "\t\ttype nat hook postrouting priority srcnat; policy accept;\n"
    "\t\tmeta mark & 0x00004000 == 0x00004000 return\n"
    "\t\tip6 saddr fd00:10:244::/56 ip6 daddr fd00:10:244::/56 return\n"
    "\t\tip6 saddr fd00:10:244::/56 ip6 daddr != ff00::/8 masquerade fully-random\n"
    "\t\tip6 saddr != fd00:10:244::/56 ip6 daddr fd00:10:244:7::/64 return\n"
    "\t\tip6 saddr != fd00:10:244::/56 ip6 daddr fd00:10:244::/56 masquerade fully-random\n"
    "\t}\n"
    "\n"
    "\tchain forward {\n"
    "\t\ttype filter hook forward priority filter; policy accept;\n"
    "\t\tip6 saddr fd00:10:244::/56 accept\n"
    "\t\tip6 daddr fd00:10:244::/56 accept\n"
    "\t}\n"
    "\n"
    "\tchain input {\n"
    "\t\ttype filter hook input priority filter; policy accept;\n"
    "\t\tudp dport 8472 ip6 saddr != @vxlan-sources drop\n"
    "\t}\n"
    "}\n";

bool has_line(const std::string& text, const std::string& line) {
  return text.find("\t" + line + "\n") != std::string::npos;
}

}  // namespace

TEST_CASE("the IPv4 table renders as before dual stack", "[firewall]") {
  CHECK(weft::render_table(v4_spec()) == kV4Table);
}

TEST_CASE("the IPv6 fields leave the IPv4 table as it was", "[firewall]") {
  CHECK(weft::render_table(dual_spec()) == kV4Table);
}

TEST_CASE("without an IPv6 network there is no IPv6 table", "[firewall]") {
  auto s = dual_spec();
  s.network_v6.reset();
  CHECK(weft::render_table_v6(s).empty());
  CHECK(weft::render_table_v6(v4_spec()).empty());
}

TEST_CASE("the IPv6 table is the IPv4 one's twin", "[firewall]") {
  CHECK(weft::render_table_v6(dual_spec()) == kV6Table);
}

TEST_CASE("the IPv6 table follows the shared switches and port", "[firewall]") {
  auto s = dual_spec();
  s.ip_masq = false;
  auto no_masq = weft::render_table_v6(s);
  CHECK(no_masq.find("postrouting") == std::string::npos);
  CHECK(no_masq.find("masquerade") == std::string::npos);
  CHECK(has_line(no_masq, "\tip6 saddr fd00:10:244::/56 accept"));
  CHECK(has_line(no_masq, "\tudp dport 8472 ip6 saddr != @vxlan-sources drop"));

  s = dual_spec();
  s.vxlan_allowlist = false;
  auto open = weft::render_table_v6(s);
  CHECK(open.find("vxlan-sources") == std::string::npos);
  CHECK(open.find("chain input") == std::string::npos);
  CHECK(has_line(open, "\tip6 daddr fd00:10:244::/56 accept"));

  s = dual_spec();
  s.vxlan_port = 4789;
  s.vxlan_sources_v6.clear();
  auto iana = weft::render_table_v6(s);
  CHECK(has_line(iana, "\tudp dport 4789 ip6 saddr != @vxlan-sources drop"));  // an empty list drops all
  CHECK(iana.find("elements") == std::string::npos);
}

TEST_CASE("the IPv6 allow-list holds the IPv6 sources and the IPv4 one the IPv4 sources", "[firewall]") {
  auto s = dual_spec();
  s.vxlan_sources_v6.insert(Ipv6Addr::parse("2001:db8:0:0:1::9").value());
  auto v6 = weft::render_table_v6(s);
  CHECK(has_line(v6, "\telements = { 2001:db8::2, 2001:db8::3, 2001:db8::1:0:0:9 }"));  // RFC 5952, as nft lists
  CHECK(v6.find("192.0.2.") == std::string::npos);
  CHECK(weft::render_table(s).find("2001:db8") == std::string::npos);
}

TEST_CASE("same_rules ignores the allow-lists and nothing else", "[firewall]") {
  auto other_sources = dual_spec();
  other_sources.vxlan_sources.insert(Ipv4Addr::parse("192.0.2.60").value());
  other_sources.vxlan_sources_v6.insert(Ipv6Addr::parse("2001:db8::60").value());
  other_sources.vxlan_sources_v6.erase(Ipv6Addr::parse("2001:db8::2").value());
  CHECK(weft::same_rules(dual_spec(), other_sources));
  CHECK(weft::same_rules(v4_spec(), v4_spec()));
  auto changed = [](auto mutate) {
    auto s = dual_spec();
    mutate(s);
    return weft::same_rules(dual_spec(), s) || weft::same_rules(s, dual_spec());
  };
  CHECK_FALSE(changed([](FirewallSpec& s) { s.network = Ipv4Prefix::parse("10.245.0.0/16").value(); }));
  CHECK_FALSE(changed([](FirewallSpec& s) { s.subnet = Ipv4Prefix::parse("10.244.8.0/24").value(); }));
  CHECK_FALSE(changed([](FirewallSpec& s) { s.ip_masq = false; }));
  CHECK_FALSE(changed([](FirewallSpec& s) { s.vxlan_allowlist = false; }));
  CHECK_FALSE(changed([](FirewallSpec& s) { s.vxlan_port = 4789; }));
  CHECK_FALSE(changed([](FirewallSpec& s) { s.network_v6 = Ipv6Prefix::parse("fd00:10:245::/56").value(); }));
  CHECK_FALSE(changed([](FirewallSpec& s) { s.network_v6.reset(); }));  // dual stack to IPv4 only
  CHECK_FALSE(changed([](FirewallSpec& s) { s.subnet_v6 = Ipv6Prefix::parse("fd00:10:244:8::/64").value(); }));
  CHECK_FALSE(changed([](FirewallSpec& s) { s.subnet_v6.reset(); }));
}

TEST_CASE("IPv6-only: no IPv4 table, and the IPv6 table as in dual stack", "[firewall][v6only]") {
  CHECK(weft::render_table(v6_only_spec()).empty());
  CHECK(weft::render_table_v6(v6_only_spec()) == kV6Table);
  auto with_stray_v4_sources = v6_only_spec();  // IPv4 sources without an IPv4 network have no table
  with_stray_v4_sources.vxlan_sources = {Ipv4Addr::parse("192.0.2.2").value()};
  CHECK(weft::render_table(with_stray_v4_sources).empty());
  CHECK(weft::render_table_v6(with_stray_v4_sources) == kV6Table);
}

TEST_CASE("IPv6-only: the IPv6 table follows the switches without an IPv4 half", "[firewall][v6only]") {
  auto s = v6_only_spec();
  s.ip_masq = false;
  s.vxlan_port = 4789;
  const auto t = weft::render_table_v6(s);
  CHECK(t.find("masquerade") == std::string::npos);
  CHECK(has_line(t, "\tudp dport 4789 ip6 saddr != @vxlan-sources drop"));
  CHECK(has_line(t, "\telements = { 2001:db8::2, 2001:db8::3 }"));
  CHECK(t.find(" ip ") == std::string::npos);  // nothing of the IPv4 family
  CHECK(weft::render_table(s).empty());
}

TEST_CASE("IPv6-only: same_rules tells an IPv6-only spec from a dual-stack one", "[firewall][v6only]") {
  CHECK(weft::same_rules(v6_only_spec(), v6_only_spec()));
  auto other_sources = v6_only_spec();
  other_sources.vxlan_sources_v6.insert(Ipv6Addr::parse("2001:db8::60").value());
  CHECK(weft::same_rules(v6_only_spec(), other_sources));
  CHECK_FALSE(weft::same_rules(v6_only_spec(), dual_spec()));  // IPv4 enabled or disabled
  CHECK_FALSE(weft::same_rules(dual_spec(), v6_only_spec()));
}
