#pragma once
// The change-notification reader behind Netlink::subscribe (internal to backend/netlink).

#include <cstdint>
#include <memory>
#include <optional>

#include "backend/netlink/netlink.hpp"

struct nlmsghdr;

namespace weft::nl {

// A change notification as an event, if it is a kind Netlink reports; events caused by the
// socket with port own_port are marked `own`.
std::optional<KernelEvent> parse_event(nlmsghdr* h, std::uint32_t own_port);

// Opens a notification socket with a receive buffer of buffer_bytes in netns_fd (-1: the
// caller's) and starts a thread calling on_event per event; a receive-buffer overflow
// becomes one `overflow` event. Events caused by the socket with port own_port are `own`.
Result<std::unique_ptr<Subscription>> start_monitor(int netns_fd, std::uint32_t own_port, int buffer_bytes,
                                                    Netlink::EventHandler on_event);

}  // namespace weft::nl
