// Tests of the journal's time-driven features: TTL expiry, scheduled (delayed) records, and the
// dead-letter queue.
#include <fabric/journal.hpp>

#include "support/support.hpp"

#include <gtest/gtest.h>

#include <string>
#include <thread>

namespace {

using fabric::durability;
using fabric::journal;
using fabric::journal_options;
using fabric::journal_txn;
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
  auto j = journal::open(dir.path(), fast_journal_options());
  ASSERT_TRUE(j.append_wait("s", "short-lived", 1ns));
  ASSERT_TRUE(j.append_wait("s", "kept", 1h));
  ASSERT_TRUE(j.append_wait("s", "plain"));  // this commit is past the first record's expiry
  EXPECT_EQ(payloads(j, "s"), (std::vector<std::string>{"kept", "plain"}));
  EXPECT_EQ(j.stats().expired, 1u);
  EXPECT_EQ(j.append_wait("s", "next").value(), 4u);  // expiry does not reuse sequence numbers
}

TEST(JournalTtlTest, AnIdleJournalStillExpiresRecords) {
  temp_dir dir;
  auto j = journal::open(dir.path(), fast_journal_options());
  ASSERT_TRUE(j.append_wait("s", "short-lived", 50ms));
  // The writer's once-a-second pass removes it with no further commits: wait for it, bounded.
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (j.stats().expired == 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  EXPECT_EQ(j.stats().expired, 1u);
  EXPECT_TRUE(payloads(j, "s").empty());
}

TEST(JournalScheduleTest, ADueRecordIsAppendedAndAFutureOneWaits) {
  temp_dir dir;
  auto j = journal::open(dir.path(), fast_journal_options());
  const std::int64_t now = fabric::unix_now_ns();
  auto later = j.schedule("s", "next week", now + std::int64_t{7} * 24 * 3600 * 1'000'000'000);
  auto due = j.schedule("s", "already due", now - 1);
  ASSERT_TRUE(later);
  ASSERT_TRUE(due);
  EXPECT_NE(*later, *due);
  ASSERT_TRUE(j.append_wait("other", "tick"));  // a commit delivers what is due
  EXPECT_EQ(payloads(j, "s"), (std::vector<std::string>{"already due"}));
  EXPECT_EQ(j.scheduled_count(), 1u);
  EXPECT_EQ(j.stats().delivered_scheduled, 1u);
}

TEST(JournalScheduleTest, ScheduledRecordsSurviveAReopen) {
  temp_dir dir;
  const std::int64_t soon = fabric::unix_now_ns() + 200'000'000;  // 200 ms
  {
    auto j = journal::open(dir.path(), fast_journal_options());
    ASSERT_TRUE(j.schedule("s", "later", soon));
  }
  auto j = journal::open(dir.path(), fast_journal_options());
  EXPECT_EQ(j.scheduled_count(), 1u);
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (j.scheduled_count() != 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  EXPECT_EQ(payloads(j, "s"), (std::vector<std::string>{"later"}));
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
  auto letters = j.dead_letters();
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
  EXPECT_TRUE(j.dead_letters().empty());
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
  auto letters = j.dead_letters(3);
  ASSERT_EQ(letters.size(), 1u);
  EXPECT_EQ(letters[0].seq, 3u);
  EXPECT_EQ(j.dead_letters().size(), 2u);
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
    EXPECT_EQ(reader.last_seq("work"), 3u);
    EXPECT_EQ(reader.last_seq("gone"), 1u);
  }
  auto j = journal::open(dir.path(), fast_journal_options());
  EXPECT_EQ(j.last_seq("work"), 3u);
  EXPECT_EQ(j.append_wait("work", "after").value(), 4u);
  EXPECT_EQ(j.append_wait("gone", "after").value(), 2u);
}

}  // namespace
