#pragma once
// NetlinkImpl: the real Netlink, over libnl-route sockets (threading: see netlink.hpp).

#include <memory>
#include <string>

#include "backend/netlink/netlink.hpp"

namespace weft {
namespace nl {
class NlChannel;
}

class NetlinkImpl final : public Netlink {
 public:
  // Opens the request socket in the calling thread's network namespace, or, when netns_path
  // is given (e.g. /run/netns/x), in that namespace: every socket this object opens, the
  // subscription's too, lives there, whatever thread uses it.
  static Result<std::unique_ptr<NetlinkImpl>> open(const std::string& netns_path = "");
  ~NetlinkImpl() override;
  NetlinkImpl(const NetlinkImpl&) = delete;
  NetlinkImpl& operator=(const NetlinkImpl&) = delete;

  Result<std::optional<Link>> get_link(const std::string& name) override;
  Status create_vxlan(const VxlanLinkSpec& spec) override;
  Status set_link(int ifindex, int mtu, bool up) override;
  Status delete_link(int ifindex) override;

  Result<std::vector<Address>> dump_addresses(int ifindex) override;
  Result<std::vector<Neighbor>> dump_neighbors(int ifindex) override;
  Result<std::vector<FdbEntry>> dump_fdb(int ifindex) override;
  Result<std::vector<Route>> dump_routes() override;
  Result<RouteLookup> lookup_route(Ipv4Addr dst) override;

  std::vector<Status> write(std::span<const Write> writes) override;
  Result<std::unique_ptr<Subscription>> subscribe(EventHandler on_event) override;
  std::uint64_t write_count() const override { return writes_; }

 private:
  NetlinkImpl(std::unique_ptr<nl::NlChannel> channel, int netns_fd);

  std::unique_ptr<nl::NlChannel> channel_;
  int netns_fd_ = -1;
  std::uint64_t writes_ = 0;
};

}  // namespace weft
