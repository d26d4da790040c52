#pragma once
// LeaseProtocol: our own lease, from the source net-conf.json's SubnetSource names (README,
// "Subnet ownership"):
//  * podCIDR: spec.podCIDR, waiting (a log line every few seconds) until the controller
//    assigns one;
//  * lease: write-then-verify through annotations (DESIGN.md, "Lease protocol"), in two steps
//    so peers never route a subnet that may still be withdrawn:
//     1. list; keep our confirmed lease (weft.io/subnet) if it still fits the network;
//     2. else list in full (spec too) and claim a random subnet that no Node holds, claims or
//        has as spec.podCIDR (weft.io/subnet-claim, resourceVersion precondition);
//     3. see the Nodes as of the claim (the list brought forward by a watch up to the claim's
//        own event; a quorum list if that fails): if another Node holds or claims an
//        overlapping subnet, withdraw the claim,
//        wait a short random time, go to 1; otherwise confirm: one patch sets weft.io/subnet,
//        claimed-at, public-ip, backend-type and backend-data and drops the claim;
//  * auto: podCIDR when this or any Node has one; a kept lease stays; a lease when other Nodes
//    hold leases and none has a podCIDR; in an empty cluster, a lease after auto_wait without
//    a podCIDR.
// A node is never renumbered under its running pods: a published subnet that differs from
// spec.podCIDR is kept and reported (problem()).
// Safe because of two Nodes claiming one subnet, the one whose claim comes later in etcd's
// order sees the other's claim (claims stay visible until confirmed or withdrawn); a confirmed lease
// is never withdrawn. A claim left by a run that stopped mid-way is verified on restart.

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <utility>

#include "core/lease.hpp"
#include "core/net_config.hpp"
#include "subnet/annotations.hpp"
#include "subnet/kube/kube_client.hpp"
#include "subnet/kube/retry.hpp"

namespace weft::kube {

struct LeaseSettings {
  std::string node_name;
  AnnotationKeys keys;
  std::optional<FamilyConfig<Ipv4Addr>> network;     // unset: an IPv6-only cluster, which leases IPv6 subnets
  std::optional<FamilyConfig<Ipv6Addr>> network_v6;  // dual stack or IPv6-only (EnableIPv6)
  BackendConfig backend;
  std::chrono::milliseconds conflict_backoff{20};  // random wait in [0, this * 2^round] after a lost race
  SubnetSource source = SubnetSource::Auto;
  std::chrono::milliseconds pod_cidr_poll{500};    // waiting for spec.podCIDR: GET our Node after this, doubling to 4 s
  std::chrono::milliseconds wait_log_every{5000};  // and say so this often
  std::chrono::milliseconds auto_wait{5000};       // auto, empty cluster: how long to wait for a podCIDR
  std::function<void(const std::string&)> waiting;  // why acquire is waiting ("" when no longer)
};

class LeaseProtocol {
 public:
  LeaseProtocol(KubeClient& client, const RetryContext& retry, LeaseSettings settings);

  // `own` is our Node from a GET (it carries spec.podCIDRs). Blocks until the lease is
  // confirmed, the network is full, a non-transient error happens, or the stop signal fires.
  // `base` holds the public IP(s) and VTEP MAC(s), no subnets. With a v6 network and
  // base.vtep_mac_v6, the lease carries an IPv6 subnet too (add_v6). In an IPv6-only cluster
  // the IPv6 subnet is the lease: from the v6 podCIDR or through the same annotation protocol on
  // subnet-v6 / subnet-v6-claim.
  Result<Lease> acquire(const NodeInfo& own, Lease base);

  std::uint64_t attempts() const { return attempts_; }
  // The last Node list the lease was decided on (annotation mode), for the watch to start
  // from instead of listing again; empty in podCIDR mode. Moved out.
  std::optional<NodeList> take_last_list() { return std::exchange(last_list_, std::nullopt); }
  std::uint64_t conflicts() const { return conflicts_; }
  // Our claim's rank (README): the later of our creationTimestamp and the claimed-at published.
  std::int64_t claim_rank() const { return claim_rank_; }
  // Non-empty when the lease is served but flawed (published subnet != spec.podCIDR): the
  // reason and how to fix it.
  const std::string& problem() const { return problem_; }

 private:
  // The lease in the primary family: IPv4, or IPv6 in an IPv6-only cluster.
  template <class Addr>
  Result<Lease> acquire_in(const NodeInfo& own, const Lease& base);
  template <class Addr>
  Result<Lease> from_pod_cidr(const NodeInfo& own, Prefix<Addr> pod_cidr, const Lease& base);
  // `listed`: a full list just made (auto's decision), used as the first round's.
  template <class Addr>
  Result<Lease> by_annotations(const NodeInfo& own, const Lease& base, std::optional<NodeList> listed = std::nullopt);
  template <class Addr>
  Result<Lease> auto_source(const NodeInfo& own, const Lease& base);
  // Polls our Node until it has a podCIDR of the family; after `limit` (if given) returns nullopt.
  template <class Addr>
  Result<std::optional<NodeInfo>> wait_for_pod_cidr(std::optional<std::chrono::milliseconds> limit,
                                                    const std::string& why);
  template <class Addr>
  bool fits(const Prefix<Addr>& subnet) const;  // inside the network, SubnetLen, SubnetMin..SubnetMax
  // The IPv6 half of `lease` (dual stack): the v6 entry of spec.podCIDRs; an error when the
  // IPv4 subnet came from a podCIDR without one (an IPv4-only controller); else the subnet paired with the IPv4 lease
  // (paired_subnet_v6), which the IPv4 lease's write-then-verify makes ours alone.
  Status add_v6(const NodeInfo& own, Lease& lease, bool v4_from_pod_cidr);
  // Writes the confirmed lease onto our Node (skipped when already there).
  Status publish(const NodeInfo& own, const Lease& lease);
  Result<NodeList> list(const std::string& why, bool with_spec = false, bool cached = false);
  // The Nodes as of our own write `rv`: `listed` (maybe from the lagging watch cache) brought
  // forward by a watch from its resourceVersion to that write's event. Events come in etcd's
  // order, so every claim committed before ours is in by then -- what a quorum list made after
  // the write shows, without reading every Node from etcd. A quorum list when the watch cannot
  // get there (410, an error, the server's timeout).
  Result<NodeList> as_of_write(NodeList listed, const std::string& rv);
  Status wait_after_conflict(int round);
  void report_waiting(const std::string& why);

  KubeClient& client_;
  RetryContext retry_;
  LeaseSettings s_;
  std::mt19937_64 rng_;
  std::uint64_t attempts_ = 0;
  std::uint64_t conflicts_ = 0;
  std::int64_t claim_rank_ = 0;
  std::string problem_;
  std::optional<NodeList> last_list_;
};

// The IPv4 prefix among spec.podCIDR/podCIDRs, nullopt when there is none; an error when a
// value is malformed or only IPv6 prefixes are given.
Result<std::optional<Ipv4Prefix>> ipv4_pod_cidr(const NodeInfo& node);

// The IPv6 prefix among spec.podCIDRs for a dual-stack network: nullopt when the node has none;
// an error when it is malformed, lies outside the v6 network or is not one /IPv6SubnetLen of it.
// A v6 podCIDR with a v4-only net-conf.json (net unset) is an error too: the caller logs it and
// carries on with IPv4, so a controller configured for dual stack cannot stop a v4-only weft.
Result<std::optional<Ipv6Prefix>> ipv6_pod_cidr(const NodeInfo& node, const std::optional<FamilyConfig<Ipv6Addr>>& net);

}  // namespace weft::kube
