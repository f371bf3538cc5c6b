// Tests the protocol driver: a machine run attached to the user's reactor, on the caller's thread
// and on its own thread; stopping (from another thread, before the run); commands through call()
// in each mode, a timed-out call's late answer; the timer following next_tick(); oversize counts.
#include "core/driver.hpp"

#include <fabric/context.hpp>
#include <fabric/error.hpp>
#include <fabric/push_pull.hpp>
#include <fabric/reactor.hpp>

#include "support/support.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <string>
#include <thread>
#include <vector>

namespace fabric::detail {
namespace {

using namespace std::chrono_literals;
using fabric::testing::wait_bound;

std::atomic<int> endpoint_counter{0};
std::string fresh_endpoint() { return "inproc://driver-test-" + std::to_string(endpoint_counter++); }

message text(std::string_view s) {
  message m;
  m.push_back(s);
  return m;
}

// A single-port machine that remembers what it got and when it was ticked. After a message it
// wants a tick `tick_after` later (never before the first message).
struct test_machine {
  void on_message(message&& m, time_point now) {
    received.emplace_back(view(m[0]));
    due = now + tick_after;
    if (received.size() == expected) all_received.set_value();
  }
  void on_tick(time_point now) {
    if (now < due) return;  // early: nothing to do
    due = time_point::max();
    ++ticks;
    if (ticks == 1) first_tick.set_value();
  }
  time_point next_tick() const { return due; }

  std::vector<std::string> received;
  std::size_t expected = 1;
  std::promise<void> all_received;
  std::promise<void> first_tick;
  int ticks = 0;
  time_point due = time_point::max();
  std::chrono::milliseconds tick_after{10};
};

static_assert(single_port_machine<test_machine>);

// A pusher and a puller connected over inproc, and a driver running a test_machine behind the
// puller.
class DriverTest : public ::testing::Test {
 protected:
  DriverTest() : in_(ctx_), out_(ctx_), driver_(ctx_, "test driver") {
    const auto e = fresh_endpoint();
    in_.bind(e);
    out_.connect(e);
    driver_.drive(in_, machine_);
  }

  // Runs `r` until `f` is ready, at most wait_bound.
  static bool run_until(reactor& r, std::future<void>& f) {
    const auto deadline = std::chrono::steady_clock::now() + wait_bound;
    while (f.wait_for(0ms) != std::future_status::ready) {
      if (std::chrono::steady_clock::now() >= deadline) return false;
      if (!r.run_once(10ms)) return false;
    }
    return true;
  }

  context ctx_;
  puller in_;
  pusher out_;
  test_machine machine_;
  driver driver_;
};

TEST_F(DriverTest, RunsAMachineOnTheUsersReactor) {
  machine_.expected = 2;
  auto got = machine_.all_received.get_future();
  reactor r;
  driver_.attach(r);
  ASSERT_TRUE(out_.send(text("one")));
  ASSERT_TRUE(out_.send(text("two")));
  ASSERT_TRUE(run_until(r, got));
  EXPECT_EQ(machine_.received, (std::vector<std::string>{"one", "two"}));
  EXPECT_TRUE(driver_.detach(r));
  EXPECT_EQ(r.socket_count(), 0u);
  EXPECT_EQ(r.timer_count(), 0u);
  EXPECT_FALSE(driver_.detach(r));
}

TEST_F(DriverTest, RearmsTheTimerWhenAMessageMovesTheNextTickEarlier) {
  // Before the message the machine wants no tick at all: the timer is far away. The message asks
  // for one 10 ms later, and only a re-armed timer delivers it.
  auto ticked = machine_.first_tick.get_future();
  reactor r;
  driver_.attach(r);
  ASSERT_TRUE(out_.send(text("wake")));
  ASSERT_TRUE(run_until(r, ticked));
  EXPECT_EQ(machine_.ticks, 1);
  driver_.detach(r);
}

TEST_F(DriverTest, RefusesToAttachTwiceOrToRunWhileAttached) {
  reactor r;
  reactor other;
  driver_.attach(r);
  EXPECT_THROW(driver_.attach(other), fabric::error);
  EXPECT_THROW((void)driver_.run(), fabric::error);
  EXPECT_THROW(driver_.start(), fabric::error);
  EXPECT_FALSE(driver_.detach(other));
  EXPECT_TRUE(driver_.detach(r));
}

TEST_F(DriverTest, RunsOnTheCallersThreadUntilStoppedFromAnotherThread) {
  auto got = machine_.all_received.get_future();
  std::thread stopper([&] {
    if (got.wait_for(wait_bound) != std::future_status::ready) ADD_FAILURE() << "no message";
    driver_.request_stop();
  });
  ASSERT_TRUE(out_.send(text("hello")));
  const auto done = driver_.run();
  stopper.join();
  EXPECT_TRUE(done);
  EXPECT_EQ(machine_.received, (std::vector<std::string>{"hello"}));
}

TEST_F(DriverTest, StopBeforeRunMakesRunReturnAtOnce) {
  EXPECT_TRUE(driver_.stop());
  EXPECT_TRUE(driver_.run());
  EXPECT_TRUE(machine_.received.empty());
}

TEST_F(DriverTest, RunReturnsClosedWhenTheContextShutsDown) {
  ctx_.shutdown();
  EXPECT_TRUE(driver_.run().is(errc::closed));
}

TEST_F(DriverTest, RunsOnItsOwnThreadUntilStopped) {
  auto got = machine_.all_received.get_future();
  auto ticked = machine_.first_tick.get_future();
  driver_.start();
  EXPECT_TRUE(driver_.running());
  EXPECT_THROW(driver_.start(), fabric::error);
  ASSERT_TRUE(out_.send(text("background")));
  ASSERT_EQ(got.wait_for(wait_bound), std::future_status::ready);
  ASSERT_EQ(ticked.wait_for(wait_bound), std::future_status::ready);
  EXPECT_TRUE(driver_.stop());
  EXPECT_FALSE(driver_.running());
  EXPECT_FALSE(driver_.failure());
  EXPECT_EQ(machine_.received, (std::vector<std::string>{"background"}));
}

TEST_F(DriverTest, RequestStopFromAnotherThreadEndsTheBackgroundThread) {
  driver_.start();
  std::thread([&] { driver_.request_stop(); }).join();
  EXPECT_TRUE(driver_.stop());
  EXPECT_FALSE(driver_.running());
  // Ended, it can run again.
  driver_.start();
  EXPECT_TRUE(driver_.running());
  EXPECT_TRUE(driver_.stop());
}

TEST_F(DriverTest, CallsCommandsDirectlyWhenNotRunningOrAttached) {
  std::thread::id ran_on;
  driver_.commands([&](message&& m) {
    ran_on = std::this_thread::get_id();
    return std::move(m);
  });
  auto direct = driver_.call(text("idle"), 100ms);
  ASSERT_TRUE(direct);
  EXPECT_EQ(direct->view(0), "idle");
  EXPECT_EQ(ran_on, std::this_thread::get_id());
  reactor r;
  driver_.attach(r);
  auto attached = driver_.call(text("attached"), 100ms);
  ASSERT_TRUE(attached);
  EXPECT_EQ(attached->view(0), "attached");
  EXPECT_EQ(ran_on, std::this_thread::get_id());
  driver_.detach(r);
}

TEST_F(DriverTest, CallsCommandsOnTheBackgroundThreadWhenStarted) {
  std::atomic<std::thread::id> ran_on;
  driver_.commands([&](message&& m) {
    ran_on = std::this_thread::get_id();
    m.push_back(std::string_view("answered"));
    return std::move(m);
  });
  driver_.start();
  auto answer = driver_.call(text("question"), wait_bound);
  ASSERT_TRUE(answer);
  ASSERT_EQ(answer->size(), 2u);
  EXPECT_EQ(answer->view(0), "question");
  EXPECT_EQ(answer->view(1), "answered");
  EXPECT_NE(ran_on.load(), std::this_thread::get_id());
  driver_.stop();
  EXPECT_TRUE(driver_.call(text("late"), 100ms).is(errc::invalid_state));  // its thread has ended
}

TEST_F(DriverTest, RefusesCallsWhileRunInProgressOnAnotherThread) {
  driver_.commands([](message&& m) { return std::move(m); });
  auto got = machine_.all_received.get_future();
  std::thread runner([&] { (void)driver_.run(); });
  ASSERT_TRUE(out_.send(text("running")));
  ASSERT_EQ(got.wait_for(wait_bound), std::future_status::ready);
  EXPECT_TRUE(driver_.call(text("q"), 100ms).is(errc::invalid_state));
  driver_.request_stop();
  runner.join();
}

TEST_F(DriverTest, CallWithoutCommandsIsNotSupported) {
  EXPECT_TRUE(driver_.call(text("q"), 100ms).is(errc::not_supported));
}

TEST_F(DriverTest, SkipsTheLateAnswerToACallThatTimedOut) {
  std::promise<void> release;
  auto released = release.get_future().share();
  driver_.commands([released](message&& m) {
    if (m.view(0) == "slow") (void)released.wait_for(wait_bound);
    return std::move(m);
  });
  driver_.start();
  EXPECT_TRUE(driver_.call(text("slow"), 50ms).is(errc::timeout));
  release.set_value();
  auto answer = driver_.call(text("fast"), wait_bound);
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->view(0), "fast");  // not "slow", which arrived first
  driver_.stop();
}

TEST(DriverOversizeTest, ReportsMessagesTheSocketRefusedAndGoesOn) {
  context ctx;
  const auto e = fresh_endpoint();
  puller in(ctx, socket_options{.max_frames = 2});
  pusher out(ctx);
  in.bind(e);
  out.connect(e);
  driver d(ctx, "oversize");
  int oversize = 0;
  std::vector<std::string> got;
  std::promise<void> done;
  auto finished = done.get_future();
  d.watch(
      in,
      [&](message&& m, time_point) {
        got.emplace_back(m.view(0));
        done.set_value();
      },
      64, [&] { ++oversize; });
  reactor r;
  d.attach(r);
  message big;
  for (const char* f : {"a", "b", "c"}) big.push_back(std::string_view(f));
  ASSERT_TRUE(out.send(std::move(big)));
  ASSERT_TRUE(out.send(text("fits")));
  const auto deadline = std::chrono::steady_clock::now() + wait_bound;
  while (finished.wait_for(0ms) != std::future_status::ready && std::chrono::steady_clock::now() < deadline)
    ASSERT_TRUE(r.run_once(10ms));
  EXPECT_EQ(oversize, 1);
  EXPECT_EQ(got, (std::vector<std::string>{"fits"}));
  d.detach(r);
}

}  // namespace
}  // namespace fabric::detail
