#include "cmd/weftctl/output.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>

namespace weft::ctl {
namespace {

using nlohmann::json;

json entry_json(const EntryState& e) {
  json j = {{"state", to_string(e.kind)}};
  if (!e.detail.empty()) j["kernel"] = e.detail;
  return j;
}

json skipped_json(const std::vector<SkippedNode>& skipped) {
  json a = json::array();
  for (const auto& s : skipped) a.push_back({{"node", s.node}, {"reason", s.reason}, {"by", s.by}});
  return a;
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
    if (d.leased) {
      j["lease"] = {{"subnet", d.subnet},     {"network", d.network}, {"public_ip", d.public_ip},
                    {"vtep_mac", d.vtep_mac}, {"mtu", d.mtu},         {"ipmasq", d.ipmasq}};
    }
  } else if (s.env) {
    j["lease"] = {{"subnet", s.env->subnet.str()},
                  {"network", s.env->network.str()},
                  {"mtu", s.env->mtu},
                  {"ipmasq", s.env->ipmasq}};
  }
  j["metrics"] = s.metrics;
  json skipped = json::array();
  for (const auto& [node, why] : s.skipped) skipped.push_back({{"node", node}, {"reason", why}});
  j["skipped"] = std::move(skipped);
  return j.dump(2) + "\n";
}

std::string peers_text(const DaemonStatus& d, const KernelView& k) {
  std::vector<std::vector<std::string>> rows{{"NODE", "SUBNET", "PUBLIC-IP", "VTEP-MAC", "ROUTE", "NEIGH", "FDB"}};
  for (const auto& p : k.peers) {
    rows.push_back({p.peer.name, p.peer.subnet.str(), p.peer.public_ip.str(), p.peer.vtep_mac.str(),
                    to_string(p.route.kind), to_string(p.neighbor.kind), to_string(p.fdb.kind)});
  }
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
  for (const auto& p : k.peers) {
    for (const auto& [what, e] : {std::pair{"route", &p.route}, {"neighbour", &p.neighbor}, {"FDB", &p.fdb}}) {
      if (!e->detail.empty()) out += fmt::format("{}: {} is wrong, the kernel has {}\n", p.peer.name, what, e->detail);
    }
  }
  if (k.peers.empty()) out += "(no peers)\n";
  if (!k.vtep) out += fmt::format("no device {}: nothing can be in the kernel\n", d.vtep.name);
  for (const auto& s : d.skipped) out += fmt::format("skipped {}: {} ({})\n", s.node, s.reason, s.by);
  for (const auto& r : k.foreign_routes) out += fmt::format("foreign route: {}\n", to_string(r));
  return out;
}

std::string peers_json(const DaemonStatus& d, const KernelView& k) {
  json peers = json::array();
  for (const auto& p : k.peers) {
    peers.push_back({{"node", p.peer.name},
                     {"subnet", p.peer.subnet.str()},
                     {"gateway", p.peer.subnet.address().str()},
                     {"public_ip", p.peer.public_ip.str()},
                     {"vtep_mac", p.peer.vtep_mac.str()},
                     {"direct", p.direct},
                     {"ok", p.ok()},
                     {"route", entry_json(p.route)},
                     {"neighbor", entry_json(p.neighbor)},
                     {"fdb", entry_json(p.fdb)}});
  }
  json foreign = json::array();
  for (const auto& r : k.foreign_routes) foreign.push_back(to_string(r));
  json j = {{"vtep", d.vtep.name},
            {"vtep_present", k.vtep.has_value()},
            {"peers", std::move(peers)},
            {"skipped", skipped_json(d.skipped)},
            {"foreign_routes", std::move(foreign)}};
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
