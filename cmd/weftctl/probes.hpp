#pragma once
// What weftctl doctor asks the host, outside netlink: sysctls, files, nftables, the API server.

#include <string>

#include "core/result.hpp"

namespace weft::ctl {

// The first line of /proc/sys/<key with '.' as '/'> (root: normally /proc/sys).
Result<std::string> read_sysctl(const std::string& root, const std::string& key);

// Whether nftables holds a table of that family and name (libnftables' `list tables`, JSON).
Result<bool> nft_table_present(const std::string& family, const std::string& name);

// The API server URL: the first `server:` of a kubeconfig (clusters[0]), or "" when none.
Result<std::string> kubeconfig_server(const std::string& path);

// GET /readyz over TLS (the certificate is not checked: only whether the server answers);
// the HTTP status, or why there was no answer within timeout_ms.
Result<int> probe_api_server(const std::string& url, int timeout_ms);

}  // namespace weft::ctl
