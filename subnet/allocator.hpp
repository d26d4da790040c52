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
std::uint64_t leasable_count(const FamilyConfig<Ipv4Addr>& net);

// Every free subnet in SubnetMin..SubnetMax, in address order. `taken` may hold prefixes of any
// length (a /23 podCIDR covers two /24s); anything outside the range is ignored. For tests and
// small networks: prefer count_free/pick_free_subnet, which do not enumerate.
std::vector<Ipv4Prefix> free_subnets(const FamilyConfig<Ipv4Addr>& net, const std::vector<Ipv4Prefix>& taken);

std::uint64_t count_free(const FamilyConfig<Ipv4Addr>& net, const std::vector<Ipv4Prefix>& taken);

// A free subnet chosen uniformly at random (so that nodes joining at once rarely collide), or
// a "network full" error naming the network, the range and how many subnets it holds.
Result<Ipv4Prefix> pick_free_subnet(const FamilyConfig<Ipv4Addr>& net, const std::vector<Ipv4Prefix>& taken,
                                    std::mt19937_64& rng);

// The IPv6 subnet a leased IPv4 subnet brings with it in a dual-stack cluster of leases: the
// /IPv6SubnetLen with the same number in IPv6Network as `v4` has in Network (10.244.7.0/24 ->
// fd00:10:244:7::/64 for fd00:10:244::/56). The IPv4 lease is unique (write-then-verify), so the
// IPv6 one is too, without a second protocol round. An error when that number is outside
// IPv6SubnetMin..IPv6SubnetMax: it names both ranges and the fix.
Result<Ipv6Prefix> paired_subnet_v6(const Ipv4Prefix& v4, const FamilyConfig<Ipv4Addr>& net4,
                                    const FamilyConfig<Ipv6Addr>& net6);

}  // namespace weft
