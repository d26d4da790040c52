#include "overlay/nftables/nftables.hpp"

#include <arpa/inet.h>
#include <dirent.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <nftables/libnftables.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>

namespace weft {
namespace {

// The netlink port ids of the libnftables sockets this process wrote through, newest last. A
// context's socket is closed when its batch ends, usually before the monitor reads the batch's
// notifications, so the ids are kept: the last kOwnPorts of them (a port id is handed out again
// only after the kernel's autobind counter wraps, or to the same process's next socket).
class OwnPorts {
 public:
  static OwnPorts& instance() {
    static OwnPorts ports;
    return ports;
  }
  void remember(std::uint32_t port) {
    std::lock_guard lock(mu_);
    if (std::find(ports_.begin(), ports_.end(), port) != ports_.end()) return;
    ports_.push_back(port);
    if (ports_.size() > kOwnPorts) ports_.pop_front();
  }
  bool contains(std::uint32_t port) const {
    std::lock_guard lock(mu_);
    return std::find(ports_.begin(), ports_.end(), port) != ports_.end();
  }

 private:
  static constexpr std::size_t kOwnPorts = 64;
  mutable std::mutex mu_;
  std::deque<std::uint32_t> ports_;
};

// Records the port id of every NETLINK_NETFILTER socket this process holds (libnftables does not
// hand out its socket; the monitor's own socket is among them and never writes). libnftables
// leaves its socket unbound until its first send: it is bound here (the same autobind the send
// would do), so the id is known before the batch commits and the monitor thread reads it.
void remember_netfilter_ports() {
  DIR* dir = ::opendir("/proc/self/fd");
  if (!dir) return;
  while (const dirent* e = ::readdir(dir)) {
    char* end = nullptr;
    long fd = std::strtol(e->d_name, &end, 10);
    if (end == e->d_name || *end != '\0' || fd == ::dirfd(dir)) continue;
    int value = 0;
    socklen_t len = sizeof value;
    if (::getsockopt(static_cast<int>(fd), SOL_SOCKET, SO_DOMAIN, &value, &len) != 0 || value != AF_NETLINK) continue;
    len = sizeof value;
    if (::getsockopt(static_cast<int>(fd), SOL_SOCKET, SO_PROTOCOL, &value, &len) != 0 || value != NETLINK_NETFILTER)
      continue;
    sockaddr_nl addr{};
    len = sizeof addr;
    if (::getsockname(static_cast<int>(fd), reinterpret_cast<sockaddr*>(&addr), &len) != 0) continue;
    if (addr.nl_pid == 0) {
      sockaddr_nl any{};
      any.nl_family = AF_NETLINK;
      len = sizeof addr;
      if (::bind(static_cast<int>(fd), reinterpret_cast<sockaddr*>(&any), sizeof any) != 0 ||
          ::getsockname(static_cast<int>(fd), reinterpret_cast<sockaddr*>(&addr), &len) != 0)
        continue;
    }
    if (addr.nl_pid != 0) OwnPorts::instance().remember(addr.nl_pid);
  }
  ::closedir(dir);
}

// A fresh libnftables context per batch: a context keeps a cache of every table, set and
// element it has listed (megabytes with thousands of peers in the VXLAN allow-list) until it is
// freed, and a batch is rare (peer changes, repairs), so holding it costs more than it saves.
class LibNftables : public Nftables {
 public:
  Result<std::string> run(const std::string& commands) override { return run_with(commands, 0); }
  Result<std::string> list_json(const std::string& command) override { return run_with(command, NFT_CTX_OUTPUT_JSON); }

 private:
  static Result<std::string> run_with(const std::string& commands, unsigned output_flags) {
    std::unique_ptr<nft_ctx, decltype(&nft_ctx_free)> ctx(nft_ctx_new(NFT_CTX_DEFAULT), &nft_ctx_free);
    if (!ctx) return fail("nftables: cannot create a libnftables context");
    remember_netfilter_ports();  // the context's socket is open from nft_ctx_new on
    if (output_flags != 0) nft_ctx_output_set_flags(ctx.get(), nft_ctx_output_get_flags(ctx.get()) | output_flags);
    nft_ctx_buffer_output(ctx.get());
    nft_ctx_buffer_error(ctx.get());
    int rc = nft_run_cmd_from_buffer(ctx.get(), commands.c_str());
    std::string out = nft_ctx_get_output_buffer(ctx.get());
    std::string err = nft_ctx_get_error_buffer(ctx.get());
    if (rc != 0) return fail(err.empty() ? "nft command failed" : err);
    return out;
  }
};

}  // namespace

std::unique_ptr<Nftables> make_libnftables() { return std::make_unique<LibNftables>(); }

namespace {

constexpr std::size_t align4(std::size_t n) { return (n + 3U) & ~std::size_t{3}; }

// Who made a transaction: NEWGEN's nlmsg_pid (the writer's netlink port), NFTA_GEN_PROC_PID
// (the thread's id in the initial PID namespace) and NFTA_GEN_PROC_NAME (that thread's name).
NftablesEvents::Writer newgen_writer(const char* msg, std::size_t msg_len) {
  NftablesEvents::Writer w;
  nlmsghdr h{};
  std::memcpy(&h, msg, sizeof h);
  w.port = h.nlmsg_pid;
  std::size_t at = align4(sizeof(nlmsghdr)) + align4(sizeof(nfgenmsg));
  while (at + sizeof(nlattr) <= msg_len) {
    nlattr a{};
    std::memcpy(&a, msg + at, sizeof a);
    if (a.nla_len < sizeof(nlattr) || at + a.nla_len > msg_len) break;
    const char* payload = msg + at + sizeof(nlattr);
    std::size_t payload_len = a.nla_len - sizeof(nlattr);
    auto type = a.nla_type & NLA_TYPE_MASK;
    if (type == NFTA_GEN_PROC_PID && payload_len >= sizeof(std::uint32_t)) {
      std::memcpy(&w.pid, payload, sizeof w.pid);
      w.pid = ntohl(w.pid);
    } else if (type == NFTA_GEN_PROC_NAME) {
      w.name.assign(payload, strnlen(payload, payload_len));
    }
    at += align4(a.nla_len);
  }
  return w;
}

}  // namespace

bool written_by_this_process(const NftablesEvents::Writer& w) {
  return w.port != 0 && OwnPorts::instance().contains(w.port);
}

bool NftablesEvents::feed(const void* data, std::size_t len) {
  const auto* bytes = static_cast<const char*>(data);
  bool foreign = false;
  std::size_t at = 0;
  while (at + sizeof(nlmsghdr) <= len) {
    nlmsghdr h{};
    std::memcpy(&h, bytes + at, sizeof h);
    if (h.nlmsg_len < sizeof(nlmsghdr) || at + h.nlmsg_len > len) break;
    if ((h.nlmsg_type >> 8U) == NFNL_SUBSYS_NFTABLES) {
      if ((h.nlmsg_type & 0xffU) != NFT_MSG_NEWGEN) {
        open_ = true;
      } else {
        if (open_ && !ours_(newgen_writer(bytes + at, h.nlmsg_len))) foreign = true;
        open_ = false;
      }
    }
    at += align4(h.nlmsg_len);
  }
  return foreign;
}

NftablesMonitor::NftablesMonitor() : events_(written_by_this_process) {
  fd_ = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_NETFILTER);
  if (fd_ < 0) return;
  sockaddr_nl addr{};
  addr.nl_family = AF_NETLINK;
  addr.nl_groups = 1U << (NFNLGRP_NFTABLES - 1);
  if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

NftablesMonitor::~NftablesMonitor() {
  if (fd_ >= 0) ::close(fd_);
}

bool NftablesMonitor::drain() {
  bool foreign = false;
  std::array<char, 65536> buf{};
  for (;;) {
    ssize_t n = ::recv(fd_, buf.data(), buf.size(), 0);
    if (n > 0) {
      foreign = events_.feed(buf.data(), static_cast<std::size_t>(n)) || foreign;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == ENOBUFS) {  // lost messages: something may have changed
      foreign = true;
      continue;
    }
    return foreign;
  }
}

}  // namespace weft
