#include "subnet/kube/silence_watchdog.hpp"

#include <algorithm>

namespace weft::kube {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

void SilenceLimit::learn_gap(milliseconds gap) {
  auto seen = gap_ms_.load();
  while (gap.count() > seen && !gap_ms_.compare_exchange_weak(seen, gap.count())) {
  }
}

void SilenceLimit::fired() {
  auto limit = this->limit().count();
  auto seen = fired_ms_.load();
  while (2 * limit > seen && !fired_ms_.compare_exchange_weak(seen, 2 * limit)) {
  }
}

milliseconds SilenceLimit::limit() const {
  if (factor_ <= 0) return milliseconds(0);
  return std::max({floor_, milliseconds(gap_ms_.load() * factor_), milliseconds(fired_ms_.load())});
}

SilenceWatchdog::SilenceWatchdog(std::function<milliseconds()> deadline, std::function<void()> on_silence,
                                 milliseconds unknown_recheck)
    : deadline_(std::move(deadline)),
      on_silence_(std::move(on_silence)),
      unknown_recheck_(unknown_recheck),
      last_(Clock::now()) {
  thread_ = std::thread([this] { run(); });
}

SilenceWatchdog::~SilenceWatchdog() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    done_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void SilenceWatchdog::touch() {
  std::lock_guard<std::mutex> lock(mu_);
  last_ = Clock::now();
}

bool SilenceWatchdog::fired() const {
  std::lock_guard<std::mutex> lock(mu_);
  return fired_;
}

milliseconds SilenceWatchdog::fired_after() const {
  std::lock_guard<std::mutex> lock(mu_);
  return fired_after_;
}

void SilenceWatchdog::run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!done_) {
    auto allowed = deadline_();
    auto now = Clock::now();
    if (allowed.count() <= 0) {
      cv_.wait_until(lock, now + unknown_recheck_, [this] { return done_; });
      continue;
    }
    auto silent = std::chrono::duration_cast<milliseconds>(now - last_);
    if (silent > allowed) {
      fired_ = true;
      fired_after_ = silent;
      lock.unlock();
      on_silence_();
      return;
    }
    // touch() only moves last_ later, so nothing can fire before this; wake then and look again.
    cv_.wait_until(lock, last_ + allowed + milliseconds(1), [this] { return done_; });
  }
}

}  // namespace weft::kube
