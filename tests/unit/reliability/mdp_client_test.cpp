// Tests the Majordomo clients against a fake broker: a raw ROUTER in the test that checks every
// frame the clients send byte by byte and answers with frames written out by hand, so these are
// also conformance tests of the clients' 7/MDP wire format. Also tests the pure table of
// outstanding requests behind async_client.
#include <fabric/majordomo_client.hpp>

#include "reliability/mdp_outstanding.hpp"
#include "support/support.hpp"

#include <fabric/error.hpp>
#include <fabric/reactor.hpp>
#include <fabric/router_dealer.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <future>
#include <map>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace fabric::mdp {
namespace {

using namespace std::chrono_literals;
using fabric::testing::loopback_endpoint;
using fabric::testing::to_strings;
using fabric::testing::transport;
using fabric::testing::expect_error;
using fabric::testing::wait_bound;
using strings = std::vector<std::string>;
using steady = std::chrono::steady_clock;

// The frames of `m` from index `from` on.
strings frames_from(const message& m, std::size_t from) {
  strings all = to_strings(m);
  if (from >= all.size()) return {};
  return strings(all.begin() + static_cast<std::ptrdiff_t>(from), all.end());
}

// A request id as it travels: 8 bytes, big-endian.
std::string be64(std::uint64_t v) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i, v >>= 8) out[static_cast<std::size_t>(i)] = static_cast<char>(v & 0xff);
  return out;
}

// The fake broker: a raw ROUTER on a fresh loopback endpoint.
struct fake_broker {
  explicit fake_broker(context& ctx, transport t = transport::inproc, socket_options o = {.linger = 0ms})
      : sock(ctx, o), endpoint(sock.bind(loopback_endpoint(t, "mdp-broker"))) {}

  // The next message (frame 0 = the sender's identity); fails the test if none comes in time.
  message next() {
    message m;
    auto r = sock.recv(m, wait_bound);
    EXPECT_TRUE(r) << "the fake broker received nothing within " << wait_bound.count() << " ms";
    return m;
  }

  // Sends `frames` to the peer whose identity is `peer`.
  void send(std::string_view peer, const strings& frames) {
    message m;
    for (const auto& f : frames) m.push_back(std::string_view(f));
    auto r = sock.send_to(peer, std::move(m));
    EXPECT_TRUE(r) << r.error().message();
  }

  router sock;
  std::string endpoint;
};

// ---------------------------------------------------------------------------------------------
// The synchronous client

TEST(MdpClientTest, SendsExactRequestFramesAndReturnsTheReply) {
  context ctx;
  fake_broker broker(ctx);
  client c(ctx, {.broker = broker.endpoint, .timeout = wait_bound});
  auto pending = std::async(std::launch::async, [&] { return c.request("echo", make_message("hello", "")); });

  message m = broker.next();
  ASSERT_EQ(m.size(), 6U);
  EXPECT_EQ(frames_from(m, 1), (strings{"", "MDPC01", "echo", "hello", ""}));
  broker.send(m.view(0), {"", "MDPC01", "echo", "world", "!"});

  auto reply = pending.get();
  ASSERT_TRUE(reply) << reply.error().message();
  EXPECT_EQ(to_strings(*reply), (strings{"world", "!"}));
  EXPECT_EQ(c.stats().requests, 1U);
  EXPECT_EQ(c.stats().replies, 1U);
  EXPECT_EQ(c.stats().retries, 0U);
}

TEST(MdpClientTest, RefusesARequestWithNoBodyAndSendsNothing) {
  context ctx;
  fake_broker broker(ctx);
  client c(ctx, {.broker = broker.endpoint, .timeout = wait_bound});
  message none;
  expect_error(errc::invalid_argument, [&] { (void)c.request("mmi.service", std::move(none)); });
  EXPECT_EQ(c.stats().requests, 0U);
  // What 7/MDP allows instead: one empty frame.
  auto pending = std::async(std::launch::async, [&] { return c.request("mmi.service", make_message("")); });
  message m = broker.next();
  EXPECT_EQ(frames_from(m, 1), (strings{"", "MDPC01", "mmi.service", ""}));
  broker.send(m.view(0), {"", "MDPC01", "mmi.service", "404"});
  auto reply = pending.get();
  ASSERT_TRUE(reply);
  EXPECT_EQ(to_strings(*reply), (strings{"404"}));
}

TEST(MdpClientTest, RetriesOnAFreshSocketWithANewIdentityAfterSilence) {
  context ctx;
  fake_broker broker(ctx);
  // The attempt the fake broker answers must outlive a slow (loaded, sanitized) test thread.
  client c(ctx, {.broker = broker.endpoint, .timeout = 300ms, .retries = 2});
  auto pending = std::async(std::launch::async, [&] { return c.request("echo", make_message("ping")); });

  message first = broker.next();   // left unanswered
  message second = broker.next();  // the resend
  ASSERT_EQ(first.size(), 5U);
  ASSERT_EQ(second.size(), 5U);
  EXPECT_NE(first.view(0), second.view(0)) << "a retry must come from a new socket identity";
  EXPECT_EQ(frames_from(second, 1), (strings{"", "MDPC01", "echo", "ping"}));
  EXPECT_EQ(frames_from(first, 1), frames_from(second, 1));

  // A late answer to the abandoned attempt cannot reach the new socket.
  (void)broker.sock.send_to(first.view(0), make_message("", "MDPC01", "echo", "late"));
  broker.send(second.view(0), {"", "MDPC01", "echo", "pong"});

  auto reply = pending.get();
  ASSERT_TRUE(reply) << reply.error().message();
  EXPECT_EQ(to_strings(*reply), (strings{"pong"}));
  EXPECT_EQ(c.stats().retries, 1U);
  EXPECT_EQ(c.stats().failures, 0U);
}

TEST(MdpClientTest, EachRetryGoesToTheNextBrokerOfTheFailoverList) {
  context ctx;
  fake_broker first(ctx);
  fake_broker second(ctx);
  client c(ctx, {.broker = first.endpoint, .failover = {second.endpoint}, .timeout = 300ms, .retries = 3});
  EXPECT_EQ(c.endpoint(), first.endpoint);
  auto pending = std::async(std::launch::async, [&] { return c.request("echo", make_message("ping")); });
  message lost = first.next();  // the first broker is silent: a passive node of a pair
  message resent = second.next();
  EXPECT_EQ(frames_from(lost, 1), frames_from(resent, 1));
  second.send(resent.view(0), {"", "MDPC01", "echo", "pong"});
  auto reply = pending.get();
  ASSERT_TRUE(reply) << reply.error().message();
  EXPECT_EQ(to_strings(*reply), (strings{"pong"}));
  EXPECT_EQ(c.endpoint(), second.endpoint);
  // The socket that got its answer stays: the next request goes to the same broker.
  auto next = std::async(std::launch::async, [&] { return c.request("echo", make_message("again")); });
  message again = second.next();
  second.send(again.view(0), {"", "MDPC01", "echo", "pong"});
  ASSERT_TRUE(next.get());
  // Silence there sends the retry round to the first broker again.
  auto third = std::async(std::launch::async, [&] { return c.request("echo", make_message("more")); });
  (void)second.next();
  message back = first.next();
  first.send(back.view(0), {"", "MDPC01", "echo", "pong"});
  ASSERT_TRUE(third.get());
  EXPECT_EQ(c.endpoint(), first.endpoint);
  EXPECT_EQ(c.stats().retries, 2U);
  expect_error(errc::invalid_argument, [&] { client bad(ctx, {.broker = first.endpoint, .failover = {""}}); });
}

TEST(MdpClientTest, GivesUpWithTimeoutAfterTheRetries) {
  context ctx;
  fake_broker broker(ctx);
  client c(ctx, {.broker = broker.endpoint, .timeout = 50ms, .retries = 2});
  const auto start = steady::now();
  auto pending = std::async(std::launch::async, [&] { return c.request("echo", make_message("ping")); });

  std::set<std::string> identities;
  for (int attempt = 0; attempt < 3; ++attempt) {
    message m = broker.next();
    ASSERT_EQ(m.size(), 5U);
    EXPECT_EQ(frames_from(m, 1), (strings{"", "MDPC01", "echo", "ping"}));
    identities.emplace(m.view(0));
  }
  auto reply = pending.get();
  EXPECT_TRUE(reply.is(errc::timeout));
  EXPECT_GE(steady::now() - start, 150ms);
  EXPECT_EQ(identities.size(), 3U) << "every attempt must use a new identity";
  message extra;
  EXPECT_TRUE(broker.sock.try_recv(extra).is(errc::would_block)) << "no attempt beyond retries + 1";
  EXPECT_EQ(c.stats().retries, 2U);
  EXPECT_EQ(c.stats().failures, 1U);
  EXPECT_EQ(c.stats().replies, 0U);
}

TEST(MdpClientTest, StartsTheNextRequestOnAFreshSocketAfterGivingUp) {
  context ctx;
  fake_broker broker(ctx);
  client c(ctx, {.broker = broker.endpoint, .timeout = 300ms, .retries = 0});
  auto first = std::async(std::launch::async, [&] { return c.request("echo", make_message("one")); });
  message abandoned = broker.next();
  ASSERT_TRUE(first.get().is(errc::timeout));

  auto second = std::async(std::launch::async, [&] { return c.request("echo", make_message("two")); });
  message m = broker.next();
  EXPECT_NE(m.view(0), abandoned.view(0)) << "the abandoned request's socket must not be reused";
  EXPECT_EQ(frames_from(m, 1), (strings{"", "MDPC01", "echo", "two"}));
  // Without correlation the answer to "one" would look like the answer to "two".
  (void)broker.sock.send_to(abandoned.view(0), make_message("", "MDPC01", "echo", "answer to one"));
  broker.send(m.view(0), {"", "MDPC01", "echo", "answer to two"});
  auto reply = second.get();
  ASSERT_TRUE(reply) << reply.error().message();
  EXPECT_EQ(to_strings(*reply), (strings{"answer to two"}));
}

TEST(MdpClientTest, DropsRepliesForAnotherServiceAndMalformedOnes) {
  context ctx;
  fake_broker broker(ctx);
  client c(ctx, {.broker = broker.endpoint, .timeout = wait_bound, .retries = 0});
  auto pending = std::async(std::launch::async, [&] { return c.request("echo", make_message("x")); });
  message m = broker.next();
  const std::string peer(m.view(0));
  broker.send(peer, {"", "MDPC01", "other", "wrong service"});
  broker.send(peer, {"", "MDPC02", "echo", "wrong header"});
  broker.send(peer, {"MDPC01", "echo", "no delimiter"});
  broker.send(peer, {"", "MDPC01"});  // no service
  broker.send(peer, {"", "MDPC01", "echo", "right"});

  auto reply = pending.get();
  ASSERT_TRUE(reply) << reply.error().message();
  EXPECT_EQ(to_strings(*reply), (strings{"right"}));
  EXPECT_EQ(c.stats().dropped, 1U);
  EXPECT_EQ(c.stats().malformed, 3U);
}

TEST(MdpClientTest, CorrelatedRequestsCarryAnIdAndIgnoreADuplicateReply) {
  context ctx;
  fake_broker broker(ctx);
  client c(ctx, {.broker = broker.endpoint, .timeout = wait_bound, .retries = 0, .correlate = true});

  auto first = std::async(std::launch::async, [&] { return c.request("echo", make_message("one")); });
  message m = broker.next();
  EXPECT_EQ(frames_from(m, 1), (strings{be64(1), "", "MDPC01", "echo", "one"}));
  const std::string peer(m.view(0));
  broker.send(peer, {be64(1), "", "MDPC01", "echo", "r1"});
  ASSERT_EQ(to_strings(first.get().value()), (strings{"r1"}));

  // The duplicate of the first answer may arrive before or after the second request goes out;
  // either way it must not be taken for the second answer.
  broker.send(peer, {be64(1), "", "MDPC01", "echo", "r1 again"});
  auto second = std::async(std::launch::async, [&] { return c.request("echo", make_message("two")); });
  m = broker.next();
  EXPECT_EQ(frames_from(m, 1), (strings{be64(2), "", "MDPC01", "echo", "two"}));
  broker.send(peer, {be64(2), "", "MDPC01", "echo", "r2"});
  ASSERT_EQ(to_strings(second.get().value()), (strings{"r2"}));
  EXPECT_EQ(c.stats().dropped, 1U);
}

TEST(MdpClientTest, GivesEachSocketItsOwnIdentityUnderARoutingIdPrefix) {
  context ctx;
  fake_broker broker(ctx);
  client c(ctx, {.broker = broker.endpoint, .timeout = 300ms, .retries = 1, .socket = {.routing_id = "app"}});
  auto pending = std::async(std::launch::async, [&] { return c.request("echo", make_message("x")); });
  message first = broker.next();
  message second = broker.next();
  EXPECT_EQ(first.view(0), "app/1");
  EXPECT_EQ(second.view(0), "app/2");
  broker.send(second.view(0), {"", "MDPC01", "echo", "ok"});
  EXPECT_TRUE(pending.get());
}

TEST(MdpClientTest, RefusesBadServiceNamesAndOptions) {
  context ctx;
  fake_broker broker(ctx);
  client c(ctx, {.broker = broker.endpoint, .timeout = 50ms, .retries = 0});
  message body = make_message("kept");
  expect_error(errc::invalid_argument, [&] { (void)c.request("", std::move(body)); });
  expect_error(errc::invalid_argument, [&] { (void)c.request(std::string(256, 's'), std::move(body)); });
  EXPECT_EQ(to_strings(body), (strings{"kept"}));  // untouched by a refused request
  EXPECT_EQ(c.stats().requests, 0U);

  expect_error(errc::invalid_argument, [&] { client bad(ctx, {}); });
  expect_error(errc::invalid_argument, [&] { client bad(ctx, {.broker = broker.endpoint, .timeout = 0ms}); });
  expect_error(errc::invalid_argument, [&] { client bad(ctx, {.broker = broker.endpoint, .retries = 1001}); });
  expect_error(errc::invalid_argument, 
      [&] { client bad(ctx, {.broker = broker.endpoint, .socket = {.routing_id = std::string(235, 'r')}}); });
  EXPECT_THROW(client bad(ctx, {.broker = "nonsense://x"}), error);
}

TEST(MdpClientTest, ReportsClosedWhenTheContextShutsDown) {
  context ctx;
  fake_broker broker(ctx);
  client c(ctx, {.broker = broker.endpoint, .timeout = wait_bound, .retries = 0});
  auto pending = std::async(std::launch::async, [&] { return c.request("echo", make_message("x")); });
  (void)broker.next();  // the client is now waiting for the reply
  ctx.shutdown();
  EXPECT_TRUE(pending.get().is(errc::closed));
}

TEST(MdpClientTest, WorksOverTcp) {
  context ctx;
  fake_broker broker(ctx, transport::tcp);
  client c(ctx, {.broker = broker.endpoint, .timeout = wait_bound, .retries = 0});
  auto pending = std::async(std::launch::async, [&] { return c.request("echo", make_message("tcp")); });
  message m = broker.next();
  EXPECT_EQ(frames_from(m, 1), (strings{"", "MDPC01", "echo", "tcp"}));
  broker.send(m.view(0), {"", "MDPC01", "echo", "ok"});
  ASSERT_EQ(to_strings(pending.get().value()), (strings{"ok"}));
}

// ---------------------------------------------------------------------------------------------
// The asynchronous client

TEST(MdpAsyncClientTest, SendsTheRequestIdBeforeTheDelimiter) {
  context ctx;
  fake_broker broker(ctx);
  async_client c(ctx, {.broker = broker.endpoint, .correlate = correlation::request_id});
  auto id = c.send("echo", make_message("a", "b"));
  ASSERT_TRUE(id) << id.error().message();
  EXPECT_NE(*id, 0U);
  EXPECT_EQ(c.outstanding(), 1U);

  message m = broker.next();
  EXPECT_EQ(frames_from(m, 1), (strings{be64(*id), "", "MDPC01", "echo", "a", "b"}));
  broker.send(m.view(0), {be64(*id), "", "MDPC01", "echo", "r", ""});

  auto reply = c.recv(wait_bound);
  ASSERT_TRUE(reply) << reply.error().message();
  EXPECT_EQ(reply->id, *id);
  EXPECT_EQ(reply->status, async_client::reply_status::ok);
  EXPECT_EQ(reply->service, "echo");
  EXPECT_EQ(to_strings(reply->body), (strings{"r", ""}));
  EXPECT_EQ(c.outstanding(), 0U);
  EXPECT_EQ(c.stats().sent, 1U);
  EXPECT_EQ(c.stats().replies, 1U);
}

TEST(MdpAsyncClientTest, MatchesAThousandRepliesSentOutOfOrder) {
  context ctx;
  fake_broker broker(ctx, transport::tcp, {.send_hwm = 0, .recv_hwm = 0, .linger = 0ms});
  async_client c(ctx, {.broker = broker.endpoint, .correlate = correlation::request_id});
  constexpr int count = 1000;
  std::map<std::uint64_t, int> sent;
  for (int i = 0; i < count; ++i) {
    auto id = c.send("echo", message(std::to_string(i)));
    ASSERT_TRUE(id) << "send " << i << ": " << id.error().message();
    ASSERT_TRUE(sent.emplace(*id, i).second) << "duplicate id " << *id;
  }
  EXPECT_EQ(c.outstanding(), static_cast<std::size_t>(count));

  std::vector<message> requests;
  for (int i = 0; i < count; ++i) {
    message m = broker.next();
    ASSERT_EQ(m.size(), 6U);
    ASSERT_EQ(m[1].size(), 8U);
    ASSERT_EQ(frames_from(m, 2), (strings{"", "MDPC01", "echo", std::to_string(i)}));
    requests.push_back(std::move(m));
  }
  std::mt19937 shuffle_rng(7);
  std::shuffle(requests.begin(), requests.end(), shuffle_rng);
  for (auto& m : requests)
    broker.send(m.view(0), {std::string(m.view(1)), "", "MDPC01", "echo", "re:" + std::string(m.view(5))});

  std::set<std::uint64_t> answered;
  async_client::reply reply;
  for (int i = 0; i < count; ++i) {
    ASSERT_TRUE(c.recv(reply, wait_bound)) << "reply " << i;
    ASSERT_EQ(reply.status, async_client::reply_status::ok);
    auto it = sent.find(reply.id);
    ASSERT_NE(it, sent.end()) << "unknown id " << reply.id;
    EXPECT_TRUE(answered.insert(reply.id).second) << "id " << reply.id << " answered twice";
    EXPECT_EQ(to_strings(reply.body), (strings{"re:" + std::to_string(it->second)}));
  }
  EXPECT_EQ(c.outstanding(), 0U);
  EXPECT_EQ(c.stats().replies, static_cast<std::uint64_t>(count));
  EXPECT_EQ(c.stats().dropped, 0U);
  EXPECT_EQ(c.stats().malformed, 0U);
}

TEST(MdpAsyncClientTest, WithoutCorrelationSpeaksPlainMdpAndCreditsRepliesByService) {
  context ctx;
  fake_broker broker(ctx);
  async_client c(ctx, {.broker = broker.endpoint, .correlate = correlation::plain});
  EXPECT_FALSE(c.correlating());
  auto a = c.send("a", make_message("1"));
  auto b = c.send("b", make_message("2"));
  ASSERT_TRUE(a && b);
  message ma = broker.next();
  message mb = broker.next();
  EXPECT_EQ(frames_from(ma, 1), (strings{"", "MDPC01", "a", "1"}));
  EXPECT_EQ(frames_from(mb, 1), (strings{"", "MDPC01", "b", "2"}));

  broker.send(mb.view(0), {"", "MDPC01", "c", "nobody asked"});
  broker.send(mb.view(0), {std::string(8, 'i'), "", "MDPC01", "b", "an id it never sent"});
  broker.send(mb.view(0), {"", "MDPC01", "b", "rb"});
  broker.send(ma.view(0), {"", "MDPC01", "a", "ra"});
  auto first = c.recv(wait_bound);
  auto second = c.recv(wait_bound);
  ASSERT_TRUE(first);
  ASSERT_TRUE(second);
  EXPECT_EQ(first->id, *b);
  EXPECT_EQ(first->service, "b");
  EXPECT_EQ(to_strings(first->body), (strings{"rb"}));
  EXPECT_EQ(second->id, *a);
  EXPECT_EQ(second->service, "a");
  EXPECT_EQ(to_strings(second->body), (strings{"ra"}));
  EXPECT_EQ(c.outstanding(), 0U);
  EXPECT_EQ(c.stats().dropped, 1U);
  EXPECT_EQ(c.stats().malformed, 1U);
}

TEST(MdpAsyncClientTest, WithoutCorrelationCreditsRepliesInSendOrderWhateverTheDeadlines) {
  context ctx;
  fake_broker broker(ctx);
  async_client c(ctx, {.broker = broker.endpoint, .correlate = correlation::plain});
  auto patient = c.send("echo", make_message("1"), wait_bound * 4);
  auto hasty = c.send("echo", make_message("2"), wait_bound * 2);  // expires first, sent second
  ASSERT_TRUE(patient && hasty);
  message m = broker.next();
  (void)broker.next();
  broker.send(m.view(0), {"", "MDPC01", "echo", "r1"});
  broker.send(m.view(0), {"", "MDPC01", "echo", "r2"});
  auto first = c.recv(wait_bound);
  auto second = c.recv(wait_bound);
  ASSERT_TRUE(first && second);
  EXPECT_EQ(first->id, *patient);
  EXPECT_EQ(to_strings(first->body), (strings{"r1"}));
  EXPECT_EQ(second->id, *hasty);
  EXPECT_EQ(to_strings(second->body), (strings{"r2"}));
}

// The probe correlation::automatic sends before its first request, as the broker receives it.
const strings probe = {"", "MDPC01", "mmi.services", ""};

TEST(MdpAsyncClientTest, AutomaticHoldsRequestsForTheProbeAndUsesIdsWithFabricsBroker) {
  context ctx;
  fake_broker broker(ctx);
  async_client c(ctx, {.broker = broker.endpoint});
  EXPECT_EQ(c.options().correlate, correlation::automatic);
  auto first = c.send("echo", make_message("one"));
  ASSERT_TRUE(first);
  EXPECT_EQ(c.outstanding(), 1U);
  EXPECT_FALSE(c.correlating());
  ASSERT_TRUE(c.next_deadline().has_value());
  message m = broker.next();
  EXPECT_EQ(frames_from(m, 1), probe);
  const std::string peer(m.view(0));
  message nothing;
  EXPECT_TRUE(broker.sock.try_recv(nothing).is(errc::would_block)) << "a request left before the answer";

  // fabric's broker answers "200" and a JSON array; the held request then goes out with its id.
  broker.send(peer, {"", "MDPC01", "mmi.services", "200", "[\"echo\"]"});
  auto reply = std::async(std::launch::async, [&] { return c.recv(wait_bound); });
  m = broker.next();
  EXPECT_EQ(frames_from(m, 1), (strings{be64(*first), "", "MDPC01", "echo", "one"}));
  broker.send(peer, {be64(*first), "", "MDPC01", "echo", "r1"});
  auto r1 = reply.get();
  ASSERT_TRUE(r1) << r1.error().message();
  EXPECT_EQ(r1->id, *first);
  EXPECT_EQ(to_strings(r1->body), (strings{"r1"}));
  EXPECT_TRUE(c.correlating());

  // Later requests go out with their ids at once.
  auto second = c.send("echo", make_message("two"));
  ASSERT_TRUE(second);
  EXPECT_EQ(frames_from(broker.next(), 1), (strings{be64(*second), "", "MDPC01", "echo", "two"}));
  EXPECT_EQ(c.stats().sent, 2U);
  EXPECT_EQ(c.stats().replies, 1U);
  EXPECT_EQ(c.stats().dropped, 0U);
}

TEST(MdpAsyncClientTest, AutomaticSpeaksPlainMdpToABrokerThatAnswersNotImplemented) {
  context ctx;
  fake_broker broker(ctx);
  async_client c(ctx, {.broker = broker.endpoint});
  auto id = c.send("echo", make_message("one"));
  ASSERT_TRUE(id);
  message m = broker.next();
  EXPECT_EQ(frames_from(m, 1), probe);
  const std::string peer(m.view(0));
  broker.send(peer, {"", "MDPC01", "mmi.services", "501"});
  auto reply = std::async(std::launch::async, [&] { return c.recv(wait_bound); });
  EXPECT_EQ(frames_from(broker.next(), 1), (strings{"", "MDPC01", "echo", "one"}));
  broker.send(peer, {"", "MDPC01", "echo", "r1"});
  auto r1 = reply.get();
  ASSERT_TRUE(r1) << r1.error().message();
  EXPECT_EQ(r1->id, *id);
  EXPECT_FALSE(c.correlating());
  ASSERT_TRUE(c.send("echo", make_message("two")));
  EXPECT_EQ(frames_from(broker.next(), 1), (strings{"", "MDPC01", "echo", "two"}));
  EXPECT_EQ(c.stats().dropped, 0U);
}

TEST(MdpAsyncClientTest, AutomaticSendsPlainAfterTheProbeTimeoutAndSwitchesOnALateAnswer) {
  context ctx;
  fake_broker broker(ctx);
  async_client c(ctx, {.broker = broker.endpoint, .probe_timeout = 50ms});
  const auto start = steady::now();
  auto first = c.send("echo", make_message("one"));
  ASSERT_TRUE(first);
  ASSERT_TRUE(c.next_deadline().has_value());
  EXPECT_LE(*c.next_deadline(), start + 50ms + 5ms) << "a reactor must wake for the probe's end";
  message m = broker.next();
  EXPECT_EQ(frames_from(m, 1), probe);
  const std::string peer(m.view(0));

  // No answer: once the wait is over, the held request goes out as plain 7/MDP.
  async_client::reply none;
  EXPECT_TRUE(c.recv(none, 200ms).is(errc::timeout));
  EXPECT_GE(steady::now() - start, 50ms);
  EXPECT_EQ(frames_from(broker.next(), 1), (strings{"", "MDPC01", "echo", "one"}));
  EXPECT_FALSE(c.correlating());

  // A late answer from fabric's broker: the plain request is still matched by its service, and
  // requests sent after it carry ids.
  broker.send(peer, {"", "MDPC01", "mmi.services", "200", "[]"});
  broker.send(peer, {"", "MDPC01", "echo", "r1"});
  auto r1 = c.recv(wait_bound);
  ASSERT_TRUE(r1) << r1.error().message();
  EXPECT_EQ(r1->id, *first);
  EXPECT_TRUE(c.correlating());
  auto second = c.send("echo", make_message("two"));
  ASSERT_TRUE(second);
  EXPECT_EQ(frames_from(broker.next(), 1), (strings{be64(*second), "", "MDPC01", "echo", "two"}));
}

TEST(MdpAsyncClientTest, AutomaticNeverSendsAHeldRequestThatExpiredOrWasCancelled) {
  context ctx;
  fake_broker broker(ctx);
  async_client c(ctx, {.broker = broker.endpoint, .probe_timeout = wait_bound, .max_outstanding = 2,
                       .request_expiry = 30ms});
  auto expiring = c.send("echo", make_message("expiring"));
  auto cancelled = c.send("echo", make_message("cancelled"), 0ms);
  ASSERT_TRUE(expiring && cancelled);
  EXPECT_TRUE(c.send("echo", make_message("over")).is(errc::back_pressure));
  message m = broker.next();
  EXPECT_EQ(frames_from(m, 1), probe);
  auto e = c.recv(wait_bound);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->id, *expiring);
  EXPECT_EQ(e->status, async_client::reply_status::expired);
  EXPECT_TRUE(c.cancel(*cancelled));
  // Many more held and expired than max_outstanding: the client keeps no message for them.
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(c.send("echo", make_message("expiring")));
    ASSERT_TRUE(c.recv(wait_bound));
  }
  broker.send(m.view(0), {"", "MDPC01", "mmi.services", "501"});
  auto kept = c.send("echo", make_message("kept"));
  ASSERT_TRUE(kept);
  auto reply = std::async(std::launch::async, [&] { return c.recv(wait_bound); });
  EXPECT_EQ(frames_from(broker.next(), 1), (strings{"", "MDPC01", "echo", "kept"}));
  broker.send(m.view(0), {"", "MDPC01", "echo", "r"});
  auto r = reply.get();
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->id, *kept);
  EXPECT_EQ(c.stats().expired, 11U);
}

TEST(MdpAsyncClientTest, RefusesSendsBeyondTheOutstandingBoundAndKeepsTheBody) {
  context ctx;
  fake_broker broker(ctx);
  async_client c(ctx, {.broker = broker.endpoint, .correlate = correlation::request_id, .max_outstanding = 4});
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(c.send("echo", make_message("x")));
  message body = make_message("keep", "me");
  auto refused = c.send("echo", std::move(body));
  EXPECT_TRUE(refused.is(errc::back_pressure));
  EXPECT_EQ(to_strings(body), (strings{"keep", "me"}));
  EXPECT_EQ(c.stats().back_pressure, 1U);
  EXPECT_EQ(c.outstanding(), 4U);

  message m = broker.next();
  broker.send(m.view(0), {std::string(m.view(1)), "", "MDPC01", "echo", "done"});
  ASSERT_TRUE(c.recv(wait_bound));
  auto accepted = c.send("echo", std::move(body));
  ASSERT_TRUE(accepted);
  for (int i = 0; i < 3; ++i) (void)broker.next();
  EXPECT_EQ(frames_from(broker.next(), 1), (strings{be64(*accepted), "", "MDPC01", "echo", "keep", "me"}));
}

TEST(MdpAsyncClientTest, ReportsExpiredRequestsOnceAndDropsTheirLateReplies) {
  context ctx;
  fake_broker broker(ctx);
  async_client c(ctx, {.broker = broker.endpoint, .correlate = correlation::request_id, .request_expiry = 50ms});
  const auto start = steady::now();
  auto first = c.send("echo", make_message("1"));
  auto second = c.send("echo", make_message("2"));
  ASSERT_TRUE(first && second);
  ASSERT_TRUE(c.next_deadline().has_value());
  message m1 = broker.next();
  (void)broker.next();

  auto e1 = c.recv(wait_bound);
  auto e2 = c.recv(wait_bound);
  ASSERT_TRUE(e1 && e2);
  EXPECT_GE(steady::now() - start, 50ms);
  EXPECT_EQ(e1->id, *first);
  EXPECT_EQ(e1->status, async_client::reply_status::expired);
  EXPECT_EQ(e1->service, "echo");
  EXPECT_TRUE(e1->body.empty());
  EXPECT_EQ(e2->id, *second);
  EXPECT_EQ(e2->status, async_client::reply_status::expired);
  EXPECT_EQ(c.outstanding(), 0U);
  EXPECT_FALSE(c.next_deadline().has_value());

  // A request that never expires, then the late reply to the first one ahead of its answer.
  auto third = c.send("echo", make_message("3"), 0ms);
  ASSERT_TRUE(third);
  EXPECT_FALSE(c.next_deadline().has_value());
  broker.send(m1.view(0), {be64(*first), "", "MDPC01", "echo", "late"});
  broker.send(m1.view(0), {be64(*third), "", "MDPC01", "echo", "r3"});
  auto r3 = c.recv(wait_bound);
  ASSERT_TRUE(r3);
  EXPECT_EQ(r3->id, *third);
  EXPECT_EQ(c.stats().expired, 2U);
  EXPECT_EQ(c.stats().dropped, 1U);
}

TEST(MdpAsyncClientTest, DropsMalformedRepliesAndUnknownIds) {
  context ctx;
  fake_broker broker(ctx);
  async_client c(ctx, {.broker = broker.endpoint, .correlate = correlation::request_id});
  auto id = c.send("echo", make_message("x"));
  ASSERT_TRUE(id);
  message m = broker.next();
  const std::string peer(m.view(0));
  broker.send(peer, {"", "MDPC01", "echo", "no id"});
  broker.send(peer, {be64(*id), "MDPC01", "echo", "no delimiter"});
  broker.send(peer, {"1234567", "", "MDPC01", "echo", "short id"});
  broker.send(peer, {be64(*id + 12345), "", "MDPC01", "echo", "unknown id"});
  broker.send(peer, {be64(*id), "", "MDPC01", "other", "wrong service"});
  broker.send(peer, {be64(*id), "", "MDPC01", "echo", "ok"});
  auto reply = c.recv(wait_bound);
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->id, *id);
  EXPECT_EQ(to_strings(reply->body), (strings{"ok"}));
  EXPECT_EQ(c.stats().malformed, 3U);
  EXPECT_EQ(c.stats().dropped, 2U);
  async_client::reply none;
  EXPECT_TRUE(c.try_recv(none).is(errc::would_block));
  EXPECT_TRUE(c.recv(none, 1ms).is(errc::timeout));
}

TEST(MdpAsyncClientTest, CancelForgetsARequest) {
  context ctx;
  fake_broker broker(ctx);
  async_client c(ctx, {.broker = broker.endpoint, .correlate = correlation::request_id});
  auto cancelled = c.send("echo", make_message("x"));
  ASSERT_TRUE(cancelled);
  EXPECT_TRUE(c.cancel(*cancelled));
  EXPECT_FALSE(c.cancel(*cancelled));
  EXPECT_EQ(c.outstanding(), 0U);
  auto kept = c.send("echo", make_message("y"));
  ASSERT_TRUE(kept);
  message m = broker.next();
  broker.send(m.view(0), {be64(*cancelled), "", "MDPC01", "echo", "unwanted"});
  broker.send(m.view(0), {be64(*kept), "", "MDPC01", "echo", "wanted"});
  auto reply = c.recv(wait_bound);
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->id, *kept);
  EXPECT_EQ(c.stats().cancelled, 1U);
  EXPECT_EQ(c.stats().dropped, 1U);
}

TEST(MdpAsyncClientTest, RefusesBadServiceNamesAndOptions) {
  context ctx;
  fake_broker broker(ctx);
  async_client c(ctx, {.broker = broker.endpoint});
  message body = make_message("kept");
  expect_error(errc::invalid_argument, [&] { (void)c.send("", std::move(body)); });
  expect_error(errc::invalid_argument, [&] { (void)c.send(std::string(256, 's'), std::move(body)); });
  expect_error(errc::invalid_argument, [&] { (void)c.send("echo", std::move(body), -1ms); });
  EXPECT_EQ(to_strings(body), (strings{"kept"}));
  message none;
  expect_error(errc::invalid_argument, [&] { (void)c.send("echo", std::move(none)); });
  EXPECT_EQ(c.outstanding(), 0U);
  EXPECT_EQ(c.stats().sent, 0U);
  expect_error(errc::invalid_argument, [&] { async_client bad(ctx, {}); });
  expect_error(errc::invalid_argument, [&] { async_client bad(ctx, {.broker = broker.endpoint, .max_outstanding = 0}); });
  expect_error(errc::invalid_argument, [&] { async_client bad(ctx, {.broker = broker.endpoint, .request_expiry = -1ms}); });
  expect_error(errc::invalid_argument, [&] { async_client bad(ctx, {.broker = broker.endpoint, .probe_timeout = 0ms}); });
  expect_error(errc::invalid_argument,
               [&] { async_client bad(ctx, {.broker = broker.endpoint, .correlate = correlation{7}}); });
}

TEST(MdpAsyncClientTest, ItsSocketDrivesAReactor) {
  context ctx;
  fake_broker broker(ctx);
  async_client c(ctx, {.broker = broker.endpoint, .correlate = correlation::request_id});
  auto a = c.send("echo", make_message("a"));
  auto b = c.send("echo", make_message("b"));
  ASSERT_TRUE(a && b);
  for (int i = 0; i < 2; ++i) {
    message m = broker.next();
    broker.send(m.view(0), {std::string(m.view(1)), "", "MDPC01", "echo", "r"});
  }

  reactor loop;
  std::set<std::uint64_t> done;
  async_client::reply reply;
  loop.add(c.socket(), [&] {
    while (c.try_recv(reply)) done.insert(reply.id);
    if (done.size() == 2) loop.stop();
  });
  loop.after(wait_bound, [&] {
    ADD_FAILURE() << "the reactor did not see both replies";
    loop.stop();
  });
  ASSERT_TRUE(loop.run());
  EXPECT_EQ(done, (std::set<std::uint64_t>{*a, *b}));
}

// ---------------------------------------------------------------------------------------------
// The outstanding-request table

using time_point = outstanding_table::time_point;
const time_point t0 = time_point{} + std::chrono::hours(1);

// Null-safe views of an entry, so a missing one fails the expectation instead of crashing.
std::uint64_t id_of(const outstanding_table::entry* e) { return e != nullptr ? e->id : 0; }
std::string service_of(const outstanding_table::entry* e) { return e != nullptr ? e->service : "<none>"; }

TEST(MdpOutstandingTableTest, HandsOutDistinctNonZeroIdsFoundUntilErased) {
  outstanding_table t(8);
  std::set<std::uint64_t> ids;
  for (int i = 0; i < 8; ++i) {
    const auto id = t.insert("svc", outstanding_table::never);
    EXPECT_NE(id, 0U);
    EXPECT_TRUE(ids.insert(id).second);
    EXPECT_EQ(service_of(t.find(id)), "svc");
  }
  EXPECT_TRUE(t.full());
  for (auto id : ids) EXPECT_TRUE(t.erase(id));
  for (auto id : ids) {
    EXPECT_EQ(t.find(id), nullptr);
    EXPECT_FALSE(t.erase(id));
  }
  EXPECT_TRUE(t.empty());
}

TEST(MdpOutstandingTableTest, AReusedSlotGetsANewIdAndForgetsTheOldOne) {
  outstanding_table t(1);
  const auto first = t.insert("a", outstanding_table::never);
  ASSERT_TRUE(t.erase(first));
  const auto second = t.insert("b", outstanding_table::never);
  EXPECT_NE(first, second);
  EXPECT_EQ(t.find(first), nullptr);
  EXPECT_EQ(service_of(t.find(second)), "b");
  EXPECT_EQ(t.find(0), nullptr);
  EXPECT_EQ(t.find(~std::uint64_t{0}), nullptr);
}

TEST(MdpOutstandingTableTest, KeepsTheEarliestDeadlineFirstAndTiesInInsertionOrder) {
  outstanding_table t(16);
  const auto late = t.insert("late", t0 + 30ms);
  const auto early1 = t.insert("early1", t0 + 10ms);
  const auto middle = t.insert("middle", t0 + 20ms);
  const auto early2 = t.insert("early2", t0 + 10ms);
  const auto never = t.insert("never", outstanding_table::never);
  for (auto expected : {early1, early2, middle, late, never}) {
    EXPECT_EQ(id_of(t.oldest()), expected);
    t.erase(expected);
  }
  EXPECT_EQ(t.oldest(), nullptr);
}

TEST(MdpOutstandingTableTest, FindsTheFirstRequestSentPlainForAService) {
  outstanding_table t(16);
  const auto a1 = t.insert("a", t0 + 3ms);
  const auto b1 = t.insert("b", t0 + 2ms);
  const auto a2 = t.insert("a", t0 + 1ms);  // the earliest deadline, but sent last
  const auto a3 = t.insert("a", t0 + 1ms);  // never sent plain (it carries an id)
  EXPECT_EQ(t.oldest_plain_for("a"), nullptr) << "nothing has been sent yet";
  t.mark_sent_plain(b1);
  t.mark_sent_plain(a1);
  t.mark_sent_plain(a2);
  EXPECT_EQ(id_of(t.oldest_plain_for("b")), b1);
  EXPECT_EQ(id_of(t.oldest_plain_for("a")), a1);
  t.erase(a1);
  EXPECT_EQ(id_of(t.oldest_plain_for("a")), a2);
  t.erase(a2);
  EXPECT_EQ(t.oldest_plain_for("a"), nullptr);
  EXPECT_EQ(id_of(t.find(a3)), a3);
  EXPECT_EQ(t.oldest_plain_for("c"), nullptr);
  // A slot reused by a request sent with an id is not in the plain list any more.
  const auto a4 = t.insert("a", t0);
  EXPECT_EQ(t.oldest_plain_for("a"), nullptr);
  t.mark_sent_plain(a4);
  EXPECT_EQ(id_of(t.oldest_plain_for("a")), a4);
  t.erase(b1);
  EXPECT_EQ(t.oldest_plain_for("b"), nullptr);
}

TEST(MdpOutstandingTableTest, RefusesAnUnusableCapacity) {
  expect_error(errc::invalid_argument, [] { outstanding_table t(0); });
  expect_error(errc::invalid_argument, [] { outstanding_table t(outstanding_table::max_capacity + 1); });
  outstanding_table big(outstanding_table::max_capacity);  // grows on demand: cheap to make
  EXPECT_EQ(big.capacity(), outstanding_table::max_capacity);
}

}  // namespace
}  // namespace fabric::mdp
