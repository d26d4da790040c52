#pragma once
// The pure subnet allocator: which subnets of the cluster network are free, and a random pick.

#include <cstdint>
#include <random>
#include <vector>

#include "core/ip.hpp"
#include "core/net_config.hpp"
#include "core/result.hpp"

namespace weft {

// The leasable range: subnets of length subnet_len from SubnetMin to SubnetMax inside network.
// For either family (IPv6 in an IPv6-only cluster); at most 2^62 subnets (from SubnetMin) are counted.
template <class Addr>
std::uint64_t leasable_count(const FamilyConfig<Addr>& net);

// Every free subnet in SubnetMin..SubnetMax, in address order. `taken` may hold prefixes of any
// length (a /23 podCIDR covers two /24s); anything outside the range is ignored. For tests and
// small networks: prefer count_free/pick_free_subnet, which do not enumerate.
template <class Addr>
std::vector<Prefix<Addr>> free_subnets(const FamilyConfig<Addr>& net, const std::vector<Prefix<Addr>>& taken);

template <class Addr>
std::uint64_t count_free(const FamilyConfig<Addr>& net, const std::vector<Prefix<Addr>>& taken);

// A free subnet chosen uniformly at random (so that nodes joining at once rarely collide), or
// a "network full" error naming the network, the range and how many subnets it holds.
template <class Addr>
Result<Prefix<Addr>> pick_free_subnet(const FamilyConfig<Addr>& net, const std::vector<Prefix<Addr>>& taken,
                                      std::mt19937_64& rng);

// The IPv6 subnet a leased IPv4 subnet brings with it in a dual-stack cluster of leases: the
// /IPv6SubnetLen with the same number in IPv6Network as `v4` has in Network (10.244.7.0/24 ->
// fd00:10:244:7::/64 for fd00:10:244::/56). The IPv4 lease is unique (write-then-verify), so the
// IPv6 one is too, without a second protocol round. An error when that number is outside
// IPv6SubnetMin..IPv6SubnetMax: it names both ranges and the fix.
Result<Ipv6Prefix> paired_subnet_v6(const Ipv4Prefix& v4, const FamilyConfig<Ipv4Addr>& net4,
                                    const FamilyConfig<Ipv6Addr>& net6);

#define WEFT_ALLOCATOR_EXTERN(Addr)                                                                                    \
  extern template std::uint64_t leasable_count(const FamilyConfig<Addr>&);                                             \
  extern template std::vector<Prefix<Addr>> free_subnets(const FamilyConfig<Addr>&, const std::vector<Prefix<Addr>>&); \
  extern template std::uint64_t count_free(const FamilyConfig<Addr>&, const std::vector<Prefix<Addr>>&);               \
  extern template Result<Prefix<Addr>> pick_free_subnet(const FamilyConfig<Addr>&, const std::vector<Prefix<Addr>>&,   \
                                                        std::mt19937_64&);
WEFT_ALLOCATOR_EXTERN(Ipv4Addr)
WEFT_ALLOCATOR_EXTERN(Ipv6Addr)
#undef WEFT_ALLOCATOR_EXTERN

}  // namespace weft
