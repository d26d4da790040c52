#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

#include "overlay/health_server.hpp"
#include "overlay/wakeup.hpp"

namespace {

std::string get(int port, const std::string& request) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(static_cast<std::uint16_t>(port));
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin) == 0);
  timeval tv{2, 0};  // a server that never answers (or keeps the connection) fails the check, not the run
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  REQUIRE(::send(fd, request.data(), request.size(), 0) == static_cast<ssize_t>(request.size()));
  std::string out;
  char buf[1024];
  for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) out.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  return out;
}

}  // namespace

TEST_CASE("the health server answers from the handler and refuses other methods", "[health]") {
  std::atomic<bool> ready{false};
  auto server = weft::HealthServer::start("127.0.0.1", 0, [&](const std::string& path) {
    if (path == "/readyz") return ready ? weft::HttpReply{200, "ok\n"} : weft::HttpReply{503, "vtep missing\n"};
    return weft::HttpReply{404, "no\n"};
  });
  REQUIRE(server);
  int port = (*server)->port();
  REQUIRE(port > 0);
  auto not_ready = get(port, "GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK_THAT(not_ready, Catch::StartsWith("HTTP/1.1 503") && Catch::EndsWith("vtep missing\n"));
  ready = true;
  CHECK_THAT(get(port, "GET /readyz?verbose HTTP/1.1\r\n\r\n"), Catch::StartsWith("HTTP/1.1 200"));
  CHECK_THAT(get(port, "POST /readyz HTTP/1.1\r\n\r\n"), Catch::StartsWith("HTTP/1.1 405"));
  auto garbage = get(port, "garbage\r\n\r\n");  // cpprest's parser: 400, or it drops the connection
  CHECK((garbage.empty() || garbage.rfind("HTTP/1.1 400", 0) == 0));
  CHECK_THAT(get(port, "GET /nope HTTP/1.1\r\n\r\n"), Catch::StartsWith("HTTP/1.1 404"));
}

TEST_CASE("the health server stops at once while a client holds an idle connection", "[health]") {
  auto server = weft::HealthServer::start("127.0.0.1", 0, [](const std::string&) {
    return weft::HttpReply{200, "ok\n"};
  });
  REQUIRE(server);
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(static_cast<std::uint16_t>((*server)->port()));
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin) == 0);  // a TCP probe: sends nothing
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // accepted, the server waits for a request
  auto t0 = std::chrono::steady_clock::now();
  server->reset();
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
  ::close(fd);
  UNSCOPED_INFO("stopped in " << took.count() << " ms");
  CHECK(took < std::chrono::milliseconds(300));  // it waited out its 2 s read timeout (weftd's SIGTERM took 1.7 s)
}

TEST_CASE("a port in use is a clear error", "[health]") {
  auto first = weft::HealthServer::start("127.0.0.1", 0, [](const std::string&) { return weft::HttpReply{}; });
  REQUIRE(first);
  auto second =
      weft::HealthServer::start("127.0.0.1", (*first)->port(), [](const std::string&) { return weft::HttpReply{}; });
  REQUIRE_FALSE(second);
  CHECK_THAT(second.error(), Catch::Contains("--healthz-port"));
}

TEST_CASE("wakeup coalesces bursts and times out", "[wakeup]") {
  weft::Wakeup w;
  for (int i = 0; i < 1000; ++i) w.post(weft::Wakeup::kPeers);
  w.post(weft::Wakeup::kKernel);
  auto now = std::chrono::steady_clock::now();
  CHECK(w.wait_until(now + std::chrono::seconds(1)) == (weft::Wakeup::kPeers | weft::Wakeup::kKernel));
  CHECK(w.wait_until(std::chrono::steady_clock::now() + std::chrono::milliseconds(10)) == 0);
}

TEST_CASE("the loop is stalled only while it has work and makes no progress", "[wakeup][liveness]") {
  using std::chrono::seconds;
  using Clock = weft::Wakeup::Clock;
  weft::Wakeup w;
  auto t0 = Clock::now();
  w.post(weft::Wakeup::kPeers);
  CHECK(w.stalled_for(t0 + seconds(3600)) == Clock::duration::zero());  // weftd still starting: not the loop's fault
  CHECK(w.wait_until(Clock::now()) == weft::Wakeup::kPeers);            // takes the work: an iteration in hand
  auto took = Clock::now();
  CHECK(w.stalled_for(took + seconds(61)) >= seconds(61));  // still inside that iteration a minute later
  CHECK(w.stalled_for(took + seconds(61)) < seconds(62));
  CHECK(w.wait_until(Clock::now()) == 0);                               // back for more (a timeout): progress
  CHECK(w.stalled_for(Clock::now() + seconds(3600)) >= seconds(3600));  // ...but it timed out: working again
  std::thread agent([&w] { w.wait_until(Clock::now() + std::chrono::milliseconds(300)); });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the agent waits, nothing queued
  CHECK(w.stalled_for(Clock::now() + seconds(3600)) == Clock::duration::zero());
  agent.join();
}

TEST_CASE("posted events that nobody takes count as work without progress", "[wakeup][liveness]") {
  using Clock = weft::Wakeup::Clock;
  weft::Wakeup w;
  std::atomic<bool> wedged{false};
  std::thread agent([&] {
    w.wait_until(Clock::now() + std::chrono::seconds(5));  // takes the first event...
    wedged = true;
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // ...and hangs in it
    w.wait_until(Clock::now());
  });
  w.post(weft::Wakeup::kKernel);
  while (!wedged) std::this_thread::yield();
  w.post(weft::Wakeup::kPeers);  // more work arrives while the loop is stuck
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  CHECK(w.stalled_for(Clock::now()) >= std::chrono::milliseconds(200));
  agent.join();  // it came back and took the queued event: working since then
  CHECK(w.stalled_for(Clock::now()) < std::chrono::milliseconds(100));
}
