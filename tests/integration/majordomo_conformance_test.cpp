// 7/MDP and 8/MMI conformance of fabric's broker, spoken frame by frame over tcp with raw cppzmq
// sockets (no fabric client or worker code involved): every command of both sub-protocols,
// heartbeats, DISCONNECT handling, MMI, requeue after a worker dies, and hostile input.
#include <fabric/context.hpp>
#include <fabric/majordomo.hpp>

#include "support/raw_frames.hpp"
#include "support/support.hpp"

#include <gtest/gtest.h>
#include <zmq.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace fabric::mdp {
namespace {

using namespace std::chrono_literals;
using frames = std::vector<std::string>;
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
  send(c, {"", C, "mmi.services"});
  EXPECT_EQ(recv(c), (frames{"", C, "mmi.services", "200", R"(["echo"])"}));
  send(c, {"", C, "mmi.stats"});
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

}  // namespace
}  // namespace fabric::mdp
