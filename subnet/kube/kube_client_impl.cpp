// The real KubeClient over HTTPS with cpprestsdk (the only file that includes it: ~24 s to compile).
#include <spdlog/spdlog.h>

#include <dlfcn.h>
#include <netdb.h>

#include <cpprest/http_client.h>
#include <pplx/threadpool.h>
#include <algorithm>
#include <atomic>
#include <boost/asio/ssl.hpp>
#include <cstring>
#include <ctime>
#include <istream>
#include <iterator>
#include <limits>
#include <random>

#include "subnet/kube/node_json.hpp"
#include "subnet/kube/server_probe.hpp"
#include "subnet/kube/silence_watchdog.hpp"
#include "subnet/kube/tls_material.hpp"
#include "subnet/kube/token_source.hpp"

namespace weft::kube {
namespace {

using web::http::http_request;
using web::http::http_response;
using web::http::method;
using web::http::methods;
using web::http::client::http_client;
using web::http::client::http_client_config;

constexpr const char* kMetaList = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json";
constexpr const char* kMetaWatch = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json";
constexpr const char* kSmp = "application/strategic-merge-patch+json";
constexpr std::size_t kMaxErrorBody = 64U << 10U;
// A body refused for its size is still read to its end (up to this much) to keep the connection safe.
constexpr std::size_t kMaxDrain = 64U << 20U;

void init_pool_once(std::size_t threads) {
  static std::once_flag once;
  std::call_once(once, [threads] {
    try {
      crossplat::threadpool::initialize_with_threads(threads);
    } catch (const std::exception&) {
      // Already started by someone else: fine.
    }
  });
}

// Everything but RFC 3986's unreserved characters is percent-encoded (names, continue tokens).
std::string path_escape(const std::string& s) { return web::uri::encode_data_string(s); }

std::string now_rfc3339() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// The address inside an IPv6 literal host ("[2001:db8::fe]" -> "2001:db8::fe"), else "".
std::string ipv6_literal(const std::string& host) {
  if (host.size() < 3 || host.front() != '[' || host.back() != ']') return "";
  return host.substr(1, host.size() - 2);
}

std::string lower_first(std::string s) {
  if (!s.empty()) s[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(s[0])));
  return s;
}

class RealKubeClient final : public KubeClient {
 public:
  RealKubeClient(const KubeConfig& cfg, const ClientOptions& opts)
      : cfg_(cfg),
        opts_(opts),
        tokens_(cfg.token, cfg.token_file),
        silence_(opts.watch_silence_min, opts.watch_silence_factor),
        rng_(std::random_device{}()) {
    skip_system_ca_bundle_once(cfg_);
    init_pool_once(opts.pool_threads);
    auto tls = load_tls(cfg_);
    if (tls) {
      tls_ = *tls;
    } else {
      setup_error_ = tls.error();
    }
    if (cfg_.insecure_skip_tls_verify) {
      spdlog::warn(
          "TLS verification of the API server {} is OFF (insecure-skip-tls-verify): anyone on the path "
          "can impersonate it",
          cfg_.server);
    } else if (cfg_.server.starts_with("http://")) {
      spdlog::warn("the API server {} is plain HTTP: no TLS, credentials sent in clear", cfg_.server);
    }
    try {
      web::uri uri(cfg_.server);
      literal_v6_ = ipv6_literal(uri.host());
      client_ = std::make_unique<http_client>(cfg_.server, make_config(opts_.request_timeout));
      watch_client_ = std::make_unique<http_client>(cfg_.server, make_config(watch_timeout()));
      int port = uri.port() > 0 ? uri.port() : (uri.scheme() == "http" ? 80 : 443);
      server_.emplace(uri.host(), std::to_string(port));
    } catch (const std::exception& e) {
      setup_error_ = "bad API server URL \"" + cfg_.server + "\" in " + cfg_.source + ": " + e.what();
    }
  }

  ~RealKubeClient() override { shutdown(); }

  // Metadata only, unless full Nodes were asked for (FlannelCompat: a peer's subnet is its podCIDR).
  const char* meta_list() const { return opts_.full_nodes ? "application/json" : kMetaList; }

  ApiResult<NodeInfo> get_node(const std::string& name) override {
    auto body = call(methods::GET, "/api/v1/nodes/" + path_escape(name), "", "application/json", opts_.max_body,
                     "get nodes (node \"" + name + "\")");
    if (!body) return body.error();
    auto node = parse_node(*body, opts_.annotation_prefix);
    if (!node) return bad_response("get node " + name, node.error());
    return std::move(*node);
  }

  ApiResult<NodeList> list_nodes() override { return list_pages(meta_list(), false); }
  ApiResult<NodeList> list_nodes_with_spec() override { return list_pages("application/json", false); }
  ApiResult<NodeList> list_nodes_cached(bool with_spec) override {
    return list_pages(with_spec ? "application/json" : meta_list(), true);
  }

  // From the watch cache (resourceVersion=0, which ignores limit) or from etcd in pages; a
  // continue token is followed either way.
  ApiResult<NodeList> list_pages(const char* accept, bool cached) {
    NodeList all;
    std::string cont;
    for (int page = 0;; ++page) {
      std::string q = cached && page == 0 ? "/api/v1/nodes?resourceVersion=0"
                                          : "/api/v1/nodes?limit=" + std::to_string(opts_.list_page_size);
      if (!cont.empty()) q += "&continue=" + path_escape(cont);
      auto parsed = list_page(q, accept);
      if (!parsed) return parsed.error();
      if (page == 0) {
        all = std::move(parsed->list);  // the whole list when it comes in one page: no copy
      } else {
        std::move(parsed->list.items.begin(), parsed->list.items.end(), std::back_inserter(all.items));
      }
      if (parsed->continue_token.empty()) return all;
      cont = std::move(parsed->continue_token);
    }
  }

  // One page, decoded while it arrives (never held whole), within max_list_body.
  ApiResult<NodeListPage> list_page(const std::string& path, const char* accept);

  ApiResult<WatchEnd> watch_nodes(const std::string& rv, const WatchHandler& on_event) override;
  ApiResult<WatchEnd> watch_nodes_until(const std::string& rv, std::chrono::seconds timeout,
                                        const std::function<bool(const WatchEvent&)>& done) override;

  ApiResult<NodeInfo> patch_node_annotations(const std::string& name, const std::string& rv,
                                             const std::map<std::string, std::optional<std::string>>& patch) override {
    auto body =
        call(methods::PATCH, "/api/v1/nodes/" + path_escape(name) + "/status", annotations_patch_body(rv, patch),
             "application/json", opts_.max_body, "patch nodes/status (node \"" + name + "\")");
    if (!body) return body.error();
    auto node = parse_node(*body, opts_.annotation_prefix);
    if (!node) return bad_response("patch node " + name, node.error());
    return std::move(*node);
  }

  // Reads the Node first: lastTransitionTime changes only when the status does (Kubernetes'
  // rule), so a restart that re-publishes the same status keeps it.
  ApiStatus patch_node_condition(const std::string& name, const NodeCondition& condition) override {
    const std::string what = "patch nodes/status (node \"" + name + "\")";
    auto node = call(methods::GET, "/api/v1/nodes/" + path_escape(name), "", "application/json", opts_.max_body,
                     "get nodes (node \"" + name + "\")");
    if (!node) return node.error();
    auto current = find_condition(*node, condition.type);
    auto body = call(methods::PATCH, "/api/v1/nodes/" + path_escape(name) + "/status",
                     condition_patch_body(condition, now_rfc3339(), current), "application/json", opts_.max_body, what);
    if (!body) return body.error();
    return std::monostate{};
  }

  void wait_for_server(std::chrono::milliseconds pace, StopSignal& stop) override;

  void shutdown() override {
    std::lock_guard<std::mutex> lock(mu_);
    shut_ = true;
    cts_.cancel();
  }

 private:
  http_client_config make_config(std::chrono::milliseconds timeout) const {
    http_client_config c;
    c.set_timeout(std::chrono::duration_cast<std::chrono::microseconds>(timeout));
    c.set_validate_certificates(!cfg_.insecure_skip_tls_verify);
    if (!literal_v6_.empty()) c.set_tlsext_sni_enabled(false);  // SNI carries names, never addresses (RFC 6066)
    TlsMaterial tls = tls_;
    c.set_ssl_context_callback([tls](boost::asio::ssl::context& ctx) { apply_tls(ctx, tls); });
    return c;
  }

  ApiError bad_response(const std::string& what, const std::string& why) const {
    return ApiError{ApiErrorKind::BadResponse, 200, what + ": bad response from " + cfg_.server + ": " + why, {}};
  }

  ApiError exception_error(const std::string& what, const std::exception& e, std::chrono::milliseconds timeout) const;
  bool is_shut() const {
    std::lock_guard<std::mutex> lock(mu_);
    return shut_;
  }
  // A watch stream; the handler returns true to end it (the connection is dropped).
  using StreamHandler = std::function<bool(const WatchEvent&, bool more_buffered)>;
  ApiResult<WatchEnd> watch_stream(const std::string& rv, int timeout_s, const StreamHandler& on_event);

  std::chrono::milliseconds watch_timeout() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::seconds(opts_.watch_timeout_max_s) +
                                                                 opts_.watch_idle_margin);
  }

  // A per-request cancellation source, linked to the client's (shutdown cancels everything).
  std::optional<pplx::cancellation_token_source> request_source() {
    std::lock_guard<std::mutex> lock(mu_);
    if (shut_) return std::nullopt;
    auto token = cts_.get_token();
    return pplx::cancellation_token_source::create_linked_source(token);
  }

  // Sends one request; the response headers, or an error.
  ApiResult<http_response> send(http_client& client, const method& m, const std::string& path, const std::string& body,
                                const std::string& accept, const pplx::cancellation_token_source& cts,
                                const std::string& what, std::chrono::milliseconds timeout);
  ApiResult<std::string> call(const method& m, const std::string& path, const std::string& body,
                              const std::string& accept, std::size_t limit, const std::string& what);
  ApiError status_error(http_response& resp, const std::string& what);

  KubeConfig cfg_;
  ClientOptions opts_;
  TokenSource tokens_;
  TlsMaterial tls_;
  std::string setup_error_;
  std::unique_ptr<http_client> client_;
  std::unique_ptr<http_client> watch_client_;
  // The server's address when its URL is an IPv6 literal (in-cluster config with an IPv6
  // KUBERNETES_SERVICE_HOST): sent as the Host header, because cpprestsdk checks the
  // certificate against that header when given, and against "[addr]" otherwise, which no IP
  // SAN matches. (Its resolver gets "[addr]" too: see getaddrinfo below.)
  std::string literal_v6_;
  std::optional<ServerProbe> server_;  // the URL's host and port: TCP probes, connect errors
  SilenceLimit silence_;               // how long a watch may stay silent, from the bookmark gaps seen
  mutable std::mutex mu_;
  bool shut_ = false;
  pplx::cancellation_token_source cts_;
  std::mutex rng_mu_;
  std::mt19937 rng_;
};

// Reads bytes as they arrive: blocks for the first, then takes whatever is already buffered.
class BodyReader {
 public:
  explicit BodyReader(http_response& resp) : buf_(resp.body().streambuf()) {}

  // Appends up to `max` bytes to `out`; false at the end of the body. Throws on I/O errors.
  bool read_some(std::string& out, std::size_t max) {
    auto c = buf_.bumpc().get();
    if (c == std::char_traits<char>::eof()) return false;
    out.push_back(static_cast<char>(c));
    std::size_t n = std::min(buf_.in_avail(), max);
    if (n) {
      std::size_t old = out.size();
      out.resize(old + n);
      std::size_t got = buf_.getn(reinterpret_cast<std::uint8_t*>(out.data() + old), n).get();
      out.resize(old + got);
    }
    return true;
  }
  bool more_buffered() const { return buf_.in_avail() > 0; }

 private:
  concurrency::streams::streambuf<std::uint8_t> buf_;
};

ApiError too_big(const http_response& resp, std::uint64_t n, std::size_t limit, const std::string& what,
                 const std::string& server) {
  return ApiError{ApiErrorKind::BadResponse,
                  resp.status_code(),
                  what + ": response from " + server + " is " + std::to_string(n) + " bytes, over the limit of " +
                      std::to_string(limit),
                  {}};
}

// The declared Content-Length when it is over `limit`.
std::optional<std::uint64_t> declared_over(const http_response& resp, std::size_t limit) {
  auto declared = resp.headers().content_length();
  if (declared > limit && declared != std::numeric_limits<std::uint64_t>::max()) return declared;
  return std::nullopt;
}

ApiResult<std::string> read_limited(http_response& resp, std::size_t limit, const std::string& what,
                                    const std::string& server) {
  if (auto n = declared_over(resp, limit)) return too_big(resp, *n, limit, what, server);
  BodyReader reader(resp);
  std::string out;
  while (reader.read_some(out, 64U << 10U)) {
    if (out.size() > limit) return too_big(resp, out.size(), limit, what, server);
  }
  return out;
}

// The body as a std::streambuf for the JSON reader, refilled from the socket as the parser asks.
// It ends (EOF) once more than `limit` bytes came; an I/O error throws out of the read.
class BodyStreambuf final : public std::streambuf {
 public:
  BodyStreambuf(http_response& resp, std::size_t limit) : reader_(resp), limit_(limit) {}
  bool over_limit() const { return total_ > limit_; }
  std::size_t bytes() const { return total_; }

 protected:
  int_type underflow() override {
    if (gptr() < egptr()) return traits_type::to_int_type(*gptr());
    chunk_.clear();
    if (over_limit() || !reader_.read_some(chunk_, kChunk)) return traits_type::eof();
    total_ += chunk_.size();
    if (over_limit()) return traits_type::eof();
    setg(chunk_.data(), chunk_.data(), chunk_.data() + chunk_.size());
    return traits_type::to_int_type(*gptr());
  }

 private:
  static constexpr std::size_t kChunk = 64U << 10U;
  BodyReader reader_;
  std::size_t limit_;
  std::size_t total_ = 0;
  std::string chunk_;
};

// Reads and drops the rest of a body refused for its size. Cancelling a request while its
// body streams in races cpprest's socket close against the read on its I/O thread (a
// use-after-free in Boost.Asio's reactor, seen here about once in ten runs), so cancel only
// a body that is absurdly large. True when the body ended within `cap` more bytes.
bool drain(http_response& resp, std::size_t cap) {
  BodyReader reader(resp);
  std::string chunk;
  std::size_t dropped = 0;
  while (dropped <= cap) {
    chunk.clear();
    if (!reader.read_some(chunk, 64U << 10U)) return true;
    dropped += chunk.size();
  }
  return false;
}

ApiError RealKubeClient::exception_error(const std::string& what, const std::exception& e,
                                         std::chrono::milliseconds timeout) const {
  if (is_shut()) return ApiError{ApiErrorKind::Cancelled, 0, what + ": cancelled (shutting down)", {}};
  std::string msg = e.what();
  const auto* he = dynamic_cast<const web::http::http_exception*>(&e);
  if (he && msg.starts_with("Failed to connect") && server_) {
    // cpprest's code for a failed connect is not the real cause (ECONNREFUSED comes as "No
    // route to host"; other values lose their category): ask the kernel with one connect.
    auto why = server_->connect_failure(std::chrono::milliseconds(300));
    msg = "cannot connect to " + server_->target() + ": " +
          (why.empty() ? std::string("it failed, then the next connect succeeded") : lower_first(why));
  } else if (he && he->error_code()) {
    // cpprest reports a timeout as "Failed to read HTTP status line"; the error code says why.
    msg += " (" + he->error_code().message() + ")";
  }
  return transport_error(what, msg, TransportContext{cfg_.server, tls_.ca_desc, cfg_.source, timeout});
}

ApiError RealKubeClient::status_error(http_response& resp, const std::string& what) {
  int code = resp.status_code();
  std::string message;
  try {
    auto body = read_limited(resp, kMaxErrorBody, what, cfg_.server);
    if (body) {
      if (auto st = parse_status(*body)) message = st->message;
    }
  } catch (const std::exception&) {
    // The status line says enough.
  }
  std::optional<std::chrono::milliseconds> retry_after;
  auto it = resp.headers().find("Retry-After");
  if (it != resp.headers().end()) retry_after = parse_retry_after(it->second);
  if (code == 401) tokens_.invalidate();
  return http_error(code, what, message, retry_after);
}

ApiResult<http_response> RealKubeClient::send(http_client& client, const method& m, const std::string& path,
                                              const std::string& body, const std::string& accept,
                                              const pplx::cancellation_token_source& cts, const std::string& what,
                                              std::chrono::milliseconds timeout) {
  if (!setup_error_.empty()) return ApiError{ApiErrorKind::Tls, 0, setup_error_, {}};
  auto token = tokens_.current();
  if (!token) return ApiError{ApiErrorKind::Unauthorized, 0, what + ": " + token.error(), {}};
  http_request req(m);
  req.set_request_uri(path);
  req.headers().add("Accept", accept);
  req.headers().add("User-Agent", "weftd/0.1");
  if (!literal_v6_.empty()) req.headers().add("Host", literal_v6_);
  if (!token->empty()) req.headers().add("Authorization", "Bearer " + *token);
  if (!body.empty()) req.set_body(body, kSmp);
  try {
    http_response resp = client.request(req, cts.get_token()).get();
    if (resp.status_code() / 100 != 2) return status_error(resp, what);
    return resp;
  } catch (const std::exception& e) {
    return exception_error(what, e, timeout);
  }
}

ApiResult<std::string> RealKubeClient::call(const method& m, const std::string& path, const std::string& body,
                                            const std::string& accept, std::size_t limit, const std::string& what) {
  auto cts = request_source();
  if (!cts) return ApiError{ApiErrorKind::Cancelled, 0, what + ": cancelled (shutting down)", {}};
  auto resp = send(*client_, m, path, body, accept, *cts, what, opts_.request_timeout);
  if (!resp) return resp.error();
  try {
    auto out = read_limited(*resp, limit, what, cfg_.server);
    if (!out && !drain(*resp, kMaxDrain)) cts->cancel();
    return out;
  } catch (const std::exception& e) {
    return exception_error(what, e, opts_.request_timeout);
  }
}

ApiResult<NodeListPage> RealKubeClient::list_page(const std::string& path, const char* accept) {
  const std::string what = "list nodes";
  auto cts = request_source();
  if (!cts) return ApiError{ApiErrorKind::Cancelled, 0, what + ": cancelled (shutting down)", {}};
  auto resp = send(*client_, methods::GET, path, "", accept, *cts, what, opts_.request_timeout);
  if (!resp) return resp.error();
  const std::size_t limit = opts_.max_list_body;
  try {
    std::optional<std::uint64_t> over = declared_over(*resp, limit);
    std::optional<Result<NodeListPage>> page;
    if (!over) {
      BodyStreambuf buf(*resp, limit);
      std::istream in(&buf);
      page.emplace(parse_node_list(in, opts_.annotation_prefix));
      if (buf.over_limit()) over = buf.bytes();
    }
    if (page && *page && !over) return std::move(**page);
    // Refused before its end: read the rest away so the connection stays usable.
    if (!drain(*resp, kMaxDrain)) cts->cancel();
    if (over) return too_big(*resp, *over, limit, what, cfg_.server);
    return bad_response(what, page->error());
  } catch (const std::exception& e) {
    return exception_error(what, e, opts_.request_timeout);
  }
}

ApiResult<WatchEnd> RealKubeClient::watch_nodes(const std::string& rv, const WatchHandler& on_event) {
  int timeout_s = 0;
  {
    std::lock_guard<std::mutex> lock(rng_mu_);
    timeout_s = std::uniform_int_distribution<int>(opts_.watch_timeout_min_s, opts_.watch_timeout_max_s)(rng_);
  }
  return watch_stream(rv, timeout_s, [&](const WatchEvent& ev, bool more) {
    on_event(ev, more);
    return false;
  });
}

ApiResult<WatchEnd> RealKubeClient::watch_nodes_until(const std::string& rv, std::chrono::seconds timeout,
                                                      const std::function<bool(const WatchEvent&)>& done) {
  return watch_stream(rv, static_cast<int>(std::max<std::int64_t>(timeout.count(), 1)),
                      [&](const WatchEvent& ev, bool) { return done(ev); });
}

ApiResult<WatchEnd> RealKubeClient::watch_stream(const std::string& rv, int timeout_s, const StreamHandler& on_event) {
  const std::string what = "watch nodes";
  auto cts = request_source();
  if (!cts) return ApiError{ApiErrorKind::Cancelled, 0, what + ": cancelled (shutting down)", {}};
  std::string path = "/api/v1/nodes?watch=true&allowWatchBookmarks=true&resourceVersion=" + path_escape(rv) +
                     "&timeoutSeconds=" + std::to_string(timeout_s);
  // A path that drops packets without a reset leaves the stream silent: end it once the silence
  // is well past the server's bookmark cadence (headers included: the request may hang too).
  SilenceWatchdog watchdog([this] { return silence_.limit(); }, [&cts] { cts->cancel(); });
  auto silence_error = [&] {
    auto limit = silence_.limit();
    silence_.fired();
    std::string why = "nothing from " + cfg_.server + " for " + std::to_string(watchdog.fired_after().count()) +
                      " ms (limit " + std::to_string(limit.count()) + " ms; largest bookmark gap " +
                      std::to_string(silence_.gap().count()) + " ms)";
    spdlog::info("watch nodes: {}: connection presumed dead, resuming the watch", why);
    return ApiError{ApiErrorKind::Transport, 0, what + ": " + why + " (connection presumed dead)", {}};
  };
  auto resp = send(*watch_client_, methods::GET, path, "", opts_.full_nodes ? "application/json" : kMetaWatch, *cts,
                   what, watch_timeout());
  if (!resp) return watchdog.fired() ? silence_error() : resp.error();
  // Whatever ends the stream early (a bad line, the handler throwing), drop the connection.
  struct CancelOnExit {
    pplx::cancellation_token_source& c;
    ~CancelOnExit() { c.cancel(); }
  } cancel_on_exit{*cts};
  WatchEnd end;
  std::optional<std::chrono::steady_clock::time_point> last_bookmark;
  auto learn_bookmark_gap = [this](std::optional<std::chrono::steady_clock::time_point>& last) {
    auto now = std::chrono::steady_clock::now();
    if (last) silence_.learn_gap(std::chrono::duration_cast<std::chrono::milliseconds>(now - *last));
    last = now;
  };
  try {
    BodyReader reader(*resp);
    std::string pending;
    std::size_t scan_from = 0;
    while (reader.read_some(pending, opts_.max_watch_line + 1)) {
      watchdog.touch();
      std::size_t start = 0;
      for (std::size_t nl; (nl = pending.find('\n', scan_from)) != std::string::npos; start = scan_from = nl + 1) {
        std::string_view line(pending.data() + start, nl - start);
        if (line.empty() || line == "\r") continue;
        auto parsed = parse_watch_line(line, opts_.annotation_prefix);
        if (!parsed) return bad_response(what, "watch line: " + parsed.error());
        if (parsed->error) {
          const auto& st = *parsed->error;
          return http_error(st.code ? st.code : 500, what + " (ERROR event)", st.message, std::nullopt);
        }
        ++end.events;
        if (parsed->event->type == WatchEventType::Bookmark) learn_bookmark_gap(last_bookmark);
        bool more = pending.find('\n', nl + 1) != std::string::npos || reader.more_buffered();
        if (on_event(*parsed->event, more)) {
          end.done = true;
          return end;
        }
      }
      pending.erase(0, start);
      scan_from = pending.size();
      if (pending.size() > opts_.max_watch_line) {
        return bad_response(what, "a watch line is longer than " + std::to_string(opts_.max_watch_line) + " bytes");
      }
    }
  } catch (const std::exception& e) {
    if (watchdog.fired() && !is_shut()) return silence_error();
    return exception_error(what, e, watch_timeout());
  }
  return end;
}

void RealKubeClient::wait_for_server(std::chrono::milliseconds pace, StopSignal& stop) {
  if (!opts_.probe_server || !server_) {
    stop.wait_for(pace);
    return;
  }
  auto t0 = std::chrono::steady_clock::now();
  auto outcome = server_->wait(pace, [&] { return stop.stopped() || is_shut(); });
  auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
  if (outcome == ServerProbe::Outcome::Back && waited > std::chrono::seconds(1)) {
    spdlog::info("API server {} accepts TCP connects again after {} ms of refused or unanswered ones",
                 server_->target(), waited.count());
  }
}

}  // namespace

std::unique_ptr<KubeClient> make_kube_client(const KubeConfig& config, const ClientOptions& options) {
  return std::make_unique<RealKubeClient>(config, options);
}

}  // namespace weft::kube

// cpprestsdk's asio client resolves an IPv6 literal server with its brackets
// (getaddrinfo("[2001:db8::fe]", ...)), which glibc always refuses, so an IPv6-only cluster's API
// server could never be reached by address. weft's executables define getaddrinfo, which the
// dynamic linker binds cpprestsdk's calls to; a bracketed literal loses its brackets, and every
// other name goes to the C library's getaddrinfo unchanged.
extern "C" int getaddrinfo(const char* node, const char* service, const struct addrinfo* hints, struct addrinfo** res) {
  using Fn = int (*)(const char*, const char*, const struct addrinfo*, struct addrinfo**);
  static const Fn next = reinterpret_cast<Fn>(::dlsym(RTLD_NEXT, "getaddrinfo"));
  if (next == nullptr) return EAI_SYSTEM;
  const std::size_t n = node != nullptr ? std::strlen(node) : 0;
  if (n < 3 || node[0] != '[' || node[n - 1] != ']') return next(node, service, hints, res);
  const std::string inner(node + 1, n - 2);
  return next(inner.c_str(), service, hints, res);
}
