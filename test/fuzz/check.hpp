#pragma once
// FUZZ_CHECK: an invariant of a fuzz target. A failed check prints what was wrong and aborts,
// so libFuzzer reports a crash and saves the input.

#include <cstdio>
#include <cstdlib>
#include <string>

#define FUZZ_CHECK(cond, what)                                                \
  do {                                                                        \
    if (!(cond)) ::weft::fuzz::check_failed(#cond, __FILE__, __LINE__, what); \
  } while (0)

namespace weft::fuzz {

[[noreturn]] inline void check_failed(const char* cond, const char* file, int line, const std::string& what) {
  std::fprintf(stderr, "FUZZ_CHECK failed at %s:%d: %s\n  %s\n", file, line, cond, what.c_str());
  std::abort();
}

}  // namespace weft::fuzz
