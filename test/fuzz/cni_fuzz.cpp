// CNI stdin: weft::cni::handle with a fake delegate that records calls (nothing is executed).
// Checked: stdout is empty or JSON, an error (exit 1) is a CNI error object, the exit code is 0
// or 1, the bridge delegate's ipam ranges lie inside subnet.env's cluster network(s), one range
// per family subnet.env has (IPv6-only: no IPv4 range), saved state
// follows the delegate's answer, and nothing is written outside the data directory.
//
// Input: byte 0 is CNI_COMMAND ('A'DD, 'D'EL, 'C'HECK, 'V'ERSION, 'X' unknown; other bytes
// cycle over the four), byte 1 XOR '0' picks the situation (bits below), the rest is stdin.
// A stdin that is a JSON object gets "subnetFile" and "dataDir" replaced by the fuzzer's temp
// directory (made in LLVMFuzzerInitialize), so no input can make the plugin write elsewhere.
#include <stdlib.h>  // mkdtemp
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cmd/weft/cni_plugin.hpp"
#include "core/ip.hpp"
#include "test/fuzz/check.hpp"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using weft::cni::Invocation;
using weft::cni::Outcome;

constexpr const char* kContainer = "fuzzcontainer";

// Situation bits (byte 1 XOR '0').
constexpr unsigned kEnvMask = 0x03;  // subnet.env: 0 IPv4, 1 dual stack, 2 malformed, 3 missing
constexpr unsigned kSavedShift = 2;  // saved state before the call: 0 none, 1 valid, 2 garbage, 3 {}
constexpr unsigned kDelegateFails = 0x10;
constexpr unsigned kCallShift = 5;  // environment: 0 valid, 1 no CNI_NETNS, 2 id "../escape", 3 no CNI_PATH
constexpr unsigned kV6Only = 0x80;  // subnet.env is IPv6-only (overrides kEnvMask's choice)
constexpr unsigned kEnvV6Only = 4;  // the env kind it picks

struct Dirs {
  fs::path root, data, env_v4, env_dual, env_bad, env_missing, env_v6;
};
Dirs g_dirs;

const weft::Ipv4Prefix kNetV4 = weft::Ipv4Prefix::parse("10.244.0.0/16").value();
const weft::Ipv4Prefix kNetDual = weft::Ipv4Prefix::parse("10.96.0.0/12").value();
const weft::Ipv6Prefix kNetV6 = weft::Ipv6Prefix::parse("fd00:10:244::/56").value();
const weft::Ipv6Prefix kNetV6Only = weft::Ipv6Prefix::parse("fd00:20::/48").value();

void write_file(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::trunc);
  out << text;
}

struct FakeRunner : weft::cni::DelegateRunner {
  struct Call {
    std::string type, command;
    json config;
  };
  std::vector<Call> calls;
  bool fail = false;
  Outcome run(const std::string& type, const std::string& command, const std::string& config,
              const Invocation&) override {
    json parsed = json::parse(config, nullptr, false);
    FUZZ_CHECK(!parsed.is_discarded() && parsed.is_object(), "delegate config is not a JSON object: " + config);
    calls.push_back({type, command, parsed});
    if (fail) return {R"({"cniVersion":"1.0.0","code":11,"msg":"fake delegate failed"})", 1};
    if (command == "DEL") return {"", 0};
    return {R"({"cniVersion":"1.0.0","ips":[{"address":"10.244.1.2/24","gateway":"10.244.1.1"}]})", 0};
  }
};

// ranges[i][0].subnet parses as a prefix of that family inside net, and routes[i] goes to net.
template <class P>
void check_range(const json& ipam, std::size_t i, const P& net, const std::string& shown) {
  const std::string at = "ranges[" + std::to_string(i) + "][0].subnet";
  auto subnet = P::parse(ipam.at("ranges").at(i).at(0).at("subnet").get<std::string>());
  FUZZ_CHECK(subnet.ok(), at + " does not parse as " + net.str() + "'s family: " + shown);
  FUZZ_CHECK(net.contains(*subnet), at + " " + subnet->str() + " outside " + net.str() + ": " + shown);
  FUZZ_CHECK(ipam.at("routes").at(i).at("dst") == net.str(), "route to " + net.str() + " missing: " + shown);
}

void check_ranges(const json& config, unsigned env_kind, const std::string& shown) {
  const json& ipam = config.at("ipam");
  const json& ranges = ipam.at("ranges");
  FUZZ_CHECK(ranges.is_array() && !ranges.empty(), "no ipam ranges: " + shown);
  const std::size_t families = env_kind == 1 ? 2 : 1;
  FUZZ_CHECK(ranges.size() == families && ipam.at("routes").size() == families,
             "not one range and route per family of subnet.env: " + shown);
  if (env_kind == kEnvV6Only) return check_range(ipam, 0, kNetV6Only, shown);
  check_range(ipam, 0, env_kind == 1 ? kNetDual : kNetV4, shown);
  if (env_kind == 1) check_range(ipam, 1, kNetV6, shown);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* tmp = std::getenv("TMPDIR");
  std::string templ = std::string(tmp && *tmp ? tmp : "/tmp") + "/weft-cni-fuzz.XXXXXX";
  if (!::mkdtemp(templ.data())) {
    std::perror("cni_fuzz: mkdtemp");
    std::abort();
  }
  g_dirs.root = templ;
  g_dirs.data = g_dirs.root / "data";
  g_dirs.env_v4 = g_dirs.root / "v4.env";
  g_dirs.env_dual = g_dirs.root / "dual.env";
  g_dirs.env_bad = g_dirs.root / "bad.env";
  g_dirs.env_missing = g_dirs.root / "missing.env";
  g_dirs.env_v6 = g_dirs.root / "v6.env";
  write_file(g_dirs.env_v4, "WEFT_NETWORK=10.244.0.0/16\nWEFT_SUBNET=10.244.1.1/24\nWEFT_MTU=1450\nWEFT_IPMASQ=true\n");
  write_file(g_dirs.env_dual,
             "WEFT_NETWORK=10.96.0.0/12\nWEFT_SUBNET=10.96.3.1/24\nWEFT_IPV6_NETWORK=fd00:10:244::/56\n"
             "WEFT_IPV6_SUBNET=fd00:10:244:3::1/64\nWEFT_MTU=1400\nWEFT_IPMASQ=false\n");
  write_file(g_dirs.env_v6,
             "WEFT_IPV6_NETWORK=fd00:20::/48\nWEFT_IPV6_SUBNET=fd00:20:0:3::1/64\nWEFT_MTU=1430\nWEFT_IPMASQ=true\n");
  write_file(g_dirs.env_bad, "WEFT_NETWORK=10.244.0.0/16\nWEFT_SUBNET=10.9.1.1/24\nWEFT_MTU=x\n");
  std::atexit([] {
    std::error_code ec;
    fs::remove_all(g_dirs.root, ec);
  });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  // The first four are also the cycle for bytes without a letter; "LIST" is an unknown command.
  static constexpr std::pair<char, const char*> kCommands[] = {
      {'A', "ADD"}, {'D', "DEL"}, {'C', "CHECK"}, {'V', "VERSION"}, {'X', "LIST"}};
  std::string command = kCommands[data[0] % 4].second;
  for (auto [letter, name] : kCommands) {
    if (data[0] == letter) command = name;
  }
  const unsigned situation = data[1] ^ static_cast<unsigned>('0');
  const unsigned env_kind = (situation & kV6Only) != 0 ? kEnvV6Only : situation & kEnvMask;
  const unsigned saved_kind = (situation >> kSavedShift) & 3U;
  const unsigned call_kind = (situation >> kCallShift) & 3U;
  std::string_view raw(reinterpret_cast<const char*>(data) + 2, size - 2);

  // Reset the data directory to the situation's saved state, so each input runs alone.
  std::error_code ec;
  fs::remove_all(g_dirs.data, ec);
  fs::remove_all(g_dirs.root / "escape", ec);
  const fs::path saved = g_dirs.data / kContainer;
  if (saved_kind != 0) {
    fs::create_directories(g_dirs.data);
    if (saved_kind == 1) {
      write_file(saved, R"({"cniVersion":"1.0.0","name":"weft","type":"bridge","bridge":"weft0",)"
                        R"("ipam":{"type":"host-local","ranges":[[{"subnet":"10.244.1.0/24"}]]}})");
    } else {
      write_file(saved, saved_kind == 2 ? "\x01not json" : "{}");
    }
  }

  // A JSON object is pinned to the temp directory; anything else reaches the plugin as is.
  Invocation inv;
  json conf = json::parse(raw.begin(), raw.end(), nullptr, /*allow_exceptions=*/false);
  if (!conf.is_discarded() && conf.is_object()) {
    const fs::path* env_file[] = {&g_dirs.env_v4, &g_dirs.env_dual, &g_dirs.env_bad, &g_dirs.env_missing,
                                  &g_dirs.env_v6};
    conf["dataDir"] = g_dirs.data.string();
    conf["subnetFile"] = env_file[env_kind]->string();
    inv.stdin_text = conf.dump(-1, ' ', false, json::error_handler_t::replace);
  } else {
    inv.stdin_text = std::string(raw);
  }
  inv.env = {{"CNI_COMMAND", command},
             {"CNI_CONTAINERID", kContainer},
             {"CNI_NETNS", "/var/run/netns/fuzz"},
             {"CNI_IFNAME", "eth0"},
             {"CNI_PATH", "/nonexistent/cni/bin"}};
  if (call_kind == 1) inv.env.erase("CNI_NETNS");
  if (call_kind == 2) inv.env["CNI_CONTAINERID"] = "../escape";
  if (call_kind == 3) inv.env.erase("CNI_PATH");

  FakeRunner runner;
  runner.fail = (situation & kDelegateFails) != 0;
  const Outcome out = weft::cni::handle(inv, runner);

  const std::string shown = command + " exit " + std::to_string(out.exit_code) + " stdout " + out.stdout_text;
  FUZZ_CHECK(out.exit_code == 0 || out.exit_code == 1, shown);
  FUZZ_CHECK(out.stdout_text.empty() || json::accept(out.stdout_text), "stdout is not JSON: " + shown);
  if (out.exit_code != 0) {
    json err = json::parse(out.stdout_text, nullptr, false);
    FUZZ_CHECK(err.is_object() && err.contains("code") && err["code"].is_number() && err.contains("msg") &&
                   err["msg"].is_string(),
               "a failure without a CNI error object on stdout: " + shown);
  }
  if (command == "VERSION") {
    FUZZ_CHECK(runner.calls.empty(), "VERSION ran the delegate: " + shown);
    FUZZ_CHECK(out.exit_code == 0 || !conf.is_object(), "VERSION failed on a JSON object: " + shown);
  }
  if (call_kind == 2 && command != "VERSION") {  // VERSION reads no CNI_* variable
    FUZZ_CHECK(runner.calls.empty() && out.exit_code == 1, "container id ../escape accepted: " + shown);
  }
  FUZZ_CHECK(!fs::exists(g_dirs.root / "escape"), "wrote outside the data directory: " + shown);

  // The operator may override ipam through "delegate"; then the ranges are theirs, not ours.
  const bool ipam_overridden = conf.is_object() && conf.contains("delegate") && conf["delegate"].is_object() &&
                               conf["delegate"].contains("ipam");
  for (const auto& call : runner.calls) {
    if (call.command == "ADD" && !ipam_overridden) check_ranges(call.config, env_kind, shown);
  }
  if (command == "ADD" && !runner.calls.empty()) {
    const bool added = out.exit_code == 0;
    FUZZ_CHECK(fs::exists(saved) == added,
               std::string(added ? "ADD saved nothing: " : "failed ADD left state: ") + shown);
    if (added) {
      std::ifstream in(saved);
      json kept = json::parse(in, nullptr, false);
      FUZZ_CHECK(kept == runner.calls.front().config, "saved config differs from the delegate's: " + shown);
    }
  }
  if (command == "DEL" && !runner.calls.empty() && out.exit_code == 0) {
    FUZZ_CHECK(!fs::exists(saved), "DEL succeeded but kept the saved config: " + shown);
  }
  return 0;
}
