// FBS/1 codec: strict parsers that keep broken or hostile peers away from the pair's machines, and
// builders that check the grammar's bounds before anything is sent.
#include "reliability/bstar.hpp"

#include "reliability/wire_frames.hpp"

namespace fabric::bstar {
namespace {

using detail::wire::push;
using detail::wire::read;
using detail::wire::require;

// Frames after the command byte.
constexpr std::size_t state_frames = 6;
constexpr std::size_t lease_frames = 4;
constexpr std::size_t grant_frames = 3;
constexpr std::size_t deny_frames = 3;

bool valid_interval(std::uint32_t ms) noexcept { return ms >= 1 && ms <= max_interval_ms; }
bool valid_role(std::uint8_t r) noexcept { return r == 1 || r == 2; }
bool valid_status(std::uint8_t s) noexcept { return s >= 1 && s <= 4; }

void start(message& out, command c, std::size_t rest) {
  out.reserve(2 + rest);
  out.push_back(header);
  push(out, static_cast<std::uint8_t>(c));
}

fault exactly(std::size_t rest, std::size_t want) noexcept {
  if (rest < want) return fault::truncated;
  if (rest > want) return fault::extra_frames;
  return fault::none;
}

// Reads the frames of one command left to right: each call checks one frame's width, then its
// value, and the first fault sticks.
class reader {
 public:
  reader(const message& m, std::size_t at) noexcept : m_(m), at_(at) {}

  template <class T>
  reader& integer(T& out) noexcept {
    if (fault_ == fault::none && !read(m_, at_++, out)) fault_ = fault::bad_width;
    return *this;
  }
  reader& seq(std::uint64_t& out) noexcept {
    integer(out);
    if (fault_ == fault::none && out == 0) fault_ = fault::zero_sequence;
    return *this;
  }
  reader& interval(std::uint32_t& out) noexcept {
    integer(out);
    if (fault_ == fault::none && !valid_interval(out)) fault_ = fault::bad_interval;
    return *this;
  }
  reader& node_role(role& out) noexcept {
    std::uint8_t r = 0;
    integer(r);
    if (fault_ == fault::none && !valid_role(r)) fault_ = fault::bad_role;
    out = static_cast<role>(r);
    return *this;
  }
  reader& holder(std::uint8_t& out) noexcept {
    integer(out);
    if (fault_ == fault::none && out > 2) fault_ = fault::bad_role;
    return *this;
  }
  reader& node_status(status& out) noexcept {
    std::uint8_t s = 0;
    integer(s);
    if (fault_ == fault::none && !valid_status(s)) fault_ = fault::bad_status;
    out = static_cast<status>(s);
    return *this;
  }
  fault result() const noexcept { return fault_; }

 private:
  const message& m_;
  std::size_t at_;
  fault fault_ = fault::none;
};

template <class Fields>
parsed finish(fault f, const Fields& fields) noexcept {
  if (f != fault::none) return f;
  return fields;
}

}  // namespace

std::string_view describe(fault f) noexcept {
  switch (f) {
    case fault::none: return "no fault";
    case fault::no_header: return "empty message";
    case fault::unknown_header: return "not an FBS01 message";
    case fault::bad_command: return "missing or unknown command";
    case fault::truncated: return "frames missing";
    case fault::extra_frames: return "frames left over";
    case fault::bad_width: return "an integer frame of the wrong width";
    case fault::bad_role: return "role out of range";
    case fault::bad_status: return "status out of range";
    case fault::zero_sequence: return "sequence 0";
    case fault::bad_interval: return "expiry or duration out of range";
  }
  return "unknown fault";
}

std::string_view to_string(role r) noexcept {
  return r == role::primary ? "primary" : r == role::backup ? "backup" : "unknown";
}

std::string_view to_string(status s) noexcept {
  switch (s) {
    case status::primary: return "primary";
    case status::backup: return "backup";
    case status::active: return "active";
    case status::passive: return "passive";
  }
  return "unknown";
}

message build(const state_fields& f) {
  require(valid_role(static_cast<std::uint8_t>(f.from)), "FBS state: bad role");
  require(valid_status(static_cast<std::uint8_t>(f.state)), "FBS state: bad status");
  require(f.seq != 0, "FBS state: seq must be >= 1");
  require(valid_interval(f.expiry_ms), "FBS state: expiry out of range");
  message out;
  start(out, command::state, state_frames);
  push(out, static_cast<std::uint8_t>(f.from));
  push(out, static_cast<std::uint8_t>(f.state));
  push(out, f.term);
  push(out, f.seq);
  push(out, f.echo);
  push(out, f.expiry_ms);
  return out;
}

message build(const lease_fields& f) {
  require(valid_role(static_cast<std::uint8_t>(f.from)), "FBS lease: bad role");
  require(f.seq != 0, "FBS lease: seq must be >= 1");
  require(valid_interval(f.duration_ms), "FBS lease: duration out of range");
  message out;
  start(out, command::lease, lease_frames);
  push(out, static_cast<std::uint8_t>(f.from));
  push(out, f.term);
  push(out, f.seq);
  push(out, f.duration_ms);
  return out;
}

message build(const grant_fields& f) {
  require(f.seq != 0, "FBS grant: seq must be >= 1");
  require(valid_interval(f.duration_ms), "FBS grant: duration out of range");
  message out;
  start(out, command::grant, grant_frames);
  push(out, f.term);
  push(out, f.seq);
  push(out, f.duration_ms);
  return out;
}

message build(const deny_fields& f) {
  require(f.seq != 0, "FBS deny: seq must be >= 1");
  require(f.holder <= 2, "FBS deny: bad holder");
  message out;
  start(out, command::deny, deny_frames);
  push(out, f.seq);
  push(out, f.holder);
  push(out, f.holder_term);
  return out;
}

parsed parse(const message& m, std::size_t first) noexcept {
  if (first >= m.size()) return fault::no_header;
  if (m.view(first) != header) return fault::unknown_header;
  const std::size_t at = first + 1;
  std::uint8_t c = 0;
  if (at >= m.size() || !read(m, at, c)) return fault::bad_command;
  const std::size_t rest = m.size() - at - 1;
  const std::size_t body = at + 1;
  switch (static_cast<command>(c)) {
    case command::state: {
      if (const fault f = exactly(rest, state_frames); f != fault::none) return f;
      state_fields s;
      reader r(m, body);
      r.node_role(s.from).node_status(s.state).integer(s.term).seq(s.seq).integer(s.echo).interval(s.expiry_ms);
      return finish(r.result(), s);
    }
    case command::lease: {
      if (const fault f = exactly(rest, lease_frames); f != fault::none) return f;
      lease_fields l;
      reader r(m, body);
      r.node_role(l.from).integer(l.term).seq(l.seq).interval(l.duration_ms);
      return finish(r.result(), l);
    }
    case command::grant: {
      if (const fault f = exactly(rest, grant_frames); f != fault::none) return f;
      grant_fields g;
      reader r(m, body);
      r.integer(g.term).seq(g.seq).interval(g.duration_ms);
      return finish(r.result(), g);
    }
    case command::deny: {
      if (const fault f = exactly(rest, deny_frames); f != fault::none) return f;
      deny_fields d;
      reader r(m, body);
      r.seq(d.seq).holder(d.holder).integer(d.holder_term);
      return finish(r.result(), d);
    }
  }
  return fault::bad_command;
}

}  // namespace fabric::bstar
