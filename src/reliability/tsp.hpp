// The 9/TSP (Titanic, docs/titanic.md) body codec: builders and strict zero-copy parsers for the
// bodies of the MDP REQUEST and REPLY messages that a Titanic client and server exchange, with no
// sockets and no clocks. The bodies are the frames after MDP's own header, service and envelope;
// this file is the code of the grammar in section 2, and of section 5's keyed requests.
//
// Frame grammar (one token = one ZeroMQ frame):
//
//   request-req = service 1*body-frame              ; to titanic.request
//   keyed-req   = key service 1*body-frame          ; to titanic.keyed-request
//   uuid-req    = uuid                              ; to titanic.reply and titanic.close
//   request-rep = ok uuid / not-ok                  ; from titanic.request and keyed-request
//   reply-rep   = ok 1*body-frame / not-ok          ; from titanic.reply
//   close-rep   = status                            ; from titanic.close (the server writes 200)
//
//   service = 1..255 of %x21-7E        key = 1..255 octets       uuid = 32 hex digits, any case
//   status  = code [ SP 1*OCTET ]      code = "200" / "300" / "400" / "500"
//   ok      = a status of code 200     not-ok = a status of code 300, 400 or 500
//   body-frame = any octets; 1 .. max_body_frames (1024) of them in one message
//
// The text after a status code is for people: any octets, not checked, never acted on. A space
// with no text after it is not allowed, so that every message the parsers accept is exactly what
// the builders write for the values parsed, byte for byte (but for the case of a UUID's digits,
// which the builders write in upper case and the parsers take in either).
//
// Each parser judges the frame count first (no_*, extra_frames, too_many_frames), so that at
// most max_body_frames + 2 frames are examined however many arrive, then the frames left to
// right. The first fault found is the one reported.
//
// Thread safety: stateless functions over values; uuid::random() draws from a buffer of its
// thread's own. Safe from any thread.
#pragma once

#include <fabric/message.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace fabric::tsp {

inline constexpr std::string_view request_service = "titanic.request";
inline constexpr std::string_view reply_service = "titanic.reply";
inline constexpr std::string_view close_service = "titanic.close";
/// The extension of section 5: a client key, then a titanic.request body.
inline constexpr std::string_view keyed_request_service = "titanic.keyed-request";

inline constexpr std::size_t max_service_size = 255;
inline constexpr std::size_t max_key_size = 255;
/// The most body frames a request, keyed request or reply carries: a bound on the frames a parser
/// examines and a server stores for one message.
inline constexpr std::size_t max_body_frames = 1024;
inline constexpr std::size_t uuid_text_size = 32;  ///< hex digits in a UUID frame

/// A request's identity: 16 octets, written on the wire as 32 hexadecimal digits.
struct uuid {
  std::array<std::uint8_t, 16> bytes{};

  /// A random (RFC 4122 version 4) UUID: 122 bits from the kernel's generator (getrandom),
  /// fetched 4 KiB at a time into a buffer per thread that a forked child never reuses.
  /// Throws: fabric::error when the kernel gives no random octets.
  static uuid random();
  /// A time-ordered (RFC 9562 version 7) UUID: the Unix time in milliseconds, the fraction of
  /// the millisecond, then 62 random bits from the same source as random(). UUIDs made later sort
  /// after earlier ones (within a thread, and across threads from one millisecond to the next), so
  /// a table keyed by them grows at its end: a commit of many new requests dirties a few pages,
  /// not one per request. The 62 random bits keep them unguessable.
  /// Throws: as random().
  static uuid ordered();
  bool operator==(const uuid&) const = default;
  auto operator<=>(const uuid&) const = default;
};

/// The 32 hexadecimal digits of `u`, upper case.
std::string to_string(const uuid& u);
/// `text` read as exactly 32 hexadecimal digits of either case; nullopt for anything else.
std::optional<uuid> parse_uuid(std::string_view text) noexcept;

/// The status codes of 9/TSP. Wire values: must not change.
enum class status : std::uint16_t { ok = 200, pending = 300, unknown = 400, error = 500 };

/// Why a body breaks the grammar: one value for each way, so that a test or a log line can tell
/// the cases apart. A server answers each of them 400 (unknown); a client drops the reply.
enum class fault : std::uint8_t {
  none = 0,
  no_service,       ///< a request with no frame at all, or a keyed request with only its key
  bad_service,      ///< a service name that is empty, over 255 octets or not all of 0x21..0x7E
  no_body,          ///< a request, or a 200 from titanic.reply, with no body frame after it
  too_many_frames,  ///< more than max_body_frames body frames
  no_key,           ///< a keyed request with no frame at all
  bad_key,          ///< a key that is empty or over 255 octets
  no_uuid,          ///< a UUID request with no frame, or a 200 from titanic.request without one
  bad_uuid,         ///< a UUID frame that is not exactly 32 hexadecimal digits
  extra_frames,     ///< more frames than the message takes
  no_status,        ///< a reply with no frame at all
  bad_status,       ///< a status frame that is not three digits, optionally a space and text
  unknown_status,   ///< three digits that are not 200, 300, 400 or 500
};

/// A short description of `f`, for log lines and test messages.
std::string_view describe(fault f) noexcept;

/// A status frame, parsed: the text is a view into the frame.
struct parsed_status {
  fault error = fault::none;
  status code = status::ok;
  std::string_view text;  ///< what follows the code and its space; empty when nothing does
  explicit operator bool() const noexcept { return error == fault::none; }
};

/// Reads a status frame: "NNN" or "NNN text", NNN one of the four codes. Faults: bad_status,
/// unknown_status.
parsed_status parse_status(std::string_view frame) noexcept;

/// The frame for `s` and `text`: "NNN", or "NNN text" when `text` is not empty.
/// Throws: fabric::error(invalid_argument) for a value of `s` that is not one of the four.
std::string status_frame(status s, std::string_view text = {});

/// A request or keyed request, parsed without copying a byte: the views point into the message's
/// frames and stay valid while they live unchanged.
struct parsed_request {
  fault error = fault::none;
  std::string_view key;           ///< keyed requests only
  std::string_view service;
  std::span<const frame> body;    ///< 1 .. max_body_frames frames of the message
  explicit operator bool() const noexcept { return error == fault::none; }
};

/// A titanic.reply or titanic.close request, parsed.
struct parsed_uuid_request {
  fault error = fault::none;
  uuid id;
  explicit operator bool() const noexcept { return error == fault::none; }
};

/// A reply from one of the Titanic services, parsed; the views point into the message's frames.
struct parsed_reply {
  fault error = fault::none;
  status code = status::ok;
  std::string_view text;          ///< the status frame's text
  uuid id;                        ///< a 200 from titanic.request or keyed-request
  std::span<const frame> body;    ///< a 200 from titanic.reply: the service's reply frames
  explicit operator bool() const noexcept { return error == fault::none; }
};

// ---------------------------------------------------------------------------------------------
// Server side: what the Titanic services receive. Each allocates nothing; the deleted overloads
// keep a view from outliving a temporary message.

/// titanic.request: service | body.... Faults: no_service, too_many_frames, bad_service,
/// no_body.
parsed_request parse_request(const message& body) noexcept;
parsed_request parse_request(message&&) = delete;
/// titanic.keyed-request: key | service | body.... Faults: no_key, too_many_frames, bad_key,
/// then those of parse_request.
parsed_request parse_keyed_request(const message& body) noexcept;
parsed_request parse_keyed_request(message&&) = delete;
/// titanic.reply and titanic.close: one UUID frame. Faults: no_uuid, extra_frames, bad_uuid.
parsed_uuid_request parse_uuid_request(const message& body) noexcept;

// Client side: what the Titanic services answer.

/// From titanic.request or keyed-request: 200 | uuid, or a status of 300, 400 or 500 alone.
/// Faults: no_status, extra_frames, bad_status, unknown_status, no_uuid, bad_uuid.
parsed_reply parse_request_reply(const message& body) noexcept;
parsed_reply parse_request_reply(message&&) = delete;
/// From titanic.reply: 200 | body..., or a status of 300, 400 or 500 alone. Faults: no_status,
/// too_many_frames, bad_status, unknown_status, no_body, extra_frames.
parsed_reply parse_reply_reply(const message& body) noexcept;
parsed_reply parse_reply_reply(message&&) = delete;
/// From titanic.close: one status frame. Faults: no_status, extra_frames, bad_status,
/// unknown_status.
parsed_reply parse_close_reply(const message& body) noexcept;
parsed_reply parse_close_reply(message&&) = delete;

// ---------------------------------------------------------------------------------------------
// Builders. Each clears `out` and writes the whole body; the body frames given are moved in, not
// copied. Throws: fabric::error(invalid_argument) for what the grammar forbids (a bad service
// name or key, no body frame or more than max_body_frames, a status that is not one of the four
// or is 200 where a 200 needs more frames), `out` then left cleared or unchanged.

/// service | body...
void write_request(message& out, std::string_view service, message&& body);
/// key | service | body...
void write_keyed_request(message& out, std::string_view key, std::string_view service,
                         message&& body);
/// uuid, upper case: to titanic.reply or titanic.close.
void write_uuid_request(message& out, const uuid& id);
/// titanic.request's answer: "200[ text]" | uuid.
void write_request_reply(message& out, const uuid& id, std::string_view text = {});
/// titanic.request's answer when nothing was stored: a status other than 200 alone.
void write_request_reply(message& out, status s, std::string_view text = {});
/// titanic.reply's answer: "200[ text]" | the service's reply frames.
void write_reply_reply(message& out, message&& reply, std::string_view text = {});
/// titanic.reply's answer with no reply to give: a status other than 200 alone.
void write_reply_reply(message& out, status s, std::string_view text = {});
/// titanic.close's answer: one status frame (the server always writes 200).
void write_close_reply(message& out, status s = status::ok, std::string_view text = {});

}  // namespace fabric::tsp
