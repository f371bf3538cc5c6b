// fabric::task_worker: the FRQ/1 worker machine (frq_worker.hpp) driven over a DEALER. The
// machine's thread only speaks the protocol: a synchronous handler runs on a pool of `capacity`
// threads of its own, so a long task never keeps the worker from heartbeating, and every answer
// (from the pool, or from the application through complete(), fail(), reject(), extend()) reaches
// the machine's thread through one queue.
#include <fabric/task_queue.hpp>

#include "core/driver.hpp"
#include "reliability/channel_support.hpp"
#include "reliability/frq_worker.hpp"

#include <fabric/completion_queue.hpp>
#include <fabric/error.hpp>
#include <fabric/router_dealer.hpp>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

namespace fabric {
namespace {

using detail::time_point;
using std::chrono::milliseconds;

std::string what_of(std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return x.what();
  } catch (...) {
    return "a non-standard exception";
  }
}

enum class answer_kind : std::uint8_t { done, failed, rejected, extend };

}  // namespace

struct task_worker::impl final : frq::worker_app, detail::machine_sink {
  // An answer on its way to the machine's thread.
  struct answer {
    answer_kind what;
    std::uint64_t task_id;
    std::uint32_t attempt;
    std::string body;  // the result, or a reason
    std::uint32_t extend_ms = 0;
  };
  // A task waiting for a thread of the pool.
  struct queued_task {
    frq::worker_task t;
    bool cancelled = false;
  };

  impl(context& c, task_worker_options o)
      : options(checked(std::move(o))),
        socket(c, socket_settings(options)),
        machine(frq::worker_settings{.name = options.name,
                                     .incarnation = detail::draw_incarnation(),
                                     .queue = options.queue,
                                     .capacity = options.capacity,
                                     .heartbeat = options.heartbeat,
                                     .liveness = options.liveness,
                                     .reconnect_initial = options.reconnect_interval,
                                     .reconnect_max = options.reconnect_interval_max},
                *this, *this),
        driver(c, "task worker") {
    driver.watch(socket, [this](message&& m, time_point now) { machine.on_message(std::move(m), now); }, 64);
    driver.watch_fd(wake.fd(), [this](time_point now) { on_answers(now); });
    driver.ticks([this](time_point now) { machine.on_tick(now); }, [this] { return machine.next_tick(); });
    driver.commands([this](message&& m) {
      if (!m.empty() && m.view(0) == "leave") {
        machine.leave(detail::machine_clock::now());
        return message("left");
      }
      take_snapshot();
      return message{};
    });
    if (options.on_task) {
      for (std::uint32_t i = 0; i < options.capacity; ++i) pool.emplace_back([this] { serve(); });
    }
  }

  ~impl() override {
    // Leave cleanly: results recorded, what is held handed back with BYE, bounded.
    if (driver.running()) {
      if (driver.call(message("leave"), milliseconds(1000))) {
        const auto deadline = std::chrono::steady_clock::now() + milliseconds(6000);
        while (std::chrono::steady_clock::now() < deadline) {
          if (!driver.call(message{}, milliseconds(1000))) break;
          std::unique_lock lock(snapshot_mu);
          if (snapshot.state == "gone" || snapshot.state == "stopped") break;
          left.wait_for(lock, milliseconds(20));  // bounded poll of the machine's state
        }
      }
    }
    driver.stop();
    {
      std::lock_guard lock(pool_mu);
      stopping = true;
    }
    pool_cv.notify_all();
    for (auto& t : pool) t.join();
  }

  static task_worker_options checked(task_worker_options o) {
    const auto bad = [](const std::string& what) { throw error(errc::invalid_argument, "task worker: " + what); };
    if (o.name.empty() || o.name.size() > 255) bad("give a name of 1..255 octets");
    if (o.endpoint.empty()) bad("give the producer's endpoint");
    if (o.queue.empty() || o.queue.size() > 255 || o.queue.front() == '\0') bad("give a queue name");
    if (!o.on_task == !o.on_task_async) bad("give exactly one of on_task and on_task_async");
    if (o.capacity < 1 || o.capacity > frq::max_capacity) bad("capacity must be 1 .. 65,536");
    if (o.on_task && o.capacity > 256) bad("a synchronous handler runs one thread per unit of capacity: at most 256");
    return o;
  }

  static socket_options socket_settings(const task_worker_options& o) {
    socket_options s;
    s.linger = milliseconds(0);
    s.send_hwm = 0;  // results are bounded by the machine (max_unanswered)
    s.recv_hwm = 0;  // tasks are bounded by the capacity
    s.max_frames = 10;
    s.security = o.security;
    return s;
  }

  void log_line(log_level level, const std::string& line) {
    if (options.log) options.log(level, line);
  }

  // ---- the application behind the machine (the machine's thread)

  void on_task(frq::worker_task&& t) override {
    ++tasks;
    if (options.on_task_async) {
      options.on_task_async(view_of(t));
      return;
    }
    {
      std::lock_guard lock(pool_mu);
      queue.push_back(queued_task{std::move(t)});
    }
    pool_cv.notify_one();
  }

  task view_of(const frq::worker_task& t) const {
    return task{.queue = options.queue,
                .id = t.key.task_id,
                .attempt = t.key.attempt,
                .priority = t.priority,
                .enqueued = std::chrono::system_clock::time_point(
                    std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::nanoseconds(t.enqueued_ns))),
                .deadline = t.deadline,
                .body = std::string_view(static_cast<const char*>(t.body.data()), t.body.size())};
  }

  void on_abandoned(frq::attempt_key key, frq::abandon_reason why) override {
    ++cancelled;
    {
      std::lock_guard lock(pool_mu);
      for (auto& q : queue) {
        if (q.t.key == key) q.cancelled = true;  // not started: never run
      }
    }
    if (why != frq::abandon_reason::leaving && options.on_cancel) options.on_cancel(key.task_id, key.attempt);
  }

  void on_answered(frq::attempt_key, frq::verdict v) override {
    if (v == frq::verdict::recorded) {
      ++completed;
    } else {
      ++stale;
    }
  }

  void on_refused(std::string_view code, std::string_view reason, bool final) override {
    log_line(final ? log_level::error : log_level::warning,
             "task worker: refused by the producer: " + std::string(code) + ": " + std::string(reason));
  }

  // ---- the sink

  result<void> send(detail::port, message&& m) override { return socket.try_send(std::move(m)); }

  void close(detail::port) noexcept override {
    if (!connected) return;
    try {
      socket.disconnect(options.endpoint);
    } catch (const std::exception&) {  // already gone
    }
    connected = false;
  }

  result<void> open(detail::port) override {
    try {
      socket.connect(options.endpoint);
    } catch (const error& e) {
      return e.code();
    }
    connected = true;
    ++connections;
    return {};
  }

  // ---- answers, from any thread

  void post(answer&& a) {
    {
      std::lock_guard lock(answers_mu);
      answers.push_back(std::move(a));
    }
    wake.push(0, std::uint64_t{0});
  }

  void on_answers(time_point now) {
    wake.drain([](completion_queue::completion) {});
    std::vector<answer> batch;
    {
      std::lock_guard lock(answers_mu);
      batch.swap(answers);
    }
    for (auto& a : batch) {
      result<void> r;
      if (a.what == answer_kind::extend) {
        r = machine.extend(a.task_id, a.attempt, a.extend_ms, now);
      } else {
        const frq::status s = a.what == answer_kind::done     ? frq::status::done
                              : a.what == answer_kind::failed ? frq::status::failed
                                                              : frq::status::rejected;
        if (s != frq::status::done && a.body.size() > frq::max_reason_size) a.body.resize(frq::max_reason_size);
        r = machine.complete(a.task_id, a.attempt, s, a.body, now);
      }
      if (!r) ++answers_dropped;  // the attempt was taken back meanwhile, or the worker left
    }
  }

  // ---- the pool of a synchronous handler

  void serve() {
    for (;;) {
      queued_task q;
      {
        std::unique_lock lock(pool_mu);
        pool_cv.wait(lock, [this] { return stopping || !queue.empty(); });
        if (stopping) return;
        q = std::move(queue.front());
        queue.pop_front();
      }
      if (q.cancelled) continue;
      const task view = view_of(q.t);
      try {
        std::string out = options.on_task(view);
        post({answer_kind::done, view.id, view.attempt, std::move(out)});
      } catch (const task_rejected& e) {
        post({answer_kind::rejected, view.id, view.attempt, e.what()});
      } catch (...) {
        post({answer_kind::failed, view.id, view.attempt, what_of(std::current_exception())});
      }
    }
  }

  void take_snapshot() {
    const auto m = machine.stats();
    task_worker_stats s;
    s.state = std::string(frq::to_string(m.state));
    s.held = m.held;
    s.unanswered = m.unanswered;
    s.tasks = tasks;
    s.completed = completed;
    s.stale = stale;
    s.cancelled = cancelled;
    s.connections = connections;
    s.refusal = m.refusal;
    {
      std::lock_guard lock(snapshot_mu);
      snapshot = std::move(s);
    }
    left.notify_all();
  }

  task_worker_options options;
  dealer socket;
  bool connected = false;
  completion_queue wake;

  std::mutex answers_mu;
  std::vector<answer> answers;

  std::mutex pool_mu;
  std::condition_variable pool_cv;
  std::deque<queued_task> queue;
  bool stopping = false;
  std::vector<std::thread> pool;

  std::uint64_t tasks = 0;
  std::uint64_t completed = 0;
  std::uint64_t stale = 0;
  std::uint64_t cancelled = 0;
  std::uint64_t connections = 0;
  std::uint64_t answers_dropped = 0;
  std::mutex snapshot_mu;
  std::condition_variable left;
  task_worker_stats snapshot;

  frq::worker_machine machine;
  detail::driver driver;  // last: stopped before what it drives is destroyed
};

task_worker::task_worker(context& ctx, task_worker_options options, deferred_start_t)
    : impl_(std::make_unique<impl>(ctx, std::move(options))) {}

task_worker::task_worker(context& ctx, task_worker_options options)
    : task_worker(ctx, std::move(options), deferred_start) {
  impl_->driver.start();
}

task_worker::~task_worker() = default;

void task_worker::complete(std::uint64_t task_id, std::uint32_t attempt, std::string_view result) {
  impl_->post({answer_kind::done, task_id, attempt, std::string(result)});
}
void task_worker::fail(std::uint64_t task_id, std::uint32_t attempt, std::string_view reason) {
  impl_->post({answer_kind::failed, task_id, attempt, std::string(reason)});
}
void task_worker::reject(std::uint64_t task_id, std::uint32_t attempt, std::string_view reason) {
  impl_->post({answer_kind::rejected, task_id, attempt, std::string(reason)});
}
void task_worker::extend(std::uint64_t task_id, std::uint32_t attempt, std::chrono::milliseconds more) {
  const auto ms = std::clamp<std::int64_t>(more.count(), 1, frq::max_extend_ms);
  impl_->post({answer_kind::extend, task_id, attempt, {}, static_cast<std::uint32_t>(ms)});
}

void task_worker::start() { impl_->driver.start(); }
result<void> task_worker::run() { return impl_->driver.run(); }
void task_worker::request_stop() noexcept { impl_->driver.request_stop(); }
void task_worker::attach(reactor& r) { impl_->driver.attach(r); }
bool task_worker::detach(reactor& r) noexcept { return impl_->driver.detach(r); }
bool task_worker::stop(std::chrono::milliseconds timeout) noexcept { return impl_ ? impl_->driver.stop(timeout) : true; }
bool task_worker::running() const noexcept { return impl_->driver.running(); }
std::exception_ptr task_worker::failure() const noexcept { return impl_->driver.failure(); }

task_worker_stats task_worker::stats(std::chrono::milliseconds timeout) {
  auto answer = impl_->driver.call(message{}, timeout);
  if (!answer) {
    if (answer.is(errc::timeout)) throw error(errc::timeout, "task worker: its thread did not answer");
    throw error(errc::invalid_state, "task worker: not running");
  }
  std::lock_guard lock(impl_->snapshot_mu);
  return impl_->snapshot;
}

}  // namespace fabric
