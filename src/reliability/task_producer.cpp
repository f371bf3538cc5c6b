// fabric::task_producer: the FRQ/1 producer machine (frq_producer.hpp) driven over a ROUTER, its
// store over the application's journal (docs/queue.md, appendix A). A submitted task is an append
// to its queue's journal stream; once durable, the machine's thread reads it back and hands it to
// the machine. Each commit the machine asks for is one journal transaction, which runs the
// application's on_result for the completions it records, and comes back through a completion
// queue.
//
// Finished tasks are forgotten by a per-queue watermark: every task up to the journal cursor
// "frq.finished/<queue>" is done or dead. The queue's stream keeps only records above it
// (retention with that cursor), and the done and dead rows of tasks far enough below it are
// removed, so the journal does not grow with the tasks ever run.
#include <fabric/task_queue.hpp>

#include "core/byte_order.hpp"
#include "core/driver.hpp"
#include "reliability/channel_support.hpp"
#include "reliability/frq_faults.hpp"
#include "reliability/frq_producer.hpp"

#include <fabric/completion_queue.hpp>
#include <fabric/error.hpp>
#include <fabric/router_dealer.hpp>

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <tuple>
#include <unordered_map>

namespace fabric {
namespace frq::faults {
namespace {
std::atomic<bool> forget_done{false};
}  // namespace
void set_forget_done_tasks(bool on) noexcept { forget_done = on; }
bool forget_done_tasks() noexcept { return forget_done; }
}  // namespace frq::faults

namespace {

using detail::time_point;
using std::chrono::milliseconds;

constexpr std::string_view tasks_prefix = "frq.tasks/";
constexpr std::string_view finished_prefix = "frq.finished/";
constexpr std::string_view state_table = "frq.state";
constexpr std::string_view done_table = "frq.done";
// A queue name leaves room for the longest of its journal names.
constexpr std::size_t max_queue_name = 255 - finished_prefix.size();
// Done and dead rows are kept this many tasks below the watermark, so that a worker's repeated
// RESULT for a task just finished is still answered `recorded`.
constexpr std::uint64_t keep_rows = 4096;
// The fixed header of a task record: priority, deliver-at, ttl (ns, from the append),
// enqueued-time, then the task's own deadline (ms) and max attempts (0: the queue's).
constexpr std::size_t header_size = 1 + 8 + 8 + 8 + 4 + 4;

enum class token_kind : std::uint64_t { durable = 1, committed = 2, flush = 3 };
constexpr std::uint64_t make_token(token_kind k, std::uint64_t id) { return (static_cast<std::uint64_t>(k) << 56) | id; }
constexpr token_kind kind_of(std::uint64_t token) { return static_cast<token_kind>(token >> 56); }
constexpr std::uint64_t id_of(std::uint64_t token) { return token & ((std::uint64_t{1} << 56) - 1); }

std::int64_t ns_of(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

std::string u32(std::uint32_t v) {
  char b[4];
  detail::store_be(v, b);
  return std::string(b, 4);
}

std::uint32_t u32_of(std::string_view b) { return detail::load_be<std::uint32_t>(b.data()); }

std::string encode_task(const submit_options& o, std::string_view body) {
  const std::int64_t now = detail::wall_now_ns();
  const std::int64_t deliver_at = o.not_before.time_since_epoch().count() == 0 ? 0 : ns_of(o.not_before);
  const std::int64_t ttl = std::max<std::int64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(o.ttl).count(), 0);
  std::string out;
  out.reserve(header_size + body.size());
  out.push_back(static_cast<char>(o.priority));
  out += detail::be64(static_cast<std::uint64_t>(deliver_at));
  out += detail::be64(static_cast<std::uint64_t>(ttl));
  out += detail::be64(static_cast<std::uint64_t>(now));
  out += u32(static_cast<std::uint32_t>(std::clamp<std::int64_t>(o.deadline.count(), 0, frq::max_deadline_ms)));
  out += u32(o.max_attempts);
  out += body;
  return out;
}

// The machine's clock at wall time `wall_ns`, as seen from `now` / `wall_now`.
time_point machine_time(std::int64_t wall_ns, time_point now, std::int64_t wall_now) {
  return now + std::chrono::nanoseconds(wall_ns - wall_now);
}

std::string row_key(std::string_view queue, std::uint64_t id) {
  std::string k;
  k.reserve(1 + queue.size() + 8);
  k.push_back(static_cast<char>(queue.size()));
  k += queue;
  k += detail::be64(id);
  return k;
}

enum class row_state : std::uint8_t { waiting = 0, running = 1, dead = 2 };

struct state_row {
  std::uint32_t attempt = 0;
  std::uint32_t counted = 0;
  row_state state = row_state::waiting;
  std::uint32_t answered = 0;
};

std::string encode_row(const state_row& r) {
  return u32(r.attempt) + u32(r.counted) + std::string(1, static_cast<char>(r.state)) + u32(r.answered);
}

bool decode_row(std::string_view v, state_row& r) {
  if (v.size() != 13 || static_cast<std::uint8_t>(v[8]) > 2) return false;
  r.attempt = u32_of(v.substr(0, 4));
  r.counted = u32_of(v.substr(4, 4));
  r.state = static_cast<row_state>(v[8]);
  r.answered = u32_of(v.substr(9, 4));
  return true;
}

bool valid_queue(std::string_view q) noexcept {
  return !q.empty() && q.size() <= max_queue_name && q.front() != '\0' && q.find('\0') == std::string_view::npos;
}

}  // namespace

struct task_producer::impl final : frq::producer_store, detail::machine_sink {
  struct queue_state {
    std::string name;
    std::string stream;
    std::string cursor;
    std::uint64_t told = 0;       // tasks up to here were handed to the machine (or read by it)
    std::uint64_t watermark = 0;  // every task up to here is finished, durably
    std::uint64_t written = 0;    // the watermark as last written to the journal
    std::set<std::uint64_t> finished;  // finished tasks above the watermark
  };

  impl(context& c, journal& jr, task_producer_options o)
      : options(checked(std::move(o))),
        j(jr),
        socket(c, socket_settings(options)),
        machine(machine_settings(options, detail::journal_incarnation(jr)), *this, *this),
        driver(c, "task producer") {
    for (const auto& q : options.queues) {
      queue_state s;
      s.name = q.name;
      s.stream = journal_stream(q.name);
      s.cursor = std::string(finished_prefix) + q.name;
      auto w = j.cursor(s.cursor);
      if (!w) throw error(w.error(), "task producer: the queue's watermark could not be read");
      s.watermark = s.written = w->value_or(0);
      auto last = j.last_seq(s.stream);
      if (!last) throw error(last.error(), "task producer: the queue's last task could not be read");
      s.told = last->value_or(0);
      retention_policy keep;
      keep.max_records = 1;
      keep.ack_cursors = {s.cursor};
      auto set = j.set_retention(s.stream, keep);
      if (!set) throw error(set.error(), "task producer: the queue's retention could not be set");
      index.emplace(q.name, queues.size());
      queues.push_back(std::move(s));
    }
    bound = socket.bind(options.endpoint);
    machine.start(detail::machine_clock::now());
    driver.watch(socket, [this](message&& m, time_point now) { machine.on_message(std::move(m), now); }, 256,
                 [this] { ++oversized; });
    driver.watch_fd(done.fd(), [this](time_point now) { on_completions(now); });
    driver.ticks([this](time_point now) { machine.on_tick(now); }, [this] { return machine.next_tick(); });
    driver.commands([this](message&&) {
      take_snapshot();
      return message{};
    });
  }

  ~impl() override {
    driver.stop();
    calls.wait();
  }

  static task_producer_options checked(task_producer_options o) {
    const auto bad = [](const std::string& what) { throw error(errc::invalid_argument, "task producer: " + what); };
    if (o.endpoint.empty()) bad("give an endpoint to bind");
    if (o.queues.empty()) bad("give at least one queue");
    std::set<std::string> seen;
    for (const auto& q : o.queues) {
      if (!valid_queue(q.name)) bad("a queue name must be 1..245 octets, not beginning with 0x00, with no NUL");
      if (!seen.insert(q.name).second) bad("queue " + q.name + " is named twice");
      if (q.max_attempts == 0) bad("max_attempts must be positive");
      if (q.deadline.count() < 1 || q.deadline.count() > frq::max_deadline_ms) bad("a deadline must be 1 ms .. 24 h");
    }
    return o;
  }

  static frq::producer_settings machine_settings(const task_producer_options& o, std::uint64_t inc) {
    frq::producer_settings s;
    s.incarnation = inc;
    for (const auto& q : o.queues) {
      s.queues.push_back({.name = q.name,
                          .deadline_ms = static_cast<std::uint32_t>(q.deadline.count()),
                          .max_attempts = q.max_attempts});
    }
    s.heartbeat = o.heartbeat;
    s.liveness = o.liveness;
    s.aging_interval = o.aging_interval;
    s.retry_base = o.retry_base;
    s.retry_max = o.retry_max;
    s.max_workers = o.max_workers;
    s.max_tasks = o.max_tasks;
    return s;
  }

  static socket_options socket_settings(const task_producer_options& o) {
    socket_options s;
    s.linger = milliseconds(0);
    s.send_hwm = 0;   // bounded by the workers' capacities
    s.recv_hwm = 0;   // bounded by the tasks handed out (results) and the heartbeats
    s.max_frames = 10;
    s.security = o.security;
    return s;
  }

  void log_line(log_level level, const std::string& line) {
    if (options.log) options.log(level, line);
  }

  queue_state* find(std::string_view name) {
    const auto it = index.find(std::string(name));
    return it == index.end() ? nullptr : &queues[it->second];
  }

  // ---- the store

  // Decodes record `seq` of `q` with its frq.state row; false for a finished task (or a damaged
  // record, skipped and logged).
  bool decode(queue_state& q, const journal_record_view& v, time_point now, std::int64_t wall_now,
              frq::task_record& out, bool& failed_read) {
    if (v.payload.size() < header_size || static_cast<std::uint8_t>(v.payload[0]) >= frq::levels) {
      log_line(log_level::error, "task producer: a damaged task record in " + q.stream + " at " + std::to_string(v.seq));
      return false;
    }
    const std::string key = row_key(q.name, v.seq);
    auto done_row = j.get(done_table, key);
    if (!done_row) {
      failed_read = true;
      return false;
    }
    if (*done_row && !frq::faults::forget_done_tasks()) {
      q.finished.insert(v.seq);
      return false;
    }
    auto row = j.get(state_table, key);
    if (!row) {
      failed_read = true;
      return false;
    }
    state_row r;
    if (*row && !decode_row(**row, r)) {
      log_line(log_level::error, "task producer: a damaged state row for task " + std::to_string(v.seq));
    }
    if (*row && r.state == row_state::dead) {
      q.finished.insert(v.seq);
      return false;
    }
    const std::int64_t deliver_at = static_cast<std::int64_t>(detail::load_be<std::uint64_t>(v.payload.data() + 1));
    // The time to live runs from the record's append: a dead-lettered task requeued (a new
    // record) has all of it again.
    const std::int64_t ttl = static_cast<std::int64_t>(detail::load_be<std::uint64_t>(v.payload.data() + 9));
    out.id = v.seq;
    out.priority = static_cast<std::uint8_t>(v.payload[0]);
    out.deliver_at = deliver_at == 0 ? time_point::min() : machine_time(deliver_at, now, wall_now);
    out.expires_at = ttl <= 0 ? time_point::max() : machine_time(v.timestamp_ns + ttl, now, wall_now);
    out.enqueued_ns = detail::load_be<std::uint64_t>(v.payload.data() + 17);
    out.deadline_ms = u32_of(v.payload.substr(25, 4));
    out.max_attempts = u32_of(v.payload.substr(29, 4));
    out.body = frame(v.payload.data() + header_size, v.payload.size() - header_size);
    out.attempt = r.attempt;
    out.counted = r.counted;
    out.answered = r.answered;
    out.running = r.state == row_state::running;
    return true;
  }

  result<bool> read(std::string_view queue, std::uint64_t after, std::size_t max,
                    std::vector<frq::task_record>& out) override {
    queue_state* q = find(queue);
    if (!q) return true;
    std::uint64_t from = std::max(after, q->watermark) + 1;
    const std::size_t want = out.size() + max;
    const time_point now = detail::machine_clock::now();
    const std::int64_t wall_now = detail::wall_now_ns();
    for (;;) {
      bool failed = false;
      std::vector<std::tuple<std::uint64_t, std::int64_t, std::string>> records;
      auto next = j.read_views(q->stream, from, 1024, std::size_t{8} << 20, [&](const journal_record_view& v) {
        records.emplace_back(v.seq, v.timestamp_ns, std::string(v.payload));
      });
      if (!next && !next.is(errc::malformed)) return next.error();
      for (auto& [seq, stamp, payload] : records) {
        if (out.size() >= want) return false;
        frq::task_record r;
        const journal_record_view v{.seq = seq, .timestamp_ns = stamp, .payload = payload};
        if (decode(*q, v, now, wall_now, r, failed)) out.push_back(std::move(r));
        if (failed) return errc::io_error;
        from = seq + 1;
      }
      if (!next) {
        ++from;  // a damaged record: skipped, as the log says
        log_line(log_level::error, "task producer: a damaged task record in " + q->stream);
        continue;
      }
      if (records.empty()) return true;
    }
  }

  frq::task_lookup lookup(std::string_view queue, std::uint64_t task_id) override {
    queue_state* q = find(queue);
    if (!q) return {};
    const std::string key = row_key(queue, task_id);
    if (auto row = j.get(state_table, key); row && *row) {
      state_row r;
      if (decode_row(**row, r)) return {.known = true, .answered = r.answered};
    }
    if (auto d = j.get(done_table, key); d && *d && (*d)->size() >= 4) {
      return {.known = true, .answered = u32_of(std::string_view(**d).substr(0, 4))};
    }
    auto last = j.last_seq(q->stream);
    return {.known = last && *last && task_id <= **last, .answered = 0};
  }

  void commit(frq::commit_batch&& batch) override {
    auto work = std::make_shared<frq::commit_batch>(std::move(batch));
    // The watermarks that moved since they were last written go with this commit; the tasks it
    // finishes move them once it is durable (and are written by the next one).
    auto marks = std::make_shared<std::vector<std::pair<std::size_t, std::uint64_t>>>();
    for (std::size_t i = 0; i < queues.size(); ++i) {
      if (queues[i].watermark > queues[i].written) marks->emplace_back(i, queues[i].watermark);
    }
    pending_commit& pc = commits_in_flight[work->id];
    pc.marks = *marks;
    for (const auto& c : work->changes) {
      if (c.kind != frq::change_kind::done && c.kind != frq::change_kind::dead) continue;
      if (const auto it = index.find(c.queue); it != index.end()) pc.finished.emplace_back(it->second, c.task_id);
    }
    calls.hold();
    j.transact(
        [this, work, marks](journal_txn& t) { write(t, *work, *marks); },
        [this, id = work->id](result<void> outcome, std::exception_ptr thrown) {
          result<std::uint64_t> r = outcome ? result<std::uint64_t>(std::uint64_t{0}) : result<std::uint64_t>(outcome.error());
          if (thrown) {
            r = errc::io_error;  // on_result threw: nothing was kept; the machine tries again
            std::lock_guard lock(thrown_mu);
            last_thrown = thrown;
          }
          done.push(make_token(token_kind::committed, id), std::move(r));
          calls.release();
        });
  }

  // A commit is durable: what it finished moves the watermarks, and what it wrote of them is.
  void committed(std::uint64_t id) {
    const auto it = commits_in_flight.find(id);
    if (it == commits_in_flight.end()) return;
    for (const auto& [i, w] : it->second.marks) queues[i].written = std::max(queues[i].written, w);
    for (const auto& [i, task_id] : it->second.finished) queues[i].finished.insert(task_id);
    for (auto& q : queues) {
      while (!q.finished.empty() && *q.finished.begin() <= q.watermark + 1) {
        q.watermark = std::max(q.watermark, *q.finished.begin());
        q.finished.erase(q.finished.begin());
      }
    }
    commits_in_flight.erase(it);
  }

  // The transaction of one commit: on the journal's writer thread.
  void write(journal_txn& t, const frq::commit_batch& batch,
             const std::vector<std::pair<std::size_t, std::uint64_t>>& marks) {
    for (const auto& c : batch.changes) {
      const std::string key = row_key(c.queue, c.task_id);
      state_row r{.attempt = c.attempt, .counted = c.counted, .state = row_state::waiting, .answered = c.answered};
      switch (c.kind) {
        case frq::change_kind::handed_out:
          r.state = row_state::running;
          t.put(state_table, key, encode_row(r));
          break;
        case frq::change_kind::taken_back:
        case frq::change_kind::failed:
          t.put(state_table, key, encode_row(r));
          break;
        case frq::change_kind::done: {
          if (options.on_result) {
            options.on_result(task_result{.queue = c.queue,
                                          .task_id = c.task_id,
                                          .attempt = c.answered,
                                          .worker = c.worker,
                                          .body = std::string_view(static_cast<const char*>(c.body.data()),
                                                                   c.body.size())},
                              t);
          }
          t.put(done_table, key, u32(c.answered) + detail::be64(static_cast<std::uint64_t>(detail::wall_now_ns())));
          t.erase(state_table, key);
          break;
        }
        case frq::change_kind::dead:
          (void)t.dead_letter(journal_stream(c.queue), c.task_id, c.reason, c.counted);
          r.state = row_state::dead;
          t.put(state_table, key, encode_row(r));
          break;
      }
    }
    for (const auto& [i, w] : marks) {
      queue_state& q = queues[i];
      t.set_cursor(q.cursor, w);
      // Rows of tasks far enough below the watermark are no longer needed.
      const std::uint64_t from = q.written > keep_rows ? q.written - keep_rows + 1 : 1;
      const std::uint64_t to = w > keep_rows ? w - keep_rows : 0;
      for (std::uint64_t id = from; id <= to; ++id) {
        const std::string key = row_key(q.name, id);
        t.erase(done_table, key);
        t.erase(state_table, key);
      }
    }
  }

  // ---- the sink

  result<void> send(detail::port, message&& m) override { return socket.try_send(std::move(m)); }

  // ---- the machine's thread

  void on_completions(time_point now) {
    std::map<std::size_t, std::uint64_t> durable;
    done.drain([&](completion_queue::completion c) {
      switch (kind_of(c.token)) {
        case token_kind::durable:
          if (c.seq) durable[id_of(c.token)] = std::max(durable[id_of(c.token)], *c.seq);
          break;
        case token_kind::flush: {
          std::map<std::size_t, std::uint64_t> lasts;
          {
            std::lock_guard lock(flush_mu);
            const auto it = flushes.find(id_of(c.token));
            if (it == flushes.end()) break;
            lasts = std::move(it->second);
            flushes.erase(it);
          }
          if (!c.seq) break;
          for (const auto& [q, last] : lasts) durable[q] = std::max(durable[q], last);
          break;
        }
        case token_kind::committed: {
          result<void> outcome = c.seq ? result<void>() : result<void>(c.seq.error());
          if (!c.seq) {
            ++commit_failures;
            std::exception_ptr thrown;
            {
              std::lock_guard lock(thrown_mu);
              thrown = std::exchange(last_thrown, nullptr);
            }
            log_line(log_level::error, "task producer: a commit failed: " +
                                           (thrown ? std::string("on_result threw") : c.seq.error().message()));
            commits_in_flight.erase(id_of(c.token));  // its watermarks go with the next commit
          } else {
            committed(id_of(c.token));
          }
          machine.on_committed(id_of(c.token), outcome, now);
          break;
        }
      }
    });
    for (const auto& [qi, through] : durable) enqueue_through(qi, through, now);
  }

  // Hands the machine the tasks of queue `qi` up to `through`, now durable, read back from the
  // journal: whichever way they were written (submit, or in the application's transaction).
  void enqueue_through(std::size_t qi, std::uint64_t through, time_point now) {
    queue_state& q = queues[qi];
    const std::int64_t wall_now = detail::wall_now_ns();
    while (q.told < through) {
      std::vector<std::tuple<std::uint64_t, std::int64_t, std::string>> records;
      const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(through - q.told, 1024));
      auto next = j.read_views(q.stream, q.told + 1, want, std::size_t{8} << 20, [&](const journal_record_view& v) {
        if (v.seq <= through) records.emplace_back(v.seq, v.timestamp_ns, std::string(v.payload));
      });
      if (!next && !next.is(errc::malformed)) {
        ++journal_errors;
        return;  // the machine reads what it missed from the journal when it has room
      }
      if (records.empty()) {
        q.told = through;
        break;
      }
      for (auto& [seq, stamp, payload] : records) {
        bool failed = false;
        frq::task_record r;
        const journal_record_view v{.seq = seq, .timestamp_ns = stamp, .payload = payload};
        if (decode(q, v, now, wall_now, r, failed)) machine.on_enqueued(q.name, std::move(r), now);
        q.told = seq;
      }
    }
  }

  void flush() {
    std::map<std::size_t, std::uint64_t> lasts;
    for (std::size_t i = 0; i < queues.size(); ++i) {
      auto last = j.last_seq(queues[i].stream);
      if (last && *last) lasts.emplace(i, **last);
    }
    const std::uint64_t id = next_flush++;
    {
      std::lock_guard lock(flush_mu);
      flushes.emplace(id, std::move(lasts));
    }
    calls.hold();
    j.transact([](journal_txn&) {},
               [this, id](result<void> outcome, std::exception_ptr) {
                 done.push(make_token(token_kind::flush, id),
                           outcome ? result<std::uint64_t>(std::uint64_t{0}) : result<std::uint64_t>(outcome.error()));
                 calls.release();
               });
  }

  void take_snapshot() {
    const time_point now = detail::machine_clock::now();
    const auto& m = machine.stats();
    task_producer_stats s;
    s.malformed = m.malformed + oversized;
    s.refused = m.refused;
    s.workers_lost = m.workers_lost;
    s.stale_results = m.stale;
    s.commits = m.commits;
    s.commit_failures = commit_failures;
    s.journal_errors = journal_errors + m.store_errors;
    const auto workers = machine.worker_stats();
    const double seconds =
        last_snapshot == time_point{} ? 0.0 : std::chrono::duration<double>(now - last_snapshot).count();
    for (const auto& q : queues) {
      const auto qs = machine.queue_stats(q.name, now);
      task_queue_info info;
      info.name = q.name;
      for (std::size_t p = 0; p < frq::levels; ++p) info.waiting[p] = qs.waiting[p];
      info.ready = qs.ready;
      info.in_progress = qs.in_progress;
      info.oldest_waiting = std::chrono::duration_cast<milliseconds>(qs.oldest_ready);
      info.completed = qs.completed;
      std::uint64_t& before = completed_before[q.name];
      info.completions_per_second = seconds > 0 ? static_cast<double>(qs.completed - before) / seconds : 0.0;
      before = qs.completed;
      info.dead_lettered = qs.dead_lettered;
      info.expired = qs.expired;
      info.requeues = qs.requeues;
      info.handed_out = qs.handed_out;
      for (const auto& w : workers) info.workers += w.queue == q.name ? 1u : 0u;
      s.queues.push_back(std::move(info));
    }
    last_snapshot = now;
    for (const auto& w : workers) {
      s.workers.push_back({.name = w.name,
                           .queue = w.queue,
                           .capacity = w.capacity,
                           .assigned = w.assigned,
                           .handed_out = w.handed_out,
                           .results = w.results,
                           .taken_back = w.taken_back});
    }
    std::lock_guard lock(snapshot_mu);
    snapshot = std::move(s);
  }

  task_producer_options options;
  journal& j;
  router socket;
  std::string bound;
  completion_queue done;
  std::vector<queue_state> queues;
  std::unordered_map<std::string, std::size_t> index;

  std::mutex flush_mu;
  std::map<std::uint64_t, std::map<std::size_t, std::uint64_t>> flushes;
  std::atomic<std::uint64_t> next_flush{1};
  std::mutex thrown_mu;
  std::exception_ptr last_thrown;

  struct pending_commit {
    std::vector<std::pair<std::size_t, std::uint64_t>> marks;     // watermarks it writes
    std::vector<std::pair<std::size_t, std::uint64_t>> finished;  // tasks it finishes
  };
  std::map<std::uint64_t, pending_commit> commits_in_flight;
  std::uint64_t commit_failures = 0;
  std::uint64_t journal_errors = 0;
  std::uint64_t oversized = 0;
  time_point last_snapshot{};
  std::map<std::string, std::uint64_t> completed_before;
  std::mutex snapshot_mu;
  task_producer_stats snapshot;
  detail::journal_calls calls;

  frq::producer_machine machine;
  detail::driver driver;  // last: stopped before what it drives is destroyed
};

task_producer::task_producer(context& ctx, journal& j, task_producer_options options, deferred_start_t)
    : impl_(std::make_unique<impl>(ctx, j, std::move(options))) {}

task_producer::task_producer(context& ctx, journal& j, task_producer_options options)
    : task_producer(ctx, j, std::move(options), deferred_start) {
  impl_->driver.start();
}

task_producer::~task_producer() = default;

const std::string& task_producer::endpoint() const noexcept { return impl_->bound; }

std::string task_producer::journal_stream(std::string_view queue) {
  std::string s(tasks_prefix);
  s += queue;
  return s;
}

result<std::uint64_t> task_producer::submit(std::string_view queue, std::string_view body, const submit_options& o) {
  return submit_async(queue, body, o).get();
}

void task_producer::submit_async(std::string_view queue, std::string_view body, submit_callback done,
                                 const submit_options& o) {
  const auto it = impl_->index.find(std::string(queue));
  if (it == impl_->index.end() || o.priority >= frq::levels) {
    if (done) done(errc::invalid_argument);
    return;
  }
  const std::uint64_t qi = it->second;
  impl_->calls.hold();
  impl_->j.append(journal_stream(queue), encode_task(o, body),
                  [im = impl_.get(), qi, done = std::move(done)](result<std::uint64_t> r) {
                    if (r) im->done.push(make_token(token_kind::durable, qi), *r);
                    if (done) done(std::move(r));
                    im->calls.release();
                  });
}

std::future<result<std::uint64_t>> task_producer::submit_async(std::string_view queue, std::string_view body,
                                                               const submit_options& o) {
  auto promise = std::make_shared<std::promise<result<std::uint64_t>>>();
  auto future = promise->get_future();
  submit_async(queue, body, [promise](result<std::uint64_t> r) { promise->set_value(std::move(r)); }, o);
  return future;
}

void task_producer::submit_batch(std::string_view queue, std::span<const std::string_view> bodies,
                                 submit_callback done, const submit_options& o) {
  const auto it = impl_->index.find(std::string(queue));
  if (it == impl_->index.end() || o.priority >= frq::levels || bodies.empty()) {
    if (done) done(errc::invalid_argument);
    return;
  }
  std::vector<std::string> payloads;
  payloads.reserve(bodies.size());
  for (const auto b : bodies) payloads.push_back(encode_task(o, b));
  std::vector<std::string_view> views(payloads.begin(), payloads.end());
  const std::uint64_t qi = it->second;
  const std::uint64_t n = bodies.size();
  impl_->calls.hold();
  impl_->j.append_batch(journal_stream(queue), views,
                        [im = impl_.get(), qi, n, done = std::move(done)](result<std::uint64_t> r) {
                          if (r) im->done.push(make_token(token_kind::durable, qi), *r + n - 1);
                          if (done) done(std::move(r));
                          im->calls.release();
                        });
}

std::uint64_t task_producer::submit(journal_txn& t, std::string_view queue, std::string_view body,
                                    const submit_options& o) {
  if (!impl_->index.contains(std::string(queue))) throw error(errc::invalid_argument, "task producer: no such queue");
  if (o.priority >= frq::levels) throw error(errc::invalid_argument, "task producer: priorities are 0..7");
  return t.append(journal_stream(queue), encode_task(o, body));
}

void task_producer::flush() { impl_->flush(); }

void task_producer::start() { impl_->driver.start(); }
result<void> task_producer::run() { return impl_->driver.run(); }
void task_producer::request_stop() noexcept { impl_->driver.request_stop(); }
void task_producer::attach(reactor& r) { impl_->driver.attach(r); }
bool task_producer::detach(reactor& r) noexcept { return impl_->driver.detach(r); }
bool task_producer::stop(std::chrono::milliseconds timeout) noexcept {
  return impl_ ? impl_->driver.stop(timeout) : true;
}
bool task_producer::running() const noexcept { return impl_->driver.running(); }
std::exception_ptr task_producer::failure() const noexcept { return impl_->driver.failure(); }

task_producer_stats task_producer::stats(std::chrono::milliseconds timeout) {
  auto answer = impl_->driver.call(message{}, timeout);
  if (!answer) {
    if (answer.is(errc::timeout)) throw error(errc::timeout, "task producer: its thread did not answer");
    throw error(errc::invalid_state, "task producer: not running");
  }
  std::lock_guard lock(impl_->snapshot_mu);
  return impl_->snapshot;
}

}  // namespace fabric
