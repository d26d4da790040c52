#include "cmd/weftctl/daemon_status.hpp"

#include <nlohmann/json.hpp>

#include "cmd/weftctl/json_fields.hpp"

namespace weft::ctl {
namespace {

using nlohmann::json;

template <class T>
Result<T> field(const json& o, const char* key, const std::string& where) {
  auto v = T::parse(text(o, key));
  if (!v) return fail(where + "." + key + ": " + v.error());
  return v;
}

// A field only a dual-stack weftd sends: absent is nullopt, present and malformed an error.
template <class T>
Result<std::optional<T>> optional_field(const json& o, const char* key, const std::string& where) {
  if (!o.contains(key)) return std::optional<T>();
  auto v = field<T>(o, key, where);
  if (!v) return v.take_error();
  return std::optional<T>(*v);
}

// The address of a VTEP's local end: IPv4, or IPv6 for weft-v6.<VNI> over an IPv6 underlay.
IpAddr ip_of_either_family(const std::string& s) {
  if (auto v4 = Ipv4Addr::parse(s)) return *v4;
  if (auto v6 = Ipv6Addr::parse(s)) return *v6;
  return {};
}

// The IPv6 half of a peer or a lease: subnet_v6, vtep_mac_v6 and public_ip_v6, each optional.
template <class T>
Status parse_v6_half(const json& o, const std::string& where, T& into) {
  auto subnet = optional_field<Ipv6Prefix>(o, "subnet_v6", where);
  if (!subnet) return subnet.take_error();
  auto mac = optional_field<Mac>(o, "vtep_mac_v6", where);
  if (!mac) return mac.take_error();
  auto ip = optional_field<Ipv6Addr>(o, "public_ip_v6", where);
  if (!ip) return ip.take_error();
  into.subnet_v6 = *subnet;
  into.vtep_mac_v6 = *mac;
  into.public_ip_v6 = *ip;
  return ok_status();
}

// An IPv6-only weftd's peer: its IPv6 half is all it has.
Result<Peer> parse_peer_v6_only(const json& p) {
  std::string where = "peer " + text(p, "node");
  Peer peer;
  peer.name = text(p, "node");
  if (Status v6 = parse_v6_half(p, where, peer); !v6) return v6.take_error();
  if (!peer.subnet_v6 || !peer.vtep_mac_v6) {
    return fail(where +
                ": no subnet_v6 and vtep_mac_v6, and the cluster is IPv6-only (weftd lists such a peer as "
                "skipped, not as a peer: is weftd a different version?)");
  }
  return peer;
}

Result<Peer> parse_peer(const json& p, bool ipv4) {
  if (!p.is_object()) return fail("a peer that is not a JSON object");
  if (!ipv4) return parse_peer_v6_only(p);
  std::string where = "peer " + text(p, "node");
  auto subnet = field<Ipv4Prefix>(p, "subnet", where);
  if (!subnet) return subnet.take_error();
  auto ip = field<Ipv4Addr>(p, "public_ip", where);
  if (!ip) return ip.take_error();
  auto mac = field<Mac>(p, "vtep_mac", where);
  if (!mac) return mac.take_error();
  Peer peer;
  peer.name = text(p, "node");
  peer.subnet = *subnet;
  peer.public_ip = *ip;
  peer.vtep_mac = *mac;
  if (Status v6 = parse_v6_half(p, where, peer); !v6) return v6.take_error();
  if (peer.subnet_v6.has_value() != peer.vtep_mac_v6.has_value())
    return fail(where + ": an IPv6 half needs both subnet_v6 and vtep_mac_v6");
  return peer;
}

Status parse_lease_v4(const json& l, Lease& lease) {
  auto subnet = field<Ipv4Prefix>(l, "subnet", "lease");
  auto ip = field<Ipv4Addr>(l, "public_ip", "lease");
  auto mac = field<Mac>(l, "vtep_mac", "lease");
  if (!subnet || !ip || !mac) return fail("weftd's /status: a malformed lease");
  lease.subnet = *subnet;
  lease.public_ip = *ip;
  lease.vtep_mac = *mac;
  return ok_status();
}

Status parse_lease(const json& l, DaemonStatus& d) {
  d.lease = Lease{};
  if (d.has_ipv4()) {
    if (Status v4 = parse_lease_v4(l, *d.lease); !v4) return v4;
  }
  if (Status v6 = parse_v6_half(l, "lease", *d.lease); !v6) return fail("weftd's /status: " + v6.error());
  if (d.ipv6_only() && !d.lease->subnet_v6) {
    return fail("weftd's /status: the lease of an IPv6-only weftd has no subnet_v6");
  }
  d.env_mtu = number<int>(l, "mtu");
  d.ipmasq = flag(l, "ipmasq");
  return ok_status();
}

VtepStatus parse_vtep(const json& v) {
  VtepStatus s;
  s.name = text(v, "name");
  s.vni = number<std::uint32_t>(v, "vni");
  s.port = number<std::uint16_t>(v, "port");
  s.local_ip = ip_of_either_family(text(v, "local_ip"));
  s.mtu_wanted = number<int>(v, "mtu_wanted");
  if (auto it = v.find("backend_mtu"); it != v.end() && it->is_number()) s.backend_mtu = it->get<int>();
  s.learning = flag(v, "learning");
  s.gbp = flag(v, "gbp");
  s.direct_routing = flag(v, "direct_routing");
  s.ifindex = number<int>(v, "ifindex");
  s.mac = text(v, "mac");
  s.mtu = number<int>(v, "mtu");
  return s;
}

UnderlayStatus parse_underlay(const json& u) {
  UnderlayStatus s;
  s.name = text(u, "name");
  s.ifindex = number<int>(u, "ifindex");
  if (auto a = Ipv4Addr::parse(text(u, "address"))) s.address = *a;  // absent: IPv6-only
  if (auto a = Ipv4Addr::parse(text(u, "public_ip"))) s.public_ip = *a;
  s.mtu = number<int>(u, "mtu");
  if (auto a = Ipv6Addr::parse(text(u, "address_v6"))) s.address_v6 = *a;
  if (auto a = Ipv6Addr::parse(text(u, "public_ip_v6"))) s.public_ip_v6 = *a;
  return s;
}

// One family's VTEP and network: weft.<VNI> and "network" (absent in an IPv6-only weftd's
// answer), or weft-v6.<VNI> and "network_v6" (dual stack, IPv6-only; doctor checks the IPv6
// routes in that network).
template <class P>
Status parse_family(const json& j, const char* vtep_key, const char* network_key, std::optional<P>& network,
                    std::optional<VtepStatus>& vtep) {
  auto v = j.find(vtep_key);
  if (v == j.end()) return ok_status();
  if (!v->is_object()) return fail(std::string("weftd's /status: \"") + vtep_key + "\" is not an object");
  auto parsed = field<P>(j, network_key, "weftd's /status");
  if (!parsed) return parsed.take_error();
  network = *parsed;
  vtep = parse_vtep(*v);
  return ok_status();
}

// Keys whose values weftctl iterates or reads fields of: the wrong type is an error, not a crash.
Status check_shape(const json& j) {
  for (const char* key : {"underlay", "peers", "skipped"}) {
    if (!j.contains(key))
      return fail(std::string("weftd's /status has no \"") + key + "\": is weftd older than weftctl?");
  }
  if (!j.contains("vtep") && !j.contains("vtep6")) {
    return fail("weftd's /status has neither \"vtep\" nor \"vtep6\": is weftd older than weftctl?");
  }
  if (!j["underlay"].is_object()) return fail("weftd's /status: \"underlay\" is not an object");
  for (const char* key : {"peers", "skipped"}) {
    if (!j[key].is_array()) return fail(std::string("weftd's /status: \"") + key + "\" is not a list");
  }
  return ok_status();
}

}  // namespace

Result<DaemonStatus> parse_datapath_status(const std::string& body) {
  auto j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return fail("weftd's /status is not JSON");
  if (Status st = check_shape(j); !st) return st.take_error();
  DaemonStatus d;
  d.ready = flag(j, "ready");
  d.subnet_file = text(j, "subnet_file");
  if (Status st = parse_family(j, "vtep", "network", d.network, d.vtep); !st) return st.take_error();
  if (Status st = parse_family(j, "vtep6", "network_v6", d.network_v6, d.vtep6); !st) return st.take_error();
  if (auto l = j.find("lease"); l != j.end() && l->is_object()) {
    if (Status st = parse_lease(*l, d); !st) return st.take_error();
  }
  d.underlay = parse_underlay(j["underlay"]);
  for (const auto& p : j["peers"]) {
    auto peer = parse_peer(p, d.has_ipv4());
    if (!peer) return fail("weftd's /status: " + peer.error());
    d.peers.push_back(std::move(peer).value());
  }
  for (const auto& s : j["skipped"]) {
    if (s.is_object()) d.skipped.push_back({text(s, "node"), text(s, "reason"), text(s, "by")});
  }
  if (auto k = j.find("kubernetes"); k != j.end() && k->is_object()) {
    d.kubeconfig_file = text(*k, "kubeconfig_file");
    d.api_url = text(*k, "api_url");
  }
  return d;
}

}  // namespace weft::ctl
