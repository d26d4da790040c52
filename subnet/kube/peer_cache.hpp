#pragma once
// PeerCache: the other Nodes' lease annotations and the valid peers derived from them.
// Incremental: a watch event costs O(log n), so a burst of 5,000 events stays cheap. A Node is
// a peer when its annotations parse and pass the rules and its subnet overlaps no other
// candidate's (two Nodes claiming one subnet are both refused: neither is trusted). Each
// Node's verdict is logged when it changes, not on every event. Not thread-safe: the owner locks.

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "subnet/annotations.hpp"
#include "subnet/kube/kube_client.hpp"

namespace weft::kube {

class PeerCache {
 public:
  PeerCache(std::string own_name, AnnotationKeys keys, PeerRules rules);

  // Replaces every Node (after a list). True when the peer set changed.
  bool replace(const std::vector<NodeInfo>& nodes);
  // Applies one ADDED/MODIFIED/DELETED event. True when the peer set changed.
  bool apply(const WatchEvent& event);

  const PeerSet& peers() const { return peers_; }
  std::size_t skipped() const { return skip_reason_.size(); }  // Nodes with bad annotations
  std::size_t unjoined() const { return unjoined_.size(); }    // Nodes without any lease annotation
  const std::map<std::string, std::string>& skip_reasons() const { return skip_reason_; }

 private:
  bool upsert(const std::string& name, const Annotations& a);
  bool remove(const std::string& name);
  void index_add(const std::string& name, const Ipv4Prefix& p);
  void index_remove(const std::string& name, const Ipv4Prefix& p);
  std::set<std::string> overlapping(const Ipv4Prefix& p) const;
  // Re-decides the Nodes named; true when peers_ changed.
  bool reconsider(const std::set<std::string>& names);
  void verdict(const std::string& name, const std::string& reason);  // "" = valid

  std::string own_name_;
  AnnotationKeys keys_;
  PeerRules rules_;
  // Every other Node, with a fingerprint of its annotations: a Node's heartbeats (MODIFIED
  // events with the same annotations) are recognised without keeping the strings.
  std::map<std::string, std::uint64_t> known_;
  std::map<std::string, Peer> candidates_;                 // individually valid
  std::map<std::string, std::string> parse_error_;         // individually invalid, with the reason
  std::map<Ipv4Prefix, std::set<std::string>> by_subnet_;  // candidates by subnet
  PeerSet peers_;
  std::map<std::string, std::string> skip_reason_;
  std::set<std::string> unjoined_;
};

}  // namespace weft::kube
