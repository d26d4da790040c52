#include "cmd/weft/cni_plugin.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <vector>

#include "core/subnet_env.hpp"

namespace weft::cni {
namespace {

using nlohmann::json;

const std::array<const char*, 4> kSupported = {"0.3.0", "0.3.1", "0.4.0", "1.0.0"};
constexpr const char* kDefaultSubnetFile = "/run/weft/subnet.env";
constexpr const char* kDefaultDataDir = "/var/lib/cni/weft";
// Where flannel's CNI plugin keeps each container's delegate config (its "dataDir").
constexpr const char* kDefaultFlannelDataDir = "/var/lib/cni/flannel";
constexpr std::size_t kMaxStdin = 1 << 20;

// CNI error codes (spec 1.0.0, "Error").
enum Code {
  kIncompatibleVersion = 1,
  kInvalidEnv = 4,
  kDecodeFailure = 6,
  kInvalidConfig = 7,
  kTryLater = 11,
  kInternal = 999
};

Outcome error(const std::string& version, int code, const std::string& msg, const std::string& details = "") {
  json j{{"cniVersion", version.empty() ? "1.0.0" : version}, {"code", code}, {"msg", msg}};
  if (!details.empty()) j["details"] = details;
  // Messages quote untrusted bytes (subnet.env, CNI_*): invalid UTF-8 becomes U+FFFD, never a throw.
  return {j.dump(-1, ' ', false, json::error_handler_t::replace), 1};
}

bool supported(const std::string& v) {
  for (const char* s : kSupported) {
    if (v == s) return true;
  }
  return false;
}

std::string supported_list() {
  std::string out;
  for (const char* s : kSupported) out += (out.empty() ? "" : ", ") + std::string(s);
  return out;
}

// The CNI spec limits container IDs to this alphabet; it also keeps them safe as file names.
bool valid_container_id(const std::string& id) {
  if (id.empty() || id.size() > 256) return false;
  for (char c : id) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-') return false;
  }
  return id[0] != '.' && id[0] != '-';
}

std::string env_or(const Invocation& inv, const std::string& key, const std::string& fallback = "") {
  auto it = inv.env.find(key);
  return it == inv.env.end() ? fallback : it->second;
}

std::string string_key(const json& conf, const char* key, const std::string& fallback) {
  auto it = conf.find(key);
  return it != conf.end() && it->is_string() ? it->get<std::string>() : fallback;
}

// Keys weft reads, with the JSON type each must have: a wrong type is an error, never a default.
std::optional<std::string> wrong_key_type(const json& conf) {
  for (const char* key : {"subnetFile", "dataDir", "ipamDataDir", "flannelDataDir"}) {
    if (auto it = conf.find(key); it != conf.end() && !it->is_string()) {
      return "\"" + std::string(key) + "\" must be a string (a path), not " + it->type_name();
    }
  }
  for (const char* key : {"delegate", "runtimeConfig"}) {
    if (auto it = conf.find(key); it != conf.end() && !it->is_object()) {
      return "\"" + std::string(key) + "\" must be an object, not " + it->type_name();
    }
  }
  return std::nullopt;
}

// The delegate's name, cniVersion and ipam are weft's: the runtime caches results and host-local
// stores addresses under the network's name, and the subnet comes from subnet.env.
std::optional<std::string> forbidden_override(const json& conf) {
  auto it = conf.find("delegate");
  if (it == conf.end()) return std::nullopt;
  for (const char* key : {"name", "cniVersion", "ipam"}) {
    if (it->contains(key)) {
      return "\"delegate." + std::string(key) + "\" is not allowed: weft sets it (" +
             (std::string(key) == "ipam"
                  ? "use \"ipamDataDir\" for host-local's store; the subnet comes from subnet.env"
                  : "the delegate uses the network's own") +
             "); remove it from \"delegate\"";
    }
  }
  return std::nullopt;
}

// A delegate config (from the operator's overrides or a saved file) must name its plugin.
bool has_type(const json& delegate) { return delegate.contains("type") && delegate["type"].is_string(); }

// One family's host-local range and its route to the cluster network. The gateway is explicit:
// the kernel installs the route via the bridge's address, and the bridge plugin's CHECK (<= 1.2)
// compares it exactly. The default route (0.0.0.0/0 or ::/0) is bridge's, from isDefaultGateway.
template <class Addr>
void add_family(json& ipam, const Prefix<Addr>& network, const Prefix<Addr>& subnet) {
  ipam["ranges"].push_back(json::array({{{"subnet", subnet.str()}}}));
  ipam["routes"].push_back({{"dst", network.str()}, {"gw", subnet.first_host().str()}});
}

json delegate_config(const json& conf, const SubnetEnv& env) {
  json d = {{"cniVersion", conf["cniVersion"]},
            {"name", conf["name"]},
            {"type", "bridge"},
            {"bridge", "weft0"},
            {"isGateway", true},
            {"isDefaultGateway", true},
            {"hairpinMode", true},
            {"ipMasq", !env.ipmasq},
            {"mtu", env.mtu}};
  d["ipam"] = {{"type", "host-local"}, {"ranges", json::array()}, {"routes", json::array()}};
  // Each family subnet.env has: IPv4-only, dual stack (IPv4 first, as before) or IPv6-only.
  if (env.network && env.subnet) add_family(d["ipam"], *env.network, *env.subnet);
  if (env.network_v6 && env.subnet_v6) add_family(d["ipam"], *env.network_v6, *env.subnet_v6);
  if (auto dir = string_key(conf, "ipamDataDir", ""); !dir.empty()) d["ipam"]["dataDir"] = dir;
  if (auto it = conf.find("delegate"); it != conf.end() && it->is_object()) {
    for (const auto& [k, v] : it->items()) d[k] = v;  // the operator's overrides win
  }
  // The runtime's capabilities (ips, mac, bandwidth) are for the delegate: bridge and host-local read them.
  if (auto it = conf.find("runtimeConfig"); it != conf.end()) d["runtimeConfig"] = *it;
  return d;
}

std::filesystem::path saved_path(const json& conf, const std::string& container_id) {
  return std::filesystem::path(string_key(conf, "dataDir", kDefaultDataDir)) / container_id;
}

// The state directory is private: delegate configs can carry operator settings.
bool make_private_dir(const std::filesystem::path& dir, std::string& why) {
  std::error_code ec;
  if (!dir.parent_path().empty()) std::filesystem::create_directories(dir.parent_path(), ec);
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    why = "cannot create " + dir.string() + ": " + std::strerror(errno);
    return false;
  }
  return true;
}

bool write_fd(int fd, const std::string& text) {
  std::size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

// Temporary file + fsync + rename + fsync of the directory: a crash between ADD and DEL
// leaves the old file or the new one, never a torn one, and the record survives power loss.
bool save_atomically(const std::filesystem::path& path, const std::string& text, std::string& why) {
  if (!make_private_dir(path.parent_path(), why)) return false;
  auto tmp = path.string() + ".tmp" + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    why = "cannot write " + tmp + ": " + std::strerror(errno);
    return false;
  }
  bool ok = write_fd(fd, text) && ::fsync(fd) == 0;
  int saved_errno = errno;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    why = "cannot write " + path.string() + ": " + std::strerror(ok ? errno : saved_errno);
    ::unlink(tmp.c_str());
    return false;
  }
  int dir_fd = ::open(path.parent_path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
  return true;
}

std::optional<json> load_saved(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  json j = json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  return j;
}

Outcome version_answer(const json& conf) {
  std::string v = string_key(conf, "cniVersion", "1.0.0");
  json j{{"cniVersion", supported(v) ? v : "1.0.0"}, {"supportedVersions", kSupported}};
  return {j.dump(), 0};
}

Outcome do_add(const Invocation& inv, const json& conf, DelegateRunner& runner) {
  const std::string version = conf["cniVersion"];
  const std::string id = env_or(inv, "CNI_CONTAINERID");
  if (auto why = forbidden_override(conf)) return error(version, kInvalidConfig, *why);
  auto env = SubnetEnv::load(string_key(conf, "subnetFile", kDefaultSubnetFile));
  if (!env) return error(version, kTryLater, env.error());
  json delegate = delegate_config(conf, *env);
  if (!has_type(delegate)) return error(version, kInvalidConfig, "\"delegate.type\" must be a plugin name (a string)");
  auto path = saved_path(conf, id);
  std::string why;
  if (!save_atomically(path, delegate.dump(), why)) return error(version, kInternal, why);
  auto out = runner.run(delegate["type"], "ADD", delegate.dump(), inv);
  if (out.exit_code != 0) {
    runner.run(delegate["type"], "DEL", delegate.dump(), inv);  // undo what the delegate half-made
    std::filesystem::remove(path);
  }
  return out;
}

// DEL with the delegate config saved at `path`; the file goes once the delegate succeeded.
std::optional<Outcome> del_saved(const std::filesystem::path& path, const Invocation& inv, DelegateRunner& runner) {
  auto delegate = load_saved(path);
  if (!delegate) return std::nullopt;
  if (!has_type(*delegate)) {
    std::filesystem::remove(path);  // unusable state: nothing can be undone with it
    return Outcome{"", 0};
  }
  auto out = runner.run((*delegate)["type"], "DEL", delegate->dump(), inv);
  if (out.exit_code == 0) std::filesystem::remove(path);
  return out;
}

// A pod that flannel's plugin made before weft replaced it (issue #20) has its record in
// flannel's dataDir, with the same bridge/host-local config: DEL goes through that record, so
// its address is released in host-local and the runtime's DEL succeeds.
Outcome do_del(const Invocation& inv, const json& conf, DelegateRunner& runner) {
  const std::string id = env_or(inv, "CNI_CONTAINERID");
  if (auto out = del_saved(saved_path(conf, id), inv, runner)) return *out;
  const std::filesystem::path flannel = string_key(conf, "flannelDataDir", kDefaultFlannelDataDir);
  if (auto out = del_saved(flannel / id, inv, runner)) return *out;
  return {"", 0};  // nothing of ours for this container: DEL is idempotent
}

Outcome do_check(const Invocation& inv, const json& conf, DelegateRunner& runner) {
  const std::string version = conf["cniVersion"];
  if (version == "0.3.0" || version == "0.3.1") {
    return error(version, kIncompatibleVersion, "CHECK needs cniVersion 0.4.0 or later, the config says " + version);
  }
  auto delegate = load_saved(saved_path(conf, env_or(inv, "CNI_CONTAINERID")));
  if (!delegate || !has_type(*delegate)) {
    return error(version, kInvalidConfig,
                 "no usable weft network state for container " + env_or(inv, "CNI_CONTAINERID") + ": was ADD run?");
  }
  if (auto it = conf.find("prevResult"); it != conf.end()) (*delegate)["prevResult"] = *it;
  return runner.run((*delegate)["type"], "CHECK", delegate->dump(), inv);
}

}  // namespace

namespace {
Outcome handle_checked(const Invocation& inv, DelegateRunner& runner);
}  // namespace

Outcome handle(const Invocation& inv, DelegateRunner& runner) {
  try {
    return handle_checked(inv, runner);
  } catch (const std::exception& e) {  // a JSON value of an unexpected type: an error, never a crash
    return error("", kInvalidConfig, std::string("invalid network config: ") + e.what());
  }
}

namespace {
Outcome handle_checked(const Invocation& inv, DelegateRunner& runner) {
  if (inv.stdin_text.size() > kMaxStdin) return error("", kDecodeFailure, "network config on stdin is over 1 MiB");
  json conf = json::parse(inv.stdin_text, nullptr, false);
  if (conf.is_discarded() || !conf.is_object()) {
    return error("", kDecodeFailure, "network config on stdin is not a JSON object",
                 "the runtime must pass the network configuration (from the conflist) on stdin");
  }
  const std::string command = env_or(inv, "CNI_COMMAND");
  if (command == "VERSION") return version_answer(conf);

  std::string version = string_key(conf, "cniVersion", "");
  if (!supported(version)) {
    return error(
        "", kIncompatibleVersion,
        "incompatible CNI versions: config has cniVersion \"" + version + "\", weft supports " + supported_list());
  }
  if (!conf.contains("name") || !conf["name"].is_string()) {
    return error(version, kInvalidConfig, "network config has no \"name\"");
  }
  if (auto why = wrong_key_type(conf)) return error(version, kInvalidConfig, "network config: " + *why);
  for (const char* key : {"CNI_CONTAINERID", "CNI_IFNAME", "CNI_PATH"}) {
    if (env_or(inv, key).empty()) return error(version, kInvalidEnv, std::string(key) + " is not set");
  }
  if (command != "DEL" && env_or(inv, "CNI_NETNS").empty()) return error(version, kInvalidEnv, "CNI_NETNS is not set");
  if (!valid_container_id(env_or(inv, "CNI_CONTAINERID"))) {
    return error(version, kInvalidEnv,
                 "CNI_CONTAINERID \"" + env_or(inv, "CNI_CONTAINERID").substr(0, 80) +
                     "\" has characters outside [A-Za-z0-9_.-]");
  }
  if (command == "ADD") return do_add(inv, conf, runner);
  if (command == "DEL") return do_del(inv, conf, runner);
  if (command == "CHECK") return do_check(inv, conf, runner);
  return error(version, kInvalidEnv, "CNI_COMMAND \"" + command + "\" is not ADD, DEL, CHECK or VERSION");
}
}  // namespace

namespace {

std::optional<std::string> find_plugin(const std::string& type, const std::string& cni_path) {
  std::size_t start = 0;
  while (start <= cni_path.size()) {
    auto end = cni_path.find(':', start);
    std::string dir = cni_path.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (!dir.empty()) {
      std::string candidate = dir + "/" + type;
      if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    }
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return std::nullopt;
}

// SIGPIPE ignored for the lifetime of the object, the previous action restored after.
class IgnoreSigpipe {
 public:
  IgnoreSigpipe() {
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    ::sigaction(SIGPIPE, &ignore, &saved_);
  }
  ~IgnoreSigpipe() { ::sigaction(SIGPIPE, &saved_, nullptr); }
  IgnoreSigpipe(const IgnoreSigpipe&) = delete;
  IgnoreSigpipe& operator=(const IgnoreSigpipe&) = delete;

 private:
  struct sigaction saved_ {};
};

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("was killed by signal ") + ::strsignal(WTERMSIG(status));
  return "ended with wait status " + std::to_string(status);
}

std::string read_all(int fd) {
  std::string out;
  std::array<char, 4096> buf{};
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf.data(), static_cast<std::size_t>(n));
  }
  return out;
}

}  // namespace

Outcome ExecRunner::run(const std::string& type, const std::string& command, const std::string& config_json,
                        const Invocation& inv) {
  const std::string version = json::parse(config_json, nullptr, false).value("cniVersion", "1.0.0");
  auto binary = find_plugin(type, env_or(inv, "CNI_PATH"));
  if (!binary) {
    return error(version, kInvalidConfig,
                 "delegate plugin \"" + type + "\" not found in CNI_PATH " + env_or(inv, "CNI_PATH") +
                     " (install containernetworking-plugins)");
  }
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : inv.env) env_strings.push_back(k == "CNI_COMMAND" ? k + "=" + command : k + "=" + v);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);

  IgnoreSigpipe ignore_sigpipe;
  // exec_pipe carries the child's errno when execve fails; it closes unread on success (CLOEXEC).
  int in_pipe[2], out_pipe[2], exec_pipe[2];
  if (::pipe2(in_pipe, O_CLOEXEC) != 0 || ::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(exec_pipe, O_CLOEXEC) != 0) {
    return error(version, kInternal, std::string("pipe: ") + std::strerror(errno));
  }
  pid_t pid = ::fork();
  if (pid < 0) {
    int err = errno;
    for (int fd : {in_pipe[0], in_pipe[1], out_pipe[0], out_pipe[1], exec_pipe[0], exec_pipe[1]}) ::close(fd);
    return error(version, kInternal, std::string("fork: ") + std::strerror(err));
  }
  if (pid == 0) {
    ::signal(SIGPIPE, SIG_DFL);  // ignored dispositions survive execve: give the delegate the default
    ::dup2(in_pipe[0], 0);
    ::dup2(out_pipe[1], 1);
    char* argv[] = {binary->data(), nullptr};
    ::execve(binary->c_str(), argv, envp.data());
    int err = errno;
    (void)!::write(exec_pipe[1], &err, sizeof err);
    ::_exit(127);
  }
  ::close(in_pipe[0]);
  ::close(out_pipe[1]);
  ::close(exec_pipe[1]);
  // A delegate that exits without reading its config gives EPIPE here (SIGPIPE is ignored
  // meanwhile); its exit status then tells what happened.
  write_fd(in_pipe[1], config_json);
  ::close(in_pipe[1]);
  Outcome out{read_all(out_pipe[0]), 1};
  ::close(out_pipe[0]);
  int exec_errno = 0;
  bool exec_failed = ::read(exec_pipe[0], &exec_errno, sizeof exec_errno) == sizeof exec_errno;
  ::close(exec_pipe[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (exec_failed) {
    return error(version, kInternal,
                 "cannot execute delegate plugin " + *binary + ": " + std::strerror(exec_errno) +
                     " (reinstall containernetworking-plugins or fix \"delegate.type\")");
  }
  out.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 1;
  if (out.exit_code != 0 && out.stdout_text.empty()) {
    return error(version, kInternal,
                 "delegate plugin " + *binary + " " + command + " " + describe_status(status) +
                     " without a message (see its stderr)");
  }
  return out;
}

}  // namespace weft::cni
