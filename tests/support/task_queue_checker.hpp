// The verdict on a run of a work queue: given what the producer knows it submitted, what the
// workers started, and the producer's record of completions and dead letters (read from its
// journal after the run), it proves that every acknowledged task was completed exactly once or
// dead-lettered with a reason, that nothing was completed that was never submitted, and that
// every recorded completion came from an execution that really started, with the right result.
//
//   task_queue_history h;
//   h.submitted(1);                            // submit() returned id 1: it is owed
//   h.attempted(2);                            // the producer died inside submit(): may exist
//   h.executed("w1", 1, 1);                    // worker w1 started attempt 1 of task 1
//   h.completed(1, "w1", 1, "done:task-1");    // one completion in the producer's record
//   h.dead_lettered(2, "worker lost x5");      // a dead letter of the queue, with its reason
//   auto r = check_task_queue(h, [](std::uint64_t id) { return "done:task-" + std::to_string(id); });
//   EXPECT_TRUE(r.ok()) << r.describe();
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

namespace fabric::testing {

class task_queue_history {
 public:
  /// submit() returned `id`: the queue owes its completion, or a dead letter.
  void submitted(std::uint64_t id);
  /// A submit began but its return was not seen: the task may exist, or not.
  void attempted(std::uint64_t id);
  /// `worker` started attempt `attempt` of task `id` (its executions file).
  void executed(std::string worker, std::uint64_t id, std::uint32_t attempt);
  /// One completion in the producer's record; call once per completion recorded.
  void completed(std::uint64_t id, std::string worker, std::uint32_t attempt, std::string result);
  /// A dead letter of the queue.
  void dead_lettered(std::uint64_t id, std::string reason);

 private:
  friend struct task_queue_report check_task_queue(const task_queue_history&,
                                                   const std::function<std::string(std::uint64_t)>&);
  struct completion {
    std::string worker;
    std::uint32_t attempt;
    std::string result;
  };
  std::set<std::uint64_t> submitted_;
  std::set<std::uint64_t> attempted_;
  std::set<std::tuple<std::string, std::uint64_t, std::uint32_t>> executed_;
  std::map<std::uint64_t, std::vector<completion>> completed_;
  std::map<std::uint64_t, std::vector<std::string>> dead_;
};

struct task_queue_report {
  struct finding {
    std::uint64_t id;
    std::string what;
  };
  std::size_t submitted = 0;      ///< acknowledged tasks
  std::size_t completed = 0;      ///< tasks with at least one completion
  std::size_t dead_lettered = 0;  ///< tasks dead-lettered
  std::size_t lost = 0;           ///< acknowledged tasks neither completed nor dead-lettered
  std::size_t duplicated = 0;     ///< completions beyond the first of a task
  std::size_t phantoms = 0;       ///< completions or dead letters of tasks never submitted
  std::size_t both = 0;           ///< tasks completed and dead-lettered
  std::size_t unexplained = 0;    ///< dead letters without a reason
  std::size_t unexecuted = 0;     ///< completions of an attempt no worker started
  std::size_t wrong = 0;          ///< completions whose result is not the task's
  std::vector<finding> examples;  ///< the first few findings, for the failure message

  bool ok() const noexcept { return ok_; }
  /// A one-paragraph account: the counts, then the first findings.
  std::string describe() const;

 private:
  friend task_queue_report check_task_queue(const task_queue_history&,
                                            const std::function<std::string(std::uint64_t)>&);
  bool ok_ = true;
};

/// Judges `h`; `result_of(id)` is the result a correct worker gives for task `id`.
task_queue_report check_task_queue(const task_queue_history& h,
                                   const std::function<std::string(std::uint64_t)>& result_of);

}  // namespace fabric::testing
