// These tests change nftables and links of the namespace they run in: they run only inside a
// namespace made by in_netns.sh (one listed in /run/netns), never in the host's.
#define CATCH_CONFIG_RUNNER
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <iostream>

namespace {

bool in_named_netns() {
  struct stat self {};
  if (::stat("/proc/self/ns/net", &self) != 0) return false;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/run/netns", ec)) {
    struct stat named {};
    if (::stat(entry.path().c_str(), &named) == 0 && named.st_ino == self.st_ino && named.st_dev == self.st_dev)
      return true;
  }
  return false;
}

}  // namespace

int main(int argc, char* argv[]) {
  if (!in_named_netns()) {
    std::cerr << argv[0] << ": refusing to run outside a test namespace; run it through "
              << "test/kernel/overlay/in_netns.sh (or ctest)\n";
    return 2;
  }
  return Catch::Session().run(argc, argv);
}
