#include "overlay/nftables/firewall.hpp"

#include <algorithm>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <vector>

namespace weft {
namespace {

using nlohmann::json;

constexpr const char* kTable = "weft";

template <class Addr>
std::string join_sources(const std::set<Addr>& sources) {
  std::string out;
  for (const auto& ip : sources) out += (out.empty() ? "" : ", ") + ip.str();
  return out;
}

// The parts of weft's table that decide what packets meet, as libnftables' JSON output describes
// them: each set's type and elements (in any order), each base chain's hook, priority and policy,
// and each chain's rules (their expressions, in order). Handles and layout are left out.
struct TableShape {
  std::map<std::string, json> sets;
  std::map<std::string, json> chains;
  std::map<std::string, std::vector<json>> rules;  // by chain
  bool operator==(const TableShape&) const = default;
};

json set_shape(const std::string& type, const json& flags, std::set<std::string> elements) {
  return {{"type", type}, {"flags", flags}, {"elem", std::move(elements)}};
}

std::optional<TableShape> shape_of(const std::string& listing) {
  auto doc = json::parse(listing, nullptr, false);
  if (doc.is_discarded() || !doc.contains("nftables") || !doc["nftables"].is_array()) return std::nullopt;
  TableShape t;
  for (const auto& o : doc["nftables"]) {
    if (const auto s = o.find("set"); s != o.end()) {
      std::set<std::string> elements;
      for (const auto& e : s->value("elem", json::array())) elements.insert(e.dump());
      t.sets[s->value("name", "")] =
          set_shape(s->value("type", ""), s->value("flags", json::array()), std::move(elements));
    } else if (const auto c = o.find("chain"); c != o.end()) {
      t.chains[c->value("name", "")] = {{"type", c->value("type", "")},
                                        {"hook", c->value("hook", "")},
                                        {"prio", c->value("prio", 0)},
                                        {"policy", c->value("policy", "")}};
    } else if (const auto r = o.find("rule"); r != o.end()) {
      t.rules[r->value("chain", "")].push_back(r->value("expr", json::array()));
    }
  }
  return t;
}

// A prefix as nft writes it (`10.244.0.0/16`) and as libnftables' JSON lists it.
struct Cidr {
  std::string text;
  json listed;
  template <class Addr>
  static Cidr of(const Prefix<Addr>& p) {
    if (p.length() == Addr::kBits) return {p.str(), p.address().str()};
    return {p.str(), {{"prefix", {{"addr", p.address().str()}, {"len", p.length()}}}}};
  }
};

// One family's table as the spec asks for it: the IPv4 one or its IPv6 twin. The two differ
// only in these words and values; render() and desired_shape() write both from them.
struct FamilyTable {
  const char* family;     // the nft family, also the payload protocol of its address matches
  const char* addr_type;  // the allow-list's element type
  Cidr network;
  std::optional<Cidr> subnet;  // this node's; always set for IPv4, reconcile() checks IPv6's
  Cidr multicast;              // never masqueraded
  std::vector<std::string> sources;
};

template <class Addr>
std::vector<std::string> texts(const std::set<Addr>& sources) {
  std::vector<std::string> out;
  out.reserve(sources.size());
  for (const auto& ip : sources) out.push_back(ip.str());
  return out;
}

// Only for a spec with network (and subnet, which reconcile() checks).
FamilyTable v4_table(const FirewallSpec& s) {
  return {"ip",
          "ipv4_addr",
          Cidr::of(*s.network),
          s.subnet ? std::optional(Cidr::of(*s.subnet)) : std::nullopt,
          Cidr::of(Ipv4Prefix::parse("224.0.0.0/4").value()),
          texts(s.vxlan_sources)};
}

// Only for a spec with network_v6. Multicast as flannel's ip6tables masquerade rule has it.
FamilyTable v6_table(const FirewallSpec& s) {
  return {"ip6",
          "ipv6_addr",
          Cidr::of(*s.network_v6),
          s.subnet_v6 ? std::optional(Cidr::of(*s.subnet_v6)) : std::nullopt,
          Cidr::of(Ipv6Prefix::parse("ff00::/8").value()),
          texts(s.vxlan_sources_v6)};
}

json payload(const char* protocol, const char* field) {
  return {{"payload", {{"protocol", protocol}, {"field", field}}}};
}
json match(const char* op, json left, json right) {
  return {{"match", {{"op", op}, {"left", std::move(left)}, {"right", std::move(right)}}}};
}
json verdict(const char* name) { return {{name, nullptr}}; }
json masquerade() { return {{"masquerade", {{"flags", "fully-random"}}}}; }
json base_chain(const char* type, const char* hook, int prio) {
  return {{"type", type}, {"hook", hook}, {"prio", prio}, {"policy", "accept"}};
}

// What render(s, f) lists as, in the kernel's JSON terms.
TableShape desired_shape(const FirewallSpec& s, const FamilyTable& f) {
  constexpr int kSrcnat = 100;
  constexpr int kFilter = 0;
  constexpr int kMasqMark = 0x4000;
  const json saddr = payload(f.family, "saddr");
  const json daddr = payload(f.family, "daddr");
  const json& net = f.network.listed;
  TableShape t;
  if (s.vxlan_allowlist) {
    std::set<std::string> elements;
    for (const auto& ip : f.sources) elements.insert(json(ip).dump());
    t.sets["vxlan-sources"] = set_shape(f.addr_type, json::array({"interval"}), std::move(elements));
  }
  if (s.ip_masq) {
    const json marked = {{"&", json::array({json{{"meta", {{"key", "mark"}}}}, kMasqMark})}};
    t.chains["postrouting"] = base_chain("nat", "postrouting", kSrcnat);
    auto& rules = t.rules["postrouting"];
    rules.push_back(json::array({match("==", marked, kMasqMark), verdict("return")}));
    rules.push_back(json::array({match("==", saddr, net), match("==", daddr, net), verdict("return")}));
    rules.push_back(json::array({match("==", saddr, net), match("!=", daddr, f.multicast.listed), masquerade()}));
    if (f.subnet)
      rules.push_back(json::array({match("!=", saddr, net), match("==", daddr, f.subnet->listed), verdict("return")}));
    rules.push_back(json::array({match("!=", saddr, net), match("==", daddr, net), masquerade()}));
  }
  t.chains["forward"] = base_chain("filter", "forward", kFilter);
  t.rules["forward"] = {json::array({match("==", saddr, net), verdict("accept")}),
                        json::array({match("==", daddr, net), verdict("accept")})};
  if (s.vxlan_allowlist) {
    t.chains["input"] = base_chain("filter", "input", kFilter);
    t.rules["input"] = {json::array(
        {match("==", payload("udp", "dport"), s.vxlan_port), match("!=", saddr, "@vxlan-sources"), verdict("drop")})};
  }
  return t;
}

std::string render(const FirewallSpec& s, const FamilyTable& f) {
  const std::string net = f.network.text;
  const std::string ip = f.family;
  std::ostringstream t;
  t << "table " << ip << " " << kTable << " {\n";
  t << "\tcomment \"managed by weftd: hand edits are reverted\"\n";
  if (s.vxlan_allowlist) {
    // An interval set lives in an rbtree, which the kernel dumps in key order. A hash set is
    // rehashed by a deferred worker after a burst of inserts, and a dump that spans several
    // netlink messages during that rehash can skip elements: the listing then looks changed.
    t << "\tset vxlan-sources {\n\t\ttype " << f.addr_type << "\n\t\tflags interval\n";
    if (!f.sources.empty()) {
      t << "\t\telements = { ";
      for (std::size_t i = 0; i < f.sources.size(); ++i) t << (i ? ", " : "") << f.sources[i];
      t << " }\n";
    }
    t << "\t}\n\n";
  }
  if (s.ip_masq) {
    t << "\tchain postrouting {\n"
      << "\t\ttype nat hook postrouting priority srcnat; policy accept;\n"
      << "\t\tmeta mark & 0x00004000 == 0x00004000 return\n"  // kube-proxy masquerades these itself
      << "\t\t" << ip << " saddr " << net << " " << ip << " daddr " << net << " return\n"
      << "\t\t" << ip << " saddr " << net << " " << ip << " daddr != " << f.multicast.text
      << " masquerade fully-random\n";
    if (f.subnet) t << "\t\t" << ip << " saddr != " << net << " " << ip << " daddr " << f.subnet->text << " return\n";
    t << "\t\t" << ip << " saddr != " << net << " " << ip << " daddr " << net << " masquerade fully-random\n"
      << "\t}\n\n";
  }
  t << "\tchain forward {\n"
    << "\t\ttype filter hook forward priority filter; policy accept;\n"
    << "\t\t" << ip << " saddr " << net << " accept\n"
    << "\t\t" << ip << " daddr " << net << " accept\n"
    << "\t}\n";
  if (s.vxlan_allowlist) {
    t << "\n\tchain input {\n"
      << "\t\ttype filter hook input priority filter; policy accept;\n"
      << "\t\tudp dport " << s.vxlan_port << " " << ip << " saddr != @vxlan-sources drop\n"
      << "\t}\n";
  }
  t << "}\n";
  return t.str();
}

// Replaces `table <family> weft` whatever the kernel holds: add (a no-op when it exists),
// delete, define, inside the caller's transaction.
std::string replacement(const FirewallSpec& s, const FamilyTable& f) {
  return std::string("add table ") + f.family + " " + kTable + "\ndelete table " + f.family + " " + kTable + "\n" +
         render(s, f);
}

// The families (`ip`, `ip6`) that have a table named weft, from a `list tables` JSON listing.
std::set<std::string> weft_families(const std::string& listing) {
  std::set<std::string> out;
  auto doc = json::parse(listing, nullptr, false);
  if (doc.is_discarded() || !doc.contains("nftables") || !doc["nftables"].is_array()) return out;
  for (const auto& o : doc["nftables"]) {
    if (const auto t = o.find("table"); t != o.end() && t->value("name", "") == kTable)
      out.insert(t->value("family", ""));
  }
  return out;
}

// `add element ...` / `delete element ...` lines moving one family's allow-list from `had` to `want`.
template <class Addr>
std::string element_changes(const char* family, const std::set<Addr>& had, const std::set<Addr>& want) {
  std::set<Addr> added, removed;
  std::set_difference(want.begin(), want.end(), had.begin(), had.end(), std::inserter(added, added.end()));
  std::set_difference(had.begin(), had.end(), want.begin(), want.end(), std::inserter(removed, removed.end()));
  const std::string set = std::string(" element ") + family + " " + kTable + " vxlan-sources { ";
  std::string lines;
  if (!added.empty()) lines += "add" + set + join_sources(added) + " }\n";
  if (!removed.empty()) lines += "delete" + set + join_sources(removed) + " }\n";
  return lines;
}

}  // namespace

std::string render_table(const FirewallSpec& s) { return s.network ? render(s, v4_table(s)) : std::string(); }

std::string render_table_v6(const FirewallSpec& s) { return s.network_v6 ? render(s, v6_table(s)) : std::string(); }

bool Firewall::present() {
  auto listing = nft_.list_json("list tables");
  if (!listing) return false;
  auto families = weft_families(*listing);
  return families.count("ip") > 0 || families.count("ip6") > 0;
}

Result<FirewallReport> Firewall::reconcile(const FirewallSpec& spec) {
  if (!spec.network && !spec.network_v6) return fail("cannot build nftables tables: the spec has no network");
  if (spec.network && !spec.subnet)
    return fail("cannot build nftables table ip " + std::string(kTable) + ": network " + spec.network->str() +
                " but this node has no subnet in the spec");
  if (spec.network_v6 && spec.ip_masq && !spec.subnet_v6)
    return fail("cannot build nftables table ip6 " + std::string(kTable) + ": IPv6 network " + spec.network_v6->str() +
                " is masqueraded but this node has no IPv6 subnet in the spec");
  std::string batch;    // one transaction for both families
  std::string touched;  // "table ip weft, table ip6 weft", for the error
  auto replace_unless_equal = [&](const FamilyTable& f) {
    auto current = nft_.list_json(std::string("list table ") + f.family + " " + kTable);
    if (current && shape_of(*current) == desired_shape(spec, f)) return;
    batch += replacement(spec, f);
    touched += (touched.empty() ? "table " : ", table ") + std::string(f.family) + " " + kTable;
  };
  // A table of a family the cluster no longer has (a dual-stack run's on a single-stack node):
  // its rules must not stay. Deleted the way replacement() does it, so a table gone meanwhile
  // does not fail the batch.
  auto delete_stale = [&](const std::string& family) {
    auto tables = nft_.list_json("list tables " + family);
    if (!tables || weft_families(*tables).count(family) > 0) {
      batch += "add table " + family + " " + kTable + "\ndelete table " + family + " " + kTable + "\n";
      touched += (touched.empty() ? "table " : ", table ") + family + " " + kTable + " (stale, to delete)";
    }
  };
  if (spec.network) {
    replace_unless_equal(v4_table(spec));
  } else {
    delete_stale("ip");
  }
  if (spec.network_v6) {
    replace_unless_equal(v6_table(spec));
  } else {
    delete_stale("ip6");
  }
  if (batch.empty()) return FirewallReport{false};
  // add + delete + define in one batch: atomic, so no packet sees a table missing.
  auto applied = nft_.run(batch);
  if (!applied) return fail("cannot write nftables " + touched + ": " + applied.error());
  return FirewallReport{true};
}

Status Firewall::update_sources(const FirewallSpec& from, const FirewallSpec& to) {
  if (!same_rules(from, to))
    return fail("cannot update the VXLAN allow-list alone: the firewall's rules changed too (reconcile instead)");
  if (!to.vxlan_allowlist) return ok_status();  // no allow-list sets in the kernel
  std::string batch;
  if (to.network) batch += element_changes("ip", from.vxlan_sources, to.vxlan_sources);
  if (to.network_v6) batch += element_changes("ip6", from.vxlan_sources_v6, to.vxlan_sources_v6);
  if (batch.empty()) return ok_status();
  auto applied = nft_.run(batch);
  if (!applied) {
    std::string tables = to.network ? std::string("table ip ") + kTable : std::string();
    if (to.network_v6) tables += (tables.empty() ? "table ip6 " : " and table ip6 ") + std::string(kTable);
    return fail("cannot update the VXLAN allow-list in " + tables + ": " + applied.error());
  }
  return ok_status();
}

}  // namespace weft
