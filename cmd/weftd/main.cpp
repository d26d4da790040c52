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
  if (net.ipv6 && net.backend.direct_routing)
    w.emplace_back("DirectRouting: IPv6 peers are always reached through weft-v6.<VNI>, never routed directly");
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
