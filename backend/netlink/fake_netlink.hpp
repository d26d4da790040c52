#pragma once
// FakeNetlink: an in-memory kernel for unit tests. It follows the kernel's rules that weft
// relies on (replace semantics, FDB entries with several remotes, a deleted device takes
// its entries with it) and counts writes like NetlinkImpl.

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "backend/netlink/netlink.hpp"

namespace weft {

// What the fake kernel holds; tests read and change it directly (that is not a write).
struct FakeKernelState {
  std::map<int, Link> links;
  std::vector<Address> addresses;
  std::vector<Neighbor> neighbors;
  std::vector<FdbEntry> fdb;
  std::vector<Route> routes;  // the main table
  std::vector<Address6> addresses6;
  std::vector<Neighbor6> neighbors6;
  std::vector<Route6> routes6;  // the IPv6 main table
  int next_ifindex = 100;
};

class FakeNetlink final : public Netlink {
 public:
  FakeNetlink();
  ~FakeNetlink() override;

  FakeKernelState& state() { return state_; }
  // Adds a device (an ifindex is assigned when 0) and returns its ifindex.
  int add_link(Link link);
  // Adds an underlay device with an address whose prefix is directly reachable.
  int add_underlay(const std::string& name, Ipv4Addr ip, int prefix_len, int mtu = 1500);
  // Writes whose description (to_string) contains needle fail with message.
  void fail_writes_containing(std::string needle, std::string message);
  // Delivers an event to every subscriber, on the calling thread.
  void emit(const KernelEvent& event);
  // Writes of one kind sent so far, e.g. "set route", "remove fdb".
  std::uint64_t writes_of(const std::string& prefix) const;

  Result<std::optional<Link>> get_link(const std::string& name) override;
  Status create_vxlan(const VxlanLinkSpec& spec) override;
  Status set_link(int ifindex, int mtu, bool up) override;
  Status delete_link(int ifindex) override;
  Result<std::vector<Address>> dump_addresses(int ifindex) override;
  Result<std::vector<Neighbor>> dump_neighbors(int ifindex) override;
  Result<std::vector<FdbEntry>> dump_fdb(int ifindex) override;
  Result<std::vector<Route>> dump_routes() override;
  Result<std::vector<Address6>> dump_addresses6(int ifindex) override;
  Result<std::vector<Neighbor6>> dump_neighbors6(int ifindex) override;
  Result<std::vector<Route6>> dump_routes6() override;
  Result<RouteLookup> lookup_route(Ipv4Addr dst) override;
  Result<RouteLookup6> lookup_route6(const Ipv6Addr& dst) override;
  std::vector<Status> write(std::span<const Write> writes) override;
  Result<std::unique_ptr<Subscription>> subscribe(EventHandler on_event) override;
  std::uint64_t write_count() const override { return writes_; }

 private:
  struct Handlers;
  Status apply(const Write& w);
  template <class Ip>
  Status apply_address(const BasicAddress<Ip>& a, bool upsert, std::vector<BasicAddress<Ip>>& table);
  template <class Ip>
  Status apply_neighbor(const BasicNeighbor<Ip>& n, bool upsert, std::vector<BasicNeighbor<Ip>>& table);
  Status apply_fdb(const FdbEntry& f, bool upsert);
  template <class Ip>
  Status apply_route(const BasicRoute<Ip>& r, bool upsert, std::vector<BasicRoute<Ip>>& table);
  bool has_link(int ifindex) const { return state_.links.count(ifindex) != 0; }

  FakeKernelState state_;
  std::uint64_t writes_ = 0;
  std::map<std::string, std::uint64_t> writes_by_kind_;
  std::vector<std::pair<std::string, std::string>> failures_;
  std::shared_ptr<Handlers> handlers_;
};

}  // namespace weft
