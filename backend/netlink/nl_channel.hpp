#pragma once
// NlChannel: one NETLINK_ROUTE socket (libnl) with batched writes and request/reply reads
// (internal to backend/netlink).

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "backend/netlink/nl_ptr.hpp"
#include "core/result.hpp"

struct nlmsghdr;

namespace weft::nl {

// The kernel's answer to one request: errno (0 = success) and its extended ack message.
struct Outcome {
  int error = 0;
  std::string detail;
  bool ok() const { return error == 0; }
  std::string message() const;  // "No such device (Nexthop device is not up)"
};

class NlChannel {
 public:
  struct Options {
    int netns_fd = -1;             // open the socket in this namespace (-1: the thread's own)
    int rcvbuf = 4 << 20;          // bytes; SO_RCVBUFFORCE when allowed
    std::vector<unsigned> groups;  // multicast groups (RTNLGRP_*) for a notification socket
  };
  using Builder = std::function<MsgPtr(std::size_t)>;
  using ReplyHandler = std::function<void(nlmsghdr*)>;

  static Result<NlChannel> open(const Options& options);

  int fd() const;
  std::uint32_t port() const;

  // Sends n requests built lazily by build(i), many per sendmsg (only the last of each batch
  // asks for an ACK: rtnetlink handles a batch synchronously, so errors for earlier ones are
  // already queued when that ACK arrives). Errors are matched back by sequence number.
  std::vector<Outcome> transact(std::size_t n, const Builder& build);
  // Sends one request; on_reply sees each answer until the dump ends, the ACK, or the reply.
  // A dump the kernel marked interrupted gives EINTR: the caller retries.
  Outcome request(MsgPtr msg, const ReplyHandler& on_reply);

  // One datagram into buf (may hold several messages); -errno on failure, -EAGAIN if
  // wait_ms passes. Used by the notification reader too.
  long receive(std::vector<std::uint8_t>& buf, int wait_ms);

 private:
  explicit NlChannel(SockPtr sock) : sock_(std::move(sock)) {}
  void drain_if_dirty();
  Outcome send(const void* data, std::size_t len);

  SockPtr sock_;
  std::vector<std::uint8_t> rx_;
  bool dirty_ = false;  // answers of an abandoned exchange may still be queued
};

// Extracts the extended ack text of an NLMSG_ERROR message, if any.
std::string extended_ack(const nlmsghdr* h);

}  // namespace weft::nl
