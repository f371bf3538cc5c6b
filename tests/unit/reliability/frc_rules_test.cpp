// FRC/1's handshake rules (docs/reliable-channel.md, section 7): every case of a journal wiped,
// restored from an older copy, or shared by two processes, on both sides.
#include "reliability/frc_rules.hpp"

#include <gtest/gtest.h>

#include <optional>

namespace fabric::frc {
namespace {

constexpr std::uint64_t receiver = 0xA1;        // this receiver's incarnation
constexpr std::uint64_t other_receiver = 0xA2;  // an earlier one, whose journal is gone
constexpr std::uint64_t sender = 0xB1;
constexpr std::uint64_t new_sender = 0xB2;

hello_facts hello(std::uint64_t seen, std::uint64_t acked, std::uint64_t last, std::uint64_t inc = sender) {
  return {.sender_incarnation = inc, .receiver_incarnation_seen = seen, .acked = acked, .last = last};
}

// --- receiver side ---

TEST(FrcHelloRulesTest, FirstContactOfAFreshSenderStartsAtOne) {
  const auto d = decide_hello(hello(0, 0, 0), receiver, std::nullopt, false);
  EXPECT_EQ(d.verdict, hello_verdict::welcome);
  EXPECT_EQ(d.taken, 0U);
  EXPECT_EQ(d.record, (channel_record{sender, 0}));
  EXPECT_FALSE(d.archived);
  EXPECT_EQ(d.events, hello_event::none);
}

TEST(FrcHelloRulesTest, FirstContactWithBacklogDeliversEverythingUnacknowledged) {
  // A sender that queued 500 messages before the receiver ever answered: all of them arrive.
  const auto d = decide_hello(hello(0, 0, 500), receiver, std::nullopt, false);
  EXPECT_EQ(d.taken, 0U);
  EXPECT_EQ(d.events, hello_event::none);
}

TEST(FrcHelloRulesTest, AWipedReceiverJoinsAfterTheAcknowledgedHistoryAndSaysSo) {
  // The receiver's journal is new; the sender had 1..40 acknowledged by the one before it.
  const auto d = decide_hello(hello(other_receiver, 40, 45), receiver, std::nullopt, false);
  EXPECT_EQ(d.verdict, hello_verdict::welcome);
  EXPECT_EQ(d.taken, 40U);  // 41..45 still arrive; 1..40 are not delivered again
  EXPECT_EQ(d.record, (channel_record{sender, 40}));
  EXPECT_TRUE(has(d.events, hello_event::joined_late));
  EXPECT_TRUE(has(d.events, hello_event::receiver_incarnation_changed));
}

TEST(FrcHelloRulesTest, TheNormalCaseResumesAfterWhatWasTaken) {
  const channel_record rec{sender, 30};
  for (std::uint64_t acked : {0U, 10U, 30U}) {
    const auto d = decide_hello(hello(receiver, acked, 50), receiver, rec, false);
    EXPECT_EQ(d.verdict, hello_verdict::welcome);
    EXPECT_EQ(d.taken, 30U);
    EXPECT_FALSE(d.record) << "nothing to write for the same incarnation";
    EXPECT_EQ(d.events, hello_event::none);
  }
}

TEST(FrcHelloRulesTest, ARestoredReceiverAsksForTheAcknowledgedRangeAgain) {
  // The receiver's journal went back to an older copy: it has taken 30, the sender holds 50 as
  // acknowledged. The copy's application state went back too, so 31..50 are wanted again.
  const auto d = decide_hello(hello(receiver, 50, 60), receiver, channel_record{sender, 30}, false);
  EXPECT_EQ(d.verdict, hello_verdict::welcome);
  EXPECT_EQ(d.taken, 30U);
  EXPECT_TRUE(has(d.events, hello_event::receiver_regressed));
  EXPECT_EQ(d.regressed_from, 31U);
  EXPECT_EQ(d.regressed_to, 50U);
}

TEST(FrcHelloRulesTest, ARestoredSenderThatWouldReuseSequencesIsRefused) {
  // The sender's journal went back to a copy that had assigned only 20; the receiver took 30
  // from it. Its next messages would be numbered 21.. and dropped as duplicates: refuse.
  const auto d = decide_hello(hello(receiver, 15, 20), receiver, channel_record{sender, 30}, false);
  EXPECT_EQ(d.verdict, hello_verdict::refuse_sender_regressed);
  EXPECT_FALSE(d.record);
}

TEST(FrcHelloRulesTest, ASenderWhoseLastIsExactlyTakenIsNotRegressed) {
  const auto d = decide_hello(hello(receiver, 30, 30), receiver, channel_record{sender, 30}, false);
  EXPECT_EQ(d.verdict, hello_verdict::welcome);
  EXPECT_EQ(d.taken, 30U);
}

TEST(FrcHelloRulesTest, ANewSenderIncarnationReplacesTheOldOneAndIsReported) {
  const channel_record old{sender, 70};
  const auto d = decide_hello(hello(receiver, 0, 3, new_sender), receiver, old, false);
  EXPECT_EQ(d.verdict, hello_verdict::welcome);
  EXPECT_EQ(d.taken, 0U);  // its message 1 is new, not a duplicate of the old incarnation's 1
  EXPECT_EQ(d.record, (channel_record{new_sender, 0}));
  EXPECT_EQ(d.archived, old);
  EXPECT_TRUE(has(d.events, hello_event::sender_replaced));
}

TEST(FrcHelloRulesTest, TwoLiveProcessesUnderOneNameAreRefused) {
  const auto d = decide_hello(hello(receiver, 0, 3, new_sender), receiver, channel_record{sender, 70}, true);
  EXPECT_EQ(d.verdict, hello_verdict::refuse_duplicate_sender);
  EXPECT_FALSE(d.record);
  EXPECT_FALSE(d.archived);
}

TEST(FrcHelloRulesTest, TheRulesAreUsableAtCompileTime) {
  constexpr auto d = decide_hello(hello_facts{sender, 0, 0, 0}, receiver, std::nullopt, false);
  static_assert(d.verdict == hello_verdict::welcome && d.taken == 0);
  SUCCEED();
}

// --- sender side ---

TEST(FrcWelcomeRulesTest, ResumesAfterTakenAndMovesTheCursorForward) {
  const auto d = decide_welcome(receiver, 42, receiver, 40, 50, 41);
  EXPECT_TRUE(d.valid);
  EXPECT_EQ(d.resume_from, 43U);
  EXPECT_EQ(d.acked, 42U);
  EXPECT_GT(d.skip_from, d.skip_to);  // nothing to skip
  EXPECT_FALSE(d.receiver_changed);
  EXPECT_FALSE(d.receiver_regressed);
}

TEST(FrcWelcomeRulesTest, ATakenAboveLastIsAProtocolError) {
  EXPECT_FALSE(decide_welcome(receiver, 51, receiver, 40, 50, 41).valid);
}

TEST(FrcWelcomeRulesTest, FirstContactIsNotAReceiverChange) {
  EXPECT_FALSE(decide_welcome(receiver, 0, 0, 0, 5, 1).receiver_changed);
  EXPECT_TRUE(decide_welcome(receiver, 40, other_receiver, 40, 45, 41).receiver_changed);
}

TEST(FrcWelcomeRulesTest, ARegressedReceiverGetsWhatIsStillHeldAndASkipForTheRest) {
  // Acknowledged through 50; retention still holds 41..; the receiver has taken only 30.
  const auto d = decide_welcome(receiver, 30, receiver, 50, 60, 41);
  EXPECT_TRUE(d.receiver_regressed);
  EXPECT_EQ(d.skip_from, 31U);
  EXPECT_EQ(d.skip_to, 40U);
  EXPECT_EQ(d.resume_from, 41U);
  EXPECT_EQ(d.acked, 50U) << "the cursor never moves back";
}

TEST(FrcWelcomeRulesTest, ARegressedReceiverGetsEverythingWhenRetentionKeptIt) {
  const auto d = decide_welcome(receiver, 30, receiver, 50, 60, 1);
  EXPECT_TRUE(d.receiver_regressed);
  EXPECT_GT(d.skip_from, d.skip_to);
  EXPECT_EQ(d.resume_from, 31U);
}

TEST(FrcWelcomeRulesTest, ARegressedReceiverWithNothingHeldSkipsExactlyTheAcknowledgedRange) {
  // Everything acknowledged and trimmed; the outbox is empty (oldest_held = last + 1).
  const auto d = decide_welcome(receiver, 30, receiver, 50, 50, 51);
  EXPECT_EQ(d.skip_from, 31U);
  EXPECT_EQ(d.skip_to, 50U);
  EXPECT_EQ(d.resume_from, 51U);
}

}  // namespace
}  // namespace fabric::frc
