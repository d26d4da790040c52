#include "cmd/weftctl/status.hpp"

#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <sstream>

#include "cmd/weftctl/json_fields.hpp"

namespace weft::ctl {
namespace {

using Clock = std::chrono::steady_clock;

struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

// Waits for `events` on fd until the deadline; false on timeout or error.
bool wait_for(int fd, short events, Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  if (left <= 0) return false;
  pollfd p{fd, events, 0};
  return ::poll(&p, 1, static_cast<int>(left)) == 1;
}

Result<HttpAnswer> parse_answer(const std::string& raw) {
  auto head_end = raw.find("\r\n\r\n");
  if (raw.rfind("HTTP/1.", 0) != 0 || head_end == std::string::npos) return fail("not an HTTP answer");
  HttpAnswer a;
  a.status = std::atoi(raw.c_str() + 9);
  a.body = raw.substr(head_end + 4);
  return a;
}

std::string metric(const std::map<std::string, double>& m, const std::string& name) {
  auto it = m.find(name);
  return it == m.end() ? "?" : fmt::format("{}", it->second);
}

}  // namespace

Result<HttpAnswer> http_get(const std::string& ip, int port, const std::string& path, int timeout_ms) {
  std::string where = fmt::format("{}:{}", ip, port);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  if (port <= 0 || port > 65535 || ::inet_pton(AF_INET, ip.c_str(), &addr.sin_addr) != 1) {
    return fail(where + " is not an IPv4 address and port");
  }
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  Fd s{::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)};
  if (s.fd < 0) return fail(std::string("socket: ") + std::strerror(errno));
  if (::connect(s.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 && errno != EINPROGRESS) {
    return fail(where + ": " + std::strerror(errno));
  }
  if (!wait_for(s.fd, POLLOUT, deadline))
    return fail(where + ": no answer within " + std::to_string(timeout_ms) + " ms");
  int err = 0;
  socklen_t len = sizeof err;
  ::getsockopt(s.fd, SOL_SOCKET, SO_ERROR, &err, &len);
  if (err != 0) return fail(where + ": " + std::strerror(err));
  std::string req = "GET " + path + " HTTP/1.1\r\nHost: " + where + "\r\nConnection: close\r\n\r\n";
  if (::send(s.fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
    return fail(where + ": cannot send the request");
  }
  std::string raw;
  char buf[16384];
  constexpr std::size_t kMaxAnswer = 4U << 20U;
  for (;;) {
    if (!wait_for(s.fd, POLLIN, deadline))
      return fail(where + ": answer incomplete after " + std::to_string(timeout_ms) + " ms");
    auto n = ::recv(s.fd, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(where + ": " + std::strerror(errno));
    if (n == 0) break;
    raw.append(buf, static_cast<std::size_t>(n));
    if (raw.size() > kMaxAnswer) return fail(where + ": answer larger than 4 MiB");
  }
  auto a = parse_answer(raw);
  if (!a) return fail(where + path + ": " + a.error());
  return a;
}

std::map<std::string, double> parse_metrics(const std::string& text) {
  std::map<std::string, double> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#' || line.find('{') != std::string::npos) continue;
    auto sp = line.find(' ');
    if (sp == std::string::npos) continue;
    char* end = nullptr;
    double v = std::strtod(line.c_str() + sp + 1, &end);
    if (end != line.c_str() + sp + 1) out[line.substr(0, sp)] = v;
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> parse_skipped(const std::string& text) {
  static const std::string kHead = "weft_kube_node_skipped{node=\"";
  std::vector<std::pair<std::string, std::string>> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(kHead, 0) != 0) continue;
    std::vector<std::string> values;  // node, then reason: label values with \" and \\ escapes
    std::string cur;
    bool quoted = true;
    for (std::size_t i = kHead.size(); i < line.size() && values.size() < 2; ++i) {
      char c = line[i];
      if (!quoted) {
        if (c == '"') quoted = true;
        continue;
      }
      if (c == '\\' && i + 1 < line.size()) {
        cur += line[++i];
      } else if (c == '"') {
        values.push_back(std::move(cur));
        cur.clear();
        quoted = false;
      } else {
        cur += c;
      }
    }
    if (values.size() == 2) out.emplace_back(values[0], values[1]);
  }
  return out;
}

Result<DaemonLease> parse_daemon_status(const std::string& body) {
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("subnet_file")) return fail("not a weftd /status answer");
  DaemonLease d;
  d.ready = flag(j, "ready");  // untrusted: a non-boolean reads as false, never a throw
  d.subnet_file = text(j, "subnet_file");
  auto lease = j.find("lease");
  if (lease != j.end() && lease->is_object()) {
    d.leased = true;
    d.subnet = text(*lease, "subnet");
    d.network = text(*lease, "network");
    d.public_ip = text(*lease, "public_ip");
    d.vtep_mac = text(*lease, "vtep_mac");
    d.mtu = number<int>(*lease, "mtu");
    d.ipmasq = flag(*lease, "ipmasq");
    d.subnet_v6 = text(*lease, "subnet_v6");
    d.network_v6 = text(*lease, "network_v6");
    d.public_ip_v6 = text(*lease, "public_ip_v6");
    d.vtep_mac_v6 = text(*lease, "vtep_mac_v6");
  }
  if (auto v = j.find("vtep6"); v != j.end() && v->is_object()) {
    d.vtep6 = DaemonLease::Vtep6{text(*v, "name"), text(*v, "local_ip"), number<int>(*v, "vni"),
                                 number<int>(*v, "mtu_wanted")};
    d.ipv6_only = !j.contains("vtep");  // weftd omits the IPv4 VTEP when it has no IPv4 half
  }
  if (d.network_v6.empty()) d.network_v6 = text(j, "network_v6");
  return d;
}

static std::string masquerade(bool on) { return on ? "on" : "off"; }

static std::string render_lease_v6(const DaemonLease& d) {
  std::string out;
  if (!d.subnet_v6.empty()) {
    // IPv6-only: the MTU and masquerade go here, there is no IPv4 subnet line.
    const std::string more = d.ipv6_only ? fmt::format(", MTU {}, masquerade {}", d.mtu, masquerade(d.ipmasq)) : "";
    out += fmt::format("subnet v6   {} (network {}{})\n", d.subnet_v6, d.network_v6, more);
    out += fmt::format("lease v6    public IP {}, VTEP MAC {}\n",
                       d.public_ip_v6.empty() ? "none (VXLAN over the IPv4 underlay)" : d.public_ip_v6,
                       d.vtep_mac_v6.empty() ? "none yet" : d.vtep_mac_v6);
  }
  if (d.vtep6) {
    out += fmt::format("vtep6       {} (VNI {}, local {}, MTU {})\n", d.vtep6->name, d.vtep6->vni, d.vtep6->local_ip,
                       d.vtep6->mtu);
  }
  return out;
}

static std::string render_lease(const DaemonLease& d) {
  std::string out = d.ipv6_only ? "family      IPv6 only: weftd has no IPv4 half\n" : "";
  if (!d.leased) {
    out += "subnet      none yet: weftd has no lease\n";
  } else if (!d.ipv6_only) {  // IPv6-only: the IPv6 lines below say it all
    out += fmt::format("subnet      {} (network {}, MTU {}, masquerade {})\n", d.subnet, d.network, d.mtu,
                       masquerade(d.ipmasq));
    out += fmt::format("lease       public IP {}, VTEP MAC {}\n", d.public_ip, d.vtep_mac);
  }
  out += render_lease_v6(d);
  out += fmt::format("subnet file {}\n", d.subnet_file);
  return out;
}

static std::string render_env(const SubnetEnv& env) {
  const std::string mtu = fmt::format("MTU {}, masquerade {}", env.mtu, masquerade(env.ipmasq));
  if (!env.subnet) {
    return fmt::format("family      IPv6 only: subnet.env has no IPv4 half\nsubnet v6   {} (network {}, {})\n",
                       env.subnet_v6->str(), env.network_v6->str(), mtu);
  }
  std::string out = fmt::format("subnet      {} (network {}, {})\n", env.subnet->str(), env.network->str(), mtu);
  if (env.subnet_v6) {
    out += fmt::format("subnet v6   {} (network {})\n", env.subnet_v6->str(), env.network_v6->str());
  }
  return out;
}

std::string render(const NodeStatus& s) {
  std::string out;
  if (s.daemon) {
    out += render_lease(*s.daemon);
  } else if (s.env) {
    out += render_env(*s.env);
  } else {
    out += fmt::format("subnet      unknown: {}\n", s.env.error());
  }
  if (!s.readyz) {
    out += fmt::format("weftd       not reachable: {}\n", s.reach_error);
    out += "            is weftd running with --healthz-port? (give weftctl --endpoint IP:PORT)\n";
    return out;
  }
  std::string reason = s.readyz->body;
  while (!reason.empty() && reason.back() == '\n') reason.pop_back();
  out += s.readyz->status == 200 ? "ready       yes\n" : fmt::format("ready       no: {}\n", reason);
  const auto& m = s.metrics;
  out += fmt::format("peers       {} programmed, {} skipped (bad or conflicting data)\n",
                     metric(m, "weft_peers_programmed"), metric(m, "weft_peers_skipped"));
  out += fmt::format("kernel      {} reconciles, {} writes, {} errors, {} repairs, last reconcile {} s\n",
                     metric(m, "weft_reconciles_total"), metric(m, "weft_reconcile_writes_total"),
                     metric(m, "weft_reconcile_errors_total"), metric(m, "weft_repairs_total"),
                     metric(m, "weft_last_reconcile_seconds"));
  out += fmt::format("kubernetes  {} lists, {} relists, {} watches, {} API errors, {} nodes skipped\n",
                     metric(m, "weft_kube_lists_total"), metric(m, "weft_kube_relists_total"),
                     metric(m, "weft_kube_watches_total"), metric(m, "weft_kube_api_errors_total"),
                     metric(m, "weft_kube_nodes_skipped"));
  for (const auto& [node, why] : s.skipped) out += fmt::format("skipped     {}: {}\n", node, why);
  return out;
}

int exit_code(const NodeStatus& s) {
  if (!s.readyz) return 2;
  return s.readyz->status == 200 ? 0 : 1;
}

}  // namespace weft::ctl
