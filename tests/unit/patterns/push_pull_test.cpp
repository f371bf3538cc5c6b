// Tests the pipeline pattern (pusher, puller): ordering, round-robin, fair-queueing and back-pressure.
#include "support/support.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using fabric::errc;
using fabric::make_message;
using fabric::message;
using fabric::puller;
using fabric::pusher;
using fabric::testing::to_strings;
using fabric::testing::transport;
using fabric::testing::wait_bound;
using strings = std::vector<std::string>;
using clock_type = std::chrono::steady_clock;

// Pipes in these tests may hold unread messages at the end; do not make close wait for them.
const fabric::socket_options quick{.linger = 0ms};

class PushPullTest : public ::testing::TestWithParam<transport> {
 protected:
  fabric::context ctx;
};

TEST_P(PushPullTest, DeliversInOrder) {
  constexpr int count = 1000;
  puller pull(ctx, quick);
  pusher push(ctx, quick);
  fabric::testing::marry(pull, push, GetParam());

  // The pusher is handed to this thread and used by it alone until the join.
  std::thread producer([&push] {
    for (int i = 0; i < count; ++i) {
      if (auto sent = push.send(make_message("task", std::to_string(i)), wait_bound); !sent) {
        ADD_FAILURE() << "send " << i << ": " << sent.error().message();
        return;
      }
    }
  });
  message m;
  for (int i = 0; i < count; ++i) {
    auto got = pull.recv(m, wait_bound);
    if (!got) {
      ADD_FAILURE() << "recv " << i << ": " << got.error().message();
      break;
    }
    if (to_strings(m) != strings{"task", std::to_string(i)}) {
      ADD_FAILURE() << "message " << i << " out of order: " << m.view(m.size() - 1);
      break;
    }
  }
  producer.join();
  EXPECT_TRUE(pull.try_recv(m).is(errc::would_block));
}

TEST_P(PushPullTest, RoundRobinsOverTwoPullers) {
  constexpr int count = 100;
  puller first(ctx, quick);
  puller second(ctx, quick);
  pusher push(ctx, quick);
  // The pusher connects, so both of its pipes exist before the first send.
  fabric::testing::marry(first, push, GetParam());
  fabric::testing::connect_and_wait(push, second.bind(fabric::testing::loopback_endpoint(GetParam())));

  for (int i = 0; i < count; ++i) ASSERT_TRUE(push.send(make_message(std::to_string(i)), wait_bound));

  std::vector<int> got_first;
  std::vector<int> got_second;
  message m;
  const auto deadline = clock_type::now() + wait_bound;
  while (got_first.size() + got_second.size() < count && clock_type::now() < deadline) {
    if (first.recv(m, 2ms)) got_first.push_back(std::stoi(std::string(m.view(0))));
    if (second.recv(m, 2ms)) got_second.push_back(std::stoi(std::string(m.view(0))));
  }
  ASSERT_EQ(got_first.size() + got_second.size(), count);
  EXPECT_TRUE(first.try_recv(m).is(errc::would_block));
  EXPECT_TRUE(second.try_recv(m).is(errc::would_block));
  // Each puller got every other message, in order.
  EXPECT_EQ(got_first.size(), count / 2);
  EXPECT_EQ(got_second.size(), count / 2);
  const int first_start = got_first.empty() ? 0 : got_first.front();
  for (std::size_t i = 0; i < got_first.size(); ++i)
    EXPECT_EQ(got_first[i], first_start + 2 * static_cast<int>(i));
  for (std::size_t i = 0; i < got_second.size(); ++i)
    EXPECT_EQ(got_second[i], (1 - first_start) + 2 * static_cast<int>(i));
}

TEST_P(PushPullTest, FairQueuesFromTwoPushers) {
  constexpr int per_pusher = 100;
  puller pull(ctx, quick);
  pusher a(ctx, quick);
  pusher b(ctx, quick);
  const std::string endpoint = fabric::testing::marry(pull, a, GetParam());
  fabric::testing::connect_and_wait(b, endpoint);

  for (int i = 0; i < per_pusher; ++i) {
    ASSERT_TRUE(a.send(make_message("a", std::to_string(i)), wait_bound));
    ASSERT_TRUE(b.send(make_message("b", std::to_string(i)), wait_bound));
  }
  int next_a = 0;
  int next_b = 0;
  message m;
  for (int i = 0; i < 2 * per_pusher; ++i) {
    ASSERT_TRUE(pull.recv(m, wait_bound)) << "after " << i << " messages";
    ASSERT_EQ(m.size(), 2u);
    int& expected = m.view(0) == "a" ? next_a : next_b;
    EXPECT_EQ(m.view(1), std::to_string(expected)) << "from " << m.view(0);
    ++expected;
  }
  EXPECT_EQ(next_a, per_pusher);
  EXPECT_EQ(next_b, per_pusher);
  EXPECT_TRUE(pull.try_recv(m).is(errc::would_block));
}

TEST_P(PushPullTest, NeverStarvesAQuietPusherBehindABusyOne) {
  puller pull(ctx, quick);
  pusher busy(ctx, quick);
  pusher quiet(ctx, quick);
  const std::string endpoint = fabric::testing::marry(pull, busy, GetParam());
  fabric::testing::connect_and_wait(quiet, endpoint);

  // The busy pusher sends as fast as the puller lets it until told to stop, then an end marker.
  std::atomic<bool> stop{false};
  long busy_sent = 0;
  std::thread flooder([&] {
    const std::string padding(1024, '.');
    const auto deadline = clock_type::now() + wait_bound;
    while (!stop && clock_type::now() < deadline) {
      auto sent = busy.send(make_message("busy", std::to_string(busy_sent), padding), 20ms);
      if (sent) {
        ++busy_sent;
      } else if (!sent.is(errc::back_pressure)) {
        ADD_FAILURE() << "busy send: " << sent.error().message();
        return;
      }
    }
    if (auto sent = busy.send(make_message("busy-end"), wait_bound); !sent)
      ADD_FAILURE() << "busy end marker: " << sent.error().message();
  });

  long busy_received = 0;
  message m;
  auto take_busy = [&] {
    EXPECT_EQ(m.view(1), std::to_string(busy_received)) << "busy messages out of order";
    ++busy_received;
  };
  // Once the flood is flowing, the quiet pusher sends one message; it must come through.
  ASSERT_TRUE(pull.recv(m, wait_bound));
  take_busy();
  ASSERT_TRUE(quiet.send(make_message("quiet"), wait_bound));
  bool quiet_seen = false;
  while (!quiet_seen) {
    auto got = pull.recv(m, wait_bound);
    if (!got) break;
    if (m.view(0) == "quiet") quiet_seen = true;
    else take_busy();
  }
  stop = true;
  bool end_seen = false;
  while (!end_seen) {
    auto got = pull.recv(m, wait_bound);
    if (!got) break;
    if (m.view(0) == "busy-end") end_seen = true;
    else if (m.view(0) == "busy") take_busy();
    else ADD_FAILURE() << "unexpected " << m.view(0);
  }
  flooder.join();
  EXPECT_TRUE(quiet_seen) << "the quiet pusher was starved by " << busy_received << " busy messages";
  EXPECT_TRUE(end_seen);
  EXPECT_EQ(busy_received, busy_sent);
}

TEST_P(PushPullTest, ReportsBackPressureAtHighWaterMarkAndRecovers) {
  puller pull(ctx, {.recv_hwm = 1, .linger = 0ms});
  pusher push(ctx, {.send_hwm = 1, .linger = 0ms});
  fabric::testing::marry(pull, push, GetParam());

  // Large messages, so the kernel's socket buffers (tcp, ipc) fill after a bounded number.
  auto numbered = [](int i) {
    std::string body = std::to_string(i);
    body.resize(64 * 1024, '.');
    return make_message(body);
  };
  auto number_of = [](const message& msg) { return std::stoi(std::string(msg.view(0).substr(0, 8))); };
  constexpr int max_sends = 4096;

  // try_send never blocks: it reports back-pressure as soon as the pusher's queue is full.
  int sent = 0;
  message m = numbered(sent);
  fabric::result<void> last;
  while (sent < max_sends && (last = push.try_send(std::move(m)))) m = numbered(++sent);
  ASSERT_TRUE(last.is(errc::back_pressure)) << last.error().message();
  // The refused message is left intact, to be sent again.
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(number_of(m), sent);

  // A waiting send also gives up once every queue between pusher and puller is full.
  while (sent < max_sends && (last = push.send(std::move(m), 50ms))) m = numbered(++sent);
  ASSERT_TRUE(last.is(errc::back_pressure)) << last.error().message();
  ASSERT_LT(sent, max_sends);
  EXPECT_GE(sent, 1);

  // Once the puller drains, the refused message goes through.
  for (int i = 0; i < sent; ++i) {
    auto got = pull.recv(wait_bound);
    ASSERT_TRUE(got) << "message " << i << ": " << got.error().message();
    ASSERT_EQ(number_of(*got), i);
  }
  ASSERT_TRUE(push.send(std::move(m), wait_bound));
  auto got = pull.recv(wait_bound);
  ASSERT_TRUE(got) << got.error().message();
  EXPECT_EQ(number_of(*got), sent);
  EXPECT_TRUE(pull.try_recv(m).is(errc::would_block));
}

INSTANTIATE_TEST_SUITE_P(AllTransports, PushPullTest, ::testing::ValuesIn(fabric::testing::all_transports),
                         fabric::testing::transport_name{});

}  // namespace
