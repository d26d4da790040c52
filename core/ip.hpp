#pragma once
// IPv4/IPv6 addresses and prefixes as small value types.

#include <array>
#include <compare>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.hpp"

namespace weft {

__extension__ using uint128 = unsigned __int128;  // GCC/Clang extension; IPv6 arithmetic

// An IPv4 address, held in host byte order.
class Ipv4Addr {
 public:
  using Uint = std::uint32_t;
  static constexpr int kBits = 32;
  static constexpr const char* kFamily = "IPv4";

  constexpr Ipv4Addr() = default;
  constexpr explicit Ipv4Addr(Uint v) : v_(v) {}
  static Result<Ipv4Addr> parse(std::string_view text);
  static Ipv4Addr from_network_order(std::uint32_t be);

  constexpr Uint to_uint() const { return v_; }
  std::uint32_t to_network_order() const;
  std::string str() const;
  bool is_unspecified() const { return v_ == 0; }
  auto operator<=>(const Ipv4Addr&) const = default;

 private:
  Uint v_ = 0;
};

// An IPv6 address, held as a 128-bit integer (most significant byte first on the wire).
class Ipv6Addr {
 public:
  using Uint = uint128;
  static constexpr int kBits = 128;
  static constexpr const char* kFamily = "IPv6";

  constexpr Ipv6Addr() = default;
  constexpr explicit Ipv6Addr(Uint v) : v_(v) {}
  static Result<Ipv6Addr> parse(std::string_view text);
  static Ipv6Addr from_bytes(const std::array<std::uint8_t, 16>& bytes);

  constexpr Uint to_uint() const { return v_; }
  std::array<std::uint8_t, 16> to_bytes() const;
  std::string str() const;  // RFC 5952 form (zero runs compressed)
  bool is_unspecified() const { return v_ == 0; }
  auto operator<=>(const Ipv6Addr&) const = default;

 private:
  Uint v_ = 0;
};

// A network prefix (address + length) whose host bits are zero.
template <class Addr>
class Prefix {
 public:
  using Uint = typename Addr::Uint;
  static constexpr int kBits = Addr::kBits;

  Prefix() = default;
  // Rejects host bits: "10.244.1.0/16" is an error that suggests "10.244.0.0/16".
  static Result<Prefix> parse(std::string_view text);
  // Masks host bits away; for addresses a caller already trusts.
  static Prefix containing(Addr addr, int len);

  Addr address() const { return addr_; }
  int length() const { return len_; }
  Addr first_host() const;  // the network address + 1 (the address itself for /32, /128)
  Addr last() const;        // the highest address inside
  std::string str() const;

  bool contains(Addr a) const;
  bool contains(const Prefix& other) const;
  bool overlaps(const Prefix& other) const;

  // How many subnets of length `len` fit (saturates at UINT64_MAX); 0 when len < length().
  std::uint64_t subnet_count(int len) const;
  // The n-th subnet of length `len` inside this prefix (n from 0), if it exists.
  std::optional<Prefix> nth_subnet(int len, std::uint64_t n) const;
  // The prefix of the same length right after this one, if the address space has one.
  std::optional<Prefix> next() const;

  auto operator<=>(const Prefix&) const = default;

 private:
  Prefix(Addr addr, int len) : addr_(addr), len_(len) {}
  static Uint mask(int len);

  Addr addr_{};
  int len_ = 0;
};

using Ipv4Prefix = Prefix<Ipv4Addr>;
using Ipv6Prefix = Prefix<Ipv6Addr>;

extern template class Prefix<Ipv4Addr>;
extern template class Prefix<Ipv6Addr>;

}  // namespace weft

template <>
struct std::hash<weft::Ipv4Addr> {
  std::size_t operator()(const weft::Ipv4Addr& a) const noexcept { return a.to_uint(); }
};
template <>
struct std::hash<weft::Ipv4Prefix> {
  std::size_t operator()(const weft::Ipv4Prefix& p) const noexcept {
    return (std::size_t{p.address().to_uint()} << 6U) ^ static_cast<std::size_t>(p.length());
  }
};
