// net-conf.json: NetConfig::parse on arbitrary bytes. When it accepts, every subnet it would
// hand out lies inside the network, the VXLAN settings are in range, and the effective config
// it prints parses back to the same values.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/net_config.hpp"
#include "test/fuzz/check.hpp"

namespace {

template <class Addr>
void check_family(const weft::FamilyConfig<Addr>& fc, const std::string& family) {
  const auto& net = fc.network;
  const std::string shown = family + " " + net.str() + " /" + std::to_string(fc.subnet_len) + " " +
                            fc.subnet_min.str() + ".." + fc.subnet_max.str();
  FUZZ_CHECK(fc.subnet_len > net.length() && fc.subnet_len <= Addr::kBits, "subnet length: " + shown);
  auto min = weft::Prefix<Addr>::containing(fc.subnet_min, fc.subnet_len);
  auto max = weft::Prefix<Addr>::containing(fc.subnet_max, fc.subnet_len);
  FUZZ_CHECK(min.address() == fc.subnet_min && max.address() == fc.subnet_max, "bounds not aligned: " + shown);
  FUZZ_CHECK(net.contains(min) && net.contains(max), "subnet range outside the network: " + shown);
  FUZZ_CHECK(fc.subnet_min <= fc.subnet_max, "empty subnet range: " + shown);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto cfg = weft::NetConfig::parse(text);
  if (!cfg) {
    FUZZ_CHECK(!cfg.error().empty(), "a refused config must say why");
    return 0;
  }
  FUZZ_CHECK(cfg->ipv4 || cfg->ipv6, "accepted a config with no address family");
  if (cfg->ipv4) check_family(*cfg->ipv4, "IPv4");
  if (cfg->ipv6) check_family(*cfg->ipv6, "IPv6");

  const auto& b = cfg->backend;
  FUZZ_CHECK(b.type == "vxlan", "backend type " + b.type);
  FUZZ_CHECK(b.vni >= 1 && b.vni <= 0xffffffU, "VNI " + std::to_string(b.vni));
  FUZZ_CHECK(b.port != 0, "UDP port 0");
  FUZZ_CHECK(!b.mtu || (*b.mtu >= 68 && *b.mtu <= 65535), "MTU " + std::to_string(*b.mtu));
  FUZZ_CHECK(!cfg->ipv6 || !b.mtu || *b.mtu >= 1280, "IPv6 with MTU " + std::to_string(*b.mtu));

  // weftd logs the effective config with to_json(): it must mean the same thing when read back.
  const std::string printed = cfg->to_json();
  auto again = weft::NetConfig::parse(printed);
  FUZZ_CHECK(again.ok(),
             "to_json() output does not parse: " + (again ? std::string() : again.error()) + "\n" + printed);
  FUZZ_CHECK(again->ipv4 == cfg->ipv4 && again->ipv6 == cfg->ipv6 && again->backend == cfg->backend,
             "to_json() round trip changed the config:\n" + printed);
  return 0;
}
