#pragma once
// NetConfig: the cluster network settings from net-conf.json (flannel's keys and defaults).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/ip.hpp"
#include "core/result.hpp"

namespace weft {

struct BackendConfig {
  std::string type = "vxlan";
  std::uint32_t vni = 1;
  std::uint16_t port = 8472;
  std::optional<int> mtu;  // the outer packets' MTU (flannel's); VTEP = it - 50 (IPv4) / - 70 (IPv6)
  bool gbp = false;
  bool learning = false;
  bool direct_routing = false;
  bool operator==(const BackendConfig&) const = default;
};

// One address family's share of the config: the network and the per-node subnet range.
template <class Addr>
struct FamilyConfig {
  Prefix<Addr> network;
  int subnet_len = 0;
  Addr subnet_min;  // first subnet's address allowed for leases
  Addr subnet_max;  // last subnet's address allowed for leases
  bool operator==(const FamilyConfig&) const = default;
};

// Where a node's subnet comes from ("SubnetSource"; README, "Subnet ownership"):
//  PodCidr: spec.podCIDR only; weftd waits until kube-controller-manager assigns one.
//  Lease:   the node-annotation lease (no controller assigns podCIDRs).
//  Auto:    podCIDR when the node or any Node has one; a lease in a cluster of leases; in an
//           empty cluster, a lease only after a short wait for a podCIDR.
enum class SubnetSource { Auto, PodCidr, Lease };
const char* to_string(SubnetSource s);

struct NetConfig {
  std::optional<FamilyConfig<Ipv4Addr>> ipv4;  // set when EnableIPv4
  SubnetSource subnet_source = SubnetSource::Auto;
  std::optional<FamilyConfig<Ipv6Addr>> ipv6;  // set when EnableIPv6
  BackendConfig backend;
  // "FlannelCompat": publish and read flannel's Node annotations (flannel.alpha.coreos.com/*),
  // subnets from spec.podCIDR(s) only, so weft and flannel nodes route to each other.
  bool flannel_compat = false;
  std::vector<std::string> warnings;  // unknown keys and the like: logged, not fatal

  // Parses and validates; every error names the key, the value and what is allowed.
  static Result<NetConfig> parse(std::string_view json_text);
  static Result<NetConfig> load(const std::string& path);
  // The effective configuration as net-conf.json, defaults filled in.
  std::string to_json() const;
};

}  // namespace weft
