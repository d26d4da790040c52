#pragma once
// FakeKubeClient: an in-memory Node API behind the KubeClient interface, for the lease
// protocol and the watch loop without HTTP. One global resourceVersion; watches replay from
// the kept history and then wait for new events; faults are queued errors.

#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>

#include "subnet/kube/kube_client.hpp"

namespace weft::test {

using namespace weft::kube;

class FakeKubeClient : public KubeClient {
 public:
  // Shared state, so several clients (one per manager) see one cluster.
  struct Cluster {
    std::mutex mu;
    std::condition_variable cv;
    std::uint64_t rv = 0;
    std::uint64_t floor = 0;  // watches from below this get 410
    std::uint64_t watch_epoch = 0;
    std::map<std::string, NodeInfo> nodes;
    std::map<std::string, std::vector<NodeCondition>> conditions;
    std::deque<std::pair<std::uint64_t, WatchEvent>> history;
    std::deque<ApiError> fail_next;  // the next calls (any kind) fail with these
    std::uint64_t lists = 0, full_lists = 0, watches = 0, gets = 0, patches = 0;
    std::uint64_t cached_lists = 0;  // resourceVersion=0 lists (the API server's watch cache)
    std::uint64_t catch_ups = 0;     // watch_nodes_until calls
    // A lagging watch cache: while set, cached lists return the Nodes as they were here.
    std::optional<std::pair<std::uint64_t, std::map<std::string, NodeInfo>>> cache;
    void freeze_cache();

    void add_node(const std::string& name, std::map<std::string, std::string> annotations = {},
                  std::vector<std::string> pod_cidrs = {});
    void set_annotations(const std::string& name, std::map<std::string, std::string> annotations);
    void set_pod_cidrs(const std::string& name, std::vector<std::string> pod_cidrs);  // as node-ipam does
    void delete_node(const std::string& name);
    void compact();
    void end_watches();
    // Atomically: end the watches, add a Node, compact. A watcher is then behind the history.
    void add_node_behind_compaction(const std::string& name, std::map<std::string, std::string> annotations);
    void record(WatchEventType type, const NodeInfo& n);  // needs mu held
  };

  explicit FakeKubeClient(std::shared_ptr<Cluster> cluster) : c_(std::move(cluster)) {}

  ApiResult<NodeInfo> get_node(const std::string& name) override;
  ApiResult<NodeList> list_nodes() override;
  ApiResult<NodeList> list_nodes_with_spec() override;
  ApiResult<NodeList> list_nodes_cached(bool with_spec) override;
  ApiResult<WatchEnd> watch_nodes(const std::string& rv, const WatchHandler& on_event) override;
  ApiResult<WatchEnd> watch_nodes_until(const std::string& rv, std::chrono::seconds timeout,
                                        const std::function<bool(const WatchEvent&)>& done) override;
  ApiResult<NodeInfo> patch_node_annotations(const std::string& name, const std::string& rv,
                                             const std::map<std::string, std::optional<std::string>>& patch) override;
  ApiStatus patch_node_condition(const std::string& name, const NodeCondition& condition) override;
  void shutdown() override;

 private:
  std::optional<ApiError> take_failure();  // needs mu held
  ApiResult<NodeList> list(bool with_spec, bool cached = false);
  // Replays the history after `rv`, then waits for more (or returns, `end_at_history`); the
  // handler returns true to end the watch.
  ApiResult<WatchEnd> watch(const std::string& rv, const std::function<bool(const WatchEvent&, bool)>& on_event,
                            bool end_at_history = false);
  std::shared_ptr<Cluster> c_;
  bool shut_ = false;
};

}  // namespace weft::test
