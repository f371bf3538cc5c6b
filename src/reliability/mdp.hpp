// The 7/MDP (Majordomo 0.1) and 8/MMI wire codec: builders and strict parsers for every frame
// sequence, with no sockets and no clocks, so the broker, client and worker machines stay pure.
//
// Frame grammar (one token = one ZeroMQ frame; a ROUTER's identity frame is never part of it):
//
//   ; client sub-protocol, header "MDPC01"
//   client-request = delimiter C-HEADER service 1*body       ; client -> broker
//   client-reply   = delimiter C-HEADER service 1*body       ; broker -> client
//   ; worker sub-protocol, header "MDPW01"; a worker talks through a DEALER, so the delimiter stays
//   worker-command = delimiter W-HEADER ( ready / request / reply / heartbeat / disconnect )
//   ready          = %x01 service                            ; worker -> broker
//   request        = %x02 client delimiter 1*body            ; broker -> worker
//   reply          = %x03 client delimiter 1*body            ; worker -> broker
//   heartbeat      = %x04                                    ; both directions
//   disconnect     = %x05                                    ; both directions
//   delimiter      = ""                                      ; an empty frame
//   C-HEADER       = "MDPC01"
//   W-HEADER       = "MDPW01"
//   service        = 1*255OCTET                              ; any bytes, NUL included
//   client         = 1*255OCTET                              ; exactly one ROUTER identity
//   body           = *OCTET                                  ; empty frames allowed
//   ; 8/MMI: a service beginning "mmi." is answered by the broker itself
//
// A REQ client never sees the delimiter (REQ adds and strips it); the client-side builder and
// parser take a `delimiter` argument for that, everything else always carries it.
//
// Every REQUEST and REPLY carries at least one body frame (an empty one will do): 7/MDP allows
// no other, and the reference peers drop or choke on one without. The builders refuse an empty
// body and the broker's parsers (parse_client, parse_worker) reject one as malformed. The parsers
// of what a client or worker receives accept one, so that an answer from a broker less strict
// than fabric's is not turned into a timeout.
//
// Thread safety: stateless functions over values; safe from any thread.
#pragma once

#include <fabric/message.hpp>
#include <fabric/result.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace fabric::mdp {

inline constexpr std::string_view client_header = "MDPC01";
inline constexpr std::string_view worker_header = "MDPW01";
inline constexpr std::string_view mmi_prefix = "mmi.";
/// 8/MMI's one standard service and its answers.
inline constexpr std::string_view mmi_service = "mmi.service";
inline constexpr std::string_view mmi_found = "200";
inline constexpr std::string_view mmi_not_found = "404";
inline constexpr std::string_view mmi_not_implemented = "501";

/// Service names and client addresses are 1..255 bytes: ROUTER identities cannot be longer, and a
/// bound keeps a hostile peer from making the broker key its maps on megabyte strings.
inline constexpr std::size_t max_name_size = 255;

/// The worker command byte (the third frame of every worker message).
enum class command : std::uint8_t {
  ready = 0x01,
  request = 0x02,
  reply = 0x03,
  heartbeat = 0x04,
  disconnect = 0x05,
};

/// Whether the client-side frames carry the leading empty delimiter: `included` for a DEALER
/// client (and what a broker's ROUTER sees after the identity), `stripped` for a REQ client.
enum class delimiter : bool { included, stripped };

/// A client's REQUEST as the broker receives it, or a REPLY as the client receives it.
struct client_request {
  std::string service;
  message body;  ///< the body frames, moved from the input (see parse_reply_for_client)
};

/// One worker-protocol command, in either direction.
struct worker_command {
  command kind = command::heartbeat;
  std::string service;  ///< set for ready only
  std::string client;   ///< set for request and reply only: the client's ROUTER identity
  message body;         ///< request and reply only: the body frames, moved from the input
};

/// True when `service` is answered by the broker itself (8/MMI).
bool is_mmi(std::string_view service) noexcept;

// Builders. They check what they are given (misuse is a bug in the caller, so it throws
// fabric::error(errc::invalid_argument): empty or over-long service/client names, an empty body
// for a REQUEST or REPLY) and move the body's frames rather than copy them.

/// Client -> broker REQUEST: "" | "MDPC01" | service | body...
message client_request_msg(std::string_view service, message&& body,
                           delimiter d = delimiter::included);
/// Broker -> client REPLY: "" | "MDPC01" | service | body... (the broker prepends the identity).
message client_reply(std::string_view service, message&& body);
/// Worker -> broker READY: "" | "MDPW01" | 0x01 | service
message worker_ready(std::string_view service);
/// Broker -> worker REQUEST: "" | "MDPW01" | 0x02 | client | "" | body...
message worker_request(std::string_view client, message&& body);
/// Worker -> broker REPLY: "" | "MDPW01" | 0x03 | client | "" | body...
message worker_reply(std::string_view client, message&& body);
/// Either direction: "" | "MDPW01" | 0x04
message worker_heartbeat();
/// Either direction: "" | "MDPW01" | 0x05
message worker_disconnect();

// Parsers. Input excludes any ROUTER identity frame. A sequence that breaks the grammar fails
// with errc::malformed; a well-formed command that must not travel in this direction (a worker
// sending REQUEST, a broker sending READY or REPLY) fails with errc::protocol_error, so that the
// broker can answer it with DISCONNECT as 7/MDP asks, while it silently drops malformed input.
// On failure the input is left in an unspecified but valid state.

/// What a broker's ROUTER receives from a client after the identity frame. A REQUEST without a
/// body frame is malformed.
result<client_request> parse_client(message&& m);
/// What a client receives from the broker; `d` says whether its socket stripped the delimiter.
/// A REPLY without a body frame is accepted (with an empty `body`).
result<client_request> parse_reply_for_client(message&& m, delimiter d = delimiter::included);
/// What a broker's ROUTER receives from a worker after the identity: READY, REPLY, HEARTBEAT or
/// DISCONNECT. A REPLY (or REQUEST) without a body frame is malformed.
result<worker_command> parse_worker(message&& m);
/// What a worker's DEALER receives from the broker: REQUEST, HEARTBEAT or DISCONNECT. A REQUEST
/// without a body frame is accepted (with an empty `body`).
result<worker_command> parse_from_broker_for_worker(message&& m);

}  // namespace fabric::mdp
