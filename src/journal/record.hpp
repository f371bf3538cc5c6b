// The journal's record format: how one appended message is stored as an LMDB value, and the
// checks that decide whether a stored value can be trusted. LMDB 0.9 has no page checksums, so
// every record carries its own CRC.
//
// A record is stored in its stream's database under an 8-byte big-endian sequence number (so
// keys sort in append order and MDB_APPEND applies). Its value:
//
//   record        = crc version flags reserved length timestamp payload
//   crc           = 4OCTET   ; CRC-32C (Castagnoli), little-endian, over the covered bytes below
//   version       = %x02 / %x01  ; the format version; anything else is refused
//   flags         = OCTET    ; bit 0: the payload is an envelope (FAB1 frames); others are zero
//   reserved      = 2%x00
//   length        = 4OCTET   ; payload length in bytes, little-endian
//   timestamp     = 8OCTET   ; append time, ns since the Unix epoch, little-endian, signed
//   payload       = *OCTET   ; exactly `length` bytes
//
//   covered-v2    = len8-stream key version flags reserved length timestamp payload
//   covered-v1    = key version flags reserved length timestamp payload
//   len8-stream   = OCTET 1*255OCTET  ; the stream's name (1-255 bytes) after its length
//   key           = 8OCTET   ; the record's key: its sequence number, big-endian
//
// Version 2, the one written, covers the stream's name and the key as well as the value, so a
// record copied into another stream, or under another sequence number, fails its check like a
// flipped bit does. Version 1 records, written before version 2 existed, cover the key but not
// the stream; they are still read, under their own rule (see docs/journal-format.md).
//
// Thread safety: free functions, reentrant.
#pragma once

#include "core/crc32c.hpp"

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace fabric::journal_detail {

/// The version encode_record writes.
inline constexpr std::uint8_t record_version = 2;
/// The first version, read but no longer written: its CRC does not cover the stream.
inline constexpr std::uint8_t record_version_1 = 1;
inline constexpr std::size_t record_header_size = 20;  // crc 4 + version 1 + flags 1 + reserved 2 + length 4 + ts 8

/// Bit 0 of flags: the payload is a fabric envelope.
inline constexpr std::uint8_t flag_envelope = 0x01;

/// CRC-32C (core/crc32c.hpp): `crc` continues a running checksum; start with 0. crc32c_portable is
/// the table-driven path, exposed so tests can check that both paths agree.
using detail::crc32c;
using detail::crc32c_portable;

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

/// The longest stream name a record can cover (its length is one byte).
inline constexpr std::size_t max_stream_name_size = 255;

/// Writes the value of a version-2 record of `stream` into `out`, which must hold
/// record_size(payload.size()) bytes (LMDB's MDB_RESERVE hands out exactly such a buffer, so the
/// payload is copied once).
/// Preconditions: 1 <= stream.size() <= max_stream_name_size; payload.size() <= max_payload_size;
/// flags is 0 or flag_envelope.
void encode_record(std::string_view stream, std::uint64_t seq, std::int64_t timestamp_ns,
                   std::uint8_t flags, std::string_view payload, std::byte* out) noexcept;

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
  std::uint8_t version = 0;  ///< record_version, or record_version_1 for an older record
  std::uint64_t seq = 0;
  std::int64_t timestamp_ns = 0;
  std::uint8_t flags = 0;
  std::string_view payload;
};

/// Checks the value stored under `seq` in `stream`'s database and decodes it, under the rule of
/// its version. Never reads outside `value`. The checks run in this order: too_short,
/// bad_version, bad_reserved, bad_length, bad_crc.
/// Returns record_fault::none and fills `out` when the record can be trusted; on any fault `out`
/// is left untouched. A stream name longer than max_stream_name_size fails every version-2 record.
record_fault decode_record(std::string_view stream, std::uint64_t seq, std::span<const std::byte> value,
                           record_view& out) noexcept;

/// The same checks for a value read in pieces (a value too large to hold at once): `head` holds
/// the value's first bytes (at least record_header_size of them when the value has that many),
/// `value_size` its whole size. Checks everything but the CRC and returns the fault found, or
/// none with `crc` set to the checksum of the covered bytes that precede the value's own bytes
/// and `expected` to the stored CRC; the caller continues `crc` with crc32c over the value's
/// bytes from offset record_crc_from to the end and compares it with `expected`.
record_fault check_record_head(std::string_view stream, std::uint64_t seq, std::span<const std::byte> head,
                               std::uint64_t value_size, std::uint32_t& crc, std::uint32_t& expected) noexcept;

/// Where the CRC's coverage of a value starts: just after the CRC field.
inline constexpr std::size_t record_crc_from = 4;

}  // namespace fabric::journal_detail
