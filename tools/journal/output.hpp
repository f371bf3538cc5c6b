// fabric-journal's formatting: the encodings records are shown in. JSON is written with
// fabric_support's (nlohmann-json).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace fabric::journal_tool {

/// Whether `s` is well-formed UTF-8 (no overlong forms, surrogates or code points past U+10FFFF).
bool valid_utf8(std::string_view s) noexcept;

/// Whether `s` reads as text: valid UTF-8 with no control characters other than tab, line feed
/// and carriage return.
bool printable_text(std::string_view s) noexcept;

/// Lowercase hex, two digits per byte, no separators.
std::string to_hex(std::string_view bytes);

/// Standard base64 (RFC 4648) with padding.
std::string to_base64(std::string_view bytes);

/// ISO 8601 in UTC with nanoseconds: 2024-05-01T12:34:56.123456789Z. Correct before 1970 too.
std::string iso8601_utc(std::int64_t ns_since_epoch);

/// A byte count for people: "512 B", "1.5 KiB", "64.0 MiB".
std::string human_bytes(std::uint64_t bytes);

}  // namespace fabric::journal_tool
