// The Paranoid Pirate queue and worker (6/PPP): heartbeats both ways, LRU dispatch to workers,
// recovery from dead workers and from a dead queue.
//
// Wire formats, defaults and behaviour are described in docs/pirate.md.
//
// Thread safety: each class below is used by one thread at a time, like a socket, except where a
// member says otherwise (stats() of the queue and the worker, queue::stop()).
#pragma once

#include <fabric/context.hpp>
#include <fabric/message.hpp>
#include <fabric/options.hpp>
#include <fabric/reactor.hpp>
#include <fabric/result.hpp>

#include <zmq.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace fabric {

namespace ppp {

/// READY, worker -> queue: a one-frame message holding the single byte 0x01.
inline constexpr unsigned char ready_command = 0x01;
/// HEARTBEAT, both directions: a one-frame message holding the single byte 0x02.
inline constexpr unsigned char heartbeat_command = 0x02;

/// What the queue does with a request that arrives when options.max_queued_requests are
/// already waiting for a worker. Either way the dropped request is counted, never answered: its
/// client times out and retries, which is the back-off Lazy Pirate already has.
enum class overflow_policy {
  /// Drop the request that has waited longest: its client is the most likely to have given up
  /// or retried already, while the newest one's client is still waiting.
  drop_oldest,
  /// Refuse the request that just arrived.
  drop_newest,
};

/// The backend socket options a queue uses unless told otherwise: ROUTER_HANDOVER on, so a worker
/// that reconnects under a fixed routing id takes its name over at once.
inline socket_options default_backend_socket() {
  socket_options o;
  o.router_handover = true;
  return o;
}

/// Settings of a ppp::queue. An aggregate: `{.frontend = "tcp://*:5555", .backend = "..."}`.
struct queue_options {
  /// Where clients connect (a ROUTER binds here). A tcp wildcard port is resolved.
  std::string frontend{};
  /// Where workers connect (a ROUTER binds here). A tcp wildcard port is resolved.
  std::string backend{};
  /// How often the queue sends HEARTBEAT to every worker. Must be positive.
  std::chrono::milliseconds heartbeat_interval{1000};
  /// A worker that has sent nothing for liveness * heartbeat_interval is dead. At least 1.
  std::size_t liveness = 3;
  /// Requests held while no worker is free; past it, overflow decides. 0 holds none.
  std::size_t max_queued_requests = 1000;
  /// Which request a full queue drops.
  overflow_policy overflow = overflow_policy::drop_oldest;
  /// A request that waited this long for a worker is dropped and counted; 0 keeps it forever.
  /// (The same name as majordomo::broker_options' limit.)
  std::chrono::milliseconds request_expiry{0};
  /// Workers registered at once; READY from one more is ignored and counted. At least 1.
  std::size_t max_workers = 1000;
  /// How many workers one request may be given to (each dispatch after the first follows the
  /// death of the worker that had it); past it the request is dropped as poison and counted.
  /// 1 never sends a request twice (at-most-once through the queue). At least 1. (The same name
  /// as majordomo::broker_options' limit.)
  std::size_t max_dispatches = 2;
  /// Options of the frontend and backend sockets.
  socket_options frontend_socket{};
  socket_options backend_socket = default_backend_socket();
};

/// What a queue has done so far, and what it holds now (the last three).
struct queue_stats {
  std::uint64_t requests_received = 0;    ///< valid requests from clients
  std::uint64_t requests_dispatched = 0;  ///< requests handed to a worker (redeliveries too)
  std::uint64_t requests_redelivered = 0; ///< requests of dead workers put back in the queue
  std::uint64_t requests_dropped_full = 0;  ///< dropped because the queue was full
  std::uint64_t requests_expired = 0;     ///< dropped after waiting request_expiry
  std::uint64_t requests_poisoned = 0;    ///< dropped after max_dispatches workers died with them
  std::uint64_t replies_forwarded = 0;    ///< replies sent on to their client
  std::uint64_t replies_unroutable = 0;   ///< replies whose client was gone or full
  std::uint64_t replies_unmatched = 0;    ///< replies that did not answer the worker's current request
  std::uint64_t workers_registered = 0;   ///< READY commands accepted
  std::uint64_t workers_rejected = 0;     ///< READY ignored because max_workers were registered
  std::uint64_t workers_expired = 0;      ///< workers purged after liveness ran out
  std::uint64_t workers_unreachable = 0;  ///< workers removed because a send to them failed
  std::uint64_t heartbeats_sent = 0;
  std::uint64_t heartbeats_received = 0;
  std::uint64_t unknown_worker_messages = 0;  ///< HEARTBEAT before READY (ignored), replies from unregistered workers (forwarded)
  std::uint64_t malformed_client = 0;     ///< client messages dropped as malformed
  std::uint64_t malformed_worker = 0;     ///< worker messages dropped as malformed
  std::uint64_t workers_idle = 0;         ///< now: workers waiting for a request
  std::uint64_t workers_busy = 0;         ///< now: workers handling a request
  std::uint64_t queued = 0;               ///< now: requests waiting for a worker
};

/// The Paranoid Pirate queue: clients (REQ, or lazy_pirate_client) connect to the frontend,
/// ppp::worker (or any 6/PPP worker) to the backend. Requests go to the least recently used
/// free worker; every worker, busy or idle, is heartbeated; silent workers are purged and the
/// request a dead worker held is given to another one.
///
/// Three ways to run it: run() on the calling thread until stop(); start() on a background
/// thread (a fabric::actor) until stop() or destruction; or attach() to a reactor you run.
///
/// Thread safety: one thread at a time, except stop() and stats(), which any thread may call at
/// any time. While it runs in the background, call only stop(), stats() and the endpoint getters.
class queue {
 public:
  /// Creates both ROUTER sockets and binds them.
  /// @param ctx      the context sockets are created in; must outlive the queue.
  /// @param options  endpoints, heartbeating, bounds.
  /// Throws: fabric::error(invalid_argument) for an empty endpoint, a non-positive heartbeat
  /// interval, liveness / max_workers / max_dispatches of 0, or a negative request_expiry;
  /// fabric::error naming the endpoint when a bind fails.
  queue(context& ctx, queue_options options);
  /// Stops a background run (bounded wait), detaches from a reactor, and closes the sockets.
  ~queue();
  queue(const queue&) = delete;
  queue& operator=(const queue&) = delete;

  /// The frontend endpoint as bound (a tcp wildcard port resolved).
  const std::string& frontend_endpoint() const noexcept;
  /// The backend endpoint as bound.
  const std::string& backend_endpoint() const noexcept;

  /// Runs the queue on the calling thread until stop() is called (from any thread, before or
  /// during the run) or the context is shut down.
  /// Returns: success after stop(); errc::closed after a context shutdown.
  /// Throws: fabric::error(invalid_state) while the queue runs in the background or is
  /// attached to a reactor.
  result<void> run();
  /// Runs the queue on a background thread; returns once it is running.
  /// Throws: fabric::error(invalid_state) when it already runs or is attached; fabric::error
  /// when the thread cannot be started.
  void start();
  /// Asks run() or the background thread to return; does not wait (the destructor waits). A
  /// stop() made before run() makes that run() return at once.
  /// Thread safety: any thread.
  void stop() noexcept;

  /// Registers the queue's sockets and heartbeat timer on `r`, for embedding in your own loop
  /// (run it on one thread; stop() does not apply). `r` must outlive the attachment; the
  /// destructor detaches.
  /// Throws: fabric::error(invalid_state) when already attached or running.
  void attach(reactor& r);
  /// Undoes attach(). Returns: false when it was not attached to `r`.
  bool detach(reactor& r) noexcept;

  /// A snapshot of the counters. Thread safety: any thread, at any time.
  queue_stats stats() const noexcept;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// Settings of a ppp::worker. An aggregate: `{.endpoint = queue.backend_endpoint()}`.
struct worker_options {
  /// The queue's backend endpoint.
  std::string endpoint{};
  /// How often the worker sends HEARTBEAT. Must be positive.
  std::chrono::milliseconds heartbeat_interval{1000};
  /// The queue is dead after liveness * heartbeat_interval without a message from it. At least 1.
  std::size_t liveness = 3;
  /// The first wait before reconnecting to a dead queue; it doubles at each further failure up to
  /// reconnect_interval_max, and falls back to this once the queue is heard again.
  std::chrono::milliseconds reconnect_interval{1000};
  std::chrono::milliseconds reconnect_interval_max{32000};
  /// Options of the DEALER socket (a fresh one after every reconnect).
  socket_options socket{};
};

/// What a worker has done so far, and its state now (the last two).
struct worker_stats {
  std::uint64_t requests = 0;           ///< requests received from the queue
  std::uint64_t replies = 0;            ///< replies sent to the queue
  std::uint64_t replies_dropped = 0;    ///< replies that could not be sent or held
  std::uint64_t heartbeats_sent = 0;
  std::uint64_t heartbeats_received = 0;
  std::uint64_t malformed = 0;          ///< messages from the queue dropped as malformed
  std::uint64_t disconnects = 0;        ///< times the queue was declared dead
  std::uint64_t reconnects = 0;         ///< fresh sockets after a disconnect
  bool connected = false;               ///< now: a socket is open (not waiting to reconnect)
  std::chrono::milliseconds next_reconnect_delay{0};  ///< now: the wait after the next disconnect
};

/// One request as a worker application receives it.
struct request {
  /// The address stack with its empty delimiter, to be sent back with the reply; empty when the
  /// request had none. Treat it as opaque.
  message envelope{};
  /// The request's content: one or more frames.
  message body{};
};

/// A 6/PPP worker. A background thread (a fabric::actor) owns the DEALER to the queue: it sends
/// READY, heartbeats at every interval whatever the application is doing, declares the queue
/// dead after `liveness` silent intervals, and reconnects on a fresh socket with exponential
/// back-off. The application receives requests with recv() and answers with reply().
///
/// Requests are passed on in order; the queue sends a worker one request at a time.
///
/// Thread safety: recv(), reply() and stop() are used by one thread at a time (the thread that
/// created the worker, or one it was handed to across a barrier); stats() from any thread.
class worker {
 public:
  /// Starts the background thread, which connects to options.endpoint and sends READY.
  /// @param ctx      the context sockets are created in; must outlive the worker.
  /// @param options  endpoint, heartbeating and back-off.
  /// Throws: fabric::error(invalid_argument) for an empty endpoint, a non-positive interval or a
  /// liveness of 0; fabric::error naming the endpoint when it is malformed.
  worker(context& ctx, worker_options options);
  /// Calls stop().
  ~worker();
  worker(const worker&) = delete;
  worker& operator=(const worker&) = delete;

  /// Waits at most `timeout` for the next request.
  /// Returns: the request; errc::timeout when none came; errc::closed after stop(), a context
  /// shutdown, or the background thread's failure.
  result<request> recv(std::chrono::milliseconds timeout);
  /// Sends the reply to `to` (a request from recv()) to the queue. When the queue is being
  /// reconnected the reply is held (up to 64) and sent once the new connection is up.
  /// @param to    the request being answered; its envelope is moved into the reply.
  /// @param body  one or more frames; on success left empty.
  /// Returns: success; errc::closed when the worker has stopped; errc::too_large when envelope
  /// and body together have more than 255 frames. On failure both are left unchanged.
  /// Throws: fabric::error(invalid_argument) when `body` has no frames.
  result<void> reply(request&& to, message&& body);

  /// Readable whenever a request is waiting, for adding the worker to a reactor or zmq_poll.
  zmq::socket_ref handle() const noexcept;
  /// A snapshot of the counters. Thread safety: any thread, at any time.
  worker_stats stats() const noexcept;
  /// Stops the background thread (waiting at most 5 s); queued replies get the socket's linger to
  /// leave. Idempotent; recv() and reply() then return errc::closed.
  void stop() noexcept;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace ppp
}  // namespace fabric
