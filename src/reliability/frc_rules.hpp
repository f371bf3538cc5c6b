// FRC/1's handshake rules (docs/reliable-channel.md, section 7) as two pure functions: what a
// receiver answers to a HELLO given what its journal holds for that (sender, stream), and what a
// sender does with a WELCOME given what its own journal holds. Both sides' machines call these and
// nothing else decides, so every case where history was lost (a journal wiped, restored from an
// older copy, or two processes under one name) is handled in one place, by one stated rule, and
// tested as a table.
//
// Thread safety: pure functions of their arguments.
#pragma once

#include <cstdint>
#include <optional>

namespace fabric::frc {

/// What a HELLO says about the sender's side of one channel.
struct hello_facts {
  std::uint64_t sender_incarnation = 0;         ///< Is, non-zero
  std::uint64_t receiver_incarnation_seen = 0;  ///< Ir', 0 = never talked to a receiver
  std::uint64_t acked = 0;                      ///< A: everything <= A was acknowledged
  std::uint64_t last = 0;                       ///< L: the highest sequence assigned, >= A
};

/// What a receiver's journal holds for one (sender name, stream).
struct channel_record {
  std::uint64_t sender_incarnation = 0;  ///< Is0: the incarnation it takes from
  std::uint64_t taken = 0;               ///< T: every sequence <= T is taken
  friend bool operator==(const channel_record&, const channel_record&) = default;
};

/// Things worth telling the application (and counting): each is history that was lost or
/// replaced somewhere, never silently.
enum class hello_event : std::uint8_t {
  none = 0,
  /// First contact from a sender that had messages acknowledged by another receiver incarnation
  /// (this receiver's journal is new or was wiped): sequences 1 .. A are not delivered here.
  joined_late = 1U << 0,
  /// The sender last talked to another incarnation of this receiver.
  receiver_incarnation_changed = 1U << 1,
  /// This receiver has taken less than the sender holds as acknowledged: the receiver's journal
  /// was restored from an older copy; sequences `regressed_from .. regressed_to` are wanted again.
  receiver_regressed = 1U << 2,
  /// A new incarnation of the sender replaced the recorded one (its journal was wiped or reset);
  /// the old one ended at `archived->taken`.
  sender_replaced = 1U << 3,
};

constexpr hello_event operator|(hello_event a, hello_event b) noexcept {
  return static_cast<hello_event>(static_cast<std::uint8_t>(a) | static_cast<std::uint8_t>(b));
}
constexpr bool has(hello_event set, hello_event e) noexcept {
  return (static_cast<std::uint8_t>(set) & static_cast<std::uint8_t>(e)) != 0;
}

enum class hello_verdict : std::uint8_t {
  welcome,
  refuse_sender_regressed,  ///< REFUSE "sender-regressed": L < T from the same incarnation
  refuse_duplicate_sender,  ///< REFUSE "duplicate-sender": the recorded incarnation is live
};

/// The receiver's answer to a HELLO.
struct hello_decision {
  hello_verdict verdict = hello_verdict::welcome;
  /// WELCOME's `taken`: the sender resumes after it.
  std::uint64_t taken = 0;
  /// To write to the journal before the WELCOME goes out (in one transaction with `archived`).
  std::optional<channel_record> record;
  /// The replaced record, for the channel's history.
  std::optional<channel_record> archived;
  hello_event events = hello_event::none;
  /// With receiver_regressed: the range the sender is asked for again.
  std::uint64_t regressed_from = 0;
  std::uint64_t regressed_to = 0;
};

/// Section 7, receiver side. `self` is this receiver's incarnation; `recorded` what its journal
/// holds for the HELLO's (sender, stream); `recorded_incarnation_live` whether a link from the
/// recorded incarnation is open now. Preconditions (the codec enforces them): non-zero
/// incarnations, last >= acked.
constexpr hello_decision decide_hello(const hello_facts& h, std::uint64_t self,
                                      const std::optional<channel_record>& recorded,
                                      bool recorded_incarnation_live) noexcept {
  hello_decision d;
  if (h.receiver_incarnation_seen != 0 && h.receiver_incarnation_seen != self)
    d.events = d.events | hello_event::receiver_incarnation_changed;

  if (!recorded) {  // rule 1: first contact
    d.taken = h.acked;
    d.record = channel_record{h.sender_incarnation, h.acked};
    if (h.acked > 0) d.events = d.events | hello_event::joined_late;
    return d;
  }

  if (recorded->sender_incarnation != h.sender_incarnation) {  // rule 3: another incarnation
    if (recorded_incarnation_live) {
      d.verdict = hello_verdict::refuse_duplicate_sender;
      d.events = hello_event::none;
      return d;
    }
    d.taken = h.acked;
    d.record = channel_record{h.sender_incarnation, h.acked};
    d.archived = recorded;
    d.events = d.events | hello_event::sender_replaced;
    return d;
  }

  // Rule 2: the same incarnation.
  const std::uint64_t t = recorded->taken;
  if (h.last < t) {  // the sender would reuse sequences already taken
    d.verdict = hello_verdict::refuse_sender_regressed;
    d.events = hello_event::none;
    return d;
  }
  d.taken = t;
  if (t < h.acked) {
    d.events = d.events | hello_event::receiver_regressed;
    d.regressed_from = t + 1;
    d.regressed_to = h.acked;
  }
  return d;
}

/// The sender's reading of a WELCOME.
struct welcome_decision {
  /// False: the WELCOME is a protocol error (taken above the sender's last sequence); the
  /// sender drops the link and counts it.
  bool valid = true;
  /// The first sequence to send (taken + 1, or later where a SKIP covers what it no longer has).
  std::uint64_t resume_from = 1;
  /// Sequences asked for again that the sender no longer holds: to SKIP with the reason
  /// "acknowledged before the receiver's journal was restored" (none when skip_from > skip_to).
  std::uint64_t skip_from = 1;
  std::uint64_t skip_to = 0;
  /// The new acknowledged cursor: never moves back, whatever the receiver says.
  std::uint64_t acked = 0;
  /// The receiver's incarnation differs from the one the channel last talked to (not on first
  /// contact): count and report it.
  bool receiver_changed = false;
  /// The receiver asked for acknowledged sequences again (its journal was restored).
  bool receiver_regressed = false;
};

/// Section 7, sender side. `receiver_incarnation` and `taken` come from the WELCOME;
/// `seen` is the receiver incarnation recorded for this channel (0 = none), `acked` and `last`
/// the sender's cursor and last sequence, and `oldest_held` the lowest sequence its outbox still
/// holds (acked + 1 when retention keeps nothing acknowledged; last + 1 when it is empty).
constexpr welcome_decision decide_welcome(std::uint64_t receiver_incarnation, std::uint64_t taken,
                                          std::uint64_t seen, std::uint64_t acked,
                                          std::uint64_t last, std::uint64_t oldest_held) noexcept {
  welcome_decision d;
  d.receiver_changed = seen != 0 && seen != receiver_incarnation;
  if (taken > last) {
    d.valid = false;
    return d;
  }
  d.acked = taken > acked ? taken : acked;
  d.resume_from = taken + 1;
  if (taken < acked) {
    d.receiver_regressed = true;
    if (oldest_held > d.resume_from) {  // part of what is wanted again was trimmed
      d.skip_from = d.resume_from;
      d.skip_to = oldest_held - 1 < acked ? oldest_held - 1 : acked;
      d.resume_from = d.skip_to + 1;
    }
  }
  return d;
}

}  // namespace fabric::frc
