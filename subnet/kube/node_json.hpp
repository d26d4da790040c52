#pragma once
// Node JSON <-> values: parses API responses (Node, PartialObjectMetadata, their lists, watch
// event lines, Status) with a streaming SAX reader that keeps only what weft needs (name,
// resourceVersion, annotations under the prefix, podCIDRs, InternalIPs), and builds patch
// bodies. Pure functions on strings: every response is untrusted (fuzzed).

#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.hpp"
#include "subnet/kube/kube_client.hpp"

namespace weft::kube {

// A Status object's fields (error bodies, and the object of a watch ERROR event).
struct ApiStatusBody {
  int code = 0;
  std::string reason;
  std::string message;
};

// One list page.
struct NodeListPage {
  NodeList list;
  std::string continue_token;  // metadata.continue: more pages follow
};

Result<NodeInfo> parse_node(std::string_view body, std::string_view annotation_prefix);
Result<NodeListPage> parse_node_list(std::string_view body, std::string_view annotation_prefix);
// The same, pulling the body from a stream as the parser needs it (a list of 5,000 Nodes is
// megabytes: it is decoded while it arrives and never held whole). Same results and errors;
// an exception thrown by the stream's buffer (an I/O error) goes through to the caller.
Result<NodeListPage> parse_node_list(std::istream& body, std::string_view annotation_prefix);

// One watch line: an event, or for type ERROR the Status inside it.
struct WatchLine {
  std::optional<WatchEvent> event;
  std::optional<ApiStatusBody> error;
};
Result<WatchLine> parse_watch_line(std::string_view line, std::string_view annotation_prefix);

// A Status body, if the text is one.
std::optional<ApiStatusBody> parse_status(std::string_view body);

// {"metadata":{"resourceVersion":"RV","annotations":{"k":"v","gone":null}}} (no RV when empty).
std::string annotations_patch_body(const std::string& resource_version,
                                   const std::map<std::string, std::optional<std::string>>& patch);

// A Node condition as the server holds it.
struct ConditionState {
  std::string status;
  std::string last_transition_time;
};
// The condition of `type` in a full Node body; nullopt when absent (or the body unreadable).
std::optional<ConditionState> find_condition(std::string_view node_body, const std::string& type);

// {"status":{"conditions":[{...,"lastHeartbeatTime":now,"lastTransitionTime":T}]}}: T is now
// only on a transition (no condition yet, or another status); else `current`'s, unchanged.
std::string condition_patch_body(const NodeCondition& condition, const std::string& now_rfc3339,
                                 const std::optional<ConditionState>& current = std::nullopt);

}  // namespace weft::kube
