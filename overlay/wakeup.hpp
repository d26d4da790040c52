#pragma once
// Wakeup: how other threads (watch streams, netlink and nftables monitors, signals) tell the
// agent's thread that something changed. Events are bits, so a burst of a thousand peer
// changes is one pending bit: the agent reconciles once.
//
// It also shows other threads whether the agent's loop keeps up (/healthz): each return of the
// agent's thread to wait_until() is progress; events it has taken (an iteration in hand) or
// that wait for it are work queued. stalled_for() is how long there has been work and no
// progress.

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>

namespace weft {

class Wakeup {
 public:
  using Clock = std::chrono::steady_clock;

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
      if (pending_ == 0) pending_since_ = Clock::now();
      pending_ |= events;
    }
    cv_.notify_one();
  }

  // Returns the pending events (clearing them) as soon as there are any, or 0 at the deadline.
  // The agent's thread only: the loop is waiting until this returns, then working.
  unsigned wait_until(Clock::time_point deadline) {
    std::unique_lock lock(mu_);
    state_ = Loop::kWaiting;
    cv_.wait_until(lock, deadline, [this] { return pending_ != 0; });
    unsigned out = pending_;
    pending_ = 0;
    state_ = Loop::kWorking;
    working_since_ = Clock::now();
    return out;
  }

  // How long, at `now`, the loop has had work without progress: since it took its last events
  // while it has not come back to wait_until(), or since posted events wait for it. Zero while
  // it waits with nothing queued, and before its first wait (weftd's start may wait minutes for
  // its lease, which is not a stuck loop).
  Clock::duration stalled_for(Clock::time_point now) const {
    std::lock_guard lock(mu_);
    if (state_ == Loop::kNotStarted) return Clock::duration::zero();
    auto since = state_ == Loop::kWorking ? working_since_ : pending_ ? pending_since_ : now;
    return std::max(now - since, Clock::duration::zero());
  }

 private:
  enum class Loop { kNotStarted, kWaiting, kWorking };
  mutable std::mutex mu_;
  std::condition_variable cv_;
  unsigned pending_ = 0;
  Clock::time_point pending_since_;  // when pending_ last became non-zero
  Loop state_ = Loop::kNotStarted;
  Clock::time_point working_since_;  // when the loop last took events (or timed out)
};

}  // namespace weft
