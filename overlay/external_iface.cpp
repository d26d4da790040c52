#include "overlay/external_iface.hpp"

#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netlink/addr.h>
#include <netlink/cache.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/route.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <memory>
#include <regex>

namespace weft {
namespace {

// VirtualBox gives every VM's NAT interface this address; peers can never reach it.
const Ipv4Addr kVirtualBoxNat = Ipv4Addr::parse("10.0.2.15").value();

std::string known_interfaces(const HostInterfaces& host) {
  std::string out;
  for (const auto& a : host.addrs) {
    if (a.loopback) continue;
    if (!out.empty()) out += ", ";
    out += a.name + " (" + a.addr.str() + ")";
  }
  return out.empty() ? "none with an IPv4 address" : out;
}

std::optional<InterfaceAddr> by_name_or_ip(const HostInterfaces& host, const std::string& wanted) {
  auto ip = Ipv4Addr::parse(wanted);
  for (const auto& a : host.addrs) {
    if (ip ? a.addr == *ip : a.name == wanted) return a;
  }
  return std::nullopt;
}

std::string joined(const std::vector<std::string>& values) {
  std::string out;
  for (const auto& v : values) out += (out.empty() ? "" : ", ") + v;
  return out;
}

// An --iface-regex pattern, compiled (POSIX extended, as flannel's Go regexp accepts it).
Result<std::regex> iface_regex(const std::string& pattern) {
  try {
    return std::regex(pattern, std::regex::extended);
  } catch (const std::regex_error& e) {
    return fail("--iface-regex \"" + pattern + "\" is not a valid regular expression: " + e.what());
  }
}

Result<std::optional<InterfaceAddr>> by_regex(const HostInterfaces& host, const std::string& pattern) {
  auto compiled = iface_regex(pattern);
  if (!compiled) return compiled.take_error();
  const std::regex& re = *compiled;
  for (const auto& a : host.addrs) {
    if (!a.loopback && std::regex_search(a.addr.str(), re)) return std::optional{a};
  }
  for (const auto& a : host.addrs) {
    if (!a.loopback && std::regex_search(a.name, re)) return std::optional{a};
  }
  return std::optional<InterfaceAddr>{};
}

bool is_ipv6_text(const std::string& s) { return s.find(':') != std::string::npos; }

// An IPv6 --iface-can-reach names the interface by its route; the IPv4 underlay is that
// interface's (first) IPv4 address, the IPv6 one its global IPv6 address (find_ipv6_underlay).
Result<InterfaceAddr> by_route_v6(const HostInterfaces& host, const std::string& can_reach) {
  if (!host.can_reach_index) return fail("no route to --iface-can-reach " + can_reach);
  for (const auto& a : host.addrs) {
    if (a.index == *host.can_reach_index) return a;
  }
  return fail("the route to --iface-can-reach " + can_reach + " leaves by interface index " +
              std::to_string(*host.can_reach_index) +
              ", which has no IPv4 address: weft needs one for the IPv4 underlay (IPv6-only is not supported yet)");
}

Result<InterfaceAddr> pick(const HostInterfaces& host, const IfaceChoice& choice) {
  for (const auto& wanted : choice.iface) {
    if (auto a = by_name_or_ip(host, wanted)) return *a;
  }
  if (!choice.iface.empty() && choice.iface_regex.empty()) {
    return fail("no interface matches --iface " + joined(choice.iface) + "; interfaces: " + known_interfaces(host));
  }
  for (const auto& pattern : choice.iface_regex) {
    auto a = by_regex(host, pattern);
    if (!a) return a.take_error();
    if (*a) return **a;
  }
  if (!choice.iface_regex.empty()) {
    return fail("no interface matches --iface/--iface-regex; interfaces: " + known_interfaces(host));
  }
  if (!choice.can_reach.empty() && is_ipv6_text(choice.can_reach)) return by_route_v6(host, choice.can_reach);
  if (!choice.can_reach.empty()) {
    if (!host.can_reach_source) return fail("no route to --iface-can-reach " + choice.can_reach);
    if (auto a = by_name_or_ip(host, host.can_reach_source->str())) return *a;
    return fail("the route to " + choice.can_reach + " uses source " + host.can_reach_source->str() +
                ", which no interface holds");
  }
  if (!host.default_route_iface) {
    return fail("no default route to choose the interface from: set --iface (interfaces: " + known_interfaces(host) +
                ")");
  }
  if (auto a = by_name_or_ip(host, *host.default_route_iface)) return *a;
  return fail("the default route's interface " + *host.default_route_iface + " has no IPv4 address: set --iface");
}

// The ExternalInterface for `chosen`, with the public IP and the VTEP's source address.
Result<ExternalInterface> describe_choice(const HostInterfaces& host, const InterfaceAddr& chosen,
                                          const IfaceChoice& choice) {
  ExternalInterface ext;
  ext.name = chosen.name;
  ext.index = chosen.index;
  ext.iface_addr = chosen.addr;
  ext.public_ip = chosen.addr;
  ext.mtu = chosen.mtu;
  if (!choice.public_ip.empty()) {
    auto ip = Ipv4Addr::parse(choice.public_ip);
    if (!ip) return fail("--public-ip: " + ip.error());
    ext.public_ip = *ip;
  }
  const bool local = std::any_of(host.addrs.begin(), host.addrs.end(),
                                 [&](const InterfaceAddr& a) { return a.addr == ext.public_ip; });
  ext.vtep_local = local ? ext.public_ip : ext.iface_addr;
  if (!chosen.up) ext.warnings.push_back("interface " + ext.name + " is down");
  if (ext.public_ip == kVirtualBoxNat) {
    ext.warnings.push_back("interface " + ext.name +
                           " has 10.0.2.15, the address of a VirtualBox NAT interface: "
                           "other nodes cannot reach it. Set --iface to the private network interface (e.g. "
                           "--iface=eth1); interfaces: " +
                           known_interfaces(host));
  }
  return ext;
}

}  // namespace

namespace {

// Why `ip` cannot be a VXLAN endpoint peers send to ("" when it can).
std::string unroutable_v6(const Ipv6Addr& ip) {
  const auto v = ip.to_uint();
  if (v == 0 || v == 1) return "is unspecified or loopback";
  if ((v >> 118U) == 0x3faU) return "is link-local (it needs an interface, VXLAN has none)";
  if ((v >> 120U) == 0xffU) return "is multicast";
  if ((v >> 32U) == 0xffffU) return "is IPv4-mapped: use --public-ip for IPv4";
  return "";
}

}  // namespace

Result<std::optional<Ipv6Underlay>> choose_ipv6_underlay(const std::vector<InterfaceAddr6>& addrs, int index,
                                                         const std::string& public_ipv6) {
  std::optional<Ipv6Addr> on_iface;
  for (const auto& a : addrs) {
    if (a.index == index && unroutable_v6(a.addr).empty()) {
      on_iface = a.addr;
      break;
    }
  }
  if (public_ipv6.empty()) {
    if (!on_iface) return std::optional<Ipv6Underlay>{};
    return std::optional<Ipv6Underlay>{Ipv6Underlay{*on_iface, *on_iface}};
  }
  auto ip = Ipv6Addr::parse(public_ipv6);
  if (!ip) return fail("--public-ipv6: " + ip.error());
  if (auto why = unroutable_v6(*ip); !why.empty()) return fail("--public-ipv6 " + ip->str() + " " + why);
  const bool held = std::any_of(addrs.begin(), addrs.end(), [&](const InterfaceAddr6& a) { return a.addr == *ip; });
  if (held) return std::optional<Ipv6Underlay>{Ipv6Underlay{*ip, *ip}};
  if (!on_iface) {
    return fail("--public-ipv6 " + ip->str() +
                " is not on this host and the underlay interface has no global IPv6 address to send IPv6 VXLAN "
                "from: add one, or drop --public-ipv6 to carry IPv6 pods over IPv4");
  }
  return std::optional<Ipv6Underlay>{Ipv6Underlay{*ip, *on_iface}};  // behind a NAT66 or a load balancer
}

Result<ExternalInterface> choose_interface(const HostInterfaces& host, const IfaceChoice& choice) {
  auto chosen = pick(host, choice);
  if (!chosen) return chosen.take_error();
  return describe_choice(host, *chosen, choice);
}

namespace {

std::string known_interfaces_v6(const HostInterfaces6& host) {
  std::string out;
  for (const auto& l : host.links) {
    if (l.loopback) continue;
    std::string addrs;
    for (const auto& a : host.addrs)
      if (a.index == l.index) addrs += (addrs.empty() ? "" : ", ") + a.addr.str();
    out += (out.empty() ? "" : ", ") + l.name + " (" + (addrs.empty() ? "no global IPv6" : addrs) + ")";
  }
  return out.empty() ? "none" : out;
}

const LinkInfo* link_by_index(const HostInterfaces6& host, int index) {
  for (const auto& l : host.links)
    if (l.index == index) return &l;
  return nullptr;
}

// The interface a choice names, and the IPv6 address it named it by (an --iface or
// --iface-regex address): that address is then the underlay's, as an IPv4 one is.
struct Picked6 {
  const LinkInfo* link = nullptr;
  std::optional<Ipv6Addr> addr;
};

Picked6 by_name_or_ip6(const HostInterfaces6& host, const std::string& wanted) {
  if (auto ip = Ipv6Addr::parse(wanted)) {
    for (const auto& a : host.addrs)
      if (a.addr == *ip) return {link_by_index(host, a.index), a.addr};
    return {};
  }
  for (const auto& l : host.links)
    if (l.name == wanted) return {&l, std::nullopt};
  return {};
}

Result<Picked6> by_regex6(const HostInterfaces6& host, const std::string& pattern) {
  auto compiled = iface_regex(pattern);
  if (!compiled) return compiled.take_error();
  const std::regex& re = *compiled;
  for (const auto& a : host.addrs) {
    const LinkInfo* l = link_by_index(host, a.index);
    if (l && !l->loopback && std::regex_search(a.addr.str(), re)) return Picked6{l, a.addr};
  }
  for (const auto& l : host.links) {
    if (!l.loopback && std::regex_search(l.name, re)) return Picked6{&l, std::nullopt};
  }
  return Picked6{};
}

Result<Picked6> pick_v6(const HostInterfaces6& host, const IfaceChoice& choice, const std::string& public_ipv6) {
  const std::string known = "; interfaces: " + known_interfaces_v6(host);
  for (const auto& wanted : choice.iface) {
    if (auto p = by_name_or_ip6(host, wanted); p.link) return p;
  }
  for (const auto& pattern : choice.iface_regex) {
    auto p = by_regex6(host, pattern);
    if (!p) return p.take_error();
    if (p->link) return p;
  }
  if (!choice.iface.empty() || !choice.iface_regex.empty()) {
    std::string asked;
    if (!choice.iface.empty()) asked = "--iface " + joined(choice.iface);
    if (!choice.iface_regex.empty())
      asked += (asked.empty() ? "" : ", ") + ("--iface-regex " + joined(choice.iface_regex));
    return fail("no interface matches " + asked + " (names or global IPv6 addresses: the cluster is IPv6-only)" +
                known);
  }
  if (!choice.can_reach.empty()) {
    if (!is_ipv6_text(choice.can_reach))
      return fail("--iface-can-reach " + choice.can_reach +
                  " is IPv4, and this cluster is IPv6-only: give an IPv6 "
                  "address the underlay routes to");
    if (!host.can_reach_index) return fail("no route to --iface-can-reach " + choice.can_reach);
    if (const LinkInfo* l = link_by_index(host, *host.can_reach_index)) return Picked6{l, std::nullopt};
    return fail("the route to --iface-can-reach " + choice.can_reach + " leaves by an unknown interface" + known);
  }
  if (auto ip = Ipv6Addr::parse(public_ipv6)) {
    if (auto p = by_name_or_ip6(host, ip->str()); p.link) return Picked6{p.link, std::nullopt};
  }
  if (!host.default_route_index)
    return fail("no IPv6 default route to choose the underlay from: set --iface or --iface-can-reach" + known);
  if (const LinkInfo* l = link_by_index(host, *host.default_route_index)) return Picked6{l, std::nullopt};
  return fail("the IPv6 default route leaves by an unknown interface: set --iface" + known);
}

}  // namespace

Result<Underlay6Choice> choose_interface_v6(const HostInterfaces6& host, const IfaceChoice& choice,
                                            const std::string& public_ipv6) {
  auto chosen = pick_v6(host, choice, public_ipv6);
  if (!chosen) return chosen.take_error();
  const LinkInfo& l = *chosen->link;
  // The address the interface was named by comes first: it is the underlay's own address.
  std::vector<InterfaceAddr6> addrs = host.addrs;
  if (chosen->addr) {
    std::stable_partition(addrs.begin(), addrs.end(), [&](const InterfaceAddr6& a) { return a.addr == chosen->addr; });
  }
  const bool has_global = std::any_of(addrs.begin(), addrs.end(), [&](const InterfaceAddr6& a) {
    return a.index == l.index && unroutable_v6(a.addr).empty();
  });
  auto public_held = Ipv6Addr::parse(public_ipv6);
  const bool held = public_held && std::any_of(addrs.begin(), addrs.end(),
                                               [&](const InterfaceAddr6& a) { return a.addr == *public_held; });
  if (!has_global && !public_ipv6.empty() && public_held && unroutable_v6(*public_held).empty() && !held) {
    // choose_ipv6_underlay's advice (carry IPv6 over IPv4) does not apply: there is no IPv4.
    return fail("--public-ipv6 " + public_held->str() + " is not on this host, and interface " + l.name +
                " has no global IPv6 address to send VXLAN from (the cluster is IPv6-only): add one to " + l.name +
                ", choose another --iface, or set --public-ipv6 to an address this host holds; interfaces: " +
                known_interfaces_v6(host));
  }
  auto underlay = choose_ipv6_underlay(addrs, l.index, public_ipv6);
  if (!underlay) return underlay.take_error();
  if (!*underlay)
    return fail("interface " + l.name +
                " has no global IPv6 address, and an IPv6-only cluster carries VXLAN over "
                "IPv6: add one, choose another --iface, or set --public-ipv6 to an address this host holds; "
                "interfaces: " +
                known_interfaces_v6(host));
  Underlay6Choice out;
  out.ext.name = l.name;
  out.ext.index = l.index;
  out.ext.mtu = l.mtu;
  if (!l.up) out.ext.warnings.push_back("interface " + l.name + " is down");
  if (!choice.public_ip.empty())
    out.ext.warnings.push_back("--public-ip " + choice.public_ip + " is unused: the cluster is IPv6-only");
  out.underlay = **underlay;
  return out;
}

namespace {

template <class T, auto Free>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using Socket = std::unique_ptr<nl_sock, Deleter<nl_sock, nl_socket_free>>;
using Cache = std::unique_ptr<nl_cache, Deleter<nl_cache, nl_cache_free>>;
using LinkRef = std::unique_ptr<rtnl_link, Deleter<rtnl_link, rtnl_link_put>>;
using RouteRef = std::unique_ptr<rtnl_route, Deleter<rtnl_route, rtnl_route_put>>;
using AddrRef = std::unique_ptr<nl_addr, Deleter<nl_addr, nl_addr_put>>;

std::string nl_failure(const std::string& what, int err) {
  return "cannot read the host's interfaces: " + what + ": " + nl_geterror(err);
}

Result<Socket> route_socket() {
  Socket sock(nl_socket_alloc());
  if (!sock) return fail("cannot read the host's interfaces: out of memory for a netlink socket");
  if (int err = nl_connect(sock.get(), NETLINK_ROUTE); err < 0) return fail(nl_failure("netlink connect", err));
  return sock;
}

std::optional<Ipv4Addr> ipv4_of(nl_addr* a) {
  if (!a || nl_addr_get_family(a) != AF_INET || nl_addr_get_len(a) != sizeof(std::uint32_t)) return std::nullopt;
  std::uint32_t be = 0;
  std::memcpy(&be, nl_addr_get_binary_addr(a), sizeof be);
  return Ipv4Addr::from_network_order(be);
}

InterfaceAddr describe(rtnl_link* link, Ipv4Addr addr, int prefix_len) {
  InterfaceAddr a;
  a.name = rtnl_link_get_name(link);
  a.index = rtnl_link_get_ifindex(link);
  a.addr = addr;
  a.prefix_len = prefix_len;
  a.mtu = static_cast<int>(rtnl_link_get_mtu(link));
  a.up = (rtnl_link_get_flags(link) & IFF_UP) != 0;
  a.loopback = (rtnl_link_get_flags(link) & IFF_LOOPBACK) != 0;
  return a;
}

// Every IPv4 address with its interface, in the kernel's order (by interface index).
Result<std::vector<InterfaceAddr>> list_interfaces(nl_sock* sock) {
  nl_cache* raw = nullptr;
  if (int err = rtnl_link_alloc_cache(sock, AF_UNSPEC, &raw); err < 0) return fail(nl_failure("links", err));
  Cache links(raw);
  if (int err = rtnl_addr_alloc_cache(sock, &raw); err < 0) return fail(nl_failure("addresses", err));
  Cache addrs(raw);
  std::vector<InterfaceAddr> out;
  for (nl_object* o = nl_cache_get_first(addrs.get()); o; o = nl_cache_get_next(o)) {
    auto* addr = reinterpret_cast<rtnl_addr*>(o);
    auto ip = ipv4_of(rtnl_addr_get_local(addr));
    if (rtnl_addr_get_family(addr) != AF_INET || !ip) continue;
    LinkRef link(rtnl_link_get(links.get(), rtnl_addr_get_ifindex(addr)));
    if (link) out.push_back(describe(link.get(), *ip, rtnl_addr_get_prefixlen(addr)));
  }
  return out;
}

// Every usable global IPv6 address, by interface index.
Result<std::vector<InterfaceAddr6>> list_ipv6_addresses(nl_sock* sock) {
  nl_cache* raw = nullptr;
  if (int err = rtnl_addr_alloc_cache(sock, &raw); err < 0) return fail(nl_failure("addresses", err));
  Cache addrs(raw);
  std::vector<InterfaceAddr6> out;
  constexpr unsigned kUnusable = IFA_F_TENTATIVE | IFA_F_DADFAILED | IFA_F_DEPRECATED;
  for (nl_object* o = nl_cache_get_first(addrs.get()); o; o = nl_cache_get_next(o)) {
    auto* addr = reinterpret_cast<rtnl_addr*>(o);
    nl_addr* local = rtnl_addr_get_local(addr);
    if (rtnl_addr_get_family(addr) != AF_INET6 || rtnl_addr_get_scope(addr) != RT_SCOPE_UNIVERSE || !local ||
        nl_addr_get_len(local) != 16 || (static_cast<unsigned>(rtnl_addr_get_flags(addr)) & kUnusable) != 0)
      continue;
    std::array<std::uint8_t, 16> bytes{};
    std::memcpy(bytes.data(), nl_addr_get_binary_addr(local), bytes.size());
    out.push_back({rtnl_addr_get_ifindex(addr), Ipv6Addr::from_bytes(bytes)});
  }
  return out;
}

// The interface index of the family's default route in the main table with the lowest metric.
Result<std::optional<int>> default_route_index(nl_sock* sock, int family) {
  nl_cache* raw = nullptr;
  if (int err = rtnl_route_alloc_cache(sock, family, 0, &raw); err < 0) return fail(nl_failure("routes", err));
  Cache routes(raw);
  std::optional<std::uint32_t> best_metric;
  int best_index = 0;
  for (nl_object* o = nl_cache_get_first(routes.get()); o; o = nl_cache_get_next(o)) {
    auto* r = reinterpret_cast<rtnl_route*>(o);
    nl_addr* dst = rtnl_route_get_dst(r);
    if (rtnl_route_get_table(r) != RT_TABLE_MAIN || rtnl_route_get_type(r) != RTN_UNICAST ||
        (dst && nl_addr_get_prefixlen(dst) != 0) || rtnl_route_get_nnexthops(r) < 1)
      continue;
    int index = rtnl_route_nh_get_ifindex(rtnl_route_nexthop_n(r, 0));
    if (index > 0 && (!best_metric || rtnl_route_get_priority(r) < *best_metric)) {
      best_metric = rtnl_route_get_priority(r);
      best_index = index;
    }
  }
  if (!best_metric) return std::optional<int>{};
  return std::optional<int>{best_index};
}

// The interface of the IPv4 default route (see default_route_index), by name.
Result<std::optional<std::string>> default_route_interface(nl_sock* sock) {
  auto index = default_route_index(sock, AF_INET);
  if (!index) return index.take_error();
  if (!*index) return std::optional<std::string>{};
  rtnl_link* found = nullptr;
  if (rtnl_link_get_kernel(sock, **index, nullptr, &found) < 0) return std::optional<std::string>{};
  LinkRef link(found);
  return std::optional<std::string>{rtnl_link_get_name(link.get())};
}

// Every link, for an IPv6-only choice.
Result<std::vector<LinkInfo>> list_links(nl_sock* sock) {
  nl_cache* raw = nullptr;
  if (int err = rtnl_link_alloc_cache(sock, AF_UNSPEC, &raw); err < 0) return fail(nl_failure("links", err));
  Cache links(raw);
  std::vector<LinkInfo> out;
  for (nl_object* o = nl_cache_get_first(links.get()); o; o = nl_cache_get_next(o)) {
    auto* link = reinterpret_cast<rtnl_link*>(o);
    const unsigned flags = rtnl_link_get_flags(link);
    out.push_back({rtnl_link_get_name(link), rtnl_link_get_ifindex(link), static_cast<int>(rtnl_link_get_mtu(link)),
                   (flags & IFF_UP) != 0, (flags & IFF_LOOPBACK) != 0});
  }
  return out;
}

// The source address the kernel picks towards `dest` (what `ip route get` prints as src).
std::optional<Ipv4Addr> source_address_for(nl_sock* sock, Ipv4Addr dest) {
  std::uint32_t be = dest.to_network_order();
  AddrRef dst(nl_addr_build(AF_INET, &be, sizeof be));
  rtnl_route* found = nullptr;
  if (!dst || rtnl_route_lookup(sock, dst.get(), &found) < 0) return std::nullopt;
  RouteRef route(found);
  return ipv4_of(rtnl_route_get_pref_src(route.get()));
}

// The interface the kernel would send to `dest` by (its route's first next hop).
std::optional<int> output_interface_for(nl_sock* sock, const Ipv6Addr& dest) {
  const auto bytes = dest.to_bytes();
  AddrRef dst(nl_addr_build(AF_INET6, bytes.data(), bytes.size()));
  rtnl_route* found = nullptr;
  if (!dst || rtnl_route_lookup(sock, dst.get(), &found) < 0) return std::nullopt;
  RouteRef route(found);
  rtnl_nexthop* hop = rtnl_route_nexthop_n(route.get(), 0);
  if (!hop || rtnl_route_nh_get_ifindex(hop) <= 0) return std::nullopt;
  return rtnl_route_nh_get_ifindex(hop);
}

bool needs_default_route(const IfaceChoice& c) {
  return c.iface.empty() && c.iface_regex.empty() && c.can_reach.empty();
}

}  // namespace

Result<ExternalInterface> follow_interface(const ExternalInterface& was, const std::string& public_ip) {
  auto sock = route_socket();
  if (!sock) return sock.take_error();
  rtnl_link* found = nullptr;
  if (int err = rtnl_link_get_kernel(sock->get(), 0, was.name.c_str(), &found); err < 0)
    return fail("underlay interface " + was.name + " (was index " + std::to_string(was.index) +
                ") is gone: " + nl_geterror(err));
  LinkRef link(found);
  if (rtnl_link_get_ifindex(link.get()) == was.index && static_cast<int>(rtnl_link_get_mtu(link.get())) == was.mtu)
    return was;
  auto addrs = list_interfaces(sock->get());
  if (!addrs) return addrs.take_error();
  HostInterfaces host;
  host.addrs = std::move(*addrs);
  HostInterfaces same_name;  // its address as before when it still has it, else its first one
  for (const auto& a : host.addrs)
    if (a.name == was.name) same_name.addrs.push_back(a);
  IfaceChoice again;
  again.iface = {was.iface_addr.str(), was.name};
  again.public_ip = public_ip;
  auto chosen = pick(same_name, again);
  if (!chosen) return fail("underlay interface " + was.name + " is back without an IPv4 address");
  return describe_choice(host, *chosen, again);
}

Result<std::optional<Ipv6Underlay>> find_ipv6_underlay(const ExternalInterface& ext, const std::string& public_ipv6) {
  auto sock = route_socket();
  if (!sock) return sock.take_error();
  auto addrs = list_ipv6_addresses(sock->get());
  if (!addrs) return addrs.take_error();
  return choose_ipv6_underlay(*addrs, ext.index, public_ipv6);
}

Result<ExternalInterface> find_external_interface(const IfaceChoice& choice) {
  auto sock = route_socket();
  if (!sock) return sock.take_error();
  HostInterfaces host;
  auto addrs = list_interfaces(sock->get());
  if (!addrs) return addrs.take_error();
  host.addrs = std::move(*addrs);
  if (needs_default_route(choice)) {  // a dump of every route: not when another flag decides
    auto iface = default_route_interface(sock->get());
    if (!iface) return iface.take_error();
    host.default_route_iface = std::move(*iface);
  }
  if (!choice.can_reach.empty() && is_ipv6_text(choice.can_reach)) {
    auto dest = Ipv6Addr::parse(choice.can_reach);
    if (!dest) return fail("--iface-can-reach: " + dest.error());
    host.can_reach_index = output_interface_for(sock->get(), *dest);
  } else if (!choice.can_reach.empty()) {
    auto dest = Ipv4Addr::parse(choice.can_reach);
    if (!dest) return fail("--iface-can-reach: " + dest.error());
    host.can_reach_source = source_address_for(sock->get(), *dest);
  }
  return choose_interface(host, choice);
}

Result<Underlay6Choice> find_external_interface_v6(const IfaceChoice& choice, const std::string& public_ipv6) {
  auto sock = route_socket();
  if (!sock) return sock.take_error();
  HostInterfaces6 host;
  auto links = list_links(sock->get());
  if (!links) return links.take_error();
  host.links = std::move(*links);
  auto addrs = list_ipv6_addresses(sock->get());
  if (!addrs) return addrs.take_error();
  host.addrs = std::move(*addrs);
  if (needs_default_route(choice)) {
    auto index = default_route_index(sock->get(), AF_INET6);
    if (!index) return index.take_error();
    host.default_route_index = *index;
  }
  if (!choice.can_reach.empty() && is_ipv6_text(choice.can_reach)) {
    auto dest = Ipv6Addr::parse(choice.can_reach);
    if (!dest) return fail("--iface-can-reach: " + dest.error());
    host.can_reach_index = output_interface_for(sock->get(), *dest);
  }
  return choose_interface_v6(host, choice, public_ipv6);
}

}  // namespace weft
