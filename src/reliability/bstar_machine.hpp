// The two pure machines of FBS/1 (docs/ha.md): a node of a Binary Star pair (sections 5 to 7) and
// the optional witness (section 6.2). No sockets and no clocks: time is an argument, so their
// tests drive them with a fake clock through every transition and fault.
//
// A node's sockets, as its sink names them:
//   port::main     sends `state` on the node's PUB; receives the peer's `state` from its SUB
//   port::backend  the DEALER to the witness: sends `lease`, receives `grant` and `deny`
// The witness has one socket, a ROUTER (port::main); the routing id leads each message.
//
// Thread safety: a machine and its sink are used by one thread, the one its driver runs on.
#pragma once

#include "core/machine.hpp"
#include "reliability/bstar.hpp"

#include <array>
#include <chrono>
#include <cstdint>

namespace fabric::detail {

/// A node's settings, read once at construction.
struct bstar_settings {
  bstar::role role = bstar::role::primary;
  /// H: how often the node sends `state` (and, with a witness, renews its lease).
  std::chrono::milliseconds heartbeat{1000};
  /// E: the peer expires after this long unheard (0: twice `heartbeat`; at least that). The node
  /// waits the longer of its own and the peer's advertised E. Leases last three quarters of E.
  std::chrono::milliseconds expiry{0};
  /// Whether a witness is configured: writes then need a lease (section 6.2).
  bool witness = false;
};

/// What a node has done, since it started.
struct bstar_stats {
  std::uint64_t states_sent = 0;
  std::uint64_t states_heard = 0;
  std::uint64_t malformed = 0;      ///< messages that did not parse, or came on the wrong socket
  std::uint64_t send_failures = 0;  ///< a `state` or `lease` the socket would not take
  std::uint64_t admitted = 0;       ///< client requests admitted
  std::uint64_t refused = 0;        ///< client requests refused
  std::uint64_t takeovers = 0;      ///< times the node became active
  std::uint64_t step_downs = 0;     ///< times the node went from active to passive
  std::uint64_t split_brain = 0;    ///< times both nodes were heard active
  std::uint64_t misconfigured = 0;  ///< `state` heard from a peer of the node's own role
  std::uint64_t both_passive = 0;
  std::uint64_t not_ready = 0;      ///< takeovers held back because the service was not ready
  std::uint64_t leases_sent = 0;
  std::uint64_t grants = 0;
  std::uint64_t denials = 0;
};

/// A node's sink: a machine_sink that is also told every change of state, so the hosted service
/// can start or stop serving (section 8).
class bstar_sink : public machine_sink {
 public:
  /// Called after the node's state changed from `from` to `to`, in term `term`.
  virtual void on_state(bstar::status from, bstar::status to, std::uint64_t term) = 0;
};

/// One node of a pair.
class bstar_node {
 public:
  /// Starts in the state of `settings.role`, with `term` (0, or what a journal kept), at `now`.
  /// Sends its first `state` on the first on_tick().
  /// Throws: fabric::error(invalid_argument) for a heartbeat outside 1 ms .. 1 h, or an expiry
  /// under two heartbeats or over 1 h.
  bstar_node(const bstar_settings& settings, bstar_sink& out, time_point now, std::uint64_t term = 0);

  /// A message from the peer (port::main) or the witness (port::backend).
  void on_message(port from, message&& m, time_point now);
  /// Sends `state` (and, active or taking over with a witness, `lease`) when due.
  void on_tick(time_point now);
  time_point next_tick() const noexcept { return next_state_; }

  /// A client request arrived: may the service accept it? A passive or starting node whose peer
  /// has expired takes over here (with a witness: asks for the lease and refuses this request;
  /// it becomes active on the grant).
  bool admit(time_point now);
  /// Whether the hosted service could take over now (section 9.3): a node that is not ready
  /// never becomes active; a starting node whose peer stays passive for an expiry (not ready,
  /// then) takes over itself.
  void set_ready(bool ready) noexcept { ready_ = ready; }
  /// Whether the node is active and may accept a request at `now` (section 6).
  bool writable(time_point now) const noexcept;

  bstar::status state() const noexcept { return state_; }
  std::uint64_t term() const noexcept { return term_; }
  /// Whether the peer has been heard within the expiry.
  bool peer_alive(time_point now) const noexcept { return !peer_expired(now); }
  /// The last state the peer sent (its role's state before it was ever heard).
  bstar::status peer_state() const noexcept { return peer_state_; }
  const bstar_stats& stats() const noexcept { return stats_; }
  /// When the node last became active (time_point::min() for never), for failover measurements.
  time_point active_since() const noexcept { return active_since_; }

 private:
  // The times the node's last sends went out, by seq, so that an echo or a grant can be counted
  // from when the node sent what it answers.
  static constexpr std::size_t sent_ring = 64;

  void on_state_message(const bstar::state_fields& s, time_point now);
  void on_grant(const bstar::grant_fields& g, time_point now);
  void on_deny(const bstar::deny_fields& d, time_point now);
  void become(bstar::status next, time_point now);
  void take_over(time_point now);
  void send_state(time_point now);
  void send_lease(std::uint64_t term, time_point now);
  std::uint64_t next_seq(time_point now);
  bool sent_at(std::uint64_t seq, time_point& when) const noexcept;
  bool peer_expired(time_point now) const noexcept;
  std::chrono::nanoseconds expiry() const noexcept;
  std::chrono::milliseconds lease() const noexcept;

  bstar_settings settings_;
  bstar_sink& out_;
  bstar::status state_;
  std::uint64_t term_;
  bstar_stats stats_;

  std::uint64_t seq_ = 0;  // the last seq sent
  std::array<std::pair<std::uint64_t, time_point>, sent_ring> sent_{};
  time_point next_state_;
  time_point last_echo_;  // the last `state` sent at once to answer the active node's

  // The peer, as last heard.
  time_point peer_heard_;  // the node's start until first heard
  bool peer_ever_heard_ = false;
  bstar::status peer_state_;
  std::uint64_t peer_seq_ = 0;
  std::chrono::milliseconds peer_expiry_{0};

  // Leases (section 6.2): until when the node may write on each voter's word.
  time_point peer_lease_until_ = time_point::min();
  time_point witness_lease_until_ = time_point::min();
  std::uint64_t witness_lease_term_ = 0;
  // A takeover waiting for the witness's grant: the term asked for, and when.
  std::uint64_t pending_term_ = 0;
  time_point pending_since_ = time_point::min();

  time_point active_since_ = time_point::min();
  bool ready_ = true;
  // Starting (primary or backup): since when the peer has been heard passive without taking over.
  time_point peer_passive_since_ = time_point::max();
};

/// The witness's settings.
struct bstar_witness_settings {
  /// The longest lease the witness grants: at least three quarters of the nodes' expiry. A
  /// freshly started witness grants nothing for this long plus a quarter of it.
  std::chrono::milliseconds max_lease{1500};
};

struct bstar_witness_stats {
  std::uint64_t grants = 0;
  std::uint64_t denials = 0;
  std::uint64_t holder_changes = 0;
  std::uint64_t malformed = 0;
  std::uint64_t send_failures = 0;
};

/// The witness: one holder at a time, leases by its own clock (docs/ha.md section 6.2).
class bstar_witness {
 public:
  /// Throws: fabric::error(invalid_argument) for a max_lease outside 1 ms .. 1 h.
  bstar_witness(const bstar_witness_settings& settings, machine_sink& out, time_point now);

  /// A `lease` from a node: [routing id, frames...]. Answers `grant` or `deny`.
  void on_message(message&& m, time_point now);
  void on_tick(time_point) noexcept {}
  time_point next_tick() const noexcept { return time_point::max(); }

  /// The holder's role (0 for none) and term, for tests and logs.
  std::uint8_t holder() const noexcept { return holder_; }
  std::uint64_t holder_term() const noexcept { return holder_term_; }
  /// Whether a lease is held at `now`.
  bool held(time_point now) const noexcept { return holder_ != 0 && now < holder_until_; }
  const bstar_witness_stats& stats() const noexcept { return stats_; }

 private:
  std::chrono::nanoseconds margin() const noexcept;

  bstar_witness_settings settings_;
  machine_sink& out_;
  time_point quiet_until_;  // a fresh witness grants nothing before this
  std::uint8_t holder_ = 0;
  std::uint64_t holder_term_ = 0;
  time_point holder_until_ = time_point::min();
  std::uint64_t highest_granted_ = 0;
  bstar_witness_stats stats_;
};

}  // namespace fabric::detail
