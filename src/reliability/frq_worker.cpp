// The FRQ/1 worker machine: joining, tasks to the application within capacity, results kept
// until RECORDED and sent again, CANCEL, the producer's incarnation, the unanswered bound, BYE.
#include "reliability/frq_worker.hpp"

#include <fabric/error.hpp>

#include <algorithm>
#include <vector>

namespace fabric::frq {
namespace {

using detail::time_point;
using std::chrono::milliseconds;

message heartbeat_message() {
  message m;
  write_worker_heartbeat(m);
  return m;
}

const worker_settings& checked(const worker_settings& s) {
  const auto bad = [](const char* what) { throw error(errc::invalid_argument, std::string("work queue worker: ") + what); };
  if (s.name.empty() || s.name.size() > max_name_size) bad("the name must be 1 to 255 bytes");
  if (s.queue.empty() || s.queue.size() > max_queue_size || s.queue[0] == '\0')
    bad("the queue must be 1 to 255 bytes, not beginning with 0x00");
  if (s.incarnation == 0) bad("the incarnation must not be 0");
  if (s.capacity < 1 || s.capacity > max_capacity) bad("the capacity must be 1 to 65,536");
  if (s.heartbeat.count() < 1 || s.heartbeat.count() > static_cast<long>(max_heartbeat_ms))
    bad("the heartbeat interval must be 1 ms to an hour");
  if (s.retransmit_interval.count() < 1) bad("the retransmit interval must be positive");
  if (s.max_unanswered < 2) bad("max_unanswered must be at least 2");
  return s;
}

}  // namespace

std::string_view to_string(abandon_reason r) noexcept {
  switch (r) {
    case abandon_reason::cancelled: return "cancelled";
    case abandon_reason::superseded: return "superseded";
    case abandon_reason::producer_replaced: return "producer replaced";
    case abandon_reason::leaving: return "leaving";
  }
  return "unknown";
}

std::string_view to_string(worker_state s) noexcept {
  switch (s) {
    case worker_state::connecting: return "connecting";
    case worker_state::joining: return "joining";
    case worker_state::working: return "working";
    case worker_state::leaving: return "leaving";
    case worker_state::gone: return "gone";
    case worker_state::stopped: return "stopped";
  }
  return "unknown";
}

// ---- the liveness machine's sink

result<void> worker_machine::link_sink::send(detail::port to, message&& m) {
  auto r = owner_.sink_.send(to, std::move(m));
  if (r) ++owner_.stats_.heartbeats_sent;
  return r;
}

void worker_machine::link_sink::close(detail::port which) noexcept {
  owner_.sink_.close(which);
  ++owner_.stats_.connections_lost;
  if (owner_.state_ == worker_state::leaving) {
    owner_.state_ = worker_state::gone;
  } else if (owner_.state_ == worker_state::joining || owner_.state_ == worker_state::working) {
    owner_.state_ = worker_state::connecting;  // tasks and results are kept for the next WELCOME
  }
}

result<void> worker_machine::link_sink::open(detail::port which) {
  auto r = owner_.sink_.open(which);
  if (!r) return r;
  ++owner_.stats_.connections;
  owner_.hello(owner_.now_);
  return r;
}

// ---- set-up

worker_machine::worker_machine(const worker_settings& s, detail::machine_sink& sink, worker_app& app)
    : s_(checked(s)),
      sink_(sink),
      app_(app),
      link_sink_(*this),
      liveness_(detail::liveness::settings{.heartbeat = s.heartbeat,
                                           .liveness = s.liveness,
                                           .reconnect_initial = s.reconnect_initial,
                                           .reconnect_max = s.reconnect_max,
                                           .heartbeats = detail::liveness::cadence::when_quiet},
                link_sink_, heartbeat_message, "work queue worker"),
      window_(s.capacity) {}

// ---- sending

bool worker_machine::transmit(time_point now) {
  if (!sink_.send(detail::port::main, std::move(out_))) {
    ++stats_.send_failures;
    out_.clear();
    return false;
  }
  liveness_.sent(now);
  return true;
}

void worker_machine::hello(time_point now) {
  hello_capacity_ = std::max<std::uint32_t>(1, window_now());  // HELLO cannot say 0: CAPACITY follows
  write_hello(out_, hello_fields{.worker_name = s_.name,
                                 .worker_inc = s_.incarnation,
                                 .queue = s_.queue,
                                 .capacity = hello_capacity_,
                                 .heartbeat_ms = static_cast<std::uint32_t>(s_.heartbeat.count())});
  state_ = worker_state::joining;
  (void)transmit(now);  // a HELLO lost is judged by the liveness machine: no WELCOME, reconnect
}

void worker_machine::send_result(attempt_key key, held_result& r, time_point now) {
  frame body;
  body.copy(r.body);
  write_result(out_, r.producer_inc, key, r.what, std::move(body));
  if (transmit(now)) ++stats_.results_sent;
}

void worker_machine::resend_all(time_point now) {
  for (auto& [k, r] : unanswered_) {
    send_result({k.first, k.second}, r, now);
    ++stats_.resent;
  }
  retransmit_at_ = now + std::max(s_.retransmit_interval, producer_heartbeat_);
}

void worker_machine::send_window(time_point now) {
  if (state_ != worker_state::working) return;
  write_capacity(out_, window_now());
  (void)transmit(now);
}

// ---- the application

bool worker_machine::holds(attempt_key key) const noexcept {
  const auto it = held_.find(key.task_id);
  return it != held_.end() && it->second == key.attempt;
}

result<void> worker_machine::complete(std::uint64_t task_id, std::uint32_t attempt, status s, std::string_view body,
                                      time_point now) {
  now_ = now;
  if (s != status::done && body.size() > max_reason_size) return errc::invalid_argument;
  if (!holds({task_id, attempt}) || state_ == worker_state::gone || state_ == worker_state::stopped)
    return errc::invalid_state;
  held_.erase(task_id);
  if (unanswered_.empty()) retransmit_at_ = now + std::max(s_.retransmit_interval, producer_heartbeat_);
  auto& r = unanswered_[{task_id, attempt}];
  r.producer_inc = producer_inc_;
  r.what = s;
  r.body = make_frame(body);
  if (state_ == worker_state::working || state_ == worker_state::leaving) send_result({task_id, attempt}, r, now);
  if (!paused_ && unanswered_.size() >= s_.max_unanswered) {
    paused_ = true;
    send_window(now);
  }
  return {};
}

result<void> worker_machine::extend(std::uint64_t task_id, std::uint32_t attempt, std::uint32_t extend_ms,
                                    time_point now) {
  now_ = now;
  if (extend_ms < 1 || extend_ms > max_extend_ms) return errc::invalid_argument;
  if (!holds({task_id, attempt}) || state_ != worker_state::working) return errc::invalid_state;
  write_extend(out_, producer_inc_, {task_id, attempt}, extend_ms);
  if (!transmit(now)) return errc::back_pressure;
  return {};
}

void worker_machine::set_capacity(std::uint32_t window, time_point now) {
  now_ = now;
  if (window > s_.capacity) throw error(errc::invalid_argument, "work queue worker: capacity above its setting");
  if (window == window_) return;
  window_ = window;
  if (!paused_) send_window(now);
}

void worker_machine::leave(time_point now) {
  now_ = now;
  if (state_ == worker_state::gone || state_ == worker_state::stopped || state_ == worker_state::leaving) return;
  std::vector<std::uint64_t> ids;
  for (const auto& [id, attempt] : held_) ids.push_back(id);
  std::sort(ids.begin(), ids.end());
  for (const std::uint64_t id : ids) {
    const std::uint32_t attempt = held_.at(id);
    held_.erase(id);
    ++stats_.abandoned;
    app_.on_abandoned({id, attempt}, abandon_reason::leaving);
  }
  if (state_ != worker_state::working || unanswered_.empty()) return finish_leaving(now);
  state_ = worker_state::leaving;
  leave_at_ = now + s_.leave_wait;
}

void worker_machine::finish_leaving(time_point now) {
  if (state_ == worker_state::working || state_ == worker_state::leaving || state_ == worker_state::joining) {
    write_bye(out_);
    (void)transmit(now);
  }
  if (liveness_.is_open()) sink_.close(detail::port::main);
  state_ = worker_state::gone;
  leave_at_ = time_point::max();
}

// ---- what arrived

void worker_machine::on_message(message&& m, time_point now) {
  now_ = now;
  ++stats_.received;
  if (state_ == worker_state::gone || state_ == worker_state::stopped || state_ == worker_state::connecting) {
    ++stats_.ignored;  // a message from a connection already given up
    return;
  }
  const parsed p = parse_at_worker(m);
  if (!p) {
    ++stats_.malformed;
    liveness_.on_message(now, false);
    return;
  }
  if (p.what == command::refuse) {
    liveness_.on_message(now, false);  // alive, but this connection is no good
    return on_refuse(p, now);
  }
  if (p.what == command::welcome) {
    liveness_.on_message(now);
    if (state_ != worker_state::joining) {
      ++stats_.ignored;
      return;
    }
    return on_welcome(p, now);
  }
  if (state_ == worker_state::joining) {
    // Nothing but WELCOME or REFUSE answers a HELLO, and nothing else counts as one: a worker
    // whose WELCOME was lost must not be kept joining by the TASKs and heartbeats that follow
    // it; it joins again on a fresh connection once liveness intervals pass.
    ++stats_.ignored;
    return;
  }
  liveness_.on_message(now);
  if (p.producer_inc != producer_inc_) {
    ++stats_.foreign;
    return;
  }
  switch (p.what) {
    case command::task:
      on_task(p, now);
      break;
    case command::recorded:
      on_recorded(p, now);
      break;
    case command::cancel:
      if (!holds(p.key)) {
        ++stats_.ignored;
        break;
      }
      held_.erase(p.key.task_id);
      ++stats_.abandoned;
      app_.on_abandoned(p.key, abandon_reason::cancelled);
      break;
    default:  // HEARTBEAT
      break;
  }
}

void worker_machine::forget_producer() {
  std::vector<std::pair<std::uint64_t, std::uint32_t>> tasks(held_.begin(), held_.end());
  std::sort(tasks.begin(), tasks.end());
  held_.clear();
  for (const auto& [id, attempt] : tasks) {
    ++stats_.abandoned;
    app_.on_abandoned({id, attempt}, abandon_reason::producer_replaced);
  }
  auto results = std::move(unanswered_);
  unanswered_.clear();
  for (const auto& [k, r] : results) {
    ++stats_.results_dropped;
    app_.on_result_dropped({k.first, k.second});
  }
  paused_ = false;
}

void worker_machine::on_welcome(const parsed& p, time_point now) {
  if (producer_inc_ != 0 && producer_inc_ != p.producer_inc) {
    ++stats_.producer_changes;  // its journal was replaced: what came from the old one is void
    forget_producer();
  }
  producer_inc_ = p.producer_inc;
  producer_heartbeat_ = milliseconds(p.heartbeat_ms);
  liveness_.peer_interval(producer_heartbeat_);
  state_ = worker_state::working;
  ++stats_.welcomes;
  if (window_now() != hello_capacity_) send_window(now);
  resend_all(now);
}

void worker_machine::on_refuse(const parsed& p, time_point now) {
  ++stats_.refusals;
  stats_.refusal = std::string(p.refuse.code) + ": " + std::string(p.refuse.reason);
  if (p.refuse.code == "not-welcome") {  // it forgot us (we were judged dead, or it restarted)
    app_.on_refused(p.refuse.code, p.refuse.reason, false);
    if (state_ == worker_state::leaving) return finish_leaving(now);
    return hello(now);
  }
  const bool final = p.refuse.code == version_code || p.refuse.code == "unknown-queue";
  app_.on_refused(p.refuse.code, p.refuse.reason, final);
  sink_.close(detail::port::main);
  ++stats_.connections_lost;
  if (final || state_ == worker_state::leaving) {
    state_ = final ? worker_state::stopped : worker_state::gone;
    return;
  }
  state_ = worker_state::connecting;
  liveness_.disconnected(now);
}

void worker_machine::on_task(const parsed& p, time_point now) {
  if (state_ != worker_state::working) {
    ++stats_.ignored;  // leaving: it takes nothing more
    return;
  }
  const attempt_key key = p.key;
  if (unanswered_.contains({key.task_id, key.attempt})) {
    ++stats_.duplicates;
    return;
  }
  if (const auto it = held_.find(key.task_id); it != held_.end()) {
    if (it->second >= key.attempt) {
      ++stats_.duplicates;
      return;
    }
    const attempt_key older{key.task_id, it->second};  // taken back and handed to us again
    held_.erase(it);
    ++stats_.abandoned;
    app_.on_abandoned(older, abandon_reason::superseded);
  }
  if (held_.size() >= s_.capacity) {
    ++stats_.overflows;
    return;
  }
  held_.emplace(key.task_id, key.attempt);
  ++stats_.tasks;
  worker_task t;
  t.key = key;
  t.priority = p.task.priority;
  t.deadline = now + milliseconds(p.task.deadline_ms);
  t.enqueued_ns = p.task.enqueued_ns;
  t.body.copy(const_cast<frame&>(*p.body_frame));  // shares the bytes; the message is ours
  app_.on_task(std::move(t));
}

void worker_machine::on_recorded(const parsed& p, time_point now) {
  const auto it = unanswered_.find({p.key.task_id, p.key.attempt});
  if (it == unanswered_.end()) {
    ++stats_.ignored;
    return;
  }
  unanswered_.erase(it);
  switch (p.verdict) {
    case verdict::recorded: ++stats_.recorded; break;
    case verdict::stale: ++stats_.stale; break;
    case verdict::unknown: ++stats_.unknown; break;
  }
  app_.on_answered(p.key, p.verdict);
  if (paused_ && unanswered_.size() <= s_.max_unanswered / 2) {
    paused_ = false;
    send_window(now);
  }
  if (state_ == worker_state::leaving && unanswered_.empty()) finish_leaving(now);
}

// ---- time

void worker_machine::on_tick(time_point now) {
  now_ = now;
  if (state_ == worker_state::gone || state_ == worker_state::stopped) return;
  if (state_ == worker_state::leaving && now >= leave_at_) return finish_leaving(now);
  liveness_.on_tick(now);
  if (state_ == worker_state::working && now >= retransmit_at_) {
    if (unanswered_.empty()) {
      retransmit_at_ = now + std::max(s_.retransmit_interval, producer_heartbeat_);
    } else {
      resend_all(now);
    }
  }
}

time_point worker_machine::next_tick() const noexcept {
  if (state_ == worker_state::gone || state_ == worker_state::stopped) return time_point::max();
  time_point t = liveness_.next_tick();
  if (state_ == worker_state::working && !unanswered_.empty()) t = std::min(t, retransmit_at_);
  if (state_ == worker_state::leaving) t = std::min(t, leave_at_);
  return t;
}

worker_stats worker_machine::stats() const {
  worker_stats s = stats_;
  s.state = state_;
  s.producer_incarnation = producer_inc_;
  s.held = held_.size();
  s.unanswered = unanswered_.size();
  s.paused = paused_;
  s.window = window_;
  return s;
}

}  // namespace fabric::frq
