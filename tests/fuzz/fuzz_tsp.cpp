// Fuzz target: the 9/TSP body parsers (src/reliability/tsp.hpp), server and client side, and the
// status and UUID readers. The first octet picks the parser; the rest is the body's frames. The
// grammar is canonical, so what a parser accepts must be exactly what the builders write for the
// values parsed (a UUID's digits compared without case).
#include "fuzz_frames.hpp"

#include "reliability/tsp.hpp"

#include <cctype>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace {

using fabric::message;
using fabric::fuzz::check;
namespace tsp = fabric::tsp;

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

message copy_of(std::span<const fabric::frame> frames) {
  message m;
  for (const auto& f : frames) m.push_back(fabric::view(f));
  return m;
}

// `a` and `b` are equal frame for frame, frame `uuid_at` compared without case.
bool same_body(const message& a, const message& b, std::size_t uuid_at = SIZE_MAX) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (i == uuid_at ? upper(a.view(i)) != upper(b.view(i)) : a.view(i) != b.view(i)) return false;
  }
  return true;
}

void check_fault_text(tsp::fault f) { check(!tsp::describe(f).empty(), "a fault without a description"); }

void request(const message& m, bool keyed) {
  const tsp::parsed_request r = keyed ? tsp::parse_keyed_request(m) : tsp::parse_request(m);
  check_fault_text(r.error);
  if (!r) return;
  check(!r.body.empty() && r.body.size() <= tsp::max_body_frames, "a request body out of bounds");
  message out;
  if (keyed)
    tsp::write_keyed_request(out, r.key, r.service, copy_of(r.body));
  else
    tsp::write_request(out, r.service, copy_of(r.body));
  check(same_body(out, m), "a request is not what the builder writes");
}

void uuid_request(const message& m) {
  const tsp::parsed_uuid_request r = tsp::parse_uuid_request(m);
  check_fault_text(r.error);
  if (!r) return;
  message out;
  tsp::write_uuid_request(out, r.id);
  check(same_body(out, m, 0), "a UUID request is not what the builder writes");
}

void request_reply(const message& m) {
  const tsp::parsed_reply r = tsp::parse_request_reply(m);
  check_fault_text(r.error);
  if (!r) return;
  message out;
  if (r.code == tsp::status::ok)
    tsp::write_request_reply(out, r.id, r.text);
  else
    tsp::write_request_reply(out, r.code, r.text);
  check(same_body(out, m, 1), "titanic.request's answer is not what the builder writes");
}

void reply_reply(const message& m) {
  const tsp::parsed_reply r = tsp::parse_reply_reply(m);
  check_fault_text(r.error);
  if (!r) return;
  message out;
  if (r.code == tsp::status::ok)
    tsp::write_reply_reply(out, copy_of(r.body), r.text);
  else
    tsp::write_reply_reply(out, r.code, r.text);
  check(same_body(out, m), "titanic.reply's answer is not what the builder writes");
}

void close_reply(const message& m) {
  const tsp::parsed_reply r = tsp::parse_close_reply(m);
  check_fault_text(r.error);
  if (!r) return;
  message out;
  tsp::write_close_reply(out, r.code, r.text);
  check(same_body(out, m), "titanic.close's answer is not what the builder writes");
}

void status_and_uuid(std::string_view text) {
  const tsp::parsed_status s = tsp::parse_status(text);
  if (s) check(tsp::status_frame(s.code, s.text) == text, "a status frame is not what the builder writes");
  if (const auto u = tsp::parse_uuid(text)) check(tsp::to_string(*u) == upper(text), "a UUID reads back differently");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fabric::fuzz::input in(data, size);
  const std::uint8_t mode = in.byte();
  if (mode % 7 == 6) {
    status_and_uuid(in.rest());
    return 0;
  }
  const message m = in.rest_message(tsp::max_body_frames + 8);
  switch (mode % 7) {
    case 0: request(m, false); break;
    case 1: request(m, true); break;
    case 2: uuid_request(m); break;
    case 3: request_reply(m); break;
    case 4: reply_reply(m); break;
    default: close_reply(m); break;
  }
  return 0;
}
