#include "reliability/tsp.hpp"

#include "reliability/wire_frames.hpp"

#include <fabric/error.hpp>

#include <pthread.h>
#include <sys/random.h>

#include <atomic>
#include <chrono>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <system_error>
#include <utility>

namespace fabric::tsp {
namespace {

using detail::wire::require;

constexpr char hex_digits[] = "0123456789ABCDEF";

// The value of hexadecimal digit `c`, or -1.
int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

bool valid_service(std::string_view s) noexcept {
  if (s.empty() || s.size() > max_service_size) return false;
  for (const char c : s) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

bool valid_key(std::string_view k) noexcept { return !k.empty() && k.size() <= max_key_size; }

bool known(status s) noexcept {
  switch (s) {
    case status::ok:
    case status::pending:
    case status::unknown:
    case status::error:
      return true;
  }
  return false;
}

// Frames `from` .. the end of `m`.
std::span<const frame> frames_from(const message& m, std::size_t from) noexcept {
  return std::span<const frame>(m.frames()).subspan(from);
}

// A request's service and body from frame `at` on; the frame count is already judged.
fault read_request(const message& m, std::size_t at, parsed_request& p) noexcept {
  if (m.size() <= at) return fault::no_service;
  p.service = m.view(at);
  if (!valid_service(p.service)) return fault::bad_service;
  if (m.size() == at + 1) return fault::no_body;
  p.body = frames_from(m, at + 1);
  return fault::none;
}

// Reads the status frame, the first of a reply whose count is at least one.
fault read_status(const message& m, parsed_reply& p) noexcept {
  const parsed_status s = parse_status(m.view(0));
  p.code = s.code;
  p.text = s.text;
  return s.error;
}

void require_body(const message& body) {
  require(!body.empty(), "tsp: a request or reply needs at least one body frame");
  require(body.size() <= max_body_frames, "tsp: over 1024 body frames");
}

void require_not_ok(status s) {
  require(known(s), "tsp: the status must be 200, 300, 400 or 500");
  require(s != status::ok, "tsp: a 200 carries a UUID or the reply frames");
}

// Clears `out` and writes the status frame, reserving room for `more` frames after it.
void start(message& out, status s, std::string_view text, std::size_t more) {
  std::string first = status_frame(s, text);
  out.clear();
  out.reserve(1 + more);
  out.push_back(std::string_view(first));
}

// Appends the frames of `body`, moved.
void append(message& out, message&& body) {
  for (frame& f : body) out.push_back(std::move(f));
  body.clear();
}

}  // namespace

namespace {

// Bumped in every child after a fork, so a child never hands out the bytes its parent's buffer
// still holds: the two would draw the same UUIDs.
std::atomic<std::uint64_t> fork_generation{0};
void note_fork() noexcept { fork_generation.fetch_add(1, std::memory_order_relaxed); }

// Random octets from the kernel's generator (getrandom), fetched 4 KiB at a time: one system call
// per 256 UUIDs rather than one (or a file opened) per UUID.
struct random_pool {
  std::array<std::uint8_t, 4096> bytes{};
  std::size_t used = bytes.size();
  std::uint64_t generation = 0;

  void take(std::uint8_t* out, std::size_t n) {
    const std::uint64_t now = fork_generation.load(std::memory_order_relaxed);
    if (now != generation || used + n > bytes.size()) {
      refill();
      generation = now;
    }
    std::memcpy(out, bytes.data() + used, n);
    std::memset(bytes.data() + used, 0, n);  // handed out once
    used += n;
  }

  void refill() {
    std::size_t got = 0;
    while (got < bytes.size()) {
      const ssize_t r = ::getrandom(bytes.data() + got, bytes.size() - got, 0);
      if (r < 0) {
        if (errno == EINTR) continue;
        throw error(std::error_code(errno, std::system_category()), "tsp: no random octets for a UUID");
      }
      got += static_cast<std::size_t>(r);
    }
    used = 0;
  }
};

}  // namespace

uuid uuid::random() {
  static std::once_flag registered;
  std::call_once(registered, [] { (void)::pthread_atfork(nullptr, nullptr, note_fork); });
  thread_local random_pool pool;
  uuid u;
  pool.take(u.bytes.data(), u.bytes.size());
  u.bytes[6] = static_cast<std::uint8_t>((u.bytes[6] & 0x0f) | 0x40);  // version 4
  u.bytes[8] = static_cast<std::uint8_t>((u.bytes[8] & 0x3f) | 0x80);  // variant 10
  return u;
}

uuid uuid::ordered() {
  static std::once_flag registered;
  std::call_once(registered, [] { (void)::pthread_atfork(nullptr, nullptr, note_fork); });
  thread_local random_pool pool;
  uuid u;
  pool.take(u.bytes.data() + 8, 8);  // 62 random bits after the variant
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
  const auto ms = static_cast<std::uint64_t>(ns / 1'000'000);
  // The 12 bits after the version: the fraction of the millisecond, so that one thread's UUIDs
  // rise within a millisecond too (RFC 9562, section 6.2, method 3).
  const auto fraction = static_cast<std::uint64_t>(ns % 1'000'000) * 4096 / 1'000'000;
  for (std::size_t i = 0; i < 6; ++i) u.bytes[i] = static_cast<std::uint8_t>(ms >> (40 - 8 * i));
  u.bytes[6] = static_cast<std::uint8_t>(0x70 | ((fraction >> 8) & 0x0f));  // version 7
  u.bytes[7] = static_cast<std::uint8_t>(fraction & 0xff);
  u.bytes[8] = static_cast<std::uint8_t>((u.bytes[8] & 0x3f) | 0x80);       // variant 10
  return u;
}

std::string to_string(const uuid& u) {
  std::string s(uuid_text_size, '0');
  for (std::size_t i = 0; i < u.bytes.size(); ++i) {
    s[2 * i] = hex_digits[u.bytes[i] >> 4];
    s[2 * i + 1] = hex_digits[u.bytes[i] & 0x0f];
  }
  return s;
}

std::optional<uuid> parse_uuid(std::string_view text) noexcept {
  if (text.size() != uuid_text_size) return std::nullopt;
  uuid u;
  for (std::size_t i = 0; i < u.bytes.size(); ++i) {
    const int high = hex_value(text[2 * i]);
    const int low = hex_value(text[2 * i + 1]);
    if (high < 0 || low < 0) return std::nullopt;
    u.bytes[i] = static_cast<std::uint8_t>(high << 4 | low);
  }
  return u;
}

std::string_view describe(fault f) noexcept {
  switch (f) {
    case fault::none: return "well-formed";
    case fault::no_service: return "no service frame";
    case fault::bad_service:
      return "the service name is empty, over 255 octets or not all printable ASCII";
    case fault::no_body: return "no body frame";
    case fault::too_many_frames: return "more than 1024 body frames";
    case fault::no_key: return "no key frame";
    case fault::bad_key: return "the key is empty or over 255 octets";
    case fault::no_uuid: return "no UUID frame";
    case fault::bad_uuid: return "the UUID is not 32 hexadecimal digits";
    case fault::extra_frames: return "more frames than the message takes";
    case fault::no_status: return "no status frame";
    case fault::bad_status: return "the status is not three digits, optionally a space and text";
    case fault::unknown_status: return "a status code other than 200, 300, 400 and 500";
  }
  return "unknown fault";
}

parsed_status parse_status(std::string_view frame) noexcept {
  parsed_status p;
  if (frame.size() < 3 || frame.size() == 4 || (frame.size() > 4 && frame[3] != ' ')) {
    p.error = fault::bad_status;
    return p;
  }
  unsigned code = 0;
  for (std::size_t i = 0; i < 3; ++i) {
    if (frame[i] < '0' || frame[i] > '9') {
      p.error = fault::bad_status;
      return p;
    }
    code = code * 10 + static_cast<unsigned>(frame[i] - '0');
  }
  p.code = static_cast<status>(code);
  if (!known(p.code)) {
    p.error = fault::unknown_status;
    return p;
  }
  if (frame.size() > 4) p.text = frame.substr(4);
  return p;
}

std::string status_frame(status s, std::string_view text) {
  require(known(s), "tsp: the status must be 200, 300, 400 or 500");
  const auto code = static_cast<unsigned>(s);
  std::string f{static_cast<char>('0' + code / 100), static_cast<char>('0' + code / 10 % 10),
                static_cast<char>('0' + code % 10)};
  if (!text.empty()) {
    f.reserve(4 + text.size());
    f += ' ';
    f += text;
  }
  return f;
}

parsed_request parse_request(const message& body) noexcept {
  parsed_request p;
  if (body.empty()) {
    p.error = fault::no_service;
  } else if (body.size() > 1 + max_body_frames) {
    p.error = fault::too_many_frames;
  } else {
    p.error = read_request(body, 0, p);
  }
  return p;
}

parsed_request parse_keyed_request(const message& body) noexcept {
  parsed_request p;
  if (body.empty()) {
    p.error = fault::no_key;
  } else if (body.size() > 2 + max_body_frames) {
    p.error = fault::too_many_frames;
  } else if (p.key = body.view(0); !valid_key(p.key)) {
    p.error = fault::bad_key;
  } else {
    p.error = read_request(body, 1, p);
  }
  return p;
}

parsed_uuid_request parse_uuid_request(const message& body) noexcept {
  parsed_uuid_request p;
  if (body.empty()) {
    p.error = fault::no_uuid;
  } else if (body.size() > 1) {
    p.error = fault::extra_frames;
  } else if (const auto id = parse_uuid(body.view(0))) {
    p.id = *id;
  } else {
    p.error = fault::bad_uuid;
  }
  return p;
}

parsed_reply parse_request_reply(const message& body) noexcept {
  parsed_reply p;
  if (body.empty()) {
    p.error = fault::no_status;
  } else if (body.size() > 2) {
    p.error = fault::extra_frames;
  } else if ((p.error = read_status(body, p)) != fault::none) {
  } else if (p.code != status::ok) {
    if (body.size() > 1) p.error = fault::extra_frames;
  } else if (body.size() == 1) {
    p.error = fault::no_uuid;
  } else if (const auto id = parse_uuid(body.view(1))) {
    p.id = *id;
  } else {
    p.error = fault::bad_uuid;
  }
  return p;
}

parsed_reply parse_reply_reply(const message& body) noexcept {
  parsed_reply p;
  if (body.empty()) {
    p.error = fault::no_status;
  } else if (body.size() > 1 + max_body_frames) {
    p.error = fault::too_many_frames;
  } else if ((p.error = read_status(body, p)) != fault::none) {
  } else if (p.code != status::ok) {
    if (body.size() > 1) p.error = fault::extra_frames;
  } else if (body.size() == 1) {
    p.error = fault::no_body;
  } else {
    p.body = frames_from(body, 1);
  }
  return p;
}

parsed_reply parse_close_reply(const message& body) noexcept {
  parsed_reply p;
  if (body.empty()) {
    p.error = fault::no_status;
  } else if (body.size() > 1) {
    p.error = fault::extra_frames;
  } else {
    p.error = read_status(body, p);
  }
  return p;
}

void write_request(message& out, std::string_view service, message&& body) {
  require(valid_service(service), "tsp: a service name must be 1..255 octets of 0x21..0x7E");
  require_body(body);
  require(&out != &body, "tsp: the body cannot be the output");
  out.clear();
  out.reserve(1 + body.size());
  out.push_back(service);
  append(out, std::move(body));
}

void write_keyed_request(message& out, std::string_view key, std::string_view service,
                         message&& body) {
  require(valid_key(key), "tsp: a key must be 1..255 octets");
  require(valid_service(service), "tsp: a service name must be 1..255 octets of 0x21..0x7E");
  require_body(body);
  require(&out != &body, "tsp: the body cannot be the output");
  out.clear();
  out.reserve(2 + body.size());
  out.push_back(key);
  out.push_back(service);
  append(out, std::move(body));
}

void write_uuid_request(message& out, const uuid& id) {
  const std::string text = to_string(id);
  out.clear();
  out.push_back(std::string_view(text));
}

void write_request_reply(message& out, const uuid& id, std::string_view text) {
  const std::string digits = to_string(id);
  start(out, status::ok, text, 1);
  out.push_back(std::string_view(digits));
}

void write_request_reply(message& out, status s, std::string_view text) {
  require_not_ok(s);
  start(out, s, text, 0);
}

void write_reply_reply(message& out, message&& reply, std::string_view text) {
  require_body(reply);
  require(&out != &reply, "tsp: the reply cannot be the output");
  start(out, status::ok, text, reply.size());
  append(out, std::move(reply));
}

void write_reply_reply(message& out, status s, std::string_view text) {
  require_not_ok(s);
  start(out, s, text, 0);
}

void write_close_reply(message& out, status s, std::string_view text) {
  start(out, s, text, 0);
}

}  // namespace fabric::tsp
