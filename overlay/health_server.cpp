#include "overlay/health_server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

#include "core/ip.hpp"

namespace weft {
namespace {

constexpr int kReadTimeoutMs = 2000;
constexpr std::size_t kMaxRequest = 8192;

const char* reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 503:
      return "Service Unavailable";
    default:
      return "Error";
  }
}

// Reads until the end of the request headers, a limit, or a timeout (a slow client cannot hold
// us), or until `stop_fd` is readable: a client that connects and sends nothing (a TCP probe)
// must not hold up weftd's exit for the read timeout.
std::string read_request(int conn, int stop_fd) {
  std::string req;
  std::array<char, 2048> buf{};
  while (req.size() < kMaxRequest && req.find("\r\n\r\n") == std::string::npos) {
    std::array<pollfd, 2> p{{{conn, POLLIN, 0}, {stop_fd, POLLIN, 0}}};
    if (::poll(p.data(), p.size(), kReadTimeoutMs) < 1 || p[1].revents || !p[0].revents) break;
    ssize_t n = ::recv(conn, buf.data(), buf.size(), 0);
    if (n <= 0) break;
    req.append(buf.data(), static_cast<std::size_t>(n));
  }
  return req;
}

void send_all(int conn, const std::string& data) {
  std::size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::send(conn, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n <= 0) return;
    done += static_cast<std::size_t>(n);
  }
}

}  // namespace

Result<std::unique_ptr<HealthServer>> HealthServer::start(const std::string& ip, int port, Handler handler) {
  auto addr = Ipv4Addr::parse(ip);
  if (!addr) return fail("--healthz-ip: " + addr.error());
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail(std::string("socket: ") + std::strerror(errno));
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_port = htons(static_cast<std::uint16_t>(port));
  sin.sin_addr.s_addr = addr->to_network_order();
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin) != 0 || ::listen(fd, 16) != 0) {
    std::string why = std::strerror(errno);
    ::close(fd);
    return fail("cannot listen on " + ip + ":" + std::to_string(port) + " for /healthz: " + why +
                " (is another weftd running? change --healthz-port)");
  }
  socklen_t len = sizeof sin;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&sin), &len);
  int stop = ::eventfd(0, EFD_CLOEXEC);
  return std::unique_ptr<HealthServer>(new HealthServer(fd, stop, ntohs(sin.sin_port), std::move(handler)));
}

HealthServer::HealthServer(int listen_fd, int stop_fd, int port, Handler handler)
    : listen_fd_(listen_fd), stop_fd_(stop_fd), port_(port), handler_(std::move(handler)) {
  thread_ = std::thread([this] { serve(); });
}

HealthServer::~HealthServer() {
  std::uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(stop_fd_, &one, sizeof one);
  thread_.join();
  ::close(listen_fd_);
  ::close(stop_fd_);
}

void HealthServer::serve() {
  for (;;) {
    std::array<pollfd, 2> fds{{{listen_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}}};
    if (::poll(fds.data(), fds.size(), -1) < 0 && errno != EINTR) return;
    if (fds[1].revents) return;
    if (!fds[0].revents) continue;
    int conn = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (conn < 0) continue;
    answer(conn);
    ::close(conn);
  }
}

void HealthServer::answer(int conn) {
  std::string req = read_request(conn, stop_fd_);
  auto line_end = req.find("\r\n");
  std::string line = req.substr(0, line_end == std::string::npos ? 0 : line_end);
  auto sp1 = line.find(' ');
  auto sp2 = line.find(' ', sp1 == std::string::npos ? 0 : sp1 + 1);
  HttpReply reply;
  if (sp1 == std::string::npos || sp2 == std::string::npos) {
    reply = {400, "bad request\n"};
  } else if (line.substr(0, sp1) != "GET") {
    reply = {405, "only GET\n"};
  } else {
    std::string path = line.substr(sp1 + 1, sp2 - sp1 - 1);
    path = path.substr(0, path.find('?'));
    reply = handler_(path);
  }
  send_all(conn, "HTTP/1.1 " + std::to_string(reply.status) + " " + reason(reply.status) + "\r\nContent-Type: " +
                     reply.content_type + "\r\nContent-Length: " + std::to_string(reply.body.size()) +
                     "\r\nConnection: close\r\n\r\n" + reply.body);
}

}  // namespace weft
