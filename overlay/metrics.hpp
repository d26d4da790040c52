#pragma once
// Metrics: the Prometheus text exposition (format 0.0.4), written by hand because prometheus-cpp
// is not in Debian. Exposition renders families with HELP and TYPE; Histogram counts
// observations in fixed buckets; process_stats() reads /proc/self for the process_* metrics.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace weft {

// A number as Prometheus reads it: plain decimals (0.000090383, never 9.0383e-05), the
// shortest text that reads back as the same double; NaN, +Inf and -Inf by name.
std::string metric_number(double v);

// A label value: backslash, double quote and newline escaped; other control bytes and
// non-ASCII (from untrusted annotations) replaced by '?'; at most 300 bytes kept.
std::string metric_label_value(std::string_view v);

// Observations of one quantity in cumulative buckets (upper bounds ascending, +Inf implied).
class Histogram {
 public:
  explicit Histogram(std::vector<double> upper_bounds);
  void observe(double v);

  const std::vector<double>& upper_bounds() const { return bounds_; }
  const std::vector<std::uint64_t>& counts() const { return counts_; }  // per bucket, not cumulative; last is +Inf
  double sum() const { return sum_; }
  std::uint64_t count() const { return count_; }

 private:
  std::vector<double> bounds_;
  std::vector<std::uint64_t> counts_;
  double sum_ = 0;
  std::uint64_t count_ = 0;
};

// One scrape's text: families in the order they are added.
class Exposition {
 public:
  using Labels = std::vector<std::pair<std::string, std::string>>;

  // A family of one unlabelled sample.
  void gauge(std::string_view name, std::string_view help, double value);
  void counter(std::string_view name, std::string_view help, double value);
  // A family's HELP and TYPE, then its samples one by one (same name, different labels).
  void family(std::string_view name, std::string_view type, std::string_view help);
  void sample(std::string_view name, const Labels& labels, double value);
  void histogram(std::string_view name, std::string_view help, const Histogram& h);

  const std::string& text() const { return out_; }

 private:
  std::string out_;
};

// What /proc/self says about this process (the client libraries' standard process_* metrics).
struct ProcessStats {
  double resident_bytes = 0;
  double virtual_bytes = 0;
  double cpu_seconds = 0;         // user + system
  double start_time_seconds = 0;  // since the Unix epoch
  double open_fds = 0;
  double max_fds = 0;
};
ProcessStats process_stats();

// weft_build_info{version,compiler} 1 and the process_* families.
void add_build_info(Exposition& e);
void add_process_metrics(Exposition& e, const ProcessStats& p);

}  // namespace weft
