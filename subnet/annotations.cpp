#include "subnet/annotations.hpp"

#include <nlohmann/json.hpp>

namespace weft {
namespace {

constexpr std::size_t kMaxValue = 4096;  // no lease annotation is longer; peers are untrusted

std::string shown(std::string_view v) {
  std::string out = "\"";
  out.append(v.substr(0, 64));
  if (v.size() > 64) out += "...";
  return out + '"';
}

const std::string* find(const Annotations& a, const std::string& key) {
  auto it = a.find(key);
  return it == a.end() ? nullptr : &it->second;
}

struct BackendData {
  std::optional<std::uint32_t> vni;
  Mac vtep_mac;
};

Result<BackendData> parse_backend_data(const std::string& key, const std::string& text) {
  if (text.size() > kMaxValue) return fail(key + " is " + std::to_string(text.size()) + " bytes, too long");
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return fail(key + " " + shown(text) + " is not a JSON object like {\"VNI\":1,\"VtepMAC\":\"0e:...\"}");
  }
  auto mac_it = j.find("VtepMAC");
  if (mac_it == j.end() || !mac_it->is_string()) return fail(key + " has no \"VtepMAC\" string");
  auto mac = Mac::parse(mac_it->get_ref<const std::string&>());
  if (!mac) return fail(key + " VtepMAC: " + mac.error());
  if (mac->is_zero() || !mac->is_unicast()) return fail(key + " VtepMAC " + mac->str() + " is not a unicast MAC");
  BackendData d{std::nullopt, *mac};
  if (auto vni = j.find("VNI"); vni != j.end()) {
    if (!vni->is_number_unsigned() || vni->get<std::uint64_t>() > 0xffffffU) {
      return fail(key + " VNI " + vni->dump() + " is not a VNI (0 to 16777215)");
    }
    d.vni = vni->get<std::uint32_t>();
  }
  return d;
}

Result<Ipv4Prefix> parse_subnet(const std::string& key, const std::string& text, const PeerRules& rules) {
  auto subnet = Ipv4Prefix::parse(text.substr(0, kMaxValue));
  if (!subnet) return fail(key + ": " + subnet.error());
  if (!rules.network.network.contains(*subnet)) {
    return fail("subnet " + subnet->str() + " outside network " + rules.network.network.str());
  }
  if (rules.own_subnet && rules.own_subnet->overlaps(*subnet)) {
    return fail("subnet " + subnet->str() + " overlaps our own subnet " + rules.own_subnet->str());
  }
  return subnet;
}

Result<Ipv4Addr> parse_public_ip(const std::string& key, const std::string& text, const PeerRules& rules) {
  auto ip = Ipv4Addr::parse(text.substr(0, kMaxValue));
  if (!ip) return fail(key + ": " + ip.error());
  auto v = ip->to_uint();
  bool unusable = v == 0 || (v >> 24U) == 127 || (v >> 28U) >= 0xe;  // unspecified, loopback, multicast+
  if (unusable) return fail(key + " " + ip->str() + " is not a unicast address");
  if (rules.network.network.contains(*ip)) {
    return fail(key + " " + ip->str() + " is inside the cluster network " + rules.network.network.str());
  }
  return ip;
}

}  // namespace

AnnotationKeys AnnotationKeys::with_prefix(std::string_view prefix) {
  std::string p(prefix);
  while (!p.empty() && p.back() == '/') p.pop_back();
  p += '/';
  return {p, p + "subnet", p + "subnet-claim", p + "public-ip", p + "backend-type", p + "backend-data"};
}

bool has_lease_annotations(const Annotations& a, const AnnotationKeys& keys) {
  for (const auto* k : {&keys.subnet, &keys.public_ip, &keys.backend_type, &keys.backend_data}) {
    if (a.count(*k)) return true;
  }
  return false;
}

Result<Peer> parse_peer(std::string_view name, const Annotations& a, const AnnotationKeys& keys,
                        const PeerRules& rules) {
  const std::string* subnet_text = find(a, keys.subnet);
  if (!subnet_text) {
    if (find(a, keys.subnet_claim)) return fail("lease not confirmed yet (only " + keys.subnet_claim + ")");
    return fail("no " + keys.subnet + " annotation");
  }
  Peer peer;
  peer.name = std::string(name);
  auto subnet = parse_subnet(keys.subnet, *subnet_text, rules);
  if (!subnet) return subnet.take_error();
  peer.subnet = *subnet;

  const std::string* ip_text = find(a, keys.public_ip);
  if (!ip_text) return fail("no " + keys.public_ip + " annotation");
  auto ip = parse_public_ip(keys.public_ip, *ip_text, rules);
  if (!ip) return ip.take_error();
  peer.public_ip = *ip;

  const std::string* type = find(a, keys.backend_type);
  if (!type) return fail("no " + keys.backend_type + " annotation");
  if (*type != rules.backend_type) return fail("backend type " + shown(*type) + ", ours is " + rules.backend_type);

  const std::string* data_text = find(a, keys.backend_data);
  if (!data_text) return fail("no " + keys.backend_data + " annotation");
  auto data = parse_backend_data(keys.backend_data, *data_text);
  if (!data) return data.take_error();
  if (data->vni && *data->vni != rules.vni) {
    return fail("VNI " + std::to_string(*data->vni) + ", ours is " + std::to_string(rules.vni));
  }
  peer.vtep_mac = data->vtep_mac;
  return peer;
}

OwnAnnotations parse_own(const Annotations& a, const AnnotationKeys& keys) {
  OwnAnnotations own;
  if (const auto* s = find(a, keys.subnet)) {
    if (auto p = Ipv4Prefix::parse(s->substr(0, kMaxValue))) own.subnet = *p;
  }
  if (const auto* s = find(a, keys.subnet_claim)) {
    if (auto p = Ipv4Prefix::parse(s->substr(0, kMaxValue))) own.subnet_claim = *p;
  }
  if (const auto* s = find(a, keys.public_ip)) {
    if (auto ip = Ipv4Addr::parse(s->substr(0, kMaxValue))) own.public_ip = *ip;
  }
  if (const auto* s = find(a, keys.backend_data)) {
    if (auto d = parse_backend_data(keys.backend_data, *s)) own.vtep_mac = d->vtep_mac;
  }
  return own;
}

void add_taken_subnets(const Annotations& a, const AnnotationKeys& keys, std::vector<Ipv4Prefix>& taken) {
  for (const auto* k : {&keys.subnet, &keys.subnet_claim}) {
    if (const auto* s = find(a, *k)) {
      if (auto p = Ipv4Prefix::parse(s->substr(0, kMaxValue))) taken.push_back(*p);
    }
  }
}

std::string backend_data_json(std::uint32_t vni, const Mac& vtep_mac) {
  return "{\"VNI\":" + std::to_string(vni) + ",\"VtepMAC\":\"" + vtep_mac.str() + "\"}";
}

AnnotationPatch lease_patch(const Lease& lease, const BackendConfig& backend, const AnnotationKeys& keys) {
  return {
      {keys.subnet, lease.subnet.str()},
      {keys.subnet_claim, std::nullopt},
      {keys.public_ip, lease.public_ip.str()},
      {keys.backend_type, backend.type},
      {keys.backend_data, backend_data_json(backend.vni, lease.vtep_mac)},
  };
}

}  // namespace weft
