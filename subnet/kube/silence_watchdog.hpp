#pragma once
// SilenceWatchdog: ends a stream that has received nothing for longer than its deadline. A
// watch over a path that drops packets without a reset would otherwise wait for its read
// timeout (minutes); the server's bookmarks give a cadence to judge silence by. The deadline is
// asked again on every check, so it can tighten while the stream runs (it is learned from the
// stream's own bookmarks). A thread per watched stream; it sleeps until the stream could first
// have been silent too long (an idle daemon's watch costs a wake-up per deadline, not a poll).

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

namespace weft::kube {

class SilenceWatchdog {
 public:
  // `deadline()` gives the allowed silence, zero for none (yet: asked again every `unknown_recheck`);
  // `on_silence` runs once, on the watchdog's thread, when it is exceeded.
  SilenceWatchdog(std::function<std::chrono::milliseconds()> deadline, std::function<void()> on_silence,
                  std::chrono::milliseconds unknown_recheck = std::chrono::milliseconds(1000));
  ~SilenceWatchdog();
  SilenceWatchdog(const SilenceWatchdog&) = delete;
  SilenceWatchdog& operator=(const SilenceWatchdog&) = delete;

  void touch();  // something arrived
  bool fired() const;
  std::chrono::milliseconds fired_after() const;  // the silence that fired it

 private:
  void run();

  std::function<std::chrono::milliseconds()> deadline_;
  std::function<void()> on_silence_;
  std::chrono::milliseconds unknown_recheck_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::chrono::steady_clock::time_point last_;
  bool done_ = false;
  bool fired_ = false;
  std::chrono::milliseconds fired_after_{0};
  std::thread thread_;
};

}  // namespace weft::kube
