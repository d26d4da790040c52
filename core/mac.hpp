#pragma once
// A 48-bit Ethernet (VTEP) MAC address.

#include <array>
#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/result.hpp"

namespace weft {

class Mac {
 public:
  using Bytes = std::array<std::uint8_t, 6>;

  constexpr Mac() = default;
  constexpr explicit Mac(Bytes bytes) : bytes_(bytes) {}
  // Accepts six hex pairs separated by ':' (or '-'), any case.
  static Result<Mac> parse(std::string_view text);
  // A random locally-administered unicast address (for a new VTEP).
  static Mac random_local();

  const Bytes& bytes() const { return bytes_; }
  std::string str() const;  // lower case, ':' separated
  bool is_zero() const { return bytes_ == Bytes{}; }
  bool is_unicast() const { return (bytes_[0] & 0x01U) == 0; }
  bool is_local() const { return (bytes_[0] & 0x02U) != 0; }
  auto operator<=>(const Mac&) const = default;

 private:
  Bytes bytes_{};
};

}  // namespace weft
