// Tests of the journal's writer: when periodic mode syncs (as soon as the queue runs dry, or once
// sync_interval has passed under load), and batch appends (one commit, consecutive sequences, one
// completion, all or nothing).
//
// The writer's sync timing runs on the steady clock, not on journal_options::clock, so these tests
// pin the order of events instead: writer_hold parks the writer while a burst is queued, and an
// interval far longer than any test shows that an idle append never waits for it.
#include <fabric/journal.hpp>

#include "support/support.hpp"

#include <gtest/gtest.h>
#include <lmdb.h>

#include <atomic>
#include <chrono>
#include <future>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using fabric::durability;
using fabric::errc;
using fabric::journal;
using fabric::journal_options;
using fabric::journal_txn;
using fabric::testing::fast_journal_options;
using fabric::testing::temp_dir;
using fabric::testing::wait_bound;
using fabric::testing::writer_hold;
using namespace std::chrono_literals;

journal_options periodic_options(std::chrono::milliseconds interval) {
  journal_options o;
  o.mode = durability::periodic;
  o.sync_interval = interval;
  return o;
}

std::vector<std::string> payloads_of(const journal& j, std::string_view stream) {
  std::vector<std::string> out;
  const auto replayed = j.replay(stream, 1, [&](const fabric::journal_record& r) {
    out.push_back(r.payload);
    return true;
  });
  EXPECT_TRUE(replayed);
  return out;
}

// Waits (bounded) until the journal's queue holds `n` records: how a test knows that work handed
// over from another thread is queued behind a parked writer.
bool wait_queued(const journal& j, std::uint64_t n) {
  const auto deadline = std::chrono::steady_clock::now() + wait_bound;
  while (j.stats().queued < n) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

// ---- periodic mode: when the writer syncs

TEST(JournalPeriodicTest, AnIdleAppendCompletesWithoutWaitingForTheInterval) {
  temp_dir dir;
  auto j = journal::open(dir.path(), periodic_options(std::chrono::hours(1)));
  for (std::uint64_t i = 1; i <= 3; ++i) {
    auto f = j.append("s", "alone");
    ASSERT_EQ(f.wait_for(wait_bound), std::future_status::ready) << "an idle append waited for the interval";
    EXPECT_EQ(f.get().value(), i);
    // One commit and one sync per append: nothing else was queued.
    EXPECT_EQ(j.stats().commits, i);
    EXPECT_EQ(j.stats().syncs, i);
  }
}

TEST(JournalPeriodicTest, AnIdleTransactionCompletesWithoutWaitingForTheInterval) {
  temp_dir dir;
  auto j = journal::open(dir.path(), periodic_options(std::chrono::hours(1)));
  auto done = std::async(std::launch::async, [&] { return j.transact([](journal_txn& t) { t.set_cursor("c", 7); }); });
  ASSERT_EQ(done.wait_for(wait_bound), std::future_status::ready);
  EXPECT_TRUE(done.get());
  EXPECT_EQ(j.stats().syncs, 1u);
  EXPECT_EQ(j.cursor("c").value(), 7u);
}

TEST(JournalPeriodicTest, AppendsQueuedDuringACommitShareOneSync) {
  temp_dir dir;
  auto j = journal::open(dir.path(), periodic_options(std::chrono::hours(1)));
  std::vector<std::future<fabric::result<std::uint64_t>>> burst;
  {
    writer_hold hold(j, "s");  // sequence 1, committed and synced; its completion parks the writer
    for (int i = 0; i < 100; ++i) burst.push_back(j.append("s", "burst"));
  }
  for (std::size_t i = 0; i < burst.size(); ++i) {
    ASSERT_EQ(burst[i].wait_for(wait_bound), std::future_status::ready);
    EXPECT_EQ(burst[i].get().value(), i + 2);
  }
  const auto s = j.stats();
  EXPECT_EQ(s.appends, 101u);
  EXPECT_EQ(s.commits, 2u);  // the held append, then the whole burst
  EXPECT_EQ(s.syncs, 2u);
  EXPECT_LT(s.syncs, s.appends);
}

// Work that keeps arriving does not hold completions back past the interval: once sync_interval
// has passed since the first unsynced commit, the writer syncs even with more work queued.
TEST(JournalPeriodicTest, UnderSteadyLoadTheWriterSyncsOnceTheIntervalHasPassed) {
  temp_dir dir;
  constexpr auto interval = 50ms;
  auto j = journal::open(dir.path(), periodic_options(interval));
  std::future<fabric::result<std::uint64_t>> first;
  std::future<fabric::result<std::uint64_t>> last;
  std::future<fabric::result<void>> slow;
  {
    writer_hold hold(j, "s");  // one commit, one sync
    first = j.append("s", "first");
    // A transaction that keeps the writer busy past the interval and queues more work meanwhile,
    // so the writer never finds its queue empty between `first` and `last`.
    slow = std::async(std::launch::async, [&] {
      bool queued_more = false;
      return j.transact([&](journal_txn& t) {
        t.set_cursor("slow", 1);
        if (queued_more) return;  // run again after a map growth: queue nothing twice
        queued_more = true;
        last = j.append("s", "last");
        const auto until = std::chrono::steady_clock::now() + interval;
        while (std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(1ms);
      });
    });
    ASSERT_TRUE(wait_queued(j, 2)) << "the transaction was never queued";
  }
  ASSERT_EQ(slow.wait_for(wait_bound), std::future_status::ready);
  EXPECT_TRUE(slow.get());
  ASSERT_EQ(first.wait_for(wait_bound), std::future_status::ready);
  EXPECT_EQ(first.get().value(), 2u);
  ASSERT_EQ(last.wait_for(wait_bound), std::future_status::ready);
  EXPECT_EQ(last.get().value(), 3u);
  const auto s = j.stats();
  EXPECT_EQ(s.commits, 4u);
  // The held append's sync; one once the interval had passed after the transaction's commit,
  // although `last` was queued; and `last`'s own, when the queue ran dry.
  EXPECT_EQ(s.syncs, 3u);
}

TEST(JournalPeriodicTest, AppendsFromManyThreadsEachCompleteOnceAfterASync) {
  temp_dir dir;
  auto j = journal::open(dir.path(), periodic_options(5ms));
  constexpr int threads = 4;
  constexpr int per_thread = 200;
  std::vector<std::thread> producers;
  std::atomic<int> failed{0};
  for (int t = 0; t < threads; ++t) {
    producers.emplace_back([&] {
      for (int i = 0; i < per_thread; ++i)
        if (!j.append_wait("s", "x")) failed.fetch_add(1);
    });
  }
  for (auto& p : producers) p.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(j.last_seq("s").value(), std::uint64_t{threads * per_thread});
  const auto s = j.stats();
  EXPECT_GE(s.syncs, 1u);
  EXPECT_LE(s.syncs, s.commits);
}

// ---- append_batch

TEST(JournalBatchTest, ABatchGetsConsecutiveSequencesInOrder) {
  temp_dir dir;
  auto j = journal::open(dir.path(), fast_journal_options());
  ASSERT_EQ(j.append_wait("s", "single").value(), 1u);
  const std::vector<std::string_view> batch{"a", "b", "", "d", std::string_view("e\0f", 3)};
  EXPECT_EQ(j.append_batch_wait("s", batch).value(), 2u);
  EXPECT_EQ(j.append_wait("s", "after").value(), 7u);
  EXPECT_EQ(payloads_of(j, "s"), (std::vector<std::string>{"single", "a", "b", "", "d", std::string("e\0f", 3), "after"}));
  const auto s = j.stats();
  EXPECT_EQ(s.appends, 7u);
  EXPECT_EQ(s.largest_batch, 5u);
}

TEST(JournalBatchTest, EveryCompletionFlavourCompletesOnceWithTheFirstSequence) {
  temp_dir dir;
  auto j = journal::open(dir.path(), fast_journal_options());
  const std::vector<std::string_view> batch{"x", "y", "z"};

  std::atomic<int> calls{0};
  std::promise<fabric::result<std::uint64_t>> called;
  j.append_batch("s", batch, [&](fabric::result<std::uint64_t> r) {
    calls.fetch_add(1);
    called.set_value(std::move(r));
  });
  auto by_callback = called.get_future();
  ASSERT_EQ(by_callback.wait_for(wait_bound), std::future_status::ready);
  EXPECT_EQ(by_callback.get().value(), 1u);

  fabric::completion_queue queue;
  j.append_batch("s", batch, queue, 42);

  auto by_future = j.append_batch("s", batch);
  ASSERT_EQ(by_future.wait_for(wait_bound), std::future_status::ready);
  EXPECT_EQ(by_future.get().value(), 7u);
  EXPECT_EQ(j.append_batch_wait("s", batch).value(), 10u);

  // Appends complete in the order they were made: the queued batch is done by now.
  std::vector<fabric::completion_queue::completion> got;
  queue.drain([&](fabric::completion_queue::completion&& c) { got.push_back(std::move(c)); });
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].token, 42u);
  EXPECT_EQ(got[0].seq.value(), 4u);
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(j.last_seq("s").value(), 12u);
}

TEST(JournalBatchTest, ABatchIsNeverSplitAcrossCommits) {
  temp_dir dir;
  journal_options o = fast_journal_options();
  o.max_batch = 4;
  auto j = journal::open(dir.path(), o);
  std::vector<std::future<fabric::result<std::uint64_t>>> singles;
  std::future<fabric::result<std::uint64_t>> whole;
  {
    writer_hold hold(j, "s");  // commit 1
    for (int i = 0; i < 3; ++i) singles.push_back(j.append("s", "single"));
    const std::vector<std::string_view> batch{"b1", "b2", "b3", "b4"};
    whole = j.append_batch("s", batch);  // does not fit beside the three singles
  }
  for (std::size_t i = 0; i < singles.size(); ++i) EXPECT_EQ(singles[i].get().value(), i + 2);
  EXPECT_EQ(whole.get().value(), 5u);
  const auto s = j.stats();
  EXPECT_EQ(s.commits, 3u);  // the held append; the three singles; the batch alone
  EXPECT_EQ(s.largest_batch, 4u);
  EXPECT_EQ(payloads_of(j, "s"),
            (std::vector<std::string>{"writer_hold", "single", "single", "single", "b1", "b2", "b3", "b4"}));
}

TEST(JournalBatchTest, ReadersSeeAllOfABatchOrNoneOfIt) {
  temp_dir dir;
  auto j = journal::open(dir.path(), fast_journal_options());
  constexpr std::size_t batch_size = 10;
  constexpr int batches = 200;
  std::atomic<bool> done{false};
  std::atomic<int> torn{0};
  std::thread reader([&] {
    while (!done.load()) {
      const auto infos = j.stream_infos();
      if (!infos || infos->empty()) continue;
      if ((*infos)[0].records % batch_size != 0) torn.fetch_add(1);
    }
  });
  std::vector<std::string> storage(batch_size, std::string(64, 'p'));
  const std::vector<std::string_view> batch(storage.begin(), storage.end());
  for (int i = 0; i < batches; ++i) ASSERT_TRUE(j.append_batch_wait("s", batch));
  done.store(true);
  reader.join();
  EXPECT_EQ(torn.load(), 0);
  EXPECT_EQ(j.last_seq("s").value(), batch_size * batches);
}

TEST(JournalBatchTest, AFailedCommitKeepsNoneOfTheBatch) {
  temp_dir dir;
  journal_options o = fast_journal_options();
  o.map_size = 256 * 1024;
  o.max_map_size = 256 * 1024;  // no room to grow
  auto j = journal::open(dir.path(), o);
  const std::string big(16 * 1024, 'b');
  const std::vector<std::string_view> batch(64, big);  // 1 MiB: cannot fit
  const auto r = j.append_batch_wait("s", batch);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().value(), MDB_MAP_FULL);
  EXPECT_FALSE(j.last_seq("s").value().has_value());
  const auto read = j.read("s", 1);
  ASSERT_TRUE(read);
  EXPECT_TRUE(read->records.empty());
  EXPECT_EQ(j.append_batch_wait("s", std::vector<std::string_view>{"small", "fits"}).value(), 1u);
}

TEST(JournalBatchTest, ABatchPastTheStreamBudgetFailsAloneAndKeepsNothing) {
  temp_dir dir;
  journal_options o = fast_journal_options();
  o.max_streams = 1;
  auto j = journal::open(dir.path(), o);
  ASSERT_TRUE(j.append_wait("a", "first"));
  std::future<fabric::result<std::uint64_t>> refused;
  std::future<fabric::result<std::uint64_t>> neighbour;
  {
    writer_hold hold(j, "a");
    refused = j.append_batch("b", std::vector<std::string_view>{"x", "y"});
    neighbour = j.append("a", "same commit");
  }
  EXPECT_TRUE(refused.get().is(errc::too_large));
  EXPECT_EQ(neighbour.get().value(), 3u);
  EXPECT_FALSE(j.last_seq("b").value().has_value());
  EXPECT_EQ(j.streams().value(), std::vector<std::string>{"a"});
}

TEST(JournalBatchTest, BadBatchesAreRefusedWithTheReason) {
  temp_dir dir;
  journal_options o = fast_journal_options();
  o.max_record_size = 8;
  o.max_batch = 4;
  auto j = journal::open(dir.path(), o);
  EXPECT_TRUE(j.append_batch_wait("s", {}).is(errc::invalid_argument));
  EXPECT_TRUE(j.append_batch_wait("s", std::vector<std::string_view>{"ok", "far too long"}).is(errc::too_large));
  EXPECT_TRUE(j.append_batch_wait("s", std::vector<std::string_view>(5, "x")).is(errc::too_large));
  EXPECT_TRUE(j.append_batch_wait("", std::vector<std::string_view>{"x"}).is(errc::too_large));
  EXPECT_TRUE(j.append_batch_wait(std::string(256, 's'), std::vector<std::string_view>{"x"}).is(errc::too_large));
  EXPECT_FALSE(j.last_seq("s").value().has_value());
  EXPECT_EQ(j.append_batch_wait("s", std::vector<std::string_view>(4, "x")).value(), 1u);
}

TEST(JournalBatchTest, ABatchCountsAsItsRecordsAgainstMaxPending) {
  temp_dir dir;
  journal_options o = fast_journal_options();
  o.max_pending = 4;
  auto j = journal::open(dir.path(), o);
  EXPECT_TRUE(j.append_batch_wait("s", std::vector<std::string_view>(5, "x")).is(errc::too_large));
  std::future<fabric::result<std::uint64_t>> single;
  std::future<fabric::result<std::uint64_t>> fits;
  {
    writer_hold hold(j, "s");  // sequence 1; the queue cannot drain meanwhile
    single = j.append("s", "single");
    auto over = j.append_batch("s", std::vector<std::string_view>(4, "x"));  // 1 + 4 > 4
    ASSERT_EQ(over.wait_for(0s), std::future_status::ready);
    EXPECT_TRUE(over.get().is(errc::back_pressure));
    fits = j.append_batch("s", std::vector<std::string_view>(3, "x"));
    EXPECT_EQ(j.stats().queued, 4u);
    auto full = j.append("s", "one more");
    ASSERT_EQ(full.wait_for(0s), std::future_status::ready);
    EXPECT_TRUE(full.get().is(errc::back_pressure));
  }
  EXPECT_EQ(single.get().value(), 2u);
  EXPECT_EQ(fits.get().value(), 3u);
  EXPECT_EQ(j.stats().queued, 0u);
}

TEST(JournalBatchTest, AReadOnlyJournalRefusesABatch) {
  temp_dir dir;
  { auto j = journal::open(dir.path(), fast_journal_options()); }
  journal_options o = fast_journal_options();
  o.read_only = true;
  auto j = journal::open(dir.path(), o);
  EXPECT_TRUE(j.append_batch_wait("s", std::vector<std::string_view>{"x"}).is(errc::invalid_state));
}

TEST(JournalBatchTest, BatchesAndSingleAppendsFromManyThreadsInterleaveWithoutTearing) {
  temp_dir dir;
  auto j = journal::open(dir.path(), fast_journal_options());
  constexpr int batch_threads = 2;
  constexpr int single_threads = 2;
  constexpr int rounds = 100;
  constexpr std::size_t batch_size = 8;
  struct placed {
    std::uint64_t first;
    std::vector<std::string> payloads;
  };
  std::vector<std::vector<placed>> batches(batch_threads);
  std::vector<std::thread> threads;
  for (int t = 0; t < batch_threads; ++t) {
    threads.emplace_back([&, t] {
      for (int r = 0; r < rounds; ++r) {
        std::vector<std::string> payloads;
        for (std::size_t k = 0; k < batch_size; ++k)
          payloads.push_back("b" + std::to_string(t) + "." + std::to_string(r) + "." + std::to_string(k));
        const std::vector<std::string_view> views(payloads.begin(), payloads.end());
        const auto first = j.append_batch_wait("s", views);
        if (!first) return;  // reported below: the batch count falls short
        batches[static_cast<std::size_t>(t)].push_back({*first, std::move(payloads)});
      }
    });
  }
  std::atomic<int> singles_ok{0};
  for (int t = 0; t < single_threads; ++t) {
    threads.emplace_back([&, t] {
      for (int r = 0; r < rounds * 2; ++r)
        if (j.append_wait("s", "s" + std::to_string(t) + "." + std::to_string(r))) singles_ok.fetch_add(1);
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(singles_ok.load(), single_threads * rounds * 2);
  const auto all = payloads_of(j, "s");
  ASSERT_EQ(all.size(), std::size_t{batch_threads * rounds * batch_size + single_threads * rounds * 2});
  std::set<std::string> distinct(all.begin(), all.end());
  EXPECT_EQ(distinct.size(), all.size()) << "a record landed twice";
  for (const auto& mine : batches) {
    ASSERT_EQ(mine.size(), std::size_t{rounds});
    std::uint64_t previous = 0;
    for (const auto& b : mine) {
      EXPECT_GT(b.first, previous);  // one thread's batches land in the order it made them
      previous = b.first;
      for (std::size_t k = 0; k < batch_size; ++k) EXPECT_EQ(all[b.first - 1 + k], b.payloads[k]);
    }
  }
}

TEST(JournalBatchTest, APeriodicBatchCompletesOnceAfterOneSync) {
  temp_dir dir;
  auto j = journal::open(dir.path(), periodic_options(std::chrono::hours(1)));
  auto f = j.append_batch("s", std::vector<std::string_view>{"one", "two", "three"});
  ASSERT_EQ(f.wait_for(wait_bound), std::future_status::ready);
  EXPECT_EQ(f.get().value(), 1u);
  const auto s = j.stats();
  EXPECT_EQ(s.commits, 1u);
  EXPECT_EQ(s.syncs, 1u);
  EXPECT_EQ(s.appends, 3u);
}

}  // namespace
