#pragma once
// VxlanBackend: weft's VXLAN data plane. It owns the VTEP weft.<VNI>, the VTEP address and
// one neighbor + FDB entry + route per peer, and reconciles them against the kernel.
//
// Threading: one thread (the agent's) owns the object and makes every call. The only other
// thread is the kernel monitor started by watch(): it calls `post` for each change to
// something weft owns (or an overflow), and post must be cheap and thread-safe; the owner
// debounces and calls reconcile() on its own thread. No locks inside. Echoes of weft's own
// route and neighbor writes are filtered out; FDB and link changes carry no sender, so a
// burst of weft's own writes is followed by one reconcile that writes nothing.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "backend/netlink/netlink.hpp"
#include "backend/vxlan/diff.hpp"
#include "backend/vxlan/peer_check.hpp"
#include "backend/vxlan/vtep.hpp"
#include "core/lease.hpp"

namespace weft {

// What one reconcile did.
struct ReconcileReport {
  std::uint64_t writes = 0;  // netlink writes sent: 0 when the kernel already matched
  int entries_set = 0;
  int entries_removed = 0;
  int peers_programmed = 0;  // peers that passed check_peers (see errors for failed writes)
  bool device_recreated = false;  // the VTEP was (re)created, so every entry was replayed
  std::vector<SkippedPeer> skipped;
  std::vector<std::string> errors;  // each names the object and the kernel's reason
  std::chrono::microseconds took{0};
  std::chrono::microseconds routes_took{0};  // the set-routes phase alone
  bool ok() const { return errors.empty(); }
};

// A kernel change to something weft owns, from the monitor thread.
struct KernelChange {
  KernelEvent::Kind kind = KernelEvent::Kind::overflow;
  std::string what;  // for the log, e.g. "route 10.244.2.0/24 ... deleted"
};

class VxlanBackend {
 public:
  using PostChange = std::function<void(const KernelChange&)>;

  VxlanBackend(Netlink& nl, Ipv4Prefix cluster_network, bool direct_routing);
  ~VxlanBackend();
  VxlanBackend(const VxlanBackend&) = delete;
  VxlanBackend& operator=(const VxlanBackend&) = delete;

  // Creates or adopts weft.<VNI> (see ensure_vtep) and remembers spec for later repairs.
  Result<Vtep> ensure_device(const VtepSpec& spec);
  // Puts the own subnet's network address as /32 on the VTEP (removing other IPv4
  // addresses there) and remembers the lease for checking peers.
  Status set_lease(const Lease& own);
  // Makes the kernel match the peers: re-ensures the VTEP and its address, checks the
  // peers, dumps what weft owns, applies the diff. Writes nothing when all matches.
  ReconcileReport reconcile(const PeerSet& peers);

  // Starts the kernel monitor; post runs on the monitor thread (see above).
  Status watch(PostChange post);
  void unwatch();
  // Whether an event concerns what weft owns (thread-safe; used by the monitor).
  std::optional<KernelChange> relevant(const KernelEvent& event) const;

  const std::optional<Vtep>& vtep() const { return vtep_; }

 private:
  Result<Vtep> ensure_vtep_now(ReconcileReport* report);
  Status ensure_address(ReconcileReport* report);
  DirectHops direct_hops(const std::vector<const Peer*>& peers, int vtep_ifindex);
  Result<ActualState> read_actual(int vtep_ifindex);
  void apply(const std::vector<Op>& ops, ReconcileReport& report);
  void log_skips(const std::vector<SkippedPeer>& skipped);

  Netlink& nl_;
  const Ipv4Prefix network_;
  const bool direct_routing_;
  std::optional<VtepSpec> spec_;
  std::optional<Vtep> vtep_;
  std::optional<Lease> lease_;
  std::map<std::string, std::string> logged_skips_;  // peer -> reason already logged
  std::atomic<int> watched_ifindex_{0};
  std::unique_ptr<Subscription> subscription_;
};

}  // namespace weft
