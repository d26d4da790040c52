#include "core/log.hpp"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <string>

namespace weft::log {

Status init(std::string_view level, std::string_view node_name) {
  auto lvl = spdlog::level::from_str(std::string(level));
  // from_str maps anything it does not know to "off"; only "off" itself may mean off.
  if (lvl == spdlog::level::off && level != "off") {
    return fail("unknown log level \"" + std::string(level) +
                "\" (allowed: trace, debug, info, warn, error, critical, off)");
  }
  auto logger = spdlog::stderr_logger_mt("weft");
  spdlog::set_default_logger(logger);
  std::string node = node_name.empty() ? "?" : std::string(node_name);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %l node=" + node + " %v", spdlog::pattern_time_type::utc);
  spdlog::set_level(lvl);
  spdlog::flush_on(spdlog::level::info);
  return ok_status();
}

}  // namespace weft::log
