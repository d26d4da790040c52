// weftctl: status and diagnostics for people.
#include <CLI/CLI.hpp>
#include <iostream>

#include "cmd/weftctl/status.hpp"

namespace {

// "IP:PORT" -> the two parts; false when it is not that shape.
bool split_endpoint(const std::string& endpoint, std::string& ip, int& port) {
  auto colon = endpoint.rfind(':');
  if (colon == std::string::npos) return false;
  ip = endpoint.substr(0, colon);
  try {
    std::size_t used = 0;
    port = std::stoi(endpoint.substr(colon + 1), &used);
    return used == endpoint.size() - colon - 1;
  } catch (const std::exception&) {
    return false;
  }
}

int status(const std::string& subnet_file, const std::string& endpoint, int timeout_ms) {
  weft::ctl::NodeStatus s;
  s.env = weft::SubnetEnv::load(subnet_file);
  std::string ip;
  int port = 0;
  if (!split_endpoint(endpoint, ip, port)) {
    std::cerr << "weftctl: --endpoint " << endpoint << " is not IP:PORT (for example 127.0.0.1:8471)\n";
    return 2;
  }
  auto ready = weft::ctl::http_get(ip, port, "/readyz", timeout_ms);
  if (ready) {
    s.readyz = *ready;
    // weftd knows its lease and which subnet file it writes; the file is read only for a
    // weftd too old to answer /status.
    if (auto d = weft::ctl::http_get(ip, port, "/status", timeout_ms); d && d->status == 200) {
      if (auto parsed = weft::ctl::parse_daemon_status(d->body)) s.daemon = *parsed;
    }
    if (auto m = weft::ctl::http_get(ip, port, "/metrics", timeout_ms); m && m->status == 200) {
      s.metrics = weft::ctl::parse_metrics(m->body);
      s.skipped = weft::ctl::parse_skipped(m->body);
    }
  } else {
    s.reach_error = ready.error();
  }
  std::cout << weft::ctl::render(s);
  return weft::ctl::exit_code(s);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"weftctl: weft status and diagnostics"};
  app.set_version_flag("--version", std::string("weftctl ") + WEFT_VERSION);
  app.require_subcommand(1);
  std::string subnet_file = "/run/weft/subnet.env";
  std::string endpoint = "127.0.0.1:8471";
  int timeout_ms = 2000;
  auto* st = app.add_subcommand("status",
                                "this node's lease, readiness, peers and API counters; exit 0 ready, "
                                "1 not ready, 2 weftd not reachable");
  st->add_option("--subnet-file", subnet_file, "the subnet.env to read when weftd does not answer /status")
      ->capture_default_str();
  st->add_option("--endpoint", endpoint, "weftd's --healthz-ip:--healthz-port")->capture_default_str();
  st->add_option("--timeout-ms", timeout_ms, "per request")->capture_default_str()->check(CLI::Range(1, 60000));
  CLI11_PARSE(app, argc, argv);
  if (st->parsed()) return status(subnet_file, endpoint, timeout_ms);
  return 0;
}
