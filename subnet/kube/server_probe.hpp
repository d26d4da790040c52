#pragma once
// ServerProbe: after a request to the API server failed below HTTP, decides when the next one
// is worth sending, by plain TCP connects (no TLS, no request), paced like the requests they
// replace: the first after the caller's backoff, then doubling up to ~1 s, jittered (Backoff's
// transport pace). A refused connect is cheap and says the server is still down: the probe
// goes on, and no request is sent. A connect that succeeds after failures ends the wait at
// once, so the request follows the server's return within one probe gap (<= 1.25 s), and a
// weftd makes about one connect a second, probes included, however long the outage.
//
// Why probe at all: a request sent into a path that drops packets hangs in its TCP handshake,
// and the kernel's SYN retries (1 s, 3 s, 7 s...) then make it seconds late once the path is
// back. Unanswered probes stay pending (their SYN retries are no new attempts) while a fresh
// one starts at each gap, so one of them connects within about a gap of the path's return.

#include <chrono>
#include <functional>
#include <string>

#include "subnet/kube/backoff.hpp"

namespace weft::kube {

class ServerProbe {
 public:
  struct Options {
    // The cap of the gap between connects (each gap jittered up to 1.25x): the requests' own.
    std::chrono::milliseconds max_interval = BackoffPolicy{}.max_transport;
    std::chrono::milliseconds attempt_timeout{3000};
    std::chrono::milliseconds poll_slice{50};  // how often `stopped` is asked
  };

  enum class Outcome {
    Up,         // the first connect succeeded: the server was never unreachable (the wait was `pace`)
    Back,       // a connect succeeded after earlier ones were refused or got no answer: retry now
    NoAddress,  // the name does not resolve: nothing to probe (the wait was `pace`)
    Stopped,    // `stopped()` became true
  };

  ServerProbe(std::string host, std::string port, Options options);
  ServerProbe(std::string host, std::string port) : ServerProbe(std::move(host), std::move(port), Options{}) {}

  // Sleeps `pace`, then connects until one connect succeeds, each next connect a Backoff step
  // (starting from `pace`, capped at max_interval) after the one before.
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
