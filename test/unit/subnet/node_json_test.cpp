#include <catch2/catch.hpp>
#include <istream>
#include <stdexcept>
#include <streambuf>

#include "subnet/kube/api_result.hpp"
#include "subnet/kube/node_json.hpp"

using namespace weft::kube;

TEST_CASE("a metadata-only list keeps names, resourceVersions and our annotations only", "[nodejson]") {
  auto page = parse_node_list(R"({"kind":"PartialObjectMetadataList","apiVersion":"meta.k8s.io/v1",
    "metadata":{"resourceVersion":"42","continue":"c1"},
    "items":[{"kind":"PartialObjectMetadata","metadata":{"name":"a","resourceVersion":"40",
       "annotations":{"weft.io/subnet":"10.244.1.0/24","node.alpha.kubernetes.io/ttl":"0"},
       "labels":{"weft.io/subnet":"not-an-annotation"},
       "managedFields":[{"manager":"kubelet","fieldsV1":{"f:metadata":{"f:annotations":{"weft.io/x":{}}}}}]}},
     {"metadata":{"name":"b","resourceVersion":"41"}}]})",
                              "weft.io/");
  REQUIRE(page);
  CHECK(page->list.resource_version == "42");
  CHECK(page->continue_token == "c1");
  REQUIRE(page->list.items.size() == 2);
  CHECK(page->list.items[0].name == "a");
  CHECK(page->list.items[0].resource_version == "40");
  CHECK(page->list.items[0].annotations == std::map<std::string, std::string>{{"weft.io/subnet", "10.244.1.0/24"}});
  CHECK(page->list.items[1].annotations.empty());
}

TEST_CASE("a full Node gives podCIDRs and InternalIPs", "[nodejson]") {
  auto n = parse_node(R"({"kind":"Node","metadata":{"name":"n1","resourceVersion":"7"},
    "spec":{"podCIDR":"10.244.3.0/24","podCIDRs":["10.244.3.0/24","fd00:3::/64"]},
    "status":{"addresses":[{"type":"Hostname","address":"n1"},{"address":"192.0.2.11","type":"InternalIP"}],
              "conditions":[{"type":"Ready","status":"True"}]}})",
                      "weft.io/");
  REQUIRE(n);
  CHECK(n->pod_cidrs == std::vector<std::string>{"10.244.3.0/24", "fd00:3::/64"});
  CHECK(n->internal_ips == std::vector<std::string>{"192.0.2.11"});
}

TEST_CASE("watch lines: events, bookmarks, and a 410 ERROR", "[nodejson]") {
  auto added = parse_watch_line(
      R"({"type":"ADDED","object":{"kind":"PartialObjectMetadata","metadata":{"name":"x","resourceVersion":"9",
         "annotations":{"weft.io/public-ip":"192.0.2.9"}}}})",
      "weft.io/");
  REQUIRE(added);
  REQUIRE(added->event);
  CHECK(added->event->type == WatchEventType::Added);
  CHECK(added->event->node.annotations.at("weft.io/public-ip") == "192.0.2.9");
  auto bm = parse_watch_line(R"({"type":"BOOKMARK","object":{"kind":"Node","metadata":{"resourceVersion":"12",
         "creationTimestamp":null}}})",
                             "weft.io/");
  REQUIRE(bm);
  CHECK(bm->event->type == WatchEventType::Bookmark);
  CHECK(bm->event->node.resource_version == "12");
  auto gone = parse_watch_line(R"js({"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","metadata":{},
         "status":"Failure","message":"too old resource version: 1 (5)","reason":"Expired","code":410}})js",
                               "weft.io/");
  REQUIRE(gone);
  REQUIRE(gone->error);
  CHECK(gone->error->code == 410);
  CHECK(gone->error->reason == "Expired");
}

TEST_CASE("hostile responses are errors, never crashes", "[nodejson]") {
  CHECK_FALSE(parse_watch_line("%%% garbage %%%", "weft.io/"));
  CHECK_FALSE(parse_watch_line(R"({"type":"ADDED","object":{"metadata":{"name":"x")", "weft.io/"));  // truncated
  CHECK_FALSE(parse_watch_line(R"({"type":"WHAT","object":{"metadata":{"name":"x","resourceVersion":"1"}}})", ""));
  CHECK_FALSE(parse_watch_line(R"({"type":"ADDED","object":{"metadata":{"name":"x"}}})", ""));  // no RV
  CHECK_FALSE(parse_watch_line(R"({"type":"ADDED"})", ""));
  CHECK_FALSE(parse_watch_line("[1,2,3]", ""));
  CHECK_FALSE(parse_watch_line("", ""));
  CHECK_FALSE(parse_watch_line(R"({"type":"ADDED"} trailing)", ""));
  CHECK_FALSE(parse_node_list(std::string(100000, '['), ""));
  CHECK_FALSE(parse_node_list("{" + std::string(100000, ' ') + std::string(50000, '{'), ""));
  std::string deep = R"({"items":)";
  for (int i = 0; i < 10000; ++i) deep += "[";
  CHECK_THAT(parse_node_list(deep, "").error(), Catch::Contains("nested deeper"));
  CHECK_THAT(parse_node_list(R"({"items":[]})", "").error(), Catch::Contains("no metadata.resourceVersion"));
  CHECK_THAT(parse_node_list(R"({"kind":"Status","code":500,"reason":"InternalError","message":"boom"})", "").error(),
             Catch::Contains("boom"));
  CHECK_FALSE(parse_node(R"({"metadata":{"annotations":{"weft.io/a":1}}})", "weft.io/"));  // no name
  auto odd =
      parse_node(R"({"metadata":{"name":"n","annotations":{"weft.io/a":1,"weft.io/b":"ok"}},"spec":[]})", "weft.io/");
  REQUIRE(odd);
  CHECK(odd->annotations == std::map<std::string, std::string>{{"weft.io/b", "ok"}});
}

TEST_CASE("Status bodies and patch bodies", "[nodejson]") {
  auto st = parse_status(R"({"kind":"Status","code":403,"reason":"Forbidden","message":"nodes is forbidden"})");
  REQUIRE(st);
  CHECK(st->code == 403);
  CHECK_FALSE(parse_status("<html>"));
  CHECK(annotations_patch_body("5", {{"weft.io/a", "1"}, {"weft.io/b", std::nullopt}}) ==
        R"({"metadata":{"annotations":{"weft.io/a":"1","weft.io/b":null},"resourceVersion":"5"}})");
  CHECK(annotations_patch_body("", {{"k", "v"}}) == R"({"metadata":{"annotations":{"k":"v"}}})");
  auto body = condition_patch_body({"NetworkUnavailable", "False", "WeftIsUp", "up"}, "2024-01-01T00:00:00Z");
  CHECK_THAT(body, Catch::Contains(R"("conditions":[{)") && Catch::Contains(R"("type":"NetworkUnavailable")"));
}

TEST_CASE("HTTP errors say what to fix", "[nodejson]") {
  auto e403 = http_error(403, "patch nodes/status (node \"n1\")", "nodes \"n1\" is forbidden: ...", std::nullopt);
  CHECK(e403.kind == ApiErrorKind::Forbidden);
  CHECK_THAT(e403.message,
             Catch::Contains("may not patch nodes/status") && Catch::Contains("ClusterRole in manifests/"));
  auto e401 = http_error(401, "list nodes", "Unauthorized", std::nullopt);
  CHECK_THAT(e401.message, Catch::Contains("token is wrong or expired"));
  CHECK(e401.transient());
  CHECK(http_error(410, "watch", "", std::nullopt).kind == ApiErrorKind::Gone);
  CHECK(http_error(429, "list", "", parse_retry_after("2")).retry_after == std::chrono::milliseconds(2000));
  CHECK_FALSE(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"));
  CHECK(http_error(503, "x", "", std::nullopt).transient());
  CHECK_FALSE(http_error(422, "x", "", std::nullopt).transient());
  auto tls =
      transport_error("list nodes", "Error in SSL handshake", {"https://a:1", "CA file /c", "kubeconfig /k", {}});
  CHECK(tls.kind == ApiErrorKind::Tls);
  CHECK_THAT(tls.message, Catch::Contains("https://a:1") && Catch::Contains("CA file /c"));
}

namespace {

// Serves a body `chunk` bytes at a time from a buffer it reuses, as the socket reader does; past
// `fail_at` bytes it throws, as a dropped connection does.
class ChunkedBody : public std::streambuf {
 public:
  ChunkedBody(std::string text, std::size_t chunk, std::size_t fail_at = std::string::npos)
      : text_(std::move(text)), chunk_(chunk), fail_at_(fail_at) {}
  std::size_t refills = 0;

 protected:
  int_type underflow() override {
    if (gptr() < egptr()) return traits_type::to_int_type(*gptr());
    if (pos_ >= fail_at_) throw std::runtime_error("connection reset");
    if (pos_ >= text_.size()) return traits_type::eof();
    buf_.assign(text_, pos_, std::min(chunk_, fail_at_ - pos_));
    pos_ += buf_.size();
    ++refills;
    setg(buf_.data(), buf_.data(), buf_.data() + buf_.size());
    return traits_type::to_int_type(*gptr());
  }

 private:
  std::string text_;
  std::size_t chunk_;
  std::size_t fail_at_;
  std::size_t pos_ = 0;
  std::string buf_;
};

weft::Result<NodeListPage> parse_chunked(const std::string& text, std::size_t chunk) {
  ChunkedBody body(text, chunk);
  std::istream in(&body);
  return parse_node_list(in, "weft.io/");
}

std::string big_list(int n) {
  std::string s = R"({"kind":"NodeList","metadata":{"resourceVersion":"77"},"items":[)";
  for (int i = 0; i < n; ++i) {
    if (i) s += ',';
    s += R"({"metadata":{"name":"node-)" + std::to_string(i) + R"(","resourceVersion":")" + std::to_string(i) +
         R"(","creationTimestamp":"2024-01-01T00:00:00Z","annotations":{"weft.io/subnet":"10.)" +
         std::to_string(i % 250) + R"(.0.0/24","other.io/x":"y"}},"spec":{"podCIDRs":["10.9.)" +
         std::to_string(i % 250) + R"(.0/24"]}})";
  }
  return s + "]}";
}

}  // namespace

TEST_CASE("a list read from a stream in small chunks gives what the whole text gives", "[nodejson]") {
  const std::string text = big_list(300);
  auto whole = parse_node_list(text, "weft.io/");
  REQUIRE(whole);
  REQUIRE(whole->list.items.size() == 300);
  for (std::size_t chunk : {std::size_t{1}, std::size_t{7}, std::size_t{4096}, text.size()}) {
    ChunkedBody body(text, chunk);
    std::istream in(&body);
    auto streamed = parse_node_list(in, "weft.io/");
    REQUIRE(streamed);
    CHECK(streamed->list.resource_version == "77");
    CHECK(streamed->list.items == whole->list.items);
    CHECK(body.refills == (text.size() + chunk - 1) / chunk);  // read through to the end, once
  }
  auto& n = whole->list.items[299];
  CHECK(n.name == "node-299");
  CHECK(n.annotations == std::map<std::string, std::string>{{"weft.io/subnet", "10.49.0.0/24"}});
  CHECK(n.pod_cidrs == std::vector<std::string>{"10.9.49.0/24"});
}

TEST_CASE("a streamed list fails with the same message as the whole text", "[nodejson]") {
  std::string deep = R"({"items":)";
  for (int i = 0; i < 100; ++i) deep += "[";
  const std::vector<std::string> bad = {
      "",
      "   \r\n\t ",
      "  [1,2]",
      "\"text\"",
      R"({"items":[{"metadata":{"name":"x")",
      R"({"metadata":{"resourceVersion":"1"},"items":[]} trailing)",
      R"({"items":[]})",
      R"({"metadata":{"resourceVersion":"1"},"items":[{"metadata":{"resourceVersion":"2"}}]})",
      R"({"kind":"Status","code":500,"reason":"InternalError","message":"boom"})",
      deep,
  };
  for (const auto& text : bad) {
    INFO("body: " << text.substr(0, 60));
    auto whole = parse_node_list(text, "weft.io/");
    REQUIRE_FALSE(whole);
    for (std::size_t chunk : {std::size_t{1}, std::size_t{3}, std::size_t{1000}}) {
      auto streamed = parse_chunked(text, chunk);
      REQUIRE_FALSE(streamed);
      CHECK(streamed.error() == whole.error());
    }
  }
  CHECK(parse_chunked("", 1).error() == "empty response");
  CHECK(parse_chunked(" [", 1).error() == "response is not a JSON object");
}

TEST_CASE("an I/O error in the middle of a streamed list reaches the caller", "[nodejson]") {
  const std::string text = big_list(50);
  ChunkedBody body(text, 512, text.size() / 2);
  std::istream in(&body);
  CHECK_THROWS_WITH(parse_node_list(in, "weft.io/"), "connection reset");
}
