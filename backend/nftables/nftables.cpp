#include "backend/nftables/nftables.hpp"

#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <nftables/libnftables.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>

namespace weft {
namespace {

class LibNftables : public Nftables {
 public:
  LibNftables() : ctx_(nft_ctx_new(NFT_CTX_DEFAULT)) {
    nft_ctx_buffer_output(ctx_);
    nft_ctx_buffer_error(ctx_);
  }
  ~LibNftables() override { nft_ctx_free(ctx_); }
  LibNftables(const LibNftables&) = delete;
  LibNftables& operator=(const LibNftables&) = delete;

  Result<std::string> run(const std::string& commands) override {
    int rc = nft_run_cmd_from_buffer(ctx_, commands.c_str());
    std::string out = nft_ctx_get_output_buffer(ctx_);
    std::string err = nft_ctx_get_error_buffer(ctx_);
    if (rc != 0) return fail(err.empty() ? "nft command failed" : err);
    return out;
  }

 private:
  nft_ctx* ctx_;
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
