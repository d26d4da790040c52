#pragma once
// Encoding weft's values as rtnetlink requests and decoding the kernel's messages back
// (internal to backend/netlink). Builders return null when libnl cannot encode.

#include <cstdint>
#include <optional>
#include <string>

#include "backend/netlink/nl_ptr.hpp"
#include "backend/netlink/types.hpp"

struct nlmsghdr;

namespace weft::nl {

MsgPtr build_write(const Write& w);  // upsert: NLM_F_CREATE|NLM_F_REPLACE; remove: a delete
MsgPtr build_create_vxlan(const VxlanLinkSpec& spec);
MsgPtr build_set_link(int ifindex, int mtu, bool up);
MsgPtr build_delete_link(int ifindex);
MsgPtr build_get_link(const std::string& name);
MsgPtr build_dump(int rtm_type, int family);  // RTM_GETADDR / RTM_GETNEIGH / RTM_GETROUTE
MsgPtr build_route_get(Ipv4Addr dst);
MsgPtr build_route_get6(const Ipv6Addr& dst);

std::optional<Link> parse_link(nlmsghdr* h);
std::optional<Address> parse_address(nlmsghdr* h);      // IPv4 only
std::optional<Address6> parse_address6(nlmsghdr* h);    // IPv6 only
std::optional<Neighbor> parse_neighbor(nlmsghdr* h);    // AF_INET entries
std::optional<Neighbor6> parse_neighbor6(nlmsghdr* h);  // AF_INET6 entries
std::optional<FdbEntry> parse_fdb(nlmsghdr* h);         // AF_BRIDGE entries, IPv4 or IPv6 dst
// IPv4 (IPv6) routes; table receives the route's table (RT_TABLE_MAIN is 254).
std::optional<Route> parse_route(nlmsghdr* h, std::uint32_t* table);
std::optional<Route6> parse_route6(nlmsghdr* h, std::uint32_t* table);

}  // namespace weft::nl
