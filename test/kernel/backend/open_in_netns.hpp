#pragma once
// The first steps of every kernel fixture here: a NetlinkImpl opened inside the test's
// namespace and a link of that namespace, each failing the test when it cannot be had.

#include <catch2/catch.hpp>
#include <memory>
#include <string>

#include "backend/netlink/netlink_impl.hpp"
#include "test/support/netns.hpp"

namespace weft::test {

inline std::unique_ptr<NetlinkImpl> open_in(const Netns& ns) {
  auto opened = NetlinkImpl::open(ns.path());
  REQUIRE(opened);
  return std::move(opened).value();
}

inline Link require_link(Netlink& nl, const std::string& name) {
  auto link = nl.get_link(name);
  REQUIRE(link);
  REQUIRE(link->has_value());
  return **link;
}

}  // namespace weft::test
