// Programs N peers (cluster 10.0.0.0/8, a /24 each, public IPs in 198.18.0.0/15) into a
// fresh namespace through VxlanBackend, and the identical entries with `ip -batch` +
// `bridge -batch` into another fresh namespace, in the same run; prints a Markdown table.
// Usage: bench_netlink [N...]   (default: 1000 5000; each measured 3 times, median shown)
// With WEFT_BENCH_OUT set, appends its figures as JSON lines (test/bench/README.md).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "backend/netlink/netlink_impl.hpp"
#include "backend/vxlan/vxlan_backend.hpp"
#include "test/support/netns.hpp"

using namespace weft;
using weft::test::Netns;
using Seconds = std::chrono::duration<double>;

namespace {

constexpr int kRounds = 3;
const Ipv4Prefix kNetwork = Ipv4Prefix::parse("10.0.0.0/8").value();

struct Timing {
  double total = 0;   // all entries
  double routes = 0;  // first route to last route
  double resync = 0;  // a second reconcile with nothing to do
};

Peer nth_peer(std::uint32_t i) {
  Peer p;
  p.name = "node" + std::to_string(i);
  p.subnet = *kNetwork.nth_subnet(24, i);
  p.public_ip = Ipv4Addr(Ipv4Addr::parse("198.18.0.0").value().to_uint() + i + 1);
  p.vtep_mac = Mac({0x0e, 0, 0, static_cast<std::uint8_t>(i >> 16U), static_cast<std::uint8_t>(i >> 8U),
                    static_cast<std::uint8_t>(i)});
  return p;
}

PeerSet peers(std::uint32_t n) {
  PeerSet set;
  for (std::uint32_t i = 1; i <= n; ++i) {
    Peer p = nth_peer(i);
    set.emplace(p.name, p);
  }
  return set;
}

void must(bool ok, const std::string& what) {
  if (!ok) {
    std::fprintf(stderr, "bench_netlink: %s\n", what.c_str());
    std::exit(1);
  }
}

void underlay(const Netns& ns) {
  must(ns.ip("link add ul0 type veth peer name ul1") == 0 && ns.ip("addr add 192.0.2.1/24 dev ul0") == 0 &&
           ns.ip("link set ul0 up") == 0 && ns.ip("link set ul1 up") == 0,
       "underlay set-up failed in " + ns.name());
}

std::size_t count_lines(const Netns& ns, const std::string& cmd) {
  return static_cast<std::size_t>(std::stoul(ns.output(cmd + " | wc -l")));
}

void check_programmed(const Netns& ns, std::uint32_t n) {
  must(count_lines(ns, "ip route show dev weft.1") == n, "wrong route count in " + ns.name());
  must(count_lines(ns, "ip neigh show dev weft.1 nud permanent") == n, "wrong neighbor count in " + ns.name());
  must(count_lines(ns, "bridge fdb show dev weft.1") == n, "wrong FDB count in " + ns.name());
}

Timing run_weft(std::uint32_t n, bool monitor) {
  Netns ns('n');
  underlay(ns);
  auto nl = NetlinkImpl::open(ns.path());
  must(static_cast<bool>(nl), nl ? "" : nl.error());
  VxlanBackend backend(**nl, kNetwork, false);
  VtepSpec spec;
  spec.local_ip = Ipv4Addr::parse("192.0.2.1").value();
  spec.underlay_ifindex = (*(*nl)->get_link("ul0"))->ifindex;
  auto vtep = backend.ensure_device(spec);
  must(static_cast<bool>(vtep), vtep ? "" : vtep.error());
  must(static_cast<bool>(backend.set_lease({*kNetwork.nth_subnet(24, 0), spec.local_ip, vtep->mac, {}, {}, {}})),
       "set_lease");
  if (monitor) must(static_cast<bool>(backend.watch([](const KernelChange&) {})), "watch");
  const PeerSet set = peers(n);
  auto report = backend.reconcile(set);
  must(report.ok() && report.entries_set == static_cast<int>(3 * n), "reconcile failed");
  auto again = backend.reconcile(set);
  must(again.ok() && again.writes == 0, "a second reconcile wrote something");
  backend.unwatch();
  check_programmed(ns, n);
  return {Seconds(report.took).count(), Seconds(report.routes_took).count(), Seconds(again.took).count()};
}

double timed(const std::string& cmd) {
  auto start = std::chrono::steady_clock::now();
  must(weft::test::sh(cmd) == 0, "failed: " + cmd);
  return Seconds(std::chrono::steady_clock::now() - start).count();
}

Timing run_iproute(std::uint32_t n) {
  Netns ns('n');
  underlay(ns);
  must(ns.ip("link add weft.1 type vxlan id 1 local 192.0.2.1 dev ul0 dstport 8472 nolearning") == 0 &&
           ns.ip("link set weft.1 up") == 0 && ns.ip("addr add 10.0.0.0/32 dev weft.1") == 0,
       "VTEP set-up failed");
  const std::string dir = "/tmp/" + ns.name();
  must(weft::test::sh("mkdir -p " + dir) == 0, "mkdir");
  {
    std::ofstream neigh(dir + "/neigh"), fdb(dir + "/fdb"), routes(dir + "/routes");
    for (std::uint32_t i = 1; i <= n; ++i) {
      Peer p = nth_peer(i);
      const std::string gw = p.subnet.address().str();
      neigh << "neigh replace " << gw << " lladdr " << p.vtep_mac.str() << " dev weft.1 nud permanent\n";
      fdb << "fdb replace " << p.vtep_mac.str() << " dev weft.1 dst " << p.public_ip.str() << " self permanent\n";
      routes << "route replace " << p.subnet.str() << " via " << gw << " dev weft.1 onlink\n";
    }
  }
  Timing t;
  t.total += timed("ip -n " + ns.name() + " -batch " + dir + "/neigh");
  t.total += timed("bridge -n " + ns.name() + " -batch " + dir + "/fdb");
  t.routes = timed("ip -n " + ns.name() + " -batch " + dir + "/routes");
  t.total += t.routes;
  weft::test::sh("rm -rf " + dir);
  check_programmed(ns, n);
  return t;
}

template <class F>
Timing median(F run) {
  std::vector<Timing> all;
  for (int i = 0; i < kRounds; ++i) all.push_back(run());
  auto mid = [&](auto field) {
    std::vector<double> v;
    for (const auto& t : all) v.push_back(t.*field);
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  return {mid(&Timing::total), mid(&Timing::routes), mid(&Timing::resync)};
}

// One figure as a JSON line appended to $WEFT_BENCH_OUT (no-op when unset); the texts
// carry no characters that need JSON escaping.
void emit(const std::string& id, const std::string& figure, std::uint32_t n, double value, const std::string& detail,
          const std::string& target, bool met, const std::string& flannel) {
  const char* path = std::getenv("WEFT_BENCH_OUT");
  if (path == nullptr || *path == '\0') return;
  std::ofstream out(path, std::ios::app);
  char number[32];
  std::snprintf(number, sizeof number, "%.2f", value);
  out << "{\"id\": \"" << id << "\", \"figure\": \"" << figure << "\", \"n\": " << n << ", \"value\": " << number
      << ", \"unit\": \"x\", \"detail\": \"" << detail << "\", \"target\": \"" << target
      << "\", \"met\": " << (met ? "true" : "false") << ", \"flannel\": \"" << flannel << "\"}\n";
  if (!out) std::fprintf(stderr, "bench_netlink: cannot append to %s\n", path);
}

std::string seconds_vs(double weft, double ip) {
  char text[96];
  std::snprintf(text, sizeof text, "%.3f s vs %.3f s, median of %d", weft, ip, kRounds);
  return text;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::uint32_t> sizes;
  for (int i = 1; i < argc; ++i) sizes.push_back(static_cast<std::uint32_t>(std::stoul(argv[i])));
  if (sizes.empty()) sizes = {1000, 5000};
  std::printf("VXLAN peer programming, %u cores, median of %d runs, fresh namespaces\n\n",
              std::thread::hardware_concurrency(), kRounds);
  std::printf(
      "| peers | entries | weft reconcile | weft, monitor on | ip+bridge -batch | ratio | weft routes | "
      "ip -batch routes | routes ratio | weft resync, no changes |\n");
  std::printf("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
  for (std::uint32_t n : sizes) {
    Timing weft = median([&] { return run_weft(n, false); });
    Timing weft_monitored = median([&] { return run_weft(n, true); });
    Timing ip = median([&] { return run_iproute(n); });
    std::printf("| %u | %u | %.3f s | %.3f s | %.3f s | %.2fx | %.3f s | %.3f s | %.2fx | %.3f s |\n", n, 3 * n,
                weft.total, weft_monitored.total, ip.total, weft_monitored.total / ip.total, weft.routes, ip.routes,
                weft.routes / ip.routes, weft.resync);
    const std::string peers_text = std::to_string(n) + " peers: ";
    const double entries_ratio = weft_monitored.total / ip.total;
    emit("netlink_entries_ratio_" + std::to_string(n),
         peers_text + "VxlanBackend reconcile, all route/neigh/FDB entries (monitor on) / ip+bridge -batch", n,
         entries_ratio, seconds_vs(weft_monitored.total, ip.total), "<= 1.5x", entries_ratio <= 1.5,
         "6.6x (whole daemon)");
    const double routes_ratio = weft_monitored.routes / ip.routes;
    emit("netlink_routes_ratio_" + std::to_string(n),
         peers_text + "first -> last route, VxlanBackend (monitor on) / ip -batch routes", n, routes_ratio,
         seconds_vs(weft_monitored.routes, ip.routes), "<= 1.2x", routes_ratio <= 1.2, "3.5x");
  }
  std::printf("\nratio = weft with its monitor on (as in weftd) / ip+bridge -batch; target at 5,000 peers: <= 1.2x\n");
  return 0;
}
