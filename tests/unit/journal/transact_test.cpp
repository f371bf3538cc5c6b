// Tests of journal transactions: the outbox, application tables, cursors, and deduplication
// committed together with them.
#include <fabric/journal.hpp>

#include "core/byte_order.hpp"
#include "support/support.hpp"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace {

using fabric::dedup_key;
using fabric::dedup_verdict;
using fabric::durability;
using fabric::journal;
using fabric::journal_options;
using fabric::journal_txn;
using fabric::testing::fast_journal_options;
using fabric::testing::temp_dir;
using namespace std::chrono_literals;

fabric::message_id id_of(std::uint64_t n) {
  fabric::message_id id;
  fabric::detail::store_be(n, id.bytes.data() + 8);
  id.bytes[0] = 0xab;
  return id;
}

dedup_key by_seq(std::uint64_t seq) { return {"producer-a", "orders", seq, {}}; }

TEST(JournalTransactTest, CommitsAppendsStateAndCursorsTogether) {
  temp_dir dir;
  auto j = journal::open(dir.path(), fast_journal_options());
  std::uint64_t seq = 0;
  ASSERT_TRUE(j.transact([&](journal_txn& t) {
    t.put("accounts", "alice", "100");
    seq = t.append("outbox", "credited alice");
    t.set_cursor("consumer", 41);
  }));
  EXPECT_EQ(seq, 1u);
  EXPECT_EQ(j.get("accounts", "alice").value(), "100");
  EXPECT_EQ(j.cursor("consumer").value(), 41u);
  auto chunk = j.read("outbox", 1);
  ASSERT_TRUE(chunk);
  ASSERT_EQ(chunk->records.size(), 1u);
  EXPECT_EQ(chunk->records[0].payload, "credited alice");
  EXPECT_EQ(j.last_seq("outbox").value(), 1u);
}

TEST(JournalTransactTest, ATransactionThatThrowsKeepsNothingAndRethrows) {
  temp_dir dir;
  auto j = journal::open(dir.path(), fast_journal_options());
  ASSERT_TRUE(j.append_wait("outbox", "before"));
  EXPECT_THROW((void)j.transact([&](journal_txn& t) {
    t.put("accounts", "bob", "5");
    t.append("outbox", "never");
    t.set_cursor("consumer", 7);
    EXPECT_EQ(t.mark_seen(by_seq(1)), dedup_verdict::fresh);
    throw std::runtime_error("business rule failed");
  }), std::runtime_error);
  EXPECT_FALSE(j.get("accounts", "bob").value());
  EXPECT_FALSE(j.cursor("consumer").value());
  EXPECT_FALSE(j.seen(by_seq(1)).value());
  EXPECT_EQ(j.last_seq("outbox").value(), 1u);
  // The sequence is not burnt by the aborted transaction.
  EXPECT_EQ(j.append_wait("outbox", "after").value(), 2u);
}

TEST(JournalTransactTest, TablesPutGetAndErase) {
  temp_dir dir;
  auto j = journal::open(dir.path(), fast_journal_options());
  EXPECT_FALSE(j.get("t", "k").value());
  ASSERT_TRUE(j.transact([&](journal_txn& t) {
    EXPECT_FALSE(t.get("t", "k").value());
    t.put("t", "k", "v1");
    EXPECT_EQ(t.get("t", "k").value(), "v1");
    t.put("t", "k", "v2");
  }));
  EXPECT_EQ(j.get("t", "k").value(), "v2");
  ASSERT_TRUE(j.transact([&](journal_txn& t) {
    EXPECT_TRUE(t.erase("t", "k"));
    EXPECT_FALSE(t.erase("t", "k"));
    EXPECT_FALSE(t.erase("missing-table", "k"));
  }));
  EXPECT_FALSE(j.get("t", "k").value());
}

TEST(JournalTransactTest, TableEntriesListsATableInKeyOrderPageByPage) {
  using entries = std::vector<std::pair<std::string, std::string>>;
  temp_dir dir;
  {
    auto j = journal::open(dir.path(), fast_journal_options());
    EXPECT_TRUE(j.table_entries("t").value().empty());  // no such table yet
    ASSERT_TRUE(j.transact([&](journal_txn& t) {
      for (const char* k : {"b", "a", "c\x01", "c", "d"}) t.put("t", k, std::string("v-") + k);
      t.put("other", "a", "elsewhere");
    }));
    EXPECT_EQ(j.table_entries("t").value(),
              (entries{{"a", "v-a"}, {"b", "v-b"}, {"c", "v-c"}, {"c\x01", "v-c\x01"}, {"d", "v-d"}}));
    // Pages: each starts after the last key of the one before, whether that key exists or not.
    EXPECT_EQ(j.table_entries("t", {}, 2).value(), (entries{{"a", "v-a"}, {"b", "v-b"}}));
    EXPECT_EQ(j.table_entries("t", "b", 2).value(), (entries{{"c", "v-c"}, {"c\x01", "v-c\x01"}}));
    EXPECT_EQ(j.table_entries("t", "c\x01", 2).value(), (entries{{"d", "v-d"}}));
    EXPECT_EQ(j.table_entries("t", "bb", 1).value(), (entries{{"c", "v-c"}}));
    EXPECT_TRUE(j.table_entries("t", "d").value().empty());
    EXPECT_TRUE(j.table_entries("t", {}, 0).value().empty());
    EXPECT_THROW((void)j.table_entries(""), fabric::error);
    EXPECT_THROW((void)j.table_entries("t", std::string(512, 'k')), fabric::error);
    ASSERT_TRUE(j.transact([](journal_txn& t) { EXPECT_TRUE(t.erase("t", "b")); }));
  }
  // A read-only journal (a tool beside the service) lists what was committed, erasures included.
  auto reader = journal::open(dir.path(), {.read_only = true});
  EXPECT_EQ(reader.table_entries("t", "a").value(), (entries{{"c", "v-c"}, {"c\x01", "v-c\x01"}, {"d", "v-d"}}));
  EXPECT_EQ(reader.table_entries("other").value(), (entries{{"a", "elsewhere"}}));
  EXPECT_TRUE(reader.table_entries("missing").value().empty());
}

TEST(JournalTransactTest, BadNamesThrowInsideTheTransaction) {
  temp_dir dir;
  auto j = journal::open(dir.path(), fast_journal_options());
  EXPECT_THROW((void)j.transact([](journal_txn& t) { t.put("", "k", "v"); }), fabric::error);
  EXPECT_THROW((void)j.transact([](journal_txn& t) { t.put("t", "", "v"); }), fabric::error);
  EXPECT_THROW((void)j.transact([](journal_txn& t) { t.put("t", std::string(512, 'k'), "v"); }), fabric::error);
  EXPECT_THROW((void)j.transact([](journal_txn& t) { t.set_cursor("", 1); }), fabric::error);
  EXPECT_THROW((void)j.transact([](journal_txn& t) { t.mark_seen({"", "s", 1, {}}); }), fabric::error);
  EXPECT_THROW((void)j.transact([](journal_txn& t) { t.mark_seen({"p", "s", 0, {}}); }), fabric::error);
  EXPECT_THROW((void)j.transact([](journal_txn& t) { t.append("", "x"); }), fabric::error);
}

TEST(JournalTransactTest, MarkSeenFindsDuplicatesBySequence) {
  temp_dir dir;
  auto j = journal::open(dir.path(), fast_journal_options());
  ASSERT_TRUE(j.transact([&](journal_txn& t) {
    EXPECT_EQ(t.mark_seen(by_seq(1)), dedup_verdict::fresh);
    EXPECT_EQ(t.mark_seen(by_seq(2)), dedup_verdict::fresh);
    EXPECT_EQ(t.mark_seen(by_seq(1)), dedup_verdict::duplicate);
    EXPECT_EQ(t.mark_seen(by_seq(2)), dedup_verdict::duplicate);
    // Another producer or stream has its own sequence.
    EXPECT_EQ(t.mark_seen({"producer-b", "orders", 1, {}}), dedup_verdict::fresh);
    EXPECT_EQ(t.mark_seen({"producer-a", "refunds", 1, {}}), dedup_verdict::fresh);
  }));
  EXPECT_TRUE(j.seen(by_seq(2)).value());
  EXPECT_FALSE(j.seen(by_seq(3)).value());
}

TEST(JournalTransactTest, OutOfOrderSequencesAreRememberedAndAbsorbed) {
  temp_dir dir;
  auto j = journal::open(dir.path(), fast_journal_options());
  ASSERT_TRUE(j.transact([&](journal_txn& t) {
    EXPECT_EQ(t.mark_seen(by_seq(3)), dedup_verdict::fresh);
    EXPECT_EQ(t.mark_seen(by_seq(5)), dedup_verdict::fresh);
    EXPECT_EQ(t.mark_seen(by_seq(3)), dedup_verdict::duplicate);
  }));
  EXPECT_FALSE(j.seen(by_seq(1)).value());
  EXPECT_FALSE(j.seen(by_seq(4)).value());
  ASSERT_TRUE(j.transact([&](journal_txn& t) {
    EXPECT_EQ(t.mark_seen(by_seq(1)), dedup_verdict::fresh);
    EXPECT_EQ(t.mark_seen(by_seq(2)), dedup_verdict::fresh);  // absorbs 3
    EXPECT_EQ(t.mark_seen(by_seq(4)), dedup_verdict::fresh);  // absorbs 5
  }));
  for (std::uint64_t s = 1; s <= 5; ++s) EXPECT_TRUE(j.seen(by_seq(s)).value()) << s;
  EXPECT_FALSE(j.seen(by_seq(6)).value());
}

TEST(JournalTransactTest, AFullWindowGivesUpTheLowestGap) {
  temp_dir dir;
  journal_options o = fast_journal_options();
  o.dedup_max_window = 3;
  auto j = journal::open(dir.path(), o);
  ASSERT_TRUE(j.transact([&](journal_txn& t) {
    EXPECT_EQ(t.mark_seen(by_seq(1)), dedup_verdict::fresh);
    // 2 never comes; 3..6 are held above the gap until the window overflows.
    for (std::uint64_t s = 3; s <= 6; ++s) EXPECT_EQ(t.mark_seen(by_seq(s)), dedup_verdict::fresh);
  }));
  // The gap at 2 was given up: 2 now counts as seen, and the mark is contiguous to 6.
  EXPECT_TRUE(j.seen(by_seq(2)).value());
  EXPECT_TRUE(j.seen(by_seq(6)).value());
  EXPECT_FALSE(j.seen(by_seq(7)).value());
}

TEST(JournalTransactTest, MarkSeenFindsDuplicatesById) {
  temp_dir dir;
  auto j = journal::open(dir.path(), fast_journal_options());
  ASSERT_TRUE(j.transact([&](journal_txn& t) {
    EXPECT_EQ(t.mark_seen({"p", "s", 0, id_of(1)}), dedup_verdict::fresh);
    EXPECT_EQ(t.mark_seen({"p", "s", 0, id_of(1)}), dedup_verdict::duplicate);
    // The same message re-sent under a new sequence (a producer restarted) is still caught.
    EXPECT_EQ(t.mark_seen({"p", "s", 10, id_of(2)}), dedup_verdict::fresh);
    EXPECT_EQ(t.mark_seen({"p", "s", 11, id_of(2)}), dedup_verdict::duplicate);
  }));
  EXPECT_TRUE(j.seen({"p", "s", 0, id_of(1)}).value());
  EXPECT_FALSE(j.seen({"p", "s", 0, id_of(3)}).value());
}

TEST(JournalTransactTest, DedupStateAndCursorsSurviveAReopen) {
  temp_dir dir;
  {
    auto j = journal::open(dir.path(), fast_journal_options());
    ASSERT_TRUE(j.transact([&](journal_txn& t) {
      t.mark_seen(by_seq(1));
      t.mark_seen(by_seq(3));
      t.mark_seen({"p", "s", 0, id_of(9)});
      t.set_cursor("c", 3);
    }));
  }
  auto j = journal::open(dir.path(), fast_journal_options());
  EXPECT_TRUE(j.seen(by_seq(1)).value());
  EXPECT_FALSE(j.seen(by_seq(2)).value());
  EXPECT_TRUE(j.seen(by_seq(3)).value());
  EXPECT_TRUE(j.seen({"p", "s", 0, id_of(9)}).value());
  EXPECT_EQ(j.cursor("c").value(), 3u);
}

TEST(JournalTransactTest, OldIdsAreForgottenPastTheCountBound) {
  temp_dir dir;
  journal_options o = fast_journal_options();
  o.dedup_max_ids = 100;
  auto j = journal::open(dir.path(), o);
  for (std::uint64_t batch = 0; batch < 10; ++batch) {
    ASSERT_TRUE(j.transact([&](journal_txn& t) {
      for (std::uint64_t i = 0; i < 100; ++i) t.mark_seen({"p", "s", 0, id_of(batch * 100 + i)});
    }));
  }
  // Pruning runs a bounded amount per commit; a few more commits finish the job.
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(j.append_wait("tick", "x"));
  EXPECT_FALSE(j.seen({"p", "s", 0, id_of(0)}).value());
  EXPECT_TRUE(j.seen({"p", "s", 0, id_of(999)}).value());
}

TEST(JournalTransactTest, EffectivelyOnceProcessingOfARedeliveredBatch) {
  temp_dir dir;
  auto j = journal::open(dir.path(), fast_journal_options());
  // A consumer that adds up amounts, fed the same messages twice (as at-least-once delivery may).
  auto consume = [&](std::uint64_t from, std::uint64_t to) {
    return j.transact([&](journal_txn& t) {
      for (std::uint64_t seq = from; seq <= to; ++seq) {
        if (t.mark_seen(by_seq(seq)) == dedup_verdict::duplicate) continue;
        const auto total = t.get("totals", "sum").value();
        const std::uint64_t sum = total ? std::stoull(*total) : 0;
        t.put("totals", "sum", std::to_string(sum + seq));
        t.set_cursor("adder", seq);
      }
    });
  };
  ASSERT_TRUE(consume(1, 10));
  ASSERT_TRUE(consume(5, 15));  // 5..10 redelivered
  EXPECT_EQ(j.get("totals", "sum").value(), std::to_string(15 * 16 / 2));
  EXPECT_EQ(j.cursor("adder").value(), 15u);
}

TEST(JournalTransactTest, PeriodicModeCompletesTransactionsAfterAnFsync) {
  temp_dir dir;
  journal_options o;
  o.mode = durability::periodic;
  o.sync_interval = 5ms;
  auto j = journal::open(dir.path(), o);
  ASSERT_TRUE(j.transact([](journal_txn& t) { t.set_cursor("c", 1); }));
  EXPECT_GE(j.stats().syncs, 1u);
  EXPECT_EQ(j.cursor("c").value(), 1u);
}

TEST(JournalTransactTest, ATransactionRunsAgainWhenTheMapMustGrow) {
  temp_dir dir;
  journal_options o = fast_journal_options();
  o.map_size = 256 * 1024;
  auto j = journal::open(dir.path(), o);
  int runs = 0;
  ASSERT_TRUE(j.transact([&](journal_txn& t) {
    ++runs;
    for (int i = 0; i < 200; ++i) t.append("big", std::string(4096, 'b'));
  }));
  EXPECT_GE(runs, 2);
  EXPECT_GT(j.stats().map_resizes, 0u);
  EXPECT_EQ(j.last_seq("big").value(), 200u);
}

}  // namespace
