#include "backend/vxlan/vxlan_backend.hpp"

#include <spdlog/spdlog.h>

#include <unordered_set>

namespace weft {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t kDetailedErrors = 10;  // per reconcile; the rest are counted

std::chrono::microseconds since(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t);
}

std::string owner_of(const Op& op) { return op.peer.empty() ? "stale entry" : "peer " + op.peer; }

void log_summary(const ReconcileReport& r) {
  if (r.writes == 0 && r.errors.empty()) return;
  auto level = r.errors.empty() ? spdlog::level::info : spdlog::level::warn;
  spdlog::log(level,
              "reconcile: {} peers programmed, {} entries set, {} removed, {} peers skipped, {} errors; {} writes in "
              "{:.1f} ms (routes {:.1f} ms)",
              r.peers_programmed, r.entries_set, r.entries_removed, r.skipped.size(), r.errors.size(), r.writes,
              std::chrono::duration<double, std::milli>(r.took).count(),
              std::chrono::duration<double, std::milli>(r.routes_took).count());
}

}  // namespace

VxlanBackend::VxlanBackend(Netlink& nl, Ipv4Prefix cluster_network, bool direct_routing)
    : nl_(nl), network_(cluster_network), direct_routing_(direct_routing) {}

VxlanBackend::~VxlanBackend() { unwatch(); }

Result<Vtep> VxlanBackend::ensure_device(const VtepSpec& spec) {
  spec_ = spec;
  auto vtep = ensure_vtep_now(nullptr);
  if (!vtep) return vtep;
  if (Status st = ensure_address(nullptr); !st) return st.take_error();
  return vtep;
}

Status VxlanBackend::set_lease(const Lease& own) {
  if (!network_.contains(own.subnet)) {
    return fail("own subnet " + own.subnet.str() + " is outside network " + network_.str() +
                ": the lease and net-conf.json's Network disagree");
  }
  lease_ = own;
  return ensure_address(nullptr);
}

ReconcileReport VxlanBackend::reconcile(const PeerSet& peers) {
  const auto start = Clock::now();
  const auto writes_before = nl_.write_count();
  ReconcileReport report;
  auto finish = [&]() -> ReconcileReport {
    report.writes = nl_.write_count() - writes_before;
    report.took = since(start);
    log_summary(report);
    return std::move(report);
  };
  if (!spec_ || !lease_) {
    report.errors.emplace_back("reconcile called before ensure_device and set_lease");
    return finish();
  }
  auto vtep = ensure_vtep_now(&report);
  if (!vtep) {
    report.errors.push_back(vtep.error());
    return finish();
  }
  if (Status st = ensure_address(&report); !st) report.errors.push_back(st.error());

  PeerCheck check = check_peers(peers, *lease_, network_);
  log_skips(check.skipped);
  report.skipped = std::move(check.skipped);
  const DirectHops direct = direct_routing_ ? direct_hops(check.accepted, vtep->ifindex) : DirectHops{};
  const DesiredState desired = desired_state(check.accepted, vtep->ifindex, direct);
  auto actual = read_actual(vtep->ifindex);
  if (!actual) {  // never write from a partial picture of the kernel
    report.errors.push_back(actual.error());
    return finish();
  }
  apply(diff(desired, *actual), report);
  report.peers_programmed = static_cast<int>(check.accepted.size());
  return finish();
}

Status VxlanBackend::watch(PostChange post) {
  unwatch();
  auto sub = nl_.subscribe([this, post = std::move(post)](const KernelEvent& e) {
    if (auto change = relevant(e)) post(*change);
  });
  if (!sub) return sub.take_error();
  subscription_ = std::move(sub).value();
  return ok_status();
}

void VxlanBackend::unwatch() { subscription_.reset(); }

std::optional<KernelChange> VxlanBackend::relevant(const KernelEvent& e) const {
  if (e.kind == KernelEvent::Kind::overflow) return KernelChange{e.kind, e.text};
  if (e.own) return std::nullopt;  // our own write coming back
  const int vtep = watched_ifindex_.load(std::memory_order_relaxed);
  if (vtep == 0) return std::nullopt;
  bool ours = e.ifindex == vtep;
  if (e.kind == KernelEvent::Kind::route) {
    ours = e.dst && network_.contains(*e.dst) && (e.ifindex == vtep || e.protocol == kWeftRouteProtocol);
  }
  if (!ours) return std::nullopt;
  return KernelChange{e.kind, e.text};
}

Result<Vtep> VxlanBackend::ensure_vtep_now(ReconcileReport* report) {
  std::optional<Mac> last_mac;
  if (vtep_) last_mac = vtep_->mac;
  VtepAction action = VtepAction::kept;
  auto vtep = ensure_vtep(nl_, *spec_, last_mac, &action);
  if (!vtep) return vtep;
  if (report && (action == VtepAction::created || action == VtepAction::recreated)) report->device_recreated = true;
  vtep_ = *vtep;
  watched_ifindex_.store(vtep->ifindex, std::memory_order_relaxed);
  return vtep;
}

Status VxlanBackend::ensure_address(ReconcileReport* report) {
  if (!vtep_ || !lease_) return ok_status();
  const Address want{vtep_->ifindex, lease_->subnet.address(), 32};
  auto have = nl_.dump_addresses(vtep_->ifindex);
  if (!have) return have.take_error();
  std::vector<Write> writes;
  bool present = false;
  for (const Address& a : *have) {
    if (a == want) {
      present = true;
    } else {
      writes.push_back({WriteAction::remove, a});
    }
  }
  if (!present) writes.push_back({WriteAction::upsert, want});
  auto results = nl_.write(writes);
  for (std::size_t i = 0; i < writes.size(); ++i) {
    if (!results[i]) return results[i].take_error();
    spdlog::info("VTEP {}: {}", vtep_->name, to_string(writes[i]));
    if (report) ++(writes[i].action == WriteAction::upsert ? report->entries_set : report->entries_removed);
  }
  return ok_status();
}

DirectHops VxlanBackend::direct_hops(const std::vector<const Peer*>& peers, int vtep_ifindex) {
  DirectHops hops;
  for (const Peer* p : peers) {
    if (hops.count(p->public_ip) != 0) continue;
    auto r = nl_.lookup_route(p->public_ip);
    if (r && !r->gateway && r->unicast && r->ifindex > 0 && r->ifindex != vtep_ifindex) {
      hops.emplace(p->public_ip, r->ifindex);
    }
  }
  return hops;
}

Result<ActualState> VxlanBackend::read_actual(int vtep_ifindex) {
  auto neighbors = nl_.dump_neighbors(vtep_ifindex);
  if (!neighbors) return neighbors.take_error();
  auto fdb = nl_.dump_fdb(vtep_ifindex);
  if (!fdb) return fdb.take_error();
  auto routes = nl_.dump_routes();
  if (!routes) return routes.take_error();
  return owned_state(std::move(neighbors).value(), std::move(fdb).value(), *routes, vtep_ifindex, network_);
}

void VxlanBackend::apply(const std::vector<Op>& ops, ReconcileReport& report) {
  std::unordered_set<std::string> failed_peers;  // their routes must wait for the next try
  for (std::size_t begin = 0, end = 0; begin < ops.size(); begin = end) {
    const Phase phase = ops[begin].phase;
    const auto phase_start = Clock::now();
    std::vector<Write> writes;
    std::vector<const Op*> sent;
    for (end = begin; end < ops.size() && ops[end].phase == phase; ++end) {
      const Op& op = ops[end];
      if (phase == Phase::set_routes && failed_peers.count(op.peer) != 0) {
        report.errors.push_back(to_string(op.write) + " for peer " + op.peer +
                                " held back: its neighbor/FDB entry failed");
        continue;
      }
      writes.push_back(op.write);
      sent.push_back(&op);
    }
    auto results = nl_.write(writes);
    for (std::size_t i = 0; i < sent.size(); ++i) {
      const Op& op = *sent[i];
      if (results[i]) {
        ++(op.write.action == WriteAction::upsert ? report.entries_set : report.entries_removed);
        spdlog::debug("{} ({})", to_string(op.write), owner_of(op));
        continue;
      }
      report.errors.push_back(results[i].error() + " (" + owner_of(op) + ")");
      if (report.errors.size() <= kDetailedErrors) spdlog::warn("{}", report.errors.back());
      if (phase == Phase::set_neighbors && !op.peer.empty()) failed_peers.insert(op.peer);
    }
    if (phase == Phase::set_routes) report.routes_took = since(phase_start);
  }
}

void VxlanBackend::log_skips(const std::vector<SkippedPeer>& skipped) {
  std::map<std::string, std::string> now;
  for (const auto& s : skipped) {
    now[s.name] = s.reason;
    auto it = logged_skips_.find(s.name);
    if (it == logged_skips_.end() || it->second != s.reason) spdlog::warn("skip peer {}: {}", s.name, s.reason);
  }
  for (const auto& [name, reason] : logged_skips_) {
    if (now.count(name) == 0) spdlog::info("peer {} is no longer skipped", name);
  }
  logged_skips_ = std::move(now);
}

}  // namespace weft
