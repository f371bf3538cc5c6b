// Work queues across processes: a producer and its workers each in a process of its own
// (fabric-test-frq-peer, tests/support/frq_peer_main.cpp). Workers are killed with -9 or crash in
// the middle of a task, stopped with SIGSTOP past their deadline and resumed, or join while a
// burst is being worked off; each run is judged from the producer's own journal by the queue
// checker: every task completed exactly once, by an execution a worker really started.
#include "support/task_queue_run.hpp"

#include <gtest/gtest.h>

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

using namespace std::chrono_literals;
using fabric::testing::check_task_queue;
using fabric::testing::task_queue_history;
using fabric::testing::task_queue_report;
using fabric::testing::task_queue_run;

/// The bound on a run finishing once its faults are over.
constexpr auto finish_bound = 30s;

task_queue_report judge(task_queue_run& run, std::uint64_t count) {
  task_queue_history h;
  run.gather(count, h);
  return check_task_queue(h, task_queue_run::result_of);
}

// The value of the last "<word> <n>" pair of `line` that names `word`, if any.
std::uint64_t field(std::string_view line, std::string_view word) {
  std::istringstream in{std::string(line)};
  std::uint64_t value = 0;
  for (std::string w; in >> w;) {
    if (w == word) in >> value;
  }
  return value;
}

// Whether `out` holds a "stats ..." line whose `word` count is at least `n`.
bool stats_reached(std::string_view out, std::string_view word, std::uint64_t n) {
  for (std::size_t at = 0; (at = out.find("stats ", at)) != std::string_view::npos; ++at) {
    const auto end = out.find('\n', at);
    if (end == std::string_view::npos) break;
    if (field(out.substr(at, end - at), word) >= n) return true;
  }
  return false;
}

// The id and attempt of the first "start <id> <attempt>" line of an announcing worker.
std::pair<std::uint64_t, std::uint32_t> first_start(const std::string& out) {
  const auto at = out.find("start ");
  if (at == std::string::npos) return {0, 0};
  std::istringstream in(out.substr(at + 6));
  std::uint64_t id = 0;
  std::uint32_t attempt = 0;
  in >> id >> attempt;
  return {id, attempt};
}

TEST(TaskQueueProcessTest, ATaskWhoseWorkerIsKilledMidTaskIsCompletedOnceByAnother) {
  constexpr std::uint64_t count = 20;
  task_queue_run run(FABRIC_TEST_FRQ_PEER);
  ASSERT_NO_FATAL_FAILURE(run.start_producer(count));
  // The doomed worker's task takes a minute: it is certainly running when the kill comes.
  ASSERT_NO_FATAL_FAILURE(run.start_worker("doomed", {"--mode", "slow:60000", "--announce"}));
  // One write() per line: once "start " is in, the whole line is.
  ASSERT_TRUE(run.worker("doomed").read_until("start ", task_queue_run::start_bound)) << run.worker("doomed").err;
  const auto [id, attempt] = first_start(run.worker("doomed").out);
  ASSERT_NE(id, 0u) << run.worker("doomed").out;
  ASSERT_NO_FATAL_FAILURE(run.start_worker("rescuer", {"--capacity", "2"}));
  ASSERT_NO_FATAL_FAILURE(run.kill_worker("doomed"));
  ASSERT_TRUE(run.producer().read_until("complete\n", finish_bound)) << run.producer().err;
  run.kill_all();

  const task_queue_report r = judge(run, count);
  EXPECT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(r.submitted, count);
  EXPECT_EQ(r.completed, count);
  const auto done = run.completions_of(id);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].first, "rescuer");
  EXPECT_GT(done[0].second, attempt) << "the task was completed in the attempt the killed worker held";
  const auto ran = run.executions_of(id);
  EXPECT_NE(std::find(ran.begin(), ran.end(), std::make_pair(std::string("doomed"), attempt)), ran.end());
}

TEST(TaskQueueProcessTest, ATaskWhoseWorkerCrashesMidTaskIsCompletedOnceByAnother) {
  constexpr std::uint64_t count = 30;
  constexpr std::uint64_t crash_on = 3;  // the crasher's third task ends it
  task_queue_run run(FABRIC_TEST_FRQ_PEER);
  ASSERT_NO_FATAL_FAILURE(run.start_producer(count));
  ASSERT_NO_FATAL_FAILURE(
      run.start_worker("crasher", {"--mode", "crash-on-task:" + std::to_string(crash_on), "--announce"}));
  ASSERT_NO_FATAL_FAILURE(run.expect_worker_exit("crasher", 42, finish_bound));
  ASSERT_NO_FATAL_FAILURE(run.start_worker("rescuer", {"--capacity", "2"}));
  ASSERT_TRUE(run.producer().read_until("complete\n", finish_bound)) << run.producer().err;
  run.kill_all();

  const task_queue_report r = judge(run, count);
  EXPECT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(r.completed, count);
  // The crasher took tasks 1, 2, 3 in order, one at a time: the third is the one it died in.
  const auto done = run.completions_of(crash_on);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].first, "rescuer");
  EXPECT_EQ(done[0].second, 2u);
  for (std::uint64_t id = 1; id < crash_on; ++id) {
    const auto before = run.completions_of(id);
    ASSERT_EQ(before.size(), 1u);
    EXPECT_EQ(before[0].first, "crasher") << "task " << id << " was finished before the crash";
  }
  EXPECT_EQ(run.executions_per_worker()["crasher"], crash_on);
}

TEST(TaskQueueProcessTest, AWorkerStoppedPastItsDeadlineLosesItsTaskAndItsLateResultIsDropped) {
  task_queue_run run(FABRIC_TEST_FRQ_PEER);
  // The attempt's deadline (1.5 s) passes while the sleeper is stopped; its heartbeat interval is
  // long, so the producer takes the task back for its deadline, not for the silence.
  ASSERT_NO_FATAL_FAILURE(run.start_producer(1, {"--deadline-ms", "1500", "--announce-results"}));
  ASSERT_NO_FATAL_FAILURE(run.start_worker(
      "sleeper", {"--mode", "slow:1000", "--heartbeat-ms", "2000", "--announce", "--report-stats"}));
  ASSERT_TRUE(run.worker("sleeper").read_until("start 1 1\n", task_queue_run::start_bound))
      << run.worker("sleeper").err;
  run.worker("sleeper").signal(SIGSTOP);
  // Two free slots to the sleeper's one: the producer hands the task taken back to the other.
  ASSERT_NO_FATAL_FAILURE(run.start_worker("other", {"--capacity", "2"}));
  ASSERT_NO_FATAL_FAILURE(run.wait_working("other"));
  ASSERT_TRUE(run.producer().read_until("done 1 other 2\n", finish_bound))
      << "the stopped worker's task was not taken back and completed by the other: " << run.producer().out
      << run.producer().err;
  run.worker("sleeper").signal(SIGCONT);
  // Resumed, the sleeper finishes its task; its answer is dropped, by itself (the CANCEL came
  // first) or by the producer (answered stale).
  const bool dropped = run.worker("sleeper").read_until(
      [](std::string_view out) {
        return out.find("finish 1 1\n") != std::string_view::npos &&
               (stats_reached(out, "stale", 1) || stats_reached(out, "cancelled", 1));
      },
      finish_bound);
  ASSERT_TRUE(dropped) << "the resumed worker's late result was never dropped: " << run.worker("sleeper").out;
  ASSERT_TRUE(run.producer().read_until("complete\n", finish_bound)) << run.producer().err;
  run.kill_all();

  const task_queue_report r = judge(run, 1);
  EXPECT_TRUE(r.ok()) << r.describe();
  const auto done = run.completions_of(1);
  ASSERT_EQ(done.size(), 1u) << "the producer's record must hold one completion";
  EXPECT_EQ(done[0], std::make_pair(std::string("other"), 2u));
  const auto ran = run.executions_of(1);
  EXPECT_NE(std::find(ran.begin(), ran.end(), std::make_pair(std::string("sleeper"), 1u)), ran.end());
}

TEST(TaskQueueProcessTest, WorkersJoiningDuringABurstShareItAndEveryTaskCompletesOnce) {
  constexpr std::uint64_t count = 2000;
  constexpr std::uint64_t join_after = 300;
  const std::vector<std::string> newcomers = {"w2", "w3", "w4"};
  task_queue_run run(FABRIC_TEST_FRQ_PEER);
  ASSERT_NO_FATAL_FAILURE(run.start_producer(count, {"--durability", "none"}));
  // 2 ms a task keeps the burst going long enough for the newcomers to join it.
  const std::vector<std::string> work = {"--mode", "slow:2", "--capacity", "2"};
  std::vector<std::string> first = work;
  first.emplace_back("--report-stats");
  ASSERT_NO_FATAL_FAILURE(run.start_worker("w1", first));
  ASSERT_TRUE(run.worker("w1").read_until(
      [](std::string_view out) { return stats_reached(out, "completed", join_after); }, finish_bound))
      << run.worker("w1").err;
  for (const auto& name : newcomers) ASSERT_NO_FATAL_FAILURE(run.start_worker(name, work));
  ASSERT_TRUE(run.producer().read_until("complete\n", finish_bound)) << run.producer().err;
  run.kill_all();

  const task_queue_report r = judge(run, count);
  EXPECT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(r.submitted, count);
  EXPECT_EQ(r.completed, count);
  EXPECT_EQ(r.dead_lettered, 0u);
  auto per_worker = run.executions_per_worker();
  EXPECT_GE(per_worker["w1"], join_after);
  for (const auto& name : newcomers) EXPECT_GT(per_worker[name], 0u) << name << " took no part in the burst";
}

}  // namespace
