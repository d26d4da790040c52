#pragma once
// Node annotations <-> values: a peer parsed from another Node's annotations, and the
// annotations that publish our own lease. Pure functions on strings (fuzzed; peers are untrusted).

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "overlay/lease.hpp"
#include "overlay/net_config.hpp"
#include "overlay/result.hpp"

namespace weft {

using Annotations = std::map<std::string, std::string>;
// An annotation patch: a value sets the key, nullopt removes it.
using AnnotationPatch = std::map<std::string, std::optional<std::string>>;

// The annotation keys under a prefix ("weft.io" or "weft.io/" -> "weft.io/subnet", ...).
struct AnnotationKeys {
  std::string prefix;        // with the trailing '/'
  std::string subnet;        // a confirmed lease: peers route it
  std::string subnet_claim;  // a lease being verified: taken for allocation, never routed
  std::string public_ip;
  std::string backend_type;
  std::string backend_data;  // {"VNI":1,"VtepMAC":"0e:..."}
  static AnnotationKeys with_prefix(std::string_view prefix);
  bool is_ours(std::string_view key) const { return key.starts_with(prefix); }
};

// What a peer must agree with to be routed.
struct PeerRules {
  FamilyConfig<Ipv4Addr> network;
  std::string backend_type = "vxlan";
  std::uint32_t vni = 1;
  std::optional<Ipv4Prefix> own_subnet;  // a peer overlapping it is refused
};

// True when the Node carries any lease annotation (a Node without any has just not joined yet).
bool has_lease_annotations(const Annotations& a, const AnnotationKeys& keys);

// A peer from a Node's annotations, checked against the rules, or the reason it is refused,
// worded for a log line after "skip peer NAME: ".
Result<Peer> parse_peer(std::string_view name, const Annotations& a, const AnnotationKeys& keys,
                        const PeerRules& rules);

// Our own annotations as left by a previous run; each field is empty when absent or malformed.
struct OwnAnnotations {
  std::optional<Ipv4Prefix> subnet;
  std::optional<Ipv4Prefix> subnet_claim;
  std::optional<Ipv4Addr> public_ip;
  std::optional<Mac> vtep_mac;
};
OwnAnnotations parse_own(const Annotations& a, const AnnotationKeys& keys);

// Every subnet another Node holds or claims, for the allocator (malformed values are ignored:
// they cannot be routed, and the allocator must not trust them either way).
void add_taken_subnets(const Annotations& a, const AnnotationKeys& keys, std::vector<Ipv4Prefix>& taken);

// The backend-data value: {"VNI":1,"VtepMAC":"0e:..."}.
std::string backend_data_json(std::uint32_t vni, const Mac& vtep_mac);

// The patch that publishes a confirmed lease (and drops any claim).
AnnotationPatch lease_patch(const Lease& lease, const BackendConfig& backend, const AnnotationKeys& keys);

}  // namespace weft
