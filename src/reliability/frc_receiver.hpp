// The FRC/1 receiver (docs/reliable-channel.md): one ROUTER that any number of senders connect
// to, each (sender name, stream) an ordered channel of its own. Pure, in the vocabulary of
// core/machine.hpp: it is told what arrived, what the journal made durable and what time it is,
// and acts through its sink (the ROUTER) and its store (the receiver's journal).
//
// The receiver accepts each channel's next sequence only, and holds what it accepted in memory
// (at most `credit` messages per channel) until a commit takes it. One commit is in flight at a
// time; what arrives meanwhile waits for the next, so under load one commit (one fsync) takes
// many messages, and idle, a message is committed at once. The store delivers each message of a
// commit to the application (before the commit, or inside its transaction) and writes the
// channel's mark in it; only once the commit is durable does the machine send the ACK. A HELLO
// whose answer changes the journal (first contact, a new sender incarnation) is answered after
// the commit that records it; HELLOs that arrive while a commit is in flight wait for it, so a
// handshake is always decided on durable state.
//
// Thread safety: none; one thread drives a machine.
#pragma once

#include "core/machine.hpp"
#include "reliability/frc.hpp"
#include "reliability/frc_rules.hpp"

#include <fabric/message.hpp>
#include <fabric/result.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace fabric::frc {

/// The journal key of a channel at the receiver: one octet of the sender name's length, the
/// sender name, then the stream (at most 511 octets, the journal's key bound).
std::string channel_key(std::string_view sender, std::string_view stream);
/// Splits a channel key. Returns false for a key channel_key() could not have made.
bool split_channel_key(std::string_view key, std::string_view& sender, std::string_view& stream) noexcept;

/// A channel record's value in the journal: sender-inc (8 octets) then taken (8 octets).
std::string encode_record(const channel_record& r);
bool decode_record(std::string_view value, channel_record& r) noexcept;
/// A list of kept expired sequences in the journal: 8 octets each, increasing.
std::string encode_seqs(const std::vector<std::uint64_t>& seqs);
bool decode_seqs(std::string_view value, std::vector<std::uint64_t>& seqs);

/// What one entry of a commit is.
enum class entry_kind : std::uint8_t {
  deliver,  ///< hand `body` to the application
  expired,  ///< its time to live ran out before its turn: not delivered, recorded as expired
  skipped,  ///< `seq .. last` withdrawn by the sender: nothing to deliver
};

struct commit_entry {
  entry_kind kind = entry_kind::deliver;
  std::uint64_t seq = 0;
  std::uint64_t last = 0;  ///< skipped: the range's last sequence; otherwise == seq
  frame body;              ///< deliver only
  std::string reason;      ///< skipped: the sender's reason
};

/// One channel's part of a commit.
struct commit_update {
  std::string key;  ///< channel_key(sender, stream)
  std::string sender;
  std::string stream;
  /// The record to write (the mark): every entry below is taken by it.
  channel_record record;
  /// A replaced record, to keep in the channel's history (rule 3 of section 7).
  std::optional<channel_record> archived;
  /// The entries, in sequence order, consecutive from the previous mark + 1 to record.taken.
  std::vector<commit_entry> entries;
  /// When set, the channel's kept expired sequences are replaced by these.
  std::optional<std::vector<std::uint64_t>> expired_kept;
};

/// Everything one journal transaction writes.
struct commit_batch {
  std::uint64_t id = 0;
  std::vector<commit_update> updates;
  std::size_t messages() const noexcept;
};

/// Things the application is told about (and the stats count), each history lost or replaced
/// somewhere (section 7), never silently.
struct channel_event {
  std::string sender;
  std::string stream;
  hello_event what = hello_event::none;  ///< one event
  std::uint64_t from = 0;  ///< joined_late: 1; receiver_regressed: the first sequence wanted again
  std::uint64_t to = 0;    ///< joined_late: the sender's acked; receiver_regressed: its acked;
                           ///< sender_replaced: where the old incarnation ended
  std::uint64_t old_incarnation = 0;  ///< sender_replaced
  std::uint64_t new_incarnation = 0;
};

/// The receiver's side of the journal, as the machine needs it.
class receiver_store {
 public:
  virtual ~receiver_store() = default;
  /// The record of channel `key`, as last committed.
  virtual result<std::optional<channel_record>> load(std::string_view key) = 0;
  /// The expired sequences kept for channel `key`, increasing.
  virtual result<std::vector<std::uint64_t>> load_expired(std::string_view key) = 0;
  /// Delivers and commits `batch`, without waiting; once the commit is durable (or failed) the
  /// driver calls receiver_machine::on_committed(batch.id, outcome).
  virtual void commit(commit_batch&& batch) = 0;
  /// Reports an event to the application.
  virtual void report(const channel_event& e) = 0;
};

struct receiver_settings {
  /// The incarnation of the receiver's journal (non-zero).
  std::uint64_t incarnation = 0;
  std::chrono::milliseconds heartbeat{1000};
  std::size_t liveness = 3;
  /// Messages a sender may have in flight per channel beyond what was taken.
  std::uint32_t credit = 8192;
  /// The largest body accepted.
  std::uint32_t max_message = std::uint32_t{1} << 20;
  /// Channels open at once, over every connection.
  std::size_t max_links = 4096;
  /// The most messages one commit takes.
  std::size_t max_batch = 4096;
  /// The longest between two NACKs of one channel.
  std::chrono::milliseconds nack_interval{100};
  /// Expired sequences kept per channel until the sender has had the report.
  std::size_t max_expired_kept = 100'000;
  /// Protocol errors a connection may make within one heartbeat interval before it is closed.
  std::size_t max_protocol_errors = 16;
};

struct receiver_channel_stats {
  std::string sender;
  std::string stream;
  std::uint64_t sender_incarnation = 0;
  std::uint64_t taken = 0;       ///< durable: everything <= taken is taken
  std::uint64_t accepted = 0;    ///< received in order (taken, or waiting for a commit)
  std::uint64_t pending = 0;     ///< accepted, waiting for a commit to take them (not in the one in flight)
  bool linked = false;           ///< a sender is connected on it
  std::uint64_t delivered = 0;   ///< messages committed for delivery
  std::uint64_t duplicates = 0;  ///< entries dropped as already accepted
  std::uint64_t gaps = 0;        ///< DATA or SKIP dropped after a gap
  std::uint64_t skipped = 0;     ///< sequences withdrawn by the sender
  std::uint64_t expired = 0;     ///< messages not delivered: their time to live ran out
  std::uint64_t expiry_reports_dropped = 0;
  std::uint64_t welcomes = 0;
  std::uint64_t sender_resets = 0;
  std::uint64_t joined_late = 0;
  std::uint64_t regressions = 0;
};

struct receiver_stats {
  std::uint64_t received = 0;
  std::uint64_t malformed = 0;        ///< did not parse
  std::uint64_t protocol_errors = 0;  ///< parsed but broke the rules
  std::uint64_t refused = 0;          ///< REFUSEs sent
  std::uint64_t unknown_links = 0;    ///< DATA or SKIP on a link nobody opened: GOODBYE sent
  std::uint64_t commits = 0;
  std::uint64_t commit_failures = 0;
  std::uint64_t store_errors = 0;     ///< loads that failed (the HELLO is dropped; the sender greets again)
  std::uint64_t peers_lost = 0;       ///< connections declared dead or closed for errors
  std::uint64_t acks_sent = 0;
  std::uint64_t nacks_sent = 0;
  std::uint64_t heartbeats_sent = 0;
  std::uint64_t send_failures = 0;
  std::size_t peers = 0;              ///< connections known now
  std::size_t links = 0;              ///< channels open now
};

class receiver_machine {
 public:
  /// Throws: fabric::error(invalid_argument) for a zero incarnation or settings out of range.
  receiver_machine(const receiver_settings& s, detail::machine_sink& sink, receiver_store& store);
  receiver_machine(const receiver_machine&) = delete;
  receiver_machine& operator=(const receiver_machine&) = delete;

  void on_message(message&& m, detail::time_point now);
  /// The commit of batch `id` is durable (success) or failed.
  void on_committed(std::uint64_t id, result<void> outcome, detail::time_point now);
  void on_tick(detail::time_point now);
  detail::time_point next_tick() const noexcept;

  const receiver_stats& stats() const noexcept { return stats_; }
  /// Every channel known in memory now (linked, or with messages not yet committed).
  std::vector<receiver_channel_stats> channel_stats() const;
  bool committing() const noexcept { return in_flight_.has_value(); }

 private:
  struct pending_entry {
    entry_kind kind;
    std::uint64_t seq;
    std::uint64_t last;
    detail::time_point expires_at;  // max: never
    frame body;
    std::string reason;
  };
  struct channel {
    std::string key;
    std::string sender;
    std::string stream;
    channel_record durable;      // as last committed (or loaded)
    bool recorded = false;       // durable exists in the journal
    std::uint64_t accepted = 0;  // the highest sequence accepted
    std::string peer;            // the link's connection; empty when unlinked
    std::uint32_t link = 0;
    std::deque<pending_entry> pending;
    std::vector<std::uint64_t> expired_kept;
    bool expired_dirty = false;
    std::optional<channel_record> record_to_write;  // a handshake's record, not yet committed
    std::optional<channel_record> archive_to_write;
    bool welcome_waiting = false;  // WELCOME goes out after the next commit
    std::uint64_t hello_acked = 0;
    detail::time_point nack_at{};
    receiver_channel_stats counts;
  };
  struct peer {
    detail::time_point last_heard{};
    detail::time_point heartbeat_at{};
    std::chrono::milliseconds their_heartbeat{0};
    std::map<std::uint32_t, std::string> links;  // link -> channel key
    std::size_t errors = 0;
    detail::time_point errors_since{};
  };
  struct in_flight_commit {
    std::uint64_t id;
    // Per channel key: the record the commit writes, the sequences it expired, whether a
    // WELCOME waits for it.
    struct part {
      std::string key;
      channel_record record;
      std::vector<std::uint64_t> expired;
      bool welcome = false;
      std::uint64_t delivered = 0;
      std::uint64_t skipped = 0;
      bool expired_written = false;  // the commit rewrites the channel's kept expiries
    };
    std::vector<part> parts;
  };

  void on_hello(const parsed& p, detail::time_point now);
  void on_entries(peer& who, const parsed& p, detail::time_point now);
  void welcome(channel& c, detail::time_point now);
  void ack(channel& c, std::span<const std::uint64_t> expired);
  void nack(channel& c, detail::time_point now);
  void send_to(std::string_view peer_id, detail::time_point now);
  void refuse(std::string_view peer_id, std::uint32_t link, std::string_view code, std::string_view reason,
              detail::time_point now);
  void protocol_error(std::string_view peer_id, detail::time_point now);
  void forget_peer(const std::string& peer_id);
  void unlink(channel& c);
  void maybe_commit(detail::time_point now);
  void expire(channel& c, std::uint64_t seq, std::vector<std::uint64_t>& into);
  void retire_if_idle(const std::string& key);
  std::size_t links() const noexcept;
  channel* linked_channel(std::string_view peer_id, std::uint32_t link) noexcept;

  receiver_settings s_;
  detail::machine_sink& sink_;
  receiver_store& store_;
  std::unordered_map<std::string, channel> channels_;
  std::unordered_map<std::string, peer> peers_;
  std::vector<std::string> dirty_;         // channels with something to commit, in arrival order
  std::vector<message> held_hellos_;       // HELLOs waiting for the commit in flight
  std::optional<in_flight_commit> in_flight_;
  std::uint64_t next_batch_ = 1;
  std::size_t link_count_ = 0;
  receiver_stats stats_;
  detail::time_point now_{};
  message out_;
};

}  // namespace fabric::frc
