#pragma once
// A small YAML reader for kubeconfig files: block mappings and sequences, plain and quoted
// scalars, comments, and flow collections written as JSON ({} [] {"a":1}). No anchors, tags,
// or block scalars: kubectl and kubeadm never write those into a kubeconfig. Pure and fuzzable.
// Scalars come back as JSON strings (or null for ~/null); JSON text is accepted as is.

#include <nlohmann/json.hpp>
#include <string_view>

#include "overlay/result.hpp"

namespace weft::kube {

Result<nlohmann::json> parse_yaml_lite(std::string_view text);

}  // namespace weft::kube
