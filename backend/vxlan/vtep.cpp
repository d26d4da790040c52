#include "backend/vxlan/vtep.hpp"

#include <spdlog/spdlog.h>

namespace weft {
namespace {

constexpr std::uint16_t kDefaultVxlanPort = 8472;  // what Linux uses when no port is given
constexpr std::uint32_t kMaxVni = (1U << 24U) - 1U;
constexpr int kMinMtu = 68;

bool usable(const std::optional<Mac>& mac) { return mac && !mac->is_zero() && mac->is_unicast(); }

std::uint16_t effective_port(const VtepSpec& spec) { return spec.port == 0 ? kDefaultVxlanPort : spec.port; }

VxlanAttrs wanted_attrs(const VtepSpec& spec) {
  const IpAddr local = spec.local_ip6 ? IpAddr(*spec.local_ip6) : IpAddr(spec.local_ip);
  return {spec.vni, effective_port(spec), local, spec.underlay_ifindex, spec.learning, spec.gbp};
}

Status check_spec(const VtepSpec& spec) {
  if (spec.vni > kMaxVni) return fail("VNI " + std::to_string(spec.vni) + " is out of range (0 to 16777215)");
  if (spec.local_ip6 && spec.local_ip6->is_unspecified()) {
    return fail("the IPv6 VTEP's underlay address is unspecified (::): give this node's public IPv6 address");
  }
  if (!spec.local_ip6 && spec.local_ip.is_unspecified())
    return fail("the VTEP needs this node's public IP (Backend local address)");
  int mtu = vtep_mtu(spec);
  if (mtu < kMinMtu) {
    return fail("VTEP MTU " + std::to_string(mtu) + " is too small (at least " + std::to_string(kMinMtu) +
                "): check Backend.MTU or the underlay MTU " + std::to_string(spec.underlay_mtu));
  }
  return ok_status();
}

Result<Vtep> read_back(Netlink& nl, const std::string& name) {
  auto link = nl.get_link(name);
  if (!link) return link.take_error();
  if (!link->has_value()) return fail("VTEP " + name + " vanished right after it was created");
  const Link& l = **link;
  return Vtep{l.name, l.ifindex, l.mac, l.mtu};
}

Result<Vtep> create(Netlink& nl, const VtepSpec& spec, Mac mac) {
  std::string name = vtep_name(spec);
  if (Status st = nl.create_vxlan({name, wanted_attrs(spec), vtep_mtu(spec), mac}); !st) return st.take_error();
  return read_back(nl, name);
}

}  // namespace

std::string vtep_name(std::uint32_t vni, bool ipv6) { return (ipv6 ? "weft-v6." : "weft.") + std::to_string(vni); }

std::string vtep_name(const VtepSpec& spec) {
  if (!spec.flannel_names) return vtep_name(spec.vni, spec.ipv6);
  return (spec.ipv6 ? "flannel-v6." : "flannel.") + std::to_string(spec.vni);
}

// VXLAN adds 50 bytes over an IPv4 underlay and 70 over an IPv6 one.
int vtep_mtu(const VtepSpec& spec) { return spec.mtu.value_or(spec.underlay_mtu) - (spec.local_ip6 ? 70 : 50); }

std::optional<std::string> vtep_mismatch(const Link& link, const VtepSpec& spec) {
  if (link.kind != "vxlan" || !link.vxlan) {
    return "it is a " + (link.kind.empty() ? std::string("plain") : link.kind) + " device, not vxlan";
  }
  const VxlanAttrs& have = *link.vxlan;
  const VxlanAttrs want = wanted_attrs(spec);
  auto differs = [](const std::string& what, const auto& h, const auto& w) {
    return what + " is " + h + ", want " + w;
  };
  if (have.vni != want.vni) return differs("VNI", std::to_string(have.vni), std::to_string(want.vni));
  if (have.port != want.port) return differs("port", std::to_string(have.port), std::to_string(want.port));
  if (have.local != want.local) return differs("local address", have.local.str(), want.local.str());
  if (have.underlay_ifindex != want.underlay_ifindex) {
    return differs("underlay ifindex", std::to_string(have.underlay_ifindex), std::to_string(want.underlay_ifindex));
  }
  if (have.learning != want.learning) return std::string(have.learning ? "learning is on" : "learning is off");
  if (have.gbp != want.gbp) return std::string(have.gbp ? "GBP is on" : "GBP is off");
  return std::nullopt;
}

Mac choose_vtep_mac(std::optional<Mac> old_device, std::optional<Mac> last_used, std::optional<Mac> preferred) {
  for (const auto& candidate : {old_device, last_used, preferred}) {
    if (usable(candidate)) return *candidate;
  }
  return Mac::random_local();
}

Result<Vtep> ensure_vtep(Netlink& nl, const VtepSpec& spec, std::optional<Mac> last_mac, VtepAction* action) {
  if (Status st = check_spec(spec); !st) return st.take_error();
  const std::string name = vtep_name(spec);
  const int mtu = vtep_mtu(spec);
  auto existing = nl.get_link(name);
  if (!existing) return existing.take_error();

  if (!existing->has_value()) {
    auto made = create(nl, spec, choose_vtep_mac(std::nullopt, last_mac, spec.preferred_mac));
    if (made) spdlog::info("VTEP {} created (ifindex {}, MAC {}, MTU {})", name, made->ifindex, made->mac.str(), mtu);
    *action = VtepAction::created;
    return made;
  }
  const Link& link = **existing;
  if (auto why = vtep_mismatch(link, spec)) {
    spdlog::warn("VTEP {} recreated: {}", name, *why);
    if (Status st = nl.delete_link(link.ifindex); !st) return st.take_error();
    std::optional<Mac> old_mac;
    if (link.mac.is_unicast()) old_mac = link.mac;
    *action = VtepAction::recreated;
    return create(nl, spec, choose_vtep_mac(old_mac, last_mac, spec.preferred_mac));
  }
  *action = VtepAction::kept;
  if (link.mtu != mtu || !link.up) {
    spdlog::info("VTEP {} adjusted: MTU {} -> {}, {}", name, link.mtu, mtu, link.up ? "up" : "down -> up");
    if (Status st = nl.set_link(link.ifindex, mtu, true); !st) return st.take_error();
    *action = VtepAction::fixed;
  }
  return Vtep{link.name, link.ifindex, link.mac, mtu};
}

}  // namespace weft
