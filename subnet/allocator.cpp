#include "subnet/allocator.hpp"

#include <algorithm>
#include <utility>

namespace weft {
namespace {

// Subnets in the range are numbered 0..count-1 from SubnetMin, so an IPv6 range's /64s fit in
// 64 bits wherever SubnetMin lies in the network.
struct Range {
  uint128 base;  // SubnetMin's address: subnet number 0
  std::uint64_t count;
  unsigned shift;  // host bits of a subnet
};

// Beyond 2^62 subnets (IPv6 only) the range is cut: nobody leases that many.
constexpr uint128 kMaxNumber = uint128{1} << 62U;

template <class Addr>
Range range_of(const FamilyConfig<Addr>& net) {
  auto shift = static_cast<unsigned>(Addr::kBits - net.subnet_len);
  uint128 base = net.subnet_min.to_uint();
  if (net.subnet_max < net.subnet_min || net.subnet_min < net.network.address()) return {base, 0, shift};
  // The last number, capped before the +1 so that no width overflows.
  uint128 last = std::min((uint128{net.subnet_max.to_uint()} - base) >> shift, kMaxNumber - 1);
  return {base, static_cast<std::uint64_t>(last + 1), shift};
}

// The taken prefixes as merged, sorted [begin, end) intervals of subnet numbers.
template <class Addr>
std::vector<std::pair<std::uint64_t, std::uint64_t>> taken_intervals(const Range& r,
                                                                     const std::vector<Prefix<Addr>>& taken) {
  std::vector<std::pair<std::uint64_t, std::uint64_t>> spans;
  auto number = [&](uint128 a) { return static_cast<std::uint64_t>(std::min((a - r.base) >> r.shift, kMaxNumber)); };
  for (const auto& p : taken) {
    uint128 lo_addr = p.address().to_uint(), hi_addr = p.last().to_uint();
    if (hi_addr < r.base) continue;
    std::uint64_t lo = number(std::max(lo_addr, r.base));
    std::uint64_t hi = std::min(number(hi_addr) + 1, r.count);
    if (lo < hi) spans.emplace_back(lo, hi);
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

template <class Addr>
Prefix<Addr> subnet_at(const Range& r, std::uint64_t n) {
  uint128 a = r.base + (uint128{n} << r.shift);
  return Prefix<Addr>::containing(Addr(static_cast<typename Addr::Uint>(a)), Addr::kBits - static_cast<int>(r.shift));
}

std::uint64_t taken_total(const std::vector<std::pair<std::uint64_t, std::uint64_t>>& spans) {
  std::uint64_t n = 0;
  for (const auto& s : spans) n += s.second - s.first;
  return n;
}

}  // namespace

template <class Addr>
std::uint64_t leasable_count(const FamilyConfig<Addr>& net) {
  return range_of(net).count;
}

template <class Addr>
std::vector<Prefix<Addr>> free_subnets(const FamilyConfig<Addr>& net, const std::vector<Prefix<Addr>>& taken) {
  Range r = range_of(net);
  auto spans = taken_intervals(r, taken);
  std::vector<Prefix<Addr>> out;
  std::uint64_t n = 0;
  for (const auto& s : spans) {
    for (; n < s.first; ++n) out.push_back(subnet_at<Addr>(r, n));
    n = s.second;
  }
  for (; n < r.count; ++n) out.push_back(subnet_at<Addr>(r, n));
  return out;
}

template <class Addr>
std::uint64_t count_free(const FamilyConfig<Addr>& net, const std::vector<Prefix<Addr>>& taken) {
  Range r = range_of(net);
  return r.count - taken_total(taken_intervals(r, taken));
}

template <class Addr>
Result<Prefix<Addr>> pick_free_subnet(const FamilyConfig<Addr>& net, const std::vector<Prefix<Addr>>& taken,
                                      std::mt19937_64& rng) {
  Range r = range_of(net);
  auto spans = taken_intervals(r, taken);
  std::uint64_t free = r.count - taken_total(spans);
  if (free == 0) {
    const std::string v6 = Addr::kBits == 128 ? "IPv6" : "";
    return fail("network " + net.network.str() + " is full: all " + std::to_string(r.count) + " /" +
                std::to_string(net.subnet_len) + " subnets from " + v6 + "SubnetMin " + net.subnet_min.str() + " to " +
                v6 + "SubnetMax " + net.subnet_max.str() + " are leased; remove departed Nodes or enlarge " +
                (v6.empty() ? "Network" : "IPv6Network") + " in net-conf.json");
  }
  // The k-th free number: step over every taken interval that starts at or before it.
  std::uint64_t k = std::uniform_int_distribution<std::uint64_t>(0, free - 1)(rng);
  for (const auto& s : spans) {
    if (s.first > k) break;
    k += s.second - s.first;
  }
  return subnet_at<Addr>(r, k);
}

#define WEFT_ALLOCATOR_INSTANTIATE(Addr)                                                                        \
  template std::uint64_t leasable_count(const FamilyConfig<Addr>&);                                             \
  template std::vector<Prefix<Addr>> free_subnets(const FamilyConfig<Addr>&, const std::vector<Prefix<Addr>>&); \
  template std::uint64_t count_free(const FamilyConfig<Addr>&, const std::vector<Prefix<Addr>>&);               \
  template Result<Prefix<Addr>> pick_free_subnet(const FamilyConfig<Addr>&, const std::vector<Prefix<Addr>>&,   \
                                                 std::mt19937_64&);
WEFT_ALLOCATOR_INSTANTIATE(Ipv4Addr)
WEFT_ALLOCATOR_INSTANTIATE(Ipv6Addr)
#undef WEFT_ALLOCATOR_INSTANTIATE

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
