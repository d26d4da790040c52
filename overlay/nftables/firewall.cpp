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

std::string join_sources(const std::set<Ipv4Addr>& sources) {
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
      t.sets[s->value("name", "")] = set_shape(s->value("type", ""), s->value("flags", json::array()), std::move(elements));
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

json payload(const char* protocol, const char* field) {
  return {{"payload", {{"protocol", protocol}, {"field", field}}}};
}
json prefix(const Ipv4Prefix& p) {
  if (p.length() == 32) return p.address().str();
  return {{"prefix", {{"addr", p.address().str()}, {"len", p.length()}}}};
}
json match(const char* op, json left, json right) {
  return {{"match", {{"op", op}, {"left", std::move(left)}, {"right", std::move(right)}}}};
}
json verdict(const char* name) { return {{name, nullptr}}; }
json masquerade() { return {{"masquerade", {{"flags", "fully-random"}}}}; }
json base_chain(const char* type, const char* hook, int prio) {
  return {{"type", type}, {"hook", hook}, {"prio", prio}, {"policy", "accept"}};
}

// What render_table(s) lists as, in the kernel's JSON terms.
TableShape desired_shape(const FirewallSpec& s) {
  constexpr int kSrcnat = 100;
  constexpr int kFilter = 0;
  constexpr int kMasqMark = 0x4000;
  const json saddr = payload("ip", "saddr");
  const json daddr = payload("ip", "daddr");
  const json net = prefix(s.network);
  TableShape t;
  if (s.vxlan_allowlist) {
    std::set<std::string> elements;
    for (const auto& ip : s.vxlan_sources) elements.insert(json(ip.str()).dump());
    t.sets["vxlan-sources"] = set_shape("ipv4_addr", json::array({"interval"}), std::move(elements));
  }
  if (s.ip_masq) {
    const json marked = {{"&", json::array({json{{"meta", {{"key", "mark"}}}}, kMasqMark})}};
    const json multicast = prefix(Ipv4Prefix::parse("224.0.0.0/4").value());
    t.chains["postrouting"] = base_chain("nat", "postrouting", kSrcnat);
    t.rules["postrouting"] = {
        json::array({match("==", marked, kMasqMark), verdict("return")}),
        json::array({match("==", saddr, net), match("==", daddr, net), verdict("return")}),
        json::array({match("==", saddr, net), match("!=", daddr, multicast), masquerade()}),
        json::array({match("!=", saddr, net), match("==", daddr, prefix(s.subnet)), verdict("return")}),
        json::array({match("!=", saddr, net), match("==", daddr, net), masquerade()}),
    };
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

}  // namespace

std::string render_table(const FirewallSpec& s) {
  const std::string net = s.network.str();
  std::ostringstream t;
  t << "table ip " << kTable << " {\n";
  t << "\tcomment \"managed by weftd: hand edits are reverted\"\n";
  if (s.vxlan_allowlist) {
    // An interval set lives in an rbtree, which the kernel dumps in key order. A hash set is
    // rehashed by a deferred worker after a burst of inserts, and a dump that spans several
    // netlink messages during that rehash can skip elements: the listing then looks changed.
    t << "\tset vxlan-sources {\n\t\ttype ipv4_addr\n\t\tflags interval\n";
    if (!s.vxlan_sources.empty()) t << "\t\telements = { " << join_sources(s.vxlan_sources) << " }\n";
    t << "\t}\n\n";
  }
  if (s.ip_masq) {
    t << "\tchain postrouting {\n"
      << "\t\ttype nat hook postrouting priority srcnat; policy accept;\n"
      << "\t\tmeta mark & 0x00004000 == 0x00004000 return\n"  // kube-proxy masquerades these itself
      << "\t\tip saddr " << net << " ip daddr " << net << " return\n"
      << "\t\tip saddr " << net << " ip daddr != 224.0.0.0/4 masquerade fully-random\n"
      << "\t\tip saddr != " << net << " ip daddr " << s.subnet.str() << " return\n"
      << "\t\tip saddr != " << net << " ip daddr " << net << " masquerade fully-random\n"
      << "\t}\n\n";
  }
  t << "\tchain forward {\n"
    << "\t\ttype filter hook forward priority filter; policy accept;\n"
    << "\t\tip saddr " << net << " accept\n"
    << "\t\tip daddr " << net << " accept\n"
    << "\t}\n";
  if (s.vxlan_allowlist) {
    t << "\n\tchain input {\n"
      << "\t\ttype filter hook input priority filter; policy accept;\n"
      << "\t\tudp dport " << s.vxlan_port << " ip saddr != @vxlan-sources drop\n"
      << "\t}\n";
  }
  t << "}\n";
  return t.str();
}

bool Firewall::present() { return static_cast<bool>(nft_.run(std::string("list table ip ") + kTable)); }

Result<FirewallReport> Firewall::reconcile(const FirewallSpec& spec) {
  auto current = nft_.list_json(std::string("list table ip ") + kTable);
  if (current && shape_of(*current) == desired_shape(spec)) return FirewallReport{false};
  const std::string desired = render_table(spec);
  // add + delete + define in one batch: atomic, so no packet sees the table missing.
  auto applied = nft_.run(std::string("add table ip ") + kTable + "\ndelete table ip " + kTable + "\n" + desired);
  if (!applied) return fail("cannot install nftables table ip " + std::string(kTable) + ": " + applied.error());
  return FirewallReport{true};
}

Status Firewall::update_sources(const FirewallSpec& from, const FirewallSpec& to) {
  std::set<Ipv4Addr> added, removed;
  std::set_difference(to.vxlan_sources.begin(), to.vxlan_sources.end(), from.vxlan_sources.begin(),
                      from.vxlan_sources.end(), std::inserter(added, added.end()));
  std::set_difference(from.vxlan_sources.begin(), from.vxlan_sources.end(), to.vxlan_sources.begin(),
                      to.vxlan_sources.end(), std::inserter(removed, removed.end()));
  const std::string set = std::string(" element ip ") + kTable + " vxlan-sources { ";
  std::string batch;
  if (!added.empty()) batch += "add" + set + join_sources(added) + " }\n";
  if (!removed.empty()) batch += "delete" + set + join_sources(removed) + " }\n";
  if (batch.empty()) return ok_status();
  auto applied = nft_.run(batch);
  if (!applied)
    return fail("cannot update the VXLAN allow-list in table ip " + std::string(kTable) + ": " + applied.error());
  return ok_status();
}

}  // namespace weft
