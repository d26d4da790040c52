// Runs inside its own network namespace (see in_netns.sh): touches only that namespace's nftables.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <regex>

#include "overlay/nftables/firewall.hpp"
#include "test/support/firewall_specs.hpp"

using weft::Firewall;
using weft::FirewallSpec;
using weft::Ipv4Addr;
using weft::Ipv6Addr;
using weft::Ipv6Prefix;
using weft::test::dual_spec;
using weft::test::v4_spec;
using weft::test::v6_only_spec;

namespace {

Ipv6Addr v6(const char* text) { return Ipv6Addr::parse(text).value(); }

void sh(const std::string& cmd) { REQUIRE(std::system(cmd.c_str()) == 0); }

// What a shell command prints (nft -a: with handles, which change whenever a table is rewritten).
std::string output_of(const std::string& cmd) {
  std::unique_ptr<FILE, decltype(&::pclose)> p(::popen(cmd.c_str(), "r"), &::pclose);
  REQUIRE(p);
  std::string out;
  std::array<char, 4096> buf{};
  while (std::size_t n = std::fread(buf.data(), 1, buf.size(), p.get())) out.append(buf.data(), n);
  return out;
}

// nft wraps long element lists across lines; everything else it lists as render_table writes it.
std::string collapsed(const std::string& text) { return std::regex_replace(text, std::regex("\\s+"), " "); }

std::string listed(weft::Nftables& nft, const std::string& table) {
  auto out = nft.run("list table " + table);
  REQUIRE(out);
  return collapsed(*out);
}

bool readable_within(int fd, int ms) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, ms) == 1;
}

// A UDP socket, closed on scope exit.
struct Udp {
  int fd;
  explicit Udp(int family) : fd(::socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0)) { REQUIRE(fd >= 0); }
  ~Udp() { ::close(fd); }
  Udp(const Udp&) = delete;
  Udp& operator=(const Udp&) = delete;
};

sockaddr_storage endpoint(const std::string& ip, std::uint16_t port, socklen_t& len) {
  sockaddr_storage ss{};
  if (ip.find(':') != std::string::npos) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(port);
    REQUIRE(::inet_pton(AF_INET6, ip.c_str(), &a->sin6_addr) == 1);
    len = sizeof(sockaddr_in6);
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    REQUIRE(::inet_pton(AF_INET, ip.c_str(), &a->sin_addr) == 1);
    len = sizeof(sockaddr_in);
  }
  return ss;
}

// Sends one UDP datagram from `src` to `dst`:port (both addresses of this namespace, so it goes
// through the input hook) and reports whether it reached the socket listening there.
bool datagram_arrives(const std::string& src, const std::string& dst, std::uint16_t port) {
  socklen_t len = 0;
  const auto to = endpoint(dst, port, len);
  Udp rx(to.ss_family);
  REQUIRE(::bind(rx.fd, reinterpret_cast<const sockaddr*>(&to), len) == 0);
  const auto from = endpoint(src, 0, len);
  Udp tx(from.ss_family);
  REQUIRE(::bind(tx.fd, reinterpret_cast<const sockaddr*>(&from), len) == 0);
  const char payload[] = "vxlan";
  REQUIRE(::sendto(tx.fd, payload, sizeof payload, 0, reinterpret_cast<const sockaddr*>(&to), len) ==
          static_cast<ssize_t>(sizeof payload));
  return readable_within(rx.fd, 300);
}

// Runs `change` with `nft monitor` listening and returns how many transactions (ruleset
// generations) it made: one means every table it touched changed at once.
template <class Change>
int transactions_during(Change change) {
  const std::string log = "/tmp/weft-fw-monitor-" + std::to_string(::getpid());
  const std::string pid = output_of("nft monitor > " + log + " 2>&1 & echo $!");
  REQUIRE(!pid.empty());
  ::usleep(300 * 1000);  // the monitor has subscribed
  change();
  ::usleep(300 * 1000);  // and has printed what it got
  sh("kill " + pid);
  const std::string seen = output_of("cat " + log);
  sh("rm -f " + log);
  INFO("nft monitor: " << seen);
  int generations = 0;
  for (std::size_t at = seen.find("# new generation"); at != std::string::npos;
       at = seen.find("# new generation", at + 1))
    ++generations;
  return generations;
}

}  // namespace

TEST_CASE("the table is installed once and a second reconcile writes nothing", "[firewall]") {
  auto nft = weft::make_libnftables();
  Firewall fw(*nft);
  sh("nft delete table ip weft 2>/dev/null || true");
  CHECK(fw.reconcile(v4_spec())->replaced);
  CHECK_FALSE(fw.reconcile(v4_spec())->replaced);  // the listing matches what we render
  auto listing = nft->run("list table ip weft");
  REQUIRE(listing);
  CHECK_THAT(*listing, Catch::Contains("masquerade fully-random") && Catch::Contains("192.0.2.3"));
}

TEST_CASE("hand damage is noticed and repaired", "[firewall]") {
  auto nft = weft::make_libnftables();
  Firewall fw(*nft);
  REQUIRE(fw.reconcile(v4_spec()));
  weft::NftablesMonitor monitor;
  REQUIRE(monitor.ok());

  SECTION("a deleted rule") {
    sh("nft -a list chain ip weft postrouting | awk '/masquerade/ {print $NF; exit}' | "
       "xargs -I{} nft delete rule ip weft postrouting handle {}");
    CHECK(readable_within(monitor.fd(), 1000));
    CHECK(monitor.drain());
    auto after = nft->run("list chain ip weft postrouting");
    REQUIRE(after);
    REQUIRE(weft::render_table(v4_spec()).find("daddr != 224.0.0.0/4 masquerade") != std::string::npos);
    CHECK(after->find("daddr != 224.0.0.0/4 masquerade") == std::string::npos);
  }
  SECTION("the whole table") {
    sh("nft delete table ip weft");
    CHECK(readable_within(monitor.fd(), 1000));
  }
  SECTION("an allow-list element") { sh("nft delete element ip weft vxlan-sources '{ 192.0.2.2 }'"); }
  SECTION("a foreign rule added to our chain") { sh("nft add rule ip weft forward drop"); }
  CHECK(fw.reconcile(v4_spec())->replaced);
  CHECK_FALSE(fw.reconcile(v4_spec())->replaced);
}

TEST_CASE("the monitor ignores our own transactions and reports another process's", "[firewall]") {
  auto nft = weft::make_libnftables();
  Firewall fw(*nft);
  weft::NftablesMonitor monitor;
  REQUIRE(monitor.ok());
  sh("nft delete table ip weft 2>/dev/null || true");
  if (readable_within(monitor.fd(), 200)) (void)monitor.drain();  // the delete, if there was a table
  REQUIRE(fw.reconcile(v4_spec())->replaced);
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
    auto s = v4_spec();
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
  REQUIRE(fw.reconcile(v4_spec()));
  auto more = v4_spec();
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
  auto big = v4_spec();
  for (std::uint32_t i = 0; i < 5000; ++i) big.vxlan_sources.insert(Ipv4Addr(0xc6120000U + i));  // 198.18.0.0/15
  CHECK(fw.reconcile(big)->replaced);
  CHECK_FALSE(fw.reconcile(big)->replaced);
}

TEST_CASE("a table from an older weftd with a hash allow-list is replaced by the interval one", "[firewall]") {
  auto nft = weft::make_libnftables();
  Firewall fw(*nft);
  REQUIRE(fw.reconcile(v4_spec()));
  const std::string hashed = std::regex_replace(weft::render_table(v4_spec()), std::regex("\t\tflags interval\n"), "");
  REQUIRE(hashed != weft::render_table(v4_spec()));
  REQUIRE(nft->run("add table ip weft\ndelete table ip weft\n" + hashed));
  CHECK(fw.reconcile(v4_spec())->replaced);
  CHECK_THAT(*nft->run("list set ip weft vxlan-sources"), Catch::Contains("flags interval"));
  CHECK_FALSE(fw.reconcile(v4_spec())->replaced);
}

TEST_CASE("the allow-list follows joins and leaves by element, and ends equal to a full reconcile", "[firewall]") {
  auto nft = weft::make_libnftables();
  Firewall fw(*nft);
  REQUIRE(fw.reconcile(v4_spec()));
  auto next = v4_spec();
  next.vxlan_sources.erase(Ipv4Addr::parse("192.0.2.2").value());
  next.vxlan_sources.insert(Ipv4Addr::parse("192.0.2.9").value());
  REQUIRE(fw.update_sources(v4_spec(), next));
  auto listing = *nft->run("list set ip weft vxlan-sources");
  CHECK_THAT(listing, Catch::Contains("192.0.2.9") && Catch::Contains("192.0.2.3"));
  CHECK(listing.find("192.0.2.2") == std::string::npos);
  CHECK_FALSE(fw.reconcile(next)->replaced);  // the kernel holds exactly `next`
  // A stale idea of the kernel (an element to delete is already gone) fails and changes nothing.
  auto stale = next;
  stale.vxlan_sources.insert(Ipv4Addr::parse("192.0.2.77").value());
  CHECK_FALSE(fw.update_sources(stale, v4_spec()));
  CHECK_FALSE(fw.reconcile(next)->replaced);
}

TEST_CASE("with an IPv6 network, table ip6 weft is installed as rendered and a second reconcile writes nothing",
          "[firewall][v6]") {
  auto nft = weft::make_libnftables();
  Firewall fw(*nft);
  sh("nft delete table ip weft 2>/dev/null || true; nft delete table ip6 weft 2>/dev/null || true");
  CHECK(fw.reconcile(dual_spec())->replaced);
  CHECK(listed(*nft, "ip6 weft") == collapsed(weft::render_table_v6(dual_spec())));
  CHECK(listed(*nft, "ip weft") == collapsed(weft::render_table(dual_spec())));
  CHECK_FALSE(fw.reconcile(dual_spec())->replaced);

  // A change in the IPv6 rules alone rewrites table ip6 weft and leaves table ip weft alone.
  const std::string v4_before = output_of("nft -a list table ip weft");
  auto moved = dual_spec();
  moved.subnet_v6 = Ipv6Prefix::parse("fd00:10:244:9::/64").value();
  CHECK(fw.reconcile(moved)->replaced);
  CHECK(listed(*nft, "ip6 weft") == collapsed(weft::render_table_v6(moved)));
  CHECK(output_of("nft -a list table ip weft") == v4_before);
  CHECK_FALSE(fw.reconcile(moved)->replaced);
}

TEST_CASE("the IPv6 table follows the shared switches", "[firewall][v6]") {
  auto nft = weft::make_libnftables();
  Firewall fw(*nft);
  REQUIRE(fw.reconcile(dual_spec()));
  auto s = dual_spec();
  s.ip_masq = false;
  s.vxlan_allowlist = false;
  CHECK(fw.reconcile(s)->replaced);
  CHECK(listed(*nft, "ip6 weft") == collapsed(weft::render_table_v6(s)));
  CHECK(listed(*nft, "ip6 weft").find("vxlan-sources") == std::string::npos);
  CHECK_FALSE(fw.reconcile(s)->replaced);
  auto more = s;
  more.vxlan_sources_v6.insert(v6("2001:db8::5"));
  CHECK(fw.update_sources(s, more));  // no allow-list, no set: nothing to move
  CHECK_FALSE(fw.reconcile(more)->replaced);
  s = more;
  s.vxlan_port = 4789;
  s.vxlan_allowlist = true;
  CHECK(fw.reconcile(s)->replaced);
  CHECK_THAT(*nft->run("list chain ip6 weft input"), Catch::Contains("udp dport 4789 ip6 saddr != @vxlan-sources"));
  CHECK_FALSE(fw.reconcile(s)->replaced);
}

TEST_CASE("hand damage to table ip6 weft wakes the monitor and is repaired, table ip weft left alone",
          "[firewall][v6]") {
  auto nft = weft::make_libnftables();
  Firewall fw(*nft);
  REQUIRE(fw.reconcile(dual_spec()));
  const std::string v4_before = output_of("nft -a list table ip weft");
  weft::NftablesMonitor monitor;
  REQUIRE(monitor.ok());

  SECTION("the whole table") { sh("nft delete table ip6 weft"); }
  SECTION("a deleted rule") {
    sh("nft -a list chain ip6 weft postrouting | awk '/masquerade/ {print $NF; exit}' | "
       "xargs -I{} nft delete rule ip6 weft postrouting handle {}");
  }
  SECTION("an allow-list element") { sh("nft delete element ip6 weft vxlan-sources '{ 2001:db8::2 }'"); }
  SECTION("a foreign rule added to our chain") { sh("nft add rule ip6 weft forward drop"); }
  REQUIRE(readable_within(monitor.fd(), 1000));
  CHECK(monitor.drain());  // nft(8) is another process
  auto damaged = nft->run("list table ip6 weft");
  CHECK((!damaged || collapsed(*damaged) != collapsed(weft::render_table_v6(dual_spec()))));
  CHECK(fw.reconcile(dual_spec())->replaced);
  CHECK(listed(*nft, "ip6 weft") == collapsed(weft::render_table_v6(dual_spec())));
  CHECK(output_of("nft -a list table ip weft") == v4_before);
  CHECK_FALSE(fw.reconcile(dual_spec())->replaced);
}

TEST_CASE("the allow-lists of both families move by element in one transaction", "[firewall][v6]") {
  auto nft = weft::make_libnftables();
  Firewall fw(*nft);
  REQUIRE(fw.reconcile(dual_spec()));
  auto next = dual_spec();
  next.vxlan_sources.erase(Ipv4Addr::parse("192.0.2.2").value());
  next.vxlan_sources.insert(Ipv4Addr::parse("192.0.2.9").value());
  next.vxlan_sources_v6.erase(v6("2001:db8::2"));
  next.vxlan_sources_v6.insert(v6("2001:db8::9"));
  REQUIRE(fw.update_sources(dual_spec(), next));
  auto listing = *nft->run("list set ip6 weft vxlan-sources");
  CHECK_THAT(listing, Catch::Contains("2001:db8::9") && Catch::Contains("2001:db8::3"));
  CHECK(listing.find("2001:db8::2") == std::string::npos);
  CHECK_THAT(*nft->run("list set ip weft vxlan-sources"), Catch::Contains("192.0.2.9"));
  CHECK_FALSE(fw.reconcile(next)->replaced);  // the kernel holds exactly `next`, both families

  // One transaction: an IPv6 element to delete that is already gone fails the IPv4 addition too.
  auto stale = next;
  stale.vxlan_sources_v6.insert(v6("2001:db8::77"));
  auto wanted = next;
  wanted.vxlan_sources.insert(Ipv4Addr::parse("192.0.2.10").value());
  CHECK_FALSE(fw.update_sources(stale, wanted));
  CHECK(nft->run("list set ip weft vxlan-sources")->find("192.0.2.10") == std::string::npos);
  CHECK_FALSE(fw.reconcile(next)->replaced);

  // Rules that differ are not the allow-list's business.
  auto other_rules = next;
  other_rules.subnet_v6 = Ipv6Prefix::parse("fd00:10:244:9::/64").value();
  CHECK_FALSE(fw.update_sources(next, other_rules));
  CHECK_FALSE(fw.reconcile(next)->replaced);
}

TEST_CASE("without an IPv6 network, a stale table ip6 weft is deleted and table ip weft left as it was",
          "[firewall][v6]") {
  auto nft = weft::make_libnftables();
  Firewall fw(*nft);
  REQUIRE(fw.reconcile(dual_spec()));
  sh("nft add table ip6 other && nft add chain ip6 other c");
  const std::string v4_before = output_of("nft -a list table ip weft");
  CHECK(fw.reconcile(v4_spec())->replaced);
  CHECK_FALSE(nft->run("list table ip6 weft"));
  CHECK(output_of("nft -a list table ip weft") == v4_before);  // same handles: not rewritten
  CHECK(nft->run("list table ip6 other"));
  CHECK_FALSE(fw.reconcile(v4_spec())->replaced);
  // IPv6 sources without an IPv6 network have no table to go to.
  auto with_v6_sources = v4_spec();
  with_v6_sources.vxlan_sources_v6 = {v6("2001:db8::2")};
  CHECK(fw.update_sources(v4_spec(), with_v6_sources));
  CHECK_FALSE(fw.reconcile(with_v6_sources)->replaced);
  CHECK_FALSE(nft->run("list table ip6 weft"));
  sh("nft delete table ip6 other");
}

TEST_CASE("present() is true while a table of weft's is in the kernel", "[firewall][v6]") {
  auto nft = weft::make_libnftables();
  Firewall fw(*nft);
  sh("nft delete table ip weft 2>/dev/null || true; nft delete table ip6 weft 2>/dev/null || true");
  sh("nft add table ip6 other");  // someone else's table is not ours
  CHECK_FALSE(fw.present());
  REQUIRE(fw.reconcile(dual_spec()));
  CHECK(fw.present());
  sh("nft delete table ip weft");  // the IPv6 allow-list alone still drops unknown sources
  CHECK(fw.present());
  sh("nft delete table ip6 weft");
  CHECK_FALSE(fw.present());
  REQUIRE(fw.reconcile(v4_spec()));
  CHECK(fw.present());
  sh("nft delete table ip6 other");
}

TEST_CASE("a spec that masquerades IPv6 without this node's IPv6 subnet is refused and writes nothing",
          "[firewall][v6]") {
  auto nft = weft::make_libnftables();
  Firewall fw(*nft);
  REQUIRE(fw.reconcile(dual_spec()));
  auto bad = dual_spec();
  bad.subnet_v6.reset();
  bad.vxlan_sources.insert(Ipv4Addr::parse("192.0.2.40").value());
  auto refused = fw.reconcile(bad);
  REQUIRE_FALSE(refused);
  CHECK_THAT(refused.error(), Catch::Contains("fd00:10:244::/56"));
  CHECK_FALSE(fw.reconcile(dual_spec())->replaced);
}

TEST_CASE("VXLAN from a node off the allow-list is dropped, IPv4 and IPv6 alike, and from one on it accepted",
          "[firewall][v6]") {
  auto nft = weft::make_libnftables();
  Firewall fw(*nft);
  // This namespace's own addresses on lo: ours (1), a known node (2), unknown ones (98, 99).
  for (const char* a : {"192.0.2.1/32", "192.0.2.2/32", "192.0.2.99/32"})
    sh(std::string("ip addr replace ") + a + " dev lo");
  for (const char* a : {"2001:db8::1/128", "2001:db8::2/128", "2001:db8::98/128", "2001:db8::99/128"})
    sh(std::string("ip -6 addr replace ") + a + " dev lo nodad");
  REQUIRE(fw.reconcile(dual_spec()));  // sources: 192.0.2.2-3, 2001:db8::2-3

  CHECK(datagram_arrives("192.0.2.2", "192.0.2.1", 8472));
  CHECK_FALSE(datagram_arrives("192.0.2.99", "192.0.2.1", 8472));
  CHECK(datagram_arrives("2001:db8::2", "2001:db8::1", 8472));
  CHECK_FALSE(datagram_arrives("2001:db8::99", "2001:db8::1", 8472));
  CHECK(datagram_arrives("2001:db8::99", "2001:db8::1", 8473));  // only the VXLAN port is filtered

  auto joined = dual_spec();
  joined.vxlan_sources_v6.insert(v6("2001:db8::99"));
  REQUIRE(fw.update_sources(dual_spec(), joined));
  CHECK(datagram_arrives("2001:db8::99", "2001:db8::1", 8472));
  CHECK_FALSE(datagram_arrives("192.0.2.99", "192.0.2.1", 8472));

  CHECK_FALSE(datagram_arrives("2001:db8::98", "2001:db8::1", 8472));

  REQUIRE(fw.reconcile(v4_spec()));  // IPv4 only again: no IPv6 rules left behind, the IPv4 ones kept
  CHECK(datagram_arrives("2001:db8::98", "2001:db8::1", 8472));
  CHECK_FALSE(datagram_arrives("192.0.2.99", "192.0.2.1", 8472));
}

TEST_CASE("IPv6-only: only table ip6 weft is installed, as rendered, and a second reconcile writes nothing",
          "[firewall][v6only]") {
  auto nft = weft::make_libnftables();
  Firewall fw(*nft);
  sh("nft delete table ip weft 2>/dev/null || true; nft delete table ip6 weft 2>/dev/null || true");
  auto installed = fw.reconcile(v6_only_spec());
  REQUIRE(installed);
  CHECK(installed->replaced);
  CHECK(listed(*nft, "ip6 weft") == collapsed(weft::render_table_v6(v6_only_spec())));
  CHECK_FALSE(nft->run("list table ip weft"));
  CHECK(fw.present());
  CHECK_FALSE(fw.reconcile(v6_only_spec())->replaced);
  CHECK_FALSE(nft->run("list table ip weft"));
}

TEST_CASE("IPv6-only: a stale table ip weft from an IPv4 run is deleted in one transaction, table ip6 weft kept",
          "[firewall][v6only]") {
  auto nft = weft::make_libnftables();
  Firewall fw(*nft);
  sh("nft delete table ip weft 2>/dev/null || true; nft delete table ip6 weft 2>/dev/null || true");
  REQUIRE(fw.reconcile(dual_spec()));  // the earlier, dual-stack run
  sh("nft add table ip other && nft add chain ip other c");
  const std::string v6_before = output_of("nft -a list table ip6 weft");

  SECTION("the IPv6 rules unchanged: only the IPv4 table goes") {
    CHECK(transactions_during([&] { CHECK(fw.reconcile(v6_only_spec())->replaced); }) == 1);
    CHECK(output_of("nft -a list table ip6 weft") == v6_before);  // same handles: not rewritten
  }
  SECTION("the IPv6 rules changed too: both in the same transaction") {
    auto moved = v6_only_spec();
    moved.subnet_v6 = Ipv6Prefix::parse("fd00:10:244:9::/64").value();
    CHECK(transactions_during([&] { CHECK(fw.reconcile(moved)->replaced); }) == 1);
    CHECK(listed(*nft, "ip6 weft") == collapsed(weft::render_table_v6(moved)));
    REQUIRE(fw.reconcile(v6_only_spec()));
  }
  CHECK_FALSE(nft->run("list table ip weft"));
  CHECK(nft->run("list table ip other"));  // not weft's
  CHECK(listed(*nft, "ip6 weft") == collapsed(weft::render_table_v6(v6_only_spec())));
  CHECK_FALSE(fw.reconcile(v6_only_spec())->replaced);
  sh("nft delete table ip other");
}

TEST_CASE("IPv6-only: a table ip weft put back by hand is deleted again", "[firewall][v6only]") {
  auto nft = weft::make_libnftables();
  Firewall fw(*nft);
  REQUIRE(fw.reconcile(v6_only_spec()));
  REQUIRE(nft->run("add table ip weft\n" + weft::render_table(v4_spec())));
  CHECK(fw.present());
  CHECK(fw.reconcile(v6_only_spec())->replaced);
  CHECK_FALSE(nft->run("list table ip weft"));
  CHECK_FALSE(fw.reconcile(v6_only_spec())->replaced);
}

TEST_CASE("IPv6-only: update_sources moves the IPv6 allow-list and never looks for table ip weft",
          "[firewall][v6only]") {
  auto nft = weft::make_libnftables();
  Firewall fw(*nft);
  REQUIRE(fw.reconcile(v6_only_spec()));
  REQUIRE_FALSE(nft->run("list table ip weft"));
  auto next = v6_only_spec();
  next.vxlan_sources_v6.erase(v6("2001:db8::2"));
  next.vxlan_sources_v6.insert(v6("2001:db8::9"));
  REQUIRE(fw.update_sources(v6_only_spec(), next));
  auto listing = *nft->run("list set ip6 weft vxlan-sources");
  CHECK_THAT(listing, Catch::Contains("2001:db8::9") && Catch::Contains("2001:db8::3"));
  CHECK(listing.find("2001:db8::2") == std::string::npos);
  CHECK_FALSE(fw.reconcile(next)->replaced);  // the kernel holds exactly `next`

  // IPv4 sources in an IPv6-only spec have no table to go to: not an error, and no table ip weft.
  auto stray = next;
  stray.vxlan_sources.insert(Ipv4Addr::parse("192.0.2.9").value());
  CHECK(fw.update_sources(next, stray));
  CHECK_FALSE(nft->run("list table ip weft"));

  // A stale idea of the kernel fails, names only the IPv6 table, and changes nothing.
  auto stale = next;
  stale.vxlan_sources_v6.insert(v6("2001:db8::77"));
  auto failed = fw.update_sources(stale, v6_only_spec());
  REQUIRE_FALSE(failed);
  CHECK_THAT(failed.error(), Catch::Contains("table ip6 weft") && !Catch::Contains("table ip weft"));
  CHECK_FALSE(fw.reconcile(next)->replaced);
  REQUIRE(fw.reconcile(v6_only_spec()));
}

TEST_CASE("IPv6-only: VXLAN over IPv6 from a node off the allow-list is dropped, IPv4 no longer filtered",
          "[firewall][v6only]") {
  auto nft = weft::make_libnftables();
  Firewall fw(*nft);
  for (const char* a : {"192.0.2.1/32", "192.0.2.99/32"}) sh(std::string("ip addr replace ") + a + " dev lo");
  for (const char* a : {"2001:db8::1/128", "2001:db8::2/128", "2001:db8::99/128"})
    sh(std::string("ip -6 addr replace ") + a + " dev lo nodad");
  REQUIRE(fw.reconcile(dual_spec()));
  REQUIRE_FALSE(datagram_arrives("192.0.2.99", "192.0.2.1", 8472));  // the dual-stack run filtered IPv4
  REQUIRE(fw.reconcile(v6_only_spec()));
  CHECK(datagram_arrives("2001:db8::2", "2001:db8::1", 8472));
  CHECK_FALSE(datagram_arrives("2001:db8::99", "2001:db8::1", 8472));
  CHECK(datagram_arrives("192.0.2.99", "192.0.2.1", 8472));  // no IPv4 table left to drop it
}

TEST_CASE("a spec without any network is refused and writes nothing", "[firewall][v6only]") {
  auto nft = weft::make_libnftables();
  Firewall fw(*nft);
  REQUIRE(fw.reconcile(v6_only_spec()));
  auto none = v6_only_spec();
  none.network_v6.reset();
  none.subnet_v6.reset();
  auto refused = fw.reconcile(none);
  REQUIRE_FALSE(refused);
  CHECK_THAT(refused.error(), Catch::Contains("no network"));
  CHECK(nft->run("list table ip6 weft"));
  CHECK_FALSE(fw.reconcile(v6_only_spec())->replaced);
}
