// Titanic (9/TSP, docs/titanic.md) clients: hand a request to a service through a Titanic server,
// which stores it before saying so, and collect the reply later, however long the service takes.
//
//   fabric::titanic::client        one call at a time over a Lazy Pirate Majordomo client:
//                                  post(), poll(), wait(), close(), and call() for all four.
//   fabric::titanic::async_client  many requests at once over one DEALER: post() returns at
//                                  once, and the client follows each request to its reply,
//                                  reporting what happened through recv() / try_recv().
//
// Both take a failover list of further brokers (the other node of a Binary Star pair) and move
// along it when the broker goes silent, keeping each post's key.
//
// Both speak to the four Titanic services through any 7/MDP broker:
//
//   titanic.keyed-request  key | service | body...  ->  "200" | uuid   (or "300" / "400" / "500")
//   titanic.request        service | body...        ->  "200" | uuid   (or ...)
//   titanic.reply          uuid                     ->  "200" | reply... / "300" / "400" / "500 why"
//   titanic.close          uuid                     ->  "200"
//
// Idempotent posting: by default every post carries a key, 16 random octets drawn for that post
// and sent again unchanged with every resend of it (a Majordomo retry resends the same body), so
// the server stores the request once however many of its "200" answers are lost. Keys need the
// server's titanic.keyed-request service (fabric's extension, docs/titanic.md section 5). With
// key_mode::automatic the client asks the broker once, before its first post, whether that
// service has workers ("mmi.service", 8/MMI), and posts plain titanic.request when it has not;
// a resend after a lost "200" then stores the request a second time, and it runs twice, as with
// any 9/TSP client. The answer is kept for the client's life, so create the client once the
// Titanic server is up, or choose key_mode::keyed or key_mode::plain.
//
// Error mapping (the codes are fabric::errc values in result<>):
//   broker silent after every retry                 errc::timeout
//   post answered 400 (the server refused the body) errc::invalid_argument
//   post answered 500 (the server could not store)  errc::io_error (post again later)
//   any other answer out of place (e.g. 300 to a    errc::protocol_error
//   post, 300 to a close)
//   an answer that breaks the 9/TSP grammar         errc::malformed
//   close answered 500                              errc::io_error
//   the context shut down / a signal                errc::closed / errc::interrupted
// titanic.reply's answers are not errors: they come back as a reply_state (ready, pending,
// unknown for 400, failed for 500 with the server's reason text).
//
// Thread safety: a client object is used by one thread at a time, like a socket; it may be handed
// to another thread across a full memory barrier (e.g. std::thread's constructor). request_id and
// the free functions are plain values and safe from any thread.
#pragma once

#include <fabric/context.hpp>
#include <fabric/majordomo_client.hpp>
#include <fabric/message.hpp>
#include <fabric/options.hpp>
#include <fabric/result.hpp>
#include <fabric/socket.hpp>

#include <array>
#include <chrono>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>
#include <system_error>

namespace fabric::titanic {

/// A request's identity on a Titanic server: 16 octets, a UUID on the wire.
struct request_id {
  std::array<std::uint8_t, 16> bytes{};

  bool operator==(const request_id&) const = default;
  auto operator<=>(const request_id&) const = default;
};

/// The 32 hexadecimal digits of `id`, upper case, as the server writes them.
/// Throws: std::bad_alloc only.
std::string to_string(const request_id& id);
/// `text` read as exactly 32 hexadecimal digits of either case.
/// Returns: the id; nullopt for anything else (another length, a character that is not a digit).
std::optional<request_id> parse_request_id(std::string_view text) noexcept;

/// Whether posts carry an idempotency key (see the file comment).
enum class key_mode : std::uint8_t {
  /// Ask the broker once ("mmi.service" for titanic.keyed-request): keyed when the service has
  /// workers, plain otherwise.
  automatic,
  /// Always titanic.keyed-request. With a server that does not offer it, posts time out.
  keyed,
  /// Always titanic.request: a resend after a lost "200" stores the request again.
  plain,
};

/// What titanic.reply said of a request.
enum class reply_state : std::uint8_t {
  ready,    ///< 200: the service answered; the reply's frames are in `reply::body`
  pending,  ///< 300: no reply yet; ask again later
  unknown,  ///< 400: the server does not know the id (never issued, closed, or expired)
  failed,   ///< 500: the server gave the request up; `reply::reason` says why
};

/// A request's state as the server reported it.
struct reply {
  reply_state state = reply_state::pending;
  /// The service's reply frames (ready only; empty otherwise).
  message body{};
  /// The text after the status code, for people (failed only, and possibly empty there). A
  /// program must not act on it.
  std::string reason{};
};

/// Settings of a synchronous client.
struct client_options {
  /// The broker's endpoint, e.g. "tcp://127.0.0.1:5555". Required.
  std::string broker{};
  /// Brokers to fail over to, such as the other node of a Binary Star pair: each retry goes to
  /// the next (mdp::client_options::failover). A keyed post retried on another broker keeps its
  /// key, so it is still stored once.
  std::vector<std::string> failover{};
  /// How long one attempt of a Titanic call (or of the broker probe) waits for its answer.
  /// Between 1 ms and 24 h.
  std::chrono::milliseconds timeout{2500};
  /// How many times a silent call is resent on a fresh socket (with the same key for a post): at
  /// most `retries + 1` attempts. At most 1000.
  std::uint32_t retries = 3;
  /// wait() asks titanic.reply again after `poll_interval`, doubling after each "300" up to
  /// `poll_interval_max`. Between 1 ms and 1 h, poll_interval <= poll_interval_max.
  std::chrono::milliseconds poll_interval{10};
  std::chrono::milliseconds poll_interval_max{1000};
  /// Whether posts carry an idempotency key.
  key_mode keys = key_mode::automatic;
  /// Passed to the Majordomo client (mdp::client_options::correlate): on with fabric's broker to
  /// be safe from a duplicate answer to an earlier call.
  bool correlate = false;
  /// Options of each DEALER socket, as mdp::client_options::socket (a routing id is a prefix).
  socket_options socket{};
};

/// What a synchronous client has done, since it was created.
struct client_stats {
  std::uint64_t posts = 0;      ///< post() calls that sent something (call() included)
  std::uint64_t posted = 0;     ///< posts the server stored ("200" and an id)
  std::uint64_t keyed = 0;      ///< posts sent to titanic.keyed-request
  std::uint64_t refused = 0;    ///< posts answered 300, 400 or 500
  std::uint64_t probes = 0;     ///< "mmi.service" questions answered by the broker
  std::uint64_t polls = 0;      ///< titanic.reply answers
  std::uint64_t ready = 0;      ///< of which "200" with the reply
  std::uint64_t failed = 0;     ///< of which "500" (given up)
  std::uint64_t closes = 0;     ///< titanic.close answers
  std::uint64_t malformed = 0;  ///< answers that broke 9/TSP (errc::malformed)
  std::uint64_t timeouts = 0;   ///< calls that met a silent broker (errc::timeout)
};

/// A synchronous Titanic client: each call is one Majordomo request with Lazy Pirate retries, on
/// whatever thread calls it.
class client {
 public:
  /// Creates the client and connects its Majordomo client to `options.broker`.
  /// Throws: fabric::error(invalid_argument) for an empty broker endpoint or an option out of
  /// range (the message names it); fabric::error naming the endpoint when it is malformed.
  client(context& ctx, client_options options);
  /// Closes the socket without waiting: a call still unanswered is abandoned.
  ~client();
  client(client&&) noexcept;
  client& operator=(client&&) noexcept;
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  /// Hands `body` for `service` to the Titanic server, which stores it before answering. With
  /// key_mode::automatic, the first post asks the broker whether keys are offered.
  /// @param service  the real service, e.g. "echo": 1..255 characters of 0x21..0x7E.
  /// @param body     1..1024 frames; consumed unless this throws.
  /// Returns: the request's id; errc::invalid_argument (400), errc::io_error (500),
  /// errc::protocol_error (300), errc::malformed, or the Majordomo client's errors (timeout,
  /// closed, interrupted). After a timeout the request may have been stored: a keyed post
  /// cannot have been stored twice, but this client will not learn its id.
  /// Throws: fabric::error(invalid_argument) for a bad service name or body count (`body` is
  /// then untouched); fabric::error when a fresh socket cannot be created.
  result<request_id> post(std::string_view service, message&& body);

  /// Asks titanic.reply once what became of `id`. The reply stays on the server until close().
  /// Returns: the state (with the reply frames when ready, the reason when failed);
  /// errc::malformed; the Majordomo client's errors.
  /// Throws: fabric::error when a fresh socket cannot be created.
  result<reply> poll(const request_id& id);

  /// Polls until the state is ready, unknown or failed, or `timeout` has passed: at once, then
  /// after `poll_interval` doubling up to `poll_interval_max` (the client's thread sleeps in
  /// between). A timeout of 0 polls once.
  /// Returns: the final state (never pending); errc::timeout when still pending at the deadline,
  /// or when the broker was silent; as poll() otherwise.
  /// Throws: fabric::error(invalid_argument) for a negative timeout; as poll().
  result<reply> wait(const request_id& id, std::chrono::milliseconds timeout);

  /// Asks titanic.close to forget `id` and its reply. An unknown id is not an error.
  /// Returns: success; errc::io_error (500); errc::protocol_error (300); errc::malformed; the
  /// Majordomo client's errors.
  /// Throws: fabric::error when a fresh socket cannot be created.
  result<void> close(const request_id& id);

  /// post(), then wait() for what is left of `timeout`, then close() once the state is final.
  /// A request still pending at the deadline is closed too (best effort, its answer ignored),
  /// since the caller never learns its id; the service may still carry it out.
  /// Returns: the final state: ready, failed or unknown (never pending); errc::timeout when the
  /// deadline passed or the broker was silent; post()'s and poll()'s errors otherwise.
  /// Throws: as post(); fabric::error(invalid_argument) for a negative timeout.
  result<reply> call(std::string_view service, message&& body, std::chrono::milliseconds timeout);

  /// Whether posts carry keys: set by the options, or by the first post's probe with
  /// key_mode::automatic (nullopt until then).
  std::optional<bool> keyed() const noexcept;
  /// What the client has done so far. Valid while the client lives.
  const client_stats& stats() const noexcept;
  /// What its Majordomo client has done (retries and drops). Valid while the client lives.
  const mdp::client_stats& transport_stats() const noexcept;
  /// The options given at construction.
  const client_options& options() const noexcept;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

/// Settings of an asynchronous client.
struct async_client_options {
  /// The broker's endpoint, e.g. "tcp://127.0.0.1:5555". Required.
  std::string broker{};
  /// Brokers to fail over to, such as the other node of a Binary Star pair: after
  /// `failover_after` of silence while calls are outstanding, the Majordomo client moves to the
  /// next and sends every outstanding call again (mdp::async_client_options::failover). A keyed
  /// post sent again on another broker keeps its key, so a server that already stored it (a
  /// Titanic pair replicates its keys, docs/ha.md section 9) answers with the same id and stores
  /// it once. Empty: the client stays with `broker`.
  std::vector<std::string> failover{};
  /// With a failover list: the silence that makes the client move to the next broker. Shorter
  /// than `call_timeout`, a failover comes before the calls expire and they keep their attempts.
  /// Between 1 ms and 24 h.
  std::chrono::milliseconds failover_after{2500};
  /// How long one Titanic call (post, poll, close or the broker probe) waits for its answer
  /// before it is sent again. Between 1 ms and 24 h.
  std::chrono::milliseconds call_timeout{2500};
  /// How many times an unanswered call is sent again (a post with the same key); then the
  /// request ends with errc::timeout. At most 1000.
  std::uint32_t retries = 3;
  /// Each posted request is polled after `poll_interval`, then after twice that after each "300",
  /// up to `poll_interval_max`. Between 1 ms and 1 h, poll_interval <= poll_interval_max.
  std::chrono::milliseconds poll_interval{10};
  std::chrono::milliseconds poll_interval_max{1000};
  /// Whether posts carry an idempotency key. With automatic, posts made before the broker has
  /// answered the probe wait in the client (they count as outstanding).
  key_mode keys = key_mode::automatic;
  /// Close each request on the server once it is ready or failed (the answer is not reported).
  bool close_when_done = true;
  /// Requests followed at once at most; post() reports errc::back_pressure beyond it.
  /// Between 1 and 1'000'000.
  std::size_t max_outstanding = 10'000;
  /// How the Majordomo client matches answers to calls (mdp::async_client_options::correlate).
  mdp::correlation correlate = mdp::correlation::automatic;
  /// Options of the DEALER socket.
  socket_options socket{.send_hwm = 10'000, .recv_hwm = 10'000};
};

/// What an asynchronous client has done, since it was created.
struct async_client_stats {
  std::uint64_t posts = 0;      ///< requests accepted by post()
  std::uint64_t posted = 0;     ///< of which stored by the server (`posted` completions)
  std::uint64_t keyed = 0;      ///< posts sent to titanic.keyed-request (resends not counted)
  std::uint64_t resends = 0;    ///< calls sent again after their call_timeout
  std::uint64_t polls = 0;      ///< titanic.reply answers
  std::uint64_t ready = 0;      ///< requests completed with their reply
  std::uint64_t failed = 0;     ///< requests the server gave up
  std::uint64_t unknown = 0;    ///< requests the server did not know any more
  std::uint64_t errors = 0;     ///< requests ended with an error
  std::uint64_t closes = 0;     ///< titanic.close calls sent
  std::uint64_t malformed = 0;  ///< answers that broke 9/TSP
};

/// An asynchronous Titanic client: post() sends without blocking, then the client follows the
/// request by itself (resending a post whose answer does not come, with the same key; polling
/// titanic.reply with back-off; closing it when done) and reports each step as a completion.
///
/// Every token post() returns is reported exactly twice, in this order: once as `posted` (the
/// server stored it; the completion has its id) or as `error` (not stored, as far as the client
/// knows), and, after `posted`, once more as `ready`, `failed`, `unknown` or `error`. Requests
/// complete in whatever order the services answer.
///
/// In a fabric::reactor: add socket() with a handler that calls try_recv() until it reports
/// errc::would_block, and arrange a timer for next_deadline() that does the same (polls are
/// sent, expired calls sent again, and with a failover list the client fails over, from inside
/// try_recv() and recv()).
class async_client {
 public:
  using clock = std::chrono::steady_clock;

  /// What a completion reports.
  enum class event : std::uint8_t {
    posted,   ///< the server stored the request; `id` is its id
    ready,    ///< the reply's frames are in `body`
    failed,   ///< the server gave the request up; `reason` says why (for people)
    unknown,  ///< the server does not know the id any more (closed elsewhere, or expired)
    error,    ///< the request ended with `error` (see the file comment for the mapping):
              ///< errc::timeout after every resend went unanswered, for example
  };

  /// One step of one request.
  struct completion {
    /// The token post() returned.
    std::uint64_t token = 0;
    event what = event::posted;
    /// The server's id of the request (zero for an error before it was stored).
    request_id id{};
    /// The reply's frames (ready only).
    message body{};
    /// The status text (failed only).
    std::string reason{};
    /// Why the request ended (error only).
    std::error_code error{};
  };

  /// Creates the client and connects its socket to `options.broker`.
  /// Throws: fabric::error(invalid_argument) for an empty broker endpoint or an option out of
  /// range; fabric::error naming the endpoint when it is malformed.
  async_client(context& ctx, async_client_options options);
  /// Closes the socket without waiting (linger 0); requests followed are abandoned (they stay on
  /// the server until its retention removes them).
  ~async_client();
  async_client(async_client&&) noexcept;
  async_client& operator=(async_client&&) noexcept;
  async_client(const async_client&) = delete;
  async_client& operator=(const async_client&) = delete;

  /// Sends a request for `service` without blocking (with key_mode::automatic, the first post
  /// also sends the broker probe, and posts wait for its answer).
  /// @param service  the real service: 1..255 characters of 0x21..0x7E.
  /// @param body     1..1024 frames; consumed on success only.
  /// Returns: a token (never 0), reported later by recv(); errc::back_pressure when
  /// max_outstanding requests are followed or the socket cannot queue more; errc::closed when
  /// the context was shut down (`body` is unchanged on an error).
  /// Throws: fabric::error(invalid_argument) for a bad service name or body count.
  result<std::uint64_t> post(std::string_view service, message&& body);

  /// Waits at most `timeout` (cut to a year) for the next completion, doing the client's work
  /// (polls, resends) meanwhile.
  /// @param out  receives the completion; its storage is reused.
  /// Returns: success; errc::timeout when nothing completed in time; errc::closed when the context
  /// was shut down; errc::interrupted when a signal interrupted the wait.
  result<void> recv(completion& out, std::chrono::milliseconds timeout);
  /// As recv(out, timeout), into a new completion.
  result<completion> recv(std::chrono::milliseconds timeout);
  /// As recv() without blocking: errc::would_block when nothing has completed (call again when
  /// the socket is readable or next_deadline() has passed).
  result<void> try_recv(completion& out);

  /// Requests followed now (posted and not yet reported as done), with completions not yet
  /// taken by recv() not counted.
  std::size_t outstanding() const noexcept;
  /// When the client next has work to do without a message arriving (a poll due, a call
  /// expiring); nullopt when there is none.
  std::optional<clock::time_point> next_deadline() const noexcept;
  /// Whether posts carry keys: set by the options, or by the probe's answer with
  /// key_mode::automatic (nullopt until then). The answer is kept across failovers: every
  /// broker of the list is taken to reach an equal Titanic server.
  std::optional<bool> keyed() const noexcept;

  /// The DEALER socket, for fabric::reactor::add() or zmq_poll. Do not send or receive on it.
  /// With a failover list its handle changes when the client fails over, only inside recv()
  /// and try_recv(): re-register it when socket_generation() has moved, as for
  /// mdp::async_client.
  const fabric::socket& socket() const noexcept;
  /// How many times the socket has been replaced by a failover.
  std::uint64_t socket_generation() const noexcept;
  /// The broker the current socket is connected to: `broker` or one of `failover`.
  const std::string& endpoint() const noexcept;
  /// What the client has done so far. Valid while the client lives.
  const async_client_stats& stats() const noexcept;
  /// What its Majordomo client has done (failovers, resent calls, drops). Valid while the
  /// client lives.
  const mdp::async_client_stats& transport_stats() const noexcept;
  /// The options given at construction.
  const async_client_options& options() const noexcept;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace fabric::titanic
