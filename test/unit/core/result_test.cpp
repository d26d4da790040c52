#include <catch2/catch.hpp>
#include <string>
#include <type_traits>

#include "core/result.hpp"

namespace {

struct CodedError {
  int code = 0;
  std::string message;
};

weft::Result<int> parse_digit(char c) {
  if (c < '0' || c > '9') return weft::fail(std::string("not a digit: ") + c);
  return c - '0';
}

weft::Result<int, CodedError> lookup(int key) {
  if (key != 1) return CodedError{404, "no key " + std::to_string(key)};
  return 42;
}

}  // namespace

TEST_CASE("Result with the default error gives the message", "[result]") {
  auto good = parse_digit('7');
  REQUIRE(good);
  CHECK(*good == 7);
  auto bad = parse_digit('x');
  REQUIRE_FALSE(bad);
  static_assert(std::is_same_v<decltype(bad.error()), const std::string&>);
  CHECK(bad.error() == "not a digit: x");
  weft::Status passed_up = bad.take_error();
  CHECK(passed_up.error() == "not a digit: x");
}

TEST_CASE("Result with its own error type gives the whole error", "[result]") {
  auto good = lookup(1);
  REQUIRE(good);
  CHECK(*good == 42);
  auto bad = lookup(2);
  REQUIRE_FALSE(bad);
  static_assert(std::is_same_v<decltype(bad.error()), const CodedError&>);
  CHECK(bad.error().code == 404);
  CHECK(bad.error().message == "no key 2");
  weft::Result<std::string, CodedError> passed_up = bad.take_error();
  CHECK(passed_up.error().code == 404);
}
