// Tests the Lazy Pirate client over inproc against scripted servers: plain REP echo in both
// sequence modes, retries then success, giving up, stale and malformed replies, failover between
// endpoints, and what happens to the request on success and failure.
#include "support/socket_server.hpp"
#include "support/support.hpp"

#include <fabric/lazy_pirate.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace {

using namespace std::chrono_literals;
using fabric::actor;
using fabric::context;
using fabric::errc;
using fabric::lazy_pirate_client;
using fabric::lazy_pirate_options;
using fabric::lazy_pirate_sequence;
using fabric::make_message;
using fabric::message;
using fabric::testing::loopback_endpoint;
using fabric::testing::to_strings;
using fabric::testing::transport;
using fabric::testing::wait_bound;
using strings = std::vector<std::string>;

using server = fabric::testing::socket_server;

// What a REP echo server does.
void echo(fabric::any_socket& s, message&& m) { ASSERT_TRUE(s.send(std::move(m), wait_bound)); }

// Binds a socket of `type` on a fresh inproc endpoint.
std::shared_ptr<fabric::any_socket> bound(context& ctx, zmq::socket_type type, std::string& endpoint,
                                          const fabric::socket_options& o = {}) {
  auto s = std::make_shared<fabric::any_socket>(ctx, type, o);
  endpoint = s->bind(loopback_endpoint(transport::inproc, "lazy"));
  return s;
}

lazy_pirate_options quick(std::vector<std::string> endpoints, std::size_t retries = 3) {
  return {.endpoints = std::move(endpoints), .timeout = 60ms, .retries = retries};
}

// The sequence frame a DEALER request carries after the ROUTER identity.
std::string sequence_of(const message& m) { return std::string(m.view(1)); }

TEST(LazyPirateTest, RejectsUnusableOptionsAndRequests) {
  context ctx;
  EXPECT_THROW(lazy_pirate_client(ctx, {}), fabric::error);
  EXPECT_THROW(lazy_pirate_client(ctx, {.endpoints = {""}}), fabric::error);
  EXPECT_THROW(lazy_pirate_client(ctx, {.endpoints = {"inproc://x"}, .timeout = 0ms}), fabric::error);
  EXPECT_THROW(lazy_pirate_client(ctx, {.endpoints = {"nonsense://x"}}), fabric::error);
  lazy_pirate_client client(ctx, {.endpoints = {"inproc://nobody-lazy"}});
  EXPECT_THROW((void)client.request(message()), fabric::error);
  EXPECT_EQ(client.options().socket.linger, 0ms);
}

TEST(LazyPirateTest, GetsReplyFromPlainRepServer) {
  context ctx;
  std::string ep;
  server rep(ctx, bound(ctx, zmq::socket_type::rep, ep), echo);
  lazy_pirate_client client(ctx, quick({ep}));
  for (int i = 0; i < 3; ++i) {
    auto reply = client.request(make_message("hello", std::to_string(i)));
    ASSERT_TRUE(reply) << reply.error().message();
    EXPECT_EQ(to_strings(*reply), (strings{"hello", std::to_string(i)}));
  }
  EXPECT_EQ(client.stats().requests, 3u);
  EXPECT_EQ(client.stats().attempts, 3u);
  EXPECT_EQ(client.stats().replies, 3u);
  EXPECT_EQ(client.stats().retries, 0u);
  EXPECT_EQ(client.stats().sockets_opened, 1u);
}

TEST(LazyPirateTest, GetsReplyWithoutSequenceFrame) {
  context ctx;
  std::string ep;
  server rep(ctx, bound(ctx, zmq::socket_type::rep, ep), echo);
  auto o = quick({ep});
  o.sequence = lazy_pirate_sequence::none;
  lazy_pirate_client client(ctx, o);
  auto reply = client.request(make_message("plain"));
  ASSERT_TRUE(reply) << reply.error().message();
  EXPECT_EQ(to_strings(*reply), (strings{"plain"}));
}

TEST(LazyPirateTest, SendsWhatAReqSocketSendsWithoutSequenceFrame) {
  context ctx;
  std::string ep;
  std::vector<strings> seen;
  server srv(ctx, bound(ctx, zmq::socket_type::router, ep),
                                 [&](fabric::any_socket& s, message&& m) {
                                   seen.push_back(to_strings(m));
                                   ASSERT_TRUE(s.send(std::move(m)));
                                 });
  auto o = quick({ep});
  o.sequence = lazy_pirate_sequence::none;
  lazy_pirate_client client(ctx, o);
  ASSERT_TRUE(client.request(make_message("a", "b")));
  srv.stop();
  ASSERT_EQ(seen.size(), 1u);
  ASSERT_EQ(seen[0].size(), 4u);  // identity | "" | a | b
  EXPECT_EQ((strings{seen[0][1], seen[0][2], seen[0][3]}), (strings{"", "a", "b"}));
}

TEST(LazyPirateTest, RetriesOnSilenceThenSucceeds) {
  context ctx;
  std::string ep;
  std::vector<std::string> sequences;
  server srv(ctx, bound(ctx, zmq::socket_type::router, ep),
                                 [&](fabric::any_socket& s, message&& m) {
                                   sequences.push_back(sequence_of(m));
                                   if (sequences.size() < 3) return;  // the first two go unanswered
                                   ASSERT_TRUE(s.send(std::move(m)));
                                 });
  lazy_pirate_client client(ctx, quick({ep}, 3));
  auto reply = client.request(make_message("third time lucky"));
  ASSERT_TRUE(reply) << reply.error().message();
  EXPECT_EQ(to_strings(*reply), (strings{"third time lucky"}));
  EXPECT_EQ(client.stats().attempts, 3u);
  EXPECT_EQ(client.stats().retries, 2u);
  EXPECT_EQ(client.stats().sockets_opened, 3u);  // a fresh socket for every retry
  EXPECT_EQ(client.stats().failures, 0u);
  srv.stop();
  ASSERT_EQ(sequences.size(), 3u);
  EXPECT_EQ(sequences[0].size(), 8u);
  EXPECT_EQ(sequences[0], sequences[1]);  // every attempt of one request carries one sequence
  EXPECT_EQ(sequences[1], sequences[2]);
}

TEST(LazyPirateTest, GivesUpAfterTheLastRetryAndKeepsTheRequest) {
  context ctx;
  std::string ep;
  server hole(ctx, bound(ctx, zmq::socket_type::router, ep),
                                  [](fabric::any_socket&, message&&) {});
  lazy_pirate_client client(ctx, quick({ep}, 2));
  message request = make_message("anyone", "there");
  const auto start = std::chrono::steady_clock::now();
  auto reply = client.request(std::move(request));
  const auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(reply);
  EXPECT_TRUE(reply.is(errc::timeout)) << reply.error().message();
  EXPECT_TRUE(hole.wait_for_messages(3));
  EXPECT_GE(elapsed, 3 * 60ms);
  EXPECT_EQ(client.stats().attempts, 3u);
  EXPECT_EQ(client.stats().retries, 2u);
  EXPECT_EQ(client.stats().failures, 1u);
  EXPECT_EQ(client.stats().replies, 0u);
  // Unchanged on failure, so it can be sent again or put aside.
  EXPECT_EQ(to_strings(request), (strings{"anyone", "there"}));  // NOLINT(bugprone-use-after-move)
}

TEST(LazyPirateTest, WithNoRetriesMakesExactlyOneAttempt) {
  context ctx;
  std::string ep;
  server hole(ctx, bound(ctx, zmq::socket_type::router, ep),
                                  [](fabric::any_socket&, message&&) {});
  lazy_pirate_client client(ctx, quick({ep}, 0));
  EXPECT_TRUE(client.request(make_message("once")).is(errc::timeout));
  EXPECT_EQ(client.stats().attempts, 1u);
  EXPECT_EQ(client.stats().retries, 0u);
}

TEST(LazyPirateTest, EmptiesTheRequestOnSuccess) {
  context ctx;
  std::string ep;
  server rep(ctx, bound(ctx, zmq::socket_type::rep, ep), echo);
  lazy_pirate_client client(ctx, quick({ep}));
  message request = make_message("x");
  ASSERT_TRUE(client.request(std::move(request)));
  EXPECT_TRUE(request.empty());  // NOLINT(bugprone-use-after-move)
}

TEST(LazyPirateTest, DropsDuplicateReplyAsStale) {
  context ctx;
  std::string ep;
  server srv(ctx, bound(ctx, zmq::socket_type::router, ep),
                                 [](fabric::any_socket& s, message&& m) {
                                   message twice = m.clone();
                                   ASSERT_TRUE(s.send(std::move(m)));
                                   ASSERT_TRUE(s.send(std::move(twice)));
                                 });
  lazy_pirate_client client(ctx, quick({ep}));
  auto first = client.request(make_message("one"));
  ASSERT_TRUE(first) << first.error().message();
  auto second = client.request(make_message("two"));
  ASSERT_TRUE(second) << second.error().message();
  EXPECT_EQ(to_strings(*second), (strings{"two"}));  // not the duplicate of "one"
  EXPECT_EQ(client.stats().stale_replies, 1u);
  EXPECT_EQ(client.stats().retries, 0u);
}

TEST(LazyPirateTest, DropsLateReplyToAnAbandonedRequestOnTheNextSocket) {
  // With a fixed routing id and a ROUTER that hands the name over, a late reply to a request the
  // client gave up on is routed to the client's next socket; the sequence keeps it out.
  context ctx;
  std::string ep;
  auto router = bound(ctx, zmq::socket_type::router, ep, {.router_handover = true});
  std::shared_ptr<message> held;
  server srv(ctx, router, [&](fabric::any_socket& s, message&& m) {
    if (!held) {
      held = std::make_shared<message>(std::move(m));  // request one: answered late
      return;
    }
    held->back() = fabric::make_frame("late answer to one");
    ASSERT_TRUE(s.send(std::move(*held)));
    ASSERT_TRUE(s.send(std::move(m)));
  });
  auto o = quick({ep}, 0);
  o.timeout = 250ms;  // request two must not time out: the server holds the late answer for it
  o.socket.routing_id = "client-7";
  lazy_pirate_client client(ctx, o);
  ASSERT_TRUE(client.request(make_message("one")).is(errc::timeout));
  auto reply = client.request(make_message("two"));
  ASSERT_TRUE(reply) << reply.error().message();
  EXPECT_EQ(to_strings(*reply), (strings{"two"}));
  EXPECT_EQ(client.stats().stale_replies, 1u);
}

TEST(LazyPirateTest, DropsMalformedReplies) {
  context ctx;
  std::string ep;
  server srv(ctx, bound(ctx, zmq::socket_type::router, ep),
                                 [](fabric::any_socket& s, message&& m) {
                                   const std::string id(m.view(0));
                                   const std::string seq(m.view(1));
                                   ASSERT_TRUE(s.send(make_message(id, "short", "", "x")));
                                   ASSERT_TRUE(s.send(make_message(id, seq, "not empty", "x")));
                                   ASSERT_TRUE(s.send(make_message(id, seq)));
                                   ASSERT_TRUE(s.send(std::move(m)));
                                 });
  lazy_pirate_client client(ctx, quick({ep}));
  auto reply = client.request(make_message("good"));
  ASSERT_TRUE(reply) << reply.error().message();
  EXPECT_EQ(to_strings(*reply), (strings{"good"}));
  EXPECT_EQ(client.stats().malformed_replies, 3u);
}

TEST(LazyPirateTest, FailsOverToTheNextEndpointAndStaysThere) {
  context ctx;
  std::string dead_ep;
  std::string live_ep;
  server hole(ctx, bound(ctx, zmq::socket_type::router, dead_ep),
                                  [](fabric::any_socket&, message&&) {});
  server rep(ctx, bound(ctx, zmq::socket_type::rep, live_ep), echo);
  lazy_pirate_client client(ctx, quick({dead_ep, live_ep}, 1));
  EXPECT_EQ(client.endpoint(), dead_ep);
  auto reply = client.request(make_message("anyone?"));
  ASSERT_TRUE(reply) << reply.error().message();
  EXPECT_EQ(client.endpoint(), live_ep);
  EXPECT_EQ(client.stats().attempts, 2u);
  ASSERT_TRUE(client.request(make_message("again")));
  EXPECT_EQ(client.stats().attempts, 3u);  // straight to the endpoint that answered
}

TEST(LazyPirateTest, ReturnsClosedWhenTheContextShutsDown) {
  context ctx;
  lazy_pirate_client client(ctx, {.endpoints = {"inproc://nobody-lazy-closed"}});
  ctx.shutdown();
  message request = make_message("late");
  auto reply = client.request(std::move(request));
  EXPECT_TRUE(reply.is(errc::closed)) << reply.error().message();
  EXPECT_EQ(to_strings(request), (strings{"late"}));  // NOLINT(bugprone-use-after-move)
}

TEST(LazyPirateTest, CarriesMultiFrameAndEmptyFrames) {
  context ctx;
  std::string ep;
  server rep(ctx, bound(ctx, zmq::socket_type::rep, ep), echo);
  lazy_pirate_client client(ctx, quick({ep}));
  const std::string big(100000, 'b');
  auto reply = client.request(make_message("", "middle", "", big));
  ASSERT_TRUE(reply) << reply.error().message();
  EXPECT_EQ(to_strings(*reply), (strings{"", "middle", "", big}));
}

TEST(LazyPirateTest, IsMovable) {
  context ctx;
  std::string ep;
  server rep(ctx, bound(ctx, zmq::socket_type::rep, ep), echo);
  lazy_pirate_client a(ctx, quick({ep}));
  ASSERT_TRUE(a.request(make_message("1")));
  lazy_pirate_client b(std::move(a));
  auto reply = b.request(make_message("2"));
  ASSERT_TRUE(reply) << reply.error().message();
  EXPECT_EQ(b.stats().replies, 2u);
  EXPECT_THROW((void)a.request(make_message("3")), fabric::error);  // NOLINT(bugprone-use-after-move)
}

}  // namespace
