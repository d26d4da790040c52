#pragma once
// Node annotations <-> values: a peer parsed from another Node's annotations, and the
// annotations that publish our own lease. Pure functions on strings (fuzzed; peers are untrusted).

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/lease.hpp"
#include "core/net_config.hpp"
#include "core/result.hpp"

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
  std::string claimed_at;    // RFC3339 UTC time the subnet was first confirmed; ranks overlapping claims
  // The IPv6 half of a dual-stack lease, named as flannel names its v6 annotations.
  std::string subnet_v6;        // "subnet-v6": the node's IPv6 subnet
  std::string public_ip_v6;     // "public-ipv6": the v6 underlay address (absent: VXLAN over the v4 one)
  std::string backend_v6_data;  // "backend-v6-data": {"VNI":1,"VtepMAC":"..."} of the v6 VTEP
  // flannel's scheme (net-conf.json FlannelCompat): a node's subnet is its spec.podCIDR(s), a
  // node joins with kube-subnet-manager "true", public-ip-overwrite beats public-ip.
  bool flannel = false;
  std::string kube_subnet_manager;  // "kube-subnet-manager"
  std::string public_ip_overwrite;  // "public-ip-overwrite"
  // An IPv6-only cluster's lease being verified ("subnet-v6-claim"), as subnet_claim is for IPv4.
  std::string subnet_v6_claim;
  static AnnotationKeys with_prefix(std::string_view prefix);
  static constexpr std::string_view kFlannelPrefix = "flannel.alpha.coreos.com";
  static AnnotationKeys flannel_compat();
  bool is_ours(std::string_view key) const { return key.starts_with(prefix); }
};

// What a peer must agree with to be routed. Its subnet must be exactly a /subnet_len inside
// network, at an address from subnet_min to subnet_max (anything wider would black-hole the
// nodes it covers).
struct PeerRules {
  std::optional<FamilyConfig<Ipv4Addr>> network;  // unset in an IPv6-only cluster
  std::string backend_type = "vxlan";
  std::uint32_t vni = 1;
  std::optional<Ipv4Prefix> own_subnet;              // a peer overlapping it is refused
  std::optional<FamilyConfig<Ipv6Addr>> network_v6;  // set when EnableIPv6
  std::optional<Ipv6Prefix> own_subnet_v6;
  // This node sends IPv6 VXLAN over an IPv6 underlay (it publishes public-ipv6). A peer must do
  // the same: a VXLAN device's remote has the family of its local address.
  bool v6_underlay = false;
};

// The VNI of the IPv6 overlay's VTEP: Backend.VNI over an IPv6 underlay (flannel's
// flannel-v6.<VNI>), VNI+1 over an IPv4 one, where weft.<VNI> already holds VNI and port
// for IPv4 sources (the kernel refuses two such devices).
std::uint32_t vni_v6(std::uint32_t vni, bool v6_underlay);

// The IPv6 half of a peer: its subnet, the v6 VTEP's MAC and, with a v6 underlay, the address
// VXLAN goes to.
struct PeerV6 {
  Ipv6Prefix subnet;
  Mac vtep_mac;
  std::optional<Ipv6Addr> public_ip;
  bool operator==(const PeerV6&) const = default;
};

// True when the Node carries any lease annotation (a Node without any has just not joined yet).
bool has_lease_annotations(const Annotations& a, const AnnotationKeys& keys);

// A peer from a Node's annotations, checked against the rules, or the reason it is refused,
// worded for a log line after "skip peer NAME: ". In an IPv6-only cluster (no IPv4 network in
// the rules) the IPv6 half is the peer: parsed here, and required.
Result<Peer> parse_peer(std::string_view name, const Annotations& a, const AnnotationKeys& keys,
                        const PeerRules& rules);

// A peer's IPv6 half, checked as parse_peer checks the IPv4 one: nullopt when the cluster has no
// IPv6 network or the Node publishes no v6 subnet; the reason when any v6 value is bad (an
// address outside the v6 network, an overlap, a bad MAC, a public-ipv6 that is link-local, ...).
// Kept apart from parse_peer so a bad v6 half costs the peer its v6 routes, not its v4 ones.
Result<std::optional<PeerV6>> parse_peer_v6(const Annotations& a, const AnnotationKeys& keys, const PeerRules& rules);

// True when `subnet` is one of the network's subnets: length subnet_len, SubnetMin..SubnetMax.
bool fits_network(const Ipv4Prefix& subnet, const FamilyConfig<Ipv4Addr>& net);
bool fits_network(const Ipv6Prefix& subnet, const FamilyConfig<Ipv6Addr>& net);

// The same range with SubnetMin/SubnetMax widened to the whole network: kube-controller-manager
// assigns podCIDRs anywhere in its cluster CIDR (the first node gets 10.244.0.0/24).
FamilyConfig<Ipv4Addr> whole_network(FamilyConfig<Ipv4Addr> net);
FamilyConfig<Ipv6Addr> whole_network(FamilyConfig<Ipv6Addr> net);

// Milliseconds since the Unix epoch of an RFC3339 UTC time ("2026-12-04T16:00:00Z", optional
// fraction); nullopt when malformed. Used for creationTimestamp and the claimed-at annotation.
std::optional<std::int64_t> parse_rfc3339_ms(std::string_view text);
std::string format_rfc3339_ms(std::int64_t ms);  // "2026-12-04T16:00:00.123Z"

// When a Node's claim on its subnet ranks (ms since the epoch): the later of its
// creationTimestamp (set by the API server, so it cannot be forged) and its claimed-at
// annotation (written by the node, so it only ever ranks the node later). kUnknownRank when the
// creationTimestamp is missing or malformed: such a claim loses to any dated one.
constexpr std::int64_t kUnknownRank = std::numeric_limits<std::int64_t>::max();
std::int64_t claim_rank(const std::string& creation_timestamp, const Annotations& a, const AnnotationKeys& keys);

// Our own annotations as left by a previous run; each field is empty when absent or malformed.
struct OwnAnnotations {
  std::optional<Ipv4Prefix> subnet;
  std::optional<Ipv4Prefix> subnet_claim;
  std::optional<std::int64_t> claimed_at_ms;
  std::optional<Ipv4Addr> public_ip;
  std::optional<Mac> vtep_mac;
  std::optional<Ipv6Prefix> subnet_v6;
  std::optional<Ipv6Addr> public_ip_v6;
  std::optional<Mac> vtep_mac_v6;
  std::optional<Ipv6Prefix> subnet_v6_claim;  // IPv6-only leases
};
OwnAnnotations parse_own(const Annotations& a, const AnnotationKeys& keys);

// Every subnet another Node holds or claims, for the allocator. Only values that are one of the
// network's subnets count (fits_network): a malformed value, a /16 or a /17 is skipped by every
// peer, so it must not make the network look full either.
void add_taken_subnets(const Annotations& a, const AnnotationKeys& keys, const FamilyConfig<Ipv4Addr>& net,
                       std::vector<Ipv4Prefix>& taken);
// The same for an IPv6-only cluster's leases (subnet-v6 and subnet-v6-claim).
void add_taken_subnets(const Annotations& a, const AnnotationKeys& keys, const FamilyConfig<Ipv6Addr>& net,
                       std::vector<Ipv6Prefix>& taken);

// The backend-data value: {"VNI":1,"VtepMAC":"0e:..."}.
std::string backend_data_json(std::uint32_t vni, const Mac& vtep_mac);

// A flannel node's annotations as weft's scheme has them: its subnets from spec.podCIDRs,
// public-ip-overwrite as public-ip; none at all without kube-subnet-manager "true" (not joined).
Annotations flannel_view(const Annotations& a, const std::vector<std::string>& pod_cidrs, const AnnotationKeys& keys);

// The patch without its deletes of keys `current` lacks. The API server stores such a delete
// as "" when the Node has no annotations at all, which would publish an empty value.
AnnotationPatch without_absent_deletes(AnnotationPatch patch, const Annotations& current);

// The patch that publishes a confirmed lease (and drops any claim), with its claim time.
AnnotationPatch lease_patch(const Lease& lease, const BackendConfig& backend, const AnnotationKeys& keys,
                            std::int64_t claimed_at_ms);

}  // namespace weft
