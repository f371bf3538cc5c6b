// Wires one FRQ/1 producer machine and several worker machines together in memory, on a fake
// clock, with a lossy network, a journal whose commits sometimes fail, workers killed at random
// (and restarted with a new incarnation) or leaving cleanly, and checks the end-to-end promises of
// docs/queue.md: every task is completed exactly once in the producer's record, or dead-lettered
// with a reason; and every first hand-out obeys section 7 (lowest effective priority, ties to the
// lower task id) against every task still waiting since its enqueue.
#include "reliability/frq_producer.hpp"
#include "reliability/frq_worker.hpp"

#include "reliability/frq.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fabric::frq {
namespace {

using namespace std::chrono_literals;
using detail::time_point;

constexpr std::uint64_t producer_inc = 0x9A0D;
constexpr std::string_view queue_name = "jobs";

struct task_info {
  std::uint8_t priority = 0;
  time_point enqueued{};
  bool delayed = false;
  bool has_ttl = false;
  int state = 0;  // 0 waiting, 1 running, 2 dead, 3 done
  std::uint32_t attempt = 0;
  std::uint32_t counted = 0;
  std::uint32_t answered = 0;
  std::vector<std::string> results;
  std::string dead_reason;
};

// The journal: rows per task, commits completed by the simulation.
class sim_store final : public producer_store {
 public:
  result<bool> read(std::string_view, std::uint64_t, std::size_t, std::vector<task_record>&) override {
    return true;  // every task is in memory: it was enqueued through on_enqueued
  }
  task_lookup lookup(std::string_view, std::uint64_t id) override {
    const auto it = tasks.find(id);
    if (it == tasks.end()) return {};
    return {true, it->second.state >= 2 ? it->second.answered : 0};
  }
  void commit(commit_batch&& b) override {
    for (const auto& c : b.changes) {
      if (c.kind != change_kind::handed_out || c.attempt != 1) continue;
      selections.emplace_back(c.task_id, *clock);  // chosen now: first hand-outs, in order
    }
    in_flight.push_back(std::move(b));
  }
  void apply(const commit_batch& b) {
    for (const auto& c : b.changes) {
      task_info& t = tasks[c.task_id];
      t.attempt = c.attempt;
      t.counted = c.counted;
      t.answered = c.answered;
      switch (c.kind) {
        case change_kind::handed_out: t.state = 1; break;
        case change_kind::taken_back:
        case change_kind::failed: t.state = 0; break;
        case change_kind::done:
          ASSERT_LT(t.state, 2) << "task " << c.task_id << " finished twice";
          t.state = 3;
          t.results.emplace_back(view(c.body));
          break;
        case change_kind::dead:
          ASSERT_LT(t.state, 2) << "task " << c.task_id << " finished twice";
          t.state = 2;
          t.dead_reason = c.reason;
          break;
      }
    }
  }

  const time_point* clock = nullptr;
  std::map<std::uint64_t, task_info> tasks;
  std::deque<commit_batch> in_flight;
  std::vector<std::pair<std::uint64_t, time_point>> selections;
};

struct network;

// One worker process: its machine, its application, its end of the network.
struct worker_slot : worker_app {
  network* net = nullptr;
  std::string name;
  std::uint32_t capacity = 1;
  std::unique_ptr<worker_machine> machine;
  std::string conn;  // its connection's routing id at the producer; empty when closed
  std::deque<message> inbox;
  bool alive = false;
  time_point revive_at{};
  std::uint64_t starts = 0;
  std::uint32_t connections = 0;
  struct running {
    attempt_key key;
    time_point finish_at;
  };
  std::vector<running> work;

  void on_task(worker_task&& t) override;
  void on_abandoned(attempt_key key, abandon_reason) override {
    std::erase_if(work, [&](const running& r) { return r.key == key; });
  }
  void on_answered(attempt_key, verdict) override {}
};

struct network {
  explicit network(std::uint64_t seed) : rng(seed) {}
  std::mt19937_64 rng;
  time_point now = time_point{} + std::chrono::hours(1);
  std::deque<std::pair<std::string, message>> to_producer;
  std::vector<std::unique_ptr<worker_slot>> workers;
  double loss = 0.01;

  bool chance(double p) { return std::uniform_real_distribution<double>(0, 1)(rng) < p; }
  std::int64_t between(std::int64_t lo, std::int64_t hi) {
    return std::uniform_int_distribution<std::int64_t>(lo, hi)(rng);
  }
  worker_slot* by_conn(std::string_view conn) {
    for (auto& w : workers) {
      if (w->alive && w->conn == conn) return w.get();
    }
    return nullptr;
  }
};

void worker_slot::on_task(worker_task&& t) {
  work.push_back({t.key, net->now + std::chrono::milliseconds(net->between(20, 800))});
}

// A worker's DEALER.
class worker_sink final : public detail::machine_sink {
 public:
  explicit worker_sink(worker_slot& w) : w_(w) {}
  result<void> send(detail::port, message&& m) override {
    if (w_.conn.empty()) return errc::closed;
    message mine = std::move(m);
    if (!w_.net->chance(w_.net->loss)) w_.net->to_producer.emplace_back(w_.conn, std::move(mine));
    return {};
  }
  void close(detail::port) noexcept override {
    w_.conn.clear();
    w_.inbox.clear();
  }
  result<void> open(detail::port) override {
    w_.conn = w_.name + "#" + std::to_string(w_.starts) + "." + std::to_string(++w_.connections);
    return {};
  }

 private:
  worker_slot& w_;
};

// The producer's ROUTER, with ROUTER_MANDATORY: a connection that is gone is sometimes known at
// once (unreachable), sometimes not (the message is lost).
class producer_sink final : public detail::machine_sink {
 public:
  explicit producer_sink(network& net) : net_(net) {}
  result<void> send(detail::port, message&& m) override {
    const std::string peer(m.view(0));
    worker_slot* w = net_.by_conn(peer);
    if (w == nullptr) {
      if (net_.chance(0.5)) return errc::peer_unreachable;
      m.clear();
      return {};
    }
    message mine = std::move(m);
    (void)mine.pop_front();
    if (!net_.chance(net_.loss)) w->inbox.push_back(std::move(mine));
    return {};
  }

 private:
  network& net_;
};

class FrqQueue : public ::testing::TestWithParam<std::uint64_t> {};

TEST_P(FrqQueue, EveryTaskCompletesExactlyOnceOrIsDeadLetteredWithAReasonDespiteWorkerDeaths) {
  network net(GetParam());
  sim_store store;
  store.clock = &net.now;
  producer_settings ps;
  ps.incarnation = producer_inc;
  ps.queues = {queue_settings{.name = std::string(queue_name), .deadline_ms = 3000, .max_attempts = 5}};
  ps.heartbeat = 500ms;
  ps.liveness = 3;
  ps.aging_interval = 1000ms;
  ps.retry_base = 200ms;
  ps.retry_max = 2000ms;
  producer_sink psink(net);
  producer_machine producer(ps, psink, store);
  producer.start(net.now);

  constexpr int worker_count = 5;
  // Each worker gets its own sink, made before its machine.
  for (int i = 0; i < worker_count; ++i) {
    auto w = std::make_unique<worker_slot>();
    w->net = &net;
    w->name = "w" + std::to_string(i);
    w->capacity = static_cast<std::uint32_t>(1 + i % 3);
    net.workers.push_back(std::move(w));
  }
  std::vector<std::unique_ptr<worker_sink>> worker_sinks;
  for (auto& w : net.workers) worker_sinks.push_back(std::make_unique<worker_sink>(*w));
  const auto boot = [&](std::size_t i) {
    worker_slot& w = *net.workers[i];
    ++w.starts;
    w.alive = true;
    w.work.clear();
    w.inbox.clear();
    w.conn.clear();
    worker_settings ws;
    ws.name = w.name;
    ws.incarnation = (i + 1) * 0x10000 + w.starts;
    ws.queue = std::string(queue_name);
    ws.capacity = w.capacity;
    ws.heartbeat = 500ms;
    ws.liveness = 3;
    ws.reconnect_initial = 200ms;
    ws.reconnect_max = 2000ms;
    ws.retransmit_interval = 1000ms;
    ws.leave_wait = 1000ms;
    w.machine = std::make_unique<worker_machine>(ws, *worker_sinks[i], w);
  };
  for (std::size_t i = 0; i < net.workers.size(); ++i) boot(i);

  std::uint64_t next_id = 1;
  const auto enqueue = [&](std::uint8_t priority, bool delayed, bool ttl) {
    const std::uint64_t id = next_id++;
    task_info& info = store.tasks[id];
    info.priority = priority;
    info.enqueued = net.now;
    info.delayed = delayed;
    info.has_ttl = ttl;
    task_record r;
    r.id = id;
    r.priority = priority;
    r.deliver_at = delayed ? net.now + std::chrono::milliseconds(net.between(100, 5000)) : time_point::min();
    r.expires_at = ttl ? net.now + std::chrono::milliseconds(net.between(500, 3000)) : time_point::max();
    r.enqueued_ns = static_cast<std::uint64_t>(id);
    r.body = make_frame("task " + std::to_string(id));
    producer.on_enqueued(queue_name, std::move(r), net.now);
  };
  for (int i = 0; i < 300; ++i) {
    enqueue(static_cast<std::uint8_t>(net.between(0, 7)), net.chance(0.05), net.chance(0.03));
  }

  const auto pump = [&] {
    for (int round = 0; round < 1000; ++round) {
      bool moved = false;
      while (!net.to_producer.empty()) {
        auto [peer, m] = std::move(net.to_producer.front());
        net.to_producer.pop_front();
        m.push_front(peer);
        producer.on_message(std::move(m), net.now);
        moved = true;
      }
      for (auto& w : net.workers) {
        while (w->alive && !w->inbox.empty()) {
          message m = std::move(w->inbox.front());
          w->inbox.pop_front();
          w->machine->on_message(std::move(m), net.now);
          moved = true;
        }
      }
      if (!moved) return;
    }
    FAIL() << "the network never went quiet";
  };

  constexpr std::size_t total = 420;
  const auto finished = [&] {
    if (next_id <= total) return false;
    return std::all_of(store.tasks.begin(), store.tasks.end(), [](const auto& e) { return e.second.state >= 2; });
  };
  int deaths = 0;
  int leaves = 0;
  for (int step = 0; step < 200'000 && !finished(); ++step) {
    net.now += 20ms;
    // New tasks keep coming, most of them urgent.
    if (next_id <= total && net.chance(0.2)) enqueue(net.chance(0.8) ? 0 : 7, false, false);
    for (std::size_t i = 0; i < net.workers.size(); ++i) {
      worker_slot& w = *net.workers[i];
      if (!w.alive) {
        if (net.now >= w.revive_at) boot(i);
        continue;
      }
      if (net.chance(0.002)) {  // kill -9: no BYE, nothing more from it
        ++deaths;
        w.alive = false;
        w.machine.reset();
        w.conn.clear();
        w.inbox.clear();
        w.work.clear();
        w.revive_at = net.now + std::chrono::milliseconds(net.between(0, 4000));
        continue;
      }
      if (net.chance(0.0005) && w.machine->state() == worker_state::working) {
        ++leaves;
        w.machine->leave(net.now);
      }
      if (w.machine->state() == worker_state::gone) {
        w.alive = false;
        w.machine.reset();
        w.conn.clear();
        w.revive_at = net.now + 500ms;
        continue;
      }
      if (w.machine->next_tick() <= net.now) w.machine->on_tick(net.now);
      std::vector<worker_slot::running> due;
      std::erase_if(w.work, [&](const worker_slot::running& r) {
        if (r.finish_at > net.now) return false;
        due.push_back(r);
        return true;
      });
      for (const auto& r : due) {
        const double roll = std::uniform_real_distribution<double>(0, 1)(net.rng);
        const status s = roll < 0.85 ? status::done : roll < 0.97 ? status::failed : status::rejected;
        const std::string body = s == status::done ? "result " + std::to_string(r.key.task_id) : "no luck";
        (void)w.machine->complete(r.key.task_id, r.key.attempt, s, body, net.now);
      }
    }
    pump();
    if (producer.next_tick() <= net.now) producer.on_tick(net.now);
    // The journal is quick: every commit of this step completes within it (a few fail), so a
    // hand-out's selection time is the time its commit was made.
    for (int i = 0; i < 100 && !store.in_flight.empty(); ++i) {
      commit_batch b = std::move(store.in_flight.front());
      store.in_flight.pop_front();
      const bool ok = !net.chance(0.01);
      if (ok) store.apply(b);
      producer.on_committed(b.id, ok ? fabric::result<void>{} : fabric::result<void>{errc::io_error}, net.now);
      pump();
    }
  }

  ASSERT_TRUE(finished()) << "tasks left unfinished";
  EXPECT_GT(deaths, 0);
  std::size_t done = 0;
  std::size_t dead = 0;
  for (const auto& [id, t] : store.tasks) {
    if (t.state == 3) {
      ++done;
      ASSERT_EQ(t.results.size(), 1u) << "task " << id;
      EXPECT_EQ(t.results[0], "result " + std::to_string(id));
    } else {
      ++dead;
      EXPECT_FALSE(t.dead_reason.empty()) << "task " << id << " dead-lettered without a reason";
    }
  }
  EXPECT_EQ(done + dead, total);
  EXPECT_GT(done, total / 2);
  EXPECT_EQ(producer.stats().tasks_in_memory, 0u);
  const auto q = producer.queue_stats(queue_name, net.now);
  EXPECT_EQ(q.completed, done);
  EXPECT_EQ(q.dead_lettered, dead);

  // Section 7, first hand-outs only (a task taken back becomes ready again later): when A was
  // chosen at T, every task B enqueued by T, not delayed and not chosen yet, had a higher
  // (effective priority, task id).
  const auto effective = [&](const task_info& t, time_point at) {
    const auto steps = (at - t.enqueued) / ps.aging_interval;
    return static_cast<std::int64_t>(std::max<std::int64_t>(0, t.priority - steps));
  };
  std::map<std::uint64_t, std::size_t> order;  // the first choice of each task
  for (std::size_t i = 0; i < store.selections.size(); ++i) order.emplace(store.selections[i].first, i);
  std::size_t checked = 0;
  for (std::size_t i = 0; i < store.selections.size(); ++i) {
    const auto [a, at] = store.selections[i];
    const task_info& ta = store.tasks[a];
    if (ta.delayed || order.at(a) != i) continue;
    for (const auto& [b, tb] : store.tasks) {
      if (b == a || tb.delayed || tb.enqueued > at) continue;
      const auto ob = order.find(b);
      if (ob != order.end() && ob->second < i) continue;  // chosen before
      if (tb.has_ttl && tb.state == 2 && tb.dead_reason == "expired") continue;  // may be gone by then
      ASSERT_TRUE(std::pair(effective(ta, at), a) < std::pair(effective(tb, at), b))
          << "task " << a << " (priority " << int(ta.priority) << ") went before task " << b << " (priority "
          << int(tb.priority) << ")";
      ++checked;
    }
  }
  EXPECT_GT(checked, 1000u);
}

INSTANTIATE_TEST_SUITE_P(Seeds, FrqQueue, ::testing::Values(1, 2, 3, 4, 5, 6, 7, 20261204));

}  // namespace
}  // namespace fabric::frq
