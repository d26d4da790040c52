#include "backend/netlink/types.hpp"

namespace weft {
namespace {

std::string dev(int ifindex) { return " ifindex " + std::to_string(ifindex); }

struct Describe {
  template <class T>
  std::string operator()(const T& object) const {
    return to_string(object);
  }
};

}  // namespace

bool IpAddr::is_unspecified() const {
  return std::visit([](const auto& ip) { return ip.is_unspecified(); }, ip_);
}

std::string IpAddr::str() const {
  return std::visit([](const auto& ip) { return ip.str(); }, ip_);
}

template <class Ip>
std::string to_string(const BasicAddress<Ip>& a) {
  return "address " + a.ip.str() + "/" + std::to_string(a.prefix_len) + dev(a.ifindex);
}

template <class Ip>
std::string to_string(const BasicNeighbor<Ip>& n) {
  return "neighbor " + n.ip.str() + " lladdr " + n.mac.str() + dev(n.ifindex) + (n.permanent ? "" : " (not permanent)");
}

std::string to_string(const FdbEntry& f) {
  return "fdb " + f.mac.str() + (f.dst.is_unspecified() ? "" : " dst " + f.dst.str()) + dev(f.ifindex) +
         (f.permanent ? "" : " (learned)");
}

template <class Ip>
std::string to_string(const BasicRoute<Ip>& r) {
  std::string out = "route " + r.dst.str();
  if (!r.gateway.is_unspecified()) out += " via " + r.gateway.str();
  out += dev(r.ifindex);
  if (r.onlink) out += " onlink";
  if (r.priority != 0) out += " metric " + std::to_string(r.priority);
  if (r.protocol != kWeftRouteProtocol) out += " proto " + std::to_string(r.protocol);
  if (!r.unicast) out += " (not unicast)";
  if (r.multipath) out += " (multipath)";
  return out;
}

template std::string to_string(const Address& a);
template std::string to_string(const Address6& a);
template std::string to_string(const Neighbor& n);
template std::string to_string(const Neighbor6& n);
template std::string to_string(const Route& r);
template std::string to_string(const Route6& r);

std::string to_string(const Write& w) {
  return (w.action == WriteAction::upsert ? "set " : "remove ") + std::visit(Describe{}, w.object);
}

}  // namespace weft
