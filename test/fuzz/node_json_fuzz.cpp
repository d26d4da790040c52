// API responses: every input goes through parse_watch_line, parse_node, parse_node_list and
// parse_status (the SAX reader of subnet/kube/node_json), and parse_node_list again from a
// stream in small chunks. Checked: the promises of each parser
// (names, resourceVersions, only prefixed annotations), the streamed list equal to the text's
// (same items or the same error), agreement with nlohmann's DOM parser on
// whether the text is a JSON object at all, and the peer invariant for every Node that parses,
// as the watch loop would feed it to parse_peer.
#include <cstddef>
#include <cstdint>
#include <istream>
#include <nlohmann/json.hpp>
#include <regex>
#include <streambuf>
#include <string>
#include <string_view>

#include "subnet/kube/node_json.hpp"
#include "test/fuzz/peer_invariant.hpp"

namespace {

constexpr std::string_view kPrefix = "weft.io/";
constexpr std::size_t kMaxDepth = 32;  // node_json's nesting limit

using nlohmann::json;

// True when containers nest deeper than `limit` ({} is depth 1); recursion stops at the limit.
bool deeper_than(const json& j, std::size_t limit) {
  if (!j.is_structured()) return false;
  if (limit == 0) return true;
  for (const auto& v : j) {
    if (deeper_than(v, limit - 1)) return true;
  }
  return false;
}

void check_node(const weft::kube::NodeInfo& n, const std::string& where) {
  for (const auto& [k, v] : n.annotations) {
    FUZZ_CHECK(std::string_view(k).starts_with(kPrefix), where + ": kept annotation " + k + " outside the prefix");
  }
  weft::fuzz::check_peer(n.name, n.annotations);
}

// Hands out `text` a few bytes at a time, as the socket reader refills its buffer.
class Chunks : public std::streambuf {
 public:
  Chunks(std::string_view text, std::size_t chunk) : text_(text), chunk_(chunk) {}

 protected:
  int_type underflow() override {
    if (pos_ >= text_.size()) return traits_type::eof();
    buf_.assign(text_.substr(pos_, chunk_));
    pos_ += buf_.size();
    setg(buf_.data(), buf_.data(), buf_.data() + buf_.size());
    return traits_type::to_int_type(*gptr());
  }

 private:
  std::string_view text_;
  std::size_t chunk_;
  std::size_t pos_ = 0;
  std::string buf_;
};

// An error message without nlohmann's position ("at line 2, column 0", "at byte 7").
// nlohmann's messages differ where the stream's reader started later (it skips leading
// whitespace): the position, and the "last read" token that then lacks the whitespace.
std::string without_position(const std::string& message) {
  static const std::regex position(R"(at (line \d+, column \d+|byte \d+))");
  std::string out = std::regex_replace(message, position, "at ...");
  if (auto at = out.find("last read: "); at != std::string::npos) out.erase(at);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);

  // The reference: nlohmann's DOM parser on the same bytes.
  json dom = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  const bool is_object = !dom.is_discarded() && dom.is_object();
  const bool readable = is_object && !deeper_than(dom, kMaxDepth);

  auto line = weft::kube::parse_watch_line(text, kPrefix);
  if (line) {
    FUZZ_CHECK(is_object, "parse_watch_line accepted what is not a JSON object");
    FUZZ_CHECK(line->event.has_value() != line->error.has_value(), "a watch line is an event or an error");
    if (line->error) {
      FUZZ_CHECK(line->error->code >= 0 && line->error->code <= 999,
                 "status code " + std::to_string(line->error->code));
    } else {
      const auto& ev = *line->event;
      FUZZ_CHECK(!ev.node.resource_version.empty(), "watch event without resourceVersion");
      if (ev.type != weft::kube::WatchEventType::Bookmark) {
        FUZZ_CHECK(!ev.node.name.empty(), "ADDED/MODIFIED/DELETED event without a name");
        check_node(ev.node, "watch");
      }
    }
  } else {
    FUZZ_CHECK(!readable || line.error().rfind("malformed JSON", 0) != 0,
               "parse_watch_line called a readable JSON object malformed: " + line.error());
  }

  auto node = weft::kube::parse_node(text, kPrefix);
  if (node) {
    FUZZ_CHECK(is_object, "parse_node accepted what is not a JSON object");
    FUZZ_CHECK(!node->name.empty(), "parse_node returned a Node without a name");
    check_node(*node, "node");
  } else {
    FUZZ_CHECK(!readable || node.error().rfind("malformed JSON", 0) != 0,
               "parse_node called a readable JSON object malformed: " + node.error());
  }

  auto page = weft::kube::parse_node_list(text, kPrefix);
  if (page) {
    FUZZ_CHECK(is_object, "parse_node_list accepted what is not a JSON object");
    FUZZ_CHECK(!page->list.resource_version.empty(), "a list without resourceVersion");
    for (const auto& n : page->list.items) {
      FUZZ_CHECK(!n.name.empty(), "a list item without a name");
      check_node(n, "list");
    }
  }

  Chunks chunks(text, 1 + size % 7);
  std::istream in(&chunks);
  auto streamed = weft::kube::parse_node_list(in, kPrefix);
  FUZZ_CHECK(streamed.ok() == page.ok(), "the streamed list and the text disagree on whether it parses");
  if (page) {
    FUZZ_CHECK(streamed->list.items == page->list.items, "the streamed list has other items than the text");
  } else {
    // The same message but for where: a stream's reader skips leading whitespace before the
    // parser sees it, so the parser's "line N, column M" may count from a later line.
    FUZZ_CHECK(without_position(streamed.error()) == without_position(page.error()),
               "streamed: " + streamed.error() + "; text: " + page.error());
  }

  if (auto status = weft::kube::parse_status(text)) {
    FUZZ_CHECK(is_object, "parse_status accepted what is not a JSON object");
    FUZZ_CHECK(status->code >= 0 && status->code <= 999, "status code " + std::to_string(status->code));
  }
  return 0;
}
