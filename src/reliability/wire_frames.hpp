// The frame-level pieces every fabric protocol codec is made of (FRC/1 in frc.cpp, FRS/1 in
// frs.cpp): big-endian integer frames read and written, refusal codes checked, sequence ranges
// kept inside 64 bits, and a command's opening frames written.
//
// Thread safety: stateless functions.
#pragma once

#include "core/byte_order.hpp"

#include <fabric/error.hpp>
#include <fabric/message.hpp>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string_view>

namespace fabric::detail::wire {

/// Reads integer frame `i` of `m`; false when the frame is not exactly sizeof(T) octets.
template <class T>
bool read(const message& m, std::size_t i, T& out) noexcept {
  const frame& f = m[i];
  if (f.size() != sizeof(T)) return false;
  out = load_be<T>(static_cast<const char*>(f.data()));
  return true;
}

/// Appends `v` as one big-endian frame of sizeof(T) octets.
template <class T>
void push(message& out, T v) {
  char bytes[sizeof(T)];
  store_be(v, bytes);
  out.push_back(std::string_view(bytes, sizeof bytes));
}

/// A builder's check: a value the grammar forbids is a bug in the caller.
/// Throws: fabric::error(invalid_argument) with `what` unless `ok`.
inline void require(bool ok, const char* what) {
  if (!ok) throw fabric::error(errc::invalid_argument, what);
}

/// A refusal code: 1 .. `max_size` octets of [a-z-].
inline bool valid_code(std::string_view code, std::size_t max_size) noexcept {
  if (code.empty() || code.size() > max_size) return false;
  for (const char c : code) {
    if ((c < 'a' || c > 'z') && c != '-') return false;
  }
  return true;
}

/// Whether `count` (>= 1) consecutive sequences from `first` stay within 2^64-1.
inline bool fits(std::uint64_t first, std::size_t count) noexcept {
  return count - 1 <= std::numeric_limits<std::uint64_t>::max() - first;
}

/// Clears `out` and writes [first |] header | command byte; `more` frames are to follow. `first`
/// is a ROUTER's routing id or a PUB's topic, when there is one.
inline void start(message& out, const std::string_view* first, std::string_view header, std::uint8_t command,
                  std::size_t more) {
  out.clear();
  out.reserve((first != nullptr ? 3 : 2) + more);
  if (first != nullptr) out.push_back(*first);
  out.push_back(header);
  push(out, command);
}

}  // namespace fabric::detail::wire
