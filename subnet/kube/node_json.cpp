#include "subnet/kube/node_json.hpp"

#include <algorithm>
#include <array>
#include <istream>
#include <nlohmann/json.hpp>
#include <vector>

namespace weft::kube {
namespace {

using nlohmann::json;

constexpr std::size_t kMaxDepth = 32;

// Where the Node objects sit in a document (path of keys; "[]" is an array element).
enum class Shape { Node, List, Watch };

// A SAX reader that walks the document once and keeps only the fields weft reads.
class NodeSax : public nlohmann::json_sax<json> {
 public:
  NodeSax(Shape shape, std::string_view prefix) : shape_(shape), prefix_(prefix) {}

  std::vector<NodeInfo> nodes;
  std::string kind, type, list_rv, continue_token;
  ApiStatusBody status;  // the root's (an error body) or the watch object's (an ERROR event)
  bool has_status_code = false;
  std::string error;

  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t v) override { return number(v); }
  bool number_unsigned(number_unsigned_t v) override {
    return number(static_cast<number_integer_t>(std::min<number_unsigned_t>(v, 1U << 30U)));
  }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool key(string_t& k) override {
    key_ = k;
    return true;
  }
  bool start_object(std::size_t) override { return open('o'); }
  bool start_array(std::size_t) override { return open('a'); }
  bool end_object() override { return close(); }
  bool end_array() override { return close(); }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& ex) override {
    error = ex.what();
    return false;
  }

  bool string(string_t& v) override {
    std::string_view leaf = leaf_name();
    if (path_.empty()) return true;  // a bare string: rejected by the root check
    std::size_t depth = path_.size();
    if (depth == 1) {
      if (leaf == "kind")
        kind = v;
      else if (leaf == "type")
        type = v;
      else if (leaf == "reason")
        status.reason = v;
      else if (leaf == "message")
        status.message = v;
      return true;
    }
    if (depth == 2 && path_[1] == "metadata" && shape_ == Shape::List) {
      if (leaf == "resourceVersion")
        list_rv = v;
      else if (leaf == "continue")
        continue_token = v;
      return true;
    }
    if (shape_ == Shape::Watch && depth == 2 && path_[1] == "object") {
      if (leaf == "reason")
        status.reason = v;
      else if (leaf == "message")
        status.message = v;
    }
    node_string(leaf, v);
    return true;
  }

 private:
  std::string_view leaf_name() const {
    if (!kinds_.empty() && kinds_.back() == 'a') return "[]";
    return key_;  // (a ?: with "[]" would make a temporary std::string and dangle)
  }

  // Depth of a Node object's root in the path, per shape.
  std::size_t node_depth() const { return shape_ == Shape::Node ? 1 : shape_ == Shape::Watch ? 2 : 3; }

  bool at_node_root(std::size_t depth) const {
    if (depth != node_depth()) return false;
    if (shape_ == Shape::Watch) return path_[1] == "object";
    if (shape_ == Shape::List) return path_[1] == "items" && path_[2] == "[]";
    return true;
  }

  bool open(char k) {
    if (path_.size() >= kMaxDepth) {
      error = "nested deeper than " + std::to_string(kMaxDepth) + " levels";
      return false;
    }
    path_.emplace_back(path_.empty() ? std::string() : std::string(leaf_name()));
    kinds_.push_back(k);
    if (k == 'o' && at_node_root(path_.size())) {
      node_open_ = true;
      cur_ = NodeInfo{};
    }
    if (k == 'o' && node_open_ && rel_is({"status", "addresses", "[]"})) {
      addr_type_.clear();
      addr_.clear();
    }
    return true;
  }

  bool close() {
    if (kinds_.back() == 'o' && node_open_ && rel_is({"status", "addresses", "[]"}) && addr_type_ == "InternalIP") {
      cur_.internal_ips.push_back(addr_);
    }
    if (kinds_.back() == 'o' && at_node_root(path_.size()) && node_open_) {
      node_open_ = false;
      nodes.push_back(std::move(cur_));
    }
    path_.pop_back();
    kinds_.pop_back();
    if (!kinds_.empty() && kinds_.back() == 'o') key_.clear();
    return true;
  }

  bool number(number_integer_t v) {
    std::string_view leaf = leaf_name();
    bool root_status = path_.size() == 1;
    bool watch_status = shape_ == Shape::Watch && path_.size() == 2 && path_[1] == "object";
    if ((root_status || watch_status) && leaf == "code") {
      status.code = static_cast<int>(std::clamp<number_integer_t>(v, 0, 999));
      has_status_code = true;
    }
    return true;
  }

  // True when the open containers below the Node's root are exactly `rel`.
  bool rel_is(std::initializer_list<std::string_view> rel) const {
    std::size_t base = node_depth();
    if (path_.size() != base + rel.size()) return false;
    return std::equal(rel.begin(), rel.end(), path_.begin() + static_cast<std::ptrdiff_t>(base));
  }

  void node_string(std::string_view leaf, const std::string& v) {
    if (!node_open_) return;
    if (rel_is({"metadata"})) {
      if (leaf == "name")
        cur_.name = v;
      else if (leaf == "resourceVersion")
        cur_.resource_version = v;
      else if (leaf == "creationTimestamp")
        cur_.creation_timestamp = v.substr(0, 64);
    } else if (rel_is({"metadata", "annotations"})) {
      if (leaf.starts_with(prefix_)) cur_.annotations[std::string(leaf)] = v;
    } else if ((rel_is({"spec"}) && leaf == "podCIDR") || rel_is({"spec", "podCIDRs"})) {
      if (std::find(cur_.pod_cidrs.begin(), cur_.pod_cidrs.end(), v) == cur_.pod_cidrs.end()) {
        cur_.pod_cidrs.push_back(v);
      }
    } else if (rel_is({"status", "addresses", "[]"})) {
      if (leaf == "type")
        addr_type_ = v;
      else if (leaf == "address")
        addr_ = v;
    }
  }

  Shape shape_;
  std::string prefix_;
  std::vector<std::string> path_;
  std::vector<char> kinds_;
  std::string key_;
  bool node_open_ = false;
  NodeInfo cur_;
  std::string addr_type_, addr_;
};

// The document must be an object: `first` is its first non-blank character (or EOF).
Status check_root(std::char_traits<char>::int_type first) {
  if (first == std::char_traits<char>::eof()) return fail("empty response");
  if (first != '{') return fail("response is not a JSON object");
  return ok_status();
}

Status parsed(bool ok, const NodeSax& sax) {
  if (!ok) return fail("malformed JSON: " + (sax.error.empty() ? std::string("parse error") : sax.error));
  return ok_status();
}

Status run(NodeSax& sax, std::string_view body) {
  std::size_t first = body.find_first_not_of(" \t\r\n");
  auto c = first == std::string_view::npos ? std::char_traits<char>::eof()
                                           : std::char_traits<char>::to_int_type(body[first]);
  if (auto st = check_root(c); !st) return st;
  return parsed(json::sax_parse(body.begin(), body.end(), &sax), sax);
}

// The same on a stream: bytes are pulled as the parser needs them.
Status run(NodeSax& sax, std::istream& body) {
  std::streambuf* sb = body.rdbuf();
  auto c = sb->sgetc();
  while (c == ' ' || c == '\t' || c == '\r' || c == '\n') c = sb->snextc();
  if (auto st = check_root(c); !st) return st;
  return parsed(json::sax_parse(body, &sax), sax);
}

std::string status_error(const NodeSax& sax) {
  return "the server returned a Status (" + std::to_string(sax.status.code) + " " + sax.status.reason +
         "): " + sax.status.message;
}

// The page a list document gave; its items are moved, not copied (5,000 Nodes are megabytes).
Result<NodeListPage> list_page(NodeSax& sax) {
  if (sax.kind == "Status") return fail(status_error(sax));
  if (sax.list_rv.empty()) return fail("list response has no metadata.resourceVersion");
  for (const auto& n : sax.nodes) {
    if (n.name.empty()) return fail("list item without metadata.name");
  }
  NodeListPage page;
  page.list.resource_version = std::move(sax.list_rv);
  page.continue_token = std::move(sax.continue_token);
  page.list.items = std::move(sax.nodes);
  return page;
}

}  // namespace

Result<NodeInfo> parse_node(std::string_view body, std::string_view annotation_prefix) {
  NodeSax sax(Shape::Node, annotation_prefix);
  if (auto st = run(sax, body); !st) return st.take_error();
  if (sax.kind == "Status") return fail(status_error(sax));
  if (sax.nodes.empty() || sax.nodes.front().name.empty()) return fail("response is not a Node (no metadata.name)");
  return std::move(sax.nodes.front());
}

Result<NodeListPage> parse_node_list(std::string_view body, std::string_view annotation_prefix) {
  NodeSax sax(Shape::List, annotation_prefix);
  if (auto st = run(sax, body); !st) return st.take_error();
  return list_page(sax);
}

Result<NodeListPage> parse_node_list(std::istream& body, std::string_view annotation_prefix) {
  NodeSax sax(Shape::List, annotation_prefix);
  if (auto st = run(sax, body); !st) return st.take_error();
  return list_page(sax);
}

Result<WatchLine> parse_watch_line(std::string_view line, std::string_view annotation_prefix) {
  NodeSax sax(Shape::Watch, annotation_prefix);
  if (auto st = run(sax, line); !st) return st.take_error();
  WatchLine out;
  if (sax.type == "ERROR") {
    out.error = sax.status;
    return out;
  }
  static constexpr std::array<std::pair<std::string_view, WatchEventType>, 4> kTypes{{
      {"ADDED", WatchEventType::Added},
      {"MODIFIED", WatchEventType::Modified},
      {"DELETED", WatchEventType::Deleted},
      {"BOOKMARK", WatchEventType::Bookmark},
  }};
  auto it = std::find_if(kTypes.begin(), kTypes.end(), [&](const auto& t) { return t.first == sax.type; });
  if (it == kTypes.end()) return fail("watch event of unknown type \"" + sax.type.substr(0, 32) + "\"");
  if (sax.nodes.empty()) return fail("watch event without an object");
  WatchEvent ev{it->second, std::move(sax.nodes.front())};
  if (ev.node.resource_version.empty()) return fail("watch event object without metadata.resourceVersion");
  if (ev.type != WatchEventType::Bookmark && ev.node.name.empty()) return fail("watch event object without a name");
  out.event = std::move(ev);
  return out;
}

std::optional<ApiStatusBody> parse_status(std::string_view body) {
  NodeSax sax(Shape::Node, "");
  if (!run(sax, body) || sax.kind != "Status") return std::nullopt;
  return sax.status;
}

std::string annotations_patch_body(const std::string& resource_version,
                                   const std::map<std::string, std::optional<std::string>>& patch) {
  json annotations = json::object();
  for (const auto& [k, v] : patch) annotations[k] = v ? json(*v) : json(nullptr);
  json meta = {{"annotations", annotations}};
  if (!resource_version.empty()) meta["resourceVersion"] = resource_version;
  return json{{"metadata", meta}}.dump();
}

std::optional<ConditionState> find_condition(std::string_view node_body, const std::string& type) {
  json node = json::parse(node_body, nullptr, false);
  if (node.is_discarded() || !node.is_object()) return std::nullopt;
  auto status = node.find("status");
  if (status == node.end() || !status->is_object()) return std::nullopt;
  auto conditions = status->find("conditions");
  if (conditions == status->end() || !conditions->is_array()) return std::nullopt;
  auto text = [](const json& o, const char* key) {
    auto it = o.find(key);
    return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  for (const auto& c : *conditions) {
    if (c.is_object() && text(c, "type") == type)
      return ConditionState{text(c, "status"), text(c, "lastTransitionTime")};
  }
  return std::nullopt;
}

std::string condition_patch_body(const NodeCondition& c, const std::string& now_rfc3339,
                                 const std::optional<ConditionState>& current) {
  bool same = current && current->status == c.status && !current->last_transition_time.empty();
  json cond = {{"type", c.type},
               {"status", c.status},
               {"reason", c.reason},
               {"message", c.message},
               {"lastHeartbeatTime", now_rfc3339},
               {"lastTransitionTime", same ? current->last_transition_time : now_rfc3339}};
  return json{{"status", {{"conditions", json::array({cond})}}}}.dump();
}

}  // namespace weft::kube
