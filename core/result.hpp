#pragma once
// Result<T, E>: a value or an error. The one expected-type of weft: E defaults to Error (a
// message that says what, where and how to fix); the kube client uses E = kube::ApiError, which
// also carries what the retry logic needs. Parsers and I/O at module edges return it instead of
// throwing.

#include <string>
#include <type_traits>
#include <utility>
#include <variant>

namespace weft {

struct Error {
  std::string message;
};

inline Error fail(std::string message) { return Error{std::move(message)}; }

template <class T, class E = Error>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Result(E error) : v_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  const T& value() const& { return std::get<0>(v_); }
  T& value() & { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  const T& operator*() const& { return value(); }
  T& operator*() & { return value(); }
  const T* operator->() const { return &value(); }
  T* operator->() { return &value(); }

  // The message for Error (what callers print), the whole error for any other E.
  decltype(auto) error() const {
    if constexpr (std::is_same_v<E, Error>) {
      return (std::get<1>(v_).message);
    } else {
      return (std::get<1>(v_));
    }
  }
  // The error alone, to pass up as another Result type.
  E take_error() const { return std::get<1>(v_); }

 private:
  std::variant<T, E> v_;
};

// Result of an operation that yields no value.
using Status = Result<std::monostate>;
inline Status ok_status() { return std::monostate{}; }

}  // namespace weft
