#pragma once
// Reads a kubeconfig's YAML (with Debian's yaml-cpp) into JSON, so the kubeconfig reader
// deals with one document model. Scalars come back as JSON strings (null for ~/null/empty):
// kubeconfig values are strings, and "true" is compared as text where a flag is meant.

#include <nlohmann/json.hpp>
#include <string_view>

#include "core/result.hpp"

namespace weft::kube {

Result<nlohmann::json> parse_yaml(std::string_view text);

}  // namespace weft::kube
