#include "cmd/weftctl/doctor.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cmd/weftctl/probes.hpp"
#include "core/subnet_env.hpp"

namespace weft::ctl {
namespace {

Check pass(std::string name, std::string detail) { return {std::move(name), true, std::move(detail), ""}; }
Check failed(std::string name, std::string detail, std::string fix) {
  return {std::move(name), false, std::move(detail), std::move(fix)};
}

std::string entry_problems(const PeerKernelState& s) {
  std::string out;
  auto add = [&out](const char* what, const EntryState& e) {
    if (e.kind == EntryState::Kind::ok || e.kind == EntryState::Kind::none) return;
    if (!out.empty()) out += ", ";
    out += fmt::format("{} {}", what, to_string(e.kind));
    if (!e.detail.empty()) out += " (kernel: " + e.detail + ")";
  };
  add("route", s.route);
  add("neighbour", s.neighbor);
  add("FDB", s.fdb);
  return out;
}

Check subnet_env_check(const DaemonStatus& d, const std::string& path) {
  const std::string name = "subnet.env";
  if (!d.lease) return failed(name, "weftd has no lease yet", "see `weftctl status` for why weftd waits");
  auto env = SubnetEnv::load(path);
  if (!env) return failed(name, env.error(), "weftd writes it at start: restart weftd, or check --subnet-file");
  std::vector<std::string> diffs;
  if (env->subnet != d.lease->subnet)
    diffs.push_back("subnet " + env->subnet.str() + ", lease " + d.lease->subnet.str());
  if (env->network != d.network) diffs.push_back("network " + env->network.str() + ", weftd " + d.network.str());
  if (d.env_mtu != 0 && env->mtu != d.env_mtu) diffs.push_back(fmt::format("MTU {}, weftd {}", env->mtu, d.env_mtu));
  if (env->ipmasq != d.ipmasq) diffs.push_back(fmt::format("ipmasq {}, weftd {}", env->ipmasq, d.ipmasq));
  if (!diffs.empty()) {
    std::string detail = path + ": ";
    for (std::size_t i = 0; i < diffs.size(); ++i) detail += (i ? "; " : "") + diffs[i];
    return failed(name, detail, "restart weftd so it rewrites " + path + " (another writer or an old file?)");
  }
  return pass(name, path + " matches the lease " + d.lease->subnet.str());
}

bool has_weft_plugin(const std::filesystem::path& file) {
  std::ifstream in(file);
  auto j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return false;
  if (j.value("type", "") == "weft") return true;
  auto plugins = j.find("plugins");
  if (plugins == j.end() || !plugins->is_array()) return false;
  return std::any_of(plugins->begin(), plugins->end(),
                     [](const nlohmann::json& p) { return p.is_object() && p.value("type", "") == "weft"; });
}

Check conflist_check(const std::string& dir) {
  const std::string name = "cni conflist";
  const std::string fix = "install manifests/02-configmap.yaml's cni-conf.json as " + dir +
                          "/10-weft.conflist (the DaemonSet's install-cni-conf init container does)";
  std::error_code ec;
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    auto ext = e.path().extension();
    if (e.is_regular_file() && (ext == ".conflist" || ext == ".conf" || ext == ".json")) files.push_back(e.path());
  }
  if (ec) return failed(name, "cannot read " + dir + ": " + ec.message(), fix);
  std::sort(files.begin(), files.end());  // the runtime (libcni) takes the first by name
  if (files.empty()) return failed(name, "no CNI config in " + dir, fix);
  if (!has_weft_plugin(files.front())) {
    auto ours = std::find_if(files.begin(), files.end(), has_weft_plugin);
    return failed(name,
                  files.front().string() + " sorts first and is not weft's" +
                      (ours == files.end() ? " (no weft conflist at all)" : "; the runtime ignores " + ours->string()),
                  ours == files.end() ? fix : "remove " + files.front().string() + " or rename weft's to sort first");
  }
  return pass(name, files.front().string() + " (the first in " + dir + ")");
}

Check cni_binary_check(const std::string& dir) {
  const std::string path = dir + "/weft";
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return failed("cni binary", path + " is missing",
                  "copy the weft plugin to " + path + " (the DaemonSet's install-cni-plugin init container does)");
  }
  if (::access(path.c_str(), X_OK) != 0) return failed("cni binary", path + " is not executable", "chmod 755 " + path);
  return pass("cni binary", path);
}

Check ip_forward_check(const std::string& root) {
  auto v = read_sysctl(root, "net.ipv4.ip_forward");
  if (!v) return failed("ip_forward", v.error(), "check that /proc/sys is mounted");
  if (*v != "1") {
    return failed("ip_forward", "net.ipv4.ip_forward = " + *v + ": pod traffic is not forwarded",
                  "sysctl -w net.ipv4.ip_forward=1 (and set it in /etc/sysctl.d to keep it)");
  }
  return pass("ip_forward", "net.ipv4.ip_forward = 1");
}

Check rp_filter_check(const std::string& root, const std::string& iface) {
  const std::string name = "rp_filter";
  auto all = read_sysctl(root, "net.ipv4.conf.all.rp_filter");
  auto dev = read_sysctl(root, "net.ipv4.conf." + iface + ".rp_filter");
  if (!all || !dev) return failed(name, !all ? all.error() : dev.error(), "check the underlay interface name");
  // The kernel applies the larger of conf.all and conf.<iface>.
  const std::string effective = std::max(*all, *dev);
  const std::string detail = fmt::format("rp_filter all = {}, {} = {}", *all, iface, *dev);
  if (effective == "1") {
    return failed(name, detail + ": strict, drops VXLAN from a peer whose route back leaves by another interface",
                  fmt::format("sysctl -w net.ipv4.conf.all.rp_filter=2 net.ipv4.conf.{}.rp_filter=2 (loose)", iface));
  }
  return pass(name, detail + (effective == "2" ? " (loose)" : " (off)"));
}

Check nat_check(const DaemonStatus& d) {
  const std::string name = "underlay not NAT";
  const Ipv4Addr ip = d.underlay.public_ip;
  // VirtualBox NAT and QEMU user networking give every VM 10.0.2.15 behind 10.0.2.2.
  static const Ipv4Prefix kUserNat = *Ipv4Prefix::parse("10.0.2.0/24");
  if (kUserNat.contains(ip)) {
    return failed(name,
                  fmt::format("public IP {} on {} is a VirtualBox/QEMU NAT address: every VM has it, peers cannot "
                              "reach it",
                              ip.str(), d.underlay.name),
                  "run weftd with --iface set to the host-only/private interface (or --public-ip)");
  }
  for (const auto& s : d.skipped) {
    if (s.reason.find(ip.str()) != std::string::npos && s.reason.find("this node") != std::string::npos) {
      return failed(name, "peer " + s.node + " has this node's public IP " + ip.str() + ": " + s.reason,
                    "nodes share a NAT address: run weftd with --iface set to the interface peers can reach");
    }
  }
  return pass(name, fmt::format("public IP {} on {}", ip.str(), d.underlay.name));
}

Check nftables_check() {
  auto present = nft_table_present("ip", "weft");
  if (!present) return failed("nftables table", present.error(), "run weftctl as root in the node's network namespace");
  if (!*present) {
    return failed("nftables table", "table ip weft is missing: no masquerade, no VXLAN allow-list",
                  "weftd rewrites it within seconds: if it stays missing, check weftd's log for nftables errors");
  }
  return pass("nftables table", "table ip weft is present");
}

Check api_check(const DaemonStatus& d, const DoctorOptions& o) {
  const std::string name = "api server";
  std::string url = o.api_server.empty() ? d.api_url : o.api_server;
  std::string from = o.api_server.empty() ? "weftd's --kube-api-url" : "--api-server";
  if (url.empty() && !d.kubeconfig_file.empty()) {
    auto s = kubeconfig_server(d.kubeconfig_file);
    if (!s) return failed(name, s.error(), "give weftctl --api-server https://HOST:PORT");
    url = *s;
    from = d.kubeconfig_file;
  }
  if (url.empty()) {
    const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
    const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
    if (host && port) {
      url = fmt::format("https://{}:{}", host, port);
      from = "KUBERNETES_SERVICE_HOST";
    }
  }
  if (url.empty()) return failed(name, "no API server known", "give weftctl --api-server https://HOST:PORT");
  auto code = probe_api_server(url, o.timeout_ms);
  if (!code) return failed(name, code.error() + " (from " + from + ")", "check the API server and the path to it");
  if (*code != 200 && *code != 401 && *code != 403) {
    return failed(name, fmt::format("{} answers GET /readyz with HTTP {}", url, *code),
                  "the API server is up but not ready: check its log");
  }
  return pass(name, fmt::format("{} answers (HTTP {} to GET /readyz)", url, *code));
}

}  // namespace

std::vector<Check> kernel_checks(const DaemonStatus& d, const KernelView& k) {
  std::vector<Check> out;
  const std::string& name = d.vtep.name;
  if (!k.vtep) {
    out.push_back(failed("vtep exists", "no device " + name,
                         "restart weftd: it creates " + name + " (its log says why it could not)"));
  } else {
    const Link& l = *k.vtep;
    out.push_back(pass("vtep exists", fmt::format("{} (ifindex {}, MAC {})", name, l.ifindex, l.mac.str())));
    out.push_back(l.up ? pass("vtep up", name + " is up")
                       : failed("vtep up", name + " is down", "ip link set " + name + " up (weftd does it on repair)"));
    if (!l.vxlan) {
      out.push_back(failed("vtep vxlan", name + " is a " + (l.kind.empty() ? "plain" : l.kind) + " device, not vxlan",
                           "ip link del " + name + ", then weftd recreates it"));
    } else {
      const VxlanAttrs& v = *l.vxlan;
      std::vector<std::string> diffs;
      if (v.vni != d.vtep.vni) diffs.push_back(fmt::format("VNI {}, want {}", v.vni, d.vtep.vni));
      if (v.port != d.vtep.port) diffs.push_back(fmt::format("port {}, want {}", v.port, d.vtep.port));
      if (v.local != d.vtep.local_ip)
        diffs.push_back(fmt::format("local {}, want {}", v.local.str(), d.vtep.local_ip.str()));
      if (d.underlay.ifindex != 0 && v.underlay_ifindex != d.underlay.ifindex) {
        diffs.push_back(
            fmt::format("underlay ifindex {}, want {} ({})", v.underlay_ifindex, d.underlay.ifindex, d.underlay.name));
      }
      if (diffs.empty()) {
        out.push_back(pass("vtep vxlan", fmt::format("VNI {}, port {}, local {}", v.vni, v.port, v.local.str())));
      } else {
        std::string detail;
        for (const auto& s : diffs) detail += (detail.empty() ? "" : "; ") + s;
        out.push_back(failed("vtep vxlan", detail, "ip link del " + name + ", then weftd recreates it"));
      }
      out.push_back(v.learning
                        ? failed("vtep learning", "learning is on: the kernel learns FDB entries from traffic",
                                 "ip link set " + name + " type vxlan nolearning (or delete it for weftd to recreate)")
                        : pass("vtep learning", "learning is off"));
    }
    // Backend.MTU if set, else the underlay's MTU now - 50 (VXLAN over IPv4).
    int want = d.vtep.backend_mtu ? *d.vtep.backend_mtu : (k.underlay ? k.underlay->mtu - 50 : d.vtep.mtu_wanted);
    std::string why = d.vtep.backend_mtu ? "Backend.MTU"
                      : k.underlay       ? fmt::format("{} MTU {} - 50", k.underlay->name, k.underlay->mtu)
                                         : "weftd";
    out.push_back(l.mtu == want ? pass("vtep mtu", fmt::format("{} ({})", l.mtu, why))
                                : failed("vtep mtu", fmt::format("{} has MTU {}, want {} ({})", name, l.mtu, want, why),
                                         fmt::format("ip link set {} mtu {} (weftd does it on repair)", name, want)));
  }
  std::vector<std::string> bad;
  for (const auto& p : k.peers) {
    if (!p.ok()) bad.push_back(p.peer.name + ": " + entry_problems(p));
  }
  if (bad.empty()) {
    out.push_back(pass("peer entries", fmt::format("{} peer{}: every route, neighbour and FDB entry as desired",
                                                   k.peers.size(), k.peers.size() == 1 ? "" : "s")));
  } else {
    std::string detail = fmt::format("{} of {} peer{}: ", bad.size(), k.peers.size(), k.peers.size() == 1 ? "" : "s");
    for (std::size_t i = 0; i < bad.size() && i < 5; ++i) detail += (i ? "; " : "") + bad[i];
    if (bad.size() > 5) detail += "; ...";
    out.push_back(failed("peer entries", detail,
                         "weftd repairs them on the next kernel event or resync: if they stay, see `weftctl peers` "
                         "and weftd's log"));
  }
  if (k.foreign_routes.empty()) {
    out.push_back(pass("foreign routes", "no route in weft's space that no peer wants"));
  } else {
    std::string detail;
    for (std::size_t i = 0; i < k.foreign_routes.size() && i < 5; ++i) {
      detail += (i ? "; " : "") + to_string(k.foreign_routes[i]);
    }
    out.push_back(failed("foreign routes", detail,
                         fmt::format("ip route del {} (weftd removes them on repair; who added it?)",
                                     k.foreign_routes.front().dst.str())));
  }
  return out;
}

std::vector<Check> run_doctor(const DaemonStatus& d, const Result<KernelView>& kernel, const DoctorOptions& o) {
  std::vector<Check> out;
  if (kernel) {
    out = kernel_checks(d, *kernel);
  } else {
    out.push_back(failed("kernel", "cannot read the kernel: " + kernel.error(),
                         "run weftctl as root in the node's network namespace"));
  }
  out.push_back(subnet_env_check(d, o.subnet_file.empty() ? d.subnet_file : o.subnet_file));
  out.push_back(conflist_check(o.cni_conf_dir));
  out.push_back(cni_binary_check(o.cni_bin_dir));
  out.push_back(ip_forward_check(o.proc_sys));
  out.push_back(rp_filter_check(o.proc_sys, d.underlay.name));
  out.push_back(nat_check(d));
  out.push_back(nftables_check());
  out.push_back(api_check(d, o));
  return out;
}

}  // namespace weft::ctl
