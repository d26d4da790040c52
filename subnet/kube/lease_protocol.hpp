#pragma once
// LeaseProtocol: our own lease. spec.podCIDR when set; otherwise write-then-verify through
// annotations (DESIGN.md, "Lease protocol"), in two steps so peers never route a subnet that
// may still be withdrawn:
//   1. list; keep our confirmed lease (weft.io/subnet) if it still fits the network;
//   2. else claim a random free subnet (weft.io/subnet-claim, resourceVersion precondition);
//   3. list again: if another Node holds or claims an overlapping subnet, withdraw the claim,
//      wait a short random time, go to 1; otherwise confirm: one patch sets weft.io/subnet,
//      public-ip, backend-type and backend-data and drops the claim.
// Safe because of two Nodes claiming one subnet, the one whose verifying list comes later
// sees the other's claim (claims stay visible until confirmed or withdrawn); a confirmed lease
// is never withdrawn. A claim left by a run that stopped mid-way is verified on restart.

#include <chrono>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <utility>

#include "overlay/lease.hpp"
#include "overlay/net_config.hpp"
#include "subnet/annotations.hpp"
#include "subnet/kube/kube_client.hpp"
#include "subnet/kube/retry.hpp"

namespace weft::kube {

struct LeaseSettings {
  std::string node_name;
  AnnotationKeys keys;
  FamilyConfig<Ipv4Addr> network;
  BackendConfig backend;
  std::chrono::milliseconds conflict_backoff{20};  // random wait in [0, this * 2^round] after a lost race
};

class LeaseProtocol {
 public:
  LeaseProtocol(KubeClient& client, const RetryContext& retry, LeaseSettings settings);

  // `own` is our Node from a GET (it carries spec.podCIDRs). Blocks until the lease is
  // confirmed, the network is full, a non-transient error happens, or the stop signal fires.
  Result<Lease> acquire(const NodeInfo& own, Ipv4Addr public_ip, Mac vtep_mac);

  std::uint64_t attempts() const { return attempts_; }
  // The last Node list the lease was decided on (annotation mode), for the watch to start
  // from instead of listing again; empty in podCIDR mode. Moved out.
  std::optional<NodeList> take_last_list() { return std::exchange(last_list_, std::nullopt); }
  std::uint64_t conflicts() const { return conflicts_; }

 private:
  Result<Lease> from_pod_cidr(const NodeInfo& own, Ipv4Prefix pod_cidr, const Lease& base);
  Result<Lease> by_annotations(const Lease& base);
  bool fits(const Ipv4Prefix& subnet) const;  // inside the network, SubnetLen, SubnetMin..SubnetMax
  // Writes the confirmed lease onto our Node (skipped when already there).
  Status publish(const NodeInfo& own, const Lease& lease);
  Result<NodeList> list(const std::string& why);
  Status wait_after_conflict(int round);

  KubeClient& client_;
  RetryContext retry_;
  LeaseSettings s_;
  std::mt19937_64 rng_;
  std::uint64_t attempts_ = 0;
  std::uint64_t conflicts_ = 0;
  std::optional<NodeList> last_list_;
};

// The IPv4 prefix among spec.podCIDR/podCIDRs, nullopt when there is none; an error when a
// value is malformed or only IPv6 prefixes are given.
Result<std::optional<Ipv4Prefix>> ipv4_pod_cidr(const NodeInfo& node);

}  // namespace weft::kube
