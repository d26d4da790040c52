#include "backend/netlink/netlink_impl.hpp"

#include <fcntl.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <type_traits>

#include "backend/netlink/nl_channel.hpp"
#include "backend/netlink/nl_codec.hpp"
#include "backend/netlink/nl_monitor.hpp"

namespace weft {
namespace {

constexpr int kDumpAttempts = 5;

Error error_of(const std::string& what, const nl::Outcome& o) { return fail("netlink: " + what + ": " + o.message()); }

// Sends one link request; ignored_error (an errno) counts as success.
Status link_change(nl::NlChannel& channel, std::uint64_t& writes, nl::MsgPtr msg, const std::string& what,
                   int ignored_error = 0) {
  if (!msg) return fail("netlink: cannot encode " + what);
  ++writes;
  nl::MsgPtr only = std::move(msg);
  auto outcome = channel.transact(1, [&](std::size_t) { return std::move(only); })[0];
  if (!outcome.ok() && outcome.error != ignored_error) return error_of(what, outcome);
  return ok_status();
}

// Runs a dump, retrying when the kernel reports it was interrupted by a concurrent change.
Status dump(nl::NlChannel& channel, int rtm_type, int family, const std::string& what,
            const nl::NlChannel::ReplyHandler& on_reply) {
  nl::Outcome outcome;
  for (int attempt = 0; attempt < kDumpAttempts; ++attempt) {
    nl::MsgPtr msg = nl::build_dump(rtm_type, family);
    if (!msg) return fail("netlink: cannot encode a dump of " + what);
    outcome = channel.request(std::move(msg), on_reply);
    if (outcome.error != EINTR) break;
  }
  if (!outcome.ok()) return error_of("dump " + what, outcome);
  return ok_status();
}

// A dump's replies of one type (RTM_NEWx), parsed; parse returns nullopt for what is not wanted
// (another device, another table, a message it cannot read).
template <class T, class Parse>
Result<std::vector<T>> dump_values(nl::NlChannel& channel, int rtm_type, int family, const std::string& what,
                                   int reply_type, Parse parse) {
  std::vector<T> out;
  Status st = dump(channel, rtm_type, family, what, [&](nlmsghdr* h) {
    if (h->nlmsg_type != reply_type) return;
    if (std::optional<T> v = parse(h)) out.push_back(std::move(*v));
  });
  if (!st) return st.take_error();
  return out;
}

template <class T>
std::optional<T> on_link(std::optional<T> v, int ifindex) {
  return v && v->ifindex == ifindex ? v : std::nullopt;
}

template <class R>
std::optional<R> in_main_table(std::optional<R> r, std::uint32_t table) {
  return r && table == RT_TABLE_MAIN ? r : std::nullopt;
}

}  // namespace

Result<std::unique_ptr<NetlinkImpl>> NetlinkImpl::open(const std::string& netns_path, int notify_buffer_bytes) {
  int netns_fd = -1;
  if (!netns_path.empty()) {
    netns_fd = ::open(netns_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (netns_fd < 0) {
      return fail("netlink: cannot open network namespace " + netns_path + ": " + std::strerror(errno));
    }
  }
  auto channel = nl::NlChannel::open({netns_fd, 4 << 20, {}});
  if (!channel) {
    if (netns_fd >= 0) ::close(netns_fd);
    return channel.take_error();
  }
  auto owned = std::make_unique<nl::NlChannel>(std::move(channel).value());
  return std::unique_ptr<NetlinkImpl>(new NetlinkImpl(std::move(owned), netns_fd, notify_buffer_bytes));
}

NetlinkImpl::NetlinkImpl(std::unique_ptr<nl::NlChannel> channel, int netns_fd, int notify_buffer_bytes)
    : channel_(std::move(channel)), netns_fd_(netns_fd), notify_buffer_bytes_(notify_buffer_bytes) {}

NetlinkImpl::~NetlinkImpl() {
  if (netns_fd_ >= 0) ::close(netns_fd_);
}

Result<std::optional<Link>> NetlinkImpl::get_link(const std::string& name) {
  nl::MsgPtr msg = nl::build_get_link(name);
  if (!msg) return fail("netlink: cannot encode a request for link " + name);
  std::optional<Link> link;
  auto outcome = channel_->request(std::move(msg), [&](nlmsghdr* h) {
    if (h->nlmsg_type == RTM_NEWLINK) link = nl::parse_link(h);
  });
  if (outcome.error == ENODEV) return std::optional<Link>();
  if (!outcome.ok()) return error_of("get link " + name, outcome);
  return link;
}

Status NetlinkImpl::create_vxlan(const VxlanLinkSpec& spec) {
  return link_change(*channel_, writes_, nl::build_create_vxlan(spec),
                     "create vxlan " + spec.name + " (VNI " + std::to_string(spec.vxlan.vni) + ", port " +
                         std::to_string(spec.vxlan.port) + ", local " + spec.vxlan.local.str() + ", underlay ifindex " +
                         std::to_string(spec.vxlan.underlay_ifindex) + ")");
}

Status NetlinkImpl::set_link(int ifindex, int mtu, bool up) {
  return link_change(
      *channel_, writes_, nl::build_set_link(ifindex, mtu, up),
      "set link ifindex " + std::to_string(ifindex) + " mtu " + std::to_string(mtu) + (up ? " up" : " down"));
}

Status NetlinkImpl::delete_link(int ifindex) {
  return link_change(*channel_, writes_, nl::build_delete_link(ifindex),
                     "delete link ifindex " + std::to_string(ifindex), ENODEV);
}

Result<std::vector<Address>> NetlinkImpl::dump_addresses(int ifindex) {
  return dump_values<Address>(*channel_, RTM_GETADDR, AF_INET, "addresses", RTM_NEWADDR,
                              [&](nlmsghdr* h) { return on_link(nl::parse_address(h), ifindex); });
}

Result<std::vector<Neighbor>> NetlinkImpl::dump_neighbors(int ifindex) {
  return dump_values<Neighbor>(*channel_, RTM_GETNEIGH, AF_INET, "neighbors", RTM_NEWNEIGH,
                               [&](nlmsghdr* h) { return on_link(nl::parse_neighbor(h), ifindex); });
}

Result<std::vector<FdbEntry>> NetlinkImpl::dump_fdb(int ifindex) {
  return dump_values<FdbEntry>(*channel_, RTM_GETNEIGH, AF_BRIDGE, "fdb", RTM_NEWNEIGH,
                               [&](nlmsghdr* h) { return on_link(nl::parse_fdb(h), ifindex); });
}

Result<std::vector<Route>> NetlinkImpl::dump_routes() {
  return dump_values<Route>(*channel_, RTM_GETROUTE, AF_INET, "routes", RTM_NEWROUTE, [](nlmsghdr* h) {
    std::uint32_t table = 0;
    auto r = nl::parse_route(h, &table);
    return in_main_table(std::move(r), table);
  });
}

Result<std::vector<Address6>> NetlinkImpl::dump_addresses6(int ifindex) {
  return dump_values<Address6>(*channel_, RTM_GETADDR, AF_INET6, "IPv6 addresses", RTM_NEWADDR,
                               [&](nlmsghdr* h) { return on_link(nl::parse_address6(h), ifindex); });
}

Result<std::vector<Neighbor6>> NetlinkImpl::dump_neighbors6(int ifindex) {
  return dump_values<Neighbor6>(*channel_, RTM_GETNEIGH, AF_INET6, "IPv6 neighbors", RTM_NEWNEIGH,
                                [&](nlmsghdr* h) { return on_link(nl::parse_neighbor6(h), ifindex); });
}

Result<std::vector<Route6>> NetlinkImpl::dump_routes6() {
  return dump_values<Route6>(*channel_, RTM_GETROUTE, AF_INET6, "IPv6 routes", RTM_NEWROUTE, [](nlmsghdr* h) {
    std::uint32_t table = 0;
    auto r = nl::parse_route6(h, &table);
    return in_main_table(std::move(r), table);
  });
}

namespace {

template <class Ip>
Result<BasicRouteLookup<Ip>> lookup(nl::NlChannel& channel, const Ip& dst, nl::MsgPtr msg) {
  if (!msg) return fail("netlink: cannot encode a route lookup for " + dst.str());
  std::optional<BasicRoute<Ip>> found;
  auto outcome = channel.request(std::move(msg), [&](nlmsghdr* h) {
    if (h->nlmsg_type != RTM_NEWROUTE) return;
    if constexpr (std::is_same_v<Ip, Ipv4Addr>) {
      found = nl::parse_route(h, nullptr);
    } else {
      found = nl::parse_route6(h, nullptr);
    }
  });
  if (!outcome.ok()) return error_of("route lookup for " + dst.str(), outcome);
  if (!found) return fail("netlink: route lookup for " + dst.str() + ": no answer");
  BasicRouteLookup<Ip> r{found->ifindex, std::nullopt, found->unicast};
  if (!found->gateway.is_unspecified()) r.gateway = found->gateway;
  return r;
}

}  // namespace

Result<RouteLookup> NetlinkImpl::lookup_route(Ipv4Addr dst) { return lookup(*channel_, dst, nl::build_route_get(dst)); }

Result<RouteLookup6> NetlinkImpl::lookup_route6(const Ipv6Addr& dst) {
  return lookup(*channel_, dst, nl::build_route_get6(dst));
}

std::vector<Status> NetlinkImpl::write(std::span<const Write> writes) {
  writes_ += writes.size();
  auto outcomes = channel_->transact(writes.size(), [&](std::size_t i) { return nl::build_write(writes[i]); });
  std::vector<Status> out;
  out.reserve(writes.size());
  for (std::size_t i = 0; i < writes.size(); ++i) {
    const auto& o = outcomes[i];
    // Removing what is already gone is success: the goal is absence.
    bool gone = writes[i].action == WriteAction::remove &&
                (o.error == ENOENT || o.error == ESRCH || o.error == EADDRNOTAVAIL || o.error == ENODEV);
    if (o.ok() || gone) {
      out.emplace_back(ok_status());
    } else {
      out.emplace_back(error_of(to_string(writes[i]), o));
    }
  }
  return out;
}

Result<std::unique_ptr<Subscription>> NetlinkImpl::subscribe(EventHandler on_event) {
  return nl::start_monitor(netns_fd_, channel_->port(), notify_buffer_bytes_, std::move(on_event));
}

}  // namespace weft
