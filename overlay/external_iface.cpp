#include "overlay/external_iface.hpp"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>

namespace weft {
namespace {

// VirtualBox gives every VM's NAT interface this address; peers can never reach it.
const Ipv4Addr kVirtualBoxNat = Ipv4Addr::parse("10.0.2.15").value();

std::string known_interfaces(const HostInterfaces& host) {
  std::string out;
  for (const auto& a : host.addrs) {
    if (a.loopback) continue;
    if (!out.empty()) out += ", ";
    out += a.name + " (" + a.addr.str() + ")";
  }
  return out.empty() ? "none with an IPv4 address" : out;
}

std::optional<InterfaceAddr> by_name_or_ip(const HostInterfaces& host, const std::string& wanted) {
  auto ip = Ipv4Addr::parse(wanted);
  for (const auto& a : host.addrs) {
    if (ip ? a.addr == *ip : a.name == wanted) return a;
  }
  return std::nullopt;
}

Result<std::optional<InterfaceAddr>> by_regex(const HostInterfaces& host, const std::string& pattern) {
  std::regex re;
  try {
    re = std::regex(pattern, std::regex::extended);
  } catch (const std::regex_error& e) {
    return fail("--iface-regex \"" + pattern + "\" is not a valid regular expression: " + e.what());
  }
  for (const auto& a : host.addrs) {
    if (!a.loopback && std::regex_search(a.addr.str(), re)) return std::optional{a};
  }
  for (const auto& a : host.addrs) {
    if (!a.loopback && std::regex_search(a.name, re)) return std::optional{a};
  }
  return std::optional<InterfaceAddr>{};
}

Result<InterfaceAddr> pick(const HostInterfaces& host, const IfaceChoice& choice) {
  for (const auto& wanted : choice.iface) {
    if (auto a = by_name_or_ip(host, wanted)) return *a;
  }
  if (!choice.iface.empty() && choice.iface_regex.empty()) {
    std::string asked;
    for (const auto& w : choice.iface) asked += (asked.empty() ? "" : ", ") + w;
    return fail("no interface matches --iface " + asked + "; interfaces: " + known_interfaces(host));
  }
  for (const auto& pattern : choice.iface_regex) {
    auto a = by_regex(host, pattern);
    if (!a) return a.take_error();
    if (*a) return **a;
  }
  if (!choice.iface_regex.empty()) {
    return fail("no interface matches --iface/--iface-regex; interfaces: " + known_interfaces(host));
  }
  if (!choice.can_reach.empty()) {
    if (!host.can_reach_source) return fail("no route to --iface-can-reach " + choice.can_reach);
    if (auto a = by_name_or_ip(host, host.can_reach_source->str())) return *a;
    return fail("the route to " + choice.can_reach + " uses source " + host.can_reach_source->str() +
                ", which no interface holds");
  }
  if (!host.default_route_iface) {
    return fail("no default route to choose the interface from: set --iface (interfaces: " + known_interfaces(host) +
                ")");
  }
  if (auto a = by_name_or_ip(host, *host.default_route_iface)) return *a;
  return fail("the default route's interface " + *host.default_route_iface + " has no IPv4 address: set --iface");
}

}  // namespace

Result<ExternalInterface> choose_interface(const HostInterfaces& host, const IfaceChoice& choice) {
  auto chosen = pick(host, choice);
  if (!chosen) return chosen.take_error();
  ExternalInterface ext;
  ext.name = chosen->name;
  ext.index = chosen->index;
  ext.iface_addr = chosen->addr;
  ext.public_ip = chosen->addr;
  ext.mtu = chosen->mtu;
  if (!choice.public_ip.empty()) {
    auto ip = Ipv4Addr::parse(choice.public_ip);
    if (!ip) return fail("--public-ip: " + ip.error());
    ext.public_ip = *ip;
  }
  if (!chosen->up) ext.warnings.push_back("interface " + ext.name + " is down");
  if (ext.public_ip == kVirtualBoxNat) {
    ext.warnings.push_back("interface " + ext.name + " has 10.0.2.15, the address of a VirtualBox NAT interface: "
                           "other nodes cannot reach it. Set --iface to the private network interface (e.g. "
                           "--iface=eth1); interfaces: " + known_interfaces(host));
  }
  return ext;
}

namespace {

int interface_mtu(int sock, const std::string& name) {
  ifreq req{};
  std::strncpy(req.ifr_name, name.c_str(), IFNAMSIZ - 1);
  if (::ioctl(sock, SIOCGIFMTU, &req) != 0) return 1500;
  return req.ifr_mtu;
}

int prefix_len_of(const sockaddr* netmask) {
  if (!netmask || netmask->sa_family != AF_INET) return 32;
  sockaddr_in mask{};
  std::memcpy(&mask, netmask, sizeof mask);
  return __builtin_popcount(ntohl(mask.sin_addr.s_addr));
}

std::vector<InterfaceAddr> list_interfaces() {
  std::vector<InterfaceAddr> out;
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return out;
  int sock = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  for (ifaddrs* i = list; i; i = i->ifa_next) {
    if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET) continue;
    sockaddr_in sin{};
    std::memcpy(&sin, i->ifa_addr, sizeof sin);
    InterfaceAddr a;
    a.name = i->ifa_name;
    a.index = static_cast<int>(::if_nametoindex(i->ifa_name));
    a.addr = Ipv4Addr::from_network_order(sin.sin_addr.s_addr);
    a.prefix_len = prefix_len_of(i->ifa_netmask);
    a.up = (i->ifa_flags & IFF_UP) != 0;
    a.loopback = (i->ifa_flags & IFF_LOOPBACK) != 0;
    a.mtu = sock >= 0 ? interface_mtu(sock, a.name) : 1500;
    out.push_back(a);
  }
  if (sock >= 0) ::close(sock);
  ::freeifaddrs(list);
  return out;
}

// The interface of the first IPv4 default route in the main table.
std::optional<std::string> default_route_interface() {
  std::ifstream in("/proc/net/route");
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string iface, dest, gateway, flags, refcnt, use, metric, mask;
    if (f >> iface >> dest >> gateway >> flags >> refcnt >> use >> metric >> mask && dest == "00000000" &&
        mask == "00000000") {
      return iface;
    }
  }
  return std::nullopt;
}

// The source address the kernel would use towards `dest`; connect() on UDP sends nothing.
std::optional<Ipv4Addr> source_address_for(Ipv4Addr dest) {
  int sock = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sock < 0) return std::nullopt;
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(9);
  to.sin_addr.s_addr = dest.to_network_order();
  std::optional<Ipv4Addr> out;
  sockaddr_in local{};
  socklen_t len = sizeof local;
  if (::connect(sock, reinterpret_cast<sockaddr*>(&to), sizeof to) == 0 &&
      ::getsockname(sock, reinterpret_cast<sockaddr*>(&local), &len) == 0) {
    out = Ipv4Addr::from_network_order(local.sin_addr.s_addr);
  }
  ::close(sock);
  return out;
}

}  // namespace

Result<ExternalInterface> find_external_interface(const IfaceChoice& choice) {
  HostInterfaces host;
  host.addrs = list_interfaces();
  host.default_route_iface = default_route_interface();
  if (!choice.can_reach.empty()) {
    auto dest = Ipv4Addr::parse(choice.can_reach);
    if (!dest) return fail("--iface-can-reach: " + dest.error());
    host.can_reach_source = source_address_for(*dest);
  }
  return choose_interface(host, choice);
}

}  // namespace weft
