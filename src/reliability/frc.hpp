// The FRC/1 (fabric reliable channel, docs/reliable-channel.md) wire codec: builders and strict
// zero-copy parsers for every command, with no sockets and no clocks, so that the sender's and
// the receiver's machines stay pure. This file is the code of the grammar in section 4.
//
// Frame grammar (one token = one ZeroMQ frame; integers unsigned, big-endian, of the stated width):
//
//   frc-message = HEADER ( hello / welcome / data / skip / ack / nack / refuse
//                        / heartbeat / goodbye )
//   HEADER      = "FRC01"
//   ; sender -> receiver (through the sender's DEALER)
//   hello       = %x01 link stream sender receiver-inc-seen sender-inc acked last heartbeat-ms
//   data        = %x02 link first-seq ttls 1*1024body
//   skip        = %x03 link first-seq last-seq reason
//   ; receiver -> sender (through the receiver's ROUTER: the routing id goes first)
//   welcome     = %x11 link receiver-inc taken credit heartbeat-ms max-message
//   ack         = %x12 link taken credit *1024expired-seq
//   nack        = %x13 link expected-seq
//   refuse      = %x14 link code reason
//   ; either direction
//   heartbeat   = %x04
//   goodbye     = %x05 [link]
//
//   link = 4 octets, non-zero except in a REFUSE `version` (which always has link 0)
//   stream, sender = 1..255 octets       reason = 0..255 octets   code = 1..32 of [a-z-]
//   sender-inc, receiver-inc = 8 octets, non-zero   receiver-inc-seen = 8 octets (0 = never)
//   acked, last, taken = 8 octets, last >= acked
//   first-seq = 8 octets >= 1; last-seq >= first-seq; DATA's last entry is at most 2^64-1
//   expected-seq = 8 octets >= 1         expired-seq = 8 octets, 1 .. taken, strictly increasing
//   credit, max-message = 4 octets   heartbeat-ms = 4 octets, 1 .. 3,600,000
//   ttls = 4 octets per body that follows: each body's time left to live in ms (0 = no limit)
//   body = any octets (the receiver's max-message is checked by its machine, not here)
//
// The grammar is canonical: a message the parsers accept is exactly what the builders write for
// the values parsed, byte for byte. A parser checks the frame count of a command first (fault
// truncated or extra_frames), then its frames left to right, each frame's width before its value;
// the first fault found is the one reported. `reason` is UTF-8 meant for people and is not
// checked beyond its length: whoever prints it escapes it.
//
// Thread safety: stateless functions over values; safe from any thread.
#pragma once

#include <fabric/message.hpp>

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <span>
#include <string_view>
#include <system_error>

namespace fabric::frc {

inline constexpr std::string_view header = "FRC01";
/// What an unknown header begins with when it is another version of this protocol (answered with
/// REFUSE `version`) rather than garbage (dropped).
inline constexpr std::string_view header_family = "FRC";
/// The REFUSE `version` reason: the headers this implementation speaks, space separated.
inline constexpr std::string_view versions_spoken = "FRC01";
inline constexpr std::string_view version_code = "version";

inline constexpr std::size_t max_name_size = 255;      ///< stream and sender names
inline constexpr std::size_t max_reason_size = 255;    ///< SKIP and REFUSE reasons
inline constexpr std::size_t max_code_size = 32;       ///< REFUSE codes
inline constexpr std::size_t max_entries = 1024;       ///< DATA entries, ACK expired sequences
inline constexpr std::uint32_t max_heartbeat_ms = 3'600'000;

/// The command byte (the second frame of every message). Wire values: must not change.
enum class command : std::uint8_t {
  hello = 0x01,
  data = 0x02,
  skip = 0x03,
  heartbeat = 0x04,
  goodbye = 0x05,
  welcome = 0x11,
  ack = 0x12,
  nack = 0x13,
  refuse = 0x14,
};

/// Why a message breaks the grammar: one value for each way, so that a test or a log line can
/// tell the cases apart. code_of() says how a peer answers each.
enum class fault : std::uint8_t {
  none = 0,
  no_routing_id,       ///< at the receiver: no frame at all (a ROUTER always adds the routing id)
  no_header,           ///< no frame where the header belongs
  unknown_header,      ///< a header that is not FRC at all: garbage, dropped without a reply
  unknown_version,     ///< a header starting "FRC" but not "FRC01": answer REFUSE `version`
  bad_command,         ///< the command frame is missing, not one byte, or no FRC/1 command
  wrong_direction,     ///< well-formed, but a command that does not travel this way
  truncated,           ///< fewer frames than the command needs (DATA: no entry, or a lone ttl)
  extra_frames,        ///< more frames than the command takes
  bad_width,           ///< an integer frame that is not exactly its width
  zero_link,           ///< link 0 outside a REFUSE `version`
  version_on_link,     ///< a REFUSE `version` with a link other than 0
  bad_stream,          ///< HELLO's stream is empty or over 255 octets
  bad_sender,          ///< HELLO's sender name is empty or over 255 octets
  zero_incarnation,    ///< HELLO's sender-inc or WELCOME's receiver-inc is 0
  last_below_acked,    ///< HELLO's last < acked
  bad_heartbeat,       ///< heartbeat-ms outside 1 .. 3,600,000
  zero_sequence,       ///< DATA's or SKIP's first-seq, or NACK's expected-seq, is 0
  last_below_first,    ///< SKIP's last-seq < first-seq
  sequence_overflow,   ///< DATA's entries run past sequence 2^64-1
  too_many_entries,    ///< DATA with more than 1024 entries, ACK with more than 1024 expired
  bad_expired_seq,     ///< an ACK's expired-seq is 0, above its taken, or not above the previous
  bad_code,            ///< REFUSE's code is not 1..32 of [a-z-]
  reason_too_long,     ///< SKIP's or REFUSE's reason is over 255 octets
};

/// errc::not_supported for fault::unknown_version (answered with REFUSE `version`),
/// errc::protocol_error for fault::wrong_direction, errc::malformed for every other fault (dropped
/// and counted), an empty code for fault::none.
std::error_code code_of(fault f) noexcept;
/// A short description of `f`, for log lines and test messages.
std::string_view describe(fault f) noexcept;

/// HELLO's fields after the link, as built and as parsed (the names are views when parsed).
struct hello_fields {
  std::string_view stream;
  std::string_view sender;
  std::uint64_t receiver_inc_seen = 0;  ///< 0: this channel never talked to a receiver
  std::uint64_t sender_inc = 0;         ///< non-zero
  std::uint64_t acked = 0;
  std::uint64_t last = 0;  ///< >= acked
  std::uint32_t heartbeat_ms = 0;
  bool operator==(const hello_fields&) const = default;
};

/// WELCOME's fields after the link.
struct welcome_fields {
  std::uint64_t receiver_inc = 0;  ///< non-zero
  std::uint64_t taken = 0;
  std::uint32_t credit = 0;
  std::uint32_t heartbeat_ms = 0;
  std::uint32_t max_message = 0;
  bool operator==(const welcome_fields&) const = default;
};

/// SKIP's fields after the link.
struct skip_fields {
  std::uint64_t first_seq = 0;  ///< >= 1
  std::uint64_t last_seq = 0;   ///< >= first_seq
  std::string_view reason;
  bool operator==(const skip_fields&) const = default;
};

/// REFUSE's fields after the link.
struct refuse_fields {
  std::string_view code;
  std::string_view reason;
  bool operator==(const refuse_fields&) const = default;
};

/// An ACK's expired-seq frames, read in place: each element is decoded when it is read.
class seq_list {
 public:
  class iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = std::uint64_t;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    iterator(const seq_list* list, std::size_t i) noexcept : list_(list), i_(i) {}
    std::uint64_t operator*() const noexcept { return (*list_)[i_]; }
    iterator& operator++() noexcept { ++i_; return *this; }
    iterator operator++(int) noexcept { iterator was = *this; ++i_; return was; }
    bool operator==(const iterator&) const = default;

   private:
    const seq_list* list_ = nullptr;
    std::size_t i_ = 0;
  };

  seq_list() = default;
  /// `frames`: frames of exactly 8 octets each (the parser checked them).
  explicit seq_list(std::span<const frame> frames) noexcept : frames_(frames) {}
  std::size_t size() const noexcept { return frames_.size(); }
  bool empty() const noexcept { return frames_.empty(); }
  /// The i-th sequence. Precondition: i < size().
  std::uint64_t operator[](std::size_t i) const noexcept;
  iterator begin() const noexcept { return {this, 0}; }
  iterator end() const noexcept { return {this, size()}; }
  /// The frames themselves, inside the parsed message.
  std::span<const frame> frames() const noexcept { return frames_; }

 private:
  std::span<const frame> frames_;
};

/// One DATA entry, read in place.
struct data_entry {
  std::uint64_t seq;        ///< first-seq + the entry's index
  std::uint32_t ttl_ms;     ///< 0: no limit
  std::string_view body;    ///< the body's bytes, inside the message
  const frame& body_frame;  ///< the body's frame: share it (zmq copy) rather than copy its bytes
};

/// A DATA's entries as a view over its ttls frame and its body frames: nothing is copied or
/// allocated.
class data_view {
 public:
  class iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = data_entry;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    iterator(const data_view* data, std::size_t i) noexcept : data_(data), i_(i) {}
    data_entry operator*() const noexcept { return (*data_)[i_]; }
    iterator& operator++() noexcept { ++i_; return *this; }
    iterator operator++(int) noexcept { iterator was = *this; ++i_; return was; }
    bool operator==(const iterator&) const = default;

   private:
    const data_view* data_ = nullptr;
    std::size_t i_ = 0;
  };

  data_view() = default;
  /// `ttls`: 4 octets per body (the parser checked it); `bodies`: the body frames.
  data_view(std::uint64_t first_seq, const frame* ttls, std::span<const frame> bodies) noexcept
      : first_seq_(first_seq), ttls_(ttls), bodies_(bodies) {}
  std::uint64_t first_seq() const noexcept { return first_seq_; }
  /// The last entry's sequence. Precondition: !empty().
  std::uint64_t last_seq() const noexcept { return first_seq_ + size() - 1; }
  std::size_t size() const noexcept { return bodies_.size(); }
  bool empty() const noexcept { return bodies_.empty(); }
  /// The i-th entry. Precondition: i < size().
  data_entry operator[](std::size_t i) const noexcept;
  iterator begin() const noexcept { return {this, 0}; }
  iterator end() const noexcept { return {this, size()}; }
  /// The body frames themselves, inside the parsed message.
  std::span<const frame> frames() const noexcept { return bodies_; }

 private:
  std::uint64_t first_seq_ = 0;
  const frame* ttls_ = nullptr;
  std::span<const frame> bodies_;
};

/// An ACK's fields after the link.
struct ack_view {
  std::uint64_t taken = 0;
  std::uint32_t credit = 0;
  seq_list expired;  ///< each in 1 .. taken
};

/// One message, parsed without copying a byte: the views point into the message's frames and
/// stay valid while those frames live (moving the message as a whole keeps them valid; changing
/// or moving out a frame does not). Only the member of the parsed command is set.
struct parsed {
  /// fault::none for a message the grammar allows. On a fault only `peer`, `header` and, for
  /// fault::wrong_direction, `what` are meaningful.
  fault error = fault::none;
  command what = command::heartbeat;
  std::string_view peer;    ///< parse_at_receiver: frame 0, the sender's routing id
  std::string_view header;  ///< the header frame as received
  /// The command's link; 0 for HEARTBEAT, a GOODBYE of the whole connection and a REFUSE
  /// `version`. A link of 0 is never valid anywhere else, so 0 cannot be confused with a link.
  std::uint32_t link = 0;
  hello_fields hello;
  welcome_fields welcome;
  data_view data;
  skip_fields skip;
  ack_view ack;
  std::uint64_t expected_seq = 0;  ///< NACK
  refuse_fields refuse;

  explicit operator bool() const noexcept { return error == fault::none; }
};

/// Parses what a receiver's ROUTER received: routing id | "FRC01" | command.... Accepts HELLO,
/// DATA, SKIP, HEARTBEAT and GOODBYE; a well-formed WELCOME, ACK, NACK or REFUSE fails with
/// fault::wrong_direction, anything else with the fault that says why. `peer` is set whenever
/// the message has a frame, so that a fault::unknown_version can be answered. Constant work per
/// frame examined, and the frame count is judged before any scan, so that at most 1,030 frames
/// are examined however many arrive; allocates nothing.
parsed parse_at_receiver(const message& m) noexcept;
/// The views would outlive a temporary message.
parsed parse_at_receiver(message&& m) = delete;

/// Parses what a sender's DEALER received: "FRC01" | command.... Accepts WELCOME, ACK, NACK,
/// REFUSE, HEARTBEAT and GOODBYE; a well-formed HELLO, DATA or SKIP fails with
/// fault::wrong_direction. Same costs as parse_at_receiver.
parsed parse_at_sender(const message& m) noexcept;
/// The views would outlive a temporary message.
parsed parse_at_sender(message&& m) = delete;

// Builders. Each writes one whole message into `out`, cleared first: its frame capacity is kept,
// so a machine that reuses one message allocates no frame vector once warm. They check what they
// are given against the grammar, so that what they build always parses: a value the grammar
// forbids is a bug in the caller and throws fabric::error(errc::invalid_argument), leaving `out`
// in an unspecified but valid state.
//
// The sender's builders write what its DEALER sends (no routing id); the receiver's write what
// its ROUTER sends, routing id `peer` first. HEARTBEAT and GOODBYE come in both forms.

/// Sender: "FRC01" | 0x01 | link | stream | sender | receiver-inc-seen | sender-inc | acked |
/// last | heartbeat-ms.
void write_hello(message& out, std::uint32_t link, const hello_fields& hello);
/// Sender: "FRC01" | 0x03 | link | first-seq | last-seq | reason.
void write_skip(message& out, std::uint32_t link, const skip_fields& skip);
/// Sender: "FRC01" | 0x04.
void write_heartbeat(message& out);
/// Sender: "FRC01" | 0x05, closing the whole connection.
void write_goodbye(message& out);
/// Sender: "FRC01" | 0x05 | link, closing one channel (link non-zero).
void write_goodbye(message& out, std::uint32_t link);

/// Sender: a DATA built entry by entry into `out`, so that bodies are moved or shared into place
/// rather than copied where the caller has them as frames:
/// "FRC01" | 0x02 | link | first-seq | ttls | body{1..1024}.
/// The ttls frame is written by finish(), which the caller must call once the last entry is in
/// and before sending; `out` must not be changed meanwhile.
class data_writer {
 public:
  /// Clears `out` and writes the DATA's first five frames. Throws on link 0 or first_seq 0.
  data_writer(message& out, std::uint32_t link, std::uint64_t first_seq);

  /// Appends an entry whose body is a copy of `body`.
  void add(std::uint32_t ttl_ms, std::string_view body);
  /// Appends an entry whose body frame is moved in.
  void add(std::uint32_t ttl_ms, frame&& body);
  /// Appends an entry whose body frame shares `body`'s bytes (zmq_msg_copy: no byte is copied,
  /// and `body` keeps them, e.g. for a retransmission).
  void share(std::uint32_t ttl_ms, frame& body);
  /// Each add() or share() throws when the DATA already holds 1024 entries, or when the next
  /// entry's sequence would pass 2^64-1; full() says so beforehand.
  bool full() const noexcept;
  /// Writes the ttls frame: the DATA is complete. Throws when it holds no entry.
  void finish();

  std::size_t size() const noexcept { return entries_; }
  /// The sequence the next entry would carry (meaningless once full() for overflow).
  std::uint64_t next_seq() const noexcept { return first_seq_ + entries_; }

 private:
  void push_ttl(std::uint32_t ttl_ms);

  message& out_;
  std::uint64_t first_seq_;
  std::size_t entries_ = 0;
  char ttls_[4 * max_entries];
};

/// Receiver: peer | "FRC01" | 0x11 | link | receiver-inc | taken | credit | heartbeat-ms |
/// max-message.
void write_welcome(message& out, std::string_view peer, std::uint32_t link,
                   const welcome_fields& welcome);
/// Receiver: peer | "FRC01" | 0x12 | link | taken | credit | expired-seq{0..1024}, each expired
/// sequence in 1 .. taken.
void write_ack(message& out, std::string_view peer, std::uint32_t link, std::uint64_t taken,
               std::uint32_t credit, std::span<const std::uint64_t> expired = {});
/// Receiver: peer | "FRC01" | 0x13 | link | expected-seq (>= 1).
void write_nack(message& out, std::string_view peer, std::uint32_t link,
                std::uint64_t expected_seq);
/// Receiver: peer | "FRC01" | 0x14 | link | code | reason. Link 0 exactly when the code is
/// `version`.
void write_refuse(message& out, std::string_view peer, std::uint32_t link,
                  const refuse_fields& refuse);
/// Receiver: the answer to fault::unknown_version: peer | "FRC01" | 0x14 | 0 | "version" |
/// versions_spoken.
void write_version_refusal(message& out, std::string_view peer);
/// Receiver: peer | "FRC01" | 0x04.
void write_heartbeat_to(message& out, std::string_view peer);
/// Receiver: peer | "FRC01" | 0x05, closing the whole connection.
void write_goodbye_to(message& out, std::string_view peer);
/// Receiver: peer | "FRC01" | 0x05 | link, closing one channel (link non-zero).
void write_goodbye_to(message& out, std::string_view peer, std::uint32_t link);

}  // namespace fabric::frc
