#include "overlay/options.hpp"

#include <CLI/CLI.hpp>

namespace weft {
namespace {

std::string env_name(const std::string& flag) {
  std::string out = "WEFTD_";
  for (char c : flag) out += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

template <class T>
CLI::Option* add(CLI::App& app, const std::string& flag, T& value, const std::string& help) {
  return app.add_option("--" + flag, value, help)->envname(env_name(flag))->capture_default_str();
}

CLI::Option* add_flag(CLI::App& app, const std::string& flag, bool& value, const std::string& help) {
  return app.add_flag("--" + flag, value, help)->envname(env_name(flag))->capture_default_str();
}

}  // namespace

void add_daemon_flags(CLI::App& app, DaemonOptions& o) {
  add_flag(app, "kube-subnet-mgr", o.kube_subnet_mgr,
           "lease subnets through the Kubernetes API (the only mode weft has; =false is refused)");
  add(app, "kubeconfig-file", o.kubeconfig_file, "kubeconfig to use; empty: in-cluster service account");
  add(app, "kube-api-url", o.kube_api_url, "Kubernetes API server URL (overrides the kubeconfig's server)");
  add(app, "kube-annotation-prefix", o.kube_annotation_prefix, "prefix of the Node annotations weft writes");
  add(app, "node-name", o.node_name, "this node's name (default: $NODE_NAME)");
  add(app, "iface", o.iface, "interface name or IP for the underlay (repeatable; first match wins)")->delimiter(',');
  add(app, "iface-regex", o.iface_regex, "regex matched against interface names and IPs (repeatable)")->delimiter(',');
  add(app, "iface-can-reach", o.iface_can_reach, "use the interface that routes to this IP");
  add(app, "public-ip", o.public_ip, "IP peers send VXLAN to (default: the interface's address)");
  add(app, "public-ipv6", o.public_ipv6,
      "dual stack: IPv6 address peers send IPv6 VXLAN to (default: the interface's global IPv6 address; "
      "none: IPv6 pods ride the IPv4 underlay)");
  add_flag(app, "ip-masq", o.ip_masq, "masquerade pod traffic that leaves the cluster network");
  add(app, "subnet-file", o.subnet_file, "where to write subnet.env for the CNI plugin");
  add(app, "net-config-path", o.net_config_path, "net-conf.json path");
  add(app, "healthz-ip", o.healthz_ip, "address for /healthz, /readyz and /metrics");
  add(app, "healthz-port", o.healthz_port, "port for /healthz, /readyz and /metrics (0: off)")
      ->check(CLI::Range(0, 65535));
  add(app, "liveness-stall-seconds", o.liveness_stall_seconds,
      "/healthz answers 503 when the control loop has had work queued this many seconds without progress "
      "(a wedged weftd, for the liveness probe to restart); 0: /healthz always answers ok")
      ->check(CLI::Range(0, 86400));
  add(app, "log-level", o.log_level, "trace, debug, info, warn, error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  add(app, "resync-interval", o.resync_seconds, "seconds between full reconciles of the kernel state")
      ->check(CLI::Range(1, 86400));
  add_flag(app, "insecure-skip-tls-verify", o.insecure_skip_tls_verify,
           "do not verify the API server's certificate (unsafe; logged at start)");
  add(app, "watch-silence-min", o.watch_silence_min_s,
      "seconds a Node watch may stay silent, at least, before its connection is presumed dead and it is "
      "resumed (more when the server's bookmarks come slower); the default covers a real API server's "
      "bookmark every ~60 s. Lower it only for a test API server with fast bookmarks")
      ->check(CLI::Range(0.1, 86400.0));
  app.add_option("--check-config", o.check_config, "validate a net-conf.json, print the effective config, exit");
}

}  // namespace weft
