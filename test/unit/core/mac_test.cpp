#include <catch2/catch.hpp>

#include "core/mac.hpp"

using weft::Mac;

TEST_CASE("MACs parse in either separator style and format lower case", "[mac]") {
  CHECK(Mac::parse("0E:8F:12:34:56:AB")->str() == "0e:8f:12:34:56:ab");
  CHECK(Mac::parse("0e-8f-12-34-56-ab")->str() == "0e:8f:12:34:56:ab");
  CHECK(Mac::parse("00:00:00:00:00:00")->is_zero());
}

TEST_CASE("malformed MACs are errors", "[mac]") {
  for (const char* bad : {"", "0e:8f:12:34:56", "0e:8f:12:34:56:ab:cd", "0e:8f:12:34:56:zz", "0e:8f-12:34:56:ab",
                          "0e8f.1234.56ab", "0e:8f:12:34:56:a"}) {
    INFO(bad);
    auto r = Mac::parse(bad);
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error(), Catch::Contains("not a valid MAC"));
  }
}

TEST_CASE("random MACs are locally administered unicast and differ", "[mac]") {
  auto a = Mac::random_local();
  auto b = Mac::random_local();
  CHECK(a.is_unicast());
  CHECK(a.is_local());
  CHECK(b.is_unicast());
  CHECK(b.is_local());
  CHECK(a != b);
  CHECK(Mac::parse(a.str()).value() == a);
}
