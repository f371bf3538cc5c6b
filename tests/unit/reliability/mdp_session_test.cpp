// Tests the Majordomo worker session on a fake clock, through a sink that records what it sends
// and plays the connection (opens that fail, sends it refuses): READY, requests and replies,
// heartbeats, the broker's silence and DISCONNECT, requests of an earlier connection, credit,
// malformed input, abandon(), leave() and the settings' bounds.
#include "reliability/mdp_session.hpp"

#include "reliability/mdp.hpp"

#include <fabric/error.hpp>

#include "support/support.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fabric::mdp {
namespace {

using namespace std::chrono_literals;
using fabric::detail::port;
using fabric::detail::time_point;
using frames = std::vector<std::string>;
using fabric::testing::message_of;
using fabric::testing::to_strings;

const std::string ready_cmd(1, '\x01');
const std::string request_cmd(1, '\x02');
const std::string reply_cmd(1, '\x03');
const std::string heartbeat_cmd(1, '\x04');
const std::string disconnect_cmd(1, '\x05');

const frames heartbeat_frames{"", "MDPW01", heartbeat_cmd};
const frames disconnect_frames{"", "MDPW01", disconnect_cmd};

frames ready_frames(const std::string& service, const std::string& credit = {}) {
  frames f{"", "MDPW01", ready_cmd, service};
  if (!credit.empty()) f.push_back(credit);
  return f;
}

frames reply_frames(const std::string& client, const frames& body) {
  frames f{"", "MDPW01", reply_cmd, client, ""};
  f.insert(f.end(), body.begin(), body.end());
  return f;
}

// Plays the DEALER and its connection, and records what goes through it.
class recording_sink final : public fabric::detail::machine_sink {
 public:
  using machine_sink::send;
  result<void> send(port to, message&& m) override {
    ports.push_back(to);
    if (!connected) ADD_FAILURE() << "sent with no connection open";
    if (refuse) return *refuse;
    sent.push_back(to_strings(m));
    m.clear();
    return {};
  }
  void close(port to) noexcept override {
    ports.push_back(to);
    ++closes;
    connected = false;
  }
  result<void> open(port to) override {
    ports.push_back(to);
    ++opens;
    if (failing_opens > 0) {
      --failing_opens;
      return errc::io_error;
    }
    connected = true;
    return {};
  }
  std::vector<frames> take() { return std::exchange(sent, {}); }

  std::vector<frames> sent;
  std::vector<port> ports;
  std::optional<errc> refuse;
  int failing_opens = 0;
  int opens = 0;
  int closes = 0;
  bool connected = false;
};

struct delivered {
  std::string client;
  frames body;
  std::uint64_t connection = 0;
  time_point at{};
};

class WorkerSessionTest : public ::testing::Test {
 protected:
  WorkerSessionTest() {
    settings.service = "echo";
    settings.heartbeat = 1000ms;
    settings.liveness = 3;
    settings.reconnect_initial = 1000ms;
    settings.reconnect_max = 8000ms;
  }

  worker_session& session() {
    if (!session_) {
      session_ = std::make_unique<worker_session>(
          settings, sink,
          [this](std::string_view client, message&& body, std::uint64_t connection, time_point now) {
            requests.push_back({std::string(client), to_strings(body), connection, now});
            if (on_request) on_request(client, connection, now);
          });
    }
    return *session_;
  }
  // Opens the first connection at t0 and takes its READY.
  worker_session& started() {
    session().on_tick(t0);
    EXPECT_EQ(sink.take(), std::vector<frames>{ready_frames("echo")});
    return session();
  }
  void request(const std::string& client, const frames& body, time_point now) {
    session().on_message(worker_request(client, message_of(body)), now);
  }
  void heartbeat(time_point now) { session().on_message(worker_heartbeat(), now); }
  void disconnect(time_point now) { session().on_message(worker_disconnect(), now); }
  // Ticks every `step` from `from` to `to`, both included.
  void tick_through(time_point from, time_point to, std::chrono::milliseconds step) {
    for (time_point t = from; t <= to; t += step) session().on_tick(t);
  }

  const time_point t0 = time_point{} + 1h;
  session_settings settings;
  recording_sink sink;
  std::vector<delivered> requests;
  std::function<void(std::string_view, std::uint64_t, time_point)> on_request;

 private:
  std::unique_ptr<worker_session> session_;
};

// ---- READY

TEST_F(WorkerSessionTest, OpensNothingBeforeTheFirstTick) {
  auto& s = session();
  EXPECT_EQ(sink.opens, 0);
  EXPECT_FALSE(s.open());
  EXPECT_EQ(s.connection(), 0u);
  EXPECT_LE(s.next_tick(), t0);  // due at once
}

TEST_F(WorkerSessionTest, SendsReadyOnTheFirstTick) {
  auto& s = session();
  s.on_tick(t0);
  EXPECT_EQ(sink.opens, 1);
  EXPECT_EQ(sink.take(), std::vector<frames>{ready_frames("echo")});
  EXPECT_TRUE(s.open());
  EXPECT_EQ(s.connection(), 1u);
  EXPECT_EQ(s.stats().connections, 1u);
  EXPECT_EQ(s.next_tick(), t0 + 1000ms);
  s.on_tick(t0 + 10ms);  // early ticks are harmless
  EXPECT_EQ(sink.opens, 1);
  EXPECT_TRUE(sink.take().empty());
}

TEST_F(WorkerSessionTest, SendsReadyWithCreditAboveOne) {
  settings.credit = 4;
  session().on_tick(t0);
  EXPECT_EQ(sink.take(), std::vector<frames>{ready_frames("echo", "4")});
}

TEST_F(WorkerSessionTest, UsesTheConfiguredPort) {
  settings.on = port::backend;
  started();
  request("c1", {"x"}, t0 + 1ms);
  ASSERT_TRUE(session().reply("c1", 1, message_of({"y"}), t0 + 2ms));
  session().leave();
  ASSERT_FALSE(sink.ports.empty());
  for (port p : sink.ports) EXPECT_EQ(p, port::backend);
}

// ---- requests and replies

TEST_F(WorkerSessionTest, DeliversRequestAndSendsReplyWithTheRightFrames) {
  auto& s = started();
  request("client-1", {"hello", "", "world"}, t0 + 5ms);
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].client, "client-1");
  EXPECT_EQ(requests[0].body, (frames{"hello", "", "world"}));
  EXPECT_EQ(requests[0].connection, 1u);
  EXPECT_EQ(requests[0].at, t0 + 5ms);
  EXPECT_EQ(s.in_hand(), 1u);

  ASSERT_TRUE(s.reply("client-1", 1, message_of({"answer", "two"}), t0 + 6ms));
  EXPECT_EQ(sink.take(), std::vector<frames>{reply_frames("client-1", {"answer", "two"})});
  EXPECT_EQ(s.in_hand(), 0u);
  EXPECT_EQ(s.stats().requests, 1u);
  EXPECT_EQ(s.stats().replies, 1u);
  EXPECT_EQ(s.stats().replies_dropped, 0u);
}

TEST_F(WorkerSessionTest, RepliesFromInsideTheCallback) {
  on_request = [this](std::string_view client, std::uint64_t connection, time_point now) {
    EXPECT_TRUE(session().reply(client, connection, message_of({"done"}), now));
  };
  auto& s = started();
  request("c", {"job"}, t0 + 1ms);
  EXPECT_EQ(sink.take(), std::vector<frames>{reply_frames("c", {"done"})});
  EXPECT_EQ(s.in_hand(), 0u);
}

TEST_F(WorkerSessionTest, RequestWithoutBodyIsDeliveredAndAnEmptyReplyIsOneEmptyFrame) {
  auto& s = started();
  s.on_message(message_of({"", "MDPW01", request_cmd, "c", ""}), t0 + 1ms);
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_TRUE(requests[0].body.empty());
  ASSERT_TRUE(s.reply("c", 1, message{}, t0 + 2ms));
  EXPECT_EQ(sink.take(), std::vector<frames>{reply_frames("c", {""})});
}

TEST_F(WorkerSessionTest, ReplyToAClientNotInHandIsSentButChangesNothing) {
  settings.credit = 2;
  session().on_tick(t0);
  (void)sink.take();
  auto& s = session();
  request("a", {"1"}, t0 + 1ms);
  ASSERT_TRUE(s.reply("zz", 1, message_of({"?"}), t0 + 2ms));
  EXPECT_EQ(s.in_hand(), 1u);
  ASSERT_TRUE(s.reply("a", 1, message_of({"1"}), t0 + 3ms));
  EXPECT_EQ(s.in_hand(), 0u);
}

TEST_F(WorkerSessionTest, ReplyWithABadClientAddressThrows) {
  auto& s = started();
  EXPECT_THROW((void)s.reply("", 1, message_of({"x"}), t0), error);
  EXPECT_THROW((void)s.reply(std::string(256, 'c'), 1, message_of({"x"}), t0), error);
}

TEST_F(WorkerSessionTest, RefusedReplyIsPassedOnAndKeepsTheRequestInHand) {
  auto& s = started();
  request("c", {"x"}, t0 + 1ms);
  sink.refuse = errc::back_pressure;
  auto r = s.reply("c", 1, message_of({"y"}), t0 + 2ms);
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.is(errc::back_pressure));
  EXPECT_EQ(s.stats().replies_dropped, 1u);
  EXPECT_EQ(s.stats().replies, 0u);
  EXPECT_EQ(s.in_hand(), 1u);
  sink.refuse.reset();
  EXPECT_TRUE(s.reply("c", 1, message_of({"y"}), t0 + 3ms));
  EXPECT_EQ(s.in_hand(), 0u);
}

TEST_F(WorkerSessionTest, TracksUpToTheCreditAndStillDeliversMore) {
  settings.credit = 2;
  session().on_tick(t0);
  (void)sink.take();
  auto& s = session();
  request("a", {"1"}, t0 + 1ms);
  request("b", {"2"}, t0 + 2ms);
  request("c", {"3"}, t0 + 3ms);  // a broken broker: beyond the credit
  EXPECT_EQ(requests.size(), 3u);
  EXPECT_EQ(s.in_hand(), 2u);
  EXPECT_EQ(s.stats().requests, 3u);
  EXPECT_EQ(s.stats().over_credit, 1u);
  ASSERT_TRUE(s.reply("c", 1, message_of({"3"}), t0 + 4ms));  // sent, though not tracked
  EXPECT_EQ(s.in_hand(), 2u);
  ASSERT_TRUE(s.reply("b", 1, message_of({"2"}), t0 + 5ms));
  ASSERT_TRUE(s.reply("a", 1, message_of({"1"}), t0 + 6ms));
  EXPECT_EQ(s.in_hand(), 0u);
  EXPECT_EQ(sink.take().size(), 3u);
}

// ---- heartbeats

TEST_F(WorkerSessionTest, HeartbeatsWhenQuiet) {
  auto& s = started();
  s.on_tick(t0 + 999ms);
  EXPECT_TRUE(sink.take().empty());
  s.on_tick(t0 + 1000ms);
  EXPECT_EQ(sink.take(), std::vector<frames>{heartbeat_frames});
  EXPECT_EQ(s.next_tick(), t0 + 2000ms);
  heartbeat(t0 + 1500ms);
  s.on_tick(t0 + 2000ms);
  EXPECT_EQ(sink.take(), std::vector<frames>{heartbeat_frames});
  EXPECT_EQ(s.stats().heartbeats_sent, 2u);
  EXPECT_EQ(s.stats().heartbeats_received, 1u);
}

TEST_F(WorkerSessionTest, SendsNoHeartbeatWhileRepliesFlow) {
  auto& s = started();
  for (int i = 1; i <= 20; ++i) {
    const time_point at = t0 + i * 500ms;
    const std::string client = "c" + std::to_string(i);
    request(client, {"x"}, at);
    ASSERT_TRUE(s.reply(client, 1, message_of({"y"}), at));
    s.on_tick(at);
  }
  EXPECT_EQ(s.stats().heartbeats_sent, 0u);
  for (const auto& f : sink.take()) EXPECT_EQ(f[2], reply_cmd);
  s.on_tick(t0 + 11'000ms);  // quiet for an interval since the last reply
  EXPECT_EQ(sink.take(), std::vector<frames>{heartbeat_frames});
}

TEST_F(WorkerSessionTest, BrokerMessagesKeepTheConnectionAlive) {
  auto& s = started();
  for (int i = 1; i <= 30; ++i) {
    heartbeat(t0 + i * 900ms);
    s.on_tick(t0 + i * 900ms);
  }
  EXPECT_TRUE(s.open());
  EXPECT_EQ(sink.closes, 0);
  EXPECT_EQ(s.stats().broker_expiries, 0u);
}

// ---- the broker's silence

TEST_F(WorkerSessionTest, BrokerSilenceClosesThenReopensWithReadyAfterBackOff) {
  auto& s = started();
  tick_through(t0 + 1000ms, t0 + 2999ms, 1000ms);
  EXPECT_TRUE(s.open());
  s.on_tick(t0 + 3000ms);
  EXPECT_FALSE(s.open());
  EXPECT_EQ(sink.closes, 1);
  EXPECT_EQ(s.stats().broker_expiries, 1u);
  EXPECT_EQ(s.next_tick(), t0 + 4000ms);
  (void)sink.take();

  s.on_tick(t0 + 3999ms);
  EXPECT_EQ(sink.opens, 1);
  s.on_tick(t0 + 4000ms);
  EXPECT_EQ(sink.opens, 2);
  EXPECT_TRUE(s.open());
  EXPECT_EQ(s.connection(), 2u);
  EXPECT_EQ(sink.take(), std::vector<frames>{ready_frames("echo")});

  // Silent again: the back-off has doubled.
  s.on_tick(t0 + 7000ms);
  EXPECT_FALSE(s.open());
  EXPECT_EQ(s.next_tick(), t0 + 9000ms);
}

TEST_F(WorkerSessionTest, ValidMessageResetsTheBackOff) {
  auto& s = started();
  s.on_tick(t0 + 3000ms);  // dead: reopen after 1 s
  s.on_tick(t0 + 4000ms);
  s.on_tick(t0 + 7000ms);  // dead again: reopen after 2 s
  s.on_tick(t0 + 9000ms);
  ASSERT_TRUE(s.open());
  heartbeat(t0 + 9500ms);
  s.on_tick(t0 + 12'500ms);
  ASSERT_FALSE(s.open());
  EXPECT_EQ(s.next_tick(), t0 + 13'500ms);
}

TEST_F(WorkerSessionTest, BusySuspendsTheBrokerExpiry) {
  auto& s = started();
  request("c", {"slow"}, t0 + 500ms);
  tick_through(t0 + 600ms, t0 + 20'000ms, 100ms);
  EXPECT_TRUE(s.open());
  EXPECT_EQ(s.stats().broker_expiries, 0u);
  EXPECT_GT(s.stats().heartbeats_sent, 0u);  // heartbeats still go out while busy
  (void)sink.take();

  ASSERT_TRUE(s.reply("c", 1, message_of({"done"}), t0 + 20'000ms));
  // Silence is counted from the reply.
  tick_through(t0 + 20'000ms, t0 + 22'900ms, 100ms);
  EXPECT_TRUE(s.open());
  s.on_tick(t0 + 23'000ms);
  EXPECT_FALSE(s.open());
  EXPECT_EQ(s.stats().broker_expiries, 1u);
}

TEST_F(WorkerSessionTest, MessagesWhileClosedAreStray) {
  auto& s = started();
  s.on_tick(t0 + 3000ms);
  ASSERT_FALSE(s.open());
  request("late", {"x"}, t0 + 3100ms);
  heartbeat(t0 + 3200ms);
  EXPECT_TRUE(requests.empty());
  EXPECT_EQ(s.stats().stray, 2u);
  EXPECT_EQ(s.stats().requests, 0u);
  EXPECT_EQ(s.next_tick(), t0 + 4000ms);  // a stray message is no sign of life
}

// ---- DISCONNECT

TEST_F(WorkerSessionTest, DisconnectAfterValidTrafficReopensAtOnce) {
  auto& s = started();
  heartbeat(t0 + 100ms);
  disconnect(t0 + 200ms);
  EXPECT_FALSE(s.open());
  EXPECT_EQ(sink.closes, 1);
  EXPECT_EQ(s.stats().disconnects_received, 1u);
  EXPECT_EQ(s.next_tick(), t0 + 200ms);
  s.on_tick(t0 + 200ms);
  EXPECT_TRUE(s.open());
  EXPECT_EQ(s.connection(), 2u);
  EXPECT_EQ(sink.take(), std::vector<frames>{ready_frames("echo")});
}

TEST_F(WorkerSessionTest, DisconnectOnAFreshConnectionWaitsTheBackOff) {
  auto& s = started();
  disconnect(t0 + 100ms);
  EXPECT_FALSE(s.open());
  EXPECT_EQ(s.next_tick(), t0 + 1100ms);
  s.on_tick(t0 + 1099ms);
  EXPECT_FALSE(s.open());
  s.on_tick(t0 + 1100ms);
  EXPECT_TRUE(s.open());
  EXPECT_EQ(sink.take(), std::vector<frames>{ready_frames("echo")});
}

TEST_F(WorkerSessionTest, DisconnectWhileBusyForgetsTheRequests) {
  auto& s = started();
  request("c", {"x"}, t0 + 100ms);
  ASSERT_EQ(s.in_hand(), 1u);
  disconnect(t0 + 200ms);
  EXPECT_EQ(s.in_hand(), 0u);
  s.on_tick(t0 + 200ms);
  EXPECT_TRUE(s.open());
  EXPECT_EQ(s.in_hand(), 0u);
}

// ---- requests of an earlier connection

TEST_F(WorkerSessionTest, ReplyAfterReconnectionIsDroppedAndCounted) {
  auto& s = started();
  request("c", {"x"}, t0 + 100ms);
  disconnect(t0 + 200ms);
  s.on_tick(t0 + 200ms);
  ASSERT_EQ(s.connection(), 2u);
  (void)sink.take();

  auto r = s.reply("c", 1, message_of({"late"}), t0 + 300ms);
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.is(errc::peer_unreachable));
  EXPECT_EQ(s.stats().replies_dropped, 1u);
  EXPECT_EQ(s.stats().replies, 0u);
  EXPECT_TRUE(sink.take().empty());

  // A request on the new connection is answered as usual.
  request("c", {"again"}, t0 + 400ms);
  EXPECT_EQ(requests.back().connection, 2u);
  EXPECT_TRUE(s.reply("c", 2, message_of({"ok"}), t0 + 500ms));
}

TEST_F(WorkerSessionTest, ReplyWhileClosedIsDropped) {
  auto& s = started();
  request("c", {"x"}, t0 + 100ms);
  disconnect(t0 + 200ms);
  auto r = s.reply("c", 1, message_of({"late"}), t0 + 200ms);
  EXPECT_TRUE(r.is(errc::peer_unreachable));
  EXPECT_EQ(s.stats().replies_dropped, 1u);
}

// ---- malformed input

TEST_F(WorkerSessionTest, MalformedInputIsCountedAndDropped) {
  auto& s = started();
  const std::vector<frames> bad{
      {},                                                   // no frames
      {"MDPW01", heartbeat_cmd},                            // no delimiter
      {"", "MDPC01", "echo", "x"},                          // the client header
      {"", "MDPW01"},                                       // no command
      {"", "MDPW01", "\x09"},                               // no such command
      {"", "MDPW01", "\x04\x04"},                           // a two-byte command
      {"", "MDPW01", heartbeat_cmd, "extra"},               // frames after HEARTBEAT
      {"", "MDPW01", request_cmd},                          // REQUEST without a client
      {"", "MDPW01", request_cmd, "", "", "x"},             // an empty client
      {"", "MDPW01", request_cmd, "c", "not-empty", "x"},   // no address delimiter
      {"", "MDPW01", ready_cmd, "echo"},                    // READY: a worker's command
      {"", "MDPW01", reply_cmd, "c", "", "x"},              // REPLY: a worker's command
  };
  time_point at = t0;
  for (const auto& f : bad) s.on_message(message_of(f), at += 100ms);
  EXPECT_EQ(s.stats().malformed, bad.size());
  EXPECT_TRUE(requests.empty());
  EXPECT_TRUE(s.open());
  EXPECT_EQ(s.stats().requests, 0u);
  EXPECT_EQ(s.stats().heartbeats_received, 0u);
  EXPECT_EQ(s.stats().disconnects_received, 0u);
  // Garbage proves the broker alive: silence is counted from the last of it.
  s.on_tick(at + 2999ms);
  EXPECT_TRUE(s.open());
  s.on_tick(at + 3000ms);
  EXPECT_FALSE(s.open());
}

// ---- failures to open

TEST_F(WorkerSessionTest, OpenFailureIsRetriedAfterBackOff) {
  sink.failing_opens = 2;
  auto& s = session();
  s.on_tick(t0);
  EXPECT_EQ(sink.opens, 1);
  EXPECT_FALSE(s.open());
  EXPECT_TRUE(sink.take().empty());
  EXPECT_EQ(s.stats().open_failures, 1u);
  EXPECT_EQ(s.next_tick(), t0 + 1000ms);
  s.on_tick(t0 + 1000ms);
  EXPECT_EQ(sink.opens, 2);
  EXPECT_EQ(s.next_tick(), t0 + 3000ms);  // doubled
  s.on_tick(t0 + 2999ms);
  EXPECT_EQ(sink.opens, 2);
  s.on_tick(t0 + 3000ms);
  EXPECT_TRUE(s.open());
  EXPECT_EQ(s.connection(), 1u);
  EXPECT_EQ(s.stats().connections, 1u);
  EXPECT_EQ(sink.take(), std::vector<frames>{ready_frames("echo")});
}

TEST_F(WorkerSessionTest, RefusedReadyClosesAndIsRetriedAfterBackOff) {
  sink.refuse = errc::would_block;
  auto& s = session();
  s.on_tick(t0);
  EXPECT_FALSE(s.open());
  EXPECT_EQ(sink.closes, 1);
  EXPECT_FALSE(sink.connected);
  EXPECT_EQ(s.connection(), 0u);
  EXPECT_EQ(s.stats().open_failures, 1u);
  sink.refuse.reset();
  s.on_tick(s.next_tick());
  EXPECT_TRUE(s.open());
  EXPECT_EQ(s.connection(), 1u);
  EXPECT_EQ(sink.take(), std::vector<frames>{ready_frames("echo")});
}

// ---- abandon() and leave()

TEST_F(WorkerSessionTest, AbandonGivesTheRequestsBackOnAFreshConnection) {
  auto& s = started();
  EXPECT_EQ(s.abandon(t0), 0u);  // nothing in hand: nothing happens
  EXPECT_TRUE(s.open());
  request("c", {"x"}, t0 + 100ms);
  EXPECT_EQ(s.abandon(t0 + 200ms), 1u);
  EXPECT_EQ(sink.take(), std::vector<frames>{disconnect_frames});
  EXPECT_FALSE(s.open());
  EXPECT_EQ(s.in_hand(), 0u);
  EXPECT_EQ(s.stats().abandoned, 1u);
  s.on_tick(t0 + 200ms);  // the first one is replaced at once
  EXPECT_TRUE(s.open());
  EXPECT_EQ(sink.take(), std::vector<frames>{ready_frames("echo")});
  EXPECT_TRUE(s.reply("c", 1, message_of({"late"}), t0 + 300ms).is(errc::peer_unreachable));

  // Abandoning again with nothing answered in between waits.
  request("d", {"x"}, t0 + 400ms);
  EXPECT_EQ(s.abandon(t0 + 500ms), 1u);
  EXPECT_EQ(s.next_tick(), t0 + 1500ms);
}

TEST_F(WorkerSessionTest, LeaveSendsDisconnectAndNeverReopens) {
  auto& s = started();
  request("c", {"x"}, t0 + 100ms);
  s.leave();
  EXPECT_EQ(sink.take(), std::vector<frames>{disconnect_frames});
  EXPECT_EQ(sink.closes, 1);
  EXPECT_FALSE(s.open());
  EXPECT_TRUE(s.left());
  EXPECT_EQ(s.in_hand(), 0u);
  EXPECT_EQ(s.next_tick(), time_point::max());

  s.leave();  // idempotent
  tick_through(t0 + 1s, t0 + 120s, 1s);
  EXPECT_EQ(sink.opens, 1);
  EXPECT_TRUE(sink.take().empty());
  request("d", {"x"}, t0 + 121s);
  EXPECT_EQ(requests.size(), 1u);
  EXPECT_EQ(s.stats().stray, 1u);
  EXPECT_TRUE(s.reply("c", 1, message_of({"y"}), t0 + 122s).is(errc::closed));
  EXPECT_EQ(s.stats().replies_dropped, 1u);
  EXPECT_EQ(s.abandon(t0 + 123s), 0u);
}

TEST_F(WorkerSessionTest, LeaveWhileClosedSendsNothing) {
  sink.failing_opens = 1;
  auto& s = session();
  s.on_tick(t0);
  s.leave();
  EXPECT_TRUE(sink.take().empty());
  EXPECT_EQ(sink.closes, 0);
  s.on_tick(t0 + 60s);
  EXPECT_EQ(sink.opens, 1);
}

TEST_F(WorkerSessionTest, LeaveFromInsideTheCallback) {
  on_request = [this](std::string_view, std::uint64_t, time_point) { session().leave(); };
  auto& s = started();
  request("c", {"x"}, t0 + 100ms);
  EXPECT_TRUE(s.left());
  EXPECT_EQ(sink.take(), std::vector<frames>{disconnect_frames});
  EXPECT_EQ(s.in_hand(), 0u);
}

// ---- settings

TEST_F(WorkerSessionTest, RefusesBadSettings) {
  const auto refused = [this](session_settings s) {
    try {
      worker_session w(s, sink, [](std::string_view, message&&, std::uint64_t, time_point) {});
    } catch (const error& e) {
      return e.code() == errc::invalid_argument;
    }
    return false;
  };
  const session_settings good = settings;
  auto s = good;
  s.service = "";
  EXPECT_TRUE(refused(s));
  s.service = std::string(256, 's');
  EXPECT_TRUE(refused(s));
  s.service = "mmi.service";
  EXPECT_TRUE(refused(s));
  s = good;
  s.credit = 0;
  EXPECT_TRUE(refused(s));
  s.credit = 1025;
  EXPECT_TRUE(refused(s));
  s = good;
  s.heartbeat = 0ms;
  EXPECT_TRUE(refused(s));
  s.heartbeat = std::chrono::hours(2);
  EXPECT_TRUE(refused(s));
  s = good;
  s.liveness = 0;
  EXPECT_TRUE(refused(s));
  s.liveness = 1001;
  EXPECT_TRUE(refused(s));
  s = good;
  s.reconnect_initial = -1ms;
  EXPECT_TRUE(refused(s));
  s = good;
  s.reconnect_initial = 2000ms;
  s.reconnect_max = 1000ms;
  EXPECT_TRUE(refused(s));
  s = good;
  s.reconnect_max = std::chrono::hours(2);
  EXPECT_TRUE(refused(s));

  EXPECT_THROW((void)worker_session(good, sink, nullptr), error);

  // The edges of each range are accepted.
  s = good;
  s.service = std::string(255, 's');
  s.credit = 1024;
  s.heartbeat = 1ms;
  s.liveness = 1000;
  s.reconnect_initial = 0ms;
  s.reconnect_max = 0ms;
  EXPECT_FALSE(refused(s));
  EXPECT_EQ(sink.opens, 0);  // constructing opens nothing
}

}  // namespace
}  // namespace fabric::mdp
