// Tests that connected pushers and dealers recover when their binder is replaced on the same tcp port.
#include "support/support.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace {

using namespace std::chrono_literals;
using fabric::errc;
using fabric::make_message;
using fabric::message;
using fabric::monitor;
using fabric::socket_event;
using fabric::testing::to_strings;
using fabric::testing::wait_bound;
using strings = std::vector<std::string>;

// Quick reconnects keep the test fast; a bounded send keeps every wait bounded.
const fabric::socket_options connector_options{
    .linger = 0ms, .send_timeout = wait_bound, .reconnect_interval = 10ms};
const fabric::socket_options binder_options{.linger = 0ms, .send_timeout = wait_bound};

// Closes `binder` and returns once its listening port has been released, so it can be bound
// again. (A socket closes in the background; the monitor reports when the listener is gone.)
void close_and_wait(fabric::socket& binder, monitor& binder_events) {
  binder.close();
  ASSERT_TRUE(binder_events.wait_for(socket_event::closed, wait_bound))
      << "the old listener did not close";
}

TEST(ReconnectTest, PusherDeliversToPullerReboundOnSamePort) {
  fabric::context ctx;
  fabric::pusher push(ctx, connector_options);
  monitor push_events(push);
  auto first = std::make_unique<fabric::puller>(ctx, binder_options);
  monitor first_events(*first);
  const std::string endpoint = first->bind("tcp://127.0.0.1:*");
  push.connect(endpoint);
  ASSERT_TRUE(push_events.wait_for(socket_event::handshake_succeeded, wait_bound));

  ASSERT_TRUE(push.send(make_message("before")));
  auto got = first->recv(wait_bound);
  ASSERT_TRUE(got) << got.error().message();
  EXPECT_EQ(to_strings(*got), (strings{"before"}));

  close_and_wait(*first, first_events);
  first.reset();
  ASSERT_TRUE(push_events.wait_for(socket_event::disconnected, wait_bound));
  // Queued while nobody listens: the connection's queue outlives the connection.
  ASSERT_TRUE(push.send(make_message("during")));

  fabric::puller second(ctx, binder_options);
  EXPECT_EQ(second.bind(endpoint), endpoint);
  ASSERT_TRUE(push_events.wait_for(socket_event::handshake_succeeded, wait_bound))
      << "the pusher did not reconnect";
  ASSERT_TRUE(push.send(make_message("after")));

  for (const char* expected : {"during", "after"}) {
    auto m = second.recv(wait_bound);
    ASSERT_TRUE(m) << "waiting for '" << expected << "': " << m.error().message();
    EXPECT_EQ(to_strings(*m), (strings{expected}));
  }
  message extra;
  EXPECT_TRUE(second.try_recv(extra).is(errc::would_block));
}

TEST(ReconnectTest, DealerTalksToRouterReboundOnSamePort) {
  fabric::context ctx;
  fabric::socket_options dealer_options = connector_options;
  dealer_options.routing_id = "worker-7";
  fabric::dealer d(ctx, dealer_options);
  monitor dealer_events(d);
  auto first = std::make_unique<fabric::router>(ctx, binder_options);
  monitor first_events(*first);
  const std::string endpoint = first->bind("tcp://127.0.0.1:*");
  d.connect(endpoint);
  ASSERT_TRUE(dealer_events.wait_for(socket_event::handshake_succeeded, wait_bound));

  ASSERT_TRUE(d.send(make_message("ping", "1")));
  auto request = first->recv(wait_bound);
  ASSERT_TRUE(request) << request.error().message();
  EXPECT_EQ(to_strings(*request), (strings{"worker-7", "ping", "1"}));
  ASSERT_TRUE(first->send_to("worker-7", make_message("pong", "1")));
  auto reply = d.recv(wait_bound);
  ASSERT_TRUE(reply) << reply.error().message();
  EXPECT_EQ(to_strings(*reply), (strings{"pong", "1"}));

  close_and_wait(*first, first_events);
  first.reset();
  ASSERT_TRUE(dealer_events.wait_for(socket_event::disconnected, wait_bound));

  fabric::router second(ctx, binder_options);
  EXPECT_EQ(second.bind(endpoint), endpoint);
  ASSERT_TRUE(dealer_events.wait_for(socket_event::handshake_succeeded, wait_bound))
      << "the dealer did not reconnect";
  ASSERT_TRUE(d.send(make_message("ping", "2")));
  request = second.recv(wait_bound);
  ASSERT_TRUE(request) << request.error().message();
  // The new router knows the dealer by the same routing id.
  EXPECT_EQ(to_strings(*request), (strings{"worker-7", "ping", "2"}));
  ASSERT_TRUE(second.send_to("worker-7", make_message("pong", "2")));
  reply = d.recv(wait_bound);
  ASSERT_TRUE(reply) << reply.error().message();
  EXPECT_EQ(to_strings(*reply), (strings{"pong", "2"}));
}

}  // namespace
