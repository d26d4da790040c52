#pragma once
// SubnetManager: the agent's view of the cluster: our own Node, our lease, and the peers.
//
// Threading contract:
//  * read_own_node and acquire block, retrying transient API errors (backoff, Retry-After)
//    until they succeed, fail for good, or stop() is called; meant for the agent's thread at
//    start. set_network_unavailable is one attempt (bounded by the request timeout): call it
//    from a thread that may wait on the API, and retry on error. All are thread-safe.
//  * start_watch starts one watch thread owned by the manager. peers_changed() runs on that
//    thread: it must be cheap and thread-safe (post to the agent's queue, set a flag); it must
//    not call back into the manager's blocking methods. It is called once as soon as the first
//    list has been applied (even when there are no peers), then after each burst of watch
//    events that changed the peer set (all events already buffered are applied first).
//  * peers() and stats() are thread-safe snapshots and may be called from any thread.
//  * stop() cancels in-flight requests, joins the watch thread and is idempotent; after it
//    every blocking method returns an error promptly. The destructor calls stop().

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "core/lease.hpp"
#include "core/result.hpp"

namespace weft {

// Our own Node as the API shows it before we lease.
struct OwnNode {
  std::string name;
  std::optional<Ipv4Prefix> pod_cidr;   // spec.podCIDR (the IPv4 one of spec.podCIDRs)
  std::optional<Ipv4Addr> internal_ip;  // first InternalIP of status.addresses
  std::optional<Ipv4Prefix> subnet;     // our confirmed subnet annotation from an earlier run
  std::optional<Ipv4Addr> public_ip;    // our public-ip annotation from an earlier run
  std::optional<Mac> vtep_mac;          // our VtepMAC from an earlier run: keep it across restarts
  std::optional<Mac> vtep_mac_v6;       // and the IPv6 VTEP's
};

// Counters for metrics and tests (monotonic unless noted).
struct SubnetStats {
  std::uint64_t lists = 0;    // full lists of the watch (initial + relists)
  std::uint64_t relists = 0;  // lists after the first (only after 410 Gone)
  std::uint64_t watches = 0;  // watch requests started
  std::uint64_t events = 0;   // ADDED/MODIFIED/DELETED events applied
  std::uint64_t bookmarks = 0;
  std::uint64_t api_errors = 0;        // failed requests (each retry counts)
  std::uint64_t peers = 0;             // current number of valid peers
  std::uint64_t skipped_peers = 0;     // current number of Nodes skipped for bad annotations
  std::uint64_t skipped_peers_v6 = 0;  // current: of the peers, those whose IPv6 half is refused
  std::uint64_t unjoined_nodes = 0;    // current number of other Nodes without lease annotations
  std::uint64_t lease_attempts = 0;    // subnets claimed by acquire (1 without contention)
  std::uint64_t lease_conflicts = 0;   // claims withdrawn because another node claimed the same subnet
  std::uint64_t outranked_nodes = 0;   // current: of the skipped, Nodes whose subnet an earlier claim holds
  // Ownership (README, "Subnet ownership"); each says what is wrong and how to fix it, "" when fine.
  std::string lease_waiting;  // while acquire waits (for spec.podCIDR)
  std::string lease_problem;  // the lease is served but differs from spec.podCIDR
  std::string own_conflict;   // an earlier claim holds our subnet: every other node skips this one
};

class SubnetManager {
 public:
  virtual ~SubnetManager() = default;

  // Our Node (GET): podCIDR, InternalIP and what an earlier run published.
  virtual Result<OwnNode> read_own_node() = 0;

  // Our lease: spec.podCIDR when set (an error if it lies outside the network), otherwise a
  // subnet through the write-then-verify annotation protocol (an existing valid lease is kept).
  // Publishes subnet, public IP, backend type and data in both modes. Blocks until confirmed.
  // `base` carries the public address(es) and VTEP MAC(s) of the families net-conf.json
  // enables (an IPv6-only cluster: public_ip_v6 and vtep_mac_v6 only); the lease adds subnets.
  virtual Result<Lease> acquire(const Lease& base) = 0;
  Result<Lease> acquire(Ipv4Addr public_ip, Mac vtep_mac, const std::optional<LeaseV6Request>& v6 = std::nullopt) {
    Lease base;
    base.public_ip = public_ip;
    base.vtep_mac = vtep_mac;
    if (v6) {
      base.vtep_mac_v6 = v6->vtep_mac;
      base.public_ip_v6 = v6->public_ip;
    }
    return acquire(base);
  }

  // List, then watch (see the threading contract above). Call once, after acquire.
  virtual void start_watch(std::function<void()> peers_changed) = 0;

  // The valid peers (our own Node excluded; Nodes with bad annotations skipped and logged).
  virtual PeerSet peers() const = 0;

  // Sets the NetworkUnavailable condition on our Node's status (strategic-merge patch, other
  // conditions kept): False with reason WeftIsUp, or True with reason WeftIsDown; `message`
  // says why for people (kubectl describe node). One attempt; the error says what failed.
  virtual Status set_network_unavailable(bool unavailable, const std::string& message) = 0;

  virtual SubnetStats stats() const = 0;

  // Nodes skipped, with the reason (for /metrics and weftctl; at most `limit` of them); then the
  // peers whose IPv6 half alone is refused, the reason starting "IPv6 half refused".
  virtual std::map<std::string, std::string> skipped_nodes(std::size_t /*limit*/) const { return {}; }

  virtual void stop() = 0;
};

}  // namespace weft
