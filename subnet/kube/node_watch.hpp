#pragma once
// NodeWatch: keeps a consumer in step with the Nodes in the API: list, then watch from the
// list's resourceVersion, each event handed over as it arrives. 410 Gone -> one relist; a
// dropped, timed-out or failed stream -> rewatch from the last resourceVersion seen (bookmarks
// keep it fresh), so steady state never relists. Errors are retried with jittered backoff
// (Retry-After honoured). After a transport failure the client's wait_for_server() paces the
// retry: TCP probes at the backoff's pace (~1 a second at most), the request sent at once
// when one connects. A 403 is first taken for a server still filling its RBAC caches
// (ForbiddenGrace): retried every 100-200 ms, the ClusterRole named only if it lasts.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "subnet/kube/backoff.hpp"
#include "subnet/kube/kube_client.hpp"

namespace weft::kube {

struct WatchCounters {
  std::uint64_t lists = 0, relists = 0, watches = 0, events = 0, bookmarks = 0, errors = 0;
};

class NodeWatch {
 public:
  struct Handlers {
    std::function<void(const NodeList&)> on_list;                         // replaces everything known
    std::function<void(const WatchEvent&, bool more_buffered)> on_event;  // not for bookmarks
    std::function<void(const WatchCounters&)> on_counters;                // after every change of a counter
  };

  // `seed`: a list just made for another purpose (the lease's), applied as the first list;
  // the watch starts from its resourceVersion, so events since then are not missed.
  NodeWatch(KubeClient& client, StopSignal& stop, BackoffPolicy policy, Handlers handlers,
            std::optional<NodeList> seed = std::nullopt);

  // Runs on the calling thread until `stop` is signalled.
  void run();

 private:
  bool list();  // true once a list has been applied
  void apply(const NodeList& list);
  void watch();  // one watch request and what its end means
  void failed(const ApiError& e);
  void forbidden_failed(const ApiError& e);  // a 403: see ForbiddenGrace
  void count(std::uint64_t WatchCounters::*field);

  KubeClient& client_;
  StopSignal& stop_;
  Backoff backoff_;
  ForbiddenGrace forbidden_;
  Handlers h_;
  WatchCounters counters_;
  std::string rv_;
  bool need_list_ = true;
  bool list_from_cache_ = true;  // false after a 410: the next list reads etcd
  std::string last_error_;       // logged once per distinct error, not per retry
  std::uint64_t failures_ = 0;
  std::optional<NodeList> seed_;
};

}  // namespace weft::kube
