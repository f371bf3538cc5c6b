// Tests fabric::actor: the ready handshake, the pipe, stopping (clean, idempotent, timed out) and failures.
#include <fabric/actor.hpp>
#include <fabric/context.hpp>
#include <fabric/error.hpp>
#include <fabric/reactor.hpp>

#include "support/support.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <stdexcept>
#include <string>
#include <thread>

namespace fabric {
namespace {

using namespace std::chrono_literals;
using fabric::testing::expect_error;
using fabric::testing::wait_bound;

// The body of a well-behaved actor: echoes every message until the term command.
void echo_body(pair_socket& pipe) {
  actor::signal_ready(pipe);
  message m;
  for (;;) {
    auto r = pipe.recv(m, wait_bound);
    if (!r || actor::is_term(m)) return;
    if (!pipe.send(std::move(m))) return;
  }
}

struct setup_failed {
  int code;
};

TEST(ActorTest, StartsRunsAndStops) {
  context ctx;
  actor a(ctx, echo_body);
  EXPECT_TRUE(a.running());
  EXPECT_TRUE(a.pipe().valid());
  EXPECT_TRUE(a.stop());
  EXPECT_FALSE(a.running());
  EXPECT_FALSE(a.failure());
  EXPECT_FALSE(a.pipe().valid());  // the owner's end is closed by stop
}

TEST(ActorTest, StopIsIdempotent) {
  context ctx;
  actor a(ctx, echo_body);
  EXPECT_TRUE(a.stop());
  EXPECT_TRUE(a.stop());
  EXPECT_TRUE(a.stop(0ms));
  EXPECT_FALSE(a.running());
}

TEST(ActorTest, EchoesThroughThePipe) {
  context ctx;
  actor a(ctx, echo_body);
  ASSERT_TRUE(a.pipe().send(make_message("ping")));
  message reply;
  ASSERT_TRUE(a.pipe().recv(reply, wait_bound));
  ASSERT_EQ(reply.size(), 1U);
  EXPECT_EQ(reply.view(0), "ping");

  ASSERT_TRUE(a.pipe().send(make_message("multi", "", "part")));
  ASSERT_TRUE(a.pipe().recv(reply, wait_bound));
  ASSERT_EQ(reply.size(), 3U);
  EXPECT_EQ(reply.view(0), "multi");
  EXPECT_EQ(reply.view(2), "part");
  EXPECT_TRUE(a.stop());
}

TEST(ActorTest, ManyRoundTripsKeepTheirOrder) {
  context ctx;
  actor a(ctx, echo_body);
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(a.pipe().send(make_message(std::to_string(i))));
  message reply;
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(a.pipe().recv(reply, wait_bound));
    EXPECT_EQ(reply.view(0), std::to_string(i));
  }
}

TEST(ActorTest, ConstructorReturnsOnlyAfterSignalReady) {
  context ctx;
  std::atomic<bool> set_up{false};
  actor a(ctx, [&](pair_socket& pipe) {
    // Without the handshake the constructor would usually return before this thread even ran.
    set_up.store(true);
    actor::signal_ready(pipe);
    message m;
    while (pipe.recv(m, wait_bound) && !actor::is_term(m)) {
    }
  });
  EXPECT_TRUE(set_up.load());
  EXPECT_TRUE(a.stop());
}

TEST(ActorTest, ReactorBodyRunsUntilTerm) {
  context ctx;
  actor a(ctx, [](pair_socket& pipe) {
    reactor r;
    r.add(pipe, [&] {
      message m;
      if (!pipe.try_recv(m)) return;
      if (actor::is_term(m)) {
        r.stop();
        return;
      }
      message reply = make_message("echo");
      for (frame& f : m) reply.push_back(std::move(f));
      (void)pipe.send(std::move(reply));
    });
    actor::signal_ready(pipe);
    (void)r.run();
  });
  ASSERT_TRUE(a.pipe().send(make_message("x")));
  message reply;
  ASSERT_TRUE(a.pipe().recv(reply, wait_bound));
  ASSERT_EQ(reply.size(), 2U);
  EXPECT_EQ(reply.view(0), "echo");
  EXPECT_EQ(reply.view(1), "x");
  EXPECT_TRUE(a.stop());
}

TEST(ActorTest, BodyThrowingBeforeReadyIsRethrownByTheConstructor) {
  context ctx;
  try {
    actor a(ctx, [](pair_socket&) { throw setup_failed{42}; });
    ADD_FAILURE() << "the constructor returned";
  } catch (const setup_failed& e) {
    EXPECT_EQ(e.code, 42);
  }
}

TEST(ActorTest, BodyThrowingAStdExceptionBeforeReadyKeepsItsTypeAndMessage) {
  context ctx;
  try {
    actor a(ctx, [](pair_socket&) { throw std::out_of_range("no port left"); });
    ADD_FAILURE() << "the constructor returned";
  } catch (const std::out_of_range& e) {
    EXPECT_STREQ(e.what(), "no port left");
  }
}

TEST(ActorTest, BodyReturningWithoutSignallingReadyIsInvalidState) {
  context ctx;
  expect_error(errc::invalid_state, [&] { actor a(ctx, [](pair_socket&) {}); });
}

TEST(ActorTest, BodyNeverSignallingReadyTimesOut) {
  context ctx;
  expect_error(errc::timeout, [&] {
    // The body waits on its pipe without signalling; the constructor gives up after 50 ms and
    // its term command lets the body return.
    actor a(
        ctx,
        [](pair_socket& pipe) {
          message m;
          (void)pipe.recv(m, wait_bound);
        },
        50ms);
  });
}

TEST(ActorTest, EmptyBodyIsRejected) {
  context ctx;
  expect_error(errc::invalid_argument, [&] { actor a(ctx, actor::body_fn()); });
}

TEST(ActorTest, FailureAfterReadyIsReportedAfterStop) {
  context ctx;
  actor a(ctx, [](pair_socket& pipe) {
    actor::signal_ready(pipe);
    message m;
    if (pipe.recv(m, wait_bound) && !actor::is_term(m)) throw std::runtime_error("late failure");
  });
  EXPECT_FALSE(a.failure());
  ASSERT_TRUE(a.pipe().send(make_message("fail now")));
  EXPECT_TRUE(a.stop());
  EXPECT_FALSE(a.running());
  const std::exception_ptr failure = a.failure();
  ASSERT_TRUE(failure);
  try {
    std::rethrow_exception(failure);
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "late failure");
  }
}

TEST(ActorTest, BodyIgnoringTermIsDetachedAndStopReturnsFalse) {
  context ctx;
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::promise<void> body_done;
  std::future<void> body_finished = body_done.get_future();
  {
    actor a(ctx, [released, &body_done](pair_socket& pipe) {
      actor::signal_ready(pipe);
      // Ignores the pipe (and so the term command) until the test releases it.
      (void)released.wait_for(std::chrono::seconds(30));
      body_done.set_value();
    });
    EXPECT_FALSE(a.stop(20ms));
    EXPECT_TRUE(a.running());
    EXPECT_TRUE(a.stop());  // idempotent: the thread is already detached
    release.set_value();
    ASSERT_EQ(body_finished.wait_for(wait_bound), std::future_status::ready);
    // The detached thread closes its end of the pipe and marks itself finished right after.
    const auto deadline = std::chrono::steady_clock::now() + wait_bound;
    while (a.running() && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
    EXPECT_FALSE(a.running());
  }
}

TEST(ActorTest, DestructorStopsTheBody) {
  context ctx;
  std::atomic<bool> returned{false};
  {
    actor a(ctx, [&](pair_socket& pipe) {
      actor::signal_ready(pipe);
      message m;
      while (pipe.recv(m, wait_bound) && !actor::is_term(m)) {
      }
      returned.store(true);
    });
  }
  EXPECT_TRUE(returned.load());
}

TEST(ActorTest, IsTermRecognisesOnlyTheTermCommand) {
  EXPECT_TRUE(actor::is_term(make_message(actor::term_command)));
  EXPECT_TRUE(actor::is_term(make_message("$TERM")));
  EXPECT_FALSE(actor::is_term(make_message("$TERM", "")));
  EXPECT_FALSE(actor::is_term(make_message("$TERMx")));
  EXPECT_FALSE(actor::is_term(message()));
}

TEST(ActorTest, ActorsRunConcurrently) {
  context ctx;
  actor a(ctx, echo_body);
  actor b(ctx, echo_body);
  ASSERT_TRUE(a.pipe().send(make_message("to a")));
  ASSERT_TRUE(b.pipe().send(make_message("to b")));
  message ra;
  message rb;
  ASSERT_TRUE(b.pipe().recv(rb, wait_bound));
  ASSERT_TRUE(a.pipe().recv(ra, wait_bound));
  EXPECT_EQ(ra.view(0), "to a");
  EXPECT_EQ(rb.view(0), "to b");
}

}  // namespace
}  // namespace fabric
