#include "subnet/kube/tls_material.hpp"

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <boost/asio/ssl.hpp>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>

namespace weft::kube {

namespace {

Result<std::string> read_pem_file(const std::string& path, const std::string& what) {
  std::ifstream in(path);
  if (!in) return fail("cannot read " + what + " " + path + ": " + std::strerror(errno));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

Result<TlsMaterial> load_tls(const KubeConfig& c) {
  TlsMaterial m;
  m.ca_pem = c.ca_pem;
  m.ca_desc = c.ca_file.empty()
                  ? (c.ca_pem.empty() ? "the system CA store" : "the certificate-authority-data of " + c.source)
                  : "CA file " + c.ca_file;
  if (!c.ca_file.empty()) {
    auto pem = read_pem_file(c.ca_file, "CA file");
    if (!pem) return pem.take_error();
    m.ca_pem = *pem;
  }
  m.cert_pem = c.client_cert_pem;
  m.key_pem = c.client_key_pem;
  if (!c.client_cert_file.empty()) {
    auto pem = read_pem_file(c.client_cert_file, "client certificate");
    if (!pem) return pem.take_error();
    m.cert_pem = *pem;
  }
  if (!c.client_key_file.empty()) {
    auto pem = read_pem_file(c.client_key_file, "client key");
    if (!pem) return pem.take_error();
    m.key_pem = *pem;
  }
  boost::asio::ssl::context probe(boost::asio::ssl::context::tls_client);
  boost::system::error_code ec;
  if (!m.ca_pem.empty() && probe.add_certificate_authority(boost::asio::buffer(m.ca_pem), ec)) {
    return fail(m.ca_desc + " holds no usable PEM certificate: " + ec.message());
  }
  if (!m.cert_pem.empty() && probe.use_certificate_chain(boost::asio::buffer(m.cert_pem), ec)) {
    return fail("client certificate of " + c.source + " is not a PEM certificate: " + ec.message());
  }
  if (!m.key_pem.empty() && probe.use_private_key(boost::asio::buffer(m.key_pem), boost::asio::ssl::context::pem, ec)) {
    return fail("client key of " + c.source + " is not a PEM private key: " + ec.message());
  }
  return m;
}

void apply_tls(boost::asio::ssl::context& ctx, const TlsMaterial& tls) {
  boost::system::error_code ec;
  if (!tls.ca_pem.empty()) {
    // Trust only the configured CA, not the system store as well.
    SSL_CTX_set_cert_store(ctx.native_handle(), X509_STORE_new());
    ctx.add_certificate_authority(boost::asio::buffer(tls.ca_pem), ec);
  }
  if (!tls.cert_pem.empty()) ctx.use_certificate_chain(boost::asio::buffer(tls.cert_pem), ec);
  if (!tls.key_pem.empty()) ctx.use_private_key(boost::asio::buffer(tls.key_pem), boost::asio::ssl::context::pem, ec);
}

void skip_system_ca_bundle_once(const KubeConfig& c) {
  static std::once_flag once;
  std::call_once(once, [&c] {
    if (c.insecure_skip_tls_verify || (c.ca_file.empty() && c.ca_pem.empty())) return;
    ::setenv("SSL_CERT_FILE", c.ca_file.empty() ? "/dev/null" : c.ca_file.c_str(), /*overwrite=*/1);
  });
}

}  // namespace weft::kube
