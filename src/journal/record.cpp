// The journal's record codec: CRC-32C (SSE4.2 when the CPU has it, slicing-by-8 otherwise), the
// big-endian sequence keys, and the checks that decide whether a stored value can be trusted.
#include "journal/record.hpp"

#include "core/byte_order.hpp"

#include <array>
#include <cstring>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define FABRIC_CRC32C_SSE42 1
#include <nmmintrin.h>
#endif

namespace fabric::journal_detail {
namespace {

constexpr std::uint32_t crc32c_poly_reflected = 0x82F63B78U;

// tables[0] is the classic byte-at-a-time table; tables[k][b] is the CRC of byte b followed by k
// zero bytes, which lets the software loop fold eight input bytes per step with independent
// lookups instead of a chain of eight dependent ones.
using crc_tables = std::array<std::array<std::uint32_t, 256>, 8>;

constexpr crc_tables make_crc_tables() noexcept {
  crc_tables t{};
  for (std::uint32_t b = 0; b < 256; ++b) {
    std::uint32_t c = b;
    for (int bit = 0; bit < 8; ++bit) c = (c & 1U) != 0 ? (c >> 1) ^ crc32c_poly_reflected : c >> 1;
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

constexpr crc_tables tables = make_crc_tables();
static_assert(tables[0][0x80] == crc32c_poly_reflected, "tables use the reflected polynomial");

// Fixed-width fields through core/byte_order.hpp: one load or store each, plus a bswap where the
// host order differs, with no alignment traps.
using detail::load_be;
using detail::load_le;
using detail::store_be;
using detail::store_le;

// Works on the raw (pre-inverted) register so that both paths share the ~0 conventions below.
std::uint32_t crc32c_sw(std::uint32_t c, const unsigned char* p, std::size_t n) noexcept {
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
__attribute__((target("sse4.2"))) std::uint32_t crc32c_hw(std::uint32_t c, const unsigned char* p,
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

bool cpu_has_sse42() noexcept {
  // A function-local static so that callers running during static initialisation still get a
  // correct answer; __builtin_cpu_init makes the query safe that early too.
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("sse4.2") != 0;
  }();
  return has;
}
#endif

}  // namespace

std::uint32_t crc32c_portable(std::uint32_t crc, const void* data, std::size_t size) noexcept {
  return ~crc32c_sw(~crc, static_cast<const unsigned char*>(data), size);
}

std::uint32_t crc32c(std::uint32_t crc, const void* data, std::size_t size) noexcept {
  const auto* p = static_cast<const unsigned char*>(data);
#ifdef FABRIC_CRC32C_SSE42
  if (cpu_has_sse42()) return ~crc32c_hw(~crc, p, size);
#endif
  return ~crc32c_sw(~crc, p, size);
}

void encode_seq_key(std::uint64_t seq, std::byte out[8]) noexcept {
  // One byte swap and a store: this runs twice per append (the key and the CRC over it).
  store_be(seq, out);
}

bool decode_seq_key(std::span<const std::byte> key, std::uint64_t& seq) noexcept {
  if (key.size() != 8) return false;
  seq = load_be<std::uint64_t>(key.data());
  return true;
}

namespace {

// Offsets of the header fields; see the grammar in record.hpp.
constexpr std::size_t off_crc = 0;
constexpr std::size_t off_version = 4;
constexpr std::size_t off_flags = 5;
constexpr std::size_t off_reserved = 6;
constexpr std::size_t off_length = 8;
constexpr std::size_t off_timestamp = 12;
static_assert(off_timestamp + 8 == record_header_size);
static_assert(off_version == record_crc_from);

// The checksum of what a record covers before its own bytes: its stream's name (from version 2
// on) and its key. A name that is empty or too long for its length byte cannot have been written,
// so no checksum is made for it: the caller refuses the record.
bool crc_prefix(std::uint8_t version, std::string_view stream, std::uint64_t seq, std::uint32_t& crc) noexcept {
  std::uint32_t c = 0;
  if (version != record_version_1) {
    if (stream.empty() || stream.size() > max_stream_name_size) return false;
    const auto length = static_cast<unsigned char>(stream.size());
    c = crc32c(c, &length, 1);
    c = crc32c(c, stream.data(), stream.size());
  }
  std::byte key[8];
  encode_seq_key(seq, key);
  crc = crc32c(c, key, sizeof key);
  return true;
}

}  // namespace

void encode_record(std::string_view stream, std::uint64_t seq, std::int64_t timestamp_ns,
                   std::uint8_t flags, std::string_view payload, std::byte* out) noexcept {
  auto* p = reinterpret_cast<unsigned char*>(out);
  p[off_version] = record_version;
  p[off_flags] = flags;
  p[off_reserved] = 0;
  p[off_reserved + 1] = 0;
  store_le<std::uint32_t>(static_cast<std::uint32_t>(payload.size()), p + off_length);
  store_le<std::uint64_t>(static_cast<std::uint64_t>(timestamp_ns), p + off_timestamp);
  if (!payload.empty()) std::memcpy(p + record_header_size, payload.data(), payload.size());
  const std::size_t size = record_size(payload.size());
  std::uint32_t crc = 0;
  crc_prefix(record_version, stream, seq, crc);
  store_le<std::uint32_t>(crc32c(crc, p + record_crc_from, size - record_crc_from), p + off_crc);
}

std::string_view to_string(record_fault f) noexcept {
  switch (f) {
    case record_fault::none: return "no fault";
    case record_fault::too_short: return "shorter than a record header";
    case record_fault::bad_version: return "unknown record version";
    case record_fault::bad_length: return "length field disagrees with the value's size";
    case record_fault::bad_reserved: return "reserved bits or unknown flags set";
    case record_fault::bad_crc: return "CRC mismatch";
  }
  return "unknown record fault";
}

record_fault check_record_head(std::string_view stream, std::uint64_t seq, std::span<const std::byte> head,
                               std::uint64_t value_size, std::uint32_t& crc, std::uint32_t& expected) noexcept {
  if (value_size < record_header_size || head.size() < record_header_size) return record_fault::too_short;
  const auto* p = reinterpret_cast<const unsigned char*>(head.data());
  const std::uint8_t version = p[off_version];
  if (version != record_version && version != record_version_1) return record_fault::bad_version;
  const std::uint8_t flags = p[off_flags];
  if ((flags & ~flag_envelope) != 0 || p[off_reserved] != 0 || p[off_reserved + 1] != 0) {
    return record_fault::bad_reserved;
  }
  // Widened before comparing so a huge length field cannot wrap into a match.
  const std::uint64_t length = load_le<std::uint32_t>(p + off_length);
  if (length != value_size - record_header_size) return record_fault::bad_length;
  if (!crc_prefix(version, stream, seq, crc)) return record_fault::bad_crc;
  expected = load_le<std::uint32_t>(p + off_crc);
  return record_fault::none;
}

record_fault decode_record(std::string_view stream, std::uint64_t seq, std::span<const std::byte> value,
                           record_view& out) noexcept {
  std::uint32_t crc = 0;
  std::uint32_t expected = 0;
  const record_fault fault = check_record_head(stream, seq, value, value.size(), crc, expected);
  if (fault != record_fault::none) return fault;
  const auto* p = reinterpret_cast<const unsigned char*>(value.data());
  const std::size_t size = value.size();
  if (crc32c(crc, p + record_crc_from, size - record_crc_from) != expected) return record_fault::bad_crc;

  out.version = p[off_version];
  out.seq = seq;
  out.timestamp_ns = static_cast<std::int64_t>(load_le<std::uint64_t>(p + off_timestamp));
  out.flags = p[off_flags];
  out.payload = std::string_view(reinterpret_cast<const char*>(p + record_header_size),
                                 size - record_header_size);
  return record_fault::none;
}

}  // namespace fabric::journal_detail
