// The real Kubernetes client against the API test double: requests, errors, TLS, tokens.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "kube_support.hpp"
#include "subnet/kube/kube_client.hpp"

using namespace weft;
using namespace weft::kube;
using namespace weft::test;

namespace {
// A local TCP port nothing listens on (bound, then closed).
int closed_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

std::unique_ptr<KubeClient> client(const KubeApiServer& s, const std::string& token, ClientOptions o = fast_options()) {
  return make_kube_client(config_for(s, token), o);
}
}  // namespace

TEST_CASE("client: get gives podCIDRs and addresses, list and watch are metadata-only", "[client]") {
  KubeApiServer s;
  s.create_node("n1", "192.0.2.11", "10.244.3.0/24", {{"weft.io/subnet", "10.244.3.0/24"}, {"other.io/x", "y"}});
  auto c = client(s, s.weft_token());
  auto n = c->get_node("n1");
  REQUIRE(n);
  CHECK(n->pod_cidrs == std::vector<std::string>{"10.244.3.0/24"});
  CHECK(n->internal_ips == std::vector<std::string>{"192.0.2.11"});
  CHECK(n->annotations == std::map<std::string, std::string>{{"weft.io/subnet", "10.244.3.0/24"}});
  auto l = c->list_nodes();
  REQUIRE(l);
  REQUIRE(l->items.size() == 1);
  // A full Node would carry spec.podCIDR: its absence shows the list asked for metadata only.
  CHECK(l->items[0].pod_cidrs.empty());
  CHECK(l->items[0].internal_ips.empty());
  CHECK(l->items[0].annotations.size() == 1);
  std::vector<WatchEvent> seen;
  s.close_watches();  // none open; harmless
  std::thread closer([&] {
    eventually([&] { return s.stats().at("active_watches").get<int>() == 1; });
    s.close_watches();
  });
  auto w = c->watch_nodes("0", [&](const WatchEvent& ev, bool) { seen.push_back(ev); });
  closer.join();
  REQUIRE(w);
  REQUIRE_FALSE(seen.empty());
  CHECK(seen[0].type == WatchEventType::Added);
  CHECK(seen[0].node.name == "n1");
  CHECK(seen[0].node.pod_cidrs.empty());
}

TEST_CASE("client: a catch-up watch ends at the event asked for, or when the server ends it", "[client]") {
  KubeApiServer s;
  s.create_node("a");
  auto c = client(s, s.weft_token());
  auto l = c->list_nodes();
  REQUIRE(l);
  s.create_node("b");
  s.annotate("a", {{"weft.io/subnet-claim", "10.244.4.0/24"}});
  s.create_node("c");
  std::vector<std::string> seen;
  auto t0 = std::chrono::steady_clock::now();
  auto w = c->watch_nodes_until(l->resource_version, std::chrono::seconds(20), [&](const WatchEvent& ev) {
    if (ev.type != WatchEventType::Bookmark) seen.push_back(ev.node.name);
    return ev.node.name == "a";
  });
  REQUIRE(w);
  CHECK(w->done);
  CHECK(seen == std::vector<std::string>{"b", "a"});  // in order, and nothing after the one asked for
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5));
  // Never satisfied: the server's timeoutSeconds ends it, and done says so.
  auto never =
      c->watch_nodes_until(l->resource_version, std::chrono::seconds(1), [](const WatchEvent&) { return false; });
  REQUIRE(never);
  CHECK_FALSE(never->done);
  CHECK(never->events >= 3);
}

TEST_CASE("client: a bad token fails with a message that says what to fix", "[client]") {
  KubeApiServer s;
  auto r = client(s, "not-a-token")->list_nodes();
  REQUIRE_FALSE(r);
  CHECK(r.error().kind == ApiErrorKind::Unauthorized);
  CHECK_THAT(r.error().message, Catch::Contains("unauthorized") && Catch::Contains("token is wrong or expired"));
}

TEST_CASE("client: a missing permission is named", "[client]") {
  KubeApiServer s;
  s.create_node("n1");
  auto reader = client(s, s.token_of("system:serviceaccount:kube-system:reader"));
  auto r = reader->patch_node_annotations("n1", "", {{"weft.io/subnet", "10.244.1.0/24"}});
  REQUIRE_FALSE(r);
  CHECK(r.error().kind == ApiErrorKind::Forbidden);
  CHECK_THAT(r.error().message, Catch::Contains("may not patch nodes/status") && Catch::Contains("ClusterRole"));
  auto nobody = client(s, s.token_of("system:serviceaccount:default:nobody"))->list_nodes();
  REQUIRE_FALSE(nobody);
  CHECK_THAT(nobody.error().message, Catch::Contains("may not list nodes"));
}

// An in-cluster weftd in an IPv6-only cluster gets https://[addr]:port from KUBERNETES_SERVICE_HOST.
TEST_CASE("client: an IPv6 literal server is reached and its certificate checked against the address",
          "[client][tls]") {
  KubeApiServer::Options o;
  o.listen = "[::]:0";
  KubeApiServer s(o);
  s.create_node("n1");
  auto cfg = config_for(s, s.weft_token());
  REQUIRE(cfg.server == "https://[::1]:" + std::to_string(s.port()));
  auto got = make_kube_client(cfg, fast_options())->get_node("n1");
  REQUIRE(got);
  CHECK(got->name == "n1");
  // The same server by an address its certificate does not name (IP:127.0.0.1, IP:::1): refused.
  cfg.server = "https://[::ffff:127.0.0.1]:" + std::to_string(s.port());
  auto unnamed = make_kube_client(cfg, fast_options())->get_node("n1");
  REQUIRE_FALSE(unnamed);
  CHECK(unnamed.error().kind == ApiErrorKind::Tls);
  cfg.server = "https://[::1]:" + std::to_string(s.port());
  cfg.ca_file = s.other_ca_file();
  auto other_ca = make_kube_client(cfg, fast_options())->get_node("n1");
  REQUIRE_FALSE(other_ca);
  CHECK(other_ca.error().kind == ApiErrorKind::Tls);
}

TEST_CASE("client: a server certificate from another CA fails TLS, naming server and CA file", "[client][tls]") {
  KubeApiServer s;
  auto cfg = config_for(s, s.weft_token());
  cfg.ca_file = s.other_ca_file();
  auto r = make_kube_client(cfg, fast_options())->list_nodes();
  REQUIRE_FALSE(r);
  CHECK(r.error().kind == ApiErrorKind::Tls);
  CHECK_THAT(r.error().message, Catch::Contains(s.url()) && Catch::Contains(s.other_ca_file()));
  // Only the flag named for it turns verification off.
  cfg.insecure_skip_tls_verify = true;
  CHECK(make_kube_client(cfg, fast_options())->list_nodes());
  auto bad = config_for(s, s.weft_token());
  bad.ca_file = "/nonexistent/ca.crt";
  auto missing = make_kube_client(bad, fast_options())->list_nodes();
  REQUIRE_FALSE(missing);
  CHECK_THAT(missing.error().message, Catch::Contains("/nonexistent/ca.crt"));
}

TEST_CASE("client: a client certificate authenticates", "[client][tls]") {
  KubeApiServer s;
  auto cfg = config_for(s, "");
  cfg.client_cert_file = s.client_cert_file();
  cfg.client_key_file = s.client_key_file();
  CHECK(make_kube_client(cfg, fast_options())->list_nodes());
}

TEST_CASE("client: a rotated token file is picked up without a restart", "[client][token]") {
  KubeApiServer s;
  std::string path = s.dir() + "/token";
  std::ofstream(path) << "expired-token\n";
  auto cfg = config_for(s, "");
  cfg.token_file = path;
  auto c = make_kube_client(cfg, fast_options());
  auto before = c->list_nodes();
  REQUIRE_FALSE(before);
  CHECK(before.error().kind == ApiErrorKind::Unauthorized);
  std::ofstream(path + ".new") << s.weft_token() << "\n";
  std::filesystem::rename(path + ".new", path);
  CHECK(c->list_nodes());
}

TEST_CASE("client: a hung server is detected by the request timeout", "[client][hostile]") {
  KubeApiServer s;
  auto o = fast_options();
  o.request_timeout = std::chrono::milliseconds(800);
  auto c = client(s, s.weft_token(), o);
  REQUIRE(c->list_nodes());
  s.blackhole(true);
  auto t0 = std::chrono::steady_clock::now();
  auto r = c->list_nodes();
  auto took = ms_since(t0);
  s.blackhole(false);
  REQUIRE_FALSE(r);
  CHECK(r.error().kind == ApiErrorKind::Transport);
  CHECK_THAT(r.error().message, Catch::Contains("no data") && Catch::Contains("hung"));
  CHECK(took >= 700);
  CHECK(took < 5000);
  CHECK(c->list_nodes());
}

TEST_CASE("client: hostile responses are errors with bounded memory, never crashes", "[client][hostile]") {
  KubeApiServer s;
  s.create_node("n1");
  auto c = client(s, s.weft_token());
  s.control("POST", "/_weft/corrupt", {{"count", 1}, {"mode", "truncated"}, {"verb", "list"}});
  auto truncated = c->list_nodes();
  REQUIRE_FALSE(truncated);
  CHECK(truncated.error().kind == ApiErrorKind::BadResponse);
  CHECK_THAT(truncated.error().message, Catch::Contains("malformed JSON"));
  s.control("POST", "/_weft/corrupt", {{"count", 1}, {"mode", "garbage"}, {"verb", "get"}});
  CHECK(c->get_node("n1").error().kind == ApiErrorKind::BadResponse);
  s.control("POST", "/_weft/corrupt", {{"count", 1}, {"mode", "cut"}, {"verb", "list"}});
  CHECK_FALSE(c->list_nodes());
  auto small = fast_options();
  small.max_list_body = 1U << 20U;
  auto limited = client(s, s.weft_token(), small);
  s.control("POST", "/_weft/corrupt", {{"count", 1}, {"mode", "huge"}, {"bytes", 4 << 20}, {"verb", "list"}});
  auto huge = limited->list_nodes();
  REQUIRE_FALSE(huge);
  CHECK_THAT(huge.error().message, Catch::Contains("over the limit"));
  s.control("POST", "/_weft/corrupt", {{"count", 1}, {"mode", "huge"}, {"bytes", 10 << 20}, {"verb", "list"}});
  CHECK(c->list_nodes());  // 10 MiB is under the 16 MiB list limit: parsed, padding dropped
  CHECK(c->list_nodes());  // and the connection is still good
}

TEST_CASE("client: watch lines of garbage or over 1 MiB end the stream with an error", "[client][hostile]") {
  KubeApiServer s;
  s.create_node("n1");
  auto c = client(s, s.weft_token());
  auto rv = c->list_nodes()->resource_version;
  s.control("POST", "/_weft/corrupt", {{"count", 1}, {"mode", "garbage"}, {"verb", "watch"}});
  auto g = c->watch_nodes(rv, [](const WatchEvent&, bool) {});
  REQUIRE_FALSE(g);
  CHECK(g.error().kind == ApiErrorKind::BadResponse);
  CHECK_THAT(g.error().message, Catch::Contains("watch line"));
  s.control("POST", "/_weft/corrupt", {{"count", 1}, {"mode", "huge"}, {"bytes", 2 << 20}, {"verb", "watch"}});
  auto h = c->watch_nodes(rv, [](const WatchEvent&, bool) {});
  REQUIRE_FALSE(h);
  CHECK_THAT(h.error().message, Catch::Contains("longer than 1048576"));
}

TEST_CASE("client: a watch from a compacted resourceVersion is Gone", "[client]") {
  KubeApiServer s;
  s.create_node("n1");
  auto c = client(s, s.weft_token());
  auto rv = c->list_nodes()->resource_version;
  s.create_node("n2");
  s.compact();
  auto w = c->watch_nodes(rv, [](const WatchEvent&, bool) {});
  REQUIRE_FALSE(w);
  CHECK(w.error().kind == ApiErrorKind::Gone);
}

TEST_CASE("client: shutdown interrupts a blocked watch at once", "[client]") {
  KubeApiServer s;
  auto c = client(s, s.weft_token());
  auto rv = c->list_nodes()->resource_version;
  std::thread stopper([&] {
    eventually([&] { return s.stats().at("active_watches").get<int>() == 1; });
    c->shutdown();
  });
  auto t0 = std::chrono::steady_clock::now();
  auto w = c->watch_nodes(rv, [](const WatchEvent&, bool) {});
  stopper.join();
  REQUIRE_FALSE(w);
  CHECK(w.error().kind == ApiErrorKind::Cancelled);
  CHECK(ms_since(t0) < 3000);
  CHECK(c->list_nodes().error().kind == ApiErrorKind::Cancelled);
}

TEST_CASE("client: a closed port is reported as connection refused, naming the server", "[client]") {
  KubeApiServer s;  // for a CA and a token
  auto cfg = config_for(s, s.weft_token());
  std::string addr = "127.0.0.1:" + std::to_string(closed_port());
  cfg.server = "https://" + addr;
  auto c = make_kube_client(cfg, fast_options());
  auto list = c->list_nodes();
  REQUIRE_FALSE(list);
  auto watch = c->watch_nodes("1", [](const WatchEvent&, bool) {});
  REQUIRE_FALSE(watch);
  for (const auto& e : {list.error(), watch.error()}) {
    UNSCOPED_INFO(e.message);
    CHECK(e.kind == ApiErrorKind::Transport);
    CHECK_THAT(e.message, Catch::Contains("connection refused") && Catch::Contains(addr));
    CHECK_THAT(e.message, !Catch::Contains("No route to host") && !Catch::Contains("not permitted"));
  }
}
