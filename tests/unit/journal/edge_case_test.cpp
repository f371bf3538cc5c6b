// Tests the journal at its edges: budgets, names with NUL bytes, huge TTLs and ages, keys past
// LMDB's limit, callbacks that append again, and dead-lettering in the same transaction as a
// stream's creation.
#include <fabric/journal.hpp>

#include "support/support.hpp"

#include <gtest/gtest.h>
#include <lmdb.h>

#include <future>
#include <string>

namespace {

using fabric::durability;
using fabric::errc;
using fabric::journal;
using fabric::journal_options;
using fabric::journal_txn;
using fabric::testing::fast_journal_options;
using fabric::testing::temp_dir;
using namespace std::chrono_literals;

TEST(JournalEdgeCaseTest, AStreamPastTheBudgetFailsAloneNotItsWholeBatch) {
  temp_dir dir;
  journal_options o = fast_journal_options();
  o.max_streams = 2;
  auto j = journal::open(dir.path(), o);
  ASSERT_TRUE(j.append_wait("a", "x"));
  ASSERT_TRUE(j.append_wait("b", "x"));
  // Queue many appends to known streams around one to a third stream, so they share a batch.
  std::vector<std::future<fabric::result<std::uint64_t>>> ok;
  for (int i = 0; i < 50; ++i) ok.push_back(j.append("a", "y"));
  auto refused = j.append("c", "z");
  for (int i = 0; i < 50; ++i) ok.push_back(j.append("b", "y"));
  EXPECT_TRUE(refused.get().is(errc::too_large));
  for (auto& f : ok) EXPECT_TRUE(f.get());
  EXPECT_EQ(j.last_seq("a").value(), 51u);
}

TEST(JournalEdgeCaseTest, AnUndeliverableScheduledRecordIsDeadLetteredAndAppendsGoOn) {
  temp_dir dir;
  journal_options o = fast_journal_options();
  o.max_streams = 1;
  auto j = journal::open(dir.path(), o);
  ASSERT_TRUE(j.append_wait("only", "x"));
  ASSERT_TRUE(j.schedule("another", "late", fabric::unix_now_ns() - 1));
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(j.append_wait("only", "y")) << i;
  auto letters = j.dead_letters().value();
  ASSERT_EQ(letters.size(), 1u);
  EXPECT_EQ(letters[0].stream, "another");
  EXPECT_EQ(letters[0].payload, "late");
  EXPECT_NE(letters[0].reason.find("scheduled delivery failed"), std::string::npos);
  EXPECT_EQ(j.scheduled_count().value(), 0u);
}

TEST(JournalEdgeCaseTest, NamesWithANulByteAreRefused) {
  temp_dir dir;
  auto j = journal::open(dir.path(), fast_journal_options());
  const std::string evil("a\0evil", 6);
  EXPECT_TRUE(j.append_wait(evil, "x").is(errc::too_large));
  EXPECT_TRUE(j.read(evil, 1).is(errc::invalid_argument));
  EXPECT_THROW((void)j.transact([&](journal_txn& t) { t.put(evil, "k", "v"); }), fabric::error);
  EXPECT_TRUE(j.append_wait("a", "fine"));
  EXPECT_EQ(j.streams().value(), std::vector<std::string>{"a"});
}

TEST(JournalEdgeCaseTest, HugeTtlsAndAgesMeanNeverNotLongAgo) {
  temp_dir dir;
  auto j = journal::open(dir.path(), fast_journal_options());
  ASSERT_TRUE(j.append_wait("s", "forever", std::chrono::nanoseconds::max()));
  ASSERT_TRUE(j.set_retention("s", {.max_age = std::chrono::seconds::max(), .ack_cursors = {}}));
  ASSERT_TRUE(j.append_wait("s", "tick"));
  EXPECT_EQ(j.stats().expired, 0u);
  auto chunk = j.read("s", 1);
  ASSERT_TRUE(chunk);
  EXPECT_EQ(chunk->records.size(), 2u);
}

TEST(JournalEdgeCaseTest, AHugeDedupAgeStillFindsDuplicates) {
  temp_dir dir;
  journal_options o = fast_journal_options();
  o.dedup_max_age = std::chrono::seconds::max();
  auto j = journal::open(dir.path(), o);
  fabric::message_id id;
  id.bytes[15] = 7;
  ASSERT_TRUE(j.transact([&](journal_txn& t) { EXPECT_EQ(t.mark_seen({"p", "s", 0, id}), fabric::dedup_verdict::fresh); }));
  ASSERT_TRUE(j.transact([&](journal_txn& t) { EXPECT_EQ(t.mark_seen({"p", "s", 0, id}), fabric::dedup_verdict::duplicate); }));
}

TEST(JournalEdgeCaseTest, DedupKeysBeyondLmdbsKeyLimitAreRefusedUpFront) {
  temp_dir dir;
  auto j = journal::open(dir.path(), fast_journal_options());
  const std::string producer(255, 'p');
  const std::string stream(250, 's');
  EXPECT_THROW((void)j.transact([&](journal_txn& t) { t.mark_seen({producer, stream, 3, {}}); }), fabric::error);
  ASSERT_TRUE(j.transact([&](journal_txn& t) { t.mark_seen({producer, std::string(245, 's'), 3, {}}); }));
}

TEST(JournalEdgeCaseTest, VerifyEndsOnAKeyThatIsNoSequenceNumber) {
  temp_dir dir;
  {
    auto j = journal::open(dir.path(), fast_journal_options());
    ASSERT_TRUE(j.append_wait("s", "x"));
  }
  // Plant a 3-byte key in the stream's database, behind the journal's back.
  fabric::testing::write_behind_journal(dir.path(), [](MDB_txn* txn) {
    MDB_dbi dbi = 0;
    ASSERT_EQ(mdb_dbi_open(txn, "s/s", 0, &dbi), 0);
    char bad_key[] = "zzz";
    MDB_val key{3, bad_key};
    MDB_val value{3, bad_key};
    ASSERT_EQ(mdb_put(txn, dbi, &key, &value, 0), 0);
  });

  auto j = journal::open(dir.path(), fast_journal_options());
  auto report = j.verify();  // must return, not loop
  EXPECT_EQ(report.records, 1u);
  EXPECT_EQ(report.corruptions.size(), 1u);
}

TEST(JournalEdgeCaseTest, ACallbackMayAppendAgainWhenRefused) {
  temp_dir dir;
  journal_options o = fast_journal_options();
  o.max_pending = 1;
  auto j = journal::open(dir.path(), o);
  fabric::testing::writer_hold hold(j, "s");  // the queue cannot drain meanwhile
  auto queued = j.append("s", "second");  // fills the queue
  std::promise<fabric::result<std::uint64_t>> retried;
  // Refused at once with back-pressure; its callback appends again from inside (to another
  // stream, also refused): this used to deadlock on the queue's own lock.
  j.append("s", "third", [&](fabric::result<std::uint64_t> r) {
    EXPECT_TRUE(r.is(errc::back_pressure));
    j.append("s", "fourth", [&](fabric::result<std::uint64_t> again) { retried.set_value(again); });
  });
  auto again = retried.get_future();
  ASSERT_EQ(again.wait_for(10s), std::future_status::ready);
  EXPECT_TRUE(again.get().is(errc::back_pressure));
  hold.release();
  EXPECT_TRUE(queued.get());
}

TEST(JournalEdgeCaseTest, DeadLetteringARecordOfAStreamMadeInTheSameTransactionMovesIt) {
  temp_dir dir;
  auto j = journal::open(dir.path(), fast_journal_options());
  ASSERT_TRUE(j.transact([](journal_txn& t) {
    const std::uint64_t seq = t.append("fresh", "poison");
    EXPECT_EQ(t.dead_letter("fresh", seq, "bad", 1), 1u);
  }));
  auto chunk = j.read("fresh", 1);
  ASSERT_TRUE(chunk);
  EXPECT_TRUE(chunk->records.empty());
  EXPECT_EQ(j.dead_letters().value().size(), 1u);
}

}  // namespace
