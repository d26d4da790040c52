#include "cmd/weftctl/probes.hpp"

#include <fcntl.h>
#include <netdb.h>
#include <nftables/libnftables.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <regex>

namespace weft::ctl {
namespace {

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

struct SslCtxFree {
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
struct SslFree {
  void operator()(SSL* s) const { SSL_free(s); }
};

std::string ssl_error() {
  unsigned long e = ERR_get_error();
  if (e == 0) return errno != 0 ? std::strerror(errno) : "the connection closed";
  std::array<char, 256> buf{};
  ERR_error_string_n(e, buf.data(), buf.size());
  return buf.data();
}

}  // namespace

Result<std::string> read_sysctl(const std::string& root, const std::string& key) {
  std::string path = key;
  std::replace(path.begin(), path.end(), '.', '/');
  path = root + "/" + path;
  std::ifstream in(path);
  std::string line;
  if (!in || !std::getline(in, line)) return fail("cannot read " + path);
  return line;
}

Result<bool> nft_table_present(const std::string& family, const std::string& name) {
  // libnftables, as weftd uses it: the DaemonSet's image has the library, not the nft command.
  std::unique_ptr<nft_ctx, void (*)(nft_ctx*)> ctx(nft_ctx_new(NFT_CTX_DEFAULT), nft_ctx_free);
  if (!ctx) return fail("libnftables: cannot make a context");
  nft_ctx_output_set_flags(ctx.get(), NFT_CTX_OUTPUT_JSON);
  nft_ctx_buffer_output(ctx.get());
  nft_ctx_buffer_error(ctx.get());
  if (nft_run_cmd_from_buffer(ctx.get(), "list tables") != 0) {
    std::string err = nft_ctx_get_error_buffer(ctx.get());
    while (!err.empty() && err.back() == '\n') err.pop_back();
    return fail("nft list tables: " + err + " (weftctl needs CAP_NET_ADMIN)");
  }
  auto j = nlohmann::json::parse(nft_ctx_get_output_buffer(ctx.get()), nullptr, false);
  if (j.is_discarded() || !j.contains("nftables")) return fail("nft list tables: not JSON");
  for (const auto& item : j["nftables"]) {
    auto t = item.find("table");
    if (t != item.end() && t->value("family", "") == family && t->value("name", "") == name) return true;
  }
  return false;
}

Result<std::string> kubeconfig_server(const std::string& path) {
  std::ifstream in(path);
  if (!in) return fail("cannot read the kubeconfig " + path);
  static const std::regex kServer(R"(^\s*server:\s*["']?([^"'\s]+))");
  std::string line;
  std::smatch m;
  while (std::getline(in, line)) {
    if (std::regex_search(line, m, kServer)) return m[1].str();
  }
  return std::string();
}

Result<int> probe_api_server(const std::string& url, int timeout_ms) {
  static const std::regex kUrl(R"(^https://(\[[^\]]+\]|[^/:]+)(?::(\d+))?/?$)");
  std::smatch m;
  if (!std::regex_match(url, m, kUrl)) return fail(url + " is not https://HOST[:PORT]");
  std::string host = m[1].str();
  if (host.front() == '[') host = host.substr(1, host.size() - 2);
  std::string port = m[2].matched ? m[2].str() : "443";
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &res); rc != 0) {
    return fail(url + ": " + ::gai_strerror(rc));
  }
  std::unique_ptr<addrinfo, void (*)(addrinfo*)> addrs(res, ::freeaddrinfo);
  Fd s{::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)};
  if (s.fd < 0) return fail(std::string("socket: ") + std::strerror(errno));
  if (::connect(s.fd, res->ai_addr, res->ai_addrlen) != 0 && errno != EINPROGRESS) {
    return fail(url + ": " + std::strerror(errno));
  }
  pollfd p{s.fd, POLLOUT, 0};
  if (::poll(&p, 1, timeout_ms) != 1) return fail(url + ": no TCP answer within " + std::to_string(timeout_ms) + " ms");
  int err = 0;
  socklen_t len = sizeof err;
  ::getsockopt(s.fd, SOL_SOCKET, SO_ERROR, &err, &len);
  if (err != 0) return fail(url + ": " + std::strerror(err));
  // Blocking from here, each read and write bounded by the timeout.
  ::fcntl(s.fd, F_SETFL, 0);
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  ::setsockopt(s.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(s.fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  std::unique_ptr<SSL_CTX, SslCtxFree> ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx) return fail("TLS: " + ssl_error());
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
  std::unique_ptr<SSL, SslFree> ssl(SSL_new(ctx.get()));
  SSL_set_fd(ssl.get(), s.fd);
  if (host.find_first_not_of("0123456789.:abcdefABCDEF") != std::string::npos) {  // SNI for names, not addresses
    SSL_ctrl(ssl.get(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name, const_cast<char*>(host.c_str()));
  }
  errno = 0;
  if (SSL_connect(ssl.get()) != 1) {
    return fail(url + ": no TLS handshake within " + std::to_string(timeout_ms) + " ms (" + ssl_error() + ")");
  }
  std::string req = "GET /readyz HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n";
  if (SSL_write(ssl.get(), req.data(), static_cast<int>(req.size())) <= 0) return fail(url + ": " + ssl_error());
  std::string head;
  std::array<char, 1024> buf{};
  while (head.find("\r\n") == std::string::npos && head.size() < 4096) {
    errno = 0;
    int n = SSL_read(ssl.get(), buf.data(), static_cast<int>(buf.size()));
    if (n <= 0)
      return fail(url + ": no HTTP answer within " + std::to_string(timeout_ms) + " ms (" + ssl_error() + ")");
    head.append(buf.data(), static_cast<std::size_t>(n));
  }
  if (head.rfind("HTTP/", 0) != 0 || head.size() < 12) return fail(url + ": not an HTTP answer");
  return std::atoi(head.c_str() + 9);
}

}  // namespace weft::ctl
