// The journal's catalog: the LMDB databases one environment holds, and how their keys and values
// are laid out. Every other journal file names a database or builds a key through here.
//
//   environment   = *stream-db *table-db internal-db   ; the main database lists them all by name
//   stream-db     = "s/" stream        ; seq-key -> record (record.hpp)
//   table-db      = "t/" table         ; app-key -> app-value (journal_txn::put)
//   internal-db   = "x/cursors"        ; cursor -> u64le seq
//                 / "x/dedup-marks"    ; len8 producer len8 pstream -> u64le contiguous u64le window
//                 / "x/dedup-window"   ; len8 producer len8 pstream seq-key -> (empty)
//                 / "x/dedup-ids"      ; len8 producer id -> i64le time-marked
//                 / "x/dedup-times"    ; time len8 producer id -> (empty)
//                 / "x/retention"      ; stream -> msgpack [max_records, max_bytes, max_age_s, [cursor...]]
//                 / "x/stream-bytes"   ; stream -> u64le payload bytes held
//                 / "x/stream-last"    ; stream -> u64le last sequence ever handed out
//                 / "x/expiry"         ; time len8 stream seq-key -> (empty)
//                 / "x/scheduled"      ; time u64be id -> msgpack [stream, payload]
//                 / "x/dlq"            ; u64be id -> msgpack [stream, seq, reason, attempts, time, payload]
//                 / "x/counters"       ; counter-name -> u64le last value handed out
//   stream        = 1*255OCTET         ; no NUL: names become C strings for mdb_dbi_open
//   table         = 1*255OCTET         ; no NUL
//   cursor        = 1*255OCTET
//   producer      = 1*255OCTET
//   pstream       = *255OCTET          ; a producer's stream (may be empty)
//   id            = 16OCTET            ; fabric::message_id
//   app-key       = 1*511OCTET         ; LMDB's default key limit
//   seq-key       = u64be              ; sequence numbers from 1: byte order is numeric order
//   time          = u64be              ; ns since the Unix epoch, sign bit flipped: byte order is time order
//   len8 X        = OCTET X            ; X's length in one byte, then X
//
// docs/journal-format.md holds the same table for readers of the file.
//
// Thread safety: constants and free functions, reentrant.
#pragma once

#include <fabric/error.hpp>
#include <fabric/journal.hpp>

#include "core/byte_order.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace fabric::journal_detail {

inline constexpr std::string_view stream_prefix = "s/";
inline constexpr std::string_view table_prefix = "t/";
inline constexpr std::string_view internal_prefix = "x/";
inline constexpr std::size_t max_stream_name = 255;

inline constexpr std::string_view cursors_db = "x/cursors";
inline constexpr std::string_view dedup_marks_db = "x/dedup-marks";
inline constexpr std::string_view dedup_window_db = "x/dedup-window";
inline constexpr std::string_view dedup_ids_db = "x/dedup-ids";
inline constexpr std::string_view dedup_times_db = "x/dedup-times";
inline constexpr std::string_view retention_db = "x/retention";
inline constexpr std::string_view stream_bytes_db = "x/stream-bytes";
inline constexpr std::string_view expiry_db = "x/expiry";
inline constexpr std::string_view scheduled_db = "x/scheduled";
inline constexpr std::string_view dlq_db = "x/dlq";
inline constexpr std::string_view counters_db = "x/counters";
// A stream's last record can be removed (TTL, retention, dead-lettering); without x/stream-last a
// reopened journal would hand its number out again.
inline constexpr std::string_view stream_last_db = "x/stream-last";
/// Every internal database, in the order a writer creates the missing ones at open.
inline constexpr std::string_view internal_databases[] = {
    cursors_db,     dedup_marks_db,  dedup_window_db, dedup_ids_db, dedup_times_db, retention_db,
    stream_bytes_db, expiry_db,      scheduled_db,    dlq_db,       counters_db,    stream_last_db};
/// Room for the internal databases, with some to grow, on top of the stream and table budgets.
inline constexpr unsigned internal_database_count = 16;

/// Counter names in x/counters.
inline constexpr std::string_view dead_letter_counter = "dead-letters";
inline constexpr std::string_view scheduled_counter = "scheduled";

/// Whether `name` may name a stream: 1-255 bytes with no NUL (a NUL would cut the C string
/// mdb_dbi_open takes short, and alias another stream).
inline bool valid_stream_name(std::string_view name) noexcept {
  return !name.empty() && name.size() <= max_stream_name && name.find('\0') == std::string_view::npos;
}

/// "s/<stream>".
inline std::string db_name(std::string_view stream) {
  std::string name(stream_prefix);
  name += stream;
  return name;
}

/// "t/<table>". Throws: fabric::error(invalid_argument) for a name that is empty, over 255
/// bytes or holds a NUL byte.
inline std::string table_db(std::string_view table) {
  if (table.empty() || table.size() > 255 || table.find('\0') != std::string_view::npos)
    throw error(errc::invalid_argument, "journal table names are 1-255 bytes, with no NUL byte");
  std::string name(table_prefix);
  name += table;
  return name;
}

/// Throws: fabric::error(invalid_argument) for an application key LMDB cannot hold.
inline void check_table_key(std::string_view key) {
  if (key.empty() || key.size() > 511) throw error(errc::invalid_argument, "journal table keys are 1-511 bytes");
}

/// Throws: fabric::error(invalid_argument) for a bad cursor name.
inline void check_cursor_name(std::string_view name) {
  if (name.empty() || name.size() > 255) throw error(errc::invalid_argument, "cursor names are 1-255 bytes");
}

/// Appends len8 `s`. Callers bound `s` to 255 bytes.
inline void append_len8(std::string& out, std::string_view s) {
  out.push_back(static_cast<char>(s.size()));
  out.append(s);
}

/// The sortable form of a signed time: big-endian with the sign bit flipped.
inline std::uint64_t sortable_time(std::int64_t ns) noexcept {
  return static_cast<std::uint64_t>(ns) ^ (std::uint64_t{1} << 63);
}
inline std::int64_t from_sortable_time(std::uint64_t key) noexcept {
  return static_cast<std::int64_t>(key ^ (std::uint64_t{1} << 63));
}
inline void append_time(std::string& out, std::int64_t ns) { detail::append_be(out, sortable_time(ns)); }

/// x/dedup-marks key: len8 producer len8 pstream. The length prefixes keep pairs unambiguous.
inline std::string dedup_mark_key(const dedup_key& k) {
  std::string key;
  append_len8(key, k.producer);
  append_len8(key, k.stream);
  return key;
}

/// x/dedup-ids key: len8 producer id.
inline std::string dedup_id_key(const dedup_key& k) {
  std::string key;
  append_len8(key, k.producer);
  key.append(reinterpret_cast<const char*>(k.id.bytes.data()), k.id.bytes.size());
  return key;
}

/// An 8-byte little-endian value: cursors, counters and the per-stream accounts.
inline std::string u64le_value(std::uint64_t v) {
  std::string out;
  detail::append_le(out, v);
  return out;
}

}  // namespace fabric::journal_detail
