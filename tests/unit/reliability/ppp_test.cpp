// Tests the 6/PPP queue machine with a fake clock and a recording sink: worker registration,
// LRU dispatch, heartbeating of every worker, purging of every expired worker, redelivery,
// the bounded request queue and malformed input. The worker's liveness and back-off are the
// shared machine's, tested in tests/unit/core/liveness_test.cpp with 6/PPP's settings.
#include "reliability/ppp.hpp"

#include <fabric/error.hpp>

#include "support/support.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace fabric::ppp {
namespace {

using namespace std::chrono_literals;
using namespace std::string_literals;
using frames = std::vector<std::string>;

// Raw protocol input and output, frame by frame (tests/support/support.hpp).
message make(const frames& parts) { return testing::message_of(parts); }
frames frames_of(const message& m) { return testing::to_strings(m); }

const std::string ready = "\x01";
const std::string heartbeat = "\x02";

// Records what the machine sends; workers and clients can be made unreachable.
class recording_sink : public detail::machine_sink {
 public:
  struct sent {
    std::string worker;
    frames msg;
  };

  result<void> send(port to, message&& m) override {
    if (to == port::backend) {
      const std::string worker(view(m[0]));
      if (unreachable_workers.count(worker) != 0) return errc::peer_unreachable;
      frames f = frames_of(m);
      f.erase(f.begin());
      to_workers.push_back({worker, std::move(f)});
    } else {
      if (!clients_reachable) return errc::peer_unreachable;
      to_clients.push_back(frames_of(m));
    }
    m.clear();
    return {};
  }

  // Requests (not heartbeats) sent to `worker`, in order.
  std::vector<frames> requests_to(const std::string& worker) const {
    std::vector<frames> out;
    for (const auto& s : to_workers)
      if (s.worker == worker && s.msg != frames{heartbeat}) out.push_back(s.msg);
    return out;
  }
  std::size_t heartbeats_to(const std::string& worker) const {
    std::size_t n = 0;
    for (const auto& s : to_workers)
      if (s.worker == worker && s.msg == frames{heartbeat}) ++n;
    return n;
  }
  void clear() {
    to_workers.clear();
    to_clients.clear();
  }

  std::vector<sent> to_workers;
  std::vector<frames> to_clients;
  std::set<std::string> unreachable_workers;
  bool clients_reachable = true;
};

class PppQueueTest : public ::testing::Test {
 protected:
  static queue_options base_options() {
    queue_options o;
    o.heartbeat_interval = 1000ms;
    o.liveness = 3;
    return o;
  }

  void make_machine(const queue_options& o) { machine_ = std::make_unique<queue_machine>(o, sink_, now_); }
  queue_machine& q() {
    if (!machine_) make_machine(base_options());
    return *machine_;
  }

  void worker_says(const std::string& id, const frames& parts) {
    message m = make(parts);
    m.push_front(make_frame(id));
    q().on_message(port::backend, std::move(m), now_);
  }
  void client_says(const frames& parts) { q().on_message(port::main, make(parts), now_); }
  void tick() { q().on_tick(now_); }
  void advance(std::chrono::milliseconds d) { now_ += d; }

  // A request from client `c` with content `body`.
  void request(const std::string& c, const std::string& body) { client_says({c, "", body}); }
  // The reply worker `w` gives to client `c`.
  void reply(const std::string& w, const std::string& c, const std::string& body) {
    worker_says(w, {c, "", body});
  }

  time_point now_ = time_point{} + 1h;
  recording_sink sink_;
  std::unique_ptr<queue_machine> machine_;
};

TEST_F(PppQueueTest, RegistersWorkerOnReady) {
  worker_says("w1", {ready});
  EXPECT_TRUE(q().knows("w1"));
  EXPECT_EQ(q().idle_count(), 1u);
  EXPECT_EQ(q().stats().workers_registered, 1u);
  EXPECT_EQ(q().stats().workers_idle, 1u);
}

TEST_F(PppQueueTest, HandsRequestToFreeWorkerWithClientAddressStack) {
  worker_says("w1", {ready});
  client_says({"client-a", "seq", "", "body-1", "body-2"});
  ASSERT_EQ(sink_.requests_to("w1").size(), 1u);
  EXPECT_EQ(sink_.requests_to("w1")[0], (frames{"client-a", "seq", "", "body-1", "body-2"}));
  EXPECT_TRUE(q().is_busy("w1"));
  EXPECT_EQ(q().stats().requests_dispatched, 1u);
}

TEST_F(PppQueueTest, DispatchesToLeastRecentlyUsedWorker) {
  worker_says("a", {ready});
  worker_says("b", {ready});
  EXPECT_EQ(q().idle_order(), (std::vector<std::string>{"a", "b"}));
  request("c1", "r1");
  request("c2", "r2");
  EXPECT_EQ(sink_.requests_to("a").size(), 1u);
  EXPECT_EQ(sink_.requests_to("b").size(), 1u);
  reply("b", "c2", "x");  // b is free first, so it has been idle longest
  reply("a", "c1", "y");
  EXPECT_EQ(q().idle_order(), (std::vector<std::string>{"b", "a"}));
  request("c3", "r3");
  EXPECT_EQ(sink_.requests_to("b").size(), 2u);
  EXPECT_EQ(sink_.requests_to("a").size(), 1u);
}

TEST_F(PppQueueTest, QueuesRequestsUntilAWorkerIsReady) {
  request("c1", "r1");
  request("c2", "r2");
  EXPECT_EQ(q().queued_count(), 2u);
  EXPECT_EQ(q().stats().queued, 2u);
  worker_says("w", {ready});
  ASSERT_EQ(sink_.requests_to("w").size(), 1u);
  EXPECT_EQ(sink_.requests_to("w")[0], (frames{"c1", "", "r1"}));
  reply("w", "c1", "done-1");
  ASSERT_EQ(sink_.requests_to("w").size(), 2u);
  EXPECT_EQ(sink_.requests_to("w")[1], (frames{"c2", "", "r2"}));
  EXPECT_EQ(q().queued_count(), 0u);
}

TEST_F(PppQueueTest, ForwardsReplyToClientAndFreesWorker) {
  worker_says("w", {ready});
  client_says({"c1", "", "ping"});
  worker_says("w", {"c1", "", "pong", "more"});
  ASSERT_EQ(sink_.to_clients.size(), 1u);
  EXPECT_EQ(sink_.to_clients[0], (frames{"c1", "", "pong", "more"}));
  EXPECT_FALSE(q().is_busy("w"));
  EXPECT_EQ(q().stats().replies_forwarded, 1u);
  EXPECT_EQ(q().stats().replies_unmatched, 0u);
}

TEST_F(PppQueueTest, HeartbeatsEveryWorkerIdleAndBusy) {
  worker_says("a", {ready});
  worker_says("b", {ready});
  request("c", "long job");
  ASSERT_TRUE(q().is_busy("a"));
  ASSERT_FALSE(q().is_busy("b"));
  advance(1000ms);
  tick();
  EXPECT_EQ(sink_.heartbeats_to("a"), 1u);
  EXPECT_EQ(sink_.heartbeats_to("b"), 1u);
  EXPECT_EQ(q().stats().heartbeats_sent, 2u);
}

TEST_F(PppQueueTest, SendsNoHeartbeatBeforeTheInterval) {
  worker_says("w", {ready});
  advance(999ms);
  tick();
  EXPECT_EQ(sink_.heartbeats_to("w"), 0u);
  advance(1ms);
  tick();
  EXPECT_EQ(sink_.heartbeats_to("w"), 1u);
  EXPECT_EQ(q().next_tick(), now_ + 1000ms);
}

TEST_F(PppQueueTest, DoesNotBurstHeartbeatsAfterALongPause) {
  worker_says("w", {ready});
  advance(2500ms);  // the worker is still alive (3 s expiry), the driver was late
  tick();
  EXPECT_EQ(sink_.heartbeats_to("w"), 1u);
  tick();
  EXPECT_EQ(sink_.heartbeats_to("w"), 1u);
  EXPECT_EQ(q().next_tick(), now_ + 1000ms);
}

TEST_F(PppQueueTest, PurgesEveryExpiredWorkerNotOnlyTheFirst) {
  // LRU order: live, dead-1, live-2, dead-2. A purge that stopped at the first live worker (the
  // reference's) would leave both dead ones in place.
  worker_says("live", {ready});
  worker_says("dead-1", {ready});
  worker_says("live-2", {ready});
  worker_says("dead-2", {ready});
  for (int i = 0; i < 3; ++i) {
    advance(1000ms);
    worker_says("live", {heartbeat});
    worker_says("live-2", {heartbeat});
    tick();
  }
  EXPECT_FALSE(q().knows("dead-1"));
  EXPECT_FALSE(q().knows("dead-2"));
  EXPECT_TRUE(q().knows("live"));
  EXPECT_TRUE(q().knows("live-2"));
  EXPECT_EQ(q().idle_order(), (std::vector<std::string>{"live", "live-2"}));
  EXPECT_EQ(q().stats().workers_expired, 2u);
}

TEST_F(PppQueueTest, ExpiresWorkerOnlyAfterLivenessIntervals) {
  worker_says("w", {ready});
  advance(2999ms);
  tick();
  EXPECT_TRUE(q().knows("w"));
  advance(1ms);
  tick();
  EXPECT_FALSE(q().knows("w"));
}

TEST_F(PppQueueTest, AnyMessageFromWorkerKeepsItAlive) {
  worker_says("w", {ready});
  request("c", "r");
  for (int i = 0; i < 10; ++i) {
    advance(1000ms);
    worker_says("w", {heartbeat});
    tick();
  }
  EXPECT_TRUE(q().is_busy("w"));
  advance(2000ms);
  reply("w", "c", "done");  // a reply counts as a sign of life too
  advance(2000ms);
  tick();
  EXPECT_TRUE(q().knows("w"));
  EXPECT_EQ(q().stats().heartbeats_received, 10u);
}

TEST_F(PppQueueTest, RequeuesRequestOfWorkerThatDiesMidRequest) {
  worker_says("doomed", {ready});
  worker_says("spare", {ready});
  request("c", "job");
  ASSERT_EQ(sink_.requests_to("doomed").size(), 1u);
  request("c2", "job-2");
  ASSERT_EQ(sink_.requests_to("spare").size(), 1u);
  reply("spare", "c2", "done-2");
  for (int i = 0; i < 3; ++i) {
    advance(1000ms);
    worker_says("spare", {heartbeat});
    tick();
  }
  EXPECT_FALSE(q().knows("doomed"));
  ASSERT_EQ(sink_.requests_to("spare").size(), 2u);
  EXPECT_EQ(sink_.requests_to("spare")[1], (frames{"c", "", "job"}));
  EXPECT_EQ(q().stats().requests_redelivered, 1u);
  EXPECT_EQ(q().stats().requests_dispatched, 3u);
}

TEST_F(PppQueueTest, AbandonsRequestAfterMaxRedeliveries) {
  auto o = base_options();
  o.max_dispatches = 1;
  make_machine(o);
  worker_says("doomed", {ready});
  request("c", "job");
  advance(3000ms);
  worker_says("late", {ready});
  tick();
  EXPECT_FALSE(q().knows("doomed"));
  EXPECT_TRUE(sink_.requests_to("late").empty());
  EXPECT_EQ(q().stats().requests_poisoned, 1u);
  EXPECT_EQ(q().queued_count(), 0u);
}

TEST_F(PppQueueTest, StopsRedeliveringAfterTheLimit) {
  // max_dispatches = 2 (the default): a request that killed two workers is not given a third.
  worker_says("w1", {ready});
  request("c", "poison");
  advance(3000ms);
  worker_says("w2", {ready});
  tick();  // w1 purged; the request goes to w2
  ASSERT_EQ(sink_.requests_to("w2").size(), 1u);
  advance(3000ms);
  worker_says("w3", {ready});
  tick();  // w2 purged
  EXPECT_TRUE(sink_.requests_to("w3").empty());
  EXPECT_EQ(q().stats().requests_redelivered, 1u);
  EXPECT_EQ(q().stats().requests_poisoned, 1u);
}

TEST_F(PppQueueTest, ReadyFromBusyWorkerRequeuesItsRequest) {
  worker_says("w", {ready});
  request("c", "job");
  worker_says("w", {ready});  // it restarted: the job is lost with its old conversation
  ASSERT_EQ(sink_.requests_to("w").size(), 2u);
  EXPECT_EQ(sink_.requests_to("w")[1], (frames{"c", "", "job"}));
  EXPECT_EQ(q().stats().requests_redelivered, 1u);
}

TEST_F(PppQueueTest, DropsOldestRequestWhenFull) {
  auto o = base_options();
  o.max_queued_requests = 2;
  o.overflow = overflow_policy::drop_oldest;
  make_machine(o);
  for (int i = 1; i <= 5; ++i) request("c" + std::to_string(i), "r" + std::to_string(i));
  EXPECT_EQ(q().queued_count(), 2u);
  EXPECT_EQ(q().stats().requests_dropped_full, 3u);
  EXPECT_EQ(q().stats().requests_received, 5u);
  worker_says("w", {ready});
  reply("w", "c4", "x");
  auto got = sink_.requests_to("w");
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0], (frames{"c4", "", "r4"}));
  EXPECT_EQ(got[1], (frames{"c5", "", "r5"}));
}

TEST_F(PppQueueTest, DropsNewestRequestWhenFull) {
  auto o = base_options();
  o.max_queued_requests = 2;
  o.overflow = overflow_policy::drop_newest;
  make_machine(o);
  for (int i = 1; i <= 5; ++i) request("c" + std::to_string(i), "r" + std::to_string(i));
  EXPECT_EQ(q().stats().requests_dropped_full, 3u);
  worker_says("w", {ready});
  reply("w", "c1", "x");
  auto got = sink_.requests_to("w");
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0], (frames{"c1", "", "r1"}));
  EXPECT_EQ(got[1], (frames{"c2", "", "r2"}));
}

TEST_F(PppQueueTest, ZeroCapacityHandsRequestsOnlyToFreeWorkers) {
  auto o = base_options();
  o.max_queued_requests = 0;
  make_machine(o);
  request("c1", "dropped");
  EXPECT_EQ(q().stats().requests_dropped_full, 1u);
  worker_says("w", {ready});
  EXPECT_TRUE(sink_.requests_to("w").empty());
  request("c2", "served");
  EXPECT_EQ(sink_.requests_to("w").size(), 1u);
}

TEST_F(PppQueueTest, ExpiresRequestsOlderThanTtl) {
  auto o = base_options();
  o.request_expiry = 1500ms;
  make_machine(o);
  request("old", "r1");
  advance(1000ms);
  request("new", "r2");
  advance(500ms);
  tick();
  EXPECT_EQ(q().queued_count(), 1u);
  EXPECT_EQ(q().stats().requests_expired, 1u);
  worker_says("w", {ready});
  ASSERT_EQ(sink_.requests_to("w").size(), 1u);
  EXPECT_EQ(sink_.requests_to("w")[0], (frames{"new", "", "r2"}));
}

TEST_F(PppQueueTest, DoesNotDispatchAnExpiredRequestBetweenTicks) {
  auto o = base_options();
  o.request_expiry = 100ms;
  make_machine(o);
  request("c", "r");
  advance(150ms);
  worker_says("w", {ready});  // no tick in between
  EXPECT_TRUE(sink_.requests_to("w").empty());
  EXPECT_EQ(q().stats().requests_expired, 1u);
}

TEST_F(PppQueueTest, IgnoresHeartbeatFromUnregisteredWorker) {
  worker_says("stranger", {heartbeat});
  EXPECT_FALSE(q().knows("stranger"));
  EXPECT_EQ(q().stats().unknown_worker_messages, 1u);
  advance(1000ms);
  tick();
  EXPECT_EQ(sink_.heartbeats_to("stranger"), 0u);  // so it notices and sends READY
}

TEST_F(PppQueueTest, ForwardsReplyFromUnregisteredWorkerWithoutRegisteringIt) {
  worker_says("stranger", {"c", "", "late answer"});
  EXPECT_FALSE(q().knows("stranger"));
  ASSERT_EQ(sink_.to_clients.size(), 1u);
  EXPECT_EQ(sink_.to_clients[0], (frames{"c", "", "late answer"}));
  EXPECT_EQ(q().stats().unknown_worker_messages, 1u);
}

TEST_F(PppQueueTest, ReplyToAnotherRequestDoesNotFreeTheWorker) {
  worker_says("w", {ready});
  request("c2", "current");
  worker_says("w", {"c1", "", "answer to an older request"});
  EXPECT_TRUE(q().is_busy("w"));
  EXPECT_EQ(q().stats().replies_unmatched, 1u);
  EXPECT_EQ(sink_.to_clients.size(), 1u);  // still delivered
  request("c3", "waits");
  EXPECT_EQ(sink_.requests_to("w").size(), 1u);
  reply("w", "c2", "answer");
  EXPECT_EQ(sink_.requests_to("w").size(), 2u);  // now free, so it gets the waiting one
}

TEST_F(PppQueueTest, MatchesRepliesByWholeAddressStack) {
  worker_says("w", {ready});
  client_says({"c", "seq-2", "", "r"});
  worker_says("w", {"c", "seq-1", "", "stale"});
  EXPECT_TRUE(q().is_busy("w"));
  worker_says("w", {"c", "seq-2", "", "fresh"});
  EXPECT_FALSE(q().is_busy("w"));
}

TEST_F(PppQueueTest, CountsAndDropsMalformedWorkerMessages) {
  worker_says("w", {ready});
  const std::vector<frames> bad = {
      {""},                 // empty frame
      {"\x03"},             // unknown command byte
      {"\x00"s},            // unknown command byte zero
      {"\x01\x00"s},        // READY of the wrong size
      {"\x02\x02"},         // HEARTBEAT of the wrong size
      {"plain"},            // a reply with no address stack cannot be routed
      {"c", "no delimiter"},
      {"", "x"},            // empty client address
      {"c", ""},            // no content after the delimiter
  };
  for (const auto& m : bad) worker_says("w", m);
  EXPECT_EQ(q().stats().malformed_worker, bad.size());
  EXPECT_TRUE(sink_.to_clients.empty());
  EXPECT_EQ(q().idle_order(), (std::vector<std::string>{"w"}));
  q().on_message(port::backend, make({"w"}), now_);  // an identity and nothing else
  q().on_message(port::backend, make({"", ready}), now_);  // an empty identity
  EXPECT_EQ(q().stats().malformed_worker, bad.size() + 2);
}

TEST_F(PppQueueTest, MalformedMessagesDoNotKeepAWorkerAlive) {
  worker_says("w", {ready});
  for (int i = 0; i < 3; ++i) {
    advance(1000ms);
    worker_says("w", {"\x07"});
  }
  tick();
  EXPECT_FALSE(q().knows("w"));
}

TEST_F(PppQueueTest, CountsAndDropsMalformedClientRequests) {
  worker_says("w", {ready});
  const std::vector<frames> bad = {
      {"c"},                   // identity only
      {"c", "no delimiter"},
      {"c", ""},               // delimiter but no content
      {"c", "x", "y"},         // no delimiter anywhere
      {"", "", "x"},           // empty identity
      {"c", "a", "b", ""},     // content missing after the stack
  };
  for (const auto& m : bad) client_says(m);
  EXPECT_EQ(q().stats().malformed_client, bad.size());
  EXPECT_EQ(q().stats().requests_received, 0u);
  EXPECT_TRUE(sink_.requests_to("w").empty());
}

TEST_F(PppQueueTest, RejectsWorkersBeyondMaxWorkers) {
  auto o = base_options();
  o.max_workers = 2;
  make_machine(o);
  worker_says("a", {ready});
  worker_says("b", {ready});
  worker_says("c", {ready});
  EXPECT_FALSE(q().knows("c"));
  EXPECT_EQ(q().stats().workers_rejected, 1u);
  worker_says("a", {ready});  // a known worker may always start over
  EXPECT_EQ(q().stats().workers_rejected, 1u);
}

TEST_F(PppQueueTest, UnreachableWorkerIsRemovedAndRequestGoesToTheNext) {
  worker_says("gone", {ready});
  worker_says("here", {ready});
  sink_.unreachable_workers.insert("gone");
  request("c", "r");
  EXPECT_FALSE(q().knows("gone"));
  ASSERT_EQ(sink_.requests_to("here").size(), 1u);
  EXPECT_EQ(sink_.requests_to("here")[0], (frames{"c", "", "r"}));
  EXPECT_EQ(q().stats().workers_unreachable, 1u);
}

TEST_F(PppQueueTest, FailedHeartbeatRemovesWorkerAndRedeliversItsRequest) {
  worker_says("busy", {ready});
  worker_says("spare", {ready});
  request("c", "r");
  ASSERT_TRUE(q().is_busy("busy"));
  sink_.unreachable_workers.insert("busy");
  advance(1000ms);
  tick();
  EXPECT_FALSE(q().knows("busy"));
  ASSERT_EQ(sink_.requests_to("spare").size(), 1u);
  EXPECT_EQ(q().stats().workers_unreachable, 1u);
  EXPECT_EQ(q().stats().requests_redelivered, 1u);
}

TEST_F(PppQueueTest, CountsReplyToGoneClientAsUnroutable) {
  worker_says("w", {ready});
  request("c", "r");
  sink_.clients_reachable = false;
  reply("w", "c", "nobody listens");
  EXPECT_EQ(q().stats().replies_unroutable, 1u);
  EXPECT_EQ(q().stats().replies_forwarded, 0u);
  EXPECT_FALSE(q().is_busy("w"));
}

TEST_F(PppQueueTest, KeepsRequestContentIntactForRedelivery) {
  // Large frames are shared, not copied, with the sent copy: the redelivered request must still
  // hold every byte after the first copy was consumed.
  const std::string big(10000, 'z');
  worker_says("first", {ready});
  client_says({"c", "", big, ""});
  advance(3000ms);
  worker_says("second", {ready});
  tick();
  ASSERT_EQ(sink_.requests_to("second").size(), 1u);
  EXPECT_EQ(sink_.requests_to("second")[0], (frames{"c", "", big, ""}));
}

TEST_F(PppQueueTest, RejectsInvalidOptions) {
  auto o = base_options();
  o.heartbeat_interval = 0ms;
  EXPECT_THROW(queue_machine(o, sink_, now_), fabric::error);
  o = base_options();
  o.liveness = 0;
  EXPECT_THROW(queue_machine(o, sink_, now_), fabric::error);
  o = base_options();
  o.max_workers = 0;
  EXPECT_THROW(queue_machine(o, sink_, now_), fabric::error);
  o = base_options();
  o.request_expiry = -1ms;
  EXPECT_THROW(queue_machine(o, sink_, now_), fabric::error);
  o = base_options();
  o.max_dispatches = 0;
  EXPECT_THROW(queue_machine(o, sink_, now_), fabric::error);
}

TEST(PppWorkerSettingsTest, HeartbeatAtAFixedCadenceWithTheWorkerOptions) {
  worker_options o;
  o.heartbeat_interval = 250ms;
  o.liveness = 4;
  o.reconnect_interval = 100ms;
  o.reconnect_interval_max = 800ms;
  const auto s = liveness_settings(o);
  EXPECT_EQ(s.heartbeat, 250ms);
  EXPECT_EQ(s.liveness, 4u);
  EXPECT_EQ(s.reconnect_initial, 100ms);
  EXPECT_EQ(s.reconnect_max, 800ms);
  EXPECT_EQ(s.heartbeats, detail::liveness::cadence::fixed);  // 6/PPP: whatever else is sent
  const auto d = liveness_settings(worker_options{});
  EXPECT_EQ(d.heartbeat, 1000ms);  // the 6/PPP reference defaults
  EXPECT_EQ(d.liveness, 3u);
  EXPECT_EQ(d.reconnect_initial, 1000ms);
  EXPECT_EQ(d.reconnect_max, 32000ms);
}

// ------------------------------------------------------------------------------------------------

TEST(PppFramesTest, CommandsAreExactlyOneFrameOfOneByte) {
  EXPECT_TRUE(is_command(ready_message(), ready_command));
  EXPECT_TRUE(is_command(heartbeat_message(), heartbeat_command));
  EXPECT_FALSE(is_command(make({"\x01", "x"}), ready_command));
  EXPECT_FALSE(is_command(make({"\x01\x01"}), ready_command));
  EXPECT_FALSE(is_command(make({""}), ready_command));
  EXPECT_FALSE(is_command(message(), ready_command));
  EXPECT_EQ(frames_of(ready_message()), (frames{"\x01"}));
  EXPECT_EQ(frames_of(heartbeat_message()), (frames{"\x02"}));
}

TEST(PppFramesTest, FindsTheFirstEmptyFrame) {
  EXPECT_EQ(find_delimiter(make({"a", "b", "", "c", ""})), 2u);
  EXPECT_EQ(find_delimiter(make({"", "c"})), 0u);
  EXPECT_FALSE(find_delimiter(make({"a", "b"})).has_value());
  EXPECT_FALSE(find_delimiter(message()).has_value());
}

TEST(PppFramesTest, ComparesAddressStacksOnly) {
  EXPECT_TRUE(same_address_stack(make({"c", "", "x"}), make({"c", "", "y", "z"})));
  EXPECT_FALSE(same_address_stack(make({"c", "", "x"}), make({"d", "", "x"})));
  EXPECT_FALSE(same_address_stack(make({"c", "s", "", "x"}), make({"c", "", "x"})));
  EXPECT_FALSE(same_address_stack(make({"c", "x"}), make({"c", "x"})));
}

}  // namespace
}  // namespace fabric::ppp
