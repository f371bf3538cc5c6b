// fabric-journal's formatting: a small streaming JSON writer and the encodings records are shown
// in. Local to the tool so it depends on nothing but the library and the standard library.
#pragma once

#include <cstddef>
#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

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

/// `s` as a JSON string literal, quotes included; invalid UTF-8 becomes U+FFFD.
std::string json_quote(std::string_view s);

/// Writes one JSON value to a stream as it is built, placing the commas itself. Misuse (a key
/// outside an object, unbalanced ends) is a programming error and is not checked at run time.
class json_writer {
 public:
  explicit json_writer(std::ostream& out) : out_(out) {}

  json_writer& begin_object();
  json_writer& end_object();
  json_writer& begin_array();
  json_writer& end_array();
  json_writer& key(std::string_view name);
  json_writer& string(std::string_view s);
  json_writer& number(std::uint64_t n);
  json_writer& number(std::int64_t n);
  json_writer& boolean(bool b);

  /// Shorthands for a key and its value.
  json_writer& field(std::string_view name, std::string_view s) { return key(name).string(s); }
  json_writer& field(std::string_view name, const char* s) { return key(name).string(s); }
  json_writer& field(std::string_view name, std::uint64_t n) { return key(name).number(n); }
  json_writer& field(std::string_view name, std::int64_t n) { return key(name).number(n); }
  json_writer& field(std::string_view name, bool b) { return key(name).boolean(b); }

 private:
  void before_value();

  std::ostream& out_;
  std::vector<bool> has_items_;  // per open container: whether a comma is due before the next item
  bool after_key_ = false;
};

}  // namespace fabric::journal_tool
