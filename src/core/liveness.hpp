// The one heartbeat, dead-peer and reconnect back-off machine, for every side of every protocol
// that owns a connection to a peer it must keep alive: the Paranoid Pirate worker, the Majordomo
// worker, and the reliable channels, Titanic and Binary Star after them, each with its own
// settings. Pure, in the vocabulary of core/machine.hpp: it is told what happened and when, and
// does what is due through its sink (heartbeat, close, open).
//
//            opened(now) / sink.open() succeeded
//   closed  ------------------------------------->  open
//     ^  \                                            |  no message for liveness * heartbeat
//     |   \ reconnect_at reached: sink.open()         |  (unless busy): sink.close()
//     |    `--(open failed: wait, then try again)     v
//     `-------------- back-off delay ------------  closed
//
// Rules, the same for everyone:
//   - heartbeats: with cadence::fixed one goes out every interval whatever else is sent (6/PPP);
//     with cadence::when_quiet only when nothing else went out for an interval (7/MDP);
//   - anything from the peer is a sign of life; after `liveness` intervals of silence the peer is
//     dead: close the connection, open a fresh one after the back-off delay;
//   - while busy (a request is in hand), silence is no sign of death, since a peer may heartbeat
//     only idle partners; liveness is judged again from the moment the work is done;
//   - the back-off starts at `reconnect_initial`, doubles after each use up to `reconnect_max`,
//     and returns to `reconnect_initial` whenever a valid message arrives;
//   - after the peer closed the conversation (7/MDP DISCONNECT), a connection that had carried a
//     valid message is replaced at once (the peer restarted or rebalanced); one that had carried
//     nothing else waits out the back-off, so a peer that refuses us is not hammered;
//   - when the owner gives a working connection up itself, a fresh one opens at once; but while
//     no request is answered in between, each further time waits a delay of its own (from
//     `reconnect_initial`, doubling up to `reconnect_max`), so a request that always fails
//     cannot drive a storm of reconnections;
//   - when a fresh socket cannot be created (e.g. out of file descriptors), the next attempt
//     waits the back-off delay, and at least `min_retry` (or one heartbeat interval, if
//     shorter), so a zero back-off does not spin;
//   - a late tick never fires a burst of heartbeats to catch up.
//
// Thread safety: none; one thread drives a machine.
#pragma once

#include "core/machine.hpp"

#include <fabric/error.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <functional>
#include <utility>

namespace fabric::detail {

class liveness {
 public:
  using duration = machine_clock::duration;

  enum class cadence {
    fixed,       ///< a heartbeat every interval, whatever else is sent
    when_quiet,  ///< a heartbeat only after an interval with nothing else sent
  };

  struct settings {
    duration heartbeat{std::chrono::seconds(1)};
    std::size_t liveness = 3;
    duration reconnect_initial{std::chrono::seconds(1)};
    duration reconnect_max{std::chrono::seconds(32)};
    cadence heartbeats = cadence::when_quiet;
    /// The socket the connection is on, in the sink's names.
    port on = port::main;
  };

  /// The shortest wait before another attempt to create a socket.
  static constexpr duration min_retry = std::chrono::milliseconds(100);

  /// Starts closed, with an attempt to open due at once (on_tick opens it), or call opened()
  /// when the owner has connected already. `heartbeat` makes the protocol's heartbeat message.
  /// Throws: fabric::error(invalid_argument) unless heartbeat > 0, liveness >= 1 and
  /// 0 <= reconnect_initial <= reconnect_max; `who` names the caller in the message.
  liveness(const settings& s, machine_sink& sink, std::function<message()> heartbeat,
           std::string_view who = "liveness")
      : s_(s),
        sink_(sink),
        make_heartbeat_(std::move(heartbeat)),
        ttl_(checked(s, who).heartbeat * static_cast<duration::rep>(s.liveness)),
        backoff_(s.reconnect_initial) {}

  // --- what happened ---

  /// A fresh connection is up and its greeting went out at `now`.
  void opened(time_point now) noexcept {
    open_ = true;
    healthy_ = false;
    busy_ = false;
    heartbeat_at_ = now + s_.heartbeat;
    last_heard_ = now;
  }
  /// A message arrived from the peer at `now`. `valid` is false for frames that broke the
  /// protocol: they prove the peer alive but do not make the connection healthy.
  void on_message(time_point now, bool valid = true) noexcept {
    last_heard_ = now;
    if (valid) {
      healthy_ = true;
      backoff_ = s_.reconnect_initial;
    }
  }
  /// Something other than a heartbeat went to the peer at `now`.
  void sent(time_point now) noexcept {
    if (s_.heartbeats == cadence::when_quiet) heartbeat_at_ = now + s_.heartbeat;
  }
  /// Whether work is in hand as of `now`. While busy, silence does not make the peer dead; when
  /// the owner stops being busy, the silence is counted from `now`.
  void busy(bool b, time_point now) noexcept {
    if (busy_ && !b && now > last_heard_) last_heard_ = now;
    busy_ = b;
  }
  /// The peer closed the conversation at `now` and the owner has closed the socket.
  void disconnected(time_point now) noexcept {
    open_ = false;
    busy_ = false;
    reconnect_at_ = healthy_ ? now : now + take_backoff();
  }
  /// The owner gave a working connection up on its own at `now`.
  void left(time_point now) noexcept {
    open_ = false;
    busy_ = false;
    reconnect_at_ = now + left_delay_;
    left_delay_ = left_delay_ == duration::zero() ? s_.reconnect_initial
                                                  : std::min(s_.reconnect_max, left_delay_ * 2);
  }
  /// A request was answered: the next connection given up is replaced at once again.
  void answered() noexcept { left_delay_ = duration::zero(); }

  /// The peer announced the interval it heartbeats at: silence is judged against the longer of
  /// it and ours, so a peer that heartbeats less often than we do is not declared dead.
  void peer_interval(duration d) noexcept { ttl_ = std::max(s_.heartbeat, d) * static_cast<duration::rep>(s_.liveness); }

  // --- time ---

  /// Does everything due at `now`: heartbeat, close a dead connection, open a fresh one.
  void on_tick(time_point now) {
    if (open_) {
      if (!busy_ && now - last_heard_ >= ttl_) {
        open_ = false;
        reconnect_at_ = now + take_backoff();
        ++closes_;
        sink_.close(s_.on);
      } else if (now >= heartbeat_at_) {
        // Counted as sent even when the peer's queue is full: the next one is due an interval on.
        (void)sink_.send(s_.on, make_heartbeat_());
        ++heartbeats_;
        heartbeat_at_ = s_.heartbeats == cadence::fixed && heartbeat_at_ + s_.heartbeat > now
                            ? heartbeat_at_ + s_.heartbeat
                            : now + s_.heartbeat;
      }
    }
    if (!open_ && now >= reconnect_at_) {
      if (sink_.open(s_.on)) {
        ++opens_;
        opened(now);
      } else {
        reconnect_at_ = now + std::max(take_backoff(), std::min(s_.heartbeat, min_retry));
      }
    }
  }

  /// When on_tick() next has something to do (it may find nothing then, if messages moved the
  /// deadlines later meanwhile).
  time_point next_tick() const noexcept {
    if (!open_) return reconnect_at_;
    if (busy_) return heartbeat_at_;
    return std::min(heartbeat_at_, last_heard_ + ttl_);
  }

  // --- introspection ---

  bool is_open() const noexcept { return open_; }
  bool is_busy() const noexcept { return busy_; }
  /// The delay the next loss will wait before reopening.
  duration backoff() const noexcept { return backoff_; }
  /// The instant the peer will be declared dead if nothing arrives (while open and not busy).
  time_point expiry() const noexcept { return last_heard_ + ttl_; }
  std::uint64_t heartbeats_sent() const noexcept { return heartbeats_; }
  std::uint64_t connections_closed() const noexcept { return closes_; }
  std::uint64_t connections_opened() const noexcept { return opens_; }

 private:
  static const settings& checked(const settings& s, std::string_view who) {
    if (s.heartbeat <= duration::zero())
      throw error(errc::invalid_argument, std::string(who) + ": the heartbeat interval must be positive");
    if (s.liveness == 0) throw error(errc::invalid_argument, std::string(who) + ": liveness must be at least 1");
    if (s.reconnect_initial < duration::zero() || s.reconnect_max < s.reconnect_initial)
      throw error(errc::invalid_argument,
                  std::string(who) + ": need 0 <= reconnect interval <= its maximum");
    return s;
  }

  duration take_backoff() noexcept {
    const duration d = backoff_;
    backoff_ = std::min(s_.reconnect_max, backoff_ * 2);
    return d;
  }

  settings s_;
  machine_sink& sink_;
  std::function<message()> make_heartbeat_;
  duration ttl_;
  duration backoff_;
  duration left_delay_ = duration::zero();  // the wait after the next left()
  bool open_ = false;
  bool healthy_ = false;
  bool busy_ = false;
  time_point heartbeat_at_{};
  time_point last_heard_{};
  time_point reconnect_at_ = time_point::min();
  std::uint64_t heartbeats_ = 0;
  std::uint64_t closes_ = 0;
  std::uint64_t opens_ = 0;
};

}  // namespace fabric::detail
