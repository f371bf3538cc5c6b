// 7/MDP codec: the strict parsers that keep hostile or broken peers from reaching the broker's
// state machine, and the builders that move body frames into place.
#include "reliability/mdp.hpp"

#include <fabric/error.hpp>

#include <iterator>
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

result<client_request> parse_client_frames(message& m, std::size_t at, body_rule rule) {
  // at: index of the header frame. Need header and service, and a body frame when required.
  if (m.size() < at + (rule == body_rule::required ? 3 : 2)) return errc::malformed;
  if (at == 1 && !m.view(0).empty()) return errc::malformed;
  if (m.view(at) != client_header) return errc::malformed;
  const std::string_view service = m.view(at + 1);
  if (!valid_name(service)) return errc::malformed;
  client_request r;
  r.service.assign(service);
  r.body = take_tail(m, at + 2);
  return r;
}

// Parses every worker command whatever its direction; the callers decide which are allowed.
result<worker_command> parse_worker_frames(message& m, body_rule rule) {
  if (m.size() < 3) return errc::malformed;
  if (!m.view(0).empty() || m.view(1) != worker_header) return errc::malformed;
  const std::string_view cmd = m.view(2);
  if (cmd.size() != 1) return errc::malformed;
  worker_command w;
  switch (static_cast<std::uint8_t>(cmd[0])) {
    case 0x01:
      if (m.size() != 4 || !valid_name(m.view(3))) return errc::malformed;
      w.kind = command::ready;
      w.service.assign(m.view(3));
      return w;
    case 0x02:
    case 0x03:
      // Exactly one address frame then the delimiter: a second address (a multi-hop envelope)
      // is not 7/MDP and would misroute the reply.
      if (m.size() < (rule == body_rule::required ? 6U : 5U) || !valid_name(m.view(3)) ||
          !m.view(4).empty())
        return errc::malformed;
      w.kind = cmd[0] == 0x02 ? command::request : command::reply;
      w.client.assign(m.view(3));
      w.body = take_tail(m, 5);
      return w;
    case 0x04:
    case 0x05:
      if (m.size() != 3) return errc::malformed;
      w.kind = cmd[0] == 0x04 ? command::heartbeat : command::disconnect;
      return w;
    default:
      return errc::malformed;
  }
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

message worker_ready(std::string_view service) {
  require_name(service, "mdp: a service name must be 1..255 bytes");
  message m = worker_header_msg(command::ready, 1);
  m.push_back(service);
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

result<client_request> parse_client(message&& m) {
  return parse_client_frames(m, 1, body_rule::required);
}

result<client_request> parse_reply_for_client(message&& m, delimiter d) {
  return parse_client_frames(m, d == delimiter::included ? 1 : 0, body_rule::optional);
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

}  // namespace fabric::mdp
