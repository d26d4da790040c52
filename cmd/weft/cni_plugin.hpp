#pragma once
// The weft CNI plugin: turns the node's subnet.env into a bridge + host-local delegate
// config, runs the delegate, and remembers the config per container for DEL and CHECK.

#include <map>
#include <string>

namespace weft::cni {

// What a CNI invocation brings: the CNI_* environment and the network config on stdin.
struct Invocation {
  std::map<std::string, std::string> env;  // CNI_COMMAND, CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, CNI_PATH, ...
  std::string stdin_text;
};

// What the plugin answers: text for stdout and the exit code.
struct Outcome {
  std::string stdout_text;
  int exit_code = 0;
};

// Runs a delegate plugin binary (found on CNI_PATH) with the invocation's environment.
class DelegateRunner {
 public:
  virtual ~DelegateRunner() = default;
  virtual Outcome run(const std::string& plugin_type, const std::string& command, const std::string& config_json,
                      const Invocation& inv) = 0;
};

// The real runner: fork + exec with stdin/stdout pipes.
class ExecRunner : public DelegateRunner {
 public:
  Outcome run(const std::string& plugin_type, const std::string& command, const std::string& config_json,
              const Invocation& inv) override;
};

Outcome handle(const Invocation& inv, DelegateRunner& runner);

}  // namespace weft::cni
