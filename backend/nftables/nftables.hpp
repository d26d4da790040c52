#pragma once
// The seam to nftables: run a batch of nft commands in-process (libnftables, no fork).

#include <memory>
#include <string>

#include "overlay/result.hpp"

namespace weft {

class Nftables {
 public:
  virtual ~Nftables() = default;
  // Runs `commands` as one transaction; returns what nft printed (listings) or its error text.
  virtual Result<std::string> run(const std::string& commands) = 0;
};

// libnftables in the calling thread's network namespace.
std::unique_ptr<Nftables> make_libnftables();

// A socket that becomes readable when any nftables object changes (NFNLGRP_NFTABLES),
// so hand edits of weft's table are noticed without polling.
class NftablesMonitor {
 public:
  NftablesMonitor();
  ~NftablesMonitor();
  NftablesMonitor(const NftablesMonitor&) = delete;
  NftablesMonitor& operator=(const NftablesMonitor&) = delete;

  int fd() const { return fd_; }
  bool ok() const { return fd_ >= 0; }
  // Reads everything pending; true if any message (or an overflow) arrived.
  bool drain();

 private:
  int fd_ = -1;
};

}  // namespace weft
