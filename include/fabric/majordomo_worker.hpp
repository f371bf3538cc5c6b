// The Majordomo (7/MDP) worker: offers one service to a broker and answers its requests.
//
// The worker keeps the broker session alive on its own, so heartbeats flow while the application
// is busy with a long request:
//   - on every (re)connection it sends READY on a fresh socket (a new identity);
//   - it sends HEARTBEAT when it has sent nothing else for one heartbeat interval;
//   - anything from the broker is a sign of life; after `liveness` silent intervals the broker is
//     declared dead, the socket closed, and a fresh one opened after a back-off delay;
//   - but not while a request is in hand (received from the broker and not yet answered or
//     abandoned): 7/MDP's reference broker heartbeats only idle workers, so silence then is no
//     sign of death. The worker keeps heartbeating, and counts the broker's silence again from
//     the moment the request is answered or abandoned. A broker that dies meanwhile is noticed
//     after the reply (or when it sends DISCONNECT);
//   - on DISCONNECT from the broker it closes the socket and reconnects on a fresh one;
//   - malformed frames from the broker are counted and dropped;
//   - a socket that cannot be created for a reconnection (e.g. out of file descriptors) is tried
//     again after the back-off delay (at least 100 ms, or one heartbeat interval if shorter).
//
// One request at a time, as 7/MDP has it: the broker sends a worker its next request only after
// the reply to the previous one. A request the application will not answer (its handler failed,
// or it moved on) must be given back, or the broker would hold it, and the worker, busy forever:
// abandon() tells the broker (DISCONNECT) and reconnects at once on a fresh socket (later ones in
// a row, with nothing answered between, after a growing delay), and the broker requeues the
// request. recv() does so itself for the previous request when it is still
// unanswered, and serve() when the handler throws.
//
// With worker_options::credit N > 1 (fabric's broker only), up to N requests are in hand at once:
// READY carries the credit, the broker sends up to N requests before the first reply, and each
// REQUEST's client frame is an opaque token for that request, which the reply echoes. Replies may
// go in any order. recv() returns the next request while fewer than N are unanswered; asked for
// one more while N are, it abandons them all first. abandon() gives back every request in hand.
//
// How: the application's thread uses the DEALER directly inside recv() and reply(), and does the
// session's chores there while it waits; a keeper thread does them while the application is away
// (handling a request, or not calling recv()), waking when a heartbeat or a reconnection is due
// and reading whatever the broker sent meanwhile. One mutex hands the socket between the two, so
// it is never used by two threads at once. Unlike an actor behind a pipe, this costs a request no
// thread hand-off. The price: while the application is away, a DISCONNECT from the broker is
// acted on at the keeper's next wake-up, within one heartbeat interval.
//
// Wire format (one token = one ZeroMQ frame, as in the 7/MDP specification):
//
//   READY       worker -> broker:  "" | "MDPW01" | 0x01 | service [| credit]
//   REQUEST     broker -> worker:  "" | "MDPW01" | 0x02 | client | "" | body...
//   REPLY       worker -> broker:  "" | "MDPW01" | 0x03 | client | "" | body...   (1 or more)
//   HEARTBEAT   both directions:   "" | "MDPW01" | 0x04
//   DISCONNECT  both directions:   "" | "MDPW01" | 0x05
//
// A reply to a request that came on an earlier connection is dropped and counted instead of sent:
// the broker has given that request to another worker (or dropped it) when it lost this one.
// For the same reason, requests the keeper received for the application on a connection that is
// lost before the application takes them are dropped and counted (requests_dropped).
// The destructor sends DISCONNECT so the broker forgets the worker at once.
//
// Thread safety: a worker object is used by one thread at a time, like a socket; it may be handed
// to another thread across a full memory barrier (e.g. std::thread's constructor). stats() may
// be called from any thread. The keeper thread is internal and touches nothing of the caller's.
#pragma once

#include <fabric/context.hpp>
#include <fabric/message.hpp>
#include <fabric/options.hpp>
#include <fabric/result.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <vector>
#include <string_view>

namespace fabric::mdp {

/// Settings of a worker.
struct worker_options {
  /// The broker's endpoint, e.g. "tcp://127.0.0.1:5555". Required.
  std::string broker{};
  /// Brokers to fail over to, such as the other node of a Binary Star pair (docs/ha.md): each
  /// fresh connection (after DISCONNECT, or a broker silent for `liveness` intervals) goes to the
  /// next of `broker`, failover[0], ... in turn. A passive broker of a pair sends its workers
  /// DISCONNECT, so a worker given both nodes settles on the active one.
  std::vector<std::string> failover{};
  /// The service offered: 1..255 bytes, not starting with "mmi." (reserved for the broker, 8/MMI).
  std::string service{};
  /// How often the worker heartbeats a quiet connection. Between 1 ms and 1 h.
  std::chrono::milliseconds heartbeat_interval{2500};
  /// Heartbeat intervals of silence after which the broker is declared dead. Between 1 and 1000.
  std::size_t liveness = 3;
  /// The delay before reopening after a loss; it doubles after each loss up to
  /// `reconnect_interval_max`, and returns to `reconnect_interval` once the broker answers.
  /// Between 0 and 1 h, initial <= max.
  std::chrono::milliseconds reconnect_interval{1000};
  std::chrono::milliseconds reconnect_interval_max{32'000};
  /// Options of each DEALER socket. A non-empty `routing_id` (at most 234 bytes) is used as a
  /// prefix: the n-th socket is "<routing_id>/<n>", since every connection needs an identity of
  /// its own. The linger of a socket closed for a dead broker is always 0. `immediate` is ignored
  /// (always off): READY is queued on each fresh socket before its connection completes, so that
  /// it is the first message the broker gets from that identity; with immediate on, libzmq would
  /// refuse it until then.
  socket_options socket{};
  /// How many requests the worker takes at once: 1..1024. 1 is plain 7/MDP. More needs fabric's
  /// broker (its CREDIT extension: READY carries the credit as an extra frame, which a 7/MDP
  /// broker would drop as malformed, so the worker would never register). With credit N the
  /// broker sends up to N requests before the first reply, so the next request is already
  /// waiting when the application finishes one: the worker's throughput is no longer bound to
  /// one round trip through the broker per request. Each request's `client` is then a token
  /// unique to it, to be echoed by the reply, as any client address is.
  std::uint32_t credit = 1;
};

/// What a worker has done, since it was created.
struct worker_stats {
  std::uint64_t requests = 0;             ///< requests received from the broker
  std::uint64_t requests_dropped = 0;     ///< received while the application was away, and lost
                                          ///< with their connection before it took them (the
                                          ///< broker requeues them)
  std::uint64_t requests_abandoned = 0;   ///< given back to the broker unanswered (abandon())
  std::uint64_t replies = 0;              ///< replies sent to the broker
  std::uint64_t replies_dropped = 0;      ///< replies not sent: their request came on an earlier
                                          ///< connection, or the socket could not take them
  std::uint64_t heartbeats_sent = 0;
  std::uint64_t heartbeats_received = 0;
  std::uint64_t reconnects = 0;           ///< fresh sockets opened after the first
  std::uint64_t broker_expiries = 0;      ///< times the broker was declared dead (silence)
  std::uint64_t disconnects_received = 0; ///< DISCONNECT commands from the broker
  std::uint64_t malformed = 0;            ///< messages from the broker that broke the protocol
};

/// A 7/MDP worker for one service, whose broker session stays alive while the application works.
class worker {
 public:
  /// One request from a client, through the broker.
  struct request {
    /// The client's address as the broker gave it; opaque, 1..255 bytes.
    std::string client{};
    /// The request's body frames: one or more from a 7/MDP broker (fabric's drops a request
    /// without), none only from a broker that forwards such a request anyway.
    message body{};
    /// The broker connection the request came on (1 for the first, then one more per
    /// reconnection). reply(request, ...) drops the reply when the connection has changed since.
    std::uint64_t connection = 0;
  };

  /// Computes the reply body for a request; may move from `req.body`.
  using handler = std::function<message(request& req)>;

  /// Validates the options, connects to the broker, sends READY and starts the keeper thread.
  /// Throws: fabric::error(invalid_argument) for an empty broker endpoint, a service name that is
  /// empty, longer than 255 bytes or starts with "mmi.", or an interval, liveness or credit out of
  /// range;
  /// fabric::error naming the endpoint when it is malformed.
  worker(context& ctx, worker_options options);
  /// Stops the keeper, sends DISCONNECT to the broker and closes the socket (its linger bounds
  /// how long the context's termination may wait for the DISCONNECT to leave). Never blocks on
  /// the network.
  ~worker();
  worker(worker&&) noexcept;
  worker& operator=(worker&&) noexcept;
  worker(const worker&) = delete;
  worker& operator=(const worker&) = delete;

  /// Waits at most `timeout` (cut to a year) for the next request, keeping the session alive
  /// meanwhile. A worker holds at most `credit` requests (1 by default): when that many requests
  /// recv() returned on the current connection are still unanswered, recv() first abandons them
  /// all (see abandon()), so the broker gives them to other workers.
  /// @param out  receives the request; its storage is reused.
  /// Returns: success; errc::timeout when none came; errc::closed when the context was shut down
  /// or the keeper thread failed (see failure()); errc::interrupted when a signal interrupted the
  /// wait.
  /// Throws: fabric::error when a fresh socket cannot be created for a reconnection (a later
  /// call tries again, after the back-off).
  result<void> recv(request& out, std::chrono::milliseconds timeout);
  /// As recv(out, timeout), into a new request.
  result<request> recv(std::chrono::milliseconds timeout);

  /// Answers `req` with `body` (consumed), without blocking. Once sent, the request is no longer
  /// in hand. An empty `body` is sent as one empty frame: 7/MDP's REPLY carries at least one
  /// body frame, and a broker drops one without (the client would wait in vain).
  /// Returns: success once the socket has taken the reply; errc::peer_unreachable when the
  /// connection `req` came on has been replaced since, or the worker is between connections
  /// (the broker has requeued or dropped that request); errc::back_pressure when the socket
  /// cannot queue it (the broker has stopped reading); errc::closed when the context was shut
  /// down (or the keeper thread failed). Every reply not sent is counted in replies_dropped.
  /// Throws: fabric::error(invalid_argument) when `req.client` is empty or longer than 255 bytes.
  result<void> reply(const request& req, message&& body);
  /// Answers the client at `client` with `body` (consumed) on whatever connection is current.
  /// Returns and Throws: as reply(req, body).
  result<void> reply(std::string_view client, message&& body);

  /// Serves requests until `stop` returns true: each request is passed to `fn` and its result
  /// sent as the reply, an empty one as one empty frame (a reply the broker can no longer take
  /// is counted, and serving goes on).
  /// `stop` is checked before each wait for a request and at least every `poll`. An exception
  /// from `fn` propagates once the request is abandoned (see abandon()), so the broker gives it
  /// to another worker and a later serve() or recv() gets new requests. Exceptions from `stop`
  /// propagate (no request is in hand then).
  /// Returns: success when `stop` said so; errc::closed or errc::interrupted as recv().
  /// Throws: fabric::error(invalid_argument) when `fn` or `stop` is empty; as recv().
  result<void> serve(const handler& fn, const std::function<bool()>& stop,
                     std::chrono::milliseconds poll = std::chrono::milliseconds(100));

  /// Gives up every request recv() returned that is still unanswered (with credit 1, the one
  /// recv() last returned): when they came on the
  /// current connection, sends DISCONNECT, closes the socket and opens a fresh one at once (a new
  /// identity, READY), so the broker requeues them to other workers; a later reply to one is
  /// dropped and counted. Each is counted in requests_abandoned. Abandoning again with no request
  /// answered in between reopens only after a delay, from `reconnect_interval` doubling up to
  /// `reconnect_interval_max`, so a request that always fails cannot drive a storm of
  /// reconnections. Does nothing when no request is in hand, or when its connection is already
  /// gone. Never blocks on the network.
  void abandon() noexcept;

  /// What the worker has done so far, read with relaxed atomics: a consistent value for each,
  /// not a snapshot of all. Safe from any thread.
  worker_stats stats() const noexcept;
  /// The options given at construction.
  const worker_options& options() const noexcept;
  /// The last error the keeper thread met, if any. A socket it could not create for a
  /// reconnection (e.g. EMFILE) is tried again after the back-off, and the worker goes on; any
  /// other error stops the keeper, and recv() then reports errc::closed.
  std::exception_ptr failure() const noexcept;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace fabric::mdp
