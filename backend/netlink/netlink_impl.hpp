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
  static constexpr int kNotifyBufferBytes = 8 << 20;  // 15,000 changes fit (FACTS.md)

  // Opens the request socket in the calling thread's network namespace, or, when netns_path
  // is given (e.g. /run/netns/x), in that namespace: every socket this object opens, the
  // subscription's too, lives there, whatever thread uses it. notify_buffer_bytes sizes the
  // subscription's receive buffer (tests shrink it to provoke an overflow).
  static Result<std::unique_ptr<NetlinkImpl>> open(const std::string& netns_path = "",
                                                   int notify_buffer_bytes = kNotifyBufferBytes);
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
  Result<std::vector<Address6>> dump_addresses6(int ifindex) override;
  Result<std::vector<Neighbor6>> dump_neighbors6(int ifindex) override;
  Result<std::vector<Route6>> dump_routes6() override;
  Result<RouteLookup> lookup_route(Ipv4Addr dst) override;
  Result<RouteLookup6> lookup_route6(const Ipv6Addr& dst) override;

  std::vector<Status> write(std::span<const Write> writes) override;
  Result<std::unique_ptr<Subscription>> subscribe(EventHandler on_event) override;
  std::uint64_t write_count() const override { return writes_; }

 private:
  NetlinkImpl(std::unique_ptr<nl::NlChannel> channel, int netns_fd, int notify_buffer_bytes);

  std::unique_ptr<nl::NlChannel> channel_;
  int netns_fd_ = -1;
  int notify_buffer_bytes_;
  std::uint64_t writes_ = 0;
};

}  // namespace weft
