#pragma once
// DaemonOptions: weftd's command line (flannel's flag names; each also WEFTD_<FLAG> in the environment).

#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace weft {

struct DaemonOptions {
  bool kube_subnet_mgr = true;
  std::string kubeconfig_file;
  std::string kube_api_url;
  std::string kube_annotation_prefix = "weft.io";
  std::string node_name;
  std::vector<std::string> iface;
  std::vector<std::string> iface_regex;
  std::string iface_can_reach;
  std::string public_ip;
  std::string public_ipv6;  // dual stack: the IPv6 underlay address peers send IPv6 VXLAN to
  bool ip_masq = false;
  std::string subnet_file = "/run/weft/subnet.env";
  std::string net_config_path = "/etc/weft/net-conf.json";
  std::string healthz_ip = "0.0.0.0";
  int healthz_port = 0;             // 0: no health endpoint
  int liveness_stall_seconds = 60;  // /healthz fails when the loop has had work this long without progress; 0: off
  std::string log_level = "info";
  int resync_seconds = 300;  // periodic full reconcile, a safety net behind notifications
  bool insecure_skip_tls_verify = false;
  // Least silence (s) before a watch's connection is presumed dead (kube ClientOptions::watch_silence_min).
  double watch_silence_min_s = 180;
  std::string check_config;  // --check-config PATH: validate, print, exit
};

// Registers every weftd flag on `app`, bound to `opts`.
void add_daemon_flags(CLI::App& app, DaemonOptions& opts);

}  // namespace weft
