// The fault injector the protocol tests stand on (tests/support/fault_proxy.hpp): each fault does
// what it says to a ZeroMQ connection running through it, and nothing else.
#include <fabric/context.hpp>
#include <fabric/router_dealer.hpp>

#include "support/fault_proxy.hpp"
#include "support/support.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace fabric::testing {
namespace {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

std::uint16_t port_of(const std::string& endpoint) {
  return static_cast<std::uint16_t>(std::stoul(endpoint.substr(endpoint.rfind(':') + 1)));
}

class FaultProxyTest : public ::testing::Test {
 protected:
  FaultProxyTest()
      : server(ctx, socket_options{.linger = 0ms}),
        client(ctx, socket_options{.linger = 0ms, .reconnect_interval = 20ms, .reconnect_interval_max = 100ms}) {
    upstream = server.bind("tcp://127.0.0.1:*");
    proxy = std::make_unique<fault_proxy>("127.0.0.1", port_of(upstream));
  }

  // The next message the server receives within `within`, as its body frames (no routing id).
  std::optional<std::string> server_recv(std::chrono::milliseconds within = wait_bound) {
    message m;
    if (!server.recv(m, within)) return std::nullopt;
    peer = std::string(m.view(0));
    return std::string(m.view(1));
  }

  context ctx;
  router server;
  dealer client;
  std::string upstream;
  std::string peer;
  std::unique_ptr<fault_proxy> proxy;
};

TEST_F(FaultProxyTest, ForwardsBothWaysAndCountsTheBytes) {
  client.connect(proxy->endpoint());
  ASSERT_TRUE(client.send(message("ping")));
  EXPECT_EQ(server_recv(), "ping");
  ASSERT_TRUE(server.send_to(peer, message("pong")));
  message reply;
  ASSERT_TRUE(client.recv(reply, wait_bound));
  EXPECT_EQ(reply.view(0), "pong");
  const auto s = proxy->counters();
  EXPECT_EQ(s.accepted, 1U);
  EXPECT_GT(s.bytes_upstream, 4U);
  EXPECT_GT(s.bytes_downstream, 4U);
  EXPECT_EQ(proxy->connections(), 1U);
}

TEST_F(FaultProxyTest, CutResetsTheConnectionAndZeroMqReconnectsThroughIt) {
  client.connect(proxy->endpoint());
  ASSERT_TRUE(client.send(message("before")));
  ASSERT_EQ(server_recv(), "before");
  proxy->cut();
  // A message written into the dying connection may be lost with it: keep sending until one
  // arrives over the new connection.
  const auto deadline = steady::now() + wait_bound;
  std::optional<std::string> got;
  for (int i = 0; !got && steady::now() < deadline; ++i) {
    ASSERT_TRUE(client.send(message("after")));
    got = server_recv(50ms);
  }
  EXPECT_EQ(got, "after");
  const auto s = proxy->counters();
  EXPECT_EQ(s.cut, 1U);
  EXPECT_GE(s.accepted, 2U);
}

TEST_F(FaultProxyTest, AStallMovesNothingAndThenEverythingInOrder) {
  client.connect(proxy->endpoint());
  ASSERT_TRUE(client.send(message("warm")));
  ASSERT_EQ(server_recv(), "warm");
  proxy->stall(true);
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(client.send(message(std::to_string(i))));
  EXPECT_EQ(server_recv(200ms), std::nullopt) << "a stalled path delivers nothing";
  proxy->stall(false);
  for (int i = 0; i < 100; ++i) ASSERT_EQ(server_recv(), std::to_string(i));
}

TEST_F(FaultProxyTest, DelayHoldsEveryByteInEachDirection) {
  client.connect(proxy->endpoint());
  ASSERT_TRUE(client.send(message("warm")));
  ASSERT_EQ(server_recv(), "warm");
  proxy->delay(150ms);
  const auto start = steady::now();
  ASSERT_TRUE(client.send(message("ping")));
  ASSERT_EQ(server_recv(), "ping");
  ASSERT_TRUE(server.send_to(peer, message("pong")));
  message reply;
  ASSERT_TRUE(client.recv(reply, wait_bound));
  EXPECT_GE(steady::now() - start, 300ms);  // 150 ms there, 150 ms back
}

TEST_F(FaultProxyTest, ThrottleLimitsTheByteRate) {
  client.connect(proxy->endpoint());
  ASSERT_TRUE(client.send(message("warm")));
  ASSERT_EQ(server_recv(), "warm");
  proxy->throttle(256 * 1024);
  const std::string block(4096, 'x');
  const auto start = steady::now();
  for (int i = 0; i < 64; ++i) ASSERT_TRUE(client.send(message(block)));  // 256 KiB
  for (int i = 0; i < 64; ++i) ASSERT_TRUE(server_recv(10s));
  // One second at the rate, less the 50 ms burst the throttle allows.
  EXPECT_GE(steady::now() - start, 900ms);
}

TEST_F(FaultProxyTest, RefuseResetsNewConnectionsUntilLifted) {
  proxy->refuse(true);
  client.connect(proxy->endpoint());
  ASSERT_TRUE(client.send(message("queued")));
  EXPECT_EQ(server_recv(200ms), std::nullopt);
  EXPECT_GE(proxy->counters().refused, 1U);
  proxy->refuse(false);
  EXPECT_EQ(server_recv(), "queued");  // ZeroMQ kept it and reconnects
}

}  // namespace
}  // namespace fabric::testing
