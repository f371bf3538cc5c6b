// fabric::actor: a background thread with its own sockets, reached over an inproc PAIR pipe and
// stopped by a message. Heartbeats, retransmit timers and broker loops run in actors.
//
// The life of an actor:
//   1. The constructor starts a thread running `body(pipe)` and waits until the body calls
//      actor::signal_ready(pipe) (or throws, which the constructor rethrows).
//   2. The owner talks to the body by sending on pipe(); the body answers on its end.
//   3. stop() (or the destructor) sends actor::term_command; the body must return when it
//      receives it. The wait is bounded: a body that does not return in time is reported and
//      detached rather than hanging the caller.
//   4. When the body returns or throws on its own, the owner receives actor::done_signal on
//      pipe(); failure() then holds what it threw.
//
// Thread safety: an actor object is used from the thread that created it.
#pragma once

#include <fabric/context.hpp>
#include <fabric/socket.hpp>

#include <chrono>
#include <exception>
#include <functional>
#include <memory>
#include <string_view>

namespace fabric {

class actor {
 public:
  using body_fn = std::function<void(pair_socket& pipe)>;

  /// The one-frame message that asks a body to return.
  static constexpr std::string_view term_command = "$TERM";
  /// The one-frame message the owner receives when the body has ended.
  static constexpr std::string_view done_signal = "$DONE";

  /// Starts `body` on a new thread and waits at most `start_timeout` for it to signal ready.
  /// Throws: whatever the body threw before signalling ready; fabric::error(timeout) when it did
  /// not signal in time.
  actor(context& ctx, body_fn body,
        std::chrono::milliseconds start_timeout = std::chrono::seconds(10));
  /// Calls stop() with its default timeout.
  ~actor();
  actor(const actor&) = delete;
  actor& operator=(const actor&) = delete;

  /// The owner's end of the pipe.
  pair_socket& pipe() noexcept { return *pipe_; }

  /// Asks the body to return and waits at most `timeout` for it.
  /// Returns: true when the thread finished (and was joined); false when it did not finish in
  /// time and was detached. Idempotent.
  bool stop(std::chrono::milliseconds timeout = std::chrono::seconds(5)) noexcept;
  /// True until the body has returned.
  bool running() const noexcept;
  /// The exception the body ended with, if any (after stop()).
  std::exception_ptr failure() const noexcept;

  /// Called by the body once it is set up; unblocks the constructor.
  static void signal_ready(pair_socket& pipe);
  /// True when `m` is the term command.
  static bool is_term(const message& m) noexcept;

 private:
  struct shared;
  std::shared_ptr<shared> shared_;
  std::unique_ptr<pair_socket> pipe_;
  bool stopped_ = false;
};

}  // namespace fabric
