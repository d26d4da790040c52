// weftctl: status and diagnostics for people (text) and scripts (--output json).
#include <CLI/CLI.hpp>
#include <fstream>
#include <iostream>
#include <sstream>

#include "backend/netlink/netlink_impl.hpp"
#include "cmd/weftctl/daemon_status.hpp"
#include "cmd/weftctl/doctor.hpp"
#include "cmd/weftctl/kernel_view.hpp"
#include "cmd/weftctl/output.hpp"
#include "cmd/weftctl/status.hpp"

namespace {

constexpr int kUnreachable = 2;  // also usage errors

struct Common {
  std::string endpoint = "127.0.0.1:8471";
  int timeout_ms = 2000;
  std::string output = "text";
  std::string status_file;  // read weftd's /status answer from here instead of asking weftd
};

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

int status(const Common& c, const std::string& subnet_file) {
  weft::ctl::NodeStatus s;
  s.env = weft::SubnetEnv::load(subnet_file);
  std::string ip;
  int port = 0;
  if (!split_endpoint(c.endpoint, ip, port)) {
    std::cerr << "weftctl: --endpoint " << c.endpoint << " is not IP:PORT (for example 127.0.0.1:8471)\n";
    return kUnreachable;
  }
  auto ready = weft::ctl::http_get(ip, port, "/readyz", c.timeout_ms);
  if (ready) {
    s.readyz = *ready;
    // weftd knows its lease and which subnet file it writes; the file is read only for a
    // weftd too old to answer /status.
    if (auto d = weft::ctl::http_get(ip, port, "/status", c.timeout_ms); d && d->status == 200) {
      if (auto parsed = weft::ctl::parse_daemon_status(d->body)) s.daemon = *parsed;
    }
    if (auto m = weft::ctl::http_get(ip, port, "/metrics", c.timeout_ms); m && m->status == 200) {
      s.metrics = weft::ctl::parse_metrics(m->body);
      s.skipped = weft::ctl::parse_skipped(m->body);
    }
  } else {
    s.reach_error = ready.error();
  }
  std::cout << (c.output == "json" ? weft::ctl::status_json(s) : weft::ctl::render(s));
  return weft::ctl::exit_code(s);
}

// weftd's /status (or the file given instead), parsed; prints why on failure.
std::optional<weft::ctl::DaemonStatus> daemon_status(const Common& c) {
  std::string body;
  if (!c.status_file.empty()) {
    std::ifstream in(c.status_file);
    if (!in) {
      std::cerr << "weftctl: cannot read --status-file " << c.status_file << "\n";
      return std::nullopt;
    }
    std::stringstream ss;
    ss << in.rdbuf();
    body = ss.str();
  } else {
    std::string ip;
    int port = 0;
    if (!split_endpoint(c.endpoint, ip, port)) {
      std::cerr << "weftctl: --endpoint " << c.endpoint << " is not IP:PORT (for example 127.0.0.1:8471)\n";
      return std::nullopt;
    }
    auto a = weft::ctl::http_get(ip, port, "/status", c.timeout_ms);
    if (!a || a->status != 200) {
      std::cerr << "weftctl: weftd not reachable: "
                << (a ? "GET /status answered " + std::to_string(a->status) : a.error())
                << "\n  is weftd running with --healthz-port? (give weftctl --endpoint IP:PORT)\n";
      return std::nullopt;
    }
    body = a->body;
  }
  auto d = weft::ctl::parse_datapath_status(body);
  if (!d) {
    std::cerr << "weftctl: " << d.error() << "\n";
    return std::nullopt;
  }
  return std::move(d).value();
}

weft::Result<weft::ctl::KernelView> kernel_view(const weft::ctl::DaemonStatus& d) {
  auto nl = weft::NetlinkImpl::open();
  if (!nl) return weft::fail("open netlink: " + nl.error());
  return weft::ctl::read_kernel(**nl, d);
}

int peers(const Common& c) {
  auto d = daemon_status(c);
  if (!d) return kUnreachable;
  auto k = kernel_view(*d);
  if (!k) {
    std::cerr << "weftctl: cannot read the kernel: " << k.error() << "\n";
    return kUnreachable;
  }
  std::cout << (c.output == "json" ? weft::ctl::peers_json(*d, *k) : weft::ctl::peers_text(*d, *k));
  return k->ok() ? 0 : 1;
}

int doctor(const Common& c, const weft::ctl::DoctorOptions& o) {
  auto d = daemon_status(c);
  if (!d) return kUnreachable;
  auto checks = weft::ctl::run_doctor(*d, kernel_view(*d), o);
  std::cout << (c.output == "json" ? weft::ctl::doctor_json(checks) : weft::ctl::doctor_text(checks));
  for (const auto& check : checks) {
    if (!check.pass) return 1;
  }
  return 0;
}

void add_common(CLI::App* sub, Common& c, bool status_file) {
  sub->add_option("--endpoint", c.endpoint, "weftd's --healthz-ip:--healthz-port")->capture_default_str();
  sub->add_option("--timeout-ms", c.timeout_ms, "per request")->capture_default_str()->check(CLI::Range(1, 60000));
  sub->add_option("--output,-o", c.output, "text or json")
      ->capture_default_str()
      ->check(CLI::IsMember({"text", "json"}));
  if (status_file) {
    sub->add_option("--status-file", c.status_file,
                    "read weftd's GET /status answer from this file instead of asking weftd (diagnose while "
                    "weftd is stopped)");
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"weftctl: weft status and diagnostics"};
  app.set_version_flag("--version", std::string("weftctl ") + WEFT_VERSION);
  app.require_subcommand(1);
  Common common;
  std::string subnet_file = "/run/weft/subnet.env";
  auto* st = app.add_subcommand("status",
                                "this node's lease, readiness, peers and API counters; exit 0 ready, "
                                "1 not ready, 2 weftd not reachable");
  st->add_option("--subnet-file", subnet_file, "the subnet.env to read when weftd does not answer /status")
      ->capture_default_str();
  add_common(st, common, false);
  auto* pe = app.add_subcommand("peers",
                                "one line per peer: node, subnet, public IP, VTEP MAC and whether its route, "
                                "neighbour and FDB entry are in the kernel as desired (dual stack: the same for "
                                "its IPv6 half); skipped peers with the reason. Exit 0 all in place, 1 something "
                                "missing or wrong, 2 weftd not reachable");
  add_common(pe, common, true);
  weft::ctl::DoctorOptions dopt;
  auto* doc = app.add_subcommand("doctor",
                                 "checks the VTEP, the kernel entries, subnet.env, the CNI install, sysctls, "
                                 "nftables and the API server; each PASS or FAIL with a fix. Exit 0 all pass, "
                                 "1 any FAIL, 2 weftd not reachable or a usage error");
  add_common(doc, common, true);
  doc->add_option("--cni-conf-dir", dopt.cni_conf_dir, "where the kubelet's runtime reads CNI conflists")
      ->capture_default_str();
  doc->add_option("--cni-bin-dir", dopt.cni_bin_dir, "where it finds CNI plugins")->capture_default_str();
  doc->add_option("--subnet-file", dopt.subnet_file, "the subnet.env to check (default: the one weftd writes)");
  doc->add_option("--api-server", dopt.api_server,
                  "https://HOST:PORT (default: weftd's --kube-api-url, its kubeconfig's server, or in-cluster)");
  doc->add_option("--proc-sys", dopt.proc_sys, "where sysctls are read")->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : kUnreachable;
  }
  dopt.timeout_ms = common.timeout_ms;
  if (st->parsed()) return status(common, subnet_file);
  if (pe->parsed()) return peers(common);
  if (doc->parsed()) return doctor(common, dopt);
  return 0;
}
