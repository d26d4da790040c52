#include "test/support/kubeapi_server.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <thread>

#ifndef WEFT_SOURCE_DIR
#error "WEFT_SOURCE_DIR must be defined (the repository root)"
#endif

namespace weft::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string make_temp_dir(const char* pattern) {
  std::string tmpl = (fs::temp_directory_path() / pattern).string();
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp " + tmpl + " failed");
  return tmpl;
}

// Certificates and tokens, made by the first server and shared by the others (the double
// locks generation), removed when the test process exits.
struct SharedCertDir {
  std::string path = make_temp_dir("weft-kubeapi-certs-XXXXXX");
  ~SharedCertDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

const std::string& cert_dir() {
  static SharedCertDir dir;
  return dir.path;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string dechunk(const std::string& body) {
  std::string out;
  std::size_t pos = 0;
  while (pos < body.size()) {
    std::size_t eol = body.find("\r\n", pos);
    if (eol == std::string::npos) break;
    std::size_t n = std::stoul(body.substr(pos, eol - pos), nullptr, 16);
    if (n == 0) break;
    out.append(body, eol + 2, n);
    pos = eol + 2 + n + 2;
  }
  return out;
}

struct SslDeleter {
  void operator()(SSL* s) const { SSL_free(s); }
  void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};

HttpReply https(int port, const std::string& ca, const std::string& method, const std::string& path,
                const std::string& body, const std::string& content_type, const std::string& token) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket failed");
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  timeval tv{30, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    throw std::runtime_error("connect to the API test double on port " + std::to_string(port) + " failed");
  }
  std::unique_ptr<SSL_CTX, SslDeleter> ctx(SSL_CTX_new(TLS_client_method()));
  if (SSL_CTX_load_verify_locations(ctx.get(), ca.c_str(), nullptr) != 1) throw std::runtime_error("bad CA " + ca);
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  std::unique_ptr<SSL, SslDeleter> ssl(SSL_new(ctx.get()));
  X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl.get()), "127.0.0.1");
  SSL_set_fd(ssl.get(), fd);
  if (SSL_connect(ssl.get()) != 1) throw std::runtime_error("TLS handshake with the API test double failed");
  std::string req = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
                    "\r\nConnection: close\r\nAccept: application/json\r\n";
  if (!token.empty()) req += "Authorization: Bearer " + token + "\r\n";
  if (!body.empty() || method == "POST" || method == "PATCH" || method == "PUT") {
    req += "Content-Type: " + content_type + "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  }
  req += "\r\n" + body;
  if (SSL_write(ssl.get(), req.data(), static_cast<int>(req.size())) <= 0) throw std::runtime_error("TLS write failed");
  std::string raw;
  char buf[16384];
  for (int n; (n = SSL_read(ssl.get(), buf, sizeof buf)) > 0;) raw.append(buf, static_cast<std::size_t>(n));
  std::size_t head_end = raw.find("\r\n\r\n");
  if (raw.size() < 12 || head_end == std::string::npos) throw std::runtime_error("no HTTP response to " + path);
  HttpReply reply;
  reply.status = std::stoi(raw.substr(9, 3));
  std::string head = raw.substr(0, head_end);
  reply.body = raw.substr(head_end + 4);
  for (auto& c : head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (head.find("transfer-encoding: chunked") != std::string::npos) reply.body = dechunk(reply.body);
  return reply;
}

}  // namespace

json HttpReply::json() const { return nlohmann::json::parse(body); }

KubeApiServer::KubeApiServer() : KubeApiServer(Options{}) {}

KubeApiServer::KubeApiServer(const Options& options) { start(options); }

KubeApiServer::~KubeApiServer() { stop(); }

void KubeApiServer::start(const Options& o) {
  dir_ = make_temp_dir("weft-kubeapi-XXXXXX");
  std::string ready = dir_ + "/ready.json";
  std::string log = dir_ + "/kubeapi.log";
  kubeconfig_ = dir_ + "/kubeconfig";
  std::vector<std::string> args = {"python3",
                                   std::string(WEFT_SOURCE_DIR) + "/test/kubeapi/kubeapi.py",
                                   "--listen",
                                   o.listen,
                                   "--cert-dir",
                                   cert_dir(),
                                   "--ready-file",
                                   ready,
                                   "--kubeconfig-out",
                                   kubeconfig_,
                                   "--bookmark-interval",
                                   std::to_string(o.bookmark_interval_s),
                                   "--history",
                                   std::to_string(o.history),
                                   "--log-file",
                                   log};
  if (o.startup_forbidden_s > 0) {
    args.push_back("--startup-forbidden");
    args.push_back(std::to_string(o.startup_forbidden_s));
  }
  args.insert(args.end(), o.extra_args.begin(), o.extra_args.end());
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive a crashed test
    int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (out >= 0) {
      ::dup2(out, 1);
      ::dup2(out, 2);
    }
    std::vector<char*> argv;
    argv.reserve(args.size() + 1);
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execvp("python3", argv.data());
    ::_exit(127);
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!fs::exists(ready)) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      throw std::runtime_error("the API test double exited at start: " + read_file(log));
    }
    if (std::chrono::steady_clock::now() > deadline) {
      stop();
      throw std::runtime_error("the API test double did not become ready in 30 s: " + read_file(log));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // test fixture only: wait for a child process
  }
  auto r = nlohmann::json::parse(read_file(ready));
  url_ = r.at("url").get<std::string>();
  port_ = r.at("port").get<int>();
  ca_ = r.at("ca").get<std::string>();
  other_ca_ = r.at("other_ca").get<std::string>();
  client_cert_ = r.at("client_cert").get<std::string>();
  client_key_ = r.at("client_key").get<std::string>();
  admin_token_ = r.at("admin_token").get<std::string>();
  tokens_ = r.at("tokens");
  weft_token_ = token_of("system:serviceaccount:kube-system:weft");
}

void KubeApiServer::stop() {
  if (pid_ > 0) {
    ::kill(pid_, SIGCONT);
    ::kill(pid_, SIGTERM);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    int status = 0;
    while (::waitpid(pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    pid_ = -1;
  }
  if (!dir_.empty()) {
    std::error_code ec;
    fs::remove_all(dir_, ec);
    dir_.clear();
  }
}

std::string KubeApiServer::token_of(const std::string& user) const { return tokens_.at(user).get<std::string>(); }

HttpReply KubeApiServer::request(const std::string& method, const std::string& path, const std::string& body,
                                 const std::string& content_type, const std::string& token) const {
  return https(port_, ca_, method, path, body, content_type, token.empty() ? admin_token_ : token);
}

namespace {
json checked(const HttpReply& r, const std::string& what) {
  if (r.status / 100 != 2) throw std::runtime_error(what + ": HTTP " + std::to_string(r.status) + " " + r.body);
  return r.body.empty() ? json() : r.json();
}
}  // namespace

void KubeApiServer::create_node(const std::string& name, const std::string& internal_ip, const std::string& pod_cidr,
                                const std::map<std::string, std::string>& annotations) {
  json node = {{"apiVersion", "v1"}, {"kind", "Node"}, {"metadata", {{"name", name}}}};
  if (!annotations.empty()) node["metadata"]["annotations"] = annotations;
  if (!pod_cidr.empty()) node["spec"] = {{"podCIDR", pod_cidr}, {"podCIDRs", {pod_cidr}}};
  node["status"] = {{"addresses", {{{"type", "InternalIP"}, {"address", internal_ip}}}},
                    {"conditions", {{{"type", "Ready"}, {"status", "True"}, {"reason", "KubeletReady"}}}}};
  checked(request("POST", "/api/v1/nodes", node.dump()), "create node " + name);
}

void KubeApiServer::delete_node(const std::string& name) {
  checked(request("DELETE", "/api/v1/nodes/" + name), "delete node " + name);
}

void KubeApiServer::annotate(const std::string& name, const std::map<std::string, std::string>& annotations) {
  json a = json::object();
  for (const auto& [k, v] : annotations) a[k] = v.empty() ? json(nullptr) : json(v);
  json patch = {{"metadata", {{"annotations", a}}}};
  checked(request("PATCH", "/api/v1/nodes/" + name, patch.dump(), "application/merge-patch+json"), "annotate " + name);
}

json KubeApiServer::get_node(const std::string& name) const {
  return checked(request("GET", "/api/v1/nodes/" + name), "get node " + name);
}

json KubeApiServer::list_nodes() const { return checked(request("GET", "/api/v1/nodes"), "list nodes"); }

json KubeApiServer::control(const std::string& method, const std::string& path, const json& body) const {
  return checked(request(method, path, body.is_null() ? "" : body.dump()), method + " " + path);
}

void KubeApiServer::fail_next(int count, int code, const std::string& verb, int retry_after_s) {
  json b = {{"count", count}, {"code", code}};
  if (!verb.empty()) b["verb"] = verb;
  if (retry_after_s >= 0) b["retry_after"] = retry_after_s;
  control("POST", "/_weft/fail", b);
}

void KubeApiServer::close_watches(bool abort) {
  control("POST", "/_weft/watches/close", {{"mode", abort ? "abort" : "clean"}});
}

void KubeApiServer::blackhole(bool on) { control("POST", "/_weft/blackhole", {{"on", on}}); }

void KubeApiServer::latency_ms(int ms) { control("POST", "/_weft/latency", {{"ms", ms}}); }

void KubeApiServer::pause() { ::kill(pid_, SIGSTOP); }

void KubeApiServer::resume() { ::kill(pid_, SIGCONT); }

}  // namespace weft::test
