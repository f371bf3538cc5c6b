// Tests publish/subscribe (publisher, subscriber) topic filtering and fan-out over inproc, ipc and tcp.
#include "support/support.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace {

using namespace std::chrono_literals;
using fabric::errc;
using fabric::make_message;
using fabric::message;
using fabric::publisher;
using fabric::subscriber;
using fabric::testing::to_strings;
using fabric::testing::transport;
using fabric::testing::wait_bound;
using strings = std::vector<std::string>;

// The topic every test publishes last: once it is received, everything published before it
// that was going to arrive has arrived, so "nothing else came" can be checked without waiting.
constexpr std::string_view fence = "zz.fence";

class PubSubTest : public ::testing::TestWithParam<transport> {
 protected:
  // Receives the next message on `sub` and returns its frames (empty on timeout, with a failure).
  static strings next(subscriber& sub) {
    auto got = sub.recv(wait_bound);
    if (!got) {
      ADD_FAILURE() << "subscriber recv: " << got.error().message();
      return {};
    }
    return to_strings(*got);
  }

  // Publishes the fence and checks that it is the next and last message `sub` has.
  static void expect_only_fence_left(publisher& pub, subscriber& sub) {
    ASSERT_TRUE(pub.publish(fence, "end"));
    EXPECT_EQ(next(sub), (strings{std::string(fence), "end"}));
    message extra;
    auto more = sub.try_recv(extra);
    EXPECT_TRUE(more.is(errc::would_block)) << "unexpected message: "
                                            << (extra.empty() ? "" : extra.view(0));
  }

  fabric::context ctx;
  publisher pub{ctx, {.linger = 0ms}};
};

TEST_P(PubSubTest, FiltersByTopicPrefix) {
  subscriber sub(ctx, {.linger = 0ms});
  sub.subscribe("a.");
  sub.subscribe(fence);
  fabric::testing::marry(pub, sub, GetParam());
  fabric::testing::await_subscription(pub, sub);

  ASSERT_TRUE(pub.publish("b.x", "1"));
  ASSERT_TRUE(pub.publish("a.x", "2"));
  ASSERT_TRUE(pub.publish("ab", "3"));
  ASSERT_TRUE(pub.publish("a", "4"));
  ASSERT_TRUE(pub.publish("a.y", "5"));
  EXPECT_EQ(next(sub), (strings{"a.x", "2"}));
  EXPECT_EQ(next(sub), (strings{"a.y", "5"}));
  expect_only_fence_left(pub, sub);
}

TEST_P(PubSubTest, DeliversMatchesOfEverySubscriptionOnce) {
  subscriber sub(ctx, {"a.", "c.", "a.b", fence}, {.linger = 0ms});
  fabric::testing::marry(pub, sub, GetParam());
  fabric::testing::await_subscription(pub, sub);

  ASSERT_TRUE(pub.publish("a.1", "x"));
  ASSERT_TRUE(pub.publish("b.1", "x"));
  ASSERT_TRUE(pub.publish("c.1", "x"));
  ASSERT_TRUE(pub.publish("a.b.1", "x"));  // matches two prefixes, arrives once
  EXPECT_EQ(next(sub), (strings{"a.1", "x"}));
  EXPECT_EQ(next(sub), (strings{"c.1", "x"}));
  EXPECT_EQ(next(sub), (strings{"a.b.1", "x"}));
  expect_only_fence_left(pub, sub);
}

TEST_P(PubSubTest, UnsubscribeStopsDelivery) {
  subscriber sub(ctx, {"a.", "b.", fence}, {.linger = 0ms});
  fabric::testing::marry(pub, sub, GetParam());
  fabric::testing::await_subscription(pub, sub);
  ASSERT_TRUE(pub.publish("a.1", "before"));
  EXPECT_EQ(next(sub), (strings{"a.1", "before"}));

  sub.unsubscribe("a.");
  // The unsubscription travels ahead of the probe subscription, so once probes arrive the
  // publisher has stopped sending "a." to this subscriber.
  fabric::testing::await_subscription(pub, sub);
  ASSERT_TRUE(pub.publish("a.2", "after"));
  ASSERT_TRUE(pub.publish("b.2", "still"));
  EXPECT_EQ(next(sub), (strings{"b.2", "still"}));
  expect_only_fence_left(pub, sub);
}

TEST_P(PubSubTest, SubscriptionsAreCounted) {
  subscriber sub(ctx, {"a.", "a.", fence}, {.linger = 0ms});
  fabric::testing::marry(pub, sub, GetParam());

  sub.unsubscribe("a.");  // one of two: still subscribed
  fabric::testing::await_subscription(pub, sub);
  ASSERT_TRUE(pub.publish("a.1", "x"));
  EXPECT_EQ(next(sub), (strings{"a.1", "x"}));

  sub.unsubscribe("a.");  // the last one
  fabric::testing::await_subscription(pub, sub);
  ASSERT_TRUE(pub.publish("a.2", "x"));
  expect_only_fence_left(pub, sub);
}

TEST_P(PubSubTest, EmptyPrefixReceivesEveryTopic) {
  subscriber sub(ctx, {""}, {.linger = 0ms});
  fabric::testing::marry(pub, sub, GetParam());
  fabric::testing::await_subscription(pub, sub);

  const strings topics{"a", "b.c", "", "\x01" "binary", "zzz"};
  for (const auto& topic : topics) ASSERT_TRUE(pub.publish(topic, "body"));
  for (const auto& topic : topics) EXPECT_EQ(next(sub), (strings{topic, "body"}));
  expect_only_fence_left(pub, sub);
}

TEST_P(PubSubTest, EverySubscriberReceivesEveryMessage) {
  constexpr int subscriber_count = 3;
  constexpr int message_count = 200;
  std::vector<std::unique_ptr<subscriber>> subs;
  std::string endpoint;
  for (int i = 0; i < subscriber_count; ++i) {
    subs.push_back(std::make_unique<subscriber>(ctx, std::initializer_list<std::string_view>{"news.", fence},
                                                fabric::socket_options{.linger = 0ms}));
    if (i == 0)
      endpoint = fabric::testing::marry(pub, *subs.back(), GetParam());
    else
      fabric::testing::connect_and_wait(*subs.back(), endpoint);
  }
  for (auto& sub : subs) fabric::testing::await_subscription(pub, *sub);

  for (int i = 0; i < message_count; ++i)
    ASSERT_TRUE(pub.publish("news." + std::to_string(i % 7), std::to_string(i)));
  for (std::size_t s = 0; s < subs.size(); ++s) {
    for (int i = 0; i < message_count; ++i)
      ASSERT_EQ(next(*subs[s]), (strings{"news." + std::to_string(i % 7), std::to_string(i)}))
          << "subscriber " << s << " message " << i;
  }
  ASSERT_TRUE(pub.publish(fence, "end"));
  for (auto& sub : subs) {
    EXPECT_EQ(next(*sub), (strings{std::string(fence), "end"}));
    message extra;
    EXPECT_TRUE(sub->try_recv(extra).is(errc::would_block));
  }
}

TEST_P(PubSubTest, PublishSendsTopicFrameFirst) {
  subscriber sub(ctx, {"orders"}, {.linger = 0ms});
  fabric::testing::marry(pub, sub, GetParam());
  fabric::testing::await_subscription(pub, sub);

  message body = make_message("part one", "", "part three");
  ASSERT_TRUE(pub.publish("orders.new", std::move(body)));
  EXPECT_TRUE(body.empty());  // a sent message is consumed
  ASSERT_TRUE(pub.publish("orders.cancel", "single"));
  // send() is the raw form: the first frame is the topic.
  ASSERT_TRUE(pub.send(make_message("orders.raw", "payload")));

  EXPECT_EQ(next(sub), (strings{"orders.new", "part one", "", "part three"}));
  EXPECT_EQ(next(sub), (strings{"orders.cancel", "single"}));
  EXPECT_EQ(next(sub), (strings{"orders.raw", "payload"}));
}

struct tick {
  std::string instrument;
  std::int64_t price_ticks = 0;
  std::uint32_t size = 0;
  MSGPACK_DEFINE(instrument, price_ticks, size)
};

TEST_P(PubSubTest, CarriesEnvelopes) {
  subscriber sub(ctx, {"prices."}, {.linger = 0ms});
  fabric::testing::marry(pub, sub, GetParam());
  fabric::testing::await_subscription(pub, sub);

  fabric::id_generator ids;
  const fabric::header typed_header{.id = ids.next(),
                                    .producer = "feed-1",
                                    .stream = "prices",
                                    .seq = 1,
                                    .timestamp_ns = fabric::unix_now_ns(),
                                    .ttl_ms = 5000,
                                    .user = {{"venue", "xlon"}, {"bin", std::string("\0\x01", 2)}}};
  const fabric::header raw_header{.id = ids.next(),
                                  .producer = "feed-1",
                                  .stream = "",
                                  .seq = 2,
                                  .timestamp_ns = 0,
                                  .ttl_ms = 0,
                                  .user = {}};
  ASSERT_TRUE(pub.publish("prices.fab", fabric::make_envelope_of(typed_header, tick{"FAB", -1250, 300})));
  ASSERT_TRUE(pub.publish("prices.fab", fabric::make_envelope(raw_header, make_message("raw", "", "bytes"))));

  auto first = sub.recv(wait_bound);
  ASSERT_TRUE(first) << first.error().message();
  ASSERT_GE(first->size(), 2u);
  const fabric::frame first_topic = first->pop_front();
  EXPECT_EQ(fabric::view(first_topic), "prices.fab");
  ASSERT_TRUE(fabric::is_envelope(*first));
  auto typed = fabric::decode_envelope(std::move(*first));
  ASSERT_TRUE(typed) << typed.error().message();
  EXPECT_EQ(typed->header, typed_header);
  auto payload = fabric::body_as<tick>(*typed);
  ASSERT_TRUE(payload) << payload.error().message();
  EXPECT_EQ(payload->instrument, "FAB");
  EXPECT_EQ(payload->price_ticks, -1250);
  EXPECT_EQ(payload->size, 300u);
  EXPECT_TRUE(fabric::body_as<tick>(*typed, 1).is(errc::malformed));  // there is no second frame

  auto second = sub.recv(wait_bound);
  ASSERT_TRUE(second) << second.error().message();
  ASSERT_GE(second->size(), 2u);
  const fabric::frame second_topic = second->pop_front();
  EXPECT_EQ(fabric::view(second_topic), "prices.fab");
  auto raw = fabric::decode_envelope(std::move(*second));
  ASSERT_TRUE(raw) << raw.error().message();
  EXPECT_EQ(raw->header, raw_header);
  EXPECT_EQ(to_strings(raw->body), (strings{"raw", "", "bytes"}));
}

INSTANTIATE_TEST_SUITE_P(AllTransports, PubSubTest, ::testing::ValuesIn(fabric::testing::all_transports),
                         fabric::testing::transport_name{});

TEST(PublisherTest, PublishWithoutSubscribersSucceedsAtOnce) {
  fabric::context ctx;
  publisher pub(ctx, {.linger = 0ms});
  pub.bind(fabric::testing::loopback_endpoint(transport::tcp));
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 2000; ++i) ASSERT_TRUE(pub.publish("nobody.listens", "dropped"));  // past the HWM
  EXPECT_LT(std::chrono::steady_clock::now() - start, wait_bound);
}

}  // namespace
