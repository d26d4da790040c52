#pragma once
// weftd's GET /status answers for weftctl's unit tests: a v4-only weftd's, a dual-stack
// one's (IPv6 VXLAN over an IPv6 underlay, or over the IPv4 one) and an IPv6-only one's, shaped
// as overlay/agent.cpp writes them.

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "cmd/weftctl/daemon_status.hpp"

namespace weft::ctl::test {

using nlohmann::json;

// node2 and node3 with subnets 10.244.{2,3}.0/24; this node has 10.244.9.0/24 on weft.1 over eth0 (ifindex 2).
inline json status_v4() {
  return json::parse(R"({
    "ready": true, "subnet_file": "/run/weft/subnet.env", "network": "10.244.0.0/16",
    "lease": {"subnet": "10.244.9.0/24", "public_ip": "192.0.2.9", "vtep_mac": "0e:00:00:00:00:09",
              "network": "10.244.0.0/16", "mtu": 1450, "ipmasq": true},
    "vtep": {"name": "weft.1", "vni": 1, "port": 8472, "local_ip": "192.0.2.9", "mtu_wanted": 1450,
             "backend_mtu": null, "learning": false, "gbp": false, "direct_routing": false},
    "underlay": {"name": "eth0", "ifindex": 2, "address": "192.0.2.9", "public_ip": "192.0.2.9", "mtu": 1500},
    "peers": [
      {"node": "node2", "subnet": "10.244.2.0/24", "gateway": "10.244.2.0", "public_ip": "192.0.2.2",
       "vtep_mac": "0e:00:00:00:00:02"},
      {"node": "node3", "subnet": "10.244.3.0/24", "gateway": "10.244.3.0", "public_ip": "192.0.2.3",
       "vtep_mac": "0e:00:00:00:00:03"}],
    "skipped": [],
    "kubernetes": {"kubeconfig_file": "", "api_url": "https://127.0.0.1:1"}})");
}

// The same node dual stack: IPv6 network fd00:10:244::/48, this node fd00:10:244:9::/64 on
// weft-v6.<VNI>; node2 has an IPv6 half, node3's was refused (it keeps its IPv4 routes).
inline json status_dual(bool v6_underlay) {
  json j = status_v4();
  j["lease"].update(
      {{"subnet_v6", "fd00:10:244:9::/64"}, {"network_v6", "fd00:10:244::/48"}, {"vtep_mac_v6", "0e:00:00:00:06:09"}});
  j["network_v6"] = "fd00:10:244::/48";
  j["vtep6"] = {{"name", v6_underlay ? "weft-v6.1" : "weft-v6.2"},
                {"vni", v6_underlay ? 1 : 2},
                {"port", 8472},
                {"local_ip", v6_underlay ? "2001:db8::9" : "192.0.2.9"},
                {"mtu_wanted", v6_underlay ? 1430 : 1450},
                {"backend_mtu", nullptr},
                {"learning", false},
                {"gbp", false}};
  j["peers"][0].update(
      {{"subnet_v6", "fd00:10:244:2::/64"}, {"gateway_v6", "fd00:10:244:2::"}, {"vtep_mac_v6", "0e:00:00:00:06:02"}});
  if (v6_underlay) {
    j["lease"]["public_ip_v6"] = "2001:db8::9";
    j["underlay"].update({{"address_v6", "2001:db8::9"}, {"public_ip_v6", "2001:db8::9"}});
    j["peers"][0]["public_ip_v6"] = "2001:db8::2";
  }
  j["skipped"].push_back({{"node", "node3"},
                          {"reason",
                           "IPv6 half refused, IPv4 routed: subnet_v6 fd00:99::/64 outside network "
                           "fd00:10:244::/48"},
                          {"by", "backend"}});
  return j;
}

// The same node IPv6-only, over the IPv6 underlay: weftd omits every IPv4 key (no "vtep", no
// "network", no IPv4 half in the lease, the peers or the underlay's addresses).
inline json status_v6_only() {
  return json::parse(R"({
    "ready": true, "subnet_file": "/run/weft/subnet.env", "network_v6": "fd00:10:244::/48",
    "lease": {"subnet_v6": "fd00:10:244:9::/64", "network_v6": "fd00:10:244::/48",
              "vtep_mac_v6": "0e:00:00:00:06:09", "public_ip_v6": "2001:db8::9", "mtu": 1430, "ipmasq": true},
    "vtep6": {"name": "weft-v6.1", "vni": 1, "port": 8472, "local_ip": "2001:db8::9", "mtu_wanted": 1430,
              "backend_mtu": null, "learning": false, "gbp": false},
    "underlay": {"name": "eth0", "ifindex": 2, "mtu": 1500, "address_v6": "2001:db8::9",
                 "public_ip_v6": "2001:db8::9"},
    "peers": [
      {"node": "node2", "subnet_v6": "fd00:10:244:2::/64", "gateway_v6": "fd00:10:244:2::",
       "vtep_mac_v6": "0e:00:00:00:06:02", "public_ip_v6": "2001:db8::2"},
      {"node": "node3", "subnet_v6": "fd00:10:244:3::/64", "gateway_v6": "fd00:10:244:3::",
       "vtep_mac_v6": "0e:00:00:00:06:03", "public_ip_v6": "2001:db8::3"}],
    "skipped": [],
    "kubernetes": {"kubeconfig_file": "", "api_url": "https://127.0.0.1:1"}})");
}

inline DaemonStatus parsed(const json& j) {
  auto d = parse_datapath_status(j.dump());
  INFO((d ? std::string() : d.error()));
  REQUIRE(d);
  return std::move(d).value();
}

}  // namespace weft::ctl::test
