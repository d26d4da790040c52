#pragma once
// Kernel-test fixtures: Netns, a uniquely named network namespace that is removed when the
// object goes away (also when a test fails and unwinds), and join(), a veth pair between
// two of them. Names are wt<pid><tag>-<n>: parallel test processes (ctest -j) and other
// areas' tests (another tag) never collide. Nothing here touches the root namespace.

#include <string>

namespace weft::test {

// Runs a command with /bin/sh; returns its exit status.
int sh(const std::string& cmd);
// Runs a command with /bin/sh and returns its standard output, trailing newlines removed.
std::string sh_output(const std::string& cmd);

class Netns {
 public:
  // Creates the namespace with its loopback up; throws std::runtime_error on failure.
  // The first one in a process removes namespaces left by dead processes with the same tag.
  explicit Netns(char tag = 't');
  ~Netns();
  Netns(const Netns&) = delete;
  Netns& operator=(const Netns&) = delete;

  const std::string& name() const { return name_; }
  std::string path() const { return "/run/netns/" + name_; }
  // `ip -n <name> <args>`; returns the exit status.
  int ip(const std::string& args) const;
  // Runs a shell command inside the namespace; returns the exit status.
  int exec(const std::string& cmd) const;
  // Runs a shell command inside the namespace and returns its standard output.
  std::string output(const std::string& cmd) const;

 private:
  std::string name_;
};

// Joins a and b with a veth pair (a_if in a, b_if in b), gives each end its address
// (e.g. "192.0.2.1/24", or "fd0a::1/64" for an IPv6-only underlay, added without DAD) and
// brings both up. Throws std::runtime_error on failure.
void join(const Netns& a, const std::string& a_if, const std::string& a_cidr, const Netns& b, const std::string& b_if,
          const std::string& b_cidr);

}  // namespace weft::test
