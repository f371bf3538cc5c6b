// Majordomo (7/MDP) clients: ask a broker for a service by name and get the reply.
//
//   fabric::mdp::client        one request at a time, with Lazy Pirate retries: on silence the
//                              socket is thrown away and the request resent on a fresh one.
//   fabric::mdp::async_client  many requests outstanding over one DEALER, each matched to its
//                              reply by a request id where the broker is fabric's (a broker
//                              extension, see below), by service and order elsewhere;
//                              given a failover list, it moves to the next broker after a
//                              silence and sends what is outstanding again.
//
// Wire format (one token = one ZeroMQ frame, as in the 7/MDP specification):
//
//   7/MDP REQUEST  client -> broker:  "" | "MDPC01" | service | body...   (1 or more body frames)
//   7/MDP REPLY    broker -> client:  "" | "MDPC01" | service | body...
//
// 7/MDP has no request without a body frame: both clients refuse one (fabric::error,
// invalid_argument); send one empty frame to ask with nothing to say.
//
// Correlation extension (fabric's broker only): the client puts one frame, the request id as 8
// bytes big-endian, before the empty delimiter:
//
//   request:  request-id | "" | "MDPC01" | service | body...
//   reply:    request-id | "" | "MDPC01" | service | body...
//
// fabric's broker keeps every frame before the first empty frame as a return-address stack and
// puts it back in front of the reply, so replies can be matched in any order. A plain 7/MDP broker
// drops such requests as malformed (or worse), so the clients send it only when told to
// (client_options::correlate, correlation::request_id) or, for the async client by default,
// once the broker has shown it is fabric's (correlation::automatic).
//
// Thread safety: a client object is used by one thread at a time, like a socket; it may be handed
// to another thread across a full memory barrier (e.g. std::thread's constructor).
#pragma once

#include <fabric/context.hpp>
#include <fabric/message.hpp>
#include <fabric/options.hpp>
#include <fabric/result.hpp>
#include <fabric/socket.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fabric::mdp {

/// Settings of a synchronous client.
struct client_options {
  /// The broker's endpoint, e.g. "tcp://127.0.0.1:5555". Required.
  std::string broker{};
  /// Brokers to fail over to, such as the other node of a Binary Star pair (docs/ha.md): each
  /// fresh socket (each retry, and the request after one that went unanswered) connects to the
  /// next of `broker`, failover[0], failover[1], ... in turn, so a retry goes to another broker.
  /// A socket that gets its answer stays where it is.
  std::vector<std::string> failover{};
  /// How long one attempt waits for the reply. Between 1 ms and 24 h.
  std::chrono::milliseconds timeout{2500};
  /// How many times a request is resent, each time on a fresh socket, after the first attempt
  /// went unanswered: a request makes at most `retries + 1` attempts. At most 1000.
  std::uint32_t retries = 3;
  /// Send a request id before the delimiter (the correlation extension above) and accept only
  /// the reply that carries it back. Off by default so the client works with any 7/MDP broker;
  /// turn it on with fabric's broker to be safe from a duplicate reply to an earlier request.
  bool correlate = false;
  /// Options of each DEALER socket. A non-empty `routing_id` (at most 234 bytes) is used as a
  /// prefix: the n-th socket is "<routing_id>/<n>", since every socket needs an identity of its
  /// own. The linger of an abandoned socket is always 0.
  socket_options socket{};
};

/// What a synchronous client has done, since it was created.
struct client_stats {
  std::uint64_t requests = 0;   ///< calls of request() that sent something
  std::uint64_t replies = 0;    ///< requests answered
  std::uint64_t retries = 0;    ///< resends, each on a fresh socket
  std::uint64_t failures = 0;   ///< requests given up after every attempt (errc::timeout)
  std::uint64_t malformed = 0;  ///< received messages that broke the grammar; dropped
  std::uint64_t dropped = 0;    ///< well-formed replies that were not the answer (another
                                ///< service, another request id, or left over); dropped
};

/// A synchronous Majordomo client with Lazy Pirate reliability: send the request, wait up to
/// `timeout` for the reply, and on silence close the socket, open a new one (a new identity, so a
/// late reply to the abandoned attempt can never be taken for an answer) and resend.
///
/// A reply for another service, or a malformed one, is counted and dropped while the attempt keeps
/// waiting. A request that was not answered leaves its socket behind: the next request starts on a
/// fresh one, so a late answer to the old request cannot be taken for the new one's. Works with any
/// 7/MDP-conformant broker.
class client {
 public:
  /// Creates the client and connects its first socket to `options.broker`.
  /// Throws: fabric::error(invalid_argument) for an empty broker endpoint or an option out of
  /// range; fabric::error naming the endpoint when it is malformed.
  client(context& ctx, client_options options);
  /// Closes the socket without waiting (linger 0): a request still unanswered is abandoned.
  ~client();
  client(client&&) noexcept;
  client& operator=(client&&) noexcept;
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  /// Sends `body` to `service` and waits for the reply, resending on silence.
  /// @param service  1..255 bytes; "mmi.*" names are answered by the broker itself (8/MMI).
  /// @param body     the request's frames, at least one (7/MDP); consumed.
  /// Returns: the reply's body frames; errc::timeout after `retries + 1` silent attempts;
  /// errc::closed when the context was shut down; errc::interrupted when a signal interrupted a
  /// wait (the request may still be answered; a later request drops that answer).
  /// Throws: fabric::error(invalid_argument) for an empty or over-long service name or an empty
  /// `body` (`body` is then untouched); fabric::error when a fresh socket cannot be created.
  result<message> request(std::string_view service, message&& body);

  /// What the client has done so far. Valid while the client lives.
  const client_stats& stats() const noexcept;
  /// The options given at construction.
  const client_options& options() const noexcept;
  /// The broker the current socket is connected to: `broker` or one of `failover`.
  const std::string& endpoint() const noexcept;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// How an asynchronous client matches replies to requests.
enum class correlation : std::uint8_t {
  /// Find out. Before its first request the client asks the broker "mmi.services" (an 8/MMI
  /// extension only fabric's broker answers "200"; a 7/MDP broker answers "501" or nothing).
  /// Requests sent before the answer wait in the client; then they, and all later ones, go out
  /// with request ids if the broker is fabric's, as plain 7/MDP otherwise. With no answer within
  /// `probe_timeout` they go out plain; an answer that comes later still switches later requests
  /// to request ids. Works with any 7/MDP broker.
  automatic,
  /// Plain 7/MDP only: a reply is matched to the oldest outstanding request for its service, in
  /// the order they were sent. Exact while the broker answers each service's requests in order
  /// (one worker per service, none lost); otherwise two requests for one service may swap
  /// replies, and a late reply to an expired request is taken for the next one's.
  plain,
  /// The correlation extension from the first request: any order, exact matching, no probe.
  /// Needs fabric's broker: a 7/MDP broker drops every such request.
  request_id,
};

/// Settings of an asynchronous client.
struct async_client_options {
  /// The broker's endpoint, e.g. "tcp://127.0.0.1:5555". Required.
  std::string broker{};
  /// Brokers to fail over to, such as the other node of a Binary Star pair (docs/ha.md). Empty
  /// (the default): the client stays with `broker` for its life. Otherwise, when requests are
  /// outstanding and nothing at all has come from the broker for `failover_after`, the client
  /// closes its socket, connects a fresh one to the next of `broker`, failover[0], failover[1],
  /// ... (round robin) and sends every outstanding request that has not expired again, with its
  /// id (see async_client, "Failover").
  std::vector<std::string> failover{};
  /// With a failover list: the silence after which the client moves to the next broker. It must
  /// be longer than the slowest service takes to answer while nothing else is outstanding, since
  /// 7/MDP gives a client no heartbeat: the broker is silent while a worker works. Between 1 ms
  /// and 24 h.
  std::chrono::milliseconds failover_after{2500};
  /// How replies are matched to requests (see `correlation`). The default works with any 7/MDP
  /// broker and matches exactly with fabric's; request_id skips the probe where the broker is
  /// known to be fabric's.
  correlation correlate = correlation::automatic;
  /// With correlation::automatic, how long requests wait for the broker's answer to the probe
  /// before they go out as plain 7/MDP. Between 1 ms and 24 h.
  std::chrono::milliseconds probe_timeout{2500};
  /// Requests waiting for a reply at most; send() reports errc::back_pressure beyond it.
  /// Between 1 and 16777216.
  std::size_t max_outstanding = 10'000;
  /// A request unanswered this long is reported by recv() as expired (reply_status::expired) and
  /// forgotten: its reply, should it come later, is dropped. 0 = requests never expire, which is
  /// safe only when every request is sure to be answered or cancel()ed. At most 24 h.
  std::chrono::milliseconds request_expiry{30'000};
  /// Options of the DEALER socket. The high-water marks default to 10'000, like max_outstanding.
  /// A routing id names the first socket; with a failover list each later one is named
  /// "<routing_id>/<n>" (n = 2, 3, ...), as a broker must not see one identity twice, so it
  /// must then be at most 234 bytes.
  socket_options socket{.send_hwm = 10'000, .recv_hwm = 10'000};
};

/// What an asynchronous client has done, since it was created.
struct async_client_stats {
  std::uint64_t sent = 0;           ///< requests accepted by send()
  std::uint64_t replies = 0;        ///< replies delivered by recv()
  std::uint64_t expired = 0;        ///< requests reported as expired
  std::uint64_t cancelled = 0;      ///< requests forgotten by cancel()
  std::uint64_t back_pressure = 0;  ///< sends refused: max_outstanding reached or socket full
  std::uint64_t malformed = 0;      ///< received messages that broke the grammar; dropped
  std::uint64_t dropped = 0;        ///< well-formed replies matching no outstanding request (late,
                                    ///< unknown id, or a service other than the request's)
  std::uint64_t failovers = 0;      ///< sockets replaced after `failover_after` of silence
  std::uint64_t resent = 0;         ///< requests sent again on a fresh socket after a failover
};

/// An asynchronous Majordomo client: many requests in flight over one DEALER socket.
///
/// Every id send() returns comes back from recv() exactly once, as a reply or as an expiry,
/// unless it is cancel()ed first; replies come in whatever order the services answer.
///
/// With request ids (correlation::request_id, or automatic with fabric's broker) each reply names
/// its request. Without (plain 7/MDP), the client cannot know which request a reply answers: it
/// credits each reply to the oldest outstanding request for the reply's service, in the order
/// they were sent, and reports that request's id. That is exact while the broker answers each
/// service in order; with several workers for one service, replies for that service may be
/// credited to each other's requests, and a late reply to an expired request is credited to the
/// next request for its service. The outstanding count and its bound stay right either way.
///
/// In a fabric::reactor: add socket() with a handler that calls try_recv() until it reports
/// errc::would_block, and arrange a timer for next_deadline() (requests that expire, with
/// correlation::automatic the end of the wait for the probe's answer, and with a failover list
/// the moment the broker's silence becomes a failover) whose handler calls try_recv() too.
///
/// Without a failover list the client does not resend: a request lost with a broker is reported
/// as expired, and the application decides whether to send it again.
///
/// Failover (async_client_options::failover not empty). This is Lazy Pirate applied to many
/// requests at once: when requests are outstanding and nothing has come from the broker for
/// `failover_after` (no reply, nor anything else), recv() or try_recv() closes the socket (linger
/// 0, so what it still queues is dropped), opens a fresh one to the next endpoint and sends every
/// outstanding request again, oldest first, with the id send() returned for it. The silence is
/// counted from the last message received, the opening of the socket, or the send() that found
/// nothing outstanding, whichever is latest. A request that has expired by then is not sent again:
/// it is reported as expired, as are requests that go unanswered on the new broker. Each id is
/// still reported once: an answer the old broker sends after the failover goes to the closed
/// socket and is lost at the broker. A request the old broker had already handed to a worker may
/// still run there, so it can run twice (the broker was slow, not gone): what it asks must be
/// safe to repeat, as with any Lazy Pirate client (Titanic's keyed posts are).
///
/// To resend, the client keeps each request's frames from send() until its reply, its expiry or
/// its cancel(): about the request's size per outstanding request (retained_bytes()), at most
/// max_outstanding of them. Without a failover list nothing is kept.
///
/// Matching after a failover. With correlation::request_id every broker in the list must be
/// fabric's. With correlation::automatic the probe is asked again on each fresh socket and the
/// resent requests wait for its answer (or for `probe_timeout`) as the first ones did, so the
/// client uses request ids exactly where the current broker is fabric's. With plain 7/MDP, the
/// resent requests go out in their original order and the order of each service's replies on
/// the new broker decides which request a reply is credited to, as before.
///
/// The socket changes. socket() names a new libzmq socket after each failover (the object is
/// the same, its handle is not), and this happens only inside recv() and try_recv(). A reactor
/// user therefore keeps the zmq::socket_ref it registered and, after each call of try_recv(),
/// compares socket_generation() with the value seen at registration: when it has moved, it
/// removes the old handle (already closed, never polled again) and adds socket().handle() anew,
/// before the handler returns to the reactor.
class async_client {
 public:
  using clock = std::chrono::steady_clock;

  /// How a request ended.
  enum class reply_status : std::uint8_t {
    ok,       ///< the broker's reply is in `body`
    expired,  ///< no reply within its timeout; `body` is empty
  };

  /// One completed request.
  struct reply {
    /// The id send() returned (without request ids: of the request the reply is credited to).
    std::uint64_t id = 0;
    reply_status status = reply_status::ok;
    /// The service named in the reply (or in the request, for an expiry).
    std::string service{};
    /// The reply's body frames; empty for an expiry.
    message body{};
  };

  /// Creates the client and connects its socket to `options.broker`.
  /// Throws: fabric::error(invalid_argument) for an empty broker or failover endpoint or an
  /// option out of range; fabric::error naming the endpoint when `broker` is malformed (a
  /// malformed failover endpoint is met at the failover that reaches it, see recv()).
  async_client(context& ctx, async_client_options options);
  /// Closes the socket without waiting (linger 0); outstanding requests are abandoned.
  ~async_client();
  async_client(async_client&&) noexcept;
  async_client& operator=(async_client&&) noexcept;
  async_client(const async_client&) = delete;
  async_client& operator=(const async_client&) = delete;

  /// Sends a request without blocking; it expires after `options().request_expiry`. With
  /// correlation::automatic, requests sent before the broker's answer to the probe are held in
  /// the client until then (they count as outstanding and can expire or be cancelled).
  /// @param service  1..255 bytes.
  /// @param body     the request's frames, at least one (7/MDP); consumed on success only.
  /// Returns: the request id (never 0); errc::back_pressure when max_outstanding requests are
  /// waiting or the socket cannot queue more (then `body` is unchanged); errc::closed when the
  /// context was shut down.
  /// Throws: fabric::error(invalid_argument) for an empty or over-long service name or an empty
  /// `body` (`body` is then unchanged).
  result<std::uint64_t> send(std::string_view service, message&& body);
  /// As send(service, body), expiring after `timeout` instead (0 = never).
  /// Throws: also fabric::error(invalid_argument) for a negative or over-long timeout.
  result<std::uint64_t> send(std::string_view service, message&& body,
                             std::chrono::milliseconds timeout);

  /// Waits at most `timeout` (cut to a year) for the next completed request: a reply, or a
  /// request whose deadline has passed (expiries are reported first, oldest first).
  /// @param out  receives the completion; its storage is reused, so a loop over one `reply`
  ///             allocates little.
  /// With a failover list, this is where the client fails over (see the class comment).
  /// Returns: success; errc::timeout when nothing completed in time; errc::closed when the context
  /// was shut down; errc::interrupted when a signal interrupted the wait.
  /// Throws: fabric::error naming the endpoint when a failover endpoint is malformed; the client
  /// then keeps its socket and tries that endpoint again after another `failover_after`.
  result<void> recv(reply& out, std::chrono::milliseconds timeout);
  /// As recv(out, timeout), into a new reply.
  result<reply> recv(std::chrono::milliseconds timeout);
  /// As recv(out, timeout) without blocking: errc::would_block when nothing has completed (also
  /// after dropping a few hundred unusable messages in one call; call again, as a level-triggered
  /// reactor does).
  result<void> try_recv(reply& out);

  /// Forgets an outstanding request: it will not be reported, and its reply is dropped.
  /// Returns: false when `id` was not outstanding.
  bool cancel(std::uint64_t id) noexcept;

  /// Requests waiting for a reply.
  std::size_t outstanding() const noexcept;
  /// The earliest deadline of an outstanding request, of the wait for the probe's answer while
  /// requests are held for it, or (with a failover list, while requests are outstanding) of the
  /// broker's silence; nullopt when there is none.
  std::optional<clock::time_point> next_deadline() const noexcept;
  /// Whether requests now go out with request ids: always with correlation::request_id, never
  /// with plain, and with automatic once fabric's broker has answered the probe (asked again,
  /// and false meanwhile, after each failover).
  bool correlating() const noexcept;

  /// The DEALER socket, for fabric::reactor::add() or zmq_poll. Do not send or receive on it.
  /// With a failover list its handle changes when the client fails over (socket_generation()).
  const fabric::socket& socket() const noexcept;
  /// How many times the socket has been replaced: 0 until the first failover, then one more for
  /// each. A reactor user re-registers socket() when it has moved (see the class comment).
  std::uint64_t socket_generation() const noexcept;
  /// The broker the current socket is connected to: `broker` or one of `failover`.
  const std::string& endpoint() const noexcept;
  /// The bytes of request frames kept so that outstanding requests can be sent again after a
  /// failover; always 0 without a failover list.
  std::size_t retained_bytes() const noexcept;
  /// What the client has done so far. Valid while the client lives.
  const async_client_stats& stats() const noexcept;
  /// The options given at construction.
  const async_client_options& options() const noexcept;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace fabric::mdp
