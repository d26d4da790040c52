#pragma once
// A small HTTP server for /healthz, /readyz, /status and /metrics: cpprestsdk's http_listener
// (weft links cpprestsdk already), GET only, behind this header so that only
// health_server.cpp compiles cpprest's headers.

#include <functional>
#include <memory>
#include <string>

#include "core/result.hpp"

namespace weft {

struct HttpReply {
  int status = 200;
  std::string body;
  std::string content_type = "text/plain; charset=utf-8";
};

class HealthServer {
 public:
  // Called on cpprest's thread pool for every GET (concurrently); must be thread-safe.
  using Handler = std::function<HttpReply(const std::string& path)>;

  // Port 0: a free port the kernel picks (tests); port() says which.
  static Result<std::unique_ptr<HealthServer>> start(const std::string& ip, int port, Handler handler);
  ~HealthServer();
  HealthServer(const HealthServer&) = delete;
  HealthServer& operator=(const HealthServer&) = delete;

  int port() const { return port_; }

 private:
  struct Listener;
  HealthServer(std::unique_ptr<Listener> listener, int port);

  std::unique_ptr<Listener> listener_;
  int port_;
};

}  // namespace weft
