#include "backend/netlink/fake_netlink.hpp"

#include <algorithm>

namespace weft {
namespace {

template <class T, class Pred>
void erase_if_any(std::vector<T>& v, Pred pred) {
  v.erase(std::remove_if(v.begin(), v.end(), pred), v.end());
}

std::string kind_of(const Write& w) {
  std::string text = to_string(w);
  auto second_space = text.find(' ', text.find(' ') + 1);
  return text.substr(0, second_space);
}

Status no_device(int ifindex) { return fail("fake netlink: No such device (ifindex " + std::to_string(ifindex) + ")"); }

}  // namespace

struct FakeNetlink::Handlers {
  std::map<int, EventHandler> by_id;
  int next_id = 0;
};

namespace {

class FakeSubscription final : public Subscription {
 public:
  FakeSubscription(std::weak_ptr<void> owner, std::map<int, Netlink::EventHandler>* map, int id)
      : owner_(std::move(owner)), map_(map), id_(id) {}
  ~FakeSubscription() override {
    if (owner_.lock()) map_->erase(id_);
  }
  FakeSubscription(const FakeSubscription&) = delete;
  FakeSubscription& operator=(const FakeSubscription&) = delete;

 private:
  std::weak_ptr<void> owner_;
  std::map<int, Netlink::EventHandler>* map_;
  int id_;
};

}  // namespace

FakeNetlink::FakeNetlink() : handlers_(std::make_shared<Handlers>()) {}
FakeNetlink::~FakeNetlink() = default;

int FakeNetlink::add_link(Link link) {
  if (link.ifindex == 0) link.ifindex = state_.next_ifindex++;
  int ifindex = link.ifindex;
  state_.links[ifindex] = std::move(link);
  return ifindex;
}

int FakeNetlink::add_underlay(const std::string& name, Ipv4Addr ip, int prefix_len, int mtu) {
  Link l;
  l.name = name;
  l.kind = "veth";
  l.mtu = mtu;
  l.up = true;
  l.mac = Mac::random_local();
  int ifindex = add_link(l);
  state_.addresses.push_back({ifindex, ip, prefix_len});
  return ifindex;
}

void FakeNetlink::fail_writes_containing(std::string needle, std::string message) {
  failures_.emplace_back(std::move(needle), std::move(message));
}

void FakeNetlink::emit(const KernelEvent& event) {
  auto copy = handlers_->by_id;  // a handler may unsubscribe
  for (auto& [id, handler] : copy) handler(event);
}

std::uint64_t FakeNetlink::writes_of(const std::string& prefix) const {
  std::uint64_t n = 0;
  for (const auto& [kind, count] : writes_by_kind_) {
    if (kind.rfind(prefix, 0) == 0) n += count;
  }
  return n;
}

Result<std::optional<Link>> FakeNetlink::get_link(const std::string& name) {
  for (const auto& [ifindex, link] : state_.links) {
    if (link.name == name) return std::optional<Link>(link);
  }
  return std::optional<Link>();
}

Status FakeNetlink::create_vxlan(const VxlanLinkSpec& spec) {
  ++writes_;
  ++writes_by_kind_["create link"];
  if (get_link(spec.name).value()) return fail("fake netlink: create vxlan " + spec.name + ": File exists");
  if (spec.vxlan.underlay_ifindex != 0 && !has_link(spec.vxlan.underlay_ifindex)) {
    return no_device(spec.vxlan.underlay_ifindex);
  }
  Link l;
  l.name = spec.name;
  l.kind = "vxlan";
  l.mac = spec.mac;
  l.mtu = spec.mtu;
  l.up = true;
  l.vxlan = spec.vxlan;
  add_link(l);
  return ok_status();
}

Status FakeNetlink::set_link(int ifindex, int mtu, bool up) {
  ++writes_;
  ++writes_by_kind_["set link"];
  auto it = state_.links.find(ifindex);
  if (it == state_.links.end()) return no_device(ifindex);
  if (mtu > 0) it->second.mtu = mtu;
  it->second.up = up;
  return ok_status();
}

Status FakeNetlink::delete_link(int ifindex) {
  ++writes_;
  ++writes_by_kind_["delete link"];
  state_.links.erase(ifindex);
  erase_if_any(state_.addresses, [&](const Address& a) { return a.ifindex == ifindex; });
  erase_if_any(state_.neighbors, [&](const Neighbor& n) { return n.ifindex == ifindex; });
  erase_if_any(state_.fdb, [&](const FdbEntry& f) { return f.ifindex == ifindex; });
  erase_if_any(state_.routes, [&](const Route& r) { return r.ifindex == ifindex; });
  erase_if_any(state_.addresses6, [&](const Address6& a) { return a.ifindex == ifindex; });
  erase_if_any(state_.neighbors6, [&](const Neighbor6& n) { return n.ifindex == ifindex; });
  erase_if_any(state_.routes6, [&](const Route6& r) { return r.ifindex == ifindex; });
  return ok_status();
}

namespace {
// The entries of one device, as a dump filtered by ifindex gives them.
template <class T>
std::vector<T> on_link(const std::vector<T>& all, int ifindex) {
  std::vector<T> out;
  std::copy_if(all.begin(), all.end(), std::back_inserter(out), [&](const T& e) { return e.ifindex == ifindex; });
  return out;
}
}  // namespace

Result<std::vector<Address>> FakeNetlink::dump_addresses(int ifindex) { return on_link(state_.addresses, ifindex); }

Result<std::vector<Neighbor>> FakeNetlink::dump_neighbors(int ifindex) { return on_link(state_.neighbors, ifindex); }

Result<std::vector<FdbEntry>> FakeNetlink::dump_fdb(int ifindex) { return on_link(state_.fdb, ifindex); }

Result<std::vector<Route>> FakeNetlink::dump_routes() { return state_.routes; }

Result<std::vector<Address6>> FakeNetlink::dump_addresses6(int ifindex) { return on_link(state_.addresses6, ifindex); }

Result<std::vector<Neighbor6>> FakeNetlink::dump_neighbors6(int ifindex) { return on_link(state_.neighbors6, ifindex); }

Result<std::vector<Route6>> FakeNetlink::dump_routes6() { return state_.routes6; }

namespace {

// The longest match among the connected prefixes of the addresses and the routes.
template <class Ip>
Result<BasicRouteLookup<Ip>> longest_match(const Ip& dst, const std::vector<BasicAddress<Ip>>& addresses,
                                           const std::vector<BasicRoute<Ip>>& routes) {
  std::optional<BasicRouteLookup<Ip>> best;
  int best_len = -1;
  auto consider = [&](const Prefix<Ip>& p, BasicRouteLookup<Ip> r) {
    if (p.contains(dst) && p.length() > best_len) {
      best_len = p.length();
      best = r;
    }
  };
  for (const auto& a : addresses) {
    if (a.prefix_len < Ip::kBits) consider(Prefix<Ip>::containing(a.ip, a.prefix_len), {a.ifindex, std::nullopt, true});
  }
  for (const auto& r : routes) {
    std::optional<Ip> gw;
    if (!r.gateway.is_unspecified()) gw = r.gateway;
    consider(r.dst, {r.ifindex, gw, r.unicast});
  }
  if (!best) return fail("fake netlink: route lookup for " + dst.str() + ": Network is unreachable");
  return *best;
}

}  // namespace

Result<RouteLookup> FakeNetlink::lookup_route(Ipv4Addr dst) {
  return longest_match(dst, state_.addresses, state_.routes);
}

Result<RouteLookup6> FakeNetlink::lookup_route6(const Ipv6Addr& dst) {
  return longest_match(dst, state_.addresses6, state_.routes6);
}

std::vector<Status> FakeNetlink::write(std::span<const Write> writes) {
  std::vector<Status> out;
  for (const auto& w : writes) {
    ++writes_;
    ++writes_by_kind_[kind_of(w)];
    std::string text = to_string(w);
    auto injected = std::find_if(failures_.begin(), failures_.end(),
                                 [&](const auto& f) { return text.find(f.first) != std::string::npos; });
    if (injected != failures_.end()) {
      out.emplace_back(fail("fake netlink: " + text + ": " + injected->second));
    } else {
      out.push_back(apply(w));
    }
  }
  return out;
}

Status FakeNetlink::apply(const Write& w) {
  const bool upsert = w.action == WriteAction::upsert;
  if (const auto* a = std::get_if<Address>(&w.object)) return apply_address(*a, upsert, state_.addresses);
  if (const auto* a = std::get_if<Address6>(&w.object)) return apply_address(*a, upsert, state_.addresses6);
  if (const auto* n = std::get_if<Neighbor>(&w.object)) return apply_neighbor(*n, upsert, state_.neighbors);
  if (const auto* n = std::get_if<Neighbor6>(&w.object)) return apply_neighbor(*n, upsert, state_.neighbors6);
  if (const auto* f = std::get_if<FdbEntry>(&w.object)) return apply_fdb(*f, upsert);
  if (const auto* r = std::get_if<Route>(&w.object)) return apply_route(*r, upsert, state_.routes);
  if (const auto* r = std::get_if<Route6>(&w.object)) return apply_route(*r, upsert, state_.routes6);
  return ok_status();
}

template <class Ip>
Status FakeNetlink::apply_address(const BasicAddress<Ip>& a, bool upsert, std::vector<BasicAddress<Ip>>& table) {
  if (upsert && !has_link(a.ifindex)) return no_device(a.ifindex);
  erase_if_any(table, [&](const BasicAddress<Ip>& x) { return x.ifindex == a.ifindex && x.ip == a.ip; });
  if (upsert) table.push_back(a);
  return ok_status();
}

template <class Ip>
Status FakeNetlink::apply_neighbor(const BasicNeighbor<Ip>& n, bool upsert, std::vector<BasicNeighbor<Ip>>& table) {
  if (upsert && !has_link(n.ifindex)) return no_device(n.ifindex);
  erase_if_any(table, [&](const BasicNeighbor<Ip>& x) { return x.ifindex == n.ifindex && x.ip == n.ip; });
  if (upsert) table.push_back({n.ifindex, n.ip, n.mac, true});
  return ok_status();
}

Status FakeNetlink::apply_fdb(const FdbEntry& f, bool upsert) {
  auto same_mac = [&](const FdbEntry& x) { return x.ifindex == f.ifindex && x.mac == f.mac; };
  if (!upsert) {
    erase_if_any(state_.fdb,
                 [&](const FdbEntry& x) { return same_mac(x) && (f.dst.is_unspecified() || x.dst == f.dst); });
    return ok_status();
  }
  if (!has_link(f.ifindex)) return no_device(f.ifindex);
  auto it = std::find_if(state_.fdb.begin(), state_.fdb.end(), same_mac);
  bool present = std::any_of(state_.fdb.begin(), state_.fdb.end(),
                             [&](const FdbEntry& x) { return same_mac(x) && x.dst == f.dst; });
  if (present) {
    for (auto& x : state_.fdb) {
      if (same_mac(x) && x.dst == f.dst) x.permanent = true;
    }
    return ok_status();
  }
  if (it != state_.fdb.end()) {
    it->dst = f.dst;  // NLM_F_REPLACE rewrites the first remote
    it->permanent = true;
  } else {
    state_.fdb.push_back(f);
  }
  return ok_status();
}

template <class Ip>
Status FakeNetlink::apply_route(const BasicRoute<Ip>& r, bool upsert, std::vector<BasicRoute<Ip>>& table) {
  if (!upsert) {
    auto it = std::find_if(table.begin(), table.end(), [&](const BasicRoute<Ip>& x) {
      return x.dst == r.dst && x.ifindex == r.ifindex && (r.priority == 0 || x.priority == r.priority);
    });
    if (it != table.end()) table.erase(it);
    return ok_status();
  }
  if (!has_link(r.ifindex)) return no_device(r.ifindex);
  erase_if_any(table, [&](const BasicRoute<Ip>& x) { return x.dst == r.dst && x.priority == r.priority; });
  BasicRoute<Ip> stored = r;
  stored.unicast = true;
  stored.multipath = false;
  table.push_back(stored);
  return ok_status();
}

Result<std::unique_ptr<Subscription>> FakeNetlink::subscribe(EventHandler on_event) {
  int id = handlers_->next_id++;
  handlers_->by_id[id] = std::move(on_event);
  return std::unique_ptr<Subscription>(new FakeSubscription(handlers_, &handlers_->by_id, id));
}

}  // namespace weft
