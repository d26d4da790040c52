#include "subnet/annotations.hpp"

#include <algorithm>
#include <cstdio>
#include <initializer_list>
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

// An empty value is no value: a merge patch that deletes a key the Node never had is stored by
// the API server as "" (the null lands in a map that did not exist), and kubectl users write "".
const std::string* find(const Annotations& a, const std::string& key) {
  auto it = a.find(key);
  return it == a.end() || it->second.empty() ? nullptr : &it->second;
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

template <class Addr>
Result<Prefix<Addr>> parse_subnet_in(const std::string& key, const std::string& text, const FamilyConfig<Addr>& net,
                                     const std::optional<Prefix<Addr>>& own_subnet) {
  auto subnet = Prefix<Addr>::parse(text.substr(0, kMaxValue));
  if (!subnet) return fail(key + ": " + subnet.error());
  if (!net.network.contains(*subnet)) {
    return fail("subnet " + subnet->str() + " outside network " + net.network.str());
  }
  if (subnet->length() != net.subnet_len) {
    return fail("subnet " + subnet->str() + " is a /" + std::to_string(subnet->length()) +
                ", the cluster's subnets are /" + std::to_string(net.subnet_len) +
                " (SubnetLen): it would cover other nodes' subnets");
  }
  if (subnet->address() < net.subnet_min || subnet->address() > net.subnet_max) {
    return fail("subnet " + subnet->str() + " outside the leasable range " + net.subnet_min.str() + " to " +
                net.subnet_max.str() + " (SubnetMin, SubnetMax)");
  }
  if (own_subnet && own_subnet->overlaps(*subnet)) {
    return fail("subnet " + subnet->str() + " overlaps our own subnet " + own_subnet->str());
  }
  return subnet;
}

Result<Ipv4Prefix> parse_subnet(const std::string& key, const std::string& text, const PeerRules& rules) {
  return parse_subnet_in(key, text, *rules.network, rules.own_subnet);
}

Result<Ipv4Addr> parse_public_ip(const std::string& key, const std::string& text, const PeerRules& rules) {
  auto ip = Ipv4Addr::parse(text.substr(0, kMaxValue));
  if (!ip) return fail(key + ": " + ip.error());
  auto v = ip->to_uint();
  bool unusable = v == 0 || (v >> 24U) == 127 || (v >> 28U) >= 0xe;  // unspecified, loopback, multicast+
  if (unusable) return fail(key + " " + ip->str() + " is not a unicast address");
  if (rules.network->network.contains(*ip)) {
    return fail(key + " " + ip->str() + " is inside the cluster network " + rules.network->network.str());
  }
  return ip;
}

// A v6 underlay address VXLAN can be sent to: global or unique-local unicast. Link-local needs
// an interface the annotation cannot name; v4-mapped would be the v4 underlay in disguise.
Result<Ipv6Addr> parse_public_ipv6(const std::string& key, const std::string& text, const FamilyConfig<Ipv6Addr>& net) {
  auto ip = Ipv6Addr::parse(text.substr(0, kMaxValue));
  if (!ip) return fail(key + ": " + ip.error());
  const auto v = ip->to_uint();
  const auto top16 = static_cast<unsigned>(v >> 112U);
  if (v == 0 || v == 1 || (top16 >> 8U) == 0xffU) return fail(key + " " + ip->str() + " is not a unicast address");
  if ((top16 & 0xffc0U) == 0xfe80U) return fail(key + " " + ip->str() + " is link-local: it names no interface");
  if ((v >> 32U) == 0xffffU) return fail(key + " " + ip->str() + " is an IPv4-mapped address: use public-ip");
  if (net.network.contains(*ip)) {
    return fail(key + " " + ip->str() + " is inside the cluster's IPv6 network " + net.network.str());
  }
  return ip;
}

}  // namespace

Result<std::optional<PeerV6>> parse_peer_v6(const Annotations& a, const AnnotationKeys& keys, const PeerRules& rules) {
  if (!rules.network_v6) return std::optional<PeerV6>{};
  const std::string* subnet_text = find(a, keys.subnet_v6);
  if (!subnet_text) return std::optional<PeerV6>{};
  auto subnet = parse_subnet_in(keys.subnet_v6, *subnet_text, *rules.network_v6, rules.own_subnet_v6);
  if (!subnet) return subnet.take_error();
  const std::string* data_text = find(a, keys.backend_v6_data);
  if (!data_text) return fail("no " + keys.backend_v6_data + " annotation beside " + keys.subnet_v6);
  auto data = parse_backend_data(keys.backend_v6_data, *data_text);
  if (!data) return data.take_error();
  PeerV6 peer{*subnet, data->vtep_mac, std::nullopt};
  if (const std::string* ip_text = find(a, keys.public_ip_v6)) {
    auto ip = parse_public_ipv6(keys.public_ip_v6, *ip_text, *rules.network_v6);
    if (!ip) return ip.take_error();
    peer.public_ip = *ip;
  }
  if (peer.public_ip.has_value() != rules.v6_underlay) {
    return fail(rules.v6_underlay
                    ? "no " + keys.public_ip_v6 +
                          ": it sends IPv6 VXLAN over IPv4 and this node over IPv6; "
                          "give every node an IPv6 underlay address (--public-ipv6) or none"
                    : keys.public_ip_v6 + " " + peer.public_ip->str() +
                          ": it sends IPv6 VXLAN over IPv6 and this node over IPv4; give every node an IPv6 "
                          "underlay address (--public-ipv6) or none");
  }
  const std::uint32_t want = vni_v6(rules.vni, rules.v6_underlay);
  if (data->vni && *data->vni != want) {
    return fail(keys.backend_v6_data + " VNI " + std::to_string(*data->vni) + ", ours is " + std::to_string(want) +
                (rules.v6_underlay ? "" : " (Backend.VNI + 1: IPv6 VXLAN over an IPv4 underlay)"));
  }
  return std::optional<PeerV6>{peer};
}

AnnotationKeys AnnotationKeys::with_prefix(std::string_view prefix) {
  std::string p(prefix);
  while (!p.empty() && p.back() == '/') p.pop_back();
  p += '/';
  return {p,
          p + "subnet",
          p + "subnet-claim",
          p + "public-ip",
          p + "backend-type",
          p + "backend-data",
          p + "claimed-at",
          p + "subnet-v6",
          p + "public-ipv6",
          p + "backend-v6-data",
          false,
          p + "kube-subnet-manager",
          p + "public-ip-overwrite",
          p + "subnet-v6-claim"};
}

AnnotationKeys AnnotationKeys::flannel_compat() {
  AnnotationKeys k = with_prefix(kFlannelPrefix);
  k.flannel = true;
  return k;
}

Annotations flannel_view(const Annotations& a, const std::vector<std::string>& pod_cidrs, const AnnotationKeys& keys) {
  const std::string* joined = find(a, keys.kube_subnet_manager);
  if (!joined || *joined != "true") return {};  // flannel ignores such a node too
  Annotations out = a;
  out.erase(keys.subnet);  // never taken from an annotation: flannel writes none
  out.erase(keys.subnet_v6);
  for (const auto& cidr : pod_cidrs) {
    const std::string& key = cidr.find(':') == std::string::npos ? keys.subnet : keys.subnet_v6;
    out.emplace(key, cidr);  // the first of each family, as spec.podCIDRs orders them
  }
  if (const std::string* ip = find(a, keys.public_ip_overwrite)) out[keys.public_ip] = *ip;
  return out;
}

namespace {
template <class Addr>
bool fits(const Prefix<Addr>& subnet, const FamilyConfig<Addr>& net) {
  return net.network.contains(subnet) && subnet.length() == net.subnet_len && subnet.address() >= net.subnet_min &&
         subnet.address() <= net.subnet_max;
}
}  // namespace

bool fits_network(const Ipv4Prefix& subnet, const FamilyConfig<Ipv4Addr>& net) { return fits(subnet, net); }
bool fits_network(const Ipv6Prefix& subnet, const FamilyConfig<Ipv6Addr>& net) { return fits(subnet, net); }

namespace {
template <class Addr>
FamilyConfig<Addr> widened(FamilyConfig<Addr> net) {
  net.subnet_min = net.network.address();
  net.subnet_max = Prefix<Addr>::containing(net.network.last(), net.subnet_len).address();
  return net;
}
}  // namespace

FamilyConfig<Ipv4Addr> whole_network(FamilyConfig<Ipv4Addr> net) { return widened(std::move(net)); }
FamilyConfig<Ipv6Addr> whole_network(FamilyConfig<Ipv6Addr> net) { return widened(std::move(net)); }

namespace {

// Days from 1970-01-01 to y-m-d (proleptic Gregorian; H. Hinnant's days_from_civil).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

bool digits(std::string_view t, std::size_t at, std::size_t n, unsigned& out) {
  if (at + n > t.size()) return false;
  out = 0;
  for (std::size_t i = at; i < at + n; ++i) {
    if (t[i] < '0' || t[i] > '9') return false;
    out = out * 10 + static_cast<unsigned>(t[i] - '0');
  }
  return true;
}

}  // namespace

std::optional<std::int64_t> parse_rfc3339_ms(std::string_view t) {
  unsigned y, mo, d, h, mi, s;
  if (t.size() < 20 || t.size() > 40) return std::nullopt;
  if (!digits(t, 0, 4, y) || t[4] != '-' || !digits(t, 5, 2, mo) || t[7] != '-' || !digits(t, 8, 2, d) ||
      (t[10] != 'T' && t[10] != 't') || !digits(t, 11, 2, h) || t[13] != ':' || !digits(t, 14, 2, mi) || t[16] != ':' ||
      !digits(t, 17, 2, s)) {
    return std::nullopt;
  }
  if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) return std::nullopt;
  std::size_t i = 19;
  unsigned ms = 0;
  if (t[i] == '.') {
    std::size_t n = 0;
    for (++i; i < t.size() && t[i] >= '0' && t[i] <= '9'; ++i, ++n) {
      if (n < 3) ms = ms * 10 + static_cast<unsigned>(t[i] - '0');
    }
    if (n == 0) return std::nullopt;
    for (; n < 3; ++n) ms *= 10;
  }
  if (i + 1 != t.size() || (t[i] != 'Z' && t[i] != 'z')) return std::nullopt;
  std::int64_t days = days_from_civil(y, mo, d);
  return ((days * 24 + h) * 60 + mi) * 60000 + static_cast<std::int64_t>(s) * 1000 + ms;
}

std::int64_t claim_rank(const std::string& creation_timestamp, const Annotations& a, const AnnotationKeys& keys) {
  auto created = parse_rfc3339_ms(creation_timestamp);
  if (!created) return kUnknownRank;
  // A claim cannot predate its Node: a newcomer that writes an old claimed-at still ranks at
  // its creation, after the owner it copies. A claim in the future only ranks itself later.
  const auto* text = find(a, keys.claimed_at);
  auto claimed = text ? parse_rfc3339_ms(*text) : std::nullopt;
  return std::max(*created, claimed.value_or(*created));
}

std::string format_rfc3339_ms(std::int64_t ms) {
  std::int64_t secs = ms / 1000;
  auto days = secs / 86400;
  auto rem = secs % 86400;
  // civil_from_days (H. Hinnant)
  std::int64_t z = days + 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  const std::int64_t y = static_cast<std::int64_t>(yoe) + era * 400 + (m <= 2);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04lld-%02u-%02uT%02lld:%02lld:%02lld.%03lldZ", static_cast<long long>(y), m, d,
                static_cast<long long>(rem / 3600), static_cast<long long>(rem / 60 % 60),
                static_cast<long long>(rem % 60), static_cast<long long>(ms % 1000));
  return buf;
}

bool has_lease_annotations(const Annotations& a, const AnnotationKeys& keys) {
  for (const auto* k : {&keys.subnet, &keys.public_ip, &keys.backend_type, &keys.backend_data, &keys.subnet_v6,
                        &keys.public_ip_v6, &keys.backend_v6_data}) {
    if (find(a, *k)) return true;
  }
  return false;
}

namespace {

Status check_backend_type(const Annotations& a, const AnnotationKeys& keys, const PeerRules& rules) {
  const std::string* type = find(a, keys.backend_type);
  if (!type) return fail("no " + keys.backend_type + " annotation");
  if (*type != rules.backend_type) return fail("backend type " + shown(*type) + ", ours is " + rules.backend_type);
  return ok_status();
}

// An IPv6-only cluster's peer: its IPv6 half, which it must have.
Result<Peer> parse_peer_v6_only(std::string_view name, const Annotations& a, const AnnotationKeys& keys,
                                const PeerRules& rules) {
  if (auto st = check_backend_type(a, keys, rules); !st) return st.take_error();
  // Without an IPv4 underlay, IPv6 VXLAN rides the IPv6 one whatever the rules say: a peer
  // without public-ipv6 would have no address to send to at all.
  PeerRules v6_rules = rules;
  v6_rules.v6_underlay = true;
  auto v6 = parse_peer_v6(a, keys, v6_rules);
  if (!v6) return v6.take_error();
  if (!*v6) {
    if (find(a, keys.subnet_v6_claim)) return fail("lease not confirmed yet (only " + keys.subnet_v6_claim + ")");
    if (find(a, keys.subnet)) return fail("an IPv4 subnet only (" + keys.subnet + "), and this cluster is IPv6-only");
    return fail("no " + keys.subnet_v6 + " annotation");
  }
  Peer peer;
  peer.name = std::string(name);
  peer.subnet_v6 = (*v6)->subnet;
  peer.vtep_mac_v6 = (*v6)->vtep_mac;
  peer.public_ip_v6 = (*v6)->public_ip;
  return peer;
}

}  // namespace

Result<Peer> parse_peer(std::string_view name, const Annotations& a, const AnnotationKeys& keys,
                        const PeerRules& rules) {
  if (!rules.network) return parse_peer_v6_only(name, a, keys, rules);
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

  if (auto st = check_backend_type(a, keys, rules); !st) return st.take_error();

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
  if (const auto* s = find(a, keys.claimed_at)) own.claimed_at_ms = parse_rfc3339_ms(*s);
  if (const auto* s = find(a, keys.backend_data)) {
    if (auto d = parse_backend_data(keys.backend_data, *s)) own.vtep_mac = d->vtep_mac;
  }
  if (const auto* s = find(a, keys.subnet_v6)) {
    if (auto p = Ipv6Prefix::parse(s->substr(0, kMaxValue))) own.subnet_v6 = *p;
  }
  if (const auto* s = find(a, keys.public_ip_v6)) {
    if (auto ip = Ipv6Addr::parse(s->substr(0, kMaxValue))) own.public_ip_v6 = *ip;
  }
  if (const auto* s = find(a, keys.backend_v6_data)) {
    if (auto d = parse_backend_data(keys.backend_v6_data, *s)) own.vtep_mac_v6 = d->vtep_mac;
  }
  if (const auto* s = find(a, keys.subnet_v6_claim)) {
    if (auto p = Ipv6Prefix::parse(s->substr(0, kMaxValue))) own.subnet_v6_claim = *p;
  }
  return own;
}

namespace {
template <class Addr>
void add_taken(const Annotations& a, std::initializer_list<const std::string*> keys, const FamilyConfig<Addr>& net,
               std::vector<Prefix<Addr>>& taken) {
  for (const auto* k : keys) {
    if (const auto* s = find(a, *k)) {
      auto p = Prefix<Addr>::parse(s->substr(0, kMaxValue));
      if (p && fits_network(*p, net)) taken.push_back(*p);
    }
  }
}
}  // namespace

void add_taken_subnets(const Annotations& a, const AnnotationKeys& keys, const FamilyConfig<Ipv4Addr>& net,
                       std::vector<Ipv4Prefix>& taken) {
  add_taken(a, {&keys.subnet, &keys.subnet_claim}, net, taken);
}

void add_taken_subnets(const Annotations& a, const AnnotationKeys& keys, const FamilyConfig<Ipv6Addr>& net,
                       std::vector<Ipv6Prefix>& taken) {
  add_taken(a, {&keys.subnet_v6, &keys.subnet_v6_claim}, net, taken);
}

AnnotationPatch without_absent_deletes(AnnotationPatch patch, const Annotations& current) {
  std::erase_if(patch, [&](const auto& kv) { return !kv.second && !current.contains(kv.first); });
  return patch;
}

std::uint32_t vni_v6(std::uint32_t vni, bool v6_underlay) { return v6_underlay ? vni : (vni + 1) & 0xffffffU; }

std::string backend_data_json(std::uint32_t vni, const Mac& vtep_mac) {
  return "{\"VNI\":" + std::to_string(vni) + ",\"VtepMAC\":\"" + vtep_mac.str() + "\"}";
}

AnnotationPatch lease_patch(const Lease& lease, const BackendConfig& backend, const AnnotationKeys& keys,
                            std::int64_t claimed_at_ms) {
  AnnotationPatch patch{{keys.backend_type, backend.type}};
  if (keys.flannel) {
    patch[keys.kube_subnet_manager] = "true";  // the subnet is spec.podCIDR: no key of weft's own
  } else {
    patch[keys.claimed_at] = format_rfc3339_ms(claimed_at_ms);
  }
  if (lease.subnet && lease.vtep_mac && lease.public_ip) {
    patch[keys.public_ip] = lease.public_ip->str();
    patch[keys.backend_data] = backend_data_json(backend.vni, *lease.vtep_mac);
    if (!keys.flannel) {
      patch[keys.subnet] = lease.subnet->str();
      patch[keys.subnet_claim] = std::nullopt;
    }
  }
  // The v6 half only with its VTEP's MAC: a v6 subnet without it would be refused by every peer.
  if (lease.subnet_v6 && lease.vtep_mac_v6) {
    if (!keys.flannel) {
      patch[keys.subnet_v6] = lease.subnet_v6->str();
      if (!lease.subnet) patch[keys.subnet_v6_claim] = std::nullopt;  // IPv6-only: the lease's own claim
    }
    patch[keys.backend_v6_data] =
        backend_data_json(vni_v6(backend.vni, lease.public_ip_v6.has_value()), *lease.vtep_mac_v6);
    patch[keys.public_ip_v6] =
        lease.public_ip_v6 ? std::optional<std::string>(lease.public_ip_v6->str()) : std::nullopt;
  }
  return patch;
}

}  // namespace weft
