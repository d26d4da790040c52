#include "subnet/kube/silence_watchdog.hpp"

namespace weft::kube {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

SilenceWatchdog::SilenceWatchdog(std::function<milliseconds()> deadline, std::function<void()> on_silence,
                                 milliseconds check)
    : deadline_(std::move(deadline)), on_silence_(std::move(on_silence)), check_(check), last_(Clock::now()) {
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
    cv_.wait_for(lock, check_, [this] { return done_; });
    if (done_) return;
    auto allowed = deadline_();
    auto silent = std::chrono::duration_cast<milliseconds>(Clock::now() - last_);
    if (allowed.count() > 0 && silent > allowed) {
      fired_ = true;
      fired_after_ = silent;
      lock.unlock();
      on_silence_();
      return;
    }
  }
}

}  // namespace weft::kube
