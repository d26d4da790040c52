#pragma once
// Catch printers and set comparison for backend values, shared by unit and kernel tests.

#include <algorithm>
#include <catch2/catch.hpp>
#include <vector>

#include "backend/netlink/types.hpp"
#include "backend/vxlan/diff.hpp"

namespace Catch {
template <>
struct StringMaker<weft::Neighbor> {
  static std::string convert(const weft::Neighbor& v) { return weft::to_string(v); }
};
template <>
struct StringMaker<weft::FdbEntry> {
  static std::string convert(const weft::FdbEntry& v) { return weft::to_string(v); }
};
template <>
struct StringMaker<weft::Route> {
  static std::string convert(const weft::Route& v) { return weft::to_string(v); }
};
template <>
struct StringMaker<weft::Address> {
  static std::string convert(const weft::Address& v) { return weft::to_string(v); }
};
template <>
struct StringMaker<weft::Neighbor6> {
  static std::string convert(const weft::Neighbor6& v) { return weft::to_string(v); }
};
template <>
struct StringMaker<weft::Route6> {
  static std::string convert(const weft::Route6& v) { return weft::to_string(v); }
};
template <>
struct StringMaker<weft::Address6> {
  static std::string convert(const weft::Address6& v) { return weft::to_string(v); }
};
template <>
struct StringMaker<weft::Write> {
  static std::string convert(const weft::Write& v) { return weft::to_string(v); }
};
template <>
struct StringMaker<weft::Op> {
  static std::string convert(const weft::Op& v) {
    return std::string("[") + weft::to_string(v.phase) + "] " + weft::to_string(v.write) + " (" + v.peer + ")";
  }
};
}  // namespace Catch

namespace weft::test {

// The same elements, in any order.
template <class T>
bool same_set(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::is_permutation(a.begin(), a.end(), b.begin());
}

}  // namespace weft::test
