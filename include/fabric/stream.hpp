// fabric streams (FRS/1, docs/stream.md): durable publish/subscribe with replay, no broker. A
// publisher journals every message of every stream and publishes it live; a subscriber that fell
// behind, joined late, restarted or lost messages on the way fetches what it missed from the
// publisher's journal and merges it with the live feed, so its application sees each stream in
// order, once, with no gap, or is told exactly which range is gone.
//
//   // the pricing service
//   fabric::journal j = fabric::journal::open("/var/lib/pricing", {.mode = fabric::durability::periodic});
//   fabric::stream_publisher pub(ctx, j, {.endpoint = "tcp://127.0.0.1:7200", .replay_endpoint = "tcp://127.0.0.1:7201"});
//   pub.publish("prices.eurusd", encode(tick));  // returns once durable; then it goes out live
//
//   // a risk service, anywhere, at any time
//   fabric::stream_subscriber sub(ctx, {.endpoint = "tcp://pricing:7200",
//                                       .replay_endpoint = "tcp://pricing:7201",
//                                       .prefixes = {"prices."},
//                                       .start = fabric::stream_start::from_seq(1),
//                                       .on_message = [](const fabric::stream_message& m) { ... }});
//
// A slow subscriber never slows the publisher or the other subscribers: the PUB socket drops
// what a subscriber cannot take, and the subscriber fetches it later, a bounded batch at a time.
// The publisher keeps no state per subscriber; how long history is kept is the journal's
// retention (stream_publisher_options::retention).
//
// Both run the way every fabric service does: on a thread of their own (the default), on the
// caller's thread (run()), or on a reactor the application runs (deferred_start, then attach()).
//
// Thread safety: publish() and its forms from any thread at once; stats() from the owner's thread
// (attached: the reactor's thread). A subscriber's handlers run on its thread (at_most_once,
// at_least_once) or on the journal's writer thread (effectively_once).
#pragma once

#include <fabric/context.hpp>
#include <fabric/journal.hpp>
#include <fabric/log.hpp>
#include <fabric/majordomo.hpp>
#include <fabric/reactor.hpp>
#include <fabric/result.hpp>
#include <fabric/security.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <future>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace fabric {

using mdp::deferred_start;
using mdp::deferred_start_t;

// ------------------------------------------------------------------------------- publisher

struct stream_publisher_options {
  /// Where the live feed is published (a PUB socket), e.g. "tcp://127.0.0.1:7200".
  std::string endpoint;
  /// Where subscribers fetch history (a ROUTER socket), e.g. "tcp://127.0.0.1:7201".
  std::string replay_endpoint;
  /// HEARTBEAT on the live feed every interval, and a BEACON for every stream quiet during it.
  std::chrono::milliseconds heartbeat{1000};
  /// Set on every stream this publisher writes, when not all default: how much history
  /// subscribers can still fetch. Default: all of it.
  retention_policy retention{};
  /// Live messages queued for one subscriber before the PUB socket drops them for it (it then
  /// fetches them). 0 = no limit, which lets a stalled subscriber cost the publisher memory.
  int send_hwm = 100'000;
  /// The bodies of one BATCH stop growing past this size (one message always goes).
  std::size_t max_batch_bytes = std::size_t{4} << 20;
  /// CURVE for both sockets (curve_server), or none (the default).
  security_options security{};
  /// Where log lines go (journal failures, damaged records); none by default.
  log_fn log{};
};

struct stream_publisher_info {
  std::string stream;
  std::uint64_t published = 0;  ///< the last sequence sent live
  std::uint64_t live_sent = 0;
  std::uint64_t beacons = 0;
};

struct stream_publisher_stats {
  std::uint64_t live_sent = 0;
  std::uint64_t heartbeats = 0;
  std::uint64_t beacons = 0;
  std::uint64_t fetches = 0;   ///< FETCH and FETCH-TIME answered
  std::uint64_t replayed = 0;  ///< messages sent by replay
  std::uint64_t gones = 0;
  std::uint64_t refused = 0;
  std::uint64_t malformed = 0;
  std::uint64_t protocol_errors = 0;
  std::uint64_t damaged = 0;   ///< damaged journal records met (reported to subscribers as gone)
  std::uint64_t journal_errors = 0;
  std::uint64_t send_failures = 0;
  std::vector<stream_publisher_info> streams;
};

class stream_publisher {
 public:
  using publish_callback = std::function<void(result<std::uint64_t> seq)>;

  /// Binds both endpoints over `j` (which must outlive it) and starts on its own thread. Every
  /// stream the journal already holds for a publisher is served: its history by replay, and
  /// what comes next live.
  /// Throws: fabric::error(invalid_argument) for a missing endpoint; what bind throws; the
  /// journal's error when its state cannot be read or created.
  stream_publisher(context& ctx, journal& j, stream_publisher_options options);
  stream_publisher(context& ctx, journal& j, stream_publisher_options options, deferred_start_t);
  ~stream_publisher();
  stream_publisher(const stream_publisher&) = delete;
  stream_publisher& operator=(const stream_publisher&) = delete;

  /// The live feed's endpoint and the replay endpoint, resolved (a wildcard port replaced).
  const std::string& endpoint() const noexcept;
  const std::string& replay_endpoint() const noexcept;

  /// Appends `body` to `stream` and waits until it is durable; it then goes out live, and stays
  /// available by replay as long as retention keeps it.
  /// Returns: its sequence in the stream, errc::invalid_argument for a bad stream name (1..247
  /// octets, not beginning with 0x00, no NUL), or the journal's error (errc::back_pressure,
  /// errc::too_large, ...).
  result<std::uint64_t> publish(std::string_view stream, std::string_view body);
  /// The same without waiting: `done` runs on the journal's writer thread once durable (or at
  /// once, on the caller's thread, when refused).
  void publish_async(std::string_view stream, std::string_view body, publish_callback done);
  std::future<result<std::uint64_t>> publish_async(std::string_view stream, std::string_view body);
  /// Appends `bodies` to `stream` as one unit (consecutive sequences, one commit): the fast way
  /// to publish many messages. `done` gets the first one's sequence.
  void publish_batch(std::string_view stream, std::span<const std::string_view> bodies, publish_callback done);
  std::future<result<std::uint64_t>> publish_batch(std::string_view stream,
                                                   std::span<const std::string_view> bodies);
  /// The outbox pattern: appends `body` to `stream` inside the application's own transaction, so
  /// that its writes and the message commit together. Call flush() once the transaction has
  /// committed, so that it goes out live. Only inside journal::transact on this publisher's
  /// journal. Returns: the message's sequence. Throws: fabric::error(invalid_argument) for a
  /// bad stream name; what journal_txn::append throws.
  std::uint64_t publish(journal_txn& t, std::string_view stream, std::string_view body);
  /// Publishes live what publish(journal_txn&, ...) added, once durable.
  void flush();

  /// The journal stream that holds `stream`: "frs.pub/<stream>".
  static std::string journal_stream(std::string_view stream);

  void start();
  result<void> run();
  void request_stop() noexcept;
  void attach(reactor& r);
  bool detach(reactor& r) noexcept;
  bool stop(std::chrono::milliseconds timeout = std::chrono::seconds(5)) noexcept;
  bool running() const noexcept;
  std::exception_ptr failure() const noexcept;

  /// A snapshot. Throws: fabric::error(timeout) when the publisher's thread does not answer.
  stream_publisher_stats stats(std::chrono::milliseconds timeout = std::chrono::seconds(5));

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

// ------------------------------------------------------------------------------ subscriber

/// Where a stream starts when the subscriber has no position for it (docs/stream.md, section 6).
struct stream_start {
  enum class kind { latest, from_seq, from_time };
  kind what = kind::latest;
  std::uint64_t seq = 0;
  std::chrono::system_clock::time_point time{};

  /// The next message published; nothing older.
  static stream_start latest() { return {}; }
  /// From sequence `seq` (1: all the history the publisher still holds).
  static stream_start from_seq(std::uint64_t seq) { return {kind::from_seq, seq, {}}; }
  /// From the first message published at or after `t`.
  static stream_start from_time(std::chrono::system_clock::time_point t) { return {kind::from_time, 0, t}; }
};

/// When the subscriber counts a message as processed (docs/stream.md, section 8).
enum class stream_delivery {
  /// Positions in memory only: a restart begins again at the start position.
  at_most_once,
  /// The handler runs on the subscriber's thread; positions are committed to the journal after
  /// (many messages per commit). A crash re-delivers what was not committed.
  at_least_once,
  /// The handler runs inside the journal transaction that writes the position (on the journal's
  /// writer thread): its writes and the position commit together, or neither.
  effectively_once,
};

/// One message as a handler sees it. The views are valid during the call only.
struct stream_message {
  std::string_view stream;
  std::uint64_t seq = 0;
  /// When the publisher's journal took it.
  std::chrono::system_clock::time_point time{};
  std::string_view body;
  /// Came by replay rather than live.
  bool replayed = false;
  /// 1 for the first attempt.
  std::uint32_t attempt = 1;
};

/// Something the application must know, never passed over silently.
struct stream_notice {
  enum class kind {
    gone,                 ///< messages from..to of `stream` are removed (retention) or damaged
    publisher_replaced,   ///< a new publisher journal: `stream` starts again at 1 (it was at `from`)
    publisher_regressed,  ///< the publisher is behind this position: it continues from `to`
    publisher_lost,       ///< nothing heard for liveness heartbeat intervals
    publisher_back,       ///< heard again
    refused,              ///< the publisher refused `stream` (`detail` says why)
    handler_failed,       ///< the handler threw max_attempts times on `from`: skipped (`detail`)
  };
  kind what = kind::gone;
  std::string stream{};
  std::uint64_t from = 0;
  std::uint64_t to = 0;
  std::string detail{};
};

struct stream_subscriber_options {
  /// The publisher's live feed and replay endpoints.
  std::string endpoint;
  std::string replay_endpoint;
  /// Streams followed from the start, by exact name, before the publisher mentions them.
  std::vector<std::string> streams{};
  /// Stream-name prefixes followed as the publisher mentions them ("" follows every stream).
  std::vector<std::string> prefixes{};
  /// Where a stream starts when there is no durable position for it.
  stream_start start{};
  stream_delivery mode = stream_delivery::at_most_once;
  /// With a journal: the name this subscriber keeps its positions under (table frs.cursor),
  /// e.g. the publisher's service name. 1..255 octets.
  std::string name{};
  /// The handler for at_most_once and at_least_once: throw to have it retried.
  std::function<void(const stream_message&)> on_message{};
  /// The handler for effectively_once: write through `t`; throw to have it retried (nothing it
  /// wrote is kept).
  std::function<void(const stream_message&, journal_txn& t)> on_message_in{};
  /// Attempts per message before it is skipped (reported, and with a journal kept in stream
  /// "frs.failed" with the reason).
  std::uint32_t max_attempts = 5;
  /// Told of gaps that cannot be filled, replaced publishers, losses of contact.
  std::function<void(const stream_notice&)> on_notice{};

  /// Silent publisher heartbeats before it is reported lost.
  std::size_t liveness = 3;
  /// An unanswered fetch is sent again after this long.
  std::chrono::milliseconds fetch_timeout{2000};
  /// Messages asked for per fetch (1..1024).
  std::uint32_t fetch_count = 1024;
  /// Live messages held per stream while it catches up.
  std::size_t max_held = 10'000;
  /// Messages handed over and not yet committed (effectively_once) before the subscriber holds
  /// back; what it cannot take then comes later by replay.
  std::size_t max_backlog = 65'536;
  /// at_least_once: positions are committed this often (and when stopping).
  std::chrono::milliseconds commit_interval{100};
  /// Live messages the SUB socket queues before ZeroMQ drops them (they come back by replay).
  int recv_hwm = 100'000;
  /// CURVE for both sockets (curve_client), or none (the default).
  security_options security{};
  log_fn log{};
};

struct stream_subscriber_info {
  std::string stream;
  std::string state;  ///< "waiting", "live", "catching-up", "refused"
  std::uint64_t next = 0;      ///< the next sequence to deliver (0: not known yet)
  std::uint64_t delivered = 0;
  std::uint64_t replayed = 0;
  std::uint64_t duplicates = 0;
  std::uint64_t gaps = 0;
  std::uint64_t fetches = 0;
  std::uint64_t gone = 0;
  std::uint64_t held = 0;
};

struct stream_subscriber_stats {
  bool publisher_alive = false;
  std::uint64_t received = 0;
  std::uint64_t malformed = 0;
  std::uint64_t protocol_errors = 0;
  std::uint64_t stale = 0;
  std::uint64_t fetches = 0;
  std::uint64_t fetch_timeouts = 0;
  std::uint64_t publisher_losses = 0;
  std::uint64_t publisher_replacements = 0;
  std::uint64_t commits = 0;
  std::uint64_t commit_failures = 0;
  std::uint64_t handler_failures = 0;  ///< attempts that threw
  std::uint64_t skipped = 0;           ///< messages given up after max_attempts
  std::vector<stream_subscriber_info> streams;
};

class stream_subscriber {
 public:
  /// An at_most_once subscriber, with no journal. Connects and starts on its own thread.
  /// Throws: fabric::error(invalid_argument) for missing endpoints, a handler missing, a mode
  /// that needs a journal, bad stream names.
  stream_subscriber(context& ctx, stream_subscriber_options options);
  stream_subscriber(context& ctx, stream_subscriber_options options, deferred_start_t);
  /// A subscriber that keeps its positions in `j` (which must outlive it) and resumes from them.
  stream_subscriber(context& ctx, journal& j, stream_subscriber_options options);
  stream_subscriber(context& ctx, journal& j, stream_subscriber_options options, deferred_start_t);
  ~stream_subscriber();
  stream_subscriber(const stream_subscriber&) = delete;
  stream_subscriber& operator=(const stream_subscriber&) = delete;

  void start();
  result<void> run();
  void request_stop() noexcept;
  void attach(reactor& r);
  bool detach(reactor& r) noexcept;
  bool stop(std::chrono::milliseconds timeout = std::chrono::seconds(5)) noexcept;
  bool running() const noexcept;
  std::exception_ptr failure() const noexcept;

  stream_subscriber_stats stats(std::chrono::milliseconds timeout = std::chrono::seconds(5));

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace fabric
