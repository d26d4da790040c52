#include "subnet/kube/silence_watchdog.hpp"

#include <atomic>
#include <catch2/catch.hpp>
#include <optional>
#include <thread>
#include <vector>

#include "subnet/kube/kube_client.hpp"

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

namespace {

using std::chrono::milliseconds;
using weft::kube::SilenceLimit;

// One watch as a real kube-apiserver 1.20 serves it on an idle cluster: a first bookmark soon
// after the start, then one a minute, then two close together just before timeoutSeconds.
struct Stream {
  milliseconds length;
  std::vector<milliseconds> bookmarks;  // offsets from the stream's start
};

Stream real_stream(int timeout_s) {
  Stream s{milliseconds(timeout_s * 1000), {milliseconds(300)}};
  for (auto t = milliseconds(60300); t < s.length - milliseconds(2000); t += milliseconds(60000)) {
    s.bookmarks.push_back(t);
  }
  s.bookmarks.push_back(s.length - milliseconds(2000));
  s.bookmarks.push_back(s.length - milliseconds(1000));
  return s;
}

// Plays streams back to back against `limit` as the watch and its watchdog use it; returns the
// first silence that exceeded the limit in force, or 0 when none did.
milliseconds first_misfire(SilenceLimit& limit, const std::vector<Stream>& streams) {
  for (const auto& s : streams) {
    milliseconds last_data{0};
    std::optional<milliseconds> last_bookmark;
    auto silent_too_long = [&](milliseconds now) {
      auto allowed = limit.limit();
      return allowed.count() > 0 && now - last_data > allowed;
    };
    for (auto b : s.bookmarks) {
      if (silent_too_long(b)) return b - last_data;
      if (last_bookmark) limit.learn_gap(b - *last_bookmark);
      last_bookmark = b;
      last_data = b;
    }
    if (silent_too_long(s.length)) return s.length - last_data;
  }
  return milliseconds(0);
}

}  // namespace

TEST_CASE("a healthy watch at the real server's bookmark cadence is never presumed dead", "[watchdog]") {
  SilenceLimit limit(weft::kube::ClientOptions{}.watch_silence_min, weft::kube::ClientOptions{}.watch_silence_factor);
  std::vector<Stream> streams;
  for (int i = 0; i < 30; ++i) streams.push_back(real_stream(60 + (i * 7) % 31));  // timeoutSeconds 60-90
  CHECK(first_misfire(limit, streams) == milliseconds(0));
  // ... while a connection that went silent is still found, within a few real bookmark gaps.
  CHECK(limit.limit() > milliseconds(60000));
  CHECK(limit.limit() <= milliseconds(180000));
}

TEST_CASE("the silence limit follows the largest bookmark gap, never the last", "[watchdog]") {
  SilenceLimit limit(milliseconds(3000), 3);  // a test double with bookmarks every second
  limit.learn_gap(milliseconds(1000));
  CHECK(limit.limit() == milliseconds(3000));
  limit.learn_gap(milliseconds(5000));  // a slower server
  limit.learn_gap(milliseconds(20));    // two bookmarks close together
  CHECK(limit.limit() == milliseconds(15000));
  limit.fired();  // a limit that fired is doubled for the next stream
  CHECK(limit.limit() == milliseconds(30000));
}
