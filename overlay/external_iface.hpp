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
  std::string can_reach;                 // the interface that routes to this IP (IPv4 or IPv6)
  std::string public_ip;                 // overrides the interface's address for peers
};

// In an IPv6-only cluster the IPv4 fields stay 0.0.0.0: the Ipv6Underlay carries VXLAN.
struct ExternalInterface {
  std::string name;
  int index = 0;
  Ipv4Addr iface_addr;  // the interface's own address
  Ipv4Addr public_ip;   // what peers send to (iface_addr unless --public-ip)
  // The source of VXLAN packets: public_ip when this host holds it (peers accept VXLAN only from
  // published public IPs), else iface_addr (public_ip is a NAT's address).
  Ipv4Addr vtep_local;
  int mtu = 1500;
  std::vector<std::string> warnings;
};

// Facts about the host that the choice depends on, gathered by the caller.
struct HostInterfaces {
  std::vector<InterfaceAddr> addrs;
  std::optional<std::string> default_route_iface;
  std::optional<Ipv4Addr> can_reach_source;  // source address the kernel picks for can_reach
  std::optional<int> can_reach_index;        // an IPv6 can_reach: the interface its route leaves by
};

// Pure: picks the interface as flannel does; errors say what was asked and what exists.
Result<ExternalInterface> choose_interface(const HostInterfaces& host, const IfaceChoice& choice);

// The chosen interface as the kernel has it now, looked up again by name: a NIC deleted and
// re-created under the same name comes back with another index (and maybe MTU). Returns `was`
// when the index and MTU are unchanged; an error while the name is gone or has no address yet.
Result<ExternalInterface> follow_interface(const ExternalInterface& was, const std::string& public_ip);

// One usable global IPv6 address (not tentative, DAD-failed or deprecated) on one interface.
struct InterfaceAddr6 {
  int index = 0;
  Ipv6Addr addr;
};

// Where IPv6 VXLAN goes when the underlay has IPv6 (a dual-stack cluster).
struct Ipv6Underlay {
  Ipv6Addr public_ip;  // what peers send to: --public-ipv6, else the interface's address
  Ipv6Addr local;      // the VTEP's source: public_ip when this host holds it, else the interface's
};

// Pure: the IPv6 underlay on interface `index`: nullopt when it has no global IPv6 address and
// --public-ipv6 is empty (IPv6 VXLAN then rides the IPv4 underlay); an error for a
// --public-ipv6 that is not a routable unicast address or that the interface cannot send from.
Result<std::optional<Ipv6Underlay>> choose_ipv6_underlay(const std::vector<InterfaceAddr6>& addrs, int index,
                                                         const std::string& public_ipv6);

// Reads the host's IPv6 addresses through rtnetlink and chooses for the chosen interface.
Result<std::optional<Ipv6Underlay>> find_ipv6_underlay(const ExternalInterface& ext, const std::string& public_ipv6);

// Reads the host through rtnetlink (libnl: links, addresses, the default route and the route to
// --iface-can-reach) and chooses.
Result<ExternalInterface> find_external_interface(const IfaceChoice& choice);

// An IPv6-only cluster's underlay, chosen by IPv6 alone (the node may have no IPv4 address).
struct LinkInfo {
  std::string name;
  int index = 0;
  int mtu = 1500;
  bool up = false;
  bool loopback = false;
};
struct HostInterfaces6 {
  std::vector<LinkInfo> links;
  std::vector<InterfaceAddr6> addrs;       // usable global IPv6 addresses
  std::optional<int> default_route_index;  // the IPv6 default route's interface
  std::optional<int> can_reach_index;      // the interface the route to --iface-can-reach leaves by
};
struct Underlay6Choice {
  ExternalInterface ext;  // name, index, MTU (IPv4 fields unset)
  Ipv6Underlay underlay;
};

// Pure: --iface (names or IPv6 addresses), --iface-regex (IPv6 addresses, then names),
// --iface-can-reach (an IPv6 address), the interface holding --public-ipv6, else the IPv6
// default route's interface; then its IPv6 underlay (choose_ipv6_underlay), which must exist.
Result<Underlay6Choice> choose_interface_v6(const HostInterfaces6& host, const IfaceChoice& choice,
                                            const std::string& public_ipv6);
Result<Underlay6Choice> find_external_interface_v6(const IfaceChoice& choice, const std::string& public_ipv6);

}  // namespace weft
