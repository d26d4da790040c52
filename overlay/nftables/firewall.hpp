#pragma once
// weft's own nftables tables: masquerade for pod traffic leaving the cluster network, forward
// accept for the cluster network, and the VXLAN source allow-list. `table ip weft` with an IPv4
// network, `table ip6 weft` (its IPv6 twin) with an IPv6 one: both in a dual-stack cluster.

#include <cstdint>
#include <optional>
#include <set>
#include <string>

#include "core/ip.hpp"
#include "overlay/nftables/nftables.hpp"

namespace weft {

struct FirewallSpec {
  std::optional<Ipv4Prefix> network;  // the cluster network; unset: IPv6-only, no `table ip weft`
  std::optional<Ipv4Prefix> subnet;   // this node's subnet (set with network)
  bool ip_masq = false;               // --ip-masq (both families)
  bool vxlan_allowlist = true;        // accept VXLAN only from known nodes (both families)
  std::uint16_t vxlan_port = 8472;
  std::set<Ipv4Addr> vxlan_sources;      // public IPs of every known node, ours included
  std::optional<Ipv6Prefix> network_v6;  // set: dual stack; weft also keeps `table ip6 weft`
  std::optional<Ipv6Prefix> subnet_v6;   // this node's IPv6 subnet
  std::set<Ipv6Addr> vxlan_sources_v6;   // IPv6 public IPs of every known node, ours included (IPv6 underlay)
  bool operator==(const FirewallSpec&) const = default;
};

// True when the two specs differ at most in their VXLAN sources, IPv4 and IPv6 (every other
// field above).
inline bool same_rules(const FirewallSpec& a, const FirewallSpec& b) {
  return a.network == b.network && a.subnet == b.subnet && a.ip_masq == b.ip_masq &&
         a.vxlan_allowlist == b.vxlan_allowlist && a.vxlan_port == b.vxlan_port && a.network_v6 == b.network_v6 &&
         a.subnet_v6 == b.subnet_v6;
}

// `table ip weft` as nft lists it (pure; the kernel test checks the two agree). The IPv6 fields
// do not change it; empty without network (IPv6-only).
std::string render_table(const FirewallSpec& spec);
// `table ip6 weft` likewise; empty without network_v6 (then weft has no IPv6 table).
std::string render_table_v6(const FirewallSpec& spec);

struct FirewallReport {
  bool replaced = false;  // false: the kernel already matched, nothing written
};

// Keeps the kernel's `table ip weft` (and `table ip6 weft` when the spec has network_v6) equal
// to the spec. Reads first; writes only a difference: the tables that differ are replaced, a
// `table ip6 weft` the spec does not want is deleted, all in one transaction (no moment
// without the rules).
class Firewall {
 public:
  explicit Firewall(Nftables& nft) : nft_(nft) {}
  // An error (nothing written) when the spec masquerades IPv6 without this node's subnet_v6.
  Result<FirewallReport> reconcile(const FirewallSpec& spec);
  // Moves the allow-lists (IPv4 and IPv6) from `from` to `to` by adding and deleting elements in
  // one transaction, without reading or rewriting the tables (a node joining or leaving costs
  // ~1 ms, not ~10). Only when the kernel is known to hold `from` and the two differ in their
  // sources alone (same_rules); an error (say an element to delete is gone) changes nothing in
  // either family: reconcile() then.
  Status update_sources(const FirewallSpec& from, const FirewallSpec& to);
  // True when a table of weft's (`ip weft` or `ip6 weft`) is in the kernel, left by an earlier
  // run or installed by reconcile: its allow-list may be dropping VXLAN from nodes it lacks.
  bool present();

 private:
  Nftables& nft_;
};

}  // namespace weft
