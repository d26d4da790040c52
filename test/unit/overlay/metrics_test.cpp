#include "overlay/metrics.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <optional>
#include <regex>
#include <sstream>

namespace {

struct Promtool {
  int status = -1;
  std::string output;
};

// `promtool check metrics` on `text` (stdin), or nullopt when Debian's prometheus is absent.
std::optional<Promtool> promtool_check(const std::string& text) {
  if (::access("/usr/bin/promtool", X_OK) != 0) return std::nullopt;
  char path[] = "/tmp/weft-metrics-XXXXXX";
  int fd = ::mkstemp(path);
  REQUIRE(fd >= 0);
  REQUIRE(::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()));
  ::close(fd);
  std::string cmd = std::string("/usr/bin/promtool check metrics < ") + path + " 2>&1";
  Promtool r;
  if (FILE* p = ::popen(cmd.c_str(), "r")) {
    char buf[512];
    for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) r.output.append(buf, n);
    int st = ::pclose(p);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  }
  ::unlink(path);
  return r;
}

// A scrape shaped like weftd's: every kind of family the agent renders.
std::string sample_scrape() {
  weft::Exposition e;
  weft::add_build_info(e);
  e.gauge("weft_ready", "1 when ready.", 1);
  e.family("weft_peers", "gauge", "Peers by state.");
  e.sample("weft_peers", {{"state", "programmed"}}, 4999);
  e.sample("weft_peers", {{"state", "skipped"}}, 1);
  e.counter("weft_reconciles_total", "Reconciles.", 12345678901.0);
  e.gauge("weft_last_reconcile_seconds", "Duration of the last reconcile.", 9.0383e-05);
  weft::Histogram h({0.0005, 0.001, 0.01, 0.1, 1, 10});
  for (double v : {0.0001, 0.0004, 0.002, 0.002, 0.5, 3.0, 42.0}) h.observe(v);
  e.histogram("weft_reconcile_duration_seconds", "Reconcile durations.", h);
  e.family("weft_kube_node_skipped", "gauge", "A skipped Node and why.");
  e.sample("weft_kube_node_skipped", {{"node", "evil\"node\\x"}, {"reason", "line1\nline2 \x01 caf\xc3\xa9"}}, 1);
  weft::add_process_metrics(e, weft::process_stats());
  return e.text();
}

}  // namespace

TEST_CASE("numbers are plain decimals, never in exponent notation", "[metrics]") {
  CHECK(weft::metric_number(9.0383e-05) == "0.000090383");
  CHECK(weft::metric_number(0.1) == "0.1");
  CHECK(weft::metric_number(5) == "5");
  CHECK(weft::metric_number(0) == "0");
  CHECK(weft::metric_number(-2.5) == "-2.5");
  CHECK(weft::metric_number(1e-9) == "0.000000001");
  CHECK(weft::metric_number(12345678901234.0) == "12345678901234");
  CHECK(weft::metric_number(1.0 / 0.0) == "+Inf");
  CHECK(weft::metric_number(-1.0 / 0.0) == "-Inf");
  CHECK(weft::metric_number(std::nan("")) == "NaN");
  auto text = sample_scrape();
  CHECK_THAT(text, Catch::Contains("weft_last_reconcile_seconds 0.000090383\n"));
  CHECK_FALSE(std::regex_search(text, std::regex("[0-9]e[-+]?[0-9]")));
}

TEST_CASE("label values are escaped and stay on one line", "[metrics]") {
  CHECK(weft::metric_label_value("a\"b\\c\nd") == "a\\\"b\\\\c\\nd");
  CHECK(weft::metric_label_value("tab\there \xc3\xa9") == "tab?here ??");
  CHECK(weft::metric_label_value(std::string(1000, 'x')).size() == 300);
  auto text = sample_scrape();
  CHECK_THAT(text, Catch::Contains(R"(weft_kube_node_skipped{node="evil\"node\\x",reason="line1\nline2 ? caf??"} 1)"));
}

TEST_CASE("histogram buckets are cumulative and end with +Inf = _count", "[metrics]") {
  weft::Histogram h({10, 0.001, 0.1, 0.01, 1, 0.0005});  // unordered on purpose
  for (double v : {0.0001, 0.0005, 0.0006, 0.002, 0.002, 0.5, 3.0, 42.0}) h.observe(v);
  weft::Exposition e;
  e.histogram("x_seconds", "X.", h);
  std::istringstream lines(e.text());
  std::regex bucket(R"re(x_seconds_bucket\{le="([^"]+)"\} (\S+))re");
  std::vector<std::pair<std::string, double>> buckets;
  double count = -1;
  double sum = -1;
  for (std::string line; std::getline(lines, line);) {
    std::smatch m;
    if (std::regex_match(line, m, bucket)) buckets.emplace_back(m[1], std::stod(m[2]));
    if (line.rfind("x_seconds_count ", 0) == 0) count = std::stod(line.substr(16));
    if (line.rfind("x_seconds_sum ", 0) == 0) sum = std::stod(line.substr(14));
  }
  REQUIRE(buckets.size() == 7);
  CHECK(buckets.front().first == "0.0005");
  CHECK(buckets.front().second == 2);  // le is inclusive: 0.0005 counts
  CHECK(buckets.back().first == "+Inf");
  for (std::size_t i = 1; i < buckets.size(); ++i) {
    CHECK(buckets[i].second >= buckets[i - 1].second);
    if (i + 1 < buckets.size()) CHECK(std::stod(buckets[i].first) > std::stod(buckets[i - 1].first));
  }
  CHECK(buckets.back().second == count);
  CHECK(count == 8);
  CHECK(sum == Approx(45.5052));
}

TEST_CASE("process metrics come from /proc/self", "[metrics]") {
  auto p = weft::process_stats();
  CHECK(p.resident_bytes > 1e5);
  CHECK(p.virtual_bytes >= p.resident_bytes);
  CHECK(p.cpu_seconds >= 0);
  CHECK(p.open_fds >= 3);
  CHECK(p.max_fds >= p.open_fds);
  auto now = static_cast<double>(std::time(nullptr));
  CHECK(p.start_time_seconds > now - 3600);
  CHECK(p.start_time_seconds <= now + 1);
}

TEST_CASE("promtool check metrics finds nothing to lint in the exposition", "[metrics]") {
  auto text = sample_scrape();
  auto r = promtool_check(text);
  if (!r) {
    WARN("SKIPPED: /usr/bin/promtool is absent (apt-get install prometheus); the exposition was not linted");
    return;
  }
  INFO("exposition:\n" << text);
  CHECK(r->output == "");
  CHECK(r->status == 0);
  // ...and promtool does find something in a broken scrape: the check can fail.
  auto bad = promtool_check("# TYPE weft_things counter\nweft_things 1\n");
  REQUIRE(bad);
  CHECK(bad->status != 0);
  CHECK_THAT(bad->output, Catch::Contains("_total"));
}
