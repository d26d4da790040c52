#include "backend/vxlan/vxlan_backend.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
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
    : VxlanBackend(nl, cluster_network, std::nullopt, direct_routing) {}

VxlanBackend::VxlanBackend(Netlink& nl, std::optional<Ipv4Prefix> cluster_network, std::optional<Ipv6Prefix> network_v6,
                           bool direct_routing)
    : nl_(nl), network_(cluster_network), direct_routing_(direct_routing), network_v6_(network_v6) {}

VxlanBackend::~VxlanBackend() { unwatch(); }

Result<Vtep> VxlanBackend::ensure_device(const VtepSpec& spec) {
  spec_ = spec;
  auto vtep = ensure_vtep_now(nullptr);
  if (!vtep) return vtep;
  if (Status st = ensure_address(nullptr); !st) return st.take_error();
  return vtep;
}

Result<Vtep> VxlanBackend::ensure_device_v6(VtepSpec spec) {
  if (!network_v6_) return fail("no IPv6 network configured: the IPv6 VTEP is only made with IPv6 enabled");
  spec.ipv6 = true;
  auto port = [](const VtepSpec& s) { return s.port == 0 ? 8472 : s.port; };
  if (!spec.local_ip6 && spec_ && spec_->vni == spec.vni && port(*spec_) == port(spec)) {
    return fail("the IPv6 VTEP over an IPv4 underlay needs another VNI or port than " + vtep_name(*spec_) + " (VNI " +
                std::to_string(spec.vni) + ", port " + std::to_string(port(spec)) +
                "): the kernel refuses two VXLAN devices with the same VNI, port and local address family");
  }
  spec6_ = spec;
  auto vtep = ensure_vtep6_now(nullptr);
  if (!vtep) return vtep;
  if (Status st = ensure_address6(nullptr); !st) return st.take_error();
  return vtep;
}

Status VxlanBackend::set_lease(const Lease& own) {
  if (network_ && (!own.subnet || !network_->contains(*own.subnet))) {
    return fail("own subnet " + (own.subnet ? own.subnet->str() : std::string("(none)")) + " is not inside network " +
                network_->str() + ": the lease and net-conf.json's Network disagree");
  }
  if (network_v6_ && (!own.subnet_v6 || !network_v6_->contains(*own.subnet_v6))) {
    return fail("own IPv6 subnet " + (own.subnet_v6 ? own.subnet_v6->str() : std::string("(none)")) +
                " is not inside IPv6 network " + network_v6_->str() +
                ": the lease and net-conf.json's IPv6Network disagree");
  }
  lease_ = own;
  if (Status st = ensure_address(nullptr); !st) return st;
  return ensure_address6(nullptr);
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
  if ((network_ && !spec_) || !lease_) {
    report.errors.emplace_back("reconcile called before ensure_device and set_lease");
    return finish();
  }
  if (!network_) {  // IPv6-only: the IPv6 half is every peer's whole
    PeerCheck check6 = check_peers_v6_only(peers, *lease_, *network_v6_);
    log_skips(check6.skipped);
    report.skipped = std::move(check6.skipped);
    reconcile_v6(check6.accepted, report);
    report.peers_programmed = report.peers_programmed_v6;
    return finish();
  }
  PeerCheck check = check_peers(peers, *lease_, *network_);
  PeerCheck check6;
  if (network_v6_) {
    check6 = check_peers_v6(check.accepted, *lease_, *network_v6_);
    check.skipped.insert(check.skipped.end(), check6.skipped.begin(), check6.skipped.end());
    std::stable_sort(check.skipped.begin(), check.skipped.end(),
                     [](const SkippedPeer& a, const SkippedPeer& b) { return a.name < b.name; });
  }
  log_skips(check.skipped);
  report.skipped = std::move(check.skipped);
  if (reconcile_v4(check.accepted, report) && network_v6_) reconcile_v6(check6.accepted, report);
  return finish();
}

bool VxlanBackend::reconcile_v4(const std::vector<const Peer*>& accepted, ReconcileReport& report) {
  auto vtep = ensure_vtep_now(&report);
  if (!vtep) {
    report.errors.push_back(vtep.error());
    return false;
  }
  if (Status st = ensure_address(&report); !st) report.errors.push_back(st.error());
  const DirectHops direct = direct_routing_ ? direct_hops(accepted, vtep->ifindex) : DirectHops{};
  const DesiredState desired = desired_state(accepted, vtep->ifindex, direct);
  auto actual = read_actual(vtep->ifindex);
  if (!actual) {  // never write from a partial picture of the kernel
    report.errors.push_back(actual.error());
    return false;
  }
  apply(diff(desired, *actual), report);
  report.peers_programmed = static_cast<int>(accepted.size());
  return true;
}

void VxlanBackend::reconcile_v6(const std::vector<const Peer*>& accepted, ReconcileReport& report) {
  if (!spec6_) {
    report.errors.emplace_back("IPv6 network " + network_v6_->str() + " configured but ensure_device_v6 not called");
    return;
  }
  auto vtep = ensure_vtep6_now(&report);
  if (!vtep) {
    report.errors.push_back(vtep.error());
    return;
  }
  if (Status st = ensure_address6(&report); !st) report.errors.push_back(st.error());
  const DirectHops6 direct = direct_routing_ ? direct_hops6(accepted, vtep->ifindex) : DirectHops6{};
  const DesiredState6 desired = desired_state_v6(accepted, vtep->ifindex, direct);
  auto actual = read_actual6(vtep->ifindex);
  if (!actual) {  // never write from a partial picture of the kernel
    report.errors.push_back(actual.error());
    return;
  }
  apply(diff_v6(desired, *actual), report);
  report.peers_programmed_v6 = static_cast<int>(desired.peers.size());
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
  if (e.own) return std::nullopt;                                       // our own write coming back
  const int vtep = watched_ifindex_.load(std::memory_order_relaxed);    // 0 in an IPv6-only cluster
  const int vtep6 = watched_ifindex6_.load(std::memory_order_relaxed);  // 0 without an IPv6 network
  if (vtep == 0 && vtep6 == 0) return std::nullopt;
  bool ours = false;
  if (e.ipv6) {  // IPv6 addresses, neighbors and routes concern weft-v6.<VNI> only
    if (vtep6 == 0) return std::nullopt;
    ours = e.ifindex == vtep6;
    if (e.kind == KernelEvent::Kind::route) {
      ours = e.dst6 && network_v6_->contains(*e.dst6) && (e.ifindex == vtep6 || e.protocol == kWeftRouteProtocol);
    }
  } else if (e.kind == KernelEvent::Kind::route) {
    ours = e.dst && network_ && network_->contains(*e.dst) && (e.ifindex == vtep || e.protocol == kWeftRouteProtocol);
  } else if (e.kind == KernelEvent::Kind::link || e.kind == KernelEvent::Kind::fdb) {
    ours = (vtep != 0 && e.ifindex == vtep) || (vtep6 != 0 && e.ifindex == vtep6);  // 0: no device
  } else {
    ours = vtep != 0 && e.ifindex == vtep;
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
  if (!vtep_ || !lease_ || !lease_->subnet) return ok_status();
  const Address want{vtep_->ifindex, lease_->subnet->address(), 32};
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

Result<Vtep> VxlanBackend::ensure_vtep6_now(ReconcileReport* report) {
  std::optional<Mac> last_mac;
  if (vtep6_) last_mac = vtep6_->mac;
  VtepAction action = VtepAction::kept;
  auto vtep = ensure_vtep(nl_, *spec6_, last_mac, &action);
  if (!vtep) return vtep;
  if (report && (action == VtepAction::created || action == VtepAction::recreated)) report->device_recreated = true;
  vtep6_ = *vtep;
  watched_ifindex6_.store(vtep->ifindex, std::memory_order_relaxed);
  return vtep;
}

Status VxlanBackend::ensure_address6(ReconcileReport* report) {
  if (!vtep6_ || !lease_ || !lease_->subnet_v6) return ok_status();
  static const Ipv6Prefix kLinkLocal = Ipv6Prefix::parse("fe80::/10").value();
  const Address6 want{vtep6_->ifindex, lease_->subnet_v6->address(), 128};
  auto have = nl_.dump_addresses6(vtep6_->ifindex);
  if (!have) return have.take_error();
  std::vector<Write> writes;
  bool present = false;
  for (const Address6& a : *have) {
    if (a == want) {
      present = true;
    } else if (!kLinkLocal.contains(a.ip)) {  // the kernel's own fe80:: address stays
      writes.push_back({WriteAction::remove, a});
    }
  }
  if (!present) writes.push_back({WriteAction::upsert, want});
  auto results = nl_.write(writes);
  for (std::size_t i = 0; i < writes.size(); ++i) {
    if (!results[i]) return results[i].take_error();
    spdlog::info("VTEP {}: {}", vtep6_->name, to_string(writes[i]));
    if (report) ++(writes[i].action == WriteAction::upsert ? report->entries_set : report->entries_removed);
  }
  return ok_status();
}

Result<ActualState6> VxlanBackend::read_actual6(int vtep_ifindex) {
  auto neighbors = nl_.dump_neighbors6(vtep_ifindex);
  if (!neighbors) return neighbors.take_error();
  auto fdb = nl_.dump_fdb(vtep_ifindex);
  if (!fdb) return fdb.take_error();
  auto routes = nl_.dump_routes6();
  if (!routes) return routes.take_error();
  drop_own_address_route(*routes, lease_->subnet_v6->address());
  return owned_state(std::move(neighbors).value(), std::move(fdb).value(), *routes, vtep_ifindex, *network_v6_);
}

DirectHops VxlanBackend::direct_hops(const std::vector<const Peer*>& peers, int vtep_ifindex) {
  DirectHops hops;
  for (const Peer* p : peers) {
    if (hops.count(*p->public_ip) != 0) continue;
    auto r = nl_.lookup_route(*p->public_ip);
    if (r && !r->gateway && r->unicast && r->ifindex > 0 && r->ifindex != vtep_ifindex) {
      hops.emplace(*p->public_ip, r->ifindex);
    }
  }
  return hops;
}

// Over an IPv6 underlay only: a peer whose IPv6 VXLAN rides IPv4 has no IPv6 next hop.
DirectHops6 VxlanBackend::direct_hops6(const std::vector<const Peer*>& peers, int vtep_ifindex) {
  DirectHops6 hops;
  for (const Peer* p : peers) {
    if (!p->public_ip_v6 || hops.count(*p->public_ip_v6) != 0) continue;
    auto r = nl_.lookup_route6(*p->public_ip_v6);
    if (r && !r->gateway && r->unicast && r->ifindex > 0 && r->ifindex != vtep_ifindex) {
      hops.emplace(*p->public_ip_v6, r->ifindex);
    }
  }
  return hops;
}

Result<ActualState> VxlanBackend::read_actual(int vtep_ifindex) {
  auto neighbors = nl_.dump_neighbors(vtep_ifindex);
  if (!neighbors) return neighbors.take_error();
  auto fdb = nl_.dump_fdb(vtep_ifindex);
  if (!fdb) return fdb.take_error();
  // Entries with an IPv6 remote on the IPv4 VTEP were never weft's (the dump once dropped
  // them): left alone, as before.
  std::erase_if(*fdb, [](const FdbEntry& f) { return f.dst.is_v6(); });
  auto routes = nl_.dump_routes();
  if (!routes) return routes.take_error();
  return owned_state(std::move(neighbors).value(), std::move(fdb).value(), *routes, vtep_ifindex, *network_);
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
