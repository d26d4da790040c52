#pragma once
// VxlanBackend: weft's VXLAN data plane. It owns the VTEP weft.<VNI>, the VTEP address and
// one neighbor + FDB entry + route per peer, and reconciles them against the kernel. When
// given an IPv6 network it also owns weft-v6.<VNI>, its address and the peers' IPv6
// entries (flannel's flannel-v6.<VNI>); without one, nothing IPv6 is read or written.
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
  int peers_programmed = 0;       // peers that passed check_peers (see errors for failed writes)
  int peers_programmed_v6 = 0;    // of those, the ones that passed check_peers_v6
  bool device_recreated = false;  // a VTEP was (re)created, so its entries were replayed
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
  // Dual stack: network_v6 set makes the backend program the IPv6 overlay too
  // (ensure_device_v6 must then be called before reconcile). IPv6-only: cluster_network unset,
  // and only weft-v6.<VNI> exists (ensure_device is never called; nothing IPv4 is touched).
  VxlanBackend(Netlink& nl, std::optional<Ipv4Prefix> cluster_network, std::optional<Ipv6Prefix> network_v6,
               bool direct_routing);
  ~VxlanBackend();
  VxlanBackend(const VxlanBackend&) = delete;
  VxlanBackend& operator=(const VxlanBackend&) = delete;

  // Creates or adopts weft.<VNI> (see ensure_vtep) and remembers spec for later repairs.
  Result<Vtep> ensure_device(const VtepSpec& spec);
  // Creates or adopts weft-v6.<VNI> (spec.ipv6 is implied); only with an IPv6 network. Over
  // an IPv4 underlay its VNI or port must differ from weft.<VNI>'s: the kernel refuses two
  // VXLAN devices with the same VNI, port and local address family.
  Result<Vtep> ensure_device_v6(VtepSpec spec);
  // Puts the own subnet's network address as /32 on the VTEP (removing other IPv4
  // addresses there) and remembers the lease for checking peers. With an IPv6 network, the
  // lease needs subnet_v6 inside it, whose network address goes on weft-v6.<VNI> as /128
  // (other global IPv6 addresses there are removed; link-local ones are the kernel's).
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
  const std::optional<Vtep>& vtep_v6() const { return vtep6_; }

 private:
  Result<Vtep> ensure_vtep_now(ReconcileReport* report);
  Status ensure_address(ReconcileReport* report);
  DirectHops direct_hops(const std::vector<const Peer*>& peers, int vtep_ifindex);
  DirectHops6 direct_hops6(const std::vector<const Peer*>& peers, int vtep_ifindex);
  Result<ActualState> read_actual(int vtep_ifindex);
  void apply(const std::vector<Op>& ops, ReconcileReport& report);
  // The IPv6 half of reconcile, for the peers check_peers_v6 accepted.
  void reconcile_v6(const std::vector<const Peer*>& accepted, ReconcileReport& report);
  // The IPv4 half for the peers check_peers accepted; false when weft.<VNI> or the kernel's
  // picture failed (then the IPv6 half waits too).
  bool reconcile_v4(const std::vector<const Peer*>& accepted, ReconcileReport& report);
  Result<Vtep> ensure_vtep6_now(ReconcileReport* report);
  Status ensure_address6(ReconcileReport* report);
  Result<ActualState6> read_actual6(int vtep_ifindex);
  void log_skips(const std::vector<SkippedPeer>& skipped);

  Netlink& nl_;
  const std::optional<Ipv4Prefix> network_;  // unset: IPv6-only
  const bool direct_routing_;
  std::optional<VtepSpec> spec_;
  std::optional<Vtep> vtep_;
  std::optional<Lease> lease_;
  const std::optional<Ipv6Prefix> network_v6_;
  std::optional<VtepSpec> spec6_;
  std::optional<Vtep> vtep6_;
  std::atomic<int> watched_ifindex6_{0};
  std::map<std::string, std::string> logged_skips_;  // peer -> reason already logged
  std::atomic<int> watched_ifindex_{0};
  std::unique_ptr<Subscription> subscription_;
};

}  // namespace weft
