#include "core/mac.hpp"

#include <random>

namespace weft {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

Result<Mac> Mac::parse(std::string_view text) {
  auto bad = [&] {
    std::string shown(text.substr(0, 40));
    return fail("\"" + shown + (text.size() > 40 ? "..." : "") +
                "\" is not a valid MAC address (expected six hex pairs like 0e:8f:12:34:56:78)");
  };
  if (text.size() != 17) return bad();
  Bytes bytes{};
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    std::size_t at = i * 3;
    int hi = hex_value(text[at]);
    int lo = hex_value(text[at + 1]);
    if (hi < 0 || lo < 0) return bad();
    if (i + 1 < bytes.size() && text[at + 2] != ':' && text[at + 2] != '-') return bad();
    if (i > 0 && text[at - 1] != text[2]) return bad();  // one separator style throughout
    bytes[i] = static_cast<std::uint8_t>(hi * 16 + lo);
  }
  return Mac(bytes);
}

Mac Mac::random_local() {
  std::random_device rd;
  Bytes bytes{};
  for (auto& b : bytes) b = static_cast<std::uint8_t>(rd() & 0xffU);
  bytes[0] = static_cast<std::uint8_t>((bytes[0] & 0xfeU) | 0x02U);  // unicast, locally administered
  return Mac(bytes);
}

std::string Mac::str() const {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(17);
  for (std::size_t i = 0; i < bytes_.size(); ++i) {
    if (i) out += ':';
    out += kHex[bytes_[i] >> 4U];
    out += kHex[bytes_[i] & 0x0fU];
  }
  return out;
}

}  // namespace weft
