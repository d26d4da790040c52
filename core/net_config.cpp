#include "core/net_config.hpp"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace weft {
namespace {

// Backend.MTU is the outer packets' MTU (flannel's meaning): the VTEP gets 50 bytes less over
// IPv4 and 70 less over IPv6, and must keep IPv4's 68 and IPv6's 1280.
constexpr std::int64_t kMinBackendMtu = 68 + 50;
constexpr int kMinBackendMtuV6 = 1280 + 70;

using nlohmann::json;

constexpr std::size_t kMaxConfigBytes = 1 << 20;

std::string show(const json& v) {
  std::string s = v.dump();
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

std::string type_name(const json& v) {
  if (v.is_number_float()) return "a fractional number";
  if (v.is_number()) return "a number";
  if (v.is_string()) return "a string";
  if (v.is_boolean()) return "a boolean";
  if (v.is_null()) return "null";
  if (v.is_array()) return "an array";
  return "an object";
}

Error wrong_type(const std::string& key, const json& v, const std::string& expected) {
  return fail("\"" + key + "\" must be " + expected + ", got " + show(v) + " (" + type_name(v) + ")");
}

// Reads optional typed keys out of one JSON object and warns about keys it never asked for.
class ObjectReader {
 public:
  ObjectReader(const json& obj, std::string path) : obj_(obj), path_(std::move(path)) {}

  Result<std::optional<bool>> boolean(const std::string& key) {
    const json* v = find(key);
    if (!v) return std::optional<bool>{};
    if (!v->is_boolean()) return wrong_type(name(key), *v, "true or false");
    return std::optional<bool>{v->get<bool>()};
  }

  Result<std::optional<std::int64_t>> integer(const std::string& key, std::int64_t min, std::int64_t max) {
    const json* v = find(key);
    if (!v) return std::optional<std::int64_t>{};
    std::string range = "a whole number from " + std::to_string(min) + " to " + std::to_string(max);
    if (!v->is_number_integer()) return wrong_type(name(key), *v, range);
    bool negative = v->is_number_integer() && !v->is_number_unsigned() && v->get<std::int64_t>() < 0;
    if (!negative && v->get<std::uint64_t>() > static_cast<std::uint64_t>(max)) {
      return fail("\"" + name(key) + "\" is " + show(*v) + ", out of range: allowed is " + range);
    }
    auto n = v->get<std::int64_t>();
    if (n < min) return fail("\"" + name(key) + "\" is " + show(*v) + ", out of range: allowed is " + range);
    return std::optional<std::int64_t>{n};
  }

  Result<std::optional<std::string>> string(const std::string& key) {
    const json* v = find(key);
    if (!v) return std::optional<std::string>{};
    if (!v->is_string()) return wrong_type(name(key), *v, "a string");
    return std::optional<std::string>{v->get<std::string>()};
  }

  const json* object(const std::string& key) { return find(key); }

  void warn_unknown(std::vector<std::string>& warnings) const {
    for (const auto& [key, value] : obj_.items()) {
      if (!asked_.count(key)) {
        warnings.push_back("unknown key \"" + name(key) + "\" in net-conf.json is ignored");
      }
    }
  }

  std::string name(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }

 private:
  const json* find(const std::string& key) {
    asked_.insert({key, true});
    auto it = obj_.find(key);
    return it == obj_.end() ? nullptr : &*it;
  }

  const json& obj_;
  std::string path_;
  std::map<std::string, bool> asked_;
};

// Key names and limits that differ between the IPv4 and IPv6 halves of the config.
struct FamilyKeys {
  std::string network, subnet_len, subnet_min, subnet_max, enable, example;
  int max_subnet_len;    // leaves room for the gateway and at least one pod
  int smallest_network;  // longest network prefix that still holds four subnets
  int default_len;       // SubnetLen when the network is large enough
};

const FamilyKeys kV4Keys{"Network", "SubnetLen", "SubnetMin", "SubnetMax", "EnableIPv4", "10.244.0.0/16", 30, 28, 24};
const FamilyKeys kV6Keys{
    "IPv6Network", "IPv6SubnetLen", "IPv6SubnetMin", "IPv6SubnetMax", "EnableIPv6", "fd00:10:244::/56", 126, 126, 64};

template <class Addr>
Result<Addr> subnet_bound(ObjectReader& r, const FamilyKeys& keys, const std::string& key, const Prefix<Addr>& network,
                          int len, Addr fallback) {
  auto text = r.string(key);
  if (!text) return text.take_error();
  if (!*text) return fallback;
  auto addr = Addr::parse(**text);
  if (!addr) return fail("\"" + key + "\": " + addr.error());
  if (!network.contains(*addr)) {
    return fail("\"" + key + "\" is " + addr->str() + ", outside " + keys.network + " " + network.str());
  }
  auto aligned = Prefix<Addr>::containing(*addr, len);
  if (aligned.address() != *addr) {
    return fail("\"" + key + "\" is " + addr->str() + ", not on a /" + std::to_string(len) + " boundary (" +
                keys.subnet_len + "); the subnet containing it starts at " + aligned.address().str());
  }
  return *addr;
}

template <class Addr>
Result<int> subnet_len(ObjectReader& r, const FamilyKeys& keys, const Prefix<Addr>& network) {
  auto given = r.integer(keys.subnet_len, 0, Addr::kBits);
  if (!given) return given.take_error();
  int net_len = network.length();
  if (*given) {
    auto len = static_cast<int>(**given);
    if (len > keys.max_subnet_len || len < net_len + 2) {
      return fail("\"" + keys.subnet_len + "\" is " + std::to_string(len) + " but must be from " +
                  std::to_string(net_len + 2) + " to " + std::to_string(keys.max_subnet_len) + " for " + keys.network +
                  " " + network.str() + " (the network must hold at least four subnets)");
    }
    return len;
  }
  if (net_len > keys.smallest_network) {
    return fail("\"" + keys.network + "\" " + network.str() + " is too small: the longest usable prefix is /" +
                std::to_string(keys.smallest_network));
  }
  return net_len <= keys.default_len - 2 ? keys.default_len : net_len + 2;
}

template <class Addr>
Result<FamilyConfig<Addr>> parse_family(ObjectReader& r, const FamilyKeys& keys) {
  auto text = r.string(keys.network);
  if (!text) return text.take_error();
  if (!*text) {
    return fail("\"" + keys.network + "\" is required when \"" + keys.enable + "\" is true (for example \"" +
                keys.example + "\")");
  }
  auto network = Prefix<Addr>::parse(**text);
  if (!network) return fail("\"" + keys.network + "\": " + network.error());

  FamilyConfig<Addr> fc;
  fc.network = *network;
  auto len = subnet_len(r, keys, *network);
  if (!len) return len.take_error();
  fc.subnet_len = *len;

  // Like flannel, the first subnet is skipped by default: its address is the network's own.
  Addr first = network->nth_subnet(fc.subnet_len, 1)->address();
  Addr last = Prefix<Addr>::containing(network->last(), fc.subnet_len).address();

  auto min = subnet_bound(r, keys, keys.subnet_min, *network, fc.subnet_len, first);
  if (!min) return min.take_error();
  auto max = subnet_bound(r, keys, keys.subnet_max, *network, fc.subnet_len, last);
  if (!max) return max.take_error();
  if (*min > *max) {
    return fail("\"" + keys.subnet_min + "\" " + min->str() + " is above \"" + keys.subnet_max + "\" " + max->str());
  }
  fc.subnet_min = *min;
  fc.subnet_max = *max;
  return fc;
}

Result<BackendConfig> parse_backend(const json* obj, std::vector<std::string>& warnings) {
  BackendConfig b;
  if (!obj) return b;
  if (!obj->is_object()) return wrong_type("Backend", *obj, "an object like {\"Type\":\"vxlan\"}");
  ObjectReader r(*obj, "Backend");

  auto type = r.string("Type");
  if (!type) return type.take_error();
  if (*type && **type != "vxlan") {
    return fail("\"Backend.Type\" is \"" + **type + "\": weft supports only \"vxlan\"");
  }
  auto vni = r.integer("VNI", 1, (1 << 24) - 1);
  if (!vni) return vni.take_error();
  if (*vni) b.vni = static_cast<std::uint32_t>(**vni);
  auto port = r.integer("Port", 1, 65535);
  if (!port) return port.take_error();
  if (*port) b.port = static_cast<std::uint16_t>(**port);
  auto mtu = r.integer("MTU", kMinBackendMtu, 65535);  // the VTEP gets MTU - 50: at least IPv4's 68
  if (!mtu) return mtu.take_error();
  if (*mtu) b.mtu = static_cast<int>(**mtu);

  for (auto [key, field] :
       {std::pair{"GBP", &b.gbp}, {"Learning", &b.learning}, {"DirectRouting", &b.direct_routing}}) {
    auto v = r.boolean(key);
    if (!v) return v.take_error();
    if (*v) *field = **v;
  }
  r.warn_unknown(warnings);
  return b;
}

Result<SubnetSource> parse_subnet_source(ObjectReader& r) {
  auto text = r.string("SubnetSource");
  if (!text) return text.take_error();
  if (!*text) return SubnetSource::Auto;
  for (auto s : {SubnetSource::Auto, SubnetSource::PodCidr, SubnetSource::Lease}) {
    if (**text == to_string(s)) return s;
  }
  return fail("\"SubnetSource\" is " + show(json(**text)) +
              ": allowed are \"podCIDR\" (wait for kube-controller-manager's spec.podCIDR), \"lease\" (node "
              "annotations) or \"auto\" (the default: decided from the cluster)");
}

}  // namespace

const char* to_string(SubnetSource s) {
  switch (s) {
    case SubnetSource::PodCidr:
      return "podCIDR";
    case SubnetSource::Lease:
      return "lease";
    case SubnetSource::Auto:
      break;
  }
  return "auto";
}

Result<NetConfig> NetConfig::parse(std::string_view json_text) {
  json root;
  try {
    root = json::parse(json_text);
  } catch (const json::exception& e) {  // parse_error, and out_of_range for numbers like 1e400
    return fail(std::string("net-conf.json is not valid JSON: ") + e.what());
  }
  if (!root.is_object()) return fail("net-conf.json must be a JSON object, got " + type_name(root));

  NetConfig cfg;
  ObjectReader r(root, "");
  auto v4 = r.boolean("EnableIPv4");
  if (!v4) return v4.take_error();
  auto v6 = r.boolean("EnableIPv6");
  if (!v6) return v6.take_error();
  bool enable_v4 = v4->value_or(true);
  bool enable_v6 = v6->value_or(false);
  if (!enable_v4 && !enable_v6) return fail("\"EnableIPv4\" and \"EnableIPv6\" are both false: enable at least one");

  if (enable_v4) {
    auto fc = parse_family<Ipv4Addr>(r, kV4Keys);
    if (!fc) return fc.take_error();
    cfg.ipv4 = *fc;
  }
  if (enable_v6) {
    auto fc = parse_family<Ipv6Addr>(r, kV6Keys);
    if (!fc) return fc.take_error();
    cfg.ipv6 = *fc;
  }
  auto source = parse_subnet_source(r);
  if (!source) return source.take_error();
  cfg.subnet_source = *source;
  auto compat = r.boolean("FlannelCompat");
  if (!compat) return compat.take_error();
  cfg.flannel_compat = compat->value_or(false);
  if (cfg.flannel_compat && cfg.subnet_source == SubnetSource::Lease) {
    return fail(
        "\"FlannelCompat\" is true with \"SubnetSource\": \"lease\": flannel nodes take their subnet from "
        "spec.podCIDR only, so weft must too (remove SubnetSource, and run kube-controller-manager with "
        "--allocate-node-cidrs, as kubeadm --pod-network-cidr does)");
  }
  if (cfg.flannel_compat) cfg.subnet_source = SubnetSource::PodCidr;
  auto backend = parse_backend(r.object("Backend"), cfg.warnings);
  if (!backend) return backend.take_error();
  cfg.backend = *backend;
  if (cfg.ipv6 && cfg.backend.mtu && *cfg.backend.mtu < kMinBackendMtuV6) {
    return fail("\"Backend.MTU\" is " + std::to_string(*cfg.backend.mtu) +
                ": IPv6 pods need a VTEP MTU of 1280, and VXLAN over IPv6 takes 70 bytes: at least " +
                std::to_string(kMinBackendMtuV6) + " (Backend.MTU is the outer packets' MTU, as in flannel)");
  }
  // Keys of the family that is off are read so that they are not reported as unknown.
  for (const auto* keys : {&kV4Keys, &kV6Keys}) {
    for (const auto& k : {keys->network, keys->subnet_len, keys->subnet_min, keys->subnet_max}) r.object(k);
  }
  r.warn_unknown(cfg.warnings);
  return cfg;
}

Result<NetConfig> NetConfig::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return fail("cannot read net-conf.json at " + path +
                ": no such file or no permission (set --net-config-path, or mount the weft ConfigMap there)");
  }
  std::string text(kMaxConfigBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<std::size_t>(in.gcount()));
  if (text.size() > kMaxConfigBytes) return fail(path + " is larger than 1 MiB: not a net-conf.json");
  auto cfg = parse(text);
  if (!cfg) return fail(path + ": " + cfg.error());
  return cfg;
}

std::string NetConfig::to_json() const {
  json j;
  j["EnableIPv4"] = ipv4.has_value();
  j["EnableIPv6"] = ipv6.has_value();
  if (ipv4) {
    j["Network"] = ipv4->network.str();
    j["SubnetLen"] = ipv4->subnet_len;
    j["SubnetMin"] = ipv4->subnet_min.str();
    j["SubnetMax"] = ipv4->subnet_max.str();
  }
  if (ipv6) {
    j["IPv6Network"] = ipv6->network.str();
    j["IPv6SubnetLen"] = ipv6->subnet_len;
    j["IPv6SubnetMin"] = ipv6->subnet_min.str();
    j["IPv6SubnetMax"] = ipv6->subnet_max.str();
  }
  j["SubnetSource"] = to_string(subnet_source);
  j["FlannelCompat"] = flannel_compat;
  json b;
  b["Type"] = backend.type;
  b["VNI"] = backend.vni;
  b["Port"] = backend.port;
  if (backend.mtu) b["MTU"] = *backend.mtu;
  b["GBP"] = backend.gbp;
  b["Learning"] = backend.learning;
  b["DirectRouting"] = backend.direct_routing;
  j["Backend"] = b;
  return j.dump(2);
}

}  // namespace weft
