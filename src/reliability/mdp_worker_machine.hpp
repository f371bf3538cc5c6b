// The 7/MDP worker's timing decisions as a pure state machine: when to heartbeat the broker, when
// to declare it dead, and when to open a fresh socket after a loss or a DISCONNECT. No sockets and
// no clock reads: the driver (mdp_worker.cpp) reports what happened with the time it happened and
// performs the actions tick() returns; tests drive it with a fake clock.
//
// Rules:
//   - a heartbeat goes out when nothing else has been sent for one interval;
//   - anything from the broker is a sign of life; after `liveness` intervals of silence the broker
//     is dead: close the socket, and open a new one after the back-off delay;
//   - the back-off starts at `reconnect_initial`, doubles after each use up to `reconnect_max`, and
//     returns to `reconnect_initial` whenever a valid message arrives;
//   - after DISCONNECT, a connection that had carried a valid message is replaced at once (the
//     broker restarted or rebalanced); one that had carried nothing else waits out the back-off,
//     so a broker that refuses us is not hammered.
//
// Thread safety: none; one thread drives a machine.
#pragma once

#include <algorithm>
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
  /// The broker sent DISCONNECT at `now` and the driver has closed the socket.
  void disconnected(time_point now) noexcept {
    open_ = false;
    reconnect_at_ = healthy_ ? now : now + take_backoff();
  }

  /// Decides what is due at `now`. Call it until it returns action::none.
  action tick(time_point now) noexcept {
    if (!open_) return now >= reconnect_at_ ? action::open : action::none;
    if (now - last_heard_ >= ttl_) {
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
    return std::min(last_sent_ + heartbeat_, last_heard_ + ttl_);
  }

  bool is_open() const noexcept { return open_; }
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
  bool open_ = false;
  bool healthy_ = false;
  time_point last_sent_{};
  time_point last_heard_{};
  time_point reconnect_at_ = time_point::min();
};

}  // namespace fabric::mdp
