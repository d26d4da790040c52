// Runs inside its own network namespace (see in_netns.sh): touches only that namespace's nftables.
#include <poll.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <regex>

#include "overlay/nftables/firewall.hpp"

using weft::Firewall;
using weft::FirewallSpec;
using weft::Ipv4Addr;

namespace {

FirewallSpec spec() {
  FirewallSpec s;
  s.network = weft::Ipv4Prefix::parse("10.244.0.0/16").value();
  s.subnet = weft::Ipv4Prefix::parse("10.244.7.0/24").value();
  s.ip_masq = true;
  s.vxlan_sources = {Ipv4Addr::parse("192.0.2.2").value(), Ipv4Addr::parse("192.0.2.3").value()};
  return s;
}

void sh(const std::string& cmd) { REQUIRE(std::system(cmd.c_str()) == 0); }

bool readable_within(int fd, int ms) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, ms) == 1;
}

}  // namespace

TEST_CASE("the table is installed once and a second reconcile writes nothing", "[firewall]") {
  auto nft = weft::make_libnftables();
  Firewall fw(*nft);
  sh("nft delete table ip weft 2>/dev/null || true");
  CHECK(fw.reconcile(spec())->replaced);
  CHECK_FALSE(fw.reconcile(spec())->replaced);  // the listing matches what we render
  auto listing = nft->run("list table ip weft");
  REQUIRE(listing);
  CHECK_THAT(*listing, Catch::Contains("masquerade fully-random") && Catch::Contains("192.0.2.3"));
}

TEST_CASE("hand damage is noticed and repaired", "[firewall]") {
  auto nft = weft::make_libnftables();
  Firewall fw(*nft);
  REQUIRE(fw.reconcile(spec()));
  weft::NftablesMonitor monitor;
  REQUIRE(monitor.ok());

  SECTION("a deleted rule") {
    sh("nft -a list chain ip weft postrouting | awk '/masquerade/ {print $NF; exit}' | "
       "xargs -I{} nft delete rule ip weft postrouting handle {}");
    CHECK(readable_within(monitor.fd(), 1000));
    CHECK(monitor.drain());
    auto after = nft->run("list chain ip weft postrouting");
    REQUIRE(after);
    REQUIRE(weft::render_table(spec()).find("daddr != 224.0.0.0/4 masquerade") != std::string::npos);
    CHECK(after->find("daddr != 224.0.0.0/4 masquerade") == std::string::npos);
  }
  SECTION("the whole table") {
    sh("nft delete table ip weft");
    CHECK(readable_within(monitor.fd(), 1000));
  }
  SECTION("an allow-list element") { sh("nft delete element ip weft vxlan-sources '{ 192.0.2.2 }'"); }
  SECTION("a foreign rule added to our chain") { sh("nft add rule ip weft forward drop"); }
  CHECK(fw.reconcile(spec())->replaced);
  CHECK_FALSE(fw.reconcile(spec())->replaced);
}

TEST_CASE("the monitor ignores our own transactions and reports another process's", "[firewall]") {
  auto nft = weft::make_libnftables();
  Firewall fw(*nft);
  weft::NftablesMonitor monitor;
  REQUIRE(monitor.ok());
  sh("nft delete table ip weft 2>/dev/null || true");
  if (readable_within(monitor.fd(), 200)) (void)monitor.drain();  // the delete, if there was a table
  REQUIRE(fw.reconcile(spec())->replaced);
  REQUIRE(readable_within(monitor.fd(), 1000));  // the kernel did notify...
  CHECK_FALSE(monitor.drain());                  // ...of a change made by this process
  sh("nft add element ip weft vxlan-sources '{ 192.0.2.50 }'");
  REQUIRE(readable_within(monitor.fd(), 1000));
  CHECK(monitor.drain());  // nft(8) is another process
}

// Run by the kernel_firewall_pidns test under `unshare --pid --fork --mount-proc`, as weftd runs
// in a pod without hostPID: NEWGEN names the writing thread by its host PID, which this
// namespace's /proc does not know, so only the netlink port tells our writes apart.
TEST_CASE("in a PID namespace of its own, the monitor still ignores our own transactions", "[.][pidns]") {
  REQUIRE(::getpid() == 1);  // really in a new PID namespace, with its own /proc
  auto nft = weft::make_libnftables();
  Firewall fw(*nft);
  weft::NftablesMonitor monitor;
  REQUIRE(monitor.ok());
  for (int round = 0; round < 3; ++round) {  // a new libnftables socket (and port) per batch
    auto s = spec();
    s.vxlan_sources.insert(Ipv4Addr(0xc0000260U + static_cast<std::uint32_t>(round)));  // 192.0.2.96+
    REQUIRE(fw.reconcile(s)->replaced);
    REQUIRE(readable_within(monitor.fd(), 1000));
    CHECK_FALSE(monitor.drain());
  }
  sh("nft add element ip weft vxlan-sources '{ 192.0.2.50 }'");
  REQUIRE(readable_within(monitor.fd(), 1000));
  CHECK(monitor.drain());
}

TEST_CASE("a changed spec replaces the table, other tables are left alone", "[firewall]") {
  auto nft = weft::make_libnftables();
  Firewall fw(*nft);
  sh("nft add table ip other && nft add chain ip other c");
  REQUIRE(fw.reconcile(spec()));
  auto more = spec();
  more.vxlan_sources.insert(Ipv4Addr::parse("192.0.2.4").value());
  CHECK(fw.reconcile(more)->replaced);
  CHECK_THAT(*nft->run("list set ip weft vxlan-sources"), Catch::Contains("192.0.2.4"));
  auto no_masq = more;
  no_masq.ip_masq = false;
  CHECK(fw.reconcile(no_masq)->replaced);
  CHECK(nft->run("list table ip weft")->find("masquerade") == std::string::npos);
  auto empty = no_masq;
  empty.vxlan_sources.clear();
  CHECK(fw.reconcile(empty)->replaced);
  CHECK_FALSE(fw.reconcile(empty)->replaced);
  CHECK(nft->run("list table ip other"));
  sh("nft delete table ip other");
}

TEST_CASE("many allow-list entries still compare equal", "[firewall]") {
  auto nft = weft::make_libnftables();
  Firewall fw(*nft);
  auto big = spec();
  for (std::uint32_t i = 0; i < 5000; ++i) big.vxlan_sources.insert(Ipv4Addr(0xc6120000U + i));  // 198.18.0.0/15
  CHECK(fw.reconcile(big)->replaced);
  CHECK_FALSE(fw.reconcile(big)->replaced);
}

TEST_CASE("a table from an older weftd with a hash allow-list is replaced by the interval one", "[firewall]") {
  auto nft = weft::make_libnftables();
  Firewall fw(*nft);
  REQUIRE(fw.reconcile(spec()));
  const std::string hashed = std::regex_replace(weft::render_table(spec()), std::regex("\t\tflags interval\n"), "");
  REQUIRE(hashed != weft::render_table(spec()));
  REQUIRE(nft->run("add table ip weft\ndelete table ip weft\n" + hashed));
  CHECK(fw.reconcile(spec())->replaced);
  CHECK_THAT(*nft->run("list set ip weft vxlan-sources"), Catch::Contains("flags interval"));
  CHECK_FALSE(fw.reconcile(spec())->replaced);
}

TEST_CASE("the allow-list follows joins and leaves by element, and ends equal to a full reconcile", "[firewall]") {
  auto nft = weft::make_libnftables();
  Firewall fw(*nft);
  REQUIRE(fw.reconcile(spec()));
  auto next = spec();
  next.vxlan_sources.erase(Ipv4Addr::parse("192.0.2.2").value());
  next.vxlan_sources.insert(Ipv4Addr::parse("192.0.2.9").value());
  REQUIRE(fw.update_sources(spec(), next));
  auto listing = *nft->run("list set ip weft vxlan-sources");
  CHECK_THAT(listing, Catch::Contains("192.0.2.9") && Catch::Contains("192.0.2.3"));
  CHECK(listing.find("192.0.2.2") == std::string::npos);
  CHECK_FALSE(fw.reconcile(next)->replaced);  // the kernel holds exactly `next`
  // A stale idea of the kernel (an element to delete is already gone) fails and changes nothing.
  auto stale = next;
  stale.vxlan_sources.insert(Ipv4Addr::parse("192.0.2.77").value());
  CHECK_FALSE(fw.update_sources(stale, spec()));
  CHECK_FALSE(fw.reconcile(next)->replaced);
}

TEST_CASE("same_rules ignores the allow-list and nothing else", "[firewall]") {
  auto other_sources = spec();
  other_sources.vxlan_sources.insert(Ipv4Addr::parse("192.0.2.60").value());
  CHECK(weft::same_rules(spec(), other_sources));
  auto changed = [](auto mutate) {
    auto s = spec();
    mutate(s);
    return weft::same_rules(spec(), s);
  };
  CHECK_FALSE(changed([](FirewallSpec& s) { s.network = weft::Ipv4Prefix::parse("10.245.0.0/16").value(); }));
  CHECK_FALSE(changed([](FirewallSpec& s) { s.subnet = weft::Ipv4Prefix::parse("10.244.8.0/24").value(); }));
  CHECK_FALSE(changed([](FirewallSpec& s) { s.ip_masq = false; }));
  CHECK_FALSE(changed([](FirewallSpec& s) { s.vxlan_allowlist = false; }));
  CHECK_FALSE(changed([](FirewallSpec& s) { s.vxlan_port = 4789; }));
}
