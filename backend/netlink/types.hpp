#pragma once
// Values that cross the Netlink seam: links, addresses, neighbors, FDB entries, routes, events.

#include <cstdint>
#include <optional>
#include <string>
#include <variant>

#include "core/ip.hpp"
#include "core/mac.hpp"

namespace weft {

// rtm_protocol on every route weft writes (`ip route` shows "proto 119"); it marks weft's
// DirectRouting routes on the underlay device as weft's own.
inline constexpr std::uint8_t kWeftRouteProtocol = 119;

// The VXLAN attributes weft sets on its VTEP and compares when adopting one.
struct VxlanAttrs {
  std::uint32_t vni = 0;
  std::uint16_t port = 0;
  Ipv4Addr local;
  int underlay_ifindex = 0;
  bool learning = false;
  bool gbp = false;
  bool operator==(const VxlanAttrs&) const = default;
};

// A network device as the kernel reports it.
struct Link {
  int ifindex = 0;
  std::string name;
  std::string kind;  // "vxlan", "veth", ... (empty for plain devices)
  Mac mac;
  int mtu = 0;
  bool up = false;
  std::optional<VxlanAttrs> vxlan;
  bool operator==(const Link&) const = default;
};

// A VXLAN device to create; it is created up.
struct VxlanLinkSpec {
  std::string name;
  VxlanAttrs vxlan;
  int mtu = 0;
  Mac mac;
};

// An IPv4 address on a device.
struct Address {
  int ifindex = 0;
  Ipv4Addr ip;
  int prefix_len = 32;
  bool operator==(const Address&) const = default;
};

// An ARP entry on the VTEP: a peer's gateway address -> the peer's VTEP MAC.
struct Neighbor {
  int ifindex = 0;
  Ipv4Addr ip;
  Mac mac;
  bool permanent = true;  // weft writes only permanent ones; others are the kernel's ARP cache
  bool operator==(const Neighbor&) const = default;
};

// A VXLAN FDB entry (AF_BRIDGE, NTF_SELF, permanent): a peer's VTEP MAC -> its public IP.
// An unspecified dst in a removal means the whole entry for that MAC.
struct FdbEntry {
  int ifindex = 0;
  Mac mac;
  Ipv4Addr dst;
  bool permanent = true;  // configured (permanent or static); false: learned by the kernel
  bool operator==(const FdbEntry&) const = default;
};

// An IPv4 unicast route in the main table with one next hop.
struct Route {
  Ipv4Prefix dst;
  Ipv4Addr gateway;  // unspecified: none
  int ifindex = 0;
  bool onlink = false;
  std::uint32_t priority = 0;
  std::uint8_t protocol = kWeftRouteProtocol;
  bool unicast = true;     // false for blackhole, unreachable, ... (read only)
  bool multipath = false;  // read only; ifindex/gateway are then the first hop's
  bool operator==(const Route&) const = default;
};

// How the kernel would reach an address.
struct RouteLookup {
  int ifindex = 0;
  std::optional<Ipv4Addr> gateway;
  bool unicast = true;
  bool operator==(const RouteLookup&) const = default;
};

// One write. upsert = create or replace; remove = make absent (already absent is success).
enum class WriteAction { upsert, remove };
using WriteObject = std::variant<Address, Neighbor, FdbEntry, Route>;
struct Write {
  WriteAction action = WriteAction::upsert;
  WriteObject object;
  bool operator==(const Write&) const = default;
};

// A change the kernel announced, or `overflow`: events were lost, so resync everything.
struct KernelEvent {
  enum class Kind { link, address, neighbor, fdb, route, overflow };
  Kind kind = Kind::overflow;
  bool deleted = false;
  int ifindex = 0;
  std::optional<Ipv4Prefix> dst;  // routes
  std::uint8_t protocol = 0;      // routes
  bool own = false;               // caused by a write of this Netlink instance
  std::string text;               // for logs, e.g. "route 10.244.2.0/24 dev #5 deleted"
};

std::string to_string(const Address& a);
std::string to_string(const Neighbor& n);
std::string to_string(const FdbEntry& f);
std::string to_string(const Route& r);
std::string to_string(const Write& w);  // "add route ...", "remove neighbor ..."

}  // namespace weft
