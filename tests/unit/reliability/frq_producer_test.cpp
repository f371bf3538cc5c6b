// Tests the FRQ/1 producer machine on a fake clock, with a sink that reads back what it sends as a
// worker's DEALER would, and a journal in memory whose commits the test completes by hand:
// joining and refusals, credit, hand-outs only once durable, results recorded once and answered
// after durability, take-backs for every cause with their counts, BYE, EXTEND, CANCEL, back-off,
// dead letters, delays, TTL, priorities with aging, restart, paging and commit failures.
#include "reliability/frq_producer.hpp"

#include "reliability/frq.hpp"

#include <fabric/error.hpp>

#include "support/support.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fabric::frq {
namespace {

using namespace std::chrono_literals;
using detail::time_point;

constexpr std::uint64_t self_inc = 0x5E1F;
constexpr std::uint64_t inc_a = 0xA1;
constexpr std::uint64_t inc_b = 0xB2;

// One message the producer sent, read as the worker's DEALER reads it.
struct sent {
  std::string peer;
  command what = command::producer_heartbeat;
  std::uint64_t producer_inc = 0;
  attempt_key key;
  task_fields task;
  std::string body;
  verdict v = verdict::recorded;
  std::string code;
  std::string reason;
};

class fake_sink final : public detail::machine_sink {
 public:
  using machine_sink::send;
  result<void> send(detail::port, message&& m) override {
    const std::string peer(m.view(0));
    if (unreachable.contains(peer)) return errc::peer_unreachable;
    if (full.contains(peer)) return errc::back_pressure;
    message mine = std::move(m);
    (void)mine.pop_front();
    const parsed p = parse_at_worker(mine);
    EXPECT_TRUE(p) << "the producer sent what a worker cannot parse: " << describe(p.error);
    sent s;
    s.peer = peer;
    s.what = p.what;
    s.producer_inc = p.producer_inc;
    s.key = p.key;
    s.task = p.task;
    s.body = std::string(p.body);
    s.v = p.verdict;
    s.code = std::string(p.refuse.code);
    s.reason = std::string(p.refuse.reason);
    out.push_back(std::move(s));
    return {};
  }
  std::vector<sent> take() { return std::exchange(out, {}); }
  // Everything sent of one command.
  std::vector<sent> take(command c) {
    std::vector<sent> all = take();
    std::vector<sent> of;
    for (auto& s : all) {
      if (s.what == c) of.push_back(std::move(s));
    }
    return of;
  }

  std::vector<sent> out;
  std::set<std::string> unreachable;
  std::set<std::string> full;
};

// The producer's journal in memory: frq.tasks and frq.state of section A, the results the
// handler got, and the dead letters. Commits wait until the test completes them.
class fake_store final : public producer_store {
 public:
  struct row {
    std::uint8_t priority = 0;
    time_point deliver_at = time_point::min();
    time_point expires_at = time_point::max();
    std::string body;
    std::uint32_t attempt = 0;
    std::uint32_t counted = 0;
    std::uint32_t answered = 0;
    int state = 0;  // 0 waiting, 1 running, 2 dead, 3 done
  };

  result<bool> read(std::string_view queue, std::uint64_t after, std::size_t max,
                    std::vector<task_record>& out) override {
    ++reads;
    if (failing_reads) return errc::io_error;
    auto& q = tasks[std::string(queue)];
    for (auto it = q.upper_bound(after); it != q.end(); ++it) {
      if (it->second.state >= 2) continue;
      if (max == 0) return false;
      --max;
      const row& r = it->second;
      task_record t;
      t.id = it->first;
      t.priority = r.priority;
      t.deliver_at = r.deliver_at;
      t.expires_at = r.expires_at;
      t.enqueued_ns = 1000 + it->first;
      t.body = make_frame(r.body);
      t.attempt = r.attempt;
      t.counted = r.counted;
      t.answered = r.answered;
      t.running = r.state == 1;
      out.push_back(std::move(t));
    }
    return true;
  }
  task_lookup lookup(std::string_view queue, std::uint64_t id) override {
    ++lookups;
    auto& q = tasks[std::string(queue)];
    const auto it = q.find(id);
    if (it == q.end()) return {};
    return {true, it->second.state >= 2 ? it->second.answered : 0};
  }
  void commit(commit_batch&& b) override { in_flight.push_back(std::move(b)); }

  void apply(const commit_batch& b) {
    for (const auto& c : b.changes) {
      row& r = tasks[c.queue][c.task_id];
      r.attempt = c.attempt;
      r.counted = c.counted;
      r.answered = c.answered;
      switch (c.kind) {
        case change_kind::handed_out: r.state = 1; break;
        case change_kind::taken_back:
        case change_kind::failed: r.state = 0; break;
        case change_kind::done:
          EXPECT_LT(r.state, 2) << "task " << c.task_id << " finished twice";
          r.state = 3;
          handled[c.task_id].push_back(std::string(view(c.body)));
          break;
        case change_kind::dead:
          EXPECT_LT(r.state, 2) << "task " << c.task_id << " finished twice";
          r.state = 2;
          dead[c.task_id] = c.reason;
          break;
      }
    }
  }
  // Adds a task to the journal as the application's append would.
  task_record append(std::string_view queue, std::uint64_t id, std::uint8_t priority, std::string body,
                     time_point deliver_at = time_point::min(), time_point expires_at = time_point::max()) {
    row& r = tasks[std::string(queue)][id];
    r.priority = priority;
    r.deliver_at = deliver_at;
    r.expires_at = expires_at;
    r.body = body;
    task_record t;
    t.id = id;
    t.priority = priority;
    t.deliver_at = deliver_at;
    t.expires_at = expires_at;
    t.enqueued_ns = 1000 + id;
    t.body = make_frame(body);
    return t;
  }

  std::map<std::string, std::map<std::uint64_t, row>> tasks;
  std::map<std::uint64_t, std::vector<std::string>> handled;  // results the handler ran on
  std::map<std::uint64_t, std::string> dead;
  std::deque<commit_batch> in_flight;
  std::size_t reads = 0;
  std::size_t lookups = 0;
  bool failing_reads = false;
};

class FrqProducerTest : public ::testing::Test {
 protected:
  FrqProducerTest() {
    settings.incarnation = self_inc;
    settings.queues = {queue_settings{.name = "jobs", .deadline_ms = 10'000, .max_attempts = 3}};
    settings.heartbeat = 1000ms;
    settings.liveness = 3;
    settings.aging_interval = 1000ms;
    settings.retry_base = 1000ms;
    settings.retry_max = 4000ms;
    settings.max_attempt_time = 60s;
    settings.max_workers = 4;
  }

  producer_machine& machine() {
    if (!machine_) {
      machine_ = std::make_unique<producer_machine>(settings, sink, store);
      machine_->start(now);
    }
    return *machine_;
  }
  void in(std::string_view peer, message&& m) {
    m.push_front(peer);
    machine().on_message(std::move(m), now);
  }
  void hello(std::string_view peer, std::string_view name = "w1", std::uint64_t inc = inc_a,
             std::uint32_t capacity = 1, std::string_view queue = "jobs", std::uint32_t heartbeat_ms = 1000) {
    message m;
    write_hello(m, hello_fields{.worker_name = name, .worker_inc = inc, .queue = queue, .capacity = capacity,
                                .heartbeat_ms = heartbeat_ms});
    in(peer, std::move(m));
  }
  void result(std::string_view peer, attempt_key key, status s = status::done, std::string_view body = "ok",
              std::uint64_t inc = self_inc) {
    message m;
    write_result(m, inc, key, s, body);
    in(peer, std::move(m));
  }
  void capacity(std::string_view peer, std::uint32_t window) {
    message m;
    write_capacity(m, window);
    in(peer, std::move(m));
  }
  void extend(std::string_view peer, attempt_key key, std::uint32_t ms, std::uint64_t inc = self_inc) {
    message m;
    write_extend(m, inc, key, ms);
    in(peer, std::move(m));
  }
  void heartbeat(std::string_view peer) {
    message m;
    write_worker_heartbeat(m);
    in(peer, std::move(m));
  }
  void bye(std::string_view peer) {
    message m;
    write_bye(m);
    in(peer, std::move(m));
  }
  void enqueue(std::uint64_t id, std::uint8_t priority = 0, std::string body = "",
               time_point deliver_at = time_point::min(), time_point expires_at = time_point::max()) {
    if (body.empty()) body = "t" + std::to_string(id);
    machine().on_enqueued("jobs", store.append("jobs", id, priority, body, deliver_at, expires_at), now);
  }
  // Completes the oldest commit in flight (durable), or fails it.
  void commit(bool ok = true) {
    ASSERT_FALSE(store.in_flight.empty()) << "no commit in flight";
    commit_batch b = std::move(store.in_flight.front());
    store.in_flight.pop_front();
    if (ok) store.apply(b);
    machine().on_committed(b.id, ok ? fabric::result<void>{} : fabric::result<void>{errc::io_error}, now);
  }
  void commit_all() {
    for (int i = 0; i < 100 && !store.in_flight.empty(); ++i) commit();
  }
  void advance(std::chrono::milliseconds d) {
    now += d;
    machine().on_tick(now);
  }
  // A worker "w1" on peer "p1", welcomed, with `capacity`.
  void join(std::string_view peer = "p1", std::string_view name = "w1", std::uint64_t inc = inc_a,
            std::uint32_t capacity = 1) {
    hello(peer, name, inc, capacity);
    const auto w = sink.take(command::welcome);
    ASSERT_EQ(w.size(), 1u);
    EXPECT_EQ(w[0].producer_inc, self_inc);
  }
  // Commits what is pending and returns the TASKs that went out.
  std::vector<sent> handed() {
    commit_all();
    return sink.take(command::task);
  }
  producer_queue_stats qstats() { return machine().queue_stats("jobs", now); }

  producer_settings settings;
  fake_sink sink;
  fake_store store;
  time_point now = time_point{} + std::chrono::hours(1);
  std::unique_ptr<producer_machine> machine_;
};

TEST_F(FrqProducerTest, WelcomesAHelloWithItsIncarnationAndHeartbeat) {
  hello("p1");
  const auto out = sink.take();
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].what, command::welcome);
  EXPECT_EQ(out[0].peer, "p1");
  EXPECT_EQ(out[0].producer_inc, self_inc);
  EXPECT_EQ(machine().stats().workers, 1u);
}

TEST_F(FrqProducerTest, HandsOutOnlyAfterTheHandOutIsDurable) {
  join();
  enqueue(1);
  EXPECT_TRUE(sink.take(command::task).empty()) << "TASK before its hand-out is durable";
  ASSERT_EQ(store.in_flight.size(), 1u);
  ASSERT_EQ(store.in_flight[0].changes.size(), 1u);
  EXPECT_EQ(store.in_flight[0].changes[0].kind, change_kind::handed_out);
  EXPECT_EQ(store.in_flight[0].changes[0].attempt, 1u);
  EXPECT_EQ(store.in_flight[0].changes[0].worker, "w1");
  commit();
  const auto tasks = sink.take(command::task);
  ASSERT_EQ(tasks.size(), 1u);
  EXPECT_EQ(tasks[0].key, (attempt_key{1, 1}));
  EXPECT_EQ(tasks[0].body, "t1");
  EXPECT_EQ(tasks[0].task.deadline_ms, 10'000u);
  EXPECT_EQ(tasks[0].task.enqueued_ns, 1001u);
  EXPECT_EQ(store.tasks["jobs"][1].state, 1);
}

TEST_F(FrqProducerTest, HandOutsWaitingForACommitShareTheNextOne) {
  join("p1", "w1", inc_a, 8);
  enqueue(1);
  enqueue(2);
  enqueue(3);
  ASSERT_EQ(store.in_flight.size(), 1u) << "one commit in flight at a time";
  commit();
  ASSERT_EQ(store.in_flight.size(), 1u);
  EXPECT_EQ(store.in_flight[0].changes.size(), 2u) << "what came meanwhile shares one commit";
  commit();
  EXPECT_EQ(sink.take(command::task).size(), 3u);
}

TEST_F(FrqProducerTest, CreditBoundsWhatAWorkerHoldsAndCapacityChangesIt) {
  join("p1", "w1", inc_a, 2);
  for (std::uint64_t id = 1; id <= 5; ++id) enqueue(id);
  EXPECT_EQ(handed().size(), 2u);
  capacity("p1", 0);
  result("p1", {1, 1});
  EXPECT_TRUE(handed().empty()) << "window 0 pauses the worker";
  capacity("p1", 1);
  EXPECT_TRUE(handed().empty()) << "a lower window takes nothing back: one still held";
  result("p1", {2, 1});
  EXPECT_EQ(handed().size(), 1u) << "a RESULT frees its slot when it arrives";
  capacity("p1", 3);
  EXPECT_EQ(handed().size(), 2u);
  EXPECT_EQ(qstats().in_progress, 3u);
}

TEST_F(FrqProducerTest, ChoosesTheWorkerWithTheMostFreeSlotsThenTheLongestIdle) {
  join("p1", "w1", inc_a, 1);
  now += 1ms;
  join("p2", "w2", inc_a, 3);
  now += 1ms;
  join("p3", "w3", inc_a, 1);
  now += 1ms;
  for (std::uint64_t id = 1; id <= 4; ++id) enqueue(id);
  commit_all();
  std::map<std::string, int> per_peer;
  for (const auto& t : sink.take(command::task)) ++per_peer[t.peer];
  EXPECT_EQ(per_peer["p2"], 2);
  EXPECT_EQ(per_peer["p1"], 1) << "ties go to the worker that waited longest";
  EXPECT_EQ(per_peer["p3"], 1);
}

TEST_F(FrqProducerTest, ADoneResultIsRecordedOnceAndAnsweredOnlyWhenDurable) {
  join();
  enqueue(1);
  ASSERT_EQ(handed().size(), 1u);
  result("p1", {1, 1}, status::done, "forty-two");
  EXPECT_TRUE(sink.take(command::recorded).empty()) << "RECORDED before durability";
  ASSERT_EQ(store.in_flight.size(), 1u);
  EXPECT_EQ(store.in_flight[0].changes[0].kind, change_kind::done);
  result("p1", {1, 1}, status::done, "forty-two");  // repeated while the commit is in flight
  EXPECT_TRUE(sink.take(command::recorded).empty());
  commit();
  auto rec = sink.take(command::recorded);
  ASSERT_EQ(rec.size(), 2u) << "both copies answered once it is durable";
  EXPECT_EQ(rec[0].v, verdict::recorded);
  EXPECT_EQ(rec[0].key, (attempt_key{1, 1}));
  EXPECT_EQ(store.handled[1], (std::vector<std::string>{"forty-two"}));
  EXPECT_EQ(store.tasks["jobs"][1].state, 3);
  // A RECORDED lost: the repeat is answered at once and writes nothing.
  result("p1", {1, 1});
  rec = sink.take(command::recorded);
  ASSERT_EQ(rec.size(), 1u);
  EXPECT_EQ(rec[0].v, verdict::recorded);
  EXPECT_TRUE(store.in_flight.empty());
  EXPECT_EQ(store.handled[1].size(), 1u);
  EXPECT_EQ(qstats().completed, 1u);
  EXPECT_EQ(machine().stats().recorded_again, 1u);
}

TEST_F(FrqProducerTest, AnswersUnknownForAnotherIncarnationOrATaskNeverHeld) {
  join();
  result("p1", {1, 1}, status::done, "x", inc_b);
  result("p1", {99, 1});
  const auto rec = sink.take(command::recorded);
  ASSERT_EQ(rec.size(), 2u);
  EXPECT_EQ(rec[0].v, verdict::unknown);
  EXPECT_EQ(rec[0].producer_inc, self_inc) << "answered with its own incarnation";
  EXPECT_EQ(rec[1].v, verdict::unknown);
  EXPECT_TRUE(store.in_flight.empty());
}

TEST_F(FrqProducerTest, AFailedResultBacksOffThenRunsAgainAndDeadLettersAtMaxAttempts) {
  join();
  enqueue(1);
  ASSERT_EQ(handed().size(), 1u);
  result("p1", {1, 1}, status::failed, "disk full");
  ASSERT_EQ(store.in_flight.size(), 1u);
  EXPECT_EQ(store.in_flight[0].changes[0].kind, change_kind::failed);
  EXPECT_EQ(store.in_flight[0].changes[0].counted, 1u);
  commit();
  EXPECT_EQ(sink.take(command::recorded).size(), 1u);
  EXPECT_TRUE(handed().empty()) << "not before the back-off of 1 s";
  EXPECT_EQ(machine().next_tick(), now + 1000ms);
  advance(999ms);
  EXPECT_TRUE(handed().empty());
  advance(1ms);
  auto t = handed();
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].key, (attempt_key{1, 2}));
  // A repeat of the failed attempt is recorded, and writes nothing.
  result("p1", {1, 1}, status::failed, "disk full");
  auto rec = sink.take(command::recorded);
  ASSERT_EQ(rec.size(), 1u);
  EXPECT_EQ(rec[0].v, verdict::recorded);
  EXPECT_TRUE(store.in_flight.empty());
  result("p1", {1, 2}, status::failed, "disk full");
  commit();
  advance(2000ms);  // back-off doubles
  t = handed();
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].key, (attempt_key{1, 3}));
  result("p1", {1, 3}, status::failed, "disk full");
  ASSERT_EQ(store.in_flight.size(), 1u);
  EXPECT_EQ(store.in_flight[0].changes[0].kind, change_kind::dead);
  commit();
  EXPECT_EQ(store.dead[1], "failed: disk full x3");
  rec = sink.take(command::recorded);
  ASSERT_EQ(rec.size(), 1u);
  EXPECT_EQ(rec[0].v, verdict::recorded);
  result("p1", {1, 3}, status::failed, "disk full");
  rec = sink.take(command::recorded);
  ASSERT_EQ(rec.size(), 1u);
  EXPECT_EQ(rec[0].v, verdict::recorded) << "a dead task's last answered attempt is still recorded";
  EXPECT_EQ(qstats().dead_lettered, 1u);
}

TEST_F(FrqProducerTest, ARejectedResultDeadLettersTheTaskAtOnceWithTheWorkersReason) {
  join();
  enqueue(1);
  ASSERT_EQ(handed().size(), 1u);
  result("p1", {1, 1}, status::rejected, "bad input");
  commit();
  EXPECT_EQ(store.dead[1], "bad input");
  EXPECT_EQ(sink.take(command::recorded).size(), 1u);
  EXPECT_EQ(qstats().in_progress, 0u);
}

TEST_F(FrqProducerTest, ADeadlinePassedTakesTheAttemptBackWithCancelAndALateResultIsStale) {
  join();
  enqueue(1);
  ASSERT_EQ(handed().size(), 1u);
  EXPECT_EQ(machine().next_tick(), now + 1000ms) << "a heartbeat is due first";
  // Keep the worker alive, and let the deadline plus one heartbeat of grace pass.
  for (int i = 0; i < 10; ++i) {
    advance(1000ms);
    heartbeat("p1");
  }
  EXPECT_TRUE(sink.take(command::cancel).empty()) << "the grace is one producer heartbeat";
  advance(1000ms);
  const auto cancel = sink.take(command::cancel);
  ASSERT_EQ(cancel.size(), 1u);
  EXPECT_EQ(cancel[0].key, (attempt_key{1, 1}));
  const auto t = handed();
  ASSERT_EQ(t.size(), 1u) << "handed out again at once, to the same worker (its slot is free)";
  EXPECT_EQ(t[0].key, (attempt_key{1, 2}));
  EXPECT_EQ(store.tasks["jobs"][1].counted, 1u);
  result("p1", {1, 1});
  const auto rec = sink.take(command::recorded);
  ASSERT_EQ(rec.size(), 1u);
  EXPECT_EQ(rec[0].v, verdict::stale);
}

TEST_F(FrqProducerTest, ExtendMovesTheDeadlineUpToTheLongestAttemptTime) {
  join();
  enqueue(1);
  ASSERT_EQ(handed().size(), 1u);
  const time_point sent_at = now;
  extend("p1", {1, 1}, 30'000);
  EXPECT_EQ(machine().stats().extends, 1u);
  extend("p1", {1, 1}, 5'000);
  EXPECT_EQ(machine().stats().extends_dropped, 1u) << "an earlier deadline is not granted";
  extend("p1", {1, 2}, 30'000);
  extend("p1", {1, 1}, 30'000, inc_b);
  EXPECT_EQ(machine().stats().extends_dropped, 3u) << "another attempt, another incarnation: dropped";
  // Heartbeats keep the worker; the deadline is now 30 s, plus grace.
  while (now < sent_at + 30'000ms) {
    advance(1000ms);
    heartbeat("p1");
  }
  EXPECT_TRUE(sink.take(command::cancel).empty());
  extend("p1", {1, 1}, 3'600'000);  // capped at 60 s from the hand-out
  while (now < sent_at + 60'000ms) {
    advance(1000ms);
    heartbeat("p1");
  }
  EXPECT_TRUE(sink.take(command::cancel).empty());
  advance(1000ms);
  EXPECT_EQ(sink.take(command::cancel).size(), 1u);
}

TEST_F(FrqProducerTest, AWorkerJudgedDeadLosesItsTasksCountedAndIsNotWelcomeAfter) {
  join("p1", "w1", inc_a, 2);
  enqueue(1);
  enqueue(2);
  ASSERT_EQ(handed().size(), 2u);
  advance(2999ms);
  EXPECT_EQ(machine().stats().workers, 1u);
  advance(1ms);
  EXPECT_EQ(machine().stats().workers, 0u) << "silent for three of its intervals";
  EXPECT_EQ(machine().stats().workers_lost, 1u);
  commit_all();
  EXPECT_EQ(store.tasks["jobs"][1].counted, 1u);
  EXPECT_EQ(store.tasks["jobs"][1].state, 0);
  EXPECT_EQ(qstats().ready, 2u);
  heartbeat("p1");
  const auto r = sink.take(command::refuse);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].code, "not-welcome");
  join("p9", "w2", inc_b, 2);
  const auto t = handed();
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0].key.attempt, 2u);
}

TEST_F(FrqProducerTest, ATaskLostMaxAttemptsTimesIsDeadLetteredWithTheCauseAndCount) {
  enqueue(1);
  for (std::uint64_t i = 0; i < 3; ++i) {
    join("p" + std::to_string(i), "w" + std::to_string(i), inc_a + i, 1);
    ASSERT_EQ(handed().size(), 1u);
    advance(3000ms);
    commit_all();
  }
  EXPECT_EQ(store.dead[1], "worker lost x3");
  EXPECT_EQ(store.tasks["jobs"][1].state, 2);
  EXPECT_EQ(qstats().dead_lettered, 1u);
}

TEST_F(FrqProducerTest, ByeHandsTasksBackUncountedWithANewAttemptNumberNext) {
  join("p1", "w1", inc_a, 2);
  enqueue(1);
  enqueue(2);
  ASSERT_EQ(handed().size(), 2u);
  bye("p1");
  EXPECT_EQ(machine().stats().workers, 0u);
  commit_all();
  EXPECT_EQ(store.tasks["jobs"][1].counted, 0u);
  EXPECT_EQ(store.tasks["jobs"][1].state, 0);
  join("p2", "w2", inc_b, 2);
  const auto t = handed();
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0].key.attempt, 2u);
}

TEST_F(FrqProducerTest, AHelloWithANewIncarnationTakesBackAtOnceAndTheSameOneKeepsItsTasks) {
  join("p1", "w1", inc_a, 1);
  enqueue(1);
  ASSERT_EQ(handed().size(), 1u);
  // The same process on a new connection: keeps its task, which is sent again.
  hello("p2", "w1", inc_a, 1);
  auto out = sink.take();
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].what, command::welcome);
  EXPECT_EQ(out[1].what, command::task);
  EXPECT_EQ(out[1].peer, "p2");
  EXPECT_EQ(out[1].key, (attempt_key{1, 1}));
  result("p2", {1, 1});
  commit_all();
  EXPECT_EQ(store.handled[1].size(), 1u);
  // A restart: what the old process held is taken back, counted.
  enqueue(2);
  ASSERT_EQ(handed().size(), 1u);
  hello("p3", "w1", inc_b, 1);
  EXPECT_EQ(machine().stats().workers_restarted, 1u);
  const auto t = handed();
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].key, (attempt_key{2, 2}));
  EXPECT_EQ(store.tasks["jobs"][2].counted, 1u);
  result("p1", {2, 1});  // the old connection is not welcome any more
  EXPECT_EQ(sink.take(command::refuse).size(), 1u);
}

TEST_F(FrqProducerTest, RefusesUnknownQueuesTooManyWorkersAndMalformedHellos) {
  hello("p0", "w0", inc_a, 1, "nope");
  auto r = sink.take(command::refuse);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].code, "unknown-queue");
  for (int i = 1; i <= 4; ++i) join("p" + std::to_string(i), "w" + std::to_string(i));
  hello("p5", "w5");
  r = sink.take(command::refuse);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].code, "too-many-workers");
  // A welcomed connection naming another worker: malformed, and it is lost.
  enqueue(1);
  const auto t = handed();
  ASSERT_EQ(t.size(), 1u);
  hello(t[0].peer, "someone-else");
  r = sink.take(command::refuse);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].code, "malformed");
  EXPECT_EQ(machine().stats().workers, 3u);
  commit_all();
  EXPECT_EQ(store.tasks["jobs"][1].counted, 1u) << "counted, worker lost";
}

TEST_F(FrqProducerTest, SendsAtMostOneRefusePerConnectionPerInterval) {
  heartbeat("px");
  heartbeat("px");
  heartbeat("py");
  EXPECT_EQ(sink.take(command::refuse).size(), 2u);
  EXPECT_EQ(machine().stats().refusals_held, 1u);
  now += 1000ms;
  heartbeat("px");
  EXPECT_EQ(sink.take(command::refuse).size(), 1u);
}

TEST_F(FrqProducerTest, AnswersAnotherVersionAndDropsGarbageSilently) {
  machine().on_message(testing::message_of({"p1", "FRQ02", "\x01"}), now);
  auto r = sink.take(command::refuse);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].code, "version");
  EXPECT_EQ(r[0].reason, "FRQ01");
  machine().on_message(testing::message_of({"p2", "HTTP/1.1"}), now);
  machine().on_message(testing::message_of({"p2", "FRQ01", "\x03"}), now);
  EXPECT_TRUE(sink.take().empty());
  EXPECT_EQ(machine().stats().malformed, 3u);
}

TEST_F(FrqProducerTest, AnUnreachableWorkerIsLostAndAFullOneGetsNothingCounted) {
  join("p1", "w1", inc_a, 1);
  join("p2", "w2", inc_b, 1);
  sink.unreachable.insert("p1");
  sink.full.insert("p2");
  enqueue(1);
  enqueue(2);
  commit_all();
  EXPECT_EQ(machine().stats().workers, 1u) << "p1 is gone; p2 stays";
  EXPECT_EQ(store.tasks["jobs"][1].counted + store.tasks["jobs"][2].counted, 0u)
      << "a TASK that never left costs nothing";
  sink.full.clear();
  now += 1ms;
  heartbeat("p2");
  commit_all();
  EXPECT_EQ(sink.take(command::task).size(), 1u);
}

TEST_F(FrqProducerTest, AHeartbeatThatFindsTheWorkerUnreachableLosesItCounted) {
  join();
  enqueue(1);
  ASSERT_EQ(handed().size(), 1u);
  sink.unreachable.insert("p1");
  advance(1000ms);
  EXPECT_EQ(machine().stats().workers, 0u);
  EXPECT_EQ(machine().stats().workers_lost, 1u);
  commit_all();
  EXPECT_EQ(store.tasks["jobs"][1].counted, 1u) << "its TASK had gone out: counted, worker lost";
}

TEST_F(FrqProducerTest, HigherPrioritiesGoFirstAndTiesGoToTheLowerTaskId) {
  enqueue(1, 5);
  enqueue(2, 0);
  enqueue(3, 5);
  enqueue(4, 2);
  enqueue(5, 0);
  join("p1", "w1", inc_a, 1);
  std::vector<std::uint64_t> order;
  for (int i = 0; i < 5; ++i) {
    const auto t = handed();
    ASSERT_EQ(t.size(), 1u);
    order.push_back(t[0].key.task_id);
    result("p1", t[0].key);
  }
  EXPECT_EQ(order, (std::vector<std::uint64_t>{2, 5, 4, 1, 3}));
}

TEST_F(FrqProducerTest, AgingLetsALowPriorityTaskCompeteAsZeroAfterItsIntervals) {
  enqueue(1, 3);
  now += 1500ms;  // task 1 is at effective 2
  enqueue(2, 1);  // effective 1: goes first
  enqueue(3, 2);  // effective 2, but a higher id than task 1
  join("p1", "w1", inc_a, 1);
  std::vector<std::uint64_t> order;
  auto t = handed();
  ASSERT_EQ(t.size(), 1u);
  order.push_back(t[0].key.task_id);
  now += 1600ms;  // task 1 has waited 3.1 s: effective 0; task 3 has waited 1.6 s: effective 1
  result("p1", t[0].key);
  t = handed();
  ASSERT_EQ(t.size(), 1u);
  order.push_back(t[0].key.task_id);
  result("p1", t[0].key);
  t = handed();
  ASSERT_EQ(t.size(), 1u);
  order.push_back(t[0].key.task_id);
  EXPECT_EQ(order, (std::vector<std::uint64_t>{2, 1, 3}));
}

// Section 7's bound: a task of priority p waits at most p aging intervals plus the tasks enqueued
// before it, however many higher-priority tasks arrive after it.
TEST_F(FrqProducerTest, ALowPriorityTaskIsNotStarvedByAStreamOfUrgentOnes) {
  join("p1", "w1", inc_a, 1);
  enqueue(1, 0);
  enqueue(2, 7);  // the victim
  std::uint64_t next = 3;
  std::optional<time_point> victim_at;
  const time_point start = now;
  for (int i = 0; i < 200 && !victim_at; ++i) {
    enqueue(next++, 0);  // one urgent task arrives every 100 ms, faster than it is served
    enqueue(next++, 0);
    commit_all();
    for (const auto& t : sink.take(command::task)) {
      if (t.key.task_id == 2) victim_at = now;
      result("p1", t.key);
      commit_all();
    }
    now += 100ms;
  }
  ASSERT_TRUE(victim_at.has_value()) << "starved";
  EXPECT_LE(*victim_at - start, 7 * settings.aging_interval + 200ms);
  EXPECT_GE(*victim_at - start, 7 * settings.aging_interval - 200ms) << "but not before it has aged";
}

TEST_F(FrqProducerTest, ADelayedTaskIsHeldUntilItsTime) {
  join();
  enqueue(1, 0, "", now + 5s);
  EXPECT_TRUE(handed().empty());
  EXPECT_EQ(qstats().waiting[0], 1u);
  EXPECT_EQ(qstats().ready, 0u);
  EXPECT_EQ(machine().next_tick(), now + 1000ms);  // the heartbeat comes before it
  for (int i = 0; i < 4; ++i) {
    advance(1000ms);
    heartbeat("p1");
    EXPECT_TRUE(handed().empty());
  }
  advance(1000ms);
  EXPECT_EQ(handed().size(), 1u);
}

TEST_F(FrqProducerTest, AWaitingTaskPastItsTtlIsDeadLetteredExpired) {
  enqueue(1, 0, "", time_point::min(), now + 2s);
  enqueue(2, 0, "", now + 5s, now + 3s);  // delayed past its own TTL
  EXPECT_EQ(machine().next_tick(), now + 2s);
  advance(2s);
  commit_all();
  EXPECT_EQ(store.dead[1], "expired");
  advance(1s);
  commit_all();
  EXPECT_EQ(store.dead[2], "expired");
  EXPECT_EQ(qstats().expired, 2u);
  EXPECT_EQ(qstats().waiting[0], 0u);
}

TEST_F(FrqProducerTest, ARunningAttemptOutlivesItsTtlButIsNotHandedOutAgainAfter) {
  join();
  enqueue(1, 0, "", time_point::min(), now + 2s);
  ASSERT_EQ(handed().size(), 1u);
  advance(1000ms);
  heartbeat("p1");
  advance(1000ms);
  heartbeat("p1");
  EXPECT_TRUE(store.dead.empty()) << "a running attempt is not cut short";
  result("p1", {1, 1}, status::failed, "again");
  commit_all();
  EXPECT_EQ(store.dead[1], "expired");
}

TEST_F(FrqProducerTest, ARestartTakesBackWhatWasRunningCountedProducerRestarted) {
  store.append("jobs", 1, 0, "a");
  store.append("jobs", 2, 0, "b");
  store.append("jobs", 3, 0, "c");
  store.tasks["jobs"][1].state = 1;  // running at the crash
  store.tasks["jobs"][1].attempt = 2;
  store.tasks["jobs"][1].counted = 1;
  store.tasks["jobs"][2].state = 1;
  store.tasks["jobs"][2].attempt = 3;
  store.tasks["jobs"][2].counted = 2;  // its third counted attempt: dead
  machine();
  commit_all();
  EXPECT_EQ(store.tasks["jobs"][1].counted, 2u);
  EXPECT_EQ(store.tasks["jobs"][1].state, 0);
  EXPECT_EQ(store.dead[2], "producer restarted x3");
  join();
  const auto t = handed();
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].key, (attempt_key{1, 3})) << "attempt numbers are never used twice";
  // A RESULT from before the crash is stale.
  result("p1", {1, 2});
  const auto rec = sink.take(command::recorded);
  ASSERT_EQ(rec.size(), 1u);
  EXPECT_EQ(rec[0].v, verdict::stale);
}

TEST_F(FrqProducerTest, TasksBeyondTheMemoryBoundWaitInTheJournalAndAreReadInOrder) {
  settings.max_tasks = 3;
  settings.page = 2;
  for (std::uint64_t id = 1; id <= 4; ++id) store.append("jobs", id, 0, "x");
  machine();
  EXPECT_EQ(machine().stats().tasks_in_memory, 3u);
  EXPECT_EQ(qstats().in_journal_only, 1u);
  enqueue(5);  // left in the journal
  EXPECT_EQ(machine().stats().tasks_in_memory, 3u);
  join("p1", "w1", inc_a, 1);
  std::vector<std::uint64_t> order;
  for (int i = 0; i < 5; ++i) {
    const auto t = handed();
    ASSERT_EQ(t.size(), 1u);
    order.push_back(t[0].key.task_id);
    result("p1", t[0].key);
    commit_all();
    EXPECT_LE(machine().stats().tasks_in_memory, 3u);
  }
  EXPECT_EQ(order, (std::vector<std::uint64_t>{1, 2, 3, 4, 5}));
  EXPECT_EQ(qstats().in_journal_only, 0u);
  sink.take();
  // A result for a task no longer in memory is decided by the journal.
  result("p1", {1, 1});
  const auto rec = sink.take(command::recorded);
  ASSERT_EQ(rec.size(), 1u);
  EXPECT_EQ(rec[0].v, verdict::recorded);
}

TEST_F(FrqProducerTest, AFailedReadIsTriedAgainLater) {
  store.append("jobs", 1, 0, "x");
  store.failing_reads = true;
  machine();
  EXPECT_EQ(machine().stats().store_errors, 1u);
  EXPECT_EQ(machine().next_tick(), now + 1000ms);
  store.failing_reads = false;
  advance(1000ms);
  EXPECT_EQ(machine().stats().tasks_in_memory, 1u);
}

TEST_F(FrqProducerTest, AFailedCommitUndoesHandOutsAndResultsAndWritesTheRestAgain) {
  join("p1", "w1", inc_a, 2);
  enqueue(1);
  commit(false);  // the hand-out was not durable: no TASK, waiting again
  EXPECT_TRUE(sink.take(command::task).empty());
  EXPECT_EQ(machine().stats().commit_failures, 1u);
  auto t = handed();
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].key, (attempt_key{1, 2}));
  result("p1", {1, 2});
  commit(false);  // the result was not recorded: the task goes back, uncounted
  EXPECT_TRUE(sink.take(command::recorded).empty());
  EXPECT_TRUE(store.handled.empty());
  t = handed();
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].key, (attempt_key{1, 3}));
  result("p1", {1, 2});
  EXPECT_EQ(sink.take(command::recorded)[0].v, verdict::stale);
  result("p1", {1, 3});
  commit();
  EXPECT_EQ(store.handled[1].size(), 1u);
  EXPECT_EQ(store.tasks["jobs"][1].counted, 0u);
  // A take-back whose commit fails is written again.
  enqueue(2);
  ASSERT_EQ(handed().size(), 1u);
  bye("p1");
  commit(false);
  commit();
  EXPECT_EQ(store.tasks["jobs"][2].state, 0);
}

TEST_F(FrqProducerTest, HeartbeatsEachWorkerWhenNothingElseWentToIt) {
  join();
  advance(999ms);
  EXPECT_TRUE(sink.take(command::producer_heartbeat).empty());
  advance(1ms);
  const auto hb = sink.take(command::producer_heartbeat);
  ASSERT_EQ(hb.size(), 1u);
  EXPECT_EQ(hb[0].producer_inc, self_inc);
  heartbeat("p1");
  advance(1000ms);
  EXPECT_EQ(sink.take(command::producer_heartbeat).size(), 1u);
}

TEST_F(FrqProducerTest, StatsReportQueueAndWorkers) {
  join("p1", "w1", inc_a, 2);
  enqueue(1, 2);
  enqueue(2, 2);
  enqueue(3, 6);
  commit_all();
  now += 2s;
  const auto q = qstats();
  EXPECT_EQ(q.in_progress, 2u);
  EXPECT_EQ(q.waiting[6], 1u);
  EXPECT_EQ(q.ready, 1u);
  EXPECT_EQ(q.oldest_ready, 2s);
  EXPECT_EQ(q.handed_out, 2u);
  const auto w = machine().worker_stats();
  ASSERT_EQ(w.size(), 1u);
  EXPECT_EQ(w[0].name, "w1");
  EXPECT_EQ(w[0].assigned, 2u);
  EXPECT_EQ(w[0].capacity, 2u);
  EXPECT_EQ(w[0].queue, "jobs");
}

TEST_F(FrqProducerTest, RejectsBadSettings) {
  settings.incarnation = 0;
  EXPECT_THROW(machine(), error);
  settings.incarnation = self_inc;
  settings.queues.push_back(settings.queues[0]);
  EXPECT_THROW(machine(), error);
  settings.queues.pop_back();
  settings.queues[0].name = std::string(1, '\0');
  EXPECT_THROW(machine(), error);
}

}  // namespace
}  // namespace fabric::frq
