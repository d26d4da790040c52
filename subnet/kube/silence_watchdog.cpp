#include "subnet/kube/silence_watchdog.hpp"

namespace weft::kube {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

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
