#include "subnet/kube/server_probe.hpp"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

namespace weft::kube {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

struct AddrInfoDeleter {
  void operator()(addrinfo* a) const { freeaddrinfo(a); }
};

// One non-blocking connect in flight; closes its socket when dropped.
struct Attempt {
  int fd = -1;
  Clock::time_point started;
  Attempt(int f, Clock::time_point t) : fd(f), started(t) {}
  Attempt(Attempt&& o) noexcept : fd(o.fd), started(o.started) { o.fd = -1; }
  Attempt& operator=(Attempt&& o) noexcept {
    std::swap(fd, o.fd);
    started = o.started;
    return *this;
  }
  Attempt(const Attempt&) = delete;
  Attempt& operator=(const Attempt&) = delete;
  ~Attempt() {
    if (fd >= 0) ::close(fd);
  }
};

int poll_ms(Clock::time_point until) {
  auto d = std::chrono::duration_cast<milliseconds>(until - Clock::now()).count();
  return static_cast<int>(std::clamp<long long>(d, 0, 1000));
}

}  // namespace

ServerProbe::ServerProbe(std::string host, std::string port, Options options)
    : host_(std::move(host)), port_(std::move(port)), opts_(options) {
  // An IPv6 literal comes from a URL in brackets.
  if (host_.size() > 2 && host_.front() == '[' && host_.back() == ']') host_ = host_.substr(1, host_.size() - 2);
}

std::string ServerProbe::target() const {
  return host_.find(':') != std::string::npos ? "[" + host_ + "]:" + port_ : host_ + ":" + port_;
}

ServerProbe::Outcome ServerProbe::wait(milliseconds pace, const std::function<bool()>& stopped) const {
  const auto start = Clock::now();
  auto sleep_until = [&](Clock::time_point until) {
    while (Clock::now() < until) {
      if (stopped()) return false;
      std::this_thread::sleep_for(std::min<Clock::duration>(opts_.poll_slice, until - Clock::now()));
    }
    return !stopped();
  };
  if (!sleep_until(start + pace)) return Outcome::Stopped;

  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (getaddrinfo(host_.c_str(), port_.c_str(), &hints, &found) != 0 || found == nullptr) {
    return Outcome::NoAddress;  // the caller's request will say why
  }
  std::unique_ptr<addrinfo, AddrInfoDeleter> addr(found);

  // The gaps between connects: the caller's transport backoff, continued from `pace`.
  Backoff gaps(BackoffPolicy{.initial = std::max(pace, milliseconds(1)), .max_transport = opts_.max_interval});
  const ApiError unreachable{ApiErrorKind::Transport, 0, "probe", {}};
  std::vector<Attempt> pending;
  bool any_failed = false;  // a connect was refused, failed or got no answer in time
  int launched = 0;
  auto next_launch = Clock::now();

  for (;;) {
    if (stopped()) return Outcome::Stopped;
    auto now = Clock::now();
    bool connected = false;
    if (now >= next_launch) {
      next_launch = now + gaps.next(unreachable);
      ++launched;
      int fd = ::socket(addr->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (fd >= 0) {
        Attempt a(fd, now);
        if (::connect(fd, addr->ai_addr, addr->ai_addrlen) == 0) {
          connected = true;
        } else if (errno == EINPROGRESS) {
          pending.push_back(std::move(a));
        } else {
          any_failed = true;
        }
      } else {
        any_failed = true;
      }
    }
    // Connects that got no answer in time count as failed.
    auto expired = std::remove_if(pending.begin(), pending.end(),
                                  [&](const Attempt& a) { return now - a.started >= opts_.attempt_timeout; });
    if (expired != pending.end()) any_failed = true;
    pending.erase(expired, pending.end());

    if (!connected) {
      std::vector<pollfd> fds;
      fds.reserve(pending.size());
      for (const auto& a : pending) fds.push_back(pollfd{a.fd, POLLOUT, 0});
      int timeout = poll_ms(std::min(next_launch, now + opts_.poll_slice));
      if (fds.empty()) {
        std::this_thread::sleep_for(milliseconds(timeout));
      } else if (::poll(fds.data(), fds.size(), timeout) > 0) {
        std::vector<Attempt> still;
        for (std::size_t i = 0; i < fds.size(); ++i) {
          if (fds[i].revents == 0) {
            still.push_back(std::move(pending[i]));
            continue;
          }
          int err = 0;
          socklen_t len = sizeof err;
          if (::getsockopt(fds[i].fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
          if (err == 0) {
            connected = true;
          } else {
            any_failed = true;
          }
        }
        pending = std::move(still);
      }
    }
    // Not the first connect: the ones before it failed or are still unanswered.
    if (connected) return any_failed || launched > 1 ? Outcome::Back : Outcome::Up;
  }
}

std::string ServerProbe::connect_failure(milliseconds timeout) const {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (int rc = getaddrinfo(host_.c_str(), port_.c_str(), &hints, &found); rc != 0 || found == nullptr) {
    return std::string("cannot resolve the name: ") + gai_strerror(rc);
  }
  std::unique_ptr<addrinfo, AddrInfoDeleter> addr(found);
  int fd = ::socket(addr->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::strerror(errno);
  Attempt a(fd, Clock::now());
  if (::connect(fd, addr->ai_addr, addr->ai_addrlen) == 0) return "";
  if (errno != EINPROGRESS) return std::strerror(errno);
  pollfd p{fd, POLLOUT, 0};
  int n = ::poll(&p, 1, static_cast<int>(timeout.count()));
  if (n == 0) return "no answer within " + std::to_string(timeout.count()) + " ms";
  int err = 0;
  socklen_t len = sizeof err;
  if (n < 0 || ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  return err == 0 ? "" : std::strerror(err);
}

}  // namespace weft::kube
