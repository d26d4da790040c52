#pragma once
// retry(): calls a KubeClient operation until it succeeds, fails for a reason retrying cannot
// fix, or the stop signal fires; transient failures wait a jittered backoff. Logs the first
// failure and each new message, not every attempt.

#include <spdlog/spdlog.h>

#include <functional>
#include <string>

#include "subnet/kube/backoff.hpp"

namespace weft::kube {

struct RetryContext {
  StopSignal& stop;
  BackoffPolicy policy;
  std::function<void()> on_error;  // counts failed attempts
};

template <class F>
auto retry(const RetryContext& ctx, const std::string& what, F&& f) -> decltype(f()) {
  Backoff backoff(ctx.policy);
  std::string last;
  for (;;) {
    auto r = f();
    if (r) return r;
    const ApiError& e = r.error();
    if (e.kind == ApiErrorKind::Cancelled) return r;
    if (ctx.on_error) ctx.on_error();
    if (!e.transient()) return r;
    if (e.message != last) {
      spdlog::warn("{}: {} (retrying)", what, e.message);
      last = e.message;
    }
    if (!ctx.stop.wait_for(backoff.next(e))) {
      return ApiError{ApiErrorKind::Cancelled, 0, what + ": stopped while retrying after: " + e.message, {}};
    }
  }
}

}  // namespace weft::kube
