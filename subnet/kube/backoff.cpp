#include "subnet/kube/backoff.hpp"

#include <algorithm>
#include <utility>

namespace weft::kube {

Backoff::Backoff(BackoffPolicy policy) : policy_(policy), rng_(std::random_device{}()) {}

std::chrono::milliseconds Backoff::next(const ApiError& error) {
  using std::chrono::milliseconds;
  const bool transport = error.kind == ApiErrorKind::Transport;
  auto cap = std::max(transport ? policy_.max_transport : policy_.max, policy_.initial);
  int shift = std::min(attempts_, 20);
  ++attempts_;
  auto full = std::min<std::int64_t>(policy_.initial.count() << shift, cap.count());
  auto [lo, hi] = transport ? std::pair{full, full + full / 4} : std::pair{full / 2, full};
  // A server that says it is overloaded or unavailable, but not when to come back, gets no
  // faster retries than a dead one.
  if ((error.kind == ApiErrorKind::TooMany || error.http_status == 503) && !error.retry_after) {
    lo = std::max<std::int64_t>(lo, policy_.max_transport.count());
    hi = std::max(hi, lo + lo / 4);
  }
  milliseconds d(std::uniform_int_distribution<std::int64_t>(lo, hi)(rng_));
  if (error.retry_after) {
    // The server said when: wait that long, plus a little jitter so clients do not return in step.
    auto ra = std::min(*error.retry_after, policy_.max_retry_after);
    d = std::max(d, ra + milliseconds(std::uniform_int_distribution<std::int64_t>(0, ra.count() / 10)(rng_)));
  }
  return d;
}

bool ForbiddenGrace::within() {
  auto now = std::chrono::steady_clock::now();
  if (!since_) since_ = now;
  return now - *since_ < grace_;
}

bool ForbiddenGrace::hint_due() {
  if (within() || hinted_) return false;
  hinted_ = true;
  return true;
}

std::chrono::milliseconds ForbiddenGrace::pace() {
  bool quick = within();
  std::uniform_int_distribution<std::int64_t> d(quick ? 100 : 500, quick ? 200 : 1000);
  return std::chrono::milliseconds(d(rng_));
}

void StopSignal::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopped_ = true;
  }
  cv_.notify_all();
}

bool StopSignal::stopped() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stopped_;
}

bool StopSignal::wait_for(std::chrono::milliseconds d) {
  std::unique_lock<std::mutex> lock(mu_);
  return !cv_.wait_for(lock, d, [this] { return stopped_; });
}

}  // namespace weft::kube
