// A work queue run across processes, for the tests that kill, stop or crash its sides: one
// producer (fabric-test-frq-peer producer) on a journal in a temporary directory, and named
// workers (fabric-test-frq-peer worker), all over one ipc endpoint. It starts and kills them,
// and once they are gone, gathers the run's history for check_task_queue from the producer's
// log, the workers' executions files and the producer's journal.
//
// Children are killed and reaped before the directory is removed, whatever way a test ends.
#pragma once

#include "support/process.hpp"
#include "support/task_queue_checker.hpp"

#include <fabric_support/endpoint.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace fabric::testing {

class task_queue_run {
 public:
  /// `program`: the path of fabric-test-frq-peer.
  explicit task_queue_run(std::string program);
  ~task_queue_run();
  task_queue_run(const task_queue_run&) = delete;
  task_queue_run& operator=(const task_queue_run&) = delete;

  /// The bound on a peer's start (a journal opened, a socket bound or connected).
  static constexpr std::chrono::seconds start_bound{10};

  /// Starts the producer on its journal with `count` tasks to submit (0: it only serves) and
  /// returns once it is ready. Fails the test (fatally) otherwise.
  void start_producer(std::uint64_t count, const std::vector<std::string>& extra = {});
  /// Starts worker `name`; returns once it runs (not yet welcomed: see wait_working()).
  void start_worker(const std::string& name, const std::vector<std::string>& extra = {});
  /// Waits until worker `name` printed "working" (the producer welcomed it).
  void wait_working(const std::string& name);

  /// kill -9, and the proof that it was the kill that ended the process.
  void kill_producer();
  void kill_worker(const std::string& name);
  /// Waits for worker `name` to end by itself with `code` (a crash), and reaps it.
  void expect_worker_exit(const std::string& name, int code, std::chrono::milliseconds bound);
  /// Kills and reaps every child still running.
  void kill_all();

  child_process& producer() { return *producer_; }
  child_process& worker(const std::string& name) { return *workers_.at(name); }
  bool running(const std::string& name) const { return workers_.contains(name); }
  int producer_starts() const noexcept { return producer_starts_; }

  /// Once every child is gone: what the producer acknowledged of tasks 1..count, the
  /// executions the workers started, and the producer's record (its journal, opened read-only).
  void gather(std::uint64_t count, task_queue_history& h);
  /// The completions the record holds for task `id`, as (worker, attempt); valid after gather().
  std::vector<std::pair<std::string, std::uint32_t>> completions_of(std::uint64_t id) const;
  /// The executions started of task `id`, as (worker, attempt); valid after gather().
  std::vector<std::pair<std::string, std::uint32_t>> executions_of(std::uint64_t id) const;
  /// The workers that started at least one execution; valid after gather().
  std::map<std::string, std::size_t> executions_per_worker() const;

  /// The result a worker gives for task `id`.
  static std::string result_of(std::uint64_t id);

 private:
  void kill(std::optional<child_process>& p, const std::string& who);

  std::string program_;
  fabric::support::temp_dir dir_;
  std::string endpoint_;
  std::optional<child_process> producer_;
  std::map<std::string, std::optional<child_process>> workers_;
  int producer_starts_ = 0;
  std::map<std::uint64_t, std::vector<std::pair<std::string, std::uint32_t>>> completions_;
  std::map<std::uint64_t, std::vector<std::pair<std::string, std::uint32_t>>> executions_;
};

}  // namespace fabric::testing
