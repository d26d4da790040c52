#include "core/ip.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <limits>

namespace weft {
namespace {

// inet_pton needs a NUL-terminated string; anything this long is not an address.
constexpr std::size_t kMaxAddrText = 64;

std::string quoted(std::string_view text) {
  std::string out = "\"";
  out.append(text.substr(0, kMaxAddrText));
  if (text.size() > kMaxAddrText) out += "...";
  out += '"';
  return out;
}

}  // namespace

Result<Ipv4Addr> Ipv4Addr::parse(std::string_view text) {
  in_addr a{};
  if (text.size() > kMaxAddrText || inet_pton(AF_INET, std::string(text).c_str(), &a) != 1) {
    return fail(quoted(text) + " is not a valid IPv4 address (expected dotted decimal like 10.244.0.1)");
  }
  return Ipv4Addr(ntohl(a.s_addr));
}

Ipv4Addr Ipv4Addr::from_network_order(std::uint32_t be) { return Ipv4Addr(ntohl(be)); }

std::uint32_t Ipv4Addr::to_network_order() const { return htonl(v_); }

std::string Ipv4Addr::str() const {
  return std::to_string(v_ >> 24U) + '.' + std::to_string((v_ >> 16U) & 0xffU) + '.' +
         std::to_string((v_ >> 8U) & 0xffU) + '.' + std::to_string(v_ & 0xffU);
}

Result<Ipv6Addr> Ipv6Addr::parse(std::string_view text) {
  std::array<std::uint8_t, 16> bytes{};
  if (text.size() > kMaxAddrText || inet_pton(AF_INET6, std::string(text).c_str(), bytes.data()) != 1) {
    return fail(quoted(text) + " is not a valid IPv6 address (expected a form like fd00::1)");
  }
  return from_bytes(bytes);
}

Ipv6Addr Ipv6Addr::from_bytes(const std::array<std::uint8_t, 16>& bytes) {
  uint128 v = 0;
  for (std::uint8_t b : bytes) v = (v << 8U) | b;
  return Ipv6Addr(v);
}

std::array<std::uint8_t, 16> Ipv6Addr::to_bytes() const {
  std::array<std::uint8_t, 16> bytes{};
  uint128 v = v_;
  for (std::size_t i = bytes.size(); i-- > 0;) {
    bytes[i] = static_cast<std::uint8_t>(v & 0xffU);
    v >>= 8U;
  }
  return bytes;
}

std::string Ipv6Addr::str() const {
  auto bytes = to_bytes();
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(AF_INET6, bytes.data(), buf, sizeof buf);
  return buf;
}

template <class Addr>
typename Prefix<Addr>::Uint Prefix<Addr>::mask(int len) {
  if (len <= 0) return 0;
  return static_cast<Uint>(~Uint{0} << static_cast<unsigned>(kBits - len));
}

template <class Addr>
Result<Prefix<Addr>> Prefix<Addr>::parse(std::string_view text) {
  auto slash = text.find('/');
  if (slash == std::string_view::npos) {
    return fail(quoted(text) + " is not a " + Addr::kFamily + " prefix: expected address/length, like " +
                (kBits == 32 ? "10.244.0.0/16" : "fd00:10:244::/56"));
  }
  auto addr = Addr::parse(text.substr(0, slash));
  if (!addr) return fail("in prefix " + quoted(text) + ": " + addr.error());
  auto len_text = text.substr(slash + 1);
  int len = -1;
  auto [end, ec] = std::from_chars(len_text.data(), len_text.data() + len_text.size(), len);
  if (ec != std::errc{} || end != len_text.data() + len_text.size() || len < 0 || len > kBits ||
      len_text.empty() || len_text.front() == '+') {
    return fail("prefix " + quoted(text) + " has an invalid length: expected 0 to " + std::to_string(kBits));
  }
  auto p = containing(*addr, len);
  if (p.address() != *addr) {
    return fail("prefix " + quoted(text) + " has host bits set: the network of that length is " + p.str());
  }
  return p;
}

template <class Addr>
Prefix<Addr> Prefix<Addr>::containing(Addr addr, int len) {
  if (len < 0) len = 0;
  if (len > kBits) len = kBits;
  return Prefix(Addr(static_cast<Uint>(addr.to_uint() & mask(len))), len);
}

template <class Addr>
Addr Prefix<Addr>::first_host() const {
  if (len_ == kBits) return addr_;
  return Addr(static_cast<Uint>(addr_.to_uint() + 1U));
}

template <class Addr>
Addr Prefix<Addr>::last() const {
  return Addr(static_cast<Uint>(addr_.to_uint() | static_cast<Uint>(~mask(len_))));
}

template <class Addr>
std::string Prefix<Addr>::str() const {
  return addr_.str() + '/' + std::to_string(len_);
}

template <class Addr>
bool Prefix<Addr>::contains(Addr a) const {
  return (a.to_uint() & mask(len_)) == addr_.to_uint();
}

template <class Addr>
bool Prefix<Addr>::contains(const Prefix& other) const {
  return other.len_ >= len_ && contains(other.addr_);
}

template <class Addr>
bool Prefix<Addr>::overlaps(const Prefix& other) const {
  return contains(other.addr_) || other.contains(addr_);
}

template <class Addr>
std::uint64_t Prefix<Addr>::subnet_count(int len) const {
  if (len < len_ || len > kBits) return 0;
  int diff = len - len_;
  if (diff >= 64) return std::numeric_limits<std::uint64_t>::max();
  return std::uint64_t{1} << static_cast<unsigned>(diff);
}

template <class Addr>
std::optional<Prefix<Addr>> Prefix<Addr>::nth_subnet(int len, std::uint64_t n) const {
  if (len < len_ || len > kBits) return std::nullopt;
  int diff = len - len_;
  if (diff < 64 && n >= (std::uint64_t{1} << static_cast<unsigned>(diff))) return std::nullopt;
  if (len == 0) return *this;  // n is 0 here: the whole space
  auto offset = static_cast<Uint>(static_cast<Uint>(n) << static_cast<unsigned>(kBits - len));
  return Prefix(Addr(static_cast<Uint>(addr_.to_uint() + offset)), len);
}

template <class Addr>
std::optional<Prefix<Addr>> Prefix<Addr>::next() const {
  if (len_ == 0) return std::nullopt;
  auto size = static_cast<Uint>(Uint{1} << static_cast<unsigned>(kBits - len_));
  auto following = static_cast<Uint>(addr_.to_uint() + size);
  if (following < addr_.to_uint()) return std::nullopt;  // wrapped past the end of the space
  return Prefix(Addr(following), len_);
}

template class Prefix<Ipv4Addr>;
template class Prefix<Ipv6Addr>;

}  // namespace weft
