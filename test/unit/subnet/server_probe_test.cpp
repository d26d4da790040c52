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

TEST_CASE("probe: a refusing server is retried by the caller after its pace", "[probe]") {
  Port p;  // bound, not listening: connects are refused
  ServerProbe probe("127.0.0.1", std::to_string(p.number));
  auto t0 = Clock::now();
  CHECK(probe.wait(milliseconds(150), never) == ServerProbe::Outcome::Refusing);
  CHECK(ms_since(t0) >= 145);
  CHECK(ms_since(t0) < 1000);
}

TEST_CASE("probe: a server that starts listening during the wait is Back within ~50 ms", "[probe]") {
  Port p;
  ServerProbe probe("127.0.0.1", std::to_string(p.number));
  std::thread opener([&] {
    std::this_thread::sleep_for(milliseconds(300));
    p.listen();
  });
  auto t0 = Clock::now();
  auto outcome = probe.wait(milliseconds(5000), never);
  auto took = ms_since(t0);
  opener.join();
  CHECK(outcome == ServerProbe::Outcome::Back);
  CHECK(took >= 290);
  CHECK(took < 450);
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
  CHECK(took < 700);
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
