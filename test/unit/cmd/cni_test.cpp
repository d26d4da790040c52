#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <tuple>

#include "cmd/weft/cni_plugin.hpp"
#include "core/subnet_env.hpp"

using nlohmann::json;
using weft::cni::Invocation;
using weft::cni::Outcome;

namespace {

namespace fs = std::filesystem;

// Records delegate calls and answers with a canned outcome.
struct FakeRunner : weft::cni::DelegateRunner {
  struct Call {
    std::string type, command;
    json config;
  };
  std::vector<Call> calls;
  Outcome answer{R"({"cniVersion":"1.0.0","ips":[{"address":"10.244.7.2/24"}]})", 0};
  Outcome run(const std::string& type, const std::string& command, const std::string& config,
              const Invocation&) override {
    calls.push_back({type, command, json::parse(config)});
    return command == "DEL" ? Outcome{"", 0} : answer;
  }
};

struct Fixture {
  fs::path dir = fs::temp_directory_path() / ("weft-cni-test-" + std::to_string(::getpid()));
  FakeRunner runner;
  Fixture() {
    fs::remove_all(dir);
    weft::SubnetEnv env;
    env.network = weft::Ipv4Prefix::parse("10.244.0.0/16").value();
    env.subnet = weft::Ipv4Prefix::parse("10.244.7.0/24").value();
    env.mtu = 1450;
    env.ipmasq = true;
    REQUIRE(env.write_atomically((dir / "subnet.env").string()));
  }
  ~Fixture() { fs::remove_all(dir); }

  std::string conf(const std::string& version = "1.0.0", const std::string& extra = "") const {
    return R"({"cniVersion":")" + version + R"(","name":"weft","type":"weft","subnetFile":")" +
           (dir / "subnet.env").string() + R"(","dataDir":")" + (dir / "data").string() + "\"" + extra + "}";
  }
  Outcome call(const std::string& command, const std::string& stdin_text, const std::string& id = "abc123") {
    Invocation inv;
    inv.env = {{"CNI_COMMAND", command},
               {"CNI_CONTAINERID", id},
               {"CNI_NETNS", "/var/run/netns/x"},
               {"CNI_IFNAME", "eth0"},
               {"CNI_PATH", "/usr/lib/cni"}};
    inv.stdin_text = stdin_text;
    return weft::cni::handle(inv, runner);
  }
};

json error_of(const Outcome& o) {
  REQUIRE(o.exit_code != 0);
  return json::parse(o.stdout_text);
}

}  // namespace

TEST_CASE("VERSION answers from stdin alone", "[cni]") {
  Fixture f;
  Invocation inv;
  inv.env = {{"CNI_COMMAND", "VERSION"}};
  inv.stdin_text = R"({"cniVersion":"0.4.0"})";
  auto out = weft::cni::handle(inv, f.runner);
  REQUIRE(out.exit_code == 0);
  auto j = json::parse(out.stdout_text);
  CHECK(j["cniVersion"] == "0.4.0");
  CHECK(j["supportedVersions"] == json::array({"0.3.0", "0.3.1", "0.4.0", "1.0.0"}));
}

TEST_CASE("ADD delegates to bridge + host-local over the node's subnet and saves the config", "[cni]") {
  Fixture f;
  auto out = f.call("ADD", f.conf());
  REQUIRE(out.exit_code == 0);
  CHECK(out.stdout_text == f.runner.answer.stdout_text);
  REQUIRE(f.runner.calls.size() == 1);
  const json d = f.runner.calls[0].config;  // a copy: calls grows below
  CHECK(f.runner.calls[0].type == "bridge");
  CHECK(d["type"] == "bridge");
  CHECK(d["cniVersion"] == "1.0.0");
  CHECK(d["isGateway"] == true);
  CHECK(d["hairpinMode"] == true);
  CHECK(d["ipMasq"] == false);  // weftd masquerades (WEFT_IPMASQ=true)
  CHECK(d["mtu"] == 1450);
  CHECK(d["ipam"]["type"] == "host-local");
  CHECK(d["ipam"]["ranges"][0][0]["subnet"] == "10.244.7.0/24");
  CHECK(d["ipam"]["routes"][0]["dst"] == "10.244.0.0/16");
  CHECK(fs::exists(f.dir / "data" / "abc123"));

  SECTION("DEL uses the saved config and removes it") {
    auto del = f.call("DEL", f.conf());
    CHECK(del.exit_code == 0);
    REQUIRE(f.runner.calls.size() == 2);
    CHECK(f.runner.calls[1].command == "DEL");
    CHECK(f.runner.calls[1].config == d);
    CHECK_FALSE(fs::exists(f.dir / "data" / "abc123"));
  }
  SECTION("CHECK passes prevResult to the delegate") {
    auto check = f.call("CHECK", f.conf("1.0.0", R"(,"prevResult":{"cniVersion":"1.0.0","ips":[]})"));
    CHECK(check.exit_code == 0);
    CHECK(f.runner.calls.back().command == "CHECK");
    CHECK(f.runner.calls.back().config["prevResult"]["ips"] == json::array());
  }
}

TEST_CASE("operator overrides in \"delegate\" win", "[cni]") {
  Fixture f;
  REQUIRE(f.call("ADD", f.conf("0.3.1", R"(,"ipamDataDir":"/x","delegate":{"bridge":"cni9","hairpinMode":false})"))
              .exit_code == 0);
  CHECK(f.runner.calls[0].config["ipam"]["dataDir"] == "/x");
  CHECK(f.runner.calls[0].config["bridge"] == "cni9");
  CHECK(f.runner.calls[0].config["hairpinMode"] == false);
  CHECK(f.runner.calls[0].config["cniVersion"] == "0.3.1");
}

TEST_CASE("DEL of an unknown container succeeds without calling anything", "[cni]") {
  Fixture f;
  auto out = f.call("DEL", f.conf(), "never-added");
  CHECK(out.exit_code == 0);
  CHECK(f.runner.calls.empty());
}

TEST_CASE("a failing delegate ADD is undone and leaves no saved state", "[cni]") {
  Fixture f;
  f.runner.answer = {R"({"cniVersion":"1.0.0","code":11,"msg":"boom"})", 1};
  auto out = f.call("ADD", f.conf());
  CHECK(out.exit_code == 1);
  CHECK(json::parse(out.stdout_text)["msg"] == "boom");
  REQUIRE(f.runner.calls.size() == 2);
  CHECK(f.runner.calls[1].command == "DEL");
  CHECK_FALSE(fs::exists(f.dir / "data" / "abc123"));
}

TEST_CASE("bad input gets a CNI error a person can act on, and nothing is left behind", "[cni]") {
  Fixture f;
  fs::remove(f.dir / "subnet.env");
  auto missing = error_of(f.call("ADD", f.conf()));
  CHECK(missing["code"] == 11);
  CHECK_THAT(missing["msg"].get<std::string>(), Catch::Contains("not found: is weftd running on this node?"));
  CHECK_FALSE(fs::exists(f.dir / "data"));

  auto garbage = error_of(f.call("ADD", "{not json"));
  CHECK(garbage["code"] == 6);

  auto version = error_of(f.call("ADD", f.conf("9.9.9")));
  CHECK(version["code"] == 1);
  CHECK_THAT(version["msg"].get<std::string>(), Catch::Contains("\"9.9.9\"") && Catch::Contains("1.0.0"));

  auto check_old = error_of(f.call("CHECK", f.conf("0.3.1")));
  CHECK(check_old["code"] == 1);

  auto bad_id = error_of(f.call("ADD", f.conf(), "../../etc/passwd"));
  CHECK(bad_id["code"] == 4);
  auto bad_cmd = error_of(f.call("FROB", f.conf()));
  CHECK_THAT(bad_cmd["msg"].get<std::string>(), Catch::Contains("FROB"));
  CHECK(f.runner.calls.empty());
}

// ---- issue #16: the plugin under real runtimes

namespace {

// A delegate plugin written as a shell script into the fixture's CNI_PATH.
void write_plugin(const fs::path& dir, const std::string& name, const std::string& text) {
  fs::create_directories(dir);
  std::ofstream(dir / name) << text;
  fs::permissions(dir / name, fs::perms::owner_all);
}

Outcome call_exec(Fixture& f, const std::string& command, const std::string& stdin_text) {
  Invocation inv;
  inv.env = {{"CNI_COMMAND", command},
             {"CNI_CONTAINERID", "abc123"},
             {"CNI_NETNS", "/var/run/netns/x"},
             {"CNI_IFNAME", "eth0"},
             {"CNI_PATH", (f.dir / "bin").string()}};
  inv.stdin_text = stdin_text;
  weft::cni::ExecRunner runner;
  return weft::cni::handle(inv, runner);
}

void write_subnet_env(const Fixture& f, const std::string& text) { std::ofstream(f.dir / "subnet.env") << text; }

}  // namespace

TEST_CASE("routes to the cluster network carry the subnet gateway that bridge 1.1 CHECK compares", "[cni]") {
  Fixture f;
  REQUIRE(f.call("ADD", f.conf()).exit_code == 0);
  const json routes = f.runner.calls[0].config["ipam"]["routes"];
  CHECK(routes == json::parse(R"([{"dst":"10.244.0.0/16","gw":"10.244.7.1"}])"));
}

TEST_CASE("a delegate that exits without reading stdin gets an error and the plugin lives", "[cni]") {
  Fixture f;
  write_plugin(f.dir / "bin", "quitter", "#!/bin/sh\nexit 3\n");
  const std::string pad(100 * 1024, 'x');  // over the 64 KiB a pipe holds
  auto out = call_exec(f, "ADD", f.conf("1.0.0", R"(,"delegate":{"type":"quitter","pad":")" + pad + "\"}"));
  auto err = error_of(out);
  CHECK_THAT(err["msg"].get<std::string>(), Catch::Contains("quitter") && Catch::Contains("status 3"));
  CHECK_FALSE(fs::exists(f.dir / "data" / "abc123"));
}

TEST_CASE("a delegate that cannot be executed is reported with the exec error", "[cni]") {
  Fixture f;
  write_plugin(f.dir / "bin", "broken", "not a program\n");  // no #!: execve says ENOEXEC
  auto err = error_of(call_exec(f, "ADD", f.conf("1.0.0", R"(,"delegate":{"type":"broken"})")));
  CHECK_THAT(err["msg"].get<std::string>(), Catch::Contains("cannot execute") && Catch::Contains("Exec format error"));
  CHECK_FALSE(fs::exists(f.dir / "data" / "abc123"));
}

TEST_CASE("invalid UTF-8 in subnet.env or CNI_CONTAINERID gets the right code and names the source", "[cni]") {
  Fixture f;
  write_subnet_env(f, "WEFT_NETWORK=10.244.0.0/16\nWEFT_SUBNET=10.244.7.1/24\nWEFT_MTU=14\xff\xfe\nWEFT_IPMASQ=true\n");
  auto env = error_of(f.call("ADD", f.conf()));
  CHECK(env["code"] == 11);
  CHECK_THAT(env["msg"].get<std::string>(), Catch::Contains((f.dir / "subnet.env").string()));

  auto id = error_of(f.call("ADD", f.conf(), "abc\xff"));
  CHECK(id["code"] == 4);
  CHECK_THAT(id["msg"].get<std::string>(), Catch::Contains("CNI_CONTAINERID"));
  CHECK(f.runner.calls.empty());
}

TEST_CASE("config keys of the wrong type are refused with the key and the expected type", "[cni]") {
  Fixture f;
  const std::string base = R"({"cniVersion":"1.0.0","name":"weft","type":"weft")";
  for (auto [extra, key, type] : {std::tuple{R"(,"subnetFile":5})", "subnetFile", "a string"},
                                  std::tuple{R"(,"dataDir":["x"]})", "dataDir", "a string"},
                                  std::tuple{R"(,"ipamDataDir":true})", "ipamDataDir", "a string"},
                                  std::tuple{R"(,"delegate":"bridge"})", "delegate", "an object"}}) {
    INFO(extra);
    auto err = error_of(f.call("ADD", base + extra));
    CHECK(err["code"] == 7);
    CHECK_THAT(err["msg"].get<std::string>(), Catch::Contains(std::string("\"") + key + "\"") && Catch::Contains(type));
  }
  CHECK(f.runner.calls.empty());
}

TEST_CASE("WEFT_MTU must be a whole number", "[cni]") {
  Fixture f;
  write_subnet_env(f, "WEFT_NETWORK=10.244.0.0/16\nWEFT_SUBNET=10.244.7.1/24\nWEFT_MTU=1450x\nWEFT_IPMASQ=true\n");
  auto err = error_of(f.call("ADD", f.conf()));
  CHECK(err["code"] == 11);
  CHECK_THAT(err["msg"].get<std::string>(), Catch::Contains("WEFT_MTU=1450x"));
  CHECK(f.runner.calls.empty());
}

TEST_CASE("the state DEL needs is private and written whole", "[cni]") {
  Fixture f;
  REQUIRE(f.call("ADD", f.conf()).exit_code == 0);
  CHECK((fs::status(f.dir / "data").permissions() & fs::perms::all) == fs::perms::owner_all);
  CHECK((fs::status(f.dir / "data" / "abc123").permissions() & fs::perms::all) ==
        (fs::perms::owner_read | fs::perms::owner_write));
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(f.dir / "data")) names.push_back(e.path().filename().string());
  CHECK(names == std::vector<std::string>{"abc123"});  // no temporary file left
}

TEST_CASE("runtimeConfig reaches the delegate for the ips and mac and bandwidth capabilities", "[cni]") {
  Fixture f;
  REQUIRE(f.call("ADD", f.conf("1.0.0", R"(,"runtimeConfig":{"ips":["10.244.7.9/24"],"mac":"0a:58:0a:f4:07:09"})"))
              .exit_code == 0);
  CHECK(f.runner.calls[0].config["runtimeConfig"] ==
        json::parse(R"({"ips":["10.244.7.9/24"],"mac":"0a:58:0a:f4:07:09"})"));
}

TEST_CASE("the delegate may not override name or cniVersion or ipam", "[cni]") {
  Fixture f;
  for (const char* key : {"name", "cniVersion", "ipam"}) {
    INFO(key);
    auto err = error_of(f.call("ADD", f.conf("1.0.0", std::string(R"(,"delegate":{")") + key + R"(":"x"})")));
    CHECK(err["code"] == 7);
    CHECK_THAT(err["msg"].get<std::string>(), Catch::Contains(std::string("\"delegate.") + key + "\""));
  }
  CHECK(f.runner.calls.empty());
  CHECK_FALSE(fs::exists(f.dir / "data" / "abc123"));
}

// Issue #20: a pod flannel's plugin made is deleted through flannel's record of its delegate.
TEST_CASE("DEL of a pod flannel's plugin made runs its saved delegate config, then drops it", "[cni][flannel]") {
  Fixture f;
  const fs::path flannel_dir = f.dir / "flannel";
  fs::create_directories(flannel_dir);
  const json flannel_delegate = {{"cniVersion", "0.3.1"},
                                 {"name", "cbr0"},
                                 {"type", "bridge"},
                                 {"bridge", "cni0"},
                                 {"ipam", {{"type", "host-local"}, {"ranges", {{{{"subnet", "10.244.7.0/24"}}}}}}}};
  std::ofstream(flannel_dir / "c0ffee") << flannel_delegate.dump();
  const std::string conf = f.conf("1.0.0", R"(,"flannelDataDir":")" + flannel_dir.string() + "\"");
  auto out = f.call("DEL", conf, "c0ffee");
  CHECK(out.exit_code == 0);
  REQUIRE(f.runner.calls.size() == 1);
  CHECK(f.runner.calls[0].type == "bridge");
  CHECK(f.runner.calls[0].command == "DEL");
  CHECK(f.runner.calls[0].config == flannel_delegate);
  CHECK_FALSE(fs::exists(flannel_dir / "c0ffee"));
  CHECK(f.call("DEL", conf, "c0ffee").exit_code == 0);  // again: nothing left, nothing called
  CHECK(f.runner.calls.size() == 1);
  CHECK(error_of(f.call("DEL", f.conf("1.0.0", R"(,"flannelDataDir":7)"), "c0ffee"))["code"] == 7);
}

// Issue #19: an IPv6-only subnet.env gives pods an IPv6 address and nothing IPv4.
TEST_CASE("IPv6-only: host-local gets one IPv6 range and route, nothing IPv4, and DEL and CHECK work", "[cni]") {
  Fixture f;
  weft::SubnetEnv env;
  env.network_v6 = weft::Ipv6Prefix::parse("fd00:10:244::/56").value();
  env.subnet_v6 = weft::Ipv6Prefix::parse("fd00:10:244:7::/64").value();
  env.mtu = 1430;
  env.ipmasq = true;
  REQUIRE(env.write_atomically((f.dir / "subnet.env").string()));
  f.runner.answer = {R"({"cniVersion":"1.0.0","ips":[{"address":"fd00:10:244:7::2/64"}]})", 0};
  REQUIRE(f.call("ADD", f.conf()).exit_code == 0);
  REQUIRE(f.runner.calls.size() == 1);
  const json d = f.runner.calls[0].config;
  CHECK(d["type"] == "bridge");
  CHECK(d["isGateway"] == true);
  CHECK(d["isDefaultGateway"] == true);  // bridge adds ::/0 via the gateway
  CHECK(d["ipMasq"] == false);
  CHECK(d["mtu"] == 1430);
  CHECK(d["ipam"] == json::parse(R"({"type":"host-local",
      "ranges":[[{"subnet":"fd00:10:244:7::/64"}]],
      "routes":[{"dst":"fd00:10:244::/56","gw":"fd00:10:244:7::1"}]})"));
  CHECK(d.dump().find("10.244.") == std::string::npos);  // no IPv4 range, route or gateway

  SECTION("CHECK runs the saved IPv6-only config") {
    REQUIRE(f.call("CHECK", f.conf("1.0.0", R"(,"prevResult":{"cniVersion":"1.0.0","ips":[]})")).exit_code == 0);
    CHECK(f.runner.calls.back().command == "CHECK");
    CHECK(f.runner.calls.back().config["ipam"] == d["ipam"]);
  }
  SECTION("DEL runs the saved IPv6-only config and forgets it") {
    REQUIRE(f.call("DEL", f.conf()).exit_code == 0);
    CHECK(f.runner.calls.back().command == "DEL");
    CHECK(f.runner.calls.back().config == d);
    CHECK_FALSE(fs::exists(f.dir / "data" / "abc123"));
  }
}

TEST_CASE("dual stack: an IPv4 and an IPv6 range, IPv4 first, each with its route", "[cni]") {
  Fixture f;
  write_subnet_env(f,
                   "WEFT_NETWORK=10.244.0.0/16\nWEFT_SUBNET=10.244.7.1/24\nWEFT_IPV6_NETWORK=fd00:10:244::/56\n"
                   "WEFT_IPV6_SUBNET=fd00:10:244:7::1/64\nWEFT_MTU=1430\nWEFT_IPMASQ=true\n");
  REQUIRE(f.call("ADD", f.conf()).exit_code == 0);
  CHECK(f.runner.calls[0].config["ipam"]["ranges"] ==
        json::parse(R"([[{"subnet":"10.244.7.0/24"}],[{"subnet":"fd00:10:244:7::/64"}]])"));
  CHECK(
      f.runner.calls[0].config["ipam"]["routes"] ==
      json::parse(R"([{"dst":"10.244.0.0/16","gw":"10.244.7.1"},{"dst":"fd00:10:244::/56","gw":"fd00:10:244:7::1"}])"));
}

TEST_CASE("half a family in subnet.env is a try-later error naming the missing key", "[cni]") {
  Fixture f;
  write_subnet_env(f, "WEFT_IPV6_NETWORK=fd00:10:244::/56\nWEFT_MTU=1430\nWEFT_IPMASQ=true\n");
  auto err = error_of(f.call("ADD", f.conf()));
  CHECK(err["code"] == 11);
  CHECK_THAT(err["msg"].get<std::string>(), Catch::Contains("no WEFT_IPV6_SUBNET"));
  CHECK(f.runner.calls.empty());
  CHECK_FALSE(fs::exists(f.dir / "data" / "abc123"));
}
