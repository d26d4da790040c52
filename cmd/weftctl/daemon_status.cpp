#include "cmd/weftctl/daemon_status.hpp"

#include <nlohmann/json.hpp>

namespace weft::ctl {
namespace {

using nlohmann::json;

std::string text(const json& o, const char* key) {
  auto it = o.find(key);
  return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
}

template <class T>
T number(const json& o, const char* key, T otherwise = 0) {
  auto it = o.find(key);
  return it != o.end() && it->is_number() ? it->get<T>() : otherwise;
}

bool flag(const json& o, const char* key) {
  auto it = o.find(key);
  return it != o.end() && it->is_boolean() && it->get<bool>();
}

template <class T>
Result<T> field(const json& o, const char* key, const std::string& where) {
  auto v = T::parse(text(o, key));
  if (!v) return fail(where + "." + key + ": " + v.error());
  return v;
}

Result<Peer> parse_peer(const json& p) {
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
  return peer;
}

}  // namespace

Result<DaemonStatus> parse_datapath_status(const std::string& body) {
  auto j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return fail("weftd's /status is not JSON");
  for (const char* key : {"vtep", "underlay", "peers", "skipped"}) {
    if (!j.contains(key))
      return fail(std::string("weftd's /status has no \"") + key + "\": is weftd older than weftctl?");
  }
  DaemonStatus d;
  d.ready = flag(j, "ready");
  d.subnet_file = text(j, "subnet_file");
  if (auto n = Ipv4Prefix::parse(text(j, "network"))) d.network = *n;
  if (auto l = j.find("lease"); l != j.end() && l->is_object()) {
    auto subnet = field<Ipv4Prefix>(*l, "subnet", "lease");
    auto ip = field<Ipv4Addr>(*l, "public_ip", "lease");
    auto mac = field<Mac>(*l, "vtep_mac", "lease");
    if (!subnet || !ip || !mac) return fail("weftd's /status: a malformed lease");
    d.lease = Lease{};
    d.lease->subnet = *subnet;
    d.lease->public_ip = *ip;
    d.lease->vtep_mac = *mac;
    d.env_mtu = number<int>(*l, "mtu");
    d.ipmasq = flag(*l, "ipmasq");
  }
  const json& v = j["vtep"];
  d.vtep.name = text(v, "name");
  d.vtep.vni = number<std::uint32_t>(v, "vni");
  d.vtep.port = number<std::uint16_t>(v, "port");
  if (auto a = Ipv4Addr::parse(text(v, "local_ip"))) d.vtep.local_ip = *a;
  d.vtep.mtu_wanted = number<int>(v, "mtu_wanted");
  if (auto it = v.find("backend_mtu"); it != v.end() && it->is_number()) d.vtep.backend_mtu = it->get<int>();
  d.vtep.learning = flag(v, "learning");
  d.vtep.gbp = flag(v, "gbp");
  d.vtep.direct_routing = flag(v, "direct_routing");
  d.vtep.ifindex = number<int>(v, "ifindex");
  d.vtep.mac = text(v, "mac");
  d.vtep.mtu = number<int>(v, "mtu");
  const json& u = j["underlay"];
  d.underlay.name = text(u, "name");
  d.underlay.ifindex = number<int>(u, "ifindex");
  if (auto a = Ipv4Addr::parse(text(u, "address"))) d.underlay.address = *a;
  if (auto a = Ipv4Addr::parse(text(u, "public_ip"))) d.underlay.public_ip = *a;
  d.underlay.mtu = number<int>(u, "mtu");
  for (const auto& p : j["peers"]) {
    auto peer = parse_peer(p);
    if (!peer) return fail("weftd's /status: " + peer.error());
    d.peers.push_back(std::move(peer).value());
  }
  for (const auto& s : j["skipped"]) d.skipped.push_back({text(s, "node"), text(s, "reason"), text(s, "by")});
  if (auto k = j.find("kubernetes"); k != j.end() && k->is_object()) {
    d.kubeconfig_file = text(*k, "kubeconfig_file");
    d.api_url = text(*k, "api_url");
  }
  return d;
}

}  // namespace weft::ctl
