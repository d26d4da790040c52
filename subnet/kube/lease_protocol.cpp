#include "subnet/kube/lease_protocol.hpp"

#include <spdlog/spdlog.h>

#include "subnet/allocator.hpp"

namespace weft::kube {
namespace {

const NodeInfo* find_node(const NodeList& list, const std::string& name) {
  for (const auto& n : list.items) {
    if (n.name == name) return &n;
  }
  return nullptr;
}

// The first other Node holding or claiming a subnet overlapping `subnet`, or "".
std::string other_holder(const NodeList& list, const std::string& own, const AnnotationKeys& keys,
                         const Ipv4Prefix& subnet) {
  for (const auto& n : list.items) {
    if (n.name == own) continue;
    std::vector<Ipv4Prefix> theirs;
    add_taken_subnets(n.annotations, keys, theirs);
    for (const auto& p : theirs) {
      if (p.overlaps(subnet)) return n.name;
    }
  }
  return "";
}

std::vector<Ipv4Prefix> taken_by_others(const NodeList& list, const std::string& own, const AnnotationKeys& keys) {
  std::vector<Ipv4Prefix> taken;
  for (const auto& n : list.items) {
    if (n.name != own) add_taken_subnets(n.annotations, keys, taken);
  }
  return taken;
}

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

LeaseProtocol::LeaseProtocol(KubeClient& client, const RetryContext& retry, LeaseSettings settings)
    : client_(client), retry_(retry), s_(std::move(settings)), rng_(std::random_device{}()) {}

Result<Lease> LeaseProtocol::acquire(const NodeInfo& own, Ipv4Addr public_ip, Mac vtep_mac) {
  Lease base;
  base.public_ip = public_ip;
  base.vtep_mac = vtep_mac;
  auto pod_cidr = ipv4_pod_cidr(own);
  if (!pod_cidr) return pod_cidr.take_error();
  if (*pod_cidr) return from_pod_cidr(own, **pod_cidr, base);
  return by_annotations(base);
}

Result<Lease> LeaseProtocol::from_pod_cidr(const NodeInfo& own, Ipv4Prefix pod_cidr, const Lease& base) {
  if (!s_.network.network.contains(pod_cidr)) {
    return fail("podCIDR " + pod_cidr.str() + " of node " + own.name + " is outside the network " +
                s_.network.network.str() +
                " of net-conf.json: make kube-controller-manager's --cluster-cidr "
                "(kubeadm --pod-network-cidr) and net-conf.json's Network the same");
  }
  Lease lease = base;
  lease.subnet = pod_cidr;
  if (auto st = publish(own, lease); !st) return st.take_error();
  spdlog::info("lease {} from spec.podCIDR of node {}", pod_cidr.str(), own.name);
  return lease;
}

bool LeaseProtocol::fits(const Ipv4Prefix& subnet) const {
  return s_.network.network.contains(subnet) && subnet.length() == s_.network.subnet_len &&
         subnet.address() >= s_.network.subnet_min && subnet.address() <= s_.network.subnet_max;
}

Result<NodeList> LeaseProtocol::list(const std::string& why) {
  auto r = retry(retry_, "lease: " + why, [&] { return client_.list_nodes(); });
  if (!r) return api_fail(r.error());
  return std::move(*r);
}

Status LeaseProtocol::publish(const NodeInfo& own, const Lease& lease) {
  auto patch = lease_patch(lease, s_.backend, s_.keys);
  bool same = true;
  for (const auto& [k, v] : patch) {
    auto it = own.annotations.find(k);
    same &= v ? (it != own.annotations.end() && it->second == *v) : it == own.annotations.end();
  }
  if (same) return ok_status();
  std::string rv = own.resource_version;
  for (int i = 0;; ++i) {
    auto r = retry(retry_, "lease: publish", [&] { return client_.patch_node_annotations(s_.node_name, rv, patch); });
    if (r) return ok_status();
    if (r.error().kind != ApiErrorKind::Conflict || i >= 20) return api_fail(r.error());
    // Someone else wrote our Node (kubelet, a second weftd): re-read; our claim must still be there.
    auto fresh = retry(retry_, "lease: re-read own node", [&] { return client_.get_node(s_.node_name); });
    if (!fresh) return api_fail(fresh.error());
    auto mine = parse_own(fresh->annotations, s_.keys);
    bool still_ours = (mine.subnet_claim && *mine.subnet_claim == lease.subnet) ||
                      (mine.subnet && *mine.subnet == lease.subnet) || !own.pod_cidrs.empty();
    if (!still_ours)
      return fail("lease: the claim on " + lease.subnet.str() + " of node " + s_.node_name +
                  " was removed by someone else while weft confirmed it");
    rv = fresh->resource_version;
  }
}

Status LeaseProtocol::wait_after_conflict(int round) {
  auto cap = s_.conflict_backoff.count() << std::min(round, 5);
  std::chrono::milliseconds d(std::uniform_int_distribution<std::int64_t>(0, cap)(rng_));
  if (!retry_.stop.wait_for(d)) return fail("lease: stopped");
  return ok_status();
}

Result<Lease> LeaseProtocol::by_annotations(const Lease& base) {
  for (int round = 0;; ++round) {
    if (retry_.stop.stopped()) return fail("lease: stopped");
    auto before = list("list nodes");
    if (!before) return before.take_error();
    const NodeInfo* own = find_node(*before, s_.node_name);
    if (!own) return fail("node " + s_.node_name + " is not in the node list: was it deleted?");
    auto mine = parse_own(own->annotations, s_.keys);
    Lease lease = base;

    if (mine.subnet && fits(*mine.subnet)) {
      // Confirmed by an earlier run: keep it, whatever anyone else claims now.
      if (auto other = other_holder(*before, s_.node_name, s_.keys, *mine.subnet); !other.empty()) {
        spdlog::error(
            "lease {}: node {} holds or claims an overlapping subnet; keeping ours (a confirmed lease is "
            "never withdrawn); peers refuse both until one is removed",
            mine.subnet->str(), other);
      }
      lease.subnet = *mine.subnet;
      if (auto st = publish(*own, lease); !st) return st.take_error();
      spdlog::info("lease {} kept from an earlier run", lease.subnet.str());
      last_list_ = std::move(*before);
      return lease;
    }
    if (mine.subnet)
      spdlog::warn("lease {} no longer fits the network configuration; leasing anew", mine.subnet->str());

    NodeInfo claimed = *own;
    Ipv4Prefix subnet;
    if (mine.subnet_claim && fits(*mine.subnet_claim)) {
      subnet = *mine.subnet_claim;  // written by a run that stopped before verifying; `before` is after it
    } else {
      auto pick = pick_free_subnet(s_.network, taken_by_others(*before, s_.node_name, s_.keys), rng_);
      if (!pick) return pick.take_error();
      subnet = *pick;
      ++attempts_;
      AnnotationPatch claim{{s_.keys.subnet_claim, subnet.str()}};
      if (mine.subnet) claim[s_.keys.subnet] = std::nullopt;
      auto r = retry(retry_, "lease: claim",
                     [&] { return client_.patch_node_annotations(s_.node_name, own->resource_version, claim); });
      if (!r && r.error().kind == ApiErrorKind::Conflict) continue;  // our Node changed under us: start over
      if (!r) return api_fail(r.error());
      claimed = std::move(*r);
      auto after = list("verify claim");
      if (!after) return after.take_error();
      before = std::move(after);
    }

    auto other = other_holder(*before, s_.node_name, s_.keys, subnet);
    if (other.empty()) {
      lease.subnet = subnet;
      if (auto st = publish(claimed, lease); !st) return st.take_error();
      spdlog::info("lease {} confirmed after {} claim(s)", subnet.str(), attempts_);
      last_list_ = std::move(*before);
      return lease;
    }
    ++conflicts_;
    spdlog::info("lease: node {} also claims {}; withdrawing our claim and retrying", other, subnet.str());
    auto w = retry(retry_, "lease: withdraw claim", [&] {
      return client_.patch_node_annotations(s_.node_name, "", {{s_.keys.subnet_claim, std::nullopt}});
    });
    if (!w) return api_fail(w.error());
    if (auto st = wait_after_conflict(round); !st) return st.take_error();
  }
}

}  // namespace weft::kube
