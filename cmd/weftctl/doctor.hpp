#pragma once
// weftctl doctor: the checks that answer "why can't pod A reach pod B?", each PASS or FAIL
// with a one-line fix.

#include <string>
#include <vector>

#include "cmd/weftctl/daemon_status.hpp"
#include "cmd/weftctl/kernel_view.hpp"

namespace weft::ctl {

struct Check {
  std::string name;  // short and stable, e.g. "ip_forward" (scripts match on it)
  bool pass = false;
  std::string detail;  // what was found
  std::string fix;     // one line, for a FAIL
};

struct DoctorOptions {
  std::string cni_conf_dir = "/etc/cni/net.d";  // where the kubelet's runtime reads conflists
  std::string cni_bin_dir = "/opt/cni/bin";     // and finds plugins
  std::string subnet_file;                      // empty: the one weftd writes
  std::string proc_sys = "/proc/sys";
  std::string api_server;  // empty: weftd's --kube-api-url, its kubeconfig's server, or in-cluster
  int timeout_ms = 2000;
};

// Every check, in a fixed order. `kernel` is weftctl's own reading (an error fails the kernel checks).
std::vector<Check> run_doctor(const DaemonStatus& d, const Result<KernelView>& kernel, const DoctorOptions& o);

// The checks on the kernel alone (VTEP, entries, foreign routes) for each family weftd has, the
// IPv6 ones named "vtep6 ...", "... v6"; none IPv4 when IPv6-only. Pure, for unit tests.
std::vector<Check> kernel_checks(const DaemonStatus& d, const KernelView& k);

// The sysctl checks, read under proc_sys (a fake root in tests): ip_forward with an IPv4 half,
// "ipv6 forwarding" with an IPv6 half, rp_filter when VXLAN rides IPv4.
std::vector<Check> sysctl_checks(const DaemonStatus& d, const std::string& proc_sys);

}  // namespace weft::ctl
