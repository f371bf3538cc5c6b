// Pipeline: a ventilator fans prime-counting tasks out to worker threads, which push their
// results to a sink that checks the totals exactly.
#include <fabric/fabric.hpp>

#include <cstdint>
#include <cstdio>
#include <exception>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "example_support.hpp"

using namespace fabric_examples;

namespace {

// The work: count the primes in [lo, hi). Small enough to run in a blink, real enough to check.
struct task {
  std::uint32_t id = 0;
  std::uint32_t lo = 0;
  std::uint32_t hi = 0;
  MSGPACK_DEFINE(id, lo, hi)
};

struct task_result {
  std::uint32_t task_id = 0;
  std::string worker;
  std::uint32_t primes = 0;
  MSGPACK_DEFINE(task_id, worker, primes)
};

bool is_prime(std::uint32_t n) {
  if (n < 2) return false;
  for (std::uint32_t d = 2; d * d <= n; ++d)
    if (n % d == 0) return false;
  return true;
}

// The sink's reference answer, by a different method (a sieve) than the workers use.
std::uint32_t primes_below(std::uint32_t limit) {
  std::vector<bool> composite(limit, false);
  std::uint32_t count = 0;
  for (std::uint32_t n = 2; n < limit; ++n) {
    if (composite[n]) continue;
    ++count;
    for (std::uint64_t m = std::uint64_t{n} * n; m < limit; m += n) composite[m] = true;
  }
  return count;
}

constexpr std::uint32_t task_count = 100;
constexpr std::uint32_t task_span = 2000;  // so the tasks cover [0, 200000)

// A worker's body. It runs as a fabric::actor so the owner can stop it with a message: a worker
// blocked on its task socket could not otherwise tell "no more work" from "work is late".
void work(fabric::pair_socket& pipe, fabric::context& ctx, const std::string& name,
          transport kind, const std::string& tasks_address, const std::string& results_address) {
  fabric::puller tasks(ctx);
  {
    // PUSH deals tasks only to peers whose connection is up; without this wait the first worker
    // to connect could get the whole batch.
    fabric::monitor events(tasks);
    tasks.connect(tasks_address);
    if (kind != transport::inproc &&
        !events.wait_for(fabric::socket_event::handshake_succeeded, patience))
      fail(name + ": no connection to the ventilator within 5 s");
  }
  fabric::pusher results(ctx);
  results.connect(results_address);

  fabric::reactor loop;
  fabric::message m;
  loop.add(tasks, [&] {
    if (auto r = tasks.try_recv(m); !r) {
      if (r.is(fabric::errc::would_block)) return;
      fail(name + ": cannot receive a task: " + r.error().message());
    }
    auto t = m.size() == 1 ? fabric::unpack<task>(m[0]) : fabric::errc::malformed;
    if (!t) fail(name + ": undecodable task: " + t.error().message());
    task_result out{t->id, name, 0};
    for (std::uint32_t n = t->lo; n < t->hi; ++n)
      if (is_prime(n)) ++out.primes;
    fabric::message reply;
    reply.push_back(fabric::pack(out));
    if (auto s = results.send(std::move(reply), patience); !s)
      fail(name + ": cannot send a result: " + s.error().message());
  });
  loop.add(pipe, [&] {
    fabric::message command;
    if (pipe.try_recv(command) && fabric::actor::is_term(command)) loop.stop();
  });
  fabric::actor::signal_ready(pipe);
  if (auto r = loop.run(); !r) fail(name + ": reactor failed: " + r.error().message());
}

using worker_list = std::vector<std::unique_ptr<fabric::actor>>;

// Stops every worker (each stop() sends the term command and waits, bounded, for the body to
// return) and reports the ones that failed. Returns how many failed.
std::size_t stop_workers(worker_list& workers) {
  std::size_t failed = 0;
  for (auto& w : workers) {
    const bool stopped = w->stop();
    if (auto failure = w->failure()) {
      try {
        std::rethrow_exception(failure);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "push_pull: FAILED: %s\n", e.what());
      }
      ++failed;
    } else if (!stopped) {
      std::fprintf(stderr, "push_pull: FAILED: a worker did not stop when asked\n");
      ++failed;
    }
  }
  return failed;
}

struct tally {
  std::map<std::string, std::size_t> per_worker;
  std::uint64_t primes = 0;
};

// The sink: every task's result exactly once, whoever computed it.
tally collect(fabric::puller& sink) {
  std::vector<bool> seen(task_count, false);
  tally t;
  fabric::message m;
  for (std::uint32_t received = 0; received < task_count; ++received) {
    if (auto r = sink.recv(m, patience); !r)
      fail("sink: result " + std::to_string(received + 1) + " of " + std::to_string(task_count) +
           " missing after 5 s: " + r.error().message());
    auto res = m.size() == 1 ? fabric::unpack<task_result>(m[0]) : fabric::errc::malformed;
    if (!res) fail("sink: undecodable result: " + res.error().message());
    check(res->task_id < task_count && !seen[res->task_id],
          "sink: unexpected or duplicate result for task " + std::to_string(res->task_id));
    seen[res->task_id] = true;
    ++t.per_worker[res->worker];
    t.primes += res->primes;
  }
  return t;
}

void run(transport kind, std::size_t worker_count) {
  const endpoints where("push-pull", kind);
  fabric::context ctx;

  fabric::pusher ventilator(ctx);
  const std::string tasks_address = ventilator.bind(where.bind_address("tasks"));
  fabric::puller sink(ctx);
  const std::string results_address = sink.bind(where.bind_address("results"));
  std::printf("ventilator: %s, sink: %s\n", tasks_address.c_str(), results_address.c_str());

  // Each actor's constructor returns once its worker is connected and listening.
  worker_list workers;
  for (std::size_t i = 0; i < worker_count; ++i) {
    const std::string name = "worker-" + std::to_string(i + 1);
    workers.push_back(std::make_unique<fabric::actor>(ctx, [&, name](fabric::pair_socket& pipe) {
      work(pipe, ctx, name, kind, tasks_address, results_address);
    }));
  }
  std::printf("%zu workers ready\n", worker_count);

  // The ventilator gets its own thread so the sink drains results while tasks are still going
  // out; one thread doing both could fill every queue and stall.
  bool ventilator_failed = false;
  std::jthread feeder([&ventilator_failed, ventilator = std::move(ventilator)]() mutable {
    try {
      for (std::uint32_t id = 0; id < task_count; ++id) {
        fabric::message m;
        m.push_back(fabric::pack(task{id, id * task_span, (id + 1) * task_span}));
        if (auto s = ventilator.send(std::move(m), patience); !s)
          fail("ventilator: cannot send a task: " + s.error().message());
      }
    } catch (const std::exception& e) {
      std::fprintf(stderr, "push_pull: FAILED: %s\n", e.what());
      ventilator_failed = true;
    }
  });

  tally result;
  try {
    result = collect(sink);
  } catch (...) {
    // A missing result is usually the effect of a failed worker: report the workers too.
    stop_workers(workers);
    throw;
  }
  feeder.join();
  check(!ventilator_failed, "the ventilator failed");
  check(stop_workers(workers) == 0, "a worker failed");

  for (const auto& [worker, tasks_done] : result.per_worker)
    std::printf("sink: %s did %zu tasks\n", worker.c_str(), tasks_done);
  const std::uint32_t expected = primes_below(task_count * task_span);
  std::printf("sink: %u results, %llu primes below %u (sieve says %u)\n", task_count,
              static_cast<unsigned long long>(result.primes), task_count * task_span, expected);
  check(result.primes == expected, "sink: the workers' prime count is wrong");
}

void print_usage(std::FILE* out) {
  std::fprintf(out,
               "usage: fabric-example-push-pull [--transport inproc|ipc|tcp] [--workers N]"
               " [--help]\n"
               "  A ventilator sends 100 prime-counting tasks to N worker threads (default 4,\n"
               "  at most 16); a sink checks every task came back once and the total is exact.\n"
               "  Default transport: tcp on 127.0.0.1 with a port the OS picks.\n");
}

}  // namespace

int main(int argc, char** argv) {
  transport kind = transport::tcp;
  std::size_t workers = 4;
  return run_example({.program = "push_pull",
                      .print_usage = print_usage,
                      .kind = &kind,
                      .count = {.flag = "--workers", .value = &workers, .min = 1, .max = 16}},
                     argc, argv, [&] { run(kind, workers); });
}
