#include "subnet/kube/kube_config.hpp"

#include <openssl/evp.h>
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>

#include "subnet/kube/yaml_json.hpp"

namespace weft::kube {
namespace {

using nlohmann::json;

constexpr std::size_t kMaxConfigFile = 4U << 20U;

Result<std::string> read_small_file(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail("cannot read " + what + " " + path + ": " + std::strerror(errno));
  std::string data;
  data.resize(kMaxConfigFile + 1);
  in.read(data.data(), static_cast<std::streamsize>(data.size()));
  data.resize(static_cast<std::size_t>(in.gcount()));
  if (data.size() > kMaxConfigFile) return fail(what + " " + path + " is larger than 4 MiB");
  return data;
}

std::string trim_ws(std::string s) {
  auto not_ws = [](unsigned char c) { return !std::isspace(c); };
  s.erase(s.begin(), std::find_if(s.begin(), s.end(), not_ws));
  s.erase(std::find_if(s.rbegin(), s.rend(), not_ws).base(), s.end());
  return s;
}

// Looks up the entry `name` in a kubeconfig list like clusters: [{name, cluster: {...}}].
Result<json> named_entry(const json& root, const std::string& list, const std::string& field, const std::string& name,
                         const std::string& where) {
  auto it = root.find(list);
  if (it != root.end() && it->is_array()) {
    for (const auto& e : *it) {
      if (e.is_object() && e.value("name", json()).is_string() && e["name"].get<std::string>() == name) {
        auto body = e.find(field);
        if (body == e.end() || !body->is_object()) return json::object();
        return *body;
      }
    }
  }
  return fail(where + ": no entry named \"" + name + "\" in " + list);
}

// A string field, or "" when absent; an error when present with another type.
Result<std::string> string_field(const json& obj, const std::string& key, const std::string& where) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return std::string();
  if (it->is_string()) return it->get<std::string>();
  if (it->is_boolean()) return std::string(it->get<bool>() ? "true" : "false");
  return fail(where + ": \"" + key + "\" must be a string");
}

std::string resolve_path(const std::string& file, const std::string& base_dir) {
  if (file.empty() || file.front() == '/' || base_dir.empty()) return file;
  return base_dir + "/" + file;
}

// `field` (a file path) or `field-data` (base64 PEM) into *file / *pem.
Status file_or_data(const json& obj, const std::string& field, const std::string& where, const std::string& base_dir,
                    std::string* file, std::string* pem) {
  auto path = string_field(obj, field, where);
  if (!path) return path.take_error();
  auto data = string_field(obj, field + "-data", where);
  if (!data) return data.take_error();
  if (!data->empty()) {
    auto decoded = base64_decode(*data);
    if (!decoded) return fail(where + ": \"" + field + "-data\" is not base64: " + decoded.error());
    *pem = std::move(*decoded);
  } else {
    *file = resolve_path(*path, base_dir);
  }
  return ok_status();
}

Status read_cluster(const json& cluster, const std::string& where, const std::string& base_dir, KubeConfig& c) {
  auto server = string_field(cluster, "server", where);
  if (!server) return server.take_error();
  if (server->empty()) return fail(where + ": \"server\" is missing");
  c.server = *server;
  if (auto st = file_or_data(cluster, "certificate-authority", where, base_dir, &c.ca_file, &c.ca_pem); !st) return st;
  auto insecure = string_field(cluster, "insecure-skip-tls-verify", where);
  if (!insecure) return insecure.take_error();
  c.insecure_skip_tls_verify = *insecure == "true";
  return ok_status();
}

Status read_user(const json& user, const std::string& where, const std::string& base_dir, KubeConfig& c) {
  for (const char* unsupported : {"exec", "auth-provider", "username"}) {
    if (user.contains(unsupported)) {
      return fail(where + ": \"" + std::string(unsupported) +
                  "\" credentials are not supported: use a token, tokenFile or a client certificate");
    }
  }
  auto token = string_field(user, "token", where);
  if (!token) return token.take_error();
  c.token = *token;
  auto token_file = string_field(user, "tokenFile", where);
  if (!token_file) return token_file.take_error();
  c.token_file = resolve_path(*token_file, base_dir);
  if (auto st = file_or_data(user, "client-certificate", where, base_dir, &c.client_cert_file, &c.client_cert_pem); !st)
    return st;
  if (auto st = file_or_data(user, "client-key", where, base_dir, &c.client_key_file, &c.client_key_pem); !st)
    return st;
  bool has_cert = !c.client_cert_file.empty() || !c.client_cert_pem.empty();
  bool has_key = !c.client_key_file.empty() || !c.client_key_pem.empty();
  if (has_cert != has_key) return fail(where + ": client-certificate and client-key must be given together");
  return ok_status();
}

Status check_server(const KubeConfig& c, const std::string& where) {
  if (c.server.starts_with("https://")) return ok_status();
  if (c.server.starts_with("http://")) return ok_status();  // allowed for local test setups, logged by the client
  return fail(where + ": server \"" + c.server + "\" must start with https://");
}

}  // namespace

// OpenSSL's decoder with the rules of Go's base64.StdEncoding, which kubectl and client-go use
// for the -data fields: the standard alphabet with padding; line breaks are allowed.
Result<std::string> base64_decode(const std::string& text) {
  std::string in;
  std::copy_if(text.begin(), text.end(), std::back_inserter(in),
               [](char c) { return !std::isspace(static_cast<unsigned char>(c)); });
  if (in.size() % 4 != 0) return fail("length " + std::to_string(in.size()) + " is not a multiple of 4 (truncated?)");
  auto pad = in.find('=');
  if (pad != std::string::npos && (pad + 2 < in.size() || in.find_first_not_of('=', pad) != std::string::npos)) {
    return fail("data after '=' padding");
  }
  std::string out(in.size() / 4 * 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
  if (n < 0) return fail("a character outside the base64 alphabet (A-Z a-z 0-9 + /)");
  // EVP_DecodeBlock counts the padding as zero bytes.
  out.resize(static_cast<std::size_t>(n) - (pad == std::string::npos ? 0 : in.size() - pad));
  return out;
}

Result<KubeConfig> parse_kubeconfig(const std::string& text, const std::string& path, const std::string& context) {
  std::string where = "kubeconfig " + path;
  auto root = parse_yaml(text);
  if (!root) return fail(where + ": " + root.error());
  if (!root->is_object()) return fail(where + ": not a kubeconfig (expected a mapping with clusters, users, contexts)");
  std::string ctx_name = context;
  if (ctx_name.empty()) {
    auto current = string_field(*root, "current-context", where);
    if (!current) return current.take_error();
    if (current->empty()) return fail(where + ": \"current-context\" is not set");
    ctx_name = *current;
  }
  auto ctx = named_entry(*root, "contexts", "context", ctx_name, where);
  if (!ctx) return ctx.take_error();
  std::string ctx_where = where + " context \"" + ctx_name + "\"";
  auto cluster_name = string_field(*ctx, "cluster", ctx_where);
  if (!cluster_name) return cluster_name.take_error();
  auto user_name = string_field(*ctx, "user", ctx_where);
  if (!user_name) return user_name.take_error();
  if (cluster_name->empty()) return fail(ctx_where + ": \"cluster\" is missing");

  std::string base_dir = path.find('/') == std::string::npos ? "." : path.substr(0, path.rfind('/'));
  KubeConfig c;
  c.source = where + " (context " + ctx_name + ")";
  auto cluster = named_entry(*root, "clusters", "cluster", *cluster_name, where);
  if (!cluster) return cluster.take_error();
  if (auto st = read_cluster(*cluster, where + " cluster \"" + *cluster_name + "\"", base_dir, c); !st) {
    return st.take_error();
  }
  if (!user_name->empty()) {
    auto user = named_entry(*root, "users", "user", *user_name, where);
    if (!user) return user.take_error();
    if (auto st = read_user(*user, where + " user \"" + *user_name + "\"", base_dir, c); !st) return st.take_error();
  }
  while (!c.server.empty() && c.server.back() == '/') c.server.pop_back();
  if (auto st = check_server(c, where); !st) return st.take_error();
  return c;
}

Result<KubeConfig> load_kubeconfig(const std::string& path, const std::string& context) {
  auto text = read_small_file(path, "kubeconfig");
  if (!text) return text.take_error();
  return parse_kubeconfig(*text, path, context);
}

Result<KubeConfig> load_in_cluster(const std::string& token_dir) {
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
  if (!host || !*host || !port || !*port) {
    return fail(
        "not running in a pod (KUBERNETES_SERVICE_HOST/PORT are not set): give --kubeconfig-file or "
        "--kube-api-url");
  }
  KubeConfig c;
  std::string h = host;
  if (h.find(':') != std::string::npos) h = "[" + h + "]";  // an IPv6 service address
  c.server = "https://" + h + ":" + port;
  c.token_file = token_dir + "/token";
  c.ca_file = token_dir + "/ca.crt";
  auto token = read_small_file(c.token_file, "service account token");
  if (!token) return token.take_error();
  if (trim_ws(*token).empty()) return fail("service account token " + c.token_file + " is empty");
  std::ifstream ca(c.ca_file);
  if (!ca) return fail("cannot read the service account CA " + c.ca_file + ": " + std::strerror(errno));
  c.source = "in-cluster service account (" + token_dir + ")";
  return c;
}

Result<KubeConfig> resolve_kube_config(const std::string& kubeconfig_file, const std::string& kube_api_url,
                                       bool insecure_skip_tls_verify, const std::string& token_dir) {
  Result<KubeConfig> c = fail("");
  if (!kubeconfig_file.empty()) {
    c = load_kubeconfig(kubeconfig_file);
    if (c && !kube_api_url.empty()) c->server = kube_api_url;
  } else if (!kube_api_url.empty()) {
    KubeConfig k;
    k.server = kube_api_url;
    k.source = "--kube-api-url " + kube_api_url;
    if (std::ifstream(token_dir + "/token")) {
      k.token_file = token_dir + "/token";
      if (std::ifstream(token_dir + "/ca.crt")) k.ca_file = token_dir + "/ca.crt";
      k.source += " with the service account in " + token_dir;
    }
    c = k;
  } else {
    c = load_in_cluster(token_dir);
  }
  if (!c) return c;
  while (!c->server.empty() && c->server.back() == '/') c->server.pop_back();
  if (auto st = check_server(*c, c->source); !st) return st.take_error();
  if (insecure_skip_tls_verify) c->insecure_skip_tls_verify = true;
  return c;
}

}  // namespace weft::kube
