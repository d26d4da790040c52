#include "subnet/kube/peer_cache.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace weft::kube {
namespace {

std::uint64_t fingerprint(const NodeInfo& n, bool with_pod_cidrs) {
  std::uint64_t h = 1469598103934665603ULL;  // FNV-1a over "key\0value\0" in key order
  auto add = [&h](const std::string& s) {
    for (char c : s) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ULL;
    h = (h ^ 0U) * 1099511628211ULL;
  };
  add(n.creation_timestamp);  // a Node deleted and made again under its name is a newcomer
  for (const auto& [k, v] : n.annotations) {
    add(k);
    add(v);
  }
  // FlannelCompat: a peer's subnet is its podCIDR. Otherwise lists with spec and metadata-only
  // watch events would differ here for the same Node.
  if (with_pod_cidrs) {
    for (const auto& cidr : n.pod_cidrs) add(cidr);
  }
  return h;
}

std::string when(std::int64_t rank) { return rank == kUnknownRank ? "an unknown time" : format_rfc3339_ms(rank); }

}  // namespace

PeerCache::PeerCache(std::string own_name, AnnotationKeys keys, PeerRules rules, std::int64_t own_rank)
    : own_name_(std::move(own_name)),
      keys_(std::move(keys)),
      rules_(std::move(rules)),
      own_subnet_(std::exchange(rules_.own_subnet, std::nullopt)),
      own_subnet_v6_(std::exchange(rules_.own_subnet_v6, std::nullopt)),
      own_rank_(own_rank) {}

bool PeerCache::replace(const std::vector<NodeInfo>& nodes) {
  std::set<std::string> seen;
  bool changed = false;
  for (const auto& n : nodes) {
    if (n.name == own_name_) continue;
    seen.insert(n.name);
    changed |= upsert(n);
  }
  std::vector<std::string> gone;
  for (const auto& [name, fp] : known_) {
    if (!seen.count(name)) gone.push_back(name);
  }
  for (const auto& name : gone) changed |= remove(name);
  return changed;
}

bool PeerCache::apply(const WatchEvent& ev) {
  if (ev.node.name == own_name_ || ev.type == WatchEventType::Bookmark) return false;
  if (ev.type == WatchEventType::Deleted) return remove(ev.node.name);
  return upsert(ev.node);
}

bool PeerCache::upsert(const NodeInfo& node) {
  const std::string& name = node.name;
  const Annotations flannel_shaped =
      keys_.flannel ? flannel_view(node.annotations, node.pod_cidrs, keys_) : Annotations{};
  const Annotations& a = keys_.flannel ? flannel_shaped : node.annotations;
  auto fp = fingerprint(node, keys_.flannel);
  auto it = known_.find(name);
  if (it != known_.end() && it->second == fp) return false;  // a heartbeat: nothing of ours changed
  known_[name] = fp;
  bool had_lease = candidates_.count(name) || parse_error_.count(name);
  std::set<std::string> affected{name};
  if (auto c = candidates_.find(name); c != candidates_.end()) {
    affected.merge(overlapping(c->second.peer.subnet));
    affected.merge(sharing_v6(c->second));
    index_remove(name, c->second.peer.subnet);
    index_v6(name, c->second, false);
    candidates_.erase(c);
  }
  parse_error_.erase(name);
  v6_parse_error_.erase(name);
  unjoined_.erase(name);
  if (!has_lease_annotations(a, keys_)) {  // not joined yet, or only claiming a subnet
    unjoined_.insert(name);
    if (had_lease) {
      spdlog::info("node {}: its {} lease annotations were removed; no longer a peer", name, keys_.prefix);
    } else {
      spdlog::debug("node {} has no {} lease annotations yet (weftd not running there)", name, keys_.prefix);
    }
  } else if (auto peer = parse_peer(name, a, keys_, rules_)) {
    // IPv6-only: parse_peer took the IPv6 half as the peer.
    if (auto v6 = peer->subnet ? parse_peer_v6(a, keys_, rules_) : std::optional<PeerV6>{}; !v6) {
      v6_parse_error_[name] = v6.error();
    } else if (*v6) {
      peer->subnet_v6 = (*v6)->subnet;
      peer->vtep_mac_v6 = (*v6)->vtep_mac;
      peer->public_ip_v6 = (*v6)->public_ip;
    }
    affected.merge(overlapping(peer->subnet));
    index_add(name, peer->subnet);
    Candidate c{std::move(*peer), claim_rank(node.creation_timestamp, a, keys_)};
    affected.merge(sharing_v6(c));
    index_v6(name, c, true);
    candidates_.emplace(name, std::move(c));
  } else {
    parse_error_[name] = peer.error();
  }
  return reconsider(affected);
}

bool PeerCache::remove(const std::string& name) {
  if (!known_.erase(name)) return false;
  std::set<std::string> affected{name};
  if (auto c = candidates_.find(name); c != candidates_.end()) {
    index_remove(name, c->second.peer.subnet);
    index_v6(name, c->second, false);
    affected.merge(overlapping(c->second.peer.subnet));
    affected.merge(sharing_v6(c->second));
    candidates_.erase(c);
  }
  parse_error_.erase(name);
  v6_parse_error_.erase(name);
  unjoined_.erase(name);
  return reconsider(affected);
}

void PeerCache::index_add(const std::string& name, const std::optional<Ipv4Prefix>& p) {
  if (p) by_subnet_[*p].insert(name);
}

void PeerCache::index_remove(const std::string& name, const std::optional<Ipv4Prefix>& p) {
  if (!p) return;
  auto it = by_subnet_.find(*p);
  if (it == by_subnet_.end()) return;
  it->second.erase(name);
  if (it->second.empty()) by_subnet_.erase(it);
}

std::set<std::string> PeerCache::overlapping(const std::optional<Ipv4Prefix>& subnet) const {
  std::set<std::string> out;
  if (!subnet) return out;  // an IPv6-only peer: sharing_v6 finds its rivals
  const Ipv4Prefix& p = *subnet;
  // Candidates containing p (p itself included): one possible prefix per length.
  for (int len = 0; len <= p.length(); ++len) {
    auto it = by_subnet_.find(Ipv4Prefix::containing(p.address(), len));
    if (it != by_subnet_.end()) out.insert(it->second.begin(), it->second.end());
  }
  // Candidates inside p: their addresses lie in p's range.
  for (auto it = by_subnet_.lower_bound(p); it != by_subnet_.end() && p.contains(it->first.address()); ++it) {
    out.insert(it->second.begin(), it->second.end());
  }
  return out;
}

bool PeerCache::earlier(const std::string& a, const std::string& b) const {
  auto ra = candidates_.at(a).rank, rb = candidates_.at(b).rank;
  return ra != rb ? ra < rb : a < b;
}

std::string PeerCache::outranked_by(const std::string& name) const {
  std::string first;
  for (const auto& other : overlapping(candidates_.at(name).peer.subnet)) {
    if (other != name && earlier(other, name) && (first.empty() || earlier(other, first))) first = other;
  }
  return first;
}

PeerCache::Judgement PeerCache::judge_v4(const std::string& name, const Candidate& c) const {
  const auto& subnet = *c.peer.subnet;
  if (own_subnet_ && own_subnet_->overlaps(subnet)) {
    return {"subnet " + subnet.str() + " overlaps our own subnet " + own_subnet_->str(), false};
  }
  if (auto owner = outranked_by(name); !owner.empty()) {
    const auto& o = candidates_.at(owner);
    return {"subnet " + subnet.str() + " overlaps node " + owner + "'s " + o.peer.subnet->str() + ", claimed at " +
                when(o.rank) + " (this one at " + when(c.rank) + "): the earlier claim keeps it",
            true};
  }
  return {};
}

bool PeerCache::reconsider(const std::set<std::string>& names) {
  bool changed = false;
  for (const auto& name : names) {
    Judgement j;
    auto c = candidates_.find(name);
    if (c != candidates_.end()) {
      // IPv6-only: the IPv6 half is the peer, judged as a whole.
      j = c->second.peer.subnet ? judge_v4(name, c->second) : judge_v6(name, c->second);
    } else if (auto e = parse_error_.find(name); e != parse_error_.end()) {
      j.reason = e->second;
    }
    if (j.outranked) {
      outranked_.insert(name);
    } else {
      outranked_.erase(name);
    }
    verdict(name, j.reason);
    auto cur = peers_.find(name);
    if (c != candidates_.end() && j.reason.empty()) {
      Peer peer = c->second.peer;
      auto why_not_v6 = peer.subnet ? judge_v6(name, c->second).reason : "";
      v6_verdict(name, why_not_v6);
      if (!why_not_v6.empty()) {
        peer.subnet_v6.reset();
        peer.vtep_mac_v6.reset();
        peer.public_ip_v6.reset();
      }
      if (cur == peers_.end() || !(cur->second == peer)) {
        peers_[name] = std::move(peer);
        changed = true;
      }
    } else {
      v6_verdict(name, "");  // not a peer at all: the verdict above says why
      if (cur != peers_.end()) {
        peers_.erase(cur);
        changed = true;
      }
    }
  }
  changed |= update_own_conflict();
  return changed;
}

void PeerCache::index_v6(const std::string& name, const Candidate& c, bool add) {
  if (!c.peer.subnet_v6) return;
  auto& names = by_subnet_v6_[*c.peer.subnet_v6];
  if (add) {
    names.insert(name);
  } else {
    names.erase(name);
    if (names.empty()) by_subnet_v6_.erase(*c.peer.subnet_v6);
  }
}

std::set<std::string> PeerCache::sharing_v6(const Candidate& c) const {
  if (!c.peer.subnet_v6) return {};
  auto it = by_subnet_v6_.find(*c.peer.subnet_v6);
  return it == by_subnet_v6_.end() ? std::set<std::string>{} : it->second;
}

std::string PeerCache::earliest_sharing_v6(const std::string& name, const Candidate& c) const {
  std::string first;
  for (const auto& other : sharing_v6(c)) {
    if (other != name && earlier(other, name) && (first.empty() || earlier(other, first))) first = other;
  }
  return first;
}

PeerCache::Judgement PeerCache::judge_v6(const std::string& name, const Candidate& c) const {
  if (auto e = v6_parse_error_.find(name); e != v6_parse_error_.end()) return {e->second, false};
  if (!c.peer.subnet_v6) return {};
  const auto& subnet = *c.peer.subnet_v6;
  if (own_subnet_v6_ && own_subnet_v6_->overlaps(subnet)) {
    return {"IPv6 subnet " + subnet.str() + " overlaps our own " + own_subnet_v6_->str(), false};
  }
  std::string first = earliest_sharing_v6(name, c);
  if (first.empty()) return {};
  return {"IPv6 subnet " + subnet.str() + " is also node " + first + "'s, claimed at " +
              when(candidates_.at(first).rank) + " (this one at " + when(c.rank) + "): the earlier claim keeps it",
          true};
}

void PeerCache::v6_verdict(const std::string& name, const std::string& reason) {
  auto it = v6_skip_reason_.find(name);
  if (reason.empty()) {
    if (it != v6_skip_reason_.end()) {
      if (known_.count(name)) spdlog::info("peer {}: its IPv6 half is valid again", name);
      v6_skip_reason_.erase(it);
    }
    return;
  }
  if (it != v6_skip_reason_.end() && it->second == reason) return;
  spdlog::warn("skip the IPv6 half of peer {} (its IPv4 routes stay): {}", name, reason);
  v6_skip_reason_[name] = reason;
}

std::string PeerCache::own_conflict_v4() const {
  std::string first;
  for (const auto& other : overlapping(own_subnet_)) {
    if (first.empty() || earlier(other, first)) first = other;
  }
  return first;
}

std::string PeerCache::own_conflict_v6_only() const {
  if (own_subnet_ || !own_subnet_v6_) return "";
  auto it = by_subnet_v6_.find(*own_subnet_v6_);
  std::string first;
  if (it == by_subnet_v6_.end()) return first;
  for (const auto& other : it->second) {
    if (first.empty() || earlier(other, first)) first = other;
  }
  return first;
}

bool PeerCache::update_own_conflict() {
  std::string conflict;
  std::string first = own_subnet_ ? own_conflict_v4() : own_conflict_v6_only();
  if (!first.empty()) {
    const auto& o = candidates_.at(first);
    bool theirs = o.rank != own_rank_ ? o.rank < own_rank_ : first < own_name_;
    if (theirs) {
      const bool v4 = own_subnet_.has_value();
      const std::string mine = v4 ? own_subnet_->str() : own_subnet_v6_->str();
      const std::string other = v4 ? o.peer.subnet->str() : o.peer.subnet_v6->str();
      conflict = "node " + first + " claimed " + other + " at " + when(o.rank) + ", before this node's " + mine + " (" +
                 when(own_rank_) + "): every other node routes it to " + first +
                 " and skips this node. Fix: drain this node, delete its " + (v4 ? keys_.subnet : keys_.subnet_v6) +
                 " and " + keys_.claimed_at + " annotations (or the other Node, if it is the intruder), restart weftd";
    }
  }
  if (conflict == own_conflict_) return false;
  if (!conflict.empty()) spdlog::error("own subnet conflict: {}", conflict);
  if (conflict.empty() && !own_conflict_.empty()) spdlog::info("own subnet conflict resolved");
  own_conflict_ = std::move(conflict);
  return true;
}

void PeerCache::verdict(const std::string& name, const std::string& reason) {
  auto it = skip_reason_.find(name);
  if (reason.empty()) {
    if (it != skip_reason_.end()) {
      if (known_.count(name)) spdlog::info("peer {}: annotations valid again", name);
      skip_reason_.erase(it);
    }
    return;
  }
  if (it != skip_reason_.end() && it->second == reason) return;
  spdlog::warn("skip peer {}: {}", name, reason);
  skip_reason_[name] = reason;
}

}  // namespace weft::kube
