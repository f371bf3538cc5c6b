// The 7/MDP worker's timing decisions as a pure state machine: when to heartbeat the broker, when
// to declare it dead, and when to open a fresh socket after a loss or a DISCONNECT. No sockets and
// no clock reads: the driver (mdp_worker.cpp) reports what happened with the time it happened and
// performs the actions tick() returns; tests drive it with a fake clock. (The driver's one test
// seam, detail::worker_open_failures, lives here too, where tests already look.)
//
// Rules:
//   - a heartbeat goes out when nothing else has been sent for one interval;
//   - anything from the broker is a sign of life; after `liveness` intervals of silence the broker
//     is dead: close the socket, and open a new one after the back-off delay;
//   - except while the worker is busy (a request is in hand): silence is then no sign of death,
//     since 7/MDP's reference broker heartbeats only idle workers. The machine keeps heartbeating
//     and judges liveness again from the moment the request is answered or abandoned;
//   - the back-off starts at `reconnect_initial`, doubles after each use up to `reconnect_max`, and
//     returns to `reconnect_initial` whenever a valid message arrives;
//   - after DISCONNECT, a connection that had carried a valid message is replaced at once (the
//     broker restarted or rebalanced); one that had carried nothing else waits out the back-off,
//     so a broker that refuses us is not hammered;
//   - when the driver gives up a request itself (it sent DISCONNECT on a working connection), a
//     fresh socket opens at once; but while no request is answered in between, each further
//     time waits a delay of its own (from `reconnect_initial`, doubling up to `reconnect_max`),
//     so a request that always fails cannot drive a storm of reconnections;
//   - when a fresh socket cannot be created (e.g. out of file descriptors), the next attempt waits
//     the back-off delay, and at least `min_retry` (or one heartbeat interval, if shorter), so a
//     driver with no back-off does not spin.
//
// Thread safety: none; one thread drives a machine.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>

namespace fabric::mdp {

class worker_machine {
 public:
  using clock = std::chrono::steady_clock;
  using time_point = clock::time_point;
  using duration = clock::duration;

  struct settings {
    duration heartbeat{};
    std::size_t liveness = 3;
    duration reconnect_initial{};
    duration reconnect_max{};
  };

  /// What the driver must do now.
  enum class action {
    none,       ///< nothing until next_tick()
    heartbeat,  ///< send HEARTBEAT (the machine has already counted it as sent)
    close,      ///< the broker is dead: close the socket (linger 0)
    open,       ///< open a fresh socket, connect, send READY, then call opened()
  };

  /// Preconditions: heartbeat > 0, liveness >= 1, 0 <= reconnect_initial <= reconnect_max, and
  /// heartbeat * liveness representable.
  explicit worker_machine(const settings& s) noexcept
      : heartbeat_(s.heartbeat),
        ttl_(s.heartbeat * static_cast<duration::rep>(s.liveness)),
        initial_(s.reconnect_initial),
        max_(s.reconnect_max),
        backoff_(s.reconnect_initial) {}

  /// A fresh socket is connected and READY went out at `now`.
  void opened(time_point now) noexcept {
    open_ = true;
    healthy_ = false;
    busy_ = false;
    last_sent_ = now;
    last_heard_ = now;
  }
  /// Something other than a heartbeat from tick() went to the broker at `now`.
  void sent(time_point now) noexcept { last_sent_ = now; }
  /// A message arrived from the broker at `now`. `valid` is false for frames that broke the
  /// protocol: they still prove the broker alive but do not make the connection healthy.
  void heard(time_point now, bool valid) noexcept {
    last_heard_ = now;
    if (valid) {
      healthy_ = true;
      backoff_ = initial_;
    }
  }
  /// Whether a request is in hand (received and neither answered nor abandoned) as of `now`.
  /// While busy, silence from the broker does not make it dead; when the worker stops being busy,
  /// the silence is counted from `now`.
  void busy(bool b, time_point now) noexcept {
    if (busy_ && !b && now > last_heard_) last_heard_ = now;
    busy_ = b;
  }
  /// The broker sent DISCONNECT at `now` and the driver has closed the socket.
  void disconnected(time_point now) noexcept {
    open_ = false;
    busy_ = false;
    reconnect_at_ = healthy_ ? now : now + take_backoff();
  }
  /// The driver gave up the connection on its own at `now` (it abandoned a request and told the
  /// broker with DISCONNECT). The connection worked, so a fresh one is due at once, unless the
  /// last connection was given up this way too with no request answered since: then after a
  /// delay that starts at `reconnect_initial` and doubles up to `reconnect_max`.
  void left(time_point now) noexcept {
    open_ = false;
    busy_ = false;
    reconnect_at_ = now + left_delay_;
    left_delay_ = left_delay_ == duration::zero() ? initial_ : std::min(max_, left_delay_ * 2);
  }
  /// A request was answered: the next connection given up is replaced at once again.
  void answered() noexcept { left_delay_ = duration::zero(); }
  /// The shortest wait before another attempt to create a socket.
  static constexpr duration min_retry = std::chrono::milliseconds(100);

  /// action::open could not create a socket at `now`: the next attempt waits the back-off delay,
  /// and at least min_retry (or one heartbeat interval, if shorter).
  void open_failed(time_point now) noexcept {
    open_ = false;
    reconnect_at_ = now + std::max(take_backoff(), std::min(heartbeat_, min_retry));
  }

  /// Decides what is due at `now`. Call it until it returns action::none.
  action tick(time_point now) noexcept {
    if (!open_) return now >= reconnect_at_ ? action::open : action::none;
    if (!busy_ && now - last_heard_ >= ttl_) {
      open_ = false;
      reconnect_at_ = now + take_backoff();
      return action::close;
    }
    if (now - last_sent_ >= heartbeat_) {
      last_sent_ = now;
      return action::heartbeat;
    }
    return action::none;
  }

  /// When tick() next has something to do (it may also return none then, if messages moved the
  /// deadlines later meanwhile).
  time_point next_tick() const noexcept {
    if (!open_) return reconnect_at_;
    if (busy_) return last_sent_ + heartbeat_;
    return std::min(last_sent_ + heartbeat_, last_heard_ + ttl_);
  }

  bool is_open() const noexcept { return open_; }
  bool is_busy() const noexcept { return busy_; }
  /// The delay the next loss will wait before reopening.
  duration backoff() const noexcept { return backoff_; }

 private:
  duration take_backoff() noexcept {
    const duration d = backoff_;
    backoff_ = std::min(max_, backoff_ * 2);
    return d;
  }

  duration heartbeat_;
  duration ttl_;
  duration initial_;
  duration max_;
  duration backoff_;
  duration left_delay_ = duration::zero();  // the wait after the next left()
  bool open_ = false;
  bool healthy_ = false;
  bool busy_ = false;
  time_point last_sent_{};
  time_point last_heard_{};
  time_point reconnect_at_ = time_point::min();
};

namespace detail {
/// A test seam: while positive, each attempt of the worker to open a socket fails as if the
/// process were out of file descriptors (EMFILE), and takes one off. Always zero outside tests.
inline std::atomic<int> worker_open_failures{0};
}  // namespace detail

}  // namespace fabric::mdp
