// Tests of the journal's time-driven features: TTL expiry, scheduled (delayed) records, and the
// dead-letter queue. Time-driven tests run on a fake clock: no test waits for real time to pass.
#include <fabric/journal.hpp>

#include "support/fake_clock.hpp"
#include "support/support.hpp"

#include <gtest/gtest.h>

#include <string>

namespace {

using fabric::durability;
using fabric::journal;
using fabric::journal_options;
using fabric::journal_txn;
using fabric::testing::after_idle_pass;
using fabric::testing::fake_clock;
using fabric::testing::fast_journal_options;
using fabric::testing::temp_dir;
using namespace std::chrono_literals;

std::vector<std::string> payloads(const journal& j, const std::string& stream) {
  std::vector<std::string> out;
  auto chunk = j.read(stream, 1, 1000);
  if (chunk)
    for (const auto& r : chunk->records) out.push_back(r.payload);
  return out;
}

TEST(JournalTtlTest, ExpiredRecordsAreRemovedByTheNextCommit) {
  temp_dir dir;
  fake_clock clock;
  auto j = journal::open(dir.path(), fast_journal_options(clock));
  ASSERT_TRUE(j.append_wait("s", "short-lived", 1ns));
  ASSERT_TRUE(j.append_wait("s", "kept", 1h));
  clock.advance(1ms);
  ASSERT_TRUE(j.append_wait("s", "plain"));  // this commit is past the first record's expiry
  EXPECT_EQ(payloads(j, "s"), (std::vector<std::string>{"kept", "plain"}));
  EXPECT_EQ(j.stats().expired, 1u);
  EXPECT_EQ(j.append_wait("s", "next").value(), 4u);  // expiry does not reuse sequence numbers
}

TEST(JournalTtlTest, AnIdleJournalStillExpiresRecords) {
  temp_dir dir;
  fake_clock clock;
  auto j = journal::open(dir.path(), fast_journal_options(clock));
  ASSERT_TRUE(j.append_wait("s", "short-lived", 50ms));
  clock.advance(1min);
  // The writer's once-a-second pass removes it with no further commits.
  std::uint64_t expired = 0;
  std::vector<std::string> left;
  after_idle_pass(j, clock, [&] {
    expired = j.stats().expired;
    left = payloads(j, "s");
  });
  EXPECT_EQ(expired, 1u);
  EXPECT_TRUE(left.empty());
}

TEST(JournalTtlTest, ARecordIsKeptUntilItsTtlHasPassedOnTheJournalsClock) {
  temp_dir dir;
  fake_clock clock;
  auto j = journal::open(dir.path(), fast_journal_options(clock));
  ASSERT_TRUE(j.append_wait("s", "an hour", 1h));
  clock.advance(59min);
  ASSERT_TRUE(j.append_wait("other", "tick"));
  EXPECT_EQ(payloads(j, "s"), (std::vector<std::string>{"an hour"}));
  clock.advance(1min + 1ns);
  ASSERT_TRUE(j.append_wait("other", "tick"));
  EXPECT_TRUE(payloads(j, "s").empty());
  EXPECT_EQ(j.stats().expired, 1u);
}

TEST(JournalClockTest, RecordsAreStampedWithTheInjectedClockAndNeverGoBack) {
  temp_dir dir;
  fake_clock clock;
  auto j = journal::open(dir.path(), fast_journal_options(clock));
  const std::int64_t start = clock.now_ns();
  ASSERT_TRUE(j.append_wait("s", "first"));
  clock.advance(5s);
  ASSERT_TRUE(j.append_wait("s", "second"));
  clock.advance(-1h);  // a clock that steps back is held at the latest time stamped
  ASSERT_TRUE(j.append_wait("s", "third"));
  auto chunk = j.read("s", 1);
  ASSERT_TRUE(chunk);
  ASSERT_EQ(chunk->records.size(), 3u);
  EXPECT_EQ(chunk->records[0].timestamp_ns, start);
  EXPECT_EQ(chunk->records[1].timestamp_ns, start + 5'000'000'000);
  EXPECT_EQ(chunk->records[2].timestamp_ns, start + 5'000'000'000);
  EXPECT_EQ(j.seq_at_time("s", start + 1).value(), 2u);
}

TEST(JournalScheduleTest, ADueRecordIsAppendedAndAFutureOneWaits) {
  temp_dir dir;
  fake_clock clock;
  auto j = journal::open(dir.path(), fast_journal_options(clock));
  const std::int64_t now = clock.now_ns();
  auto later = j.schedule("s", "next week", now + std::int64_t{7} * 24 * 3600 * 1'000'000'000);
  auto due = j.schedule("s", "already due", now - 1);
  ASSERT_TRUE(later);
  ASSERT_TRUE(due);
  EXPECT_NE(*later, *due);
  ASSERT_TRUE(j.append_wait("other", "tick"));  // a commit delivers what is due
  EXPECT_EQ(payloads(j, "s"), (std::vector<std::string>{"already due"}));
  EXPECT_EQ(j.scheduled_count().value(), 1u);
  EXPECT_EQ(j.stats().delivered_scheduled, 1u);
}

TEST(JournalScheduleTest, ScheduledRecordsSurviveAReopen) {
  temp_dir dir;
  fake_clock clock;
  const std::int64_t soon = clock.now_ns() + 200'000'000;  // 200 ms
  {
    auto j = journal::open(dir.path(), fast_journal_options(clock));
    ASSERT_TRUE(j.schedule("s", "later", soon));
  }
  auto j = journal::open(dir.path(), fast_journal_options(clock));
  EXPECT_EQ(j.scheduled_count().value(), 1u);
  clock.advance(1s);
  // Nothing is appended: the reopened writer's idle pass delivers it.
  std::uint64_t waiting = 1;
  std::vector<std::string> delivered;
  after_idle_pass(j, clock, [&] {
    waiting = j.scheduled_count().value();
    delivered = payloads(j, "s");
  });
  EXPECT_EQ(waiting, 0u);
  EXPECT_EQ(delivered, (std::vector<std::string>{"later"}));
}

TEST(JournalScheduleTest, BadSchedulesAreRefused) {
  temp_dir dir;
  journal_options o = fast_journal_options();
  o.max_record_size = 4;
  auto j = journal::open(dir.path(), o);
  EXPECT_TRUE(j.schedule("", "x", 1).is(fabric::errc::too_large));
  EXPECT_TRUE(j.schedule("s", "too big", 1).is(fabric::errc::too_large));
}

TEST(JournalDeadLetterTest, ARecordMovesToTheQueueWithItsReasonAndComesBack) {
  temp_dir dir;
  auto j = journal::open(dir.path(), fast_journal_options());
  for (const char* p : {"a", "poison", "c"}) ASSERT_TRUE(j.append_wait("work", p));
  std::uint64_t id = 0;
  ASSERT_TRUE(j.transact([&](journal_txn& t) { id = t.dead_letter("work", 2, "handler threw", 5); }));
  EXPECT_EQ(id, 1u);
  EXPECT_EQ(payloads(j, "work"), (std::vector<std::string>{"a", "c"}));
  auto letters = j.dead_letters().value();
  ASSERT_EQ(letters.size(), 1u);
  EXPECT_EQ(letters[0].id, 1u);
  EXPECT_EQ(letters[0].stream, "work");
  EXPECT_EQ(letters[0].seq, 2u);
  EXPECT_EQ(letters[0].reason, "handler threw");
  EXPECT_EQ(letters[0].attempts, 5u);
  EXPECT_EQ(letters[0].payload, "poison");
  EXPECT_GT(letters[0].timestamp_ns, 0);

  auto seq = j.requeue(1);
  ASSERT_TRUE(seq);
  EXPECT_EQ(*seq, 4u);
  EXPECT_EQ(payloads(j, "work"), (std::vector<std::string>{"a", "c", "poison"}));
  EXPECT_TRUE(j.dead_letters().value().empty());
  EXPECT_TRUE(j.requeue(1).is(fabric::errc::invalid_argument));
}

TEST(JournalDeadLetterTest, LettersCanBeDiscardedAndIdsKeepCounting) {
  temp_dir dir;
  auto j = journal::open(dir.path(), fast_journal_options());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(j.append_wait("work", std::to_string(i)));
  ASSERT_TRUE(j.transact([&](journal_txn& t) {
    EXPECT_EQ(t.dead_letter("work", 1, "r", 1), 1u);
    EXPECT_EQ(t.dead_letter("work", 2, "r", 1), 2u);
    EXPECT_EQ(t.dead_letter("work", 99, "r", 1), 0u);   // no such record
    EXPECT_EQ(t.dead_letter("nothing", 1, "r", 1), 0u);  // no such stream
  }));
  EXPECT_EQ(j.discard_dead_letter(1).value(), true);
  EXPECT_EQ(j.discard_dead_letter(1).value(), false);
  ASSERT_TRUE(j.transact([&](journal_txn& t) { EXPECT_EQ(t.dead_letter("work", 3, "r", 1), 3u); }));
  auto letters = j.dead_letters(3).value();
  ASSERT_EQ(letters.size(), 1u);
  EXPECT_EQ(letters[0].seq, 3u);
  EXPECT_EQ(j.dead_letters().value().size(), 2u);
}

}  // namespace

namespace {

TEST(JournalSequenceTest, NumbersAreNeverReusedAfterTheLastRecordsAreRemoved) {
  temp_dir dir;
  {
    auto j = journal::open(dir.path(), fast_journal_options());
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(j.append_wait("work", "x"));
    ASSERT_TRUE(j.transact([](journal_txn& t) { t.dead_letter("work", 3, "r", 1); }));
    ASSERT_TRUE(j.append_wait("gone", "y", 1ns));
    ASSERT_TRUE(j.append_wait("tick", "z"));  // expires "gone" 1
  }
  {
    auto reader = journal::open(dir.path(), {.read_only = true});
    EXPECT_EQ(reader.last_seq("work").value(), 3u);
    EXPECT_EQ(reader.last_seq("gone").value(), 1u);
  }
  auto j = journal::open(dir.path(), fast_journal_options());
  EXPECT_EQ(j.last_seq("work").value(), 3u);
  EXPECT_EQ(j.append_wait("work", "after").value(), 4u);
  EXPECT_EQ(j.append_wait("gone", "after").value(), 2u);
}

}  // namespace
