// fabric task queues (FRQ/1, docs/queue.md): a reliable work queue with no broker. A producer
// journals each task and hands tasks to whichever workers are connected, with credit-based flow
// control; a task whose worker dies, disconnects or runs past its deadline is handed out again,
// one that keeps failing is dead-lettered with the reason, and each task's completion is
// recorded in the producer's journal exactly once, in the same transaction as the application's
// own writes.
//
//   // the producer: an image service
//   fabric::journal j = fabric::journal::open("/var/lib/images");
//   fabric::task_producer p(ctx, j, {.endpoint = "tcp://127.0.0.1:7300", .queues = {{.name = "thumbnails"}},
//       .on_result = [](const fabric::task_result& r, fabric::journal_txn& t) {
//         t.put("thumbs", key_of(r.task_id), r.body);  // commits with the task's completion
//       }});
//   p.submit("thumbnails", encode(job), {.priority = 2});  // returns once durable
//
//   // a worker, anywhere, any number of them
//   fabric::task_worker w(ctx, {.name = "w1", .endpoint = "tcp://images:7300", .queue = "thumbnails",
//       .on_task = [](const fabric::task& t) { return render(t.body); }});
//
// Priorities run from 0 (first) to 7 (last). A waiting task's effective priority rises one level
// per aging_interval it waits, so a higher-priority task goes before a lower-priority one unless
// that one has waited longer by one aging interval per level between them, and no task waits
// more than priority x aging_interval before it competes with the highest (docs/queue.md,
// section 7).
//
// Both run the way every fabric service does: on a thread of their own (the default), on the
// caller's thread (run()), or on a reactor the application runs (deferred_start, then attach()).
//
// Thread safety: submit() and its forms from any thread at once. A worker's complete(), fail(),
// reject() and extend() from any thread. stats() from the owner's thread (attached: the
// reactor's). on_result runs on the journal's writer thread; a worker's on_task on its thread.
#pragma once

#include <fabric/context.hpp>
#include <fabric/journal.hpp>
#include <fabric/log.hpp>
#include <fabric/majordomo.hpp>
#include <fabric/reactor.hpp>
#include <fabric/result.hpp>
#include <fabric/security.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace fabric {

using mdp::deferred_start;
using mdp::deferred_start_t;

// -------------------------------------------------------------------------------- producer

struct task_queue_options {
  std::string name;  ///< 1..245 octets, not beginning with 0x00
  /// How long a worker has for one attempt before the task is taken back (it may extend).
  std::chrono::milliseconds deadline{30'000};
  /// Attempts (failures, deadlines passed, workers lost) before a task is dead-lettered.
  std::uint32_t max_attempts = 5;
};

struct submit_options {
  /// 0 (first) .. 7 (last).
  std::uint8_t priority = 4;
  /// Not handed out before this time (system clock). Default: at once.
  std::chrono::system_clock::time_point not_before{};
  /// Dead-lettered ("expired") if not handed out within this long of submit. 0 = no limit.
  std::chrono::milliseconds ttl{0};
  /// This task's deadline per attempt, instead of the queue's (0: the queue's; at most 24 h).
  std::chrono::milliseconds deadline{0};
  /// This task's attempts before it is dead-lettered, instead of the queue's (0: the queue's).
  std::uint32_t max_attempts = 0;
};

/// A task's completion, as on_result sees it. The views are valid during the call only.
struct task_result {
  std::string_view queue;
  std::uint64_t task_id = 0;
  std::uint32_t attempt = 0;
  std::string_view worker;
  std::string_view body;
};

struct task_producer_options {
  /// Where workers connect (a ROUTER), e.g. "tcp://127.0.0.1:7300".
  std::string endpoint;
  std::vector<task_queue_options> queues;
  /// Runs inside the journal transaction that records the task's completion: its writes commit
  /// with it, or neither. Exactly once per task. Throwing fails the commit; it is tried again.
  std::function<void(const task_result&, journal_txn& t)> on_result{};
  std::chrono::milliseconds heartbeat{1000};
  std::size_t liveness = 3;
  std::chrono::milliseconds aging_interval{1000};
  /// A failed attempt waits retry_base x 2^(attempt-1), at most retry_max, before it is ready.
  std::chrono::milliseconds retry_base{1000};
  std::chrono::milliseconds retry_max{60'000};
  std::size_t max_workers = 1024;
  /// Unfinished tasks held in memory; the rest wait in the journal and are read as room frees.
  std::size_t max_tasks = std::size_t{1} << 20;
  /// CURVE for the bound socket (curve_server), or none (the default).
  security_options security{};
  log_fn log{};
};

struct task_queue_info {
  std::string name;
  std::array<std::uint64_t, 8> waiting{};  ///< per priority (delayed and backing off included)
  std::uint64_t ready = 0;
  std::uint64_t in_progress = 0;
  std::chrono::milliseconds oldest_waiting{0};  ///< how long the oldest ready task has waited
  std::uint64_t completed = 0;
  double completions_per_second = 0;  ///< since the previous stats() call
  std::uint64_t dead_lettered = 0;
  std::uint64_t expired = 0;
  std::uint64_t requeues = 0;
  std::uint64_t handed_out = 0;
  std::size_t workers = 0;
};

struct task_worker_info {
  std::string name;
  std::string queue;
  std::uint32_t capacity = 0;
  std::uint32_t assigned = 0;
  std::uint64_t handed_out = 0;
  std::uint64_t results = 0;
  std::uint64_t taken_back = 0;
};

struct task_producer_stats {
  std::uint64_t malformed = 0;
  std::uint64_t refused = 0;
  std::uint64_t workers_lost = 0;
  std::uint64_t stale_results = 0;  ///< late results of attempts taken back: dropped
  std::uint64_t commits = 0;
  std::uint64_t commit_failures = 0;
  std::uint64_t journal_errors = 0;
  std::vector<task_queue_info> queues;
  std::vector<task_worker_info> workers;
};

class task_producer {
 public:
  using submit_callback = std::function<void(result<std::uint64_t> task_id)>;

  /// Binds and starts on its own thread, resuming every unfinished task of its queues that the
  /// journal (which must outlive it) holds: those running when it stopped are handed out again.
  /// Throws: fabric::error(invalid_argument) for a missing endpoint, no queue, a bad or repeated
  /// queue name; what bind throws; the journal's error.
  task_producer(context& ctx, journal& j, task_producer_options options);
  task_producer(context& ctx, journal& j, task_producer_options options, deferred_start_t);
  ~task_producer();
  task_producer(const task_producer&) = delete;
  task_producer& operator=(const task_producer&) = delete;

  const std::string& endpoint() const noexcept;

  /// Journals a task and waits until it is durable; it is then handed out when a worker has
  /// room, by priority. Returns: its id (its sequence in the queue's journal stream),
  /// errc::invalid_argument (an unknown queue, a priority above 7), or the journal's error.
  result<std::uint64_t> submit(std::string_view queue, std::string_view body, const submit_options& o = {});
  /// The same without waiting: `done` runs on the journal's writer thread once durable.
  void submit_async(std::string_view queue, std::string_view body, submit_callback done, const submit_options& o = {});
  std::future<result<std::uint64_t>> submit_async(std::string_view queue, std::string_view body,
                                                  const submit_options& o = {});
  /// Many tasks in one commit: consecutive ids, the first one given to `done`.
  void submit_batch(std::string_view queue, std::span<const std::string_view> bodies, submit_callback done,
                    const submit_options& o = {});
  /// The outbox pattern: a task added inside the application's own transaction; call flush()
  /// after it commits. Throws: fabric::error(invalid_argument) for an unknown queue or priority.
  std::uint64_t submit(journal_txn& t, std::string_view queue, std::string_view body, const submit_options& o = {});
  void flush();

  /// The journal stream holding the tasks of `queue`: "frq.tasks/<queue>". Dead-lettered tasks
  /// are in the journal's dead-letter queue under this stream (fabric-journal dead-letters lists
  /// and requeues them; a requeued task comes back with a new id).
  static std::string journal_stream(std::string_view queue);

  void start();
  result<void> run();
  void request_stop() noexcept;
  void attach(reactor& r);
  bool detach(reactor& r) noexcept;
  bool stop(std::chrono::milliseconds timeout = std::chrono::seconds(5)) noexcept;
  bool running() const noexcept;
  std::exception_ptr failure() const noexcept;

  task_producer_stats stats(std::chrono::milliseconds timeout = std::chrono::seconds(5));

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

// ---------------------------------------------------------------------------------- worker

/// One attempt of a task, as a worker's handler sees it. The views are valid during the call.
struct task {
  std::string_view queue;
  std::uint64_t id = 0;
  std::uint32_t attempt = 1;
  std::uint8_t priority = 0;
  std::chrono::system_clock::time_point enqueued{};
  /// When the producer takes it back unless extended.
  std::chrono::steady_clock::time_point deadline{};
  std::string_view body;
};

/// Thrown by a handler: the task can never succeed; it is dead-lettered at once with what().
class task_rejected : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct task_worker_options {
  /// Unique among the producer's workers, stable across restarts: 1..255 octets.
  std::string name;
  std::string endpoint;
  std::string queue;
  /// Tasks held at once.
  std::uint32_t capacity = 1;
  /// The synchronous handler, on the worker's thread: its return value is the result; throwing
  /// task_rejected rejects the task, throwing anything else fails this attempt (tried again
  /// later). One task at a time.
  std::function<std::string(const task&)> on_task{};
  /// The asynchronous handler, instead: answer later, from any thread, with complete(), fail()
  /// or reject() on the worker. Up to `capacity` tasks at once.
  std::function<void(const task&)> on_task_async{};
  /// Told when a task it holds was taken back (deadline passed, producer replaced): stop working
  /// on it; its answer would be dropped.
  std::function<void(std::uint64_t task_id, std::uint32_t attempt)> on_cancel{};
  std::chrono::milliseconds heartbeat{1000};
  std::size_t liveness = 3;
  std::chrono::milliseconds reconnect_interval{100};
  std::chrono::milliseconds reconnect_interval_max{10'000};
  security_options security{};
  log_fn log{};
};

struct task_worker_stats {
  std::string state;  ///< "connecting", "joining", "working", "leaving", "gone", "stopped"
  std::size_t held = 0;
  std::size_t unanswered = 0;  ///< results not yet recorded by the producer
  std::uint64_t tasks = 0;
  std::uint64_t completed = 0;  ///< results the producer recorded
  std::uint64_t stale = 0;      ///< results the producer dropped (the attempt was taken back)
  std::uint64_t cancelled = 0;
  std::uint64_t connections = 0;
  std::string refusal;
};

class task_worker {
 public:
  /// Connects and starts on its own thread.
  /// Throws: fabric::error(invalid_argument) for a missing name, endpoint, queue or handler.
  task_worker(context& ctx, task_worker_options options);
  task_worker(context& ctx, task_worker_options options, deferred_start_t);
  /// Leaves cleanly: what it holds is handed back (BYE) after its answered results are recorded.
  ~task_worker();
  task_worker(const task_worker&) = delete;
  task_worker& operator=(const task_worker&) = delete;

  /// Answers for on_task_async, from any thread.
  void complete(std::uint64_t task_id, std::uint32_t attempt, std::string_view result);
  void fail(std::uint64_t task_id, std::uint32_t attempt, std::string_view reason);
  void reject(std::uint64_t task_id, std::uint32_t attempt, std::string_view reason);
  /// Asks for `more` time on a task held.
  void extend(std::uint64_t task_id, std::uint32_t attempt, std::chrono::milliseconds more);

  void start();
  result<void> run();
  void request_stop() noexcept;
  void attach(reactor& r);
  bool detach(reactor& r) noexcept;
  bool stop(std::chrono::milliseconds timeout = std::chrono::seconds(5)) noexcept;
  bool running() const noexcept;
  std::exception_ptr failure() const noexcept;

  task_worker_stats stats(std::chrono::milliseconds timeout = std::chrono::seconds(5));

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace fabric
