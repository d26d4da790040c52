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
  out << "WEFT_NETWORK=" << network.str() << "\n";
  out << "WEFT_SUBNET=" << subnet.first_host().str() << "/" << subnet.length() << "\n";
  if (network_v6) out << "WEFT_IPV6_NETWORK=" << network_v6->str() << "\n";
  if (subnet_v6) out << "WEFT_IPV6_SUBNET=" << subnet_v6->first_host().str() << "/" << subnet_v6->length() << "\n";
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
  for (const char* key : {"WEFT_NETWORK", "WEFT_SUBNET", "WEFT_MTU", "WEFT_IPMASQ"}) {
    if (!kv.count(key)) return fail(std::string("subnet.env has no ") + key);
  }
  auto network = Ipv4Prefix::parse(kv["WEFT_NETWORK"]);
  if (!network) return fail("subnet.env WEFT_NETWORK: " + network.error());
  env.network = *network;
  auto subnet = parse_gateway_form<Ipv4Addr>("WEFT_SUBNET", kv["WEFT_SUBNET"]);
  if (!subnet) return fail("subnet.env " + subnet.error());
  env.subnet = *subnet;
  if (!env.network.contains(env.subnet)) {
    return fail("subnet.env: WEFT_SUBNET " + env.subnet.str() + " is outside WEFT_NETWORK " + env.network.str());
  }
  // The whole value is the number: "1450x" is an error, not 1450.
  const std::string& mtu = kv["WEFT_MTU"];
  auto [end, ec] = std::from_chars(mtu.data(), mtu.data() + mtu.size(), env.mtu);
  if (ec != std::errc{} || end != mtu.data() + mtu.size() || mtu.empty()) {
    return fail("subnet.env WEFT_MTU=" + mtu + " is not a number");
  }
  if (env.mtu < 68 || env.mtu > 65535) return fail("subnet.env WEFT_MTU=" + kv["WEFT_MTU"] + " is out of range");
  env.ipmasq = kv["WEFT_IPMASQ"] == "true";
  if (kv.count("WEFT_IPV6_NETWORK")) {
    auto n6 = Ipv6Prefix::parse(kv["WEFT_IPV6_NETWORK"]);
    if (!n6) return fail("subnet.env WEFT_IPV6_NETWORK: " + n6.error());
    env.network_v6 = *n6;
  }
  if (kv.count("WEFT_IPV6_SUBNET")) {
    auto s6 = parse_gateway_form<Ipv6Addr>("WEFT_IPV6_SUBNET", kv["WEFT_IPV6_SUBNET"]);
    if (!s6) return fail("subnet.env " + s6.error());
    env.subnet_v6 = *s6;
  }
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
