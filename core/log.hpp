#pragma once
// Process-wide logging: one line per event, UTC timestamps, the node name in every line.

#include <string_view>

#include "core/result.hpp"

namespace weft::log {

// Levels: trace, debug, info, warn, error, critical, off.
Status init(std::string_view level, std::string_view node_name);

}  // namespace weft::log
