// The FRQ/1 worker (docs/queue.md section 8): one DEALER connection to one producer's queue. Pure,
// in the vocabulary of core/machine.hpp, on the shared liveness machine (core/liveness.hpp) for
// heartbeats, the producer's death and reconnection back-off: it is told what arrived, what the
// application finished and what time it is, and acts through its sink (the DEALER) and its
// application (worker_app).
//
//   connecting --open, HELLO--> joining --WELCOME--> working --leave()--> leaving --BYE--> gone
//        ^                         |                    |
//        '------ back-off ---------'<-- REFUSE, or the producer silent for liveness intervals
//   (REFUSE `version` or `unknown-queue`: stopped, for good)
//
// Tasks go to the application as they come; it answers each later with complete(). Each RESULT
// is kept until a RECORDED comes for it, sent again after every WELCOME and every retransmit
// interval, so a lost RESULT, a lost RECORDED or a reconnection costs nothing. Tasks and results
// survive a lost connection; a producer with another incarnation (a replaced journal) makes them
// worthless, and the application is told. At `max_unanswered` results waiting for their RECORDED
// the worker pauses (CAPACITY 0) and takes tasks again once half of them are answered, so it
// holds at most max_unanswered + capacity results.
//
// Thread safety: none; one thread drives a machine.
#pragma once

#include "core/liveness.hpp"
#include "core/machine.hpp"
#include "reliability/frq.hpp"

#include <fabric/message.hpp>
#include <fabric/result.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace fabric::frq {

/// One attempt of a task, as the application gets it.
struct worker_task {
  attempt_key key;
  std::uint8_t priority = 0;
  /// When the producer's deadline for it passes (its receipt plus deadline-ms); EXTEND before.
  detail::time_point deadline{};
  std::uint64_t enqueued_ns = 0;
  frame body;  ///< shares the TASK's bytes
};

/// Why the worker gave up an attempt it held: the application should stop working on it, and a
/// complete() for it is refused.
enum class abandon_reason : std::uint8_t {
  cancelled,          ///< CANCEL: the producer took it back (its deadline passed)
  superseded,         ///< a TASK for a later attempt came: this one was taken back
  producer_replaced,  ///< the producer's journal was replaced (another incarnation)
  leaving,            ///< leave(): handed back with BYE
};
std::string_view to_string(abandon_reason r) noexcept;

/// The application behind a worker. Its calls come from inside the machine's entry points.
class worker_app {
 public:
  virtual ~worker_app() = default;
  /// A task to run; answer with worker_machine::complete().
  virtual void on_task(worker_task&& task) = 0;
  /// The attempt `key` is no longer this worker's.
  virtual void on_abandoned(attempt_key key, abandon_reason why) = 0;
  /// The producer's RECORDED for the result of `key`: `recorded` ends the task for this worker;
  /// `stale` and `unknown` mean the result was dropped.
  virtual void on_answered(attempt_key key, verdict v) = 0;
  /// A result not yet answered was dropped: it belonged to a producer incarnation that is gone.
  virtual void on_result_dropped(attempt_key key) { (void)key; }
  /// The producer refused this worker; `final` when it will not try again (version,
  /// unknown-queue).
  virtual void on_refused(std::string_view code, std::string_view reason, bool final) {
    (void)code;
    (void)reason;
    (void)final;
  }
};

enum class worker_state : std::uint8_t {
  connecting,  ///< no connection: waiting for the back-off to open one
  joining,     ///< HELLO sent, no WELCOME yet
  working,     ///< welcomed
  leaving,     ///< leave(): waiting (bounded) for its results' RECORDED before BYE
  gone,        ///< BYE sent, connection closed
  stopped,     ///< refused for good (version, unknown-queue)
};
std::string_view to_string(worker_state s) noexcept;

struct worker_settings {
  std::string name;               ///< 1..255 octets, stable across restarts, unique per producer
  std::uint64_t incarnation = 0;  ///< non-zero, drawn afresh at each start of the process
  std::string queue;              ///< 1..255 octets, not beginning with 0x00
  std::uint32_t capacity = 1;     ///< 1 .. 65,536: the most tasks held at once
  std::chrono::milliseconds heartbeat{1000};
  std::size_t liveness = 3;
  std::chrono::milliseconds reconnect_initial{1000};
  std::chrono::milliseconds reconnect_max{32'000};
  /// Unanswered RESULTs are sent again this often (never more often than the producer heartbeats).
  std::chrono::milliseconds retransmit_interval{5000};
  /// Results waiting for RECORDED at which the worker pauses.
  std::size_t max_unanswered = 1024;
  /// How long leave() waits for its results' RECORDED before BYE.
  std::chrono::milliseconds leave_wait{5000};
};

struct worker_stats {
  worker_state state = worker_state::connecting;
  std::uint64_t producer_incarnation = 0;  ///< 0 before the first WELCOME
  std::size_t held = 0;        ///< tasks being worked on
  std::size_t unanswered = 0;  ///< results waiting for RECORDED
  bool paused = false;         ///< at the unanswered bound: CAPACITY 0 sent
  std::uint32_t window = 0;    ///< the capacity the application asks for
  std::uint64_t received = 0;
  std::uint64_t malformed = 0;
  std::uint64_t foreign = 0;      ///< producer commands of another incarnation, dropped
  std::uint64_t ignored = 0;      ///< well-formed but out of place (WELCOME while working, RECORDED for nothing held)
  std::uint64_t duplicates = 0;   ///< TASKs for attempts held or answered: resends
  std::uint64_t overflows = 0;    ///< TASKs beyond the capacity: dropped
  std::uint64_t tasks = 0;        ///< TASKs handed to the application
  std::uint64_t abandoned = 0;
  std::uint64_t results_sent = 0;  ///< resends included
  std::uint64_t resent = 0;
  std::uint64_t recorded = 0;
  std::uint64_t stale = 0;
  std::uint64_t unknown = 0;
  std::uint64_t results_dropped = 0;
  std::uint64_t welcomes = 0;
  std::uint64_t refusals = 0;
  std::uint64_t producer_changes = 0;
  std::uint64_t connections = 0;
  std::uint64_t connections_lost = 0;
  std::uint64_t heartbeats_sent = 0;
  std::uint64_t send_failures = 0;
  std::string refusal;  ///< "code: reason" of the last REFUSE
};

class worker_machine {
 public:
  /// The sink sends on port::main (the DEALER) and opens and closes its connection; the first
  /// on_tick() opens it.
  /// Throws: fabric::error(invalid_argument) for a bad name or queue, a zero incarnation, a
  /// capacity or heartbeat out of range, or settings the liveness machine refuses.
  worker_machine(const worker_settings& s, detail::machine_sink& sink, worker_app& app);
  worker_machine(const worker_machine&) = delete;
  worker_machine& operator=(const worker_machine&) = delete;

  void on_message(message&& m, detail::time_point now);
  void on_tick(detail::time_point now);
  detail::time_point next_tick() const noexcept;

  /// The application finished attempt `attempt` of task `task_id`: `done` with the result as
  /// `body`, `failed` or `rejected` with a reason of at most 255 octets as `body`.
  /// Returns: success (kept until RECORDED, sent now when connected); errc::invalid_state when
  /// the attempt is not held (abandoned, or never handed out), or the worker has left;
  /// errc::invalid_argument for a reason over 255 octets.
  result<void> complete(std::uint64_t task_id, std::uint32_t attempt, status s, std::string_view body,
                        detail::time_point now);
  /// Asks for `extend_ms` (1 .. 3,600,000) more for a held attempt, from now.
  /// Returns: errc::invalid_state when not held or not connected; errc::invalid_argument for an
  /// extension out of range.
  result<void> extend(std::uint64_t task_id, std::uint32_t attempt, std::uint32_t extend_ms, detail::time_point now);
  /// Sets the capacity the worker asks for (0 pauses it), up to settings.capacity.
  /// Throws: fabric::error(invalid_argument) above settings.capacity.
  void set_capacity(std::uint32_t window, detail::time_point now);
  /// Leaves: the held tasks are abandoned, unanswered results wait up to leave_wait for their
  /// RECORDED, then BYE goes and the connection closes.
  void leave(detail::time_point now);

  worker_stats stats() const;
  worker_state state() const noexcept { return state_; }
  bool holds(attempt_key key) const noexcept;

 private:
  struct held_result {
    std::uint64_t producer_inc = 0;
    status what = status::done;
    frame body;
  };

  class link_sink final : public detail::machine_sink {
   public:
    explicit link_sink(worker_machine& owner) noexcept : owner_(owner) {}
    result<void> send(detail::port to, message&& m) override;
    void close(detail::port which) noexcept override;
    result<void> open(detail::port which) override;

   private:
    worker_machine& owner_;
  };

  void hello(detail::time_point now);
  bool transmit(detail::time_point now);
  void send_result(attempt_key key, held_result& r, detail::time_point now);
  void resend_all(detail::time_point now);
  void send_window(detail::time_point now);
  std::uint32_t window_now() const noexcept { return paused_ ? 0 : window_; }
  void on_welcome(const parsed& p, detail::time_point now);
  void on_refuse(const parsed& p, detail::time_point now);
  void on_task(const parsed& p, detail::time_point now);
  void on_recorded(const parsed& p, detail::time_point now);
  void finish_leaving(detail::time_point now);
  void forget_producer();

  worker_settings s_;
  detail::machine_sink& sink_;
  worker_app& app_;
  link_sink link_sink_;
  detail::liveness liveness_;
  worker_state state_ = worker_state::connecting;
  std::uint64_t producer_inc_ = 0;
  std::chrono::milliseconds producer_heartbeat_{0};
  std::uint32_t window_;
  std::uint32_t hello_capacity_ = 0;  // the capacity the last HELLO announced
  bool paused_ = false;
  std::unordered_map<std::uint64_t, std::uint32_t> held_;  // task id -> attempt
  std::map<std::pair<std::uint64_t, std::uint32_t>, held_result> unanswered_;
  detail::time_point retransmit_at_ = detail::time_point::max();
  detail::time_point leave_at_ = detail::time_point::max();
  detail::time_point now_{};
  worker_stats stats_;
  message out_;
};

}  // namespace fabric::frq
