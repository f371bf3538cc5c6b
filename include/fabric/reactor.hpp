// fabric::reactor: a single-threaded event loop over sockets, file descriptors and timers. Every
// fabric daemon and actor runs on one.
//
// Handlers run on the thread that calls run()/run_once(), one at a time. A handler may add or
// remove sockets and timers (including itself) and may call stop(). Exceptions thrown by a
// handler propagate out of run() and leave the reactor usable.
//
// Thread safety: a reactor is used from one thread only. To reach it from another thread, send a
// message to one of its sockets (see fabric::actor).
#pragma once

#include <fabric/result.hpp>
#include <fabric/socket.hpp>

#include <zmq.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <unordered_map>
#include <vector>

namespace fabric {

/// Identifies a scheduled timer; never reused within one reactor.
enum class timer_id : std::uint64_t {};

class reactor {
 public:
  using clock = std::chrono::steady_clock;
  using handler = std::function<void()>;

  reactor();
  ~reactor();
  reactor(const reactor&) = delete;
  reactor& operator=(const reactor&) = delete;

  /// Calls `on_readable` whenever `s` has a message waiting. Level-triggered: the handler should
  /// receive at least one message (or the socket is reported again at once). The socket must
  /// outlive its registration.
  /// Throws: fabric::error(invalid_argument) when `s` is already registered.
  void add(const socket& s, handler on_readable) { add(s.handle(), std::move(on_readable)); }
  void add(zmq::socket_ref s, handler on_readable);
  /// Calls `on_readable` whenever file descriptor `fd` is readable (e.g. a signalfd).
  void add_fd(int fd, handler on_readable);
  /// Stops watching. Safe inside any handler; a removed socket's pending event is not delivered.
  /// Returns false when it was not registered.
  bool remove(const socket& s) noexcept { return remove(s.handle()); }
  bool remove(zmq::socket_ref s) noexcept;
  bool remove_fd(int fd) noexcept;

  /// Calls `fn` once, `delay` from now.
  timer_id after(clock::duration delay, handler fn);
  /// Calls `fn` every `interval`, the first time one interval from now. A late reactor does not
  /// fire a burst to catch up: the next firing is rescheduled from the missed deadline, or from
  /// now when more than one interval was missed.
  timer_id every(clock::duration interval, handler fn);
  /// Cancels a timer; safe inside any handler, including the timer's own.
  /// Returns false when it had already fired (one-shot) or was cancelled.
  bool cancel(timer_id id) noexcept;

  /// Runs until stop() is called, or until there is nothing left to wait for (no sockets, no fds,
  /// no timers). Returns: success, or errc::closed when the context was shut down.
  result<void> run();
  /// Waits at most `max_wait` for sockets or timers to be ready, then runs the ready handlers.
  /// Returns: the number of handlers run, or errc::closed when the context was shut down.
  result<std::size_t> run_once(std::chrono::milliseconds max_wait);
  /// Makes run() return after the current handler. Call it from a handler (same thread).
  void stop() noexcept { stopped_ = true; }
  bool stopped() const noexcept { return stopped_; }

  /// The reactor's clock, read once per loop iteration and by this call.
  clock::time_point now() const noexcept { return clock::now(); }

  std::size_t socket_count() const noexcept { return items_.size(); }
  std::size_t timer_count() const noexcept { return timers_.size(); }

 private:
  struct watch {
    void* socket;
    int fd;
    std::shared_ptr<handler> fn;  // shared so a handler survives its own removal mid-call
  };
  struct timer {
    clock::time_point deadline;
    clock::duration interval;  // zero for one-shot
    std::shared_ptr<handler> fn;
  };
  using timer_key = std::pair<clock::time_point, std::uint64_t>;

  timer_id schedule(clock::duration delay, clock::duration interval, handler fn);
  void add_watch(void* socket, int fd, handler fn);
  std::size_t fire_due_timers(clock::time_point now);
  long poll_timeout_ms(clock::time_point now, std::chrono::milliseconds max_wait) const;

  std::vector<watch> items_;
  std::vector<zmq_pollitem_t> poll_items_;
  std::vector<watch> ready_;
  std::uint64_t generation_ = 0;  // bumped on any add/remove, to detect changes mid-dispatch
  std::uint64_t poll_generation_ = ~std::uint64_t{0};
  std::map<timer_key, timer> timers_;
  std::unordered_map<std::uint64_t, clock::time_point> timer_deadlines_;
  std::uint64_t next_timer_ = 1;
  bool stopped_ = false;
};

}  // namespace fabric
