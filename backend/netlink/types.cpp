#include "backend/netlink/types.hpp"

namespace weft {
namespace {

std::string dev(int ifindex) { return " ifindex " + std::to_string(ifindex); }

struct Describe {
  std::string operator()(const Address& a) const { return to_string(a); }
  std::string operator()(const Neighbor& n) const { return to_string(n); }
  std::string operator()(const FdbEntry& f) const { return to_string(f); }
  std::string operator()(const Route& r) const { return to_string(r); }
};

}  // namespace

std::string to_string(const Address& a) {
  return "address " + a.ip.str() + "/" + std::to_string(a.prefix_len) + dev(a.ifindex);
}

std::string to_string(const Neighbor& n) {
  return "neighbor " + n.ip.str() + " lladdr " + n.mac.str() + dev(n.ifindex) + (n.permanent ? "" : " (not permanent)");
}

std::string to_string(const FdbEntry& f) {
  return "fdb " + f.mac.str() + (f.dst.is_unspecified() ? "" : " dst " + f.dst.str()) + dev(f.ifindex) +
         (f.permanent ? "" : " (learned)");
}

std::string to_string(const Route& r) {
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

std::string to_string(const Write& w) {
  return (w.action == WriteAction::upsert ? "set " : "remove ") + std::visit(Describe{}, w.object);
}

}  // namespace weft
