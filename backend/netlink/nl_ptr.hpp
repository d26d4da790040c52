#pragma once
// RAII owners for libnl objects (internal to backend/netlink).

#include <netlink/addr.h>
#include <netlink/msg.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/neighbour.h>
#include <netlink/route/route.h>
#include <netlink/socket.h>

#include <memory>

namespace weft::nl {

struct SockFree {
  void operator()(nl_sock* s) const { nl_socket_free(s); }
};
struct MsgFree {
  void operator()(nl_msg* m) const { nlmsg_free(m); }
};
struct AddrPut {
  void operator()(nl_addr* a) const { nl_addr_put(a); }
};
struct LinkPut {
  void operator()(rtnl_link* l) const { rtnl_link_put(l); }
};
struct NeighPut {
  void operator()(rtnl_neigh* n) const { rtnl_neigh_put(n); }
};
struct RoutePut {
  void operator()(rtnl_route* r) const { rtnl_route_put(r); }
};
struct RtAddrPut {
  void operator()(rtnl_addr* a) const { rtnl_addr_put(a); }
};
struct ObjectPut {
  void operator()(nl_object* o) const { nl_object_put(o); }
};

using SockPtr = std::unique_ptr<nl_sock, SockFree>;
using MsgPtr = std::unique_ptr<nl_msg, MsgFree>;
using AddrPtr = std::unique_ptr<nl_addr, AddrPut>;
using LinkPtr = std::unique_ptr<rtnl_link, LinkPut>;
using NeighPtr = std::unique_ptr<rtnl_neigh, NeighPut>;
using RoutePtr = std::unique_ptr<rtnl_route, RoutePut>;
using RtAddrPtr = std::unique_ptr<rtnl_addr, RtAddrPut>;
using ObjectPtr = std::unique_ptr<nl_object, ObjectPut>;

}  // namespace weft::nl
