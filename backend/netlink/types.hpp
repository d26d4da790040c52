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

// An address of either family, for what may be IPv4 or IPv6 independently of the overlay:
// the underlay side of VXLAN (a VTEP's local address, an FDB entry's remote). Default: the
// unspecified IPv4 address.
class IpAddr {
 public:
  IpAddr() = default;
  IpAddr(Ipv4Addr v4) : ip_(v4) {}  // NOLINT(google-explicit-constructor): either family fits
  IpAddr(Ipv6Addr v6) : ip_(v6) {}  // NOLINT(google-explicit-constructor)
  bool is_v6() const { return std::holds_alternative<Ipv6Addr>(ip_); }
  const Ipv4Addr* v4() const { return std::get_if<Ipv4Addr>(&ip_); }
  const Ipv6Addr* v6() const { return std::get_if<Ipv6Addr>(&ip_); }
  bool is_unspecified() const;
  std::string str() const;
  friend bool operator==(const IpAddr&, const IpAddr&) = default;

 private:
  std::variant<Ipv4Addr, Ipv6Addr> ip_;
};

// The VXLAN attributes weft sets on its VTEP and compares when adopting one.
struct VxlanAttrs {
  std::uint32_t vni = 0;
  std::uint16_t port = 0;
  IpAddr local;  // IFLA_VXLAN_LOCAL or IFLA_VXLAN_LOCAL6
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

// The overlay-side values below come in both families: Ip is Ipv4Addr or Ipv6Addr, and
// Address/Neighbor/Route are the IPv4 ones, Address6/Neighbor6/Route6 the IPv6 ones.

// An address on a device (IPv6 ones are written with IFA_F_NODAD).
template <class Ip>
struct BasicAddress {
  int ifindex = 0;
  Ip ip;
  int prefix_len = Ip::kBits;
  bool operator==(const BasicAddress&) const = default;
};
using Address = BasicAddress<Ipv4Addr>;
using Address6 = BasicAddress<Ipv6Addr>;

// An ARP (IPv4) or NDP (IPv6) entry on a VTEP: a peer's gateway address -> its VTEP MAC.
template <class Ip>
struct BasicNeighbor {
  int ifindex = 0;
  Ip ip;
  Mac mac;
  bool permanent = true;  // weft writes only permanent ones; others are the kernel's cache
  bool operator==(const BasicNeighbor&) const = default;
};
using Neighbor = BasicNeighbor<Ipv4Addr>;
using Neighbor6 = BasicNeighbor<Ipv6Addr>;

// A VXLAN FDB entry (AF_BRIDGE, NTF_SELF, permanent): a peer's VTEP MAC -> its public IP,
// of the underlay's family (IPv4 or IPv6, whatever the VTEP's overlay family).
// An unspecified dst in a removal means the whole entry for that MAC.
struct FdbEntry {
  int ifindex = 0;
  Mac mac;
  IpAddr dst;
  bool permanent = true;  // configured (permanent or static); false: learned by the kernel
  bool operator==(const FdbEntry&) const = default;
};

// A unicast route in the main table with one next hop. IPv6 routes the kernel stores with
// metric 1024 when given 0, so weft writes kIpv6RouteMetric explicitly.
inline constexpr std::uint32_t kIpv6RouteMetric = 1024;
template <class Ip>
struct BasicRoute {
  Prefix<Ip> dst;
  Ip gateway;  // unspecified: none
  int ifindex = 0;
  bool onlink = false;
  std::uint32_t priority = 0;
  std::uint8_t protocol = kWeftRouteProtocol;
  bool unicast = true;     // false for blackhole, unreachable, ... (read only)
  bool multipath = false;  // read only; ifindex/gateway are then the first hop's
  bool operator==(const BasicRoute&) const = default;
};
using Route = BasicRoute<Ipv4Addr>;
using Route6 = BasicRoute<Ipv6Addr>;

// How the kernel would reach an address.
template <class Ip>
struct BasicRouteLookup {
  int ifindex = 0;
  std::optional<Ip> gateway;
  bool unicast = true;
  bool operator==(const BasicRouteLookup&) const = default;
};
using RouteLookup = BasicRouteLookup<Ipv4Addr>;
using RouteLookup6 = BasicRouteLookup<Ipv6Addr>;

// One write. upsert = create or replace; remove = make absent (already absent is success).
enum class WriteAction { upsert, remove };
using WriteObject = std::variant<Address, Neighbor, FdbEntry, Route, Address6, Neighbor6, Route6>;
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
  std::optional<Ipv4Prefix> dst;                  // routes
  std::uint8_t protocol = 0;                      // routes
  bool own = false;                               // caused by a write of this Netlink instance
  std::string text;                               // for logs, e.g. "route 10.244.2.0/24 dev #5 deleted"
  bool ipv6 = false;                              // an IPv6 address, neighbor or route (dst6 for routes)
  std::optional<Ipv6Prefix> dst6 = std::nullopt;  // IPv6 routes
};

template <class Ip>
std::string to_string(const BasicAddress<Ip>& a);
template <class Ip>
std::string to_string(const BasicNeighbor<Ip>& n);
std::string to_string(const FdbEntry& f);
template <class Ip>
std::string to_string(const BasicRoute<Ip>& r);
std::string to_string(const Write& w);  // "add route ...", "remove neighbor ..."

}  // namespace weft
