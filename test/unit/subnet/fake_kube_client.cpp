#include "fake_kube_client.hpp"

#include "subnet/annotations.hpp"

namespace weft::test {

namespace {
ApiError cancelled() { return ApiError{ApiErrorKind::Cancelled, 0, "cancelled", {}}; }
// A Node's creationTimestamp: now, as the API server stamps it (in ms, finer than its seconds).
std::string created_at(std::uint64_t /*rv*/) {
  return weft::format_rfc3339_ms(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
}
}  // namespace

void FakeKubeClient::Cluster::record(WatchEventType type, const NodeInfo& n) {
  history.emplace_back(rv, WatchEvent{type, n});
  cv.notify_all();
}

void FakeKubeClient::Cluster::add_node(const std::string& name, std::map<std::string, std::string> annotations,
                                       std::vector<std::string> pod_cidrs) {
  std::lock_guard<std::mutex> lock(mu);
  ++rv;
  NodeInfo n{name, std::to_string(rv), created_at(rv), std::move(annotations), std::move(pod_cidrs), {"192.0.2.1"}};
  nodes[name] = n;
  record(WatchEventType::Added, n);
}

void FakeKubeClient::Cluster::set_pod_cidrs(const std::string& name, std::vector<std::string> pod_cidrs) {
  std::lock_guard<std::mutex> lock(mu);
  auto& n = nodes.at(name);
  n.pod_cidrs = std::move(pod_cidrs);
  n.resource_version = std::to_string(++rv);
  NodeInfo meta = n;
  meta.pod_cidrs.clear();
  meta.internal_ips.clear();
  record(WatchEventType::Modified, meta);
}

void FakeKubeClient::Cluster::set_annotations(const std::string& name, std::map<std::string, std::string> a) {
  std::lock_guard<std::mutex> lock(mu);
  auto& n = nodes.at(name);
  n.annotations = std::move(a);
  n.resource_version = std::to_string(++rv);
  record(WatchEventType::Modified, n);
}

void FakeKubeClient::Cluster::delete_node(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu);
  auto n = nodes.at(name);
  nodes.erase(name);
  n.resource_version = std::to_string(++rv);
  record(WatchEventType::Deleted, n);
}

void FakeKubeClient::Cluster::compact() {
  std::lock_guard<std::mutex> lock(mu);
  history.clear();
  floor = rv;
  ++watch_epoch;  // live watchers fall behind the compaction too
  cv.notify_all();
}

void FakeKubeClient::Cluster::end_watches() {
  std::lock_guard<std::mutex> lock(mu);
  ++watch_epoch;
  cv.notify_all();
}

void FakeKubeClient::Cluster::add_node_behind_compaction(const std::string& name,
                                                         std::map<std::string, std::string> annotations) {
  std::lock_guard<std::mutex> lock(mu);
  ++watch_epoch;
  ++rv;
  NodeInfo n{name, std::to_string(rv), created_at(rv), std::move(annotations), {}, {}};
  nodes[name] = n;
  history.clear();
  floor = rv;
  cv.notify_all();
}

std::optional<ApiError> FakeKubeClient::take_failure() {
  if (c_->fail_next.empty()) return std::nullopt;
  auto e = c_->fail_next.front();
  c_->fail_next.pop_front();
  return e;
}

ApiResult<NodeInfo> FakeKubeClient::get_node(const std::string& name) {
  std::lock_guard<std::mutex> lock(c_->mu);
  if (shut_) return cancelled();
  ++c_->gets;
  if (auto e = take_failure()) return *e;
  auto it = c_->nodes.find(name);
  if (it == c_->nodes.end()) return ApiError{ApiErrorKind::NotFound, 404, "nodes \"" + name + "\" not found", {}};
  return it->second;
}

ApiResult<NodeList> FakeKubeClient::list_nodes() { return list(false); }
ApiResult<NodeList> FakeKubeClient::list_nodes_with_spec() { return list(true); }
ApiResult<NodeList> FakeKubeClient::list_nodes_cached(bool with_spec) { return list(with_spec, true); }

void FakeKubeClient::Cluster::freeze_cache() {
  std::lock_guard<std::mutex> lock(mu);
  cache.emplace(rv, nodes);
}

ApiResult<NodeList> FakeKubeClient::list(bool with_spec, bool cached) {
  std::lock_guard<std::mutex> lock(c_->mu);
  if (shut_) return cancelled();
  ++(cached ? c_->cached_lists : with_spec ? c_->full_lists : c_->lists);
  if (auto e = take_failure()) return *e;
  const bool lagging = cached && c_->cache;
  NodeList l{std::to_string(lagging ? c_->cache->first : c_->rv), {}};
  for (const auto& [name, n] : lagging ? c_->cache->second : c_->nodes) {
    NodeInfo meta = n;
    if (!with_spec) meta.pod_cidrs.clear();  // metadata only
    meta.internal_ips.clear();
    l.items.push_back(meta);
  }
  return l;
}

ApiResult<WatchEnd> FakeKubeClient::watch_nodes(const std::string& rv_text, const WatchHandler& on_event) {
  return watch(rv_text, [&](const WatchEvent& ev, bool more) {
    on_event(ev, more);
    return false;
  });
}

ApiResult<WatchEnd> FakeKubeClient::watch_nodes_until(const std::string& rv_text, std::chrono::seconds /*timeout*/,
                                                      const std::function<bool(const WatchEvent&)>& done) {
  // The server's timeout is the end of the kept history here: a catch-up never blocks.
  {
    std::lock_guard<std::mutex> lock(c_->mu);
    ++c_->catch_ups;
  }
  return watch(rv_text, [&](const WatchEvent& ev, bool) { return done(ev); }, true);
}

ApiResult<WatchEnd> FakeKubeClient::watch(const std::string& rv_text,
                                          const std::function<bool(const WatchEvent&, bool)>& on_event,
                                          bool end_at_history) {
  std::unique_lock<std::mutex> lock(c_->mu);
  if (shut_) return cancelled();
  ++c_->watches;
  if (auto e = take_failure()) return *e;
  std::uint64_t from = std::stoull(rv_text);
  std::uint64_t epoch = c_->watch_epoch;
  WatchEnd end;
  for (;;) {
    if (from < c_->floor) return ApiError{ApiErrorKind::Gone, 410, "too old resource version", {}};
    std::vector<WatchEvent> batch;
    for (const auto& [rv, ev] : c_->history) {
      if (rv > from) batch.push_back(ev);
    }
    if (!batch.empty()) {
      from = std::stoull(batch.back().node.resource_version);
      lock.unlock();
      for (std::size_t i = 0; i < batch.size(); ++i) {
        ++end.events;
        if (on_event(batch[i], i + 1 < batch.size())) {
          end.done = true;
          return end;
        }
      }
      lock.lock();
      continue;
    }
    if (shut_) return cancelled();
    if (end_at_history) return end;
    if (c_->watch_epoch != epoch) return end;
    c_->cv.wait(lock);
  }
}

ApiResult<NodeInfo> FakeKubeClient::patch_node_annotations(
    const std::string& name, const std::string& rv, const std::map<std::string, std::optional<std::string>>& patch) {
  std::lock_guard<std::mutex> lock(c_->mu);
  if (shut_) return cancelled();
  ++c_->patches;
  if (auto e = take_failure()) return *e;
  auto it = c_->nodes.find(name);
  if (it == c_->nodes.end()) return ApiError{ApiErrorKind::NotFound, 404, "not found", {}};
  if (!rv.empty() && rv != it->second.resource_version) {
    return ApiError{ApiErrorKind::Conflict, 409, "the object has been modified", {}};
  }
  auto before = it->second.annotations;
  for (const auto& [k, v] : patch) {
    if (v) {
      it->second.annotations[k] = *v;
    } else {
      it->second.annotations.erase(k);
    }
  }
  if (it->second.annotations != before) {
    it->second.resource_version = std::to_string(++c_->rv);
    c_->record(WatchEventType::Modified, it->second);
  }
  return it->second;
}

ApiStatus FakeKubeClient::patch_node_condition(const std::string& name, const NodeCondition& condition) {
  std::lock_guard<std::mutex> lock(c_->mu);
  if (shut_) return cancelled();
  ++c_->patches;
  if (auto e = take_failure()) return *e;
  auto& list = c_->conditions[name];
  std::erase_if(list, [&](const NodeCondition& c) { return c.type == condition.type; });
  list.push_back(condition);
  c_->cv.notify_all();
  return std::monostate{};
}

void FakeKubeClient::shutdown() {
  std::lock_guard<std::mutex> lock(c_->mu);
  shut_ = true;
  c_->cv.notify_all();
}

}  // namespace weft::test
