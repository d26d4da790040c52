#pragma once
// Small helpers shared by the subnet tests.

#include <catch2/catch.hpp>
#include <string>

#include "core/net_config.hpp"

namespace weft::test {

// net-conf.json text -> NetConfig (the test fails on a parse error).
inline NetConfig net_config(const std::string& json) {
  auto r = NetConfig::parse(json);
  if (!r) FAIL("net-conf: " << r.error());
  return *r;
}

inline FamilyConfig<Ipv4Addr> v4(const std::string& json) { return *net_config(json).ipv4; }

inline FamilyConfig<Ipv6Addr> v6(const std::string& json) { return *net_config(json).ipv6; }

inline Ipv6Prefix pfx6(const std::string& s) {
  auto r = Ipv6Prefix::parse(s);
  if (!r) FAIL(r.error());
  return *r;
}

inline Ipv4Prefix pfx(const std::string& s) {
  auto r = Ipv4Prefix::parse(s);
  if (!r) FAIL(r.error());
  return *r;
}

}  // namespace weft::test
