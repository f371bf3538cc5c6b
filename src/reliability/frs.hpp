// The FRS/1 (fabric replayable stream, docs/stream.md) wire codec: builders and strict zero-copy
// parsers for every command, with no sockets and no clocks, so that the publisher's and the
// subscriber's machines stay pure. This file is the code of the grammar in section 4.
//
// Frame grammar (one token = one ZeroMQ frame, except inside a packed frame or BATCH's entries
// frame; integers unsigned, big-endian, of the stated width):
//
//   HEADER     = "FRS01"
//   ; live feed, PUB -> SUB: the topic frame, then one packed frame holding the rest, its tokens
//   ; laid end to end (each frame is a message part on every subscriber's pipe: the hot path)
//   live       = stream live-frame        ; live-frame      = HEADER %x01 publisher-inc seq time body
//   beacon     = stream beacon-frame      ; beacon-frame    = HEADER %x02 publisher-inc last
//   heartbeat  = %x00 heartbeat-frame     ; heartbeat-frame = HEADER %x03 publisher-inc heartbeat-ms
//   ; replay endpoint, DEALER -> ROUTER (the ROUTER's routing id goes first)
//   fetch      = HEADER %x11 request stream from-seq max-count
//   fetch-time = HEADER %x12 request stream from-time max-count
//   ; replay endpoint, ROUTER -> DEALER
//   batch      = HEADER %x21 request publisher-inc first-seq entries
//   end        = HEADER %x22 request publisher-inc next-seq last
//   gone       = HEADER %x23 request publisher-inc from-seq first-held
//   refuse     = HEADER %x24 request code reason
//
//   stream = 1..255 octets, not beginning with 0x00      publisher-inc = 8 octets, non-zero
//   seq, first-seq, from-seq, next-seq = 8 octets >= 1   last = 8 octets (0: nothing yet)
//   first-held = 8 octets > from-seq   time, from-time = 8 octets, ns since the Unix epoch
//   entries = 1*1024entry, in ONE frame, the entries laid end to end (each frame is a message
//     part: one frame for the whole BATCH lets a subscriber catch up at the speed of reading)
//   entry = time length body   length = 4 octets, the body's size; the lengths account for the
//     entries frame exactly. BATCH's last entry is at most sequence 2^64-1
//   request = 4 octets    max-count = 4 octets, 1 .. 1024   heartbeat-ms = 4 octets, 1 .. 3,600,000
//   code = 1..32 of [a-z-]   reason = 0..255 octets   body = any octets
//
// A live-frame is 30 octets and the body; a beacon-frame exactly 22, a heartbeat-frame exactly 18.
//
// The grammar is canonical: a message the parsers accept is exactly what the builders write for
// the values parsed, byte for byte. A replay parser checks the header and the command byte, then
// the frame count of the command (fault truncated, extra_frames or too_many_bodies), then its
// frames left to right, each frame's width before its value. The live parser checks the frame
// count first (no_topic, no_header, extra_frames), then the packed frame's header, its command
// byte and its size (truncated, extra_frames), then the topic, since what it may hold depends on
// the command, then the packed fields left to right. BATCH's entries frame is walked last, entry
// by entry (truncated for an empty frame or an entry cut short, too_many_bodies at a whole 1025th
// entry), then its sequences (sequence_overflow). The first fault found is the one reported.
// `reason` is UTF-8 meant for people and is not checked beyond its length.
//
// Thread safety: stateless functions over values; safe from any thread.
#pragma once

#include <fabric/message.hpp>

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <string_view>
#include <system_error>

namespace fabric::frs {

inline constexpr std::string_view header = "FRS01";
/// What an unknown header begins with when it is another version of this protocol (answered with
/// REFUSE `version` on the replay endpoint) rather than garbage (dropped).
inline constexpr std::string_view header_family = "FRS";
/// The REFUSE `version` reason: the headers this implementation speaks, space separated.
inline constexpr std::string_view versions_spoken = "FRS01";
inline constexpr std::string_view version_code = "version";
/// The topic of the publisher's HEARTBEAT: one octet 0x00, which no stream name begins with.
inline constexpr std::string_view heartbeat_topic{"\0", 1};

inline constexpr std::size_t max_stream_size = 255;
inline constexpr std::size_t max_reason_size = 255;
inline constexpr std::size_t max_code_size = 32;
inline constexpr std::size_t max_bodies = 1024;      ///< entries in one BATCH
/// What a BATCH entry takes besides its body: time (8 octets) and length (4 octets).
inline constexpr std::size_t batch_entry_head = 12;
inline constexpr std::uint32_t max_count = 1024;     ///< a FETCH's max-count
inline constexpr std::uint32_t max_heartbeat_ms = 3'600'000;
/// Where a LIVE's body starts in its packed frame (parsed::live.body_frame): after the header,
/// the command byte, publisher-inc, seq and time.
inline constexpr std::size_t live_body_offset = 30;
inline constexpr std::size_t beacon_frame_size = 22;     ///< a BEACON's packed frame, exactly
inline constexpr std::size_t heartbeat_frame_size = 18;  ///< a HEARTBEAT's packed frame, exactly

/// The command byte (the frame after the header; on the live feed, the octet after it in the
/// packed frame). Wire values: must not change.
enum class command : std::uint8_t {
  live = 0x01,
  beacon = 0x02,
  heartbeat = 0x03,
  fetch = 0x11,
  fetch_time = 0x12,
  batch = 0x21,
  end = 0x22,
  gone = 0x23,
  refuse = 0x24,
};

/// Why a message breaks the grammar: one value for each way, so that a test or a log line can
/// tell the cases apart. code_of() says how a peer answers each.
enum class fault : std::uint8_t {
  none = 0,
  no_routing_id,       ///< at the publisher: no frame at all (a ROUTER always adds the routing id)
  no_topic,            ///< on the live feed: no frame at all
  no_header,           ///< no frame where the header (on the live feed, the packed frame) belongs
  unknown_header,      ///< a header that is not FRS at all: garbage, dropped without a reply
  unknown_version,     ///< a header starting "FRS" but not "FRS01" (the publisher answers
                       ///< REFUSE `version`; a subscriber drops and counts it). On the live feed,
                       ///< a packed frame that starts "FRS" but not "FRS01"
  bad_command,         ///< the command frame is missing, not one byte, or not a command of the
                       ///< feed it arrived on (live commands on the replay endpoint and back); on
                       ///< the live feed, no octet after "FRS01" or not a live command there
  wrong_direction,     ///< well-formed, but a replay command that travels the other way
  truncated,           ///< fewer frames than the command needs, or fewer octets in a packed
                       ///< frame; BATCH: an empty entries frame, or an entry cut short (its
                       ///< time and length, or its body, run past the frame)
  extra_frames,        ///< more frames, or more octets in a fixed-size packed frame, than the
                       ///< command takes
  too_many_bodies,     ///< a BATCH whose entries frame holds a whole 1025th entry
  bad_width,           ///< an integer frame that is not exactly its width
  bad_stream,          ///< a stream name that is empty, over 255 octets or begins with 0x00
  bad_topic,           ///< a HEARTBEAT whose topic is not the one octet 0x00
  zero_incarnation,    ///< a publisher-inc of 0
  zero_sequence,       ///< a seq, first-seq, from-seq or next-seq of 0
  sequence_overflow,   ///< BATCH's entries run past sequence 2^64-1
  first_held_too_low,  ///< GONE's first-held is not above its from-seq
  bad_max_count,       ///< max-count outside 1 .. 1024
  bad_heartbeat,       ///< heartbeat-ms outside 1 .. 3,600,000
  bad_code,            ///< REFUSE's code is not 1..32 of [a-z-]
  reason_too_long,     ///< REFUSE's reason is over 255 octets
};

/// errc::not_supported for fault::unknown_version, errc::protocol_error for
/// fault::wrong_direction, errc::malformed for every other fault (dropped and counted), an empty
/// code for fault::none.
std::error_code code_of(fault f) noexcept;
/// A short description of `f`, for log lines and test messages.
std::string_view describe(fault f) noexcept;

/// A LIVE's fields after the incarnation (the body is a view when parsed).
struct live_view {
  std::uint64_t seq = 0;                ///< >= 1
  std::uint64_t time_ns = 0;            ///< when the publisher's journal took it
  std::string_view body;                ///< the body's bytes, inside the message
  /// The packed frame (frame 1) that holds the body, which starts at live_body_offset in it.
  const frame* body_frame = nullptr;
};

/// A FETCH's or FETCH-TIME's fields after the request, as built and as parsed.
struct fetch_fields {
  std::string_view stream;
  std::uint64_t from = 0;       ///< FETCH: from-seq (>= 1); FETCH-TIME: from-time in ns
  std::uint32_t max_count = 0;  ///< 1 .. 1024
  bool operator==(const fetch_fields&) const = default;
};

/// END's fields after the incarnation.
struct end_fields {
  std::uint64_t next_seq = 0;  ///< >= 1: the sequence the subscriber should expect next
  std::uint64_t last = 0;      ///< the stream's last sequence (0: nothing yet)
  bool operator==(const end_fields&) const = default;
};

/// GONE's fields after the incarnation: sequences from_seq .. first_held - 1 are lost.
struct gone_fields {
  std::uint64_t from_seq = 0;    ///< >= 1
  std::uint64_t first_held = 0;  ///< > from_seq
  bool operator==(const gone_fields&) const = default;
};

/// REFUSE's fields after the request.
struct refuse_fields {
  std::string_view code;
  std::string_view reason;
  bool operator==(const refuse_fields&) const = default;
};

/// One BATCH message, read in place.
struct batch_entry {
  std::uint64_t seq;        ///< first-seq + the entry's index
  std::uint64_t time_ns;    ///< when the publisher's journal took it
  std::string_view body;    ///< the body's bytes, inside the entries frame
  /// The entries frame, which holds this body among the others: share it (zmq copy) rather than
  /// copy the body's bytes.
  const frame& body_frame;
};

/// A BATCH's messages as a view over its entries frame, which the parser has walked once and
/// found to hold size() well-formed entries: nothing is copied or allocated.
class batch_view {
 public:
  /// Walks the entries from the first: each step reads one entry's time and length.
  class iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = batch_entry;
    using difference_type = std::ptrdiff_t;
    iterator() = default;
    iterator(const batch_view* batch, std::size_t i, std::size_t at) noexcept
        : batch_(batch), i_(i), at_(at) {}
    batch_entry operator*() const noexcept { return batch_->entry_at(i_, at_); }
    iterator& operator++() noexcept;
    iterator operator++(int) noexcept { iterator was = *this; ++*this; return was; }
    bool operator==(const iterator& o) const noexcept { return i_ == o.i_; }

   private:
    const batch_view* batch_ = nullptr;
    std::size_t i_ = 0;   // the entry's index
    std::size_t at_ = 0;  // where the entry starts in the entries frame
  };

  batch_view() = default;
  /// `entries`: the entries frame, which the parser found to hold `count` entries exactly.
  batch_view(std::uint64_t first_seq, const frame* entries, std::size_t count) noexcept
      : first_seq_(first_seq), entries_(entries), count_(count) {}
  std::uint64_t first_seq() const noexcept { return first_seq_; }
  /// The last message's sequence. Precondition: !empty().
  std::uint64_t last_seq() const noexcept { return first_seq_ + count_ - 1; }
  std::size_t size() const noexcept { return count_; }
  bool empty() const noexcept { return count_ == 0; }
  /// The i-th message, found by walking from the first entry: O(i). Iterate to visit them all.
  /// Precondition: i < size().
  batch_entry operator[](std::size_t i) const noexcept;
  iterator begin() const noexcept { return {this, 0, 0}; }
  iterator end() const noexcept { return {this, count_, 0}; }
  /// The entries frame itself, inside the parsed message; nullptr when nothing was parsed.
  const frame* entries_frame() const noexcept { return entries_; }

 private:
  // The entry of index `i` that starts at octet `at` of the entries frame.
  batch_entry entry_at(std::size_t i, std::size_t at) const noexcept;

  std::uint64_t first_seq_ = 0;
  const frame* entries_ = nullptr;
  std::size_t count_ = 0;
};

/// One message, parsed without copying a byte: the views point into the message's frames and
/// stay valid while those frames live (moving the message as a whole keeps them valid; changing
/// or moving out a frame does not). Only the members of the parsed command are set.
struct parsed {
  /// fault::none for a message the grammar allows. On a fault only `peer`, `header` and, for
  /// fault::wrong_direction, `what` are meaningful.
  fault error = fault::none;
  command what = command::heartbeat;
  std::string_view peer;    ///< parse_at_publisher: frame 0, the subscriber's routing id
  /// The header frame as received; on the live feed, the packed frame's first five octets (fewer
  /// when it is shorter).
  std::string_view header;
  /// LIVE and BEACON: the topic frame, the stream's name; FETCH and FETCH-TIME: their stream.
  std::string_view stream;
  std::uint32_t request = 0;        ///< every replay command
  std::uint64_t publisher_inc = 0;  ///< every command but FETCH, FETCH-TIME and REFUSE
  live_view live;
  std::uint64_t last = 0;           ///< BEACON: the stream's last sequence
  std::uint32_t heartbeat_ms = 0;   ///< HEARTBEAT
  fetch_fields fetch;               ///< FETCH and FETCH-TIME (its `stream` is `stream` above)
  batch_view batch;
  end_fields end;
  gone_fields gone;
  refuse_fields refuse;

  explicit operator bool() const noexcept { return error == fault::none; }
};

/// Parses what a SUB received: topic | "FRS01" command.... Accepts LIVE, BEACON and HEARTBEAT;
/// anything else fails with the fault that says why. Constant work, a fixed number of frames
/// examined; allocates nothing.
parsed parse_live(const message& m) noexcept;
/// The views would outlive a temporary message.
parsed parse_live(message&& m) = delete;

/// Parses what the publisher's ROUTER received: routing id | "FRS01" | command.... Accepts FETCH
/// and FETCH-TIME; a well-formed BATCH, END, GONE or REFUSE fails with fault::wrong_direction,
/// anything else with the fault that says why. `peer` is set whenever the message has a frame, so
/// that a fault::unknown_version can be answered with write_version_refusal(). The frame count is
/// judged before any scan, so that at most seven frames are examined however many arrive;
/// allocates nothing.
parsed parse_at_publisher(const message& m) noexcept;
/// The views would outlive a temporary message.
parsed parse_at_publisher(message&& m) = delete;

/// Parses what a subscriber's DEALER received: "FRS01" | command.... Accepts BATCH, END, GONE and
/// REFUSE; a well-formed FETCH or FETCH-TIME fails with fault::wrong_direction. Same costs as
/// parse_at_publisher, but for a BATCH's entries frame, walked once: at most 1,025 entries are
/// examined however many it holds.
parsed parse_at_subscriber(const message& m) noexcept;
/// The views would outlive a temporary message.
parsed parse_at_subscriber(message&& m) = delete;

// Builders. Each writes one whole message into `out`, cleared first: its frame capacity is kept,
// so a machine that reuses one message allocates no frame vector once warm. They check what they
// are given against the grammar, so that what they build always parses: a value the grammar
// forbids is a bug in the caller and throws fabric::error(errc::invalid_argument), leaving `out`
// in an unspecified but valid state.

// The live feed's builders write the topic frame and one packed frame filled in place: a LIVE's
// packed frame is one allocation, a BEACON's or a HEARTBEAT's none (ZeroMQ keeps it inline).

/// Publisher (PUB): stream | "FRS01" 0x01 publisher-inc seq time body, the body copied once into
/// the packed frame.
void write_live(message& out, std::string_view stream, std::uint64_t publisher_inc,
                std::uint64_t seq, std::uint64_t time_ns, std::string_view body);
/// Publisher (PUB): stream | "FRS01" 0x02 publisher-inc last.
void write_beacon(message& out, std::string_view stream, std::uint64_t publisher_inc,
                  std::uint64_t last);
/// Publisher (PUB): 0x00 | "FRS01" 0x03 publisher-inc heartbeat-ms.
void write_heartbeat(message& out, std::uint64_t publisher_inc, std::uint32_t heartbeat_ms);

/// Subscriber (DEALER): "FRS01" | 0x11 | request | stream | from-seq | max-count.
void write_fetch(message& out, std::uint32_t request, const fetch_fields& fetch);
/// Subscriber (DEALER): "FRS01" | 0x12 | request | stream | from-time | max-count.
void write_fetch_time(message& out, std::uint32_t request, const fetch_fields& fetch);

/// Publisher (ROUTER): a BATCH built message by message into `out`:
/// peer | "FRS01" | 0x21 | request | publisher-inc | first-seq | entries.
/// Each body is copied once, into a heap buffer that finish() hands to the entries frame as it is
/// (the frame frees it): no final copy. finish() must be called once the last body is in and
/// before sending; `out` must not be changed meanwhile. The caller bounds the bytes of a BATCH
/// itself (bytes() says how many the entries take so far).
class batch_writer {
 public:
  /// Clears `out` and writes the BATCH's first six frames. Throws on a publisher_inc or
  /// first_seq of 0.
  batch_writer(message& out, std::string_view peer, std::uint32_t request,
               std::uint64_t publisher_inc, std::uint64_t first_seq);
  ~batch_writer();
  batch_writer(const batch_writer&) = delete;
  batch_writer& operator=(const batch_writer&) = delete;

  /// Appends a message whose body is a copy of `body`. Throws when the BATCH already holds 1024
  /// entries, when the next message's sequence would pass 2^64-1 (full() says both beforehand),
  /// or when `body` is over 2^32-1 octets.
  void add(std::uint64_t time_ns, std::string_view body);
  bool full() const noexcept;
  /// Appends the entries frame: the BATCH is complete. Throws when it holds no entry, or when
  /// called twice.
  void finish();

  std::size_t size() const noexcept { return count_; }
  /// The octets the entries frame holds so far: 12 per entry and the bodies.
  std::size_t bytes() const noexcept { return used_; }
  /// The sequence the next message would carry (meaningless once full() for overflow).
  std::uint64_t next_seq() const noexcept { return first_seq_ + count_; }

 private:
  message& out_;
  std::uint64_t first_seq_;
  std::size_t count_ = 0;
  bool finished_ = false;
  char* buffer_ = nullptr;  // malloc'd: handed to the entries frame by finish()
  std::size_t used_ = 0;
  std::size_t capacity_ = 0;
};

/// Publisher (ROUTER): peer | "FRS01" | 0x22 | request | publisher-inc | next-seq | last.
void write_end(message& out, std::string_view peer, std::uint32_t request,
               std::uint64_t publisher_inc, const end_fields& end);
/// Publisher (ROUTER): peer | "FRS01" | 0x23 | request | publisher-inc | from-seq | first-held.
void write_gone(message& out, std::string_view peer, std::uint32_t request,
                std::uint64_t publisher_inc, const gone_fields& gone);
/// Publisher (ROUTER): peer | "FRS01" | 0x24 | request | code | reason.
void write_refuse(message& out, std::string_view peer, std::uint32_t request,
                  const refuse_fields& refuse);
/// Publisher (ROUTER): the answer to fault::unknown_version: peer | "FRS01" | 0x24 | 0 |
/// "version" | versions_spoken.
void write_version_refusal(message& out, std::string_view peer);

}  // namespace fabric::frs
