#pragma once
// Choosing the underlay ("external") interface and the public IP peers send VXLAN to.

#include <optional>
#include <string>
#include <vector>

#include "core/ip.hpp"
#include "core/result.hpp"

namespace weft {

// One IPv4 address on one interface, as the system reports it.
struct InterfaceAddr {
  std::string name;
  int index = 0;
  Ipv4Addr addr;
  int prefix_len = 32;
  int mtu = 1500;
  bool up = false;
  bool loopback = false;
};

// How the operator asked for the interface (flannel's flags).
struct IfaceChoice {
  std::vector<std::string> iface;        // names or IPs, first match wins
  std::vector<std::string> iface_regex;  // matched against IPs, then names
  std::string can_reach;                 // the interface that routes to this IP
  std::string public_ip;                 // overrides the interface's address for peers
};

struct ExternalInterface {
  std::string name;
  int index = 0;
  Ipv4Addr iface_addr;  // the local address VXLAN packets leave from
  Ipv4Addr public_ip;   // what peers send to (iface_addr unless --public-ip)
  int mtu = 1500;
  std::vector<std::string> warnings;
};

// Facts about the host that the choice depends on, gathered by the caller.
struct HostInterfaces {
  std::vector<InterfaceAddr> addrs;
  std::optional<std::string> default_route_iface;
  std::optional<Ipv4Addr> can_reach_source;  // source address the kernel picks for can_reach
};

// Pure: picks the interface as flannel does; errors say what was asked and what exists.
Result<ExternalInterface> choose_interface(const HostInterfaces& host, const IfaceChoice& choice);

// Reads the host through rtnetlink (libnl: links, addresses, the default route and the route to
// --iface-can-reach) and chooses.
Result<ExternalInterface> find_external_interface(const IfaceChoice& choice);

}  // namespace weft
