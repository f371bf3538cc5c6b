// Freelance (10/FLP): brokerless request/reply with failover over N servers.
//
//   fabric::freelance::client        one request at a time: request() returns its reply
//   fabric::freelance::async_client  many requests in flight over one socket, completed in any order
//   fabric::freelance::server        a ROUTER whose identity is its public endpoint; answers PING
//                                    itself and hands each request to a handler, or to the
//                                    application through recv() / reply()
//
// Wire format (one token = one ZeroMQ frame, as in 10/FLP; the routing ids ROUTERs add are left out):
//
//   ping     client -> server:  "PING"
//   pong     server -> client:  "PONG"
//   request  client -> server:  control | body...     (1 or more body frames)
//   reply    server -> client:  control | body...     (the request's control frame, unchanged)
//
// Both sides use ROUTER sockets; a server's routing id is its public endpoint, which is how a
// client addresses it. fabric's client puts the request's sequence number in the control frame
// (8 octets, big-endian); servers treat it as opaque, so any 10/FLP client or server works with
// these. The specification, the client's rules and the timings are in docs/freelance.md.
//
// Thread safety: a client is used by one thread at a time, like a socket; it may be handed to
// another thread across a full memory barrier. A server is used by one thread at a time, except
// stop() and stats(), which any thread may call at any time; while it runs in the background
// (start()), call only stop(), stats(), running(), failure() and endpoint().
#pragma once

#include <fabric/context.hpp>
#include <fabric/message.hpp>
#include <fabric/options.hpp>
#include <fabric/reactor.hpp>
#include <fabric/result.hpp>
#include <fabric/socket.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace fabric::freelance {

/// Settings of a client (synchronous or asynchronous). An aggregate:
/// `{.servers = {"tcp://10.0.0.1:5555", "tcp://10.0.0.2:5555"}}`.
struct client_options {
  /// The servers' public endpoints (each one is also that server's identity), 1 to 1024 of them,
  /// each 1..255 octets and none twice. The order breaks ties: with one request at a time, the
  /// first live server gets it.
  std::vector<std::string> servers{};
  /// A server that has sent nothing for this long is pinged. Between 1 ms and 24 h.
  std::chrono::milliseconds ping_interval{2000};
  /// A live server silent this long, with a ping unanswered for server_expiry - ping_interval,
  /// is dead: it gets no requests until it answers again. Greater than ping_interval, at most 24 h.
  std::chrono::milliseconds server_expiry{6000};
  /// How long one attempt waits for its reply before the request is sent to another live server
  /// (to the same one only when no other is live). Between 1 ms and 24 h.
  std::chrono::milliseconds timeout{1000};
  /// How long a request may take in all, attempts and waiting for a live server included; after
  /// it the request fails. Between 1 ms and 24 h.
  std::chrono::milliseconds request_expiry{3000};
  /// How many live servers each attempt goes to at once; the first reply wins and the others are
  /// dropped as duplicates. 1 (the default) never has a request at two servers at once. Between
  /// 1 and the number of servers.
  std::size_t copies = 1;
  /// Requests outstanding at most (async_client; the synchronous client has one). A send beyond
  /// it reports errc::back_pressure. Between 1 and 16777216.
  std::size_t max_outstanding = 10'000;
  /// With CURVE: one server public key per server, in the order of `servers`, for servers that
  /// each have their own key pair; empty: every server has `socket.security`'s server_public_key.
  /// Needs socket.security to be a curve_client.
  std::vector<std::string> server_keys{};
  /// Options of the client's ROUTER socket. Its routing_id must stay empty (10/FLP clients are
  /// transient); ROUTER_MANDATORY and ROUTER_HANDOVER are always on, and linger is always 0 (a
  /// request abandoned with the client must not reach a server later).
  socket_options socket{};
};

/// What a client has done since it was created.
struct client_stats {
  std::uint64_t requests = 0;       ///< requests accepted
  std::uint64_t replies = 0;        ///< requests answered
  std::uint64_t attempts = 0;       ///< requests sent to a server: first attempts, retries, copies
  std::uint64_t retries = 0;        ///< attempts after a request's first one (timeouts, lost servers)
  std::uint64_t expired = 0;        ///< requests failed with errc::timeout
  std::uint64_t unavailable = 0;    ///< requests failed with errc::peer_unreachable (no live server)
  std::uint64_t cancelled = 0;      ///< requests forgotten by cancel() (or an interrupted request())
  std::uint64_t back_pressure = 0;  ///< sends refused: max_outstanding requests outstanding
  std::uint64_t late_replies = 0;   ///< well-formed replies for no outstanding request (late,
                                    ///< duplicate, or unknown sequence number); dropped
  std::uint64_t malformed = 0;      ///< received messages that broke the grammar or came from an
                                    ///< unknown identity; dropped
  std::uint64_t pings = 0;          ///< PINGs sent
  std::uint64_t pongs = 0;          ///< PONGs received
  std::uint64_t servers_up = 0;     ///< times a server became live (first contact or recovery)
  std::uint64_t servers_lost = 0;   ///< times a live server was declared dead or unreachable
};

/// How an asynchronous request ended.
enum class reply_status : std::uint8_t {
  ok,           ///< a server's reply is in `body`
  expired,      ///< no reply by the request's deadline, though it was sent (errc::timeout)
  unavailable,  ///< no server was live for the whole of its deadline (errc::peer_unreachable)
};

/// One completed asynchronous request.
struct reply {
  /// The id async_client::send() returned; also the sequence number that travelled.
  std::uint64_t id = 0;
  reply_status status = reply_status::ok;
  /// The endpoint of the server that answered; empty unless ok.
  std::string server{};
  /// The reply's body frames (the control frame removed); empty unless ok.
  message body{};
};

/// A Freelance client with one request at a time: request() sends it to a live server, moves it to
/// another on silence, and returns the first reply.
///
/// The client talks to servers only inside request(): it pings them while a request waits, and
/// between requests sends nothing. Servers it heard from stay live across idle periods (expiry
/// needs a ping unanswered), so the first request after a pause goes out at once.
class client {
 public:
  /// Creates the client's ROUTER and connects it to every server (connections complete in the
  /// background).
  /// @param ctx      the context the socket is created in; must outlive the client.
  /// @param options  servers, timings, bounds, socket options.
  /// Throws: fabric::error(invalid_argument) for no server, a duplicate, empty or over-long
  /// endpoint, a setting out of range, a routing_id, or server_keys that do not fit; fabric::error
  /// naming the endpoint when one is malformed.
  client(context& ctx, client_options options);
  /// Closes the socket at once (linger 0).
  ~client();
  client(client&&) noexcept;
  client& operator=(client&&) noexcept;
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  /// Sends `body` and waits for its reply, as docs/freelance.md section 3.2 describes.
  /// @param body  the request's frames, at least one; consumed on success, unchanged on failure.
  /// Returns: the reply's body frames; errc::timeout when servers were live but none answered
  /// within options().request_expiry; errc::peer_unreachable when no server was live for all that
  /// time; errc::closed when the context was shut down; errc::interrupted when a signal
  /// interrupted the wait (the request is then forgotten: a reply that comes later is dropped).
  /// Throws: fabric::error(invalid_argument) when `body` has no frames; fabric::error
  /// (invalid_state) on a moved-from client.
  result<message> request(message&& body);

  /// How many servers are live now (as of the last request).
  std::size_t live_servers() const noexcept;
  /// What the client has done so far. Valid while the client lives.
  const client_stats& stats() const noexcept;
  /// The options given at construction.
  const client_options& options() const noexcept;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// A Freelance client with many requests in flight over one ROUTER socket.
///
/// Every id send() returns comes back from recv() exactly once, as a reply or as a failure
/// (reply_status::expired, unavailable), unless it is cancel()ed first; replies come in whatever
/// order the servers answer.
///
/// The client works only when called: pings go out, silent servers are declared dead and
/// attempts move to other servers inside send(), recv() and try_recv(). In a fabric::reactor, add
/// socket() with a handler that calls try_recv() until it reports errc::would_block, and keep a
/// timer at next_deadline() that does the same.
class async_client {
 public:
  using clock = std::chrono::steady_clock;

  /// Creates the client's ROUTER and connects it to every server.
  /// Throws: as client::client.
  async_client(context& ctx, client_options options);
  /// Closes the socket at once (linger 0); outstanding requests are abandoned.
  ~async_client();
  async_client(async_client&&) noexcept;
  async_client& operator=(async_client&&) noexcept;
  async_client(const async_client&) = delete;
  async_client& operator=(const async_client&) = delete;

  /// Accepts a request and sends it to a live server if there is one (otherwise it waits in the
  /// client for one); it fails after options().request_expiry.
  /// @param body  the request's frames, at least one; consumed on success only.
  /// Returns: the request's id (never 0); errc::back_pressure when max_outstanding requests are
  /// outstanding (`body` is then unchanged).
  /// Throws: fabric::error(invalid_argument) when `body` has no frames.
  result<std::uint64_t> send(message&& body);
  /// As send(body), with a deadline of its own instead of options().request_expiry.
  /// Throws: also fabric::error(invalid_argument) for a deadline under 1 ms or over 24 h.
  result<std::uint64_t> send(message&& body, std::chrono::milliseconds request_expiry);

  /// Waits at most `timeout` (cut to a year) for the next completed request.
  /// @param out  receives the completion; its storage is reused.
  /// Returns: success; errc::timeout when nothing completed in time; errc::closed when the context
  /// was shut down; errc::interrupted when a signal interrupted the wait.
  result<void> recv(reply& out, std::chrono::milliseconds timeout);
  /// As recv(out, timeout), into a new reply.
  result<reply> recv(std::chrono::milliseconds timeout);
  /// As recv(out, timeout) without blocking: errc::would_block when nothing has completed (also
  /// after handling a few hundred messages in one call; call again, as a level-triggered reactor
  /// does).
  result<void> try_recv(reply& out);

  /// Forgets an outstanding request: it is not reported, and its reply is dropped.
  /// Returns: false when `id` was not outstanding (or has completed and waits to be received).
  bool cancel(std::uint64_t id) noexcept;

  /// Requests not yet completed.
  std::size_t outstanding() const noexcept;
  /// When the client next has something to do without a message arriving (a ping, an attempt's
  /// timeout, a deadline, a server's expiry); nullopt when nothing is scheduled.
  std::optional<clock::time_point> next_deadline() const noexcept;
  /// How many servers are live now.
  std::size_t live_servers() const noexcept;

  /// The ROUTER socket, for fabric::reactor::add() or zmq_poll. Do not send or receive on it.
  const fabric::socket& socket() const noexcept;
  /// What the client has done so far. Valid while the client lives.
  const client_stats& stats() const noexcept;
  /// The options given at construction.
  const client_options& options() const noexcept;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// Settings of a server. An aggregate: `{.endpoint = "tcp://192.0.2.7:5555"}`.
struct server_options {
  /// The server's public endpoint: the string clients connect to, and its identity (1..255
  /// octets). It is also bound, unless `bind` is given. A tcp endpoint whose port is "*" or "0"
  /// gets a free port before binding (endpoint() tells which); its host must then be named (not
  /// "*").
  std::string endpoint{};
  /// Where to bind when it differs from the public endpoint, e.g. "tcp://*:5555" for a server
  /// reached as "tcp://host.example:5555". Its port must be named.
  std::string bind{};
  /// The longest control frame accepted, in octets; a request with a longer one is dropped as
  /// malformed. Between 0 and 65536.
  std::size_t max_control_size = 255;
  /// Options of the server's ROUTER socket (CURVE server keys go in socket.security). Its
  /// routing_id is always the endpoint; ROUTER_MANDATORY is always on.
  socket_options socket{};
};

/// What a server has done so far. A snapshot; stats() may be called from any thread.
struct server_stats {
  std::uint64_t pings = 0;             ///< PINGs answered
  std::uint64_t requests = 0;          ///< well-formed requests received
  std::uint64_t replies = 0;           ///< replies sent
  std::uint64_t malformed = 0;         ///< messages that broke the grammar or a bound; dropped
  std::uint64_t unroutable = 0;        ///< replies and pongs to clients that were gone; dropped
  std::uint64_t back_pressure = 0;     ///< replies and pongs to clients whose queue was full; dropped
  std::uint64_t handler_failures = 0;  ///< requests whose handler threw; left unanswered
};

/// One request, as a server without a handler receives it (recv()).
struct request {
  /// The client's routing id, as the server's ROUTER gave it.
  frame client{};
  /// The request's control frame, sent back unchanged with the reply.
  frame control{};
  /// The request's body frames (at least one).
  message body{};
};

/// A Freelance server: a ROUTER bound at its endpoint with that endpoint as its identity. It
/// answers PING with PONG itself and every request with what the application replies.
///
/// With a handler, it runs on fabric's protocol driver, in one of three ways: run() on the calling
/// thread until stop(); start() on a thread of its own until stop() or destruction; or attach()
/// to a fabric::reactor the application runs. The handler runs on that thread, one request at a
/// time. Without a handler, the application's thread calls recv() and reply() (PINGs are answered
/// inside recv()); a server that is not read stops answering pings, and its clients declare it
/// dead.
class server {
 public:
  /// Turns a request's body into its reply's. An empty reply is sent as one empty frame. A handler
  /// that throws leaves the request unanswered (counted in handler_failures).
  using handler = std::function<message(message&& body)>;

  /// Creates and binds a server whose requests go to `on_request` (see the class comment).
  /// @param ctx      the context the socket is created in; must outlive the server.
  /// @param options  endpoint, bind address, bounds, socket options.
  /// @param on_request  must not be empty.
  /// Throws: fabric::error(invalid_argument) for an empty or over-long endpoint, a "*" host or port
  /// that cannot be resolved, an empty handler, or an option out of range; fabric::error naming
  /// the endpoint when the bind fails (e.g. the address is in use).
  server(context& ctx, server_options options, handler on_request);
  /// Creates and binds a server whose application receives requests with recv().
  /// Throws: as above.
  server(context& ctx, server_options options);
  /// Stops a background run (bounded wait), detaches from a reactor, and closes the socket.
  ~server();
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  /// The public endpoint: the server's identity, a wildcard port resolved.
  const std::string& endpoint() const noexcept;

  // --- with a handler ---

  /// Runs the server on the calling thread until stop() (from any thread) or a context shutdown.
  /// Returns: success after stop(); errc::closed after a context shutdown.
  /// Throws: fabric::error(invalid_state) without a handler, or while running or attached.
  result<void> run();
  /// Runs the server on a thread of its own until stop() or destruction.
  /// Throws: fabric::error(invalid_state) without a handler, or while running or attached.
  void start();
  /// Makes run() or the background thread return. Safe from any thread, idempotent; made before
  /// run() or start(), that run ends at once.
  void stop() noexcept;
  /// Serves on `r`, on the thread that runs it.
  /// Throws: fabric::error(invalid_state) without a handler, or while running or attached.
  void attach(reactor& r);
  /// Undoes attach(r). Returns false when not attached to `r`.
  bool detach(reactor& r) noexcept;
  /// True while started and its thread has not ended.
  bool running() const noexcept;
  /// What the background thread ended with, if it threw.
  std::exception_ptr failure() const noexcept;

  // --- without a handler ---

  /// Waits at most `timeout` for a request, answering PINGs and dropping malformed messages
  /// meanwhile.
  /// @param out  receives the request; its storage is reused.
  /// Returns: success; errc::timeout when no request came in time; errc::closed when the context
  /// was shut down; errc::interrupted when a signal interrupted the wait.
  /// Throws: fabric::error(invalid_state) on a server with a handler.
  result<void> recv(request& out, std::chrono::milliseconds timeout);
  /// As recv(out, timeout) without blocking: errc::would_block when no request is waiting (also
  /// after handling a few hundred other messages in one call).
  result<void> try_recv(request& out);
  /// Sends `body` as the reply to `r` (an empty body as one empty frame), without blocking.
  /// Returns: success (then `r`'s frames are consumed); errc::peer_unreachable when the client is
  /// gone; errc::back_pressure when its queue is full (both counted; `r` and `body` are then
  /// unchanged, so the reply may be tried again); errc::closed when the context was shut down.
  /// Throws: fabric::error(invalid_state) on a server with a handler.
  result<void> reply(request& r, message&& body);
  /// The ROUTER socket, for fabric::reactor::add() or zmq_poll (a server without a handler). Do
  /// not send or receive on it.
  const fabric::socket& socket() const noexcept;

  /// What the server has done so far. Safe from any thread.
  server_stats stats() const noexcept;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace fabric::freelance
