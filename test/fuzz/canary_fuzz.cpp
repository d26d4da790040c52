// The harness's self-test (run.sh runs it, never as a real target): each magic input fails in
// one of the ways the real targets can, and run.sh must report every one of them as a crash.
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string_view>

#include "test/fuzz/check.hpp"

namespace {
volatile int g_sink;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  if (in == "WEFT-CHECK") FUZZ_CHECK(in.empty(), "canary: a failed invariant");
  if (in == "WEFT-ASAN") {
    volatile char* p = new char[4];
    g_sink = p[size];  // heap-buffer-overflow: size is 9
    delete[] p;
  }
  if (in == "WEFT-UBSAN") {
    volatile int big = INT_MAX;
    g_sink = big + static_cast<int>(size);  // signed integer overflow
  }
  if (in == "WEFT-THROW") throw std::runtime_error("canary: an uncaught exception");
  return 0;
}
