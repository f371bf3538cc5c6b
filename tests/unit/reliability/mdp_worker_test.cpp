// Tests the Majordomo worker against a fake broker: a raw ROUTER in the test that checks every
// frame the worker sends byte by byte and answers with frames written out by hand, so these are
// also conformance tests of the worker's 7/MDP wire format. Also drives the shared liveness
// machine, as the worker configures it, with a fake clock.
#include <fabric/majordomo_worker.hpp>

#include "reliability/mdp.hpp"
#include "reliability/mdp_worker.hpp"
#include "support/support.hpp"

#include <fabric/error.hpp>
#include <fabric/router_dealer.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <exception>
#include <future>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <type_traits>
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

const std::string ready_cmd(1, '\x01');
const std::string request_cmd(1, '\x02');
const std::string reply_cmd(1, '\x03');
const std::string heartbeat_cmd(1, '\x04');
const std::string disconnect_cmd(1, '\x05');

// The fake broker: a raw ROUTER on a fresh loopback endpoint.
struct fake_broker {
  explicit fake_broker(context& ctx, transport t = transport::inproc)
      : sock(ctx, {.linger = 0ms}), endpoint(sock.bind(loopback_endpoint(t, "mdp-broker"))) {}

  // The next message as strings (frame 0 = the worker's identity); empty if none came in time,
  // which fails the test.
  strings next() {
    message m;
    if (auto r = sock.recv(m, wait_bound); !r) {
      ADD_FAILURE() << "the fake broker received nothing within " << wait_bound.count() << " ms";
      return {};
    }
    return to_strings(m);
  }

  // The next message that is not a heartbeat; heartbeats met on the way are counted.
  strings next_command(int* heartbeats = nullptr) {
    for (;;) {
      strings m = next();
      if (m.size() == 4 && m[1].empty() && m[2] == "MDPW01" && m[3] == heartbeat_cmd) {
        if (heartbeats != nullptr) ++*heartbeats;
        continue;
      }
      return m;
    }
  }

  // Reads the worker's READY and returns its identity. A non-empty `credit` is the extra frame
  // a worker with a credit above 1 announces.
  std::string expect_ready(std::string_view service, std::string_view credit = {}) {
    strings m = next_command();
    strings want{"", "MDPW01", ready_cmd, std::string(service)};
    if (!credit.empty()) want.emplace_back(credit);
    EXPECT_EQ(m.size(), want.size() + 1);
    if (m.size() != want.size() + 1) return {};
    EXPECT_EQ(strings(m.begin() + 1, m.end()), want);
    return m[0];
  }

  void send(std::string_view peer, const strings& frames) {
    message m;
    for (const auto& f : frames) m.push_back(std::string_view(f));
    auto r = sock.send_to(peer, std::move(m));
    EXPECT_TRUE(r) << r.error().message();
  }

  void send_request(std::string_view peer, std::string_view client, const strings& body) {
    strings frames{"", "MDPW01", request_cmd, std::string(client), ""};
    frames.insert(frames.end(), body.begin(), body.end());
    send(peer, frames);
  }

  router sock;
  std::string endpoint;
};

bool is_heartbeat_from(const strings& m, const std::string& peer) {
  return m == strings{peer, "", "MDPW01", heartbeat_cmd};
}

// ---------------------------------------------------------------------------------------------
// The worker against a fake broker

TEST(MdpWorkerTest, SendsExactReadyFramesOnConnect) {
  context ctx;
  fake_broker broker(ctx);
  worker w(ctx, {.broker = broker.endpoint, .service = "echo"});
  strings m = broker.next();
  ASSERT_EQ(m.size(), 5U);
  EXPECT_EQ(strings(m.begin() + 1, m.end()), (strings{"", "MDPW01", ready_cmd, "echo"}));

  // Any bytes up to 255 make a service name, NUL included.
  const std::string binary_name = std::string("a\0b", 3) + std::string(252, 'x');
  worker w2(ctx, {.broker = broker.endpoint, .service = binary_name});
  (void)broker.expect_ready(binary_name);
}

TEST(MdpWorkerTest, RoundTripsARequestAndItsReply) {
  context ctx;
  fake_broker broker(ctx);
  worker w(ctx, {.broker = broker.endpoint, .service = "echo"});
  const std::string peer = broker.expect_ready("echo");

  broker.send_request(peer, "client-7", {"hello", ""});
  auto req = w.recv(wait_bound);
  ASSERT_TRUE(req) << req.error().message();
  EXPECT_EQ(req->client, "client-7");
  EXPECT_EQ(to_strings(req->body), (strings{"hello", ""}));
  EXPECT_EQ(req->connection, 1U);
  ASSERT_TRUE(w.reply(*req, make_message("world", "")));
  EXPECT_EQ(broker.next_command(), (strings{peer, "", "MDPW01", reply_cmd, "client-7", "", "world", ""}));

  // A request without a body (7/MDP has none, but a broker may forward one) is taken; an empty
  // reply goes out as one empty frame, the least 7/MDP allows. Answered by address.
  broker.send_request(peer, "c", {});
  worker::request empty;
  ASSERT_TRUE(w.recv(empty, wait_bound));
  EXPECT_TRUE(empty.body.empty());
  ASSERT_TRUE(w.reply("c", message{}));
  EXPECT_EQ(broker.next_command(), (strings{peer, "", "MDPW01", reply_cmd, "c", "", ""}));

  EXPECT_EQ(w.stats().requests, 2U);
  EXPECT_EQ(w.stats().replies, 2U);
  worker::request none;
  EXPECT_TRUE(w.recv(none, 1ms).is(errc::timeout));
  EXPECT_TRUE(w.recv(none, 0ms).is(errc::timeout));
  expect_error(errc::invalid_argument, [&] { (void)w.reply("", make_message("x")); });
  expect_error(errc::invalid_argument, [&] { (void)w.reply(std::string(256, 'c'), make_message("x")); });
}

TEST(MdpWorkerTest, ServeSendsAnEmptyHandlerResultAsOneEmptyFrame) {
  context ctx;
  fake_broker broker(ctx);
  worker w(ctx, {.broker = broker.endpoint, .service = "sink"});
  const std::string peer = broker.expect_ready("sink");
  broker.send_request(peer, "c1", {"ignored"});
  std::atomic<bool> stop{false};
  auto serving = std::async(std::launch::async, [&] {
    return w.serve([](worker::request&) { return message{}; }, [&] { return stop.load(); }, 10ms);
  });
  EXPECT_EQ(broker.next_command(), (strings{peer, "", "MDPW01", reply_cmd, "c1", "", ""}));
  stop = true;
  auto served = serving.get();
  EXPECT_TRUE(served) << served.error().message();
  EXPECT_EQ(w.stats().replies, 1U);
}

TEST(MdpWorkerTest, HeartbeatsTheBrokerWhenIdle) {
  context ctx;
  fake_broker broker(ctx);
  // A generous liveness: a slow test thread must not make the worker give up on the broker.
  worker w(ctx, {.broker = broker.endpoint, .service = "echo", .heartbeat_interval = 50ms, .liveness = 20});
  const std::string peer = broker.expect_ready("echo");
  auto previous = steady::now();
  for (int i = 0; i < 4; ++i) {
    strings m = broker.next();
    EXPECT_TRUE(is_heartbeat_from(m, peer)) << "message " << i << " is not a heartbeat from the worker";
    const auto now = steady::now();
    if (i > 0) {
      EXPECT_GE(now - previous, 25ms) << "heartbeats must be paced by the interval";
    }
    previous = now;
    broker.send(peer, {"", "MDPW01", heartbeat_cmd});  // keep the worker's broker alive
  }
  const auto c = w.stats();
  EXPECT_GE(c.heartbeats_sent, 4U);
  EXPECT_GE(c.heartbeats_received, 2U);
  EXPECT_EQ(c.reconnects, 0U);
  EXPECT_EQ(c.broker_expiries, 0U);
}

TEST(MdpWorkerTest, KeepsHeartbeatingWhileTheApplicationHandlesALongRequest) {
  context ctx;
  fake_broker broker(ctx);
  worker w(ctx, {.broker = broker.endpoint, .service = "slow", .heartbeat_interval = 50ms, .liveness = 5});
  const std::string peer = broker.expect_ready("slow");

  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<bool> entered{false};
  std::atomic<bool> stop{false};
  std::thread app([&] {
    auto r = w.serve(
        [&](worker::request& req) {
          entered = true;
          EXPECT_EQ(released.wait_for(wait_bound), std::future_status::ready);
          return make_message("done:" + std::string(req.body.view(0)));
        },
        [&] { return stop.load(); }, 10ms);
    EXPECT_TRUE(r) << r.error().message();
  });

  broker.send_request(peer, "c1", {"job"});
  // Six heartbeats (300 ms) span twice what a broker with 7/MDP's usual liveness of 3 would wait,
  // all while the handler is blocked.
  int heartbeats = 0;
  while (heartbeats < 6) {
    strings m = broker.next();
    if (m.empty()) break;
    ASSERT_TRUE(is_heartbeat_from(m, peer)) << "expected only heartbeats while the handler runs";
    ++heartbeats;
    broker.send(peer, {"", "MDPW01", heartbeat_cmd});
  }
  EXPECT_TRUE(entered.load());
  release.set_value();
  EXPECT_EQ(broker.next_command(), (strings{peer, "", "MDPW01", reply_cmd, "c1", "", "done:job"}));
  stop = true;
  app.join();
  EXPECT_EQ(heartbeats, 6);
  EXPECT_EQ(w.stats().reconnects, 0U);
  EXPECT_EQ(w.stats().replies, 1U);
}

TEST(MdpWorkerTest, ReconnectsWithANewIdentityAfterBrokerSilence) {
  context ctx;
  fake_broker broker(ctx);
  const auto start = steady::now();
  worker w(ctx, {.broker = broker.endpoint,
                 .service = "echo",
                 .heartbeat_interval = 50ms,
                 .liveness = 3,
                 .reconnect_interval = 10ms,
                 .reconnect_interval_max = 10ms});
  const std::string first = broker.expect_ready("echo");
  int heartbeats = 0;
  strings m = broker.next_command(&heartbeats);  // the broker stays silent
  EXPECT_GE(steady::now() - start, 150ms) << "the broker is dead only after liveness intervals";
  ASSERT_EQ(m.size(), 5U);
  EXPECT_EQ(strings(m.begin() + 1, m.end()), (strings{"", "MDPW01", ready_cmd, "echo"}));
  const std::string second = m[0];
  EXPECT_NE(second, first) << "a reconnection must use a fresh socket";
  EXPECT_GE(heartbeats, 1);
  auto c = w.stats();
  EXPECT_EQ(c.broker_expiries, 1U);
  EXPECT_EQ(c.reconnects, 1U);

  // The new connection serves.
  broker.send_request(second, "c", {"x"});
  auto req = w.recv(wait_bound);
  ASSERT_TRUE(req);
  EXPECT_EQ(req->connection, 2U);
  ASSERT_TRUE(w.reply(*req, make_message("y")));
  EXPECT_EQ(broker.next_command(), (strings{second, "", "MDPW01", reply_cmd, "c", "", "y"}));
}

// Waits for a request on another thread, the way an application's serving thread does; the worker
// is handed back to the test's thread by future::get().
std::future<result<worker::request>> recv_elsewhere(worker& w) {
  return std::async(std::launch::async, [&w] { return w.recv(wait_bound); });
}

TEST(MdpWorkerTest, ReconnectsOnAFreshSocketAfterDisconnect) {
  context ctx;
  fake_broker broker(ctx);
  // Heartbeats and liveness far beyond the test's waits: only DISCONNECT can cause a new READY.
  worker w(ctx, {.broker = broker.endpoint, .service = "echo", .heartbeat_interval = 60s, .reconnect_interval = 10ms});
  const std::string first = broker.expect_ready("echo");
  auto pending = recv_elsewhere(w);
  broker.send(first, {"", "MDPW01", disconnect_cmd});
  const std::string second = broker.expect_ready("echo");
  EXPECT_NE(second, first);
  broker.send_request(second, "c", {"x"});
  auto req = pending.get();
  ASSERT_TRUE(req) << req.error().message();
  EXPECT_EQ(req->connection, 2U);
  auto c = w.stats();
  EXPECT_EQ(c.disconnects_received, 1U);
  EXPECT_EQ(c.reconnects, 1U);
  EXPECT_EQ(c.broker_expiries, 0U);
}

TEST(MdpWorkerTest, ReconnectsToTheNextBrokerOfTheFailoverList) {
  context ctx;
  fake_broker passive(ctx);
  fake_broker active(ctx);
  worker w(ctx, {.broker = passive.endpoint,
                 .failover = {active.endpoint},
                 .service = "echo",
                 .heartbeat_interval = 60s,
                 .reconnect_interval = 10ms});
  // The passive node of a pair sends it away; it registers with the other broker.
  const std::string first = passive.expect_ready("echo");
  auto pending = recv_elsewhere(w);
  passive.send(first, {"", "MDPW01", disconnect_cmd});
  const std::string second = active.expect_ready("echo");
  active.send_request(second, "c", {"x"});
  auto req = pending.get();
  ASSERT_TRUE(req) << req.error().message();
  EXPECT_EQ(req->connection, 2U);
  ASSERT_TRUE(w.reply(*req, make_message("y")));
  // Sent away again, it goes round to the first broker.
  auto next = recv_elsewhere(w);
  active.send(second, {"", "MDPW01", disconnect_cmd});
  const std::string third = passive.expect_ready("echo");
  passive.send_request(third, "c", {"z"});
  ASSERT_TRUE(next.get());
  EXPECT_EQ(w.stats().reconnects, 2U);
  fabric::testing::expect_error(errc::invalid_argument, [&] {
    worker bad(ctx, {.broker = passive.endpoint, .failover = {""}, .service = "echo"});
  });
}

TEST(MdpWorkerTest, HandlesADisconnectWhileTheApplicationIsAway) {
  context ctx;
  fake_broker broker(ctx);
  // Nobody calls recv(): the keeper reads the broker's messages at its next heartbeat.
  worker w(ctx, {.broker = broker.endpoint, .service = "echo", .heartbeat_interval = 50ms, .reconnect_interval = 10ms});
  const std::string first = broker.expect_ready("echo");
  broker.send(first, {"", "MDPW01", disconnect_cmd});
  int heartbeats = 0;
  strings m = broker.next_command(&heartbeats);
  ASSERT_EQ(m.size(), 5U);
  EXPECT_EQ(strings(m.begin() + 1, m.end()), (strings{"", "MDPW01", ready_cmd, "echo"}));
  EXPECT_NE(m[0], first);
  EXPECT_LE(heartbeats, 1) << "the DISCONNECT must be acted on within one heartbeat interval";
  EXPECT_EQ(w.stats().disconnects_received, 1U);
  EXPECT_EQ(w.stats().broker_expiries, 0U);
}

TEST(MdpWorkerTest, KeepsARequestThatArrivesWhileTheApplicationIsAway) {
  context ctx;
  fake_broker broker(ctx);
  worker w(ctx, {.broker = broker.endpoint, .service = "echo", .heartbeat_interval = 50ms, .liveness = 20});
  const std::string peer = broker.expect_ready("echo");
  broker.send_request(peer, "c", {"queued"});
  // The keeper reads what the broker sent before it heartbeats, so once a heartbeat arrives the
  // request has been taken in.
  EXPECT_TRUE(is_heartbeat_from(broker.next(), peer));
  EXPECT_EQ(w.stats().requests, 1U);
  auto req = w.recv(0ms);
  ASSERT_TRUE(req) << req.error().message();
  EXPECT_EQ(req->client, "c");
  EXPECT_EQ(to_strings(req->body), (strings{"queued"}));
  ASSERT_TRUE(w.reply(*req, make_message("done")));
  EXPECT_EQ(broker.next_command(), (strings{peer, "", "MDPW01", reply_cmd, "c", "", "done"}));
}

TEST(MdpWorkerTest, DropsAReplyToARequestFromAnEarlierConnection) {
  context ctx;
  fake_broker broker(ctx);
  worker w(ctx, {.broker = broker.endpoint,
                 .service = "echo",
                 .heartbeat_interval = 50ms,
                 .liveness = 20,
                 .reconnect_interval = 0ms});
  const std::string first = broker.expect_ready("echo");
  broker.send_request(first, "c1", {"job1"});
  auto stale = w.recv(wait_bound);
  ASSERT_TRUE(stale);
  EXPECT_EQ(stale->connection, 1U);

  // The broker sends the worker away while the application holds the request; the keeper acts.
  broker.send(first, {"", "MDPW01", disconnect_cmd});
  const std::string second = broker.expect_ready("echo");
  broker.send_request(second, "c2", {"job2"});
  // The request in hand belongs to a connection that is gone: nothing to abandon.
  auto fresh = w.recv(wait_bound);
  ASSERT_TRUE(fresh);
  EXPECT_EQ(fresh->connection, 2U);

  EXPECT_TRUE(w.reply(*stale, make_message("stale")).is(errc::peer_unreachable));
  ASSERT_TRUE(w.reply(*fresh, make_message("fresh")));
  EXPECT_EQ(broker.next_command(), (strings{second, "", "MDPW01", reply_cmd, "c2", "", "fresh"}));
  EXPECT_EQ(w.stats().replies_dropped, 1U);
  EXPECT_EQ(w.stats().replies, 1U);
  EXPECT_EQ(w.stats().requests_abandoned, 0U);
}

// Reads what the worker sends after abandoning a request on connection `old_peer`: its DISCONNECT
// there and READY from a fresh identity, in either order (they travel on two sockets). Returns the
// fresh identity; empty, with the test failed, if either is missing.
// A non-empty `credit` is the extra frame of the fresh READY.
std::string expect_abandoned(fake_broker& broker, const std::string& old_peer, std::string_view service,
                             std::string_view credit = {}) {
  strings ready{"", "MDPW01", ready_cmd, std::string(service)};
  if (!credit.empty()) ready.emplace_back(credit);
  bool disconnected = false;
  std::string fresh;
  while (!disconnected || fresh.empty()) {
    strings m = broker.next_command();
    if (m.empty()) return {};  // next() has failed the test
    if (m == strings{old_peer, "", "MDPW01", disconnect_cmd} && !disconnected) {
      disconnected = true;
    } else if (m.size() == ready.size() + 1 && m[0] != old_peer && fresh.empty() &&
               strings(m.begin() + 1, m.end()) == ready) {
      fresh = m[0];
    } else {
      ADD_FAILURE() << "unexpected message from the worker, " << m.size() << " frames";
      return {};
    }
  }
  return fresh;
}

TEST(MdpWorkerTest, AbandonsTheRequestWhenTheHandlerThrowsSoTheBrokerCanRequeueIt) {
  context ctx;
  fake_broker broker(ctx);
  // Heartbeats far beyond the test's waits: only abandoning the request can end the connection.
  worker w(ctx, {.broker = broker.endpoint, .service = "echo", .heartbeat_interval = 60s});
  const std::string first = broker.expect_ready("echo");
  broker.send_request(first, "c1", {"boom"});
  auto failing = std::async(std::launch::async, [&w] {
    return w.serve([](worker::request&) -> message { throw std::runtime_error("handler bug"); },
                   [] { return false; }, 10ms);
  });
  EXPECT_THROW((void)failing.get(), std::runtime_error);

  const std::string second = expect_abandoned(broker, first, "echo");
  ASSERT_FALSE(second.empty());
  EXPECT_EQ(w.stats().requests_abandoned, 1U);
  EXPECT_EQ(w.stats().reconnects, 1U);

  // The worker is free again: the fresh connection gets and answers the next request.
  broker.send_request(second, "c2", {"fine"});
  std::atomic<bool> stop{false};
  auto serving = std::async(std::launch::async, [&] {
    return w.serve([](worker::request& req) { return std::move(req.body); }, [&] { return stop.load(); }, 10ms);
  });
  EXPECT_EQ(broker.next_command(), (strings{second, "", "MDPW01", reply_cmd, "c2", "", "fine"}));
  stop = true;
  auto served = serving.get();
  EXPECT_TRUE(served) << served.error().message();
  EXPECT_EQ(w.stats().requests_abandoned, 1U);
}

TEST(MdpWorkerTest, AbandonsAnUnansweredRequestWhenTheNextOneIsAskedFor) {
  context ctx;
  fake_broker broker(ctx);
  worker w(ctx, {.broker = broker.endpoint, .service = "echo", .heartbeat_interval = 60s});
  const std::string first = broker.expect_ready("echo");
  broker.send_request(first, "c1", {"one"});
  auto one = w.recv(wait_bound);
  ASSERT_TRUE(one);

  auto pending = recv_elsewhere(w);  // without answering `one`
  const std::string second = expect_abandoned(broker, first, "echo");
  ASSERT_FALSE(second.empty());
  broker.send_request(second, "c2", {"two"});
  auto two = pending.get();
  ASSERT_TRUE(two) << two.error().message();
  EXPECT_EQ(two->connection, 2U);
  EXPECT_EQ(to_strings(two->body), (strings{"two"}));

  EXPECT_TRUE(w.reply(*one, make_message("late")).is(errc::peer_unreachable));
  ASSERT_TRUE(w.reply(*two, make_message("2")));
  EXPECT_EQ(broker.next_command(), (strings{second, "", "MDPW01", reply_cmd, "c2", "", "2"}));

  // An answered request is not abandoned: asking for the next one sends nothing.
  worker::request none;
  EXPECT_TRUE(w.recv(none, 1ms).is(errc::timeout));
  message nothing;
  EXPECT_TRUE(broker.sock.try_recv(nothing).is(errc::would_block));
  const auto c = w.stats();
  EXPECT_EQ(c.requests_abandoned, 1U);
  EXPECT_EQ(c.replies_dropped, 1U);
  EXPECT_EQ(c.replies, 1U);
  EXPECT_EQ(c.reconnects, 1U);
}

TEST(MdpWorkerTest, AbandonGivesBackOnlyTheRequestInHandAndOnlyOnce) {
  context ctx;
  fake_broker broker(ctx);
  worker w(ctx, {.broker = broker.endpoint, .service = "echo", .heartbeat_interval = 60s});
  const std::string first = broker.expect_ready("echo");
  w.abandon();  // nothing in hand: nothing happens

  broker.send_request(first, "c1", {"one"});
  auto one = w.recv(wait_bound);
  ASSERT_TRUE(one);
  w.abandon();
  const std::string second = expect_abandoned(broker, first, "echo");
  ASSERT_FALSE(second.empty());
  w.abandon();  // already given back
  EXPECT_TRUE(w.reply(*one, make_message("late")).is(errc::peer_unreachable));

  // The next message on the wire is the answer to a new request: no second DISCONNECT before it.
  broker.send_request(second, "c2", {"two"});
  auto two = w.recv(wait_bound);
  ASSERT_TRUE(two);
  ASSERT_TRUE(w.reply(two->client, make_message("2")));
  EXPECT_EQ(broker.next_command(), (strings{second, "", "MDPW01", reply_cmd, "c2", "", "2"}));
  w.abandon();  // answered by address: nothing in hand
  message nothing;
  EXPECT_TRUE(broker.sock.try_recv(nothing).is(errc::would_block));
  EXPECT_EQ(w.stats().requests_abandoned, 1U);
  EXPECT_EQ(w.stats().reconnects, 1U);
}

TEST(MdpWorkerTest, WaitsBeforeReconnectingWhenItAbandonsRequestAfterRequest) {
  context ctx;
  fake_broker broker(ctx);
  worker w(ctx, {.broker = broker.endpoint,
                 .service = "echo",
                 .heartbeat_interval = 60s,
                 .reconnect_interval = 200ms,
                 .reconnect_interval_max = 200ms});
  std::string peer = broker.expect_ready("echo");
  // The first request given up is replaced at once; with none answered since, the next waits.
  for (int i = 0; i < 2; ++i) {
    broker.send_request(peer, "c", {std::to_string(i)});
    auto req = w.recv(wait_bound);
    ASSERT_TRUE(req);
    const auto given_up = steady::now();
    w.abandon();
    const std::string fresh = expect_abandoned(broker, peer, "echo");
    ASSERT_FALSE(fresh.empty());
    if (i == 1) {
      EXPECT_GE(steady::now() - given_up, 200ms);
    }
    peer = fresh;
  }
  EXPECT_EQ(w.stats().requests_abandoned, 2U);
  EXPECT_EQ(w.stats().reconnects, 2U);
}

TEST(MdpWorkerTest, AnswersALongRequestThroughABrokerThatIsSilentWhileTheWorkerIsBusy) {
  context ctx;
  fake_broker broker(ctx);
  // The broker is declared dead after 150 ms of silence, unless the worker is busy.
  worker w(ctx, {.broker = broker.endpoint,
                 .service = "slow",
                 .heartbeat_interval = 50ms,
                 .liveness = 3,
                 .reconnect_interval = 10ms,
                 .reconnect_interval_max = 10ms});
  const std::string peer = broker.expect_ready("slow");

  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<bool> stop{false};
  std::thread app([&] {
    auto r = w.serve(
        [&](worker::request& req) {
          EXPECT_EQ(released.wait_for(wait_bound), std::future_status::ready);
          return make_message("done:" + std::string(req.body.view(0)));
        },
        [&] { return stop.load(); }, 10ms);
    EXPECT_TRUE(r) << r.error().message();
  });

  // Like 7/MDP's reference broker, this one heartbeats only idle workers: it says nothing while
  // the handler runs for five times the worker's liveness span, and watches the worker's
  // heartbeats all along on the same connection.
  broker.send_request(peer, "c1", {"job"});
  const auto start = steady::now();
  int heartbeats = 0;
  while (steady::now() - start < 750ms) {
    strings m = broker.next();
    if (m.empty()) break;
    if (!is_heartbeat_from(m, peer)) {
      ADD_FAILURE() << "expected only heartbeats from the busy worker, got " << m.size() << " frames";
      break;
    }
    ++heartbeats;
  }
  const auto answered = steady::now();
  release.set_value();
  EXPECT_EQ(broker.next_command(), (strings{peer, "", "MDPW01", reply_cmd, "c1", "", "done:job"}));
  EXPECT_GE(heartbeats, 5);
  EXPECT_EQ(w.stats().broker_expiries, 0U);
  EXPECT_EQ(w.stats().reconnects, 0U);

  // Idle again and the broker still silent: its silence counts from the answer, not before.
  strings m = broker.next_command();
  EXPECT_GE(steady::now() - answered, 150ms);
  ASSERT_EQ(m.size(), 5U);
  EXPECT_EQ(strings(m.begin() + 1, m.end()), (strings{"", "MDPW01", ready_cmd, "slow"}));
  EXPECT_NE(m[0], peer);
  stop = true;
  app.join();
  EXPECT_EQ(w.stats().broker_expiries, 1U);
  EXPECT_EQ(w.stats().replies, 1U);
}

TEST(MdpWorkerTest, RegistersEvenWhenItsSocketOptionsAskForImmediate) {
  context ctx;
  fake_broker broker(ctx, transport::tcp);  // a connection that takes a while to complete
  worker_options o{.broker = broker.endpoint, .service = "echo", .heartbeat_interval = 50ms, .liveness = 20};
  o.socket.immediate = true;
  worker w(ctx, o);
  // READY comes first, before any heartbeat, on the first connection.
  strings m = broker.next();
  ASSERT_EQ(m.size(), 5U);
  EXPECT_EQ(strings(m.begin() + 1, m.end()), (strings{"", "MDPW01", ready_cmd, "echo"}));
  const std::string peer = m[0];
  broker.send_request(peer, "c", {"x"});
  auto req = w.recv(wait_bound);
  ASSERT_TRUE(req);
  ASSERT_TRUE(w.reply(*req, make_message("y")));
  EXPECT_EQ(broker.next_command(), (strings{peer, "", "MDPW01", reply_cmd, "c", "", "y"}));
  EXPECT_EQ(w.stats().reconnects, 0U);
  EXPECT_EQ(w.stats().disconnects_received, 0U);
}

TEST(MdpWorkerTest, DropsRequestsTheKeeperHeldWhenTheirConnectionIsLost) {
  context ctx;
  fake_broker broker(ctx);
  worker w(ctx, {.broker = broker.endpoint,
                 .service = "echo",
                 .heartbeat_interval = 50ms,
                 .liveness = 20,
                 .reconnect_interval = 10ms});
  const std::string first = broker.expect_ready("echo");
  broker.send_request(first, "c1", {"requeued-by-the-broker"});
  // The keeper reads what the broker sent before it heartbeats: the request is held for the
  // application once a heartbeat arrives.
  EXPECT_TRUE(is_heartbeat_from(broker.next(), first));
  EXPECT_EQ(w.stats().requests, 1U);

  // The broker sends the worker away; it requeues the request elsewhere.
  broker.send(first, {"", "MDPW01", disconnect_cmd});
  const std::string second = broker.expect_ready("echo");
  EXPECT_NE(second, first);
  EXPECT_EQ(w.stats().requests_dropped, 1U);
  worker::request req;
  EXPECT_TRUE(w.recv(req, 0ms).is(errc::timeout)) << "a request from a lost connection was handed out";

  broker.send_request(second, "c2", {"fresh"});
  ASSERT_TRUE(w.recv(req, wait_bound));
  EXPECT_EQ(req.client, "c2");
  EXPECT_EQ(req.connection, 2U);
  ASSERT_TRUE(w.reply(req, make_message("ok")));
  EXPECT_EQ(broker.next_command(), (strings{second, "", "MDPW01", reply_cmd, "c2", "", "ok"}));
  EXPECT_EQ(w.stats().requests_abandoned, 0U);
}

// Makes the next `n` attempts of any worker to open a socket fail with EMFILE, for one scope.
class injected_open_failures {
 public:
  explicit injected_open_failures(int n) { detail::worker_open_failures.store(n); }
  ~injected_open_failures() { detail::worker_open_failures.store(0); }
  injected_open_failures(const injected_open_failures&) = delete;
  injected_open_failures& operator=(const injected_open_failures&) = delete;
};

void expect_emfile(std::exception_ptr e) {
  ASSERT_TRUE(e) << "no failure recorded";
  try {
    std::rethrow_exception(e);
  } catch (const error& err) {
    EXPECT_EQ(err.code(), std::error_code(EMFILE, zmq_category())) << err.what();
  } catch (...) {
    ADD_FAILURE() << "not a fabric::error";
  }
}

TEST(MdpWorkerTest, KeeperRetriesASocketItCannotCreateInsteadOfGivingUp) {
  context ctx;
  fake_broker broker(ctx);
  worker w(ctx, {.broker = broker.endpoint,
                 .service = "echo",
                 .heartbeat_interval = 50ms,
                 .liveness = 20,
                 .reconnect_interval = 10ms,
                 .reconnect_interval_max = 10ms});
  const std::string first = broker.expect_ready("echo");
  EXPECT_FALSE(w.failure());
  std::string second;
  {
    injected_open_failures out_of_descriptors(2);
    // Nobody calls recv(): the keeper acts on the DISCONNECT, fails twice to open a socket, and
    // succeeds on its next attempt.
    broker.send(first, {"", "MDPW01", disconnect_cmd});
    second = broker.expect_ready("echo");
    EXPECT_EQ(detail::worker_open_failures.load(), 0);
  }
  EXPECT_NE(second, first);
  expect_emfile(w.failure());

  // Not closed: the new connection serves.
  broker.send_request(second, "c", {"x"});
  auto req = w.recv(wait_bound);
  ASSERT_TRUE(req) << req.error().message();
  EXPECT_EQ(req->connection, 2U);
  ASSERT_TRUE(w.reply(*req, make_message("y")));
  EXPECT_EQ(broker.next_command(), (strings{second, "", "MDPW01", reply_cmd, "c", "", "y"}));
  EXPECT_EQ(w.stats().reconnects, 1U);
}

TEST(MdpWorkerTest, RecvThrowsWhenItCannotCreateASocketAndALaterCallTriesAgain) {
  context ctx;
  fake_broker broker(ctx);
  // Heartbeats far beyond the test's waits: the keeper stays asleep, so recv() meets the failure.
  worker w(ctx, {.broker = broker.endpoint, .service = "echo", .heartbeat_interval = 60s, .reconnect_interval = 10ms});
  const std::string first = broker.expect_ready("echo");
  // A request makes the connection healthy, so a DISCONNECT is followed by an attempt at once.
  broker.send_request(first, "c", {"x"});
  auto req = w.recv(wait_bound);
  ASSERT_TRUE(req);
  ASSERT_TRUE(w.reply(*req, make_message("y")));
  EXPECT_EQ(broker.next_command(), (strings{first, "", "MDPW01", reply_cmd, "c", "", "y"}));
  {
    injected_open_failures out_of_descriptors(1);
    auto pending = recv_elsewhere(w);
    broker.send(first, {"", "MDPW01", disconnect_cmd});
    EXPECT_THROW((void)pending.get(), error);
  }
  // The next attempt comes after the back-off, from the keeper or from recv().
  auto next = recv_elsewhere(w);
  const std::string second = broker.expect_ready("echo");
  EXPECT_NE(second, first);
  broker.send_request(second, "c2", {"x2"});
  auto req2 = next.get();
  ASSERT_TRUE(req2) << req2.error().message();
  EXPECT_EQ(req2->connection, 2U);
}

TEST(MdpWorkerTest, CountsAndDropsMalformedBrokerFrames) {
  context ctx;
  fake_broker broker(ctx);
  worker w(ctx, {.broker = broker.endpoint, .service = "echo", .heartbeat_interval = 60s});
  const std::string peer = broker.expect_ready("echo");
  const std::vector<strings> garbage = {
      {"MDPW01", request_cmd, "c", "", "no leading delimiter"},
      {"", "MDPW02", heartbeat_cmd},
      {"", "MDPW01", std::string(1, '\x09')},
      {"", "MDPW01", ""},
      {"", "MDPW01", "\x02\x02", "c", "", "two-byte command"},
      {"", "MDPW01", heartbeat_cmd, "extra"},
      {"", "MDPW01", request_cmd, "c"},
      {"", "MDPW01", request_cmd, "c", "not empty", "x"},
      {"", "MDPW01", request_cmd, "", "", "empty client"},
      {"", "MDPW01", ready_cmd, "echo"},
      {"", "MDPW01", reply_cmd, "c", "", "x"},
      {"", "MDPW01"},
      {""},
      strings(300, "x"),  // more frames than socket_options::max_frames
  };
  for (const auto& g : garbage) broker.send(peer, g);
  broker.send_request(peer, "c", {"ok"});
  auto req = w.recv(wait_bound);
  ASSERT_TRUE(req);
  EXPECT_EQ(to_strings(req->body), (strings{"ok"}));
  const auto c = w.stats();
  EXPECT_EQ(c.malformed, garbage.size());
  EXPECT_EQ(c.requests, 1U);
  EXPECT_EQ(c.reconnects, 0U);
}

TEST(MdpWorkerTest, SendsDisconnectWhenDestroyed) {
  context ctx;
  fake_broker broker(ctx);
  std::string peer;
  {
    worker w(ctx, {.broker = broker.endpoint, .service = "echo"});
    peer = broker.expect_ready("echo");
  }
  EXPECT_EQ(broker.next_command(), (strings{peer, "", "MDPW01", disconnect_cmd}));
}

TEST(MdpWorkerTest, RefusesBadServiceNamesAndOptions) {
  context ctx;
  fake_broker broker(ctx);
  const std::string ep = broker.endpoint;
  expect_error(errc::invalid_argument, [&] { worker w(ctx, {.broker = ep, .service = ""}); });
  expect_error(errc::invalid_argument, [&] { worker w(ctx, {.broker = ep, .service = std::string(256, 's')}); });
  expect_error(errc::invalid_argument, [&] { worker w(ctx, {.broker = ep, .service = "mmi.echo"}); });
  expect_error(errc::invalid_argument, [&] { worker w(ctx, {.broker = ep, .service = "mmi."}); });
  expect_error(errc::invalid_argument, [&] { worker w(ctx, {.service = "echo"}); });
  expect_error(errc::invalid_argument, [&] { worker w(ctx, {.broker = ep, .service = "echo", .heartbeat_interval = 0ms}); });
  expect_error(errc::invalid_argument, [&] { worker w(ctx, {.broker = ep, .service = "echo", .liveness = 0}); });
  expect_error(errc::invalid_argument, [&] {
    worker w(ctx, {.broker = ep, .service = "echo", .reconnect_interval = 100ms, .reconnect_interval_max = 10ms});
  });
  expect_error(errc::invalid_argument, 
      [&] { worker w(ctx, {.broker = ep, .service = "echo", .socket = {.routing_id = std::string(235, 'r')}}); });
  EXPECT_THROW(worker w(ctx, {.broker = "nonsense://x", .service = "echo"}), error);
  message none;
  EXPECT_TRUE(broker.sock.try_recv(none).is(errc::would_block)) << "a refused worker sent nothing";
}

TEST(MdpWorkerTest, ReportsClosedWhenTheContextShutsDown) {
  context ctx;
  fake_broker broker(ctx);
  worker w(ctx, {.broker = broker.endpoint, .service = "echo"});
  (void)broker.expect_ready("echo");
  ctx.shutdown();
  worker::request req;
  EXPECT_TRUE(w.recv(req, wait_bound).is(errc::closed));
  EXPECT_TRUE(w.reply("c", make_message("x")).is(errc::closed));
  EXPECT_EQ(w.stats().replies_dropped, 1U) << "every reply not sent is counted";
}

static_assert(std::is_nothrow_destructible_v<worker>, "a worker's destructor must never throw");

TEST(MdpWorkerTest, WorksOverTcpUnderARoutingIdPrefix) {
  context ctx;
  fake_broker broker(ctx, transport::tcp);
  worker w(ctx, {.broker = broker.endpoint, .service = "echo", .socket = {.routing_id = "w"}});
  const std::string peer = broker.expect_ready("echo");
  EXPECT_EQ(peer, "w/1");
  broker.send_request(peer, "c", {"tcp"});
  auto req = w.recv(wait_bound);
  ASSERT_TRUE(req);
  ASSERT_TRUE(w.reply(*req, make_message("ok")));
  EXPECT_EQ(broker.next_command(), (strings{peer, "", "MDPW01", reply_cmd, "c", "", "ok"}));
}

// ---------------------------------------------------------------------------------------------
// The worker with a credit (fabric's broker extension): several requests in hand at once

// The 8-byte opaque token fabric's broker puts in the client frame for a credit worker.
std::string token(char n) { return std::string(7, '\0') + n; }

TEST(MdpWorkerTest, AnnouncesItsCreditAndHoldsSeveralRequestsAnsweredInAnyOrder) {
  context ctx;
  fake_broker broker(ctx);
  worker w(ctx, {.broker = broker.endpoint, .service = "echo", .heartbeat_interval = 60s, .credit = 4});
  const std::string peer = broker.expect_ready("echo", "4");
  ASSERT_FALSE(peer.empty());

  for (char n = 1; n <= 3; ++n) broker.send_request(peer, token(n), {std::string(1, static_cast<char>('0' + n))});
  std::vector<worker::request> held;
  for (char n = 1; n <= 3; ++n) {
    auto req = w.recv(wait_bound);
    ASSERT_TRUE(req) << req.error().message();
    EXPECT_EQ(req->client, token(n));
    EXPECT_EQ(to_strings(req->body), (strings{std::string(1, static_cast<char>('0' + n))}));
    EXPECT_EQ(req->connection, 1U);
    held.push_back(std::move(*req));
  }
  // Three unanswered requests under a credit of four: nothing was given back.
  message nothing;
  EXPECT_TRUE(broker.sock.try_recv(nothing).is(errc::would_block));

  for (auto it = held.rbegin(); it != held.rend(); ++it) {
    ASSERT_TRUE(w.reply(*it, make_message("re" + to_strings(it->body).at(0))));
  }
  EXPECT_EQ(broker.next_command(), (strings{peer, "", "MDPW01", reply_cmd, token(3), "", "re3"}));
  EXPECT_EQ(broker.next_command(), (strings{peer, "", "MDPW01", reply_cmd, token(2), "", "re2"}));
  EXPECT_EQ(broker.next_command(), (strings{peer, "", "MDPW01", reply_cmd, token(1), "", "re1"}));

  // All answered: asking for more gives nothing back.
  worker::request none;
  EXPECT_TRUE(w.recv(none, 1ms).is(errc::timeout));
  EXPECT_TRUE(broker.sock.try_recv(nothing).is(errc::would_block));
  const auto c = w.stats();
  EXPECT_EQ(c.requests, 3U);
  EXPECT_EQ(c.replies, 3U);
  EXPECT_EQ(c.requests_abandoned, 0U);
  EXPECT_EQ(c.reconnects, 0U);
}

TEST(MdpWorkerTest, AbandonsAllItsRequestsWhenAskedForOneMoreThanItsCredit) {
  context ctx;
  fake_broker broker(ctx);
  worker w(ctx, {.broker = broker.endpoint, .service = "echo", .heartbeat_interval = 60s, .credit = 2});
  const std::string first = broker.expect_ready("echo", "2");
  ASSERT_FALSE(first.empty());
  broker.send_request(first, token(1), {"one"});
  broker.send_request(first, token(2), {"two"});
  auto one = w.recv(wait_bound);
  ASSERT_TRUE(one);
  auto two = w.recv(wait_bound);
  ASSERT_TRUE(two);

  auto pending = recv_elsewhere(w);  // a third, with both unanswered
  const std::string second = expect_abandoned(broker, first, "echo", "2");
  ASSERT_FALSE(second.empty());
  broker.send_request(second, token(3), {"three"});
  auto three = pending.get();
  ASSERT_TRUE(three) << three.error().message();
  EXPECT_EQ(three->connection, 2U);
  EXPECT_EQ(three->client, token(3));

  EXPECT_TRUE(w.reply(*one, make_message("late")).is(errc::peer_unreachable));
  EXPECT_TRUE(w.reply(*two, make_message("late")).is(errc::peer_unreachable));
  ASSERT_TRUE(w.reply(*three, make_message("3")));
  EXPECT_EQ(broker.next_command(), (strings{second, "", "MDPW01", reply_cmd, token(3), "", "3"}));
  const auto c = w.stats();
  EXPECT_EQ(c.requests_abandoned, 2U);
  EXPECT_EQ(c.replies_dropped, 2U);
  EXPECT_EQ(c.replies, 1U);
  EXPECT_EQ(c.reconnects, 1U);
}

TEST(MdpWorkerTest, AbandonGivesBackEveryRequestInHandButNotTheAnsweredOnes) {
  context ctx;
  fake_broker broker(ctx);
  worker w(ctx, {.broker = broker.endpoint, .service = "echo", .heartbeat_interval = 60s, .credit = 3});
  const std::string first = broker.expect_ready("echo", "3");
  ASSERT_FALSE(first.empty());
  for (char n = 1; n <= 3; ++n) broker.send_request(first, token(n), {"x"});
  std::vector<worker::request> held;
  for (int i = 0; i < 3; ++i) {
    auto req = w.recv(wait_bound);
    ASSERT_TRUE(req);
    held.push_back(std::move(*req));
  }
  ASSERT_TRUE(w.reply(held[1].client, make_message("done")));  // by address
  EXPECT_EQ(broker.next_command(), (strings{first, "", "MDPW01", reply_cmd, token(2), "", "done"}));

  w.abandon();
  const std::string second = expect_abandoned(broker, first, "echo", "3");
  ASSERT_FALSE(second.empty());
  w.abandon();  // already given back
  message nothing;
  EXPECT_TRUE(broker.sock.try_recv(nothing).is(errc::would_block));
  EXPECT_EQ(w.stats().requests_abandoned, 2U);
  EXPECT_EQ(w.stats().reconnects, 1U);
}

TEST(MdpWorkerTest, RefusesACreditOutOfRange) {
  context ctx;
  fake_broker broker(ctx);
  const std::string ep = broker.endpoint;
  expect_error(errc::invalid_argument, [&] { worker w(ctx, {.broker = ep, .service = "echo", .credit = 0}); });
  expect_error(errc::invalid_argument, [&] { worker w(ctx, {.broker = ep, .service = "echo", .credit = 1025}); });
  worker w(ctx, {.broker = ep, .service = "echo", .credit = 1024});
  (void)broker.expect_ready("echo", "1024");
}

// ---------------------------------------------------------------------------------------------
// The shared liveness machine (core/liveness.hpp) as the worker configures it, on a fake clock.
// The rules every protocol shares are tested with the machine; these are the worker's settings:
// 7/MDP heartbeats, only on a quiet connection, and busy while a request is in hand.

using liveness = fabric::detail::liveness;
using time_point = fabric::detail::time_point;
const time_point t0 = time_point{} + std::chrono::hours(1);

worker_options timing(std::chrono::milliseconds initial = 100ms, std::chrono::milliseconds max = 800ms) {
  return {.broker = "inproc://unused",
          .service = "echo",
          .heartbeat_interval = 1000ms,
          .liveness = 3,
          .reconnect_interval = initial,
          .reconnect_interval_max = max};
}

// Records what the machine does; opening always succeeds.
class recording_sink final : public fabric::detail::machine_sink {
 public:
  result<void> send(fabric::detail::port, message&& m) override {
    sent.push_back(to_strings(m));
    m.clear();
    return {};
  }
  void close(fabric::detail::port) noexcept override { ++closes; }
  result<void> open(fabric::detail::port) override {
    ++opens;
    return {};
  }

  std::vector<strings> sent;
  std::size_t closes = 0;
  std::size_t opens = 0;
};

class MdpWorkerLivenessTest : public ::testing::Test {
 protected:
  enum class action { none, heartbeat, close, open };

  // The machine the worker runs for `o`, its first connection up at t0.
  liveness& make(const worker_options& o = timing()) {
    machine_ = std::make_unique<liveness>(detail::worker_liveness(o), sink_, worker_heartbeat, "mdp::worker");
    machine_->opened(t0);
    return *machine_;
  }

  // The one thing an on_tick() at `now` did (with a back-off, closing and reopening never
  // happen in one tick).
  action tick(time_point now) {
    const auto sent = sink_.sent.size();
    const auto closes = sink_.closes;
    const auto opens = sink_.opens;
    machine_->on_tick(now);
    const int things = int(sink_.sent.size() > sent) + int(sink_.closes > closes) + int(sink_.opens > opens);
    EXPECT_LE(things, 1) << "more than one thing in one tick";
    if (sink_.sent.size() > sent) return action::heartbeat;
    if (sink_.closes > closes) return action::close;
    if (sink_.opens > opens) return action::open;
    return action::none;
  }

  recording_sink sink_;
  std::unique_ptr<liveness> machine_;
};

TEST_F(MdpWorkerLivenessTest, RunsTheSharedMachineWithTheWorkersOptions) {
  const auto s = detail::worker_liveness(timing(200ms, 900ms));
  EXPECT_EQ(s.heartbeat, 1000ms);
  EXPECT_EQ(s.liveness, 3U);
  EXPECT_EQ(s.reconnect_initial, 200ms);
  EXPECT_EQ(s.reconnect_max, 900ms);
  EXPECT_EQ(s.heartbeats, liveness::cadence::when_quiet);
  EXPECT_EQ(s.on, fabric::detail::port::main);
}

TEST_F(MdpWorkerLivenessTest, HeartbeatsOnlyAfterAnIntervalWithNothingSent) {
  auto& m = make();
  EXPECT_EQ(m.next_tick(), t0 + 1000ms);
  EXPECT_EQ(tick(t0 + 999ms), action::none);
  m.sent(t0 + 500ms);  // a reply postpones the heartbeat
  m.on_message(t0 + 500ms, true);
  EXPECT_EQ(tick(t0 + 1000ms), action::none);
  EXPECT_EQ(m.next_tick(), t0 + 1500ms);
  EXPECT_EQ(tick(t0 + 1500ms), action::heartbeat);
  EXPECT_EQ(tick(t0 + 1500ms), action::none);  // counted as sent
  EXPECT_EQ(m.next_tick(), t0 + 2500ms);
  // A 7/MDP HEARTBEAT, from a DEALER: the delimiter by hand.
  EXPECT_EQ(sink_.sent, (std::vector<strings>{{"", "MDPW01", heartbeat_cmd}}));
}

TEST_F(MdpWorkerLivenessTest, DeclaresTheBrokerDeadAfterLivenessSilentIntervals) {
  auto& m = make();
  EXPECT_EQ(tick(t0 + 1000ms), action::heartbeat);
  EXPECT_EQ(tick(t0 + 2000ms), action::heartbeat);
  EXPECT_EQ(m.next_tick(), t0 + 3000ms);
  EXPECT_EQ(tick(t0 + 2999ms), action::none);
  EXPECT_EQ(tick(t0 + 3000ms), action::close);
  EXPECT_FALSE(m.is_open());
  EXPECT_EQ(m.next_tick(), t0 + 3100ms);  // after the initial back-off
  EXPECT_EQ(tick(t0 + 3099ms), action::none);
  EXPECT_EQ(tick(t0 + 3100ms), action::open);
  EXPECT_TRUE(m.is_open());
}

TEST_F(MdpWorkerLivenessTest, ABusyWorkerKeepsHeartbeatingThroughBrokerSilence) {
  auto& m = make();
  m.on_message(t0 + 100ms, true);  // the request
  m.busy(true, t0 + 100ms);
  EXPECT_EQ(m.next_tick(), t0 + 1000ms);
  auto now = t0;
  for (int i = 1; i <= 10; ++i) {  // ten silent intervals, over three liveness spans
    now = t0 + i * 1000ms;
    EXPECT_EQ(m.next_tick(), now);
    EXPECT_EQ(tick(now), action::heartbeat) << "interval " << i;
    EXPECT_EQ(tick(now), action::none);
  }
  // Answered: the silence counts from now.
  m.sent(now + 500ms);
  m.busy(false, now + 500ms);
  EXPECT_EQ(tick(now + 500ms), action::none);
  EXPECT_EQ(tick(now + 1500ms), action::heartbeat);
  EXPECT_EQ(tick(now + 2500ms), action::heartbeat);
  EXPECT_EQ(tick(now + 3499ms), action::none);
  EXPECT_EQ(tick(now + 3500ms), action::close);
}

}  // namespace
}  // namespace fabric::mdp
