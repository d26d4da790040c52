#include "overlay/nftables/nftables.hpp"

#include <arpa/inet.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <nftables/libnftables.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>

namespace weft {
namespace {

// A fresh libnftables context per batch: a context keeps a cache of every table, set and
// element it has listed (megabytes with thousands of peers in the VXLAN allow-list) until it is
// freed, and a batch is rare (peer changes, repairs), so holding it costs more than it saves.
class LibNftables : public Nftables {
 public:
  Result<std::string> run(const std::string& commands) override {
    std::unique_ptr<nft_ctx, decltype(&nft_ctx_free)> ctx(nft_ctx_new(NFT_CTX_DEFAULT), &nft_ctx_free);
    if (!ctx) return fail("nftables: cannot create a libnftables context");
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

// Who made a transaction: NEWGEN's NFTA_GEN_PROC_PID (the thread's id as the kernel sees it)
// and NFTA_GEN_PROC_NAME (that thread's name).
NftablesEvents::Writer newgen_writer(const char* msg, std::size_t msg_len) {
  NftablesEvents::Writer w;
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

// A transaction is ours when its thread is one of this process's threads, by id and name (the
// id alone could be another process's in a container's PID namespace).
bool written_by_us(const NftablesEvents::Writer& w) {
  if (w.pid == 0) return false;
  std::ifstream comm("/proc/self/task/" + std::to_string(w.pid) + "/comm");
  std::string name;
  return comm && std::getline(comm, name) && name == w.name;
}

}  // namespace

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

NftablesMonitor::NftablesMonitor() : events_(written_by_us) {
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
