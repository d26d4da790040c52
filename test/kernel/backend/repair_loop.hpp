#pragma once
// The owner's side of repair, as the agent does it: changes posted by the monitor thread
// wake this loop, which waits for a short quiet spell (coalescing a burst) and then
// reconciles on the calling thread. There is no timer: only notifications drive it.

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <vector>

#include "backend/vxlan/vxlan_backend.hpp"

namespace weft::test {

class RepairLoop {
 public:
  RepairLoop(VxlanBackend& backend, PeerSet peers) : backend_(backend), peers_(std::move(peers)) {
    started_ = static_cast<bool>(backend_.watch([this](const KernelChange& c) { post(c); }));
  }
  ~RepairLoop() { backend_.unwatch(); }
  RepairLoop(const RepairLoop&) = delete;
  RepairLoop& operator=(const RepairLoop&) = delete;

  bool started() const { return started_; }
  int reconciles() const { return reconciles_; }

  // Reconciles on each burst of changes until done() holds or the timeout passes.
  template <class Done>
  bool run_until(Done done, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!done()) {
      std::unique_lock<std::mutex> lock(mu_);
      if (!cv_.wait_until(lock, deadline, [&] { return !pending_.empty(); })) return false;
      // Debounce: keep collecting while changes keep coming, up to kQuiet apart.
      while (cv_.wait_for(lock, kQuiet, [&] { return pending_.size() != seen_; })) seen_ = pending_.size();
      pending_.clear();
      seen_ = 0;
      lock.unlock();
      backend_.reconcile(peers_);
      ++reconciles_;
    }
    return true;
  }

 private:
  static constexpr std::chrono::milliseconds kQuiet{10};

  void post(const KernelChange& change) {  // monitor thread
    std::lock_guard<std::mutex> lock(mu_);
    pending_.push_back(change);
    cv_.notify_all();
  }

  VxlanBackend& backend_;
  PeerSet peers_;
  bool started_ = false;
  int reconciles_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<KernelChange> pending_;
  std::size_t seen_ = 0;
};

}  // namespace weft::test
