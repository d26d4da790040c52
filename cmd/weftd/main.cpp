// weftd: the per-node daemon. Parses flags, validates the config, wires the parts, runs the agent.
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "backend/netlink/netlink_impl.hpp"
#include "backend/vxlan/vxlan_backend.hpp"
#include "core/log.hpp"
#include "core/net_config.hpp"
#include "overlay/agent.hpp"
#include "overlay/external_iface.hpp"
#include "overlay/nftables/firewall.hpp"
#include "overlay/options.hpp"
#include "subnet/annotations.hpp"
#include "subnet/kube/kube_subnet_manager.hpp"

namespace {

// What this build refuses or ignores in a valid net-conf.json. --check-config (the systemd
// unit's ExecStartPre) and the daemon ask the same function, so a config that passes the check
// never makes weftd exit at start (which would loop the unit).
std::optional<std::string> unsupported(const weft::NetConfig& net, const std::string& path) {
  if (!net.ipv4 && !net.ipv6) return path + ": neither EnableIPv4 nor EnableIPv6: enable at least one family";
  return std::nullopt;
}

std::vector<std::string> build_warnings(const weft::NetConfig& net) {
  std::vector<std::string> w = net.warnings;
  if (net.ipv6 && net.ipv4 && net.backend.direct_routing)
    w.emplace_back(
        "DirectRouting: IPv6 peers are routed directly only over an IPv6 underlay (--public-ipv6 or a "
        "global IPv6 address on the interface); over the IPv4 one they go through weft-v6.<VNI>");
  return w;
}

// The underlay: the IPv4 interface (and its IPv6 underlay, when the node has one) in a cluster
// with IPv4; an IPv6-only cluster chooses by IPv6 alone, and needs an IPv6 underlay.
struct Underlay {
  weft::ExternalInterface ext;
  std::optional<weft::Ipv6Underlay> v6;
};

weft::Result<Underlay> find_underlay(const weft::NetConfig& net, const weft::DaemonOptions& opts) {
  weft::IfaceChoice choice{opts.iface, opts.iface_regex, opts.iface_can_reach, opts.public_ip};
  if (!net.ipv4) {
    auto found = weft::find_external_interface_v6(choice, opts.public_ipv6);
    if (!found) return found.take_error();
    return Underlay{found->ext, found->underlay};
  }
  auto ext = weft::find_external_interface(choice);
  if (!ext) return ext.take_error();
  Underlay u{*ext, std::nullopt};
  if (!net.ipv6) {
    if (!opts.public_ipv6.empty())
      spdlog::warn("--public-ipv6 {} is unused: net-conf.json does not enable IPv6", opts.public_ipv6);
    return u;
  }
  auto v6 = weft::find_ipv6_underlay(*ext, opts.public_ipv6);
  if (!v6) return v6.take_error();
  u.v6 = *v6;
  if (net.flannel_compat && !u.v6) {
    spdlog::warn(
        "FlannelCompat with IPv6 over the IPv4 underlay ({} on VNI {}): flannel sends IPv6 VXLAN over IPv6 "
        "only, so flannel nodes skip this node's IPv6 half; give {} a global IPv6 address or --public-ipv6",
        "flannel-v6", weft::vni_v6(net.backend.vni, false), ext->name);
  }
  return u;
}

int check_config(const std::string& path) {
  auto cfg = weft::NetConfig::load(path);
  if (!cfg) {
    std::cerr << "weftd: invalid config: " << cfg.error() << "\n";
    return 1;
  }
  if (auto why = unsupported(*cfg, path)) {
    std::cerr << "weftd: unsupported config: " << *why << "\n";
    return 1;
  }
  for (const auto& w : build_warnings(*cfg)) std::cerr << "weftd: warning: " << w << "\n";
  std::cout << cfg->to_json() << "\n";
  return 0;
}

// weftd's heap is a few MiB of peers and a burst of JSON per list. One arena instead of one
// per thread, and large buffers (list bodies) mmapped and unmapped on free (a fixed threshold,
// not glibc's sliding one), keep the settled RSS near the live data: at 5,000 peers 6.5 MiB of
// anonymous memory instead of 10-12 (test/bench/daemon). Set before any thread starts.
void tune_malloc() {
  ::mallopt(M_ARENA_MAX, 1);
  ::mallopt(M_MMAP_THRESHOLD, 128 * 1024);
}

// Threads that only turn outside happenings into Wakeup events.
class EventSources {
 public:
  explicit EventSources(weft::Wakeup& wakeup) : wakeup_(wakeup), stop_fd_(::eventfd(0, EFD_CLOEXEC)) {
    signals_ = std::thread([this] {
      pthread_setname_np(pthread_self(), "weft-signals");
      wait_for_signal();
    });
    if (monitor_.ok()) {
      nftables_ = std::thread([this] {
        pthread_setname_np(pthread_self(), "weft-nftables");
        watch_nftables();
      });
    }
  }
  ~EventSources() {
    std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(stop_fd_, &one, sizeof one);
    ::kill(::getpid(), SIGUSR1);  // wakes sigwait
    signals_.join();
    if (nftables_.joinable()) nftables_.join();
    ::close(stop_fd_);
  }
  EventSources(const EventSources&) = delete;
  EventSources& operator=(const EventSources&) = delete;

  static void block_signals() {
    sigset_t set = handled_signals();
    pthread_sigmask(SIG_BLOCK, &set, nullptr);  // before any thread starts: they inherit it
  }

 private:
  // SIGUSR1 only wakes sigwait when the sources are torn down.
  static sigset_t handled_signals() {
    sigset_t set;
    sigemptyset(&set);
    for (int s : {SIGTERM, SIGINT, SIGUSR1}) sigaddset(&set, s);
    return set;
  }

  void wait_for_signal() {
    sigset_t set = handled_signals();
    int sig = 0;
    while (sigwait(&set, &sig) == 0) {
      if (sig == SIGTERM || sig == SIGINT) {
        spdlog::info("received {}", sig == SIGTERM ? "SIGTERM" : "SIGINT");
        wakeup_.post(weft::Wakeup::kStop);
        return;
      }
      if (stopping()) return;
    }
  }

  void watch_nftables() {
    for (;;) {
      std::array<pollfd, 2> fds{{{monitor_.fd(), POLLIN, 0}, {stop_fd_, POLLIN, 0}}};
      if (::poll(fds.data(), fds.size(), -1) < 0 && errno != EINTR) return;
      if (fds[1].revents) return;
      if (fds[0].revents && monitor_.drain()) wakeup_.post(weft::Wakeup::kFirewall);
    }
  }

  bool stopping() const {
    pollfd p{stop_fd_, POLLIN, 0};
    return ::poll(&p, 1, 0) == 1;
  }

  weft::Wakeup& wakeup_;
  int stop_fd_;
  weft::NftablesMonitor monitor_;
  std::thread signals_;
  std::thread nftables_;
};

int run_daemon(weft::DaemonOptions opts) {
  if (!opts.kube_subnet_mgr) {
    spdlog::error("--kube-subnet-mgr=false: weft has no other subnet manager (no etcd mode); remove the flag");
    return 2;
  }
  auto net = weft::NetConfig::load(opts.net_config_path);
  if (!net) {
    spdlog::error("{}", net.error());
    return 2;
  }
  if (auto why = unsupported(*net, opts.net_config_path)) {
    spdlog::error("{}", *why);
    return 2;
  }
  for (const auto& w : build_warnings(*net)) spdlog::warn("{}", w);
  auto underlay = find_underlay(*net, opts);
  if (!underlay) {
    spdlog::error("{}", underlay.error());
    return 2;
  }

  auto kube = weft::kube::resolve_kube_config(opts.kubeconfig_file, opts.kube_api_url, opts.insecure_skip_tls_verify);
  if (!kube) {
    spdlog::error("{}", kube.error());
    return 2;
  }
  weft::kube::KubeSubnetConfig sub_cfg;
  sub_cfg.node_name = opts.node_name;
  sub_cfg.annotation_prefix = opts.kube_annotation_prefix;
  if (net->flannel_compat && opts.kube_annotation_prefix != weft::DaemonOptions{}.kube_annotation_prefix) {
    spdlog::warn("--kube-annotation-prefix {} is unused: FlannelCompat reads and writes flannel's {}/ annotations",
                 opts.kube_annotation_prefix, weft::AnnotationKeys::kFlannelPrefix);
  }
  sub_cfg.net = *net;
  weft::kube::ClientOptions client_opts;
  client_opts.watch_silence_min = std::chrono::milliseconds(static_cast<long long>(opts.watch_silence_min_s * 1000));
  auto subnets = weft::kube::make_kube_subnet_manager(*kube, client_opts, sub_cfg);
  if (!subnets) {
    spdlog::error("{}", subnets.error());
    return 2;
  }
  auto netlink = weft::NetlinkImpl::open();
  if (!netlink) {
    spdlog::error("cannot open netlink: {}", netlink.error());
    return 1;
  }
  std::optional<weft::Ipv4Prefix> network;
  if (net->ipv4) network = net->ipv4->network;
  std::optional<weft::Ipv6Prefix> network_v6;
  if (net->ipv6) network_v6 = net->ipv6->network;
  weft::VxlanBackend backend(**netlink, network, network_v6, net->backend.direct_routing);
  auto nft = weft::make_libnftables();
  weft::Firewall firewall(*nft);

  weft::Agent agent(weft::AgentSettings{opts, *net, underlay->ext, underlay->v6}, **subnets, backend, firewall);
  weft::Wakeup wakeup;
  EventSources sources(wakeup);
  std::unique_ptr<weft::HealthServer> health;
  if (opts.healthz_port > 0) {
    auto server = weft::HealthServer::start(opts.healthz_ip, opts.healthz_port,
                                            [&agent](const std::string& path) { return agent.health(path); });
    if (!server) {
      spdlog::error("{}", server.error());
      return 2;
    }
    health = std::move(*server);
  }
  return agent.run(wakeup);
}

}  // namespace

int main(int argc, char** argv) {
  weft::DaemonOptions opts;
  CLI::App app{"weftd: VXLAN overlay network daemon for Kubernetes"};
  app.set_version_flag("--version", std::string("weftd ") + WEFT_VERSION);
  weft::add_daemon_flags(app, opts);
  CLI11_PARSE(app, argc, argv);

  if (!opts.check_config.empty()) return check_config(opts.check_config);
  if (opts.node_name.empty()) {
    if (const char* env = std::getenv("NODE_NAME")) opts.node_name = env;
  }
  if (auto st = weft::log::init(opts.log_level, opts.node_name); !st) {
    std::cerr << "weftd: " << st.error() << "\n";
    return 2;
  }
  if (opts.node_name.empty()) {
    spdlog::error("no node name: set --node-name or NODE_NAME (in a DaemonSet, from spec.nodeName)");
    return 2;
  }
  EventSources::block_signals();
  tune_malloc();
  return run_daemon(std::move(opts));
}
