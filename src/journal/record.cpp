// The journal's record codec: the CRC-32C over each record (core/crc32c.hpp), the big-endian
// sequence keys, and the checks that decide whether a stored value can be trusted.
#include "journal/record.hpp"

#include "core/byte_order.hpp"

namespace fabric::journal_detail {
namespace {

// Fixed-width fields through core/byte_order.hpp: one load or store each, plus a bswap where the
// host order differs, with no alignment traps.
using detail::load_be;
using detail::load_le;
using detail::store_be;
using detail::store_le;

}  // namespace

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
