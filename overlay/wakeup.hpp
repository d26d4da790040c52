#pragma once
// Wakeup: how other threads (watch streams, netlink and nftables monitors, signals) tell the
// agent's thread that something changed. Events are bits, so a burst of a thousand peer
// changes is one pending bit: the agent reconciles once.

#include <chrono>
#include <condition_variable>
#include <mutex>

namespace weft {

class Wakeup {
 public:
  enum Event : unsigned {
    kPeers = 1U << 0U,     // the subnet manager has a new peer set
    kKernel = 1U << 1U,    // something weft owns changed in the kernel
    kFirewall = 1U << 2U,  // nftables changed
    kStop = 1U << 3U,      // SIGTERM/SIGINT
  };

  // Thread-safe and cheap: sets bits and wakes the waiter.
  void post(unsigned events) {
    {
      std::lock_guard lock(mu_);
      pending_ |= events;
    }
    cv_.notify_one();
  }

  // Returns the pending events (clearing them) as soon as there are any, or 0 at the deadline.
  unsigned wait_until(std::chrono::steady_clock::time_point deadline) {
    std::unique_lock lock(mu_);
    cv_.wait_until(lock, deadline, [this] { return pending_ != 0; });
    unsigned out = pending_;
    pending_ = 0;
    return out;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  unsigned pending_ = 0;
};

}  // namespace weft
