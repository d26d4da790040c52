#include "subnet/kube/yaml_lite.hpp"

#include <string>
#include <vector>

namespace weft::kube {
namespace {

using nlohmann::json;

struct Line {
  std::size_t indent;
  std::string text;  // without indentation, comment and trailing blanks
  int number;
};

constexpr std::size_t kMaxDepth = 64;

std::string at_line(int n) { return "line " + std::to_string(n) + ": "; }

// Removes a comment: '#' at the start or after a blank, outside quotes.
std::string strip_comment(const std::string& s) {
  char quote = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (quote) {
      if (c == quote) quote = 0;
      continue;
    }
    if ((c == '"' || c == '\'') && (i == 0 || s[i - 1] == ' ' || s[i - 1] == '-' || s[i - 1] == ':')) quote = c;
    if (c == '#' && (i == 0 || s[i - 1] == ' ' || s[i - 1] == '\t')) return s.substr(0, i);
  }
  return s;
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.pop_back();
  std::size_t b = 0;
  while (b < s.size() && (s[b] == ' ' || s[b] == '\t')) ++b;
  return s.substr(b);
}

Result<std::vector<Line>> split_lines(std::string_view text) {
  std::vector<Line> out;
  int number = 0;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string raw(text.substr(pos, end - pos));
    pos = end + 1;
    ++number;
    std::size_t indent = 0;
    while (indent < raw.size() && raw[indent] == ' ') ++indent;
    if (indent < raw.size() && raw[indent] == '\t')
      return fail(at_line(number) + "tabs are not allowed for indentation");
    std::string body = trim(strip_comment(raw.substr(indent)));
    if (body.empty() || body == "---" || body.starts_with("%")) continue;
    if (body == "...") break;
    out.push_back({indent, body, number});
  }
  return out;
}

Result<json> scalar(const std::string& s, int number) {
  if (s.empty() || s == "~" || s == "null") return json(nullptr);
  char c = s.front();
  if (c == '{' || c == '[') {
    auto j = json::parse(s, nullptr, false);
    if (j.is_discarded()) return fail(at_line(number) + "only JSON-style flow collections are supported: " + s);
    return j;
  }
  if (c == '&' || c == '*' || c == '!' || c == '|' || c == '>') {
    return fail(at_line(number) + "anchors, aliases, tags and block scalars are not supported");
  }
  if (c == '\'') {
    if (s.size() < 2 || s.back() != '\'') return fail(at_line(number) + "unterminated single-quoted string");
    std::string out;
    for (std::size_t i = 1; i + 1 < s.size(); ++i) {
      out += s[i];
      if (s[i] == '\'' && i + 2 < s.size() && s[i + 1] == '\'') ++i;
    }
    return json(out);
  }
  if (c == '"') {
    auto j = json::parse(s, nullptr, false);  // YAML double quotes escape like JSON for kubeconfigs
    if (j.is_discarded() || !j.is_string()) return fail(at_line(number) + "bad double-quoted string");
    return j;
  }
  return json(s);
}

// Position of the ':' that ends a mapping key, or npos.
std::size_t key_end(const std::string& s) {
  std::size_t i = 0;
  if (!s.empty() && (s[0] == '"' || s[0] == '\'')) {
    i = s.find(s[0], 1);
    if (i == std::string::npos) return i;
  }
  for (; i < s.size(); ++i) {
    if (s[i] == ':' && (i + 1 == s.size() || s[i + 1] == ' ')) return i;
  }
  return std::string::npos;
}

bool is_item(const std::string& s) { return s == "-" || s.starts_with("- "); }

class Parser {
 public:
  explicit Parser(std::vector<Line> lines) : lines_(std::move(lines)) {}

  Result<json> document() {
    if (lines_.empty()) return json::object();
    auto j = block(lines_[0].indent, 0);
    if (!j) return j;
    if (i_ < lines_.size()) return fail(at_line(lines_[i_].number) + "unexpected indentation");
    return j;
  }

 private:
  Result<json> block(std::size_t indent, std::size_t depth) {
    if (depth > kMaxDepth) return fail(at_line(lines_[i_].number) + "nested too deeply");
    if (is_item(lines_[i_].text)) return sequence(indent, depth);
    if (key_end(lines_[i_].text) == std::string::npos) {
      auto j = scalar(lines_[i_].text, lines_[i_].number);
      ++i_;
      return j;
    }
    return mapping(indent, depth);
  }

  // The value after "key:" with nothing on the line: a nested block, a sequence at the key's
  // own indentation (as kubectl writes "clusters:\n- cluster:"), or null.
  Result<json> nested(std::size_t indent, std::size_t depth) {
    if (i_ >= lines_.size()) return json(nullptr);
    const Line& next = lines_[i_];
    if (next.indent > indent || (next.indent == indent && is_item(next.text))) return block(next.indent, depth + 1);
    return json(nullptr);
  }

  Result<json> mapping(std::size_t indent, std::size_t depth) {
    json obj = json::object();
    while (i_ < lines_.size() && lines_[i_].indent == indent && !is_item(lines_[i_].text)) {
      const Line line = lines_[i_];
      std::size_t colon = key_end(line.text);
      if (colon == std::string::npos) return fail(at_line(line.number) + "expected \"key: value\"");
      auto key = scalar(trim(line.text.substr(0, colon)), line.number);
      if (!key) return key;
      if (!key->is_string()) return fail(at_line(line.number) + "a key must be a string");
      std::string rest = trim(line.text.substr(colon + 1));
      ++i_;
      auto value = rest.empty() ? nested(indent, depth) : scalar(rest, line.number);
      if (!value) return value;
      obj[key->get<std::string>()] = std::move(*value);
    }
    if (i_ < lines_.size() && lines_[i_].indent > indent) {
      return fail(at_line(lines_[i_].number) + "unexpected indentation");
    }
    return obj;
  }

  Result<json> sequence(std::size_t indent, std::size_t depth) {
    json arr = json::array();
    while (i_ < lines_.size() && lines_[i_].indent == indent && is_item(lines_[i_].text)) {
      Line& line = lines_[i_];
      std::string rest = line.text.size() > 1 ? line.text.substr(2) : "";
      std::size_t lead = 0;
      while (lead < rest.size() && rest[lead] == ' ') ++lead;
      if (lead == rest.size()) {
        ++i_;
        auto value = nested(indent, depth);
        if (!value) return value;
        arr.push_back(std::move(*value));
        continue;
      }
      // "- key: v" starts a mapping whose keys line up with "key": reparse the line in place.
      line.indent = indent + 2 + lead;
      line.text = rest.substr(lead);
      auto value = block(line.indent, depth + 1);
      if (!value) return value;
      arr.push_back(std::move(*value));
    }
    return arr;
  }

  std::vector<Line> lines_;
  std::size_t i_ = 0;
};

}  // namespace

Result<json> parse_yaml_lite(std::string_view text) {
  std::size_t first = text.find_first_not_of(" \t\r\n");
  if (first != std::string_view::npos && text[first] == '{') {
    auto j = json::parse(text, nullptr, false);
    if (j.is_discarded()) return fail("not valid JSON");
    return j;
  }
  auto lines = split_lines(text);
  if (!lines) return lines.take_error();
  return Parser(std::move(*lines)).document();
}

}  // namespace weft::kube
