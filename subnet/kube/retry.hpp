#pragma once
// retry(): calls a KubeClient operation until it succeeds, fails for a reason retrying cannot
// fix, or the stop signal fires; transient failures wait a jittered backoff (a 403 is retried
// during the policy's forbidden_grace, see ForbiddenGrace). Logs the first
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
  ForbiddenGrace forbidden(ctx.policy.forbidden_grace);
  std::string last;
  for (;;) {
    auto r = f();
    if (r) return r;
    const ApiError& e = r.error();
    if (e.kind == ApiErrorKind::Cancelled) return r;
    if (ctx.on_error) ctx.on_error();
    if (e.kind == ApiErrorKind::Forbidden && forbidden.within()) {
      // A server that has just started answers 403 until its RBAC caches are filled: retry
      // quickly; only a 403 that lasts past the grace is returned (naming the ClusterRole).
      if (last != "(403)") spdlog::info("{}: the API server answers 403 forbidden; retrying every 100-200 ms", what);
      last = "(403)";
      if (!ctx.stop.wait_for(forbidden.pace())) {
        return ApiError{ApiErrorKind::Cancelled, 0, what + ": stopped while retrying after: " + e.message, {}};
      }
      continue;
    }
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
