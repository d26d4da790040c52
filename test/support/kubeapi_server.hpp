#pragma once
// KubeApiServer: a test fixture that runs the Kubernetes API test double
// (python3 test/kubeapi/kubeapi.py) on 127.0.0.1 with a free port in a temporary directory,
// waits for its ready file, and talks to it over a small blocking HTTPS client (OpenSSL):
// Nodes to create, patch and delete, faults to inject, counters to read. The destructor
// stops the server (SIGTERM, then SIGKILL) and removes the directory. Certificates and
// tokens are made once per test process and shared by every server it starts.
// Failures to start or to talk to it throw std::runtime_error (the test fails with the reason).

#include <sys/types.h>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace weft::test {

struct HttpReply {
  int status = 0;
  std::string body;
  nlohmann::json json() const;  // the body parsed (throws when it is not JSON)
};

class KubeApiServer {
 public:
  struct Options {
    // 1 s, not kube-apiserver's 60 s (kubeapi.py's default): these tests check how the client
    // uses bookmarks within seconds. A test of the real cadence sets 60.
    double bookmark_interval_s = 1.0;
    int history = 1000;
    // > 0: RBAC's start-up 403 window (kubeapi.py --startup-forbidden); 0 as the tests assume
    // a server that serves weft's token at once.
    double startup_forbidden_s = 0.0;
    std::vector<std::string> extra_args;
    // "[::]:0" serves IPv6 too (url() is then https://[::1]:PORT); the fixture's own requests
    // still go to 127.0.0.1, which the dual-stack socket accepts.
    std::string listen = "127.0.0.1:0";
  };
  KubeApiServer();
  explicit KubeApiServer(const Options& options);
  ~KubeApiServer();
  KubeApiServer(const KubeApiServer&) = delete;
  KubeApiServer& operator=(const KubeApiServer&) = delete;

  const std::string& url() const { return url_; }
  int port() const { return port_; }
  const std::string& ca_file() const { return ca_; }
  const std::string& other_ca_file() const { return other_ca_; }
  const std::string& client_cert_file() const { return client_cert_; }  // CN weft-client: get, list, watch
  const std::string& client_key_file() const { return client_key_; }
  const std::string& admin_token() const { return admin_token_; }
  const std::string& weft_token() const { return weft_token_; }  // flannel's RBAC
  std::string token_of(const std::string& user) const;           // from the ready file's "tokens"
  const std::string& kubeconfig() const { return kubeconfig_; }  // weft's service account
  const std::string& dir() const { return dir_; }
  pid_t pid() const { return pid_; }

  // One request as admin (or with `token`); never throws for HTTP error statuses.
  HttpReply request(const std::string& method, const std::string& path, const std::string& body = "",
                    const std::string& content_type = "application/json", const std::string& token = "") const;

  // Nodes, as kubelet would make them. Each throws on an HTTP error.
  void create_node(const std::string& name, const std::string& internal_ip = "192.0.2.10",
                   const std::string& pod_cidr = "", const std::map<std::string, std::string>& annotations = {});
  void delete_node(const std::string& name);
  // Merge-patches annotations (empty value: remove the key).
  void annotate(const std::string& name, const std::map<std::string, std::string>& annotations);
  nlohmann::json get_node(const std::string& name) const;
  nlohmann::json list_nodes() const;

  // Faults and counters (/_weft/...).
  nlohmann::json control(const std::string& method, const std::string& path, const nlohmann::json& body = {}) const;
  nlohmann::json stats() const { return control("GET", "/_weft/stats"); }
  void reset_stats() { control("POST", "/_weft/stats/reset"); }
  void fail_next(int count, int code, const std::string& verb = "", int retry_after_s = -1);
  void compact() { control("POST", "/_weft/compact"); }
  void close_watches(bool abort = false);
  void blackhole(bool on);
  void latency_ms(int ms);
  void reset_faults() { control("POST", "/_weft/reset"); }
  // SIGSTOP / SIGCONT the server process: connections hang without a reset.
  void pause();
  void resume();

 private:
  void start(const Options& options);
  void stop();

  std::string dir_, url_, ca_, other_ca_, client_cert_, client_key_, admin_token_, weft_token_, kubeconfig_;
  nlohmann::json tokens_;
  int port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace weft::test
