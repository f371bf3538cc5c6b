// The workloads behind `fabric-perf queue`: a task_producer in this process over its own
// journal, its task_workers in a child process (fabric-perf itself, hidden subcommand
// `queue-workers`), over tcp on loopback; beside a raw libzmq pipeline (ventilator PUSH -> worker
// PULL/PUSH -> sink PULL) with as many workers in a child process.
#pragma once

#include "harness/histogram.hpp"

#include <fabric/journal.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace fabric::perf::queue_bench {

/// The queue every workload submits to.
inline constexpr std::string_view queue_name = "bench";

/// Bytes of a result: the task's number, echoed.
inline constexpr std::size_t result_size = 8;

struct spec {
  durability mode = durability::sync;  ///< the producer's journal
  std::size_t size = 256;              ///< task body bytes (8 or more: each task is numbered)
  std::uint64_t count = 200'000;       ///< tasks measured
  int workers = 1;
  std::uint32_t capacity = 16;         ///< tasks each worker holds at once
  std::size_t batch = 64;              ///< tasks per submit_batch call
  std::uint64_t window = 1'024;        ///< tasks submitted and not yet completed at once
  std::chrono::milliseconds timeout{60'000};
};

struct outcome {
  /// The first measured submit to the last measured completion recorded.
  double seconds = 0;
  std::uint64_t tasks = 0;
  histogram latency;  ///< per task: submit to its completion, ns

  /// Tasks per second completed.
  double rate() const noexcept { return seconds > 0 ? static_cast<double>(tasks) / seconds : 0; }
};

/// Through fabric: a task_producer over a journal in `dir` (under `s.mode`) and `s.workers`
/// task_workers of `s.capacity` in a child process, each with a synchronous on_task that echoes
/// the task's number. A warm-up the workers must finish first, then `s.count` tasks submitted
/// with submit_batch, `s.batch` per call, at most `s.window` not yet completed. Latency runs from
/// the submit_batch call to on_result running in the transaction that records the completion;
/// the time runs until the producer's statistics count the last completion (its commit done).
/// Throws std::runtime_error unless every task completed exactly once, on a timeout or a failed
/// submit.
outcome fabric_queue(const std::filesystem::path& dir, const spec& s);

/// The raw baseline: a PUSH here hands numbered tasks of `s.size` bytes round-robin to
/// `s.workers` threads in a child process, each a PULL that answers through a PUSH with the
/// task's number to a PULL here, at most `s.window` tasks outstanding. Latency from the send to
/// the sink receiving the answer. Throws std::runtime_error unless every task came back once.
outcome raw_queue(const spec& s);

/// The child: `workers` workers of `impl` ("fabric" or "raw") to `endpoint` (raw: answering to
/// `result_endpoint`). Prints "ready" once they are made (raw: connecting), or "error <why>";
/// stops them and exits when its stdin closes. Returns the exit code.
int workers_main(const std::string& impl, const std::string& endpoint, const std::string& result_endpoint,
                 int workers, std::uint32_t capacity);

}  // namespace fabric::perf::queue_bench
