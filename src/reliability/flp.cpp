// The 10/FLP grammar: builders and the two parsers (flp.hpp has the grammar).
#include "reliability/flp.hpp"

#include "core/byte_order.hpp"

#include <array>

namespace fabric::flp {

std::string_view to_string(fault f) noexcept {
  switch (f) {
    case fault::none: return "none";
    case fault::no_identity: return "no-identity";
    case fault::bad_command: return "bad-command";
    case fault::control_too_large: return "control-too-large";
    case fault::bad_control: return "bad-control";
    case fault::bad_identity: return "bad-identity";
  }
  return "?";
}

at_server parse_at_server(const message& m, std::size_t max_control) noexcept {
  using kind = at_server::kind;
  if (m.size() < 2) return {kind::malformed, fault::no_identity};
  if (m.size() == 2) {
    if (m.view(1) == ping_command) return {kind::ping, fault::none};
    return {kind::malformed, fault::bad_command};
  }
  if (m[1].size() > max_control) return {kind::malformed, fault::control_too_large};
  return {kind::request, fault::none};
}

at_client parse_at_client(const message& m) noexcept {
  using kind = at_client::kind;
  at_client out;
  if (m.size() < 2) {
    out.why = fault::no_identity;
    return out;
  }
  if (m[0].size() == 0 || m[0].size() > max_endpoint_size) {
    out.why = fault::bad_identity;
    return out;
  }
  out.server = m.view(0);
  if (m.size() == 2) {
    if (m.view(1) == pong_command) {
      out.what = kind::pong;
    } else {
      out.why = fault::bad_command;
    }
    return out;
  }
  const auto seq = decode_sequence(m[1]);
  if (!seq) {
    out.why = fault::bad_control;
    return out;
  }
  out.what = kind::reply;
  out.sequence = *seq;
  return out;
}

frame encode_sequence(std::uint64_t sequence) {
  std::array<unsigned char, sequence_size> bytes{};
  detail::store_be(sequence, bytes.data());
  return frame(bytes.data(), bytes.size());
}

std::optional<std::uint64_t> decode_sequence(const frame& f) noexcept {
  if (f.size() != sequence_size) return std::nullopt;
  return detail::load_be<std::uint64_t>(static_cast<const unsigned char*>(f.data()));
}

message ping_to(std::string_view server) { return make_message(server, ping_command); }

message pong_to(frame&& client) {
  message m;
  m.reserve(2);
  m.push_back(std::move(client));
  m.push_back(pong_command);
  return m;
}

message request_to(std::string_view server, std::uint64_t sequence, message& body) {
  message m;
  m.reserve(body.size() + 2);
  m.push_back(server);
  m.push_back(encode_sequence(sequence));
  for (frame& f : body) m.emplace_back().copy(f);
  return m;
}

}  // namespace fabric::flp
