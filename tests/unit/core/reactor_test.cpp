// Tests fabric::reactor: timer order and cancellation, socket and fd handlers, stop, errors, shutdown.
#include <fabric/context.hpp>
#include <fabric/error.hpp>
#include <fabric/reactor.hpp>
#include <fabric/socket.hpp>

#include "support/support.hpp"

#include <gtest/gtest.h>
#include <zmq.h>

#include <unistd.h>

#include <array>
#include <chrono>
#include <functional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace fabric {
namespace {

using namespace std::chrono_literals;
using fabric::testing::expect_error;
using fabric::testing::wait_bound;

socket_options quiet() {
  socket_options o;
  o.linger = 0ms;
  return o;
}

// A PUSH/PULL pair over inproc, connected.
struct pipeline {
  explicit pipeline(context& ctx)
      : pull(ctx, zmq::socket_type::pull, quiet()), push(ctx, zmq::socket_type::push, quiet()) {
    const std::string endpoint = pull.bind(testing::loopback_endpoint(testing::transport::inproc, "reactor"));
    push.connect(endpoint);
  }
  any_socket pull;
  any_socket push;
};

// Waits (bounded) until every socket in `sockets` has a message waiting, without consuming it.
bool all_readable(std::vector<const socket*> sockets) {
  const auto deadline = std::chrono::steady_clock::now() + wait_bound;
  std::vector<zmq_pollitem_t> items;
  for (const socket* s : sockets) items.push_back({s->native(), 0, ZMQ_POLLIN, 0});
  while (std::chrono::steady_clock::now() < deadline) {
    if (zmq_poll(items.data(), static_cast<int>(items.size()), 10) < 0) return false;
    bool all = true;
    for (const auto& item : items) all = all && (item.revents & ZMQ_POLLIN) != 0;
    if (all) return true;
  }
  return false;
}

TEST(ReactorTest, RunReturnsAtOnceWhenNothingIsRegistered) {
  reactor r;
  EXPECT_TRUE(r.run());
  EXPECT_EQ(r.socket_count(), 0U);
  EXPECT_EQ(r.timer_count(), 0U);
}

TEST(ReactorTest, FiresTimersInDeadlineOrderNotSchedulingOrder) {
  reactor r;
  std::string order;
  r.after(30ms, [&] { order += 'c'; });
  r.after(10ms, [&] { order += 'a'; });
  r.after(20ms, [&] { order += 'b'; });
  EXPECT_EQ(r.timer_count(), 3U);
  ASSERT_TRUE(r.run());
  EXPECT_EQ(order, "abc");
  EXPECT_EQ(r.timer_count(), 0U);
}

TEST(ReactorTest, TimerIdsAreNeverReused) {
  reactor r;
  const timer_id a = r.after(0ms, [] {});
  const timer_id b = r.after(0ms, [] {});
  ASSERT_TRUE(r.run());
  const timer_id c = r.after(0ms, [] {});
  EXPECT_NE(a, b);
  EXPECT_NE(a, c);
  EXPECT_NE(b, c);
  EXPECT_TRUE(r.cancel(c));
}

TEST(ReactorTest, CancelledTimerNeverFires) {
  reactor r;
  std::string order;
  r.after(10ms, [&] { order += 'a'; });
  const timer_id b = r.after(20ms, [&] { order += 'b'; });
  r.after(30ms, [&] { order += 'c'; });
  EXPECT_TRUE(r.cancel(b));
  EXPECT_FALSE(r.cancel(b));  // already cancelled
  EXPECT_EQ(r.timer_count(), 2U);
  ASSERT_TRUE(r.run());
  EXPECT_EQ(order, "ac");
}

TEST(ReactorTest, CancelOfAFiredOneShotTimerReturnsFalse) {
  reactor r;
  int fired = 0;
  const timer_id t = r.after(0ms, [&] { ++fired; });
  ASSERT_TRUE(r.run());
  EXPECT_EQ(fired, 1);
  EXPECT_FALSE(r.cancel(t));
}

TEST(ReactorTest, HandlerCanCancelAnotherPendingTimer) {
  reactor r;
  std::string order;
  timer_id later{};
  r.after(10ms, [&] {
    order += 'a';
    EXPECT_TRUE(r.cancel(later));
  });
  later = r.after(20ms, [&] { order += 'b'; });
  ASSERT_TRUE(r.run());
  EXPECT_EQ(order, "a");
}

TEST(ReactorTest, OneShotTimerCancellingItselfInItsHandlerIsHarmless) {
  reactor r;
  int fired = 0;
  timer_id self{};
  bool cancelled = true;
  self = r.after(1ms, [&] {
    ++fired;
    cancelled = r.cancel(self);
  });
  ASSERT_TRUE(r.run());
  EXPECT_EQ(fired, 1);
  EXPECT_FALSE(cancelled);  // a one-shot timer has fired by the time its handler runs
  EXPECT_EQ(r.timer_count(), 0U);
}

TEST(ReactorTest, RepeatingTimerCancelsItselfAfterThreeFirings) {
  reactor r;
  int fired = 0;
  timer_id self{};
  self = r.every(1ms, [&] {
    if (++fired == 3) {
      EXPECT_TRUE(r.cancel(self));
    }
  });
  ASSERT_TRUE(r.run());  // returns once the only timer is gone
  EXPECT_EQ(fired, 3);
  EXPECT_EQ(r.timer_count(), 0U);
  EXPECT_FALSE(r.cancel(self));
}

TEST(ReactorTest, RepeatingTimerNeedsAPositiveInterval) {
  reactor r;
  expect_error(errc::invalid_argument, [&] { (void)r.every(0ms, [] {}); });
  expect_error(errc::invalid_argument, [&] { (void)r.every(-5ms, [] {}); });
  EXPECT_EQ(r.timer_count(), 0U);
}

TEST(ReactorTest, TimersNeedAHandler) {
  reactor r;
  expect_error(errc::invalid_argument, [&] { (void)r.after(1ms, reactor::handler()); });
  expect_error(errc::invalid_argument, [&] { (void)r.every(1ms, reactor::handler()); });
}

TEST(ReactorTest, NegativeDelayFiresLikeZero) {
  reactor r;
  int fired = 0;
  r.after(-10ms, [&] { ++fired; });
  ASSERT_TRUE(r.run());
  EXPECT_EQ(fired, 1);
}

TEST(ReactorTest, TimersScheduledFromHandlersFire) {
  reactor r;
  std::string order;
  r.after(5ms, [&] {
    order += '1';
    r.after(5ms, [&] {
      order += '3';
      r.after(0ms, [&] { order += '4'; });
    });
    r.after(0ms, [&] { order += '2'; });
  });
  ASSERT_TRUE(r.run());
  EXPECT_EQ(order, "1234");
}

TEST(ReactorTest, ZeroDelayTimerReArmingItselfDoesNotStarveSockets) {
  context ctx;
  pipeline p(ctx);
  ASSERT_TRUE(p.push.send(make_message("waiting")));
  ASSERT_TRUE(all_readable({&p.pull}));
  reactor r;
  int ticks = 0;
  std::function<void()> again = [&] {
    ++ticks;
    r.after(0ms, again);  // due at once, but made in a handler: it waits for the next round
  };
  r.after(0ms, again);
  std::string got;
  r.add(p.pull, [&] {
    message m;
    ASSERT_TRUE(p.pull.try_recv(m));
    got = m.view(0);
    r.stop();
  });
  ASSERT_TRUE(r.run());
  EXPECT_EQ(got, "waiting");
  EXPECT_GE(ticks, 1);
  EXPECT_LE(ticks, 3);  // a round or two of timers, then the socket's turn
}

TEST(ReactorTest, RunOnceReturnsZeroWhenIdle) {
  reactor r;
  auto ran = r.run_once(10ms);
  ASSERT_TRUE(ran);
  EXPECT_EQ(*ran, 0U);
}

TEST(ReactorTest, RunOnceReturnsZeroWhenARegisteredSocketIsQuiet) {
  context ctx;
  pipeline p(ctx);
  reactor r;
  int called = 0;
  r.add(p.pull, [&] { ++called; });
  auto ran = r.run_once(10ms);
  ASSERT_TRUE(ran);
  EXPECT_EQ(*ran, 0U);
  EXPECT_EQ(called, 0);
}

TEST(ReactorTest, RunOnceCountsTheHandlersItRan) {
  reactor r;
  int fired = 0;
  r.after(0ms, [&] { ++fired; });
  r.after(0ms, [&] { ++fired; });
  std::size_t total = 0;
  for (int i = 0; i < 10 && r.timer_count() > 0; ++i) {
    auto ran = r.run_once(wait_bound);
    ASSERT_TRUE(ran);
    total += *ran;
  }
  EXPECT_EQ(fired, 2);
  EXPECT_EQ(total, 2U);
}

TEST(ReactorTest, SocketHandlerFiresWhenAMessageArrives) {
  context ctx;
  pipeline p(ctx);
  reactor r;
  std::vector<std::string> got;
  r.add(p.pull, [&] {
    message m;
    ASSERT_TRUE(p.pull.try_recv(m));
    got.emplace_back(m.view(0));
    r.stop();
  });
  EXPECT_EQ(r.socket_count(), 1U);
  // Send from a timer so the reactor is already waiting when the message arrives.
  r.after(5ms, [&] { ASSERT_TRUE(p.push.send(make_message("hello"))); });
  ASSERT_TRUE(r.run());
  EXPECT_EQ(got, (std::vector<std::string>{"hello"}));
  EXPECT_TRUE(r.stopped());
}

TEST(ReactorTest, SocketHandlerIsLevelTriggered) {
  context ctx;
  pipeline p(ctx);
  for (const char* text : {"a", "b", "c"}) ASSERT_TRUE(p.push.send(make_message(text)));
  reactor r;
  std::string got;
  r.add(p.pull, [&] {
    message m;
    ASSERT_TRUE(p.pull.try_recv(m));  // one per call: the reactor must call again for the rest
    got += m.view(0);
    if (got.size() == 3) {
      EXPECT_TRUE(r.remove(p.pull));
    }
  });
  ASSERT_TRUE(r.run());  // returns once the socket is removed and nothing is left
  EXPECT_EQ(got, "abc");
  EXPECT_EQ(r.socket_count(), 0U);
}

TEST(ReactorTest, HandlerRemovingItselfIsNotCalledAgain) {
  context ctx;
  pipeline p(ctx);
  ASSERT_TRUE(p.push.send(make_message("one")));
  ASSERT_TRUE(p.push.send(make_message("two")));
  reactor r;
  int calls = 0;
  r.add(p.pull, [&] {
    ++calls;
    EXPECT_TRUE(r.remove(p.pull));  // without receiving: the socket stays readable
  });
  ASSERT_TRUE(r.run());
  EXPECT_EQ(calls, 1);
  EXPECT_FALSE(r.remove(p.pull));
}

TEST(ReactorTest, SocketRemovedByAnotherHandlerIsNotCalled) {
  context ctx;
  pipeline first(ctx);
  pipeline second(ctx);
  ASSERT_TRUE(first.push.send(make_message("1")));
  ASSERT_TRUE(second.push.send(make_message("2")));
  ASSERT_TRUE(all_readable({&first.pull, &second.pull}));  // both are ready in the same round

  reactor r;
  int first_calls = 0;
  int second_calls = 0;
  // Whichever runs first removes the other; the other must then not run, though it was ready.
  r.add(first.pull, [&] {
    ++first_calls;
    EXPECT_TRUE(r.remove(second.pull));
    EXPECT_TRUE(r.remove(first.pull));
  });
  r.add(second.pull, [&] {
    ++second_calls;
    EXPECT_TRUE(r.remove(first.pull));
    EXPECT_TRUE(r.remove(second.pull));
  });
  auto ran = r.run_once(wait_bound);
  ASSERT_TRUE(ran);
  EXPECT_EQ(*ran, 1U);
  EXPECT_EQ(first_calls + second_calls, 1);
  EXPECT_EQ(r.socket_count(), 0U);
}

TEST(ReactorTest, SocketReAddedDuringARoundIsNotCalledForTheOldEvent) {
  context ctx;
  pipeline first(ctx);
  pipeline second(ctx);
  ASSERT_TRUE(first.push.send(make_message("1")));
  ASSERT_TRUE(second.push.send(make_message("2")));
  ASSERT_TRUE(all_readable({&first.pull, &second.pull}));

  reactor r;
  int old_calls = 0;
  int new_calls = 0;
  int first_calls = 0;
  r.add(first.pull, [&] {
    ++first_calls;
    message m;
    ASSERT_TRUE(first.pull.try_recv(m));
    if (r.remove(second.pull)) r.add(second.pull, [&] { ++new_calls; r.stop(); });
  });
  r.add(second.pull, [&] { ++old_calls; r.stop(); });
  // The first handler runs before the second (registration order); either way the handler that
  // was replaced must not run.
  auto ran = r.run_once(wait_bound);
  ASSERT_TRUE(ran);
  EXPECT_EQ(first_calls, 1);
  EXPECT_EQ(old_calls, 0);
}

TEST(ReactorTest, AddingARegisteredSocketThrows) {
  context ctx;
  pipeline p(ctx);
  reactor r;
  r.add(p.pull, [] {});
  expect_error(errc::invalid_argument, [&] { r.add(p.pull, [] {}); });
  expect_error(errc::invalid_argument, [&] { r.add(p.pull.handle(), [] {}); });
  EXPECT_EQ(r.socket_count(), 1U);
}

TEST(ReactorTest, AddingAClosedSocketOrNoHandlerThrows) {
  context ctx;
  pipeline p(ctx);
  reactor r;
  expect_error(errc::invalid_argument, [&] { r.add(p.pull, reactor::handler()); });
  p.pull.close();
  expect_error(errc::invalid_argument, [&] { r.add(p.pull, [] {}); });
  EXPECT_EQ(r.socket_count(), 0U);
}

TEST(ReactorTest, RemoveOfAnUnregisteredSocketReturnsFalse) {
  context ctx;
  pipeline p(ctx);
  reactor r;
  EXPECT_FALSE(r.remove(p.pull));
  EXPECT_FALSE(r.remove_fd(0));
}

TEST(ReactorTest, FdHandlerFiresWhenTheFdIsReadable) {
  std::array<int, 2> fds{};
  ASSERT_EQ(::pipe(fds.data()), 0);
  reactor r;
  std::string got;
  r.add_fd(fds[0], [&] {
    char c = 0;
    ASSERT_EQ(::read(fds[0], &c, 1), 1);
    got += c;
    EXPECT_TRUE(r.remove_fd(fds[0]));
  });
  expect_error(errc::invalid_argument, [&] { r.add_fd(fds[0], [] {}); });
  expect_error(errc::invalid_argument, [&] { r.add_fd(-1, [] {}); });
  r.after(1ms, [&] { ASSERT_EQ(::write(fds[1], "x", 1), 1); });
  ASSERT_TRUE(r.run());
  EXPECT_EQ(got, "x");
  ::close(fds[0]);
  ::close(fds[1]);
}

TEST(ReactorTest, StopFromAHandlerEndsRunAndRunCanResume) {
  reactor r;
  int fired = 0;
  timer_id self{};
  self = r.every(1ms, [&] {
    ++fired;
    if (fired == 2) r.stop();
    if (fired == 5) {
      EXPECT_TRUE(r.cancel(self));
    }
  });
  ASSERT_TRUE(r.run());
  EXPECT_EQ(fired, 2);
  EXPECT_TRUE(r.stopped());
  EXPECT_EQ(r.timer_count(), 1U);  // stop leaves registrations in place
  ASSERT_TRUE(r.run());            // run clears the stop flag and carries on
  EXPECT_EQ(fired, 5);
  EXPECT_FALSE(r.stopped());
}

TEST(ReactorTest, StopSkipsTheRestOfTheRound) {
  reactor r;
  std::string order;
  r.after(0ms, [&] {
    order += 'a';
    r.stop();
  });
  r.after(0ms, [&] { order += 'b'; });
  ASSERT_TRUE(r.run());
  EXPECT_EQ(order, "a");
  ASSERT_TRUE(r.run());
  EXPECT_EQ(order, "ab");
}

TEST(ReactorTest, TimerExceptionPropagatesAndTheReactorStaysUsable) {
  reactor r;
  std::string order;
  r.after(1ms, [&] {
    order += 'a';
    throw std::runtime_error("boom");
  });
  r.after(2ms, [&] { order += 'b'; });
  try {
    (void)r.run();
    ADD_FAILURE() << "the handler's exception did not propagate";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "boom");
  }
  EXPECT_EQ(order, "a");
  EXPECT_EQ(r.timer_count(), 1U);
  r.after(3ms, [&] { order += 'c'; });
  ASSERT_TRUE(r.run());
  EXPECT_EQ(order, "abc");
}

TEST(ReactorTest, SocketHandlerExceptionPropagatesAndTheReactorStaysUsable) {
  context ctx;
  pipeline p(ctx);
  ASSERT_TRUE(p.push.send(make_message("payload")));
  reactor r;
  int calls = 0;
  std::string got;
  r.add(p.pull, [&] {
    if (++calls == 1) throw std::logic_error("first call fails");
    message m;
    ASSERT_TRUE(p.pull.try_recv(m));
    got = m.view(0);
    EXPECT_TRUE(r.remove(p.pull));
  });
  EXPECT_THROW((void)r.run(), std::logic_error);
  EXPECT_EQ(r.socket_count(), 1U);
  ASSERT_TRUE(r.run());  // the message is still there; the handler runs again
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(got, "payload");
}

TEST(ReactorTest, ContextShutdownFromAHandlerMakesRunReturnClosed) {
  context ctx;
  pipeline p(ctx);
  reactor r;
  r.add(p.pull, [] { ADD_FAILURE() << "nothing was sent"; });
  r.after(1ms, [&] { ctx.shutdown(); });
  auto result = r.run();
  EXPECT_TRUE(result.is(errc::closed)) << result.error().message();
}

TEST(ReactorTest, ContextShutdownFromAnotherThreadMakesRunReturnClosed) {
  context ctx;
  pipeline p(ctx);
  reactor r;
  r.add(p.pull, [] { ADD_FAILURE() << "nothing was sent"; });
  // Shutdown may land before or while run() waits; either way run() must come back closed.
  std::thread stopper([&] { ctx.shutdown(); });
  auto result = r.run();
  stopper.join();
  EXPECT_TRUE(result.is(errc::closed)) << result.error().message();
  auto once = r.run_once(10ms);
  EXPECT_TRUE(once.is(errc::closed));
}

}  // namespace
}  // namespace fabric
