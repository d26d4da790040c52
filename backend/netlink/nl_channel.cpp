#include "backend/netlink/nl_channel.hpp"

#include <fcntl.h>
#include <linux/netlink.h>
#include <netlink/netlink.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace weft::nl {
namespace {

constexpr std::size_t kBatchBytes = std::size_t{60} * 1024;  // well under the default 208 KiB send buffer
constexpr std::size_t kRxBytes = std::size_t{64} * 1024;     // a dump datagram is at most 32 KiB
constexpr int kAnswerWaitMs = 5000;

std::string errno_text(int e) { return std::strerror(e); }

// Moves the calling thread into a network namespace for the lifetime of the object.
class ThreadNetns {
 public:
  explicit ThreadNetns(int target) {
    if (target < 0) return;
    saved_ = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (saved_ < 0) {
      error_ = "cannot open /proc/thread-self/ns/net: " + errno_text(errno);
    } else if (::setns(target, CLONE_NEWNET) != 0) {
      error_ = "cannot enter the network namespace (setns): " + errno_text(errno);
      ::close(saved_);
      saved_ = -1;
    }
  }
  ~ThreadNetns() {
    if (saved_ < 0) return;
    if (::setns(saved_, CLONE_NEWNET) != 0) std::terminate();  // the thread would stay elsewhere
    ::close(saved_);
  }
  ThreadNetns(const ThreadNetns&) = delete;
  ThreadNetns& operator=(const ThreadNetns&) = delete;
  const std::string& error() const { return error_; }

 private:
  int saved_ = -1;
  std::string error_;
};

void set_int_option(int fd, int level, int name, int value) {
  ::setsockopt(fd, level, name, &value, sizeof value);  // best effort: older kernels lack some
}

void set_receive_buffer(int fd, int bytes) {
  if (::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof bytes) != 0) {
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bytes, sizeof bytes);  // capped by rmem_max
  }
}

const nlmsgerr* error_of(const nlmsghdr* h) { return static_cast<const nlmsgerr*>(nlmsg_data(h)); }

}  // namespace

std::string Outcome::message() const {
  if (error == 0) return "ok";
  std::string text = errno_text(error);
  if (!detail.empty()) text += " (" + detail + ")";
  return text;
}

std::string extended_ack(const nlmsghdr* h) {
  if (h->nlmsg_type != NLMSG_ERROR || (h->nlmsg_flags & NLM_F_ACK_TLVS) == 0) return {};
  const auto* err = error_of(h);
  std::size_t offset = NLMSG_HDRLEN + sizeof(nlmsgerr);
  if ((h->nlmsg_flags & NLM_F_CAPPED) == 0) offset += err->msg.nlmsg_len - NLMSG_HDRLEN;
  if (offset >= h->nlmsg_len) return {};
  const auto* base = reinterpret_cast<const char*>(h) + offset;
  auto* attrs = reinterpret_cast<nlattr*>(const_cast<char*>(base));
  nlattr* msg = nla_find(attrs, static_cast<int>(h->nlmsg_len - offset), NLMSGERR_ATTR_MSG);
  return msg ? std::string(nla_get_string(msg)) : std::string();
}

Result<NlChannel> NlChannel::open(const Options& options) {
  SockPtr sock(nl_socket_alloc());
  if (!sock) return fail("netlink: out of memory allocating a socket");
  nl_socket_disable_seq_check(sock.get());  // answers are matched by sequence number here
  nl_socket_disable_auto_ack(sock.get());
  {
    ThreadNetns in(options.netns_fd);
    if (!in.error().empty()) return fail("netlink: " + in.error());
    int rc = nl_connect(sock.get(), NETLINK_ROUTE);
    if (rc < 0) return fail(std::string("netlink: cannot open a NETLINK_ROUTE socket: ") + nl_geterror(rc));
  }
  int fd = nl_socket_get_fd(sock.get());
  set_receive_buffer(fd, options.rcvbuf);
  set_int_option(fd, SOL_NETLINK, NETLINK_EXT_ACK, 1);  // error text from the kernel
  set_int_option(fd, SOL_NETLINK, NETLINK_CAP_ACK, 1);  // errors without our request echoed
  for (unsigned group : options.groups) {
    int rc = nl_socket_add_membership(sock.get(), static_cast<int>(group));
    if (rc < 0) return fail("netlink: cannot join group " + std::to_string(group) + ": " + nl_geterror(rc));
  }
  return NlChannel(std::move(sock));
}

int NlChannel::fd() const { return nl_socket_get_fd(sock_.get()); }

std::uint32_t NlChannel::port() const { return nl_socket_get_local_port(sock_.get()); }

long NlChannel::receive(std::vector<std::uint8_t>& buf, int wait_ms) {
  if (buf.size() < kRxBytes) buf.resize(kRxBytes);
  if (wait_ms != 0) {
    pollfd p{fd(), POLLIN, 0};
    int ready = ::poll(&p, 1, wait_ms);
    if (ready < 0) return -errno;
    if (ready == 0) return -EAGAIN;
  }
  iovec iov{buf.data(), buf.size()};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  ssize_t n = ::recvmsg(fd(), &mh, MSG_DONTWAIT);
  if (n < 0) return -errno;
  if ((mh.msg_flags & MSG_TRUNC) != 0) return -EMSGSIZE;
  return n;
}

void NlChannel::drain_if_dirty() {
  if (!dirty_) return;
  for (;;) {
    long n = receive(rx_, 0);
    if (n > 0 || n == -EINTR || n == -ENOBUFS || n == -EMSGSIZE) continue;
    break;
  }
  dirty_ = false;
}

Outcome NlChannel::send(const void* data, std::size_t len) {
  int rc = nl_sendto(sock_.get(), const_cast<void*>(data), len);
  if (rc < 0) return {errno != 0 ? errno : EIO, "sendto"};
  return {};
}

std::vector<Outcome> NlChannel::transact(std::size_t n, const Builder& build) {
  drain_if_dirty();
  std::vector<Outcome> out(n);
  std::vector<std::uint8_t> batch;
  std::vector<std::size_t> index_of;  // position in the batch -> request index
  std::size_t i = 0;
  while (i < n) {
    batch.clear();
    index_of.clear();
    std::uint32_t first_seq = 0;
    std::size_t last_at = 0;
    for (; i < n && batch.size() < kBatchBytes; ++i) {
      MsgPtr msg = build(i);
      if (!msg) {
        out[i] = {EINVAL, "weft could not encode this request"};
        continue;
      }
      nl_complete_msg(sock_.get(), msg.get());
      nlmsghdr* h = nlmsg_hdr(msg.get());
      if (index_of.empty()) first_seq = h->nlmsg_seq;
      last_at = batch.size();
      const auto* bytes = reinterpret_cast<const std::uint8_t*>(h);
      batch.insert(batch.end(), bytes, bytes + NLMSG_ALIGN(h->nlmsg_len));
      index_of.push_back(i);
    }
    if (index_of.empty()) continue;
    auto* last = reinterpret_cast<nlmsghdr*>(batch.data() + last_at);
    last->nlmsg_flags |= NLM_F_ACK;
    const std::uint32_t last_seq = last->nlmsg_seq;
    auto fail_batch = [&](const Outcome& why) {
      for (std::size_t k : index_of) {
        if (out[k].ok()) out[k] = why;
      }
      dirty_ = true;
    };
    if (auto sent = send(batch.data(), batch.size()); !sent.ok()) {
      fail_batch(sent);
      continue;
    }
    for (bool done = false; !done;) {
      long len = receive(rx_, kAnswerWaitMs);
      if (len == -EINTR) continue;
      if (len < 0) {
        fail_batch({static_cast<int>(-len), "answer not received; the next resync checks again"});
        break;
      }
      int left = static_cast<int>(len);
      for (auto* h = reinterpret_cast<nlmsghdr*>(rx_.data()); nlmsg_ok(h, left); h = nlmsg_next(h, &left)) {
        if (h->nlmsg_type != NLMSG_ERROR) continue;
        std::uint32_t k = h->nlmsg_seq - first_seq;
        if (k >= index_of.size()) continue;  // a stale answer
        int err = -error_of(h)->error;
        if (err != 0) out[index_of[k]] = {err, extended_ack(h)};
        if (h->nlmsg_seq == last_seq) done = true;
      }
    }
  }
  return out;
}

Outcome NlChannel::request(MsgPtr msg, const ReplyHandler& on_reply) {
  drain_if_dirty();
  nl_complete_msg(sock_.get(), msg.get());
  nlmsghdr* req = nlmsg_hdr(msg.get());
  const std::uint32_t seq = req->nlmsg_seq;
  if (auto sent = send(req, req->nlmsg_len); !sent.ok()) return sent;
  bool interrupted = false;
  for (;;) {
    long len = receive(rx_, kAnswerWaitMs);
    if (len == -EINTR) continue;
    if (len < 0) {
      dirty_ = true;
      return {static_cast<int>(-len), "no complete answer from the kernel"};
    }
    int left = static_cast<int>(len);
    for (auto* h = reinterpret_cast<nlmsghdr*>(rx_.data()); nlmsg_ok(h, left); h = nlmsg_next(h, &left)) {
      if (h->nlmsg_seq != seq) continue;
      if (h->nlmsg_type == NLMSG_ERROR) return {-error_of(h)->error, extended_ack(h)};
      if (h->nlmsg_type == NLMSG_DONE) {
        int status = 0;
        if (h->nlmsg_len >= NLMSG_HDRLEN + sizeof(int)) std::memcpy(&status, nlmsg_data(h), sizeof status);
        if (status < 0) return {-status, "dump failed"};
        if (interrupted || (h->nlmsg_flags & NLM_F_DUMP_INTR) != 0) return {EINTR, "dump interrupted"};
        return {};
      }
      if ((h->nlmsg_flags & NLM_F_DUMP_INTR) != 0) interrupted = true;
      on_reply(h);
      if ((h->nlmsg_flags & NLM_F_MULTI) == 0) return {};
    }
  }
}

}  // namespace weft::nl
