#include "overlay/agent.hpp"

#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <thread>

#include "core/subnet_env.hpp"

namespace weft {

using Clock = std::chrono::steady_clock;
constexpr auto kTrimDelay = std::chrono::seconds(1);
// While the VTEP cannot be set up (say another device holds its VNI and port), no kernel event
// about our device will come to say the obstacle is gone: retry on this cadence.
constexpr auto kVtepRetry = std::chrono::milliseconds(500);

// Publishes the NetworkUnavailable condition on its own thread: the API may be down for
// minutes, and the agent's thread must keep the kernel right meanwhile. Only the latest
// wanted state is kept; it is retried until it lands.
class ConditionReporter {
 public:
  explicit ConditionReporter(SubnetManager& subnets)
      : subnets_(subnets), thread_([this] {
          pthread_setname_np(pthread_self(), "weft-condition");
          loop();
        }) {}
  ~ConditionReporter() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  ConditionReporter(const ConditionReporter&) = delete;
  ConditionReporter& operator=(const ConditionReporter&) = delete;

  void want(bool unavailable, std::string message) {
    {
      std::lock_guard lock(mu_);
      wanted_ = Wanted{unavailable, std::move(message)};
    }
    cv_.notify_all();
  }

 private:
  struct Wanted {
    bool unavailable;
    std::string message;
    bool operator==(const Wanted&) const = default;
  };

  void loop() {
    std::unique_lock lock(mu_);
    auto delay = std::chrono::milliseconds(100);
    for (;;) {
      cv_.wait(lock, [this] { return stop_ || (wanted_ && wanted_ != applied_); });
      if (stop_) return;
      Wanted w = *wanted_;
      lock.unlock();
      auto st = subnets_.set_network_unavailable(w.unavailable, w.message);
      lock.lock();
      if (st) {
        applied_ = w;
        delay = std::chrono::milliseconds(100);
        continue;
      }
      spdlog::warn("cannot set NetworkUnavailable={} on the node: {} (retrying)", w.unavailable, st.error());
      cv_.wait_for(lock, delay, [this] { return stop_; });
      delay = std::min(delay * 2, std::chrono::milliseconds(5000));
    }
  }

  SubnetManager& subnets_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<Wanted> wanted_, applied_;
  bool stop_ = false;
  std::thread thread_;
};

// A Prometheus label value: quotes and backslashes escaped; control and non-ASCII bytes (from
// untrusted annotations) replaced, so the exposition stays valid UTF-8 on one line.
static std::string label_value(const std::string& v) {
  std::string out;
  for (char c : v.substr(0, 300)) {
    auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') out += '\\';
    out += (u < 0x20 || u >= 0x7f) ? '?' : c;
  }
  return out;
}

Agent::Agent(AgentSettings settings, SubnetManager& subnets, VxlanBackend& backend, Firewall& firewall)
    : s_(std::move(settings)), subnets_(subnets), backend_(backend), firewall_(firewall) {}

Agent::~Agent() = default;

int Agent::run(Wakeup& wakeup) {
  if (auto st = start(wakeup); !st) {
    spdlog::error("{}", st.error());
    return 1;
  }
  auto resync = std::chrono::seconds(s_.opts.resync_seconds);
  auto next_resync = Clock::now() + resync;
  constexpr auto kNever = Clock::time_point::max();
  auto repair_at = kNever;  // set while a repair is debounced
  const char* repair_reason = "";
  // A list and a full reconcile leave megabytes of freed JSON and netlink buffers in glibc's
  // arenas (most of the RSS at 5,000 peers); they are handed back once a burst has settled,
  // when the watch thread has dropped its list too.
  auto trim_at = kNever;
  auto settle = [&trim_at] { trim_at = Clock::now() + kTrimDelay; };
  for (;;) {
    auto deadline = std::min({repair_at, next_resync, trim_at});
    unsigned ev = wakeup.wait_until(deadline);
    if (ev & Wakeup::kStop) break;
    if (ev & Wakeup::kPeers) {
      have_snapshot_ = true;
      sync_peers();
      settle();
    }
    if (ev & Wakeup::kFirewall) firewall_applied_.reset();  // read the table again before trusting it
    if (ev & (Wakeup::kKernel | Wakeup::kFirewall)) {
      if (repair_at == kNever) repair_at = Clock::now() + s_.repair_debounce;
      repair_reason = (ev & Wakeup::kKernel) ? "kernel state changed" : "nftables changed";
    }
    auto now = Clock::now();
    if (now >= repair_at) {
      repair_at = kNever;
      repair(repair_reason);
      settle();
    }
    if (now >= next_resync) {
      firewall_applied_.reset();
      repair("periodic resync");
      next_resync = now + resync;
      settle();
    }
    if (now >= trim_at) {
      trim_at = kNever;
      ::malloc_trim(0);
    }
    if (repair_at == kNever && vtep_unusable()) {
      repair_at = now + kVtepRetry;
      repair_reason = "VXLAN device unusable: retrying";
    }
  }
  spdlog::info("stopping: the datapath stays in place");
  backend_.unwatch();
  subnets_.stop();
  condition_.reset();
  return 0;
}

Status Agent::start(Wakeup& wakeup) {
  for (const auto& w : s_.ext.warnings) spdlog::warn("{}", w);
  spdlog::info("using interface {} (index {}, {}), public IP {}, MTU {}", s_.ext.name, s_.ext.index,
               s_.ext.iface_addr.str(), s_.ext.public_ip.str(), s_.ext.mtu);
  auto own = subnets_.read_own_node();
  if (!own) return fail("cannot read this node from the API: " + own.error());

  auto vtep = backend_.ensure_device(vtep_spec(own->vtep_mac));
  if (!vtep) return fail("cannot set up the VXLAN device: " + vtep.error());
  vtep_ = *vtep;

  auto lease = subnets_.acquire(s_.ext.public_ip, vtep_.mac);
  if (!lease) return fail("cannot lease a subnet: " + lease.error());
  lease_ = *lease;
  spdlog::info("lease {} on {} (VTEP {} {})", lease_.subnet.str(), lease_.public_ip.str(), vtep_.name, vtep_.mac.str());
  if (auto st = backend_.set_lease(lease_); !st) return fail("cannot address the VTEP: " + st.error());

  SubnetEnv env;
  env.network = s_.net.ipv4->network;
  env.subnet = lease_.subnet;
  env.mtu = vtep_.mtu;
  env.ipmasq = s_.opts.ip_masq;
  if (auto st = env.write_atomically(s_.opts.subnet_file); !st) return st;
  {
    std::lock_guard lock(mu_);
    subnet_env_written_ = true;
    published_ = Published{lease_, env};
  }

  condition_ = std::make_unique<ConditionReporter>(subnets_);
  auto watching = backend_.watch([&wakeup](const KernelChange& change) {
    spdlog::debug("kernel: {}", change.what);
    wakeup.post(Wakeup::kKernel);
  });
  if (!watching) return fail("cannot watch kernel changes: " + watching.error());
  subnets_.start_watch([&wakeup] { wakeup.post(Wakeup::kPeers); });
  return ok_status();
}

void Agent::sync_peers() {
  // A local copy, not a member: between reconciles the subnet manager's cache is the only one.
  const PeerSet peers = subnets_.peers();
  const FirewallSpec spec = firewall_spec(peers);
  const bool firewall_changes = !firewall_applied_ || *firewall_applied_ != spec;
  // Allow a new node's VXLAN before its route is used. What only narrows the allow-list (a
  // node left or moved) goes after the routes: deleting set elements waits for an RCU grace
  // period (~15 ms), which a delete or change must not wait for. While weft's table is absent
  // (a first start on this node) nothing is dropped yet, so the routes go first: the table
  // with every peer's address costs tens of milliseconds at 5,000 peers.
  if (!firewall_seen_) firewall_seen_ = firewall_.present();
  const bool firewall_first = firewall_seen_ && firewall_changes && allows_more(spec);
  const auto firewall_started = Clock::now();
  if (firewall_first) reconcile_firewall(widened(spec));
  const auto firewall_took = Clock::now() - firewall_started;
  auto started = Clock::now();
  auto report = backend_.reconcile(peers);
  auto seconds = std::chrono::duration<double>(Clock::now() - started).count();
  reconcile_firewall(spec);  // nothing to do when the first step already made it so
  if (report.writes || !report.errors.empty()) {
    spdlog::info("reconciled {} peers: {} writes, {} errors in {:.1f} ms{}", peers.size(), report.writes,
                 report.errors.size(), seconds * 1000,
                 firewall_first     ? fmt::format(" (after {:.1f} ms of firewall)",
                                                  std::chrono::duration<double, std::milli>(firewall_took).count())
                 : firewall_changes ? " (firewall updated after the routes)"
                                    : "");
  }
  for (const auto& e : report.errors) spdlog::warn("{}", e);
  {
    std::lock_guard lock(mu_);
    ++reconciles_;
    reconcile_writes_ += report.writes;
    reconcile_errors_ += report.errors.size();
    skipped_peers_ = report.skipped.size();
    programmed_peers_ = static_cast<std::uint64_t>(report.peers_programmed);
    last_reconcile_seconds_ = seconds;
    peers_programmed_ = report.errors.empty();
  }
  publish_readiness();
}

void Agent::repair(const char* why) {
  spdlog::debug("repair: {}", why);
  auto st = ensure_vtep();
  {
    std::lock_guard lock(mu_);
    ++repairs_;
  }
  if (!st || !have_snapshot_) {
    if (have_snapshot_) reconcile_firewall(firewall_spec(subnets_.peers()));  // sync_peers does it otherwise
    publish_readiness();
    return;
  }
  sync_peers();
}

VtepSpec Agent::vtep_spec(std::optional<Mac> preferred_mac) const {
  VtepSpec spec;
  spec.vni = s_.net.backend.vni;
  spec.port = s_.net.backend.port;
  spec.local_ip = s_.ext.vtep_local;
  spec.underlay_ifindex = s_.ext.index;
  spec.underlay_mtu = s_.ext.mtu;
  spec.mtu = s_.net.backend.mtu;
  spec.gbp = s_.net.backend.gbp;
  spec.learning = s_.net.backend.learning;
  spec.preferred_mac = preferred_mac;
  return spec;
}

// The underlay is followed by name: a NIC deleted and re-created (same name, new index) takes the
// VTEP with it, and the VTEP is made again on the new one. While the name is gone the old index
// stays, and ensure_device's failure is retried.
Status Agent::follow_underlay() {
  auto now = follow_interface(s_.ext, s_.opts.public_ip);
  if (!now) return now.take_error();
  if (now->index != s_.ext.index || now->mtu != s_.ext.mtu || now->vtep_local != s_.ext.vtep_local) {
    spdlog::warn("underlay interface {} changed: index {} -> {}, MTU {} -> {}, VXLAN source {} -> {}", now->name,
                 s_.ext.index, now->index, s_.ext.mtu, now->mtu, s_.ext.vtep_local.str(), now->vtep_local.str());
    now->warnings.clear();
    s_.ext = *now;
  }
  return ok_status();
}

Status Agent::ensure_vtep() {
  const Status underlay = follow_underlay();
  auto vtep = backend_.ensure_device(vtep_spec(vtep_.mac));
  Status st = ok_status();
  if (!vtep) {
    st = fail("VXLAN device unusable: " + vtep.error() + (underlay ? "" : " (" + underlay.error() + ")"));
  } else {
    if (vtep->ifindex != vtep_.ifindex) spdlog::warn("VXLAN device {} was recreated", vtep->name);
    vtep_ = *vtep;
    st = backend_.set_lease(lease_);
  }
  std::lock_guard lock(mu_);
  std::string problem = st ? "" : st.error();
  if (problem != vtep_problem_) {  // once per change: retries would repeat it twice a second
    if (!st) spdlog::error("{}", problem);
    if (st && !vtep_problem_.empty()) spdlog::info("VXLAN device {} is usable again", vtep_.name);
  }
  vtep_problem_ = problem;
  return st;
}

bool Agent::vtep_unusable() const {
  std::lock_guard lock(mu_);
  return !vtep_problem_.empty();
}

FirewallSpec Agent::firewall_spec(const PeerSet& peers) const {
  FirewallSpec spec;
  spec.network = s_.net.ipv4->network;
  spec.subnet = lease_.subnet;
  spec.ip_masq = s_.opts.ip_masq;
  spec.vxlan_port = s_.net.backend.port;
  spec.vxlan_sources.insert(lease_.public_ip);
  for (const auto& [name, peer] : peers) spec.vxlan_sources.insert(peer.public_ip);
  return spec;
}

// `spec` with the applied allow-list's addresses kept too: only additions, when the two differ
// in their sources alone (the removals come after the routes).
FirewallSpec Agent::widened(const FirewallSpec& spec) const {
  if (!firewall_applied_ || !same_rules(*firewall_applied_, spec)) return spec;
  FirewallSpec wide = spec;
  wide.vxlan_sources.insert(firewall_applied_->vxlan_sources.begin(), firewall_applied_->vxlan_sources.end());
  return wide;
}

// True when `spec` lets in something the applied table does not (or nothing is known applied).
bool Agent::allows_more(const FirewallSpec& spec) const {
  if (!firewall_applied_) return true;
  if (!same_rules(spec, *firewall_applied_)) return true;
  const auto& had = firewall_applied_->vxlan_sources;
  return !std::includes(had.begin(), had.end(), spec.vxlan_sources.begin(), spec.vxlan_sources.end());
}

void Agent::reconcile_firewall(const FirewallSpec& spec) {
  if (!have_snapshot_) return;            // an allow-list without the peers would drop their traffic
  if (firewall_applied_ == spec) return;  // the kernel matched it, and nftables has said nothing since
  if (firewall_applied_ && same_rules(*firewall_applied_, spec)) {
    if (firewall_.update_sources(*firewall_applied_, spec)) {
      firewall_applied_ = spec;
      return;
    }
  }
  firewall_applied_.reset();
  auto report = firewall_.reconcile(spec);
  if (!report) {
    spdlog::error("{}", report.error());
    return;
  }
  firewall_seen_ = true;
  firewall_applied_ = spec;
  if (report->replaced) {
    std::lock_guard lock(mu_);
    ++firewall_writes_;
  }
}

void Agent::publish_readiness() {
  bool ready;
  std::string problem;
  {
    std::lock_guard lock(mu_);
    ready = ready_locked();
    problem = vtep_problem_;
  }
  if (!condition_) return;
  auto k = subnets_.stats();
  if (ready && !k.own_conflict.empty()) {  // the datapath works here, but no other node routes to us
    condition_->want(true, "other nodes skip this node: " + k.own_conflict);
  } else if (ready && !k.lease_problem.empty()) {
    condition_->want(false, "weft is running on this node, but: " + k.lease_problem);
  } else if (ready) {
    condition_->want(false, "weft is running on this node");
  } else if (!problem.empty()) {
    condition_->want(true, problem);
  }
}

bool Agent::ready_locked() const { return subnet_env_written_ && peers_programmed_ && vtep_problem_.empty(); }

HttpReply Agent::health(const std::string& path) const {
  if (path == "/healthz") return {200, "ok\n"};
  if (path == "/metrics") return {200, metrics(), "text/plain; version=0.0.4; charset=utf-8"};
  if (path == "/status") return {200, status_json(), "application/json"};
  if (path != "/readyz") return {404, "not found: try /healthz, /readyz, /status or /metrics\n"};
  auto k = subnets_.stats();
  std::lock_guard lock(mu_);
  auto why = not_ready_locked(k);
  return why.empty() ? HttpReply{200, "ok\n"} : HttpReply{503, why + "\n"};
}

std::string Agent::not_ready_locked(const SubnetStats& k) const {
  if (!vtep_problem_.empty()) return vtep_problem_;
  if (!subnet_env_written_) return k.lease_waiting.empty() ? "no lease yet: subnet.env not written" : k.lease_waiting;
  if (!peers_programmed_) return "peers not programmed yet";
  if (!k.own_conflict.empty()) return "other nodes skip this node: " + k.own_conflict;
  return k.lease_problem;
}

// What weftctl status shows: readiness and the lease as this weftd holds it, with the
// subnet file it wrote (weftctl need not guess the --subnet-file).
std::string Agent::status_json() const {
  auto k = subnets_.stats();
  std::lock_guard lock(mu_);
  nlohmann::json j = {{"ready", not_ready_locked(k).empty()}, {"subnet_file", s_.opts.subnet_file}};
  if (published_) {
    const auto& [lease, env] = *published_;
    j["lease"] = {{"subnet", lease.subnet.str()},
                  {"public_ip", lease.public_ip.str()},
                  {"vtep_mac", lease.vtep_mac.str()},
                  {"network", env.network.str()},
                  {"mtu", env.mtu},
                  {"ipmasq", env.ipmasq}};
  }
  return j.dump() + "\n";
}

std::string Agent::metrics() const {
  auto k = subnets_.stats();
  std::lock_guard lock(mu_);
  std::ostringstream m;
  auto metric = [&m](const char* name, const char* type, const char* help, auto value) {
    m << "# HELP " << name << " " << help << "\n# TYPE " << name << " " << type << "\n" << name << " " << value << "\n";
  };
  metric("weft_ready", "gauge",
         "1 when subnet.env is written, peers are programmed, the VTEP is healthy and the subnet is ours.",
         not_ready_locked(k).empty() ? 1 : 0);
  metric("weft_peers_programmed", "gauge", "Peers whose routes are in the kernel.", programmed_peers_);
  metric("weft_peers_skipped", "gauge", "Peers refused by the backend (bad or conflicting data).", skipped_peers_);
  metric("weft_reconciles_total", "counter", "Reconciles of the kernel against the desired state.", reconciles_);
  metric("weft_reconcile_writes_total", "counter", "Netlink writes made by reconciles.", reconcile_writes_);
  metric("weft_reconcile_errors_total", "counter", "Netlink writes that failed.", reconcile_errors_);
  metric("weft_repairs_total", "counter", "Repairs after kernel or nftables changes and periodic resyncs.", repairs_);
  metric("weft_firewall_replacements_total", "counter", "Times weft's nftables table was rewritten.", firewall_writes_);
  metric("weft_last_reconcile_seconds", "gauge", "Duration of the last reconcile.", last_reconcile_seconds_);
  metric("weft_kube_lists_total", "counter", "Node lists made by the watch.", k.lists);
  metric("weft_kube_relists_total", "counter", "Lists after the first (410 Gone or failed rewatch).", k.relists);
  metric("weft_kube_watches_total", "counter", "Watch requests started.", k.watches);
  metric("weft_kube_events_total", "counter", "Node watch events applied.", k.events);
  metric("weft_kube_api_errors_total", "counter", "Failed Kubernetes API requests.", k.api_errors);
  metric("weft_kube_nodes_skipped", "gauge", "Nodes skipped for bad annotations or a later claim.", k.skipped_peers);
  metric("weft_kube_nodes_outranked", "gauge", "Nodes skipped because an earlier claim holds their subnet.",
         k.outranked_nodes);
  metric("weft_own_subnet_conflict", "gauge", "1 when an earlier claim holds this node's subnet (peers skip it).",
         k.own_conflict.empty() ? 0 : 1);
  metric("weft_lease_podcidr_mismatch", "gauge", "1 when the published subnet differs from spec.podCIDR.",
         k.lease_problem.empty() ? 0 : 1);
  metric("weft_lease_waiting", "gauge", "1 while weftd waits for its subnet (spec.podCIDR).",
         k.lease_waiting.empty() ? 0 : 1);
  m << "# HELP weft_kube_node_skipped A skipped Node and why (at most 50).\n# TYPE weft_kube_node_skipped gauge\n";
  for (const auto& [name, reason] : subnets_.skipped_nodes(50)) {
    m << "weft_kube_node_skipped{node=\"" << label_value(name) << "\",reason=\"" << label_value(reason) << "\"} 1\n";
  }
  return m.str();
}

}  // namespace weft
