// Task queues end to end, in one process: a task_producer over its journal and task_workers over
// ipc, with priorities, delays, expiry, failures, rejections, workers that vanish or overrun their
// deadline, and producer restarts; every completion recorded once, in the producer's journal.
#include "support/support.hpp"

#include <fabric/task_queue.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using fabric::journal;
using fabric::task_producer;
using fabric::task_producer_options;
using fabric::task_worker;
using fabric::task_worker_options;
using fabric::testing::temp_dir;
using fabric::testing::wait_bound;

// Waits until `pred()` holds, at most `bound`, checking every few milliseconds.
bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds bound = wait_bound) {
  const auto deadline = std::chrono::steady_clock::now() + bound;
  std::mutex mu;
  std::condition_variable never;
  for (;;) {
    if (pred()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::unique_lock lock(mu);
    never.wait_for(lock, 5ms);  // a bounded poll
  }
}

// What the workers ran, shared with the test.
class ledger {
 public:
  void ran(std::uint64_t id, const std::string& worker) {
    std::lock_guard lock(mu_);
    runs_.push_back({id, worker});
  }
  std::vector<std::pair<std::uint64_t, std::string>> runs() const {
    std::lock_guard lock(mu_);
    return runs_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::pair<std::uint64_t, std::string>> runs_;
};

class TaskQueueTest : public ::testing::Test {
 protected:
  TaskQueueTest() : endpoint_("ipc://" + (dir_.path() / "q.sock").string()) {}

  journal open_journal(const std::string& name = "producer") {
    return journal::open(dir_.path() / name, fabric::testing::fast_journal_options());
  }

  task_producer_options producer_options(std::chrono::milliseconds deadline = 5000ms, std::uint32_t attempts = 3) {
    task_producer_options o;
    o.endpoint = endpoint_;
    o.queues = {{.name = "jobs", .deadline = deadline, .max_attempts = attempts}};
    o.heartbeat = 100ms;
    o.retry_base = 10ms;
    o.retry_max = 50ms;
    o.on_result = [](const fabric::task_result& r, fabric::journal_txn& t) {
      t.put("results", std::to_string(r.task_id), r.body);
    };
    return o;
  }

  task_worker_options worker_options(const std::string& name, std::function<std::string(const fabric::task&)> fn,
                                     std::uint32_t capacity = 1) {
    task_worker_options o;
    o.name = name;
    o.endpoint = endpoint_;
    o.queue = "jobs";
    o.capacity = capacity;
    o.on_task = std::move(fn);
    o.heartbeat = 100ms;
    o.reconnect_interval = 10ms;
    o.reconnect_interval_max = 100ms;
    return o;
  }

  static std::size_t results_in(journal& j) {
    auto rows = j.table_entries("results", {}, 100'000);
    return rows ? rows->size() : 0;
  }

  static std::uint64_t completed(task_producer& p) { return p.stats().queues.at(0).completed; }

  fabric::context ctx_;
  temp_dir dir_;
  std::string endpoint_;
};

TEST_F(TaskQueueTest, EveryTaskCompletesOnceAcrossWorkers) {
  journal j = open_journal();
  task_producer p(ctx_, j, producer_options());
  ledger l;
  task_worker a(ctx_, worker_options("a", [&l](const fabric::task& t) {
                  l.ran(t.id, "a");
                  return "done:" + std::string(t.body);
                }, 2));
  task_worker b(ctx_, worker_options("b", [&l](const fabric::task& t) {
                  l.ran(t.id, "b");
                  return "done:" + std::string(t.body);
                }, 2));
  for (int i = 1; i <= 300; ++i) ASSERT_TRUE(p.submit("jobs", "t" + std::to_string(i)));
  ASSERT_TRUE(eventually([&] { return completed(p) == 300; }));
  EXPECT_EQ(results_in(j), 300u);
  auto r = j.get("results", "42");
  ASSERT_TRUE(r && *r);
  EXPECT_EQ(**r, "done:t42");
  std::set<std::uint64_t> ids;
  for (const auto& [id, w] : l.runs()) ids.insert(id);
  EXPECT_EQ(ids.size(), 300u);
  const auto s = p.stats();
  EXPECT_EQ(s.queues[0].in_progress, 0u);
  EXPECT_EQ(s.queues[0].dead_lettered, 0u);
  EXPECT_EQ(s.workers.size(), 2u);
}

TEST_F(TaskQueueTest, HigherPrioritiesGoFirst) {
  journal j = open_journal();
  auto po = producer_options();
  po.aging_interval = 60s;  // no aging within the test
  task_producer p(ctx_, j, po);
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(p.submit("jobs", "low", {.priority = 7}));
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(p.submit("jobs", "high", {.priority = 0}));
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(p.submit("jobs", "mid", {.priority = 3}));
  std::mutex mu;
  std::vector<std::string> order;
  task_worker w(ctx_, worker_options("w", [&](const fabric::task& t) {
                  std::lock_guard lock(mu);
                  order.emplace_back(t.body);
                  return std::string();
                }));
  ASSERT_TRUE(eventually([&] { return completed(p) == 60; }));
  std::lock_guard lock(mu);
  ASSERT_EQ(order.size(), 60u);
  for (std::size_t i = 0; i < 20; ++i) EXPECT_EQ(order[i], "high") << i;
  for (std::size_t i = 20; i < 40; ++i) EXPECT_EQ(order[i], "mid") << i;
  for (std::size_t i = 40; i < 60; ++i) EXPECT_EQ(order[i], "low") << i;
}

TEST_F(TaskQueueTest, ADelayedTaskWaitsForItsTime) {
  journal j = open_journal();
  task_producer p(ctx_, j, producer_options());
  std::atomic<std::int64_t> ran_at{0};
  task_worker w(ctx_, worker_options("w", [&](const fabric::task&) {
                  ran_at = std::chrono::system_clock::now().time_since_epoch().count();
                  return std::string();
                }));
  const auto not_before = std::chrono::system_clock::now() + 300ms;
  ASSERT_TRUE(p.submit("jobs", "later", {.not_before = not_before}));
  ASSERT_TRUE(eventually([&] { return completed(p) == 1; }));
  EXPECT_GE(ran_at.load(), not_before.time_since_epoch().count());
}

TEST_F(TaskQueueTest, ATaskNotStartedWithinItsTtlIsDeadLetteredAsExpired) {
  journal j = open_journal();
  task_producer p(ctx_, j, producer_options());
  ASSERT_TRUE(p.submit("jobs", "soon stale", {.ttl = 50ms}));
  // The counter moves when the dead letter is handed to the journal; the record is readable once
  // that commit is done.
  ASSERT_TRUE(eventually([&] {
    auto letters = j.dead_letters();
    return p.stats().queues.at(0).dead_lettered == 1 && letters && letters->size() == 1;
  }));
  auto dl = j.dead_letters();
  ASSERT_TRUE(dl);
  ASSERT_EQ(dl->size(), 1u);
  EXPECT_EQ(dl->front().stream, task_producer::journal_stream("jobs"));
  EXPECT_EQ(dl->front().reason, "expired");
  EXPECT_EQ(p.stats().queues.at(0).expired, 1u);
}

TEST_F(TaskQueueTest, AFailingTaskIsRetriedThenDeadLetteredWithTheReason) {
  journal j = open_journal();
  task_producer p(ctx_, j, producer_options(5000ms, 3));
  std::atomic<int> attempts{0};
  task_worker w(ctx_, worker_options("w", [&](const fabric::task& t) -> std::string {
                  ++attempts;
                  if (t.body == "poison") throw std::runtime_error("cannot parse");
                  if (t.body == "reject") throw fabric::task_rejected("never valid");
                  return "ok";
                }));
  ASSERT_TRUE(p.submit("jobs", "poison"));
  ASSERT_TRUE(p.submit("jobs", "reject"));
  ASSERT_TRUE(p.submit("jobs", "fine"));
  ASSERT_TRUE(eventually([&] {
    const auto s = p.stats().queues.at(0);
    return s.dead_lettered == 2 && s.completed == 1;
  }));
  EXPECT_EQ(attempts.load(), 3 + 1 + 1);
  auto dl = j.dead_letters();
  ASSERT_TRUE(dl);
  ASSERT_EQ(dl->size(), 2u);
  std::map<std::string, std::string> reasons;
  for (const auto& d : *dl) reasons[d.payload.substr(33)] = d.reason;  // after the record's header
  EXPECT_NE(reasons["poison"].find("cannot parse"), std::string::npos) << reasons["poison"];
  EXPECT_NE(reasons["reject"].find("never valid"), std::string::npos) << reasons["reject"];
}

TEST_F(TaskQueueTest, ARequeuedDeadLetterRunsAgainAfterARestart) {
  // What `fabric-journal dlq requeue` does, with the producer stopped: the task comes back as a
  // new record of its queue, and a TTL counts from then.
  journal j = open_journal();
  std::atomic<bool> accept{false};
  auto handler = [&accept](const fabric::task& t) -> std::string {
    if (!accept) throw fabric::task_rejected("not now");
    return "ran " + std::string(t.body);
  };
  std::uint64_t dead = 0;
  {
    task_producer p(ctx_, j, producer_options());
    task_worker w(ctx_, worker_options("w", handler));
    ASSERT_TRUE(p.submit("jobs", "retry me", {.ttl = 60s}));
    ASSERT_TRUE(eventually([&] { return p.stats().queues.at(0).dead_lettered == 1; }));
    auto dl = j.dead_letters();
    ASSERT_TRUE(dl && dl->size() == 1);
    dead = dl->front().id;
  }
  auto again = j.requeue(dead);
  ASSERT_TRUE(again);
  accept = true;
  task_producer p(ctx_, j, producer_options());
  task_worker w(ctx_, worker_options("w", handler));
  ASSERT_TRUE(eventually([&] { return completed(p) == 1; }));
  auto r = j.get("results", std::to_string(*again));
  ASSERT_TRUE(r && *r);
  EXPECT_EQ(**r, "ran retry me");
}

TEST_F(TaskQueueTest, AVanishedWorkersTaskGoesToAnother) {
  journal j = open_journal();
  task_producer p(ctx_, j, producer_options());
  // A worker that takes the task and is then stopped without a word, as if killed.
  task_worker_options silent = worker_options("silent", {});
  silent.on_task = {};
  std::atomic<bool> got{false};
  silent.on_task_async = [&got](const fabric::task&) { got = true; };
  task_worker gone(ctx_, silent);
  ASSERT_TRUE(p.submit("jobs", "x"));
  ASSERT_TRUE(eventually([&] { return got.load(); }));
  ASSERT_TRUE(gone.stop());
  ledger l;
  task_worker other(ctx_, worker_options("other", [&l](const fabric::task& t) {
                      l.ran(t.id, "other");
                      return std::string("ok");
                    }));
  ASSERT_TRUE(eventually([&] { return completed(p) == 1; }));
  ASSERT_EQ(l.runs().size(), 1u);
  const auto s = p.stats();
  EXPECT_EQ(s.queues[0].requeues, 1u);
  EXPECT_GE(s.workers_lost, 1u);
}

TEST_F(TaskQueueTest, AnAttemptPastItsDeadlineIsTakenBackAndItsLateResultDropped) {
  journal j = open_journal();
  task_producer p(ctx_, j, producer_options(200ms));
  std::mutex mu;
  std::vector<std::pair<std::uint64_t, std::uint32_t>> held;
  std::atomic<int> cancels{0};
  task_worker_options slow = worker_options("slow", {});
  slow.on_task = {};
  slow.on_task_async = [&](const fabric::task& t) {
    std::lock_guard lock(mu);
    held.emplace_back(t.id, t.attempt);
  };
  slow.on_cancel = [&](std::uint64_t, std::uint32_t) { ++cancels; };
  task_worker w(ctx_, slow);
  ASSERT_TRUE(p.submit("jobs", "x"));
  // The first attempt overruns; the second is answered.
  ASSERT_TRUE(eventually([&] {
    std::lock_guard lock(mu);
    return held.size() >= 2;
  }));
  EXPECT_GE(cancels.load(), 1);
  std::pair<std::uint64_t, std::uint32_t> first, second;
  {
    std::lock_guard lock(mu);
    first = held[0];
    second = held[1];
  }
  EXPECT_EQ(first.first, second.first);
  EXPECT_LT(first.second, second.second);
  w.complete(first.first, first.second, "late");
  w.complete(second.first, second.second, "on time");
  ASSERT_TRUE(eventually([&] { return completed(p) == 1; }));
  auto r = j.get("results", std::to_string(first.first));
  ASSERT_TRUE(r && *r);
  EXPECT_EQ(**r, "on time");
}

TEST_F(TaskQueueTest, ATasksOwnDeadlineAndAttemptsOverrideTheQueues) {
  journal j = open_journal();
  task_producer p(ctx_, j, producer_options(60s, 5));
  std::atomic<int> seen{0};
  task_worker_options silent = worker_options("silent", {});
  silent.on_task = {};
  silent.on_task_async = [&seen](const fabric::task&) { ++seen; };  // never answers
  task_worker w(ctx_, silent);
  // Its own 100 ms deadline, twice, then dead: the queue's 60 s and 5 attempts do not apply.
  ASSERT_TRUE(p.submit("jobs", "quick", {.deadline = 100ms, .max_attempts = 2}));
  ASSERT_TRUE(eventually([&] { return p.stats().queues.at(0).dead_lettered == 1; }));
  EXPECT_EQ(seen.load(), 2);
  auto dl = j.dead_letters();
  ASSERT_TRUE(dl && dl->size() == 1);
  EXPECT_NE(dl->front().reason.find("deadline"), std::string::npos) << dl->front().reason;
}

TEST_F(TaskQueueTest, ARestartedProducerResumesItsTasks) {
  journal j = open_journal();
  {
    task_producer p(ctx_, j, producer_options());
    for (int i = 0; i < 50; ++i) ASSERT_TRUE(p.submit("jobs", "t"));
  }
  task_producer p(ctx_, j, producer_options());
  EXPECT_EQ(p.stats().queues.at(0).ready, 50u);
  task_worker w(ctx_, worker_options("w", [](const fabric::task&) { return std::string("ok"); }, 4));
  ASSERT_TRUE(eventually([&] { return completed(p) == 50; }));
  EXPECT_EQ(results_in(j), 50u);
}

TEST_F(TaskQueueTest, FinishedTasksLeaveTheJournal) {
  journal j = open_journal();
  task_producer p(ctx_, j, producer_options());
  task_worker w(ctx_, worker_options("w", [](const fabric::task&) { return std::string("ok"); }, 4));
  for (int i = 0; i < 200; ++i) ASSERT_TRUE(p.submit("jobs", "t"));
  ASSERT_TRUE(eventually([&] { return completed(p) == 200; }));
  // The watermark follows the completions one commit behind; retention then trims the stream.
  ASSERT_TRUE(p.submit("jobs", "one more"));
  ASSERT_TRUE(eventually([&] {
    auto c = j.cursor("frq.finished/jobs");
    return c && *c && **c >= 200;
  }));
}

TEST_F(TaskQueueTest, TasksWrittenInTheApplicationsTransactionRunAfterFlush) {
  journal j = open_journal();
  task_producer p(ctx_, j, producer_options());
  task_worker w(ctx_, worker_options("w", [](const fabric::task& t) { return std::string(t.body); }));
  ASSERT_TRUE(j.transact([&](fabric::journal_txn& t) {
    t.put("orders", "o1", "placed");
    p.submit(t, "jobs", "bill o1");
  }));
  p.flush();
  ASSERT_TRUE(eventually([&] { return completed(p) == 1; }));
  auto r = j.get("results", "1");
  ASSERT_TRUE(r && *r);
  EXPECT_EQ(**r, "bill o1");
}

TEST_F(TaskQueueTest, BadOptionsAndSubmissionsAreRefused) {
  journal j = open_journal();
  fabric::testing::expect_error(fabric::errc::invalid_argument, [&] {
    auto o = producer_options();
    o.queues.clear();
    task_producer p(ctx_, j, o);
  });
  fabric::testing::expect_error(fabric::errc::invalid_argument, [&] {
    auto o = producer_options();
    o.queues.push_back(o.queues.front());
    task_producer p(ctx_, j, o);
  });
  fabric::testing::expect_error(fabric::errc::invalid_argument, [&] {
    auto o = worker_options("w", {});
    task_worker w(ctx_, o);  // no handler
  });
  task_producer p(ctx_, j, producer_options());
  EXPECT_TRUE(p.submit("nope", "x").is(fabric::errc::invalid_argument));
  EXPECT_TRUE(p.submit("jobs", "x", {.priority = 8}).is(fabric::errc::invalid_argument));
}

}  // namespace
