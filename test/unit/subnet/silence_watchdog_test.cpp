#include "subnet/kube/silence_watchdog.hpp"

#include <atomic>
#include <catch2/catch.hpp>
#include <thread>

using namespace std::chrono_literals;
using weft::kube::SilenceWatchdog;
using Clock = std::chrono::steady_clock;

namespace {

bool wait_fired(const SilenceWatchdog& w, std::chrono::milliseconds limit) {
  auto until = Clock::now() + limit;
  while (Clock::now() < until) {
    if (w.fired()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return w.fired();
}

}  // namespace

TEST_CASE("the silence watchdog fires once the stream is silent past its deadline, without polling", "[watchdog]") {
  std::atomic<int> asked{0}, fired{0};
  auto t0 = Clock::now();
  SilenceWatchdog w([&] { return ++asked, std::chrono::milliseconds(300); }, [&] { ++fired; });
  REQUIRE(wait_fired(w, 3s));
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0);
  CHECK(took >= 300ms);
  CHECK(took < 2s);
  CHECK(w.fired_after() > 300ms);
  CHECK(fired == 1);
  CHECK(asked <= 3);  // it slept until the deadline; a 50 ms poll would ask 6 times or more
}

TEST_CASE("the silence watchdog stays quiet while data arrives, then fires when it stops", "[watchdog]") {
  std::atomic<int> fired{0};
  SilenceWatchdog w([] { return std::chrono::milliseconds(200); }, [&] { ++fired; });
  for (int i = 0; i < 12; ++i) {
    std::this_thread::sleep_for(50ms);
    w.touch();
  }
  CHECK_FALSE(w.fired());
  REQUIRE(wait_fired(w, 3s));
  CHECK(fired == 1);
}

TEST_CASE("the silence watchdog waits for a deadline it does not know yet", "[watchdog]") {
  std::atomic<bool> known{false};
  SilenceWatchdog w([&] { return known ? std::chrono::milliseconds(100) : std::chrono::milliseconds(0); }, [] {}, 50ms);
  std::this_thread::sleep_for(400ms);
  CHECK_FALSE(w.fired());  // silent for 400 ms, but no deadline is known
  known = true;
  CHECK(wait_fired(w, 2s));
}
