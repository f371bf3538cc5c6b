// Tests the shared heartbeat, dead-peer and reconnect back-off machine with a fake clock and a
// recording sink: first with 6/PPP's settings (a heartbeat every interval, whatever else is
// sent), then the rules 7/MDP's settings add (heartbeats only when quiet, busy peers, a peer that
// disconnects us, a connection given up by its owner, a socket that cannot be created).
#include "core/liveness.hpp"

#include <fabric/error.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

namespace fabric::detail {
namespace {

using namespace std::chrono_literals;

// Records what the machine asks for; opening can be made to fail.
class recording_sink : public machine_sink {
 public:
  result<void> send(port to, message&& m) override {
    ports.push_back(to);
    sent.emplace_back(view(m[0]));
    m.clear();
    return {};
  }
  void close(port to) noexcept override {
    ports.push_back(to);
    ++closes;
  }
  result<void> open(port to) override {
    ports.push_back(to);
    if (fail_open) return errc::closed;
    ++opens;
    return {};
  }

  std::vector<std::string> sent;
  std::vector<port> ports;
  std::size_t closes = 0;
  std::size_t opens = 0;
  bool fail_open = false;
};

message heartbeat() {
  message m;
  m.push_back(std::string_view("HB"));
  return m;
}

// What one on_tick() did, read off the sink.
struct tick_result {
  bool send_heartbeat = false;
  bool disconnect = false;
  bool reconnect = false;
};

class LivenessTest : public ::testing::Test {
 protected:
  // 6/PPP's reference settings: 1 s, liveness 3, back-off 1 s doubling to 32 s, fixed cadence.
  static liveness::settings ppp() {
    return {.heartbeat = 1000ms,
            .liveness = 3,
            .reconnect_initial = 1000ms,
            .reconnect_max = 32000ms,
            .heartbeats = liveness::cadence::fixed};
  }
  static liveness::settings mdp() {
    auto s = ppp();
    s.heartbeats = liveness::cadence::when_quiet;
    return s;
  }

  // A machine whose connection went up at now_, as a worker's does when it starts.
  liveness& make(const liveness::settings& s) {
    machine_ = std::make_unique<liveness>(s, sink_, heartbeat, "test");
    machine_->opened(now_);
    return *machine_;
  }

  tick_result tick(liveness& l, time_point at) {
    const auto sent = sink_.sent.size();
    const auto closes = sink_.closes;
    const auto opens = sink_.opens;
    l.on_tick(at);
    return {sink_.sent.size() > sent, sink_.closes > closes, sink_.opens > opens};
  }

  time_point now_ = time_point{} + 1h;
  recording_sink sink_;
  std::unique_ptr<liveness> machine_;
};

// --- 6/PPP's settings (these were the Paranoid Pirate worker's own machine's tests) ---

TEST_F(LivenessTest, SendsHeartbeatEveryInterval) {
  auto& w = make(ppp());
  EXPECT_FALSE(tick(w, now_ + 999ms).send_heartbeat);
  EXPECT_TRUE(tick(w, now_ + 1000ms).send_heartbeat);
  EXPECT_FALSE(tick(w, now_ + 1500ms).send_heartbeat);
  w.on_message(now_ + 1500ms);
  w.sent(now_ + 1500ms);  // with a fixed cadence, other traffic does not move the heartbeat
  EXPECT_TRUE(tick(w, now_ + 2000ms).send_heartbeat);
  EXPECT_EQ(sink_.sent, (std::vector<std::string>{"HB", "HB"}));
  EXPECT_EQ(w.heartbeats_sent(), 2u);
}

TEST_F(LivenessTest, DeclaresPeerDeadAfterLivenessSilentIntervals) {
  auto& w = make(ppp());
  EXPECT_FALSE(tick(w, now_ + 2999ms).disconnect);
  const auto a = tick(w, now_ + 3000ms);
  EXPECT_TRUE(a.disconnect);
  EXPECT_FALSE(a.send_heartbeat);
  EXPECT_FALSE(a.reconnect);
  EXPECT_FALSE(w.is_open());
  EXPECT_EQ(w.connections_closed(), 1u);
}

TEST_F(LivenessTest, TrafficKeepsThePeerAlive) {
  auto& w = make(ppp());
  for (int i = 1; i <= 20; ++i) {
    const auto t = now_ + i * 1000ms;
    w.on_message(t - 1ms);
    EXPECT_FALSE(tick(w, t).disconnect) << "at second " << i;
  }
}

TEST_F(LivenessTest, ReconnectsAfterTheBackoff) {
  auto& w = make(ppp());
  auto t = now_ + 3000ms;
  ASSERT_TRUE(tick(w, t).disconnect);
  EXPECT_EQ(w.next_tick(), t + 1000ms);
  const auto early = tick(w, t + 999ms);
  EXPECT_FALSE(early.reconnect);
  EXPECT_FALSE(early.send_heartbeat);  // no socket, no heartbeat
  const auto a = tick(w, t + 1000ms);
  EXPECT_TRUE(a.reconnect);
  EXPECT_TRUE(w.is_open());
  EXPECT_EQ(w.connections_opened(), 1u);
  // A fresh conversation gets a whole liveness period.
  EXPECT_FALSE(tick(w, t + 3999ms).disconnect);
  EXPECT_TRUE(tick(w, t + 4000ms).disconnect);
}

TEST_F(LivenessTest, BackoffDoublesUpToTheMaximum) {
  auto& w = make(ppp());
  auto t = now_;
  std::vector<long long> waits;
  for (int i = 0; i < 8; ++i) {
    t += 3000ms;  // silent for a whole liveness period
    ASSERT_TRUE(tick(w, t).disconnect);
    const auto wait = w.next_tick() - t;
    waits.push_back(std::chrono::duration_cast<std::chrono::milliseconds>(wait).count());
    t = w.next_tick();
    ASSERT_TRUE(tick(w, t).reconnect);
  }
  EXPECT_EQ(waits, (std::vector<long long>{1000, 2000, 4000, 8000, 16000, 32000, 32000, 32000}));
}

TEST_F(LivenessTest, HearingThePeerResetsTheBackoff) {
  auto& w = make(ppp());
  auto t = now_ + 3000ms;
  ASSERT_TRUE(tick(w, t).disconnect);
  t += 1000ms;
  ASSERT_TRUE(tick(w, t).reconnect);
  t += 3000ms;
  ASSERT_TRUE(tick(w, t).disconnect);
  EXPECT_EQ(w.backoff(), 4000ms);
  t += 2000ms;
  ASSERT_TRUE(tick(w, t).reconnect);
  w.on_message(t + 10ms);
  EXPECT_EQ(w.backoff(), 1000ms);
}

TEST_F(LivenessTest, InvalidMessagesProveLifeButDoNotResetTheBackoff) {
  auto& w = make(ppp());
  auto t = now_ + 3000ms;
  ASSERT_TRUE(tick(w, t).disconnect);
  t += 1000ms;
  ASSERT_TRUE(tick(w, t).reconnect);
  EXPECT_EQ(w.backoff(), 2000ms);
  w.on_message(t + 2500ms, false);
  EXPECT_EQ(w.backoff(), 2000ms);
  EXPECT_FALSE(tick(w, t + 3000ms).disconnect);  // alive: it was heard 500 ms ago
  EXPECT_EQ(w.expiry(), t + 5500ms);
}

TEST_F(LivenessTest, NextTickFollowsTheState) {
  auto& w = make(ppp());
  EXPECT_EQ(w.next_tick(), now_ + 1000ms);  // heartbeat before expiry
  auto s = ppp();
  s.liveness = 1;
  recording_sink other;
  liveness one(s, other, heartbeat);
  one.opened(now_);
  one.on_tick(now_ + 1000ms);  // expiry at the same instant as the heartbeat: dead
  EXPECT_FALSE(one.is_open());
  EXPECT_TRUE(other.sent.empty());
  EXPECT_EQ(one.next_tick(), now_ + 2000ms);
}

TEST_F(LivenessTest, ZeroBackoffReconnectsInTheSameTick) {
  auto s = ppp();
  s.reconnect_initial = 0ms;
  s.reconnect_max = 0ms;
  auto& w = make(s);
  const auto a = tick(w, now_ + 3000ms);
  EXPECT_TRUE(a.disconnect);
  EXPECT_TRUE(a.reconnect);
  EXPECT_TRUE(w.is_open());
}

TEST_F(LivenessTest, DoesNotBurstHeartbeatsAfterALongPause) {
  auto& w = make(ppp());
  w.on_message(now_ + 2500ms);
  EXPECT_TRUE(tick(w, now_ + 2600ms).send_heartbeat);
  EXPECT_FALSE(tick(w, now_ + 2600ms).send_heartbeat);
  EXPECT_EQ(w.next_tick(), now_ + 3600ms);
}

TEST_F(LivenessTest, RejectsInvalidTiming) {
  auto s = ppp();
  s.heartbeat = 0ms;
  EXPECT_THROW(liveness(s, sink_, heartbeat), fabric::error);
  s = ppp();
  s.liveness = 0;
  EXPECT_THROW(liveness(s, sink_, heartbeat), fabric::error);
  s = ppp();
  s.reconnect_max = 500ms;  // below the initial back-off
  EXPECT_THROW(liveness(s, sink_, heartbeat), fabric::error);
  s = ppp();
  s.reconnect_initial = -1ms;
  EXPECT_THROW(liveness(s, sink_, heartbeat), fabric::error);
  s = ppp();
  s.heartbeat = 0ms;
  try {
    liveness(s, sink_, heartbeat, "ppp::worker");
    ADD_FAILURE() << "no exception";
  } catch (const fabric::error& e) {
    EXPECT_NE(std::string(e.what()).find("ppp::worker"), std::string::npos) << e.what();
  }
}

// --- the other rules ---

TEST_F(LivenessTest, StartsClosedAndOpensAtTheFirstTick) {
  liveness l(ppp(), sink_, heartbeat);
  EXPECT_FALSE(l.is_open());
  EXPECT_EQ(l.next_tick(), time_point::min());
  l.on_tick(now_);
  EXPECT_TRUE(l.is_open());
  EXPECT_EQ(sink_.opens, 1u);
  EXPECT_EQ(l.next_tick(), now_ + 1000ms);
}

TEST_F(LivenessTest, UsesTheSocketItWasGiven) {
  auto s = ppp();
  s.on = port::backend;
  s.reconnect_initial = 0ms;
  auto& w = make(s);
  (void)tick(w, now_ + 1000ms);  // heartbeat
  (void)tick(w, now_ + 3000ms);  // close and open again
  EXPECT_EQ(sink_.ports, (std::vector<port>{port::backend, port::backend, port::backend}));
}

TEST_F(LivenessTest, WhenQuietHeartbeatsOnlyAfterAnIntervalWithNothingSent) {
  auto& w = make(mdp());
  w.sent(now_ + 600ms);
  EXPECT_FALSE(tick(w, now_ + 1000ms).send_heartbeat);
  EXPECT_EQ(w.next_tick(), now_ + 1600ms);
  EXPECT_TRUE(tick(w, now_ + 1600ms).send_heartbeat);
  EXPECT_EQ(w.next_tick(), now_ + 2600ms);
}

TEST_F(LivenessTest, BusyPeerIsNotDeclaredDeadUntilTheWorkIsDone) {
  auto& w = make(mdp());
  w.busy(true, now_ + 500ms);
  for (int i = 1; i <= 10; ++i) EXPECT_FALSE(tick(w, now_ + i * 1000ms).disconnect) << i;
  EXPECT_EQ(w.heartbeats_sent(), 10u);  // heartbeats go on while busy
  const auto done = now_ + 10500ms;
  w.busy(false, done);
  EXPECT_EQ(w.expiry(), done + 3000ms);  // silence counts from the end of the work
  EXPECT_FALSE(tick(w, done + 2999ms).disconnect);
  EXPECT_TRUE(tick(w, done + 3000ms).disconnect);
}

TEST_F(LivenessTest, DisconnectOfAHealthyConnectionReconnectsAtOnce) {
  auto& w = make(mdp());
  w.on_message(now_ + 100ms);
  w.disconnected(now_ + 200ms);
  EXPECT_FALSE(w.is_open());
  EXPECT_TRUE(tick(w, now_ + 200ms).reconnect);
}

TEST_F(LivenessTest, DisconnectOfAConnectionThatCarriedNothingWaitsTheBackoff) {
  auto& w = make(mdp());
  w.disconnected(now_ + 200ms);
  EXPECT_FALSE(tick(w, now_ + 1199ms).reconnect);
  EXPECT_TRUE(tick(w, now_ + 1200ms).reconnect);
  w.disconnected(now_ + 1300ms);  // refused again: the wait doubles
  EXPECT_EQ(w.next_tick(), now_ + 3300ms);
}

TEST_F(LivenessTest, InvalidMessagesDoNotMakeAConnectionHealthy) {
  auto& w = make(mdp());
  w.on_message(now_ + 1ms, false);  // garbage proves the peer is there, not that it serves us
  w.disconnected(now_ + 2ms);
  EXPECT_FALSE(tick(w, now_ + 2ms).reconnect);
  EXPECT_EQ(w.next_tick(), now_ + 1002ms);
  EXPECT_TRUE(tick(w, now_ + 1002ms).reconnect);
  w.disconnected(now_ + 1003ms);
  EXPECT_EQ(w.next_tick(), now_ + 3003ms);  // doubled
}

TEST_F(LivenessTest, AFreshConnectionIsNotBusy) {
  auto& w = make(mdp());
  w.on_message(now_);
  w.busy(true, now_);
  w.disconnected(now_ + 10ms);
  ASSERT_TRUE(tick(w, now_ + 10ms).reconnect);
  EXPECT_FALSE(w.is_busy());
  EXPECT_TRUE(tick(w, now_ + 3010ms).disconnect);  // silence counts again
}

TEST_F(LivenessTest, GivingUpAConnectionEndsTheWorkAndKeepsTheBackoff) {
  auto& w = make(mdp());
  w.busy(true, now_ + 1ms);
  w.left(now_ + 2ms);
  EXPECT_FALSE(w.is_open());
  EXPECT_FALSE(w.is_busy());
  EXPECT_EQ(w.next_tick(), now_ + 2ms);
  EXPECT_TRUE(tick(w, now_ + 2ms).reconnect);
  EXPECT_EQ(w.backoff(), 1000ms) << "leaving does not use up the back-off";
}

TEST_F(LivenessTest, ConnectionsGivenUpWaitLongerUntilARequestIsAnswered) {
  auto& w = make(mdp());
  w.left(now_);
  EXPECT_EQ(w.next_tick(), now_);  // the first time, at once
  ASSERT_TRUE(tick(w, now_).reconnect);
  w.left(now_ + 10ms);
  EXPECT_EQ(w.next_tick(), now_ + 1010ms);
  ASSERT_TRUE(tick(w, now_ + 1010ms).reconnect);
  w.left(now_ + 1020ms);
  EXPECT_EQ(w.next_tick(), now_ + 3020ms);
  ASSERT_TRUE(tick(w, now_ + 3020ms).reconnect);
  w.answered();
  w.left(now_ + 3030ms);
  EXPECT_EQ(w.next_tick(), now_ + 3030ms);
}

TEST_F(LivenessTest, ConnectionsGivenUpWaitNoLongerThanTheMaximum) {
  auto s = mdp();
  s.reconnect_initial = 100ms;
  s.reconnect_max = 300ms;
  auto& w = make(s);
  auto t = now_;
  std::vector<liveness::duration> delays;
  for (int i = 0; i < 5; ++i) {
    w.on_message(t);  // a request, each time given up
    w.left(t);
    delays.push_back(w.next_tick() - t);
    t = w.next_tick();
    ASSERT_TRUE(tick(w, t).reconnect);
  }
  EXPECT_EQ(delays, (std::vector<liveness::duration>{0ms, 100ms, 200ms, 300ms, 300ms}));
  w.answered();
  w.left(t + 1ms);
  EXPECT_EQ(w.next_tick(), t + 1ms) << "an answer makes the next one immediate again";
}

TEST_F(LivenessTest, FailedOpenRetriesAfterTheBackoffButNeverSpins) {
  auto s = ppp();
  s.reconnect_initial = 0ms;
  s.reconnect_max = 0ms;
  liveness l(s, sink_, heartbeat);
  sink_.fail_open = true;
  l.on_tick(now_);
  EXPECT_FALSE(l.is_open());
  EXPECT_EQ(l.next_tick(), now_ + liveness::min_retry);  // not at once, with a zero back-off
  sink_.fail_open = false;
  l.on_tick(now_ + liveness::min_retry);
  EXPECT_TRUE(l.is_open());
}

TEST_F(LivenessTest, FailedOpensWaitTheDoublingBackoffOrOneHeartbeatIfShorter) {
  auto s = mdp();
  s.reconnect_initial = 200ms;
  s.reconnect_max = 800ms;
  sink_.fail_open = true;
  liveness l(s, sink_, heartbeat);
  l.on_tick(now_);
  EXPECT_EQ(l.next_tick(), now_ + 200ms);
  l.on_tick(now_ + 199ms);
  EXPECT_EQ(sink_.ports.size(), 1u) << "tried again before the back-off";
  l.on_tick(now_ + 200ms);
  EXPECT_EQ(sink_.ports.size(), 2u);
  EXPECT_EQ(l.next_tick(), now_ + 600ms);  // doubled

  auto fast = mdp();
  fast.heartbeat = 5ms;
  fast.reconnect_initial = 0ms;
  fast.reconnect_max = 0ms;
  recording_sink failing;
  failing.fail_open = true;
  liveness quick(fast, failing, heartbeat);
  quick.on_tick(now_);
  EXPECT_EQ(quick.next_tick(), now_ + 5ms);  // one heartbeat interval, shorter than min_retry
}

}  // namespace
}  // namespace fabric::detail
