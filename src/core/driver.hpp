// The one driver that runs a protocol machine (core/machine.hpp) on a fabric::reactor, three ways:
//
//   attach(r)   on a reactor the user already runs, beside other services (one daemon hosting a
//               broker, a Titanic service and a Binary Star peer in one loop); detach(r) undoes it
//   run()       on the caller's thread, until request_stop() from any thread or the context shuts down
//   start()     on its own actor thread (fabric::actor), until stop() or the owner's destruction
//
// The driver owns no sockets. Its owner (the protocol's public class) creates and binds them,
// tells the driver what to do when each is readable (watch) and how to drive the machine's clock
// (ticks), then picks one of the three. Each readable socket is read in batches; every message of
// a batch gets one clock reading; after each batch and each tick the machine's timer is moved to
// its next_tick() if that changed, so a machine is never ticked late and never polled for work.
//
// Commands from the owner's thread to the machine's (a stats snapshot, a reload) go through
// call(): directly when attached or not running, over the actor's pipe when started. A sink's
// housekeeping (counters, sweeps) can hang off after_tick.
//
// Thread safety: a driver is set up and started by its owner's thread. request_stop() may be
// called from any thread. Once started, watched sockets belong to the driver's thread until it ends: the
// actor's start is the memory barrier libzmq asks for when a socket changes threads, its join the
// one back.
#pragma once

#include "core/machine.hpp"

#include <fabric/actor.hpp>
#include <fabric/context.hpp>
#include <fabric/reactor.hpp>
#include <fabric/socket.hpp>

#include <atomic>
#include <chrono>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace fabric::detail {

class driver {
 public:
  using message_fn = std::function<void(message&&, time_point)>;

  /// `name` appears in error messages ("majordomo broker", "zap handler").
  driver(context& ctx, std::string name);
  /// Stops a background thread (bounded wait) and detaches from a user's reactor.
  ~driver();
  driver(const driver&) = delete;
  driver& operator=(const driver&) = delete;

  // --- set-up, before attach(), run() or start() ---

  /// Hands each message `s` receives to `on_message`, at most `batch` per wake-up, all stamped
  /// with one clock reading. A message the socket refused as too large (errc::too_large; already
  /// drained and counted by the socket) is reported to `on_oversize` when given.
  /// `S` is any fabric socket type that can receive (router, dealer, puller, pair_socket, ...).
  template <class S>
  void watch(S& s, message_fn on_message, int batch = 64, std::function<void()> on_oversize = {}) {
    add_watch(s.handle(), [&s](message& m) { return s.try_recv(m); }, std::move(on_message), batch,
              std::move(on_oversize));
  }
  /// Calls `on_ready(now)` whenever file descriptor `fd` is readable (level-triggered: it must
  /// consume what made it readable), e.g. a completion_queue's eventfd, so that the journal's
  /// "this is durable" reaches the machine on its own thread. `fd` must stay open while the
  /// driver runs.
  void watch_fd(int fd, std::function<void(time_point)> on_ready);
  /// Drives the machine's clock: `on_tick(now)` whenever now reaches `next_tick()`.
  void ticks(std::function<void(time_point)> on_tick, std::function<time_point()> next_tick);
  /// Runs on the machine's thread after every batch and tick (e.g. publishing counters).
  void after_work(std::function<void()> fn);
  /// Answers call() on the machine's thread.
  void commands(std::function<message(message&&)> fn);

  /// Runs one single-port machine behind socket `s`.
  template <class S, single_port_machine M>
  void drive(S& s, M& m, int batch = 64) {
    watch(s, [&m](message&& msg, time_point now) { m.on_message(std::move(msg), now); }, batch);
    ticks([&m](time_point now) { m.on_tick(now); }, [&m] { return m.next_tick(); });
  }

  // --- three ways to run ---

  /// Registers the watched sockets and the machine's timer on `r`; the machine then runs on the
  /// thread that runs `r`.
  /// Throws: fabric::error(invalid_state) when already attached, running or started.
  void attach(reactor& r);
  /// Undoes attach(r). Returns false when not attached to `r`.
  bool detach(reactor& r) noexcept;
  /// Runs on the caller's thread until stop() (from any thread) or the context shuts down.
  /// Returns: success after stop(); errc::closed when the context was shut down.
  /// Throws: fabric::error(invalid_state) when attached or started; what a handler threw.
  result<void> run();
  /// Runs on a new thread until stop() or destruction.
  /// Throws: fabric::error(invalid_state) when attached, running or started.
  void start();
  /// Makes run() or the background thread return, without waiting for it. Safe from any thread,
  /// idempotent. Made before run() or start(), it makes that run end at once; it does not
  /// apply to an attached driver (detach() instead).
  void request_stop() noexcept;
  /// request_stop(), and for a started driver, joins its thread (at most `timeout`): call it
  /// from the owner's thread. Returns false when the thread did not end in time.
  bool stop(std::chrono::milliseconds timeout = std::chrono::seconds(5)) noexcept;
  /// True while started and its thread has not ended.
  bool running() const noexcept;
  /// What the background thread ended with, if it threw.
  std::exception_ptr failure() const noexcept;

  /// Asks the machine's thread to run commands() on `request` and returns its answer. Attached,
  /// or not running: called directly (the caller must then be the reactor's thread). Started:
  /// over the actor's pipe, waiting at most `timeout`.
  /// Returns: errc::timeout when the thread did not answer in time; errc::invalid_state when it
  /// has ended, or when run() is in progress on another thread.
  result<message> call(message&& request, std::chrono::milliseconds timeout);

  const std::string& name() const noexcept { return name_; }

 private:
  using recv_fn = std::function<result<void>(message&)>;
  struct watched {
    zmq::socket_ref s;
    recv_fn recv;
    message_fn on_message;
    int batch;
    std::function<void()> on_oversize;
  };

  // Forgets a background thread that has ended (after request_stop() or a context shutdown).
  void reap() noexcept;
  void add_watch(zmq::socket_ref s, recv_fn recv, message_fn on_message, int batch,
                 std::function<void()> on_oversize);
  void on_readable(watched& w, reactor& r);
  void on_timer(reactor& r);
  void rearm(reactor& r);
  void register_on(reactor& r);
  void unregister_from(reactor& r) noexcept;
  result<void> loop(reactor& r, pair_socket* pipe);

  context& ctx_;
  std::string name_;
  std::vector<std::unique_ptr<watched>> watched_;
  std::vector<std::pair<int, std::function<void(time_point)>>> watched_fds_;
  std::function<void(time_point)> on_tick_;
  std::function<time_point()> next_tick_;
  std::function<void()> after_work_;
  std::function<message(message&&)> commands_;

  reactor* attached_ = nullptr;
  std::optional<timer_id> timer_;
  time_point armed_for_ = time_point::max();
  std::unique_ptr<actor> background_;
  std::string control_endpoint_;
  std::unique_ptr<any_socket> control_;  // bound at control_endpoint_, for request_stop()
  std::atomic<bool> in_run_{false};  // read by call() and stop() on the owner's thread
  std::uint64_t call_sequence_ = 0;
};

}  // namespace fabric::detail
