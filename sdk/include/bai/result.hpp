// Result<T, E>: bai's one way to return a value or an error (GCC 12 has no
// std::expected in C++20). Errors are values; exceptions are for programming errors.
#pragma once

#include <string>
#include <type_traits>
#include <utility>
#include <variant>

namespace bai {

enum class ErrorCode {
  InvalidArgument,  // the input is malformed or out of its domain
  OutOfRange,       // the input is well formed but too large or too small
  NotFound,
  Conflict,
  Internal,
};

const char* errorCodeName(ErrorCode code);

struct Error {
  ErrorCode code = ErrorCode::Internal;
  std::string message;
};

// Wraps an error so that `return Failure{...}` converts into any Result<T, E>.
template <class E>
struct Failure {
  E error;
};
template <class E>
Failure(E) -> Failure<E>;

inline Failure<Error> fail(ErrorCode code, std::string message) {
  return Failure<Error>{Error{code, std::move(message)}};
}

template <class T, class E = Error>
class [[nodiscard]] Result {
 public:
  Result(T value) : state_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  template <class F, class = std::enable_if_t<std::is_constructible_v<E, F&&>>>
  Result(Failure<F> failure) : state_(std::in_place_index<1>, std::move(failure.error)) {}  // NOLINT

  bool ok() const { return state_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & { return std::get<0>(state_); }
  const T& value() const& { return std::get<0>(state_); }
  T&& value() && { return std::get<0>(std::move(state_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const E& error() const { return std::get<1>(state_); }
  E& error() { return std::get<1>(state_); }

 private:
  std::variant<T, E> state_;
};

template <class E>
class [[nodiscard]] Result<void, E> {
 public:
  Result() = default;
  template <class F, class = std::enable_if_t<std::is_constructible_v<E, F&&>>>
  Result(Failure<F> failure) : error_(std::move(failure.error)), ok_(false) {}  // NOLINT

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const E& error() const { return error_; }
  E& error() { return error_; }

 private:
  E error_{};
  bool ok_ = true;
};

}  // namespace bai
