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
#include <set>
#include <sstream>
#include <thread>

#include "core/subnet_env.hpp"
#include "subnet/annotations.hpp"

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

Agent::Agent(AgentSettings settings, SubnetManager& subnets, VxlanBackend& backend, Firewall& firewall)
    : s_(std::move(settings)), subnets_(subnets), backend_(backend), firewall_(firewall) {}

Agent::~Agent() = default;

int Agent::run(Wakeup& wakeup) {
  wakeup_ = &wakeup;
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
  wakeup_ = nullptr;
  backend_.unwatch();
  subnets_.stop();
  condition_.reset();
  return 0;
}

Status Agent::start(Wakeup& wakeup) {
  for (const auto& w : s_.ext.warnings) spdlog::warn("{}", w);
  if (has_v4()) {
    spdlog::info("using interface {} (index {}, {}), public IP {}, MTU {}", s_.ext.name, s_.ext.index,
                 s_.ext.iface_addr.str(), s_.ext.public_ip.str(), s_.ext.mtu);
  } else {
    spdlog::info("IPv6-only: using interface {} (index {}, {}), public IPv6 {}, MTU {}", s_.ext.name, s_.ext.index,
                 s_.underlay_v6->local.str(), s_.underlay_v6->public_ip.str(), s_.ext.mtu);
  }
  auto own = subnets_.read_own_node();
  if (!own) return fail("cannot read this node from the API: " + own.error());

  Lease base;
  if (has_v4()) {
    auto vtep = backend_.ensure_device(vtep_spec(own->vtep_mac));
    if (!vtep) return fail("cannot set up the VXLAN device: " + vtep.error());
    vtep_ = *vtep;
    base.public_ip = s_.ext.public_ip;
    base.vtep_mac = vtep_.mac;
  }
  if (has_v6()) {
    auto vtep6 = backend_.ensure_device_v6(vtep_spec_v6(own->vtep_mac_v6));
    if (!vtep6) return fail("cannot set up the IPv6 VXLAN device: " + vtep6.error());
    vtep6_ = *vtep6;
    base.vtep_mac_v6 = vtep6_.mac;
    if (s_.underlay_v6) base.public_ip_v6 = s_.underlay_v6->public_ip;
    spdlog::info("IPv6 VXLAN over {}: {} VNI {} from {}", s_.underlay_v6 ? "IPv6" : "IPv4", vtep6_.name,
                 vtep_spec_v6(std::nullopt).vni,
                 s_.underlay_v6 ? s_.underlay_v6->local.str() : s_.ext.vtep_local.str());
  }

  auto lease = subnets_.acquire(base);
  if (!lease) return fail("cannot lease a subnet: " + lease.error());
  lease_ = *lease;
  if (lease_.subnet)
    spdlog::info("lease {} on {} (VTEP {} {})", lease_.subnet->str(), lease_.public_ip->str(), vtep_.name,
                 vtep_.mac.str());
  if (lease_.subnet_v6) spdlog::info("lease {} (VTEP {} {})", lease_.subnet_v6->str(), vtep6_.name, vtep6_.mac.str());
  if (auto st = backend_.set_lease(lease_); !st) return fail("cannot address the VTEP: " + st.error());

  const SubnetEnv env = subnet_env();
  if (auto st = env.write_atomically(s_.opts.subnet_file); !st) return st;
  {
    std::lock_guard lock(mu_);
    subnet_env_written_ = true;
    published_ = Published{lease_, env};
    if (has_v4()) status_vtep_ = vtep_;
    if (has_v6()) status_vtep6_ = vtep6_;
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

SubnetEnv Agent::subnet_env() const {
  SubnetEnv env;
  if (has_v4()) {
    env.network = s_.net.ipv4->network;
    env.subnet = lease_.subnet;
  }
  // One MTU for the pod's interface, which carries both families: the smaller VTEP's.
  env.mtu = !has_v6() ? vtep_.mtu : has_v4() ? std::min(vtep_.mtu, vtep6_.mtu) : vtep6_.mtu;
  env.ipmasq = s_.opts.ip_masq;
  if (has_v6()) {
    env.network_v6 = s_.net.ipv6->network;
    env.subnet_v6 = lease_.subnet_v6;
  }
  return env;
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
  const auto v6_halves =
      std::count_if(report.skipped.begin(), report.skipped.end(), [](const SkippedPeer& s) { return s.ipv6_half; });
  {
    std::lock_guard lock(mu_);
    ++reconciles_;
    reconcile_writes_ += report.writes;
    reconcile_errors_ += report.errors.size();
    skipped_peers_ = report.skipped.size() - static_cast<std::size_t>(v6_halves);
    backend_skipped_ = report.skipped;
    if (has_v4()) status_vtep_ = vtep_;
    programmed_peers_ = static_cast<std::uint64_t>(report.peers_programmed);
    programmed_peers_v6_ = static_cast<std::uint64_t>(report.peers_programmed_v6);
    skipped_peers_v6_ = static_cast<std::uint64_t>(v6_halves);
    if (has_v6()) status_vtep6_ = vtep6_;
    last_reconcile_seconds_ = seconds;
    reconcile_seconds_.observe(seconds);
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
  spec.flannel_names = s_.net.flannel_compat;
  return spec;
}

VtepSpec Agent::vtep_spec_v6(std::optional<Mac> preferred_mac) const {
  VtepSpec spec = vtep_spec(preferred_mac);
  spec.ipv6 = true;
  spec.vni = vni_v6(s_.net.backend.vni, s_.underlay_v6.has_value());
  if (s_.underlay_v6) spec.local_ip6 = s_.underlay_v6->local;
  return spec;
}

// The underlay is followed by name: a NIC deleted and re-created (same name, new index) takes the
// VTEP with it, and the VTEP is made again on the new one. While the name is gone the old index
// stays, and ensure_device's failure is retried.
Status Agent::follow_underlay() {
  if (!has_v4()) return follow_underlay_v6();
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

Status Agent::follow_underlay_v6() {
  // Its address as before while it still has it (an --iface given by address picked that one),
  // else by name; an address that moved to another interface is not followed there.
  IfaceChoice again;
  again.iface = {s_.underlay_v6->local.str(), s_.ext.name};
  auto now = find_external_interface_v6(again, s_.opts.public_ipv6);
  if (now && now->ext.name != s_.ext.name) {
    again.iface = {s_.ext.name};
    now = find_external_interface_v6(again, s_.opts.public_ipv6);
  }
  if (!now) return fail("underlay interface " + s_.ext.name + ": " + now.error());
  const Ipv6Underlay& was = *s_.underlay_v6;
  if (now->ext.index != s_.ext.index || now->ext.mtu != s_.ext.mtu || now->underlay.local != was.local) {
    spdlog::warn("underlay interface {} changed: index {} -> {}, MTU {} -> {}, VXLAN source {} -> {}", s_.ext.name,
                 s_.ext.index, now->ext.index, s_.ext.mtu, now->ext.mtu, was.local.str(), now->underlay.local.str());
    now->ext.warnings.clear();
    s_.ext = now->ext;
    s_.underlay_v6->local = now->underlay.local;  // the published public IPv6 stays
  }
  return ok_status();
}

Status Agent::ensure_vtep() {
  const Status underlay = follow_underlay();
  const std::string why_underlay = underlay ? "" : " (" + underlay.error() + ")";
  Status st = ok_status();
  if (has_v4()) {
    auto vtep = backend_.ensure_device(vtep_spec(vtep_.mac));
    if (!vtep) {
      st = fail("VXLAN device unusable: " + vtep.error() + why_underlay);
    } else {
      if (vtep->ifindex != vtep_.ifindex) spdlog::warn("VXLAN device {} was recreated", vtep->name);
      vtep_ = *vtep;
    }
  }
  if (st && has_v6()) {
    auto vtep6 = backend_.ensure_device_v6(vtep_spec_v6(vtep6_.mac));
    if (vtep6) {
      if (!has_v4() && vtep6->ifindex != vtep6_.ifindex) spdlog::warn("VXLAN device {} was recreated", vtep6->name);
      vtep6_ = *vtep6;
    } else {
      st = fail("IPv6 VXLAN device unusable: " + vtep6.error() + (has_v4() ? "" : why_underlay));
    }
  }
  if (st) st = backend_.set_lease(lease_);
  std::lock_guard lock(mu_);
  std::string problem = st ? "" : st.error();
  if (problem != vtep_problem_) {  // once per change: retries would repeat it twice a second
    if (!st) spdlog::error("{}", problem);
    if (st && !vtep_problem_.empty())
      spdlog::info("VXLAN device {} is usable again", has_v4() ? vtep_.name : vtep6_.name);
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
  spec.ip_masq = s_.opts.ip_masq;
  spec.vxlan_port = s_.net.backend.port;
  if (has_v4()) {
    spec.network = s_.net.ipv4->network;
    spec.subnet = lease_.subnet;
    if (lease_.public_ip) spec.vxlan_sources.insert(*lease_.public_ip);
    for (const auto& [name, peer] : peers) {
      if (peer.public_ip) spec.vxlan_sources.insert(*peer.public_ip);
    }
  }
  if (has_v6()) {
    spec.network_v6 = s_.net.ipv6->network;
    spec.subnet_v6 = lease_.subnet_v6;
    if (lease_.public_ip_v6) spec.vxlan_sources_v6.insert(*lease_.public_ip_v6);
    for (const auto& [name, peer] : peers) {
      if (peer.public_ip_v6) spec.vxlan_sources_v6.insert(*peer.public_ip_v6);
    }
  }
  return spec;
}

// `spec` with the applied allow-list's addresses kept too: only additions, when the two differ
// in their sources alone (the removals come after the routes).
FirewallSpec Agent::widened(const FirewallSpec& spec) const {
  if (!firewall_applied_ || !same_rules(*firewall_applied_, spec)) return spec;
  FirewallSpec wide = spec;
  wide.vxlan_sources.insert(firewall_applied_->vxlan_sources.begin(), firewall_applied_->vxlan_sources.end());
  wide.vxlan_sources_v6.insert(firewall_applied_->vxlan_sources_v6.begin(), firewall_applied_->vxlan_sources_v6.end());
  return wide;
}

// True when `spec` lets in something the applied table does not (or nothing is known applied).
bool Agent::allows_more(const FirewallSpec& spec) const {
  if (!firewall_applied_) return true;
  if (!same_rules(spec, *firewall_applied_)) return true;
  const auto& had = firewall_applied_->vxlan_sources;
  const auto& had6 = firewall_applied_->vxlan_sources_v6;
  return !std::includes(had.begin(), had.end(), spec.vxlan_sources.begin(), spec.vxlan_sources.end()) ||
         !std::includes(had6.begin(), had6.end(), spec.vxlan_sources_v6.begin(), spec.vxlan_sources_v6.end());
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
    condition_->want(false, running_message() + ", but: " + k.lease_problem);
  } else if (ready) {
    condition_->want(false, running_message());
  } else if (!problem.empty()) {
    condition_->want(true, problem);
  }
}

// Names the families served, so `kubectl describe node` tells a dual-stack node from a v4 one.
std::string Agent::running_message() const {
  std::string families;
  if (lease_.subnet) families = "IPv4 " + lease_.subnet->str();
  if (lease_.subnet_v6) families += (families.empty() ? "IPv6 " : ", IPv6 ") + lease_.subnet_v6->str();
  return "weft is running on this node: " + families + (lease_.subnet ? "" : " (IPv6-only)");
}

bool Agent::ready_locked() const { return subnet_env_written_ && peers_programmed_ && vtep_problem_.empty(); }

HttpReply Agent::health(const std::string& path) const {
  if (path == "/healthz") return liveness();
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

namespace {

// A VTEP for /status: what it should be and, once set up, what it is.
nlohmann::json vtep_json(const VtepSpec& spec, const std::optional<Vtep>& now) {
  nlohmann::json j = {{"name", vtep_name(spec)},
                      {"vni", spec.vni},
                      {"port", spec.port == 0 ? 8472 : spec.port},
                      {"local_ip", spec.local_ip6 ? spec.local_ip6->str() : spec.local_ip.str()},
                      {"mtu_wanted", vtep_mtu(spec)},
                      {"backend_mtu", spec.mtu ? nlohmann::json(*spec.mtu) : nlohmann::json(nullptr)},
                      {"learning", spec.learning},
                      {"gbp", spec.gbp}};
  if (now) {
    j["ifindex"] = now->ifindex;
    j["mac"] = now->mac.str();
    j["mtu"] = now->mtu;
  }
  return j;
}

}  // namespace

// What weftctl status shows: readiness and the lease as this weftd holds it, with the
// subnet file it wrote (weftctl need not guess the --subnet-file).
std::string Agent::status_json() const {
  auto k = subnets_.stats();
  nlohmann::json j;
  std::optional<Vtep> vtep, vtep6;
  std::vector<SkippedPeer> refused;
  {
    std::lock_guard lock(mu_);
    j = {{"ready", not_ready_locked(k).empty()}, {"subnet_file", s_.opts.subnet_file}};
    if (published_) {
      const auto& [lease, env] = *published_;
      j["lease"] = {{"mtu", env.mtu}, {"ipmasq", env.ipmasq}};
      if (lease.subnet) {  // absent in an IPv6-only cluster
        j["lease"]["subnet"] = lease.subnet->str();
        if (lease.public_ip) j["lease"]["public_ip"] = lease.public_ip->str();
        if (lease.vtep_mac) j["lease"]["vtep_mac"] = lease.vtep_mac->str();
        if (env.network) j["lease"]["network"] = env.network->str();
      }
      if (lease.subnet_v6) {
        j["lease"]["subnet_v6"] = lease.subnet_v6->str();
        j["lease"]["network_v6"] = env.network_v6 ? env.network_v6->str() : "";
        if (lease.vtep_mac_v6) j["lease"]["vtep_mac_v6"] = lease.vtep_mac_v6->str();
        if (lease.public_ip_v6) j["lease"]["public_ip_v6"] = lease.public_ip_v6->str();
      }
    }
    vtep6 = status_vtep6_;
    vtep = status_vtep_;
    refused = backend_skipped_;
  }
  add_datapath_status(j, k, vtep, refused);  // thousands of peers: not under mu_
  if (has_v6()) {
    j["vtep6"] = vtep_json(vtep_spec_v6(std::nullopt), vtep6);
    j["vtep6"]["direct_routing"] = s_.net.backend.direct_routing && s_.underlay_v6.has_value();
    j["network_v6"] = s_.net.ipv6->network.str();
    if (s_.underlay_v6)
      j["underlay"].update(
          {{"address_v6", s_.underlay_v6->local.str()}, {"public_ip_v6", s_.underlay_v6->public_ip.str()}});
  }
  return j.dump() + "\n";
}

// For weftctl peers and doctor: the VTEP weftd set up and what it should be, the underlay, the
// desired peers (gateway = the peer's subnet address, flannel's layout) and the skipped ones
// with the reason (refused by the Node watch for their annotations, or by the backend's
// checks), and where the API server is. Reads only s_ and the subnet manager (thread-safe).
void Agent::add_datapath_status(nlohmann::json& j, const SubnetStats& k, const std::optional<Vtep>& vtep,
                                const std::vector<SkippedPeer>& refused_by_backend) const {
  j["underlay"] = {{"name", s_.ext.name}, {"ifindex", s_.ext.index}, {"mtu", s_.ext.mtu}};
  if (has_v4()) {  // an IPv6-only cluster has no weft.<VNI>, IPv4 underlay or IPv4 network
    j["vtep"] = vtep_json(vtep_spec(std::nullopt), vtep);
    j["vtep"]["direct_routing"] = s_.net.backend.direct_routing;
    j["underlay"]["address"] = s_.ext.iface_addr.str();
    j["underlay"]["public_ip"] = s_.ext.public_ip.str();
    j["network"] = s_.net.ipv4->network.str();
  }
  std::set<std::string> refused;
  auto skipped = nlohmann::json::array();
  for (const auto& [name, reason] : subnets_.skipped_nodes(1000)) {
    skipped.push_back({{"node", name}, {"reason", reason}, {"by", "node watch"}});
  }
  std::set<std::string> refused_v6;  // still routed over IPv4: listed without their IPv6 half
  for (const auto& s : refused_by_backend) {
    (s.ipv6_half ? refused_v6 : refused).insert(s.name);
    skipped.push_back({{"node", s.name}, {"reason", s.reason}, {"by", "backend"}});
  }
  auto peers = nlohmann::json::array();
  for (const auto& [name, peer] : subnets_.peers()) {
    if (refused.count(name) != 0) continue;
    nlohmann::json p = {{"node", name}};
    if (peer.subnet && peer.public_ip && peer.vtep_mac) {
      p["subnet"] = peer.subnet->str();
      p["gateway"] = peer.subnet->address().str();
      p["public_ip"] = peer.public_ip->str();
      p["vtep_mac"] = peer.vtep_mac->str();
    }
    if (peer.subnet_v6 && peer.vtep_mac_v6 && refused_v6.count(name) == 0) {
      p["subnet_v6"] = peer.subnet_v6->str();
      p["gateway_v6"] = peer.subnet_v6->address().str();
      p["vtep_mac_v6"] = peer.vtep_mac_v6->str();
      if (peer.public_ip_v6) p["public_ip_v6"] = peer.public_ip_v6->str();
    }
    peers.push_back(std::move(p));
  }
  j["peers"] = std::move(peers);
  j["skipped"] = std::move(skipped);
  j["kubernetes"] = {{"kubeconfig_file", s_.opts.kubeconfig_file},
                     {"api_url", s_.opts.kube_api_url},
                     {"api_errors", k.api_errors},
                     {"lists", k.lists},
                     {"watches", k.watches},
                     {"events", k.events}};
}

double Agent::stalled_seconds() const {
  const Wakeup* w = wakeup_;
  return w ? std::chrono::duration<double>(w->stalled_for(Clock::now())).count() : 0.0;
}

// Liveness, not readiness: only a loop that has stopped making progress with work queued fails
// (a restart may help); a missing lease or an unreachable API is /readyz's business.
HttpReply Agent::liveness() const {
  const int limit = s_.opts.liveness_stall_seconds;
  const double stalled = stalled_seconds();
  if (limit <= 0 || stalled < limit) return {200, "ok\n"};
  return {503,
          fmt::format("control loop stuck: work queued and no progress for {:.1f} s (--liveness-stall-seconds={})\n",
                      stalled, limit)};
}

std::string Agent::metrics() const {
  auto k = subnets_.stats();
  auto skipped_nodes = subnets_.skipped_nodes(50);
  const auto process = process_stats();
  const double stalled = stalled_seconds();
  std::lock_guard lock(mu_);
  Exposition m;
  auto num = [](auto v) { return static_cast<double>(v); };
  add_build_info(m);
  m.gauge("weft_ready",
          "1 when subnet.env is written, peers are programmed, the VTEP is healthy and the subnet is ours.",
          not_ready_locked(k).empty() ? 1 : 0);
  m.family("weft_peers", "gauge",
           "Peers by state: programmed (routes in the kernel) or skipped (refused by the backend).");
  m.sample("weft_peers", {{"state", "programmed"}}, num(programmed_peers_));
  m.sample("weft_peers", {{"state", "skipped"}}, num(skipped_peers_));
  m.gauge("weft_peers_programmed", "Peers whose routes are in the kernel (weft_peers{state=\"programmed\"}).",
          num(programmed_peers_));
  m.gauge("weft_peers_skipped", "Peers refused by the backend (weft_peers{state=\"skipped\"}).", num(skipped_peers_));
  if (has_v6()) {
    m.family("weft_peers_ipv6", "gauge",
             "Dual stack: peers by the state of their IPv6 half: programmed (IPv6 routes in the kernel) or skipped "
             "(refused by the Node watch or the backend; their IPv4 routes stay).");
    m.sample("weft_peers_ipv6", {{"state", "programmed"}}, num(programmed_peers_v6_));
    m.sample("weft_peers_ipv6", {{"state", "skipped"}}, num(skipped_peers_v6_ + k.skipped_peers_v6));
  }
  m.counter("weft_reconciles_total", "Reconciles of the kernel against the desired state.", num(reconciles_));
  m.counter("weft_reconcile_writes_total", "Netlink writes made by reconciles.", num(reconcile_writes_));
  m.counter("weft_reconcile_errors_total", "Netlink writes that failed.", num(reconcile_errors_));
  m.counter("weft_repairs_total", "Repairs after kernel or nftables changes and periodic resyncs.", num(repairs_));
  m.counter("weft_firewall_replacements_total", "Times weft's nftables table was rewritten.", num(firewall_writes_));
  m.gauge(
      "weft_control_loop_stalled_seconds",
      "Seconds the control loop has had work queued without progress (/healthz fails past --liveness-stall-seconds).",
      stalled);
  m.gauge("weft_last_reconcile_seconds", "Duration of the last reconcile.", last_reconcile_seconds_);
  m.histogram("weft_reconcile_duration_seconds",
              "Duration of reconciles of routes, neighbours and FDB entries against the peers.", reconcile_seconds_);
  m.counter("weft_kube_lists_total", "Node lists made by the watch.", num(k.lists));
  m.counter("weft_kube_relists_total", "Lists after the first (410 Gone or failed rewatch).", num(k.relists));
  m.counter("weft_kube_watches_total", "Watch requests started.", num(k.watches));
  m.counter("weft_kube_events_total", "Node watch events applied.", num(k.events));
  m.counter("weft_kube_api_errors_total", "Failed Kubernetes API requests.", num(k.api_errors));
  m.gauge("weft_kube_nodes_skipped", "Nodes skipped for bad annotations or a later claim.", num(k.skipped_peers));
  m.gauge("weft_kube_nodes_outranked", "Nodes skipped because an earlier claim holds their subnet.",
          num(k.outranked_nodes));
  m.gauge("weft_own_subnet_conflict", "1 when an earlier claim holds this node's subnet (peers skip it).",
          k.own_conflict.empty() ? 0 : 1);
  m.gauge("weft_lease_podcidr_mismatch", "1 when the published subnet differs from spec.podCIDR.",
          k.lease_problem.empty() ? 0 : 1);
  m.gauge("weft_lease_waiting", "1 while weftd waits for its subnet (spec.podCIDR).", k.lease_waiting.empty() ? 0 : 1);
  m.family("weft_kube_node_skipped", "gauge", "A skipped Node and why (at most 50).");
  for (const auto& [name, reason] : skipped_nodes)
    m.sample("weft_kube_node_skipped", {{"node", name}, {"reason", reason}}, 1);
  add_process_metrics(m, process);
  return m.text();
}

}  // namespace weft
