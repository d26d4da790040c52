#include <CLI/CLI.hpp>
#include <catch2/catch.hpp>
#include <cstdlib>

#include "overlay/options.hpp"

using weft::DaemonOptions;

namespace {

DaemonOptions parse(std::vector<std::string> args) {
  DaemonOptions o;
  CLI::App app;
  weft::add_daemon_flags(app, o);
  std::reverse(args.begin(), args.end());
  app.parse(args);
  return o;
}

}  // namespace

TEST_CASE("defaults are flannel's", "[options]") {
  auto o = parse({});
  CHECK(o.kube_subnet_mgr);
  CHECK(o.kube_annotation_prefix == "weft.io");
  CHECK(o.subnet_file == "/run/weft/subnet.env");
  CHECK_FALSE(o.ip_masq);
  CHECK(o.iface.empty());
}

TEST_CASE("flags are read, repeatable ones collect every value", "[options]") {
  auto o = parse({"--iface", "eth1", "--iface=192.0.2.5", "--iface-regex", "^enp", "--ip-masq", "--node-name", "n1",
                  "--kube-subnet-mgr=false", "--healthz-port", "8471", "--public-ip", "192.0.2.9"});
  CHECK(o.iface == std::vector<std::string>{"eth1", "192.0.2.5"});
  CHECK(o.iface_regex == std::vector<std::string>{"^enp"});
  CHECK(o.ip_masq);
  CHECK_FALSE(o.kube_subnet_mgr);
  CHECK(o.node_name == "n1");
  CHECK(o.healthz_port == 8471);
  CHECK(o.public_ip == "192.0.2.9");
}

TEST_CASE("every flag can come from WEFTD_<FLAG>", "[options]") {
  ::setenv("WEFTD_IFACE", "eth1,eth2", 1);
  ::setenv("WEFTD_IP_MASQ", "true", 1);
  ::setenv("WEFTD_KUBE_ANNOTATION_PREFIX", "example.com", 1);
  ::setenv("WEFTD_HEALTHZ_PORT", "9000", 1);
  auto o = parse({});
  ::unsetenv("WEFTD_IFACE");
  ::unsetenv("WEFTD_IP_MASQ");
  ::unsetenv("WEFTD_KUBE_ANNOTATION_PREFIX");
  ::unsetenv("WEFTD_HEALTHZ_PORT");
  CHECK(o.iface == std::vector<std::string>{"eth1", "eth2"});
  CHECK(o.ip_masq);
  CHECK(o.kube_annotation_prefix == "example.com");
  CHECK(o.healthz_port == 9000);
}

TEST_CASE("bad flag values are refused", "[options]") {
  CHECK_THROWS_AS(parse({"--healthz-port", "70000"}), CLI::ValidationError);
  CHECK_THROWS_AS(parse({"--log-level", "loud"}), CLI::ValidationError);
  CHECK_THROWS_AS(parse({"--no-such-flag"}), CLI::ExtrasError);
}

TEST_CASE("the liveness stall flag defaults to 60 and 0 turns it off and negatives are refused", "[options]") {
  CHECK(parse({}).liveness_stall_seconds == 60);
  CHECK(parse({"--liveness-stall-seconds", "0"}).liveness_stall_seconds == 0);
  CHECK(parse({"--liveness-stall-seconds=5"}).liveness_stall_seconds == 5);
  CHECK_THROWS_AS(parse({"--liveness-stall-seconds", "-1"}), CLI::ValidationError);
}
