#pragma once
// KubeConfig: where the API server is and how to authenticate, from a kubeconfig file,
// from a pod's service account (in-cluster), or from --kube-api-url.

#include <string>

#include "core/result.hpp"

namespace weft::kube {

struct KubeConfig {
  std::string server;  // https://host:port (no trailing '/')
  // Server CA: a PEM file or PEM text; neither means the system's trust store.
  std::string ca_file;
  std::string ca_pem;
  // Client certificate (both or neither), as files or PEM text.
  std::string client_cert_file, client_cert_pem;
  std::string client_key_file, client_key_pem;
  std::string token;       // a static bearer token
  std::string token_file;  // a bearer token re-read when the file changes (projected tokens rotate)
  bool insecure_skip_tls_verify = false;
  std::string source;  // for messages: "kubeconfig /x (context y)", "in-cluster", ...
};

// A kubeconfig (YAML as kubectl writes it, or JSON). `context` empty means current-context.
// Relative file paths inside are resolved against the kubeconfig's directory, as kubectl does.
Result<KubeConfig> load_kubeconfig(const std::string& path, const std::string& context = "");
// The same from text already read; `path` is only used in messages and for relative paths.
Result<KubeConfig> parse_kubeconfig(const std::string& text, const std::string& path, const std::string& context = "");

// A pod's service account: TOKEN_DIR/{token,ca.crt} and KUBERNETES_SERVICE_HOST/PORT.
inline constexpr const char* kServiceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount";
Result<KubeConfig> load_in_cluster(const std::string& token_dir = kServiceAccountDir);

// weftd's choice, as flannel's: --kubeconfig-file if given (--kube-api-url overrides its server);
// else --kube-api-url alone (with the service account's token and CA when present); else in-cluster.
Result<KubeConfig> resolve_kube_config(const std::string& kubeconfig_file, const std::string& kube_api_url,
                                       bool insecure_skip_tls_verify,
                                       const std::string& token_dir = kServiceAccountDir);

// Base64 (RFC 4648, padding optional, whitespace ignored), for *-data fields.
Result<std::string> base64_decode(const std::string& text);

}  // namespace weft::kube
