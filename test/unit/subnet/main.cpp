#define CATCH_CONFIG_MAIN
#include <spdlog/spdlog.h>
#include <catch2/catch.hpp>

#include <cstdlib>

namespace {
// Quiet by default; WEFT_TEST_LOG=info (or debug) shows what the code logs.
const bool kLogLevelSet = [] {
  const char* level = std::getenv("WEFT_TEST_LOG");
  spdlog::set_level(spdlog::level::from_str(level ? level : "warn"));
  return true;
}();
}  // namespace
