// Tests CURVE encryption and ZAP client authentication end to end over tcp for several patterns.
#include "support/support.hpp"

#include <gtest/gtest.h>
#include <zmq.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using fabric::curve_client;
using fabric::curve_keypair;
using fabric::curve_server;
using fabric::errc;
using fabric::make_message;
using fabric::message;
using fabric::monitor;
using fabric::socket_event;
using fabric::socket_options;
using fabric::testing::to_strings;
using fabric::testing::transport;
using fabric::testing::wait_bound;
using strings = std::vector<std::string>;

class CurveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!zmq_has("curve")) GTEST_SKIP() << "libzmq was built without CURVE";
    server_keys = curve_keypair::generate();
  }

  socket_options server_options() const {
    return {.linger = 0ms, .send_timeout = wait_bound, .security = curve_server{server_keys}};
  }
  socket_options client_options(const curve_keypair& keys) const {
    return {.linger = 0ms,
            .send_timeout = wait_bound,
            .reconnect_interval = 20ms,
            .security = curve_client{keys, server_keys.public_key}};
  }
  // A fresh client key pair, allowed by the context's ZAP handler.
  curve_keypair allowed_client() {
    curve_keypair keys = curve_keypair::generate();
    ctx.allow_curve_client(keys.public_key);
    return keys;
  }

  fabric::context ctx;
  curve_keypair server_keys;
};

TEST_F(CurveTest, RequestReplyRoundTrips) {
  fabric::replier rep(ctx, server_options());
  fabric::requester req(ctx, client_options(allowed_client()));
  fabric::testing::marry(rep, req, transport::tcp);

  constexpr int count = 20;
  std::thread server([&rep] {
    message m;
    for (int i = 0; i < count; ++i) {
      if (auto got = rep.recv(m, wait_bound); !got) {
        ADD_FAILURE() << "replier recv: " << got.error().message();
        return;
      }
      m.push_back("secret reply");
      if (auto sent = rep.send(std::move(m)); !sent) {
        ADD_FAILURE() << "replier send: " << sent.error().message();
        return;
      }
    }
  });
  for (int i = 0; i < count; ++i) {
    auto reply = req.request(make_message("secret " + std::to_string(i)), wait_bound);
    if (!reply) {
      ADD_FAILURE() << "request " << i << ": " << reply.error().message();
      break;
    }
    EXPECT_EQ(to_strings(*reply), (strings{"secret " + std::to_string(i), "secret reply"}));
  }
  server.join();
  EXPECT_GE(ctx.auth_stats().allowed, 1u);
  EXPECT_EQ(ctx.auth_stats().denied, 0u);
}

TEST_F(CurveTest, RouterRoutesToSeveralAuthenticatedDealers) {
  constexpr int dealer_count = 3;
  fabric::router r(ctx, server_options());
  std::vector<std::unique_ptr<fabric::dealer>> dealers;
  std::string endpoint;
  for (int i = 0; i < dealer_count; ++i) {
    socket_options options = client_options(allowed_client());
    options.routing_id = "secure-" + std::to_string(i);
    dealers.push_back(std::make_unique<fabric::dealer>(ctx, options));
    if (i == 0)
      endpoint = fabric::testing::marry(r, *dealers.back(), transport::tcp);
    else
      fabric::testing::connect_and_wait(*dealers.back(), endpoint);
  }

  for (int i = 0; i < dealer_count; ++i)
    ASSERT_TRUE(dealers[static_cast<std::size_t>(i)]->send(make_message("hello from " + std::to_string(i))));
  message m;
  for (int i = 0; i < dealer_count; ++i) {
    ASSERT_TRUE(r.recv(m, wait_bound));
    ASSERT_EQ(m.size(), 2u);
    const fabric::frame peer = m.pop_front();
    const std::string id(fabric::view(peer));
    EXPECT_EQ(m.view(0), "hello from " + id.substr(std::string("secure-").size()));
    ASSERT_TRUE(r.send_to(peer, make_message("hello " + id)));
  }
  for (int i = 0; i < dealer_count; ++i) {
    auto reply = dealers[static_cast<std::size_t>(i)]->recv(wait_bound);
    ASSERT_TRUE(reply) << reply.error().message();
    EXPECT_EQ(to_strings(*reply), (strings{"hello secure-" + std::to_string(i)}));
  }
  EXPECT_GE(ctx.auth_stats().allowed, static_cast<std::uint64_t>(dealer_count));
  EXPECT_EQ(ctx.auth_stats().denied, 0u);
}

TEST_F(CurveTest, PublisherReachesAuthenticatedSubscriber) {
  fabric::publisher pub(ctx, server_options());
  fabric::subscriber sub(ctx, {"secure."}, client_options(allowed_client()));
  fabric::testing::marry(pub, sub, transport::tcp);
  fabric::testing::await_subscription(pub, sub);

  ASSERT_TRUE(pub.publish("secure.news", "encrypted"));
  auto got = sub.recv(wait_bound);
  ASSERT_TRUE(got) << got.error().message();
  EXPECT_EQ(to_strings(*got), (strings{"secure.news", "encrypted"}));
}

TEST_F(CurveTest, UnknownClientKeyIsRefused) {
  fabric::puller server(ctx, server_options());
  monitor server_events(server);
  // A valid key pair that was never allowed.
  fabric::pusher intruder(ctx, client_options(curve_keypair::generate()));
  monitor intruder_events(intruder);
  intruder.connect(server.bind("tcp://127.0.0.1:*"));

  EXPECT_TRUE(intruder_events.wait_for(socket_event::handshake_failed_auth, wait_bound));
  EXPECT_TRUE(server_events.wait_for(socket_event::handshake_failed_auth, wait_bound));
  EXPECT_GE(ctx.auth_stats().denied, 1u);
  EXPECT_EQ(ctx.auth_stats().allowed, 0u);
  // What the intruder queues never reaches the server.
  ASSERT_TRUE(intruder.try_send(make_message("let me in")));
  message m;
  EXPECT_TRUE(server.recv(m, 200ms).is(errc::timeout));
}

TEST_F(CurveTest, WrongServerKeyFailsHandshake) {
  fabric::puller server(ctx, server_options());
  monitor server_events(server);
  socket_options options = client_options(allowed_client());
  std::get<curve_client>(options.security).server_public_key = curve_keypair::generate().public_key;
  fabric::pusher confused(ctx, options);
  confused.connect(server.bind("tcp://127.0.0.1:*"));

  // The server cannot open the client's HELLO box, so no authentication request is ever made.
  EXPECT_TRUE(server_events.wait_for(socket_event::handshake_failed_protocol, wait_bound));
  ASSERT_TRUE(confused.try_send(make_message("unreadable")));
  message m;
  EXPECT_TRUE(server.recv(m, 200ms).is(errc::timeout));
  EXPECT_EQ(ctx.auth_stats().allowed, 0u);
}

TEST_F(CurveTest, RevokedClientCannotConnectAgain) {
  fabric::puller server(ctx, server_options());
  const curve_keypair keys = allowed_client();
  auto first = std::make_unique<fabric::pusher>(ctx, client_options(keys));
  const std::string endpoint = fabric::testing::marry(server, *first, transport::tcp);
  ASSERT_TRUE(first->send(make_message("while allowed")));
  auto got = server.recv(wait_bound);
  ASSERT_TRUE(got) << got.error().message();
  EXPECT_EQ(to_strings(*got), (strings{"while allowed"}));

  ctx.revoke_curve_client(keys.public_key);
  fabric::pusher second(ctx, client_options(keys));
  monitor second_events(second);
  second.connect(endpoint);
  EXPECT_TRUE(second_events.wait_for(socket_event::handshake_failed_auth, wait_bound));
  // The connection made before the revocation stays up.
  ASSERT_TRUE(first->send(make_message("still connected")));
  got = server.recv(wait_bound);
  ASSERT_TRUE(got) << got.error().message();
  EXPECT_EQ(to_strings(*got), (strings{"still connected"}));
}

}  // namespace
