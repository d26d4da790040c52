#include "backend/netlink/nl_codec.hpp"

#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netlink/attr.h>
#include <netlink/object.h>
#include <netlink/route/link/vxlan.h>
#include <netlink/route/nexthop.h>
#include <sys/socket.h>

#include <array>
#include <cstring>
#include <type_traits>

namespace weft::nl {
namespace {

constexpr int kUpsertFlags = NLM_F_CREATE | NLM_F_REPLACE;

AddrPtr ipv4(Ipv4Addr ip, int prefix_len = 32) {
  std::uint32_t be = ip.to_network_order();
  AddrPtr a(nl_addr_build(AF_INET, &be, sizeof be));
  if (a) nl_addr_set_prefixlen(a.get(), prefix_len);
  return a;
}

AddrPtr ipv6(Ipv6Addr ip, int prefix_len = 128) {
  const auto bytes = ip.to_bytes();
  AddrPtr a(nl_addr_build(AF_INET6, bytes.data(), bytes.size()));
  if (a) nl_addr_set_prefixlen(a.get(), prefix_len);
  return a;
}

AddrPtr nl_address(Ipv4Addr ip, int prefix_len = 32) { return ipv4(ip, prefix_len); }
AddrPtr nl_address(Ipv6Addr ip, int prefix_len = 128) { return ipv6(ip, prefix_len); }
AddrPtr nl_address(const IpAddr& ip) { return ip.is_v6() ? ipv6(*ip.v6()) : ipv4(*ip.v4()); }

template <class Ip>
constexpr int family_of() {
  return std::is_same_v<Ip, Ipv6Addr> ? AF_INET6 : AF_INET;
}

AddrPtr lladdr(const Mac& mac) { return AddrPtr(nl_addr_build(AF_LLC, mac.bytes().data(), mac.bytes().size())); }

// Runs a libnl request builder, f(nl_msg**) -> int, and owns what it built.
template <class F>
MsgPtr built(F f) {
  nl_msg* msg = nullptr;
  int rc = f(&msg);
  MsgPtr owned(msg);
  if (rc < 0) return nullptr;
  return owned;
}

std::optional<Ipv4Addr> ipv4_attr(const nlattr* a) {
  if (!a || nla_len(a) != 4) return std::nullopt;
  std::uint32_t be = 0;
  std::memcpy(&be, nla_data(a), sizeof be);
  return Ipv4Addr::from_network_order(be);
}

std::optional<Ipv6Addr> ipv6_attr(const nlattr* a) {
  if (!a || nla_len(a) != 16) return std::nullopt;
  std::array<std::uint8_t, 16> bytes{};
  std::memcpy(bytes.data(), nla_data(a), bytes.size());
  return Ipv6Addr::from_bytes(bytes);
}

template <class Ip>
std::optional<Ip> ip_attr(const nlattr* a) {
  if constexpr (std::is_same_v<Ip, Ipv6Addr>) {
    return ipv6_attr(a);
  } else {
    return ipv4_attr(a);
  }
}

std::optional<Mac> mac_attr(const nlattr* a) {
  if (!a || nla_len(a) != 6) return std::nullopt;
  Mac::Bytes b{};
  std::memcpy(b.data(), nla_data(a), b.size());
  return Mac(b);
}

int as_int(std::uint32_t v) { return static_cast<int>(v); }

template <class Ip>
MsgPtr build_neighbor(const BasicNeighbor<Ip>& n, bool remove) {
  NeighPtr neigh(rtnl_neigh_alloc());
  AddrPtr dst = nl_address(n.ip);
  AddrPtr mac = lladdr(n.mac);
  if (!neigh || !dst || !mac) return nullptr;
  rtnl_neigh_set_ifindex(neigh.get(), n.ifindex);
  rtnl_neigh_set_dst(neigh.get(), dst.get());
  if (remove) return built([&](nl_msg** m) { return rtnl_neigh_build_delete_request(neigh.get(), 0, m); });
  rtnl_neigh_set_lladdr(neigh.get(), mac.get());
  rtnl_neigh_set_state(neigh.get(), NUD_PERMANENT);
  return built([&](nl_msg** m) { return rtnl_neigh_build_add_request(neigh.get(), kUpsertFlags, m); });
}

MsgPtr build_fdb(const FdbEntry& f, bool remove) {
  NeighPtr neigh(rtnl_neigh_alloc());
  AddrPtr mac = lladdr(f.mac);
  if (!neigh || !mac) return nullptr;
  rtnl_neigh_set_ifindex(neigh.get(), f.ifindex);
  if (!f.dst.is_unspecified()) {
    AddrPtr dst = nl_address(f.dst);
    if (!dst) return nullptr;
    rtnl_neigh_set_dst(neigh.get(), dst.get());  // before the family: set_dst resets it
  }
  rtnl_neigh_set_family(neigh.get(), AF_BRIDGE);
  rtnl_neigh_set_lladdr(neigh.get(), mac.get());
  rtnl_neigh_set_flags(neigh.get(), NTF_SELF);
  rtnl_neigh_set_state(neigh.get(), NUD_PERMANENT);
  if (remove) return built([&](nl_msg** m) { return rtnl_neigh_build_delete_request(neigh.get(), 0, m); });
  return built([&](nl_msg** m) { return rtnl_neigh_build_add_request(neigh.get(), kUpsertFlags, m); });
}

template <class Ip>
MsgPtr build_route(const BasicRoute<Ip>& r, bool remove) {
  RoutePtr route(rtnl_route_alloc());
  AddrPtr dst = nl_address(r.dst.address(), r.dst.length());
  rtnl_nexthop* nh = rtnl_route_nh_alloc();
  if (!route || !dst || !nh) {
    if (nh) rtnl_route_nh_free(nh);
    return nullptr;
  }
  rtnl_route_set_family(route.get(), family_of<Ip>());
  rtnl_route_set_table(route.get(), RT_TABLE_MAIN);
  rtnl_route_set_dst(route.get(), dst.get());
  rtnl_route_set_priority(route.get(), r.priority);
  rtnl_route_set_protocol(route.get(), r.protocol);
  rtnl_route_set_type(route.get(), RTN_UNICAST);
  bool has_gateway = !r.gateway.is_unspecified();
  rtnl_route_set_scope(route.get(), has_gateway ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK);
  rtnl_route_nh_set_ifindex(nh, r.ifindex);
  if (has_gateway && !remove) {
    AddrPtr gw = nl_address(r.gateway);
    if (gw) rtnl_route_nh_set_gateway(nh, gw.get());
  }
  if (r.onlink && !remove) rtnl_route_nh_set_flags(nh, RTNH_F_ONLINK);
  rtnl_route_add_nexthop(route.get(), nh);  // the route owns nh now
  if (!remove) return built([&](nl_msg** m) { return rtnl_route_build_add_request(route.get(), kUpsertFlags, m); });
  MsgPtr del = built([&](nl_msg** m) { return rtnl_route_build_del_request(route.get(), 0, m); });
  if (del) {
    // Match like `ip route del`: any scope, type and protocol; dst, metric and device only.
    auto* rtm = static_cast<rtmsg*>(nlmsg_data(nlmsg_hdr(del.get())));
    rtm->rtm_scope = RT_SCOPE_NOWHERE;
    rtm->rtm_type = RTN_UNSPEC;
    rtm->rtm_protocol = RTPROT_UNSPEC;
  }
  return del;
}

template <class Ip>
MsgPtr build_address(const BasicAddress<Ip>& a, bool remove) {
  RtAddrPtr addr(rtnl_addr_alloc());
  AddrPtr local = nl_address(a.ip, a.prefix_len);
  if (!addr || !local) return nullptr;
  rtnl_addr_set_ifindex(addr.get(), a.ifindex);
  rtnl_addr_set_local(addr.get(), local.get());
  rtnl_addr_set_prefixlen(addr.get(), a.prefix_len);
  // No duplicate address detection on a VTEP: the address is the node's own by lease, and a
  // tentative address would not be usable as a source for the first second.
  if (family_of<Ip>() == AF_INET6) rtnl_addr_set_flags(addr.get(), IFA_F_NODAD);
  if (remove) return built([&](nl_msg** m) { return rtnl_addr_build_delete_request(addr.get(), 0, m); });
  return built([&](nl_msg** m) { return rtnl_addr_build_add_request(addr.get(), kUpsertFlags, m); });
}

template <class Header>
MsgPtr header_only(int type, int flags, const Header& hdr) {
  MsgPtr msg(nlmsg_alloc_simple(type, flags));
  if (!msg || nlmsg_append(msg.get(), const_cast<Header*>(&hdr), sizeof hdr, NLMSG_ALIGNTO) < 0) return nullptr;
  return msg;
}

struct WriteEncoder {
  bool remove;
  template <class Ip>
  MsgPtr operator()(const BasicAddress<Ip>& a) const {
    return build_address(a, remove);
  }
  template <class Ip>
  MsgPtr operator()(const BasicNeighbor<Ip>& n) const {
    return build_neighbor(n, remove);
  }
  MsgPtr operator()(const FdbEntry& f) const { return build_fdb(f, remove); }
  template <class Ip>
  MsgPtr operator()(const BasicRoute<Ip>& r) const {
    return build_route(r, remove);
  }
};

Link link_from(rtnl_link* l) {
  Link out;
  out.ifindex = rtnl_link_get_ifindex(l);
  if (const char* name = rtnl_link_get_name(l)) out.name = name;
  if (const char* kind = rtnl_link_get_type(l)) out.kind = kind;
  if (nl_addr* a = rtnl_link_get_addr(l); a && nl_addr_get_len(a) == 6) {
    Mac::Bytes b{};
    std::memcpy(b.data(), nl_addr_get_binary_addr(a), b.size());
    out.mac = Mac(b);
  }
  out.mtu = static_cast<int>(rtnl_link_get_mtu(l));
  out.up = (rtnl_link_get_flags(l) & IFF_UP) != 0;
  if (rtnl_link_is_vxlan(l)) {
    VxlanAttrs v;
    std::uint32_t u = 0;
    if (rtnl_link_vxlan_get_id(l, &u) == 0) v.vni = u;
    if (rtnl_link_vxlan_get_port(l, &u) == 0) v.port = static_cast<std::uint16_t>(u);
    if (rtnl_link_vxlan_get_link(l, &u) == 0) v.underlay_ifindex = as_int(u);
    nl_addr* local = nullptr;
    if (rtnl_link_vxlan_get_local(l, &local) == 0 && local) {
      AddrPtr owned(local);
      if (nl_addr_get_len(local) == 4) {
        std::uint32_t be = 0;
        std::memcpy(&be, nl_addr_get_binary_addr(local), sizeof be);
        v.local = Ipv4Addr::from_network_order(be);
      } else if (nl_addr_get_len(local) == 16) {
        std::array<std::uint8_t, 16> bytes{};
        std::memcpy(bytes.data(), nl_addr_get_binary_addr(local), bytes.size());
        v.local = Ipv6Addr::from_bytes(bytes);
      }
    }
    v.learning = rtnl_link_vxlan_get_learning(l) > 0;
    if (rtnl_link_vxlan_get_flags(l, &u) == 0) v.gbp = (u & RTNL_LINK_VXLAN_F_GBP) != 0;
    out.vxlan = v;
  }
  return out;
}

}  // namespace

MsgPtr build_write(const Write& w) { return std::visit(WriteEncoder{w.action == WriteAction::remove}, w.object); }

MsgPtr build_create_vxlan(const VxlanLinkSpec& spec) {
  LinkPtr link(rtnl_link_vxlan_alloc());
  AddrPtr local = nl_address(spec.vxlan.local);
  AddrPtr mac = lladdr(spec.mac);
  if (!link || !local || !mac) return nullptr;
  rtnl_link_set_name(link.get(), spec.name.c_str());
  rtnl_link_vxlan_set_id(link.get(), spec.vxlan.vni);
  rtnl_link_vxlan_set_port(link.get(), spec.vxlan.port);
  rtnl_link_vxlan_set_learning(link.get(), spec.vxlan.learning ? 1 : 0);
  rtnl_link_vxlan_set_local(link.get(), local.get());
  if (spec.vxlan.underlay_ifindex > 0) {
    rtnl_link_vxlan_set_link(link.get(), static_cast<std::uint32_t>(spec.vxlan.underlay_ifindex));
  }
  if (spec.vxlan.gbp) rtnl_link_vxlan_set_flags(link.get(), RTNL_LINK_VXLAN_F_GBP, 1);
  if (spec.mtu > 0) rtnl_link_set_mtu(link.get(), static_cast<unsigned>(spec.mtu));
  rtnl_link_set_addr(link.get(), mac.get());
  rtnl_link_set_flags(link.get(), IFF_UP);
  return built([&](nl_msg** m) { return rtnl_link_build_add_request(link.get(), NLM_F_CREATE | NLM_F_EXCL, m); });
}

MsgPtr build_set_link(int ifindex, int mtu, bool up) {
  LinkPtr link(rtnl_link_alloc());
  if (!link) return nullptr;
  rtnl_link_set_ifindex(link.get(), ifindex);
  if (mtu > 0) rtnl_link_set_mtu(link.get(), static_cast<unsigned>(mtu));
  if (up) {
    rtnl_link_set_flags(link.get(), IFF_UP);
  } else {
    rtnl_link_unset_flags(link.get(), IFF_UP);
  }
  return built([&](nl_msg** m) { return rtnl_link_build_add_request(link.get(), 0, m); });
}

MsgPtr build_delete_link(int ifindex) {
  LinkPtr link(rtnl_link_alloc());
  if (!link) return nullptr;
  rtnl_link_set_ifindex(link.get(), ifindex);
  return built([&](nl_msg** m) { return rtnl_link_build_delete_request(link.get(), m); });
}

MsgPtr build_get_link(const std::string& name) {
  return built([&](nl_msg** m) { return rtnl_link_build_get_request(0, name.c_str(), m); });
}

MsgPtr build_dump(int rtm_type, int family) {
  auto fam = static_cast<unsigned char>(family);
  switch (rtm_type) {
    case RTM_GETADDR: {
      ifaddrmsg h{};
      h.ifa_family = fam;
      return header_only(rtm_type, NLM_F_DUMP, h);
    }
    case RTM_GETNEIGH: {
      ndmsg h{};
      h.ndm_family = fam;
      return header_only(rtm_type, NLM_F_DUMP, h);
    }
    default: {
      rtmsg h{};
      h.rtm_family = fam;
      return header_only(rtm_type, NLM_F_DUMP, h);
    }
  }
}

MsgPtr build_route_get(Ipv4Addr dst) {
  rtmsg h{};
  h.rtm_family = AF_INET;
  h.rtm_dst_len = 32;
  MsgPtr msg = header_only(RTM_GETROUTE, 0, h);
  if (msg && nla_put_u32(msg.get(), RTA_DST, dst.to_network_order()) < 0) return nullptr;
  return msg;
}

MsgPtr build_route_get6(const Ipv6Addr& dst) {
  rtmsg h{};
  h.rtm_family = AF_INET6;
  h.rtm_dst_len = 128;
  MsgPtr msg = header_only(RTM_GETROUTE, 0, h);
  const auto bytes = dst.to_bytes();
  if (msg && nla_put(msg.get(), RTA_DST, static_cast<int>(bytes.size()), bytes.data()) < 0) return nullptr;
  return msg;
}

std::optional<Link> parse_link(nlmsghdr* h) {
  MsgPtr msg(nlmsg_convert(h));
  if (!msg) return std::nullopt;
  nlmsg_set_proto(msg.get(), NETLINK_ROUTE);
  std::optional<Link> out;
  auto on_object = [](nl_object* obj, void* arg) {
    if (std::strcmp(nl_object_get_type(obj), "route/link") != 0) return;
    *static_cast<std::optional<Link>*>(arg) = link_from(reinterpret_cast<rtnl_link*>(obj));
  };
  nl_msg_parse(msg.get(), on_object, &out);
  return out;
}

namespace {

template <class Ip>
std::optional<BasicAddress<Ip>> parse_address_of(nlmsghdr* h) {
  if (!nlmsg_valid_hdr(h, sizeof(ifaddrmsg))) return std::nullopt;
  const auto* ifa = static_cast<const ifaddrmsg*>(nlmsg_data(h));
  if (ifa->ifa_family != family_of<Ip>()) return std::nullopt;
  nlattr* tb[IFA_MAX + 1] = {};
  if (nlmsg_parse(h, sizeof(ifaddrmsg), tb, IFA_MAX, nullptr) < 0) return std::nullopt;
  auto ip = ip_attr<Ip>(tb[IFA_LOCAL] ? tb[IFA_LOCAL] : tb[IFA_ADDRESS]);
  if (!ip) return std::nullopt;
  return BasicAddress<Ip>{as_int(ifa->ifa_index), *ip, ifa->ifa_prefixlen};
}

template <class Ip>
std::optional<BasicNeighbor<Ip>> parse_neighbor_of(nlmsghdr* h) {
  if (!nlmsg_valid_hdr(h, sizeof(ndmsg))) return std::nullopt;
  const auto* nd = static_cast<const ndmsg*>(nlmsg_data(h));
  if (nd->ndm_family != family_of<Ip>()) return std::nullopt;
  nlattr* tb[NDA_MAX + 1] = {};
  if (nlmsg_parse(h, sizeof(ndmsg), tb, NDA_MAX, nullptr) < 0) return std::nullopt;
  auto ip = ip_attr<Ip>(tb[NDA_DST]);
  if (!ip) return std::nullopt;
  return BasicNeighbor<Ip>{nd->ndm_ifindex, *ip, mac_attr(tb[NDA_LLADDR]).value_or(Mac{}),
                           (nd->ndm_state & NUD_PERMANENT) != 0};
}

template <class Ip>
std::optional<BasicRoute<Ip>> parse_route_of(nlmsghdr* h, std::uint32_t* table) {
  if (!nlmsg_valid_hdr(h, sizeof(rtmsg))) return std::nullopt;
  const auto* rtm = static_cast<const rtmsg*>(nlmsg_data(h));
  if (rtm->rtm_family != family_of<Ip>()) return std::nullopt;  // lookups answer RTM_F_CLONED: keep them
  nlattr* tb[RTA_MAX + 1] = {};
  if (nlmsg_parse(h, sizeof(rtmsg), tb, RTA_MAX, nullptr) < 0) return std::nullopt;
  BasicRoute<Ip> r;
  Ip dst = tb[RTA_DST] ? ip_attr<Ip>(tb[RTA_DST]).value_or(Ip{}) : Ip{};
  r.dst = Prefix<Ip>::containing(dst, rtm->rtm_dst_len);
  r.gateway = ip_attr<Ip>(tb[RTA_GATEWAY]).value_or(Ip{});
  r.ifindex = tb[RTA_OIF] ? as_int(nla_get_u32(tb[RTA_OIF])) : 0;
  r.onlink = (rtm->rtm_flags & RTNH_F_ONLINK) != 0;
  r.priority = tb[RTA_PRIORITY] ? nla_get_u32(tb[RTA_PRIORITY]) : 0;
  r.protocol = rtm->rtm_protocol;
  r.unicast = rtm->rtm_type == RTN_UNICAST;
  if (tb[RTA_MULTIPATH] && nla_len(tb[RTA_MULTIPATH]) >= static_cast<int>(sizeof(rtnexthop))) {
    r.multipath = true;
    const auto* first = static_cast<const rtnexthop*>(nla_data(tb[RTA_MULTIPATH]));
    r.ifindex = first->rtnh_ifindex;
  }
  if (table) *table = tb[RTA_TABLE] ? nla_get_u32(tb[RTA_TABLE]) : rtm->rtm_table;
  return r;
}

}  // namespace

std::optional<Address> parse_address(nlmsghdr* h) { return parse_address_of<Ipv4Addr>(h); }
std::optional<Address6> parse_address6(nlmsghdr* h) { return parse_address_of<Ipv6Addr>(h); }
std::optional<Neighbor> parse_neighbor(nlmsghdr* h) { return parse_neighbor_of<Ipv4Addr>(h); }
std::optional<Neighbor6> parse_neighbor6(nlmsghdr* h) { return parse_neighbor_of<Ipv6Addr>(h); }
std::optional<Route> parse_route(nlmsghdr* h, std::uint32_t* table) { return parse_route_of<Ipv4Addr>(h, table); }
std::optional<Route6> parse_route6(nlmsghdr* h, std::uint32_t* table) { return parse_route_of<Ipv6Addr>(h, table); }

std::optional<FdbEntry> parse_fdb(nlmsghdr* h) {
  if (!nlmsg_valid_hdr(h, sizeof(ndmsg))) return std::nullopt;
  const auto* nd = static_cast<const ndmsg*>(nlmsg_data(h));
  if (nd->ndm_family != AF_BRIDGE) return std::nullopt;
  nlattr* tb[NDA_MAX + 1] = {};
  if (nlmsg_parse(h, sizeof(ndmsg), tb, NDA_MAX, nullptr) < 0) return std::nullopt;
  auto mac = mac_attr(tb[NDA_LLADDR]);
  if (!mac) return std::nullopt;
  IpAddr dst;
  if (tb[NDA_DST]) {
    if (auto v4 = ipv4_attr(tb[NDA_DST])) {
      dst = *v4;
    } else if (auto v6 = ipv6_attr(tb[NDA_DST])) {
      dst = *v6;
    } else {
      return std::nullopt;
    }
  }
  return FdbEntry{nd->ndm_ifindex, *mac, dst, (nd->ndm_state & (NUD_PERMANENT | NUD_NOARP)) != 0};
}

}  // namespace weft::nl
