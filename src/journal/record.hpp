// The journal's record format: how one appended message is stored as an LMDB value, and the
// checks that decide whether a stored value can be trusted. LMDB 0.9 has no page checksums, so
// every record carries its own CRC.
//
// A record is stored in its stream's database under an 8-byte big-endian sequence number (so
// keys sort in append order and MDB_APPEND applies). Its value:
//
//   record        = crc version flags reserved length timestamp payload
//   crc           = 4OCTET   ; CRC-32C (Castagnoli), little-endian, over key || version..payload
//   version       = %x01     ; the format version; anything else is refused
//   flags         = OCTET    ; bit 0: the payload is an envelope (FAB1 frames); others are zero
//   reserved      = 2%x00
//   length        = 4OCTET   ; payload length in bytes, little-endian
//   timestamp     = 8OCTET   ; append time, ns since the Unix epoch, little-endian, signed
//   payload       = *OCTET   ; exactly `length` bytes
//
// The CRC covers the key too, so a record copied under the wrong sequence number, or into the
// wrong place, fails its check like a flipped bit does.
//
// Thread safety: free functions, reentrant.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace fabric::journal_detail {

inline constexpr std::uint8_t record_version = 1;
inline constexpr std::size_t record_header_size = 20;  // crc 4 + version 1 + flags 1 + reserved 2 + length 4 + ts 8

/// Bit 0 of flags: the payload is a fabric envelope.
inline constexpr std::uint8_t flag_envelope = 0x01;

/// CRC-32C (Castagnoli polynomial 0x1EDC6F41, reflected 0x82F63B78), as iSCSI and LevelDB use.
/// `crc` continues a running checksum; start with 0.
std::uint32_t crc32c(std::uint32_t crc, const void* data, std::size_t size) noexcept;
/// The table-driven software CRC-32C that crc32c falls back to without SSE4.2; exposed so tests
/// can check that both paths agree.
std::uint32_t crc32c_portable(std::uint32_t crc, const void* data, std::size_t size) noexcept;

/// The 8-byte big-endian key for `seq`.
void encode_seq_key(std::uint64_t seq, std::byte out[8]) noexcept;
/// Reads a key written by encode_seq_key. Returns false unless `key` is exactly 8 bytes.
bool decode_seq_key(std::span<const std::byte> key, std::uint64_t& seq) noexcept;

/// The size of the value encode_record writes for a payload of `payload_size` bytes.
constexpr std::size_t record_size(std::size_t payload_size) noexcept {
  return record_header_size + payload_size;
}

/// The largest payload the 4-byte length field can describe.
inline constexpr std::size_t max_payload_size = 0xFFFFFFFFu;

/// Writes the value of a record into `out`, which must hold record_size(payload.size()) bytes
/// (LMDB's MDB_RESERVE hands out exactly such a buffer, so the payload is copied once).
/// Preconditions: payload.size() <= max_payload_size; flags is 0 or flag_envelope.
void encode_record(std::uint64_t seq, std::int64_t timestamp_ns, std::uint8_t flags,
                   std::string_view payload, std::byte* out) noexcept;

/// Why a stored value was refused.
enum class record_fault {
  none,
  too_short,       ///< shorter than the header
  bad_version,     ///< unknown format version
  bad_length,      ///< the length field disagrees with the value's size
  bad_reserved,    ///< reserved bytes or unknown flag bits are not zero
  bad_crc,         ///< the checksum does not match (a flipped bit, a torn or misplaced record)
};

/// Text for a fault, for reports ("CRC mismatch", ...).
std::string_view to_string(record_fault f) noexcept;

/// A record checked and decoded in place: `payload` points into the value it was read from.
struct record_view {
  std::uint64_t seq = 0;
  std::int64_t timestamp_ns = 0;
  std::uint8_t flags = 0;
  std::string_view payload;
};

/// Checks the value stored under `seq` and decodes it. Never reads outside `value`. The checks
/// run in this order: too_short, bad_version, bad_reserved, bad_length, bad_crc.
/// Returns record_fault::none and fills `out` when the record can be trusted; on any fault `out`
/// is left untouched.
record_fault decode_record(std::uint64_t seq, std::span<const std::byte> value,
                           record_view& out) noexcept;

}  // namespace fabric::journal_detail
