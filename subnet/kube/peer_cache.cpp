#include "subnet/kube/peer_cache.hpp"

#include <spdlog/spdlog.h>

namespace weft::kube {
namespace {

std::uint64_t fingerprint(const Annotations& a) {
  std::uint64_t h = 1469598103934665603ULL;  // FNV-1a over "key\0value\0" in key order
  for (const auto& [k, v] : a) {
    for (const std::string* s : {&k, &v}) {
      for (char c : *s) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ULL;
      h = (h ^ 0U) * 1099511628211ULL;
    }
  }
  return h;
}

}  // namespace

PeerCache::PeerCache(std::string own_name, AnnotationKeys keys, PeerRules rules)
    : own_name_(std::move(own_name)), keys_(std::move(keys)), rules_(std::move(rules)) {}

bool PeerCache::replace(const std::vector<NodeInfo>& nodes) {
  std::set<std::string> seen;
  bool changed = false;
  for (const auto& n : nodes) {
    if (n.name == own_name_) continue;
    seen.insert(n.name);
    changed |= upsert(n.name, n.annotations);
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
  return upsert(ev.node.name, ev.node.annotations);
}

bool PeerCache::upsert(const std::string& name, const Annotations& a) {
  auto fp = fingerprint(a);
  auto it = known_.find(name);
  if (it != known_.end() && it->second == fp) return false;  // a heartbeat: nothing of ours changed
  known_[name] = fp;
  bool had_lease = candidates_.count(name) || parse_error_.count(name);
  std::set<std::string> affected{name};
  if (auto c = candidates_.find(name); c != candidates_.end()) {
    affected.merge(overlapping(c->second.subnet));
    index_remove(name, c->second.subnet);
    candidates_.erase(c);
  }
  parse_error_.erase(name);
  unjoined_.erase(name);
  if (!has_lease_annotations(a, keys_)) {  // not joined yet, or only claiming a subnet
    unjoined_.insert(name);
    if (had_lease) {
      spdlog::info("node {}: its {} lease annotations were removed; no longer a peer", name, keys_.prefix);
    } else {
      spdlog::debug("node {} has no {} lease annotations yet (weftd not running there)", name, keys_.prefix);
    }
  } else if (auto peer = parse_peer(name, a, keys_, rules_)) {
    affected.merge(overlapping(peer->subnet));
    index_add(name, peer->subnet);
    candidates_.emplace(name, std::move(*peer));
  } else {
    parse_error_[name] = peer.error();
  }
  return reconsider(affected);
}

bool PeerCache::remove(const std::string& name) {
  if (!known_.erase(name)) return false;
  std::set<std::string> affected{name};
  if (auto c = candidates_.find(name); c != candidates_.end()) {
    index_remove(name, c->second.subnet);
    affected.merge(overlapping(c->second.subnet));
    candidates_.erase(c);
  }
  parse_error_.erase(name);
  unjoined_.erase(name);
  return reconsider(affected);
}

void PeerCache::index_add(const std::string& name, const Ipv4Prefix& p) { by_subnet_[p].insert(name); }

void PeerCache::index_remove(const std::string& name, const Ipv4Prefix& p) {
  auto it = by_subnet_.find(p);
  if (it == by_subnet_.end()) return;
  it->second.erase(name);
  if (it->second.empty()) by_subnet_.erase(it);
}

std::set<std::string> PeerCache::overlapping(const Ipv4Prefix& p) const {
  std::set<std::string> out;
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

bool PeerCache::reconsider(const std::set<std::string>& names) {
  bool changed = false;
  for (const auto& name : names) {
    std::string reason;
    auto c = candidates_.find(name);
    if (c != candidates_.end()) {
      for (const auto& other : overlapping(c->second.subnet)) {
        if (other == name) continue;
        reason =
            "subnet " + c->second.subnet.str() + " overlaps node " + other + "'s " + candidates_.at(other).subnet.str();
        break;
      }
    } else if (auto e = parse_error_.find(name); e != parse_error_.end()) {
      reason = e->second;
    }
    verdict(name, reason);
    auto cur = peers_.find(name);
    if (c != candidates_.end() && reason.empty()) {
      if (cur == peers_.end() || !(cur->second == c->second)) {
        peers_[name] = c->second;
        changed = true;
      }
    } else if (cur != peers_.end()) {
      peers_.erase(cur);
      changed = true;
    }
  }
  return changed;
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
