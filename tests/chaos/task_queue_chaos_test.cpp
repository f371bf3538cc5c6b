// Kill -9 chaos of the work queue: a producer and three workers, each in a process of its own
// (fabric-test-frq-peer, tests/support/frq_peer_main.cpp), over one ipc endpoint. While the
// producer submits its tasks and the workers run them, the test kills the producer or a worker
// (sometimes both) at random moments and restarts it at once, the producer on its journal and a
// worker under its name; then it lets the survivors finish and judges the whole run with the
// queue checker: every task whose submit returned was completed exactly once in the producer's
// record (its journal) or dead-lettered with a reason, nothing was completed that was never
// submitted, and every completion came from an execution a worker started, with the right result.
//
// A second pair of tests shows the checker catches a planted bug (a restarted producer that
// forgets which tasks it finished, src/reliability/frq_faults.hpp): one worker holds task 1 so
// that every completion stays above the producer's watermark, the producer is killed after the
// others are recorded and restarted, and the bug completes each of them a second time.
//
// Environment:
//   FABRIC_CHAOS_ITERATIONS  kills in the chaos test (default 26; raise it for soak runs)
//   FABRIC_CHAOS_SEED        seed of the schedule of kills (printed by every run)
//   FABRIC_FRQ_FORGET_DONE_TASKS=1  plants the bug in every producer: the chaos test then finds
//                            tasks completed twice in most runs
#include "support/support.hpp"
#include "support/task_queue_run.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using fabric::testing::check_task_queue;
using fabric::testing::task_queue_history;
using fabric::testing::task_queue_report;
using fabric::testing::task_queue_run;
using clock_type = std::chrono::steady_clock;

constexpr int default_kills = 26;
constexpr std::uint64_t default_seed = 0x6672712d63686173;  // "frq-chas"
/// Tasks for each kill, submitted at `submit_rate`: enough that the producer is still
/// submitting through most of the kills.
constexpr std::uint64_t tasks_per_kill = 60;
constexpr std::uint64_t submit_rate = 400;
const std::vector<std::string> worker_names = {"w1", "w2", "w3"};
/// The bound on the survivors finishing once the kills stop.
constexpr auto finish_bound = 60s;

using fabric::testing::env_number;

int kills_from_environment() {
  const auto n = env_number("FABRIC_CHAOS_ITERATIONS");
  return n && *n > 0 ? static_cast<int>(std::min<unsigned long long>(*n, 100'000)) : default_kills;
}

std::uint64_t seed_from_environment() { return env_number("FABRIC_CHAOS_SEED").value_or(default_seed); }

/// A worker's flags in the chaos run: 3 ms a task, two at once, so that most kills find tasks
/// running (the time a task takes is the subject here, not a synchronisation).
std::vector<std::string> chaos_worker() { return {"--mode", "slow:3", "--capacity", "2"}; }

TEST(TaskQueueChaosTest, EveryTaskCompletesOnceThroughProducerAndWorkerKills) {
  const int kills = kills_from_environment();
  const std::uint64_t seed = seed_from_environment();
  const std::uint64_t count = static_cast<std::uint64_t>(kills) * tasks_per_kill;
  std::printf("[ chaos    ] work queue: %d kills, %llu tasks, seed %llu (FABRIC_CHAOS_SEED, FABRIC_CHAOS_ITERATIONS)\n",
              kills, static_cast<unsigned long long>(count), static_cast<unsigned long long>(seed));
  std::fflush(stdout);
  std::mt19937_64 rng(seed);
  auto between = [&rng](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  const std::vector<std::string> producer_flags = {"--rate", std::to_string(submit_rate)};

  task_queue_run run(FABRIC_TEST_FRQ_PEER);
  ASSERT_NO_FATAL_FAILURE(run.start_producer(count, producer_flags));
  for (const auto& name : worker_names) ASSERT_NO_FATAL_FAILURE(run.start_worker(name, chaos_worker()));
  const auto started = clock_type::now();
  int producer_kills = 0;
  int worker_kills = 0;
  while (producer_kills + worker_kills < kills) {
    SCOPED_TRACE("seed " + std::to_string(seed) + ", after " + std::to_string(producer_kills + worker_kills) +
                 " kills");
    // A random moment in the queue's work: the elapsed time is the subject here.
    std::this_thread::sleep_for(std::chrono::milliseconds(between(20, 250)));
    const int victim = between(0, 9);  // 0-2: the producer, 3-8: a worker, 9: both
    const std::string& name = worker_names[static_cast<std::size_t>(between(0, 2))];
    if (victim <= 2 || victim == 9) {
      ASSERT_NO_FATAL_FAILURE(run.kill_producer());
      ++producer_kills;
    }
    if (victim >= 3) {
      ASSERT_NO_FATAL_FAILURE(run.kill_worker(name));
      ++worker_kills;
    }
    if (victim >= 3) {
      ASSERT_NO_FATAL_FAILURE(run.start_worker(name, chaos_worker()));
    }
    if (victim <= 2 || victim == 9) {
      ASSERT_NO_FATAL_FAILURE(run.start_producer(count, producer_flags));
    }
  }
  const double chaos_s = std::chrono::duration<double>(clock_type::now() - started).count();

  ASSERT_TRUE(run.producer().read_until("complete\n", finish_bound))
      << "the tasks were not all finished within " << finish_bound.count() << " s (seed " << seed
      << "); the producer's stderr: " << run.producer().err;
  run.kill_all();

  task_queue_history h;
  ASSERT_NO_FATAL_FAILURE(run.gather(count, h));
  const task_queue_report r = check_task_queue(h, task_queue_run::result_of);
  std::printf("[ chaos    ] work queue: %d kills (%d of the producer, %d of workers) in %.1f s, finished in %.1f s "
              "more; %zu tasks submitted, %zu completed, %zu dead-lettered\n",
              producer_kills + worker_kills, producer_kills, worker_kills, chaos_s,
              std::chrono::duration<double>(clock_type::now() - started).count() - chaos_s, r.submitted, r.completed,
              r.dead_lettered);
  EXPECT_TRUE(r.ok()) << "seed " << seed << ": " << r.describe();
  EXPECT_EQ(r.submitted, count) << "the producer's log does not account for every task";
  const auto per_worker = run.executions_per_worker();
  for (const auto& name : worker_names) EXPECT_TRUE(per_worker.contains(name)) << name << " ran nothing";
}

// ---------------------------------------------------------------------------------------------
// The planted bug: a restarted producer that forgets which tasks it finished

constexpr std::uint64_t planted_count = 60;

// Task 1 is held by a worker that takes a minute over it, so the producer's watermark stays at 0
// and every other completion is above it; once the others are recorded, the producer and the
// holder are killed, and the producer is restarted (with the bug, if asked) to finish task 1.
task_queue_report restart_after_completions(bool plant_the_bug) {
  task_queue_report report;
  task_queue_run run(FABRIC_TEST_FRQ_PEER);
  [&] {
    std::vector<std::string> flags = {"--announce-results"};
    if (plant_the_bug) flags.emplace_back("--forget-done-tasks");
    ASSERT_NO_FATAL_FAILURE(run.start_producer(planted_count, flags));
    ASSERT_NO_FATAL_FAILURE(run.start_worker("holder", {"--mode", "slow:60000", "--announce"}));
    ASSERT_TRUE(run.worker("holder").read_until("start 1 1\n", task_queue_run::start_bound))
        << run.worker("holder").err;
    ASSERT_NO_FATAL_FAILURE(run.start_worker("runner", {"--capacity", "2"}));
    const bool others_done = run.producer().read_until(
        [](std::string_view out) {
          std::size_t n = 0;
          for (std::size_t at = 0; (at = out.find("done ", at)) != std::string_view::npos; ++at) ++n;
          return n >= planted_count - 1;
        },
        30s);
    ASSERT_TRUE(others_done) << "the runner did not finish tasks 2.." << planted_count << ": " << run.producer().err;
    ASSERT_NO_FATAL_FAILURE(run.kill_producer());
    ASSERT_NO_FATAL_FAILURE(run.kill_worker("holder"));
    std::vector<std::string> again;
    if (plant_the_bug) again.emplace_back("--forget-done-tasks");
    ASSERT_NO_FATAL_FAILURE(run.start_producer(planted_count, again));
    ASSERT_TRUE(run.producer().read_until("complete\n", 30s)) << run.producer().err;
    run.kill_all();
    task_queue_history h;
    ASSERT_NO_FATAL_FAILURE(run.gather(planted_count, h));
    report = check_task_queue(h, task_queue_run::result_of);
    const auto one = run.completions_of(1);
    ASSERT_EQ(one.size(), 1u);
    EXPECT_EQ(one[0].first, "runner");
  }();
  return report;
}

TEST(TaskQueuePlantedBugTest, WithoutTheBugARestartedProducerRecordsEachCompletionOnce) {
  const task_queue_report r = restart_after_completions(false);
  if (HasFatalFailure()) return;
  EXPECT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(r.completed, planted_count);
  EXPECT_EQ(r.duplicated, 0u);
}

TEST(TaskQueuePlantedBugTest, TheCheckerCatchesARestartedProducerThatForgetsFinishedTasks) {
  const task_queue_report r = restart_after_completions(true);
  if (HasFatalFailure()) return;
  EXPECT_FALSE(r.ok()) << "the checker missed the planted bug: " << r.describe();
  EXPECT_GE(r.duplicated, planted_count / 2) << r.describe();
  EXPECT_EQ(r.lost, 0u) << r.describe();
  std::printf("[ chaos    ] planted bug: %s\n", r.describe().substr(0, r.describe().find('\n')).c_str());
}

}  // namespace
