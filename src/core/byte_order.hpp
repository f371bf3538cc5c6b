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

// `v` in byte order `order`, from the native order or back to it (the same swap either way).
template <std::endian order, std::unsigned_integral T>
constexpr T to_order(T v) noexcept {
  if constexpr (order == std::endian::native) return v;
  else return byte_swap(v);
}

template <std::endian order, std::unsigned_integral T, byte_like B>
void store_ordered(T v, B* out) noexcept {
  const T wire = to_order<order>(v);
  std::memcpy(out, &wire, sizeof wire);
}

template <std::endian order, std::unsigned_integral T, byte_like B>
T load_ordered(const B* in) noexcept {
  T wire;
  std::memcpy(&wire, in, sizeof wire);
  return to_order<order>(wire);
}

/// Writes `v` to `out[0, sizeof v)` most significant byte first.
template <std::unsigned_integral T, byte_like B>
void store_be(T v, B* out) noexcept { store_ordered<std::endian::big>(v, out); }

/// Reads a T written by store_be from `in[0, sizeof(T))`.
template <std::unsigned_integral T, byte_like B>
T load_be(const B* in) noexcept { return load_ordered<std::endian::big, T>(in); }

/// Writes `v` to `out[0, sizeof v)` least significant byte first.
template <std::unsigned_integral T, byte_like B>
void store_le(T v, B* out) noexcept { store_ordered<std::endian::little>(v, out); }

/// Reads a T written by store_le from `in[0, sizeof(T))`.
template <std::unsigned_integral T, byte_like B>
T load_le(const B* in) noexcept { return load_ordered<std::endian::little, T>(in); }

template <std::endian order, std::unsigned_integral T>
void append_ordered(std::string& out, T v) {
  char bytes[sizeof(T)];
  store_ordered<order>(v, bytes);
  out.append(bytes, sizeof bytes);
}

/// Appends `v` to `out` most significant byte first.
template <std::unsigned_integral T>
void append_be(std::string& out, T v) { append_ordered<std::endian::big>(out, v); }

/// Appends `v` to `out` least significant byte first.
template <std::unsigned_integral T>
void append_le(std::string& out, T v) { append_ordered<std::endian::little>(out, v); }

}  // namespace fabric::detail
