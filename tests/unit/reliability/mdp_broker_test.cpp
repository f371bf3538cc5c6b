// Tests the Majordomo broker's state machine with a fake clock and a recording sink: routing,
// queues, heartbeats, purges, requeues, expiry, bounds, MMI, and hostile input.
#include "reliability/mdp_broker.hpp"

#include "reliability/mdp.hpp"
#include "broker_test_sink.hpp"

#include <fabric/error.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace fabric::mdp {
namespace {

using namespace std::chrono_literals;
using frames = std::vector<std::string>;
using time_point = broker_machine::time_point;

const std::string W = std::string(worker_header);
const std::string C = std::string(client_header);
const std::string READY = "\x01";
const std::string REQUEST = "\x02";
const std::string REPLY = "\x03";
const std::string HEARTBEAT = "\x04";
const std::string DISCONNECT = "\x05";

message make(const frames& f) {
  message m;
  for (const auto& s : f) m.push_back(s);
  return m;
}

using testing::recording_sink;
using testing::strings;

frames ready(const std::string& id, const std::string& service) {
  return {id, "", W, READY, service};
}
frames request(const std::string& client, const std::string& service, const frames& body = {"hi"}) {
  frames f{client, "", C, service};
  f.insert(f.end(), body.begin(), body.end());
  return f;
}
frames reply(const std::string& worker, const std::string& client, const frames& body = {"ok"}) {
  frames f{worker, "", W, REPLY, client, ""};
  f.insert(f.end(), body.begin(), body.end());
  return f;
}
frames to_worker(const std::string& worker, const std::string& client,
                 const frames& body = {"hi"}) {
  frames f{worker, "", W, REQUEST, client, ""};
  f.insert(f.end(), body.begin(), body.end());
  return f;
}
frames to_client(const std::string& client, const std::string& service,
                 const frames& body = {"ok"}) {
  frames f{client, "", C, service};
  f.insert(f.end(), body.begin(), body.end());
  return f;
}
frames heartbeat(const std::string& id) { return {id, "", W, HEARTBEAT}; }
// The client address a credit worker is given: the broker's 8-byte request token.
std::string token(std::uint64_t n) {
  std::string t(8, '\0');
  for (int i = 7; i >= 0; --i, n >>= 8) t[static_cast<std::size_t>(i)] = static_cast<char>(n & 0xff);
  return t;
}
frames disconnect(const std::string& id) { return {id, "", W, DISCONNECT}; }

class MdpBrokerTest : public ::testing::Test {
 protected:
  MdpBrokerTest() { options.heartbeat_interval = 1000ms; options.liveness = 3; }

  broker_machine& machine() {
    if (!machine_) machine_ = std::make_unique<broker_machine>(options, sink, now);
    return *machine_;
  }
  void in(const frames& f) { machine().on_message(make(f), now); }
  void advance(std::chrono::milliseconds d) { now += d; }
  // Runs every tick that falls due while the clock moves forward by `d`.
  void run_for(std::chrono::milliseconds d) {
    const time_point end = now + d;
    while (machine().next_tick() <= end) {
      now = machine().next_tick();
      machine().on_tick(now);
    }
    now = end;
  }
  broker_stats stats() { return machine().stats(); }

  broker_options options;
  recording_sink sink;
  time_point now{std::chrono::seconds(1000)};
  std::unique_ptr<broker_machine> machine_;
};

TEST_F(MdpBrokerTest, RequestGoesToAnIdleWorkerAndTheReplyBackToTheClient) {
  in(ready("w1", "echo"));
  EXPECT_TRUE(sink.take().empty());  // READY has no answer
  in(request("c1", "echo", {"a", "b"}));
  EXPECT_EQ(sink.take(), (std::vector<frames>{to_worker("w1", "c1", {"a", "b"})}));
  in(reply("w1", "c1", {"x", "y"}));
  EXPECT_EQ(sink.take(), (std::vector<frames>{to_client("c1", "echo", {"x", "y"})}));
  const auto s = stats();
  EXPECT_EQ(s.requests, 1U);
  EXPECT_EQ(s.replies, 1U);
  EXPECT_EQ(s.workers, 1U);
  EXPECT_EQ(s.busy_workers, 0U);
  ASSERT_EQ(s.services.size(), 1U);
  EXPECT_EQ(s.services[0].name, "echo");
  EXPECT_EQ(s.services[0].replies, 1U);
  EXPECT_EQ(s.services[0].idle_workers, 1U);
}

TEST_F(MdpBrokerTest, EmptyBodyFramesTravelBothWays) {
  in(ready("w1", "echo"));
  in(request("c1", "echo", {""}));
  EXPECT_EQ(sink.take(), (std::vector<frames>{to_worker("w1", "c1", {""})}));
  in(reply("w1", "c1", {"", ""}));
  EXPECT_EQ(sink.take(), (std::vector<frames>{to_client("c1", "echo", {"", ""})}));
}

TEST_F(MdpBrokerTest, RequestsAndRepliesWithoutABodyFrameAreDroppedAndCounted) {
  // 7/MDP: a REQUEST and a REPLY carry at least one body frame; the broker drops any other.
  in(ready("w1", "echo"));
  in(request("c1", "echo", {}));
  in(request("c1", "mmi.service", {}));
  in({"c1", "corr", "", C, "echo"});
  EXPECT_TRUE(sink.take().empty());
  EXPECT_EQ(stats().malformed, 3U);
  EXPECT_EQ(stats().requests, 0U);
  EXPECT_EQ(stats().mmi_requests, 0U);

  in(request("c1", "echo", {"x"}));
  EXPECT_EQ(sink.take(), (std::vector<frames>{to_worker("w1", "c1", {"x"})}));
  in(reply("w1", "c1", {}));
  EXPECT_TRUE(sink.take().empty()) << "a REPLY without a body frame was forwarded";
  EXPECT_EQ(stats().malformed, 4U);
  EXPECT_EQ(stats().protocol_errors, 0U);
  EXPECT_EQ(stats().busy_workers, 1U) << "the request stays with its worker";
  // A worker's REQUEST without a body breaks the grammar before it breaks the direction.
  in({"w1", "", W, REQUEST, "c1", ""});
  EXPECT_EQ(stats().malformed, 5U);
  EXPECT_EQ(stats().protocol_errors, 0U);
  EXPECT_TRUE(sink.take().empty());

  in(reply("w1", "c1", {"done"}));
  EXPECT_EQ(sink.take(), (std::vector<frames>{to_client("c1", "echo", {"done"})}));
  EXPECT_EQ(stats().replies, 1U);
  EXPECT_EQ(machine().check_books(), "");
}

TEST_F(MdpBrokerTest, ReturnStackBeforeTheDelimiterComesBackWithTheReply) {
  in(ready("w1", "echo"));
  in({"c1", "corr-7", "hop-2", "", C, "echo", "body"});
  EXPECT_EQ(sink.take(), (std::vector<frames>{to_worker("w1", "c1", {"body"})}));
  in(reply("w1", "c1", {"done"}));
  EXPECT_EQ(sink.take(), (std::vector<frames>{{"c1", "corr-7", "hop-2", "", C, "echo", "done"}}));
}

TEST_F(MdpBrokerTest, ReturnStackLongerThanTheBoundIsMalformed) {
  options.max_return_frames = 2;
  in(ready("w1", "echo"));
  in({"c1", "a", "b", "c", "", C, "echo", "body"});
  EXPECT_TRUE(sink.take().empty());
  EXPECT_EQ(stats().malformed, 1U);
  in({"c1", "a", "b", "", C, "echo", "body"});
  EXPECT_EQ(sink.take().size(), 1U);
}

TEST_F(MdpBrokerTest, RequestWaitsInTheQueueUntilAWorkerArrives) {
  in(request("c1", "echo", {"1"}));
  in(request("c2", "echo", {"2"}));
  EXPECT_TRUE(sink.take().empty());
  EXPECT_EQ(stats().queued, 2U);
  in(ready("w1", "echo"));
  EXPECT_EQ(sink.take(), (std::vector<frames>{to_worker("w1", "c1", {"1"})}));
  in(reply("w1", "c1"));
  // The reply goes out, then the freed worker takes the next queued request.
  EXPECT_EQ(sink.take(),
            (std::vector<frames>{to_client("c1", "echo"), to_worker("w1", "c2", {"2"})}));
  EXPECT_EQ(stats().queued, 0U);
}

TEST_F(MdpBrokerTest, LongestIdleWorkerGetsTheNextRequest) {
  in(ready("w1", "echo"));
  in(ready("w2", "echo"));
  in(request("c1", "echo"));
  EXPECT_EQ(sink.take()[0][0], "w1");
  in(request("c2", "echo"));
  EXPECT_EQ(sink.take()[0][0], "w2");
  in(reply("w2", "c2"));
  in(reply("w1", "c1"));
  sink.take();
  in(request("c3", "echo"));  // w2 has been idle longer than w1
  EXPECT_EQ(sink.take()[0][0], "w2");
}

TEST_F(MdpBrokerTest, RequestsAreServedInArrivalOrder) {
  for (int i = 0; i < 5; ++i) in(request("c" + std::to_string(i), "echo"));
  in(ready("w1", "echo"));
  for (int i = 0; i < 5; ++i) {
    auto out = sink.take();
    ASSERT_FALSE(out.empty());
    EXPECT_EQ(out.back(), to_worker("w1", "c" + std::to_string(i)));
    in(reply("w1", "c" + std::to_string(i)));
  }
}

TEST_F(MdpBrokerTest, WorkerThatDisconnectsMidRequestHasItsRequestRequeued) {
  in(ready("w1", "echo"));
  in(request("c1", "echo", {"job"}));
  sink.take();
  in(disconnect("w1"));
  EXPECT_TRUE(sink.take().empty());  // nothing for anyone yet: the request waits
  EXPECT_EQ(stats().queued, 1U);
  in(ready("w2", "echo"));
  EXPECT_EQ(sink.take(), (std::vector<frames>{to_worker("w2", "c1", {"job"})}));
  in(reply("w2", "c1", {"done"}));
  EXPECT_EQ(sink.take(), (std::vector<frames>{to_client("c1", "echo", {"done"})}));
  const auto s = stats();
  EXPECT_EQ(s.requeued, 1U);
  EXPECT_EQ(s.workers_departed, 1U);
}

TEST_F(MdpBrokerTest, RequeuedRequestGoesToAnotherIdleWorkerAtOnce) {
  in(ready("w1", "echo"));
  in(ready("w2", "echo"));
  in(request("c1", "echo", {"job"}));
  ASSERT_EQ(sink.take()[0][0], "w1");
  in(disconnect("w1"));
  EXPECT_EQ(sink.take(), (std::vector<frames>{to_worker("w2", "c1", {"job"})}));
}

TEST_F(MdpBrokerTest, RequeuedRequestGoesAheadOfNewerOnes) {
  in(ready("w1", "echo"));
  in(request("c1", "echo", {"old"}));
  in(request("c2", "echo", {"new"}));
  sink.take();
  in(disconnect("w1"));
  in(ready("w2", "echo"));
  EXPECT_EQ(sink.take(), (std::vector<frames>{to_worker("w2", "c1", {"old"})}));
}

TEST_F(MdpBrokerTest, SilentBusyWorkerIsPurgedAndItsRequestRequeued) {
  in(ready("w1", "echo"));
  in(ready("w2", "echo"));
  in(request("c1", "echo", {"job"}));
  ASSERT_EQ(sink.take()[0][0], "w1");
  in(request("c2", "echo", {"job2"}));
  ASSERT_EQ(sink.take()[0][0], "w2");
  // w2 answers and keeps heartbeating; w1 goes silent (SIGSTOP, crash without FIN, ...).
  for (int i = 0; i < 5; ++i) {
    run_for(1000ms);
    in(heartbeat("w2"));
  }
  in(reply("w2", "c2"));
  const auto out = sink.take();
  // w1 got a DISCONNECT when purged, and its request went to w2 once w2 was free.
  EXPECT_NE(std::find(out.begin(), out.end(), disconnect("w1")), out.end());
  EXPECT_EQ(out.back(), to_worker("w2", "c1", {"job"}));
  const auto s = stats();
  EXPECT_EQ(s.workers_expired, 1U);
  EXPECT_EQ(s.requeued, 1U);
  EXPECT_EQ(s.workers, 1U);
}

TEST_F(MdpBrokerTest, PurgesEveryExpiredWorkerNotOnlyTheFirst) {
  for (const char* id : {"a", "b", "c", "d", "e"}) in(ready(id, "svc"));
  // Only "c" stays alive; the reference stops purging at the first live worker.
  for (int i = 0; i < 4; ++i) {
    run_for(1000ms);
    in(heartbeat("c"));
  }
  const auto s = stats();
  EXPECT_EQ(s.workers, 1U);
  EXPECT_EQ(s.workers_expired, 4U);
  in(request("c1", "svc"));
  EXPECT_EQ(sink.take().back()[0], "c");
}

TEST_F(MdpBrokerTest, WorkerIsAliveWhileItTalks) {
  in(ready("w1", "echo"));
  for (int i = 0; i < 20; ++i) {
    run_for(900ms);
    in(heartbeat("w1"));
  }
  EXPECT_EQ(stats().workers, 1U);
  EXPECT_EQ(stats().workers_expired, 0U);
}

TEST_F(MdpBrokerTest, HeartbeatsGoToBusyAndIdleWorkers) {
  in(ready("idle", "echo"));
  in(ready("busy", "echo"));
  in(request("c1", "echo"));
  ASSERT_EQ(sink.take()[0][0], "idle");  // "idle" is now the busy one; names are just names
  run_for(1000ms);
  auto out = sink.take();
  EXPECT_NE(std::find(out.begin(), out.end(), heartbeat("idle")), out.end());
  EXPECT_NE(std::find(out.begin(), out.end(), heartbeat("busy")), out.end());
}

TEST_F(MdpBrokerTest, HeartbeatIsSkippedRightAfterOtherTraffic) {
  in(ready("w1", "echo"));
  run_for(990ms);
  sink.take();
  in(request("c1", "echo"));  // counts as a heartbeat to w1
  sink.take();
  run_for(20ms);  // the tick at +1000 ms comes 10 ms after the request
  for (const auto& f : sink.take()) EXPECT_NE(f, heartbeat("w1"));
}

TEST_F(MdpBrokerTest, UnreachableWorkerFoundByHeartbeatIsDroppedAndItsRequestRequeued) {
  in(ready("w1", "echo"));
  in(ready("w2", "echo"));
  in(request("c1", "echo", {"job"}));
  sink.take();
  sink.unreachable.insert("w1");
  run_for(1000ms);
  const auto out = sink.take();
  EXPECT_NE(std::find(out.begin(), out.end(), to_worker("w2", "c1", {"job"})), out.end());
  EXPECT_EQ(stats().workers_departed, 1U);
  EXPECT_EQ(stats().requeued, 1U);
}

TEST_F(MdpBrokerTest, UnreachableIdleWorkerIsSkippedOnDispatch) {
  in(ready("w1", "echo"));
  in(ready("w2", "echo"));
  sink.unreachable.insert("w1");
  in(request("c1", "echo"));
  EXPECT_EQ(sink.take(), (std::vector<frames>{to_worker("w2", "c1")}));
  EXPECT_EQ(stats().workers, 1U);
}

TEST_F(MdpBrokerTest, WorkerWithAFullQueueIsSkippedOnDispatch) {
  in(ready("w1", "echo"));
  in(ready("w2", "echo"));
  sink.full.insert("w1");
  in(request("c1", "echo"));
  EXPECT_EQ(sink.take(), (std::vector<frames>{to_worker("w2", "c1")}));
}

TEST_F(MdpBrokerTest, ReplyToAVanishedClientIsCounted) {
  in(ready("w1", "echo"));
  in(request("c1", "echo"));
  sink.take();
  sink.unreachable.insert("c1");
  in(reply("w1", "c1"));
  EXPECT_EQ(stats().undeliverable, 1U);
  EXPECT_EQ(stats().replies, 0U);
  EXPECT_EQ(stats().services[0].replies, 0U);
  in(request("c2", "echo"));  // the worker is free again
  EXPECT_EQ(sink.take(), (std::vector<frames>{to_worker("w1", "c2")}));
}

TEST_F(MdpBrokerTest, LateReplyFromAPurgedWorkerIsRefusedAndTheClientGetsOneReply) {
  in(ready("w1", "echo"));
  in(request("c1", "echo", {"job"}));
  sink.take();
  run_for(4000ms);  // w1 purged, request queued again
  sink.take();
  in(ready("w2", "echo"));
  EXPECT_EQ(sink.take(), (std::vector<frames>{to_worker("w2", "c1", {"job"})}));
  in(reply("w1", "c1", {"late"}));  // w1 wakes up
  EXPECT_EQ(sink.take(), (std::vector<frames>{disconnect("w1")}));
  in(reply("w2", "c1", {"fresh"}));
  EXPECT_EQ(sink.take(), (std::vector<frames>{to_client("c1", "echo", {"fresh"})}));
}

TEST_F(MdpBrokerTest, CreditWorkerHoldsSeveralRequestsAndRepliesInAnyOrder) {
  in({"w1", "", W, READY, "echo", "3"});
  for (int i = 1; i <= 4; ++i) in(request("c" + std::to_string(i), "echo", {std::to_string(i)}));
  // Three go out at once, each addressed by a token; the fourth waits for credit.
  EXPECT_EQ(sink.take(), (std::vector<frames>{to_worker("w1", token(1), {"1"}),
                                              to_worker("w1", token(2), {"2"}),
                                              to_worker("w1", token(3), {"3"})}));
  EXPECT_EQ(stats().in_flight, 3U);
  EXPECT_EQ(stats().busy_workers, 1U);
  in(reply("w1", token(2), {"two"}));
  EXPECT_EQ(sink.take(), (std::vector<frames>{to_client("c2", "echo", {"two"}),
                                              to_worker("w1", token(4), {"4"})}));
  in(reply("w1", token(1), {"one"}));
  in(reply("w1", token(4), {"four"}));
  in(reply("w1", token(3), {"three"}));
  EXPECT_EQ(sink.take(), (std::vector<frames>{to_client("c1", "echo", {"one"}),
                                              to_client("c4", "echo", {"four"}),
                                              to_client("c3", "echo", {"three"})}));
  EXPECT_EQ(stats().in_flight, 0U);
  in(reply("w1", token(3)));  // answered already
  EXPECT_EQ(sink.take(), (std::vector<frames>{disconnect("w1")}));
}

TEST_F(MdpBrokerTest, CreditWorkersShareRequestsRoundRobin) {
  in({"w1", "", W, READY, "echo", "2"});
  in({"w2", "", W, READY, "echo", "2"});
  for (int i = 0; i < 4; ++i) in(request("c", "echo"));
  std::vector<std::string> order;
  for (const auto& f : sink.take()) order.push_back(f[0]);
  EXPECT_EQ(order, (std::vector<std::string>{"w1", "w2", "w1", "w2"}));
}

TEST_F(MdpBrokerTest, CreditWorkerThatDiesHasAllItsRequestsRequeuedInOrder) {
  in({"w1", "", W, READY, "echo", "3"});
  for (int i = 1; i <= 3; ++i) in(request("c" + std::to_string(i), "echo", {std::to_string(i)}));
  in(request("c4", "echo", {"4"}));
  sink.take();
  in(disconnect("w1"));
  EXPECT_EQ(stats().queued, 4U);
  in(ready("w2", "echo"));
  in(reply("w2", "c1"));
  in(reply("w2", "c2"));
  in(reply("w2", "c3"));
  std::vector<std::string> bodies;
  for (const auto& f : sink.take())
    if (f[0] == "w2") bodies.push_back(f.back());
  EXPECT_EQ(bodies, (std::vector<std::string>{"1", "2", "3", "4"}));
  EXPECT_EQ(stats().requeued, 3U);
}

TEST_F(MdpBrokerTest, BadCreditFramesAreMalformed) {
  for (const char* credit : {"0", "", "1x", "-1", " 5", "+5", "123456789012345678901"})
    in({"w1", "", W, READY, "echo", credit});
  EXPECT_EQ(stats().malformed, 7U);
  EXPECT_EQ(stats().workers, 0U);
  in({"w1", "", W, READY, "echo", "100"});
  EXPECT_EQ(stats().workers, 1U);
}

TEST_F(MdpBrokerTest, CreditAboveTheCapIsClamped) {
  options.max_worker_credit = 4;
  in({"w1", "", W, READY, "echo", "99999999999999999999"});
  EXPECT_EQ(stats().workers, 1U);
  EXPECT_EQ(stats().malformed, 0U);
  for (int i = 0; i < 6; ++i) in(request("c", "echo", {std::to_string(i)}));
  EXPECT_EQ(sink.take().size(), 4U);  // the cap, not the announced credit
  EXPECT_EQ(stats().in_flight, 4U);
  EXPECT_EQ(stats().queued, 2U);
}

TEST_F(MdpBrokerTest, PoisonRequestIsDroppedAfterMaxDispatches) {
  options.max_dispatches = 2;
  in(request("c1", "echo", {"poison"}));
  in(ready("w1", "echo"));
  run_for(4000ms);  // w1 dies silently with it
  in(ready("w2", "echo"));
  run_for(4000ms);  // and so does w2
  in(ready("w3", "echo"));
  std::vector<frames> jobs;
  for (const auto& f : sink.take())
    if (f.size() > 3 && f[3] == REQUEST) jobs.push_back(f);
  EXPECT_EQ(jobs, (std::vector<frames>{to_worker("w1", "c1", {"poison"}),
                                       to_worker("w2", "c1", {"poison"})}));
  EXPECT_EQ(stats().poisoned, 1U);
  EXPECT_EQ(stats().queued, 0U);
}

TEST_F(MdpBrokerTest, DisconnectWithARequestInHandCountsTowardsPoison) {
  // A worker whose handler fails gives the request back with DISCONNECT; a request that fails
  // every worker must end, not circulate for ever.
  options.max_dispatches = 2;
  in(request("c1", "echo", {"bad"}));
  in(ready("w1", "echo"));
  in(disconnect("w1"));
  in(ready("w2", "echo"));
  in(disconnect("w2"));
  in(ready("w3", "echo"));
  EXPECT_EQ(stats().poisoned, 1U);
  EXPECT_EQ(stats().requeued, 1U);
  EXPECT_EQ(stats().queued, 0U);
}

TEST_F(MdpBrokerTest, PurgeNeverHandsARequeuedRequestToAnotherExpiringWorker) {
  // Three workers on a host that freezes; a fourth elsewhere stays alive. The busy one's request
  // must go to the live worker, not to a frozen one that is about to be purged in the same tick.
  options.max_dispatches = 2;
  in(ready("frozen-1", "svc"));
  in(request("c1", "svc", {"job"}));
  in(ready("frozen-2", "svc"));
  in(ready("frozen-3", "svc"));
  advance(10ms);
  in(ready("alive", "svc"));
  sink.take();
  for (int i = 0; i < 4; ++i) {
    run_for(1000ms);
    in(heartbeat("alive"));
  }
  std::vector<frames> jobs;
  for (const auto& f : sink.take())
    if (f.size() > 3 && f[3] == REQUEST) jobs.push_back(f);
  EXPECT_EQ(jobs, (std::vector<frames>{to_worker("alive", "c1", {"job"})}));
  EXPECT_EQ(stats().poisoned, 0U);
  EXPECT_EQ(stats().workers_expired, 3U);
}

TEST_F(MdpBrokerTest, RequeuesJobsOfUnreachableCreditWorkerWhileAnotherExpires) {
  // A credit worker holds a request and still has credit, so it waits first in the idle list;
  // its connection goes away in the tick that purges a silent worker. The silent worker's
  // request is dispatched, the send to the credit worker fails, and the credit worker's own
  // request goes back to the queue: neither request may be lost or left half-moved.
  in(ready("silent", "echo"));
  in({"credit", "", W, READY, "echo", "2"});
  in(ready("spare", "echo"));
  in(request("c1", "echo", {"r1"}));  // to silent
  in(request("c2", "echo", {"r2"}));  // to credit, which keeps one unit of credit
  in(request("c3", "echo", {"r3"}));  // to spare
  in(reply("spare", "c3"));           // spare waits again, behind credit
  sink.take();
  for (int i = 0; i < 2; ++i) {
    run_for(1000ms);
    in(heartbeat("credit"));
    in(heartbeat("spare"));
  }
  sink.unreachable.insert("credit");
  run_for(1000ms);  // silent expires; its request goes to credit (unreachable), then to spare
  ASSERT_EQ(machine().check_books(), "");
  std::vector<frames> jobs;
  for (const auto& f : sink.take())
    if (f.size() > 3 && f[3] == REQUEST) jobs.push_back(f);
  EXPECT_EQ(jobs, (std::vector<frames>{to_worker("spare", "c1", {"r1"})}));
  EXPECT_EQ(stats().queued, 1U);
  in(ready("fresh", "echo"));
  EXPECT_EQ(sink.take(), (std::vector<frames>{to_worker("fresh", "c2", {"r2"})}));
  ASSERT_EQ(machine().check_books(), "");
  in(reply("spare", "c1", {"one"}));
  in(reply("fresh", "c2", {"two"}));
  EXPECT_EQ(sink.take(), (std::vector<frames>{to_client("c1", "echo", {"one"}),
                                              to_client("c2", "echo", {"two"})}));
  const auto s = stats();
  EXPECT_EQ(s.workers_expired, 1U);
  EXPECT_EQ(s.workers_departed, 1U);
  EXPECT_EQ(s.requeued, 2U);
  EXPECT_EQ(s.replies, 3U);
  EXPECT_EQ(machine().check_books(), "");
}

TEST_F(MdpBrokerTest, DispatchSkipsAnIdleWorkerPastItsExpiry) {
  in(ready("w1", "echo"));
  advance(3500ms);  // silent past its liveness, and no tick has run yet
  in(ready("w2", "echo"));
  in(request("c1", "echo"));
  EXPECT_EQ(sink.take(), (std::vector<frames>{disconnect("w1"), to_worker("w2", "c1")}));
  EXPECT_EQ(stats().workers_expired, 1U);
  EXPECT_EQ(stats().workers, 1U);
}

TEST_F(MdpBrokerTest, QueuedRequestsExpire) {
  options.request_expiry = 2000ms;
  in(request("c1", "echo"));
  run_for(1000ms);
  in(request("c2", "echo"));
  run_for(1500ms);  // c1 is 2.5 s old, c2 1.5 s
  EXPECT_EQ(stats().expired, 1U);
  in(ready("w1", "echo"));
  EXPECT_EQ(sink.take(), (std::vector<frames>{to_worker("w1", "c2")}));
}

TEST_F(MdpBrokerTest, ServiceWithNoWorkersAndNoQueueIsForgotten) {
  options.service_idle_timeout = 5000ms;
  options.request_expiry = 1000ms;
  in(request("c1", "ghost"));
  in(ready("w1", "real"));
  for (int i = 0; i < 7; ++i) {
    run_for(1000ms);
    in(heartbeat("w1"));
  }
  const auto s = stats();
  ASSERT_EQ(s.services.size(), 1U);
  EXPECT_EQ(s.services[0].name, "real");
  EXPECT_EQ(s.services_dropped, 1U);
}

TEST_F(MdpBrokerTest, FullServiceQueueDropsNewRequests) {
  options.max_queued_per_service = 2;
  for (int i = 0; i < 5; ++i) in(request("c" + std::to_string(i), "echo"));
  auto s = stats();
  EXPECT_EQ(s.queued, 2U);
  EXPECT_EQ(s.rejected, 3U);
  EXPECT_EQ(s.services[0].rejected, 3U);
  in(ready("w1", "echo"));
  EXPECT_EQ(sink.take(), (std::vector<frames>{to_worker("w1", "c0")}));  // the oldest kept
}

TEST_F(MdpBrokerTest, TotalQueueBoundSpansServices) {
  options.max_queued_total = 3;
  for (int i = 0; i < 3; ++i) in(request("c", "s" + std::to_string(i)));
  in(request("c", "s9"));
  EXPECT_EQ(stats().queued, 3U);
  EXPECT_EQ(stats().rejected, 1U);
}

TEST_F(MdpBrokerTest, ServiceTableBoundRefusesRequestsForNewServices) {
  options.max_services = 2;
  in(request("c", "a"));
  in(request("c", "b"));
  in(request("c", "c"));
  EXPECT_EQ(stats().services.size(), 2U);
  EXPECT_EQ(stats().rejected, 1U);
  EXPECT_EQ(stats().queued, 2U);
}

TEST_F(MdpBrokerTest, ServicesWithoutWorkersNeverLockOutAWorker) {
  // A table full of names nobody serves, each holding a queued request: a real worker's READY
  // for a new service evicts the one least recently asked for, whose requests are dropped.
  options.max_services = 50;
  for (int i = 0; i < 50; ++i) in(request("c", "junk-" + std::to_string(i), {"j"}));
  advance(10ms);
  in(request("c", "junk-0", {"again"}));  // junk-0 is now the most recently asked for
  ASSERT_EQ(stats().services.size(), 50U);
  in(ready("w1", "real"));
  EXPECT_TRUE(sink.take().empty());  // accepted: no DISCONNECT
  auto s = stats();
  EXPECT_EQ(s.workers, 1U);
  EXPECT_EQ(s.workers_refused, 0U);
  EXPECT_EQ(s.services_dropped, 1U);
  EXPECT_EQ(s.evicted, 1U);
  EXPECT_EQ(s.queued, 50U);
  EXPECT_EQ(s.services.size(), 50U);
  const auto has = [&](const std::string& name) {
    return std::any_of(s.services.begin(), s.services.end(),
                       [&](const service_stats& x) { return x.name == name; });
  };
  EXPECT_TRUE(has("junk-0"));
  EXPECT_FALSE(has("junk-1"));
  EXPECT_TRUE(has("real"));
  EXPECT_EQ(machine().check_books(), "");
  in(request("c", "real", {"work"}));
  EXPECT_EQ(sink.take(), (std::vector<frames>{to_worker("w1", "c", {"work"})}));
  // A second worker of the same service needs no room; one for another service takes it again.
  in(ready("w2", "real"));
  in(ready("w3", "other"));
  EXPECT_TRUE(sink.take().empty());
  EXPECT_EQ(stats().workers, 3U);
  EXPECT_EQ(stats().evicted, 2U);
  EXPECT_LE(machine().table_probes(), 2U);
  EXPECT_EQ(machine().check_books(), "");
}

TEST_F(MdpBrokerTest, ServiceLeftWithoutWorkersBecomesEvictable) {
  options.max_services = 2;
  in(ready("w1", "a"));
  in(ready("w2", "b"));
  in(ready("w3", "c"));  // a and b are served: no room
  EXPECT_EQ(sink.take(), (std::vector<frames>{disconnect("w3")}));
  in(disconnect("w1"));  // a has no worker now
  in(ready("w4", "c"));
  EXPECT_TRUE(sink.take().empty());
  EXPECT_EQ(stats().workers, 2U);
  EXPECT_EQ(stats().services_dropped, 1U);
  EXPECT_EQ(machine().check_books(), "");
}

TEST_F(MdpBrokerTest, RefusalsDoNotScanAndAreRateLimitedPerConnection) {
  // A table full of served services: a READY for another one is refused. Refusing costs the
  // same however large the table, and one connection is answered at most once per heartbeat
  // interval however often it asks.
  options.max_services = 200;
  options.max_workers = 1000;
  for (int i = 0; i < 200; ++i) in(ready("w" + std::to_string(i), "svc-" + std::to_string(i)));
  sink.take();
  for (int i = 0; i < 1000; ++i) {
    in(ready("pest", "new-" + std::to_string(i)));
    in(disconnect("pest"));  // a raw peer may well say goodbye and try again
  }
  EXPECT_LE(machine().table_probes(), 1000U);  // scanning would be 200 per refusal
  EXPECT_EQ(sink.take(), (std::vector<frames>{disconnect("pest")}));
  auto s = stats();
  EXPECT_EQ(s.workers_refused, 1000U);
  EXPECT_EQ(s.refusals_unanswered, 999U);
  // Another connection is answered; and the first again after an interval.
  in(ready("other", "new"));
  advance(1000ms);
  in(ready("pest", "new"));
  EXPECT_EQ(sink.take(), (std::vector<frames>{disconnect("other"), disconnect("pest")}));
  EXPECT_EQ(stats().workers, 200U);
  EXPECT_EQ(machine().check_books(), "");
}

TEST_F(MdpBrokerTest, ReadyEvictsAServiceNobodyServesWhenTheTableIsFull) {
  options.max_services = 2;
  options.request_expiry = 500ms;
  in(request("c", "junk-1"));
  in(request("c", "junk-2"));
  run_for(1000ms);  // their requests expire; the names stay until service_idle_timeout
  ASSERT_EQ(stats().services.size(), 2U);
  in(ready("w1", "real"));
  EXPECT_TRUE(sink.take().empty());
  EXPECT_EQ(stats().workers, 1U);
  EXPECT_EQ(stats().services_dropped, 1U);
}

TEST_F(MdpBrokerTest, QueuedBytesAreBounded) {
  options.max_total_bytes = 100;
  in(request("c1", "echo", {std::string(40, 'a')}));
  in(request("c1", "echo", {std::string(40, 'b')}));  // envelope frames push it past 100
  EXPECT_EQ(stats().queued, 1U);
  EXPECT_EQ(stats().rejected, 1U);
  EXPECT_EQ(stats().over_budget, 1U);
  EXPECT_GT(stats().queued_bytes, 40U);
  in(ready("w1", "echo"));
  EXPECT_EQ(stats().queued_bytes, 0U);
  EXPECT_GT(stats().in_flight_bytes, 40U);
  in(request("c1", "echo", {std::string(40, 'c')}));  // the worker's request still counts
  EXPECT_EQ(stats().rejected, 2U);
  in(reply("w1", "c1"));
  in(request("c1", "echo", {std::string(40, 'c')}));  // room again once it was answered
  EXPECT_EQ(stats().rejected, 2U);
  EXPECT_EQ(machine().check_books(), "");
}

TEST_F(MdpBrokerTest, MmiRepliesToAClientThatNeverReadsAreBoundedByBytes) {
  // A client asks mmi.service with a large return stack and never reads: the replies wait in
  // the transport, and beyond its byte budget they are dropped and counted.
  options.max_peer_bytes = 10 * 1024;
  sink.unread.insert("hog");
  const std::string big(1024, 'x');
  for (int i = 0; i < 100; ++i) in({"hog", big, "", C, "mmi.service", "echo"});
  const auto s = stats();
  EXPECT_LE(s.outbound_bytes, options.max_peer_bytes);
  EXPECT_GE(s.outbound_bytes, options.max_peer_bytes - 2 * 1024);
  EXPECT_EQ(s.undeliverable + sink.take().size(), 100U);
  EXPECT_GT(s.over_budget, 80U);
  EXPECT_EQ(s.undeliverable, s.over_budget);
  // Another client is served meanwhile, and the hog again once it has read.
  in(request("other", "mmi.service", {"echo"}));
  EXPECT_EQ(sink.take(), (std::vector<frames>{to_client("other", "mmi.service", {"404"})}));
  sink.read_all("hog");
  in({"hog", big, "", C, "mmi.service", "echo"});
  EXPECT_EQ(sink.take().size(), 1U);
}

TEST_F(MdpBrokerTest, WorkerRepliesToAClientThatNeverReadsAreBoundedByBytes) {
  options.max_peer_bytes = 10 * 1024;
  options.max_total_bytes = 1 << 20;
  sink.unread.insert("hog");
  in({"w1", "", W, READY, "echo", "8"});
  const std::string big(1024, 'y');
  for (int i = 0; i < 50; ++i) {
    in(request("hog", "echo", {std::to_string(i)}));
    const auto out = sink.take();
    ASSERT_EQ(out.size(), 1U);
    in(reply("w1", out[0][4], {big}));
    sink.take();
    ASSERT_EQ(machine().check_books(), "");
  }
  const auto s = stats();
  EXPECT_LE(s.outbound_bytes, options.max_peer_bytes);
  EXPECT_GT(s.over_budget, 35U);
  EXPECT_EQ(s.undeliverable, s.over_budget);
  EXPECT_EQ(s.replies + s.undeliverable, 50U);
  EXPECT_EQ(s.in_flight, 0U);  // the worker was freed each time
}

TEST_F(MdpBrokerTest, RequestsHeldByWorkersCountTowardsTheByteBudgets) {
  // A worker with a large credit that never replies cannot make the broker hold more than the
  // budgets: per client, and in total.
  options.max_peer_bytes = 8 * 1024;
  options.max_total_bytes = 20 * 1024;
  in({"sink-hole", "", W, READY, "echo", "200"});
  const std::string big(1024, 'z');
  for (int i = 0; i < 30; ++i) in(request("c1", "echo", {big}));
  auto s = stats();
  EXPECT_LE(s.in_flight_bytes, options.max_peer_bytes);
  EXPECT_GE(s.in_flight, 6U);
  EXPECT_EQ(s.rejected, 30U - s.in_flight);
  for (int c = 2; c < 10; ++c)
    for (int i = 0; i < 30; ++i) in(request("c" + std::to_string(c), "echo", {big}));
  s = stats();
  EXPECT_LE(s.in_flight_bytes + s.queued_bytes, options.max_total_bytes);
  EXPECT_GE(s.in_flight_bytes, options.max_total_bytes - 2 * 1024);
  EXPECT_EQ(s.over_budget, s.rejected);
  EXPECT_EQ(machine().check_books(), "");
}

TEST_F(MdpBrokerTest, RequestsHeldPastRequestExpiryExpireAndLateRepliesAreDropped) {
  options.request_expiry = 2000ms;
  in({"w1", "", W, READY, "echo", "8"});
  for (int i = 1; i <= 3; ++i)
    in(request("c" + std::to_string(i), "echo", {std::string(1000, 'r')}));
  sink.take();
  EXPECT_EQ(stats().in_flight, 3U);
  for (int i = 0; i < 3; ++i) {  // the worker stays alive but never answers
    run_for(1000ms);
    in(heartbeat("w1"));
  }
  auto s = stats();
  EXPECT_EQ(s.expired, 3U);
  EXPECT_EQ(s.in_flight, 0U);
  EXPECT_EQ(s.in_flight_bytes, 0U);
  EXPECT_EQ(s.workers, 1U);
  EXPECT_EQ(s.services[0].expired, 3U);
  EXPECT_EQ(machine().check_books(), "");
  // Its reply, when it comes, is dropped and counted; the worker is not punished for it.
  sink.take();
  in(reply("w1", token(2), {"late"}));
  EXPECT_TRUE(sink.take().empty());
  s = stats();
  EXPECT_EQ(s.late_replies, 1U);
  EXPECT_EQ(s.replies, 0U);
  EXPECT_EQ(s.protocol_errors, 0U);
  EXPECT_EQ(s.workers, 1U);
  // A reply for a request it never had still is a protocol error.
  in(reply("w1", token(99)));
  EXPECT_EQ(sink.take(), (std::vector<frames>{disconnect("w1")}));
  EXPECT_EQ(machine().check_books(), "");
}

TEST_F(MdpBrokerTest, ExpiredRequestsKeepTheirPlaceInTheWorkersCredit) {
  // The worker is still busy with what it was given: it gets nothing more until it answers.
  options.request_expiry = 1500ms;
  in(ready("w1", "echo"));
  in(request("c1", "echo", {"slow"}));
  sink.take();
  for (int i = 0; i < 2; ++i) {
    run_for(1000ms);
    in(heartbeat("w1"));
  }
  EXPECT_EQ(stats().expired, 1U);
  sink.take();
  in(request("c2", "echo", {"next"}));
  EXPECT_TRUE(sink.take().empty());
  EXPECT_EQ(stats().queued, 1U);
  in(reply("w1", "c1", {"late"}));  // dropped; the worker takes the next request
  EXPECT_EQ(sink.take(), (std::vector<frames>{to_worker("w1", "c2", {"next"})}));
  EXPECT_EQ(stats().late_replies, 1U);
  EXPECT_EQ(machine().check_books(), "");
}

TEST_F(MdpBrokerTest, WorkerTableBoundAnswersReadyWithDisconnect) {
  options.max_workers = 1;
  in(ready("w1", "echo"));
  in(ready("w2", "echo"));
  EXPECT_EQ(sink.take(), (std::vector<frames>{disconnect("w2")}));
  EXPECT_EQ(stats().workers, 1U);
  EXPECT_EQ(stats().workers_refused, 1U);
  EXPECT_EQ(stats().rejected, 0U);
}

TEST_F(MdpBrokerTest, MmiServiceAnswersByLiveWorkers) {
  in(ready("w1", "echo"));
  in(request("c1", "mmi.service", {"echo"}));
  in(request("c1", "mmi.service", {"nope"}));
  in(request("c1", "ghost"));  // a service with a queue but no worker
  in(request("c1", "mmi.service", {"ghost"}));
  in(request("c1", "mmi.service", {""}));
  EXPECT_EQ(sink.take(), (std::vector<frames>{to_client("c1", "mmi.service", {"200"}),
                                              to_client("c1", "mmi.service", {"404"}),
                                              to_client("c1", "mmi.service", {"404"}),
                                              to_client("c1", "mmi.service", {"404"})}));
  EXPECT_EQ(stats().mmi_requests, 4U);
  EXPECT_EQ(stats().requests, 1U);
  EXPECT_EQ(stats().replies, 0U);
}

TEST_F(MdpBrokerTest, OtherMmiServicesAnswerNotImplemented) {
  in(request("c1", "mmi.frobnicate", {"x"}));
  in({"c1", "corr", "", C, "mmi.", "x"});
  EXPECT_EQ(sink.take(), (std::vector<frames>{to_client("c1", "mmi.frobnicate", {"501"}),
                                              {"c1", "corr", "", C, "mmi.", "501"}}));
}

TEST_F(MdpBrokerTest, MmiServicesListsServedServicesAsJson) {
  in(ready("w1", "b\"q"));
  in(ready("w2", "a"));
  in(request("c1", "ghost"));
  in(request("c1", "mmi.services"));
  EXPECT_EQ(sink.take(),
            (std::vector<frames>{to_client("c1", "mmi.services", {"200", R"(["a","b\"q"])"})}));
}

TEST_F(MdpBrokerTest, MmiStatsAnswersJson) {
  in(ready("w1", "echo"));
  in(request("c1", "echo"));
  in(request("c1", "mmi.stats"));
  const auto out = sink.take();
  ASSERT_EQ(out.size(), 2U);
  ASSERT_EQ(out[1].size(), 6U);
  EXPECT_EQ(out[1][4], "200");
  const std::string& json = out[1][5];
  EXPECT_EQ(json.front(), '{');
  EXPECT_EQ(json.back(), '}');
  EXPECT_NE(json.find("\"requests\":1"), std::string::npos) << json;
  EXPECT_NE(json.find("\"busy_workers\":1"), std::string::npos) << json;
  EXPECT_NE(json.find("{\"name\":\"echo\",\"workers\":1,\"idle_workers\":0"), std::string::npos)
      << json;
}

TEST(MdpBrokerJsonTest, EscapesControlAndInvalidBytes) {
  broker_stats s;
  s.services.push_back(service_stats{.name = std::string("a\n\x01\\\xff\xc3\xa9", 7)});
  const std::string json = to_json(s);
  // A line feed as \n, other control bytes as \u00XX, the invalid byte as U+FFFD (in UTF-8).
  EXPECT_NE(json.find(R"("name":"a\n\u0001\\)" "\xef\xbf\xbd\xc3\xa9\""), std::string::npos) << json;
}

TEST(MdpBrokerJsonTest, OnlyWellFormedUtf8PassesThrough) {
  const auto name_json = [](std::string name) {
    broker_stats s;
    s.services.push_back(service_stats{.name = std::move(name)});
    const std::string json = to_json(s);
    const auto at = json.find("\"name\":") + 7;
    return json.substr(at, json.find(",\"workers\"", at) - at);
  };
  // Each byte that is not part of a well-formed sequence becomes U+FFFD, written in UTF-8.
  const auto replaced = [](int n) {
    std::string quoted = "\"";
    for (int i = 0; i < n; ++i) quoted += "\xef\xbf\xbd";
    return quoted + "\"";
  };
  EXPECT_EQ(name_json("\xf0\x9f\x98\x80"), "\"\xf0\x9f\x98\x80\"");  // U+1F600
  EXPECT_EQ(name_json("\xed\xa0\x80"), replaced(3));      // a surrogate
  EXPECT_EQ(name_json("\xe0\x80\x80"), replaced(3));      // overlong
  EXPECT_EQ(name_json("\xf5\x80\x80\x80"), replaced(4));
  EXPECT_EQ(name_json("\xff\x80\x80"), replaced(3));
  EXPECT_EQ(name_json("\xc3"), replaced(1));  // truncated
}

TEST(MdpBrokerJsonTest, LongServiceListsAreTruncated) {
  broker_stats s;
  for (int i = 0; i < 5000; ++i)
    s.services.push_back(service_stats{.name = std::string(200, 'x') + std::to_string(i)});
  const std::string json = to_json(s);
  EXPECT_LT(json.size(), 80U * 1024U);
  EXPECT_NE(json.find("\"services_truncated\":true}"), std::string::npos);
  EXPECT_EQ(json.back(), '}');
}

TEST_F(MdpBrokerTest, LogFloodIsBudgetedPerTick) {
  options.min_log_level = log_level::warning;
  for (int i = 0; i < 1000; ++i) in(heartbeat("stranger-" + std::to_string(i)));
  EXPECT_EQ(sink.lines.size(), 100U);
  run_for(1000ms);
  ASSERT_EQ(sink.lines.size(), 101U);
  EXPECT_NE(sink.lines.back().find("900 log line(s) suppressed"), std::string::npos) << sink.lines.back();
  EXPECT_EQ(stats().log_lines_suppressed, 900U);
  EXPECT_EQ(stats().protocol_errors, 1000U);
}

TEST_F(MdpBrokerTest, ReadyForAnMmiServiceIsAnsweredWithDisconnect) {
  in(ready("w1", "mmi.service"));
  EXPECT_EQ(sink.take(), (std::vector<frames>{disconnect("w1")}));
  EXPECT_EQ(stats().workers, 0U);
  EXPECT_EQ(stats().protocol_errors, 1U);
  // The check is on the service frame, not the identity.
  in(ready("mmi.looks-odd", "echo"));
  EXPECT_TRUE(sink.take().empty());
  EXPECT_EQ(stats().workers, 1U);
}

TEST_F(MdpBrokerTest, SecondReadyDisconnectsTheWorkerAndRequeuesItsRequest) {
  in(ready("w1", "echo"));
  in(request("c1", "echo"));
  sink.take();
  in(ready("w1", "echo"));
  EXPECT_EQ(sink.take(), (std::vector<frames>{disconnect("w1")}));
  EXPECT_EQ(stats().workers, 0U);
  EXPECT_EQ(stats().queued, 1U);
}

TEST_F(MdpBrokerTest, CommandsFromUnknownWorkersAreAnsweredWithDisconnect) {
  in(heartbeat("x"));
  in(reply("y", "c1"));
  EXPECT_EQ(sink.take(), (std::vector<frames>{disconnect("x"), disconnect("y")}));
  in(disconnect("z"));  // nothing to answer
  EXPECT_TRUE(sink.take().empty());
  EXPECT_EQ(stats().protocol_errors, 2U);
}

TEST_F(MdpBrokerTest, ReplyWithoutARequestOrForAnotherClientDisconnects) {
  in(ready("w1", "echo"));
  in(reply("w1", "c1"));
  EXPECT_EQ(sink.take(), (std::vector<frames>{disconnect("w1")}));
  in(ready("w2", "echo"));
  in(request("c1", "echo"));
  sink.take();
  in(reply("w2", "c9"));
  EXPECT_EQ(sink.take(), (std::vector<frames>{disconnect("w2")}));
  EXPECT_EQ(stats().queued, 1U);  // c1's request waits for the next worker
}

TEST_F(MdpBrokerTest, RequestCommandFromAWorkerDisconnects) {
  in(ready("w1", "echo"));
  in({"w1", "", W, REQUEST, "c1", "", "x"});
  EXPECT_EQ(sink.take(), (std::vector<frames>{disconnect("w1")}));
  EXPECT_EQ(stats().workers, 0U);
}

TEST_F(MdpBrokerTest, MalformedInputIsCountedAndDropped) {
  in(ready("w1", "echo"));
  const std::string big(256, 's');
  const std::vector<frames> table = {
      {"p"},
      {"p", ""},
      {"p", "x"},
      {"p", "", "MDPC02", "echo"},
      {"p", "", "MDPC0", "echo"},
      {"p", "", "mdpc01", "echo"},
      {"p", "", C},
      {"p", "", C, ""},
      {"p", "", C, big},
      {"p", "x", "y"},
      {"p", "", W},
      {"p", "", W, ""},
      {"p", "", W, "\x01\x01"},
      {"p", "", W, "\x06"},
      {"p", "", W, "\x00"},
      {"p", "", W, "\xff"},
      {"p", "", W, READY},
      {"p", "", W, READY, ""},
      {"p", "", W, READY, big},
      {"p", "", W, READY, "echo", "extra"},
      {"p", "", W, READY, "echo", "2", "extra"},
      {"p", "", W, REPLY},
      {"p", "", W, REPLY, "c1"},
      {"p", "", W, REPLY, "c1", "not-empty"},
      {"p", "", W, REPLY, "", ""},
      {"w1", "", W, REPLY, big, ""},
      {"w1", "", W, HEARTBEAT, "extra"},
      {"w1", "", W, DISCONNECT, "extra"},
      {"w1", "", W, REQUEST, "c1"},
      {"w1", "stack", "", W, HEARTBEAT},  // workers have no return stack
      {"w1", "", "", C, "echo"},
      {"p", "", "", "", ""},
  };
  for (const auto& f : table) in(f);
  EXPECT_TRUE(sink.take().empty());
  EXPECT_EQ(stats().malformed, table.size());
  EXPECT_EQ(stats().workers, 1U);  // w1 unharmed
  in(request("c1", "echo"));
  EXPECT_EQ(sink.take(), (std::vector<frames>{to_worker("w1", "c1")}));
}

TEST_F(MdpBrokerTest, BadOptionsAreRefused) {
  auto refuses = [&](auto change) {
    broker_options o;
    change(o);
    recording_sink s;
    EXPECT_THROW(broker_machine(o, s, now), error);
  };
  refuses([](broker_options& o) { o.heartbeat_interval = 0ms; });
  refuses([](broker_options& o) { o.liveness = 0; });
  refuses([](broker_options& o) { o.request_expiry = -1ms; });
  refuses([](broker_options& o) { o.max_queued_per_service = 0; });
  refuses([](broker_options& o) { o.max_workers = 0; });
  refuses([](broker_options& o) { o.max_dispatches = 0; });
  refuses([](broker_options& o) { o.max_return_frames = 65; });
  refuses([](broker_options& o) { o.max_total_bytes = 0; });
  refuses([](broker_options& o) { o.max_peer_bytes = 0; });
  refuses([](broker_options& o) { o.max_worker_credit = 0; });
  refuses([](broker_options& o) { o.heartbeat_interval = std::chrono::hours(25); });
  refuses([](broker_options& o) { o.liveness = 1001; });
  refuses([](broker_options& o) { o.request_expiry = std::chrono::hours(24 * 31); });
  refuses([](broker_options& o) { o.service_idle_timeout = std::chrono::milliseconds::max(); });
}

TEST_F(MdpBrokerTest, LogsWorkerLifeAtInfo) {
  options.min_log_level = log_level::info;
  in(ready("w1", "echo"));
  run_for(4000ms);
  ASSERT_EQ(sink.lines.size(), 2U);
  EXPECT_NE(sink.lines[0].find("ready for 'echo'"), std::string::npos) << sink.lines[0];
  EXPECT_NE(sink.lines[1].find("expired"), std::string::npos) << sink.lines[1];
}

TEST_F(MdpBrokerTest, RandomTrafficKeepsTheBooksBalanced) {
  // Random mixes of valid and broken messages from a few peers, with ticks and unreachable
  // peers: nothing crashes, every accepted request is accounted for exactly once.
  std::mt19937 rng(20261121);
  options.max_queued_per_service = 20;
  options.request_expiry = 3000ms;
  const std::vector<std::string> peers = {"w1", "w2", "w3", "c1", "c2"};
  const std::vector<std::string> services = {"a", "b", "mmi.service", "mmi.x"};
  const std::vector<std::string> cmds = {READY, REQUEST, REPLY, HEARTBEAT, DISCONNECT, "\x09"};
  for (int step = 0; step < 20000; ++step) {
    const auto& peer = peers[rng() % peers.size()];
    switch (rng() % 8) {
      case 0:
        if (rng() % 2)
          in(ready(peer, services[rng() % 2]));
        else
          in({peer, "", W, READY, services[rng() % 2], std::to_string(1 + rng() % 4)});
        break;
      case 1:
      case 2: {
        // MMI answers come only from c1, which never becomes unreachable, so the books below
        // hold exactly: every undeliverable reply is a worker's.
        const auto& svc = services[rng() % services.size()];
        in(request(is_mmi(svc) ? "c1" : peer, svc, {std::to_string(step)}));
        break;
      }
      case 3:
        if (rng() % 2)
          in(reply(peer, peers[rng() % peers.size()]));
        else
          in(reply(peer, token(1 + rng() % 64)));
        break;
      case 4:
        in({peer, "", W, cmds[rng() % cmds.size()]});
        break;
      case 5: {
        frames f{peer};
        const auto n = rng() % 7;
        for (unsigned i = 0; i < n; ++i)
          f.push_back(rng() % 3 == 0 ? "" : (rng() % 2 ? W : C));
        in(f);
        break;
      }
      case 6:
        run_for(std::chrono::milliseconds(rng() % 1500));
        break;
      default: {
        const auto& victim = peers[rng() % peers.size()];
        if (victim == "c1") break;
        if (rng() % 2)
          sink.unreachable.insert(victim);
        else
          sink.unreachable.erase(victim);
        break;
      }
    }
    sink.sent.clear();
  }
  const auto s = stats();
  std::size_t queued = 0;
  for (const auto& svc : s.services) queued += svc.queued;
  EXPECT_EQ(queued, s.queued);
  EXPECT_LE(s.busy_workers, s.workers);
  // Every accepted request is replied to, undeliverable, expired, poisoned, queued or in hand.
  EXPECT_EQ(s.requests,
            s.replies + s.undeliverable + s.expired + s.poisoned + s.queued + s.in_flight);
  EXPECT_GT(s.replies, 5U);
  EXPECT_GT(s.requeued, 10U);
  EXPECT_GT(s.malformed, 100U);
}

}  // namespace
}  // namespace fabric::mdp
