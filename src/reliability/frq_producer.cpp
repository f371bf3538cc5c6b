// The FRQ/1 producer machine: workers welcomed and watched, tasks chosen by aged priority and
// handed out within credit once durable, results recorded once, attempts taken back, counted and
// dead-lettered as docs/queue.md section 6 says.
#include "reliability/frq_producer.hpp"

#include <fabric/error.hpp>

#include <algorithm>
#include <limits>

namespace fabric::frq {
namespace {

using detail::time_point;
using std::chrono::milliseconds;
using duration = detail::machine_clock::duration;

constexpr std::string_view cause_deadline = "deadline exceeded";
constexpr std::string_view cause_lost = "worker lost";
constexpr std::string_view cause_restarted = "worker restarted";
constexpr std::string_view cause_producer = "producer restarted";
constexpr std::string_view reason_expired = "expired";
constexpr std::size_t max_waiters = 16;  // RESULT repeats answered per commit in flight

constexpr std::size_t npos = std::numeric_limits<std::size_t>::max();

bool busy(std::uint8_t s) noexcept { return s == 1 || s == 2 || s == 3; }  // handing, running, recording

// Workers are known by name and queue: one process serves each queue on a connection of its own.
std::string worker_key(std::string_view name, std::size_t q) {
  std::string k = std::to_string(q);
  k.push_back(':');
  k.append(name);
  return k;
}

std::string counted_reason(std::string_view cause, std::uint32_t n) {
  std::string r(cause);
  r.append(" x");
  r.append(std::to_string(n));
  return r;
}

}  // namespace

std::string_view to_string(change_kind k) noexcept {
  switch (k) {
    case change_kind::handed_out: return "handed-out";
    case change_kind::taken_back: return "taken-back";
    case change_kind::failed: return "failed";
    case change_kind::done: return "done";
    case change_kind::dead: return "dead";
  }
  return "unknown";
}

// ---- set-up

producer_machine::producer_machine(const producer_settings& s, detail::machine_sink& sink, producer_store& store)
    : s_(s), sink_(sink), store_(store) {
  const auto bad = [](const char* what) { throw error(errc::invalid_argument, std::string("work queue producer: ") + what); };
  if (s.incarnation == 0) bad("the incarnation must not be 0");
  if (s.queues.empty()) bad("it needs at least one queue");
  if (s.heartbeat.count() < 1 || s.heartbeat.count() > static_cast<long>(max_heartbeat_ms))
    bad("the heartbeat interval must be 1 ms to an hour");
  if (s.liveness == 0) bad("liveness must be at least 1");
  if (s.aging_interval.count() < 1) bad("the aging interval must be positive");
  if (s.retry_base.count() < 0 || s.retry_max < s.retry_base) bad("need 0 <= retry base <= retry max");
  if (s.max_attempt_time.count() < 1) bad("the longest attempt time must be positive");
  if (s.max_workers == 0 || s.max_tasks == 0 || s.page == 0 || s.max_batch == 0)
    bad("max_workers, max_tasks, page and max_batch must be positive");
  for (const auto& q : s.queues) {
    if (q.name.empty() || q.name.size() > max_queue_size || q.name[0] == '\0')
      bad("a queue name must be 1 to 255 bytes, not beginning with 0x00");
    if (q.deadline_ms < 1 || q.deadline_ms > max_deadline_ms) bad("a queue's deadline must be 1 ms to a day");
    if (q.max_attempts == 0) bad("a queue's max attempts must be at least 1");
    for (const auto& other : queues_) {
      if (other.settings.name == q.name) bad("a queue is named twice");
    }
    queue qu;
    qu.settings = q;
    qu.counts.name = q.name;
    qu.exhausted = false;  // start() reads it
    queues_.push_back(std::move(qu));
  }
}

std::size_t producer_machine::queue_index(std::string_view name) const noexcept {
  for (std::size_t i = 0; i < queues_.size(); ++i) {
    if (queues_[i].settings.name == name) return i;
  }
  return npos;
}

void producer_machine::start(time_point now) {
  refill(now);
  settle(now);
}

// ---- sending

result<void> producer_machine::send(std::string_view peer, time_point now) {
  auto r = sink_.send(detail::port::main, std::move(out_));
  if (!r) {
    ++stats_.send_failures;
    out_.clear();
    // The worker's connection is gone: it is lost, once the caller is done with its loops.
    if (worker* w = r.is(errc::peer_unreachable) ? find_worker(peer) : nullptr)
      lost_.push_back(worker_key(w->name, w->queue));
    return r;
  }
  if (worker* w = find_worker(peer)) w->heartbeat_at = now + s_.heartbeat;
  return r;
}

void producer_machine::refuse(std::string_view peer, std::string_view code, std::string_view reason, time_point now) {
  const std::string id(peer);
  const auto it = refused_at_.find(id);
  if (it != refused_at_.end() && now - it->second < s_.heartbeat) {
    ++stats_.refusals_held;
    return;
  }
  const std::size_t cap = 4 * s_.max_workers;
  if (it == refused_at_.end() && refused_at_.size() >= cap) {
    std::erase_if(refused_at_, [&](const auto& e) { return now - e.second >= s_.heartbeat; });
    if (refused_at_.size() >= cap) {
      ++stats_.refusals_held;
      return;
    }
  }
  refused_at_[id] = now;
  if (code == version_code) {
    write_version_refusal(out_, peer);
  } else {
    write_refuse(out_, peer, refuse_fields{.code = code, .reason = reason.substr(0, max_reason_size)});
  }
  ++stats_.refused;
  (void)send(peer, now);
}

void producer_machine::answer(std::string_view peer, attempt_key key, verdict v, time_point now) {
  write_recorded(out_, peer, s_.incarnation, key, v);
  (void)send(peer, now);
}

void producer_machine::send_task(worker& w, task& t, time_point now) {
  frame body;
  body.copy(t.body);  // shares the journal's bytes
  write_task(out_, w.peer, s_.incarnation,
             task_fields{.key = {t.id, t.attempt},
                         .priority = t.priority,
                         .deadline_ms = t.deadline_ms,
                         .enqueued_ns = t.enqueued_ns},
             std::move(body));
  const auto r = send(w.peer, now);
  if (r) {
    ++stats_.tasks_sent;
    t.delivered = true;
    return;
  }
  // A full worker gets the task back, uncounted, since it never left, once the caller is done
  // with its loops (send() has noted an unreachable one as lost).
  if (!r.is(errc::peer_unreachable)) unsent_.push_back({w.queue, t.id, t.attempt});
}

// ---- workers

producer_machine::worker* producer_machine::find_worker(std::string_view peer) noexcept {
  const auto p = peers_.find(std::string(peer));
  if (p == peers_.end()) return nullptr;
  const auto w = workers_.find(p->second);
  return w == workers_.end() ? nullptr : &w->second;
}

void producer_machine::forget_worker(const std::string& key, std::string_view cause, bool counted, time_point now) {
  const auto it = workers_.find(key);
  if (it == workers_.end()) return;
  worker& w = it->second;
  const std::vector<std::uint64_t> held(w.tasks.begin(), w.tasks.end());
  for (const std::uint64_t id : held) {
    const auto t = queues_[w.queue].tasks.find(id);
    if (t != queues_[w.queue].tasks.end()) take_back(w.queue, t->second, cause, counted, now);
  }
  auto& names = queues_[w.queue].workers;
  names.erase(std::remove(names.begin(), names.end(), key), names.end());
  peers_.erase(w.peer);
  workers_.erase(it);
  stats_.workers = workers_.size();
}

// ---- tasks

task_change producer_machine::row(change_kind k, const queue& qu, const task& t) const {
  task_change c;
  c.kind = k;
  c.queue = qu.settings.name;
  c.task_id = t.id;
  c.attempt = t.attempt;
  c.counted = t.counted;
  c.answered = t.answered;
  c.worker = t.worker;
  return c;
}

void producer_machine::set_state(queue& qu, task& t, task_state s) noexcept {
  const bool was = busy(static_cast<std::uint8_t>(t.state));
  const bool is = busy(static_cast<std::uint8_t>(s));
  if (was && !is) --qu.in_progress;
  if (!was && is) ++qu.in_progress;
  t.state = s;
}

void producer_machine::add_task(std::size_t q, task_record&& r, time_point now) {
  queue& qu = queues_[q];
  if (r.id <= qu.cursor || qu.tasks.contains(r.id)) return;
  qu.cursor = r.id;
  task t;
  t.id = r.id;
  t.priority = std::min<std::uint8_t>(r.priority, levels - 1);
  t.expires_at = r.expires_at;
  t.enqueued_ns = r.enqueued_ns;
  t.deadline_ms = r.deadline_ms == 0 ? qu.settings.deadline_ms : std::min(r.deadline_ms, max_deadline_ms);
  t.max_attempts = r.max_attempts == 0 ? qu.settings.max_attempts : r.max_attempts;
  t.body = std::move(r.body);
  t.attempt = r.attempt;
  t.counted = r.counted;
  t.answered = r.answered;
  t.state = task_state::waiting;
  task& in = qu.tasks.emplace(r.id, std::move(t)).first->second;
  ++in_memory_;
  stats_.tasks_in_memory = in_memory_;
  if (r.running) {
    // The process that handed it out is gone: counted, as section 6.3 says.
    ++in.counted;
    ++qu.counts.requeues;
    if (in.counted >= in.max_attempts) {
      kill(qu, in, counted_reason(cause_producer, in.counted));
      return;
    }
    task_change c = row(change_kind::taken_back, qu, in);
    c.reason = std::string(cause_producer);
    change(std::move(c));
  }
  make_waiting(qu, in, r.deliver_at == time_point::min() ? now : r.deliver_at, now);
}

void producer_machine::make_waiting(queue& qu, task& t, time_point ready_at, time_point now) {
  t.worker.clear();
  t.worker_inc = 0;
  t.delivered = false;
  if (t.expires_at <= now) {
    ++qu.counts.expired;
    kill(qu, t, std::string(reason_expired));
    return;
  }
  set_state(qu, t, task_state::waiting);
  ++qu.waiting[t.priority];
  if (t.expires_at != time_point::max()) qu.expiry.emplace(t.expires_at, t.id);
  t.ready_at = ready_at;
  if (ready_at <= now) {
    t.ready = true;
    t.effective = t.priority;
    qu.by_id[t.effective].insert(t.id);
    qu.by_age[t.priority][t.effective].emplace(t.ready_at, t.id);
  } else {
    t.ready = false;
    qu.delayed.emplace(t.ready_at, t.id);
  }
}

void producer_machine::unready(queue& qu, task& t) noexcept {
  if (t.state != task_state::waiting) return;
  if (t.ready) {
    qu.by_id[t.effective].erase(t.id);
    qu.by_age[t.priority][t.effective].erase({t.ready_at, t.id});
  } else {
    qu.delayed.erase({t.ready_at, t.id});
  }
  t.ready = false;
  if (t.expires_at != time_point::max()) qu.expiry.erase({t.expires_at, t.id});
  --qu.waiting[t.priority];
  t.state = task_state::dead;  // out of every waiting set; the caller sets what it becomes
}

void producer_machine::kill(queue& qu, task& t, std::string reason) {
  set_state(qu, t, task_state::dead);
  ++qu.counts.dead_lettered;
  task_change c = row(change_kind::dead, qu, t);
  c.reason = std::move(reason);
  change(std::move(c));
}

void producer_machine::release_assignment(queue& qu, task& t) noexcept {
  if (t.state == task_state::running) qu.deadlines.erase({t.cutoff, t.id});
  const auto w = workers_.find(worker_key(t.worker, static_cast<std::size_t>(&qu - queues_.data())));
  if (w != workers_.end() && w->second.incarnation == t.worker_inc && w->second.tasks.erase(t.id) > 0)
    --w->second.assigned;
}

void producer_machine::take_back(std::size_t q, task& t, std::string_view cause, bool counted, time_point now) {
  queue& qu = queues_[q];
  if (t.state != task_state::handing && t.state != task_state::running) return;
  // A TASK that never went out (its hand-out not yet durable, or the socket refused it) costs
  // the task nothing.
  counted = counted && t.delivered;
  release_assignment(qu, t);
  const auto w = workers_.find(worker_key(t.worker, q));
  if (w != workers_.end()) ++w->second.counts.taken_back;
  ++qu.counts.requeues;
  if (counted) {
    ++t.counted;
    if (t.counted >= t.max_attempts) {
      kill(qu, t, counted_reason(cause, t.counted));
      return;
    }
  }
  task_change c = row(change_kind::taken_back, qu, t);
  if (counted) c.reason = std::string(cause);
  change(std::move(c));
  make_waiting(qu, t, now, now);
}

void producer_machine::erase_task(queue& qu, std::uint64_t id) {
  const auto it = qu.tasks.find(id);
  if (it == qu.tasks.end()) return;
  set_state(qu, it->second, task_state::dead);
  qu.tasks.erase(it);
  --in_memory_;
  stats_.tasks_in_memory = in_memory_;
}

void producer_machine::age(queue& qu, time_point now) {
  const duration step = s_.aging_interval;
  for (std::size_t p = 1; p < levels; ++p) {
    for (std::size_t e = p; e >= 1; --e) {
      auto& by_age = qu.by_age[p][e];
      while (!by_age.empty()) {
        const auto [ready_at, id] = *by_age.begin();
        const auto waited = now - ready_at;
        const std::int64_t steps = waited <= duration::zero() ? 0 : static_cast<std::int64_t>(waited / step);
        const std::size_t eff = steps >= static_cast<std::int64_t>(p) ? 0 : p - static_cast<std::size_t>(steps);
        if (eff >= e) break;  // the oldest of the set is not due to move: none is
        by_age.erase(by_age.begin());
        qu.by_id[e].erase(id);
        qu.by_age[p][eff].emplace(ready_at, id);
        qu.by_id[eff].insert(id);
        qu.tasks.at(id).effective = static_cast<std::uint8_t>(eff);
      }
    }
  }
}

producer_machine::task* producer_machine::next_ready(queue& qu, time_point now) {
  age(qu, now);
  for (auto& ids : qu.by_id) {
    if (!ids.empty()) return &qu.tasks.at(*ids.begin());
  }
  return nullptr;
}

void producer_machine::due(queue& qu, time_point now) {
  while (!qu.delayed.empty() && qu.delayed.begin()->first <= now) {
    const auto [ready_at, id] = *qu.delayed.begin();
    qu.delayed.erase(qu.delayed.begin());
    task& t = qu.tasks.at(id);
    t.ready = true;
    t.effective = t.priority;
    qu.by_id[t.effective].insert(id);
    qu.by_age[t.priority][t.effective].emplace(ready_at, id);
  }
  while (!qu.expiry.empty() && qu.expiry.begin()->first <= now) {
    task& t = qu.tasks.at(qu.expiry.begin()->second);
    unready(qu, t);
    ++qu.counts.expired;
    kill(qu, t, std::string(reason_expired));
  }
}

void producer_machine::refill(time_point now) {
  if (now < retry_read_at_) return;
  retry_read_at_ = time_point::min();
  std::vector<task_record> got;
  for (std::size_t q = 0; q < queues_.size(); ++q) {
    queue& qu = queues_[q];
    while (!qu.exhausted && in_memory_ < s_.max_tasks) {
      got.clear();
      const std::size_t want = std::min(s_.page, s_.max_tasks - in_memory_);
      auto r = store_.read(qu.settings.name, qu.cursor, want, got);
      if (!r) {
        ++stats_.store_errors;
        retry_read_at_ = now + s_.heartbeat;
        return;
      }
      for (auto& rec : got) add_task(q, std::move(rec), now);
      qu.exhausted = *r;
      if (got.empty()) {
        qu.exhausted = true;  // nothing came: do not spin on a store that says otherwise
      }
    }
  }
}

void producer_machine::dispatch(time_point now) {
  refill(now);
  for (std::size_t q = 0; q < queues_.size(); ++q) {
    queue& qu = queues_[q];
    due(qu, now);
    while (true) {
      // The worker with the most free slots, ties to the one idle longest: a scan of the queue's
      // workers (at most max_workers) per hand-out.
      worker* best = nullptr;
      for (const auto& key : qu.workers) {
        worker& w = workers_.at(key);
        if (w.assigned >= w.capacity) continue;
        if (best == nullptr || w.capacity - w.assigned > best->capacity - best->assigned ||
            (w.capacity - w.assigned == best->capacity - best->assigned && w.idle_since < best->idle_since))
          best = &w;
      }
      if (best == nullptr) break;
      task* t = next_ready(qu, now);
      if (t == nullptr) break;
      unready(qu, *t);
      set_state(qu, *t, task_state::handing);
      ++t->attempt;
      t->worker = best->name;
      t->worker_inc = best->incarnation;
      t->handed_at = now;
      ++best->assigned;
      best->tasks.insert(t->id);
      best->idle_since = now;
      ++best->counts.handed_out;
      ++qu.counts.handed_out;
      change(row(change_kind::handed_out, qu, *t));
    }
  }
}

void producer_machine::maybe_commit() {
  if (in_flight_ || pending_.empty()) return;
  commit_batch b;
  b.id = next_batch_++;
  in_flight_commit f;
  f.id = b.id;
  const std::size_t n = std::min(pending_.size(), s_.max_batch);
  for (std::size_t i = 0; i < n; ++i) {
    task_change& c = pending_[i];
    task_change copy;
    copy.kind = c.kind;
    copy.queue = c.queue;
    copy.task_id = c.task_id;
    copy.attempt = c.attempt;
    copy.counted = c.counted;
    copy.answered = c.answered;
    copy.reason = c.reason;
    copy.worker = c.worker;
    f.changes.push_back(std::move(copy));
    b.changes.push_back(std::move(c));
  }
  pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(n));
  in_flight_ = std::move(f);
  store_.commit(std::move(b));
}

void producer_machine::settle(time_point now) {
  // What sends found out while loops were running: an unreachable worker is lost; a TASK the
  // socket would not take comes back, uncounted, and goes to someone else.
  for (int round = 0; round < 2 && (!lost_.empty() || !unsent_.empty()); ++round) {
    for (const auto& key : std::exchange(lost_, {})) {
      if (workers_.contains(key)) {
        ++stats_.workers_lost;
        forget_worker(key, cause_lost, true, now);
      }
    }
    for (const auto& u : std::exchange(unsent_, {})) {
      const auto t = queues_[u.queue].tasks.find(u.task_id);
      if (t == queues_[u.queue].tasks.end() || t->second.attempt != u.attempt) continue;
      take_back(u.queue, t->second, {}, false, now);
    }
  }
  dispatch(now);
  maybe_commit();
}

// ---- what arrived

void producer_machine::on_enqueued(std::string_view queue_name, task_record&& record, time_point now) {
  const std::size_t q = queue_index(queue_name);
  if (q == npos) throw error(errc::invalid_argument, "work queue producer: no such queue");
  if (record.priority >= levels) throw error(errc::invalid_argument, "work queue producer: priority above 7");
  queue& qu = queues_[q];
  if (qu.exhausted && in_memory_ < s_.max_tasks) {
    add_task(q, std::move(record), now);
  } else if (record.id > qu.cursor) {
    qu.exhausted = false;  // read from the journal once there is room
  }
  settle(now);
}

void producer_machine::on_message(message&& m, time_point now) {
  ++stats_.received;
  const parsed p = parse_at_producer(m);
  if (!p) {
    ++stats_.malformed;
    if (p.error == fault::unknown_version && !p.peer.empty()) refuse(p.peer, version_code, versions_spoken, now);
    return;
  }
  worker* w = find_worker(p.peer);
  if (w != nullptr) w->last_heard = now;
  if (p.what == command::hello) {
    on_hello(p, now);
  } else if (w == nullptr) {
    refuse(p.peer, "not-welcome", "say HELLO first", now);
  } else {
    switch (p.what) {
      case command::capacity:
        w->capacity = p.capacity;
        break;
      case command::result:
        on_result(*w, p, now);
        break;
      case command::extend:
        on_extend(*w, p, now);
        break;
      case command::bye:
        ++stats_.byes;
        forget_worker(worker_key(w->name, w->queue), {}, false, now);
        break;
      default:  // HEARTBEAT: noted above
        break;
    }
  }
  settle(now);
}

void producer_machine::on_hello(const parsed& p, time_point now) {
  const hello_fields& h = p.hello;
  const std::string peer(p.peer);
  const std::size_t q = queue_index(h.queue);
  if (worker* on_peer = find_worker(peer);
      on_peer != nullptr && (on_peer->name != h.worker_name || on_peer->queue != q)) {
    refuse(peer, "malformed", "a HELLO for another worker or queue on a welcomed connection", now);
    ++stats_.workers_lost;
    forget_worker(worker_key(on_peer->name, on_peer->queue), cause_lost, true, now);
    return;
  }
  if (q == npos) {
    refuse(peer, "unknown-queue", "no such queue here", now);
    return;
  }
  const std::string key = worker_key(h.worker_name, q);
  if (const auto it = workers_.find(key); it != workers_.end() && it->second.incarnation != h.worker_inc) {
    ++stats_.workers_restarted;  // it died holding what it had
    forget_worker(key, cause_restarted, true, now);
  }
  auto it = workers_.find(key);
  if (it == workers_.end()) {
    if (workers_.size() >= s_.max_workers) {
      refuse(peer, "too-many-workers", "this producer has as many workers as it takes", now);
      return;
    }
    worker w;
    w.name = std::string(h.worker_name);
    w.incarnation = h.worker_inc;
    w.queue = q;
    w.idle_since = now;
    w.counts.name = w.name;
    w.counts.incarnation = w.incarnation;
    w.counts.queue = queues_[q].settings.name;
    it = workers_.emplace(key, std::move(w)).first;
    queues_[q].workers.push_back(key);
    stats_.workers = workers_.size();
  }
  worker& w = it->second;
  if (w.peer != peer) {
    peers_.erase(w.peer);
    w.peer = peer;
    peers_[peer] = key;
  }
  w.capacity = h.capacity;
  w.their_heartbeat = milliseconds(h.heartbeat_ms);
  w.last_heard = now;
  refused_at_.erase(peer);
  write_welcome(out_, peer, s_.incarnation, static_cast<std::uint32_t>(s_.heartbeat.count()));
  ++stats_.welcomes;
  (void)send(peer, now);
  // The same process reconnecting: what it holds may have been lost with the old connection.
  for (const std::uint64_t id : w.tasks) {
    task& t = queues_[q].tasks.at(id);
    if (t.state == task_state::running) send_task(w, t, now);
  }
}

void producer_machine::on_result(worker& w, const parsed& p, time_point now) {
  ++stats_.results;
  const attempt_key key = p.key;
  const auto reply = [&](verdict v) {
    if (v == verdict::recorded) ++stats_.recorded_again;
    if (v == verdict::stale) ++stats_.stale;
    if (v == verdict::unknown) ++stats_.unknown;
    answer(w.peer, key, v, now);
  };
  if (p.producer_inc != s_.incarnation) return reply(verdict::unknown);
  queue& qu = queues_[w.queue];
  const auto it = qu.tasks.find(key.task_id);
  if (it == qu.tasks.end()) {
    const task_lookup l = store_.lookup(qu.settings.name, key.task_id);
    if (!l.known) return reply(verdict::unknown);
    return reply(l.answered == key.attempt ? verdict::recorded : verdict::stale);
  }
  task& t = it->second;
  const bool theirs = t.attempt == key.attempt && t.worker == w.name && t.worker_inc == w.incarnation;
  if (t.state == task_state::recording && theirs) {
    if (t.waiters.size() < max_waiters) t.waiters.push_back(w.peer);  // answered with the commit
    return;
  }
  if (t.answered == key.attempt) return reply(verdict::recorded);
  if (t.state != task_state::running || !theirs) return reply(verdict::stale);

  release_assignment(qu, t);
  ++w.counts.results;
  set_state(qu, t, task_state::recording);
  t.waiters.assign(1, w.peer);
  task_change c = row(change_kind::done, qu, t);
  c.answered = key.attempt;
  switch (p.status) {
    case status::done:
      c.body.copy(const_cast<frame&>(*p.body_frame));  // shares the bytes; `m` is ours
      break;
    case status::failed:
      ++c.counted;
      c.reason = "failed: " + std::string(p.body);
      if (c.counted >= t.max_attempts) {
        c.kind = change_kind::dead;
        c.reason = counted_reason(c.reason, c.counted);
      } else {
        c.kind = change_kind::failed;
        c.reason = std::string(p.body);
      }
      break;
    case status::rejected:
      c.kind = change_kind::dead;
      c.reason = std::string(p.body);
      break;
  }
  change(std::move(c));
}

void producer_machine::on_extend(worker& w, const parsed& p, time_point now) {
  queue& qu = queues_[w.queue];
  const auto it = qu.tasks.find(p.key.task_id);
  if (p.producer_inc != s_.incarnation || it == qu.tasks.end() || it->second.state != task_state::running ||
      it->second.attempt != p.key.attempt || it->second.worker != w.name ||
      it->second.worker_inc != w.incarnation) {
    ++stats_.extends_dropped;
    return;
  }
  task& t = it->second;
  const time_point wanted = std::min(now + milliseconds(p.extend_ms), t.handed_at + s_.max_attempt_time);
  if (wanted <= t.deadline) {
    ++stats_.extends_dropped;
    return;
  }
  qu.deadlines.erase({t.cutoff, t.id});
  t.deadline = wanted;
  t.cutoff = wanted + grace();
  qu.deadlines.emplace(t.cutoff, t.id);
  ++stats_.extends;
}

// ---- commits

void producer_machine::on_committed(std::uint64_t id, result<void> outcome, time_point now) {
  if (!in_flight_ || in_flight_->id != id) return;
  in_flight_commit f = std::move(*in_flight_);
  in_flight_.reset();
  const auto answer_all = [&](task& t) {
    for (const auto& peer : t.waiters) answer(peer, {t.id, t.attempt}, verdict::recorded, now);
    t.waiters.clear();
  };
  if (outcome) {
    ++stats_.commits;
    for (const task_change& c : f.changes) {
      const std::size_t q = queue_index(c.queue);
      queue& qu = queues_[q];
      const auto it = qu.tasks.find(c.task_id);
      if (it == qu.tasks.end()) continue;
      task& t = it->second;
      switch (c.kind) {
        case change_kind::handed_out: {
          if (t.state != task_state::handing || t.attempt != c.attempt) break;
          const auto w = workers_.find(worker_key(t.worker, q));
          if (w == workers_.end() || w->second.incarnation != t.worker_inc) {
            take_back(q, t, {}, false, now);  // cannot happen: a worker forgotten takes its tasks back
            break;
          }
          set_state(qu, t, task_state::running);
          t.deadline = now + milliseconds(t.deadline_ms);
          t.cutoff = t.deadline + grace();
          qu.deadlines.emplace(t.cutoff, t.id);
          send_task(w->second, t, now);
          break;
        }
        case change_kind::taken_back:
          break;
        case change_kind::failed: {
          if (t.state != task_state::recording || t.attempt != c.attempt) break;
          answer_all(t);
          t.answered = c.answered;
          t.counted = c.counted;
          ++qu.counts.requeues;
          const auto shift = std::min<std::uint32_t>(c.attempt - 1, 30);
          const duration back = std::min<duration>(s_.retry_base * (std::int64_t{1} << shift), s_.retry_max);
          make_waiting(qu, t, now + back, now);
          break;
        }
        case change_kind::done:
          if (t.state != task_state::recording || t.attempt != c.attempt) break;
          answer_all(t);
          ++qu.counts.completed;
          erase_task(qu, c.task_id);
          break;
        case change_kind::dead:
          if (t.state == task_state::recording && t.attempt == c.attempt) {
            answer_all(t);
            ++qu.counts.dead_lettered;
            erase_task(qu, c.task_id);
          } else if (t.state == task_state::dead) {
            erase_task(qu, c.task_id);
          }
          break;
      }
    }
  } else {
    // Nothing of the batch was written. Hand-outs go back to waiting (their TASKs never left);
    // results being recorded are taken back uncounted (their workers' resent RESULTs will be
    // stale); what only recorded a state the machine already holds is written again, first.
    ++stats_.commit_failures;
    std::vector<task_change> again;
    for (task_change& c : f.changes) {
      const std::size_t q = queue_index(c.queue);
      queue& qu = queues_[q];
      const auto it = qu.tasks.find(c.task_id);
      task* t = it == qu.tasks.end() ? nullptr : &it->second;
      const bool result_kind = c.kind == change_kind::done || c.kind == change_kind::failed ||
                               (c.kind == change_kind::dead && c.answered == c.attempt && c.answered != 0 &&
                                t != nullptr && t->state == task_state::recording);
      if (c.kind == change_kind::handed_out) {
        if (t != nullptr && t->state == task_state::handing && t->attempt == c.attempt) {
          release_assignment(qu, *t);
          make_waiting(qu, *t, now, now);
        }
      } else if (result_kind) {
        if (t != nullptr && t->state == task_state::recording && t->attempt == c.attempt) {
          t->waiters.clear();
          task_change back = row(change_kind::taken_back, qu, *t);
          change(std::move(back));
          ++qu.counts.requeues;
          make_waiting(qu, *t, now, now);
        }
      } else {
        again.push_back(std::move(c));
      }
    }
    pending_.insert(pending_.begin(), std::make_move_iterator(again.begin()), std::make_move_iterator(again.end()));
  }
  settle(now);
}

// ---- time

void producer_machine::on_tick(time_point now) {
  for (std::size_t q = 0; q < queues_.size(); ++q) {
    queue& qu = queues_[q];
    while (!qu.deadlines.empty() && qu.deadlines.begin()->first <= now) {
      task& t = qu.tasks.at(qu.deadlines.begin()->second);
      qu.deadlines.erase(qu.deadlines.begin());
      t.cutoff = time_point::max();
      const auto w = workers_.find(worker_key(t.worker, q));
      if (w != workers_.end() && w->second.incarnation == t.worker_inc) {
        write_cancel(out_, w->second.peer, s_.incarnation, {t.id, t.attempt});
        if (send(w->second.peer, now)) ++stats_.cancels_sent;
      }
      take_back(q, t, cause_deadline, true, now);
    }
  }
  std::vector<std::string> dead;
  for (auto& [key, w] : workers_) {
    if (now - w.last_heard >= ttl(w)) {
      dead.push_back(key);
    } else if (now >= w.heartbeat_at) {
      write_producer_heartbeat(out_, w.peer, s_.incarnation);
      if (send(w.peer, now)) ++stats_.heartbeats_sent;
      w.heartbeat_at = now + s_.heartbeat;  // even when the send failed: no burst
    }
  }
  for (const auto& key : dead) {
    ++stats_.workers_lost;
    forget_worker(key, cause_lost, true, now);
  }
  settle(now);
}

time_point producer_machine::next_tick() const noexcept {
  time_point t = retry_read_at_ == time_point::min() ? time_point::max() : retry_read_at_;
  for (const auto& qu : queues_) {
    if (!qu.delayed.empty()) t = std::min(t, qu.delayed.begin()->first);
    if (!qu.expiry.empty()) t = std::min(t, qu.expiry.begin()->first);
    if (!qu.deadlines.empty()) t = std::min(t, qu.deadlines.begin()->first);
  }
  for (const auto& [key, w] : workers_) t = std::min({t, w.heartbeat_at, w.last_heard + ttl(w)});
  return t;
}

// ---- introspection

producer_queue_stats producer_machine::queue_stats(std::string_view name, time_point now) const {
  const std::size_t q = queue_index(name);
  if (q == npos) throw error(errc::invalid_argument, "work queue producer: no such queue");
  const queue& qu = queues_[q];
  producer_queue_stats s = qu.counts;
  s.waiting = qu.waiting;
  s.in_progress = qu.in_progress;
  s.in_journal_only = qu.exhausted ? 0 : 1;
  s.ready = 0;
  for (const auto& ids : qu.by_id) s.ready += ids.size();
  time_point oldest = time_point::max();
  for (const auto& row_sets : qu.by_age) {
    for (const auto& set : row_sets) {
      if (!set.empty()) oldest = std::min(oldest, set.begin()->first);
    }
  }
  s.oldest_ready = oldest == time_point::max() || oldest > now ? duration::zero() : now - oldest;
  return s;
}

std::vector<producer_worker_stats> producer_machine::worker_stats() const {
  std::vector<producer_worker_stats> out;
  out.reserve(workers_.size());
  for (const auto& [key, w] : workers_) {
    producer_worker_stats s = w.counts;
    s.capacity = w.capacity;
    s.assigned = w.assigned;
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace fabric::frq
