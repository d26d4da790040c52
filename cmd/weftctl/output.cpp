#include "cmd/weftctl/output.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>

namespace weft::ctl {
namespace {

// A peer's IPv4 value; weftd lists IPv4 peers with all of them, so "-" only guards bad input.
template <class T>
std::string dash_if_none(const std::optional<T>& v) {
  return v ? v->str() : "-";
}

using nlohmann::json;

json entry_json(const EntryState& e) {
  json j = {{"state", to_string(e.kind)}};
  if (!e.detail.empty()) j["kernel"] = e.detail;
  return j;
}

// The lease's IPv6 half, the keys weftd's /status has (dual stack only).
void add_lease_v6(json& lease, const DaemonLease& d) {
  for (const auto& [key, value] : {std::pair{"subnet_v6", &d.subnet_v6},
                                   {"network_v6", &d.network_v6},
                                   {"public_ip_v6", &d.public_ip_v6},
                                   {"vtep_mac_v6", &d.vtep_mac_v6}}) {
    if (!value->empty()) lease[key] = *value;
  }
}

json skipped_json(const std::vector<SkippedNode>& skipped) {
  json a = json::array();
  for (const auto& s : skipped) a.push_back({{"node", s.node}, {"reason", s.reason}, {"by", s.by}});
  return a;
}

void append(std::vector<std::string>& row, const std::vector<std::string>& more) {
  row.insert(row.end(), more.begin(), more.end());
}

std::vector<std::string> entry_columns(const PeerKernelState& s) {
  return {to_string(s.route.kind), to_string(s.neighbor.kind), to_string(s.fdb.kind)};
}

// A peer's IPv6 half (no public IPv6 address: its VXLAN rides the IPv4 underlay), or dashes.
std::vector<std::string> v6_columns(const PeerKernelState* s) {
  if (!s || !s->peer.subnet_v6 || !s->peer.vtep_mac_v6) return std::vector<std::string>(6, "-");
  const Peer& p = s->peer;
  std::vector<std::string> row{p.subnet_v6->str(), p.public_ip_v6 ? p.public_ip_v6->str() : "-", p.vtep_mac_v6->str()};
  append(row, entry_columns(*s));
  return row;
}

json v6_json(const PeerKernelState& s) {
  const Peer& p = s.peer;
  json j = {{"subnet", p.subnet_v6 ? p.subnet_v6->str() : ""},
            {"gateway", p.subnet_v6 ? p.subnet_v6->address().str() : ""},
            {"vtep_mac", p.vtep_mac_v6 ? p.vtep_mac_v6->str() : ""},
            {"ok", s.ok()},
            {"direct", s.direct},
            {"route", entry_json(s.route)},
            {"neighbor", entry_json(s.neighbor)},
            {"fdb", entry_json(s.fdb)}};
  if (p.public_ip_v6) j["public_ip"] = p.public_ip_v6->str();
  return j;
}

// Columns padded to the widest cell, two spaces apart, no trailing blanks.
std::string table_text(const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::size_t> width(rows[0].size(), 0);
  for (const auto& r : rows) {
    for (std::size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
  }
  std::string out;
  for (const auto& r : rows) {
    std::string line;
    for (std::size_t i = 0; i < r.size(); ++i) line += fmt::format("{:<{}}  ", r[i], width[i]);
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  return out;
}

// "node2: route is wrong, the kernel has ..." per wrong entry (family: "" or "IPv6 ").
std::string wrong_entries(const PeerKernelState& p, const std::string& family) {
  std::string out;
  for (const auto& [what, e] : {std::pair{"route", &p.route}, {"neighbour", &p.neighbor}, {"FDB", &p.fdb}}) {
    if (!e->detail.empty()) {
      out += fmt::format("{}: {}{} is wrong, the kernel has {}\n", p.peer.name, family, what, e->detail);
    }
  }
  return out;
}

// Both families' foreign routes, IPv4 first.
std::vector<std::string> foreign_routes(const KernelView& k) {
  std::vector<std::string> out;
  for (const auto& r : k.foreign_routes) out.push_back(to_string(r));
  if (k.v6) {
    for (const auto& r : k.v6->foreign_routes) out.push_back(to_string(r));
  }
  return out;
}

}  // namespace

std::string status_json(const NodeStatus& s) {
  json j = {{"reachable", s.readyz.has_value()}};
  if (!s.readyz) j["error"] = s.reach_error;
  if (s.readyz) {
    std::string why = s.readyz->body;
    while (!why.empty() && why.back() == '\n') why.pop_back();
    j["ready"] = s.readyz->status == 200;
    if (s.readyz->status != 200) j["not_ready_reason"] = why;
  }
  if (s.daemon) {
    const auto& d = *s.daemon;
    j["subnet_file"] = d.subnet_file;
    j["families"] = d.ipv6_only ? json::array({"ipv6"})
                    : d.vtep6   ? json::array({"ipv4", "ipv6"})
                                : json::array({"ipv4"});
    if (d.leased) {
      j["lease"] = {{"mtu", d.mtu}, {"ipmasq", d.ipmasq}};
      if (!d.ipv6_only) {
        j["lease"].update(
            {{"subnet", d.subnet}, {"network", d.network}, {"public_ip", d.public_ip}, {"vtep_mac", d.vtep_mac}});
      }
      add_lease_v6(j["lease"], d);
    }
    if (d.vtep6) {
      j["vtep6"] = {
          {"name", d.vtep6->name}, {"vni", d.vtep6->vni}, {"local_ip", d.vtep6->local_ip}, {"mtu", d.vtep6->mtu}};
    }
  } else if (s.env) {
    j["lease"] = {{"mtu", s.env->mtu}, {"ipmasq", s.env->ipmasq}};
    if (s.env->subnet) j["lease"]["subnet"] = s.env->subnet->str();
    if (s.env->network) j["lease"]["network"] = s.env->network->str();
    if (s.env->subnet_v6) j["lease"]["subnet_v6"] = s.env->subnet_v6->str();
    if (s.env->network_v6) j["lease"]["network_v6"] = s.env->network_v6->str();
  }
  j["metrics"] = s.metrics;
  json skipped = json::array();
  for (const auto& [node, why] : s.skipped) skipped.push_back({{"node", node}, {"reason", why}});
  j["skipped"] = std::move(skipped);
  return j.dump(2) + "\n";
}

namespace {

// What follows the table in either layout: skipped peers and foreign routes.
std::string peers_footer(const DaemonStatus& d, const KernelView& k) {
  std::string out;
  if (d.vtep6 && (!k.v6 || !k.v6->vtep)) {
    out += fmt::format("no device {}: no IPv6 entry can be in the kernel\n", d.vtep6->name);
  }
  for (const auto& s : d.skipped) out += fmt::format("skipped {}: {} ({})\n", s.node, s.reason, s.by);
  for (const auto& r : foreign_routes(k)) out += "foreign route: " + r + "\n";
  return out;
}

// IPv6-only: the IPv6 columns alone, one row per peer of the IPv6 family.
std::string peers_text_v6_only(const DaemonStatus& d, const KernelView& k) {
  std::vector<std::vector<std::string>> rows{
      {"NODE", "SUBNET-V6", "PUBLIC-IP-V6", "VTEP-MAC-V6", "ROUTE6", "NEIGH6", "FDB6"}};
  const std::vector<PeerKernelState> none;
  const auto& peers = k.v6 ? k.v6->peers : none;
  for (const auto& p : peers) {
    rows.push_back({p.peer.name});
    append(rows.back(), v6_columns(&p));
  }
  std::string out = "IPv6-only cluster: weftd has no IPv4 half\n" + table_text(rows);
  for (const auto& p : peers) out += wrong_entries(p, "IPv6 ");
  if (peers.empty()) out += "(no peers)\n";
  return out + peers_footer(d, k);
}

// IPv6-only: each peer is its IPv6 half; no IPv4 keys, as in weftd's /status.
json peers_json_v6_only(const KernelView& k) {
  json peers = json::array();
  if (!k.v6) return peers;
  for (const auto& p : k.v6->peers) peers.push_back({{"node", p.peer.name}, {"ok", p.ok()}, {"v6", v6_json(p)}});
  return peers;
}

// Dual stack or IPv4-only: a row per peer of the IPv4 family, with its IPv6 half if any.
json peers_json_v4(const KernelView& k) {
  json peers = json::array();
  for (const auto& p : k.peers) {
    const PeerKernelState* v6 = k.v6_of(p.peer.name);
    json one = {{"node", p.peer.name},
                {"subnet", dash_if_none(p.peer.subnet)},
                {"gateway", p.peer.subnet ? p.peer.subnet->address().str() : "-"},
                {"public_ip", dash_if_none(p.peer.public_ip)},
                {"vtep_mac", dash_if_none(p.peer.vtep_mac)},
                {"direct", p.direct},
                {"ok", p.ok() && (!v6 || v6->ok())},
                {"route", entry_json(p.route)},
                {"neighbor", entry_json(p.neighbor)},
                {"fdb", entry_json(p.fdb)}};
    if (v6) one["v6"] = v6_json(*v6);
    peers.push_back(std::move(one));
  }
  return peers;
}

json families(const DaemonStatus& d) {
  json out = json::array();
  if (d.has_ipv4()) out.push_back("ipv4");
  if (d.has_ipv6()) out.push_back("ipv6");
  return out;
}

}  // namespace

std::string peers_text(const DaemonStatus& d, const KernelView& k) {
  if (!d.has_ipv4()) return peers_text_v6_only(d, k);
  std::vector<std::vector<std::string>> rows{{"NODE", "SUBNET", "PUBLIC-IP", "VTEP-MAC", "ROUTE", "NEIGH", "FDB"}};
  if (d.dual_stack()) {
    rows[0].insert(rows[0].end(), {"SUBNET-V6", "PUBLIC-IP-V6", "VTEP-MAC-V6", "ROUTE6", "NEIGH6", "FDB6"});
  }
  for (const auto& p : k.peers) {
    rows.push_back(
        {p.peer.name, dash_if_none(p.peer.subnet), dash_if_none(p.peer.public_ip), dash_if_none(p.peer.vtep_mac)});
    append(rows.back(), entry_columns(p));
    if (d.dual_stack()) append(rows.back(), v6_columns(k.v6_of(p.peer.name)));
  }
  std::string out = table_text(rows);
  for (const auto& p : k.peers) {
    out += wrong_entries(p, "");
    if (const PeerKernelState* v6 = k.v6_of(p.peer.name)) out += wrong_entries(*v6, "IPv6 ");
  }
  if (k.peers.empty()) out += "(no peers)\n";
  if (!k.vtep) out += fmt::format("no device {}: nothing can be in the kernel\n", d.vtep->name);
  return out + peers_footer(d, k);
}

std::string peers_json(const DaemonStatus& d, const KernelView& k) {
  json peers = d.has_ipv4() ? peers_json_v4(k) : peers_json_v6_only(k);
  json j = {{"families", families(d)},
            {"peers", std::move(peers)},
            {"skipped", skipped_json(d.skipped)},
            {"foreign_routes", foreign_routes(k)}};
  if (d.vtep) {
    j["vtep"] = d.vtep->name;
    j["vtep_present"] = k.vtep.has_value();
  }
  if (d.vtep6) {
    j["vtep6"] = d.vtep6->name;
    j["vtep6_present"] = k.v6 && k.v6->vtep.has_value();
  }
  return j.dump(2) + "\n";
}

std::string doctor_text(const std::vector<Check>& checks) {
  std::size_t width = 0;
  for (const auto& c : checks) width = std::max(width, c.name.size());
  std::string out;
  int failures = 0;
  for (const auto& c : checks) {
    out += fmt::format("{}  {:<{}}  {}\n", c.pass ? "PASS" : "FAIL", c.name, width, c.detail);
    if (!c.pass) {
      ++failures;
      out += fmt::format("      {:<{}}  fix: {}\n", "", width, c.fix);
    }
  }
  out += failures == 0 ? fmt::format("all {} checks pass\n", checks.size())
                       : fmt::format("{} of {} checks FAIL\n", failures, checks.size());
  return out;
}

std::string doctor_json(const std::vector<Check>& checks) {
  json a = json::array();
  bool all = true;
  for (const auto& c : checks) {
    json one = {{"name", c.name}, {"pass", c.pass}, {"detail", c.detail}};
    if (!c.pass) one["fix"] = c.fix;
    all = all && c.pass;
    a.push_back(std::move(one));
  }
  return json{{"pass", all}, {"checks", std::move(a)}}.dump(2) + "\n";
}

}  // namespace weft::ctl
