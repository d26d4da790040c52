#include "subnet/kube/kube_subnet_manager.hpp"

#include <spdlog/spdlog.h>

#include <cstdlib>
#include <mutex>
#include <optional>
#include <regex>
#include <thread>
#include <utility>

#include "subnet/kube/lease_protocol.hpp"
#include "subnet/kube/node_watch.hpp"
#include "subnet/kube/peer_cache.hpp"
#include "subnet/kube/retry.hpp"

namespace weft::kube {
namespace {

// flannel's annotations when net-conf.json says FlannelCompat, else weft's under the prefix.
AnnotationKeys annotation_keys(const KubeSubnetConfig& cfg) {
  return cfg.net.flannel_compat ? AnnotationKeys::flannel_compat() : AnnotationKeys::with_prefix(cfg.annotation_prefix);
}

class KubeSubnetManager final : public SubnetManager {
 public:
  KubeSubnetManager(std::shared_ptr<KubeClient> client, KubeSubnetConfig cfg)
      : client_(std::move(client)),
        cfg_(std::move(cfg)),
        keys_(annotation_keys(cfg_)),
        retry_{stop_, cfg_.backoff, [this] { count_error(); }} {}

  ~KubeSubnetManager() override { stop(); }

  Result<OwnNode> read_own_node() override;
  using SubnetManager::acquire;
  Result<Lease> acquire(const Lease& base) override;
  void start_watch(std::function<void()> peers_changed) override;
  PeerSet peers() const override;
  Status set_network_unavailable(bool unavailable, const std::string& message) override;
  SubnetStats stats() const override;
  std::map<std::string, std::string> skipped_nodes(std::size_t limit) const override;
  void stop() override;

 private:
  void count_error() {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.api_errors;
  }
  void on_list(const NodeList& list);
  void count_peers();  // needs mu_
  void on_event(const WatchEvent& ev, bool more);

  std::shared_ptr<KubeClient> client_;
  KubeSubnetConfig cfg_;
  AnnotationKeys keys_;
  StopSignal stop_;
  RetryContext retry_;

  mutable std::mutex mu_;  // guards everything below
  SubnetStats stats_;
  std::uint64_t watch_errors_ = 0;  // the watch's share of stats_.api_errors
  std::optional<Ipv4Prefix> own_subnet_;
  std::optional<Ipv6Prefix> own_subnet_v6_;
  bool v6_underlay_ = false;  // our lease publishes public-ipv6
  std::int64_t own_rank_ = kUnknownRank;
  std::optional<NodeList> seed_list_;  // the lease's last list: the watch starts from it
  std::optional<PeerCache> cache_;
  std::function<void()> peers_changed_;
  bool first_list_done_ = false;
  bool dirty_ = false;
  std::thread watch_thread_;
  bool stopped_ = false;
};

Result<OwnNode> KubeSubnetManager::read_own_node() {
  auto node = retry(retry_, "read node " + cfg_.node_name, [&] { return client_->get_node(cfg_.node_name); });
  if (!node) {
    if (node.error().kind == ApiErrorKind::NotFound) {
      return fail("node " + cfg_.node_name +
                  " not found in the API: check --node-name/NODE_NAME (it must be the "
                  "name kubelet registered)");
    }
    return fail(node.error().message);
  }
  OwnNode own;
  own.name = node->name;
  if (cfg_.net.ipv4) {  // an IPv6-only cluster's podCIDRs are IPv6: the lease reads them
    auto pod_cidr = ipv4_pod_cidr(*node);
    if (!pod_cidr) return pod_cidr.take_error();
    own.pod_cidr = *pod_cidr;
  }
  for (const auto& ip : node->internal_ips) {
    if (auto a = Ipv4Addr::parse(ip)) {
      own.internal_ip = *a;
      break;
    }
  }
  auto mine = parse_own(node->annotations, keys_);
  own.subnet = mine.subnet;
  own.public_ip = mine.public_ip;
  own.vtep_mac = mine.vtep_mac;
  own.vtep_mac_v6 = mine.vtep_mac_v6;
  return own;
}

Result<Lease> KubeSubnetManager::acquire(const Lease& base) {
  auto node = retry(retry_, "read node " + cfg_.node_name, [&] { return client_->get_node(cfg_.node_name); });
  if (!node) return fail(node.error().message);
  LeaseSettings settings;
  settings.node_name = cfg_.node_name;
  settings.keys = keys_;
  settings.network = cfg_.net.ipv4;
  settings.network_v6 = cfg_.net.ipv6;
  settings.backend = cfg_.net.backend;
  settings.conflict_backoff = cfg_.conflict_backoff;
  settings.source = cfg_.net.subnet_source;
  settings.auto_wait = cfg_.auto_wait;
  settings.pod_cidr_poll = cfg_.pod_cidr_poll;
  settings.waiting = [this](const std::string& why) {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.lease_waiting = why;
  };
  LeaseProtocol protocol(*client_, retry_, settings);
  auto lease = protocol.acquire(*node, base);
  std::lock_guard<std::mutex> lock(mu_);
  seed_list_ = protocol.take_last_list();
  stats_.lease_attempts += protocol.attempts();
  stats_.lease_conflicts += protocol.conflicts();
  stats_.lease_waiting.clear();
  stats_.lease_problem = protocol.problem();
  if (lease) {
    own_subnet_ = lease->subnet;
    own_subnet_v6_ = lease->subnet_v6;
    v6_underlay_ = lease->public_ip_v6.has_value();
    own_rank_ = protocol.claim_rank();
  }
  return lease;
}

void KubeSubnetManager::start_watch(std::function<void()> peers_changed) {
  std::lock_guard<std::mutex> lock(mu_);
  if (watch_thread_.joinable() || stopped_) return;
  // Peers lease in SubnetMin..SubnetMax; the controller assigns podCIDRs anywhere in the network.
  std::optional<FamilyConfig<Ipv4Addr>> range;
  if (cfg_.net.ipv4)
    range = cfg_.net.subnet_source == SubnetSource::Lease ? *cfg_.net.ipv4 : whole_network(*cfg_.net.ipv4);
  std::optional<FamilyConfig<Ipv6Addr>> range_v6;
  if (cfg_.net.ipv6)
    range_v6 = cfg_.net.subnet_source == SubnetSource::Lease ? *cfg_.net.ipv6 : whole_network(*cfg_.net.ipv6);
  PeerRules rules{range,    cfg_.net.backend.type, cfg_.net.backend.vni, own_subnet_,
                  range_v6, own_subnet_v6_,        v6_underlay_};
  cache_.emplace(cfg_.node_name, keys_, rules, own_rank_);
  peers_changed_ = std::move(peers_changed);
  watch_thread_ = std::thread([this] {
    NodeWatch::Handlers h;
    h.on_list = [this](const NodeList& l) { on_list(l); };
    h.on_event = [this](const WatchEvent& ev, bool more) { on_event(ev, more); };
    h.on_counters = [this](const WatchCounters& c) {
      std::lock_guard<std::mutex> l(mu_);
      stats_.lists = c.lists;
      stats_.relists = c.relists;
      stats_.watches = c.watches;
      stats_.events = c.events;
      stats_.bookmarks = c.bookmarks;
      stats_.api_errors += c.errors - watch_errors_;
      watch_errors_ = c.errors;
    };
    std::optional<NodeList> seed;
    {
      std::lock_guard<std::mutex> l(mu_);
      seed = std::exchange(seed_list_, std::nullopt);
    }
    NodeWatch(*client_, stop_, cfg_.backoff, std::move(h), std::move(seed)).run();
  });
}

void KubeSubnetManager::on_list(const NodeList& list) {
  bool notify = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    bool changed = cache_->replace(list.items);
    notify = changed || dirty_ || !first_list_done_;
    first_list_done_ = true;
    dirty_ = false;
    count_peers();
  }
  if (notify && peers_changed_) peers_changed_();
}

void KubeSubnetManager::on_event(const WatchEvent& ev, bool more) {
  bool notify = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    dirty_ |= cache_->apply(ev);
    count_peers();
    if (dirty_ && !more) {
      dirty_ = false;
      notify = true;
    }
  }
  if (notify && peers_changed_) peers_changed_();
}

void KubeSubnetManager::count_peers() {
  stats_.peers = cache_->peers().size();
  stats_.skipped_peers = cache_->skipped();
  stats_.skipped_peers_v6 = cache_->v6_skip_reasons().size();
  stats_.unjoined_nodes = cache_->unjoined();
  stats_.outranked_nodes = cache_->outranked();
  stats_.own_conflict = cache_->own_conflict();
}

std::map<std::string, std::string> KubeSubnetManager::skipped_nodes(std::size_t limit) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::map<std::string, std::string> out;
  if (!cache_) return out;
  for (const auto& [name, reason] : cache_->skip_reasons()) {
    if (out.size() >= limit) break;
    out.emplace(name, reason);
  }
  for (const auto& [name, reason] : cache_->v6_skip_reasons()) {  // routed over IPv4 only
    if (out.size() >= limit) break;
    out.emplace(name, "IPv6 half refused, IPv4 routed: " + reason);
  }
  return out;
}

PeerSet KubeSubnetManager::peers() const {
  std::lock_guard<std::mutex> lock(mu_);
  return cache_ ? cache_->peers() : PeerSet{};
}

SubnetStats KubeSubnetManager::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

Status KubeSubnetManager::set_network_unavailable(bool unavailable, const std::string& message) {
  NodeCondition c{"NetworkUnavailable", unavailable ? "True" : "False", unavailable ? "WeftIsDown" : "WeftIsUp",
                  message};
  auto r = client_->patch_node_condition(cfg_.node_name, c);
  if (!r) {
    count_error();
    return fail("set NetworkUnavailable=" + c.status + " on node " + cfg_.node_name + ": " + r.error().message);
  }
  spdlog::info("node {}: NetworkUnavailable={} ({})", cfg_.node_name, c.status, c.reason);
  return ok_status();
}

void KubeSubnetManager::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopped_ = true;
  }
  stop_.stop();
  client_->shutdown();
  if (watch_thread_.joinable()) watch_thread_.join();
}

}  // namespace

Result<std::string> resolve_node_name(const std::string& flag_value) {
  std::string name = flag_value;
  if (name.empty()) {
    const char* env = std::getenv("NODE_NAME");
    if (env) name = env;
  }
  if (name.empty()) {
    return fail(
        "no node name: give --node-name or set NODE_NAME (in the DaemonSet: env NODE_NAME from "
        "fieldRef spec.nodeName)");
  }
  static const std::regex kDns1123(R"([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)");
  if (name.size() > 253 || !std::regex_match(name, kDns1123)) {
    return fail("node name \"" + name.substr(0, 64) + "\" is not a valid Node name (lower-case DNS subdomain)");
  }
  return name;
}

Result<std::unique_ptr<SubnetManager>> make_kube_subnet_manager(std::shared_ptr<KubeClient> client,
                                                                KubeSubnetConfig config) {
  auto name = resolve_node_name(config.node_name);
  if (!name) return name.take_error();
  config.node_name = *name;
  if (!config.net.ipv4 && !config.net.ipv6) {
    return fail(
        "the Kubernetes subnet manager needs a network: EnableIPv4 with Network, or EnableIPv6 with "
        "IPv6Network in net-conf.json");
  }
  return std::unique_ptr<SubnetManager>(new KubeSubnetManager(std::move(client), std::move(config)));
}

Result<std::unique_ptr<SubnetManager>> make_kube_subnet_manager(const KubeConfig& kube, ClientOptions options,
                                                                KubeSubnetConfig config) {
  options.annotation_prefix = annotation_keys(config).prefix;
  options.full_nodes = config.net.flannel_compat;
  std::shared_ptr<KubeClient> client = make_kube_client(kube, options);
  return make_kube_subnet_manager(std::move(client), std::move(config));
}

}  // namespace weft::kube
