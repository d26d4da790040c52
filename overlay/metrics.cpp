#include "overlay/metrics.hpp"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sstream>

#ifndef WEFT_VERSION
#define WEFT_VERSION "unknown"
#endif
#if defined(__clang__)
#define WEFT_COMPILER "clang " __clang_version__
#elif defined(__GNUC__)
#define WEFT_COMPILER "gcc " __VERSION__
#else
#define WEFT_COMPILER "unknown"
#endif

namespace weft {

std::string metric_number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  std::array<char, 400> buf{};  // fixed notation of the largest double is 309 digits
  auto [end, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), v, std::chars_format::fixed);
  if (ec != std::errc()) return "NaN";
  return {buf.data(), end};
}

std::string metric_label_value(std::string_view v) {
  std::string out;
  for (char c : v.substr(0, 300)) {
    auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += (u < 0x20 || u >= 0x7f) ? '?' : c;
    }
  }
  return out;
}

namespace {

// HELP text: backslash and newline escaped.
std::string help_text(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

}  // namespace

Histogram::Histogram(std::vector<double> upper_bounds) : bounds_(std::move(upper_bounds)) {
  std::sort(bounds_.begin(), bounds_.end());
  bounds_.erase(std::unique(bounds_.begin(), bounds_.end()), bounds_.end());
  counts_.assign(bounds_.size() + 1, 0);
}

void Histogram::observe(double v) {
  auto i = std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin();  // first bound >= v
  ++counts_[static_cast<std::size_t>(i)];
  sum_ += v;
  ++count_;
}

void Exposition::family(std::string_view name, std::string_view type, std::string_view help) {
  out_.append("# HELP ").append(name).append(" ").append(help_text(help)).append("\n");
  out_.append("# TYPE ").append(name).append(" ").append(type).append("\n");
}

void Exposition::sample(std::string_view name, const Labels& labels, double value) {
  out_.append(name);
  if (!labels.empty()) {
    out_ += '{';
    for (std::size_t i = 0; i < labels.size(); ++i) {
      if (i) out_ += ',';
      out_.append(labels[i].first).append("=\"").append(metric_label_value(labels[i].second)).append("\"");
    }
    out_ += '}';
  }
  out_.append(" ").append(metric_number(value)).append("\n");
}

void Exposition::gauge(std::string_view name, std::string_view help, double value) {
  family(name, "gauge", help);
  sample(name, {}, value);
}

void Exposition::counter(std::string_view name, std::string_view help, double value) {
  family(name, "counter", help);
  sample(name, {}, value);
}

void Exposition::histogram(std::string_view name, std::string_view help, const Histogram& h) {
  family(name, "histogram", help);
  std::string bucket = std::string(name) + "_bucket";
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < h.upper_bounds().size(); ++i) {
    cumulative += h.counts()[i];
    sample(bucket, {{"le", metric_number(h.upper_bounds()[i])}}, static_cast<double>(cumulative));
  }
  sample(bucket, {{"le", "+Inf"}}, static_cast<double>(h.count()));
  sample(std::string(name) + "_sum", {}, h.sum());
  sample(std::string(name) + "_count", {}, static_cast<double>(h.count()));
}

ProcessStats process_stats() {
  ProcessStats p;
  const auto ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  const auto page = static_cast<double>(::sysconf(_SC_PAGESIZE));
  std::ifstream stat_file("/proc/self/stat");
  std::string stat((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
  auto paren = stat.rfind(')');  // the command name may hold spaces and parentheses
  if (paren != std::string::npos) {
    std::istringstream fields(stat.substr(paren + 2));
    std::vector<std::string> f{std::istream_iterator<std::string>(fields), std::istream_iterator<std::string>()};
    auto field = [&f](std::size_t n) {
      return n - 3 < f.size() ? std::strtod(f[n - 3].c_str(), nullptr) : 0.0;
    };                                                // proc(5) numbering
    p.cpu_seconds = (field(14) + field(15)) / ticks;  // utime + stime
    p.virtual_bytes = field(23);
    p.resident_bytes = field(24) * page;
    std::ifstream boot("/proc/stat");
    for (std::string key; boot >> key;) {
      if (key == "btime") {
        double btime = 0;
        boot >> btime;
        p.start_time_seconds = btime + field(22) / ticks;
        break;
      }
    }
  }
  if (DIR* d = ::opendir("/proc/self/fd")) {
    int n = 0;
    while (const dirent* e = ::readdir(d)) n += e->d_name[0] != '.';
    ::closedir(d);
    p.open_fds = n - 1;  // not the descriptor that reads the directory
  }
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) == 0) p.max_fds = static_cast<double>(lim.rlim_cur);
  return p;
}

void add_build_info(Exposition& e) {
  e.family("weft_build_info", "gauge", "Always 1; the labels say which weft build runs.");
  e.sample("weft_build_info", {{"version", WEFT_VERSION}, {"compiler", WEFT_COMPILER}}, 1);
}

void add_process_metrics(Exposition& e, const ProcessStats& p) {
  e.counter("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", p.cpu_seconds);
  e.gauge("process_resident_memory_bytes", "Resident memory size in bytes.", p.resident_bytes);
  e.gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", p.virtual_bytes);
  e.gauge("process_open_fds", "Number of open file descriptors.", p.open_fds);
  e.gauge("process_max_fds", "Maximum number of open file descriptors.", p.max_fds);
  e.gauge("process_start_time_seconds", "Start time of the process since unix epoch in seconds.", p.start_time_seconds);
}

}  // namespace weft
