#include "overlay/nftables/firewall.hpp"

#include <algorithm>
#include <cctype>
#include <iterator>
#include <sstream>

namespace weft {
namespace {

constexpr const char* kTable = "weft";

std::string join_sources(const std::set<Ipv4Addr>& sources) {
  std::string out;
  for (const auto& ip : sources) out += (out.empty() ? "" : ", ") + ip.str();
  return out;
}

// Listings wrap long element lists and may order them differently: compare the elements as a
// set and everything else with whitespace removed.
struct Normalized {
  std::string rules;
  std::set<std::string> elements;
  bool operator==(const Normalized&) const = default;
};

Normalized normalize(const std::string& listing) {
  Normalized n;
  std::string text = listing;
  const std::string marker = "elements = {";
  for (auto at = text.find(marker); at != std::string::npos; at = text.find(marker)) {
    auto end = text.find('}', at);
    if (end == std::string::npos) break;
    std::string inside = text.substr(at + marker.size(), end - at - marker.size());
    std::replace(inside.begin(), inside.end(), ',', ' ');
    std::istringstream in(inside);
    for (std::string e; in >> e;) n.elements.insert(e);
    text.erase(at, end - at + 1);
  }
  for (char c : text) {
    if (!std::isspace(static_cast<unsigned char>(c))) n.rules += c;
  }
  return n;
}

}  // namespace

std::string render_table(const FirewallSpec& s) {
  const std::string net = s.network.str();
  std::ostringstream t;
  t << "table ip " << kTable << " {\n";
  t << "\tcomment \"managed by weftd: hand edits are reverted\"\n";
  if (s.vxlan_allowlist) {
    t << "\tset vxlan-sources {\n\t\ttype ipv4_addr\n";
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
  std::string desired = render_table(spec);
  auto current = nft_.run(std::string("list table ip ") + kTable);
  if (current && normalize(*current) == normalize(desired)) return FirewallReport{false};
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
