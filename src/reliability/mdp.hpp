// The 7/MDP (Majordomo 0.1) and 8/MMI wire codec: builders and strict parsers for every frame
// sequence, with no sockets and no clocks, so the broker, client and worker machines stay pure.
//
// Frame grammar (one token = one ZeroMQ frame):
//
//   ; client sub-protocol, header "MDPC01"
//   client-request = delimiter C-HEADER service 1*body       ; client -> broker
//   client-reply   = delimiter C-HEADER service 1*body       ; broker -> client
//   ; worker sub-protocol, header "MDPW01"; a worker talks through a DEALER, so the delimiter stays
//   worker-command = delimiter W-HEADER ( ready / request / reply / heartbeat / disconnect )
//   ready          = %x01 service [credit]                   ; worker -> broker
//   request        = %x02 client delimiter 1*body            ; broker -> worker
//   reply          = %x03 client delimiter 1*body            ; worker -> broker
//   heartbeat      = %x04                                    ; both directions
//   disconnect     = %x05                                    ; both directions
//   delimiter      = ""                                      ; an empty frame
//   C-HEADER       = "MDPC01"
//   W-HEADER       = "MDPW01"
//   service        = 1*255OCTET                              ; any bytes, NUL included
//   client         = 1*255OCTET                              ; exactly one address
//   body           = *OCTET                                  ; empty frames allowed
//   ; 8/MMI: a service beginning "mmi." is answered by the broker itself
//
//   ; fabric's extensions, read only by fabric's broker (a 7/MDP broker drops both):
//   credit         = 1*20DIGIT                               ; decimal, value >= 1
//   ; with a credit above 1 the broker gives the worker up to that many requests at once, each
//   ; with an 8-byte token as its `client` address (a broker lowers a credit above its own cap)
//   stack          = 1*OCTET                                 ; return address, sent back as is
//
//   ; what a broker's ROUTER receives: the routing id first, then one of
//   router-input   = identity *stack client-request          ; *stack: up to max_return_frames
//                  / identity worker-command                 ; ready, reply, heartbeat, disconnect
//   identity       = *OCTET                                  ; added by the ROUTER, not checked
//   ; and what it sends: identity *stack client-reply (the request's own identity and stack) or
//   ; identity worker-command (request, heartbeat, disconnect)
//
// A REQ client never sees the delimiter (REQ adds and strips it); the client-side builder and
// parser take a `delimiter` argument for that, everything else always carries it.
//
// Every REQUEST and REPLY carries at least one body frame (an empty one will do): 7/MDP allows
// no other, and the reference peers drop or choke on one without. The builders refuse an empty
// body and the broker's parsers (parse_broker_input, parse_client, parse_worker) reject one as
// malformed. The parsers of what a client or worker receives accept one, so that an answer from
// a broker less strict than fabric's is not turned into a timeout.
//
// Thread safety: stateless functions over values; safe from any thread.
#pragma once

#include <fabric/message.hpp>
#include <fabric/result.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <system_error>

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
  std::uint32_t credit = 1;  ///< ready only: the credit announced (1 without a credit frame)
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
/// Worker -> broker READY with fabric's credit extension: "" | "MDPW01" | 0x01 | service |
/// credit (decimal). A credit of 1 is plain 7/MDP and builds the READY above, which any broker
/// takes; a credit of 0 is misuse.
message worker_ready(std::string_view service, std::uint32_t credit);
/// Broker -> worker REQUEST: "" | "MDPW01" | 0x02 | client | "" | body...
message worker_request(std::string_view client, message&& body);
/// Worker -> broker REPLY: "" | "MDPW01" | 0x03 | client | "" | body...
message worker_reply(std::string_view client, message&& body);
/// Either direction: "" | "MDPW01" | 0x04
message worker_heartbeat();
/// Either direction: "" | "MDPW01" | 0x05
message worker_disconnect();

// Broker-side builders: ROUTER messages, frame 0 naming the worker. No name checks: the broker
// sends only to routing ids it received and addresses it took from a parsed request.

/// Broker -> worker REQUEST written into `out` (cleared first; its capacity is kept, so a broker
/// reusing one message allocates nothing per request once warm):
/// worker | "" | "MDPW01" | 0x02 | client | "" | body...
/// The body frames are copies that share the bytes of `body` (zmq_msg_copy): nothing is copied,
/// and the request stays whole for a requeue.
void write_worker_request(message& out, std::string_view worker, std::string_view client,
                          std::span<frame> body);
/// Broker -> worker: worker | "" | "MDPW01" | 0x04
message worker_heartbeat_to(std::string_view worker);
/// Broker -> worker: worker | "" | "MDPW01" | 0x05
message worker_disconnect_to(std::string_view worker);

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
/// What a broker's ROUTER receives from a worker after the identity: READY (with or without the
/// credit frame), REPLY, HEARTBEAT or DISCONNECT. A REPLY (or REQUEST) without a body frame is
/// malformed. A broker that keeps the identity parses with parse_broker_input() instead.
result<worker_command> parse_worker(message&& m);
/// What a worker's DEALER receives from the broker: REQUEST, HEARTBEAT or DISCONNECT. A REQUEST
/// without a body frame is accepted (with an empty `body`).
result<worker_command> parse_from_broker_for_worker(message&& m);

// ---------------------------------------------------------------------------------------------
// What a broker's ROUTER receives (router-input above), parsed in place.

/// Why a message breaks the grammar: one value for each way, so that a test (or a log line) can
/// tell the cases apart. Every fault but wrong_direction stands for errc::malformed.
enum class fault : std::uint8_t {
  none = 0,
  no_delimiter,           ///< no empty frame after the routing id (and the return stack)
  return_stack_too_long,  ///< more frames before the delimiter than max_return_frames
  no_header,              ///< nothing after the delimiter
  unknown_header,         ///< the header is neither "MDPC01" nor "MDPW01"
  worker_return_stack,    ///< a worker command with frames between routing id and delimiter
  bad_service,            ///< the service frame is missing, empty or over 255 bytes
  no_body,                ///< a REQUEST or REPLY without a body frame
  bad_command,            ///< the command frame is missing, not one byte, or no 7/MDP command
  bad_address,            ///< a REQUEST or REPLY's client frame is missing, empty or over 255
  no_address_delimiter,   ///< the frame after the client address is missing or not empty
  bad_credit,             ///< READY's credit frame is not 1 to 20 decimal digits, or is zero
  extra_frames,           ///< frames after a READY's credit, a HEARTBEAT or a DISCONNECT
  wrong_direction,        ///< well-formed, but not sent this way (a worker's REQUEST)
};

/// errc::protocol_error for fault::wrong_direction (7/MDP answers it with DISCONNECT),
/// errc::malformed for every other fault (dropped), an empty code for fault::none.
std::error_code code_of(fault f) noexcept;
/// A short description of `f`, for log lines and test messages.
std::string_view describe(fault f) noexcept;

/// One message received by a broker's ROUTER, parsed without copying a byte: the views point
/// into the message's frames and stay valid while those frames live (moving the message as a
/// whole keeps them valid; changing or moving out a frame does not).
struct broker_input {
  enum class kind : std::uint8_t {
    client_request,  ///< identity | stack* | "" | "MDPC01" | service | body+
    ready,           ///< identity | "" | "MDPW01" | 0x01 | service [| credit]
    reply,           ///< identity | "" | "MDPW01" | 0x03 | client | "" | body+
    heartbeat,       ///< identity | "" | "MDPW01" | 0x04
    disconnect,      ///< identity | "" | "MDPW01" | 0x05
  };
  /// fault::none for a message the grammar allows. On a fault only `peer` is meaningful.
  fault error = fault::none;
  kind what = kind::heartbeat;
  std::string_view peer;          ///< frame 0: the sender's routing id (empty for no frames)
  std::span<const frame> stack;   ///< client_request: the frames between routing id and ""
  std::string_view service;       ///< client_request and ready
  std::string_view client;        ///< reply: the client address the worker was given
  std::uint32_t credit = 1;       ///< ready: 1, or the credit frame's value (at most 2^32-1)
  std::size_t body_at = 0;        ///< client_request and reply: index of the first body frame
  std::span<const frame> body;    ///< client_request and reply: one frame or more

  explicit operator bool() const noexcept { return error == fault::none; }
};

/// Parses what a broker's ROUTER received (frame 0 is the sender's routing id): a client's
/// REQUEST with up to `max_return_frames` return-stack frames before its delimiter, or a worker's
/// READY, REPLY, HEARTBEAT or DISCONNECT. A worker's well-formed REQUEST fails with
/// fault::wrong_direction, anything the grammar does not allow with the fault that says why.
/// Constant work per frame examined; allocates nothing.
broker_input parse_broker_input(const message& m, std::size_t max_return_frames) noexcept;
/// The views would outlive a temporary message.
broker_input parse_broker_input(message&& m, std::size_t max_return_frames) = delete;

}  // namespace fabric::mdp
