// CRC-32C (Castagnoli polynomial 0x1EDC6F41, reflected 0x82F63B78), as iSCSI, ext4 and LevelDB use:
// the SSE4.2 instruction when the CPU has it, slicing-by-8 tables otherwise. Header-only, so the
// journal's records and the raw-LMDB baseline in fabric-perf checksum with the same code.
#pragma once

#include "byte_order.hpp"  // beside this file: fabric_support re-exports this header too

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define FABRIC_CRC32C_SSE42 1
#include <nmmintrin.h>
#endif

namespace fabric::detail {

namespace crc32c_impl {

inline constexpr std::uint32_t poly_reflected = 0x82F63B78U;

// tables[0] is the classic byte-at-a-time table; tables[k][b] is the CRC of byte b followed by k
// zero bytes, which lets the software loop fold eight input bytes per step with independent
// lookups instead of a chain of eight dependent ones.
using tables_type = std::array<std::array<std::uint32_t, 256>, 8>;

constexpr tables_type make_tables() noexcept {
  tables_type t{};
  for (std::uint32_t b = 0; b < 256; ++b) {
    std::uint32_t c = b;
    for (int bit = 0; bit < 8; ++bit) c = (c & 1U) != 0 ? (c >> 1) ^ poly_reflected : c >> 1;
    t[0][b] = c;
  }
  for (std::size_t k = 1; k < t.size(); ++k) {
    for (std::size_t b = 0; b < 256; ++b) {
      const std::uint32_t prev = t[k - 1][b];
      t[k][b] = (prev >> 8) ^ t[0][prev & 0xFFU];
    }
  }
  return t;
}

inline constexpr tables_type tables = make_tables();
static_assert(tables[0][0x80] == poly_reflected, "tables use the reflected polynomial");

// Both paths work on the raw (pre-inverted) register so that they share the ~0 conventions.
inline std::uint32_t software(std::uint32_t c, const unsigned char* p, std::size_t n) noexcept {
  auto byte_step = [](std::uint32_t r, unsigned char b) noexcept {
    return (r >> 8) ^ tables[0][(r ^ b) & 0xFFU];
  };
  for (; n > 0 && (reinterpret_cast<std::uintptr_t>(p) & 7U) != 0; --n) c = byte_step(c, *p++);
  for (; n >= 8; n -= 8, p += 8) {
    const std::uint32_t lo = c ^ load_le<std::uint32_t>(p);
    const std::uint32_t hi = load_le<std::uint32_t>(p + 4);
    c = tables[7][lo & 0xFFU] ^ tables[6][(lo >> 8) & 0xFFU] ^ tables[5][(lo >> 16) & 0xFFU] ^
        tables[4][lo >> 24] ^ tables[3][hi & 0xFFU] ^ tables[2][(hi >> 8) & 0xFFU] ^
        tables[1][(hi >> 16) & 0xFFU] ^ tables[0][hi >> 24];
  }
  for (; n > 0; --n) c = byte_step(c, *p++);
  return c;
}

#ifdef FABRIC_CRC32C_SSE42
__attribute__((target("sse4.2"))) inline std::uint32_t hardware(std::uint32_t c, const unsigned char* p,
                                                                std::size_t n) noexcept {
  // Aligning first keeps every 8-byte load inside one cache line.
  for (; n > 0 && (reinterpret_cast<std::uintptr_t>(p) & 7U) != 0; --n) c = _mm_crc32_u8(c, *p++);
  std::uint64_t c64 = c;
  for (; n >= 8; n -= 8, p += 8) {
    std::uint64_t word = 0;
    std::memcpy(&word, p, sizeof word);  // x86 is little-endian, as the instruction expects
    c64 = _mm_crc32_u64(c64, word);
  }
  c = static_cast<std::uint32_t>(c64);
  for (; n > 0; --n) c = _mm_crc32_u8(c, *p++);
  return c;
}

inline bool cpu_has_sse42() noexcept {
  // A function-local static so that callers running during static initialisation still get a
  // correct answer; __builtin_cpu_init makes the query safe that early too.
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("sse4.2") != 0;
  }();
  return has;
}
#endif

}  // namespace crc32c_impl

/// CRC-32C of `size` bytes at `data`, continuing the running checksum `crc` (start with 0).
inline std::uint32_t crc32c(std::uint32_t crc, const void* data, std::size_t size) noexcept {
  const auto* p = static_cast<const unsigned char*>(data);
#ifdef FABRIC_CRC32C_SSE42
  if (crc32c_impl::cpu_has_sse42()) return ~crc32c_impl::hardware(~crc, p, size);
#endif
  return ~crc32c_impl::software(~crc, p, size);
}

/// The table-driven path crc32c falls back to without SSE4.2; exposed so tests check it on
/// machines that have the instruction.
inline std::uint32_t crc32c_portable(std::uint32_t crc, const void* data, std::size_t size) noexcept {
  return ~crc32c_impl::software(~crc, static_cast<const unsigned char*>(data), size);
}

}  // namespace fabric::detail
