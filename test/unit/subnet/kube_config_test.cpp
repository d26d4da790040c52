#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "subnet/kube/kube_config.hpp"
#include "subnet/kube/yaml_json.hpp"

using namespace weft::kube;
namespace fs = std::filesystem;

namespace {

// As kubectl config view --raw writes it (kubeadm's admin.conf has the same shape).
const char* kKubectlYaml = R"(apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==
    server: https://192.0.2.254:6443
  name: kubernetes
- cluster:
    certificate-authority: ca.crt   # relative to the kubeconfig
    server: "https://127.0.0.1:40123/"
    insecure-skip-tls-verify: true
  name: test
contexts:
- context:
    cluster: kubernetes
    user: kubernetes-admin
  name: kubernetes-admin@kubernetes
- context:
    cluster: test
    user: 'system:serviceaccount:kube-system:weft'
  name: test
current-context: kubernetes-admin@kubernetes
kind: Config
preferences: {}
users:
- name: kubernetes-admin
  user:
    client-certificate-data: Y2VydA==
    client-key-data: a2V5
- name: system:serviceaccount:kube-system:weft
  user:
    tokenFile: /var/run/token
)";

struct TempDir {
  fs::path path = fs::temp_directory_path() / ("weft-kcfg-" + std::to_string(::getpid()));
  TempDir() { fs::create_directories(path); }
  ~TempDir() { fs::remove_all(path); }
  std::string write(const std::string& name, const std::string& text) const {
    std::ofstream(path / name) << text;
    return (path / name).string();
  }
};

}  // namespace

TEST_CASE("a kubeconfig as kubectl writes it: current context, data fields", "[kubeconfig]") {
  auto c = parse_kubeconfig(kKubectlYaml, "/etc/k/admin.conf");
  REQUIRE(c);
  CHECK(c->server == "https://192.0.2.254:6443");
  CHECK(c->ca_pem == "-----BEGIN CERTIFICATE-----\n");
  CHECK(c->client_cert_pem == "cert");
  CHECK(c->client_key_pem == "key");
  CHECK(c->token.empty());
  CHECK_FALSE(c->insecure_skip_tls_verify);
  CHECK_THAT(c->source, Catch::Contains("/etc/k/admin.conf") && Catch::Contains("kubernetes-admin@kubernetes"));
}

TEST_CASE("a named context, relative files resolve against the kubeconfig's directory", "[kubeconfig]") {
  auto c = parse_kubeconfig(kKubectlYaml, "/etc/k/admin.conf", "test");
  REQUIRE(c);
  CHECK(c->server == "https://127.0.0.1:40123");
  CHECK(c->ca_file == "/etc/k/ca.crt");
  CHECK(c->token_file == "/var/run/token");
  CHECK(c->insecure_skip_tls_verify);
}

TEST_CASE("a JSON kubeconfig works too", "[kubeconfig]") {
  auto c = parse_kubeconfig(
      R"({"clusters":[{"name":"c","cluster":{"server":"https://a:1"}}],"users":[{"name":"u","user":{"token":"t"}}],
          "contexts":[{"name":"x","context":{"cluster":"c","user":"u"}}],"current-context":"x"})",
      "k.json");
  REQUIRE(c);
  CHECK(c->server == "https://a:1");
  CHECK(c->token == "t");
}

TEST_CASE("kubeconfig errors name the file and the field", "[kubeconfig]") {
  auto err = [](const std::string& text, const std::string& ctx = "") {
    auto c = parse_kubeconfig(text, "/k", ctx);
    REQUIRE_FALSE(c);
    return c.error();
  };
  CHECK_THAT(err(kKubectlYaml, "nope"), Catch::Contains("kubeconfig /k") && Catch::Contains("no entry named \"nope\""));
  CHECK_THAT(err("kind: Config\n"), Catch::Contains("\"current-context\" is not set"));
  CHECK_THAT(
      err("current-context: x\ncontexts:\n- name: x\n  context:\n    cluster: c\nclusters:\n- name: c\n  cluster:\n"
          "    insecure-skip-tls-verify: true\n"),
      Catch::Contains("cluster \"c\": \"server\" is missing"));
  CHECK_THAT(
      err("current-context: x\ncontexts:\n- name: x\n  context:\n    cluster: c\nclusters:\n- name: c\n  cluster:\n"
          "    server: https://a\n    certificate-authority-data: '%%%'\n"),
      Catch::Contains("\"certificate-authority-data\" is not base64"));
  CHECK_THAT(
      err("current-context: x\ncontexts:\n- name: x\n  context:\n    cluster: c\n    user: u\nclusters:\n- name: c\n"
          "  cluster:\n    server: https://a\nusers:\n- name: u\n  user:\n    exec:\n      command: aws\n"),
      Catch::Contains("user \"u\": \"exec\" credentials are not supported"));
  CHECK_THAT(err("a: b\n  c: d\n"), Catch::Contains("line 2"));
  auto missing = load_kubeconfig("/nonexistent/kubeconfig");
  REQUIRE_FALSE(missing);
  CHECK_THAT(missing.error(), Catch::Contains("cannot read kubeconfig /nonexistent/kubeconfig"));
}

TEST_CASE("the YAML reader: sequences at the key's indentation, quotes, comments, flow", "[kubeconfig]") {
  auto j = parse_yaml(
      "# c\na:\n- x: 1\n  y: 'it''s'\n- \"two\\n\"\nb: {\"k\": [1]}  # trailing\nc: ~\nd: x # y\ne: &v z\nf: *v\n");
  REQUIRE(j);
  CHECK(j->at("a").at(0).at("x") == "1");
  CHECK(j->at("a").at(0).at("y") == "it's");
  CHECK(j->at("a").at(1) == "two\n");
  CHECK(j->at("b").at("k").at(0) == "1");  // scalars stay text
  CHECK(j->at("c").is_null());
  CHECK(j->at("d") == "x");
  CHECK(j->at("f") == "z");
  CHECK_FALSE(parse_yaml("a:\n\tb: c\n"));
  auto unclosed = parse_yaml("a: [b\n");
  REQUIRE_FALSE(unclosed);
  CHECK_THAT(unclosed.error(), Catch::Contains("line "));
  CHECK_FALSE(parse_yaml("? [a]\n: b\n"));  // a key that is not a plain value
  std::string deep;
  for (int i = 0; i < 200; ++i) deep += std::string(static_cast<std::size_t>(i) * 2, ' ') + "k:\n";
  auto too_deep = parse_yaml(deep);
  REQUIRE_FALSE(too_deep);
  CHECK_THAT(too_deep.error(), Catch::Contains("nested deeper than 64"));
  CHECK_FALSE(parse_yaml(std::string(1U << 20U, '[')));  // no stack overflow on hostile flow nesting
}

TEST_CASE("base64 decoding follows Go's StdEncoding, as kubectl does", "[kubeconfig]") {
  CHECK(*base64_decode("aGVsbG8=") == "hello");
  CHECK(*base64_decode("aGVsbG8h") == "hello!");
  CHECK(*base64_decode("aGVsbA==") == "hell");
  CHECK(*base64_decode("aGVs\nbG8=\n") == "hello");
  CHECK(*base64_decode("+/8=") == std::string("\xfb\xff"));
  CHECK(base64_decode("")->empty());
  auto bin = base64_decode("AAEC/w==");
  REQUIRE(bin);
  CHECK(*bin == std::string("\x00\x01\x02\xff", 4));
  CHECK_THAT(base64_decode("a").error(), Catch::Contains("not a multiple of 4"));
  CHECK_THAT(base64_decode("aGVsbG8").error(), Catch::Contains("not a multiple of 4"));
  CHECK_THAT(base64_decode("aGVsbG8=aGVs").error(), Catch::Contains("after '=' padding"));
  CHECK_THAT(base64_decode("aG=sbG8=").error(), Catch::Contains("after '=' padding"));
  CHECK_THAT(base64_decode("-_8=").error(), Catch::Contains("alphabet"));
  CHECK_THAT(base64_decode("aGV*bG8=").error(), Catch::Contains("alphabet"));
}

TEST_CASE("in-cluster config comes from the service account files and the environment", "[kubeconfig]") {
  TempDir dir;
  dir.write("token", "tok-1\n");
  dir.write("ca.crt", "pem");
  ::setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
  ::setenv("KUBERNETES_SERVICE_PORT", "443", 1);
  auto c = load_in_cluster(dir.path.string());
  REQUIRE(c);
  CHECK(c->server == "https://10.96.0.1:443");
  CHECK(c->token_file == (dir.path / "token").string());
  CHECK(c->ca_file == (dir.path / "ca.crt").string());
  // --kube-api-url alone keeps the service account's credentials
  auto u = resolve_kube_config("", "https://192.0.2.254:6443/", false, dir.path.string());
  REQUIRE(u);
  CHECK(u->server == "https://192.0.2.254:6443");
  CHECK(u->token_file == (dir.path / "token").string());
  // --insecure-skip-tls-verify is carried
  auto k = resolve_kube_config(dir.write("kc", kKubectlYaml), "https://override:1", true, dir.path.string());
  REQUIRE(k);
  CHECK(k->server == "https://override:1");
  CHECK(k->insecure_skip_tls_verify);
  ::setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
  CHECK(load_in_cluster(dir.path.string())->server == "https://[fd00::1]:443");
  ::unsetenv("KUBERNETES_SERVICE_HOST");
  auto none = resolve_kube_config("", "", false, dir.path.string());
  REQUIRE_FALSE(none);
  CHECK_THAT(none.error(), Catch::Contains("KUBERNETES_SERVICE_HOST") && Catch::Contains("--kubeconfig-file"));
  ::setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
  CHECK_THAT(load_in_cluster("/nonexistent").error(), Catch::Contains("/nonexistent/token"));
  ::unsetenv("KUBERNETES_SERVICE_HOST");
  ::unsetenv("KUBERNETES_SERVICE_PORT");
}
