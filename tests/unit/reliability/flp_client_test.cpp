// Tests the Freelance client machine (src/reliability/flp_client.hpp) with a fake clock and a
// recording sink: liveness (first pong, expiry, idle spells, unreachable servers and the probe
// back-off), routing (first live server, least loaded, copies), attempt timeouts and resends,
// deadlines, late and duplicate replies, bounds, malformed input, and the planted faults.
#include "reliability/flp_client.hpp"

#include "reliability/flp.hpp"
#include "reliability/flp_faults.hpp"

#include <fabric/error.hpp>

#include "support/support.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace fabric::flp {
namespace {

using namespace std::chrono_literals;
using frames = std::vector<std::string>;
using freelance::reply_status;

const std::string A = "tcp://a:1";
const std::string B = "tcp://b:1";
const std::string C = "tcp://c:1";

frames frames_of(const message& m) { return testing::to_strings(m); }
std::string seq(std::uint64_t n) { return std::string(view(encode_sequence(n))); }

// Records what the machine sends, per server; a server can refuse (unreachable, full).
class recording_sink : public detail::machine_sink {
 public:
  struct sent {
    std::string server;
    frames msg;  // after the identity
  };
  result<void> send(detail::port, message&& m) override {
    const std::string server(m.view(0));
    if (const auto it = refuse.find(server); it != refuse.end()) return it->second;
    frames f = frames_of(m);
    f.erase(f.begin());
    log.push_back({server, std::move(f)});
    m.clear();
    return {};
  }
  std::size_t pings_to(const std::string& s) const {
    std::size_t n = 0;
    for (const auto& e : log)
      if (e.server == s && e.msg == frames{"PING"}) ++n;
    return n;
  }
  // Requests sent to `s`, as (sequence, body...) frames.
  std::vector<frames> requests_to(const std::string& s) const {
    std::vector<frames> out;
    for (const auto& e : log)
      if (e.server == s && e.msg.size() >= 2) out.push_back(e.msg);
    return out;
  }
  std::size_t requests() const {
    std::size_t n = 0;
    for (const auto& e : log) n += e.msg.size() >= 2 ? 1u : 0u;
    return n;
  }
  std::vector<sent> log;
  std::map<std::string, errc> refuse;
};

class FlpClientTest : public ::testing::Test {
 protected:
  static freelance::client_options base() {
    freelance::client_options o;
    o.servers = {A, B, C};
    o.ping_interval = 2000ms;
    o.server_expiry = 6000ms;
    o.timeout = 1000ms;
    o.request_expiry = 3000ms;
    return o;
  }
  void make(const freelance::client_options& o) {
    machine_ = std::make_unique<client_machine>(o, sink_, now_, 100);
  }
  client_machine& m() {
    if (!machine_) make(base());
    return *machine_;
  }
  void tick() { m().on_tick(now_); }
  void advance(std::chrono::milliseconds d) {
    now_ += d;
    if (now_ >= m().next_tick()) tick();
  }
  void from(const std::string& server, const frames& parts) {
    frames all = parts;
    all.insert(all.begin(), server);
    m().on_message(testing::message_of(all), now_);
  }
  void pong(const std::string& server) { from(server, {"PONG"}); }
  std::uint64_t submit(const std::string& body, std::chrono::milliseconds expiry = 3000ms) {
    message b(body);
    auto id = m().submit(b, now_, expiry);
    EXPECT_TRUE(id) << id.error().message();
    return id ? *id : 0;
  }
  std::vector<freelance::reply> taken() {
    std::vector<freelance::reply> out;
    freelance::reply r;
    while (m().take(r)) out.push_back(std::move(r));
    return out;
  }

  detail::time_point now_ = detail::time_point{} + 1h;
  recording_sink sink_;
  std::unique_ptr<client_machine> machine_;
};

TEST_F(FlpClientTest, PingsEveryServerAtOnceAndSendsNoRequestBeforeAPong) {
  tick();
  EXPECT_EQ(sink_.pings_to(A), 1u);
  EXPECT_EQ(sink_.pings_to(B), 1u);
  EXPECT_EQ(sink_.pings_to(C), 1u);
  const auto id = submit("hello");
  EXPECT_EQ(id, 100u);
  EXPECT_TRUE(m().is_waiting(id));
  EXPECT_EQ(sink_.requests(), 0u);
  pong(B);
  EXPECT_TRUE(m().is_live(B));
  EXPECT_FALSE(m().is_waiting(id));
  ASSERT_EQ(sink_.requests_to(B).size(), 1u);
  EXPECT_EQ(sink_.requests_to(B)[0], (frames{seq(id), "hello"}));
  EXPECT_EQ(m().stats().servers_up, 1u);
}

TEST_F(FlpClientTest, ARefusedPingIsRetriedSoonThenLessAndLessOften) {
  sink_.refuse[A] = errc::peer_unreachable;  // not connected yet
  tick();
  EXPECT_EQ(m().next_tick(), now_ + 5ms);
  advance(5ms);
  EXPECT_EQ(m().next_tick(), now_ + 10ms);
  advance(10ms);
  EXPECT_EQ(m().next_tick(), now_ + 20ms);
  sink_.refuse.clear();  // the connection is up
  advance(20ms);
  EXPECT_EQ(sink_.pings_to(A), 1u);
  pong(A);
  EXPECT_TRUE(m().is_live(A));
  EXPECT_EQ(m().stats().pings, 3u);  // A once it was connected, B and C at the start
}

TEST_F(FlpClientTest, TheProbeBackOffStopsAtThePingInterval) {
  sink_.refuse[A] = errc::peer_unreachable;
  tick();
  for (int i = 0; i < 12; ++i) advance(std::chrono::duration_cast<std::chrono::milliseconds>(m().next_tick() - now_));
  const auto gap = m().next_tick() - now_;
  EXPECT_LE(gap, 2000ms);
  EXPECT_GE(gap, 1000ms);
}

TEST_F(FlpClientTest, OneRequestAtATimeGoesToTheFirstLiveServer) {
  tick();
  pong(C);
  pong(A);
  pong(B);
  for (int i = 0; i < 3; ++i) {
    const auto id = submit("r");
    from(A, {seq(id), "ok"});
  }
  EXPECT_EQ(sink_.requests_to(A).size(), 3u);
  EXPECT_EQ(sink_.requests_to(B).size() + sink_.requests_to(C).size(), 0u);
  const auto done = taken();
  ASSERT_EQ(done.size(), 3u);
  for (const auto& r : done) {
    EXPECT_EQ(r.status, reply_status::ok);
    EXPECT_EQ(r.server, A);
    EXPECT_EQ(frames_of(r.body), frames{"ok"});
  }
}

TEST_F(FlpClientTest, ManyRequestsSpreadOverLiveServersByRequestsInFlight) {
  tick();
  pong(A);
  pong(B);
  pong(C);
  for (int i = 0; i < 9; ++i) submit("r");
  EXPECT_EQ(m().in_flight(A), 3u);
  EXPECT_EQ(m().in_flight(B), 3u);
  EXPECT_EQ(m().in_flight(C), 3u);
  EXPECT_EQ(m().stats().attempts, 9u);
}

TEST_F(FlpClientTest, AReplyCompletesItsRequestOnceAndADuplicateIsDroppedAndCounted) {
  tick();
  pong(A);
  const auto id = submit("r");
  from(A, {seq(id), "one"});
  from(A, {seq(id), "again"});
  from(A, {seq(999), "never asked"});
  const auto done = taken();
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].id, id);
  EXPECT_EQ(frames_of(done[0].body), frames{"one"});
  EXPECT_EQ(m().stats().late_replies, 2u);
  EXPECT_EQ(m().stats().replies, 1u);
  EXPECT_EQ(m().outstanding(), 0u);
  EXPECT_EQ(m().in_flight(A), 0u);
}

TEST_F(FlpClientTest, AnAttemptTimeoutSendsTheRequestToAnotherLiveServerWithTheSameSequence) {
  tick();
  pong(A);
  pong(B);
  const auto id = submit("r");
  ASSERT_EQ(sink_.requests_to(A).size(), 1u);
  advance(999ms);
  EXPECT_EQ(sink_.requests_to(B).size(), 0u);
  advance(1ms);
  ASSERT_EQ(sink_.requests_to(B).size(), 1u) << "one copy at a time: sent again only after the timeout";
  EXPECT_EQ(sink_.requests_to(B)[0], (frames{seq(id), "r"}));
  EXPECT_EQ(m().in_flight(A), 0u);
  EXPECT_EQ(m().in_flight(B), 1u);
  EXPECT_EQ(m().stats().retries, 1u);
  // The late answer of the abandoned attempt is as good as any; B's, after it, is a duplicate.
  from(A, {seq(id), "from a"});
  from(B, {seq(id), "from b"});
  const auto done = taken();
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].server, A);
  EXPECT_EQ(m().stats().late_replies, 1u);
}

TEST_F(FlpClientTest, WithOneLiveServerATimedOutRequestIsSentToItAgain) {
  make([] {
    auto o = base();
    o.servers = {A};
    o.copies = 1;
    return o;
  }());
  tick();
  pong(A);
  submit("r");
  advance(1000ms);
  EXPECT_EQ(sink_.requests_to(A).size(), 2u);
  EXPECT_EQ(m().in_flight(A), 1u);
}

TEST_F(FlpClientTest, ARequestNeverAnsweredExpiresAtItsDeadlineAsTimeout) {
  tick();
  pong(A);
  pong(B);
  const auto id = submit("r");
  for (int i = 0; i < 30; ++i) {
    advance(100ms);
    pong(A);  // the servers stay live, but never answer
    pong(B);
  }
  const auto done = taken();
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].id, id);
  EXPECT_EQ(done[0].status, reply_status::expired);
  EXPECT_TRUE(done[0].body.empty());
  EXPECT_EQ(m().stats().expired, 1u);
  EXPECT_EQ(sink_.requests(), 3u) << "attempts at 0, 1 s and 2 s; none outlives the 3 s deadline";
  EXPECT_EQ(m().in_flight(A) + m().in_flight(B), 0u);
}

TEST_F(FlpClientTest, ARequestWithNoLiveServerFailsAsUnavailable) {
  tick();
  const auto id = submit("r", 500ms);
  advance(499ms);
  EXPECT_TRUE(taken().empty());
  advance(1ms);
  const auto done = taken();
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].id, id);
  EXPECT_EQ(done[0].status, reply_status::unavailable);
  EXPECT_EQ(m().stats().unavailable, 1u);
  EXPECT_EQ(m().outstanding(), 0u);
}

TEST_F(FlpClientTest, ALiveServerSilentPastItsExpiryIsDeadAfterExactlyThreeIntervals) {
  tick();
  pong(A);
  advance(2000ms);
  EXPECT_EQ(sink_.pings_to(A), 2u);
  advance(2000ms);
  EXPECT_EQ(sink_.pings_to(A), 3u);
  advance(1999ms);
  EXPECT_TRUE(m().is_live(A));
  advance(1ms);
  EXPECT_FALSE(m().is_live(A));
  EXPECT_EQ(m().stats().servers_lost, 1u);
  // Still pinged, so it comes back when it answers.
  const auto pings = sink_.pings_to(A);
  advance(2000ms);
  EXPECT_EQ(sink_.pings_to(A), pings + 1);
  pong(A);
  EXPECT_TRUE(m().is_live(A));
  EXPECT_EQ(m().stats().servers_up, 2u);
}

TEST_F(FlpClientTest, AServerThatKeepsAnsweringIsNotPinged) {
  tick();
  pong(A);
  const auto before = sink_.pings_to(A);
  for (int i = 0; i < 10; ++i) {
    advance(1500ms);
    const auto id = submit("r");
    from(A, {seq(id), "ok"});
  }
  EXPECT_EQ(sink_.pings_to(A), before);
  EXPECT_TRUE(m().is_live(A));
}

TEST_F(FlpClientTest, AnIdleClientDoesNotCondemnServersForItsOwnSilence) {
  tick();
  pong(A);
  now_ += 100s;  // nobody ticked the machine meanwhile
  tick();        // pings go out now
  EXPECT_TRUE(m().is_live(A)) << "no ping was unanswered yet";
  const auto id = submit("r");
  EXPECT_EQ(sink_.requests_to(A).size(), 1u) << "the first request after a pause goes out at once";
  from(A, {seq(id), "ok"});
  EXPECT_EQ(taken().size(), 1u);
  // Silence from now on: dead once a ping has waited server_expiry - ping_interval (and more).
  advance(3999ms);
  EXPECT_TRUE(m().is_live(A));
  now_ += 6000ms;
  tick();
  EXPECT_FALSE(m().is_live(A));
}

TEST_F(FlpClientTest, AServerWhoseConnectionIsGoneIsLostAndItsRequestsGoElsewhereAtOnce) {
  tick();
  pong(A);
  pong(B);
  const auto id = submit("r");
  ASSERT_EQ(sink_.requests_to(A).size(), 1u);
  sink_.refuse[A] = errc::peer_unreachable;  // A's process died: libzmq dropped the connection
  advance(2000ms);                           // A's ping is refused
  EXPECT_FALSE(m().is_live(A));
  EXPECT_EQ(m().stats().servers_lost, 1u);
  ASSERT_EQ(sink_.requests_to(B).size(), 1u);
  EXPECT_EQ(sink_.requests_to(B)[0][0], seq(id));
  // Its return is looked for soon.
  EXPECT_LE(m().next_tick() - now_, 5ms);
}

TEST_F(FlpClientTest, ARequestRefusedByAVanishedServerGoesToTheNext) {
  tick();
  pong(A);
  pong(B);
  sink_.refuse[A] = errc::peer_unreachable;
  const auto id = submit("r");
  EXPECT_FALSE(m().is_live(A));
  ASSERT_EQ(sink_.requests_to(B).size(), 1u);
  from(B, {seq(id), "ok"});
  EXPECT_EQ(taken().at(0).status, reply_status::ok);
}

TEST_F(FlpClientTest, AServerDeclaredDeadHasItsRequestsSentElsewhereAtOnce) {
  auto o = base();
  o.timeout = 10'000ms;
  o.request_expiry = 20'000ms;
  make(o);
  tick();
  pong(A);
  submit("r", 20'000ms);
  ASSERT_EQ(sink_.requests_to(A).size(), 1u);
  for (int i = 0; i < 5; ++i) {
    advance(1000ms);
    pong(B);  // B stays live; A, holding the request, falls silent
  }
  advance(1000ms);
  EXPECT_FALSE(m().is_live(A));
  EXPECT_EQ(sink_.requests_to(B).size(), 1u) << "sent again when A died, not at its 10 s timeout";
}

TEST_F(FlpClientTest, CopiesSendEachAttemptToSeveralServersAndTheFirstReplyWins) {
  auto o = base();
  o.copies = 2;
  make(o);
  tick();
  pong(A);
  pong(B);
  pong(C);
  const auto id = submit("r");
  EXPECT_EQ(sink_.requests(), 2u);
  EXPECT_EQ(m().stats().attempts, 2u);
  from(B, {seq(id), "b"});
  from(A, {seq(id), "a"});
  const auto done = taken();
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].server, B);
  EXPECT_EQ(m().stats().late_replies, 1u);
  EXPECT_EQ(m().in_flight(A) + m().in_flight(B) + m().in_flight(C), 0u);
}

TEST_F(FlpClientTest, RefusesRequestsBeyondMaxOutstandingIncludingUntakenCompletions) {
  auto o = base();
  o.max_outstanding = 2;
  make(o);
  tick();
  pong(A);
  const auto first = submit("1");
  submit("2");
  message b("3");
  auto refused = m().submit(b, now_, 3000ms);
  EXPECT_TRUE(refused.is(errc::back_pressure));
  EXPECT_EQ(frames_of(b), frames{"3"}) << "the body is left as it was";
  from(A, {seq(first), "ok"});
  EXPECT_TRUE(m().submit(b, now_, 3000ms).is(errc::back_pressure)) << "the completion is not taken yet";
  freelance::reply r;
  ASSERT_TRUE(m().take(r));
  EXPECT_TRUE(m().submit(b, now_, 3000ms));
  EXPECT_EQ(m().stats().back_pressure, 2u);
}

TEST_F(FlpClientTest, RequestsEveryServerRefusesForFullQueuesWaitAndAreTriedAgainShortly) {
  tick();
  pong(A);
  sink_.refuse[A] = errc::back_pressure;
  const auto id = submit("r");
  EXPECT_TRUE(m().is_waiting(id));
  EXPECT_TRUE(m().is_live(A)) << "a full queue is no sign of death";
  EXPECT_EQ(m().next_tick(), now_ + 10ms);
  sink_.refuse.clear();
  advance(10ms);
  EXPECT_FALSE(m().is_waiting(id));
  EXPECT_EQ(sink_.requests_to(A).size(), 1u);
}

TEST_F(FlpClientTest, MalformedMessagesAndStrangersAreCountedAndAreNoSignOfLife) {
  tick();
  from(A, {"PING"});
  from(A, {"17", "not our control frame"});
  from(A, {seq(1)});
  from("tcp://stranger:9", {"PONG"});
  m().note_malformed();
  EXPECT_EQ(m().stats().malformed, 5u);
  EXPECT_FALSE(m().is_live(A));
  EXPECT_EQ(m().live_servers(), 0u);
}

TEST_F(FlpClientTest, ACancelledRequestIsForgottenAndItsReplyDropped) {
  tick();
  pong(A);
  const auto id = submit("r");
  EXPECT_TRUE(m().cancel(id));
  EXPECT_FALSE(m().cancel(id));
  EXPECT_EQ(m().in_flight(A), 0u);
  from(A, {seq(id), "late"});
  EXPECT_TRUE(taken().empty());
  EXPECT_EQ(m().stats().cancelled, 1u);
  EXPECT_EQ(m().stats().late_replies, 1u);
  advance(5000ms);
  EXPECT_TRUE(taken().empty());
}

TEST_F(FlpClientTest, NextTickIsTheEarliestOfPingsTimeoutsAndExpiries) {
  tick();
  EXPECT_EQ(m().next_tick(), now_ + 2000ms) << "the next pings";
  pong(A);
  advance(500ms);
  submit("r");
  EXPECT_EQ(m().next_tick(), now_ + 1000ms) << "the attempt's timeout";
  auto o = base();
  o.timeout = 3000ms;
  make(o);
  tick();
  pong(A);
  advance(2000ms);  // A is pinged and does not answer
  EXPECT_EQ(m().next_tick(), now_ + 2000ms) << "B and C's pings";
  advance(2000ms);
  advance(2000ms);
  EXPECT_FALSE(m().is_live(A)) << "its expiry was a tick of its own";
}

TEST_F(FlpClientTest, RefusesOptionsOutOfRange) {
  const auto refused = [&](auto change) {
    auto o = base();
    change(o);
    testing::expect_error(errc::invalid_argument, [&] { client_machine c(o, sink_, now_, 1); });
  };
  refused([](auto& o) { o.servers.clear(); });
  refused([](auto& o) { o.servers.push_back(A); });
  refused([](auto& o) { o.servers.push_back(""); });
  refused([](auto& o) { o.servers.push_back(std::string(256, 'x')); });
  refused([](auto& o) { o.ping_interval = 0ms; });
  refused([](auto& o) { o.server_expiry = o.ping_interval; });
  refused([](auto& o) { o.timeout = 0ms; });
  refused([](auto& o) { o.request_expiry = 25h; });
  refused([](auto& o) { o.copies = 0; });
  refused([](auto& o) { o.copies = 4; });
  refused([](auto& o) { o.max_outstanding = 0; });
  message empty;
  testing::expect_error(errc::invalid_argument, [&] { (void)m().submit(empty, now_, 1000ms); });
}

TEST_F(FlpClientTest, SequenceNumbersSkipZero) {
  auto o = base();
  machine_ = std::make_unique<client_machine>(o, sink_, now_, UINT64_MAX);
  EXPECT_EQ(submit("a"), UINT64_MAX);
  EXPECT_EQ(submit("b"), 1u);
}

// --- the planted faults, which the chaos tests' checker must catch ---

class FlpClientFaultTest : public FlpClientTest {
 protected:
  void TearDown() override {
    faults::set_deliver_late_replies(false);
    faults::set_forget_lost_requests(false);
  }
};

TEST_F(FlpClientFaultTest, DeliveringLateRepliesDuplicatesAnAnswer) {
  faults::set_deliver_late_replies(true);
  tick();
  pong(A);
  const auto id = submit("r");
  from(A, {seq(id), "one"});
  from(A, {seq(id), "two"});
  from(A, {seq(12345), "never issued"});
  const auto done = taken();
  ASSERT_EQ(done.size(), 2u);
  EXPECT_EQ(done[0].id, id);
  EXPECT_EQ(done[1].id, id);
}

TEST_F(FlpClientFaultTest, ForgettingTheRequestsOfALostServerLosesTheirAnswers) {
  faults::set_forget_lost_requests(true);
  tick();
  pong(A);
  pong(B);
  submit("r");
  sink_.refuse[A] = errc::peer_unreachable;
  advance(2000ms);
  EXPECT_EQ(m().outstanding(), 0u);
  advance(5000ms);
  EXPECT_TRUE(taken().empty()) << "never completed: lost";
  EXPECT_EQ(sink_.requests_to(B).size(), 0u);
}

}  // namespace
}  // namespace fabric::flp
