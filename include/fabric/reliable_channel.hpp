// fabric reliable channels (FRC/1, docs/reliable-channel.md): a sender service hands a message to
// fabric and it reaches a receiver service, in order, once as far as the receiver's application
// can tell, through crashes and restarts of either side and network faults, with no broker in
// between. Each side keeps its half in its own fabric::journal.
//
//   // the billing service
//   fabric::journal j = fabric::journal::open("/var/lib/billing");
//   fabric::reliable_receiver in(ctx, j, {.endpoint = "tcp://127.0.0.1:7100",
//       .mode = fabric::delivery_mode::effectively_once,
//       .on_message_in = [](const fabric::reliable_delivery& d, fabric::journal_txn& t) {
//         t.put("payments", d.body.substr(0, 16), d.body);  // commits with the channel's mark
//       }});
//
//   // the order service
//   fabric::reliable_sender out(ctx, j2, {.name = "orders", .receiver = "billing",
//                                         .endpoint = "tcp://billing:7100"});
//   out.send("payments", encode(payment));  // returns once the message is durable in j2
//
// A sender talks to one receiver over one connection, with any number of streams; each stream is
// a channel, ordered on its own. A service sending to several receivers makes one sender for each,
// sharing one journal. A receiver binds one endpoint that any number of senders connect to.
//
// Both run the way every fabric service does: on a thread of their own (the default), on the
// caller's thread (run()), or on a reactor the application runs (deferred_start, then attach()).
//
// Thread safety: send() and its forms may be called from any thread at once. stats() from the
// owner's thread (when attached: the reactor's thread). The receiver's handlers run on its thread
// (at-least-once, manual) or on the journal's writer thread (effectively-once).
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

// ---------------------------------------------------------------------------------- sender

/// What send() does when a channel's backlog is full.
enum class overflow_policy {
  block,  ///< wait (up to send_timeout) for the receiver to acknowledge enough
  fail,   ///< return errc::back_pressure at once
};

struct reliable_sender_options {
  /// This sender's name (1..255 bytes): how receivers know it, stable across restarts.
  std::string name;
  /// The receiver's name, which names this sender's outbox streams in its journal
  /// ("frc.out/<receiver>/<stream>"). With a stream, at most 240 bytes.
  std::string receiver;
  /// The receiver's endpoint, e.g. "tcp://billing:7100".
  std::string endpoint;
  /// Streams opened at start, beside those the journal already holds for this receiver (a
  /// restarted sender resumes every one of them) and those send() opens.
  std::vector<std::string> streams{};

  std::chrono::milliseconds heartbeat{1000};
  /// Silent heartbeat intervals (ours or the receiver's, the longer) before the receiver is
  /// declared dead and the connection replaced.
  std::size_t liveness = 3;
  std::chrono::milliseconds reconnect_interval{100};
  std::chrono::milliseconds reconnect_interval_max{10'000};
  /// In flight with no acknowledgement for this long: send again from the first unacknowledged.
  std::chrono::milliseconds retransmit_interval{2000};
  /// Messages sent and not yet acknowledged per channel (the receiver's credit may allow fewer).
  std::uint64_t max_in_flight = 65536;
  /// Messages in a channel's outbox not yet acknowledged before send() applies `overflow`.
  /// They live in the journal, not in memory.
  std::uint64_t max_backlog = 10'000'000;
  overflow_policy overflow = overflow_policy::block;
  /// How long a blocking send() waits, for back-pressure and for durability together.
  std::chrono::milliseconds send_timeout{10'000};
  /// CURVE for the connection (curve_client), or none (the default).
  security_options security{};
  /// Told on the sender's thread whenever the receiver has acknowledged more of a stream: every
  /// message of `stream` up to `acked` is taken by the receiver, durably. Keep it quick.
  std::function<void(std::string_view stream, std::uint64_t acked)> on_acknowledged{};
  /// Where log lines go (journal failures, damaged outbox records); none by default.
  log_fn log{};
};

struct send_options {
  /// Not delivered once this long has passed since send(): dead-lettered at the sender with the
  /// reason. 0 = no limit.
  std::chrono::milliseconds ttl{0};
  /// Delivered no earlier than this (system clock); its sequence is given when it falls due, so
  /// it does not hold up the messages behind it. Default: now.
  std::chrono::system_clock::time_point deliver_at{};
};

/// The state of one sender channel.
struct sender_channel_info {
  std::string stream;
  std::string state;  ///< "closed", "greeting", "open", "waiting", "failed"
  std::uint64_t last = 0;       ///< the highest sequence in the outbox
  std::uint64_t acknowledged = 0;
  std::uint64_t in_flight = 0;  ///< sent, not acknowledged
  std::uint64_t backlog = 0;    ///< in the outbox, not acknowledged
  std::uint64_t sent = 0;          ///< messages sent, retransmissions included
  std::uint64_t retransmitted = 0;
  std::uint64_t skipped = 0;       ///< sequences withdrawn before sending and skipped
  std::uint64_t dead_lettered = 0; ///< expired before sending, too large, or expired at the receiver
  std::uint64_t receiver_resets = 0;
  std::uint64_t receiver_regressions = 0;
  std::uint64_t refusals = 0;
  std::string refusal;  ///< the last refusal, "code: reason"
  /// How long the oldest message not acknowledged has waited, as of the snapshot.
  std::chrono::milliseconds lag{0};
};

struct reliable_sender_stats {
  bool connected = false;
  std::uint64_t connections = 0;
  std::uint64_t connections_lost = 0;
  std::uint64_t malformed = 0;  ///< dropped: did not parse, or over the frame bounds
  std::uint64_t protocol_errors = 0;
  std::uint64_t journal_errors = 0;
  std::vector<sender_channel_info> channels;
};

class reliable_sender {
 public:
  using send_callback = std::function<void(result<std::uint64_t> seq)>;

  /// Opens the sender over `j` (which must outlive it) and starts it on its own thread.
  /// Throws: fabric::error(invalid_argument) for a missing name, receiver or endpoint, or names
  /// too long; the journal's error when its state cannot be read or created.
  reliable_sender(context& ctx, journal& j, reliable_sender_options options);
  /// The same, not started: start(), run() or attach() it.
  reliable_sender(context& ctx, journal& j, reliable_sender_options options, deferred_start_t);
  ~reliable_sender();
  reliable_sender(const reliable_sender&) = delete;
  reliable_sender& operator=(const reliable_sender&) = delete;

  /// Appends `body` to the channel of `stream` (opening it if new) and waits until it is
  /// durable in the journal, at most send_timeout. Once it returns success the message will
  /// reach the receiver, unless its ttl runs out first (then it is dead-lettered here).
  /// Returns: its sequence in the channel (0 for a delayed message: it gets one when due),
  /// errc::back_pressure (backlog full with overflow_policy::fail), errc::timeout,
  /// errc::refused (the receiver refused the channel for good), errc::invalid_argument (a bad
  /// stream name), or the journal's error.
  result<std::uint64_t> send(std::string_view stream, std::string_view body, const send_options& o = {});
  /// The same without waiting: `done` runs on the journal's writer thread once the message is
  /// durable (or at once, on the caller's thread, when refused). Never blocks: a full backlog
  /// is errc::back_pressure whatever the overflow policy.
  void send_async(std::string_view stream, std::string_view body, send_callback done, const send_options& o = {});
  std::future<result<std::uint64_t>> send_async(std::string_view stream, std::string_view body,
                                                const send_options& o = {});
  /// Sends `bodies` on the channel of `stream` as one unit: they take consecutive sequences and
  /// one journal commit, so after any crash either all are in the outbox or none is. `done`
  /// runs once, on the journal's writer thread, with the first one's sequence (the last is that
  /// plus bodies.size() - 1). The way to send many small messages fast: the cost per call is
  /// shared by the whole batch. Never blocks, like send_async().
  /// Errors: those of send_async(); errc::invalid_argument for an empty batch or a delivery
  /// time (delayed messages go one by one); errc::too_large for more than the journal's
  /// max_batch bodies.
  void send_batch(std::string_view stream, std::span<const std::string_view> bodies, send_callback done,
                  const send_options& o = {});
  std::future<result<std::uint64_t>> send_batch(std::string_view stream, std::span<const std::string_view> bodies,
                                                const send_options& o = {});
  /// The outbox pattern: appends `body` to the channel of `stream` inside the application's own
  /// transaction, so that its writes and the message commit together. Call flush() after the
  /// transaction has committed, so the sender sends at once (it also notices within its
  /// retransmit interval). Only inside journal::transact on this sender's journal.
  /// Returns: the message's sequence. Throws: what journal_txn::append throws;
  /// fabric::error(invalid_argument) for a bad stream name.
  std::uint64_t send(journal_txn& t, std::string_view stream, std::string_view body, const send_options& o = {});
  /// Tells the sender its outbox may have grown (after send(journal_txn&, ...)).
  void flush();

  void start();
  result<void> run();
  void request_stop() noexcept;
  void attach(reactor& r);
  bool detach(reactor& r) noexcept;
  bool stop(std::chrono::milliseconds timeout = std::chrono::seconds(5)) noexcept;
  bool running() const noexcept;
  std::exception_ptr failure() const noexcept;

  /// A snapshot of every channel. Throws: fabric::error(timeout) when the sender's thread does
  /// not answer within `timeout`.
  reliable_sender_stats stats(std::chrono::milliseconds timeout = std::chrono::seconds(5));
  /// The journal stream holding the outbox of `stream`.
  std::string outbox_stream(std::string_view stream) const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

// -------------------------------------------------------------------------------- receiver

/// When the receiver counts a message as taken (docs/reliable-channel.md, section 9).
enum class delivery_mode {
  /// The handler runs on the receiver's thread; the mark is committed after it returns, then the
  /// acknowledgement goes. A crash in between runs the handler again after the restart.
  at_least_once,
  /// The handler runs inside the journal transaction that writes the mark (on the journal's
  /// writer thread): its own writes through the journal_txn commit with the mark, or neither.
  effectively_once,
  /// The handler runs on the receiver's thread and the application acknowledges later, from any
  /// thread (reliable_receiver::acknowledge, cumulative per channel); the mark is committed once
  /// every message handed over is acknowledged. Messages are handed over in batches of at most
  /// max_batch (whatever had arrived), and the next batch comes once the whole of the last one is
  /// acknowledged: acknowledge what you are handed, or the receiver waits.
  manual,
};

/// One message as a handler sees it. The views are valid during the call only.
struct reliable_delivery {
  std::string_view sender;
  std::string_view stream;
  std::uint64_t seq = 0;
  std::string_view body;
  /// 1 for the first attempt.
  std::uint32_t attempt = 1;
};

/// An event where history was lost or replaced (docs/reliable-channel.md, section 7).
struct channel_notice {
  enum class kind {
    joined_late,         ///< first contact from a sender whose messages 1..to went to another receiver journal
    receiver_regressed,  ///< this journal is older than the sender's acknowledgements: from..to are sent again
    sender_replaced,     ///< the sender's journal was replaced; its old incarnation ended at `to`
  };
  kind what;
  std::string sender;
  std::string stream;
  std::uint64_t from = 0;
  std::uint64_t to = 0;
};

struct reliable_receiver_options {
  /// Where senders connect, e.g. "tcp://127.0.0.1:7100".
  std::string endpoint;
  delivery_mode mode = delivery_mode::at_least_once;
  /// The handler for at_least_once and manual: throw to reject the message (it is retried).
  std::function<void(const reliable_delivery&)> on_message{};
  /// The handler for effectively_once: write through `t`; throw to reject (nothing it wrote is
  /// kept, and the message is retried).
  std::function<void(const reliable_delivery&, journal_txn& t)> on_message_in{};
  /// Attempts per message before it is dead-lettered in the journal (stream "frc.failed", with
  /// the reason) and the channel moves on.
  std::uint32_t max_attempts = 5;
  /// Told of history lost or replaced; runs on the receiver's thread.
  std::function<void(const channel_notice&)> on_notice{};

  std::chrono::milliseconds heartbeat{1000};
  std::size_t liveness = 3;
  /// Messages each sender may send beyond what this receiver has taken, per channel: what it
  /// may hold in memory for the channel.
  std::uint32_t credit = 8192;
  /// The largest message body accepted.
  std::uint32_t max_message = std::uint32_t{1} << 20;
  /// Channels open at once, over every connection.
  std::size_t max_links = 4096;
  /// The most messages one commit takes.
  std::size_t max_batch = 4096;
  /// CURVE for the bound socket (curve_server), or none (the default).
  security_options security{};
  /// Where log lines go (events of section 7, journal failures); none by default.
  log_fn log{};
};

struct receiver_channel_info {
  std::string sender;
  std::string stream;
  bool connected = false;
  std::uint64_t taken = 0;       ///< durable: every message up to here is taken
  std::uint64_t received = 0;    ///< the highest sequence received in order
  std::uint64_t delivered = 0;   ///< messages handed to the application and committed
  std::uint64_t duplicates = 0;  ///< dropped as already received
  std::uint64_t gaps = 0;
  std::uint64_t skipped = 0;
  std::uint64_t expired = 0;
  std::uint64_t sender_resets = 0;
};

struct reliable_receiver_stats {
  std::uint64_t received = 0;
  std::uint64_t malformed = 0;  ///< dropped: did not parse, or over the frame bounds
  std::uint64_t protocol_errors = 0;
  std::uint64_t refused = 0;
  std::uint64_t commits = 0;
  std::uint64_t commit_failures = 0;
  std::uint64_t handler_failures = 0;  ///< attempts that threw
  std::uint64_t dead_lettered = 0;     ///< messages given up after max_attempts
  std::size_t connections = 0;
  std::vector<receiver_channel_info> channels;
};

class reliable_receiver {
 public:
  /// Binds and starts on its own thread. Throws: fabric::error(invalid_argument) for a missing
  /// endpoint or a handler missing for the mode; what bind throws; the journal's error.
  reliable_receiver(context& ctx, journal& j, reliable_receiver_options options);
  reliable_receiver(context& ctx, journal& j, reliable_receiver_options options, deferred_start_t);
  ~reliable_receiver();
  reliable_receiver(const reliable_receiver&) = delete;
  reliable_receiver& operator=(const reliable_receiver&) = delete;

  /// The endpoint bound, resolved (a wildcard port replaced by the port chosen).
  const std::string& endpoint() const noexcept;

  /// Manual mode: the application has processed every message of (sender, stream) up to `seq`.
  /// Cumulative; safe from any thread; an acknowledgement below an earlier one changes nothing.
  void acknowledge(std::string_view sender, std::string_view stream, std::uint64_t seq);

  void start();
  result<void> run();
  void request_stop() noexcept;
  void attach(reactor& r);
  bool detach(reactor& r) noexcept;
  bool stop(std::chrono::milliseconds timeout = std::chrono::seconds(5)) noexcept;
  bool running() const noexcept;
  std::exception_ptr failure() const noexcept;

  reliable_receiver_stats stats(std::chrono::milliseconds timeout = std::chrono::seconds(5));

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace fabric
