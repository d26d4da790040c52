#include "overlay/health_server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cpprest/http_listener.h>

#include "core/ip.hpp"

namespace weft {

namespace http = web::http;

struct HealthServer::Listener {
  http::experimental::listener::http_listener listener;
};

namespace {

// A port free on `addr` right now: http_listener binds port 0 fine but cannot say which port
// it got, so the kernel picks one for a socket of ours first.
int free_port(const Ipv4Addr& addr) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in sin{};
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = addr.to_network_order();
  socklen_t len = sizeof sin;
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sin), sizeof sin) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&sin), &len) == 0)
    port = ntohs(sin.sin_port);
  ::close(fd);
  return port;
}

void answer(const HealthServer::Handler& handler, const http::http_request& req) {
  HttpReply reply{405, "only GET\n"};
  if (req.method() == http::methods::GET) {
    try {
      reply = handler(req.request_uri().path());
    } catch (const std::exception& e) {
      reply = {500, std::string("internal error: ") + e.what() + "\n"};
    }
  }
  http::http_response resp(static_cast<http::status_code>(reply.status));
  if (reply.status == 405) resp.headers().add(http::header_names::allow, "GET");
  resp.set_body(std::move(reply.body), reply.content_type);
  req.reply(resp).then([](const pplx::task<void>& t) {
    try {
      t.get();
    } catch (const std::exception&) {
      // The client went away: nothing to do.
    }
  });
}

}  // namespace

Result<std::unique_ptr<HealthServer>> HealthServer::start(const std::string& ip, int port, Handler handler) {
  auto addr = Ipv4Addr::parse(ip);
  if (!addr) return fail("--healthz-ip: " + addr.error());
  if (port == 0 && (port = free_port(*addr)) == 0) return fail("no free port on " + ip + " for /healthz");
  const std::string url = "http://" + ip + ":" + std::to_string(port) + "/";
  try {
    auto l = std::make_unique<Listener>(Listener{http::experimental::listener::http_listener(url)});
    l->listener.support([h = std::move(handler)](const http::http_request& req) { answer(h, req); });
    l->listener.open().wait();
    return std::unique_ptr<HealthServer>(new HealthServer(std::move(l), port));
  } catch (const std::exception& e) {
    return fail("cannot listen on " + ip + ":" + std::to_string(port) + " for /healthz: " + e.what() +
                " (is another weftd running? change --healthz-port)");
  }
}

HealthServer::HealthServer(std::unique_ptr<Listener> listener, int port)
    : listener_(std::move(listener)), port_(port) {}

HealthServer::~HealthServer() {
  try {
    listener_->listener.close().wait();
  } catch (const std::exception&) {
    // Stopping anyway.
  }
}

}  // namespace weft
