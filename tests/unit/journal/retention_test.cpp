// Tests of journal retention (count, bytes, age, acknowledged-only) and of finding a stream's
// position by time.
#include <fabric/journal.hpp>

#include "support/fake_clock.hpp"
#include "support/support.hpp"

#include <gtest/gtest.h>

#include <string>

namespace {

using fabric::durability;
using fabric::journal;
using fabric::journal_options;
using fabric::retention_policy;
using fabric::testing::after_idle_pass;
using fabric::testing::fake_clock;
using fabric::testing::fast_journal_options;
using fabric::testing::temp_dir;
using namespace std::chrono_literals;

std::uint64_t first_seq(const journal& j, const std::string& stream) {
  const auto infos = j.stream_infos().value();
  for (const auto& info : infos)
    if (info.name == stream) return info.first_seq;
  return 0;
}

TEST(JournalRetentionTest, KeepsAtMostTheNewestRecords) {
  temp_dir dir;
  auto j = journal::open(dir.path(), fast_journal_options());
  ASSERT_TRUE(j.set_retention("s", {.max_records = 10}));
  for (int i = 1; i <= 25; ++i) ASSERT_TRUE(j.append_wait("s", std::to_string(i)));
  EXPECT_EQ(first_seq(j, "s"), 16u);
  EXPECT_EQ(j.last_seq("s").value(), 25u);
  auto chunk = j.read("s", 1);
  ASSERT_TRUE(chunk);
  ASSERT_EQ(chunk->records.size(), 10u);
  EXPECT_EQ(chunk->records.front().payload, "16");
}

TEST(JournalRetentionTest, KeepsAtMostTheConfiguredBytes) {
  temp_dir dir;
  auto j = journal::open(dir.path(), fast_journal_options());
  ASSERT_TRUE(j.set_retention("s", {.max_bytes = 1000}));
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(j.append_wait("s", std::string(100, 'b')));
  auto infos = j.stream_infos().value();
  ASSERT_EQ(infos.size(), 1u);
  EXPECT_EQ(infos[0].records, 10u);
  EXPECT_EQ(infos[0].last_seq, 50u);
}

TEST(JournalRetentionTest, TrimsOnlyWhatTheNamedCursorsAcknowledged) {
  temp_dir dir;
  auto j = journal::open(dir.path(), fast_journal_options());
  ASSERT_TRUE(j.set_retention("s", {.max_records = 5, .ack_cursors = {"slow", "fast"}}));
  ASSERT_TRUE(j.transact([](fabric::journal_txn& t) {
    t.set_cursor("fast", 18);
    t.set_cursor("slow", 3);
  }));
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(j.append_wait("s", "x"));
  EXPECT_EQ(first_seq(j, "s"), 4u);  // "slow" has acknowledged up to 3 only
  ASSERT_TRUE(j.transact([](fabric::journal_txn& t) { t.set_cursor("slow", 12); }));
  ASSERT_TRUE(j.append_wait("s", "x"));
  EXPECT_EQ(first_seq(j, "s"), 13u);
}

TEST(JournalRetentionTest, AgeLimitsTrimAnIdleStream) {
  temp_dir dir;
  fake_clock clock;
  auto j = journal::open(dir.path(), fast_journal_options(clock));
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(j.append_wait("s", "old"));
  ASSERT_TRUE(j.set_retention("s", {.max_age = 1s}));
  EXPECT_EQ(first_seq(j, "s"), 1u);  // not old yet
  clock.advance(2s);
  // The writer's once-a-second pass must remove them with no further appends.
  std::uint64_t first_after_pass = 99;
  after_idle_pass(j, clock, [&] { first_after_pass = first_seq(j, "s"); });
  EXPECT_EQ(first_after_pass, 0u);
  EXPECT_EQ(j.last_seq("s").value(), 5u);
  EXPECT_EQ(j.append_wait("s", "new").value(), 6u);  // sequences continue after a trim
}

TEST(JournalRetentionTest, AgeIsMeasuredOnTheJournalsClock) {
  temp_dir dir;
  fake_clock clock;
  auto j = journal::open(dir.path(), fast_journal_options(clock));
  ASSERT_TRUE(j.set_retention("s", {.max_age = 1h}));
  ASSERT_TRUE(j.append_wait("s", "early"));
  clock.advance(30min);
  ASSERT_TRUE(j.append_wait("s", "later"));
  clock.advance(30min + 1ns);  // "early" is now past an hour old, "later" is not
  ASSERT_TRUE(j.append_wait("s", "now"));
  EXPECT_EQ(first_seq(j, "s"), 2u);
}

TEST(JournalRetentionTest, PoliciesArePersistedAndCanBeRemoved) {
  temp_dir dir;
  const retention_policy policy{.max_records = 7, .max_bytes = 99, .max_age = 3600s, .ack_cursors = {"c"}};
  {
    auto j = journal::open(dir.path(), fast_journal_options());
    ASSERT_TRUE(j.set_retention("s", policy));
    EXPECT_EQ(j.retention("s").value(), policy);
  }
  auto j = journal::open(dir.path(), fast_journal_options());
  EXPECT_EQ(j.retention("s").value(), policy);
  ASSERT_TRUE(j.set_retention("s", {}));
  EXPECT_FALSE(j.retention("s").value());
  EXPECT_TRUE(j.set_retention("", {.max_records = 1}).is(fabric::errc::invalid_argument));
}

TEST(JournalRetentionTest, ByteCountsSurviveAReopen) {
  temp_dir dir;
  {
    auto j = journal::open(dir.path(), fast_journal_options());
    for (int i = 0; i < 10; ++i) ASSERT_TRUE(j.append_wait("s", std::string(100, 'x')));
  }
  auto j = journal::open(dir.path(), fast_journal_options());
  ASSERT_TRUE(j.set_retention("s", {.max_bytes = 500}));
  ASSERT_TRUE(j.append_wait("s", std::string(100, 'x')));
  auto infos = j.stream_infos().value();
  ASSERT_EQ(infos.size(), 1u);
  EXPECT_EQ(infos[0].records, 5u);
}

TEST(JournalTimeTest, FindsTheFirstRecordAtOrAfterATime) {
  temp_dir dir;
  auto j = journal::open(dir.path(), fast_journal_options());
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(j.append_wait("s", std::to_string(i)));
  auto all = j.read("s", 1, 1000);
  ASSERT_TRUE(all);
  ASSERT_EQ(all->records.size(), 100u);
  for (std::size_t i = 0; i < all->records.size(); i += 7) {
    const auto& r = all->records[i];
    auto seq = j.seq_at_time("s", r.timestamp_ns);
    ASSERT_TRUE(seq);
    // The first record with that timestamp (several records may share one commit's time).
    std::uint64_t expected = r.seq;
    while (expected > 1 && all->records[expected - 2].timestamp_ns == r.timestamp_ns) --expected;
    EXPECT_EQ(*seq, expected);
  }
  EXPECT_EQ(j.seq_at_time("s", 0).value(), 1u);
  EXPECT_EQ(j.seq_at_time("s", INT64_MAX).value(), 101u);
  EXPECT_EQ(j.seq_at_time("nothing", 0).value(), 1u);
}

TEST(JournalTimeTest, AppendTimesNeverGoBackwards) {
  temp_dir dir;
  auto j = journal::open(dir.path(), fast_journal_options());
  for (int i = 0; i < 200; ++i) j.append(i % 2 ? "a" : "b", "x", nullptr);
  ASSERT_TRUE(j.append_wait("a", "last"));
  for (const char* stream : {"a", "b"}) {
    auto chunk = j.read(stream, 1, 1000);
    ASSERT_TRUE(chunk);
    for (std::size_t i = 1; i < chunk->records.size(); ++i)
      EXPECT_LE(chunk->records[i - 1].timestamp_ns, chunk->records[i].timestamp_ns);
  }
}

TEST(JournalTimeTest, FindsTimesAcrossATrimmedStart) {
  temp_dir dir;
  auto j = journal::open(dir.path(), fast_journal_options());
  ASSERT_TRUE(j.set_retention("s", {.max_records = 10}));
  for (int i = 0; i < 30; ++i) ASSERT_TRUE(j.append_wait("s", "x"));
  EXPECT_EQ(j.seq_at_time("s", 0).value(), 21u);
}

}  // namespace
