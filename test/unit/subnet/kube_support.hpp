#pragma once
// Helpers for tests against the API test double: configs, real managers, waiting.

#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

#include "subnet/kube/kube_subnet_manager.hpp"
#include "test/support/kubeapi_server.hpp"
#include "test_util.hpp"

namespace weft::test {

inline kube::KubeConfig config_for(const KubeApiServer& s, const std::string& token) {
  kube::KubeConfig c;
  c.server = s.url();
  c.ca_file = s.ca_file();
  c.token = token;
  c.source = "test kubeconfig";
  return c;
}

// Short timeouts so hung-server cases finish quickly.
inline kube::ClientOptions fast_options() {
  kube::ClientOptions o;
  o.request_timeout = std::chrono::milliseconds(3000);
  o.watch_timeout_min_s = 20;
  o.watch_timeout_max_s = 20;
  o.watch_idle_margin = std::chrono::milliseconds(2000);
  return o;
}

inline std::unique_ptr<SubnetManager> real_manager(const KubeApiServer& s, const std::string& node,
                                                   const std::string& netconf = R"({"Network":"10.244.0.0/16"})",
                                                   kube::ClientOptions o = fast_options()) {
  kube::KubeSubnetConfig c;
  c.node_name = node;
  c.net = net_config(netconf);
  c.auto_wait = std::chrono::milliseconds(50);  // SubnetSource auto in an empty cluster
  c.pod_cidr_poll = std::chrono::milliseconds(20);
  auto m = kube::make_kube_subnet_manager(config_for(s, s.weft_token()), o, c);
  if (!m) FAIL(m.error());
  return std::move(*m);
}

inline std::map<std::string, std::string> peer_annotations(const std::string& subnet,
                                                           const std::string& mac = "0e:00:00:00:00:09") {
  return {{"weft.io/subnet", subnet},
          {"weft.io/public-ip", "192.0.2.9"},
          {"weft.io/backend-type", "vxlan"},
          {"weft.io/backend-data", R"({"VNI":1,"VtepMAC":")" + mac + "\"}"}};
}

// Polls `f` (cheap, in-process) every millisecond for up to `limit`.
template <class F>
bool eventually(F f, std::chrono::milliseconds limit = std::chrono::milliseconds(5000)) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (f()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return f();
}

inline long long ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace weft::test
