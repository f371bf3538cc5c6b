// 7/MDP codec: the strict parsers that keep hostile or broken peers from reaching the broker's
// state machine, and the builders that move body frames into place.
#include "reliability/mdp.hpp"

#include <fabric/error.hpp>

#include <algorithm>
#include <charconv>
#include <iterator>
#include <limits>
#include <utility>

namespace fabric::mdp {
namespace {

bool valid_name(std::string_view name) noexcept {
  return !name.empty() && name.size() <= max_name_size;
}

void require_name(std::string_view name, const char* what) {
  if (!valid_name(name)) throw fabric::error(errc::invalid_argument, what);
}

void require_body(const message& body, const char* what) {
  if (body.empty()) throw fabric::error(errc::invalid_argument, what);
}

// Whether a parser demands the body frame 7/MDP requires (the broker's side), or takes what a
// broker sends (the client's and the worker's side).
enum class body_rule : bool { required, optional };

// Moves frames [first, end) of `m` into a new message; the frames before `first` are dropped.
// A fresh container rather than erase(): erasing from the front shifts every frame anyway.
message take_tail(message& m, std::size_t first) {
  message::container out;
  if (first < m.size()) {
    out.reserve(m.size() - first);
    auto from = m.frames().begin() + static_cast<std::ptrdiff_t>(first);
    out.insert(out.end(), std::make_move_iterator(from),
               std::make_move_iterator(m.frames().end()));
  }
  return message(std::move(out));
}

void append_body(message& out, message&& body) {
  for (frame& f : body) out.push_back(std::move(f));
}

message worker_header_msg(command c, std::size_t extra) {
  message m;
  m.reserve(3 + extra);
  m.push_back(std::string_view{});
  m.push_back(worker_header);
  const auto byte = static_cast<std::uint8_t>(c);
  m.push_back(&byte, 1);
  return m;
}

message worker_addressed(command c, std::string_view client, message&& body) {
  require_name(client, "mdp: a client address must be 1..255 bytes");
  require_body(body, c == command::request
                         ? "mdp: a worker REQUEST needs at least one body frame (7/MDP)"
                         : "mdp: a worker REPLY needs at least one body frame (7/MDP); send one "
                           "empty frame for an empty reply");
  message m = worker_header_msg(c, 2 + body.size());
  m.push_back(client);
  m.push_back(std::string_view{});
  append_body(m, std::move(body));
  return m;
}

// Shared by both client directions: the two carry the same frames.
message client_frames(std::string_view service, message&& body, delimiter d) {
  require_name(service, "mdp: a service name must be 1..255 bytes");
  message m;
  m.reserve(3 + body.size());
  if (d == delimiter::included) m.push_back(std::string_view{});
  m.push_back(client_header);
  m.push_back(service);
  append_body(m, std::move(body));
  return m;
}

// The views one worker command parses into, whatever its direction.
struct worker_view {
  command kind = command::heartbeat;
  std::string_view service;  // ready
  std::string_view client;   // request, reply
  std::uint32_t credit = 1;  // ready
  std::size_t body_at = 0;   // request, reply: index of the first body frame
};

// credit = 1*20DIGIT with a value >= 1; the value saturates at 2^32-1, so that a twenty-digit
// credit costs no overflow check later (any broker caps it far lower).
bool read_credit(std::string_view text, std::uint32_t& out) noexcept {
  if (text.empty() || text.size() > 20) return false;
  constexpr std::uint64_t most = std::numeric_limits<std::uint32_t>::max();
  std::uint64_t v = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') return false;
    v = std::min<std::uint64_t>(v * 10 + static_cast<std::uint64_t>(c - '0'), most);
  }
  if (v == 0) return false;
  out = static_cast<std::uint32_t>(v);
  return true;
}

// The client sub-protocol from the header frame at `at`: "MDPC01" | service | body...
fault parse_client_at(const message& m, std::size_t at, body_rule rule,
                      std::string_view& service) noexcept {
  const std::size_t n = m.size();
  if (at >= n) return fault::no_header;
  if (m.view(at) != client_header) return fault::unknown_header;
  if (at + 1 >= n || !valid_name(m.view(at + 1))) return fault::bad_service;
  if (rule == body_rule::required && at + 2 >= n) return fault::no_body;
  service = m.view(at + 1);
  return fault::none;
}

// A worker command from its command frame at `at` to the end of `m` (the delimiter and header
// before it already checked). Parses every command whatever its direction; callers decide which
// are allowed.
fault parse_command_at(const message& m, std::size_t at, body_rule rule, worker_view& w) noexcept {
  const std::size_t n = m.size();
  if (at >= n) return fault::bad_command;
  const std::string_view cmd = m.view(at);
  if (cmd.size() != 1) return fault::bad_command;
  switch (static_cast<std::uint8_t>(cmd[0])) {
    case 0x01:
      if (at + 1 >= n || !valid_name(m.view(at + 1))) return fault::bad_service;
      if (at + 3 < n) return fault::extra_frames;
      w.kind = command::ready;
      w.service = m.view(at + 1);
      w.credit = 1;
      if (at + 2 < n && !read_credit(m.view(at + 2), w.credit)) return fault::bad_credit;
      return fault::none;
    case 0x02:
    case 0x03:
      // Exactly one address frame then the delimiter: a second address (a multi-hop envelope)
      // is not 7/MDP and would misroute the reply.
      if (at + 1 >= n || !valid_name(m.view(at + 1))) return fault::bad_address;
      if (at + 2 >= n || m[at + 2].size() != 0) return fault::no_address_delimiter;
      if (rule == body_rule::required && at + 3 >= n) return fault::no_body;
      w.kind = cmd[0] == 0x02 ? command::request : command::reply;
      w.client = m.view(at + 1);
      w.body_at = at + 3;
      return fault::none;
    case 0x04:
    case 0x05:
      if (at + 1 != n) return fault::extra_frames;
      w.kind = cmd[0] == 0x04 ? command::heartbeat : command::disconnect;
      return fault::none;
    default:
      return fault::bad_command;
  }
}

// Frame 0 of what a client or a worker sends (no ROUTER identity) is the delimiter, unless a REQ
// socket stripped it.
fault check_delimiter(const message& m, delimiter d) noexcept {
  if (d == delimiter::stripped) return fault::none;
  if (m.empty() || m[0].size() != 0) return fault::no_delimiter;
  return fault::none;
}

result<client_request> parse_client_frames(message& m, delimiter d, body_rule rule) {
  std::string_view service;
  if (check_delimiter(m, d) != fault::none) return errc::malformed;
  const std::size_t at = d == delimiter::included ? 1 : 0;
  if (parse_client_at(m, at, rule, service) != fault::none) return errc::malformed;
  client_request r;
  r.service.assign(service);
  r.body = take_tail(m, at + 2);
  return r;
}

// Every worker command whatever its direction, copied out of its views; the callers decide
// which directions are allowed.
result<worker_command> parse_worker_frames(message& m, body_rule rule) {
  if (check_delimiter(m, delimiter::included) != fault::none) return errc::malformed;
  if (m.size() < 2 || m.view(1) != worker_header) return errc::malformed;
  worker_view v;
  if (parse_command_at(m, 2, rule, v) != fault::none) return errc::malformed;
  worker_command w;
  w.kind = v.kind;
  w.service.assign(v.service);
  w.client.assign(v.client);
  w.credit = v.credit;
  if (v.body_at != 0) w.body = take_tail(m, v.body_at);
  return w;
}

message worker_to(std::string_view worker, command c) {
  message m;
  m.reserve(4);
  m.push_back(worker);
  m.push_back(std::string_view{});
  m.push_back(worker_header);
  const auto byte = static_cast<std::uint8_t>(c);
  m.push_back(&byte, 1);
  return m;
}

}  // namespace

bool is_mmi(std::string_view service) noexcept { return service.starts_with(mmi_prefix); }

message client_request_msg(std::string_view service, message&& body, delimiter d) {
  require_body(body, "mdp: a request needs at least one body frame (7/MDP); send one empty frame "
                     "for an empty request");
  return client_frames(service, std::move(body), d);
}

message client_reply(std::string_view service, message&& body) {
  require_body(body, "mdp: a reply needs at least one body frame (7/MDP)");
  return client_frames(service, std::move(body), delimiter::included);
}

message worker_ready(std::string_view service) { return worker_ready(service, 1); }

message worker_ready(std::string_view service, std::uint32_t credit) {
  require_name(service, "mdp: a service name must be 1..255 bytes");
  if (credit == 0) throw fabric::error(errc::invalid_argument, "mdp: a worker's credit must be >= 1");
  message m = worker_header_msg(command::ready, credit > 1 ? 2 : 1);
  m.push_back(service);
  if (credit > 1) {
    char digits[10];  // 2^32-1 has ten
    const auto [end, ec] = std::to_chars(std::begin(digits), std::end(digits), credit);
    (void)ec;  // ten digits always fit
    m.push_back(std::string_view(digits, static_cast<std::size_t>(end - digits)));
  }
  return m;
}

message worker_request(std::string_view client, message&& body) {
  return worker_addressed(command::request, client, std::move(body));
}

message worker_reply(std::string_view client, message&& body) {
  return worker_addressed(command::reply, client, std::move(body));
}

message worker_heartbeat() { return worker_header_msg(command::heartbeat, 0); }

message worker_disconnect() { return worker_header_msg(command::disconnect, 0); }

void write_worker_request(message& out, std::string_view worker, std::string_view client,
                          std::span<frame> body) {
  static constexpr char request_byte = static_cast<char>(command::request);
  out.clear();
  out.reserve(6 + body.size());
  out.push_back(worker);
  out.push_back(std::string_view{});
  out.push_back(worker_header);
  out.push_back(std::string_view(&request_byte, 1));
  out.push_back(client);
  out.push_back(std::string_view{});
  for (frame& f : body) out.emplace_back().copy(f);
}

message worker_heartbeat_to(std::string_view worker) {
  return worker_to(worker, command::heartbeat);
}

message worker_disconnect_to(std::string_view worker) {
  return worker_to(worker, command::disconnect);
}

result<client_request> parse_client(message&& m) {
  return parse_client_frames(m, delimiter::included, body_rule::required);
}

result<client_request> parse_reply_for_client(message&& m, delimiter d) {
  return parse_client_frames(m, d, body_rule::optional);
}

result<worker_command> parse_worker(message&& m) {
  auto r = parse_worker_frames(m, body_rule::required);
  if (r && r->kind == command::request) return errc::protocol_error;
  return r;
}

result<worker_command> parse_from_broker_for_worker(message&& m) {
  auto r = parse_worker_frames(m, body_rule::optional);
  if (r && (r->kind == command::ready || r->kind == command::reply)) return errc::protocol_error;
  return r;
}

std::error_code code_of(fault f) noexcept {
  if (f == fault::none) return {};
  return make_error_code(f == fault::wrong_direction ? errc::protocol_error : errc::malformed);
}

std::string_view describe(fault f) noexcept {
  switch (f) {
    case fault::none: return "well-formed";
    case fault::no_delimiter: return "no empty delimiter frame";
    case fault::return_stack_too_long: return "more return-stack frames than max_return_frames";
    case fault::no_header: return "no protocol header after the delimiter";
    case fault::unknown_header: return "the header is neither MDPC01 nor MDPW01";
    case fault::worker_return_stack: return "a worker command with frames before the delimiter";
    case fault::bad_service: return "the service name is missing, empty or over 255 bytes";
    case fault::no_body: return "a REQUEST or REPLY without a body frame";
    case fault::bad_command: return "the command frame is not one known command byte";
    case fault::bad_address: return "the client address is missing, empty or over 255 bytes";
    case fault::no_address_delimiter: return "no empty frame after the client address";
    case fault::bad_credit: return "the credit is not 1 to 20 decimal digits, or is zero";
    case fault::extra_frames: return "frames after the end of the command";
    case fault::wrong_direction: return "a command that does not travel in this direction";
  }
  return "unknown fault";
}

broker_input parse_broker_input(const message& m, std::size_t max_return_frames) noexcept {
  broker_input in;
  const auto fail = [&in](fault f) {
    in.error = f;
    return in;
  };
  const std::size_t n = m.size();
  if (n == 0) return fail(fault::no_delimiter);
  in.peer = m.view(0);
  // The empty delimiter; the frames between the routing id and it are the return stack.
  // min() keeps 1 + max_return_frames from wrapping; it never ends the scan early.
  const std::size_t stack_limit = std::min(max_return_frames, n) + 1;
  std::size_t d = 1;
  while (d < n && d <= stack_limit && m[d].size() != 0) ++d;
  if (d >= n) return fail(fault::no_delimiter);
  if (d > stack_limit) return fail(fault::return_stack_too_long);
  if (d + 1 >= n) return fail(fault::no_header);
  const std::span<const frame> frames(m.frames());
  if (m.view(d + 1) == client_header) {
    const fault f = parse_client_at(m, d + 1, body_rule::required, in.service);
    if (f != fault::none) return fail(f);
    in.what = broker_input::kind::client_request;
    in.stack = frames.subspan(1, d - 1);
    in.body_at = d + 3;
    in.body = frames.subspan(in.body_at);
    return in;
  }
  if (m.view(d + 1) != worker_header) return fail(fault::unknown_header);
  if (d != 1) return fail(fault::worker_return_stack);
  worker_view w;
  const fault f = parse_command_at(m, 3, body_rule::required, w);
  if (f != fault::none) return fail(f);
  switch (w.kind) {
    case command::ready:
      in.what = broker_input::kind::ready;
      in.service = w.service;
      in.credit = w.credit;
      return in;
    case command::reply:
      in.what = broker_input::kind::reply;
      in.client = w.client;
      in.body_at = w.body_at;
      in.body = frames.subspan(w.body_at);
      return in;
    case command::heartbeat:
      in.what = broker_input::kind::heartbeat;
      return in;
    case command::disconnect:
      in.what = broker_input::kind::disconnect;
      return in;
    case command::request:
      break;
  }
  return fail(fault::wrong_direction);
}

}  // namespace fabric::mdp
