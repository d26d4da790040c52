#pragma once
// Lenient readers of weftd's /status JSON fields: a missing or mistyped field reads as empty,
// zero or false (weftd's of another version may lack some).

#include <nlohmann/json.hpp>
#include <string>

namespace weft::ctl {

inline std::string text(const nlohmann::json& o, const char* key) {
  auto it = o.find(key);
  return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
}

template <class T>
T number(const nlohmann::json& o, const char* key, T otherwise = 0) {
  auto it = o.find(key);
  return it != o.end() && it->is_number() ? it->get<T>() : otherwise;
}

inline bool flag(const nlohmann::json& o, const char* key) {
  auto it = o.find(key);
  return it != o.end() && it->is_boolean() && it->get<bool>();
}

}  // namespace weft::ctl
