// The fabric envelope: how fabric's own messages look on the wire.
//
//   envelope = tag-frame header-frame *body-frame
//   tag-frame = "FAB1"
//   header-frame = msgpack map, integer keys (registry below; see docs/wire-format.md)
//
// Thread safety: free functions are reentrant; an id_generator is used from one thread.
#pragma once

#include <fabric/codec.hpp>
#include <fabric/message_id.hpp>
#include <fabric/message.hpp>
#include <fabric/result.hpp>

#include <array>
#include <compare>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fabric {

/// The first frame of every fabric envelope.
inline constexpr std::string_view envelope_tag = "FAB1";

/// Header map keys. Wire ids: these numbers must not change.
namespace header_key {
inline constexpr std::uint8_t id = 0;        ///< bin 16: message id
inline constexpr std::uint8_t producer = 1;  ///< str: producer id
inline constexpr std::uint8_t stream = 2;    ///< str: stream name
inline constexpr std::uint8_t seq = 3;       ///< uint: sequence within (producer, stream)
inline constexpr std::uint8_t ts = 4;        ///< int: production time, ns since the Unix epoch
inline constexpr std::uint8_t ttl = 5;       ///< uint: time to live in ms, 0 = forever
inline constexpr std::uint8_t user = 6;      ///< map str -> str|bin: user headers
}  // namespace header_key

/// Bounds enforced when decoding a header; encoding refuses headers that exceed them too.
struct header_limits {
  static constexpr std::size_t max_producer = 255;      ///< bytes in the producer id
  static constexpr std::size_t max_stream = 255;        ///< bytes in the stream name
  static constexpr std::size_t max_user_headers = 64;   ///< entries in the user map
  static constexpr std::size_t max_user_key = 255;      ///< bytes in one user header key
  static constexpr std::size_t max_user_value = 65536;  ///< bytes in one user header value
  /// Bytes in the whole header frame, checked before any decoding: the largest header the
  /// limits above allow (about 4.02 MiB) with room for fields a newer producer may add.
  static constexpr std::size_t max_header_bytes = (std::size_t{4} << 20) + (std::size_t{128} << 10);
  /// Elements (map entries count twice) the header frame may claim in all; the fields above need
  /// at most 142, so this caps the memory a hostile header can make the decoder take at ~24 KiB.
  static constexpr std::size_t max_header_elements = 1024;
};

/// The envelope header.
struct header {
  message_id id;
  std::string producer;            ///< who produced it; <= header_limits::max_producer bytes
  std::string stream;              ///< which stream it belongs to; may be empty
  std::uint64_t seq = 0;           ///< position in (producer, stream), starting at 1
  std::int64_t timestamp_ns = 0;   ///< production time, ns since the Unix epoch
  std::uint64_t ttl_ms = 0;        ///< time to live; 0 means it never expires
  std::vector<std::pair<std::string, std::string>> user;  ///< application headers, in order

  /// The value of user header `key`, or nullptr.
  const std::string* find(std::string_view key) const noexcept;
  /// True when ttl_ms is set and `now_ns` is past timestamp_ns + ttl.
  bool expired(std::int64_t now_ns) const noexcept;

  friend bool operator==(const header&, const header&) = default;
};

/// The current time in ns since the Unix epoch, as stamped into headers.
std::int64_t unix_now_ns() noexcept;

/// A decoded envelope: its header and the body frames.
struct envelope {
  fabric::header header;
  message body;
};

/// Encodes `h` into a header frame.
/// Throws: fabric::error(invalid_argument) when `h` exceeds header_limits.
frame encode_header(const header& h);

/// Decodes a header frame, checking its schema and bounds. Unknown integer keys are skipped so
/// newer producers can add fields.
/// Returns: the header, or errc::malformed / errc::too_large.
result<header> decode_header(const frame& f) noexcept;

/// Builds the envelope tag | header | body..., moving the body's frames in.
/// Throws: fabric::error(invalid_argument) when `h` exceeds header_limits.
message make_envelope(const header& h, message&& body);

/// Builds an envelope whose single body frame is `payload` packed with msgpack.
template <class T>
message make_envelope_of(const header& h, const T& payload) {
  message body;
  body.push_back(pack(payload));
  return make_envelope(h, std::move(body));
}

/// True when `m` starts with the envelope tag frame.
bool is_envelope(const message& m) noexcept;

/// Splits `m` into header and body, consuming it.
/// Returns: the envelope, or errc::malformed (no tag, no header, bad header) / errc::too_large.
result<envelope> decode_envelope(message&& m) noexcept;

/// Decodes body frame `index` of `e` as a T.
/// Returns: the value, or errc::malformed when the frame is missing or not a T.
template <class T>
result<T> body_as(const envelope& e, std::size_t index = 0) noexcept {
  if (index >= e.body.size()) return errc::malformed;
  return unpack<T>(e.body[index]);
}

}  // namespace fabric
