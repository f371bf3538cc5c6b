// The FRQ/1 producer (docs/queue.md): one ROUTER that workers of one or more queues connect to.
// Pure, in the vocabulary of core/machine.hpp: it is told what arrived, what the journal made
// durable and what time it is, and acts through its sink (the ROUTER) and its store (the
// producer's journal).
//
// Every change of a task's durable state goes through one commit at a time: a hand-out is made
// durable before its TASK is sent, a result is recorded (and the application's handler run) in
// the commit whose durability its RECORDED waits for, and take-backs, attempt counts and dead
// letters are written the same way. What happens while a commit is in flight waits for the next
// one, so under load one commit (one fsync) carries many hand-outs and results.
//
//   enqueue -> waiting --dispatch--> handing --commit durable, TASK sent--> running
//                 ^                                                           |
//                 |       taken back (deadline, worker lost or restarted, BYE)|
//                 +-----------------------------------------------------------+
//                 |                                                           | RESULT
//                 '--- failed, after back-off <-- recording <-----------------'
//                                                    |--> done (handler ran), forgotten
//                                                    '--> dead (rejected), forgotten
//
// Choosing the next task (section 7): ready tasks sit in one set per effective priority, ordered
// by task id, and in one set per (priority, effective priority) ordered by the time they became
// ready, from which a task moves one effective level down as each aging interval passes. The
// next task is the first of the lowest non-empty effective set: O(log n) per hand-out, each task
// moving at most seven times while it waits.
//
// Bounds: at most `max_workers` workers, `max_tasks` unfinished tasks in memory over every
// queue. Tasks beyond that stay in the journal, where the store keeps them; the machine reads
// them in task-id order (producer_store::read) as room frees, so a queue longer than memory is
// served oldest first, and its tail takes part in priority choice only once it is read.
//
// Thread safety: none; one thread drives a machine.
#pragma once

#include "core/machine.hpp"
#include "reliability/frq.hpp"

#include <fabric/message.hpp>
#include <fabric/result.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace fabric::frq {

/// An unfinished task as the store reads it from the journal (its record and its frq.state row).
struct task_record {
  std::uint64_t id = 0;  ///< >= 1: the record's sequence in frq.tasks/<queue>
  std::uint8_t priority = 0;  ///< 0 .. 7
  /// Not ready before this (deliver-at, converted by the driver to the machine's clock);
  /// time_point::min() for at once.
  detail::time_point deliver_at = detail::time_point::min();
  /// Dead-lettered "expired" if still waiting at this time; time_point::max() for never.
  detail::time_point expires_at = detail::time_point::max();
  std::uint64_t enqueued_ns = 0;  ///< sent on the wire as TASK's enqueued-time
  std::uint32_t deadline_ms = 0;  ///< 0: the queue's default
  std::uint32_t max_attempts = 0;  ///< 0: the queue's default
  frame body;
  // The frq.state row; all zero for a task never handed out.
  std::uint32_t attempt = 0;   ///< the last attempt number handed out
  std::uint32_t counted = 0;   ///< attempts counted against max-attempts
  std::uint32_t answered = 0;  ///< the attempt whose outcome was last recorded
  bool running = false;        ///< handed out when the producer stopped: taken back at start
};

/// What one change of a commit does to one task.
enum class change_kind : std::uint8_t {
  handed_out,  ///< state running with `attempt` (before its TASK goes out)
  taken_back,  ///< state waiting; `counted` is the new count, `reason` the cause (empty: uncounted)
  failed,      ///< a failed RESULT recorded: state waiting, answered = attempt, counted updated
  done,        ///< completion: run the application's handler on `body`, write frq.done, drop the row
  dead,        ///< dead-letter the task with `reason`; keep its row with state dead
};
std::string_view to_string(change_kind k) noexcept;

struct task_change {
  change_kind kind = change_kind::handed_out;
  std::string queue;
  std::uint64_t task_id = 0;
  // The task's frq.state row after this change.
  std::uint32_t attempt = 0;
  std::uint32_t counted = 0;
  std::uint32_t answered = 0;
  std::string reason;  ///< taken_back: the cause; failed: the worker's; dead: the dead letter's
  frame body;          ///< done: the result
  std::string worker;  ///< handed_out, done, failed: the worker's name
};

/// Everything one journal transaction writes, in order (a task may change more than once).
struct commit_batch {
  std::uint64_t id = 0;
  std::vector<task_change> changes;
};

/// What the journal knows of a task that is not in the machine's memory.
struct task_lookup {
  bool known = false;          ///< the id is (or was) a task of the queue
  std::uint32_t answered = 0;  ///< the attempt whose outcome is recorded (done or dead), 0: none
};

/// The producer's side of the journal, as the machine needs it. The driver implements it over
/// fabric::journal; tests over memory.
class producer_store {
 public:
  virtual ~producer_store() = default;
  /// Appends to `out` at most `max` unfinished (waiting or running) tasks of `queue` with ids
  /// above `after`, in id order.
  /// Returns: true when the queue has no unfinished task above the last one appended (above
  /// `after` when none was), false when more remain; or the journal's error (the machine tries
  /// again at its next tick).
  virtual result<bool> read(std::string_view queue, std::uint64_t after, std::size_t max,
                            std::vector<task_record>& out) = 0;
  /// What the journal holds of task `task_id` of `queue`, finished or paged out.
  virtual task_lookup lookup(std::string_view queue, std::uint64_t task_id) = 0;
  /// Writes `batch` in one transaction, without waiting: a `done` change runs the application's
  /// result handler inside it. Once durable (or failed) the driver calls
  /// producer_machine::on_committed(batch.id, outcome, now).
  virtual void commit(commit_batch&& batch) = 0;
};

struct queue_settings {
  std::string name;  ///< 1..255 octets, not beginning with 0x00
  std::uint32_t deadline_ms = 30'000;  ///< the default time a worker has per attempt
  std::uint32_t max_attempts = 5;      ///< counted attempts before a task is dead-lettered
};

struct producer_settings {
  /// The incarnation of the producer's journal (non-zero).
  std::uint64_t incarnation = 0;
  std::vector<queue_settings> queues;
  std::chrono::milliseconds heartbeat{1000};
  std::size_t liveness = 3;
  std::chrono::milliseconds aging_interval{1000};
  std::chrono::milliseconds retry_base{1000};
  std::chrono::milliseconds retry_max{60'000};
  /// The longest an attempt may run, from its hand-out, however often it is extended.
  std::chrono::milliseconds max_attempt_time{std::chrono::hours(24)};
  std::size_t max_workers = 1024;
  /// Unfinished tasks held in memory over every queue; the rest wait in the journal.
  std::size_t max_tasks = std::size_t{1} << 20;
  /// Tasks read from the journal at once.
  std::size_t page = 1024;
  /// The most task changes one commit carries.
  std::size_t max_batch = 4096;
};

struct producer_worker_stats {
  std::string name;
  std::uint64_t incarnation = 0;
  std::string queue;
  std::uint32_t capacity = 0;
  std::uint32_t assigned = 0;    ///< tasks held now (handed out or being handed out)
  std::uint64_t handed_out = 0;
  std::uint64_t results = 0;     ///< RESULTs that ended one of its attempts
  std::uint64_t taken_back = 0;
};

struct producer_queue_stats {
  std::string name;
  std::array<std::uint64_t, levels> waiting{};  ///< per priority, delayed and backing off included
  std::uint64_t ready = 0;        ///< waiting and ready now
  std::uint64_t in_progress = 0;  ///< handed out (or being), or with a result being recorded
  detail::machine_clock::duration oldest_ready{};  ///< how long the oldest ready task has waited
  std::uint64_t in_journal_only = 0;  ///< 1 when tasks wait in the journal beyond memory
  std::uint64_t completed = 0;
  std::uint64_t dead_lettered = 0;
  std::uint64_t expired = 0;      ///< of which by TTL
  std::uint64_t requeues = 0;     ///< attempts taken back or failed, the task waiting again
  std::uint64_t handed_out = 0;
};

struct producer_stats {
  std::uint64_t received = 0;
  std::uint64_t malformed = 0;        ///< did not parse: dropped
  std::uint64_t refused = 0;          ///< REFUSEs sent
  std::uint64_t refusals_held = 0;    ///< REFUSEs not sent: one per connection per interval
  std::uint64_t welcomes = 0;
  std::uint64_t workers_lost = 0;     ///< judged dead, unreachable or refused malformed
  std::uint64_t workers_restarted = 0;
  std::uint64_t byes = 0;
  std::uint64_t tasks_sent = 0;       ///< TASKs sent, resends after a reconnection included
  std::uint64_t cancels_sent = 0;
  std::uint64_t heartbeats_sent = 0;
  std::uint64_t send_failures = 0;
  std::uint64_t results = 0;
  std::uint64_t recorded_again = 0;   ///< RECORDED `recorded` for an outcome recorded before
  std::uint64_t stale = 0;
  std::uint64_t unknown = 0;
  std::uint64_t extends = 0;          ///< EXTENDs that moved a deadline
  std::uint64_t extends_dropped = 0;
  std::uint64_t commits = 0;
  std::uint64_t commit_failures = 0;
  std::uint64_t store_errors = 0;     ///< journal reads that failed
  std::uint64_t tasks_in_memory = 0;
  std::uint64_t workers = 0;
};

class producer_machine {
 public:
  /// Throws: fabric::error(invalid_argument) for a zero incarnation, no queue, a bad or repeated
  /// queue name, or settings out of range.
  producer_machine(const producer_settings& s, detail::machine_sink& sink, producer_store& store);
  producer_machine(const producer_machine&) = delete;
  producer_machine& operator=(const producer_machine&) = delete;

  /// Reads each queue's unfinished tasks from the journal (up to the memory bound); tasks found
  /// running are taken back and counted ("producer restarted"). Call once, before anything else.
  void start(detail::time_point now);
  /// The application's append of `record` to `queue` is durable. Tasks of a queue must come in id
  /// order; one beyond the memory bound is left to be read from the journal later.
  /// Throws: fabric::error(invalid_argument) for an unknown queue or a priority above 7.
  void on_enqueued(std::string_view queue, task_record&& record, detail::time_point now);
  void on_message(message&& m, detail::time_point now);
  /// The commit of batch `id` is durable (success) or failed.
  void on_committed(std::uint64_t id, result<void> outcome, detail::time_point now);
  void on_tick(detail::time_point now);
  detail::time_point next_tick() const noexcept;

  const producer_stats& stats() const noexcept { return stats_; }
  producer_queue_stats queue_stats(std::string_view queue, detail::time_point now) const;
  std::vector<producer_worker_stats> worker_stats() const;
  bool committing() const noexcept { return in_flight_.has_value(); }

 private:
  enum class task_state : std::uint8_t { waiting, handing, running, recording, dead };

  struct task {
    std::uint64_t id = 0;
    std::uint8_t priority = 0;
    std::uint8_t effective = 0;  // while ready: its effective priority set
    task_state state = task_state::waiting;
    bool ready = false;          // in the ready sets (else delayed)
    bool delivered = false;      // this attempt's TASK went out
    detail::time_point ready_at{};  // when it is (or became) ready
    detail::time_point expires_at = detail::time_point::max();
    std::uint64_t enqueued_ns = 0;
    std::uint32_t deadline_ms = 0;
    std::uint32_t max_attempts = 0;
    frame body;
    std::uint32_t attempt = 0;
    std::uint32_t counted = 0;
    std::uint32_t answered = 0;
    std::string worker;  // handing, running, recording: the worker's name
    std::uint64_t worker_inc = 0;
    detail::time_point handed_at{};
    detail::time_point deadline = detail::time_point::max();  // running: without the grace
    detail::time_point cutoff = detail::time_point::max();    // running: deadline + grace
    std::vector<std::string> waiters;  // recording: routing ids waiting for RECORDED
  };

  struct queue {
    queue_settings settings;
    std::unordered_map<std::uint64_t, task> tasks;
    std::array<std::set<std::uint64_t>, levels> by_id;  // ready, per effective priority
    // ready, per priority and effective priority: (ready_at, id)
    std::array<std::array<std::set<std::pair<detail::time_point, std::uint64_t>>, levels>, levels> by_age;
    std::set<std::pair<detail::time_point, std::uint64_t>> delayed;  // not ready yet: (ready_at, id)
    std::set<std::pair<detail::time_point, std::uint64_t>> expiry;   // waiting with a TTL
    std::set<std::pair<detail::time_point, std::uint64_t>> deadlines;  // running: deadline + grace
    std::uint64_t cursor = 0;      // every unfinished task up to here is in memory
    bool exhausted = true;         // nothing unfinished in the journal beyond cursor
    std::array<std::uint64_t, levels> waiting{};
    std::uint64_t in_progress = 0;
    std::vector<std::string> workers;  // names of its workers, in arrival order
    producer_queue_stats counts;
  };

  struct worker {
    std::string name;
    std::uint64_t incarnation = 0;
    std::size_t queue = 0;
    std::string peer;
    std::uint32_t capacity = 0;
    std::uint32_t assigned = 0;
    std::chrono::milliseconds their_heartbeat{1000};
    detail::time_point last_heard{};
    detail::time_point heartbeat_at{};
    detail::time_point idle_since{};  // when it last had a task handed to it (or joined)
    std::set<std::uint64_t> tasks;    // ids it holds: handing, running
    producer_worker_stats counts;
  };

  struct in_flight_commit {
    std::uint64_t id = 0;
    std::vector<task_change> changes;  // what was committed, bodies moved out
  };

  // Messages
  void on_hello(const parsed& p, detail::time_point now);
  void on_result(worker& w, const parsed& p, detail::time_point now);
  void on_extend(worker& w, const parsed& p, detail::time_point now);
  result<void> send(std::string_view peer, detail::time_point now);
  void refuse(std::string_view peer, std::string_view code, std::string_view reason, detail::time_point now);
  void answer(std::string_view peer, attempt_key key, verdict v, detail::time_point now);
  void send_task(worker& w, task& t, detail::time_point now);

  // Workers
  worker* find_worker(std::string_view peer) noexcept;
  void forget_worker(const std::string& key, std::string_view cause, bool counted, detail::time_point now);

  // Tasks
  void add_task(std::size_t q, task_record&& r, detail::time_point now);
  void make_waiting(queue& qu, task& t, detail::time_point ready_at, detail::time_point now);
  void unready(queue& qu, task& t) noexcept;
  void set_state(queue& qu, task& t, task_state s) noexcept;
  void take_back(std::size_t q, task& t, std::string_view cause, bool counted, detail::time_point now);
  void kill(queue& qu, task& t, std::string reason);
  void release_assignment(queue& qu, task& t) noexcept;
  void age(queue& qu, detail::time_point now);
  task* next_ready(queue& qu, detail::time_point now);
  void due(queue& qu, detail::time_point now);
  void dispatch(detail::time_point now);
  void refill(detail::time_point now);
  void settle(detail::time_point now);
  void change(task_change&& c) { pending_.push_back(std::move(c)); }
  task_change row(change_kind k, const queue& qu, const task& t) const;
  void maybe_commit();
  void erase_task(queue& qu, std::uint64_t id);
  std::size_t queue_index(std::string_view name) const noexcept;
  std::size_t tasks_in_memory() const noexcept;
  detail::machine_clock::duration grace() const noexcept { return s_.heartbeat; }
  detail::machine_clock::duration ttl(const worker& w) const noexcept {
    return w.their_heartbeat * static_cast<long>(s_.liveness);
  }

  producer_settings s_;
  detail::machine_sink& sink_;
  producer_store& store_;
  std::vector<queue> queues_;
  std::unordered_map<std::string, worker> workers_;          // by name
  std::unordered_map<std::string, std::string> peers_;       // routing id -> worker name
  std::unordered_map<std::string, detail::time_point> refused_at_;  // routing id -> last REFUSE
  std::vector<task_change> pending_;
  std::optional<in_flight_commit> in_flight_;
  std::uint64_t next_batch_ = 1;
  std::size_t in_memory_ = 0;
  struct unsent_task {
    std::size_t queue;
    std::uint64_t task_id;
    std::uint32_t attempt;
  };
  std::vector<std::string> lost_;   // workers found unreachable by a send, handled by settle()
  std::vector<unsent_task> unsent_;  // TASKs the socket would not take, handled by settle()
  detail::time_point retry_read_at_ = detail::time_point::min();  // after a failed read
  producer_stats stats_;
  message out_;
};

}  // namespace fabric::frq
