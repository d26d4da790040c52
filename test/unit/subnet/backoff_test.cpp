#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "subnet/kube/backoff.hpp"
#include "subnet/kube/token_source.hpp"

using namespace weft::kube;
using std::chrono::milliseconds;

TEST_CASE("backoff doubles with jitter up to its cap", "[backoff]") {
  Backoff b;
  ApiError server{ApiErrorKind::Server, 500, "boom", {}};
  auto d0 = b.next(server);
  CHECK(d0 >= milliseconds(25));
  CHECK(d0 <= milliseconds(50));
  auto d1 = b.next(server);
  CHECK(d1 >= milliseconds(50));
  CHECK(d1 <= milliseconds(100));
  for (int i = 0; i < 20; ++i) b.next(server);
  auto late = b.next(server);
  CHECK(late >= milliseconds(2000));
  CHECK(late <= milliseconds(4000));
  b.reset();
  CHECK(b.next(server) <= milliseconds(50));
}

TEST_CASE("transport errors back off to ~1 s, jittered upwards from the cap", "[backoff]") {
  Backoff b;
  ApiError refused{ApiErrorKind::Transport, 0, "connection refused", {}};
  auto first = b.next(refused);
  CHECK(first >= milliseconds(50));  // a single dropped watch still resumes at once
  CHECK(first <= milliseconds(63));
  for (int i = 0; i < 10; ++i) b.next(refused);
  std::set<long long> seen;
  for (int i = 0; i < 50; ++i) {
    auto d = b.next(refused);
    CHECK(d >= milliseconds(1000));
    CHECK(d <= milliseconds(1250));
    seen.insert(d.count());
  }
  CHECK(seen.size() > 10);  // jittered: 5,000 nodes do not come back in step
}

TEST_CASE("a 28 s outage costs at most one attempt a second after the first 2 s (issue #18)", "[backoff]") {
  Backoff b;
  ApiError refused{ApiErrorKind::Transport, 0, "connection refused", {}};
  milliseconds t{0};
  int early = 0, late = 0;
  while (t < milliseconds(28000)) {
    t += b.next(refused);
    ++(t <= milliseconds(2000) ? early : late);
  }
  CHECK(early <= 8);
  CHECK(late <= 26);  // 26 s
  CHECK(late >= 20);  // and not much slower than client-go's ~1 s
}

TEST_CASE("a 429 or 503 waits its Retry-After, or without one at least the transport cap", "[backoff]") {
  Backoff b;
  auto busy = b.next(ApiError{ApiErrorKind::TooMany, 429, "slow down", {}});
  CHECK(busy >= milliseconds(1000));
  CHECK(busy <= milliseconds(1250));
  auto unavailable = b.next(ApiError{ApiErrorKind::Server, 503, "unavailable", {}});
  CHECK(unavailable >= milliseconds(1000));
  auto said = b.next(ApiError{ApiErrorKind::Server, 503, "unavailable", milliseconds(3000)});
  CHECK(said >= milliseconds(3000));
  CHECK(said <= milliseconds(3300));
  CHECK(b.next(ApiError{ApiErrorKind::Server, 500, "boom", {}}) < milliseconds(1000));
}

TEST_CASE("backoff honours Retry-After", "[backoff]") {
  Backoff b;
  ApiError busy{ApiErrorKind::TooMany, 429, "slow down", milliseconds(1000)};
  auto d = b.next(busy);
  CHECK(d >= milliseconds(1000));
  CHECK(d <= milliseconds(1100));
}

TEST_CASE("a stop signal wakes a waiting thread at once", "[backoff]") {
  StopSignal s;
  auto t0 = std::chrono::steady_clock::now();
  std::thread waker([&] {
    std::this_thread::sleep_for(milliseconds(20));
    s.stop();
  });
  CHECK_FALSE(s.wait_for(milliseconds(10000)));
  waker.join();
  CHECK(std::chrono::steady_clock::now() - t0 < milliseconds(2000));
  CHECK_FALSE(s.wait_for(milliseconds(1)));
  StopSignal idle;
  CHECK(idle.wait_for(milliseconds(1)));
}

TEST_CASE("a rotated token file is picked up, a vanished one keeps the last token", "[token]") {
  auto path = (std::filesystem::temp_directory_path() / ("weft-token-" + std::to_string(::getpid()))).string();
  std::ofstream(path) << "first\n";
  TokenSource t("", path);
  CHECK(*t.current() == "first");
  // The kubelet writes a new file and renames it into place.
  std::ofstream(path + ".new") << "second-token";
  std::filesystem::rename(path + ".new", path);
  CHECK(*t.current() == "second-token");
  std::filesystem::remove(path);
  CHECK(*t.current() == "second-token");
  TokenSource missing("", "/nonexistent/token");
  CHECK_THAT(missing.current().error(), Catch::Contains("/nonexistent/token"));
  TokenSource fixed("static", "");
  CHECK(*fixed.current() == "static");
}
