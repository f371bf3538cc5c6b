// The FRQ/1 (fabric reliable queue, docs/queue.md) wire codec: builders and strict zero-copy
// parsers for every command, with no sockets and no clocks, so that the producer's and the
// worker's machines stay pure. This file is the code of the grammar in section 4.
//
// Frame grammar (one token = one ZeroMQ frame; integers unsigned, big-endian, of the stated width):
//
//   HEADER             = "FRQ01"
//   ; worker -> producer, DEALER -> ROUTER (the ROUTER's routing id goes first)
//   hello              = HEADER %x01 worker-name worker-inc queue capacity heartbeat-ms
//   capacity-cmd       = HEADER %x02 window
//   result             = HEADER %x03 producer-inc task-id attempt status body
//   extend             = HEADER %x04 producer-inc task-id attempt extend-ms
//   worker-heartbeat   = HEADER %x05
//   bye                = HEADER %x06
//   ; producer -> worker, ROUTER -> DEALER
//   welcome            = HEADER %x11 producer-inc heartbeat-ms
//   task               = HEADER %x12 producer-inc task-id attempt priority deadline-ms
//                        enqueued-time body
//   recorded           = HEADER %x13 producer-inc task-id attempt verdict
//   cancel             = HEADER %x14 producer-inc task-id attempt
//   producer-heartbeat = HEADER %x15 producer-inc
//   refuse             = HEADER %x16 code reason
//
//   worker-name = 1..255 octets          queue = 1..255 octets, not beginning with 0x00
//   worker-inc, producer-inc = 8 octets, non-zero
//   capacity = 4 octets, 1 .. 65,536     window = 4 octets, 0 .. 65,536 (0: pause)
//   heartbeat-ms, extend-ms = 4 octets, 1 .. 3,600,000
//   task-id = 8 octets >= 1              attempt = 4 octets >= 1
//   status = 1 octet: 0x00 done, 0x01 failed, 0x02 rejected
//   verdict = 1 octet: 0x00 recorded, 0x01 stale, 0x02 unknown
//   priority = 1 octet, 0 .. 7 (0 first)  deadline-ms = 4 octets, 1 .. 86,400,000
//   enqueued-time = 8 octets, ns since the Unix epoch
//   code = 1..32 of [a-z-]   reason = 0..255 octets
//   body = any octets; RESULT's body is the result when done and a reason (0..255 octets)
//          otherwise
//
// The grammar is canonical: a message the parsers accept is exactly what the builders write for
// the values parsed, byte for byte. Every command has a fixed number of frames, so a parser checks
// the header and the command byte, then the frame count (fault truncated or extra_frames), then
// the frames left to right, each frame's width before its value; the first fault found is the one
// reported. Direction is judged last: a command of the other side is reported as
// fault::wrong_direction only when it is otherwise well-formed. `reason` is UTF-8 meant for people
// and is not checked beyond its length.
//
// Thread safety: stateless functions over values; safe from any thread.
#pragma once

#include <fabric/message.hpp>

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <system_error>

namespace fabric::frq {

inline constexpr std::string_view header = "FRQ01";
/// What an unknown header begins with when it is another version of this protocol (answered with
/// REFUSE `version` by the producer) rather than garbage (dropped).
inline constexpr std::string_view header_family = "FRQ";
/// The REFUSE `version` reason: the headers this implementation speaks, space separated.
inline constexpr std::string_view versions_spoken = "FRQ01";
inline constexpr std::string_view version_code = "version";

inline constexpr std::size_t max_name_size = 255;    ///< a worker name
inline constexpr std::size_t max_queue_size = 255;   ///< a queue name
inline constexpr std::size_t max_reason_size = 255;  ///< REFUSE's reason, RESULT's when not done
inline constexpr std::size_t max_code_size = 32;
inline constexpr std::uint32_t max_capacity = 65'536;
inline constexpr std::uint32_t max_heartbeat_ms = 3'600'000;
inline constexpr std::uint32_t max_extend_ms = 3'600'000;
inline constexpr std::uint32_t max_deadline_ms = 86'400'000;
/// Priority levels: 0 (handed out first) .. levels - 1.
inline constexpr std::uint8_t levels = 8;

/// The command byte (the frame after the header). Worker commands are below 0x10, producer
/// commands from 0x11. Wire values: must not change.
enum class command : std::uint8_t {
  hello = 0x01,
  capacity = 0x02,
  result = 0x03,
  extend = 0x04,
  worker_heartbeat = 0x05,
  bye = 0x06,
  welcome = 0x11,
  task = 0x12,
  recorded = 0x13,
  cancel = 0x14,
  producer_heartbeat = 0x15,
  refuse = 0x16,
};

/// How a worker's attempt ended (RESULT). Wire values: must not change.
enum class status : std::uint8_t {
  done = 0x00,      ///< the body is the result
  failed = 0x01,    ///< try again later (with back-off); the body is a reason
  rejected = 0x02,  ///< never try again: dead-letter it now; the body is the reason
};

/// The producer's answer to a RESULT (RECORDED). Wire values: must not change.
enum class verdict : std::uint8_t {
  recorded = 0x00,  ///< durable in the producer's journal (now or before: a repeat is harmless)
  stale = 0x01,     ///< the attempt was taken back or the task is finished: the result was dropped
  unknown = 0x02,   ///< no such task (e.g. another producer incarnation)
};

/// Why a message breaks the grammar: one value for each way, so that a test or a log line can
/// tell the cases apart. code_of() says how a peer answers each.
enum class fault : std::uint8_t {
  none = 0,
  no_routing_id,     ///< at the producer: no frame at all (a ROUTER always adds the routing id)
  no_header,         ///< no frame where the header belongs
  unknown_header,    ///< a header that is not FRQ at all: garbage, dropped without a reply
  unknown_version,   ///< a header starting "FRQ" but not "FRQ01" (the producer answers REFUSE
                     ///< `version`; a worker drops and counts it)
  bad_command,       ///< the command frame is missing, not one byte, or no FRQ/1 command
  wrong_direction,   ///< well-formed, but a command that travels the other way
  truncated,         ///< fewer frames than the command needs
  extra_frames,      ///< more frames than the command takes
  bad_width,         ///< an integer frame that is not exactly its width
  bad_name,          ///< HELLO's worker-name is empty or over 255 octets
  bad_queue,         ///< HELLO's queue is empty, over 255 octets or begins with 0x00
  zero_incarnation,  ///< a worker-inc or producer-inc of 0
  zero_task,         ///< a task-id of 0
  zero_attempt,      ///< an attempt of 0
  bad_capacity,      ///< HELLO's capacity outside 1 .. 65,536, CAPACITY's above 65,536
  bad_heartbeat,     ///< heartbeat-ms outside 1 .. 3,600,000
  bad_extend,        ///< extend-ms outside 1 .. 3,600,000
  bad_status,        ///< RESULT's status is not 0, 1 or 2
  bad_verdict,       ///< RECORDED's verdict is not 0, 1 or 2
  bad_priority,      ///< TASK's priority is not 0 .. 7
  bad_deadline,      ///< TASK's deadline-ms outside 1 .. 86,400,000
  bad_code,          ///< REFUSE's code is not 1..32 of [a-z-]
  reason_too_long,   ///< REFUSE's reason, or a failed or rejected RESULT's, is over 255 octets
};

/// errc::not_supported for fault::unknown_version, errc::protocol_error for
/// fault::wrong_direction, errc::malformed for every other fault (dropped and counted), an empty
/// code for fault::none.
std::error_code code_of(fault f) noexcept;
/// A short description of `f`, for log lines and test messages.
std::string_view describe(fault f) noexcept;

/// HELLO's fields, as built and as parsed.
struct hello_fields {
  std::string_view worker_name;    ///< 1..255 octets: stable across the worker's restarts
  std::uint64_t worker_inc = 0;    ///< non-zero, random per start of the worker process
  std::string_view queue;          ///< 1..255 octets, not beginning with 0x00
  std::uint32_t capacity = 0;      ///< 1 .. 65,536: the most tasks the worker holds at once
  std::uint32_t heartbeat_ms = 0;  ///< 1 .. 3,600,000: how often the worker heartbeats
  bool operator==(const hello_fields&) const = default;
};

/// Which attempt of which task a RESULT, EXTEND, TASK, RECORDED or CANCEL is about.
struct attempt_key {
  std::uint64_t task_id = 0;  ///< >= 1: the task's sequence in the producer's journal
  std::uint32_t attempt = 0;  ///< >= 1: 1 for the first hand-out, counting every one taken back
  bool operator==(const attempt_key&) const = default;
};

/// TASK's fields between the attempt and the body, as built and as parsed.
struct task_fields {
  attempt_key key;
  std::uint8_t priority = 0;       ///< 0 .. 7, 0 handed out first
  std::uint32_t deadline_ms = 0;   ///< 1 .. 86,400,000: the time the worker has from receipt
  std::uint64_t enqueued_ns = 0;   ///< when the producer's journal took the task
  bool operator==(const task_fields&) const = default;
};

/// REFUSE's fields.
struct refuse_fields {
  std::string_view code;
  std::string_view reason;
  bool operator==(const refuse_fields&) const = default;
};

/// One message, parsed without copying a byte: the views point into the message's frames and
/// stay valid while those frames live (moving the message as a whole keeps them valid; changing
/// or moving out a frame does not). Only the members of the parsed command are set.
struct parsed {
  /// fault::none for a message the grammar allows. On a fault only `peer`, `header` and, for
  /// fault::wrong_direction, `what` are meaningful.
  fault error = fault::none;
  command what = command::worker_heartbeat;
  std::string_view peer;            ///< parse_at_producer: frame 0, the worker's routing id
  std::string_view header;          ///< the header frame as received
  hello_fields hello;               ///< HELLO
  std::uint32_t capacity = 0;       ///< CAPACITY's window (HELLO's is in `hello`)
  /// RESULT, EXTEND and every producer command but REFUSE.
  std::uint64_t producer_inc = 0;
  attempt_key key;                  ///< RESULT, EXTEND, TASK, RECORDED and CANCEL
  frq::status status = frq::status::done;        ///< RESULT
  std::uint32_t extend_ms = 0;      ///< EXTEND
  std::uint32_t heartbeat_ms = 0;   ///< WELCOME (HELLO's is in `hello`)
  task_fields task;                 ///< TASK (its key is `key` too)
  std::string_view body;            ///< RESULT's and TASK's body: its bytes, inside the message
  const frame* body_frame = nullptr;  ///< the body's frame: share it rather than copy it
  frq::verdict verdict = frq::verdict::recorded;  ///< RECORDED
  refuse_fields refuse;             ///< REFUSE

  explicit operator bool() const noexcept { return error == fault::none; }
};

/// Parses what the producer's ROUTER received: routing id | "FRQ01" | command.... Accepts HELLO,
/// CAPACITY, RESULT, EXTEND, HEARTBEAT and BYE; a well-formed producer command fails with
/// fault::wrong_direction, anything else with the fault that says why. `peer` is set whenever the
/// message has a frame, so that a fault::unknown_version can be answered with
/// write_version_refusal(). The frame count is judged before any frame is read, so at most ten
/// frames are examined however many arrive; allocates nothing.
parsed parse_at_producer(const message& m) noexcept;
/// The views would outlive a temporary message.
parsed parse_at_producer(message&& m) = delete;

/// Parses what a worker's DEALER received: "FRQ01" | command.... Accepts WELCOME, TASK, RECORDED,
/// CANCEL, HEARTBEAT and REFUSE; a well-formed worker command fails with fault::wrong_direction.
/// Same costs as parse_at_producer.
parsed parse_at_worker(const message& m) noexcept;
/// The views would outlive a temporary message.
parsed parse_at_worker(message&& m) = delete;

// Builders. Each writes one whole message into `out`, cleared first: its frame capacity is kept,
// so a machine that reuses one message allocates no frame vector once warm. They check what they
// are given against the grammar, so that what they build always parses: a value the grammar
// forbids is a bug in the caller and throws fabric::error(errc::invalid_argument), leaving `out`
// in an unspecified but valid state. Producer builders take the worker's routing id first and
// write it as frame 0, where the ROUTER looks for it.

/// Worker: "FRQ01" | 0x01 | worker-name | worker-inc | queue | capacity | heartbeat-ms.
void write_hello(message& out, const hello_fields& hello);
/// Worker: "FRQ01" | 0x02 | window (0 .. 65,536; 0 pauses the worker).
void write_capacity(message& out, std::uint32_t window);
/// Worker: "FRQ01" | 0x03 | producer-inc | task-id | attempt | status | body, the body copied.
/// A failed or rejected result's body is its reason: at most 255 octets.
void write_result(message& out, std::uint64_t producer_inc, attempt_key key, status s,
                  std::string_view body);
/// Worker: as above, the body frame moved in.
void write_result(message& out, std::uint64_t producer_inc, attempt_key key, status s,
                  frame&& body);
/// Worker: "FRQ01" | 0x04 | producer-inc | task-id | attempt | extend-ms.
void write_extend(message& out, std::uint64_t producer_inc, attempt_key key,
                  std::uint32_t extend_ms);
/// Worker: "FRQ01" | 0x05.
void write_worker_heartbeat(message& out);
/// Worker: "FRQ01" | 0x06.
void write_bye(message& out);

/// Producer: peer | "FRQ01" | 0x11 | producer-inc | heartbeat-ms.
void write_welcome(message& out, std::string_view peer, std::uint64_t producer_inc,
                   std::uint32_t heartbeat_ms);
/// Producer: peer | "FRQ01" | 0x12 | producer-inc | task-id | attempt | priority | deadline-ms |
/// enqueued-time | body, the body copied.
void write_task(message& out, std::string_view peer, std::uint64_t producer_inc,
                const task_fields& task, std::string_view body);
/// Producer: as above, the body frame moved in (or a zmq copy of the journal's: the bytes are
/// shared, not copied).
void write_task(message& out, std::string_view peer, std::uint64_t producer_inc,
                const task_fields& task, frame&& body);
/// Producer: peer | "FRQ01" | 0x13 | producer-inc | task-id | attempt | verdict.
void write_recorded(message& out, std::string_view peer, std::uint64_t producer_inc,
                    attempt_key key, verdict v);
/// Producer: peer | "FRQ01" | 0x14 | producer-inc | task-id | attempt.
void write_cancel(message& out, std::string_view peer, std::uint64_t producer_inc,
                  attempt_key key);
/// Producer: peer | "FRQ01" | 0x15 | producer-inc.
void write_producer_heartbeat(message& out, std::string_view peer, std::uint64_t producer_inc);
/// Producer: peer | "FRQ01" | 0x16 | code | reason.
void write_refuse(message& out, std::string_view peer, const refuse_fields& refuse);
/// Producer: the answer to fault::unknown_version: peer | "FRQ01" | 0x16 | "version" |
/// versions_spoken.
void write_version_refusal(message& out, std::string_view peer);

}  // namespace fabric::frq
