#include "core/subnet_env.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <tuple>
#include <utility>

namespace weft {
namespace {

constexpr std::size_t kMaxFileBytes = 64 * 1024;

// "10.244.7.1/24" -> the subnet 10.244.7.0/24 (the file holds the gateway address).
template <class Addr>
Result<Prefix<Addr>> parse_gateway_form(const std::string& key, const std::string& value) {
  auto slash = value.find('/');
  if (slash == std::string::npos) return fail(key + "=" + value + ": expected address/length");
  auto addr = Addr::parse(value.substr(0, slash));
  if (!addr) return fail(key + ": " + addr.error());
  int len = -1;
  const char* first = value.data() + slash + 1;
  const char* last = value.data() + value.size();
  auto [end, ec] = std::from_chars(first, last, len);
  if (ec != std::errc{} || end != last || first == last || len < 0 || len > Addr::kBits) {
    return fail(key + "=" + value + ": bad prefix length");
  }
  return Prefix<Addr>::containing(*addr, len);
}

template <class Addr>
std::string gateway_form(const Prefix<Addr>& subnet) {
  return subnet.first_host().str() + "/" + std::to_string(subnet.length());
}

// One family's network and this node's subnet in it: both keys, or neither (nullopt).
template <class Addr>
Result<std::optional<std::pair<Prefix<Addr>, Prefix<Addr>>>> parse_family(const std::map<std::string, std::string>& kv,
                                                                          const std::string& network_key,
                                                                          const std::string& subnet_key) {
  const bool has_network = kv.count(network_key) != 0;
  const bool has_subnet = kv.count(subnet_key) != 0;
  if (!has_network && !has_subnet) return std::optional<std::pair<Prefix<Addr>, Prefix<Addr>>>();
  if (has_network != has_subnet) {
    const std::string& have = has_network ? network_key : subnet_key;
    const std::string& missing = has_network ? subnet_key : network_key;
    return fail("subnet.env has " + have + " but no " + missing +
                ": a family needs both (restart weftd to rewrite it)");
  }
  auto network = Prefix<Addr>::parse(kv.at(network_key));
  if (!network) return fail("subnet.env " + network_key + ": " + network.error());
  auto subnet = parse_gateway_form<Addr>(subnet_key, kv.at(subnet_key));
  if (!subnet) return fail("subnet.env " + subnet.error());
  if (!network->contains(*subnet)) {
    return fail("subnet.env: " + subnet_key + " " + subnet->str() + " is outside " + network_key + " " +
                network->str() + " (restart weftd to rewrite it)");
  }
  return std::optional(std::pair(*network, *subnet));
}

Status write_all(int fd, const std::string& data) {
  std::size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(std::strerror(errno));
    done += static_cast<std::size_t>(n);
  }
  return ok_status();
}

}  // namespace

std::string SubnetEnv::format() const {
  std::ostringstream out;
  if (network) out << "WEFT_NETWORK=" << network->str() << "\n";
  if (subnet) out << "WEFT_SUBNET=" << gateway_form(*subnet) << "\n";
  if (network_v6) out << "WEFT_IPV6_NETWORK=" << network_v6->str() << "\n";
  if (subnet_v6) out << "WEFT_IPV6_SUBNET=" << gateway_form(*subnet_v6) << "\n";
  out << "WEFT_MTU=" << mtu << "\n";
  out << "WEFT_IPMASQ=" << (ipmasq ? "true" : "false") << "\n";
  return out.str();
}

Result<SubnetEnv> SubnetEnv::parse(std::string_view text) {
  std::map<std::string, std::string> kv;
  std::istringstream in{std::string(text)};
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    auto eq = line.find('=');
    if (eq == std::string::npos) return fail("subnet.env: line \"" + line.substr(0, 80) + "\" is not KEY=value");
    kv[line.substr(0, eq)] = line.substr(eq + 1);
  }
  SubnetEnv env;
  auto v4 = parse_family<Ipv4Addr>(kv, "WEFT_NETWORK", "WEFT_SUBNET");
  if (!v4) return v4.take_error();
  auto v6 = parse_family<Ipv6Addr>(kv, "WEFT_IPV6_NETWORK", "WEFT_IPV6_SUBNET");
  if (!v6) return v6.take_error();
  if (!*v4 && !*v6) {
    return fail(
        "subnet.env has no address family: it needs WEFT_NETWORK and WEFT_SUBNET, or WEFT_IPV6_NETWORK and "
        "WEFT_IPV6_SUBNET, or all four (restart weftd to rewrite it)");
  }
  if (*v4) std::tie(env.network, env.subnet) = **v4;
  if (*v6) std::tie(env.network_v6, env.subnet_v6) = **v6;
  for (const char* key : {"WEFT_MTU", "WEFT_IPMASQ"}) {
    if (!kv.count(key)) return fail(std::string("subnet.env has no ") + key + " (restart weftd to rewrite it)");
  }
  // The whole value is the number: "1450x" is an error, not 1450.
  const std::string& mtu = kv["WEFT_MTU"];
  auto [end, ec] = std::from_chars(mtu.data(), mtu.data() + mtu.size(), env.mtu);
  if (ec != std::errc{} || end != mtu.data() + mtu.size() || mtu.empty()) {
    return fail("subnet.env WEFT_MTU=" + mtu + " is not a number");
  }
  if (env.mtu < 68 || env.mtu > 65535) return fail("subnet.env WEFT_MTU=" + kv["WEFT_MTU"] + " is out of range");
  env.ipmasq = kv["WEFT_IPMASQ"] == "true";
  return env;
}

Result<SubnetEnv> SubnetEnv::load(const std::string& path) {
  std::ifstream in(path);
  if (!in) return fail(path + " not found: is weftd running on this node?");
  std::string text(kMaxFileBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<std::size_t>(in.gcount()));
  if (text.size() > kMaxFileBytes) return fail(path + " is too large to be a subnet.env");
  auto env = parse(text);
  if (!env) return fail(path + ": " + env.error());
  return env;
}

Status SubnetEnv::write_atomically(const std::string& path) const {
  namespace fs = std::filesystem;
  fs::path target(path);
  std::error_code ec;
  if (target.has_parent_path()) fs::create_directories(target.parent_path(), ec);
  if (ec) return fail("cannot create " + target.parent_path().string() + ": " + ec.message());
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return fail("cannot write " + tmp + ": " + std::strerror(errno));
  auto st = write_all(fd, format());
  if (st && ::fsync(fd) != 0) st = fail(std::string("fsync: ") + std::strerror(errno));
  ::close(fd);
  if (st && ::rename(tmp.c_str(), path.c_str()) != 0) st = fail(std::string("rename: ") + std::strerror(errno));
  if (!st) {
    ::unlink(tmp.c_str());
    return fail("cannot write " + path + ": " + st.error());
  }
  return ok_status();
}

}  // namespace weft
