// FRC/1 codec: the strict parsers that keep hostile or broken peers away from the channel
// machines, and the builders that check the grammar's bounds before anything is sent.
#include "reliability/frc.hpp"

#include "core/byte_order.hpp"
#include "reliability/wire_frames.hpp"

#include <fabric/error.hpp>

namespace fabric::frc {
namespace {

using detail::wire::fits;
using detail::wire::push;
using detail::wire::read;
using detail::wire::require;

// Frames after the command byte, for the commands of fixed shape.
constexpr std::size_t hello_frames = 8;
constexpr std::size_t skip_frames = 4;
constexpr std::size_t welcome_frames = 6;
constexpr std::size_t nack_frames = 2;
constexpr std::size_t refuse_frames = 3;
// Frames after the command byte before the first entry (DATA) or expired sequence (ACK).
constexpr std::size_t data_head = 3;  // link, first-seq, ttls
constexpr std::size_t ack_head = 3;

bool valid_name(std::string_view name) noexcept {
  return !name.empty() && name.size() <= max_name_size;
}

bool valid_heartbeat(std::uint32_t ms) noexcept { return ms >= 1 && ms <= max_heartbeat_ms; }

bool valid_code(std::string_view code) noexcept { return detail::wire::valid_code(code, max_code_size); }

bool is_sender_command(command c) noexcept {
  return c == command::hello || c == command::data || c == command::skip;
}

bool is_receiver_command(command c) noexcept {
  return c == command::welcome || c == command::ack || c == command::nack ||
         c == command::refuse;
}

fault read_link(const message& m, std::size_t i, std::uint32_t& link) noexcept {
  if (!read(m, i, link)) return fault::bad_width;
  return link == 0 ? fault::zero_link : fault::none;
}

// The frame count of a command of fixed shape: `rest` frames follow its command byte.
fault exactly(std::size_t rest, std::size_t want) noexcept {
  if (rest < want) return fault::truncated;
  if (rest > want) return fault::extra_frames;
  return fault::none;
}

// Parses the command whose byte is frame `at`; the header before it is already checked.
// Evaluates each check in the order the header file promises: count, then left to right.
fault parse_command(const message& m, std::size_t at, parsed& p) noexcept {
  const std::size_t n = m.size();
  if (at >= n || m[at].size() != 1) return fault::bad_command;
  const std::size_t rest = n - at - 1;
  const std::size_t f = at + 1;  // the first frame after the command byte
  const std::span<const frame> frames(m.frames());
  fault e = fault::none;
  switch (static_cast<std::uint8_t>(m.view(at)[0])) {
    case static_cast<std::uint8_t>(command::hello): {
      p.what = command::hello;
      hello_fields& h = p.hello;
      if ((e = exactly(rest, hello_frames)) != fault::none) return e;
      if ((e = read_link(m, f, p.link)) != fault::none) return e;
      h.stream = m.view(f + 1);
      if (!valid_name(h.stream)) return fault::bad_stream;
      h.sender = m.view(f + 2);
      if (!valid_name(h.sender)) return fault::bad_sender;
      if (!read(m, f + 3, h.receiver_inc_seen)) return fault::bad_width;
      if (!read(m, f + 4, h.sender_inc)) return fault::bad_width;
      if (h.sender_inc == 0) return fault::zero_incarnation;
      if (!read(m, f + 5, h.acked)) return fault::bad_width;
      if (!read(m, f + 6, h.last)) return fault::bad_width;
      if (h.last < h.acked) return fault::last_below_acked;
      if (!read(m, f + 7, h.heartbeat_ms)) return fault::bad_width;
      if (!valid_heartbeat(h.heartbeat_ms)) return fault::bad_heartbeat;
      return fault::none;
    }
    case static_cast<std::uint8_t>(command::data): {
      p.what = command::data;
      // Count first: a DATA of 50,000 frames costs one comparison, not a scan.
      if (rest < data_head + 1) return fault::truncated;
      const std::size_t entries = rest - data_head;
      if (entries > max_entries) return fault::too_many_entries;
      if ((e = read_link(m, f, p.link)) != fault::none) return e;
      std::uint64_t first = 0;
      if (!read(m, f + 1, first)) return fault::bad_width;
      if (first == 0) return fault::zero_sequence;
      if (!fits(first, entries)) return fault::sequence_overflow;
      if (m[f + 2].size() != 4 * entries) return fault::bad_width;
      p.data = data_view(first, &m[f + 2], frames.subspan(f + data_head));
      return fault::none;
    }
    case static_cast<std::uint8_t>(command::skip): {
      p.what = command::skip;
      skip_fields& s = p.skip;
      if ((e = exactly(rest, skip_frames)) != fault::none) return e;
      if ((e = read_link(m, f, p.link)) != fault::none) return e;
      if (!read(m, f + 1, s.first_seq)) return fault::bad_width;
      if (s.first_seq == 0) return fault::zero_sequence;
      if (!read(m, f + 2, s.last_seq)) return fault::bad_width;
      if (s.last_seq < s.first_seq) return fault::last_below_first;
      s.reason = m.view(f + 3);
      if (s.reason.size() > max_reason_size) return fault::reason_too_long;
      return fault::none;
    }
    case static_cast<std::uint8_t>(command::heartbeat):
      p.what = command::heartbeat;
      return rest == 0 ? fault::none : fault::extra_frames;
    case static_cast<std::uint8_t>(command::goodbye):
      p.what = command::goodbye;
      if (rest > 1) return fault::extra_frames;
      if (rest == 1) return read_link(m, f, p.link);
      return fault::none;
    case static_cast<std::uint8_t>(command::welcome): {
      p.what = command::welcome;
      welcome_fields& w = p.welcome;
      if ((e = exactly(rest, welcome_frames)) != fault::none) return e;
      if ((e = read_link(m, f, p.link)) != fault::none) return e;
      if (!read(m, f + 1, w.receiver_inc)) return fault::bad_width;
      if (w.receiver_inc == 0) return fault::zero_incarnation;
      if (!read(m, f + 2, w.taken)) return fault::bad_width;
      if (!read(m, f + 3, w.credit)) return fault::bad_width;
      if (!read(m, f + 4, w.heartbeat_ms)) return fault::bad_width;
      if (!valid_heartbeat(w.heartbeat_ms)) return fault::bad_heartbeat;
      if (!read(m, f + 5, w.max_message)) return fault::bad_width;
      return fault::none;
    }
    case static_cast<std::uint8_t>(command::ack): {
      p.what = command::ack;
      ack_view& a = p.ack;
      if (rest < ack_head) return fault::truncated;
      if (rest - ack_head > max_entries) return fault::too_many_entries;
      if ((e = read_link(m, f, p.link)) != fault::none) return e;
      if (!read(m, f + 1, a.taken)) return fault::bad_width;
      if (!read(m, f + 2, a.credit)) return fault::bad_width;
      std::uint64_t previous = 0;
      for (std::size_t i = f + ack_head; i < n; ++i) {
        std::uint64_t seq = 0;
        if (!read(m, i, seq)) return fault::bad_width;
        if (seq <= previous || seq > a.taken) return fault::bad_expired_seq;
        previous = seq;
      }
      a.expired = seq_list(frames.subspan(f + ack_head));
      return fault::none;
    }
    case static_cast<std::uint8_t>(command::nack):
      p.what = command::nack;
      if ((e = exactly(rest, nack_frames)) != fault::none) return e;
      if ((e = read_link(m, f, p.link)) != fault::none) return e;
      if (!read(m, f + 1, p.expected_seq)) return fault::bad_width;
      return p.expected_seq == 0 ? fault::zero_sequence : fault::none;
    case static_cast<std::uint8_t>(command::refuse): {
      p.what = command::refuse;
      refuse_fields& r = p.refuse;
      if ((e = exactly(rest, refuse_frames)) != fault::none) return e;
      // The link is judged with the code: 0 belongs to `version`, and only to it.
      if (!read(m, f, p.link)) return fault::bad_width;
      r.code = m.view(f + 1);
      if (!valid_code(r.code)) return fault::bad_code;
      r.reason = m.view(f + 2);
      if (r.reason.size() > max_reason_size) return fault::reason_too_long;
      const bool version = r.code == version_code;
      if (p.link == 0 && !version) return fault::zero_link;
      if (p.link != 0 && version) return fault::version_on_link;
      return fault::none;
    }
    default:
      return fault::bad_command;
  }
}

enum class side : bool { receiver, sender };

parsed parse_from(const message& m, std::size_t at, side s) noexcept {
  parsed p;
  if (at >= m.size()) {
    p.error = fault::no_header;
    return p;
  }
  p.header = m.view(at);
  if (p.header != header) {
    p.error = p.header.starts_with(header_family) ? fault::unknown_version : fault::unknown_header;
    return p;
  }
  p.error = parse_command(m, at + 1, p);
  if (p.error == fault::none &&
      (s == side::receiver ? is_receiver_command(p.what) : is_sender_command(p.what))) {
    p.error = fault::wrong_direction;
  }
  return p;
}

// ---------------------------------------------------------------------------------------------
// Builders

void require_link(std::uint32_t link) {
  require(link != 0, "frc: link 0 is reserved for a REFUSE of the whole connection");
}

// Clears `out` and writes [peer |] "FRC01" | command; `more` frames are to follow.
void start(message& out, const std::string_view* peer, command c, std::size_t more) {
  detail::wire::start(out, peer, header, static_cast<std::uint8_t>(c), more);
}

void goodbye(message& out, const std::string_view* peer, const std::uint32_t* link) {
  if (link != nullptr) require_link(*link);
  start(out, peer, command::goodbye, link != nullptr ? 1 : 0);
  if (link != nullptr) push(out, *link);
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
    case fault::no_header: return "no header frame";
    case fault::unknown_header: return "the header is not FRC";
    case fault::unknown_version: return "an FRC header of a version other than FRC01";
    case fault::bad_command: return "the command frame is not one known command byte";
    case fault::wrong_direction: return "a command that does not travel in this direction";
    case fault::truncated: return "fewer frames than the command needs";
    case fault::extra_frames: return "frames after the end of the command";
    case fault::bad_width: return "an integer frame of the wrong width";
    case fault::zero_link: return "link 0 outside a REFUSE version";
    case fault::version_on_link: return "a REFUSE version with a link other than 0";
    case fault::bad_stream: return "the stream name is empty or over 255 octets";
    case fault::bad_sender: return "the sender name is empty or over 255 octets";
    case fault::zero_incarnation: return "an incarnation of 0";
    case fault::last_below_acked: return "HELLO's last is below its acked";
    case fault::bad_heartbeat: return "heartbeat-ms outside 1 to 3,600,000";
    case fault::zero_sequence: return "a first or expected sequence of 0";
    case fault::last_below_first: return "SKIP's last-seq is below its first-seq";
    case fault::sequence_overflow: return "DATA entries past sequence 2^64-1";
    case fault::too_many_entries: return "more than 1024 DATA entries or expired sequences";
    case fault::bad_expired_seq: return "an expired sequence of 0, above taken, or not above the one before";
    case fault::bad_code: return "the refusal code is not 1 to 32 of a-z and -";
    case fault::reason_too_long: return "the reason is over 255 octets";
  }
  return "unknown fault";
}

std::uint64_t seq_list::operator[](std::size_t i) const noexcept {
  return detail::load_be<std::uint64_t>(static_cast<const char*>(frames_[i].data()));
}

data_entry data_view::operator[](std::size_t i) const noexcept {
  const frame& body = bodies_[i];
  return {first_seq_ + i, detail::load_be<std::uint32_t>(static_cast<const char*>(ttls_->data()) + 4 * i),
          view(body), body};
}

parsed parse_at_receiver(const message& m) noexcept {
  if (m.empty()) {
    parsed p;
    p.error = fault::no_routing_id;
    return p;
  }
  parsed p = parse_from(m, 1, side::receiver);
  p.peer = m.view(0);
  return p;
}

parsed parse_at_sender(const message& m) noexcept { return parse_from(m, 0, side::sender); }

void write_hello(message& out, std::uint32_t link, const hello_fields& hello) {
  require_link(link);
  require(valid_name(hello.stream), "frc: a stream name must be 1..255 octets");
  require(valid_name(hello.sender), "frc: a sender name must be 1..255 octets");
  require(hello.sender_inc != 0, "frc: a sender incarnation must be non-zero");
  require(hello.last >= hello.acked, "frc: HELLO's last must be >= its acked");
  require(valid_heartbeat(hello.heartbeat_ms), "frc: heartbeat-ms must be 1..3,600,000");
  start(out, nullptr, command::hello, hello_frames);
  push(out, link);
  out.push_back(hello.stream);
  out.push_back(hello.sender);
  push(out, hello.receiver_inc_seen);
  push(out, hello.sender_inc);
  push(out, hello.acked);
  push(out, hello.last);
  push(out, hello.heartbeat_ms);
}

void write_skip(message& out, std::uint32_t link, const skip_fields& skip) {
  require_link(link);
  require(skip.first_seq != 0, "frc: sequences start at 1");
  require(skip.last_seq >= skip.first_seq, "frc: SKIP's last-seq must be >= its first-seq");
  require(skip.reason.size() <= max_reason_size, "frc: a reason must be at most 255 octets");
  start(out, nullptr, command::skip, skip_frames);
  push(out, link);
  push(out, skip.first_seq);
  push(out, skip.last_seq);
  out.push_back(skip.reason);
}

void write_heartbeat(message& out) { start(out, nullptr, command::heartbeat, 0); }

void write_goodbye(message& out) { goodbye(out, nullptr, nullptr); }

void write_goodbye(message& out, std::uint32_t link) { goodbye(out, nullptr, &link); }

data_writer::data_writer(message& out, std::uint32_t link, std::uint64_t first_seq)
    : out_(out), first_seq_(first_seq) {
  require_link(link);
  require(first_seq != 0, "frc: sequences start at 1");
  start(out_, nullptr, command::data, data_head + 1);
  push(out_, link);
  push(out_, first_seq);
  out_.emplace_back();  // the ttls, written by finish()
}

bool data_writer::full() const noexcept {
  return entries_ >= max_entries || !fits(first_seq_, entries_ + 1);
}

void data_writer::push_ttl(std::uint32_t ttl_ms) {
  require(!full(), "frc: a DATA holds at most 1024 entries, within sequence 2^64-1");
  detail::store_be(ttl_ms, ttls_ + 4 * entries_);
  ++entries_;
}

void data_writer::add(std::uint32_t ttl_ms, std::string_view body) {
  push_ttl(ttl_ms);
  out_.push_back(body);
}

void data_writer::add(std::uint32_t ttl_ms, frame&& body) {
  push_ttl(ttl_ms);
  out_.push_back(std::move(body));
}

void data_writer::share(std::uint32_t ttl_ms, frame& body) {
  push_ttl(ttl_ms);
  out_.emplace_back().copy(body);
}

void data_writer::finish() {
  require(entries_ > 0, "frc: a DATA holds at least one entry");
  out_[4].rebuild(ttls_, 4 * entries_);
}

void write_welcome(message& out, std::string_view peer, std::uint32_t link,
                   const welcome_fields& welcome) {
  require_link(link);
  require(welcome.receiver_inc != 0, "frc: a receiver incarnation must be non-zero");
  require(valid_heartbeat(welcome.heartbeat_ms), "frc: heartbeat-ms must be 1..3,600,000");
  start(out, &peer, command::welcome, welcome_frames);
  push(out, link);
  push(out, welcome.receiver_inc);
  push(out, welcome.taken);
  push(out, welcome.credit);
  push(out, welcome.heartbeat_ms);
  push(out, welcome.max_message);
}

void write_ack(message& out, std::string_view peer, std::uint32_t link, std::uint64_t taken,
               std::uint32_t credit, std::span<const std::uint64_t> expired) {
  require_link(link);
  require(expired.size() <= max_entries, "frc: an ACK lists at most 1024 expired sequences");
  std::uint64_t previous = 0;
  for (const std::uint64_t seq : expired) {
    require(seq > previous && seq <= taken,
            "frc: expired sequences must be strictly increasing, in 1..taken");
    previous = seq;
  }
  start(out, &peer, command::ack, ack_head + expired.size());
  push(out, link);
  push(out, taken);
  push(out, credit);
  for (const std::uint64_t seq : expired) push(out, seq);
}

void write_nack(message& out, std::string_view peer, std::uint32_t link,
                std::uint64_t expected_seq) {
  require_link(link);
  require(expected_seq != 0, "frc: sequences start at 1");
  start(out, &peer, command::nack, nack_frames);
  push(out, link);
  push(out, expected_seq);
}

void write_refuse(message& out, std::string_view peer, std::uint32_t link,
                  const refuse_fields& refuse) {
  require(valid_code(refuse.code), "frc: a refusal code must be 1..32 of a-z and -");
  require(refuse.reason.size() <= max_reason_size, "frc: a reason must be at most 255 octets");
  require((link == 0) == (refuse.code == version_code),
          "frc: a REFUSE has link 0 exactly when its code is version");
  start(out, &peer, command::refuse, refuse_frames);
  push(out, link);
  out.push_back(refuse.code);
  out.push_back(refuse.reason);
}

void write_version_refusal(message& out, std::string_view peer) {
  write_refuse(out, peer, 0, {version_code, versions_spoken});
}

void write_heartbeat_to(message& out, std::string_view peer) {
  start(out, &peer, command::heartbeat, 0);
}

void write_goodbye_to(message& out, std::string_view peer) { goodbye(out, &peer, nullptr); }

void write_goodbye_to(message& out, std::string_view peer, std::uint32_t link) {
  goodbye(out, &peer, &link);
}

}  // namespace fabric::frc
