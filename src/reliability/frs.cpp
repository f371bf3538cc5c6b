// FRS/1 codec: the strict parsers that keep hostile or broken peers away from the publisher's and
// the subscriber's machines, and the builders that check the grammar's bounds before sending.
#include "reliability/frs.hpp"

#include "core/byte_order.hpp"
#include "reliability/wire_frames.hpp"

#include <fabric/error.hpp>

#include <algorithm>
#include <cstdlib>
#include <limits>
#include <new>

namespace fabric::frs {
namespace {

using detail::wire::fits;
using detail::wire::push;
using detail::wire::read;
using detail::wire::require;

// The live feed's packed frame: where its fields sit.
constexpr std::size_t command_at = 5;  // after "FRS01"
constexpr std::size_t inc_at = 6;
constexpr std::size_t after_inc = 14;  // LIVE's seq, BEACON's last, HEARTBEAT's heartbeat-ms
constexpr std::size_t time_at = 22;    // LIVE's time
static_assert(command_at == header.size() && time_at + 8 == live_body_offset &&
              after_inc + 8 == beacon_frame_size && after_inc + 4 == heartbeat_frame_size);

// Frames after the command byte, for the replay commands of fixed shape.
constexpr std::size_t fetch_frames = 4;
constexpr std::size_t end_frames = 4;
constexpr std::size_t gone_frames = 4;
constexpr std::size_t refuse_frames = 3;
// Frames after BATCH's command byte: request, publisher-inc, first-seq, entries.
constexpr std::size_t batch_frames = 4;

bool valid_stream(std::string_view name) noexcept {
  return !name.empty() && name.size() <= max_stream_size && name.front() != '\0';
}

bool valid_heartbeat(std::uint32_t ms) noexcept { return ms >= 1 && ms <= max_heartbeat_ms; }

bool valid_count(std::uint32_t count) noexcept { return count >= 1 && count <= max_count; }

bool valid_code(std::string_view code) noexcept { return detail::wire::valid_code(code, max_code_size); }

bool is_subscriber_command(command c) noexcept {
  return c == command::fetch || c == command::fetch_time;
}

fault read_inc(const message& m, std::size_t i, std::uint64_t& inc) noexcept {
  if (!read(m, i, inc)) return fault::bad_width;
  return inc == 0 ? fault::zero_incarnation : fault::none;
}

fault read_seq(const message& m, std::size_t i, std::uint64_t& seq) noexcept {
  if (!read(m, i, seq)) return fault::bad_width;
  return seq == 0 ? fault::zero_sequence : fault::none;
}

// The frame count of a command of fixed shape: `rest` frames follow its command byte.
fault exactly(std::size_t rest, std::size_t want) noexcept {
  if (rest < want) return fault::truncated;
  if (rest > want) return fault::extra_frames;
  return fault::none;
}

// Checks the header at frame `at`, recording it in `p`.
fault read_header(const message& m, std::size_t at, parsed& p) noexcept {
  if (at >= m.size()) return fault::no_header;
  p.header = m.view(at);
  if (p.header == header) return fault::none;
  return p.header.starts_with(header_family) ? fault::unknown_version : fault::unknown_header;
}

// The command byte at frame `at`, or 0 (no command) when the frame is missing or not one byte.
std::uint8_t command_byte(const message& m, std::size_t at) noexcept {
  if (at >= m.size() || m[at].size() != 1) return 0;
  return static_cast<std::uint8_t>(m.view(at)[0]);
}

template <class T>
T load(std::string_view packed, std::size_t at) noexcept {
  return detail::load_be<T>(packed.data() + at);
}

// Walks BATCH's entries frame once, counting its entries: each must be whole, there must be one
// at least and at most 1024. Stops at the 1025th entry, so that the work is bounded however
// large the frame.
fault count_entries(std::string_view entries, std::size_t& count) noexcept {
  count = 0;
  if (entries.empty()) return fault::truncated;
  std::size_t at = 0;
  while (at < entries.size()) {
    const std::size_t left = entries.size() - at;
    if (left < batch_entry_head) return fault::truncated;
    const std::size_t length = detail::load_be<std::uint32_t>(entries.data() + at + 8);
    if (left - batch_entry_head < length) return fault::truncated;
    if (++count > max_bodies) return fault::too_many_bodies;
    at += batch_entry_head + length;
  }
  return fault::none;
}

// The size of a packed frame of fixed size.
fault exactly_octets(std::size_t size, std::size_t want) noexcept {
  if (size < want) return fault::truncated;
  if (size > want) return fault::extra_frames;
  return fault::none;
}

// Parses LIVE, BEACON or HEARTBEAT: the frame count (two) is already checked. Evaluates each
// check in the order the header file promises: header, command, size, topic, then the fields.
fault parse_live_command(const message& m, parsed& p) noexcept {
  const std::string_view topic = m.view(0);
  const std::string_view packed = m.view(1);
  p.header = packed.substr(0, header.size());
  if (p.header != header) {
    return p.header.starts_with(header_family) ? fault::unknown_version : fault::unknown_header;
  }
  if (packed.size() == command_at) return fault::bad_command;
  fault e = fault::none;
  switch (static_cast<std::uint8_t>(packed[command_at])) {
    case static_cast<std::uint8_t>(command::live):
      p.what = command::live;
      if (packed.size() < live_body_offset) return fault::truncated;
      if (!valid_stream(topic)) return fault::bad_stream;
      p.stream = topic;
      if ((p.publisher_inc = load<std::uint64_t>(packed, inc_at)) == 0) return fault::zero_incarnation;
      if ((p.live.seq = load<std::uint64_t>(packed, after_inc)) == 0) return fault::zero_sequence;
      p.live.time_ns = load<std::uint64_t>(packed, time_at);
      p.live.body = packed.substr(live_body_offset);
      p.live.body_frame = &m[1];
      return fault::none;
    case static_cast<std::uint8_t>(command::beacon):
      p.what = command::beacon;
      if ((e = exactly_octets(packed.size(), beacon_frame_size)) != fault::none) return e;
      if (!valid_stream(topic)) return fault::bad_stream;
      p.stream = topic;
      if ((p.publisher_inc = load<std::uint64_t>(packed, inc_at)) == 0) return fault::zero_incarnation;
      p.last = load<std::uint64_t>(packed, after_inc);
      return fault::none;
    case static_cast<std::uint8_t>(command::heartbeat):
      p.what = command::heartbeat;
      if ((e = exactly_octets(packed.size(), heartbeat_frame_size)) != fault::none) return e;
      if (topic != heartbeat_topic) return fault::bad_topic;
      if ((p.publisher_inc = load<std::uint64_t>(packed, inc_at)) == 0) return fault::zero_incarnation;
      p.heartbeat_ms = load<std::uint32_t>(packed, after_inc);
      return valid_heartbeat(p.heartbeat_ms) ? fault::none : fault::bad_heartbeat;
    default:
      return fault::bad_command;
  }
}

// Parses a replay command whose byte is frame `at`; the header before it is already checked.
// Evaluates each check in the order the header file promises: count, then left to right.
fault parse_replay_command(const message& m, std::size_t at, parsed& p) noexcept {
  const std::size_t n = m.size();
  const std::size_t rest = n > at + 1 ? n - at - 1 : 0;
  const std::size_t f = at + 1;  // the first frame after the command byte
  fault e = fault::none;
  const std::uint8_t c = command_byte(m, at);
  switch (c) {
    case static_cast<std::uint8_t>(command::fetch):
    case static_cast<std::uint8_t>(command::fetch_time): {
      p.what = static_cast<command>(c);
      if ((e = exactly(rest, fetch_frames)) != fault::none) return e;
      if (!read(m, f, p.request)) return fault::bad_width;
      p.fetch.stream = m.view(f + 1);
      if (!valid_stream(p.fetch.stream)) return fault::bad_stream;
      p.stream = p.fetch.stream;
      if (p.what == command::fetch) {
        if ((e = read_seq(m, f + 2, p.fetch.from)) != fault::none) return e;
      } else if (!read(m, f + 2, p.fetch.from)) {
        return fault::bad_width;
      }
      if (!read(m, f + 3, p.fetch.max_count)) return fault::bad_width;
      return valid_count(p.fetch.max_count) ? fault::none : fault::bad_max_count;
    }
    case static_cast<std::uint8_t>(command::batch): {
      p.what = command::batch;
      if ((e = exactly(rest, batch_frames)) != fault::none) return e;
      if (!read(m, f, p.request)) return fault::bad_width;
      if ((e = read_inc(m, f + 1, p.publisher_inc)) != fault::none) return e;
      std::uint64_t first = 0;
      if ((e = read_seq(m, f + 2, first)) != fault::none) return e;
      std::size_t count = 0;
      if ((e = count_entries(m.view(f + 3), count)) != fault::none) return e;
      if (!fits(first, count)) return fault::sequence_overflow;
      p.batch = batch_view(first, &m[f + 3], count);
      return fault::none;
    }
    case static_cast<std::uint8_t>(command::end):
      p.what = command::end;
      if ((e = exactly(rest, end_frames)) != fault::none) return e;
      if (!read(m, f, p.request)) return fault::bad_width;
      if ((e = read_inc(m, f + 1, p.publisher_inc)) != fault::none) return e;
      if ((e = read_seq(m, f + 2, p.end.next_seq)) != fault::none) return e;
      return read(m, f + 3, p.end.last) ? fault::none : fault::bad_width;
    case static_cast<std::uint8_t>(command::gone):
      p.what = command::gone;
      if ((e = exactly(rest, gone_frames)) != fault::none) return e;
      if (!read(m, f, p.request)) return fault::bad_width;
      if ((e = read_inc(m, f + 1, p.publisher_inc)) != fault::none) return e;
      if ((e = read_seq(m, f + 2, p.gone.from_seq)) != fault::none) return e;
      if (!read(m, f + 3, p.gone.first_held)) return fault::bad_width;
      return p.gone.first_held > p.gone.from_seq ? fault::none : fault::first_held_too_low;
    case static_cast<std::uint8_t>(command::refuse):
      p.what = command::refuse;
      if ((e = exactly(rest, refuse_frames)) != fault::none) return e;
      if (!read(m, f, p.request)) return fault::bad_width;
      p.refuse.code = m.view(f + 1);
      if (!valid_code(p.refuse.code)) return fault::bad_code;
      p.refuse.reason = m.view(f + 2);
      if (p.refuse.reason.size() > max_reason_size) return fault::reason_too_long;
      return fault::none;
    default:
      return fault::bad_command;
  }
}

enum class side : bool { publisher, subscriber };

parsed parse_replay(const message& m, std::size_t at, side s) noexcept {
  parsed p;
  if ((p.error = read_header(m, at, p)) != fault::none) return p;
  p.error = parse_replay_command(m, at + 1, p);
  if (p.error == fault::none && (s == side::publisher) != is_subscriber_command(p.what)) {
    p.error = fault::wrong_direction;
  }
  return p;
}

// ---------------------------------------------------------------------------------------------
// Builders

void require_stream(std::string_view stream) {
  require(valid_stream(stream), "frs: a stream name must be 1..255 octets, not starting with 0x00");
}

void require_inc(std::uint64_t inc) {
  require(inc != 0, "frs: a publisher incarnation must be non-zero");
}

// Clears `out` and writes [first |] "FRS01" | command; `more` frames are to follow. `first` is
// the topic on the live feed and the routing id on the ROUTER.
void start(message& out, const std::string_view* first, command c, std::size_t more) {
  detail::wire::start(out, first, header, static_cast<std::uint8_t>(c), more);
}

// Clears `out` and writes topic | a packed frame of `size` octets, its header, command byte and
// publisher-inc filled in; returns the packed frame's octets, for the caller to fill the rest.
char* start_packed(message& out, std::string_view topic, command c, std::uint64_t publisher_inc,
                   std::size_t size) {
  out.clear();
  out.reserve(2);
  out.push_back(topic);
  out.push_back(frame(size));
  // Taken once the frame is in place: ZeroMQ keeps a small frame's octets inside the frame.
  char* packed = static_cast<char*>(out.back().data());
  header.copy(packed, header.size());
  packed[command_at] = static_cast<char>(c);
  detail::store_be(publisher_inc, packed + inc_at);
  return packed;
}

void fetch_command(message& out, command c, std::uint32_t request, const fetch_fields& f) {
  require_stream(f.stream);
  require(c == command::fetch_time || f.from != 0, "frs: sequences start at 1");
  require(valid_count(f.max_count), "frs: max-count must be 1..1024");
  start(out, nullptr, c, fetch_frames);
  push(out, request);
  out.push_back(f.stream);
  push(out, f.from);
  push(out, f.max_count);
}

}  // namespace

std::error_code code_of(fault f) noexcept {
  switch (f) {
    case fault::none: return {};
    case fault::unknown_version: return make_error_code(errc::not_supported);
    case fault::wrong_direction: return make_error_code(errc::protocol_error);
    default: return make_error_code(errc::malformed);
  }
}

std::string_view describe(fault f) noexcept {
  switch (f) {
    case fault::none: return "well-formed";
    case fault::no_routing_id: return "no routing id frame";
    case fault::no_topic: return "no topic frame";
    case fault::no_header: return "no header frame";
    case fault::unknown_header: return "the header is not FRS";
    case fault::unknown_version: return "an FRS header of a version other than FRS01";
    case fault::bad_command: return "no command byte of this feed where the command belongs";
    case fault::wrong_direction: return "a command that does not travel in this direction";
    case fault::truncated:
      return "fewer frames or octets than the command needs, or a BATCH entry cut short";
    case fault::extra_frames:
      return "more frames, or more octets in a fixed-size packed frame, than the command takes";
    case fault::too_many_bodies: return "a BATCH of more than 1024 entries";
    case fault::bad_width: return "an integer frame of the wrong width";
    case fault::bad_stream: return "the stream name is empty, over 255 octets or begins with 0x00";
    case fault::bad_topic: return "a HEARTBEAT on a topic other than 0x00";
    case fault::zero_incarnation: return "a publisher incarnation of 0";
    case fault::zero_sequence: return "a sequence of 0";
    case fault::sequence_overflow: return "BATCH entries past sequence 2^64-1";
    case fault::first_held_too_low: return "GONE's first-held is not above its from-seq";
    case fault::bad_max_count: return "max-count outside 1 to 1024";
    case fault::bad_heartbeat: return "heartbeat-ms outside 1 to 3,600,000";
    case fault::bad_code: return "the refusal code is not 1 to 32 of a-z and -";
    case fault::reason_too_long: return "the reason is over 255 octets";
  }
  return "unknown fault";
}

batch_entry batch_view::entry_at(std::size_t i, std::size_t at) const noexcept {
  const char* entry = static_cast<const char*>(entries_->data()) + at;
  return {first_seq_ + i, detail::load_be<std::uint64_t>(entry),
          std::string_view(entry + batch_entry_head, detail::load_be<std::uint32_t>(entry + 8)),
          *entries_};
}

batch_view::iterator& batch_view::iterator::operator++() noexcept {
  const char* entry = static_cast<const char*>(batch_->entries_->data()) + at_;
  at_ += batch_entry_head + detail::load_be<std::uint32_t>(entry + 8);
  ++i_;
  return *this;
}

batch_entry batch_view::operator[](std::size_t i) const noexcept {
  iterator it = begin();
  for (std::size_t k = 0; k < i; ++k) ++it;
  return *it;
}

parsed parse_live(const message& m) noexcept {
  parsed p;
  if (m.empty()) {
    p.error = fault::no_topic;
  } else if (m.size() == 1) {
    p.error = fault::no_header;
  } else if (m.size() > 2) {
    p.error = fault::extra_frames;
  } else {
    p.error = parse_live_command(m, p);
  }
  return p;
}

parsed parse_at_publisher(const message& m) noexcept {
  if (m.empty()) {
    parsed p;
    p.error = fault::no_routing_id;
    return p;
  }
  parsed p = parse_replay(m, 1, side::publisher);
  p.peer = m.view(0);
  return p;
}

parsed parse_at_subscriber(const message& m) noexcept {
  return parse_replay(m, 0, side::subscriber);
}

void write_live(message& out, std::string_view stream, std::uint64_t publisher_inc,
                std::uint64_t seq, std::uint64_t time_ns, std::string_view body) {
  require_stream(stream);
  require_inc(publisher_inc);
  require(seq != 0, "frs: sequences start at 1");
  char* packed =
      start_packed(out, stream, command::live, publisher_inc, live_body_offset + body.size());
  detail::store_be(seq, packed + after_inc);
  detail::store_be(time_ns, packed + time_at);
  body.copy(packed + live_body_offset, body.size());
}

void write_beacon(message& out, std::string_view stream, std::uint64_t publisher_inc,
                  std::uint64_t last) {
  require_stream(stream);
  require_inc(publisher_inc);
  char* packed = start_packed(out, stream, command::beacon, publisher_inc, beacon_frame_size);
  detail::store_be(last, packed + after_inc);
}

void write_heartbeat(message& out, std::uint64_t publisher_inc, std::uint32_t heartbeat_ms) {
  require_inc(publisher_inc);
  require(valid_heartbeat(heartbeat_ms), "frs: heartbeat-ms must be 1..3,600,000");
  char* packed =
      start_packed(out, heartbeat_topic, command::heartbeat, publisher_inc, heartbeat_frame_size);
  detail::store_be(heartbeat_ms, packed + after_inc);
}

void write_fetch(message& out, std::uint32_t request, const fetch_fields& f) {
  fetch_command(out, command::fetch, request, f);
}

void write_fetch_time(message& out, std::uint32_t request, const fetch_fields& f) {
  fetch_command(out, command::fetch_time, request, f);
}

batch_writer::batch_writer(message& out, std::string_view peer, std::uint32_t request,
                           std::uint64_t publisher_inc, std::uint64_t first_seq)
    : out_(out), first_seq_(first_seq) {
  require_inc(publisher_inc);
  require(first_seq != 0, "frs: sequences start at 1");
  start(out_, &peer, command::batch, batch_frames);
  push(out_, request);
  push(out_, publisher_inc);
  push(out_, first_seq);
}

batch_writer::~batch_writer() { std::free(buffer_); }

bool batch_writer::full() const noexcept {
  return count_ >= max_bodies || !fits(first_seq_, count_ + 1);
}

void batch_writer::add(std::uint64_t time_ns, std::string_view body) {
  require(!finished_, "frs: a BATCH takes no entry once finished");
  require(!full(), "frs: a BATCH holds at most 1024 entries, within sequence 2^64-1");
  require(body.size() <= std::numeric_limits<std::uint32_t>::max(),
          "frs: a BATCH entry's body must be at most 2^32-1 octets");
  const std::size_t need = used_ + batch_entry_head + body.size();
  if (need > capacity_) {
    const std::size_t grown = std::max({need, 2 * capacity_, std::size_t{4096}});
    void* bigger = std::realloc(buffer_, grown);
    if (bigger == nullptr) throw std::bad_alloc();
    buffer_ = static_cast<char*>(bigger);
    capacity_ = grown;
  }
  char* entry = buffer_ + used_;
  detail::store_be(time_ns, entry);
  detail::store_be(static_cast<std::uint32_t>(body.size()), entry + 8);
  if (!body.empty()) body.copy(entry + batch_entry_head, body.size());
  used_ = need;
  ++count_;
}

void batch_writer::finish() {
  require(!finished_, "frs: a BATCH is finished once");
  require(count_ > 0, "frs: a BATCH holds at least one entry");
  // The buffer becomes the frame's own, not copied: ZeroMQ frees it once the frame is done with.
  frame entries(buffer_, used_, [](void* data, void*) { std::free(data); }, nullptr);
  buffer_ = nullptr;
  capacity_ = 0;
  finished_ = true;
  out_.push_back(std::move(entries));
}

void write_end(message& out, std::string_view peer, std::uint32_t request,
               std::uint64_t publisher_inc, const end_fields& end) {
  require_inc(publisher_inc);
  require(end.next_seq != 0, "frs: sequences start at 1");
  start(out, &peer, command::end, end_frames);
  push(out, request);
  push(out, publisher_inc);
  push(out, end.next_seq);
  push(out, end.last);
}

void write_gone(message& out, std::string_view peer, std::uint32_t request,
                std::uint64_t publisher_inc, const gone_fields& gone) {
  require_inc(publisher_inc);
  require(gone.from_seq != 0, "frs: sequences start at 1");
  require(gone.first_held > gone.from_seq, "frs: GONE's first-held must be above its from-seq");
  start(out, &peer, command::gone, gone_frames);
  push(out, request);
  push(out, publisher_inc);
  push(out, gone.from_seq);
  push(out, gone.first_held);
}

void write_refuse(message& out, std::string_view peer, std::uint32_t request,
                  const refuse_fields& refuse) {
  require(valid_code(refuse.code), "frs: a refusal code must be 1..32 of a-z and -");
  require(refuse.reason.size() <= max_reason_size, "frs: a reason must be at most 255 octets");
  start(out, &peer, command::refuse, refuse_frames);
  push(out, request);
  out.push_back(refuse.code);
  out.push_back(refuse.reason);
}

void write_version_refusal(message& out, std::string_view peer) {
  write_refuse(out, peer, 0, {version_code, versions_spoken});
}

}  // namespace fabric::frs
