#pragma once
// SubnetEnv: what weftd tells the CNI plugin through subnet.env (WEFT_* shell-style keys).
// Each family is optional (IPv4-only, dual stack, IPv6-only), but a file has at least one.

#include <optional>
#include <string>
#include <string_view>

#include "core/ip.hpp"
#include "core/result.hpp"

namespace weft {

struct SubnetEnv {
  std::optional<Ipv4Prefix> network;     // WEFT_NETWORK: the cluster network; unset: IPv6-only
  std::optional<Ipv4Prefix> subnet;      // WEFT_SUBNET: this node's subnet, written as gateway/len (10.244.7.1/24)
  int mtu = 1450;                        // WEFT_MTU: the VTEP's MTU, for pod interfaces
  bool ipmasq = false;                   // WEFT_IPMASQ: weftd masquerades, so the bridge plugin must not
  std::optional<Ipv6Prefix> network_v6;  // WEFT_IPV6_NETWORK
  std::optional<Ipv6Prefix> subnet_v6;   // WEFT_IPV6_SUBNET
  bool operator==(const SubnetEnv&) const = default;

  std::string format() const;
  static Result<SubnetEnv> parse(std::string_view text);
  static Result<SubnetEnv> load(const std::string& path);
  // temp file in the same directory + fsync + rename: readers see the old or the new file.
  Status write_atomically(const std::string& path) const;
};

}  // namespace weft
