#include "subnet/kube/api_result.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace weft::kube {

bool ApiError::transient() const {
  switch (kind) {
    case ApiErrorKind::Transport:
    case ApiErrorKind::Unauthorized:
    case ApiErrorKind::TooMany:
    case ApiErrorKind::Server:
    case ApiErrorKind::BadResponse:
      return true;
    default:
      return false;
  }
}

std::string to_string(ApiErrorKind kind) {
  switch (kind) {
    case ApiErrorKind::Transport:
      return "transport";
    case ApiErrorKind::Tls:
      return "tls";
    case ApiErrorKind::Unauthorized:
      return "unauthorized";
    case ApiErrorKind::Forbidden:
      return "forbidden";
    case ApiErrorKind::NotFound:
      return "not found";
    case ApiErrorKind::Conflict:
      return "conflict";
    case ApiErrorKind::Gone:
      return "gone";
    case ApiErrorKind::TooMany:
      return "too many requests";
    case ApiErrorKind::Server:
      return "server error";
    case ApiErrorKind::BadResponse:
      return "bad response";
    case ApiErrorKind::Rejected:
      return "rejected";
    case ApiErrorKind::Cancelled:
      return "cancelled";
  }
  return "unknown";
}

ApiError http_error(int http_status, const std::string& what, const std::string& status_message,
                    std::optional<std::chrono::milliseconds> retry_after) {
  std::string said = status_message.empty() ? "" : " (server: " + status_message.substr(0, 300) + ")";
  std::string code = " [HTTP " + std::to_string(http_status) + "]";
  ApiError e;
  e.http_status = http_status;
  e.retry_after = retry_after;
  if (http_status == 401) {
    e.kind = ApiErrorKind::Unauthorized;
    e.message = "unauthorized: the API server rejected weft's credentials for " + what +
                ": the token is wrong or expired, or the client certificate is not trusted; check the "
                "kubeconfig or the service account token" +
                code + said;
  } else if (http_status == 403) {
    e.kind = ApiErrorKind::Forbidden;
    e.message = "forbidden: weft's service account may not " + what +
                " - check the ClusterRole in manifests/ (weft needs get, list, watch on nodes and patch on "
                "nodes/status)" +
                code + said;
  } else if (http_status == 404) {
    e.kind = ApiErrorKind::NotFound;
    e.message = "not found: " + what + code + said;
  } else if (http_status == 409) {
    e.kind = ApiErrorKind::Conflict;
    e.message = "conflict: " + what + ": the object changed since it was read" + code + said;
  } else if (http_status == 410) {
    e.kind = ApiErrorKind::Gone;
    e.message = "gone: " + what + ": the resourceVersion is too old (history compacted)" + code + said;
  } else if (http_status == 429) {
    e.kind = ApiErrorKind::TooMany;
    e.message = "throttled: " + what + code + said;
  } else if (http_status >= 500) {
    e.kind = ApiErrorKind::Server;
    e.message = "server error: " + what + code + said;
  } else {
    e.kind = ApiErrorKind::Rejected;
    e.message = "request rejected: " + what + code + said;
  }
  return e;
}

ApiError transport_error(const std::string& what, const std::string& msg, const TransportContext& ctx) {
  std::string lower = msg;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char ch) { return std::tolower(ch); });
  auto has = [&](const char* s) { return lower.find(s) != std::string::npos; };
  if (has("ssl") || has("handshake") || has("certificate") || has("tls")) {
    return ApiError{ApiErrorKind::Tls,
                    0,
                    what + ": TLS with " + ctx.server + " failed (" + msg + "): check that " + ctx.ca_desc +
                        " signed the server's certificate and that the certificate names this host or IP (" +
                        ctx.source + ")",
                    {}};
  }
  if (has("timed out") || has("timeout")) {
    return ApiError{ApiErrorKind::Transport,
                    0,
                    what + ": no data from " + ctx.server + " for " + std::to_string(ctx.timeout.count()) +
                        " ms (API server hung or unreachable)",
                    {}};
  }
  return ApiError{ApiErrorKind::Transport, 0, what + ": cannot talk to " + ctx.server + ": " + msg, {}};
}

std::optional<std::chrono::milliseconds> parse_retry_after(const std::string& value) {
  long seconds = -1;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
  if (ec != std::errc{} || end != value.data() + value.size() || seconds < 0) return std::nullopt;
  return std::chrono::milliseconds(std::min(seconds, 3600L) * 1000);
}

}  // namespace weft::kube
