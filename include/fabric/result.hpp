// result<T>: a value or an error_code, for outcomes that are not exceptional (timeouts,
// back-pressure, malformed input). Like std::expected, which C++20 lacks.
//
// Thread safety: a result is a plain value; distinct objects may be used from distinct threads.
#pragma once

#include <fabric/error.hpp>

#include <cassert>
#include <memory>
#include <system_error>
#include <type_traits>
#include <utility>
#include <variant>

namespace fabric {

/// Holds either a T or a non-zero std::error_code.
template <class T>
class [[nodiscard]] result {
 public:
  static_assert(!std::is_reference_v<T>, "result<T&> is not supported");

  /// A successful result holding `value`.
  result(T value) : state_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit on purpose
  /// A failed result; `ec` must be non-zero.
  result(std::error_code ec) : state_(std::in_place_index<1>, ec) { assert(ec); }  // NOLINT
  result(errc e) : result(make_error_code(e)) {}  // NOLINT

  bool has_value() const noexcept { return state_.index() == 0; }
  explicit operator bool() const noexcept { return has_value(); }

  /// The value. Throws: fabric::error with the held error_code when there is none.
  T& value() & { check(); return std::get<0>(state_); }
  const T& value() const& { check(); return std::get<0>(state_); }
  T&& value() && { check(); return std::get<0>(std::move(state_)); }

  // std::get rather than *get_if: with NDEBUG, GCC's -Wnull-dereference flags every use of a
  // dereferenced get_if in user code; std::get has no null path (misuse terminates, noexcept).
  T& operator*() & noexcept { assert(has_value()); return std::get<0>(state_); }
  const T& operator*() const& noexcept { assert(has_value()); return std::get<0>(state_); }
  T&& operator*() && noexcept { assert(has_value()); return std::get<0>(std::move(state_)); }
  T* operator->() noexcept { assert(has_value()); return std::addressof(std::get<0>(state_)); }
  const T* operator->() const noexcept {
    assert(has_value());
    return std::addressof(std::get<0>(state_));
  }

  /// The error, or an empty error_code when the result holds a value.
  std::error_code error() const noexcept {
    // get_if, not has_value() then deref: GCC's -Wnull-dereference cannot see they agree.
    if (const auto* ec = std::get_if<1>(&state_)) return *ec;
    return {};
  }

  /// True when this failed with `e`.
  bool is(errc e) const noexcept { return !has_value() && error() == make_error_code(e); }

 private:
  void check() const {
    if (const auto* ec = std::get_if<1>(&state_)) throw fabric::error(*ec);
  }
  std::variant<T, std::error_code> state_;
};

/// The void specialisation: success or an error_code.
///
/// It keeps the code's parts rather than a std::error_code, whose default constructor calls
/// std::system_category() out of line: success, the hot path's usual answer, costs nothing.
template <>
class [[nodiscard]] result<void> {
 public:
  result() noexcept = default;
  result(std::error_code ec) noexcept  // NOLINT
      : value_(ec.value()), category_(ec ? &ec.category() : nullptr) {}
  result(errc e) noexcept : result(make_error_code(e)) {}  // NOLINT

  bool has_value() const noexcept { return category_ == nullptr; }
  explicit operator bool() const noexcept { return has_value(); }
  /// Throws: fabric::error when this holds an error.
  void value() const {
    if (category_ != nullptr) throw fabric::error(error());
  }
  std::error_code error() const noexcept {
    if (category_ == nullptr) return {};
    return {value_, *category_};
  }
  bool is(errc e) const noexcept { return error() == make_error_code(e); }

 private:
  int value_ = 0;
  const std::error_category* category_ = nullptr;
};

}  // namespace fabric
