#pragma once
// PeerCache: the other Nodes' lease annotations and the valid peers derived from them.
// Incremental: a watch event costs O(log n), so a burst of 5,000 events stays cheap. A Node is
// a peer when its annotations parse and pass the rules (its subnet is one /SubnetLen of the
// network) and no earlier claim holds an overlapping subnet: of Nodes claiming one subnet, the
// established owner keeps it and only the newcomers are skipped (README, "Subnet ownership").
// A claim's rank is the later of the Node's creationTimestamp (set by the API server) and its
// claimed-at annotation; ties go to the smaller name. Each Node's verdict is logged when it
// changes, not on every event. Not thread-safe: the owner locks.

#include <cstdint>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "subnet/annotations.hpp"
#include "subnet/kube/kube_client.hpp"

namespace weft::kube {

class PeerCache {
 public:
  // rules.own_subnet: our subnet (never routed to a peer); own_rank: our claim's rank, to tell
  // whether a Node overlapping us came first (then we are the one every other node skips).
  PeerCache(std::string own_name, AnnotationKeys keys, PeerRules rules, std::int64_t own_rank = kUnknownRank);

  // Replaces every Node (after a list). True when the peer set or own_conflict() changed.
  bool replace(const std::vector<NodeInfo>& nodes);
  // Applies one ADDED/MODIFIED/DELETED event. True when the peer set or own_conflict() changed.
  bool apply(const WatchEvent& event);

  const PeerSet& peers() const { return peers_; }
  std::size_t skipped() const { return skip_reason_.size(); }  // Nodes with bad annotations or a later claim
  std::size_t outranked() const { return outranked_.size(); }  // of those, Nodes whose subnet an earlier claim holds
  std::size_t unjoined() const { return unjoined_.size(); }    // Nodes without any lease annotation
  const std::map<std::string, std::string>& skip_reasons() const { return skip_reason_; }
  // Peers routed over IPv4 whose IPv6 half is refused (bad v6 annotations, or a v6 subnet an
  // earlier claim holds): they keep their v4 routes and get no v6 ones.
  const std::map<std::string, std::string>& v6_skip_reasons() const { return v6_skip_reason_; }
  // Non-empty while a Node that claimed our subnet earlier holds it: every other node routes it
  // there and skips us. Says which Node, and how to fix it.
  const std::string& own_conflict() const { return own_conflict_; }

 private:
  struct Candidate {
    Peer peer;
    std::int64_t rank;
  };
  bool upsert(const NodeInfo& node);
  bool remove(const std::string& name);
  // A Node's standing as a peer: why it is skipped ("" = routed), and whether for a later claim.
  struct Judgement {
    std::string reason;
    bool outranked = false;
  };
  void index_add(const std::string& name, const std::optional<Ipv4Prefix>& p);
  void index_remove(const std::string& name, const std::optional<Ipv4Prefix>& p);
  std::set<std::string> overlapping(const std::optional<Ipv4Prefix>& p) const;
  bool earlier(const std::string& a, const std::string& b) const;  // a's claim ranks before b's
  std::string outranked_by(const std::string& name) const;         // the earliest other claimant, or ""
  // Re-decides the Nodes named; true when peers_ or own_conflict_ changed.
  bool reconsider(const std::set<std::string>& names);
  bool update_own_conflict();
  void verdict(const std::string& name, const std::string& reason);  // "" = valid
  Judgement judge_v4(const std::string& name, const Candidate& c) const;
  // The IPv6 half: of a dual-stack peer (its v4 half stays), or of an IPv6-only one (the whole peer).
  Judgement judge_v6(const std::string& name, const Candidate& c) const;
  std::string earliest_sharing_v6(const std::string& name, const Candidate& c) const;  // "" = none earlier
  std::string own_conflict_v4() const;       // the earliest other claimant overlapping us, or ""
  std::string own_conflict_v6_only() const;  // the same for an IPv6-only cluster's subnet
  void v6_verdict(const std::string& name, const std::string& reason);
  void index_v6(const std::string& name, const Candidate& c, bool add);
  std::set<std::string> sharing_v6(const Candidate& c) const;  // candidates with the same v6 subnet

  std::string own_name_;
  AnnotationKeys keys_;
  PeerRules rules_;  // own_subnet cleared: the cache checks overlaps with us itself
  std::optional<Ipv4Prefix> own_subnet_;
  std::optional<Ipv6Prefix> own_subnet_v6_;
  std::int64_t own_rank_;
  // Every other Node, with a fingerprint of its annotations: a Node's heartbeats (MODIFIED
  // events with the same annotations) are recognised without keeping the strings.
  std::map<std::string, std::uint64_t> known_;
  std::map<std::string, Candidate> candidates_;            // individually valid
  std::map<std::string, std::string> parse_error_;         // individually invalid, with the reason
  std::map<Ipv4Prefix, std::set<std::string>> by_subnet_;  // candidates by subnet
  // Candidates by IPv6 subnet: every accepted v6 subnet is one /IPv6SubnetLen, so two overlap
  // only when equal.
  std::map<Ipv6Prefix, std::set<std::string>> by_subnet_v6_;
  std::map<std::string, std::string> v6_parse_error_;
  std::map<std::string, std::string> v6_skip_reason_;
  PeerSet peers_;
  std::map<std::string, std::string> skip_reason_;
  std::set<std::string> outranked_;
  std::set<std::string> unjoined_;
  std::string own_conflict_;
};

}  // namespace weft::kube
