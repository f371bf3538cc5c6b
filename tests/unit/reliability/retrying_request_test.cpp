// Tests the retrying request shared by the Lazy Pirate and Majordomo clients: the pure decisions
// on a fake clock, and the blocking loop with fake hooks, above all the rule for a wake-up before
// the deadline (keep waiting for the time left; neither restart the timeout nor end the attempt).
#include "reliability/retrying_request.hpp"

#include <fabric/error.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <deque>
#include <functional>
#include <string>
#include <vector>

namespace fabric::detail {
namespace {

using namespace std::chrono_literals;
using verdict = retry_machine::verdict;

const time_point t0 = time_point{} + 1h;

TEST(RetryMachineTest, WaitsUntilTheDeadlineOfTheAttempt) {
  retry_machine m({.timeout = 1000ms, .retries = 3});
  m.begin(t0);
  EXPECT_EQ(m.attempt(), 1u);
  EXPECT_EQ(m.on_wake(t0 + 999ms), verdict::wait);
  EXPECT_EQ(m.remaining(t0 + 999ms), 1ms);
  EXPECT_EQ(m.on_wake(t0 + 1000ms), verdict::resend);
  EXPECT_EQ(m.attempt(), 2u);
  EXPECT_EQ(m.deadline(), t0 + 2000ms);
}

TEST(RetryMachineTest, AnEarlyWakeUpKeepsTheSameDeadline) {
  retry_machine m({.timeout = 1000ms, .retries = 3});
  m.begin(t0);
  // A stale reply at 400 ms: 600 ms are left, not a fresh 1000 ms, and the attempt goes on.
  EXPECT_EQ(m.on_wake(t0 + 400ms), verdict::wait);
  EXPECT_EQ(m.remaining(t0 + 400ms), 600ms);
  EXPECT_EQ(m.deadline(), t0 + 1000ms);
  EXPECT_EQ(m.attempt(), 1u);
}

TEST(RetryMachineTest, GivesUpAfterTheLastRetry) {
  retry_machine m({.timeout = 100ms, .retries = 2});
  m.begin(t0);
  EXPECT_EQ(m.on_wake(t0 + 100ms), verdict::resend);
  EXPECT_EQ(m.on_wake(t0 + 200ms), verdict::resend);
  EXPECT_EQ(m.attempt(), 3u);
  EXPECT_EQ(m.on_wake(t0 + 300ms), verdict::give_up);
}

TEST(RetryMachineTest, ZeroRetriesMakeOneAttempt) {
  retry_machine m({.timeout = 100ms, .retries = 0});
  m.begin(t0);
  EXPECT_EQ(m.on_wake(t0 + 50ms), verdict::wait);
  EXPECT_EQ(m.on_wake(t0 + 100ms), verdict::give_up);
}

TEST(RetryMachineTest, ALostAttemptMovesOnWithoutWaiting) {
  retry_machine m({.timeout = 1000ms, .retries = 1});
  m.begin(t0);
  EXPECT_EQ(m.on_lost(t0 + 10ms), verdict::resend);
  EXPECT_EQ(m.deadline(), t0 + 1010ms);
  EXPECT_EQ(m.on_lost(t0 + 20ms), verdict::give_up);
}

// Fake hooks on a fake clock: each wait runs the next scripted step, which may move the clock.
class scripted : public retry_hooks {
 public:
  using step = std::function<result<std::optional<message>>(std::chrono::milliseconds)>;

  result<void> send(std::size_t attempt) override {
    sends.push_back(attempt);
    if (!send_results.empty()) {
      auto r = send_results.front();
      send_results.pop_front();
      return r;
    }
    return {};
  }
  result<std::optional<message>> wait(std::chrono::milliseconds at_most) override {
    waits.push_back(at_most);
    if (steps.empty()) {
      now += at_most;  // silence for the whole wait
      return std::optional<message>();
    }
    auto s = steps.front();
    steps.pop_front();
    return s(at_most);
  }

  // Nothing useful arrives after `after`.
  step nothing_after(std::chrono::milliseconds after) {
    return [this, after](std::chrono::milliseconds) {
      now += after;
      return result<std::optional<message>>(std::optional<message>());
    };
  }
  step answer_after(std::chrono::milliseconds after, std::string body) {
    return [this, after, body](std::chrono::milliseconds) {
      now += after;
      message m;
      m.push_back(std::string_view(body));
      return result<std::optional<message>>(std::optional<message>(std::move(m)));
    };
  }

  std::function<time_point()> clock() {
    return [this] { return now; };
  }

  time_point now = t0;
  std::vector<std::size_t> sends;
  std::vector<std::chrono::milliseconds> waits;
  std::deque<step> steps;
  std::deque<result<void>> send_results;
};

TEST(RetryBlockingTest, AStaleReplyBeforeTheDeadlineKeepsWaitingForTheTimeLeft) {
  scripted h;
  h.steps = {h.nothing_after(400ms), h.answer_after(300ms, "answer")};
  auto r = retry_blocking({.timeout = 1000ms, .retries = 3}, h, h.clock());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->view(0), "answer");
  EXPECT_EQ(h.sends, (std::vector<std::size_t>{1}));
  EXPECT_EQ(h.waits, (std::vector<std::chrono::milliseconds>{1000ms, 600ms}));
}

TEST(RetryBlockingTest, StaleRepliesCannotHoldAnAttemptOpenPastItsDeadline) {
  scripted h;
  for (int i = 0; i < 5; ++i) h.steps.push_back(h.nothing_after(250ms));  // a stale reply every 250 ms
  h.steps.push_back(h.answer_after(1ms, "fresh"));
  auto r = retry_blocking({.timeout = 1000ms, .retries = 3}, h, h.clock());
  ASSERT_TRUE(r);
  // The first attempt ended at its deadline (4 x 250 ms); the answer came to the second.
  EXPECT_EQ(h.sends, (std::vector<std::size_t>{1, 2}));
  EXPECT_EQ(h.waits, (std::vector<std::chrono::milliseconds>{1000ms, 750ms, 500ms, 250ms, 1000ms, 750ms}));
}

TEST(RetryBlockingTest, AWaitThatEndsEarlyDoesNotEndTheAttempt) {
  scripted h;
  // libzmq's clock ends the wait 1 ms short of ours: the attempt waits that millisecond too.
  h.steps = {h.nothing_after(999ms), h.answer_after(1ms, "just in time")};
  auto r = retry_blocking({.timeout = 1000ms, .retries = 3}, h, h.clock());
  ASSERT_TRUE(r);
  EXPECT_EQ(r->view(0), "just in time");
  EXPECT_EQ(h.sends, (std::vector<std::size_t>{1}));
  EXPECT_EQ(h.waits, (std::vector<std::chrono::milliseconds>{1000ms, 1ms}));
}

TEST(RetryBlockingTest, RoundsAPartialMillisecondUp) {
  scripted h;
  h.steps = {[&h](std::chrono::milliseconds) {
    h.now += 999ms + 500us;
    return result<std::optional<message>>(std::optional<message>());
  }};
  (void)retry_blocking({.timeout = 1000ms, .retries = 0}, h, h.clock());
  ASSERT_GE(h.waits.size(), 2u);
  EXPECT_EQ(h.waits[1], 1ms);  // not 0 ms, which would spin
}

TEST(RetryBlockingTest, TimesOutAfterEverySilentAttempt) {
  scripted h;
  auto r = retry_blocking({.timeout = 100ms, .retries = 2}, h, h.clock());
  EXPECT_TRUE(r.is(errc::timeout));
  EXPECT_EQ(h.sends, (std::vector<std::size_t>{1, 2, 3}));
  EXPECT_EQ(h.now, t0 + 300ms);
}

TEST(RetryBlockingTest, AnAttemptThatCannotBeSentIsLostLikeASilentOne) {
  scripted h;
  h.send_results = {errc::would_block};
  h.steps = {h.answer_after(5ms, "second")};
  auto r = retry_blocking({.timeout = 100ms, .retries = 1}, h, h.clock());
  ASSERT_TRUE(r);
  EXPECT_EQ(h.sends, (std::vector<std::size_t>{1, 2}));
  EXPECT_EQ(h.waits, (std::vector<std::chrono::milliseconds>{100ms}));
}

TEST(RetryBlockingTest, ClosedOrInterruptedSendEndsTheRequest) {
  for (errc e : {errc::closed, errc::interrupted}) {
    scripted h;
    h.send_results = {e};
    auto r = retry_blocking({.timeout = 100ms, .retries = 3}, h, h.clock());
    EXPECT_TRUE(r.is(e));
    EXPECT_EQ(h.sends.size(), 1u);
  }
}

TEST(RetryBlockingTest, AWaitErrorEndsTheRequest) {
  scripted h;
  h.steps = {[](std::chrono::milliseconds) { return result<std::optional<message>>(errc::closed); }};
  auto r = retry_blocking({.timeout = 100ms, .retries = 3}, h, h.clock());
  EXPECT_TRUE(r.is(errc::closed));
  EXPECT_EQ(h.sends.size(), 1u);
}

}  // namespace
}  // namespace fabric::detail
