#include "test/support/netns.hpp"

#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <regex>
#include <stdexcept>

namespace weft::test {
namespace {

std::atomic<int> counter{0};
std::once_flag swept;

std::string prefix(char tag) { return "wt" + std::to_string(::getpid()) + tag + "-"; }

// Removes wt<pid><tag>-<n> namespaces whose process is gone (a test that crashed).
void sweep_stale(char tag) {
  std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir("/run/netns"), ::closedir);
  if (!dir) return;
  const std::regex pattern(std::string("wt([0-9]+)") + tag + "-[0-9]+");
  while (dirent* e = ::readdir(dir.get())) {
    std::cmatch m;
    if (!std::regex_match(e->d_name, m, pattern)) continue;
    auto pid = static_cast<pid_t>(std::stol(m[1].str()));
    if (::kill(pid, 0) != 0 && errno == ESRCH) sh("ip netns del " + std::string(e->d_name) + " 2>/dev/null");
  }
}

void must(int status, const std::string& what) {
  if (status != 0)
    throw std::runtime_error("test fixture: " + what + " failed (exit status " + std::to_string(status) + ")");
}

}  // namespace

int sh(const std::string& cmd) {
  int rc = std::system(cmd.c_str());
  if (rc == -1) return -1;
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128 + WTERMSIG(rc);
}

std::string sh_output(const std::string& cmd) {
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(::popen(cmd.c_str(), "r"), ::pclose);
  if (!pipe) throw std::runtime_error("test fixture: popen failed for: " + cmd);
  std::string out;
  char buf[4096];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, pipe.get())) out.append(buf, n);
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

Netns::Netns(char tag) {
  std::call_once(swept, [tag] { sweep_stale(tag); });
  name_ = prefix(tag) + std::to_string(counter++);
  must(sh("ip netns add " + name_), "ip netns add " + name_);
  if (ip("link set lo up") != 0) {
    sh("ip netns del " + name_);
    throw std::runtime_error("test fixture: cannot bring lo up in " + name_);
  }
}

Netns::~Netns() { sh("ip netns del " + name_ + " 2>/dev/null"); }

int Netns::ip(const std::string& args) const { return sh("ip -n " + name_ + " " + args); }

int Netns::exec(const std::string& cmd) const { return sh("ip netns exec " + name_ + " sh -c '" + cmd + "'"); }

std::string Netns::output(const std::string& cmd) const {
  return sh_output("ip netns exec " + name_ + " sh -c '" + cmd + "'");
}

void join(const Netns& a, const std::string& a_if, const std::string& a_cidr, const Netns& b, const std::string& b_if,
          const std::string& b_cidr) {
  must(a.ip("link add " + a_if + " type veth peer name " + b_if + " netns " + b.name()), "veth " + a_if);
  // IPv6 addresses skip duplicate address detection: usable at once, not tentative for a second.
  auto options = [](const std::string& cidr) { return cidr.find(':') != std::string::npos ? " nodad" : ""; };
  must(a.ip("addr add " + a_cidr + " dev " + a_if + options(a_cidr)), "address " + a_cidr);
  must(b.ip("addr add " + b_cidr + " dev " + b_if + options(b_cidr)), "address " + b_cidr);
  must(a.ip("link set " + a_if + " up"), a_if + " up");
  must(b.ip("link set " + b_if + " up"), b_if + " up");
}

}  // namespace weft::test
