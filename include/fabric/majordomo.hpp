// The Majordomo broker (7/MDP with 8/MMI): clients ask for a service by name, workers offer
// services, and the broker matches them. Wire-compatible with every 7/MDP client and worker.
//
// What fabric's broker does beyond the reference implementation (see docs/majordomo.md):
//   - it remembers the request each worker is busy with and requeues it when that worker dies,
//     disconnects or is purged, so a crashed worker loses nothing (a request that has killed
//     `max_dispatches` workers is dropped as poison and counted);
//   - it heartbeats every worker, busy or idle, and purges every silent one;
//   - a worker may announce a credit in its READY (an extra frame) and is then given up to that
//     many requests at once, which lifts 7/MDP's one-round-trip-per-request ceiling;
//   - requests expire (queued or held by a worker), services with no workers are forgotten or
//     evicted to make room for a worker's, every queue and table has a configured bound, and
//     byte budgets in total and per client cover queued requests, held requests and unsent
//     replies; whatever meets a bound is dropped and counted (docs/majordomo.md, "Bounds");
//   - frames a client puts before the empty delimiter (a DEALER client's correlation id, or the
//     address stack of a proxy chain) come back unchanged in front of the reply, which is how
//     fabric::mdp::async_client matches replies to requests;
//   - 8/MMI extensions "mmi.services" and "mmi.stats" answer "200" plus a JSON document.
//
// Threading: a broker runs on its own thread (the default), on the caller's thread (run()), or on
// a reactor the application already has (attach()), so one daemon can host several services in
// one loop. A broker object is used from the thread that created it; stop() is safe from any.
#pragma once

#include <fabric/context.hpp>
#include <fabric/log.hpp>
#include <fabric/majordomo_client.hpp>
#include <fabric/majordomo_worker.hpp>
#include <fabric/options.hpp>
#include <fabric/reactor.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace fabric::binary_star {
class node;
}  // namespace fabric::binary_star

namespace fabric::mdp {

/// The broker logs through fabric's log hook (<fabric/log.hpp>); these names remain for code
/// written when the hook lived here.
using fabric::log_level;
using fabric::log_fn;

/// Everything that configures a broker. Every bound has a default; none is unlimited.
struct broker_options {
  /// Endpoints to bind, e.g. "tcp://*:5555" or "tcp://127.0.0.1:*" (the port is then chosen by
  /// the system; broker::endpoints() tells which).
  std::vector<std::string> endpoints{};
  /// How often the broker heartbeats each worker (unless it sent it something else meanwhile).
  std::chrono::milliseconds heartbeat_interval{2500};
  /// A worker silent for `liveness` heartbeat intervals is purged; its request is requeued.
  std::size_t liveness = 3;
  /// A request the broker has kept longer than this, waiting in a queue or held by a worker, is
  /// dropped and counted as expired (0 = never). A worker's reply to a request that expired in
  /// its hands is dropped (`late_replies`); until then the worker is given nothing in its place.
  std::chrono::milliseconds request_expiry{std::chrono::seconds(30)};
  /// A service with no workers and nothing queued is forgotten after this long.
  std::chrono::milliseconds service_idle_timeout{std::chrono::seconds(60)};
  /// Queued requests per service and in total; a request beyond either is dropped and counted
  /// (the client sees a timeout and retries, which is what a 7/MDP client does).
  std::size_t max_queued_per_service = 10'000;
  std::size_t max_queued_total = 100'000;
  /// The bytes the broker holds for clients, in total: requests queued or held by workers, and
  /// replies sent but not yet taken by the network (bodies and envelopes). A request that would
  /// go beyond it is dropped and counted like one beyond the queue limits (`rejected`); a reply
  /// that would is dropped and counted (`undeliverable`). Both also count in `over_budget`.
  std::size_t max_total_bytes = std::size_t{1} << 30;
  /// The same bytes for one client connection (its requests and the replies waiting for it), so
  /// that one client that sends big requests, or never reads its replies, cannot use the whole
  /// of max_total_bytes.
  std::size_t max_peer_bytes = std::size_t{128} << 20;
  /// Services and workers the broker keeps track of. When the service table is full, a READY for
  /// a new service evicts the service without workers that clients asked for least recently
  /// (its queued requests are dropped and counted as `evicted`); a request for a new service is
  /// dropped and counted. A READY that still finds no room, or a full worker table, is refused:
  /// answered with DISCONNECT at most once per heartbeat interval per connection.
  std::size_t max_services = 10'000;
  std::size_t max_workers = 10'000;
  /// How many workers one request may be given to before it is dropped as poison (each dispatch
  /// after the first follows the death of the worker that had it).
  std::size_t max_dispatches = 3;
  /// The most frames a client may put before the empty delimiter (its return-address stack).
  std::size_t max_return_frames = 8;
  /// The most requests one worker is given at once (fabric's credit extension): a READY that
  /// announces a larger credit is accepted with this one.
  std::size_t max_worker_credit = 256;
  /// The ROUTER socket. The high-water marks are per peer: 10'000 lets an async client keep its
  /// default 10'000 requests outstanding. ROUTER_MANDATORY stays on so a vanished peer is
  /// detected at once. A reply beyond a client's high-water mark is dropped and counted.
  socket_options socket{.send_hwm = 10'000, .recv_hwm = 10'000};
  /// The least severe level passed to `log`.
  log_level min_log_level = log_level::info;
  /// Where log lines go; none by default.
  log_fn log{};
  /// The Binary Star node this broker is one half of (docs/ha.md section 8), or none. The broker
  /// then accepts a client request only when the node admits it (a passive node drops it
  /// unanswered, so the client fails over; mmi.* included), and keeps workers only while the
  /// node is active (others are sent DISCONNECT). The node must outlive the broker and run on
  /// its thread: construct the broker with deferred_start and attach() both to one reactor.
  binary_star::node* pair = nullptr;
};

/// Figures for one service.
struct service_stats {
  std::string name{};
  std::size_t workers = 0;       ///< registered workers
  std::size_t idle_workers = 0;  ///< of which able to take a request now
  std::size_t queued = 0;        ///< requests waiting for a worker
  std::uint64_t requests = 0;    ///< requests accepted (queued or given to a worker)
  std::uint64_t replies = 0;     ///< replies delivered to clients
  std::uint64_t expired = 0;     ///< requests dropped by request_expiry, queued or held
  std::uint64_t rejected = 0;    ///< requests dropped because a queue was full
};

/// A snapshot of the broker's counters and state.
struct broker_stats {
  std::uint64_t requests = 0;          ///< client requests accepted (queued or given to a worker)
  std::uint64_t replies = 0;           ///< worker replies passed on to their client
  std::uint64_t mmi_requests = 0;      ///< requests the broker answered itself (mmi.*, not in
                                       ///< `requests` or `replies`)
  std::uint64_t malformed = 0;         ///< messages dropped for breaking the grammar (a REQUEST
                                       ///< or REPLY without a body frame included), or drained
                                       ///< by the socket for having too many frames
  std::uint64_t protocol_errors = 0;   ///< valid commands out of place, answered with DISCONNECT
  std::uint64_t workers_registered = 0;
  std::uint64_t workers_expired = 0;   ///< purged after `liveness` silent intervals
  std::uint64_t workers_departed = 0;  ///< sent DISCONNECT, or became unreachable
  std::uint64_t requeued = 0;          ///< requests given back to the queue after a worker died
  std::uint64_t expired = 0;           ///< requests dropped by request_expiry, queued or held
  std::uint64_t rejected = 0;          ///< requests dropped for a full queue or service table
  std::uint64_t poisoned = 0;          ///< requests dropped after max_dispatches workers died
  std::uint64_t undeliverable = 0;     ///< replies (worker or MMI) dropped because the client had
                                       ///< gone, its queue was full or a byte budget was spent
  std::uint64_t over_budget = 0;       ///< requests and replies dropped for max_total_bytes or
                                       ///< max_peer_bytes (also in `rejected` / `undeliverable`)
  std::uint64_t late_replies = 0;      ///< replies to requests that had expired in the worker's
                                       ///< hands; dropped
  std::uint64_t services_dropped = 0;  ///< services forgotten (idle, or evicted for a worker's)
  std::uint64_t evicted = 0;           ///< queued requests dropped with their evicted service
  std::uint64_t workers_refused = 0;   ///< READYs refused for a full table
  std::uint64_t refusals_unanswered = 0;  ///< of which not answered with DISCONNECT (rate limit)
  std::uint64_t not_active = 0;        ///< client requests dropped because this broker's Binary
                                       ///< Star node was not active (broker_options::pair)
  std::uint64_t log_lines_suppressed = 0;  ///< beyond the per-tick log budget
  std::size_t workers = 0;             ///< live workers now
  std::size_t busy_workers = 0;        ///< of which handling at least one request
  std::size_t in_flight = 0;           ///< requests held by workers
  std::size_t in_flight_bytes = 0;     ///< their size
  std::size_t queued = 0;              ///< requests waiting now, all services
  std::size_t queued_bytes = 0;        ///< their size
  std::size_t outbound_bytes = 0;      ///< replies sent but not yet taken by the network
  std::vector<service_stats> services{};  ///< by name
};

/// The stats as one JSON object (the same document "mmi.stats" answers with).
std::string to_json(const broker_stats& stats);

/// Asks a service's constructor to bind its sockets but not to start: the caller then picks
/// start(), run() or attach().
struct deferred_start_t {
  explicit deferred_start_t() = default;
};
inline constexpr deferred_start_t deferred_start{};

/// A Majordomo broker: one ROUTER socket and the broker's machine, run on its own thread (the
/// default), on the caller's thread (run()), or on a reactor the caller already runs beside other
/// services (attach()).
class broker {
 public:
  /// Binds every endpoint in `options.endpoints` and starts serving on a thread of its own.
  /// Throws: fabric::error(invalid_argument) for no endpoints or a bad option; fabric::error or
  /// zmq::error_t when an endpoint cannot be bound (the message names it).
  broker(context& ctx, broker_options options);
  /// Binds every endpoint but does not serve until start(), run() or attach().
  /// Throws: as above.
  broker(context& ctx, broker_options options, deferred_start_t);
  /// Stops the broker (bounded, see stop()) and detaches it from a reactor it is attached to.
  ~broker();
  broker(const broker&) = delete;
  broker& operator=(const broker&) = delete;

  /// The bound endpoints, with wildcards resolved ("tcp://127.0.0.1:41235"), in option order.
  const std::vector<std::string>& endpoints() const noexcept;

  /// Serves on a thread of its own until stop().
  /// Throws: fabric::error(invalid_state) when already serving or attached.
  void start();
  /// Serves on the caller's thread until stop() (from any thread) or the context shuts down.
  /// Returns: success after stop(); errc::closed when the context was shut down.
  /// Throws: fabric::error(invalid_state) when already serving or attached.
  result<void> run();
  /// Serves from `r`, on the thread that runs it, beside whatever else `r` drives.
  /// Throws: fabric::error(invalid_state) when already serving or attached.
  void attach(reactor& r);
  /// Stops serving from `r`. Returns false when not attached to it.
  bool detach(reactor& r) noexcept;

  /// A snapshot of the counters, taken on the broker's thread (directly when attached: call it
  /// from the reactor's thread then).
  /// Throws: fabric::error(timeout) when the broker thread does not answer within `timeout`;
  /// fabric::error(invalid_state) after stop(), or while run() serves on another thread.
  broker_stats stats(std::chrono::milliseconds timeout = std::chrono::seconds(5));

  /// Stops serving: a started broker's thread ends (waited for at most `timeout`), run()
  /// returns. Safe from any thread.
  /// Returns: true when the thread finished. Idempotent.
  bool stop(std::chrono::milliseconds timeout = std::chrono::seconds(5)) noexcept;
  /// True until a started broker's thread has ended (by stop() or by a failure).
  bool running() const noexcept;
  /// What the broker thread failed with, if it ended on its own.
  std::exception_ptr failure() const noexcept;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace fabric::mdp
