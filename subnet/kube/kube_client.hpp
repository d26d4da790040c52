#pragma once
// KubeClient: the few Node API calls weft makes. An interface (no cpprest here) so the lease
// protocol and the watch loop are tested against an in-memory fake; make_kube_client() gives
// the real one (kube_client_impl.cpp, cpprestsdk).
//
// Threading: every method is thread-safe and blocks the calling thread (never call from a
// cpprest pool thread). shutdown() may be called from any thread: it cancels requests in
// flight (a blocked watch returns within milliseconds) and makes later calls fail with
// ApiErrorKind::Cancelled. A single call is a single attempt: retries are the caller's.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "subnet/kube/api_result.hpp"
#include "subnet/kube/backoff.hpp"
#include "subnet/kube/kube_config.hpp"

namespace weft::kube {

// A Node as weft reads it: metadata always; spec/status fields only from get_node().
struct NodeInfo {
  std::string name;
  std::string resource_version;
  std::string creation_timestamp;                  // metadata.creationTimestamp (RFC3339, set by the API server)
  std::map<std::string, std::string> annotations;  // only keys under the client's annotation prefix
  std::vector<std::string> pod_cidrs;              // spec.podCIDR and spec.podCIDRs (get_node only)
  std::vector<std::string> internal_ips;           // status.addresses of type InternalIP (get_node only)
  bool operator==(const NodeInfo&) const = default;
};

struct NodeList {
  std::string resource_version;  // the list's: watch from here
  std::vector<NodeInfo> items;
};

enum class WatchEventType { Added, Modified, Deleted, Bookmark };

struct WatchEvent {
  WatchEventType type = WatchEventType::Added;
  NodeInfo node;  // for a bookmark only resource_version is set
};

// How a watch stream ended without error: the server closed it (timeoutSeconds or a restart).
struct WatchEnd {
  std::uint64_t events = 0;  // events delivered, bookmarks included
  bool done = false;         // watch_nodes_until: its `done` said so (the client ended the stream)
};

// A condition on the Node's status (strategic-merge patched by type).
struct NodeCondition {
  std::string type;    // "NetworkUnavailable"
  std::string status;  // "True" / "False"
  std::string reason;
  std::string message;
};

// Called for each watch event as it arrives; `more_buffered` is true when further bytes are
// already buffered, so a consumer can apply a burst before notifying anyone.
using WatchHandler = std::function<void(const WatchEvent& event, bool more_buffered)>;

class KubeClient {
 public:
  virtual ~KubeClient() = default;

  // GET /api/v1/nodes/NAME (full object: podCIDRs and addresses).
  virtual ApiResult<NodeInfo> get_node(const std::string& name) = 0;

  // Metadata-only list (PartialObjectMetadataList), all pages.
  virtual ApiResult<NodeList> list_nodes() = 0;

  // Full list (spec.podCIDRs too), all pages: only when leasing a new subnet, which must avoid
  // every Node's podCIDR. Pages are parsed as they come; only weft's fields are kept.
  virtual ApiResult<NodeList> list_nodes_with_spec() { return list_nodes(); }

  // The same list from the API server's watch cache (resourceVersion=0: one request, no etcd
  // read, what client-go's informers list with). It may lag the latest writes: callers that
  // must see every claim up to now (the lease's verification) use the lists above.
  virtual ApiResult<NodeList> list_nodes_cached(bool with_spec) {
    return with_spec ? list_nodes_with_spec() : list_nodes();
  }

  // Metadata-only watch from resource_version with bookmarks; blocks until the stream ends.
  // An ERROR event or HTTP 410 comes back as ApiErrorKind::Gone.
  virtual ApiResult<WatchEnd> watch_nodes(const std::string& resource_version, const WatchHandler& on_event) = 0;

  // The same watch, ended by the client as soon as `done(event)` returns true for a delivered
  // event (bookmarks included), or by the server after `timeout`. For a short catch-up from a
  // list to a known write; `done` is not called after the stream ends.
  virtual ApiResult<WatchEnd> watch_nodes_until(const std::string& resource_version, std::chrono::seconds timeout,
                                                const std::function<bool(const WatchEvent&)>& done) = 0;

  // Strategic-merge patch of metadata.annotations (through nodes/NAME/status, as flannel's RBAC
  // allows), with metadata.resourceVersion as a precondition when not empty (409 -> Conflict).
  // nullopt values remove keys. Returns the Node after the patch.
  virtual ApiResult<NodeInfo> patch_node_annotations(
      const std::string& name, const std::string& resource_version,
      const std::map<std::string, std::optional<std::string>>& patch) = 0;

  // Strategic-merge patch of one status condition (other conditions are kept).
  virtual ApiStatus patch_node_condition(const std::string& name, const NodeCondition& condition) = 0;

  // After a transport failure: returns when the next attempt is worth making -- after `pace`
  // when the server was never unreachable, at once when it answers again after refusing
  // connects or not answering them (a request sent into a dead path would hang in its
  // handshake). The real client probes with TCP connects after `pace`, then ~1 a second
  // (ServerProbe); this default just waits `pace`. Returns early when `stop` fires.
  virtual void wait_for_server(std::chrono::milliseconds pace, StopSignal& stop) { stop.wait_for(pace); }

  virtual void shutdown() = 0;
};

// Tunables; tests shorten the timeouts.
struct ClientOptions {
  std::string annotation_prefix = "weft.io/";        // NodeInfo keeps only these annotations
  std::chrono::milliseconds request_timeout{10000};  // idle timeout of list/get/patch
  int watch_timeout_min_s = 60;                      // timeoutSeconds drawn from [min, max]
  int watch_timeout_max_s = 90;
  std::chrono::milliseconds watch_idle_margin{15000};  // read timeout = timeoutSeconds + this
  // Silence limit of a watch (SilenceLimit): no byte for max(floor, factor x the largest
  // bookmark gap seen) and the stream is dropped and resumed from its resourceVersion. The
  // floor covers a real kube-apiserver's bookmark cadence (~60 s) with two bookmarks missed, so
  // a quiet healthy watch is never killed; with the defaults the watch's read timeout
  // (timeoutSeconds + watch_idle_margin) usually ends a dead stream first. Each limit that fires
  // doubles the next one. Only tests against a double with fast bookmarks should lower the
  // floor (weftd --watch-silence-min). factor 0: off.
  int watch_silence_factor = 3;
  std::chrono::milliseconds watch_silence_min{180000};
  bool full_nodes = false;                 // lists and watches of whole Nodes, not metadata (FlannelCompat)
  bool probe_server = true;                // wait_for_server() probes with TCP connects (else it just waits)
  std::size_t max_list_body = 16U << 20U;  // per page
  std::size_t max_body = 1U << 20U;        // get/patch responses
  std::size_t max_watch_line = 1U << 20U;
  int list_page_size = 500;
  std::size_t pool_threads = 2;  // cpprest's global pool (first client only)
};

// The real client over HTTPS (cpprestsdk). Logs once if TLS verification is off.
std::unique_ptr<KubeClient> make_kube_client(const KubeConfig& config, const ClientOptions& options = {});

}  // namespace weft::kube
