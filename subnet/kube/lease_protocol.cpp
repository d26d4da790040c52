#include "subnet/kube/lease_protocol.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <type_traits>

#include "subnet/allocator.hpp"

namespace weft::kube {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::chrono::milliseconds kMaxPodCidrPoll{4000};
// A claim's catch-up watch: the API server ends it after this, and a quorum list decides.
constexpr std::chrono::seconds kCatchUpTimeout{10};

const NodeInfo* find_node(const NodeList& list, const std::string& name) {
  for (const auto& n : list.items) {
    if (n.name == name) return &n;
  }
  return nullptr;
}

// A Node's podCIDRs of the family (any length: the controller may hand out /23s); malformed ones ignored.
template <class Addr>
void add_pod_cidrs(const NodeInfo& n, std::vector<Prefix<Addr>>& out) {
  for (const auto& text : n.pod_cidrs) {
    if (auto p = Prefix<Addr>::parse(text.substr(0, 64))) out.push_back(*p);
  }
}

// The first other Node holding, claiming or having as podCIDR (full lists only) a subnet
// overlapping `subnet`, or "". Annotations that are not one of the network's subnets do not
// count: every peer skips them, and they must not keep anyone from leasing.
template <class Addr>
std::string other_holder(const NodeList& list, const std::string& own, const AnnotationKeys& keys,
                         const FamilyConfig<Addr>& net, const Prefix<Addr>& subnet) {
  for (const auto& n : list.items) {
    if (n.name == own) continue;
    std::vector<Prefix<Addr>> theirs;
    add_taken_subnets(n.annotations, keys, net, theirs);
    add_pod_cidrs(n, theirs);
    for (const auto& p : theirs) {
      if (p.overlaps(subnet)) return n.name;
    }
  }
  return "";
}

// What the allocator must avoid: other Nodes' leases and claims, and every Node's podCIDR
// (the controller assigned it, so it will be routed to that Node sooner or later).
template <class Addr>
std::vector<Prefix<Addr>> taken_in(const NodeList& list, const std::string& own, const AnnotationKeys& keys,
                                   const FamilyConfig<Addr>& net) {
  std::vector<Prefix<Addr>> taken;
  for (const auto& n : list.items) {
    if (n.name != own) add_taken_subnets(n.annotations, keys, net, taken);
    add_pod_cidrs(n, taken);
  }
  return taken;
}

// The lease's primary family: IPv4, or IPv6 in an IPv6-only cluster. Which annotations hold
// and claim it, where it goes in the Lease, and the net-conf.json keys errors name.
template <class Addr>
struct Family;

template <>
struct Family<Ipv4Addr> {
  static constexpr const char* kNetwork = "Network";
  static constexpr const char* kSubnetLen = "SubnetLen";
  static constexpr const char* kMaskFlag = "--node-cidr-mask-size";
  static const std::optional<Ipv4Prefix>& held(const OwnAnnotations& o) { return o.subnet; }
  static const std::optional<Ipv4Prefix>& claim(const OwnAnnotations& o) { return o.subnet_claim; }
  static const std::string& held_key(const AnnotationKeys& k) { return k.subnet; }
  static const std::string& claim_key(const AnnotationKeys& k) { return k.subnet_claim; }
  static std::optional<Ipv4Prefix>& of(Lease& l) { return l.subnet; }
  static const FamilyConfig<Ipv4Addr>& net(const LeaseSettings& s) { return *s.network; }
  static Result<std::optional<Ipv4Prefix>> pod_cidr(const NodeInfo& n, const LeaseSettings&) {
    return ipv4_pod_cidr(n);
  }
};

template <>
struct Family<Ipv6Addr> {
  static constexpr const char* kNetwork = "IPv6Network";
  static constexpr const char* kSubnetLen = "IPv6SubnetLen";
  static constexpr const char* kMaskFlag = "--node-cidr-mask-size (single-stack IPv6)";
  static const std::optional<Ipv6Prefix>& held(const OwnAnnotations& o) { return o.subnet_v6; }
  static const std::optional<Ipv6Prefix>& claim(const OwnAnnotations& o) { return o.subnet_v6_claim; }
  static const std::string& held_key(const AnnotationKeys& k) { return k.subnet_v6; }
  static const std::string& claim_key(const AnnotationKeys& k) { return k.subnet_v6_claim; }
  static std::optional<Ipv6Prefix>& of(Lease& l) { return l.subnet_v6; }
  static const FamilyConfig<Ipv6Addr>& net(const LeaseSettings& s) { return *s.network_v6; }
  // IPv6-only: podCIDRs without an IPv6 one come from a single-stack IPv4 controller, which will
  // never assign one; waiting for it would hang weftd silently.
  static Result<std::optional<Ipv6Prefix>> pod_cidr(const NodeInfo& n, const LeaseSettings& s) {
    auto p = ipv6_pod_cidr(n, s.network_v6);
    if (!p || *p || n.pod_cidrs.empty()) return p;
    std::string seen;
    for (const auto& text : n.pod_cidrs) seen += (seen.empty() ? "" : ", ") + text.substr(0, 64);
    return fail("node " + n.name + " has only IPv4 podCIDRs (" + seen +
                ") but weft's network is IPv6-only (\"EnableIPv4\": false): run kube-controller-manager with "
                "--cluster-cidr=<IPv6Network> --node-cidr-mask-size=" +
                std::to_string(s.network_v6->subnet_len) + ", or enable IPv4 in net-conf.json");
  }
};

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A watch event applied to Nodes by name. Watch events carry metadata only: a Node's
// podCIDRs from the list are kept (only the controller sets them, and never takes them back).
void apply_event(std::map<std::string, NodeInfo>& nodes, const WatchEvent& ev) {
  if (ev.type == WatchEventType::Deleted) {
    nodes.erase(ev.node.name);
    return;
  }
  auto& slot = nodes[ev.node.name];
  auto pod_cidrs = std::move(slot.pod_cidrs);
  slot = ev.node;
  if (slot.pod_cidrs.empty()) slot.pod_cidrs = std::move(pod_cidrs);
}

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

Error api_fail(const ApiError& e) { return fail(e.message); }

}  // namespace

Result<std::optional<Ipv4Prefix>> ipv4_pod_cidr(const NodeInfo& node) {
  std::string seen;
  for (const auto& text : node.pod_cidrs) {
    if (auto p = Ipv4Prefix::parse(text)) return std::optional<Ipv4Prefix>(*p);
    if (!Ipv6Prefix::parse(text))
      return fail("node " + node.name + " has a malformed podCIDR \"" + text.substr(0, 64) + "\"");
    seen += (seen.empty() ? "" : ", ") + text;
  }
  if (!seen.empty()) {
    return fail("node " + node.name + " has only IPv6 podCIDRs (" + seen + ") but weft's network is IPv4");
  }
  return std::optional<Ipv4Prefix>();
}

Result<std::optional<Ipv6Prefix>> ipv6_pod_cidr(const NodeInfo& node,
                                                const std::optional<FamilyConfig<Ipv6Addr>>& net) {
  for (const auto& text : node.pod_cidrs) {
    if (Ipv4Prefix::parse(text)) continue;
    auto p = Ipv6Prefix::parse(text);
    if (!p) return fail("node " + node.name + " has a malformed podCIDR \"" + text.substr(0, 64) + "\"");
    if (!net) {
      return fail("node " + node.name + " has the IPv6 podCIDR " + p->str() +
                  " but net-conf.json does not enable IPv6: set \"EnableIPv6\": true and \"IPv6Network\"");
    }
    if (!net->network.contains(*p) || p->length() != net->subnet_len) {
      return fail("node " + node.name + "'s IPv6 podCIDR " + p->str() + " is not a /" +
                  std::to_string(net->subnet_len) + " of IPv6Network " + net->network.str() +
                  ": make kube-controller-manager's --cluster-cidr and --node-cidr-mask-size-ipv6 (dual stack; "
                  "--node-cidr-mask-size for IPv6 alone) agree with net-conf.json");
    }
    return std::optional<Ipv6Prefix>(*p);
  }
  return std::optional<Ipv6Prefix>();
}

LeaseProtocol::LeaseProtocol(KubeClient& client, const RetryContext& retry, LeaseSettings settings)
    : client_(client), retry_(retry), s_(std::move(settings)), rng_(std::random_device{}()) {}

Result<Lease> LeaseProtocol::acquire(const NodeInfo& own, Lease base) {
  base.subnet.reset();
  base.subnet_v6.reset();
  if (!s_.network_v6) {
    base.vtep_mac_v6.reset();
    base.public_ip_v6.reset();
  }
  if (s_.network) {
    if (!base.public_ip || !base.vtep_mac)
      return fail("lease: the IPv4 lease needs an IPv4 public address and VTEP MAC");
    return acquire_in<Ipv4Addr>(own, base);
  }
  if (!s_.network_v6) return fail("lease: net-conf.json enables neither IPv4 nor IPv6");
  if (!base.public_ip_v6 || !base.vtep_mac_v6)
    return fail("lease: an IPv6-only lease needs an IPv6 public address (--public-ipv6) and the IPv6 VTEP's MAC");
  base.public_ip.reset();
  base.vtep_mac.reset();
  return acquire_in<Ipv6Addr>(own, base);
}

template <class Addr>
Result<Lease> LeaseProtocol::acquire_in(const NodeInfo& own, const Lease& base) {
  auto pod_cidr = Family<Addr>::pod_cidr(own, s_);
  if (!pod_cidr) return pod_cidr.take_error();
  switch (s_.source) {
    case SubnetSource::Lease:
      return by_annotations<Addr>(own, base);
    case SubnetSource::PodCidr: {
      if (*pod_cidr) return from_pod_cidr<Addr>(own, **pod_cidr, base);
      auto got = wait_for_pod_cidr<Addr>(std::nullopt, "SubnetSource is podCIDR");
      if (!got) return got.take_error();
      return from_pod_cidr<Addr>(**got, *Family<Addr>::pod_cidr(**got, s_).value(), base);
    }
    case SubnetSource::Auto:
      break;
  }
  if (*pod_cidr) return from_pod_cidr<Addr>(own, **pod_cidr, base);
  return auto_source<Addr>(own, base);
}

template <class Addr>
Result<Lease> LeaseProtocol::auto_source(const NodeInfo& own, const Lease& base) {
  auto mine = parse_own(own.annotations, s_.keys);
  const auto& held = Family<Addr>::held(mine);
  const auto& claim = Family<Addr>::claim(mine);
  if ((held && fits(*held)) || (claim && fits(*claim))) {
    return by_annotations<Addr>(own, base);  // an earlier run leased: never renumber under running pods
  }
  auto all = list("list nodes and their podCIDRs (SubnetSource auto)", true, true);
  if (!all) return all.take_error();
  std::string with_pod_cidr, with_lease;
  for (const auto& n : all->items) {
    if (n.name == s_.node_name) continue;
    if (with_pod_cidr.empty() && !n.pod_cidrs.empty()) with_pod_cidr = n.name;
    if (with_lease.empty() && has_lease_annotations(n.annotations, s_.keys)) with_lease = n.name;
  }
  Result<std::optional<NodeInfo>> got = std::optional<NodeInfo>();
  if (!with_pod_cidr.empty()) {
    spdlog::info(
        "SubnetSource auto: node {} has a spec.podCIDR, so kube-controller-manager assigns them in this cluster: "
        "waiting for ours",
        with_pod_cidr);
    got = wait_for_pod_cidr<Addr>(std::nullopt, "SubnetSource auto, and node " + with_pod_cidr + " has a podCIDR");
  } else if (!with_lease.empty()) {
    spdlog::info("SubnetSource auto: no Node has a spec.podCIDR and node {} holds a weft lease: leasing", with_lease);
    return by_annotations<Addr>(own, base, std::move(*all));
  } else {
    got = wait_for_pod_cidr<Addr>(s_.auto_wait, "SubnetSource auto, and no Node has a podCIDR or a weft lease yet");
  }
  if (!got) return got.take_error();
  if (*got) return from_pod_cidr<Addr>(**got, *Family<Addr>::pod_cidr(**got, s_).value(), base);
  spdlog::warn(
      "SubnetSource auto: no spec.podCIDR for node {} after {} ms and no other Node has one: leasing from "
      "annotations (set SubnetSource to \"podCIDR\" if kube-controller-manager assigns podCIDRs here)",
      s_.node_name, s_.auto_wait.count());
  return by_annotations<Addr>(own, base);
}

template <class Addr>
Result<std::optional<NodeInfo>> LeaseProtocol::wait_for_pod_cidr(std::optional<std::chrono::milliseconds> limit,
                                                                 const std::string& why) {
  auto start = Clock::now();
  auto next_log = start;
  auto pace = s_.pod_cidr_poll;
  for (;;) {
    auto node = retry(retry_, "lease: read node " + s_.node_name, [&] { return client_.get_node(s_.node_name); });
    if (!node) return api_fail(node.error());
    auto p = Family<Addr>::pod_cidr(*node, s_);
    if (!p) return p.take_error();
    if (*p) {
      if (Clock::now() > start + s_.pod_cidr_poll)
        spdlog::info("spec.podCIDR {} of node {} arrived after {:.1f} s", (*p)->str(), s_.node_name,
                     seconds_since(start));
      report_waiting("");
      return std::optional<NodeInfo>(std::move(*node));
    }
    if (limit && Clock::now() >= start + *limit) {
      report_waiting("");
      return std::optional<NodeInfo>();
    }
    if (Clock::now() >= next_log) {
      auto msg = fmt::format(
          "waiting for spec.podCIDR of node {} ({}), {:.0f} s so far: kube-controller-manager has not assigned one "
          "yet (it does when run with --allocate-node-cidrs, as kubeadm's --pod-network-cidr sets)",
          s_.node_name, why, seconds_since(start));
      spdlog::warn("{}", msg);
      report_waiting(msg);
      next_log += s_.wait_log_every;
    }
    auto until_log = std::chrono::duration_cast<std::chrono::milliseconds>(next_log - Clock::now());
    if (!retry_.stop.wait_for(std::max(std::min(pace, until_log), std::chrono::milliseconds(1))))
      return fail("lease: stopped");
    // A whole cluster may wait at once (the controller is down): GETs slow down to one per
    // kMaxPodCidrPoll per node.
    pace = std::min(pace * 2, std::max(s_.pod_cidr_poll, kMaxPodCidrPoll));
  }
}

void LeaseProtocol::report_waiting(const std::string& why) {
  if (s_.waiting) s_.waiting(why);
}

template <class Addr>
Result<Lease> LeaseProtocol::from_pod_cidr(const NodeInfo& own, Prefix<Addr> pod_cidr, const Lease& base) {
  using F = Family<Addr>;
  const auto& net = F::net(s_);
  if (!net.network.contains(pod_cidr)) {
    return fail("podCIDR " + pod_cidr.str() + " of node " + own.name + " is outside the network " + net.network.str() +
                " of net-conf.json: make kube-controller-manager's --cluster-cidr (kubeadm --pod-network-cidr) and "
                "net-conf.json's " +
                F::kNetwork + " the same");
  }
  if (pod_cidr.length() != net.subnet_len) {
    return fail("podCIDR " + pod_cidr.str() + " of node " + own.name + " is a /" + std::to_string(pod_cidr.length()) +
                " but net-conf.json's " + F::kSubnetLen + " is " + std::to_string(net.subnet_len) +
                ": peers accept only /" + F::kSubnetLen + " subnets; make kube-controller-manager's " + F::kMaskFlag +
                " and " + F::kSubnetLen + " the same");
  }
  Lease lease = base;
  F::of(lease) = pod_cidr;
  auto mine = parse_own(own.annotations, s_.keys);
  const auto& held = F::held(mine);
  const std::string& key = F::held_key(s_.keys);
  if (held && *held != pod_cidr && fits_network(*held, whole_network(net))) {
    // Pods here have addresses in the published subnet, and peers route it here: keep it.
    F::of(lease) = *held;
    problem_ = "node " + own.name + " publishes subnet " + held->str() + " (" + key + ") but its spec.podCIDR is " +
               pod_cidr.str() + "; weft keeps serving " + held->str() +
               " so the pods running here keep their addresses. To move to the podCIDR: drain the node, kubectl "
               "annotate node " +
               own.name + " " + key + "- " + s_.keys.claimed_at + "-, restart weftd";
    spdlog::error("{}", problem_);
  }
  if constexpr (std::is_same_v<Addr, Ipv4Addr>) {
    if (auto st = add_v6(own, lease, true); !st) return st.take_error();
  }
  if (auto st = publish(own, lease); !st) return st.take_error();
  if (problem_.empty()) spdlog::info("lease {} from spec.podCIDR of node {}", pod_cidr.str(), own.name);
  return lease;
}

Status LeaseProtocol::add_v6(const NodeInfo& own, Lease& lease, bool v4_from_pod_cidr) {
  auto pod6 = ipv6_pod_cidr(own, s_.network_v6);
  if (!s_.network_v6 || !lease.vtep_mac_v6) {
    if (!pod6) spdlog::warn("{}; weft carries IPv4 only", pod6.error());  // a dual-stack controller, v4-only weft
    return ok_status();
  }
  if (!pod6) return pod6.take_error();
  if (*pod6) {
    lease.subnet_v6 = **pod6;
    return ok_status();
  }
  if (v4_from_pod_cidr) {  // not half a dual-stack node: the controller will not add one later
    return fail("node " + own.name + "'s spec.podCIDRs " + own.pod_cidrs.front() +
                " has no IPv6 entry but net-conf.json enables IPv6: run kube-controller-manager dual stack "
                "(--cluster-cidr=<IPv4 Network>,<IPv6Network> --node-cidr-mask-size-ipv6=" +
                std::to_string(s_.network_v6->subnet_len) + ") or set \"EnableIPv6\": false");
  }
  auto paired = paired_subnet_v6(*lease.subnet, *s_.network, *s_.network_v6);
  if (!paired) return paired.take_error();
  lease.subnet_v6 = *paired;
  return ok_status();
}

template <class Addr>
bool LeaseProtocol::fits(const Prefix<Addr>& subnet) const {
  return fits_network(subnet, Family<Addr>::net(s_));
}

Result<NodeList> LeaseProtocol::list(const std::string& why, bool with_spec, bool cached) {
  auto r = retry(retry_, "lease: " + why, [&] {
    if (cached) return client_.list_nodes_cached(with_spec);
    return with_spec ? client_.list_nodes_with_spec() : client_.list_nodes();
  });
  if (!r) return api_fail(r.error());
  return std::move(*r);
}

Result<NodeList> LeaseProtocol::as_of_write(NodeList listed, const std::string& rv) {
  std::map<std::string, NodeInfo> nodes;
  for (auto& n : listed.items) nodes.emplace(n.name, std::move(n));
  std::string at = listed.resource_version;
  auto caught_up = client_.watch_nodes_until(listed.resource_version, kCatchUpTimeout, [&](const WatchEvent& ev) {
    if (ev.type == WatchEventType::Bookmark) return false;
    apply_event(nodes, ev);
    at = ev.node.resource_version;
    return ev.node.name == s_.node_name && ev.node.resource_version == rv;
  });
  if (!caught_up || !caught_up->done) {
    spdlog::info("lease: the watch from the node list did not reach our write ({}): listing from etcd instead",
                 caught_up ? "the stream ended first" : caught_up.error().message);
    return list("verify claim");
  }
  NodeList out{at, {}};
  out.items.reserve(nodes.size());
  for (auto& [name, n] : nodes) out.items.push_back(std::move(n));
  return out;
}

Status LeaseProtocol::publish(const NodeInfo& own, const Lease& lease) {
  auto mine = parse_own(own.annotations, s_.keys);
  auto created = parse_rfc3339_ms(own.creation_timestamp);
  std::int64_t claimed = now_ms();
  const bool kept = lease.subnet ? mine.subnet == lease.subnet : mine.subnet_v6 == lease.subnet_v6;
  if (kept) {
    // Kept: keep its claim time (one published before claimed-at existed dates from the Node's
    // creation, the earliest it can be). Never later than now.
    claimed = std::min(claimed, mine.claimed_at_ms.value_or(created.value_or(claimed)));
  }
  auto patch = lease_patch(lease, s_.backend, s_.keys, claimed);
  Annotations published;
  for (const auto& [k, v] : patch) {
    if (v) published[k] = *v;
  }
  claim_rank_ = weft::claim_rank(own.creation_timestamp, published, s_.keys);
  bool same = true;
  for (const auto& [k, v] : patch) {
    auto it = own.annotations.find(k);
    same &= v ? (it != own.annotations.end() && it->second == *v) : it == own.annotations.end();
  }
  if (same) return ok_status();
  std::string rv = own.resource_version;
  Annotations now = own.annotations;
  for (int i = 0;; ++i) {
    auto r = retry(retry_, "lease: publish", [&] {
      return client_.patch_node_annotations(s_.node_name, rv, without_absent_deletes(patch, now));
    });
    if (r) return ok_status();
    if (r.error().kind != ApiErrorKind::Conflict || i >= 20) return api_fail(r.error());
    // Someone else wrote our Node (kubelet, a second weftd): re-read; our claim must still be there.
    auto fresh = retry(retry_, "lease: re-read own node", [&] { return client_.get_node(s_.node_name); });
    if (!fresh) return api_fail(fresh.error());
    auto now_mine = parse_own(fresh->annotations, s_.keys);
    bool held = lease.subnet ? now_mine.subnet_claim == lease.subnet || now_mine.subnet == lease.subnet
                             : now_mine.subnet_v6_claim == lease.subnet_v6 || now_mine.subnet_v6 == lease.subnet_v6;
    bool still_ours = held || !own.pod_cidrs.empty() || !fresh->pod_cidrs.empty();
    if (!still_ours)
      return fail("lease: the claim on " + (lease.subnet ? lease.subnet->str() : lease.subnet_v6->str()) + " of node " +
                  s_.node_name + " was removed by someone else while weft confirmed it");
    rv = fresh->resource_version;
    now = fresh->annotations;
  }
}

Status LeaseProtocol::wait_after_conflict(int round) {
  auto cap = s_.conflict_backoff.count() << std::min(round, 5);
  std::chrono::milliseconds d(std::uniform_int_distribution<std::int64_t>(0, cap)(rng_));
  if (!retry_.stop.wait_for(d)) return fail("lease: stopped");
  return ok_status();
}

template <class Addr>
Result<Lease> LeaseProtocol::by_annotations(const NodeInfo& own_get, const Lease& base,
                                            std::optional<NodeList> listed) {
  using F = Family<Addr>;
  const auto& net = F::net(s_);
  const std::string& claim_key = F::claim_key(s_.keys);
  // Keeping a lease needs only metadata; picking one needs every Node's podCIDR (a full list).
  auto first = parse_own(own_get.annotations, s_.keys);
  bool keeping = F::held(first) && fits(*F::held(first));
  for (int round = 0;; ++round) {
    if (retry_.stop.stopped()) return fail("lease: stopped");
    // The first round lists from the watch cache (one request, no etcd read) and takes our own
    // Node from the GET, which is current; a claim is still verified against etcd, and every
    // later round lists from etcd.
    const bool from_cache = round == 0;
    Result<NodeList> before = fail("unlisted");
    if (listed && !keeping) {
      before = std::move(*std::exchange(listed, std::nullopt));
    } else {
      before = list(keeping ? "list nodes" : "list nodes and their podCIDRs", !keeping, from_cache);
    }
    if (!before) return before.take_error();
    const NodeInfo* own = from_cache ? &own_get : find_node(*before, s_.node_name);
    if (!own) return fail("node " + s_.node_name + " is not in the node list: was it deleted?");
    auto mine = parse_own(own->annotations, s_.keys);
    const auto& held = F::held(mine);
    const auto& held_claim = F::claim(mine);
    Lease lease = base;

    if (held && fits(*held)) {
      // Confirmed by an earlier run: keep it, whatever anyone else claims now.
      if (auto other = other_holder(*before, s_.node_name, s_.keys, net, *held); !other.empty()) {
        spdlog::error(
            "lease {}: node {} holds, claims or has as podCIDR an overlapping subnet; keeping ours (a confirmed "
            "lease is never withdrawn); peers route it to the earlier claim (README, Subnet ownership)",
            held->str(), other);
      }
      F::of(lease) = *held;
      if constexpr (std::is_same_v<Addr, Ipv4Addr>) {
        if (auto st = add_v6(*own, lease, false); !st) return st.take_error();
      }
      if (auto st = publish(*own, lease); !st) return st.take_error();
      spdlog::info("lease {} kept from an earlier run", held->str());
      last_list_ = std::move(*before);
      return lease;
    }
    if (keeping) {  // our lease went away since the GET: list again, in full this time
      keeping = false;
      continue;
    }
    if (held) spdlog::warn("lease {} no longer fits the network configuration; leasing anew", held->str());

    NodeInfo claimed = *own;
    Prefix<Addr> subnet;
    if (held_claim && fits(*held_claim)) {
      subnet = *held_claim;  // written by a run that stopped before verifying
      // Verified against etcd as of now, not as of the claim: it may be old, and a rival that
      // skipped the protocol since (a podCIDR, a hand edit) must be seen. Rare: a crash mid-lease.
      if (from_cache) {
        auto after = list("verify claim");
        if (!after) return after.take_error();
        before = std::move(after);
      }
    } else {
      auto pick = pick_free_subnet(net, taken_in(*before, s_.node_name, s_.keys, net), rng_);
      if (!pick) return pick.take_error();
      subnet = *pick;
      ++attempts_;
      AnnotationPatch claim{{claim_key, subnet.str()}};
      if (held) claim[F::held_key(s_.keys)] = std::nullopt;
      auto r = retry(retry_, "lease: claim",
                     [&] { return client_.patch_node_annotations(s_.node_name, own->resource_version, claim); });
      if (!r && r.error().kind == ApiErrorKind::Conflict) continue;  // our Node changed under us: start over
      if (!r) return api_fail(r.error());
      claimed = std::move(*r);
      auto after = as_of_write(std::move(*before), claimed.resource_version);
      if (!after) return after.take_error();
      before = std::move(after);
    }

    auto other = other_holder(*before, s_.node_name, s_.keys, net, subnet);
    if (other.empty()) {
      F::of(lease) = subnet;
      if constexpr (std::is_same_v<Addr, Ipv4Addr>) {
        if (auto st = add_v6(claimed, lease, false); !st) return st.take_error();
      }
      if (auto st = publish(claimed, lease); !st) return st.take_error();
      spdlog::info("lease {} confirmed after {} claim(s)", subnet.str(), attempts_);
      last_list_ = std::move(*before);
      return lease;
    }
    ++conflicts_;
    spdlog::info("lease: node {} also claims {}; withdrawing our claim and retrying", other, subnet.str());
    auto w = retry(retry_, "lease: withdraw claim", [&] {
      return client_.patch_node_annotations(s_.node_name, "", {{claim_key, std::nullopt}});
    });
    if (!w) return api_fail(w.error());
    if (auto st = wait_after_conflict(round); !st) return st.take_error();
  }
}

}  // namespace weft::kube
