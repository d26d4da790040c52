#pragma once
// The seam to nftables: run a batch of nft commands in-process (libnftables, no fork).

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "core/result.hpp"

namespace weft {

class Nftables {
 public:
  virtual ~Nftables() = default;
  // Runs `commands` as one transaction; returns what nft printed (listings) or its error text.
  virtual Result<std::string> run(const std::string& commands) = 0;
  // Runs a listing command and returns libnftables' JSON output (the `nft -j` schema).
  virtual Result<std::string> list_json(const std::string& command) = 0;
};

// libnftables in the calling thread's network namespace.
std::unique_ptr<Nftables> make_libnftables();

// Sorts nftables notifications by who made them. Each transaction's messages end with a
// NEWGEN message that names the writer; messages of one transaction may span reads.
class NftablesEvents {
 public:
  struct Writer {
    std::uint32_t port = 0;  // the writer's netlink port id (NEWGEN's nlmsg_pid)
    std::uint32_t pid = 0;   // the writing thread's id in the initial PID namespace (not ours in a pod)
    std::string name;        // and its name
  };
  explicit NftablesEvents(std::function<bool(const Writer&)> ours) : ours_(std::move(ours)) {}
  // Feeds one read of netlink messages; true when a transaction by another process ended in it.
  bool feed(const void* data, std::size_t len);

 private:
  std::function<bool(const Writer&)> ours_;
  bool open_ = false;  // messages seen whose NEWGEN has not come yet
};

// True when `w` wrote through a netlink socket that make_libnftables() opened in this process.
// Netlink port ids belong to the network namespace, not the PID namespace, so this holds in a pod
// without hostPID, where NEWGEN's thread id is a host PID that /proc/self/task does not know.
bool written_by_this_process(const NftablesEvents::Writer& w);

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
  // Reads everything pending; true if another process changed nftables (or messages were
  // lost). Our own transactions are told apart by the netlink port in their closing NEWGEN
  // message (written_by_this_process), so weftd's writes do not wake weftd.
  bool drain();

 private:
  int fd_ = -1;
  NftablesEvents events_;
};

}  // namespace weft
