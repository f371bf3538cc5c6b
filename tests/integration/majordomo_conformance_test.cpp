// 7/MDP and 8/MMI conformance spoken frame by frame over tcp with raw cppzmq sockets. Of fabric's
// broker (no fabric client or worker code involved): every command of both sub-protocols,
// heartbeats, DISCONNECT handling, MMI, requeue after a worker dies, and hostile input. Of
// fabric's clients and worker, against a raw ROUTER that plays a plain 7/MDP broker: what they
// send must be what 7/MDP allows, with their default options.
#include <fabric/context.hpp>
#include <fabric/error.hpp>
#include <fabric/majordomo.hpp>
#include <fabric/majordomo_client.hpp>
#include <fabric/majordomo_worker.hpp>
#include <fabric/message.hpp>

#include "support/raw_frames.hpp"
#include "support/support.hpp"

#include <gtest/gtest.h>
#include <zmq.hpp>

#include <chrono>
#include <future>
#include <optional>
#include <string>
#include <vector>

namespace fabric::mdp {
namespace {

using namespace std::chrono_literals;
using frames = std::vector<std::string>;
using fabric::testing::expect_error;
using fabric::testing::wait_bound;

const std::string W = "MDPW01";
const std::string C = "MDPC01";

void send(zmq::socket_t& s, const frames& f) { fabric::testing::send_frames(s, f); }

// The next message, or nothing within `timeout`.
std::optional<frames> recv(zmq::socket_t& s, std::chrono::milliseconds timeout = wait_bound) {
  return fabric::testing::recv_frames(s, timeout);
}

// The next message that is not a HEARTBEAT (workers see those at any time).
std::optional<frames> recv_skipping_heartbeats(zmq::socket_t& s,
                                               std::chrono::milliseconds timeout = wait_bound) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    auto m = recv(s, left);
    if (!m || *m != frames{"", W, "\x04"}) return m;
  }
}

class MajordomoConformanceTest : public ::testing::Test {
 protected:
  MajordomoConformanceTest() {
    options.endpoints = {"tcp://127.0.0.1:*"};
    options.heartbeat_interval = 100ms;
    options.liveness = 3;
  }
  void start() {
    broker_ = std::make_unique<broker>(ctx, options);
    endpoint = broker_->endpoints().at(0);
  }
  zmq::socket_t dealer(const std::string& id = {}) {
    zmq::socket_t s(raw, zmq::socket_type::dealer);
    s.set(zmq::sockopt::linger, 0);
    if (!id.empty()) s.set(zmq::sockopt::routing_id, id);
    s.connect(endpoint);
    return s;
  }
  // A raw worker that has registered for `service`.
  zmq::socket_t worker(const std::string& service, const std::string& id = {}) {
    auto s = dealer(id);
    send(s, {"", W, "\x01", service});
    return s;
  }
  broker& the_broker() { return *broker_; }
  // Waits until the broker has `n` workers registered (READY has no answer to wait on).
  void await_workers(std::size_t n) {
    const auto deadline = std::chrono::steady_clock::now() + wait_bound;
    while (broker_->stats().workers != n) {
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "workers never registered";
      std::this_thread::yield();
    }
  }

  broker_options options;
  context ctx;
  zmq::context_t raw;
  std::string endpoint;
  std::unique_ptr<broker> broker_;
};

TEST_F(MajordomoConformanceTest, DealerClientRequestAndReplyFramesAreExact) {
  start();
  auto w = worker("echo");
  await_workers(1);
  auto c = dealer("client-1");
  send(c, {"", C, "echo", "hello", "world"});
  auto req = recv_skipping_heartbeats(w);
  ASSERT_TRUE(req);
  EXPECT_EQ(*req, (frames{"", W, "\x02", "client-1", "", "hello", "world"}));
  send(w, {"", W, "\x03", "client-1", "", "HELLO", "WORLD"});
  auto rep = recv(c);
  ASSERT_TRUE(rep);
  EXPECT_EQ(*rep, (frames{"", C, "echo", "HELLO", "WORLD"}));
}

TEST_F(MajordomoConformanceTest, ReqClientWorksAsIn7Mdp) {
  start();
  auto w = worker("echo");
  await_workers(1);
  zmq::socket_t c(raw, zmq::socket_type::req);
  c.set(zmq::sockopt::linger, 0);
  c.connect(endpoint);
  send(c, {C, "echo", "ping"});  // REQ adds the empty delimiter itself
  auto req = recv_skipping_heartbeats(w);
  ASSERT_TRUE(req);
  ASSERT_EQ(req->size(), 6U);
  send(w, {"", W, "\x03", (*req)[3], "", "pong"});
  auto rep = recv(c);
  ASSERT_TRUE(rep);
  EXPECT_EQ(*rep, (frames{C, "echo", "pong"}));
}

TEST_F(MajordomoConformanceTest, CorrelationFramesBeforeTheDelimiterComeBack) {
  start();
  auto w = worker("echo");
  await_workers(1);
  auto c = dealer();
  for (int i = 0; i < 3; ++i) send(c, {"id-" + std::to_string(i), "", C, "echo", std::to_string(i)});
  for (int i = 0; i < 3; ++i) {
    auto req = recv_skipping_heartbeats(w);
    ASSERT_TRUE(req);
    EXPECT_EQ(req->back(), std::to_string(i));
    send(w, {"", W, "\x03", (*req)[3], "", "r" + std::to_string(i)});
    auto rep = recv(c);
    ASSERT_TRUE(rep);
    EXPECT_EQ(*rep, (frames{"id-" + std::to_string(i), "", C, "echo", "r" + std::to_string(i)}));
  }
}

TEST_F(MajordomoConformanceTest, BrokerHeartbeatsAnIdleWorker) {
  start();
  auto w = worker("echo");
  auto hb = recv(w);
  ASSERT_TRUE(hb);
  EXPECT_EQ(*hb, (frames{"", W, "\x04"}));
}

TEST_F(MajordomoConformanceTest, BrokerHeartbeatsABusyWorker) {
  start();
  auto w = worker("echo");
  await_workers(1);
  auto c = dealer();
  send(c, {"", C, "echo", "slow"});
  auto req = recv_skipping_heartbeats(w);
  ASSERT_TRUE(req);
  // While the request is in hand, heartbeats keep coming (and ours keep it alive).
  for (int i = 0; i < 3; ++i) {
    auto hb = recv(w);
    ASSERT_TRUE(hb);
    EXPECT_EQ(*hb, (frames{"", W, "\x04"}));
    send(w, {"", W, "\x04"});
  }
  send(w, {"", W, "\x03", (*req)[3], "", "done"});
  auto rep = recv(c);
  ASSERT_TRUE(rep);
  EXPECT_EQ(rep->back(), "done");
}

TEST_F(MajordomoConformanceTest, SilentWorkerIsPurgedWithDisconnectAndItsRequestRequeued) {
  start();
  auto silent = worker("echo", "silent");
  await_workers(1);
  auto c = dealer();
  send(c, {"", C, "echo", "job"});
  ASSERT_TRUE(recv_skipping_heartbeats(silent));
  auto alive = worker("echo", "alive");
  await_workers(2);
  // `alive` heartbeats; `silent` never answers, so it is purged and the job moves to `alive`.
  std::optional<frames> got;
  const auto deadline = std::chrono::steady_clock::now() + wait_bound;
  while (!got && std::chrono::steady_clock::now() < deadline) {
    auto m = recv(alive, 50ms);
    if (m && *m == frames{"", W, "\x04"}) send(alive, {"", W, "\x04"});
    else if (m) got = m;
  }
  ASSERT_TRUE(got);
  EXPECT_EQ(got->back(), "job");
  // The purged worker was told so.
  bool told = false;
  while (auto m = recv(silent, 200ms)) told = told || *m == frames{"", W, "\x05"};
  EXPECT_TRUE(told);
  EXPECT_GE(the_broker().stats().workers_expired, 1U);
}

TEST_F(MajordomoConformanceTest, WorkerThatVanishesMidRequestLosesNothing) {
  options.heartbeat_interval = 2000ms;  // the closed connection is noticed before any expiry
  start();
  auto doomed = std::make_unique<zmq::socket_t>(worker("echo", "doomed"));
  await_workers(1);
  auto c = dealer();
  send(c, {"", C, "echo", "precious"});
  ASSERT_TRUE(recv_skipping_heartbeats(*doomed));
  doomed.reset();  // the process dies: the connection closes, no DISCONNECT is sent
  auto heir = worker("echo", "heir");
  auto req = recv_skipping_heartbeats(heir, 10s);
  ASSERT_TRUE(req) << "the request was lost with its worker";
  EXPECT_EQ(req->back(), "precious");
  send(heir, {"", W, "\x03", (*req)[3], "", "saved"});
  auto rep = recv(c);
  ASSERT_TRUE(rep);
  EXPECT_EQ(rep->back(), "saved");
}

TEST_F(MajordomoConformanceTest, WorkerDisconnectIsHonouredAndLaterCommandsRefused) {
  start();
  auto w = worker("echo", "w");
  await_workers(1);
  send(w, {"", W, "\x05"});
  await_workers(0);
  send(w, {"", W, "\x04"});  // a heartbeat from a worker the broker no longer knows
  auto m = recv_skipping_heartbeats(w);
  ASSERT_TRUE(m);
  EXPECT_EQ(*m, (frames{"", W, "\x05"}));
}

TEST_F(MajordomoConformanceTest, SecondReadyIsAnsweredWithDisconnect) {
  start();
  auto w = worker("echo");
  await_workers(1);
  send(w, {"", W, "\x01", "echo"});
  auto m = recv_skipping_heartbeats(w);
  ASSERT_TRUE(m);
  EXPECT_EQ(*m, (frames{"", W, "\x05"}));
}

TEST_F(MajordomoConformanceTest, ReadyForAnMmiServiceIsAnsweredWithDisconnect) {
  start();
  auto w = worker("mmi.service");
  auto m = recv(w);
  ASSERT_TRUE(m);
  EXPECT_EQ(*m, (frames{"", W, "\x05"}));
  EXPECT_EQ(the_broker().stats().workers, 0U);
}

TEST_F(MajordomoConformanceTest, MmiAnswersServiceLookups) {
  start();
  auto w = worker("echo");
  await_workers(1);
  auto c = dealer();
  send(c, {"", C, "mmi.service", "echo"});
  EXPECT_EQ(recv(c), (frames{"", C, "mmi.service", "200"}));
  send(c, {"", C, "mmi.service", "nobody"});
  EXPECT_EQ(recv(c), (frames{"", C, "mmi.service", "404"}));
  send(c, {"", C, "mmi.version", ""});
  EXPECT_EQ(recv(c), (frames{"", C, "mmi.version", "501"}));
  send(c, {"", C, "mmi.services", ""});
  EXPECT_EQ(recv(c), (frames{"", C, "mmi.services", "200", R"(["echo"])"}));
  send(c, {"", C, "mmi.stats", ""});
  auto stats = recv(c);
  ASSERT_TRUE(stats);
  ASSERT_EQ(stats->size(), 5U);
  EXPECT_EQ((*stats)[3], "200");
  EXPECT_EQ((*stats)[4].front(), '{');
}

TEST_F(MajordomoConformanceTest, RequestsWaitForAWorkerAndExpire) {
  options.request_expiry = 300ms;
  start();
  auto c = dealer();
  send(c, {"", C, "late", "too-old"});
  // Wait for the expiry through the stats instead of a sleep.
  const auto deadline = std::chrono::steady_clock::now() + wait_bound;
  while (the_broker().stats().expired == 0) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline);
    std::this_thread::yield();
  }
  send(c, {"", C, "late", "fresh"});
  auto w = worker("late");
  auto req = recv_skipping_heartbeats(w);
  ASSERT_TRUE(req);
  EXPECT_EQ(req->back(), "fresh");
}

TEST_F(MajordomoConformanceTest, HostileFrameSequencesAreCountedAndTheBrokerServesOn) {
  start();
  auto w = worker("echo");
  await_workers(1);
  auto evil = dealer();
  const std::vector<frames> hostile = {
      {"x"}, {"", ""}, {"", "MDPC01"}, {"", "MDPW01"}, {"", "MDPW01", ""}, {"", "MDPW01", "\x07"},
      {"", "MDPW01", "\x01"}, {"", "MDPC01", std::string(300, 'a'), "x"}, {"", "MDPX01", "s"},
      {"", "MDPW01", "\x03", "nobody"}, {"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"},
  };
  for (const auto& f : hostile) send(evil, f);
  auto c = dealer();
  send(c, {"", C, "echo", "still-there"});
  auto req = recv_skipping_heartbeats(w);
  ASSERT_TRUE(req);
  send(w, {"", W, "\x03", (*req)[3], "", "yes"});
  EXPECT_EQ(recv(c), (frames{"", C, "echo", "yes"}));
  EXPECT_EQ(the_broker().stats().malformed, hostile.size());
}

TEST_F(MajordomoConformanceTest, TooManyFramesAreDroppedByTheSocketAndCounted) {
  options.socket.max_frames = 8;
  start();
  auto c = dealer();
  frames big{"", C, "echo"};
  for (int i = 0; i < 20; ++i) big.push_back("x");
  send(c, big);
  send(c, {"", C, "mmi.service", "echo"});
  EXPECT_EQ(recv(c), (frames{"", C, "mmi.service", "404"}));
  EXPECT_EQ(the_broker().stats().malformed, 1U);
}

TEST_F(MajordomoConformanceTest, StopIsCleanAndBounded) {
  start();
  auto w = worker("echo");
  await_workers(1);
  EXPECT_TRUE(the_broker().stop(2s));
  EXPECT_FALSE(the_broker().running());
  EXPECT_FALSE(the_broker().failure());
  EXPECT_THROW(the_broker().stats(), error);
}

TEST_F(MajordomoConformanceTest, BadOptionsThrowFromTheConstructor) {
  options.liveness = 0;
  EXPECT_THROW(start(), error);
  options.liveness = 3;
  options.endpoints.clear();
  EXPECT_THROW(start(), error);
  options.endpoints = {"tcp://256.0.0.1:1"};
  EXPECT_ANY_THROW(start());
}

// ---------------------------------------------------------------------------------------------
// Strict in what fabric sends: 7/MDP has no room for frames before the delimiter of a plain
// client, and every REQUEST and REPLY carries at least one body frame.

// A raw ROUTER standing in for a plain 7/MDP broker (the reference one): it knows nothing of
// fabric's extensions and answers 8/MMI as 8/MMI says.
class PlainMdpBrokerTest : public ::testing::Test {
 protected:
  PlainMdpBrokerTest() : router(raw, zmq::socket_type::router) {
    router.set(zmq::sockopt::linger, 0);
    router.bind("tcp://127.0.0.1:*");
    endpoint = router.get(zmq::sockopt::last_endpoint);
  }

  // The next client message that is not an 8/MMI request, each of those answered on the way as
  // the reference broker does ("501" for anything but mmi.service). Every message must be a
  // well-formed 7/MDP client REQUEST: identity | "" | "MDPC01" | service | body (1 or more).
  std::optional<frames> next_request() {
    for (;;) {
      auto m = recv(router);
      if (!m) return m;
      EXPECT_GE(m->size(), 5U) << "a 7/MDP REQUEST has at least one body frame";
      if (m->size() < 4) return m;
      EXPECT_EQ((*m)[1], "") << "a 7/MDP client sends nothing before the empty frame";
      EXPECT_EQ((*m)[2], C);
      if ((*m)[1] != "" || !(*m)[3].starts_with("mmi.")) return m;
      send(router, {(*m)[0], "", C, (*m)[3], (*m)[3] == "mmi.service" ? "404" : "501"});
    }
  }

  context ctx;
  zmq::context_t raw;
  zmq::socket_t router;
  std::string endpoint;
};

TEST_F(PlainMdpBrokerTest, AsyncClientWithDefaultOptionsSpeaksPlainMdp) {
  async_client c(ctx, {.broker = endpoint});
  auto first = c.send("echo", make_message("hello"));
  auto second = c.send("echo", make_message("again"));
  ASSERT_TRUE(first && second);
  // The client is read on its own thread while this one plays the broker: requests sent before
  // the broker has answered the probe go out once recv() has read that answer.
  auto replies = std::async(std::launch::async, [&] {
    std::vector<async_client::reply> out(2);
    for (auto& r : out)
      if (!c.recv(r, wait_bound)) r.status = async_client::reply_status::expired;
    return out;
  });
  for (const char* body : {"hello", "again"}) {
    auto req = next_request();
    ASSERT_TRUE(req);
    EXPECT_EQ(*req, (frames{(*req)[0], "", C, "echo", body}));
    send(router, {(*req)[0], "", C, "echo", std::string(body) + "!"});
  }
  const auto got = replies.get();
  ASSERT_EQ(got[0].status, async_client::reply_status::ok);
  ASSERT_EQ(got[1].status, async_client::reply_status::ok);
  EXPECT_EQ(got[0].id, *first);
  EXPECT_EQ(std::string(got[0].body.view(0)), "hello!");
  EXPECT_EQ(got[1].id, *second);
  EXPECT_EQ(std::string(got[1].body.view(0)), "again!");
  EXPECT_EQ(c.outstanding(), 0U);
  EXPECT_FALSE(c.correlating());
}

TEST_F(PlainMdpBrokerTest, ClientsRefuseARequestWithNoBody) {
  client sync(ctx, {.broker = endpoint, .timeout = wait_bound, .retries = 0});
  async_client async(ctx, {.broker = endpoint});
  expect_error(errc::invalid_argument, [&] { (void)sync.request("echo", message{}); });
  expect_error(errc::invalid_argument, [&] { (void)async.send("echo", message{}); });
  EXPECT_EQ(async.outstanding(), 0U);
  // Nothing went out: the first request the broker sees is the next good one.
  auto answer = std::async(std::launch::async, [&] { return sync.request("echo", make_message("")); });
  auto req = next_request();
  ASSERT_TRUE(req);
  EXPECT_EQ(*req, (frames{(*req)[0], "", C, "echo", ""}));
  send(router, {(*req)[0], "", C, "echo", ""});
  EXPECT_TRUE(answer.get());
}

TEST_F(PlainMdpBrokerTest, WorkerRepliesWithAtLeastOneBodyFrame) {
  worker w(ctx, {.broker = endpoint, .service = "echo"});
  auto ready = recv(router);
  ASSERT_TRUE(ready);
  ASSERT_EQ(ready->size(), 5U);
  const std::string peer = (*ready)[0];
  send(router, {peer, "", W, "\x02", "client-1", "", "x"});
  auto req = w.recv(wait_bound);
  ASSERT_TRUE(req) << req.error().message();
  ASSERT_TRUE(w.reply(*req, message{}));
  auto rep = recv(router);
  while (rep && rep->size() == 4 && (*rep)[3] == "\x04") rep = recv(router);  // heartbeats
  ASSERT_TRUE(rep);
  EXPECT_EQ(*rep, (frames{peer, "", W, "\x03", "client-1", "", ""}));
}

TEST_F(MajordomoConformanceTest, ARequestWithNoBodyIsDroppedAndCounted) {
  start();
  auto w = worker("echo");
  await_workers(1);
  auto c = dealer();
  send(c, {"", C, "echo"});
  send(c, {"", C, "echo", "x"});
  auto req = recv_skipping_heartbeats(w);
  ASSERT_TRUE(req);
  EXPECT_EQ(req->back(), "x") << "a REQUEST without a body frame was forwarded";
  EXPECT_EQ(the_broker().stats().malformed, 1U);
  EXPECT_EQ(the_broker().stats().requests, 1U);
}

TEST_F(MajordomoConformanceTest, AReplyWithNoBodyIsDroppedAndCounted) {
  start();
  auto w = worker("echo");
  await_workers(1);
  auto c = dealer();
  send(c, {"", C, "echo", "x"});
  auto req = recv_skipping_heartbeats(w);
  ASSERT_TRUE(req);
  send(w, {"", W, "\x03", (*req)[3], ""});
  send(w, {"", W, "\x03", (*req)[3], "", "ok"});
  auto rep = recv(c);
  ASSERT_TRUE(rep);
  EXPECT_EQ(*rep, (frames{"", C, "echo", "ok"})) << "a REPLY without a body frame was forwarded";
  EXPECT_EQ(the_broker().stats().malformed, 1U);
  EXPECT_EQ(the_broker().stats().protocol_errors, 0U);
}

}  // namespace
}  // namespace fabric::mdp
