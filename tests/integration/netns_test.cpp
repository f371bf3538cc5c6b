// Two hosts in one machine (tests/support/netns.hpp): ZeroMQ between two network namespaces over a
// veth pair, with the fault proxy on the path, as the reliable channels' fault tests use them.
#include <fabric/context.hpp>
#include <fabric/router_dealer.hpp>

#include "support/fault_proxy.hpp"
#include "support/netns.hpp"
#include "support/support.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

namespace fabric::testing {
namespace {

using namespace std::chrono_literals;

struct server_host {
  std::unique_ptr<context> ctx;
  std::unique_ptr<router> server;
  std::unique_ptr<fault_proxy> proxy;
};

struct client_host {
  std::unique_ptr<context> ctx;
  std::unique_ptr<dealer> client;
};

TEST(NetnsTest, ZeroMqCrossesTheVethPairThroughTheFaultProxy) {
  if (auto why = netns_pair::unavailable()) GTEST_SKIP() << "skipped: " << *why;
  netns_pair hosts;
  server_host b = hosts.in_b([&] {
    server_host h;
    h.ctx = std::make_unique<context>();
    h.server = std::make_unique<router>(*h.ctx, socket_options{.linger = 0ms});
    const std::string bound = h.server->bind("tcp://127.0.0.1:*");
    const auto port = static_cast<std::uint16_t>(std::stoul(bound.substr(bound.rfind(':') + 1)));
    // The proxy listens on the veth address, so only the other namespace reaches the server.
    h.proxy = std::make_unique<fault_proxy>("127.0.0.1", port, hosts.address_b());
    return h;
  });
  client_host a = hosts.in_a([&] {
    client_host h;
    h.ctx = std::make_unique<context>();
    h.client = std::make_unique<dealer>(
        *h.ctx, socket_options{.linger = 0ms, .reconnect_interval = 20ms, .reconnect_interval_max = 100ms});
    h.client->connect(b.proxy->endpoint());
    return h;
  });

  auto server_recv = [&](std::chrono::milliseconds within) -> std::optional<std::string> {
    message m;
    if (!b.server->recv(m, within)) return std::nullopt;
    return std::string(m.view(1));
  };

  ASSERT_TRUE(a.client->send(message("across")));
  ASSERT_EQ(server_recv(wait_bound), "across");
  EXPECT_EQ(b.proxy->counters().accepted, 1U);

  b.proxy->stall(true);
  ASSERT_TRUE(a.client->send(message("held")));
  EXPECT_EQ(server_recv(200ms), std::nullopt);
  b.proxy->stall(false);
  EXPECT_EQ(server_recv(wait_bound), "held");

  b.proxy->cut();
  std::optional<std::string> got;
  const auto deadline = std::chrono::steady_clock::now() + wait_bound;
  while (!got && std::chrono::steady_clock::now() < deadline) {
    ASSERT_TRUE(a.client->send(message("again")));
    got = server_recv(50ms);
  }
  EXPECT_EQ(got, "again");
  EXPECT_GE(b.proxy->counters().accepted, 2U);
}

TEST(NetnsTest, NamespacesAreGoneAfterThePair) {
  if (auto why = netns_pair::unavailable()) GTEST_SKIP() << "skipped: " << *why;
  std::string a;
  std::string b;
  {
    netns_pair hosts;
    a = hosts.name_a();
    b = hosts.name_b();
    EXPECT_TRUE(std::filesystem::exists("/run/netns/" + a));
  }
  EXPECT_FALSE(std::filesystem::exists("/run/netns/" + a));
  EXPECT_FALSE(std::filesystem::exists("/run/netns/" + b));
}

}  // namespace
}  // namespace fabric::testing
