// The FRC/1 sender (docs/reliable-channel.md): one connection to one receiver, carrying any
// number of channels (streams), each a link of its own. Pure, in the vocabulary of
// core/machine.hpp: it is told what arrived, what the journal finished and what time it is, and
// acts through its sink (the DEALER) and its store (the outbox in the sender's journal).
//
// Per channel:
//
//   closed --connection opened--> greeting --WELCOME--> open --REFUSE (final)--> failed
//     ^                             |   ^                 |
//     |   connection lost            |   `--GOODBYE link--'  (the receiver forgot the link)
//     `------------------------------+--REFUSE (retry)--> waiting --back-off--> greeting
//
// The outbox is the truth: nothing is kept in memory beyond one DATA being built. The machine
// reads the journal from the next sequence to send, within the receiver's credit and its own
// window, and reads it again to retransmit (after a NACK, a WELCOME, or retransmit_interval
// without progress). A sequence missing from the outbox was withdrawn (dead-lettered) and is
// SKIPped; a message that expired before it was sent, or is larger than the receiver takes, is
// withdrawn first (store.withdraw, durable) and SKIPped once on_withdrawn() says so.
//
// Thread safety: none; one thread drives a machine.
#pragma once

#include "core/liveness.hpp"
#include "core/machine.hpp"
#include "reliability/frc.hpp"

#include <fabric/message.hpp>
#include <fabric/result.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace fabric::frc {

/// One outbox record as the store reads it back.
struct outbox_record {
  std::uint64_t seq = 0;
  std::int64_t expires_ns = 0;  ///< wall clock, ns since the Unix epoch; 0 = never
  frame body;
};

/// An outbox record's payload in the journal: expires-ns (8 octets, big-endian, 0 = never) then
/// the body.
std::string encode_outbox(std::int64_t expires_ns, std::string_view body);
/// Writes the same into `out` (cleared first).
void encode_outbox(std::string& out, std::int64_t expires_ns, std::string_view body);
inline constexpr std::size_t outbox_overhead = 8;
/// Splits a stored payload. Returns false for a payload shorter than the header.
bool decode_outbox(std::string_view payload, std::int64_t& expires_ns, std::string_view& body) noexcept;

/// The reason a sender's dead letter carries for a sequence the receiver reported expired.
inline constexpr std::string_view expired_at_receiver_reason = "expired at receiver";

/// The sender's side of the journal, as the machine needs it. The driver implements it over
/// fabric::journal; tests over memory.
class sender_store {
 public:
  virtual ~sender_store() = default;
  /// Reads the records of channel `ch` with sequences `from .. to`, in order, appending them to
  /// `out`, and stops early once (after the first record) they hold about `max_bytes` of body.
  /// A sequence of the range missing from the outbox (withdrawn) is simply absent.
  /// Returns: the last sequence the read covers (`to`, or the last record returned when it
  /// stopped early: anything absent up to there is known to be withdrawn), or the journal's
  /// error (the machine tries again later).
  virtual result<std::uint64_t> read(std::size_t ch, std::uint64_t from, std::uint64_t to, std::size_t max_bytes,
                                     std::vector<outbox_record>& out) = 0;
  /// The lowest sequence of channel `ch` the outbox still holds (last + 1 when it is empty).
  virtual std::uint64_t oldest_held(std::size_t ch) = 0;
  /// Records, without waiting, that the receiver has taken everything up to `acked` and that
  /// the sequences `expired` (each above the previous call's, each <= acked) expired there: they
  /// are dead-lettered in the same transaction that moves the acknowledged cursor, so the cursor
  /// never passes an expiry that was not recorded.
  virtual void acknowledge(std::size_t ch, std::uint64_t acked, std::span<const std::uint64_t> expired) = 0;
  /// Dead-letters sequences `first .. last` of channel `ch` with `reason`; once that is durable
  /// the driver calls sender_machine::on_withdrawn(ch, last).
  virtual void withdraw(std::size_t ch, std::uint64_t first, std::uint64_t last, std::string_view reason) = 0;
  /// Records, without waiting, the receiver incarnation channel `ch` talks to now.
  virtual void receiver_seen(std::size_t ch, std::uint64_t incarnation) = 0;
  /// The wall clock, ns since the Unix epoch, for time to live.
  virtual std::int64_t wall_ns() const = 0;
};

/// A sender channel's state, as its stats report it.
enum class link_state : std::uint8_t {
  closed,    ///< no connection, or waiting for one
  greeting,  ///< HELLO sent, no WELCOME yet
  open,      ///< welcomed: sending
  waiting,   ///< refused for a while (duplicate-sender, too-many-links): HELLO again later
  failed,    ///< refused for good; the refusal says why
};
std::string_view to_string(link_state s) noexcept;

struct sender_settings {
  /// The sender's name (1..255 octets), stable across restarts.
  std::string name;
  /// The incarnation of the sender's journal (non-zero).
  std::uint64_t incarnation = 0;
  std::chrono::milliseconds heartbeat{1000};
  std::size_t liveness = 3;
  std::chrono::milliseconds reconnect_initial{100};
  std::chrono::milliseconds reconnect_max{10000};
  /// With messages in flight and no acknowledgement for this long, send again from acked + 1.
  std::chrono::milliseconds retransmit_interval{2000};
  /// The most messages sent and not yet acknowledged per channel, whatever credit the receiver
  /// grants.
  std::uint64_t max_in_flight = 65536;
  /// About the most body bytes in one DATA (it always holds at least one message).
  std::size_t max_data_bytes = std::size_t{1} << 20;
};

/// Where a channel starts, from the sender's journal.
struct channel_start {
  std::string stream;
  std::uint64_t acked = 0;          ///< the acknowledged cursor
  std::uint64_t last = 0;           ///< the outbox's last sequence
  std::uint64_t receiver_seen = 0;  ///< the receiver incarnation last talked to, 0 = none
};

struct sender_channel_stats {
  std::string stream;
  link_state state = link_state::closed;
  std::uint64_t last = 0;         ///< the highest sequence in the outbox
  std::uint64_t acked = 0;        ///< everything <= acked is taken by the receiver
  std::uint64_t sent = 0;         ///< the highest sequence sent on the current connection
  std::uint64_t in_flight = 0;    ///< sent, not acknowledged
  std::uint64_t backlog = 0;      ///< in the outbox, not acknowledged (last - acked)
  std::uint64_t credit_to = 0;    ///< the receiver allows sequences up to this one
  std::uint64_t messages_sent = 0;     ///< DATA entries sent, retransmissions included
  std::uint64_t retransmitted = 0;     ///< DATA entries sent again
  std::uint64_t skipped = 0;           ///< sequences SKIPped
  std::uint64_t withdrawn = 0;         ///< dead-lettered here before sending (expired, too large)
  std::uint64_t expired_at_receiver = 0;  ///< dead-lettered on the receiver's report
  std::uint64_t welcomes = 0;
  std::uint64_t refusals = 0;
  std::uint64_t receiver_resets = 0;       ///< the receiver's incarnation changed
  std::uint64_t receiver_regressions = 0;  ///< the receiver asked for acknowledged messages again
  std::uint64_t store_errors = 0;          ///< outbox reads that failed
  std::uint64_t receiver_incarnation = 0;
  std::string refusal;  ///< "code: reason" of the last refusal
};

struct sender_stats {
  std::uint64_t received = 0;        ///< messages from the receiver
  std::uint64_t malformed = 0;       ///< dropped: did not parse
  std::uint64_t protocol_errors = 0; ///< parsed but broke the rules (unknown link, ACK above last, ...)
  std::uint64_t ignored = 0;         ///< stale ACKs and NACKs, answered by nothing
  std::uint64_t connections = 0;     ///< connections opened
  std::uint64_t connections_lost = 0;
  std::uint64_t heartbeats_sent = 0;
  std::uint64_t send_failures = 0;   ///< DATA the socket would not take at once
};

class sender_machine {
 public:
  /// The sink sends on port::main (the DEALER) and opens and closes its connection.
  /// Throws: fabric::error(invalid_argument) for a bad name, a zero incarnation, or settings the
  /// liveness machine refuses.
  sender_machine(const sender_settings& s, detail::machine_sink& sink, sender_store& store);
  sender_machine(const sender_machine&) = delete;
  sender_machine& operator=(const sender_machine&) = delete;

  /// Adds a channel; it opens with the connection. Returns its index (its link is index + 1).
  /// Throws: fabric::error(invalid_argument) for a bad stream name or acked > last.
  std::size_t add_channel(const channel_start& start, detail::time_point now);
  std::size_t channels() const noexcept { return channels_.size(); }

  // --- what happened ---

  /// The outbox of `ch` now holds sequences up to `last` (durable appends completed).
  void on_appended(std::size_t ch, std::uint64_t last, detail::time_point now);
  /// What store.withdraw(ch, ..., last, ...) asked for is durable.
  void on_withdrawn(std::size_t ch, std::uint64_t last, detail::time_point now);
  /// A message from the receiver.
  void on_message(message&& m, detail::time_point now);
  void on_tick(detail::time_point now);
  detail::time_point next_tick() const noexcept;

  // --- introspection ---

  sender_channel_stats channel_stats(std::size_t ch) const;
  const sender_stats& stats() const noexcept { return stats_; }
  link_state state(std::size_t ch) const noexcept { return channels_[ch].state; }
  std::uint64_t acked(std::size_t ch) const noexcept { return channels_[ch].acked; }
  std::uint64_t last(std::size_t ch) const noexcept { return channels_[ch].last; }
  bool connected() const noexcept { return liveness_.is_open(); }

 private:
  struct channel {
    std::string stream;
    std::uint32_t link = 0;
    link_state state = link_state::closed;
    std::uint64_t acked = 0;
    std::uint64_t last = 0;
    std::uint64_t sent = 0;         // highest sequence sent (or skipped) on this connection
    std::uint64_t high = 0;         // highest sequence ever sent, to count retransmissions
    std::uint64_t credit_to = 0;    // highest sequence the receiver allows
    std::uint64_t receiver_seen = 0;
    std::uint32_t max_message = 0;
    std::uint64_t expiries_upto = 0;  // expired sequences handed to the store up to here
    std::uint64_t withdrawing = 0;    // > 0: waiting for the withdrawal up to here
    std::uint64_t withdraw_from = 0;
    std::string withdraw_reason;
    detail::time_point hello_deadline = detail::time_point::max();
    detail::time_point retry_at = detail::time_point::max();
    detail::time_point retransmit_at = detail::time_point::max();
    detail::time_point resend_at = detail::time_point::max();  // the socket was full
    std::chrono::milliseconds backoff{0};
    sender_channel_stats counts;
  };

  // The sink the liveness machine drives: opening greets every channel, closing resets them.
  class link_sink final : public detail::machine_sink {
   public:
    explicit link_sink(sender_machine& owner) noexcept : owner_(owner) {}
    result<void> send(detail::port to, message&& m) override;
    void close(detail::port which) noexcept override;
    result<void> open(detail::port which) override;

   private:
    sender_machine& owner_;
  };

  void greet(channel& c, detail::time_point now);
  void reset_all(detail::time_point now) noexcept;
  void pump(channel& c, detail::time_point now);
  bool send_skip(channel& c, std::uint64_t first, std::uint64_t last, std::string_view reason,
                 detail::time_point now);
  bool transmit(message& m, detail::time_point now);
  void withdraw(channel& c, std::uint64_t first, std::uint64_t last, std::string reason);
  void on_welcome(channel& c, const welcome_fields& w, detail::time_point now);
  void on_ack(channel& c, const ack_view& a, detail::time_point now);
  void on_nack(channel& c, std::uint64_t expected, detail::time_point now);
  void on_refuse(channel& c, const refuse_fields& r, detail::time_point now);
  void protocol_error() noexcept { ++stats_.protocol_errors; }
  channel* find(std::uint32_t link) noexcept;
  detail::time_point channel_tick(const channel& c) const noexcept;

  sender_settings s_;
  detail::machine_sink& sink_;
  sender_store& store_;
  link_sink link_sink_;
  detail::liveness liveness_;
  std::vector<channel> channels_;
  sender_stats stats_;
  detail::time_point now_{};
  message out_;                        // reused for every command sent
  std::vector<outbox_record> records_;  // reused for every outbox read
  std::vector<std::uint64_t> expired_;  // reused for every ACK
};

}  // namespace fabric::frc
