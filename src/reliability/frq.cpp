// FRQ/1 codec: the strict parsers that keep hostile or broken peers away from the producer's and
// the worker's machines, and the builders that check the grammar's bounds before sending.
#include "reliability/frq.hpp"

#include "reliability/wire_frames.hpp"

#include <fabric/error.hpp>

#include <utility>

namespace fabric::frq {
namespace {

using detail::wire::push;
using detail::wire::read;
using detail::wire::require;

// Frames after the command byte: every FRQ/1 command has a fixed shape.
constexpr std::size_t hello_frames = 5;
constexpr std::size_t capacity_frames = 1;
constexpr std::size_t result_frames = 5;
constexpr std::size_t extend_frames = 4;
constexpr std::size_t worker_heartbeat_frames = 0;
constexpr std::size_t bye_frames = 0;
constexpr std::size_t welcome_frames = 2;
constexpr std::size_t task_frames = 7;
constexpr std::size_t recorded_frames = 4;
constexpr std::size_t cancel_frames = 3;
constexpr std::size_t producer_heartbeat_frames = 1;
constexpr std::size_t refuse_frames = 2;

bool valid_name(std::string_view name) noexcept {
  return !name.empty() && name.size() <= max_name_size;
}

// The first octet 0x00 is kept back for the producer's own use, as FRS/1 does for stream names.
bool valid_queue(std::string_view queue) noexcept {
  return !queue.empty() && queue.size() <= max_queue_size && queue.front() != '\0';
}

bool valid_capacity(std::uint32_t capacity) noexcept { return capacity >= 1 && capacity <= max_capacity; }
bool valid_window(std::uint32_t window) noexcept { return window <= max_capacity; }
bool valid_heartbeat(std::uint32_t ms) noexcept { return ms >= 1 && ms <= max_heartbeat_ms; }
bool valid_extend(std::uint32_t ms) noexcept { return ms >= 1 && ms <= max_extend_ms; }
bool valid_deadline(std::uint32_t ms) noexcept { return ms >= 1 && ms <= max_deadline_ms; }
bool valid_priority(std::uint8_t priority) noexcept { return priority < levels; }
bool valid_status(std::uint8_t s) noexcept { return s <= static_cast<std::uint8_t>(status::rejected); }
bool valid_verdict(std::uint8_t v) noexcept { return v <= static_cast<std::uint8_t>(verdict::unknown); }
bool valid_code(std::string_view code) noexcept { return detail::wire::valid_code(code, max_code_size); }

// Only a done result carries the application's answer; the others carry a reason for people.
bool valid_result_body(status s, std::size_t size) noexcept {
  return s == status::done || size <= max_reason_size;
}

bool is_worker_command(command c) noexcept { return static_cast<std::uint8_t>(c) < 0x10; }

fault read_inc(const message& m, std::size_t i, std::uint64_t& inc) noexcept {
  if (!read(m, i, inc)) return fault::bad_width;
  return inc == 0 ? fault::zero_incarnation : fault::none;
}

// task-id then attempt, at frames i and i + 1.
fault read_key(const message& m, std::size_t i, attempt_key& key) noexcept {
  if (!read(m, i, key.task_id)) return fault::bad_width;
  if (key.task_id == 0) return fault::zero_task;
  if (!read(m, i + 1, key.attempt)) return fault::bad_width;
  return key.attempt == 0 ? fault::zero_attempt : fault::none;
}

// The frame count of a command: `rest` frames follow its command byte.
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

// The body at frame `i`, as a view and as the frame to share.
void take_body(const message& m, std::size_t i, parsed& p) noexcept {
  p.body = m.view(i);
  p.body_frame = &m[i];
}

// Parses the command whose byte is frame `at`; the header before it is already checked.
// Evaluates each check in the order the header file promises: count, then left to right.
fault parse_command(const message& m, std::size_t at, parsed& p) noexcept {
  const std::size_t n = m.size();
  const std::size_t rest = n > at + 1 ? n - at - 1 : 0;
  const std::size_t f = at + 1;  // the first frame after the command byte
  fault e = fault::none;
  switch (command_byte(m, at)) {
    case static_cast<std::uint8_t>(command::hello):
      p.what = command::hello;
      if ((e = exactly(rest, hello_frames)) != fault::none) return e;
      p.hello.worker_name = m.view(f);
      if (!valid_name(p.hello.worker_name)) return fault::bad_name;
      if ((e = read_inc(m, f + 1, p.hello.worker_inc)) != fault::none) return e;
      p.hello.queue = m.view(f + 2);
      if (!valid_queue(p.hello.queue)) return fault::bad_queue;
      if (!read(m, f + 3, p.hello.capacity)) return fault::bad_width;
      if (!valid_capacity(p.hello.capacity)) return fault::bad_capacity;
      if (!read(m, f + 4, p.hello.heartbeat_ms)) return fault::bad_width;
      return valid_heartbeat(p.hello.heartbeat_ms) ? fault::none : fault::bad_heartbeat;
    case static_cast<std::uint8_t>(command::capacity):
      p.what = command::capacity;
      if ((e = exactly(rest, capacity_frames)) != fault::none) return e;
      if (!read(m, f, p.capacity)) return fault::bad_width;
      return valid_window(p.capacity) ? fault::none : fault::bad_capacity;
    case static_cast<std::uint8_t>(command::result): {
      p.what = command::result;
      if ((e = exactly(rest, result_frames)) != fault::none) return e;
      if ((e = read_inc(m, f, p.producer_inc)) != fault::none) return e;
      if ((e = read_key(m, f + 1, p.key)) != fault::none) return e;
      std::uint8_t s = 0;
      if (!read(m, f + 3, s)) return fault::bad_width;
      if (!valid_status(s)) return fault::bad_status;
      p.status = static_cast<status>(s);
      take_body(m, f + 4, p);
      return valid_result_body(p.status, p.body.size()) ? fault::none : fault::reason_too_long;
    }
    case static_cast<std::uint8_t>(command::extend):
      p.what = command::extend;
      if ((e = exactly(rest, extend_frames)) != fault::none) return e;
      if ((e = read_inc(m, f, p.producer_inc)) != fault::none) return e;
      if ((e = read_key(m, f + 1, p.key)) != fault::none) return e;
      if (!read(m, f + 3, p.extend_ms)) return fault::bad_width;
      return valid_extend(p.extend_ms) ? fault::none : fault::bad_extend;
    case static_cast<std::uint8_t>(command::worker_heartbeat):
      p.what = command::worker_heartbeat;
      return exactly(rest, worker_heartbeat_frames);
    case static_cast<std::uint8_t>(command::bye):
      p.what = command::bye;
      return exactly(rest, bye_frames);
    case static_cast<std::uint8_t>(command::welcome):
      p.what = command::welcome;
      if ((e = exactly(rest, welcome_frames)) != fault::none) return e;
      if ((e = read_inc(m, f, p.producer_inc)) != fault::none) return e;
      if (!read(m, f + 1, p.heartbeat_ms)) return fault::bad_width;
      return valid_heartbeat(p.heartbeat_ms) ? fault::none : fault::bad_heartbeat;
    case static_cast<std::uint8_t>(command::task):
      p.what = command::task;
      if ((e = exactly(rest, task_frames)) != fault::none) return e;
      if ((e = read_inc(m, f, p.producer_inc)) != fault::none) return e;
      if ((e = read_key(m, f + 1, p.key)) != fault::none) return e;
      p.task.key = p.key;
      if (!read(m, f + 3, p.task.priority)) return fault::bad_width;
      if (!valid_priority(p.task.priority)) return fault::bad_priority;
      if (!read(m, f + 4, p.task.deadline_ms)) return fault::bad_width;
      if (!valid_deadline(p.task.deadline_ms)) return fault::bad_deadline;
      if (!read(m, f + 5, p.task.enqueued_ns)) return fault::bad_width;
      take_body(m, f + 6, p);
      return fault::none;
    case static_cast<std::uint8_t>(command::recorded): {
      p.what = command::recorded;
      if ((e = exactly(rest, recorded_frames)) != fault::none) return e;
      if ((e = read_inc(m, f, p.producer_inc)) != fault::none) return e;
      if ((e = read_key(m, f + 1, p.key)) != fault::none) return e;
      std::uint8_t v = 0;
      if (!read(m, f + 3, v)) return fault::bad_width;
      if (!valid_verdict(v)) return fault::bad_verdict;
      p.verdict = static_cast<verdict>(v);
      return fault::none;
    }
    case static_cast<std::uint8_t>(command::cancel):
      p.what = command::cancel;
      if ((e = exactly(rest, cancel_frames)) != fault::none) return e;
      if ((e = read_inc(m, f, p.producer_inc)) != fault::none) return e;
      return read_key(m, f + 1, p.key);
    case static_cast<std::uint8_t>(command::producer_heartbeat):
      p.what = command::producer_heartbeat;
      if ((e = exactly(rest, producer_heartbeat_frames)) != fault::none) return e;
      return read_inc(m, f, p.producer_inc);
    case static_cast<std::uint8_t>(command::refuse):
      p.what = command::refuse;
      if ((e = exactly(rest, refuse_frames)) != fault::none) return e;
      p.refuse.code = m.view(f);
      if (!valid_code(p.refuse.code)) return fault::bad_code;
      p.refuse.reason = m.view(f + 1);
      return p.refuse.reason.size() <= max_reason_size ? fault::none : fault::reason_too_long;
    default:
      return fault::bad_command;
  }
}

enum class side : bool { producer, worker };

parsed parse(const message& m, std::size_t at, side s) noexcept {
  parsed p;
  if ((p.error = read_header(m, at, p)) != fault::none) return p;
  p.error = parse_command(m, at + 1, p);
  if (p.error == fault::none && (s == side::producer) != is_worker_command(p.what)) {
    p.error = fault::wrong_direction;
  }
  return p;
}

// ---------------------------------------------------------------------------------------------
// Builders

void require_inc(std::uint64_t inc) {
  require(inc != 0, "frq: an incarnation must be non-zero");
}

void require_key(attempt_key key) {
  require(key.task_id != 0, "frq: task ids start at 1");
  require(key.attempt != 0, "frq: attempts start at 1");
}

// Clears `out` and writes [peer |] "FRQ01" | command; `more` frames are to follow. `peer` is the
// routing id on the ROUTER, nothing on the DEALER.
void start(message& out, const std::string_view* peer, command c, std::size_t more) {
  detail::wire::start(out, peer, header, static_cast<std::uint8_t>(c), more);
}

// producer-inc | task-id | attempt, after the command byte.
void push_key(message& out, std::uint64_t producer_inc, attempt_key key) {
  push(out, producer_inc);
  push(out, key.task_id);
  push(out, key.attempt);
}

void result_head(message& out, std::uint64_t producer_inc, attempt_key key, status s,
                 std::size_t body_size) {
  require_inc(producer_inc);
  require_key(key);
  require(valid_status(static_cast<std::uint8_t>(s)), "frq: no such status");
  require(valid_result_body(s, body_size),
          "frq: a failed or rejected result's reason must be at most 255 octets");
  start(out, nullptr, command::result, result_frames);
  push_key(out, producer_inc, key);
  push(out, static_cast<std::uint8_t>(s));
}

void task_head(message& out, std::string_view peer, std::uint64_t producer_inc,
               const task_fields& task) {
  require_inc(producer_inc);
  require_key(task.key);
  require(valid_priority(task.priority), "frq: a priority must be 0..7");
  require(valid_deadline(task.deadline_ms), "frq: deadline-ms must be 1..86,400,000");
  start(out, &peer, command::task, task_frames);
  push_key(out, producer_inc, task.key);
  push(out, task.priority);
  push(out, task.deadline_ms);
  push(out, task.enqueued_ns);
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
    case fault::unknown_header: return "the header is not FRQ";
    case fault::unknown_version: return "an FRQ header of a version other than FRQ01";
    case fault::bad_command: return "the command frame is not one FRQ/1 command byte";
    case fault::wrong_direction: return "a command that does not travel in this direction";
    case fault::truncated: return "fewer frames than the command needs";
    case fault::extra_frames: return "frames after the end of the command";
    case fault::bad_width: return "an integer frame of the wrong width";
    case fault::bad_name: return "the worker name is empty or over 255 octets";
    case fault::bad_queue: return "the queue name is empty, over 255 octets or begins with 0x00";
    case fault::zero_incarnation: return "an incarnation of 0";
    case fault::zero_task: return "a task id of 0";
    case fault::zero_attempt: return "an attempt of 0";
    case fault::bad_capacity: return "a capacity outside its range (HELLO 1 to 65,536, CAPACITY 0 to 65,536)";
    case fault::bad_heartbeat: return "heartbeat-ms outside 1 to 3,600,000";
    case fault::bad_extend: return "extend-ms outside 1 to 3,600,000";
    case fault::bad_status: return "a result status other than done, failed or rejected";
    case fault::bad_verdict: return "a verdict other than recorded, stale or unknown";
    case fault::bad_priority: return "a priority outside 0 to 7";
    case fault::bad_deadline: return "deadline-ms outside 1 to 86,400,000";
    case fault::bad_code: return "the refusal code is not 1 to 32 of a-z and -";
    case fault::reason_too_long: return "a reason over 255 octets";
  }
  return "unknown fault";
}

parsed parse_at_producer(const message& m) noexcept {
  if (m.empty()) {
    parsed p;
    p.error = fault::no_routing_id;
    return p;
  }
  parsed p = parse(m, 1, side::producer);
  p.peer = m.view(0);
  return p;
}

parsed parse_at_worker(const message& m) noexcept { return parse(m, 0, side::worker); }

void write_hello(message& out, const hello_fields& hello) {
  require(valid_name(hello.worker_name), "frq: a worker name must be 1..255 octets");
  require_inc(hello.worker_inc);
  require(valid_queue(hello.queue), "frq: a queue name must be 1..255 octets, not starting with 0x00");
  require(valid_capacity(hello.capacity), "frq: HELLO's capacity must be 1..65,536");
  require(valid_heartbeat(hello.heartbeat_ms), "frq: heartbeat-ms must be 1..3,600,000");
  start(out, nullptr, command::hello, hello_frames);
  out.push_back(hello.worker_name);
  push(out, hello.worker_inc);
  out.push_back(hello.queue);
  push(out, hello.capacity);
  push(out, hello.heartbeat_ms);
}

void write_capacity(message& out, std::uint32_t window) {
  require(valid_window(window), "frq: CAPACITY's window must be 0..65,536");
  start(out, nullptr, command::capacity, capacity_frames);
  push(out, window);
}

void write_result(message& out, std::uint64_t producer_inc, attempt_key key, status s,
                  std::string_view body) {
  result_head(out, producer_inc, key, s, body.size());
  out.push_back(body);
}

void write_result(message& out, std::uint64_t producer_inc, attempt_key key, status s,
                  frame&& body) {
  result_head(out, producer_inc, key, s, body.size());
  out.push_back(std::move(body));
}

void write_extend(message& out, std::uint64_t producer_inc, attempt_key key,
                  std::uint32_t extend_ms) {
  require_inc(producer_inc);
  require_key(key);
  require(valid_extend(extend_ms), "frq: extend-ms must be 1..3,600,000");
  start(out, nullptr, command::extend, extend_frames);
  push_key(out, producer_inc, key);
  push(out, extend_ms);
}

void write_worker_heartbeat(message& out) {
  start(out, nullptr, command::worker_heartbeat, worker_heartbeat_frames);
}

void write_bye(message& out) { start(out, nullptr, command::bye, bye_frames); }

void write_welcome(message& out, std::string_view peer, std::uint64_t producer_inc,
                   std::uint32_t heartbeat_ms) {
  require_inc(producer_inc);
  require(valid_heartbeat(heartbeat_ms), "frq: heartbeat-ms must be 1..3,600,000");
  start(out, &peer, command::welcome, welcome_frames);
  push(out, producer_inc);
  push(out, heartbeat_ms);
}

void write_task(message& out, std::string_view peer, std::uint64_t producer_inc,
                const task_fields& task, std::string_view body) {
  task_head(out, peer, producer_inc, task);
  out.push_back(body);
}

void write_task(message& out, std::string_view peer, std::uint64_t producer_inc,
                const task_fields& task, frame&& body) {
  task_head(out, peer, producer_inc, task);
  out.push_back(std::move(body));
}

void write_recorded(message& out, std::string_view peer, std::uint64_t producer_inc,
                    attempt_key key, verdict v) {
  require_inc(producer_inc);
  require_key(key);
  require(valid_verdict(static_cast<std::uint8_t>(v)), "frq: no such verdict");
  start(out, &peer, command::recorded, recorded_frames);
  push_key(out, producer_inc, key);
  push(out, static_cast<std::uint8_t>(v));
}

void write_cancel(message& out, std::string_view peer, std::uint64_t producer_inc,
                  attempt_key key) {
  require_inc(producer_inc);
  require_key(key);
  start(out, &peer, command::cancel, cancel_frames);
  push_key(out, producer_inc, key);
}

void write_producer_heartbeat(message& out, std::string_view peer, std::uint64_t producer_inc) {
  require_inc(producer_inc);
  start(out, &peer, command::producer_heartbeat, producer_heartbeat_frames);
  push(out, producer_inc);
}

void write_refuse(message& out, std::string_view peer, const refuse_fields& refuse) {
  require(valid_code(refuse.code), "frq: a refusal code must be 1..32 of a-z and -");
  require(refuse.reason.size() <= max_reason_size, "frq: a reason must be at most 255 octets");
  start(out, &peer, command::refuse, refuse_frames);
  out.push_back(refuse.code);
  out.push_back(refuse.reason);
}

void write_version_refusal(message& out, std::string_view peer) {
  write_refuse(out, peer, {version_code, versions_spoken});
}

}  // namespace fabric::frq
