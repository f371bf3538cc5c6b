// A reliable work queue: an image service submits thumbnail jobs with priorities; a worker process
// crashes in the middle of a job; the jobs it held are taken back and done by the other workers,
// and every job's result is recorded once in the producer's journal, in the same transaction as
// its completion. Run with no arguments: it starts the crashing worker as a child process itself.
#include <fabric/fabric.hpp>
#include <fabric/task_queue.hpp>

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "example_support.hpp"

extern char** environ;

using namespace fabric_examples;

namespace {

constexpr std::size_t jobs = 200;
constexpr std::size_t crash_after = 5;  // the crashing worker dies inside its 5th job

// The work itself: a stand-in for rendering a thumbnail.
std::string render(std::string_view image) { return "thumb(" + std::string(image) + ")"; }

fabric::task_worker_options worker_options(std::string name, std::string endpoint) {
  fabric::task_worker_options o;
  o.name = std::move(name);
  o.endpoint = std::move(endpoint);
  o.queue = "thumbnails";
  o.heartbeat = std::chrono::milliseconds(100);
  o.reconnect_interval = std::chrono::milliseconds(20);
  return o;
}

// The child: a worker that dies, without a word, in the middle of its 5th job.
int crashing_worker(const std::string& endpoint) {
  fabric::context ctx;
  std::atomic<std::size_t> taken{0};
  auto o = worker_options("crashy", endpoint);
  o.on_task = [&](const fabric::task& t) {
    if (++taken == crash_after) {
      std::fprintf(stderr, "crashy: crashing inside job %llu\n", static_cast<unsigned long long>(t.id));
      std::_Exit(3);
    }
    return render(t.body);
  };
  fabric::task_worker w(ctx, o);
  // Until it crashes; bounded, so that a run gone wrong ends.
  std::this_thread::sleep_for(patience * 4);
  return 0;
}

void run() {
  fabric::context ctx;
  fabric::support::temp_dir dir("fabric-task-queue-");
  fabric::journal j = fabric::journal::open(dir.path() / "images");
  fabric::task_producer producer(
      ctx, j,
      {.endpoint = "tcp://127.0.0.1:*",
       .queues = {{.name = "thumbnails", .deadline = std::chrono::seconds(5), .max_attempts = 3}},
       .on_result = [](const fabric::task_result& r, fabric::journal_txn& t) {
         t.put("thumbnails", std::to_string(r.task_id), r.body);  // commits with the completion
       },
       .heartbeat = std::chrono::milliseconds(100)});

  for (std::size_t i = 1; i <= jobs; ++i) {
    // Every tenth job is urgent: it goes before the others that wait.
    const std::uint8_t priority = i % 10 == 0 ? 0 : 4;
    auto id = producer.submit("thumbnails", "image-" + std::to_string(i), {.priority = priority});
    check(id.has_value(), "submit failed");
  }

  // The crashing worker, a process of its own, takes the first jobs.
  std::string self = "/proc/self/exe";
  std::string flag = "--crashing-worker";
  std::string endpoint = producer.endpoint();
  char* child_argv[] = {self.data(), flag.data(), endpoint.data(), nullptr};
  pid_t child = 0;
  check(posix_spawn(&child, self.c_str(), nullptr, nullptr, child_argv, environ) == 0, "cannot start the worker");
  int status = 0;
  check(waitpid(child, &status, 0) == child, "cannot wait for the worker");
  check(WIFEXITED(status) && WEXITSTATUS(status) == 3, "the crashing worker should have crashed");

  // Two healthy workers finish the queue, the crashed one's jobs included.
  auto a = worker_options("worker-a", producer.endpoint());
  a.on_task = [](const fabric::task& t) { return render(t.body); };
  auto b = worker_options("worker-b", producer.endpoint());
  b.on_task = a.on_task;
  fabric::task_worker wa(ctx, a);
  fabric::task_worker wb(ctx, b);

  const auto deadline = std::chrono::steady_clock::now() + patience * 4;
  fabric::task_producer_stats s;
  do {
    s = producer.stats();
    if (s.queues.at(0).completed == jobs) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // a bounded poll of the counters
  } while (std::chrono::steady_clock::now() < deadline);
  const auto& q = s.queues.at(0);
  check(q.completed == jobs, "only " + std::to_string(q.completed) + " of the jobs completed");

  auto rows = j.table_entries("thumbnails", {}, jobs + 1);
  check(rows && rows->size() == jobs, "every job's result is in the journal once");
  std::printf("%zu jobs done, each recorded once; %llu taken back from the crashed worker and redone; "
              "%llu dead-lettered\n",
              rows->size(), static_cast<unsigned long long>(q.requeues),
              static_cast<unsigned long long>(q.dead_lettered));
  check(q.requeues >= 1, "the crashed worker's job should have been taken back");
}

void usage(std::FILE* out) {
  std::fprintf(out,
               "usage: fabric-example-task-queue\n"
               "A producer journals 200 jobs; a worker process crashes mid-job; the jobs it held are\n"
               "taken back and done by two other workers, each result recorded once.\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && std::string_view(argv[1]) == "--crashing-worker") return crashing_worker(argv[2]);
  const command_line cl{.program = "fabric-example-task-queue", .print_usage = usage};
  return run_example(cl, argc, argv, [] { run(); });
}
