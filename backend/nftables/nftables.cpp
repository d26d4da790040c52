#include "backend/nftables/nftables.hpp"

#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <nftables/libnftables.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
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

NftablesMonitor::NftablesMonitor() {
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
  bool any = false;
  std::array<char, 65536> buf{};
  for (;;) {
    ssize_t n = ::recv(fd_, buf.data(), buf.size(), 0);
    if (n > 0) {
      any = true;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == ENOBUFS) {  // lost messages: something changed
      any = true;
      continue;
    }
    return any;
  }
}

}  // namespace weft
