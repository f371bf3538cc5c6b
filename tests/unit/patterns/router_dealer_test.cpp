// Tests routed request/reply (router, dealer): routing ids, send_to, ROUTER_MANDATORY and pipelining.
#include "support/support.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using fabric::dealer;
using fabric::errc;
using fabric::make_message;
using fabric::message;
using fabric::router;
using fabric::testing::to_strings;
using fabric::testing::transport;
using fabric::testing::wait_bound;
using strings = std::vector<std::string>;

// send_to waits for the socket's default send timeout, so bound it.
const fabric::socket_options router_options{.linger = 0ms, .send_timeout = wait_bound};

// Runs a router on its own thread until destroyed, answering every message [peer, body...] with
// [body..., "ack"] sent back to the same peer via send_to(frame). The socket is handed over at
// construction and used by that thread only.
class ack_router {
 public:
  explicit ack_router(router&& r) : router_(std::move(r)), thread_([this] { run(); }) {}
  ~ack_router() { stop(); }
  ack_router(const ack_router&) = delete;
  ack_router& operator=(const ack_router&) = delete;

  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  int answered() const { return answered_.load(); }

 private:
  void run() {
    message m;
    while (!stop_) {
      auto got = router_.recv(m, 20ms);
      if (got.is(errc::timeout)) continue;
      if (!got || m.size() < 2) {
        ADD_FAILURE() << "router recv: " << got.error().message() << ", frames " << m.size();
        return;
      }
      const fabric::frame peer = m.pop_front();
      m.push_back("ack");
      if (auto sent = router_.send_to(peer, std::move(m)); !sent) {
        ADD_FAILURE() << "router send_to: " << sent.error().message();
        return;
      }
      ++answered_;
    }
  }

  router router_;
  std::atomic<bool> stop_{false};
  std::atomic<int> answered_{0};
  std::thread thread_;  // last: starts once everything it uses is constructed
};

class RouterDealerTest : public ::testing::TestWithParam<transport> {
 protected:
  fabric::context ctx;
};

TEST_P(RouterDealerTest, RouterSeesRoutingIdAndRepliesByIt) {
  router r(ctx, router_options);
  dealer d(ctx, {.linger = 0ms, .routing_id = "dealer-one"});
  fabric::testing::marry(r, d, GetParam());

  ASSERT_TRUE(d.send(make_message("hello", "world"), wait_bound));
  auto got = r.recv(wait_bound);
  ASSERT_TRUE(got) << got.error().message();
  EXPECT_EQ(to_strings(*got), (strings{"dealer-one", "hello", "world"}));

  // Reply once with the id frame as received, once with the id as a string.
  ASSERT_TRUE(r.send_to((*got)[0], make_message("by", "frame")));
  ASSERT_TRUE(r.send_to("dealer-one", make_message("by", "string")));
  // The raw form: the first frame names the peer.
  ASSERT_TRUE(r.send(make_message("dealer-one", "by", "send"), wait_bound));

  for (const char* how : {"frame", "string", "send"}) {
    auto reply = d.recv(wait_bound);
    ASSERT_TRUE(reply) << reply.error().message();
    EXPECT_EQ(to_strings(*reply), (strings{"by", how}));
  }
}

TEST_P(RouterDealerTest, RouterAssignsIdToAnonymousDealer) {
  router r(ctx, router_options);
  dealer d(ctx, {.linger = 0ms});
  fabric::testing::marry(r, d, GetParam());

  ASSERT_TRUE(d.send(make_message("anonymous"), wait_bound));
  auto got = r.recv(wait_bound);
  ASSERT_TRUE(got) << got.error().message();
  ASSERT_EQ(got->size(), 2u);
  // libzmq's generated ids are five bytes starting with a zero byte, so never clash with ours.
  ASSERT_EQ((*got)[0].size(), 5u);
  EXPECT_EQ(got->view(0)[0], '\0');

  ASSERT_TRUE(r.send_to((*got)[0], make_message("welcome")));
  auto reply = d.recv(wait_bound);
  ASSERT_TRUE(reply) << reply.error().message();
  EXPECT_EQ(to_strings(*reply), (strings{"welcome"}));
}

TEST_P(RouterDealerTest, UnknownPeerIsUnreachableAndBodyIsKept) {
  router r(ctx, router_options);
  dealer d(ctx, {.linger = 0ms, .routing_id = "known"});
  fabric::testing::marry(r, d, GetParam());
  ASSERT_TRUE(d.send(make_message("hello"), wait_bound));
  ASSERT_TRUE(r.recv(wait_bound));  // the router now knows "known"

  message body = make_message("first", "", "third");
  auto sent = r.send_to("stranger", std::move(body));
  EXPECT_TRUE(sent.is(errc::peer_unreachable)) << sent.error().message();
  EXPECT_EQ(to_strings(body), (strings{"first", "", "third"}));
  EXPECT_TRUE(r.try_send(make_message("stranger", "raw")).is(errc::peer_unreachable));

  // The body is whole and can be sent to a peer that exists.
  ASSERT_TRUE(r.send_to("known", std::move(body)));
  EXPECT_TRUE(body.empty());
  auto got = d.recv(wait_bound);
  ASSERT_TRUE(got) << got.error().message();
  EXPECT_EQ(to_strings(*got), (strings{"first", "", "third"}));
  message extra;
  EXPECT_TRUE(d.try_recv(extra).is(errc::would_block));
}

TEST_P(RouterDealerTest, NonMandatoryRouterDropsUnroutableSilently) {
  router r(ctx, {.linger = 0ms, .send_timeout = wait_bound, .router_mandatory = false});
  dealer d(ctx, {.linger = 0ms, .routing_id = "known"});
  fabric::testing::marry(r, d, GetParam());
  ASSERT_TRUE(d.send(make_message("hello"), wait_bound));
  ASSERT_TRUE(r.recv(wait_bound));

  message body = make_message("into the void");
  EXPECT_TRUE(r.send_to("stranger", std::move(body)));
  EXPECT_TRUE(body.empty());  // reported as sent, and gone
  // The router goes on routing: the next message to a real peer is the only one it gets.
  ASSERT_TRUE(r.send_to("known", make_message("delivered")));
  auto got = d.recv(wait_bound);
  ASSERT_TRUE(got) << got.error().message();
  EXPECT_EQ(to_strings(*got), (strings{"delivered"}));
  message extra;
  EXPECT_TRUE(d.try_recv(extra).is(errc::would_block));
}

TEST_P(RouterDealerTest, RoutesRepliesToManyDealers) {
  constexpr int dealer_count = 8;
  constexpr int per_dealer = 20;
  router r(ctx, router_options);
  std::vector<std::unique_ptr<dealer>> dealers;
  std::string endpoint;
  for (int i = 0; i < dealer_count; ++i) {
    dealers.push_back(std::make_unique<dealer>(
        ctx, fabric::socket_options{.linger = 0ms, .routing_id = "dealer-" + std::to_string(i)}));
    if (i == 0)
      endpoint = fabric::testing::marry(r, *dealers.back(), GetParam());
    else
      fabric::testing::connect_and_wait(*dealers.back(), endpoint);
  }
  ack_router server(std::move(r));

  // Every dealer has all its requests in flight before any reply is read.
  for (int j = 0; j < per_dealer; ++j)
    for (int i = 0; i < dealer_count; ++i)
      ASSERT_TRUE(dealers[static_cast<std::size_t>(i)]->send(
          make_message(std::to_string(i), std::to_string(j)), wait_bound));
  for (int i = 0; i < dealer_count; ++i) {
    for (int j = 0; j < per_dealer; ++j) {
      auto reply = dealers[static_cast<std::size_t>(i)]->recv(wait_bound);
      ASSERT_TRUE(reply) << "dealer " << i << " reply " << j << ": " << reply.error().message();
      ASSERT_EQ(to_strings(*reply), (strings{std::to_string(i), std::to_string(j), "ack"}));
    }
    message extra;
    EXPECT_TRUE(dealers[static_cast<std::size_t>(i)]->try_recv(extra).is(errc::would_block));
  }
  server.stop();
  EXPECT_EQ(server.answered(), dealer_count * per_dealer);
}

TEST_P(RouterDealerTest, DealerPipelinesRequests) {
  constexpr int count = 100;
  router r(ctx, router_options);
  dealer d(ctx, {.linger = 0ms});
  fabric::testing::marry(r, d, GetParam());
  ack_router server(std::move(r));

  for (int i = 0; i < count; ++i)
    ASSERT_TRUE(d.send(make_message("job", std::to_string(i)), wait_bound));
  for (int i = 0; i < count; ++i) {
    auto reply = d.recv(wait_bound);
    ASSERT_TRUE(reply) << "reply " << i << ": " << reply.error().message();
    ASSERT_EQ(to_strings(*reply), (strings{"job", std::to_string(i), "ack"}));
  }
  server.stop();
  EXPECT_EQ(server.answered(), count);
}

INSTANTIATE_TEST_SUITE_P(AllTransports, RouterDealerTest,
                         ::testing::ValuesIn(fabric::testing::all_transports),
                         fabric::testing::transport_name{});

}  // namespace
