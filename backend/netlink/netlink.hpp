#pragma once
// Netlink: the one seam between weft and the kernel's routing tables (links, addresses,
// neighbors, VXLAN FDB, routes, change events). NetlinkImpl is the libnl implementation,
// FakeNetlink an in-memory one for unit tests.
//
// Threading: an instance is owned by one thread, which makes every call. The only exception
// is the handler given to subscribe(): it runs on the subscription's own thread, must be
// cheap and thread-safe (post to the owner's queue), and stops being called once the
// Subscription is destroyed.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "backend/netlink/types.hpp"
#include "core/result.hpp"

namespace weft {

// A live stream of kernel change events; destroying it stops delivery and joins its thread.
class Subscription {
 public:
  virtual ~Subscription() = default;
};

class Netlink {
 public:
  using EventHandler = std::function<void(const KernelEvent&)>;
  virtual ~Netlink() = default;

  // Links. get_link gives nullopt when no device has that name.
  virtual Result<std::optional<Link>> get_link(const std::string& name) = 0;
  virtual Status create_vxlan(const VxlanLinkSpec& spec) = 0;  // fails if the name exists
  virtual Status set_link(int ifindex, int mtu, bool up) = 0;  // mtu 0: leave as is
  virtual Status delete_link(int ifindex) = 0;

  // Dumps (reads, not writes). Routes: the IPv4 main table, every device. The *6 ones are
  // the IPv6 counterparts; FDB entries come with either family of remote.
  virtual Result<std::vector<Address>> dump_addresses(int ifindex) = 0;
  virtual Result<std::vector<Neighbor>> dump_neighbors(int ifindex) = 0;
  virtual Result<std::vector<FdbEntry>> dump_fdb(int ifindex) = 0;
  virtual Result<std::vector<Route>> dump_routes() = 0;
  virtual Result<std::vector<Address6>> dump_addresses6(int ifindex) = 0;
  virtual Result<std::vector<Neighbor6>> dump_neighbors6(int ifindex) = 0;
  virtual Result<std::vector<Route6>> dump_routes6() = 0;
  // The route the kernel would take to dst (no gateway: directly reachable).
  virtual Result<RouteLookup> lookup_route(Ipv4Addr dst) = 0;
  virtual Result<RouteLookup6> lookup_route6(const Ipv6Addr& dst) = 0;

  // Applies the writes in order (the real one sends many per system call); returns one
  // Status per write, in the same order. Every write is idempotent (replace semantics).
  virtual std::vector<Status> write(std::span<const Write> writes) = 0;

  // Starts delivering change events (links, IPv4 addresses, neighbors, FDB, IPv4 routes).
  virtual Result<std::unique_ptr<Subscription>> subscribe(EventHandler on_event) = 0;

  // Writes sent so far (link changes and entries), for "nothing to do writes nothing" checks.
  virtual std::uint64_t write_count() const = 0;
};

}  // namespace weft
