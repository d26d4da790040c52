#pragma once
// What weftd says about its datapath on GET /status: the VTEP it set up and should have, the
// underlay, the lease, the desired peers and the skipped ones (for weftctl peers and doctor).
// Dual stack adds the IPv6 VTEP weft-v6.<VNI>, the IPv6 network and the IPv6 halves of the
// lease and the peers; a v4-only weftd's answer has none of them. An IPv6-only weftd's answer
// has no IPv4 half at all: no "vtep", "network", nor IPv4 keys in the lease and the peers.

#include <optional>
#include <string>
#include <vector>

#include "backend/netlink/types.hpp"
#include "core/lease.hpp"
#include "core/result.hpp"

namespace weft::ctl {

// A VTEP as weftd wants it (and, once set up, its ifindex, MAC and MTU): weft.<VNI>, or
// weft-v6.<VNI> whose local address is IPv6 over an IPv6 underlay, else the IPv4 one.
struct VtepStatus {
  std::string name;
  std::uint32_t vni = 0;
  std::uint16_t port = 0;
  IpAddr local_ip;
  int mtu_wanted = 0;
  std::optional<int> backend_mtu;  // net-conf.json's Backend.MTU; unset: underlay MTU - 50 (- 70 over IPv6)
  bool learning = false;
  bool gbp = false;
  bool direct_routing = false;  // DirectRouting (on weft-v6: over an IPv6 underlay)
  int ifindex = 0;              // 0: not set up yet
  std::string mac;
  int mtu = 0;
};

struct UnderlayStatus {
  std::string name;
  int ifindex = 0;
  std::optional<Ipv4Addr> address, public_ip;  // unset: an IPv6-only weftd over an IPv6 underlay
  int mtu = 0;
  std::optional<Ipv6Addr> address_v6, public_ip_v6;  // dual stack over an IPv6 underlay
};

// A peer weft did not program, and why; `by` is "node watch" or "backend".
struct SkippedNode {
  std::string node, reason, by;
};

// The IPv4 family is there when weftd reports its VTEP weft.<VNI>, the IPv6 one with weft-v6.<VNI>.
// IPv6-only: the lease's and the peers' IPv4 fields are left empty; read them only if has_ipv4().
struct DaemonStatus {
  bool ready = false;
  std::string subnet_file;
  std::optional<Lease> lease;            // dual stack and IPv6-only: with subnet_v6, vtep_mac_v6 (and public_ip_v6)
  std::optional<Ipv4Prefix> network;     // unset: IPv6-only
  std::optional<Ipv6Prefix> network_v6;  // dual stack, IPv6-only
  int env_mtu = 0;
  bool ipmasq = false;
  std::optional<VtepStatus> vtep;   // weft.<VNI>; unset: IPv6-only
  std::optional<VtepStatus> vtep6;  // dual stack, IPv6-only: weft-v6.<VNI>
  UnderlayStatus underlay;
  std::vector<Peer> peers;  // desired: programmed in the kernel (the IPv6 half when it has one)
  std::vector<SkippedNode> skipped;
  std::string kubeconfig_file, api_url;
  bool has_ipv4() const { return vtep.has_value(); }
  bool has_ipv6() const { return vtep6.has_value(); }
  bool dual_stack() const { return has_ipv4() && has_ipv6(); }
  bool ipv6_only() const { return !has_ipv4() && has_ipv6(); }
};

// Parses weftd's /status (untrusted: anything missing or malformed is an error naming it, never
// a crash); an older weftd lacks the datapath.
Result<DaemonStatus> parse_datapath_status(const std::string& body);

}  // namespace weft::ctl
