// Tests of the asynchronous journal transaction, journal::transact(fn, done): it completes once
// durable, keeps nothing of a function that throws and hands the exception back, completes in
// the order work was handed over (mixed with appends, in sync and periodic mode), and refuses
// at once on a closing or read-only journal.
#include <fabric/journal.hpp>

#include "support/support.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using fabric::durability;
using fabric::errc;
using fabric::journal;
using fabric::journal_options;
using fabric::journal_txn;
using fabric::result;
using fabric::testing::fast_journal_options;
using fabric::testing::temp_dir;
using fabric::testing::wait_bound;
using fabric::testing::writer_hold;
using namespace std::chrono_literals;

// What one asynchronous transaction ended with, and what the journal had done by then.
struct outcome {
  result<void> result_of;
  std::exception_ptr thrown;
  std::thread::id thread;
  std::uint64_t commits = 0;
  std::uint64_t syncs = 0;
};

// A transact_callback that hands its outcome to a future, with the journal's counts at the time.
std::pair<journal::transact_callback, std::future<outcome>> completion(const journal& j) {
  auto promise = std::make_shared<std::promise<outcome>>();
  auto future = promise->get_future();
  journal::transact_callback done = [promise, &j](result<void> r, std::exception_ptr thrown) {
    const auto s = j.stats();
    promise->set_value(outcome{r, thrown, std::this_thread::get_id(), s.commits, s.syncs});
  };
  return {std::move(done), std::move(future)};
}

outcome wait(std::future<outcome>& f) {
  if (f.wait_for(wait_bound) != std::future_status::ready) {
    ADD_FAILURE() << "the transaction did not complete within " << wait_bound.count() << " ms";
    return {};
  }
  return f.get();
}

// Records the order completions arrive in, and lets a test wait (bounded) for a number of them.
class completion_log {
 public:
  void add(std::string what) {
    std::lock_guard lock(mutex_);
    entries_.push_back(std::move(what));
    cv_.notify_all();
  }
  std::vector<std::string> wait_for(std::size_t n) {
    std::unique_lock lock(mutex_);
    if (!cv_.wait_for(lock, wait_bound, [&] { return entries_.size() >= n; }))
      ADD_FAILURE() << "only " << entries_.size() << " of " << n << " completions arrived";
    return entries_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<std::string> entries_;
};

TEST(JournalAsyncTransactTest, CompletesOnTheWriterThreadOnceCommitted) {
  temp_dir dir;
  journal_options o;  // durability::sync: durable at commit
  auto j = journal::open(dir.path(), o);
  auto [done, future] = completion(j);
  j.transact(
      [](journal_txn& t) {
        t.put("accounts", "alice", "100");
        (void)t.append("outbox", "credited alice");
      },
      std::move(done));
  const outcome o1 = wait(future);
  EXPECT_TRUE(o1.result_of) << o1.result_of.error().message();
  EXPECT_FALSE(o1.thrown);
  EXPECT_NE(o1.thread, std::this_thread::get_id());
  EXPECT_EQ(o1.commits, 1U);  // counted before the completion ran
  EXPECT_EQ(j.get("accounts", "alice").value(), "100");
  EXPECT_EQ(j.last_seq("outbox").value(), 1U);
}

TEST(JournalAsyncTransactTest, InPeriodicModeCompletesOnlyOnceSynced) {
  temp_dir dir;
  journal_options o;
  o.mode = durability::periodic;
  o.sync_interval = std::chrono::hours(1);  // a lone transaction must not wait for it
  auto j = journal::open(dir.path(), o);
  auto [done, future] = completion(j);
  j.transact([](journal_txn& t) { t.put("accounts", "bob", "7"); }, std::move(done));
  const outcome o1 = wait(future);
  EXPECT_TRUE(o1.result_of);
  EXPECT_FALSE(o1.thrown);
  EXPECT_EQ(o1.syncs, 1U);
  EXPECT_EQ(j.get("accounts", "bob").value(), "7");
}

TEST(JournalAsyncTransactTest, AFunctionThatThrowsKeepsNothingAndHandsTheExceptionBack) {
  temp_dir dir;
  auto j = journal::open(dir.path(), fast_journal_options());
  ASSERT_TRUE(j.append_wait("outbox", "before"));
  auto [done, future] = completion(j);
  j.transact(
      [](journal_txn& t) {
        t.put("accounts", "carol", "5");
        (void)t.append("outbox", "never");
        t.set_cursor("consumer", 9);
        throw std::runtime_error("the application changed its mind");
      },
      std::move(done));
  const outcome o1 = wait(future);
  EXPECT_TRUE(o1.result_of);  // the journal did its part: the failure is the function's
  ASSERT_TRUE(o1.thrown);
  try {
    std::rethrow_exception(o1.thrown);
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "the application changed its mind");
  } catch (...) {
    ADD_FAILURE() << "another exception came back";
  }
  EXPECT_FALSE(j.get("accounts", "carol").value().has_value());
  EXPECT_EQ(j.last_seq("outbox").value(), 1U);
  EXPECT_FALSE(j.cursor("consumer").value().has_value());
  // The writer carries on.
  auto [again, next] = completion(j);
  j.transact([](journal_txn& t) { (void)t.append("outbox", "after"); }, std::move(again));
  EXPECT_TRUE(wait(next).result_of);
  EXPECT_EQ(j.last_seq("outbox").value(), 2U);
}

// Queues appends and transactions, interleaved, while the writer is parked, so they are taken in
// one pass; each must complete in the order it was handed over, with sequences in that order.
void expect_submission_order(journal& j) {
  completion_log log;
  std::vector<std::string> expected;
  {
    writer_hold hold(j, "hold");
    for (int i = 0; i < 4; ++i) {
      const std::string a = "append " + std::to_string(i);
      j.append("s", a, [&log, a](result<std::uint64_t> r) {
        log.add(a + (r ? " @" + std::to_string(*r) : " failed"));
      });
      const std::string t = "transaction " + std::to_string(i);
      j.transact([t](journal_txn& x) { (void)x.append("s", t); },
                 [&log, t](result<void> r, std::exception_ptr thrown) {
                   log.add(t + (r && !thrown ? "" : " failed"));
                 });
      expected.push_back(a + " @" + std::to_string(2 * i + 1));
      expected.push_back(t);
    }
    const std::string_view batch[] = {"b1", "b2"};
    j.append_batch("s", batch, [&log](result<std::uint64_t> r) {
      log.add(r ? "batch @" + std::to_string(*r) : "batch failed");
    });
    expected.push_back("batch @9");
  }
  EXPECT_EQ(log.wait_for(expected.size()), expected);
  std::vector<std::string> stored;
  ASSERT_TRUE(j.replay("s", 1, [&](const fabric::journal_record& r) {
    stored.push_back(r.payload);
    return true;
  }));
  EXPECT_EQ(stored, (std::vector<std::string>{"append 0", "transaction 0", "append 1", "transaction 1", "append 2",
                                              "transaction 2", "append 3", "transaction 3", "b1", "b2"}));
}

TEST(JournalAsyncTransactTest, TransactionsAndAppendsCompleteInTheOrderHandedOver) {
  temp_dir dir;
  auto j = journal::open(dir.path(), fast_journal_options());
  expect_submission_order(j);
}

// Periodic mode completes at each sync everything committed since the previous one: in the
// order handed over too, appends and transactions interleaved.
TEST(JournalAsyncTransactTest, TransactionsAndAppendsCompleteInTheOrderHandedOverInPeriodicMode) {
  temp_dir dir;
  journal_options o;
  o.mode = durability::periodic;
  o.sync_interval = std::chrono::hours(1);  // the burst is synced once, when the queue runs dry
  auto j = journal::open(dir.path(), o);
  expect_submission_order(j);
}

TEST(JournalAsyncTransactTest, ManyTransactionsInFlightAllCommitInTurn) {
  temp_dir dir;
  auto j = journal::open(dir.path(), fast_journal_options());
  constexpr int n = 200;
  completion_log log;
  for (int i = 0; i < n; ++i) {
    j.transact(
        [](journal_txn& t) {
          const auto v = t.get("counters", "n");
          const int was = v && *v ? std::stoi(**v) : 0;
          t.put("counters", "n", std::to_string(was + 1));
        },
        [&log, i](result<void> r, std::exception_ptr thrown) {
          log.add(std::to_string(i) + (r && !thrown ? "" : " failed"));
        });
  }
  const auto order = log.wait_for(n);
  ASSERT_EQ(order.size(), static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) EXPECT_EQ(order[static_cast<std::size_t>(i)], std::to_string(i));
  EXPECT_EQ(j.get("counters", "n").value(), std::to_string(n));
}

TEST(JournalAsyncTransactTest, AReadOnlyJournalRefusesAtOnceWithInvalidState) {
  temp_dir dir;
  { auto w = journal::open(dir.path(), fast_journal_options()); }
  journal_options o = fast_journal_options();
  o.read_only = true;
  auto j = journal::open(dir.path(), o);
  bool ran = false;
  bool done = false;
  j.transact([&](journal_txn&) { ran = true; },
             [&](result<void> r, std::exception_ptr thrown) {
               done = true;
               EXPECT_TRUE(r.is(errc::invalid_state)) << r.error().message();
               EXPECT_FALSE(thrown);
             });
  EXPECT_TRUE(done) << "a refusal completes before transact returns";
  EXPECT_FALSE(ran);
}

TEST(JournalAsyncTransactTest, AClosingJournalRefusesAtOnceWithClosed) {
  // A transaction handed over from a completion while the journal is being destroyed (how a
  // pipelining caller meets a closing journal): the writer is parked in that completion while
  // another thread destroys the journal, and hands transactions over until one is refused.
  temp_dir dir;
  auto owner = std::make_unique<journal>(journal::open(dir.path(), fast_journal_options()));
  journal* j = owner.get();
  std::promise<void> closing;
  auto closing_started = closing.get_future().share();
  std::promise<void> parked;
  auto parked_future = parked.get_future();
  // Written on the writer thread only; read here after it has been joined.
  int accepted = 0;
  int completed_ok = 0;
  bool refused_closed = false;
  j->append("s", "first", [&](result<std::uint64_t>) {
    parked.set_value();
    if (closing_started.wait_for(wait_bound) != std::future_status::ready) return;
    const auto deadline = std::chrono::steady_clock::now() + wait_bound;
    while (std::chrono::steady_clock::now() < deadline) {
      // An accepted transaction completes later, on this same thread, during the journal's drain.
      auto verdict = std::make_shared<std::optional<result<void>>>();
      j->transact([](journal_txn& t) { (void)t.append("s", "late"); },
                  [verdict, &completed_ok](result<void> r, std::exception_ptr thrown) {
                    *verdict = r;
                    if (r && !thrown) ++completed_ok;
                  });
      if (verdict->has_value()) {  // answered before transact returned: a refusal
        refused_closed = (*verdict)->is(errc::closed);
        return;
      }
      ++accepted;
      std::this_thread::yield();
    }
  });
  ASSERT_EQ(parked_future.wait_for(wait_bound), std::future_status::ready);
  std::thread destroyer([&] {
    closing.set_value();
    owner.reset();
  });
  destroyer.join();
  EXPECT_TRUE(refused_closed) << "no transaction was refused with errc::closed while the journal closed";
  // Everything accepted before the refusal was committed and completed before the journal went.
  EXPECT_EQ(completed_ok, accepted);
}

}  // namespace
