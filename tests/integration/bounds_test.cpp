// Tests the receive bounds (max_frames, max_message_size) and that context shutdown unblocks waiting calls.
#include "support/support.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using fabric::errc;
using fabric::make_message;
using fabric::message;
using fabric::monitor;
using fabric::puller;
using fabric::pusher;
using fabric::socket_event;
using fabric::testing::to_strings;
using fabric::testing::transport;
using fabric::testing::wait_bound;
using strings = std::vector<std::string>;
using clock_type = std::chrono::steady_clock;

const fabric::socket_options sender_options{
    .linger = 0ms, .send_timeout = wait_bound, .reconnect_interval = 10ms};

class FrameLimitTest : public ::testing::TestWithParam<transport> {
 protected:
  fabric::context ctx;
};

TEST_P(FrameLimitTest, MessageOverMaxFramesIsDroppedAndCounted) {
  puller pull(ctx, {.linger = 0ms, .max_frames = 4});
  pusher push(ctx, sender_options);
  fabric::testing::marry(pull, push, GetParam());

  ASSERT_TRUE(push.send(make_message("1", "2", "3", "4", "5")));
  ASSERT_TRUE(push.send(make_message("a", "b", "c", "d")));
  ASSERT_TRUE(push.send(make_message("1", "2", "3", "4", "5", "6", "7", "8", "9")));
  ASSERT_TRUE(push.send(make_message("last")));

  message m;
  EXPECT_TRUE(pull.recv(m, wait_bound).is(errc::too_large));
  EXPECT_TRUE(m.empty());
  EXPECT_EQ(pull.dropped(), 1u);
  ASSERT_TRUE(pull.recv(m, wait_bound));
  EXPECT_EQ(to_strings(m), (strings{"a", "b", "c", "d"}));  // exactly at the bound is fine
  EXPECT_TRUE(pull.recv(m, wait_bound).is(errc::too_large));
  EXPECT_EQ(pull.dropped(), 2u);
  ASSERT_TRUE(pull.recv(m, wait_bound));
  EXPECT_EQ(to_strings(m), (strings{"last"}));
  EXPECT_TRUE(pull.try_recv(m).is(errc::would_block));
  EXPECT_EQ(pull.dropped(), 2u);
}

INSTANTIATE_TEST_SUITE_P(AllTransports, FrameLimitTest,
                         ::testing::ValuesIn(fabric::testing::all_transports),
                         fabric::testing::transport_name{});

// max_message_size is enforced by libzmq's wire decoder, so only on ipc and tcp.
class MessageSizeLimitTest : public ::testing::TestWithParam<transport> {
 protected:
  fabric::context ctx;
};

TEST_P(MessageSizeLimitTest, OversizedFrameNeverArrivesAndOthersStillDo) {
  constexpr std::int64_t limit = 1024;
  puller pull(ctx, {.linger = 0ms, .max_message_size = limit});
  monitor pull_events(pull);
  pusher good(ctx, sender_options);
  pusher bad(ctx, sender_options);
  monitor bad_events(bad);
  const std::string endpoint = fabric::testing::marry(pull, good, GetParam());
  bad.connect(endpoint);
  ASSERT_TRUE(bad_events.wait_for(socket_event::handshake_succeeded, wait_bound));

  // A frame of exactly the limit is fine; one byte more makes the puller drop the connection.
  ASSERT_TRUE(bad.send(make_message(std::string(limit, 'k'))));
  auto at_limit = pull.recv(wait_bound);
  ASSERT_TRUE(at_limit) << at_limit.error().message();
  EXPECT_EQ((*at_limit)[0].size(), static_cast<std::size_t>(limit));

  ASSERT_TRUE(bad.send(make_message(std::string(limit + 1, 'x'))));
  ASSERT_TRUE(pull_events.wait_for(socket_event::disconnected, wait_bound))
      << "the puller did not drop the connection that sent an oversized frame";

  // Other peers are unaffected.
  ASSERT_TRUE(good.send(make_message("good")));
  auto got = pull.recv(wait_bound);
  ASSERT_TRUE(got) << got.error().message();
  EXPECT_EQ(to_strings(*got), (strings{"good"}));

  // The offender reconnects, and its later messages arrive; the oversized one never does.
  ASSERT_TRUE(bad_events.wait_for(socket_event::disconnected, wait_bound));
  ASSERT_TRUE(bad_events.wait_for(socket_event::handshake_succeeded, wait_bound));
  ASSERT_TRUE(bad.send(make_message("small again")));
  got = pull.recv(wait_bound);
  ASSERT_TRUE(got) << got.error().message();
  EXPECT_EQ(to_strings(*got), (strings{"small again"}));
  message extra;
  EXPECT_TRUE(pull.try_recv(extra).is(errc::would_block));
  EXPECT_EQ(pull.dropped(), 0u);  // a dropped connection, not a dropped message
}

INSTANTIATE_TEST_SUITE_P(WireTransports, MessageSizeLimitTest,
                         ::testing::Values(transport::ipc, transport::tcp),
                         fabric::testing::transport_name{});

TEST(ShutdownTest, ContextShutdownUnblocksWaitingCallsInOtherThreads) {
  fabric::context ctx;
  puller idle_puller(ctx, {.linger = 0ms});
  idle_puller.bind(fabric::testing::loopback_endpoint(transport::tcp));
  pusher stuck_pusher(ctx, {.linger = 0ms});  // connected to nobody: a send has nowhere to go

  // Each socket is handed to one thread, which reports when it is about to wait.
  struct outcome {
    fabric::result<void> result;
    std::chrono::steady_clock::duration waited{};
  };
  std::promise<void> recv_started;
  std::promise<void> send_started;
  outcome recv_outcome;
  outcome send_outcome;
  std::thread receiver([&] {
    message m;
    recv_started.set_value();
    const auto start = clock_type::now();
    recv_outcome.result = idle_puller.recv(m, wait_bound);
    recv_outcome.waited = clock_type::now() - start;
  });
  std::thread sender([&] {
    send_started.set_value();
    const auto start = clock_type::now();
    send_outcome.result = stuck_pusher.send(make_message("nowhere"), wait_bound);
    send_outcome.waited = clock_type::now() - start;
  });
  // Whether a thread is already blocked or about to block, shutdown ends its wait.
  EXPECT_EQ(recv_started.get_future().wait_for(wait_bound), std::future_status::ready);
  EXPECT_EQ(send_started.get_future().wait_for(wait_bound), std::future_status::ready);
  ctx.shutdown();
  receiver.join();
  sender.join();

  EXPECT_TRUE(recv_outcome.result.is(errc::closed)) << recv_outcome.result.error().message();
  EXPECT_TRUE(send_outcome.result.is(errc::closed)) << send_outcome.result.error().message();
  EXPECT_LT(recv_outcome.waited, wait_bound);
  EXPECT_LT(send_outcome.waited, wait_bound);
  // Later calls fail at once, too.
  message m;
  EXPECT_TRUE(idle_puller.recv(m, wait_bound).is(errc::closed));
}

}  // namespace
