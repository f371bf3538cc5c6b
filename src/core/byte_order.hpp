// Fixed-width integers to and from bytes in a stated byte order: the one place fabric writes a
// wire or disk integer (journal keys and records, request ids, sequence frames).
//
// Big-endian keys sort in numeric order under a byte-wise comparison (LMDB's default), which is
// why journal keys and id frames use it; little-endian is used inside records, where no one sorts.
// Each function takes any byte-sized element type (char, unsigned char, std::byte) and compiles to
// a load or store plus at most one byte swap.
//
// Thread safety: free functions, reentrant.
#pragma once

#include <bit>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>

namespace fabric::detail {

template <typename B>
concept byte_like = sizeof(B) == 1 && (std::same_as<std::remove_cv_t<B>, char> ||
                                       std::same_as<std::remove_cv_t<B>, unsigned char> ||
                                       std::same_as<std::remove_cv_t<B>, std::byte>);

template <std::unsigned_integral T>
constexpr T byte_swap(T v) noexcept {
  if constexpr (sizeof(T) == 8) return __builtin_bswap64(v);
  else if constexpr (sizeof(T) == 4) return __builtin_bswap32(v);
  else if constexpr (sizeof(T) == 2) return __builtin_bswap16(v);
  else return v;
}

template <std::unsigned_integral T>
constexpr T to_big(T v) noexcept {
  if constexpr (std::endian::native == std::endian::little) return byte_swap(v);
  else return v;
}

template <std::unsigned_integral T>
constexpr T to_little(T v) noexcept {
  if constexpr (std::endian::native == std::endian::big) return byte_swap(v);
  else return v;
}

/// Writes `v` to `out[0, sizeof v)` most significant byte first.
template <std::unsigned_integral T, byte_like B>
void store_be(T v, B* out) noexcept {
  const T wire = to_big(v);
  std::memcpy(out, &wire, sizeof wire);
}

/// Reads a T written by store_be from `in[0, sizeof(T))`.
template <std::unsigned_integral T, byte_like B>
T load_be(const B* in) noexcept {
  T wire;
  std::memcpy(&wire, in, sizeof wire);
  return to_big(wire);
}

/// Writes `v` to `out[0, sizeof v)` least significant byte first.
template <std::unsigned_integral T, byte_like B>
void store_le(T v, B* out) noexcept {
  const T wire = to_little(v);
  std::memcpy(out, &wire, sizeof wire);
}

/// Reads a T written by store_le from `in[0, sizeof(T))`.
template <std::unsigned_integral T, byte_like B>
T load_le(const B* in) noexcept {
  T wire;
  std::memcpy(&wire, in, sizeof wire);
  return to_little(wire);
}

/// Appends `v` to `out` most significant byte first.
template <std::unsigned_integral T>
void append_be(std::string& out, T v) {
  char bytes[sizeof(T)];
  store_be(v, bytes);
  out.append(bytes, sizeof bytes);
}

/// Appends `v` to `out` least significant byte first.
template <std::unsigned_integral T>
void append_le(std::string& out, T v) {
  char bytes[sizeof(T)];
  store_le(v, bytes);
  out.append(bytes, sizeof bytes);
}

}  // namespace fabric::detail
