// One retrying request, the Lazy Pirate rule, shared by lazy_pirate_client and the synchronous
// Majordomo client: send, wait at most `timeout` for the answer, and on silence give the attempt
// up, open a fresh socket and send again, at most `retries` more times.
//
// The rule for a wake-up before the deadline: an attempt's deadline is fixed when it is sent and
// read on our clock. Whatever ends a wait early (a stale or mismatched reply, a malformed one, a
// poll that libzmq's coarser clock ended a little short) leaves the attempt waiting for the time
// that is left. It never restarts the timeout, or a peer that keeps sending stale replies would
// hold an attempt open forever; and it never ends the attempt early, or a wait cut a millisecond
// short by libzmq would cost a whole retry on a fresh socket.
//
// Two halves: retry_machine decides (pure, time as an argument, tested with a fake clock), and
// retry_blocking() is the thin loop that waits on a socket through retry_hooks.
//
// Thread safety: none; one thread drives a request.
#pragma once

#include "core/machine.hpp"

#include <fabric/message.hpp>
#include <fabric/result.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>

namespace fabric::detail {

/// The decisions of one retrying request.
class retry_machine {
 public:
  using duration = machine_clock::duration;

  struct settings {
    /// How long one attempt waits for its answer. Positive.
    duration timeout{std::chrono::milliseconds(2500)};
    /// Attempts after the first one.
    std::size_t retries = 3;
  };

  enum class verdict {
    wait,     ///< keep waiting, at most remaining(now)
    resend,   ///< the attempt is given up: send the request again, on a fresh socket
    give_up,  ///< every attempt went unanswered
  };

  explicit retry_machine(const settings& s) noexcept : s_(s) {}

  /// The first attempt is sent at `now`.
  void begin(time_point now) noexcept {
    attempt_ = 1;
    deadline_ = now + s_.timeout;
  }
  /// A wait ended at `now` without the answer (timed out, or brought something that was not the
  /// answer). Before the deadline: wait (the same deadline); after it: the next attempt, if any,
  /// whose deadline is `now + timeout`.
  verdict on_wake(time_point now) noexcept { return now < deadline_ ? verdict::wait : next(now); }
  /// The attempt could not even be sent at `now`: as good as silence, without the wait.
  verdict on_lost(time_point now) noexcept { return next(now); }

  /// The time left to wait at `now`.
  duration remaining(time_point now) const noexcept {
    return now < deadline_ ? deadline_ - now : duration::zero();
  }
  /// The attempt in progress, from 1.
  std::size_t attempt() const noexcept { return attempt_; }
  time_point deadline() const noexcept { return deadline_; }

 private:
  verdict next(time_point now) noexcept {
    if (attempt_ > s_.retries) return verdict::give_up;
    ++attempt_;
    deadline_ = now + s_.timeout;
    return verdict::resend;
  }

  settings s_;
  std::size_t attempt_ = 0;
  time_point deadline_{};
};

/// What retry_blocking() asks of the client that owns the socket.
class retry_hooks {
 public:
  virtual ~retry_hooks() = default;
  /// Sends attempt `attempt` (from 1); from the second on, on a fresh socket.
  /// Returns: an error when it could not be sent: errc::closed and errc::interrupted end the
  /// request with that error, any other loses the attempt like silence.
  virtual result<void> send(std::size_t attempt) = 0;
  /// Waits at most `at_most` for a message and judges it.
  /// Returns: the answer; nullopt when the wait ended without one (timed out, or the message was
  /// not the answer: counted and dropped by the hook); an error that ends the request.
  virtual result<std::optional<message>> wait(std::chrono::milliseconds at_most) = 0;
};

/// Runs a request to its end: the answer, errc::timeout after every attempt went unanswered, or
/// the error a hook ended it with. `now` is the clock (a fake one in tests).
result<message> retry_blocking(const retry_machine::settings& s, retry_hooks& hooks,
                               const std::function<time_point()>& now = machine_clock::now);

}  // namespace fabric::detail
