// Tests the FRQ/1 worker machine on a fake clock: a sink that plays its DEALER (read back with the
// producer's parser) and its connection, and an application that records what it is told.
// Joining, refusals, tasks and their resends, results kept until RECORDED and sent again, CANCEL,
// the producer's incarnation, the unanswered bound, capacity, EXTEND, heartbeats and leaving.
#include "reliability/frq_worker.hpp"

#include "reliability/frq.hpp"

#include <fabric/error.hpp>

#include "support/support.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fabric::frq {
namespace {

using namespace std::chrono_literals;
using detail::time_point;

constexpr std::uint64_t self_inc = 0x3017;
constexpr std::uint64_t prod_a = 0xA1;
constexpr std::uint64_t prod_b = 0xB2;

struct sent {
  command what = command::worker_heartbeat;
  hello_fields hello;
  std::string name;
  std::string queue;
  std::uint32_t window = 0;
  std::uint64_t producer_inc = 0;
  attempt_key key;
  status s = status::done;
  std::string body;
  std::uint32_t extend_ms = 0;
};

class fake_sink final : public detail::machine_sink {
 public:
  using machine_sink::send;
  result<void> send(detail::port, message&& m) override {
    if (!open_now) ADD_FAILURE() << "sent on a closed connection";
    if (full) return errc::back_pressure;
    message mine = std::move(m);
    mine.push_front("peer");
    const parsed p = parse_at_producer(mine);
    EXPECT_TRUE(p) << "the worker sent what a producer cannot parse: " << describe(p.error);
    sent s;
    s.what = p.what;
    s.hello = p.hello;
    s.name = std::string(p.hello.worker_name);
    s.queue = std::string(p.hello.queue);
    s.window = p.capacity;
    s.producer_inc = p.producer_inc;
    s.key = p.key;
    s.s = p.status;
    s.body = std::string(p.body);
    s.extend_ms = p.extend_ms;
    out.push_back(std::move(s));
    return {};
  }
  void close(detail::port) noexcept override {
    ++closes;
    open_now = false;
  }
  result<void> open(detail::port) override {
    ++opens;
    open_now = true;
    return {};
  }
  std::vector<sent> take() { return std::exchange(out, {}); }
  std::vector<sent> take(command c) {
    std::vector<sent> of;
    for (auto& s : take()) {
      if (s.what == c) of.push_back(std::move(s));
    }
    return of;
  }

  std::vector<sent> out;
  bool open_now = false;
  bool full = false;
  int opens = 0;
  int closes = 0;
};

class fake_app final : public worker_app {
 public:
  void on_task(worker_task&& t) override {
    tasks.push_back(t.key);
    bodies.emplace_back(view(t.body));
    deadlines.push_back(t.deadline);
  }
  void on_abandoned(attempt_key key, abandon_reason why) override { abandoned.emplace_back(key, why); }
  void on_answered(attempt_key key, verdict v) override { answered.emplace_back(key, v); }
  void on_result_dropped(attempt_key key) override { dropped.push_back(key); }
  void on_refused(std::string_view code, std::string_view, bool final) override {
    refusals.emplace_back(std::string(code), final);
  }

  std::vector<attempt_key> tasks;
  std::vector<std::string> bodies;
  std::vector<time_point> deadlines;
  std::vector<std::pair<attempt_key, abandon_reason>> abandoned;
  std::vector<std::pair<attempt_key, verdict>> answered;
  std::vector<attempt_key> dropped;
  std::vector<std::pair<std::string, bool>> refusals;
};

class FrqWorkerTest : public ::testing::Test {
 protected:
  FrqWorkerTest() {
    settings.name = "w1";
    settings.incarnation = self_inc;
    settings.queue = "jobs";
    settings.capacity = 2;
    settings.heartbeat = 1000ms;
    settings.liveness = 3;
    settings.reconnect_initial = 1000ms;
    settings.reconnect_max = 32'000ms;
    settings.retransmit_interval = 5000ms;
    settings.max_unanswered = 4;
    settings.leave_wait = 2000ms;
  }

  worker_machine& machine() {
    if (!machine_) machine_ = std::make_unique<worker_machine>(settings, sink, app);
    return *machine_;
  }
  // A producer message, as the DEALER receives it.
  void in(message&& m) {
    (void)m.pop_front();
    machine().on_message(std::move(m), now);
  }
  void welcome(std::uint64_t inc = prod_a, std::uint32_t heartbeat_ms = 1000) {
    message m;
    write_welcome(m, "peer", inc, heartbeat_ms);
    in(std::move(m));
  }
  void task(attempt_key key, std::uint64_t inc = prod_a, std::string_view body = "work") {
    message m;
    write_task(m, "peer", inc, task_fields{.key = key, .priority = 3, .deadline_ms = 10'000, .enqueued_ns = 77},
               body);
    in(std::move(m));
  }
  void recorded(attempt_key key, verdict v = verdict::recorded, std::uint64_t inc = prod_a) {
    message m;
    write_recorded(m, "peer", inc, key, v);
    in(std::move(m));
  }
  void cancel(attempt_key key, std::uint64_t inc = prod_a) {
    message m;
    write_cancel(m, "peer", inc, key);
    in(std::move(m));
  }
  void heartbeat(std::uint64_t inc = prod_a) {
    message m;
    write_producer_heartbeat(m, "peer", inc);
    in(std::move(m));
  }
  void refuse(std::string_view code) {
    message m;
    write_refuse(m, "peer", refuse_fields{.code = code, .reason = "because"});
    in(std::move(m));
  }
  void advance(std::chrono::milliseconds d) {
    now += d;
    machine().on_tick(now);
  }
  // Opens the connection and completes the handshake.
  void join(std::uint64_t inc = prod_a) {
    machine().on_tick(now);
    const auto h = sink.take(command::hello);
    ASSERT_EQ(h.size(), 1u);
    welcome(inc);
    ASSERT_EQ(machine().state(), worker_state::working);
  }
  result<void> done(attempt_key key, std::string_view body = "ok") {
    return machine().complete(key.task_id, key.attempt, status::done, body, now);
  }

  worker_settings settings;
  fake_sink sink;
  fake_app app;
  time_point now = time_point{} + std::chrono::hours(1);
  std::unique_ptr<worker_machine> machine_;
};

TEST_F(FrqWorkerTest, OpensWithHelloAndWorksAfterWelcome) {
  EXPECT_EQ(machine().state(), worker_state::connecting);
  EXPECT_EQ(machine().next_tick(), time_point::min());
  machine().on_tick(now);
  EXPECT_EQ(sink.opens, 1);
  const auto h = sink.take();
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h[0].what, command::hello);
  EXPECT_EQ(h[0].name, "w1");
  EXPECT_EQ(h[0].queue, "jobs");
  EXPECT_EQ(h[0].hello.worker_inc, self_inc);
  EXPECT_EQ(h[0].hello.capacity, 2u);
  EXPECT_EQ(h[0].hello.heartbeat_ms, 1000u);
  EXPECT_EQ(machine().state(), worker_state::joining);
  welcome();
  EXPECT_EQ(machine().state(), worker_state::working);
  EXPECT_EQ(machine().stats().producer_incarnation, prod_a);
  EXPECT_TRUE(sink.take().empty());
}

TEST_F(FrqWorkerTest, NoWelcomeWithinLivenessIntervalsReconnectsAfterBackOff) {
  machine().on_tick(now);
  (void)sink.take();
  advance(3000ms);
  EXPECT_EQ(sink.closes, 1);
  EXPECT_EQ(machine().state(), worker_state::connecting);
  advance(999ms);
  EXPECT_EQ(sink.opens, 1);
  advance(1ms);
  EXPECT_EQ(sink.opens, 2);
  EXPECT_EQ(sink.take(command::hello).size(), 1u);
}

TEST_F(FrqWorkerTest, ALostWelcomeIsNotHiddenByTheTasksAndHeartbeatsThatFollowIt) {
  machine().on_tick(now);
  (void)sink.take();
  for (int i = 0; i < 6; ++i) {  // the WELCOME was lost; the producer thinks it welcomed us
    advance(500ms);
    task({1, 1});
    heartbeat();
  }
  EXPECT_TRUE(app.tasks.empty()) << "not welcome yet";
  EXPECT_EQ(sink.closes, 1) << "no WELCOME within three intervals: a fresh connection";
  advance(1000ms);
  EXPECT_EQ(sink.take(command::hello).size(), 1u);
  welcome();
  task({1, 1});
  EXPECT_EQ(app.tasks.size(), 1u);
}

TEST_F(FrqWorkerTest, TasksGoToTheApplicationAndResendsAreDropped) {
  join();
  task({7, 1});
  ASSERT_EQ(app.tasks.size(), 1u);
  EXPECT_EQ(app.tasks[0], (attempt_key{7, 1}));
  EXPECT_EQ(app.bodies[0], "work");
  EXPECT_EQ(app.deadlines[0], now + 10'000ms);
  task({7, 1});
  EXPECT_EQ(machine().stats().duplicates, 1u);
  ASSERT_TRUE(done({7, 1}));
  task({7, 1});  // a resend after a reconnection, answered already
  EXPECT_EQ(machine().stats().duplicates, 2u);
  task({8, 2});
  task({8, 1});  // an older attempt than the one held
  EXPECT_EQ(machine().stats().duplicates, 3u);
  task({8, 3});  // a later attempt: the one held was taken back
  ASSERT_EQ(app.abandoned.size(), 1u);
  EXPECT_EQ(app.abandoned[0].first, (attempt_key{8, 2}));
  EXPECT_EQ(app.abandoned[0].second, abandon_reason::superseded);
  EXPECT_TRUE(machine().holds({8, 3}));
  task({9, 1});
  task({10, 1});  // beyond its capacity of two
  EXPECT_EQ(machine().stats().overflows, 1u);
  EXPECT_EQ(app.tasks.size(), 4u);
}

TEST_F(FrqWorkerTest, AResultIsKeptUntilRecordedAndSentAgainEveryRetransmitInterval) {
  join();
  task({1, 1});
  ASSERT_TRUE(done({1, 1}, "answer"));
  auto r = sink.take(command::result);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].key, (attempt_key{1, 1}));
  EXPECT_EQ(r[0].producer_inc, prod_a);
  EXPECT_EQ(r[0].s, status::done);
  EXPECT_EQ(r[0].body, "answer");
  for (int i = 0; i < 4; ++i) {
    advance(1000ms);
    heartbeat();
  }
  EXPECT_TRUE(sink.take(command::result).empty());
  advance(1000ms);
  heartbeat();
  EXPECT_EQ(sink.take(command::result).size(), 1u) << "sent again after the retransmit interval";
  recorded({1, 1});
  ASSERT_EQ(app.answered.size(), 1u);
  EXPECT_EQ(app.answered[0].second, verdict::recorded);
  for (int i = 0; i < 6; ++i) {
    advance(1000ms);
    heartbeat();
  }
  EXPECT_TRUE(sink.take(command::result).empty());
  EXPECT_EQ(machine().stats().unanswered, 0u);
}

TEST_F(FrqWorkerTest, TheRetransmitIntervalIsNeverBelowTheProducersHeartbeat) {
  machine().on_tick(now);
  (void)sink.take();
  welcome(prod_a, 8000);
  task({1, 1});
  ASSERT_TRUE(done({1, 1}));
  (void)sink.take();
  advance(7999ms);
  EXPECT_TRUE(sink.take(command::result).empty());
  advance(1ms);
  EXPECT_EQ(sink.take(command::result).size(), 1u);
}

TEST_F(FrqWorkerTest, StaleAndUnknownVerdictsAreReportedAndEndTheResult) {
  join();
  task({1, 1});
  task({2, 1});
  ASSERT_TRUE(done({1, 1}));
  ASSERT_TRUE(machine().complete(2, 1, status::failed, "oops", now));
  recorded({1, 1}, verdict::stale);
  recorded({2, 1}, verdict::unknown);
  recorded({3, 1});
  EXPECT_EQ(machine().stats().stale, 1u);
  EXPECT_EQ(machine().stats().unknown, 1u);
  EXPECT_EQ(machine().stats().ignored, 1u);
  EXPECT_EQ(app.answered.size(), 2u);
  EXPECT_EQ(machine().stats().unanswered, 0u);
}

TEST_F(FrqWorkerTest, CompleteRefusesWhatItDoesNotHold) {
  join();
  EXPECT_TRUE(machine().complete(1, 1, status::done, "x", now).is(errc::invalid_state));
  task({1, 2});
  EXPECT_TRUE(machine().complete(1, 1, status::done, "x", now).is(errc::invalid_state));
  EXPECT_TRUE(machine().complete(1, 2, status::failed, std::string(256, 'r'), now).is(errc::invalid_argument));
  EXPECT_TRUE(machine().complete(1, 2, status::rejected, std::string(255, 'r'), now));
  EXPECT_TRUE(machine().complete(1, 2, status::done, "again", now).is(errc::invalid_state));
}

TEST_F(FrqWorkerTest, CancelAbandonsTheAttempt) {
  join();
  task({1, 1});
  cancel({1, 2});
  EXPECT_TRUE(app.abandoned.empty()) << "another attempt";
  cancel({1, 1});
  ASSERT_EQ(app.abandoned.size(), 1u);
  EXPECT_EQ(app.abandoned[0].second, abandon_reason::cancelled);
  EXPECT_FALSE(machine().holds({1, 1}));
  EXPECT_TRUE(done({1, 1}).is(errc::invalid_state));
}

TEST_F(FrqWorkerTest, TasksAndResultsSurviveALostConnectionAndResultsGoBackAfterWelcome) {
  join();
  task({1, 1});
  task({2, 1});
  ASSERT_TRUE(done({1, 1}));
  (void)sink.take();
  advance(3000ms);  // the producer silent for three of its intervals
  EXPECT_EQ(machine().state(), worker_state::connecting);
  EXPECT_EQ(sink.closes, 1);
  ASSERT_TRUE(done({2, 1}));  // finished while cut off: kept
  EXPECT_TRUE(sink.take(command::result).empty());
  advance(1000ms);
  const auto h = sink.take(command::hello);
  ASSERT_EQ(h.size(), 1u);
  welcome();
  const auto r = sink.take(command::result);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].key, (attempt_key{1, 1}));
  EXPECT_EQ(r[1].key, (attempt_key{2, 1}));
  task({1, 1});  // the producer sends again what it assigned: dropped
  EXPECT_EQ(machine().stats().duplicates, 1u);
}

TEST_F(FrqWorkerTest, AnotherProducerIncarnationVoidsWhatCameFromTheOldOne) {
  join();
  task({1, 1});
  task({2, 1});
  ASSERT_TRUE(done({1, 1}));
  advance(3000ms);
  advance(1000ms);
  (void)sink.take();
  welcome(prod_b);
  EXPECT_EQ(machine().stats().producer_changes, 1u);
  ASSERT_EQ(app.dropped.size(), 1u);
  EXPECT_EQ(app.dropped[0], (attempt_key{1, 1}));
  ASSERT_EQ(app.abandoned.size(), 1u);
  EXPECT_EQ(app.abandoned[0].second, abandon_reason::producer_replaced);
  EXPECT_TRUE(sink.take(command::result).empty());
  task({1, 1}, prod_b);
  EXPECT_TRUE(machine().holds({1, 1}));
}

TEST_F(FrqWorkerTest, CommandsOfAnotherIncarnationAreDropped) {
  join();
  task({1, 1}, prod_b);
  heartbeat(prod_b);
  cancel({1, 1}, prod_b);
  EXPECT_EQ(machine().stats().foreign, 3u);
  EXPECT_TRUE(app.tasks.empty());
}

TEST_F(FrqWorkerTest, PausesAtTheUnansweredBoundAndResumesAtHalf) {
  settings.capacity = 8;
  join();
  for (std::uint64_t id = 1; id <= 4; ++id) task({id, 1});
  for (std::uint64_t id = 1; id <= 3; ++id) ASSERT_TRUE(done({id, 1}));
  EXPECT_TRUE(sink.take(command::capacity).empty());
  ASSERT_TRUE(done({4, 1}));
  auto c = sink.take(command::capacity);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].window, 0u);
  EXPECT_TRUE(machine().stats().paused);
  recorded({1, 1});
  EXPECT_TRUE(sink.take(command::capacity).empty());
  recorded({2, 1});
  c = sink.take(command::capacity);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].window, 8u);
  EXPECT_FALSE(machine().stats().paused);
}

TEST_F(FrqWorkerTest, APausedWorkerRejoinsWithHelloThenCapacityZero) {
  settings.capacity = 8;
  join();
  for (std::uint64_t id = 1; id <= 4; ++id) task({id, 1});
  for (std::uint64_t id = 1; id <= 4; ++id) ASSERT_TRUE(done({id, 1}));
  advance(3000ms);
  advance(1000ms);
  const auto h = sink.take(command::hello);
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h[0].hello.capacity, 1u) << "HELLO cannot say 0";
  welcome();
  const auto out = sink.take();
  ASSERT_GE(out.size(), 1u);
  EXPECT_EQ(out[0].what, command::capacity);
  EXPECT_EQ(out[0].window, 0u);
}

TEST_F(FrqWorkerTest, CapacityAndExtendGoToTheProducer) {
  join();
  machine().set_capacity(1, now);
  auto c = sink.take(command::capacity);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].window, 1u);
  EXPECT_THROW(machine().set_capacity(3, now), error);
  task({5, 2});
  ASSERT_TRUE(machine().extend(5, 2, 60'000, now));
  const auto e = sink.take(command::extend);
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].key, (attempt_key{5, 2}));
  EXPECT_EQ(e[0].extend_ms, 60'000u);
  EXPECT_EQ(e[0].producer_inc, prod_a);
  EXPECT_TRUE(machine().extend(5, 1, 60'000, now).is(errc::invalid_state));
  EXPECT_TRUE(machine().extend(5, 2, 0, now).is(errc::invalid_argument));
}

TEST_F(FrqWorkerTest, RefusedNotWelcomeItSaysHelloAgainAtOnce) {
  join();
  (void)sink.take();
  refuse("not-welcome");
  EXPECT_EQ(sink.take(command::hello).size(), 1u);
  EXPECT_EQ(machine().state(), worker_state::joining);
  EXPECT_EQ(sink.closes, 0);
  welcome();
  EXPECT_EQ(machine().state(), worker_state::working);
}

TEST_F(FrqWorkerTest, RefusedTooManyWorkersItRetriesAfterBackOff) {
  machine().on_tick(now);
  (void)sink.take();
  refuse("too-many-workers");
  EXPECT_EQ(sink.closes, 1);
  EXPECT_EQ(machine().state(), worker_state::connecting);
  ASSERT_EQ(app.refusals.size(), 1u);
  EXPECT_FALSE(app.refusals[0].second);
  advance(999ms);
  EXPECT_EQ(sink.opens, 1);
  advance(1ms);
  EXPECT_EQ(sink.opens, 2);
  refuse("too-many-workers");
  advance(1999ms);
  EXPECT_EQ(sink.opens, 2) << "the back-off doubles";
  advance(1ms);
  EXPECT_EQ(sink.opens, 3);
}

TEST_F(FrqWorkerTest, RefusedVersionOrUnknownQueueItStops) {
  machine().on_tick(now);
  refuse("unknown-queue");
  EXPECT_EQ(machine().state(), worker_state::stopped);
  ASSERT_EQ(app.refusals.size(), 1u);
  EXPECT_TRUE(app.refusals[0].second);
  EXPECT_EQ(machine().next_tick(), time_point::max());
  advance(60'000ms);
  EXPECT_EQ(sink.opens, 1);
}

TEST_F(FrqWorkerTest, HeartbeatsWhenNothingElseWasSent) {
  join();
  (void)sink.take();
  advance(999ms);
  heartbeat();
  EXPECT_TRUE(sink.take().empty());
  advance(1ms);
  EXPECT_EQ(sink.take(command::worker_heartbeat).size(), 1u);
  task({1, 1});
  advance(500ms);
  heartbeat();
  ASSERT_TRUE(done({1, 1}));
  (void)sink.take();
  advance(999ms);
  EXPECT_TRUE(sink.take(command::worker_heartbeat).empty()) << "a RESULT counts as traffic";
}

TEST_F(FrqWorkerTest, LeaveWaitsForItsResultsThenSaysBye) {
  join();
  task({1, 1});
  task({2, 1});
  ASSERT_TRUE(done({1, 1}));
  (void)sink.take();
  machine().leave(now);
  EXPECT_EQ(machine().state(), worker_state::leaving);
  ASSERT_EQ(app.abandoned.size(), 1u);
  EXPECT_EQ(app.abandoned[0].second, abandon_reason::leaving);
  EXPECT_TRUE(sink.take(command::bye).empty());
  recorded({1, 1});
  EXPECT_EQ(sink.take(command::bye).size(), 1u);
  EXPECT_EQ(machine().state(), worker_state::gone);
  EXPECT_EQ(sink.closes, 1);
}

TEST_F(FrqWorkerTest, LeaveSaysByeAfterItsBoundedWait) {
  join();
  task({1, 1});
  ASSERT_TRUE(done({1, 1}));
  machine().leave(now);
  EXPECT_EQ(machine().next_tick(), now + 1000ms);
  advance(1000ms);
  heartbeat();
  advance(1000ms);
  EXPECT_EQ(sink.take(command::bye).size(), 1u);
  EXPECT_EQ(machine().state(), worker_state::gone);
}

TEST_F(FrqWorkerTest, RejectsBadSettings) {
  settings.incarnation = 0;
  EXPECT_THROW(machine(), error);
  settings.incarnation = self_inc;
  settings.capacity = 0;
  EXPECT_THROW(machine(), error);
  settings.capacity = 1;
  settings.queue = std::string(1, '\0');
  EXPECT_THROW(machine(), error);
}

TEST_F(FrqWorkerTest, MalformedInputIsCountedAndDropped) {
  join();
  machine().on_message(testing::message_of({"FRQ01", "\x12"}), now);
  machine().on_message(testing::message_of({"garbage"}), now);
  EXPECT_EQ(machine().stats().malformed, 2u);
  EXPECT_EQ(machine().state(), worker_state::working);
}

}  // namespace
}  // namespace fabric::frq
