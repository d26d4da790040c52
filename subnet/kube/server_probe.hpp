#pragma once
// ServerProbe: after a request to the API server failed below HTTP, decides when the next one
// is worth sending, by plain TCP connects (no TLS, no request). A new connect starts every
// `interval` and each may take up to `attempt_timeout`, so the first one after the server -- or
// the path to it -- comes back succeeds within about one interval, whatever the round trip.
//
// Why: a request sent into a path that drops packets hangs in its TCP handshake, and the
// kernel's SYN retries (1 s, 3 s, 7 s...) then make it seconds late once the path is back; a
// cheap connect every 50 ms is on time. A server that refuses connections answers at once, so
// there the caller's own pace (its backoff) is kept.

#include <chrono>
#include <functional>
#include <string>

namespace weft::kube {

class ServerProbe {
 public:
  struct Options {
    std::chrono::milliseconds interval{50};
    std::chrono::milliseconds attempt_timeout{3000};
    std::chrono::milliseconds poll_slice{50};  // how often `stopped` is asked
  };

  enum class Outcome {
    Up,        // the first connect succeeded: the server was never unreachable (the wait was `pace`)
    Back,      // a connect succeeded after earlier ones failed or got no answer: retry now
    Refusing,  // after `pace`, connects are refused: the host answers, nothing listens yet
    Stopped,   // `stopped()` became true
  };

  ServerProbe(std::string host, std::string port, Options options);
  ServerProbe(std::string host, std::string port) : ServerProbe(std::move(host), std::move(port), Options{}) {}

  // Probes until a connect succeeds, or `pace` has passed while connects are refused; keeps
  // probing past `pace` while they get no answer at all. Returns Up after sleeping out `pace`
  // when the server answered the first connect (the failure was not about reachability).
  Outcome wait(std::chrono::milliseconds pace, const std::function<bool()>& stopped) const;

  // Host and port, for logs.
  std::string target() const;

  // Why one TCP connect fails right now: "" when it connects, else the errno's text
  // ("Connection refused") or "no answer within N ms". cpprest reports a failed connect with an
  // error value whose category it drops (and maps ECONNREFUSED to EHOSTUNREACH on purpose), so
  // its text cannot be trusted; this asks the kernel again.
  std::string connect_failure(std::chrono::milliseconds timeout) const;

 private:
  std::string host_, port_;
  Options opts_;
};

}  // namespace weft::kube
