// The 10/FLP (Freelance) grammar as code: the commands' builders, and parsers that judge one
// message a ROUTER received without copying it. docs/freelance.md is the specification.
//
// Frame grammar (one token = one ZeroMQ frame; the routing id a ROUTER adds on receipt is shown
// as `identity` where the parsers expect it):
//
//   at a server:  identity ( ping / request )       ping    = "PING"
//                                                   request = control 1*body
//   at a client:  identity ( pong / reply )         pong    = "PONG"
//                                                   reply   = control 1*body
//   control = *OCTET   ; opaque to servers; fabric's client: 8 octets, big-endian sequence number
//   identity (client side) = the server's public endpoint, 1..255 octets
//
// A one-frame message is a command or malformed; two or more frames are a request or a reply
// whatever the first one holds. Nothing here allocates for what it parses.
//
// Thread safety: plain functions.
#pragma once

#include <fabric/message.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace fabric::flp {

/// The two commands, as they travel.
inline constexpr std::string_view ping_command = "PING";
inline constexpr std::string_view pong_command = "PONG";

/// fabric's control frame: the request's sequence number, 8 octets big-endian.
inline constexpr std::size_t sequence_size = 8;
/// The longest endpoint a server can have: its identity, and libzmq's routing ids are 1..255
/// octets.
inline constexpr std::size_t max_endpoint_size = 255;
/// The longest control frame a server accepts by default.
inline constexpr std::size_t default_max_control_size = 255;

/// Why a message broke the grammar.
enum class fault : std::uint8_t {
  none,
  no_identity,        ///< fewer than two frames: no routing id, or nothing after it
  bad_command,        ///< one frame after the identity that is not the expected command
  control_too_large,  ///< (server) a control frame over the bound
  bad_control,        ///< (client) a reply whose control frame is not fabric's 8 octets
  bad_identity,       ///< (client) an identity frame that is empty or over 255 octets
};

/// A short name for a fault, for logs and tests ("bad-command").
std::string_view to_string(fault f) noexcept;

/// What one message at a server is.
struct at_server {
  enum class kind : std::uint8_t { ping, request, malformed };
  kind what = kind::malformed;
  fault why = fault::none;
};

/// Judges `m` as a server's ROUTER received it: identity | ping, or identity | control | body...
/// A control frame longer than `max_control` octets makes the request malformed.
at_server parse_at_server(const message& m, std::size_t max_control = default_max_control_size) noexcept;

/// What one message at a client is.
struct at_client {
  enum class kind : std::uint8_t { pong, reply, malformed };
  kind what = kind::malformed;
  fault why = fault::none;
  /// The sender's identity (its endpoint); a view into `m`'s first frame, valid while it lives.
  std::string_view server{};
  /// The reply's sequence number (kind::reply only).
  std::uint64_t sequence = 0;
};

/// Judges `m` as a client's ROUTER received it: identity | pong, or identity | control | body...,
/// where the control frame must be fabric's sequence number.
at_client parse_at_client(const message& m) noexcept;

/// The frame that carries `sequence`.
frame encode_sequence(std::uint64_t sequence);
/// The sequence number in `f`, or nullopt when it is not 8 octets.
std::optional<std::uint64_t> decode_sequence(const frame& f) noexcept;

/// identity | "PING": what a client's ROUTER sends to ping `server`.
message ping_to(std::string_view server);
/// identity | "PONG": what a server's ROUTER sends back; `client` is the routing id received.
message pong_to(frame&& client);
/// identity | control | body...: a request to `server`; the body frames are shared (zmq_msg_copy:
/// large frames are reference-counted), so `body` stays whole for another attempt.
message request_to(std::string_view server, std::uint64_t sequence, message& body);

}  // namespace fabric::flp
