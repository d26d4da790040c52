#pragma once
// TLS material for the API client: the CA, client certificate and key as PEM text, read and
// checked once (a bad file is a clear error, not an opaque handshake failure), and applied to
// each connection's context by trusting only the configured CA, as kubectl does.

#include <string>

#include "core/result.hpp"
#include "subnet/kube/kube_config.hpp"

namespace boost::asio::ssl {
class context;
}

namespace weft::kube {

struct TlsMaterial {
  std::string ca_pem, cert_pem, key_pem;
  std::string ca_desc;  // for messages: "CA file /x", "the certificate-authority-data of ..."
};

Result<TlsMaterial> load_tls(const KubeConfig& c);

// Sets up one connection's context (errors were caught by load_tls).
void apply_tls(boost::asio::ssl::context& ctx, const TlsMaterial& tls);

// cpprest builds a TLS context for every connection and first loads the system CA bundle
// into it (~30 ms of CPU with OpenSSL 3), which apply_tls then replaces by the cluster's CA.
// When a CA is configured, this points OpenSSL's default file (SSL_CERT_FILE) at it instead,
// once per process; call it before the first connection exists (setenv is not safe while
// other threads read the environment).
void skip_system_ca_bundle_once(const KubeConfig& c);

}  // namespace weft::kube
