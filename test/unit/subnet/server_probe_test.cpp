// ServerProbe on loopback: a listening port, a closed one, one that opens during the wait,
// and one whose SYNs go unanswered (a listener with a full accept queue).
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <thread>

#include "subnet/kube/server_probe.hpp"

using namespace weft::kube;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

namespace {

// A TCP socket bound to 127.0.0.1 on a free port; listening only when asked.
struct Port {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int number = 0;
  Port() {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    socklen_t len = sizeof a;
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0);
    number = ntohs(a.sin_port);
  }
  ~Port() { ::close(fd); }
  void listen(int backlog = 16) const { REQUIRE(::listen(fd, backlog) == 0); }
};

long long ms_since(Clock::time_point t0) { return std::chrono::duration_cast<milliseconds>(Clock::now() - t0).count(); }

const auto never = [] { return false; };

}  // namespace

TEST_CASE("probe: a listening server is Up, and the caller's pace is kept", "[probe]") {
  Port p;
  p.listen();
  ServerProbe probe("127.0.0.1", std::to_string(p.number));
  auto t0 = Clock::now();
  CHECK(probe.wait(milliseconds(120), never) == ServerProbe::Outcome::Up);
  CHECK(ms_since(t0) >= 115);
}

TEST_CASE("probe: connects are paced like the backoff, not every 50 ms", "[probe]") {
  // Connects after 100 ms, then gaps of 100-125, 200-250, 400-500, 800-1000 ms: a server that
  // starts listening 1.5 s in is found by the fifth, 1.6-2.0 s in (every 50 ms: 1.5-1.55 s).
  Port p;  // bound, not listening: connects are refused
  ServerProbe probe("127.0.0.1", std::to_string(p.number));
  std::thread opener([&] {
    std::this_thread::sleep_for(milliseconds(1500));
    p.listen();
  });
  auto t0 = Clock::now();
  auto outcome = probe.wait(milliseconds(100), never);
  auto took = ms_since(t0);
  opener.join();
  CHECK(outcome == ServerProbe::Outcome::Back);
  CHECK(took >= 1590);
  CHECK(took < 2150);
}

TEST_CASE("probe: the gap between connects is capped, and a refusing server is no reason to return", "[probe]") {
  Port p;
  ServerProbe::Options o;
  o.max_interval = milliseconds(200);
  ServerProbe probe("127.0.0.1", std::to_string(p.number), o);
  std::thread opener([&] {
    std::this_thread::sleep_for(milliseconds(1000));
    p.listen();
  });
  auto t0 = Clock::now();
  auto outcome = probe.wait(milliseconds(100), never);
  auto took = ms_since(t0);
  opener.join();
  CHECK(outcome == ServerProbe::Outcome::Back);
  CHECK(took >= 990);
  CHECK(took < 1350);  // gaps of 200-250 ms once capped
}

TEST_CASE("probe: while connects get no answer the wait goes past the pace, until one connects", "[probe]") {
  Port p;
  p.listen(0);  // an accept queue of one: fill it, and further SYNs are dropped unanswered
  int filler = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<std::uint16_t>(p.number));
  REQUIRE(::connect(filler, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  ServerProbe probe("127.0.0.1", std::to_string(p.number));
  std::thread drainer([&] {
    std::this_thread::sleep_for(milliseconds(400));
    int c = ::accept(p.fd, nullptr, nullptr);  // room for one more: the next probe connects
    if (c >= 0) ::close(c);
  });
  auto t0 = Clock::now();
  auto outcome = probe.wait(milliseconds(100), never);
  auto took = ms_since(t0);
  drainer.join();
  ::close(filler);
  CHECK(outcome == ServerProbe::Outcome::Back);
  CHECK(took >= 390);
  CHECK(took < 1200);  // the next connect after the drain: 400-475 or 800-950 ms in
}

TEST_CASE("probe: stop ends the wait at once", "[probe]") {
  Port p;
  ServerProbe probe("127.0.0.1", std::to_string(p.number));
  auto t0 = Clock::now();
  std::atomic<bool> stop{false};
  std::thread stopper([&] {
    std::this_thread::sleep_for(milliseconds(100));
    stop = true;
  });
  CHECK(probe.wait(milliseconds(5000), [&] { return stop.load(); }) == ServerProbe::Outcome::Stopped);
  stopper.join();
  CHECK(ms_since(t0) < 400);
}
