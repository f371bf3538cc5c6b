// Binary Star (FBS/1, docs/ha.md): two nodes, a primary and a backup, of which one serves and
// the other stands by, and an optional witness that makes "never two writers" a guarantee.
//
// A node hosts a service (the Majordomo broker, Titanic, or the application's own) on the same
// reactor: the service asks admit() for each client request that would change state and drops
// it when refused, so the client times out and fails over to the other node; it listens to
// on_state_change() to start or stop serving.
//
//   fabric::reactor r;
//   fabric::binary_star::node pair(ctx, {.role = fabric::binary_star::role::primary,
//                                        .bind = "tcp://10.0.0.1:5003",
//                                        .peer = "tcp://10.0.0.2:5003"});
//   pair.attach(r);   // then the service, attached to r too, asks pair.admit()
//
// Thread safety: a node is driven by one thread: the reactor's when attached, its own after
// start(), the caller's in run(). admit(), writable(), current(), term() and stats() are called
// on that thread (from the node's own thread after start(): use the service hosted with it), or
// on any one thread while the node is not running. stop() is safe from any thread.
#pragma once

#include <fabric/context.hpp>
#include <fabric/log.hpp>
#include <fabric/options.hpp>
#include <fabric/reactor.hpp>
#include <fabric/result.hpp>

#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace fabric::binary_star {

/// A node's configured role. Values are those of the wire (docs/ha.md section 4).
enum class role : std::uint8_t { primary = 1, backup = 2 };
/// A node's state. Values are those of the wire and of the Binary Star pattern.
enum class state : std::uint8_t { primary = 1, backup = 2, active = 3, passive = 4 };

std::string_view to_string(role r) noexcept;
std::string_view to_string(state s) noexcept;

/// Everything that configures a node.
struct node_options {
  binary_star::role role = binary_star::role::primary;
  /// Where this node publishes its state (a PUB socket binds here), e.g. "tcp://10.0.0.1:5003".
  /// A tcp wildcard port is resolved: node::endpoint() tells which. Required.
  std::string bind{};
  /// The peer's state endpoint (a SUB socket connects there). Required.
  std::string peer{};
  /// The witness's endpoint (a DEALER connects there), or empty for a pair without one. With a
  /// witness the node writes only while it holds a lease (docs/ha.md section 6.2).
  std::string witness{};
  /// H: how often the node publishes its state (and renews its lease). 1 ms .. 1 h.
  std::chrono::milliseconds heartbeat{1000};
  /// E: the peer is taken for dead after this long unheard; 0 means two heartbeats, and it may
  /// not be less. Both nodes should use the same values.
  std::chrono::milliseconds expiry{0};
  /// The term to start from: 0, or what a journal kept (Titanic keeps it).
  std::uint64_t term = 0;
  /// Options of the PUB socket (CURVE server keys, for instance), the SUB socket (the peer's
  /// server key) and the DEALER to the witness.
  socket_options bind_socket{};
  socket_options peer_socket{};
  socket_options witness_socket{};
  /// Whether the hosted service may take over now, asked before each takeover (empty: always).
  /// A service that follows the active node's state (titanic::pair) says no until it has caught
  /// up; the other node then takes over instead once it is back (docs/ha.md, section 9.3).
  /// Called on the node's thread.
  std::function<bool()> ready{};
  /// Where log lines go (changes of state, split brain, misconfiguration); none by default.
  log_fn log{};
  log_level min_log_level = log_level::info;
};

/// A node's counters and state.
struct node_stats {
  state current = state::primary;
  std::uint64_t term = 0;
  bool writable = false;     ///< active, and (with a witness) holding a lease
  bool peer_alive = false;   ///< heard within the expiry
  state peer = state::backup;  ///< the peer's last state heard
  std::uint64_t states_sent = 0;
  std::uint64_t states_heard = 0;
  std::uint64_t malformed = 0;
  std::uint64_t send_failures = 0;
  std::uint64_t admitted = 0;       ///< client requests admitted
  std::uint64_t refused = 0;        ///< client requests refused
  std::uint64_t takeovers = 0;      ///< times this node became active
  std::uint64_t step_downs = 0;     ///< times it went from active to passive
  std::uint64_t split_brain = 0;    ///< times both nodes were heard active
  std::uint64_t misconfigured = 0;  ///< states heard from a peer of this node's own role
  std::uint64_t both_passive = 0;
  std::uint64_t not_ready = 0;      ///< takeovers held back: the service was not ready
  std::uint64_t leases_sent = 0;
  std::uint64_t grants = 0;
  std::uint64_t denials = 0;
};

/// The stats as one JSON object.
std::string to_json(const node_stats& s);

/// Called on the node's thread after each change of state.
using state_handler = std::function<void(state from, state to, std::uint64_t term)>;

/// One node of a pair. It binds at construction and runs once attached, started or run.
class node {
 public:
  /// Throws: fabric::error(invalid_argument) for a missing endpoint or a bad setting;
  /// fabric::error naming the endpoint when it cannot be bound or is malformed.
  node(context& ctx, node_options options);
  /// Stops a started node (bounded) and detaches from a reactor it is attached to.
  ~node();
  node(const node&) = delete;
  node& operator=(const node&) = delete;

  /// The bound state endpoint, its wildcard resolved.
  const std::string& endpoint() const noexcept;
  /// Sets the handler of changes of state. Call before attach(), start() or run().
  void on_state_change(state_handler handler);

  /// Runs from `r`, on the thread that runs it, beside the service it hosts.
  /// Throws: fabric::error(invalid_state) when already running or attached.
  void attach(reactor& r);
  /// Stops running from `r`. Returns false when not attached to it.
  bool detach(reactor& r) noexcept;
  /// Runs on a thread of its own until stop().
  void start();
  /// Runs on the caller's thread until stop() (from any thread) or the context shuts down.
  result<void> run();
  /// Stops a started or running node (a started one's thread is waited for at most `timeout`).
  /// Safe from any thread. Returns false when the thread did not end in time.
  bool stop(std::chrono::milliseconds timeout = std::chrono::seconds(5)) noexcept;
  /// True while started and its thread has not ended.
  bool running() const noexcept;

  /// A client request arrived: may the service accept it now? A passive or starting node whose
  /// peer has expired takes over here (with a witness, once the witness grants the lease: this
  /// request is refused and a retry is admitted). A refused request must be dropped unanswered.
  bool admit();
  /// Whether this node is active and may accept requests now.
  bool writable() const noexcept;
  state current() const noexcept;
  std::uint64_t term() const noexcept;
  node_stats stats() const noexcept;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// Everything that configures a witness.
struct witness_options {
  /// Where the witness listens (a ROUTER binds here). Required.
  std::string bind{};
  /// The longest lease it grants: at least three quarters of the nodes' expiry (1.5 s suits the
  /// default heartbeat of 1 s). A freshly started witness grants nothing for this long plus a
  /// quarter.
  std::chrono::milliseconds max_lease{1500};
  socket_options socket{};
};

struct witness_stats {
  std::uint64_t grants = 0;
  std::uint64_t denials = 0;
  std::uint64_t holder_changes = 0;
  std::uint64_t malformed = 0;
  std::uint64_t send_failures = 0;
  std::uint8_t holder = 0;  ///< 0 none, 1 primary, 2 backup
  std::uint64_t holder_term = 0;
};

/// The third vote of a pair: holds no data, grants one lease at a time. Run it on a host that
/// fails apart from both nodes.
class witness {
 public:
  /// Binds; runs once attached, started or run. Throws: as node's.
  witness(context& ctx, witness_options options);
  ~witness();
  witness(const witness&) = delete;
  witness& operator=(const witness&) = delete;

  const std::string& endpoint() const noexcept;
  void attach(reactor& r);
  bool detach(reactor& r) noexcept;
  void start();
  result<void> run();
  bool stop(std::chrono::milliseconds timeout = std::chrono::seconds(5)) noexcept;
  /// True while started and its thread has not ended.
  bool running() const noexcept;
  /// What a started witness's thread ended with, if it threw.
  std::exception_ptr failure() const noexcept;
  /// The counters, on the witness's thread (directly when not started; over its pipe when).
  /// Throws: fabric::error(timeout) when a started witness does not answer in time.
  witness_stats stats(std::chrono::milliseconds timeout = std::chrono::seconds(5));

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace fabric::binary_star
