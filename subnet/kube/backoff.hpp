#pragma once
// Retry pacing: jittered exponential backoff that honours Retry-After, and a stop signal
// that wakes every waiting thread at once (so stop() never waits out a backoff).

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <random>

#include "subnet/kube/api_result.hpp"

namespace weft::kube {

struct BackoffPolicy {
  std::chrono::milliseconds initial{50};
  std::chrono::milliseconds max{4000};  // HTTP errors (5xx, 429 without Retry-After, 401)
  // Connection refused/reset and timeouts: the API server is down or restarting, and cheap to
  // probe; a low cap means the first attempt after it returns is at most this late.
  std::chrono::milliseconds max_transport{150};
  std::chrono::milliseconds max_retry_after{60000};
};

class Backoff {
 public:
  explicit Backoff(BackoffPolicy policy = {});
  // The delay before the next attempt after `error`, in [d/2, d] with d doubling per attempt.
  std::chrono::milliseconds next(const ApiError& error);
  void reset() { attempts_ = 0; }
  int attempts() const { return attempts_; }

 private:
  BackoffPolicy policy_;
  int attempts_ = 0;
  std::mt19937_64 rng_;
};

// A latch: stop() wakes every wait_for() for good.
class StopSignal {
 public:
  void stop();
  bool stopped() const;
  // Sleeps up to `d`; false when stopped (before or during the wait).
  bool wait_for(std::chrono::milliseconds d);

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopped_ = false;
};

}  // namespace weft::kube
