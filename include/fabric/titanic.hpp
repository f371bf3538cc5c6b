// The Titanic service (9/TSP, docs/titanic.md): a persistent request queue on top of a Majordomo
// broker. A client hands a request for a service that may be down to titanic.request, gets a
// UUID once the request is on disk, goes away, and later collects the reply from titanic.reply
// and removes it with titanic.close. The service stores every request in a fabric::journal,
// dispatches it to its real service as a Majordomo client when that service has workers, and
// stores the reply until it is collected.
//
//   fabric::journal j = fabric::journal::open("/var/lib/titanic");   // sync by default
//   fabric::titanic::service t(ctx, j, {.broker = "tcp://127.0.0.1:5555"});
//   // any 9/TSP client can now post to it; fabric's is fabric::titanic::client
//
// What it guarantees (docs/titanic.md, sections 4 and 6):
//   - a "200" and its UUID go back only once the request is durable (under the journal's
//     durability mode); a reply is offered only once it is durable; a close is answered once
//     the removal is. A restart resumes every request stored and not finished;
//   - every request is dispatched until its service replies, at most `max_in_flight` at once,
//     one dispatch at a time per request (again only after `dispatch_timeout`), and given up
//     (moved to the journal's dead-letter queue with the reason; titanic.reply then answers
//     "500 <reason>") after `max_attempts` unanswered dispatches or its `request_ttl`;
//   - keyed requests (titanic.keyed-request, fabric's extension): the same client key gets the
//     same UUID and the request runs once, however often the client retries the post;
//   - execution is at least once: a request in flight when the service stops, or whose reply is
//     lost, is dispatched again. Services that must not run a request twice deduplicate by the
//     request (fabric's client always posts keyed, and the key travels in the request).
//
// The service is a Majordomo worker for each Titanic service (one connection each, with the
// credit extension when the broker is fabric's) and a Majordomo async client for the services
// it dispatches to, all on one thread: its own (the default), the caller's (run()), or a reactor
// the application runs (deferred_start, then attach()), e.g. the broker's own, as
// `fabric-broker --titanic DIR` does.
//
// Thread safety: a service is set up, started and stopped by its owner's thread; stats() from the
// owner's thread (attached: the reactor's). request_stop() from any thread.
#pragma once

#include <fabric/binary_star.hpp>
#include <fabric/context.hpp>
#include <fabric/journal.hpp>
#include <fabric/log.hpp>
#include <fabric/majordomo.hpp>
#include <fabric/options.hpp>
#include <fabric/reactor.hpp>
#include <fabric/result.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace fabric::titanic {

using mdp::deferred_start;
using mdp::deferred_start_t;

/// When a "200" goes back, in a Binary Star pair (docs/ha.md, section 9.3).
enum class replication_mode : std::uint8_t {
  /// Once the request is durable in both journals: the passive node's acknowledgement is waited
  /// for while it follows (it answered within follower_timeout).
  sync,
  /// Once durable in the active node's journal; the passive node follows behind.
  async,
};

/// Replication of a service's journal to the passive node of a pair (docs/ha.md, section 9).
struct replication_options {
  /// Where the service serves its replication log (a ROUTER binds here), e.g.
  /// "tcp://10.0.0.1:5004". Empty: no replication log is kept (a single node).
  std::string bind{};
  replication_mode mode = replication_mode::sync;
  /// The term this node writes under (titanic::pair passes its Binary Star term): entries of the
  /// log carry it, so that a node that wrote alone is found out when it follows again.
  std::uint64_t term = 0;
  /// A follower not heard from this long is taken for gone: answers no longer wait for it.
  /// 10 ms .. 1 h.
  std::chrono::milliseconds follower_timeout{2000};
  /// Log entries (one per commit) kept for a follower that is behind: one further behind, or
  /// whose log parted from this one, copies the journal's requests afresh. At least 1.
  std::size_t backlog = 100'000;
  /// A fetch is answered with at most about this many bytes of entries (at least one entry).
  std::size_t max_fetch_bytes = std::size_t{4} << 20;
  socket_options socket{};
};

/// Settings of a Titanic service.
struct service_options {
  /// The broker's endpoint, e.g. "tcp://127.0.0.1:5555". Required.
  std::string broker{};
  /// The worker sessions' heartbeat interval and liveness (7/MDP), and their reconnect back-off.
  std::chrono::milliseconds heartbeat{2500};
  std::size_t liveness = 3;
  std::chrono::milliseconds reconnect_initial{1000};
  std::chrono::milliseconds reconnect_max{32'000};
  /// Titanic requests each worker session takes at once, 1..1024. 0 = decided at start: 1,024
  /// asked of fabric's broker (it answers mmi.services; it lowers the credit to its own
  /// max_worker_credit, 256 by default), so that one journal commit carries many requests; 1
  /// with any other 7/MDP broker. A value above 1 needs fabric's broker.
  std::uint32_t credit = 0;
  /// Requests dispatched and not yet answered at most, 1..1000000.
  std::size_t max_in_flight = 64;
  /// Requests one service is first sent at once. Each reply lets it have one more (up to
  /// max_in_flight), each unanswered dispatch halves it: a slow service is not sent more than it
  /// finishes within dispatch_timeout. At least 1.
  std::size_t service_window = 8;
  /// How long a dispatched request may go unanswered before it counts an attempt and may be
  /// dispatched again. 1 ms .. 24 h.
  std::chrono::milliseconds dispatch_timeout{60'000};
  /// Unanswered dispatches before a request is given up. At least 1.
  std::uint32_t max_attempts = 5;
  /// The wait after an unanswered dispatch, or while a service has no workers: `retry_base`,
  /// doubling up to `retry_max`.
  std::chrono::milliseconds retry_base{1000};
  std::chrono::milliseconds retry_max{60'000};
  /// A request not replied this long after it was stored is given up. 0 = never.
  std::chrono::milliseconds request_ttl{0};
  /// A reply (or a given-up request) never closed is removed this long after it was stored;
  /// titanic.reply then answers 400. At least 1 s.
  std::chrono::milliseconds reply_retention{std::chrono::hours(24 * 7)};
  /// How long an mmi.service answer is trusted.
  std::chrono::milliseconds service_check_interval{2500};
  /// The largest request (all its body frames) stored; a larger one is answered 400.
  std::size_t max_request_bytes = std::size_t{16} << 20;
  /// Request bodies not yet dispatched and replies not yet closed kept in memory, in bytes, so
  /// that dispatching and titanic.reply need no journal read (what does not fit is read).
  std::size_t cache_bytes = std::size_t{64} << 20;
  /// Open requests held in memory; the rest wait in the journal, read in their turn.
  std::size_t max_in_memory = 100'000;
  /// Offer titanic.keyed-request (fabric's extension). Plain 9/TSP clients never see it.
  bool keyed_requests = true;
  /// Options of every socket (CURVE keys, high-water marks). Routing ids are not used.
  socket_options socket{};
  /// Where log lines go (worker sessions lost and back, requests given up); none by default.
  log_fn log{};
  /// Set `replication.bind` on each node of a Binary Star pair (titanic::pair does).
  replication_options replication{};
};

/// What a service has done since it started, and how things stand now.
struct service_stats {
  // Titanic requests received, by service.
  std::uint64_t requests = 0;         ///< titanic.request and titanic.keyed-request
  std::uint64_t reply_requests = 0;   ///< titanic.reply
  std::uint64_t close_requests = 0;   ///< titanic.close
  std::uint64_t malformed = 0;        ///< answered 400 for breaking the grammar, or too large
  std::uint64_t stored = 0;           ///< requests stored and answered 200
  std::uint64_t keyed_again = 0;      ///< keyed retries answered with the first one's UUID
  // Answers sent, by status.
  std::uint64_t answered_200 = 0;
  std::uint64_t answered_300 = 0;
  std::uint64_t answered_400 = 0;
  std::uint64_t answered_500 = 0;
  std::uint64_t answers_dropped = 0;  ///< their worker connection was replaced; the client asks again
  // Dispatch.
  std::uint64_t dispatched = 0;
  std::uint64_t replies = 0;          ///< service replies stored
  std::uint64_t late_replies = 0;     ///< for a request no longer in flight: dropped
  std::uint64_t dispatch_timeouts = 0;
  std::uint64_t no_workers = 0;       ///< waits for a service without workers
  std::uint64_t given_up = 0;         ///< dead-lettered, TTLs included
  std::uint64_t expired = 0;          ///< given up for their TTL
  std::uint64_t closed = 0;
  std::uint64_t removed = 0;          ///< by reply_retention
  // The journal.
  std::uint64_t commits = 0;
  std::uint64_t commit_failures = 0;
  std::uint64_t journal_errors = 0;   ///< reads that failed
  // Now.
  std::uint64_t open = 0;             ///< stored and not finished, in memory
  std::uint64_t in_flight = 0;
  bool waiting_in_journal = false;    ///< more open requests wait in the journal than memory holds
  std::uint32_t credit = 0;           ///< the credit the sessions announce (0 until decided)
  std::uint64_t worker_reconnects = 0;  ///< worker sessions reopened after a loss
  // Replication (replication.bind set).
  std::uint64_t replication_head = 0;  ///< the last log entry written
  std::uint64_t follower_at = 0;       ///< the last entry the follower acknowledged
  bool follower_in_step = false;       ///< answers wait for the follower (sync mode)
  std::uint64_t answers_waiting = 0;   ///< commits whose answers wait for the follower now
  std::uint64_t resyncs = 0;           ///< followers told to copy the journal afresh
  std::uint64_t follower_losses = 0;   ///< times the follower fell silent and answers went on alone
  std::uint64_t handed_over = 0;       ///< requests a follower whose log parted handed over, and
                                       ///< this node stored (it held none of them already)
};

/// A Titanic service on a journal.
class service {
 public:
  /// Validates the options, reads what the journal holds and sets up the sockets; starts on a
  /// thread of its own.
  /// Throws: fabric::error(invalid_argument) for an option out of range; what the journal throws
  /// when it cannot be read; fabric::error naming the endpoint when it is malformed.
  service(context& ctx, journal& j, service_options options);
  /// As above, without starting: call start(), run() or attach().
  service(context& ctx, journal& j, service_options options, deferred_start_t);
  /// Stops (bounded wait), tells the broker the worker sessions leave, and waits for the
  /// journal's last completions. Everything answered "200" is in the journal.
  ~service();
  service(const service&) = delete;
  service& operator=(const service&) = delete;

  void start();
  /// Runs on the caller's thread until request_stop() or the context shuts down.
  /// Returns: success after request_stop(); errc::closed when the context was shut down.
  result<void> run();
  void request_stop() noexcept;
  void attach(reactor& r);
  bool detach(reactor& r) noexcept;
  /// request_stop() and, when started, waits at most `timeout` for the thread.
  bool stop(std::chrono::milliseconds timeout = std::chrono::seconds(5)) noexcept;
  bool running() const noexcept;
  /// What the service's thread ended with, if it threw.
  std::exception_ptr failure() const noexcept;

  /// A snapshot, taken on the service's thread.
  /// Throws: fabric::error(timeout) when the thread did not answer within `timeout`;
  /// fabric::error(invalid_state) when it has ended.
  service_stats stats(std::chrono::milliseconds timeout = std::chrono::seconds(5));
  const service_options& options() const noexcept;
  /// Where the replication log is served (replication.bind, a wildcard port resolved); empty
  /// without replication.
  const std::string& replication_endpoint() const noexcept;

  /// The journal's names (docs/titanic.md, section 7), for tools.
  static constexpr std::string_view requests_stream = "tsp.requests";
  static constexpr std::string_view state_table = "tsp.state";
  static constexpr std::string_view replies_table = "tsp.replies";
  static constexpr std::string_view keys_table = "tsp.keys";
  static constexpr std::string_view open_table = "tsp.open";
  static constexpr std::string_view finished_table = "tsp.finished";

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// Settings of a replica: the passive node's side of replication (docs/ha.md, section 9).
struct replica_options {
  /// The active node's replication endpoint (its replication.bind). Required.
  std::string peer{};
  /// With no answer from the active node this long, the replica asks again on a fresh
  /// connection. 10 ms .. 1 h; as the active node's follower_timeout.
  std::chrono::milliseconds timeout{2000};
  /// The most one fetch asks for, in bytes of entries (at least one entry comes).
  std::size_t max_fetch_bytes = std::size_t{4} << 20;
  /// Log entries the replica keeps, so that the other node can follow it without a copy once
  /// it is the active one. At least 1.
  std::size_t backlog = 100'000;
  socket_options socket{};
  log_fn log{};
};

/// What a replica has done.
struct replica_stats {
  std::uint64_t position = 0;         ///< the last log entry applied
  std::uint64_t term = 0;             ///< its term
  bool caught_up = false;             ///< at the active node's head at its last answer
  std::uint64_t entries_applied = 0;
  std::uint64_t fetches = 0;
  std::uint64_t resyncs = 0;          ///< copies afresh, started
  std::uint64_t snapshot_pages = 0;
  std::uint64_t reconnects = 0;       ///< fresh connections after a silence
  std::uint64_t malformed = 0;        ///< answers that broke FTR/1, dropped
  std::uint64_t apply_failures = 0;   ///< journal transactions that failed (retried)
  std::uint64_t handed_over = 0;      ///< requests this node had accepted alone, handed to the
                                      ///< active node before copying its journal (section 9.5)
};

/// The passive node's side of replication: fetches the active node's replication log and
/// applies it to its own journal, each batch in one transaction with its position, so that this
/// journal holds what the active node's holds and a service started on it later serves it all.
/// A replica whose log cannot be continued (too far behind, or parted from the active node's,
/// section 9.4) copies the active node's requests afresh. Runs on a thread of its own.
class replica {
 public:
  /// Reads where the journal's log stands, connects and starts.
  /// Throws: fabric::error(invalid_argument) for an option out of range; what the journal throws.
  replica(context& ctx, journal& j, replica_options options);
  /// Stops (bounded); the journal holds what was applied.
  ~replica();
  replica(const replica&) = delete;
  replica& operator=(const replica&) = delete;

  /// Whether the replica held everything the active node had written, at its last answer: a
  /// passive node that is not caught up does not take over (docs/ha.md, section 9.3). Any thread.
  bool caught_up() const noexcept;
  /// Throws: fabric::error(timeout) when the thread does not answer; invalid_state once ended.
  replica_stats stats(std::chrono::milliseconds timeout = std::chrono::seconds(5));
  bool stop(std::chrono::milliseconds timeout = std::chrono::seconds(5)) noexcept;
  bool running() const noexcept;
  std::exception_ptr failure() const noexcept;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// Everything that configures one node of a Titanic pair.
struct pair_options {
  binary_star::role role = binary_star::role::primary;
  /// The service this node runs while active. `service.replication.bind` is this node's
  /// replication endpoint (required); `service.replication.term` is set from the pair's term.
  service_options service{};
  /// The replica this node runs while passive. `replica.peer` is the other node's replication
  /// endpoint (required).
  replica_options replica{};
};

/// One node of a Titanic pair: runs the service on this node's journal while its Binary Star
/// node is active, and a replica of the other node's journal while it is passive, switching on
/// a thread of its own so that the node's thread never waits for a journal (docs/ha.md,
/// section 9).
///
///   fabric::titanic::pair tp(ctx, j, {.role = ..., .service = {...}, .replica = {...}});
///   fabric::binary_star::node n(ctx, {..., .term = fabric::titanic::stored_term(j),
///                                      .ready = [&tp] { return tp.ready(); }});
///   n.on_state_change([&tp](auto, auto to, auto term) { tp.on_state_change(to, term); });
class pair {
 public:
  /// Throws: fabric::error(invalid_argument) for a missing endpoint.
  pair(context& ctx, journal& j, pair_options options);
  /// Stops the service or replica it runs (bounded).
  ~pair();
  pair(const pair&) = delete;
  pair& operator=(const pair&) = delete;

  /// The node's state changed: active starts the service (after stopping the replica), passive
  /// the replica (after stopping the service); the starting states run neither. Any thread.
  void on_state_change(binary_star::state to, std::uint64_t term);
  /// Whether this node may take over now: not while it follows the other node and has not
  /// caught up. For binary_star::node_options::ready. Any thread.
  bool ready() const noexcept;
  /// Whether the service runs now.
  bool serving() const noexcept;
  /// The service's counters while it runs (active), and the replica's (passive).
  std::optional<titanic::service_stats> active_stats(std::chrono::milliseconds timeout = std::chrono::seconds(5));
  std::optional<titanic::replica_stats> passive_stats(std::chrono::milliseconds timeout = std::chrono::seconds(5));
  /// What the service or replica ended with, if it failed (the pair then runs neither).
  std::exception_ptr failure() const noexcept;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// The Binary Star term a journal kept (the highest it saw), for binary_star::node_options::term,
/// so that a restarted node never reuses a term.
/// Throws: what the journal throws when it cannot be read.
std::uint64_t stored_term(const journal& j);

}  // namespace fabric::titanic
