#pragma once
// weftctl status: what the local weftd says about itself (/status, /readyz, /metrics; the
// subnet file only when weftd does not answer /status),
// rendered for a person. The HTTP client is only for weftd's own loopback health endpoint.

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/result.hpp"
#include "core/subnet_env.hpp"

namespace weft::ctl {

struct HttpAnswer {
  int status = 0;
  std::string body;
};

// One GET over a fresh TCP connection to an IPv4 address (HTTP/1.0 style: read to EOF).
Result<HttpAnswer> http_get(const std::string& ip, int port, const std::string& path, int timeout_ms);

// Prometheus text format -> name -> value (lines without labels only; comments skipped).
std::map<std::string, double> parse_metrics(const std::string& text);

// The weft_kube_node_skipped{node="...",reason="..."} lines -> (node, reason), in order.
std::vector<std::pair<std::string, std::string>> parse_skipped(const std::string& text);
// The lease as weftd reports it on GET /status.
struct DaemonLease {
  bool ready = false;
  std::string subnet_file;
  bool leased = false;     // false: no lease yet (the fields below are empty)
  bool ipv6_only = false;  // weftd has no IPv4 half: subnet, network, public_ip, vtep_mac stay empty
  std::string subnet, network, public_ip, vtep_mac;
  int mtu = 0;
  bool ipmasq = false;
  // Dual stack, IPv6-only (empty otherwise): the IPv6 half; no public_ip_v6 when IPv6 VXLAN rides the IPv4 underlay.
  std::string subnet_v6, network_v6, public_ip_v6, vtep_mac_v6;
  // Dual stack, IPv6-only: weft-v6.<VNI> as weftd wants it.
  struct Vtep6 {
    std::string name, local_ip;
    int vni = 0, mtu = 0;
  };
  std::optional<Vtep6> vtep6;
};
// Parses /status's JSON; an error for anything else (an older weftd answers 404).
Result<DaemonLease> parse_daemon_status(const std::string& body);

struct NodeStatus {
  std::optional<DaemonLease> daemon;         // from weftd itself, when it answers /status
  Result<SubnetEnv> env = fail("not read");  // else from the subnet file
  std::optional<HttpAnswer> readyz;          // empty when weftd could not be reached
  std::map<std::string, double> metrics;
  std::vector<std::pair<std::string, std::string>> skipped;  // nodes skipped, with the reason
  std::string reach_error;                                   // why weftd could not be reached
};

std::string render(const NodeStatus& s);
// 0 ready, 1 running but not ready, 2 not reachable.
int exit_code(const NodeStatus& s);

}  // namespace weft::ctl
