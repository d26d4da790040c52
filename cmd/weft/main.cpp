// weft: the CNI plugin. Delegates to bridge + host-local using the node's subnet.env.
#include <unistd.h>

#include <csignal>

#include <iostream>

#include "cmd/weft/cni_plugin.hpp"

extern char** environ;

int main() {
  // A runtime that closes our stdout early, or a delegate that closes its stdin, is an error
  // to report, not a signal to die of with the state file half-handled.
  std::signal(SIGPIPE, SIG_IGN);
  weft::cni::Invocation inv;
  for (char** e = environ; *e; ++e) {
    std::string kv(*e);
    auto eq = kv.find('=');
    if (eq != std::string::npos) inv.env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  // Read at most one byte past the limit: handle() refuses oversized input without us holding it all.
  constexpr std::size_t kLimit = (1 << 20) + 1;
  char c;
  while (inv.stdin_text.size() < kLimit && std::cin.get(c)) inv.stdin_text += c;
  weft::cni::ExecRunner runner;
  auto out = weft::cni::handle(inv, runner);
  std::cout << out.stdout_text;
  if (!out.stdout_text.empty() && out.stdout_text.back() != '\n') std::cout << "\n";
  return out.exit_code;
}
