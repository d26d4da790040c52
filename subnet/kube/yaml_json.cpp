#include "subnet/kube/yaml_json.hpp"

#include <yaml-cpp/yaml.h>

#include <string>

namespace weft::kube {
namespace {

using nlohmann::json;

// A kubeconfig is 4-5 levels deep; the limit keeps a hostile file from exhausting the stack.
constexpr int kMaxDepth = 64;

std::string at_mark(const YAML::Mark& m) {
  if (m.is_null()) return "";
  return "line " + std::to_string(m.line + 1) + ", column " + std::to_string(m.column + 1) + ": ";
}

Result<json> to_json(const YAML::Node& node, int depth) {
  if (depth > kMaxDepth) return fail(at_mark(node.Mark()) + "nested deeper than " + std::to_string(kMaxDepth));
  switch (node.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      return json();
    case YAML::NodeType::Scalar:
      return json(node.Scalar());
    case YAML::NodeType::Sequence: {
      json out = json::array();
      for (const auto& item : node) {
        auto v = to_json(item, depth + 1);
        if (!v) return v;
        out.push_back(std::move(*v));
      }
      return out;
    }
    case YAML::NodeType::Map: {
      json out = json::object();
      for (const auto& kv : node) {
        if (!kv.first.IsScalar()) return fail(at_mark(kv.first.Mark()) + "a mapping key must be a plain value");
        auto v = to_json(kv.second, depth + 1);
        if (!v) return v;
        out[kv.first.Scalar()] = std::move(*v);
      }
      return out;
    }
  }
  return json();
}

}  // namespace

Result<json> parse_yaml(std::string_view text) {
  try {
    return to_json(YAML::Load(std::string(text)), 0);
  } catch (const YAML::Exception& e) {
    return fail(at_mark(e.mark) + e.msg);
  }
}

}  // namespace weft::kube
