#include "backend/netlink/nl_monitor.hpp"

#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <poll.h>
#include <pthread.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "backend/netlink/nl_channel.hpp"
#include "backend/netlink/nl_codec.hpp"

namespace weft::nl {
namespace {

std::optional<KernelEvent> link_event(nlmsghdr* h) {
  if (!nlmsg_valid_hdr(h, sizeof(ifinfomsg))) return std::nullopt;
  const auto* ifi = static_cast<const ifinfomsg*>(nlmsg_data(h));
  KernelEvent e;
  e.kind = KernelEvent::Kind::link;
  e.deleted = h->nlmsg_type == RTM_DELLINK;
  e.ifindex = ifi->ifi_index;
  std::string name = "?";
  if (nlattr* a = nlmsg_find_attr(h, sizeof(ifinfomsg), IFLA_IFNAME)) name = nla_get_string(a);
  e.text = "link " + name + " (ifindex " + std::to_string(e.ifindex) + ") " + (e.deleted ? "deleted" : "changed");
  return e;
}

std::optional<KernelEvent> neigh_event(nlmsghdr* h) {
  if (!nlmsg_valid_hdr(h, sizeof(ndmsg))) return std::nullopt;
  const auto* nd = static_cast<const ndmsg*>(nlmsg_data(h));
  KernelEvent e;
  e.deleted = h->nlmsg_type == RTM_DELNEIGH;
  e.ifindex = nd->ndm_ifindex;
  const char* verb = e.deleted ? " deleted" : " changed";
  if (nd->ndm_family == AF_INET) {
    e.kind = KernelEvent::Kind::neighbor;
    auto n = parse_neighbor(h);
    e.text = (n ? to_string(*n) : "neighbor ifindex " + std::to_string(e.ifindex)) + verb;
  } else if (nd->ndm_family == AF_INET6) {
    e.kind = KernelEvent::Kind::neighbor;
    e.ipv6 = true;
    auto n = parse_neighbor6(h);
    e.text = (n ? to_string(*n) : "IPv6 neighbor ifindex " + std::to_string(e.ifindex)) + verb;
  } else if (nd->ndm_family == AF_BRIDGE) {
    e.kind = KernelEvent::Kind::fdb;
    auto f = parse_fdb(h);
    e.text = (f ? to_string(*f) : "fdb ifindex " + std::to_string(e.ifindex)) + verb;
  } else {
    return std::nullopt;
  }
  return e;
}

std::optional<KernelEvent> route6_event(nlmsghdr* h) {
  std::uint32_t table = 0;
  auto r = parse_route6(h, &table);
  if (!r || table != RT_TABLE_MAIN) return std::nullopt;
  KernelEvent e;
  e.kind = KernelEvent::Kind::route;
  e.ipv6 = true;
  e.deleted = h->nlmsg_type == RTM_DELROUTE;
  e.ifindex = r->ifindex;
  e.dst6 = r->dst;
  e.protocol = r->protocol;
  e.text = to_string(*r) + (e.deleted ? " deleted" : " changed");
  return e;
}

std::optional<KernelEvent> route_event(nlmsghdr* h) {
  if (nlmsg_valid_hdr(h, sizeof(rtmsg)) && static_cast<const rtmsg*>(nlmsg_data(h))->rtm_family == AF_INET6) {
    return route6_event(h);
  }
  std::uint32_t table = 0;
  auto r = parse_route(h, &table);
  if (!r || table != RT_TABLE_MAIN) return std::nullopt;
  KernelEvent e;
  e.kind = KernelEvent::Kind::route;
  e.deleted = h->nlmsg_type == RTM_DELROUTE;
  e.ifindex = r->ifindex;
  e.dst = r->dst;
  e.protocol = r->protocol;
  e.text = to_string(*r) + (e.deleted ? " deleted" : " changed");
  return e;
}

std::optional<KernelEvent> address6_event(nlmsghdr* h) {
  auto a = parse_address6(h);
  if (!a) return std::nullopt;
  KernelEvent e;
  e.kind = KernelEvent::Kind::address;
  e.ipv6 = true;
  e.deleted = h->nlmsg_type == RTM_DELADDR;
  e.ifindex = a->ifindex;
  e.text = to_string(*a) + (e.deleted ? " deleted" : " added");
  return e;
}

std::optional<KernelEvent> address_event(nlmsghdr* h) {
  if (nlmsg_valid_hdr(h, sizeof(ifaddrmsg)) && static_cast<const ifaddrmsg*>(nlmsg_data(h))->ifa_family == AF_INET6) {
    return address6_event(h);
  }
  auto a = parse_address(h);
  if (!a) return std::nullopt;
  KernelEvent e;
  e.kind = KernelEvent::Kind::address;
  e.deleted = h->nlmsg_type == RTM_DELADDR;
  e.ifindex = a->ifindex;
  e.text = to_string(*a) + (e.deleted ? " deleted" : " added");
  return e;
}

std::optional<KernelEvent> parse_any(nlmsghdr* h) {
  switch (h->nlmsg_type) {
    case RTM_NEWLINK:
    case RTM_DELLINK:
      return link_event(h);
    case RTM_NEWNEIGH:
    case RTM_DELNEIGH:
      return neigh_event(h);
    case RTM_NEWROUTE:
    case RTM_DELROUTE:
      return route_event(h);
    case RTM_NEWADDR:
    case RTM_DELADDR:
      return address_event(h);
    default:
      return std::nullopt;
  }
}

class Monitor final : public Subscription {
 public:
  Monitor(NlChannel channel, int stop_fd, std::uint32_t own_port, Netlink::EventHandler on_event)
      : channel_(std::move(channel)), stop_fd_(stop_fd), own_port_(own_port), on_event_(std::move(on_event)) {
    thread_ = std::thread([this] {
      pthread_setname_np(pthread_self(), "weft-netlink");  // names the thread in top -H and /proc
      run();
    });
  }
  ~Monitor() override {
    std::uint64_t one = 1;
    if (::write(stop_fd_, &one, sizeof one) < 0) spdlog::error("netlink monitor: cannot signal stop");
    thread_.join();
    ::close(stop_fd_);
  }
  Monitor(const Monitor&) = delete;
  Monitor& operator=(const Monitor&) = delete;

 private:
  void deliver(const KernelEvent& e) {
    try {
      on_event_(e);
    } catch (const std::exception& ex) {
      spdlog::error("netlink monitor: event handler failed on {}: {}", e.text, ex.what());
    }
  }

  // Reads everything queued; false when the socket is unusable.
  bool drain() {
    for (;;) {
      long n = channel_.receive(buf_, 0);
      if (n == -EAGAIN || n == -EWOULDBLOCK) return true;
      if (n == -EINTR) continue;
      if (n == -ENOBUFS || n == -EMSGSIZE) {
        deliver({KernelEvent::Kind::overflow, false, 0, std::nullopt, 0, false,
                 "kernel notifications lost (receive buffer overflow)"});
        continue;
      }
      if (n < 0) {
        spdlog::error("netlink monitor: receive failed: {}", std::strerror(static_cast<int>(-n)));
        return false;
      }
      int left = static_cast<int>(n);
      for (auto* h = reinterpret_cast<nlmsghdr*>(buf_.data()); nlmsg_ok(h, left); h = nlmsg_next(h, &left)) {
        if (auto e = parse_event(h, own_port_)) deliver(*e);
      }
    }
  }

  void run() {
    for (;;) {
      pollfd fds[2] = {{channel_.fd(), POLLIN, 0}, {stop_fd_, POLLIN, 0}};
      if (::poll(fds, 2, -1) < 0) {
        if (errno == EINTR) continue;
        spdlog::error("netlink monitor: poll failed: {}", std::strerror(errno));
        return;
      }
      if (fds[1].revents != 0) return;
      if (!drain()) return;
    }
  }

  NlChannel channel_;
  int stop_fd_;
  std::uint32_t own_port_;
  Netlink::EventHandler on_event_;
  std::vector<std::uint8_t> buf_;
  std::thread thread_;
};

}  // namespace

std::optional<KernelEvent> parse_event(nlmsghdr* h, std::uint32_t own_port) {
  auto e = parse_any(h);
  if (e) e->own = own_port != 0 && h->nlmsg_pid == own_port;
  return e;
}

Result<std::unique_ptr<Subscription>> start_monitor(int netns_fd, std::uint32_t own_port, int buffer_bytes,
                                                    Netlink::EventHandler on_event) {
  auto channel = NlChannel::open({netns_fd,
                                  buffer_bytes,
                                  {RTNLGRP_LINK, RTNLGRP_NEIGH, RTNLGRP_IPV4_ROUTE, RTNLGRP_IPV4_IFADDR,
                                   RTNLGRP_IPV6_ROUTE, RTNLGRP_IPV6_IFADDR}});
  if (!channel) return channel.take_error();
  int stop_fd = ::eventfd(0, EFD_CLOEXEC);
  if (stop_fd < 0) return fail(std::string("netlink monitor: eventfd: ") + std::strerror(errno));
  return std::unique_ptr<Subscription>(new Monitor(std::move(channel).value(), stop_fd, own_port, std::move(on_event)));
}

}  // namespace weft::nl
