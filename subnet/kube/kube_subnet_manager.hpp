#pragma once
// The SubnetManager backed by the Kubernetes Node API (leases in node annotations or
// spec.podCIDR, peers from a metadata-only list+watch). See subnet/subnet_manager.hpp for
// the threading contract.

#include <chrono>
#include <memory>
#include <string>

#include "core/net_config.hpp"
#include "subnet/kube/backoff.hpp"
#include "subnet/kube/kube_client.hpp"
#include "subnet/subnet_manager.hpp"

namespace weft::kube {

struct KubeSubnetConfig {
  std::string node_name;                           // see resolve_node_name()
  std::string annotation_prefix = "weft.io";       // --kube-annotation-prefix
  NetConfig net;                                   // needs ipv4
  BackoffPolicy backoff;                           // API retries
  std::chrono::milliseconds conflict_backoff{20};  // lease races: random wait in [0, this * 2^round]
  std::chrono::milliseconds auto_wait{5000};       // SubnetSource auto, empty cluster: wait for a podCIDR
  std::chrono::milliseconds pod_cidr_poll{500};    // while waiting for spec.podCIDR: GET our Node this often
};

// --node-name when given, else $NODE_NAME; an error saying how to set it when neither is.
Result<std::string> resolve_node_name(const std::string& flag_value);

// With a client of your own (tests pass a fake). The client must keep annotations under
// config.annotation_prefix (ClientOptions::annotation_prefix).
Result<std::unique_ptr<SubnetManager>> make_kube_subnet_manager(std::shared_ptr<KubeClient> client,
                                                                KubeSubnetConfig config);

// With the real client; options.annotation_prefix is set from config.
Result<std::unique_ptr<SubnetManager>> make_kube_subnet_manager(const KubeConfig& kube, ClientOptions options,
                                                                KubeSubnetConfig config);

}  // namespace weft::kube
