#include "subnet/allocator.hpp"

#include <algorithm>
#include <utility>

namespace weft {
namespace {

// Subnets in the range are numbered 0..count-1 from SubnetMin.
struct Range {
  std::uint64_t first;  // SubnetMin >> host bits
  std::uint64_t count;
  unsigned shift;  // host bits of a subnet
};

Range range_of(const FamilyConfig<Ipv4Addr>& net) {
  auto shift = static_cast<unsigned>(Ipv4Addr::kBits - net.subnet_len);
  std::uint64_t first = std::uint64_t{net.subnet_min.to_uint()} >> shift;
  std::uint64_t last = std::uint64_t{net.subnet_max.to_uint()} >> shift;
  return {first, last >= first ? last - first + 1 : 0, shift};
}

// The taken prefixes as merged, sorted [begin, end) intervals of subnet numbers.
std::vector<std::pair<std::uint64_t, std::uint64_t>> taken_intervals(const Range& r,
                                                                     const std::vector<Ipv4Prefix>& taken) {
  std::vector<std::pair<std::uint64_t, std::uint64_t>> spans;
  for (const auto& p : taken) {
    std::uint64_t lo = std::uint64_t{p.address().to_uint()} >> r.shift;
    std::uint64_t hi = (std::uint64_t{p.last().to_uint()} >> r.shift) + 1;
    lo = std::max(lo, r.first);
    hi = std::min(hi, r.first + r.count);
    if (lo < hi) spans.emplace_back(lo - r.first, hi - r.first);
  }
  std::sort(spans.begin(), spans.end());
  std::vector<std::pair<std::uint64_t, std::uint64_t>> merged;
  for (const auto& s : spans) {
    if (!merged.empty() && s.first <= merged.back().second) {
      merged.back().second = std::max(merged.back().second, s.second);
    } else {
      merged.push_back(s);
    }
  }
  return merged;
}

Ipv4Prefix subnet_at(const Range& r, std::uint64_t n) {
  return Ipv4Prefix::containing(Ipv4Addr(static_cast<Ipv4Addr::Uint>((r.first + n) << r.shift)),
                                Ipv4Addr::kBits - static_cast<int>(r.shift));
}

std::uint64_t taken_total(const std::vector<std::pair<std::uint64_t, std::uint64_t>>& spans) {
  std::uint64_t n = 0;
  for (const auto& s : spans) n += s.second - s.first;
  return n;
}

}  // namespace

std::uint64_t leasable_count(const FamilyConfig<Ipv4Addr>& net) { return range_of(net).count; }

std::vector<Ipv4Prefix> free_subnets(const FamilyConfig<Ipv4Addr>& net, const std::vector<Ipv4Prefix>& taken) {
  Range r = range_of(net);
  auto spans = taken_intervals(r, taken);
  std::vector<Ipv4Prefix> out;
  std::uint64_t n = 0;
  for (const auto& s : spans) {
    for (; n < s.first; ++n) out.push_back(subnet_at(r, n));
    n = s.second;
  }
  for (; n < r.count; ++n) out.push_back(subnet_at(r, n));
  return out;
}

std::uint64_t count_free(const FamilyConfig<Ipv4Addr>& net, const std::vector<Ipv4Prefix>& taken) {
  Range r = range_of(net);
  return r.count - taken_total(taken_intervals(r, taken));
}

Result<Ipv4Prefix> pick_free_subnet(const FamilyConfig<Ipv4Addr>& net, const std::vector<Ipv4Prefix>& taken,
                                    std::mt19937_64& rng) {
  Range r = range_of(net);
  auto spans = taken_intervals(r, taken);
  std::uint64_t free = r.count - taken_total(spans);
  if (free == 0) {
    return fail("network " + net.network.str() + " is full: all " + std::to_string(r.count) + " /" +
                std::to_string(net.subnet_len) + " subnets from SubnetMin " + net.subnet_min.str() + " to SubnetMax " +
                net.subnet_max.str() + " are leased; remove departed Nodes or enlarge Network in net-conf.json");
  }
  // The k-th free number: step over every taken interval that starts at or before it.
  std::uint64_t k = std::uniform_int_distribution<std::uint64_t>(0, free - 1)(rng);
  for (const auto& s : spans) {
    if (s.first > k) break;
    k += s.second - s.first;
  }
  return subnet_at(r, k);
}

Result<Ipv6Prefix> paired_subnet_v6(const Ipv4Prefix& v4, const FamilyConfig<Ipv4Addr>& net4,
                                    const FamilyConfig<Ipv6Addr>& net6) {
  const auto shift = static_cast<unsigned>(Ipv4Addr::kBits - net4.subnet_len);
  const std::uint64_t n = std::uint64_t{v4.address().to_uint() - net4.network.address().to_uint()} >> shift;
  auto v6 = net6.network.nth_subnet(net6.subnet_len, n);
  if (v6 && v6->address() >= net6.subnet_min && v6->address() <= net6.subnet_max) return *v6;
  return fail("the IPv6 subnet paired with lease " + v4.str() + " would be number " + std::to_string(n) +
              " of IPv6Network " + net6.network.str() + " in /" + std::to_string(net6.subnet_len) +
              "s, outside IPv6SubnetMin..IPv6SubnetMax (" + net6.subnet_min.str() + ".." + net6.subnet_max.str() +
              "): leased nodes take the IPv6 subnet with their IPv4 subnet's number, so give IPv6Network at least "
              "as many subnets as Network (" +
              std::to_string(net4.network.subnet_count(net4.subnet_len)) + ")");
}

}  // namespace weft
