// weftd: the per-node daemon. Parses flags, validates the config, runs the agent.
#include <CLI/CLI.hpp>
#include <cstdlib>
#include <iostream>

#include "overlay/log.hpp"
#include "overlay/net_config.hpp"
#include "overlay/options.hpp"

namespace {

int check_config(const std::string& path) {
  auto cfg = weft::NetConfig::load(path);
  if (!cfg) {
    std::cerr << "weftd: invalid config: " << cfg.error() << "\n";
    return 1;
  }
  for (const auto& w : cfg->warnings) std::cerr << "weftd: warning: " << w << "\n";
  std::cout << cfg->to_json() << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  weft::DaemonOptions opts;
  CLI::App app{"weftd: VXLAN overlay network daemon for Kubernetes"};
  app.set_version_flag("--version", std::string("weftd ") + WEFT_VERSION);
  weft::add_daemon_flags(app, opts);
  CLI11_PARSE(app, argc, argv);

  if (!opts.check_config.empty()) return check_config(opts.check_config);
  if (opts.node_name.empty()) {
    if (const char* env = std::getenv("NODE_NAME")) opts.node_name = env;
  }
  if (auto st = weft::log::init(opts.log_level, opts.node_name); !st) {
    std::cerr << "weftd: " << st.error() << "\n";
    return 2;
  }
  std::cerr << "weftd: the agent is not built yet\n";
  return 1;
}
