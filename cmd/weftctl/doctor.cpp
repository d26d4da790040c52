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
#include <type_traits>

#include "backend/vxlan/vtep.hpp"
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

template <class P>
std::string or_none(const std::optional<P>& p) {
  return p ? p->str() : "none";
}

// The lease's IPv4 subnet; none when weftd has no IPv4 half (IPv6-only).
std::optional<Ipv4Prefix> lease_subnet_v4(const DaemonStatus& d) {
  return d.has_ipv4() ? d.lease->subnet : std::nullopt;
}

// What subnet.env says that weftd does not (each family: absent on both sides is equal).
std::vector<std::string> subnet_env_diffs(const SubnetEnv& env, const DaemonStatus& d) {
  std::vector<std::string> diffs;
  if (env.subnet != lease_subnet_v4(d)) {
    diffs.push_back("subnet " + or_none(env.subnet) + ", lease " + or_none(lease_subnet_v4(d)));
  }
  if (env.network != d.network) diffs.push_back("network " + or_none(env.network) + ", weftd " + or_none(d.network));
  if (env.subnet_v6 != d.lease->subnet_v6) {
    diffs.push_back("IPv6 subnet " + or_none(env.subnet_v6) + ", lease " + or_none(d.lease->subnet_v6));
  }
  if (env.network_v6 != d.network_v6) {
    diffs.push_back("IPv6 network " + or_none(env.network_v6) + ", weftd " + or_none(d.network_v6));
  }
  if (d.env_mtu != 0 && env.mtu != d.env_mtu) diffs.push_back(fmt::format("MTU {}, weftd {}", env.mtu, d.env_mtu));
  if (env.ipmasq != d.ipmasq) diffs.push_back(fmt::format("ipmasq {}, weftd {}", env.ipmasq, d.ipmasq));
  return diffs;
}

Check subnet_env_check(const DaemonStatus& d, const std::string& path) {
  const std::string name = "subnet.env";
  if (!d.lease) return failed(name, "weftd has no lease yet", "see `weftctl status` for why weftd waits");
  auto env = SubnetEnv::load(path);
  if (!env) return failed(name, env.error(), "weftd writes it at start: restart weftd, or check --subnet-file");
  if (auto diffs = subnet_env_diffs(*env, d); !diffs.empty()) {
    std::string detail = path + ": ";
    for (std::size_t i = 0; i < diffs.size(); ++i) detail += (i ? "; " : "") + diffs[i];
    return failed(name, detail, "restart weftd so it rewrites " + path + " (another writer or an old file?)");
  }
  std::string subnets = lease_subnet_v4(d) ? lease_subnet_v4(d)->str() : "";
  if (d.lease->subnet_v6) subnets += (subnets.empty() ? "" : " and ") + d.lease->subnet_v6->str();
  return pass(name, path + " matches the lease " + subnets);
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

// A forwarding sysctl (net.ipv4.ip_forward, net.ipv6.conf.all.forwarding) must be 1.
Check forwarding_check(const std::string& root, const std::string& name, const std::string& key) {
  auto v = read_sysctl(root, key);
  if (!v) return failed(name, v.error(), "check that /proc/sys is mounted");
  if (*v != "1") {
    return failed(name, key + " = " + *v + ": pod traffic is not forwarded",
                  "sysctl -w " + key + "=1 (and set it in /etc/sysctl.d to keep it)");
  }
  return pass(name, key + " = 1");
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

// The address peers send VXLAN to: the IPv4 one, else (IPv6-only over IPv6) the IPv6 one.
std::string public_ip(const UnderlayStatus& u) {
  if (u.public_ip) return u.public_ip->str();
  return u.public_ip_v6 ? u.public_ip_v6->str() : "";
}

Check nat_check(const DaemonStatus& d) {
  const std::string name = "underlay not NAT";
  // VirtualBox NAT and QEMU user networking give every VM 10.0.2.15 behind 10.0.2.2.
  static const Ipv4Prefix kUserNat = *Ipv4Prefix::parse("10.0.2.0/24");
  if (d.underlay.public_ip && kUserNat.contains(*d.underlay.public_ip)) {
    return failed(name,
                  fmt::format("public IP {} on {} is a VirtualBox/QEMU NAT address: every VM has it, peers cannot "
                              "reach it",
                              d.underlay.public_ip->str(), d.underlay.name),
                  "run weftd with --iface set to the host-only/private interface (or --public-ip)");
  }
  const std::string ip = public_ip(d.underlay);
  if (ip.empty()) return pass(name, "weftd reports no public IP for " + d.underlay.name);
  for (const auto& s : d.skipped) {
    if (s.reason.find(ip) != std::string::npos && s.reason.find("this node") != std::string::npos) {
      return failed(name, "peer " + s.node + " has this node's public IP " + ip + ": " + s.reason,
                    "nodes share a NAT address: run weftd with --iface set to the interface peers can reach");
    }
  }
  return pass(name, fmt::format("public IP {} on {}", ip, d.underlay.name));
}

// Which families weftd has, so a reader knows why some checks are absent.
Check families_check(const DaemonStatus& d) {
  if (d.ipv6_only()) return pass("families", "IPv6-only cluster: weftd has no IPv4 half, nothing IPv4 is checked");
  return pass("families", d.dual_stack() ? "dual stack: IPv4 and IPv6" : "IPv4 only");
}

// VXLAN rides IPv4 (so IPv4's rp_filter applies) unless weftd's only VTEP is over IPv6.
bool ipv4_underlay(const DaemonStatus& d) { return d.has_ipv4() || (d.vtep6 && d.vtep6->local_ip.v4()); }

// weft's table of one family: "ip", or "ip6" when dual stack.
Check nftables_check(const std::string& family, const std::string& name) {
  const std::string table = "table " + family + " weft";
  auto present = nft_table_present(family, "weft");
  if (!present) return failed(name, present.error(), "run weftctl as root in the node's network namespace");
  if (!*present) {
    return failed(name, table + " is missing: no masquerade, no VXLAN allow-list",
                  "weftd rewrites it within seconds: if it stays missing, check weftd's log for nftables errors");
  }
  return pass(name, table + " is present");
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

// How one overlay family's kernel checks are named: "vtep exists", "peer entries" for IPv4;
// "vtep6 exists", "peer entries v6" for IPv6.
struct Family {
  std::string vtep;    // the VTEP checks' first word
  std::string suffix;  // after the others' names
  std::string check(const std::string& what) const { return what + suffix; }
};
const Family kIpv4{"vtep", ""};
const Family kIpv6{"vtep6", " v6"};

Check vxlan_attrs_check(const VtepStatus& want, const VxlanAttrs& v, const UnderlayStatus& underlay,
                        const std::string& check) {
  std::vector<std::string> diffs;
  if (v.vni != want.vni) diffs.push_back(fmt::format("VNI {}, want {}", v.vni, want.vni));
  if (v.port != want.port) diffs.push_back(fmt::format("port {}, want {}", v.port, want.port));
  if (v.local != want.local_ip) diffs.push_back(fmt::format("local {}, want {}", v.local.str(), want.local_ip.str()));
  if (underlay.ifindex != 0 && v.underlay_ifindex != underlay.ifindex) {
    diffs.push_back(
        fmt::format("underlay ifindex {}, want {} ({})", v.underlay_ifindex, underlay.ifindex, underlay.name));
  }
  if (diffs.empty()) return pass(check, fmt::format("VNI {}, port {}, local {}", v.vni, v.port, v.local.str()));
  std::string detail;
  for (const auto& s : diffs) detail += (detail.empty() ? "" : "; ") + s;
  return failed(check, detail, "ip link del " + want.name + ", then weftd recreates it");
}

// Backend.MTU (the outer packets' MTU, as flannel) if set, else the underlay's MTU now, less VXLAN's overhead (50 bytes
// over an IPv4 underlay, 70 over an IPv6 one), as the backend computes it.
Check vtep_mtu_check(const VtepStatus& want, const Link& l, const std::optional<Link>& underlay,
                     const std::string& check) {
  VtepSpec spec;
  spec.mtu = want.backend_mtu;
  if (const Ipv6Addr* local6 = want.local_ip.v6()) spec.local_ip6 = *local6;
  spec.underlay_mtu = underlay ? underlay->mtu : 0;
  const int mtu = want.backend_mtu || underlay ? vtep_mtu(spec) : want.mtu_wanted;
  const std::string why = want.backend_mtu
                              ? fmt::format("Backend.MTU {} - {}", *want.backend_mtu, *want.backend_mtu - mtu)
                          : underlay ? fmt::format("{} MTU {} - {}", underlay->name, underlay->mtu, underlay->mtu - mtu)
                                     : "weftd";
  if (l.mtu == mtu) return pass(check, fmt::format("{} ({})", l.mtu, why));
  return failed(check, fmt::format("{} has MTU {}, want {} ({})", want.name, l.mtu, mtu, why),
                fmt::format("ip link set {} mtu {} (weftd does it on repair)", want.name, mtu));
}

std::vector<Check> vtep_checks(const VtepStatus& want, const std::optional<Link>& vtep,
                               const std::optional<Link>& underlay_link, const UnderlayStatus& underlay,
                               const std::string& prefix) {
  const std::string& name = want.name;
  if (!vtep) {
    return {failed(prefix + " exists", "no device " + name,
                   "restart weftd: it creates " + name + " (its log says why it could not)")};
  }
  const Link& l = *vtep;
  std::vector<Check> out;
  out.push_back(pass(prefix + " exists", fmt::format("{} (ifindex {}, MAC {})", name, l.ifindex, l.mac.str())));
  out.push_back(
      l.up ? pass(prefix + " up", name + " is up")
           : failed(prefix + " up", name + " is down", "ip link set " + name + " up (weftd does it on repair)"));
  if (!l.vxlan) {
    out.push_back(failed(prefix + " vxlan",
                         name + " is a " + (l.kind.empty() ? "plain" : l.kind) + " device, not vxlan",
                         "ip link del " + name + ", then weftd recreates it"));
  } else {
    out.push_back(vxlan_attrs_check(want, *l.vxlan, underlay, prefix + " vxlan"));
    out.push_back(l.vxlan->learning
                      ? failed(prefix + " learning", "learning is on: the kernel learns FDB entries from traffic",
                               "ip link set " + name + " type vxlan nolearning (or delete it for weftd to recreate)")
                      : pass(prefix + " learning", "learning is off"));
  }
  out.push_back(vtep_mtu_check(want, l, underlay_link, prefix + " mtu"));
  return out;
}

Check peer_entries_check(const std::vector<PeerKernelState>& peers, const std::string& check) {
  std::vector<std::string> bad;
  for (const auto& p : peers) {
    if (!p.ok()) bad.push_back(p.peer.name + ": " + entry_problems(p));
  }
  const char* plural = peers.size() == 1 ? "" : "s";
  if (bad.empty()) {
    return pass(check, fmt::format("{} peer{}: every route, neighbour and FDB entry as desired", peers.size(), plural));
  }
  std::string detail = fmt::format("{} of {} peer{}: ", bad.size(), peers.size(), plural);
  for (std::size_t i = 0; i < bad.size() && i < 5; ++i) detail += (i ? "; " : "") + bad[i];
  if (bad.size() > 5) detail += "; ...";
  return failed(check, detail,
                "weftd repairs them on the next kernel event or resync: if they stay, see `weftctl peers` and weftd's "
                "log");
}

template <class Ip>
Check foreign_routes_check(const std::vector<BasicRoute<Ip>>& routes, const std::string& check) {
  if (routes.empty()) return pass(check, "no route in weft's space that no peer wants");
  std::string detail;
  for (std::size_t i = 0; i < routes.size() && i < 5; ++i) detail += (i ? "; " : "") + to_string(routes[i]);
  const std::string ip = std::is_same_v<Ip, Ipv6Addr> ? "ip -6" : "ip";
  return failed(
      check, detail,
      fmt::format("{} route del {} (weftd removes them on repair; who added it?)", ip, routes.front().dst.str()));
}

template <class Ip>
std::vector<Check> family_checks(const VtepStatus& want, const FamilyView<Ip>& k,
                                 const std::optional<Link>& underlay_link, const UnderlayStatus& underlay,
                                 const Family& f) {
  std::vector<Check> out = vtep_checks(want, k.vtep, underlay_link, underlay, f.vtep);
  out.push_back(peer_entries_check(k.peers, f.check("peer entries")));
  out.push_back(foreign_routes_check(k.foreign_routes, f.check("foreign routes")));
  return out;
}

}  // namespace

std::vector<Check> kernel_checks(const DaemonStatus& d, const KernelView& k) {
  std::vector<Check> out;
  if (d.vtep) out = family_checks(*d.vtep, k, k.underlay, d.underlay, kIpv4);
  if (d.vtep6) {  // a view without the IPv6 family: its VTEP and entries are all missing
    auto v6 = family_checks(*d.vtep6, k.v6.value_or(FamilyView<Ipv6Addr>{}), k.underlay, d.underlay, kIpv6);
    out.insert(out.end(), v6.begin(), v6.end());
  }
  return out;
}

std::vector<Check> sysctl_checks(const DaemonStatus& d, const std::string& proc_sys) {
  std::vector<Check> out;
  if (d.has_ipv4()) out.push_back(forwarding_check(proc_sys, "ip_forward", "net.ipv4.ip_forward"));
  if (d.has_ipv6()) out.push_back(forwarding_check(proc_sys, "ipv6 forwarding", "net.ipv6.conf.all.forwarding"));
  if (ipv4_underlay(d)) out.push_back(rp_filter_check(proc_sys, d.underlay.name));
  return out;
}

std::vector<Check> run_doctor(const DaemonStatus& d, const Result<KernelView>& kernel, const DoctorOptions& o) {
  std::vector<Check> out{families_check(d)};
  if (kernel) {
    for (auto& c : kernel_checks(d, *kernel)) out.push_back(std::move(c));
  } else {
    out.push_back(failed("kernel", "cannot read the kernel: " + kernel.error(),
                         "run weftctl as root in the node's network namespace"));
  }
  out.push_back(subnet_env_check(d, o.subnet_file.empty() ? d.subnet_file : o.subnet_file));
  out.push_back(conflist_check(o.cni_conf_dir));
  out.push_back(cni_binary_check(o.cni_bin_dir));
  for (auto& c : sysctl_checks(d, o.proc_sys)) out.push_back(std::move(c));
  out.push_back(nat_check(d));
  if (d.has_ipv4()) out.push_back(nftables_check("ip", "nftables table"));
  if (d.has_ipv6()) out.push_back(nftables_check("ip6", "nftables table v6"));
  out.push_back(api_check(d, o));
  return out;
}

}  // namespace weft::ctl
