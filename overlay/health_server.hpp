#pragma once
// A small HTTP/1.1 server for /healthz, /readyz and /metrics (one request per connection).

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "core/result.hpp"

namespace weft {

struct HttpReply {
  int status = 200;
  std::string body;
  std::string content_type = "text/plain; charset=utf-8";
};

class HealthServer {
 public:
  // Called on the server's thread for every GET; must be thread-safe.
  using Handler = std::function<HttpReply(const std::string& path)>;

  static Result<std::unique_ptr<HealthServer>> start(const std::string& ip, int port, Handler handler);
  ~HealthServer();
  HealthServer(const HealthServer&) = delete;
  HealthServer& operator=(const HealthServer&) = delete;

  int port() const { return port_; }

 private:
  HealthServer(int listen_fd, int stop_fd, int port, Handler handler);
  void serve();
  void answer(int conn);

  int listen_fd_;
  int stop_fd_;
  int port_;
  Handler handler_;
  std::thread thread_;
};

}  // namespace weft
