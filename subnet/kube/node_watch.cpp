#include "subnet/kube/node_watch.hpp"

#include <spdlog/spdlog.h>

namespace weft::kube {

NodeWatch::NodeWatch(KubeClient& client, StopSignal& stop, BackoffPolicy policy, Handlers handlers,
                     std::optional<NodeList> seed)
    : client_(client),
      stop_(stop),
      backoff_(policy),
      forbidden_(policy.forbidden_grace),
      h_(std::move(handlers)),
      seed_(std::move(seed)) {}

void NodeWatch::count(std::uint64_t WatchCounters::*field) {
  ++(counters_.*field);
  if (h_.on_counters) h_.on_counters(counters_);
}

void NodeWatch::run() {
  if (seed_) {
    apply(*seed_);
    seed_.reset();
  }
  while (!stop_.stopped()) {
    if (need_list_ && !list()) continue;
    watch();
  }
}

bool NodeWatch::list() {
  // From the watch cache, as client-go's informers list; after a 410 from etcd, which may go
  // back in time on a lagging cache (client-go's rule too).
  auto r = list_from_cache_ ? client_.list_nodes_cached(false) : client_.list_nodes();
  if (!r) {
    failed(r.error());
    return false;
  }
  if (counters_.lists > 0) {
    count(&WatchCounters::relists);
    spdlog::info("node watch: relisted {} nodes at resourceVersion {}", r->items.size(), r->resource_version);
  }
  forbidden_.clear();
  backoff_.reset();  // the server serves again: a later dropped watch resumes at once
  list_from_cache_ = true;
  apply(*r);
  return true;
}

void NodeWatch::apply(const NodeList& list) {
  count(&WatchCounters::lists);
  rv_ = list.resource_version;
  need_list_ = false;
  h_.on_list(list);
}

void NodeWatch::watch() {
  count(&WatchCounters::watches);
  bool any_event = false;
  auto started = std::chrono::steady_clock::now();
  auto r = client_.watch_nodes(rv_, [&](const WatchEvent& ev, bool more) {
    any_event = true;
    rv_ = ev.node.resource_version;
    if (ev.type == WatchEventType::Bookmark) {
      count(&WatchCounters::bookmarks);
      return;
    }
    count(&WatchCounters::events);
    h_.on_event(ev, more);
  });
  if (any_event) backoff_.reset();
  if (r) {
    forbidden_.clear();
    if (failures_) spdlog::info("node watch: recovered after {} failed attempts", failures_);
    failures_ = 0;
    last_error_.clear();
    // A normal end (timeoutSeconds): rewatch at once. A server that ends every watch at once
    // without an event is misbehaving: pace it like an error.
    if (!any_event && std::chrono::steady_clock::now() - started < std::chrono::seconds(1)) {
      stop_.wait_for(backoff_.next(ApiError{ApiErrorKind::Server, 0, "watch ended at once", {}}));
    }
    return;
  }
  if (r.error().kind == ApiErrorKind::Gone) {
    failures_ = 0;
    spdlog::info("node watch: resourceVersion {} expired ({}); relisting", rv_, r.error().message);
    need_list_ = true;
    list_from_cache_ = false;
    return;
  }
  failed(r.error());
}

void NodeWatch::failed(const ApiError& e) {
  if (e.kind == ApiErrorKind::Cancelled) return;
  count(&WatchCounters::errors);
  ++failures_;
  if (e.kind == ApiErrorKind::Forbidden) {
    forbidden_failed(e);
    return;
  }
  forbidden_.clear();
  if (e.message != last_error_) {
    spdlog::warn("node watch: {} (retrying)", e.message);
    last_error_ = e.message;
  }
  auto pace = backoff_.next(e);
  if (e.kind == ApiErrorKind::Transport) {
    // Unreachable or hung: retry as soon as the server answers again (probed), never into a
    // path that swallows packets.
    client_.wait_for_server(pace, stop_);
  } else {
    stop_.wait_for(pace);
  }
}

// A 403 just after the API server (re)started is its RBAC caches filling: retry quickly, and
// blame the ClusterRole only when it lasts past the grace (once per run of 403s).
void NodeWatch::forbidden_failed(const ApiError& e) {
  const std::string kForbidden = "(403)";
  if (forbidden_.hint_due()) {
    spdlog::warn("node watch: {} (403s for {} ms now; retrying)", e.message, forbidden_.grace().count());
  } else if (last_error_ != kForbidden && forbidden_.within()) {
    spdlog::info(
        "node watch: the API server answers 403 forbidden; retrying every 100-200 ms (a server that has just "
        "started refuses until its RBAC caches are filled)");
  }
  last_error_ = kForbidden;
  stop_.wait_for(forbidden_.pace());
}

}  // namespace weft::kube
