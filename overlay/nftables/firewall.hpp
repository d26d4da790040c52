#pragma once
// weft's own nftables table: masquerade for pod traffic leaving the cluster network,
// forward accept for the cluster network, and the VXLAN source allow-list.

#include <cstdint>
#include <set>
#include <string>

#include "core/ip.hpp"
#include "overlay/nftables/nftables.hpp"

namespace weft {

struct FirewallSpec {
  Ipv4Prefix network;           // the cluster network
  Ipv4Prefix subnet;            // this node's subnet
  bool ip_masq = false;         // --ip-masq
  bool vxlan_allowlist = true;  // accept VXLAN only from known nodes
  std::uint16_t vxlan_port = 8472;
  std::set<Ipv4Addr> vxlan_sources;  // public IPs of every known node, ours included
  bool operator==(const FirewallSpec&) const = default;
};

// True when the two specs differ at most in their VXLAN sources (every other field above).
inline bool same_rules(const FirewallSpec& a, const FirewallSpec& b) {
  return a.network == b.network && a.subnet == b.subnet && a.ip_masq == b.ip_masq &&
         a.vxlan_allowlist == b.vxlan_allowlist && a.vxlan_port == b.vxlan_port;
}

// The table as nft lists it (pure; the kernel test checks the two agree).
std::string render_table(const FirewallSpec& spec);

struct FirewallReport {
  bool replaced = false;  // false: the kernel already matched, nothing written
};

// Keeps the kernel's `table ip weft` equal to the spec. Reads first; writes only a difference,
// and then replaces the whole table in one transaction (no moment without the rules).
class Firewall {
 public:
  explicit Firewall(Nftables& nft) : nft_(nft) {}
  Result<FirewallReport> reconcile(const FirewallSpec& spec);
  // Moves the allow-list from `from` to `to` by adding and deleting elements in one transaction,
  // without reading or rewriting the table (a node joining or leaving costs ~1 ms, not ~10).
  // Only when the kernel is known to hold `from` and the two differ in their sources alone; an
  // error (say an element to delete is gone) changes nothing: reconcile() then.
  Status update_sources(const FirewallSpec& from, const FirewallSpec& to);
  // True when weft's table is in the kernel (left by an earlier run or installed by reconcile).
  bool present();

 private:
  Nftables& nft_;
};

}  // namespace weft
