#pragma once
// Agent: weftd's control loop. It acquires the lease, ensures the VTEP, writes subnet.env and
// the nftables table, then keeps the kernel equal to the desired state as peers change.
//
// Threading: run() is the one thread that owns all state and calls the backend, the firewall
// and the subnet manager's blocking methods. Other threads (the watch, the netlink and nftables
// monitors, signals) only post to the Wakeup. health() may be called from any thread.

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <vector>

#include "backend/vxlan/vxlan_backend.hpp"
#include "core/net_config.hpp"
#include "core/subnet_env.hpp"
#include "overlay/external_iface.hpp"
#include "overlay/health_server.hpp"
#include "overlay/metrics.hpp"
#include "overlay/nftables/firewall.hpp"
#include "overlay/options.hpp"
#include "overlay/wakeup.hpp"
#include "subnet/subnet_manager.hpp"

namespace weft {

class ConditionReporter;

struct AgentSettings {
  DaemonOptions opts;
  NetConfig net;
  ExternalInterface ext;
  std::optional<Ipv6Underlay> underlay_v6;        // IPv6 VXLAN over IPv6 (dual stack: else over ext's IPv4;
                                                  // IPv6-only: always set, and ext has no IPv4 address)
  std::chrono::milliseconds repair_debounce{20};  // lets a burst of kernel events settle
};

class Agent {
 public:
  Agent(AgentSettings settings, SubnetManager& subnets, VxlanBackend& backend, Firewall& firewall);
  ~Agent();

  // Runs until kStop is posted; returns the process exit code.
  int run(Wakeup& wakeup);

  // /healthz, /readyz, /status (JSON: readiness, lease, subnet file) and /metrics (thread-safe).
  HttpReply health(const std::string& path) const;

 private:
  Status start(Wakeup& wakeup);
  VtepSpec vtep_spec(std::optional<Mac> preferred_mac) const;
  VtepSpec vtep_spec_v6(std::optional<Mac> preferred_mac) const;  // weft-v6.<VNI>, with IPv6 only
  bool has_v4() const { return s_.net.ipv4.has_value(); }         // false: an IPv6-only cluster
  bool has_v6() const { return s_.net.ipv6.has_value(); }         // dual stack or IPv6-only
  SubnetEnv subnet_env() const;
  Status ensure_vtep();
  Status follow_underlay();     // looks the underlay up again by name (see external_iface.hpp)
  Status follow_underlay_v6();  // the same in an IPv6-only cluster
  bool vtep_unusable() const;
  void sync_peers();
  void repair(const char* why);
  FirewallSpec firewall_spec(const PeerSet& peers) const;
  std::string running_message() const;
  bool allows_more(const FirewallSpec& spec) const;
  FirewallSpec widened(const FirewallSpec& spec) const;
  void reconcile_firewall(const FirewallSpec& spec);
  void publish_readiness();
  std::string metrics() const;
  HttpReply liveness() const;  // GET /healthz
  double stalled_seconds() const;
  std::string status_json() const;  // GET /status
  // /status's part for weftctl peers and doctor (VTEP, underlay, peers, skipped); without mu_.
  void add_datapath_status(nlohmann::json& j, const SubnetStats& k, const std::optional<Vtep>& vtep,
                           const std::vector<SkippedPeer>& refused_by_backend) const;
  bool ready_locked() const;  // caller holds mu_: the datapath is ready
  // Why /readyz fails ("" when ready): the datapath, then the lease's ownership. Holds mu_.
  std::string not_ready_locked(const SubnetStats& k) const;

  AgentSettings s_;
  SubnetManager& subnets_;
  VxlanBackend& backend_;
  Firewall& firewall_;
  std::unique_ptr<ConditionReporter> condition_;
  std::atomic<const Wakeup*> wakeup_{nullptr};  // run()'s, for /healthz to see the loop's progress

  // No peer entry or allow-list element is removed before the first consistent peer list:
  // a restarted weftd must not drop what the kernel already carries.
  bool have_snapshot_ = false;
  std::optional<FirewallSpec> firewall_applied_;  // what the kernel held at the last reconcile
  bool firewall_seen_ = false;                    // weft's nftables table is in the kernel (ours or an earlier run's)
  Lease lease_;
  Vtep vtep_;   // with IPv4 only
  Vtep vtep6_;  // with IPv6 only

  // Shared with health(): written by the agent thread only.
  mutable std::mutex mu_;
  bool subnet_env_written_ = false;
  bool peers_programmed_ = false;
  std::string vtep_problem_;  // non-empty while the VTEP is missing or wrong
  struct Published {
    Lease lease;
    SubnetEnv env;
  };
  std::optional<Published> published_;  // the lease and subnet.env, once written

  std::optional<Vtep> status_vtep_;           // the VTEP as of the last reconcile, for /status
  std::vector<SkippedPeer> backend_skipped_;  // peers the last reconcile refused, for /status
  std::uint64_t reconciles_ = 0;
  std::uint64_t reconcile_writes_ = 0;
  std::uint64_t reconcile_errors_ = 0;
  std::uint64_t repairs_ = 0;
  std::uint64_t firewall_writes_ = 0;
  std::uint64_t skipped_peers_ = 0;
  std::uint64_t programmed_peers_ = 0;
  std::uint64_t programmed_peers_v6_ = 0;
  std::uint64_t skipped_peers_v6_ = 0;  // by the backend's IPv6 check
  std::optional<Vtep> status_vtep6_;    // with IPv6: weft-v6.<VNI> as of the last reconcile
  double last_reconcile_seconds_ = 0;
  Histogram reconcile_seconds_{{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}};
};

}  // namespace weft
