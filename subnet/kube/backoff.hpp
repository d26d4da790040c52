#pragma once
// Retry pacing: jittered exponential backoff that honours Retry-After, and a stop signal
// that wakes every waiting thread at once (so stop() never waits out a backoff).

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <random>

#include "subnet/kube/api_result.hpp"

namespace weft::kube {

struct BackoffPolicy {
  std::chrono::milliseconds initial{50};
  std::chrono::milliseconds max{4000};  // HTTP errors (5xx, 429 without Retry-After, 401)
  // Connection refused/reset and timeouts: the API server is down, restarting or out of reach.
  // Paced as client-go's reflector paces its relists: doubling, capped near 1 s, jittered
  // upwards (each wait in [d, 1.25 d]), so a weftd makes at most ~0.9 connects a second while
  // the server is away (5,000 nodes: ~4,500/s at a server trying to come back, not 20,000).
  // ServerProbe keeps this pace between its connects, and retries at once when one succeeds.
  std::chrono::milliseconds max_transport{1000};
  std::chrono::milliseconds max_retry_after{60000};
  // An API server that just (re)started answers 403 until its RBAC caches are filled: for this
  // long after the first 403 in a row, a 403 is retried every 100-200 ms and not blamed on RBAC.
  std::chrono::milliseconds forbidden_grace{10000};
};

class Backoff {
 public:
  explicit Backoff(BackoffPolicy policy = {});
  // The delay before the next attempt after `error`, d doubling per attempt up to the cap:
  // in [d/2, d] after an HTTP error, in [d, 1.25 d] after a transport error (so the cap is a
  // floor on the average gap). A 429 or 503 waits its Retry-After (+0-10%), or without one
  // at least max_transport.
  std::chrono::milliseconds next(const ApiError& error);
  void reset() { attempts_ = 0; }
  int attempts() const { return attempts_; }

 private:
  BackoffPolicy policy_;
  int attempts_ = 0;
  std::mt19937_64 rng_;
};

// ForbiddenGrace: tells a 403 from a server still filling its RBAC caches (retry fast, say
// nothing about permissions) from a missing permission (a 403 that lasts past the grace).
class ForbiddenGrace {
 public:
  explicit ForbiddenGrace(std::chrono::milliseconds grace) : grace_(grace) {}
  // On a 403: true while the 403s in a row started less than `grace` ago.
  bool within();
  // On a 403 past the grace: true once per run of 403s (name the ClusterRole then).
  bool hint_due();
  // The wait before retrying after a 403: 100-200 ms within the grace, 0.5-1 s after it.
  std::chrono::milliseconds pace();
  void clear() { since_.reset(), hinted_ = false; }  // anything but a 403 ends the run
  std::chrono::milliseconds grace() const { return grace_; }

 private:
  std::chrono::milliseconds grace_;
  std::optional<std::chrono::steady_clock::time_point> since_;
  bool hinted_ = false;
  std::mt19937_64 rng_{std::random_device{}()};
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
