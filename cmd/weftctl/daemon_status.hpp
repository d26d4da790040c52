#pragma once
// What weftd says about its datapath on GET /status: the VTEP it set up and should have, the
// underlay, the lease, the desired peers and the skipped ones (for weftctl peers and doctor).

#include <optional>
#include <string>
#include <vector>

#include "core/lease.hpp"
#include "core/result.hpp"

namespace weft::ctl {

// The VTEP as weftd wants it (and, once set up, its ifindex, MAC and MTU).
struct VtepStatus {
  std::string name;
  std::uint32_t vni = 0;
  std::uint16_t port = 0;
  Ipv4Addr local_ip;
  int mtu_wanted = 0;
  std::optional<int> backend_mtu;  // net-conf.json's Backend.MTU; unset: underlay MTU - 50
  bool learning = false;
  bool gbp = false;
  bool direct_routing = false;
  int ifindex = 0;  // 0: not set up yet
  std::string mac;
  int mtu = 0;
};

struct UnderlayStatus {
  std::string name;
  int ifindex = 0;
  Ipv4Addr address, public_ip;
  int mtu = 0;
};

// A peer weft did not program, and why; `by` is "node watch" or "backend".
struct SkippedNode {
  std::string node, reason, by;
};

struct DaemonStatus {
  bool ready = false;
  std::string subnet_file;
  std::optional<Lease> lease;
  Ipv4Prefix network;
  int env_mtu = 0;
  bool ipmasq = false;
  VtepStatus vtep;
  UnderlayStatus underlay;
  std::vector<Peer> peers;  // desired: programmed in the kernel
  std::vector<SkippedNode> skipped;
  std::string kubeconfig_file, api_url;
};

// Parses weftd's /status; an error names what is missing (an older weftd lacks the datapath).
Result<DaemonStatus> parse_datapath_status(const std::string& body);

}  // namespace weft::ctl
