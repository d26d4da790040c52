#pragma once
// ApiError / ApiResult<T>: the outcome of one Kubernetes API request, with what the retry
// logic needs (HTTP status, Retry-After) and a message that says what to fix.

#include <chrono>
#include <optional>
#include <string>
#include <variant>

#include "core/result.hpp"

namespace weft::kube {

enum class ApiErrorKind {
  Transport,     // connection refused/reset, timeout, stream cut: retry soon
  Tls,           // handshake or certificate verification failed: a configuration error
  Unauthorized,  // 401: bad or expired credentials
  Forbidden,     // 403: RBAC
  NotFound,      // 404
  Conflict,      // 409: stale resourceVersion precondition
  Gone,          // 410: resourceVersion too old (compacted), relist
  TooMany,       // 429: throttled, honour Retry-After
  Server,        // 5xx
  BadResponse,   // unparseable, oversized or unexpected response
  Rejected,      // other 4xx (our request is wrong): not retried
  Cancelled,     // the client was shut down
};

struct ApiError {
  ApiErrorKind kind = ApiErrorKind::Transport;
  int http_status = 0;  // 0 when no HTTP status was received
  std::string message;
  std::optional<std::chrono::milliseconds> retry_after;

  // Worth retrying with backoff (401 too: a rotated token may fix it).
  bool transient() const;
};

std::string to_string(ApiErrorKind kind);

// Builds the error for an HTTP error status; `status_message` is the Status body's message.
ApiError http_error(int http_status, const std::string& what, const std::string& status_message,
                    std::optional<std::chrono::milliseconds> retry_after);

// Where a request went, for messages about failures below HTTP.
struct TransportContext {
  std::string server;
  std::string ca_desc;  // "CA file /x", ...
  std::string source;   // where the configuration came from
  std::chrono::milliseconds timeout{};
};

// Classifies an exception's message from the HTTP stack: TLS (naming server and CA), a
// timeout (the server may be hung), or another transport failure.
ApiError transport_error(const std::string& what, const std::string& exception_message, const TransportContext& ctx);

// Parses a Retry-After header value given in seconds; nullopt for anything else.
std::optional<std::chrono::milliseconds> parse_retry_after(const std::string& value);

// The kube client's results: core's Result with ApiError as the error.
template <class T>
using ApiResult = Result<T, ApiError>;
using ApiStatus = Result<std::monostate, ApiError>;

}  // namespace weft::kube
