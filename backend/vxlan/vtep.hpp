#pragma once
// The VTEP devices weft.<VNI> (IPv4 overlay) and weft-v6.<VNI> (IPv6 overlay): what is asked
// for (VtepSpec), what exists (Vtep), and the create-or-adopt step.

#include <cstdint>
#include <optional>
#include <string>

#include "backend/netlink/netlink.hpp"
#include "core/ip.hpp"
#include "core/mac.hpp"

namespace weft {

// The VTEP weft wants, from net-conf.json's Backend section and the chosen underlay.
struct VtepSpec {
  std::uint32_t vni = 1;
  std::uint16_t port = 8472;  // 0: the kernel's default, 8472
  Ipv4Addr local_ip;          // this node's public (underlay) address
  // The IPv6 overlay's VTEP weft-v6.<VNI> rather than weft.<VNI>. A VXLAN device's local
  // address has one family, so the IPv6 overlay gets a device of its own.
  bool ipv6 = false;
  // Set: an IPv6 underlay, used instead of local_ip (MTU overhead 70 instead of 50).
  std::optional<Ipv6Addr> local_ip6;
  int underlay_ifindex = 0;
  int underlay_mtu = 1500;
  std::optional<int> mtu;  // Backend.MTU: the outer packets' MTU, as flannel; unset: the underlay's
  bool gbp = false;
  bool learning = false;
  std::optional<Mac> preferred_mac;  // from our own Node annotation, so restarts keep it
  bool flannel_names = false;        // FlannelCompat: flannel.<VNI> / flannel-v6.<VNI>, adopted in place
  bool operator==(const VtepSpec&) const = default;
};

// The VTEP as it is in the kernel.
struct Vtep {
  std::string name;
  int ifindex = 0;
  Mac mac;
  int mtu = 0;
  bool operator==(const Vtep&) const = default;
};

// What ensure_vtep did.
enum class VtepAction { kept, fixed, created, recreated };

std::string vtep_name(std::uint32_t vni, bool ipv6 = false);  // "weft.<VNI>" or "weft-v6.<VNI>"
std::string vtep_name(const VtepSpec& spec);                  // the above, or flannel's names
// Backend.MTU (else the underlay's MTU) less VXLAN's overhead: 50 bytes over IPv4, 70 over IPv6.
// flannel's meaning: Backend.MTU is what the outer packets may be, never the VTEP's own.
int vtep_mtu(const VtepSpec& spec);
// Why an existing device cannot be adopted as the VTEP for spec (nullopt: it can).
std::optional<std::string> vtep_mismatch(const Link& link, const VtepSpec& spec);
// The MAC for a new device: the old device's, else the last one we used, else the caller's
// preferred one, else a random locally administered one. Unusable candidates are passed over.
Mac choose_vtep_mac(std::optional<Mac> old_device, std::optional<Mac> last_used, std::optional<Mac> preferred);

// Creates weft.<VNI> (weft-v6.<VNI> for spec.ipv6), or adopts the existing device when VNI, port, local address,
// underlay, learning and GBP match (fixing MTU and up state in place), else deletes and recreates it. last_mac is the
// MAC weft used before (kept across a hand deletion). Logs what it did.
Result<Vtep> ensure_vtep(Netlink& nl, const VtepSpec& spec, std::optional<Mac> last_mac, VtepAction* action);

}  // namespace weft
