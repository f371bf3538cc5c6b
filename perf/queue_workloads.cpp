// The queue workloads: this process submits and collects, a child fabric-perf runs the workers.
#include "queue_workloads.hpp"

#include "child_lines.hpp"
#include "journal_workloads.hpp"

#include <fabric/context.hpp>
#include <fabric/task_queue.hpp>

#include <zmq.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <span>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace fabric::perf::queue_bench {
namespace {

using clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(clock::now().time_since_epoch()).count();
}

std::uint64_t warmup_for(std::uint64_t count) { return std::min<std::uint64_t>(2'000, count / 10 + 1); }

void put_number(std::string& body, std::uint64_t n) { std::memcpy(body.data(), &n, sizeof n); }

// The task's number from a body or a result; `limit` when there is none.
std::uint64_t number_of(const void* data, std::size_t size, std::uint64_t limit) {
  std::uint64_t n = limit;
  if (size >= sizeof n) std::memcpy(&n, data, sizeof n);
  return n;
}

// The workers, as a child process of this one, spoken to over its stdin and stdout.
class workers_child {
 public:
  workers_child(const std::string& impl, const std::string& endpoint, const std::string& result_endpoint,
                const spec& s)
      : child_(arguments(impl, endpoint, result_endpoint, s), "the workers", s.timeout) {}

  // Waits for "ready": every worker is made.
  void wait_ready() { child_.expect("ready"); }
  // Closes its stdin, which stops the workers and ends it, and reaps it (within the timeout).
  void finish() { child_.finish(); }

 private:
  static std::vector<std::string> arguments(const std::string& impl, const std::string& endpoint,
                                            const std::string& result_endpoint, const spec& s) {
    std::vector<std::string> words{"queue-workers", "--impl", impl, "--endpoint", endpoint,
                                   "--workers", std::to_string(s.workers), "--capacity", std::to_string(s.capacity)};
    if (!result_endpoint.empty()) {
      words.emplace_back("--result-endpoint");
      words.push_back(result_endpoint);
    }
    return words;
  }

  line_child child_;
};

// Per task number: when it was submitted, when its completion came, and how many times.
struct ledger {
  explicit ledger(std::uint64_t total)
      : submitted(total, 0), completed_at(total, 0), times(std::make_unique<std::atomic<std::uint32_t>[]>(total)) {}

  std::vector<std::int64_t> submitted;
  std::vector<std::int64_t> completed_at;
  std::unique_ptr<std::atomic<std::uint32_t>[]> times;
  std::atomic<std::uint64_t> completed{0};
  std::atomic<std::uint64_t> strays{0};  // results naming no task of this run

  // Records a completion of task `n`; false for a duplicate or a stray.
  bool complete(std::uint64_t n, std::uint64_t total) {
    if (n >= total) {
      strays.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    if (times[n].fetch_add(1, std::memory_order_relaxed) != 0) return false;
    completed_at[n] = now_ns();
    completed.fetch_add(1, std::memory_order_release);
    return true;
  }

  // Throws unless tasks [0, total) each completed exactly once.
  void check(std::uint64_t total) const {
    std::uint64_t missing = 0;
    std::uint64_t repeated = 0;
    for (std::uint64_t n = 0; n < total; ++n) {
      const std::uint32_t k = times[n].load(std::memory_order_relaxed);
      if (k == 0) ++missing;
      if (k > 1) repeated += k - 1;
    }
    const std::uint64_t stray = strays.load();
    if (missing != 0 || repeated != 0 || stray != 0) {
      throw std::runtime_error("not every task completed exactly once: " + std::to_string(missing) + " missing, " +
                               std::to_string(repeated) + " repeated, " + std::to_string(stray) + " unknown");
    }
  }

  histogram latency(std::uint64_t from, std::uint64_t to) const {
    histogram h;
    for (std::uint64_t n = from; n < to; ++n) {
      if (completed_at[n] >= submitted[n]) h.record(static_cast<std::uint64_t>(completed_at[n] - submitted[n]));
    }
    return h;
  }
};

// Waits until `done()` holds, failing when `progress()` has not moved for `timeout`.
template <class Done, class Progress>
void wait_for(Done done, Progress progress, milliseconds timeout, const char* what) {
  auto last = progress();
  auto deadline = clock::now() + timeout;
  while (!done()) {
    const auto now_at = progress();
    if (now_at != last) {
      last = now_at;
      deadline = clock::now() + timeout;
    } else if (clock::now() > deadline) {
      throw std::runtime_error(std::string("timed out ") + what);
    }
    std::this_thread::yield();
  }
}

// Submits tasks [from, to) with submit_batch, `s.batch` per call, keeping at most `s.window`
// submitted and not completed; returns once every one has completed.
void submit_all(task_producer& p, const spec& s, ledger& l, std::uint64_t from, std::uint64_t to,
                std::atomic<bool>& failed) {
  const std::size_t batch = std::max<std::size_t>(1, s.batch);
  std::vector<std::string> bodies(batch, std::string(s.size, 'x'));
  std::vector<std::string_view> views(bodies.begin(), bodies.end());
  const auto settle = [&failed](result<std::uint64_t> r) {
    if (!r) failed = true;
  };
  const auto completed = [&l] { return l.completed.load(std::memory_order_acquire); };
  for (std::uint64_t n = from; n < to;) {
    const std::uint64_t k = std::min<std::uint64_t>(batch, to - n);
    wait_for([&] { return (n - completed()) + k <= std::max<std::uint64_t>(s.window, k) || failed; }, completed,
             s.timeout, "waiting for completions");
    if (failed) throw std::runtime_error("a submit failed");
    const std::int64_t at = now_ns();
    for (std::uint64_t i = 0; i < k; ++i) {
      put_number(bodies[i], n + i);
      l.submitted[n + i] = at;
    }
    p.submit_batch(queue_name, std::span<const std::string_view>(views.data(), k), settle);
    n += k;
  }
  wait_for([&] { return completed() >= to || failed; }, completed, s.timeout, "waiting for the last completions");
  if (failed) throw std::runtime_error("a submit failed");
}

task_queue_info queue_stats(task_producer& p) {
  auto st = p.stats();
  if (st.queues.empty()) throw std::runtime_error("the producer reports no queue");
  return st.queues.front();
}

}  // namespace

outcome fabric_queue(const std::filesystem::path& dir, const spec& s) {
  if (s.size < sizeof(std::uint64_t)) throw std::invalid_argument("tasks are numbered: 8 bytes or more");
  const std::uint64_t warm = warmup_for(s.count);
  const std::uint64_t total = warm + s.count;
  // Declared before the producer: its journal's writer thread runs on_result until it stops.
  ledger l(total);
  std::atomic<bool> failed{false};
  std::atomic<std::uint64_t> duplicates{0};

  journal_options jo;
  jo.mode = s.mode;
  // Each task is a record and, until its completion is below the watermark, a row or two.
  jo.map_size = journal_bench::map_size_for(s.size + 64, total * 3);
  jo.max_pending = std::size_t{1} << 22;
  context ctx;
  journal j = journal::open(dir / "producer", jo);
  task_producer_options po;
  po.endpoint = "tcp://127.0.0.1:*";
  po.queues = {{.name = std::string(queue_name)}};
  po.on_result = [&l, &duplicates, total](const task_result& r, journal_txn&) {
    if (!l.complete(number_of(r.body.data(), r.body.size(), total), total)) duplicates.fetch_add(1);
  };
  task_producer p(ctx, j, po);
  workers_child child("fabric", p.endpoint(), "", s);
  child.wait_ready();
  {
    // Every worker joined before the first task, so that the warm-up reaches them all.
    const auto deadline = clock::now() + s.timeout;
    std::mutex mu;
    std::condition_variable never;
    while (queue_stats(p).workers < static_cast<std::size_t>(s.workers)) {
      if (clock::now() > deadline) throw std::runtime_error("not every worker joined in time");
      std::unique_lock lock(mu);
      never.wait_for(lock, milliseconds(2));  // a bounded poll of the producer's statistics
    }
  }
  submit_all(p, s, l, 0, warm, failed);
  const std::int64_t t0 = now_ns();
  submit_all(p, s, l, warm, total, failed);
  // on_result ran for the last task inside its transaction; the producer counts it once the
  // transaction has committed.
  std::uint64_t committed = 0;
  wait_for([&] { return (committed = queue_stats(p).completed) >= total; }, [&] { return committed; }, s.timeout,
           "waiting for the last commit");
  const std::int64_t t1 = now_ns();
  const task_producer_stats st = p.stats();
  child.finish();
  l.check(total);
  const task_queue_info& q = st.queues.front();
  if (q.completed != total || q.dead_lettered != 0 || q.expired != 0 || st.commit_failures != 0 || duplicates != 0) {
    throw std::runtime_error("the producer counts " + std::to_string(q.completed) + " of " + std::to_string(total) +
                             " tasks completed, " + std::to_string(q.dead_lettered) + " dead-lettered, " +
                             std::to_string(st.commit_failures) + " failed commits, " +
                             std::to_string(duplicates.load()) + " results seen twice");
  }
  outcome out;
  out.seconds = static_cast<double>(t1 - t0) / 1e9;
  out.tasks = s.count;
  out.latency = l.latency(warm, total);
  return out;
}

outcome raw_queue(const spec& s) {
  if (s.size < sizeof(std::uint64_t)) throw std::invalid_argument("tasks are numbered: 8 bytes or more");
  const std::uint64_t warm = warmup_for(s.count);
  const std::uint64_t total = warm + s.count;
  ledger l(total);
  zmq::context_t zctx(1);
  zmq::socket_t vent(zctx, zmq::socket_type::push);
  zmq::socket_t sink(zctx, zmq::socket_type::pull);
  for (auto* sock : {&vent, &sink}) sock->set(zmq::sockopt::linger, 0);
  // Every worker's connection, seen before the first task so that round-robin reaches them all.
  if (zmq_socket_monitor(vent.handle(), "inproc://queue-bench-ventilator", ZMQ_EVENT_HANDSHAKE_SUCCEEDED) != 0)
    throw std::runtime_error("cannot monitor the ventilator");
  zmq::socket_t monitor(zctx, zmq::socket_type::pair);
  monitor.set(zmq::sockopt::rcvtimeo, static_cast<int>(s.timeout.count()));
  monitor.set(zmq::sockopt::linger, 0);
  monitor.connect("inproc://queue-bench-ventilator");
  vent.bind("tcp://127.0.0.1:*");
  sink.bind("tcp://127.0.0.1:*");
  workers_child child("raw", vent.get(zmq::sockopt::last_endpoint), sink.get(zmq::sockopt::last_endpoint), s);
  child.wait_ready();
  for (int joined = 0; joined < s.workers; ++joined) {
    zmq::message_t event;
    zmq::message_t address;  // each event is two frames: the event, then the peer's address
    if (!monitor.recv(event) || !event.more() || !monitor.recv(address))
      throw std::runtime_error("not every raw worker connected in time");
  }

  std::uint64_t received = 0;
  const auto run_phase = [&](std::uint64_t from, std::uint64_t to) {
    std::uint64_t next = from;
    zmq::message_t answer;
    std::string body(s.size, 'x');
    auto deadline = clock::now() + s.timeout;
    while (received < to) {
      const bool want_send = next < to && next - received < s.window;
      zmq::pollitem_t items[] = {{sink.handle(), 0, ZMQ_POLLIN, 0},
                                 {vent.handle(), 0, static_cast<short>(want_send ? ZMQ_POLLOUT : 0), 0}};
      const auto left = std::chrono::duration_cast<milliseconds>(deadline - clock::now());
      if (left.count() <= 0) throw std::runtime_error("raw pipeline: timed out waiting for results");
      zmq::poll(items, 2, left);
      if (items[1].revents & ZMQ_POLLOUT) {
        while (next < to && next - received < s.window) {
          put_number(body, next);
          zmq::message_t m(body.data(), body.size());
          const std::int64_t at = now_ns();
          if (!vent.send(m, zmq::send_flags::dontwait)) break;
          l.submitted[next] = at;
          ++next;
        }
      }
      if (items[0].revents & ZMQ_POLLIN) {
        while (sink.recv(answer, zmq::recv_flags::dontwait)) {
          if (!l.complete(number_of(answer.data(), answer.size(), total), total))
            throw std::runtime_error("raw pipeline: a result came twice, or named no task");
          ++received;
          deadline = clock::now() + s.timeout;
        }
      }
    }
  };
  run_phase(0, warm);
  const std::int64_t t0 = now_ns();
  run_phase(warm, total);
  const std::int64_t t1 = now_ns();
  child.finish();
  l.check(total);
  outcome out;
  out.seconds = static_cast<double>(t1 - t0) / 1e9;
  out.tasks = s.count;
  out.latency = l.latency(warm, total);
  return out;
}

// ---- the child -------------------------------------------------------------------------------

namespace {

void say(const std::string& line) {
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

// Returns once stdin closes: the benchmark is done with us, or went away.
void wait_for_stdin_to_close() {
  char sink[256];
  while (::read(0, sink, sizeof sink) > 0) {
  }
}

}  // namespace

int workers_main(const std::string& impl, const std::string& endpoint, const std::string& result_endpoint,
                 int workers, std::uint32_t capacity) {
  try {
    if (impl == "fabric") {
      context ctx;
      std::vector<std::unique_ptr<task_worker>> ws;
      for (int i = 0; i < workers; ++i) {
        task_worker_options o;
        o.name = "w" + std::to_string(i);
        o.endpoint = endpoint;
        o.queue = std::string(queue_name);
        o.capacity = capacity;
        // No work: the result is the task's number, so that the producer's side can count it.
        o.on_task = [](const task& t) { return std::string(t.body.substr(0, result_size)); };
        ws.push_back(std::make_unique<task_worker>(ctx, std::move(o)));
      }
      say("ready");
      wait_for_stdin_to_close();
      ws.clear();  // each leaves cleanly
      return 0;
    }
    if (impl == "raw") {
      zmq::context_t zctx(1);
      std::atomic<bool> stop{false};
      std::atomic<int> failures{0};
      std::vector<std::thread> threads;
      for (int i = 0; i < workers; ++i) {
        threads.emplace_back([&] {
          try {
            zmq::socket_t in(zctx, zmq::socket_type::pull);
            zmq::socket_t out(zctx, zmq::socket_type::push);
            in.set(zmq::sockopt::rcvtimeo, 100);  // to notice `stop` while nothing comes
            in.set(zmq::sockopt::linger, 0);
            out.set(zmq::sockopt::linger, 0);
            out.set(zmq::sockopt::sndtimeo, 1000);
            in.connect(endpoint);
            out.connect(result_endpoint);
            zmq::message_t m;
            while (!stop.load(std::memory_order_relaxed)) {
              if (!in.recv(m)) continue;
              zmq::message_t r(m.data(), std::min(m.size(), result_size));
              if (!out.send(r, zmq::send_flags::none) && !stop.load()) throw std::runtime_error("the sink stopped taking");
            }
          } catch (const std::exception&) {
            failures.fetch_add(1);
          }
        });
      }
      say("ready");
      wait_for_stdin_to_close();
      stop = true;
      for (auto& t : threads) t.join();
      if (failures.load() != 0) {
        say("error " + std::to_string(failures.load()) + " raw workers failed");
        return 1;
      }
      return 0;
    }
    say("error unknown worker kind '" + impl + "'");
    return 1;
  } catch (const std::exception& e) {
    say(std::string("error ") + e.what());
    return 1;
  }
}

}  // namespace fabric::perf::queue_bench
