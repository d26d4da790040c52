#pragma once
// SilenceWatchdog: ends a stream that has received nothing for longer than its deadline. A
// watch over a path that drops packets without a reset would otherwise wait for its read
// timeout (minutes); the server's bookmarks give a cadence to judge silence by. The deadline is
// asked again on every check, so it can tighten while the stream runs (it is learned from the
// stream's own bookmarks). A thread per watched stream; it sleeps until the stream could first
// have been silent too long (an idle daemon's watch costs a wake-up per deadline, not a poll).

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>

namespace weft::kube {

// SilenceLimit: how long a watch may stay silent before its connection is presumed dead:
//   max(floor, factor x the LARGEST gap between two bookmarks of one stream, 2 x a limit that fired).
// Never the last or smallest gap: a real kube-apiserver sends a bookmark about once a minute,
// but also one soon after a watch starts and two within a second or two before timeoutSeconds;
// a limit learned from those short gaps killed healthy idle watches. The floor (default 3 x
// 60 s) covers the real cadence before any gap is known. Thread-safe: the watch reports gaps,
// the watchdog asks for the limit.
class SilenceLimit {
 public:
  SilenceLimit(std::chrono::milliseconds floor, int factor) : floor_(floor), factor_(factor) {}
  void learn_gap(std::chrono::milliseconds gap);  // between two bookmarks of one stream
  void fired();                                   // a limit fired: the next one is twice as long
  std::chrono::milliseconds limit() const;        // 0: off (factor 0)
  std::chrono::milliseconds gap() const { return std::chrono::milliseconds(gap_ms_.load()); }  // largest

 private:
  std::chrono::milliseconds floor_;
  int factor_;
  std::atomic<std::int64_t> gap_ms_{0};
  std::atomic<std::int64_t> fired_ms_{0};
};

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
