// Tests the FRC/1 receiver machine on a fake clock, with a sink that records what it sends and a
// journal in memory whose commits the test completes by hand: handshakes decided on durable state,
// in-order acceptance within credit, one commit in flight, ACKs only for what is durable, expiries
// kept until the sender has had them, SKIPs, heartbeats, liveness and protocol errors. Also the
// small codecs of the receiver's journal records.
#include "reliability/frc_receiver.hpp"

#include "reliability/frc.hpp"

#include <fabric/error.hpp>

#include "support/support.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fabric::frc {
namespace {

using namespace std::chrono_literals;
using detail::time_point;

constexpr std::uint64_t self_inc = 0x5EC0'0000'0000'0001;
constexpr std::uint64_t inc_a = 0xA1;
constexpr std::uint64_t inc_b = 0xB2;

// What the receiver sent, read as the sender's DEALER reads it, its fields copied out.
struct sent {
  std::string peer;
  command what = command::heartbeat;
  std::uint32_t link = 0;
  welcome_fields welcome;
  std::uint64_t taken = 0;              // ACK
  std::uint32_t credit = 0;             // ACK
  std::vector<std::uint64_t> expired;   // ACK
  std::uint64_t expected = 0;           // NACK
  std::string code;                     // REFUSE
  std::string reason;                   // REFUSE
};

// The ROUTER: records every message, or refuses them all (a full or vanished peer).
class fake_sink final : public detail::machine_sink {
 public:
  using machine_sink::send;
  result<void> send(detail::port, message&& m) override {
    if (refusing) return errc::back_pressure;
    message mine = std::move(m);
    sent s;
    s.peer = std::string(mine.view(0));
    (void)mine.pop_front();  // the routing id goes; the sender sees the rest
    const parsed p = parse_at_sender(mine);
    EXPECT_TRUE(p) << "the receiver sent what a sender cannot parse: " << describe(p.error);
    s.what = p.what;
    s.link = p.link;
    s.welcome = p.welcome;
    s.taken = p.ack.taken;
    s.credit = p.ack.credit;
    for (const std::uint64_t e : p.ack.expired) s.expired.push_back(e);
    s.expected = p.expected_seq;
    s.code = std::string(p.refuse.code);
    s.reason = std::string(p.refuse.reason);
    out.push_back(std::move(s));
    return {};
  }

  // Takes everything sent so far.
  std::vector<sent> take() { return std::exchange(out, {}); }

  bool refusing = false;
  std::vector<sent> out;
};

// The receiver's journal in memory. A commit waits in `in_flight` until the test completes it;
// apply() then writes it as the journal would.
class fake_store final : public receiver_store {
 public:
  result<std::optional<channel_record>> load(std::string_view key) override {
    ++loads;
    if (failing_loads) return errc::io_error;
    const auto it = records.find(std::string(key));
    if (it == records.end()) return std::optional<channel_record>();
    return std::optional<channel_record>(it->second);
  }
  result<std::vector<std::uint64_t>> load_expired(std::string_view key) override {
    const auto it = expired.find(std::string(key));
    if (it == expired.end()) return std::vector<std::uint64_t>();
    return it->second;
  }
  void commit(commit_batch&& batch) override { in_flight.push_back(std::move(batch)); }
  void report(const channel_event& e) override { events.push_back(e); }

  void apply(const commit_batch& b) {
    for (const auto& u : b.updates) {
      records[u.key] = u.record;
      if (u.archived) history.emplace_back(u.key, *u.archived);
      if (u.expired_kept) expired[u.key] = *u.expired_kept;
    }
  }

  std::map<std::string, channel_record> records;
  std::map<std::string, std::vector<std::uint64_t>> expired;
  std::vector<std::pair<std::string, channel_record>> history;
  std::deque<commit_batch> in_flight;
  std::vector<channel_event> events;
  std::size_t loads = 0;
  bool failing_loads = false;
};

// A HELLO's fields for channel svc-a/`stream`.
hello_fields greeting(std::uint64_t acked = 0, std::uint64_t last = 0, std::uint64_t inc = inc_a,
                      std::string_view stream = "orders", std::uint32_t heartbeat_ms = 1000) {
  return hello_fields{.stream = stream, .sender = "svc-a", .receiver_inc_seen = 0, .sender_inc = inc,
                      .acked = acked, .last = last, .heartbeat_ms = heartbeat_ms};
}

const std::string orders = channel_key("svc-a", "orders");

// Raw input, frame by frame, for what the builders would never write.
message raw(const std::vector<std::string>& frames) { return testing::message_of(frames); }

struct entry {
  std::uint32_t ttl_ms = 0;
  std::string body;
};

class FrcReceiverTest : public ::testing::Test {
 protected:
  FrcReceiverTest() {
    settings.incarnation = self_inc;
    settings.heartbeat = 1000ms;
    settings.liveness = 3;
    settings.credit = 8;
    settings.max_message = 64;
    settings.max_links = 4;
    settings.max_batch = 4;
    settings.nack_interval = 100ms;
  }

  receiver_machine& machine() {
    if (!machine_) machine_ = std::make_unique<receiver_machine>(settings, sink, store);
    return *machine_;
  }
  // A message from `peer`, as the ROUTER hands it over: the routing id in front.
  void in(std::string_view peer, message&& m) {
    m.push_front(peer);
    machine().on_message(std::move(m), now);
  }
  void hello(std::string_view peer, std::uint32_t link, const hello_fields& h) {
    message m;
    write_hello(m, link, h);
    in(peer, std::move(m));
  }
  void data(std::string_view peer, std::uint32_t link, std::uint64_t first, const std::vector<entry>& entries) {
    message m;
    data_writer w(m, link, first);
    for (const auto& e : entries) w.add(e.ttl_ms, e.body);
    w.finish();
    in(peer, std::move(m));
  }
  // DATA of one message `seq` whose body is one octet above max_message: a protocol error.
  void oversized(std::string_view peer, std::uint32_t link, std::uint64_t seq) {
    data(peer, link, seq, {{0, std::string(settings.max_message + 1, 'x')}});
  }
  // DATA of `n` messages from `first`, bodies "m<seq>", no time to live.
  void data(std::string_view peer, std::uint32_t link, std::uint64_t first, std::size_t n) {
    std::vector<entry> entries;
    for (std::uint64_t s = first; s < first + n; ++s) entries.push_back({0, "m" + std::to_string(s)});
    data(peer, link, first, entries);
  }
  void skip(std::string_view peer, std::uint32_t link, std::uint64_t first, std::uint64_t last,
            std::string_view reason = "expired at sender") {
    message m;
    write_skip(m, link, skip_fields{.first_seq = first, .last_seq = last, .reason = reason});
    in(peer, std::move(m));
  }
  void heartbeat(std::string_view peer) {
    message m;
    write_heartbeat(m);
    in(peer, std::move(m));
  }
  void goodbye(std::string_view peer) {
    message m;
    write_goodbye(m);
    in(peer, std::move(m));
  }
  void goodbye(std::string_view peer, std::uint32_t link) {
    message m;
    write_goodbye(m, link);
    in(peer, std::move(m));
  }

  // Completes the oldest commit in flight with `outcome`: the journal keeps it on success, and the
  // machine is told. Returns the batch, for a look at what it wrote.
  commit_batch commit(result<void> outcome = {}) {
    EXPECT_FALSE(store.in_flight.empty()) << "no commit in flight";
    if (store.in_flight.empty()) return {};
    commit_batch b = std::move(store.in_flight.front());
    store.in_flight.pop_front();
    if (outcome) store.apply(b);
    machine().on_committed(b.id, outcome, now);
    return b;
  }
  // Opens `link` from `peer`: HELLO, the handshake's commit when it needs one, and the WELCOME,
  // which it returns (everything else sent on the way is left in the sink).
  sent open(std::string_view peer, std::uint32_t link, const hello_fields& h) {
    hello(peer, link, h);
    if (sink.out.empty() && !store.in_flight.empty()) commit();
    std::vector<sent> got = sink.take();
    EXPECT_FALSE(got.empty()) << "no answer to the HELLO";
    if (got.empty()) return {};
    EXPECT_EQ(got.front().what, command::welcome);
    sent w = got.front();
    got.erase(got.begin());
    sink.out = std::move(got);
    return w;
  }
  // Runs every tick that falls due while the clock moves forward by `d`.
  void run_for(std::chrono::milliseconds d) {
    const time_point end = now + d;
    while (machine().next_tick() <= end) {
      now = std::max(now, machine().next_tick());
      machine().on_tick(now);
    }
    now = end;
  }
  std::optional<receiver_channel_stats> channel(std::string_view stream = "orders") {
    for (auto& c : machine().channel_stats()) {
      if (c.sender == "svc-a" && c.stream == stream) return c;
    }
    return std::nullopt;
  }

  receiver_settings settings;
  fake_sink sink;
  fake_store store;
  time_point now{std::chrono::seconds(1000)};
  std::unique_ptr<receiver_machine> machine_;
};

// ---- handshakes (section 7)

TEST_F(FrcReceiverTest, FirstContactIsWelcomedOnlyOnceItsRecordIsDurable) {
  hello("p1", 7, greeting(0, 3));
  EXPECT_TRUE(sink.take().empty()) << "a WELCOME before the record is durable";
  ASSERT_EQ(store.in_flight.size(), 1U);
  {
    const commit_batch& b = store.in_flight.front();
    ASSERT_EQ(b.updates.size(), 1U);
    EXPECT_EQ(b.updates[0].key, orders);
    EXPECT_EQ(b.updates[0].sender, "svc-a");
    EXPECT_EQ(b.updates[0].stream, "orders");
    EXPECT_EQ(b.updates[0].record, (channel_record{inc_a, 0}));
    EXPECT_FALSE(b.updates[0].archived);
    EXPECT_TRUE(b.updates[0].entries.empty());
  }
  EXPECT_TRUE(machine().committing());
  EXPECT_TRUE(store.events.empty()) << "a fresh sender is no event";

  commit();
  const auto got = sink.take();
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].peer, "p1");
  EXPECT_EQ(got[0].what, command::welcome);
  EXPECT_EQ(got[0].link, 7U);
  EXPECT_EQ(got[0].welcome, (welcome_fields{.receiver_inc = self_inc, .taken = 0, .credit = 8,
                                            .heartbeat_ms = 1000, .max_message = 64}));
  EXPECT_EQ(store.records[orders], (channel_record{inc_a, 0}));
  EXPECT_FALSE(machine().committing());
  const auto c = channel();
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->linked);
  EXPECT_EQ(c->welcomes, 1U);
  EXPECT_EQ(c->sender_incarnation, inc_a);
}

TEST_F(FrcReceiverTest, FirstContactAfterAcknowledgedHistoryStartsAtTheSendersCursorAndSaysSo) {
  hello("p1", 7, greeting(5, 9));
  ASSERT_EQ(store.in_flight.size(), 1U);
  EXPECT_EQ(store.in_flight.front().updates[0].record, (channel_record{inc_a, 5}));
  ASSERT_EQ(store.events.size(), 1U);
  EXPECT_EQ(store.events[0].what, hello_event::joined_late);
  EXPECT_EQ(store.events[0].sender, "svc-a");
  EXPECT_EQ(store.events[0].stream, "orders");
  EXPECT_EQ(store.events[0].from, 1U);
  EXPECT_EQ(store.events[0].to, 5U);
  EXPECT_EQ(store.events[0].new_incarnation, inc_a);
  EXPECT_TRUE(sink.take().empty());

  commit();
  const auto got = sink.take();
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].what, command::welcome);
  EXPECT_EQ(got[0].welcome.taken, 5U);
  EXPECT_EQ(channel()->joined_late, 1U);

  // The sender resumes at 6, which is accepted as the next in order.
  data("p1", 7, 6, 1);
  ASSERT_EQ(store.in_flight.size(), 1U);
  EXPECT_EQ(store.in_flight.front().updates[0].entries[0].seq, 6U);
}

TEST_F(FrcReceiverTest, AKnownChannelOfTheSameIncarnationIsWelcomedAtOnceWithItsDurableTaken) {
  store.records[orders] = {inc_a, 4};
  hello("p1", 7, greeting(2, 9));
  EXPECT_TRUE(store.in_flight.empty()) << "nothing to write: the journal already says it";
  const auto got = sink.take();
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].what, command::welcome);
  EXPECT_EQ(got[0].welcome.taken, 4U);
  EXPECT_TRUE(store.events.empty());
}

TEST_F(FrcReceiverTest, ASenderBehindWhatWasTakenIsRefusedAsRegressed) {
  store.records[orders] = {inc_a, 4};
  hello("p1", 7, greeting(0, 3));
  const auto got = sink.take();
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].what, command::refuse);
  EXPECT_EQ(got[0].link, 7U);
  EXPECT_EQ(got[0].code, "sender-regressed");
  EXPECT_FALSE(got[0].reason.empty());
  EXPECT_TRUE(store.in_flight.empty());
  EXPECT_EQ(store.records[orders], (channel_record{inc_a, 4})) << "the refusal changes nothing durable";
  EXPECT_EQ(machine().stats().refused, 1U);
  EXPECT_EQ(machine().stats().links, 0U);
  // DATA on the refused link is on no link at all.
  data("p1", 7, 5, 1);
  const auto after = sink.take();
  ASSERT_EQ(after.size(), 1U);
  EXPECT_EQ(after[0].what, command::goodbye);
}

TEST_F(FrcReceiverTest, AnotherIncarnationWhileTheOldLinkIsLiveIsRefusedAsADuplicate) {
  open("p1", 1, greeting(0, 0, inc_a));
  hello("p2", 1, greeting(0, 0, inc_b));
  const auto got = sink.take();
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].peer, "p2");
  EXPECT_EQ(got[0].what, command::refuse);
  EXPECT_EQ(got[0].code, "duplicate-sender");
  EXPECT_TRUE(store.in_flight.empty());
  EXPECT_EQ(store.records[orders], (channel_record{inc_a, 0}));
  EXPECT_TRUE(store.events.empty());

  // The old link carries on.
  data("p1", 1, 1, 1);
  commit();
  const auto acks = sink.take();
  ASSERT_EQ(acks.size(), 1U);
  EXPECT_EQ(acks[0].peer, "p1");
  EXPECT_EQ(acks[0].what, command::ack);
  EXPECT_EQ(acks[0].taken, 1U);
}

TEST_F(FrcReceiverTest, AnotherIncarnationWithNoLiveLinkReplacesTheRecordAndKeepsTheOldInHistory) {
  store.records[orders] = {inc_a, 7};
  store.expired[orders] = {3, 5};
  hello("p1", 2, greeting(0, 2, inc_b));
  EXPECT_TRUE(sink.take().empty()) << "a WELCOME before the new record is durable";
  ASSERT_EQ(store.events.size(), 1U);
  EXPECT_EQ(store.events[0].what, hello_event::sender_replaced);
  EXPECT_EQ(store.events[0].to, 7U);
  EXPECT_EQ(store.events[0].old_incarnation, inc_a);
  EXPECT_EQ(store.events[0].new_incarnation, inc_b);
  ASSERT_EQ(store.in_flight.size(), 1U);
  {
    const commit_update& u = store.in_flight.front().updates.at(0);
    EXPECT_EQ(u.record, (channel_record{inc_b, 0}));
    ASSERT_TRUE(u.archived);
    EXPECT_EQ(*u.archived, (channel_record{inc_a, 7}));
    ASSERT_TRUE(u.expired_kept) << "the old incarnation's expiries mean nothing to the new one";
    EXPECT_TRUE(u.expired_kept->empty());
  }

  commit();
  const auto got = sink.take();
  ASSERT_EQ(got.size(), 1U) << "no expiry of the old incarnation is reported to the new one";
  EXPECT_EQ(got[0].what, command::welcome);
  EXPECT_EQ(got[0].welcome.taken, 0U);
  EXPECT_EQ(store.records[orders], (channel_record{inc_b, 0}));
  ASSERT_EQ(store.history.size(), 1U);
  EXPECT_EQ(store.history[0].second, (channel_record{inc_a, 7}));
  EXPECT_TRUE(store.expired[orders].empty());
  EXPECT_EQ(channel()->sender_resets, 1U);
}

TEST_F(FrcReceiverTest, ANewIncarnationIsTakenOnceTheOldOneSaidGoodbye) {
  open("p1", 1, greeting(0, 0, inc_a));
  data("p1", 1, 1, 2);
  commit();
  (void)sink.take();
  goodbye("p1", 1);
  hello("p2", 1, greeting(3, 3, inc_b));  // a fresh journal restored to acked 3 elsewhere
  ASSERT_EQ(store.in_flight.size(), 1U);
  EXPECT_EQ(store.in_flight.front().updates[0].record, (channel_record{inc_b, 3}));
  ASSERT_TRUE(store.in_flight.front().updates[0].archived);
  EXPECT_EQ(*store.in_flight.front().updates[0].archived, (channel_record{inc_a, 2}));
  commit();
  const auto got = sink.take();
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].peer, "p2");
  EXPECT_EQ(got[0].welcome.taken, 3U);
}

TEST_F(FrcReceiverTest, ARestoredReceiverWelcomesWithItsOwnTakenAndReportsTheRangeWantedAgain) {
  store.records[orders] = {inc_a, 3};
  const sent w = open("p1", 1, greeting(6, 9));
  EXPECT_EQ(w.welcome.taken, 3U);
  EXPECT_TRUE(store.in_flight.empty());
  ASSERT_EQ(store.events.size(), 1U);
  EXPECT_EQ(store.events[0].what, hello_event::receiver_regressed);
  EXPECT_EQ(store.events[0].from, 4U);
  EXPECT_EQ(store.events[0].to, 6U);
  EXPECT_EQ(channel()->regressions, 1U);
  // The sender sends 4 .. 6 again, and they are taken.
  data("p1", 1, 4, 3);
  ASSERT_EQ(store.in_flight.size(), 1U);
  EXPECT_EQ(store.in_flight.front().messages(), 3U);
}

TEST_F(FrcReceiverTest, ChannelsBeyondTheLinkBoundAreRefusedUntilOneCloses) {
  settings.max_links = 2;
  open("p1", 1, greeting(0, 0, inc_a, "s1"));
  open("p1", 2, greeting(0, 0, inc_a, "s2"));
  hello("p2", 1, greeting(0, 0, inc_a, "s3"));
  auto got = sink.take();
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].peer, "p2");
  EXPECT_EQ(got[0].what, command::refuse);
  EXPECT_EQ(got[0].code, "too-many-links");
  EXPECT_TRUE(store.in_flight.empty()) << "nothing is recorded for a refused channel";
  EXPECT_FALSE(channel("s3")) << "a refused channel is not kept in memory beyond the bound";
  EXPECT_EQ(machine().stats().links, 2U);

  goodbye("p1", 2);
  EXPECT_EQ(machine().stats().links, 1U);
  const sent w = open("p2", 1, greeting(0, 0, inc_a, "s3"));
  EXPECT_EQ(w.peer, "p2");
  EXPECT_EQ(machine().stats().links, 2U);
}

TEST_F(FrcReceiverTest, ASenderReconnectingAtTheLinkBoundTakesOverItsOwnChannel) {
  settings.max_links = 1;
  open("p1", 1, greeting());
  // The sender lost its connection and comes back on another before p1 is known dead.
  const sent w = open("p2", 1, greeting());
  EXPECT_EQ(w.peer, "p2");
  EXPECT_EQ(machine().stats().links, 1U);
  data("p1", 1, 1, 1);  // the old connection no longer has the link
  const auto got = sink.take();
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].peer, "p1");
  EXPECT_EQ(got[0].what, command::goodbye);
  EXPECT_EQ(got[0].link, 1U);
}

TEST_F(FrcReceiverTest, HellosArrivingDuringACommitAreAnsweredOnceItIsDurable) {
  hello("p1", 1, greeting(0, 0, inc_a, "s1"));
  ASSERT_EQ(store.in_flight.size(), 1U);
  store.records[channel_key("svc-a", "s2")] = {inc_a, 2};
  hello("p2", 1, greeting(0, 5, inc_a, "s2"));  // known: would be welcomed at once, but waits
  hello("p3", 1, greeting(0, 0, inc_a, "s3"));  // first contact: needs a commit of its own
  EXPECT_TRUE(sink.take().empty());
  EXPECT_EQ(store.in_flight.size(), 1U) << "a second commit in flight";

  commit();
  auto got = sink.take();
  ASSERT_EQ(got.size(), 2U);
  EXPECT_EQ(got[0].peer, "p1");
  EXPECT_EQ(got[0].what, command::welcome);
  EXPECT_EQ(got[1].peer, "p2");
  EXPECT_EQ(got[1].what, command::welcome);
  EXPECT_EQ(got[1].welcome.taken, 2U);
  ASSERT_EQ(store.in_flight.size(), 1U) << "the held first contact is committed next";
  EXPECT_EQ(store.in_flight.front().updates[0].stream, "s3");

  commit();
  got = sink.take();
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].peer, "p3");
  EXPECT_EQ(got[0].what, command::welcome);
}

TEST_F(FrcReceiverTest, AFailedHandshakeCommitDropsTheLinkWithoutAWelcome) {
  hello("p1", 1, greeting());
  commit(errc::io_error);
  EXPECT_TRUE(sink.take().empty());
  EXPECT_EQ(machine().stats().commit_failures, 1U);
  EXPECT_EQ(machine().stats().links, 0U);
  EXPECT_TRUE(store.records.empty());
  EXPECT_TRUE(store.in_flight.empty());

  // The sender greets again and the record is written this time.
  const sent w = open("p1", 1, greeting());
  EXPECT_EQ(w.welcome.taken, 0U);
  EXPECT_EQ(store.records[orders], (channel_record{inc_a, 0}));
}

TEST_F(FrcReceiverTest, AFailedCommitThatReplacedAnIncarnationStillClearsItsExpiriesNextTime) {
  store.records[orders] = {inc_a, 7};
  store.expired[orders] = {3, 5};
  hello("p1", 1, greeting(0, 0, inc_b));
  commit(errc::io_error);
  EXPECT_EQ(store.expired[orders], (std::vector<std::uint64_t>{3, 5}));

  hello("p1", 1, greeting(0, 0, inc_b));
  ASSERT_EQ(store.in_flight.size(), 1U);
  const commit_update& u = store.in_flight.front().updates.at(0);
  EXPECT_EQ(u.record, (channel_record{inc_b, 0}));
  ASSERT_TRUE(u.expired_kept) << "the old incarnation's expiries would be reported to the new one";
  EXPECT_TRUE(u.expired_kept->empty());
  commit();
  EXPECT_TRUE(store.expired[orders].empty());
}

TEST_F(FrcReceiverTest, AFailedReplacementGivesTheOldIncarnationBackItsKeptExpiries) {
  store.records[orders] = {inc_a, 7};
  store.expired[orders] = {3, 5};
  hello("p2", 1, greeting(0, 0, inc_b));
  commit(errc::io_error);
  // The journal still says inc_a took 7 and expired 3 and 5, which inc_a may not have had yet.
  const sent w = open("p1", 1, greeting(2, 7, inc_a));
  EXPECT_EQ(w.welcome.taken, 7U);
  const auto got = sink.take();
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].what, command::ack);
  EXPECT_EQ(got[0].expired, (std::vector<std::uint64_t>{3, 5}));
}

TEST_F(FrcReceiverTest, AHelloIsDroppedWhenTheJournalCannotBeRead) {
  store.failing_loads = true;
  hello("p1", 1, greeting());
  EXPECT_TRUE(sink.take().empty()) << "the sender greets again";
  EXPECT_TRUE(store.in_flight.empty());
  EXPECT_EQ(machine().stats().store_errors, 1U);
  EXPECT_EQ(machine().stats().links, 0U);
  store.failing_loads = false;
  open("p1", 1, greeting());
}

// ---- DATA (section 5.2)

TEST_F(FrcReceiverTest, AcknowledgesOnlyAfterTheCommitIsDurable) {
  open("p1", 1, greeting(0, 3));
  data("p1", 1, 1, {{0, "a"}, {0, "b"}, {0, "c"}});
  EXPECT_TRUE(sink.take().empty()) << "an ACK before the mark is durable";
  ASSERT_EQ(store.in_flight.size(), 1U);
  {
    const commit_batch& b = store.in_flight.front();
    ASSERT_EQ(b.updates.size(), 1U);
    const commit_update& u = b.updates[0];
    EXPECT_EQ(u.record, (channel_record{inc_a, 3}));
    EXPECT_FALSE(u.archived);
    EXPECT_FALSE(u.expired_kept);
    ASSERT_EQ(u.entries.size(), 3U);
    for (std::size_t i = 0; i < 3; ++i) {
      EXPECT_EQ(u.entries[i].kind, entry_kind::deliver);
      EXPECT_EQ(u.entries[i].seq, i + 1);
      EXPECT_EQ(u.entries[i].last, i + 1);
      EXPECT_EQ(view(u.entries[i].body), std::string(1, static_cast<char>('a' + i)));
    }
  }
  const auto pending = channel();
  EXPECT_EQ(pending->taken, 0U);
  EXPECT_EQ(pending->accepted, 3U);

  commit();
  const auto got = sink.take();
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].what, command::ack);
  EXPECT_EQ(got[0].link, 1U);
  EXPECT_EQ(got[0].taken, 3U);
  EXPECT_EQ(got[0].credit, 8U);
  EXPECT_TRUE(got[0].expired.empty());
  EXPECT_EQ(store.records[orders], (channel_record{inc_a, 3}));
  const auto c = channel();
  EXPECT_EQ(c->taken, 3U);
  EXPECT_EQ(c->delivered, 3U);
  EXPECT_EQ(c->pending, 0U);
}

TEST_F(FrcReceiverTest, DuplicatesAreDroppedAndAnsweredByOneAckOfTheDurableTaken) {
  open("p1", 1, greeting());
  data("p1", 1, 1, 2);
  commit();
  EXPECT_EQ(sink.take().size(), 1U);

  data("p1", 1, 1, 3);  // 1 and 2 again, then 3
  auto got = sink.take();
  ASSERT_EQ(got.size(), 1U) << "one ACK per DATA, however many duplicates";
  EXPECT_EQ(got[0].what, command::ack);
  EXPECT_EQ(got[0].taken, 2U);
  EXPECT_EQ(channel()->duplicates, 2U);
  ASSERT_EQ(store.in_flight.size(), 1U);
  ASSERT_EQ(store.in_flight.front().messages(), 1U);
  EXPECT_EQ(store.in_flight.front().updates[0].entries[0].seq, 3U);

  // 3 is accepted but not durable: its duplicate is answered with the durable taken, 2.
  data("p1", 1, 3, 1);
  got = sink.take();
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].taken, 2U);
  EXPECT_EQ(store.in_flight.size(), 1U);

  commit();
  got = sink.take();
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].taken, 3U);
  EXPECT_TRUE(store.in_flight.empty()) << "the duplicate was not queued for a commit";
}

TEST_F(FrcReceiverTest, AGapIsNackedWithTheExpectedSequenceAtMostOncePerInterval) {
  open("p1", 1, greeting());
  data("p1", 1, 1, 1);
  data("p1", 1, 3, 2);  // 2 was lost on the way
  auto got = sink.take();
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].what, command::nack);
  EXPECT_EQ(got[0].link, 1U);
  EXPECT_EQ(got[0].expected, 2U);

  data("p1", 1, 5, 1);
  EXPECT_TRUE(sink.take().empty()) << "a second NACK within nack_interval";
  now += 99ms;
  data("p1", 1, 5, 1);
  EXPECT_TRUE(sink.take().empty());
  now += 1ms;
  data("p1", 1, 6, 1);
  got = sink.take();
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].expected, 2U);
  EXPECT_EQ(channel()->gaps, 4U);
  EXPECT_EQ(machine().stats().nacks_sent, 2U);

  // Nothing after the gap was kept: the retransmission from 2 is taken in order.
  data("p1", 1, 2, 5);
  commit();  // 1
  commit();  // 2 .. 5
  commit();  // 6
  EXPECT_EQ(store.records[orders].taken, 6U);
}

TEST_F(FrcReceiverTest, DataBeyondTheCreditIsAProtocolError) {
  open("p1", 1, greeting());
  data("p1", 1, 1, 8);  // the whole credit
  ASSERT_EQ(store.in_flight.size(), 1U);
  data("p1", 1, 9, 1);
  EXPECT_TRUE(sink.take().empty());
  EXPECT_EQ(machine().stats().protocol_errors, 1U);
  EXPECT_EQ(channel()->accepted, 8U);

  commit();  // 1 .. 4 (max_batch)
  commit();  // 5 .. 8
  EXPECT_EQ(store.records[orders].taken, 8U);
  (void)sink.take();
  data("p1", 1, 9, 8);  // the credit moved with taken
  EXPECT_EQ(channel()->accepted, 16U);
  EXPECT_EQ(machine().stats().protocol_errors, 1U);
}

TEST_F(FrcReceiverTest, ABodyAboveMaxMessageIsAProtocolError) {
  open("p1", 1, greeting());
  data("p1", 1, 1, {{0, std::string(64, 'x')}, {0, std::string(65, 'y')}, {0, "z"}});
  EXPECT_TRUE(sink.take().empty());
  EXPECT_EQ(machine().stats().protocol_errors, 1U);
  ASSERT_EQ(store.in_flight.size(), 1U);
  EXPECT_EQ(store.in_flight.front().messages(), 1U) << "the entries from the oversized one on are dropped";
  EXPECT_EQ(channel()->accepted, 1U);
}

TEST_F(FrcReceiverTest, DataOnAnUnknownLinkIsAnsweredWithGoodbyeForThatLink) {
  data("stranger", 9, 1, 1);
  auto got = sink.take();
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].peer, "stranger");
  EXPECT_EQ(got[0].what, command::goodbye);
  EXPECT_EQ(got[0].link, 9U);

  open("p1", 1, greeting());
  skip("p1", 2, 1, 1);
  got = sink.take();
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].what, command::goodbye);
  EXPECT_EQ(got[0].link, 2U);
  EXPECT_EQ(machine().stats().unknown_links, 2U);
  EXPECT_EQ(machine().stats().protocol_errors, 0U);
  EXPECT_TRUE(store.in_flight.empty());
}

TEST_F(FrcReceiverTest, DataBeforeTheWelcomeIsAProtocolError) {
  hello("p1", 1, greeting());
  ASSERT_EQ(store.in_flight.size(), 1U);
  data("p1", 1, 1, 1);
  skip("p1", 1, 1, 1);
  EXPECT_TRUE(sink.take().empty());
  EXPECT_EQ(machine().stats().protocol_errors, 2U);
  commit();
  const auto got = sink.take();
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].what, command::welcome);
  EXPECT_TRUE(store.in_flight.empty()) << "what came before the WELCOME was not taken";
  EXPECT_EQ(channel()->accepted, 0U);
}

// ---- commits

TEST_F(FrcReceiverTest, OnlyOneCommitIsInFlightAndWhatArrivesMeanwhileGoesInTheNext) {
  open("p1", 1, greeting());
  data("p1", 1, 1, 1);
  ASSERT_EQ(store.in_flight.size(), 1U);
  data("p1", 1, 2, 1);
  data("p1", 1, 3, 1);
  EXPECT_EQ(store.in_flight.size(), 1U);
  EXPECT_EQ(channel()->pending, 2U) << "1 is in the commit in flight; 2 and 3 wait for the next";
  EXPECT_EQ(channel()->accepted, 3U);

  const commit_batch first = commit();
  auto got = sink.take();
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].taken, 1U) << "only what the commit made durable";
  ASSERT_EQ(store.in_flight.size(), 1U);
  EXPECT_GT(store.in_flight.front().id, first.id);
  ASSERT_EQ(store.in_flight.front().messages(), 2U);
  EXPECT_EQ(store.in_flight.front().updates[0].entries[0].seq, 2U);

  commit();
  got = sink.take();
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].taken, 3U);
  EXPECT_FALSE(machine().committing());
}

TEST_F(FrcReceiverTest, ACommitTakesAtMostMaxBatchMessages) {
  open("p1", 1, greeting(0, 0, inc_a, "s1"));
  open("p1", 2, greeting(0, 0, inc_a, "s2"));
  data("p1", 1, 1, 1);
  data("p1", 1, 2, 5);
  data("p1", 2, 1, 3);
  commit();  // s1: 1
  (void)sink.take();

  ASSERT_EQ(store.in_flight.size(), 1U);
  {
    const commit_batch& b = store.in_flight.front();
    EXPECT_EQ(b.messages(), 4U);
    ASSERT_EQ(b.updates.size(), 1U) << "s2 waits for the next commit";
    EXPECT_EQ(b.updates[0].stream, "s1");
    EXPECT_EQ(b.updates[0].record.taken, 5U);
  }
  commit();
  auto got = sink.take();
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].link, 1U);
  EXPECT_EQ(got[0].taken, 5U);

  ASSERT_EQ(store.in_flight.size(), 1U);
  {
    const commit_batch& b = store.in_flight.front();
    EXPECT_EQ(b.messages(), 4U);
    ASSERT_EQ(b.updates.size(), 2U);
    EXPECT_EQ(b.updates[0].stream, "s1");
    EXPECT_EQ(b.updates[0].record.taken, 6U);
    EXPECT_EQ(b.updates[1].stream, "s2");
    EXPECT_EQ(b.updates[1].record.taken, 3U);
  }
  commit();
  got = sink.take();
  ASSERT_EQ(got.size(), 2U);
  EXPECT_FALSE(machine().committing());
}

TEST_F(FrcReceiverTest, AFailedCommitRollsBackToTheDurableMark) {
  open("p1", 1, greeting());
  data("p1", 1, 1, 2);
  commit();
  (void)sink.take();

  data("p1", 1, 3, 1);  // in the commit that fails
  data("p1", 1, 4, 1);  // waiting behind it
  commit(errc::io_error);
  EXPECT_TRUE(sink.take().empty()) << "nothing is acknowledged";
  EXPECT_TRUE(store.in_flight.empty()) << "what waited behind the failure is dropped with it";
  EXPECT_EQ(store.records[orders].taken, 2U);
  EXPECT_EQ(machine().stats().commit_failures, 1U);
  const auto c = channel();
  EXPECT_EQ(c->taken, 2U);
  EXPECT_EQ(c->accepted, 2U);
  EXPECT_EQ(c->pending, 0U);
  EXPECT_EQ(c->delivered, 2U);

  data("p1", 1, 5, 1);
  auto got = sink.take();
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].what, command::nack);
  EXPECT_EQ(got[0].expected, 3U);

  data("p1", 1, 3, 3);
  commit();
  got = sink.take();
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].taken, 5U);
}

TEST_F(FrcReceiverTest, ACompletionOfAnotherCommitIsIgnored) {
  open("p1", 1, greeting());
  data("p1", 1, 1, 1);
  ASSERT_EQ(store.in_flight.size(), 1U);
  machine().on_committed(store.in_flight.front().id + 1, {}, now);
  EXPECT_TRUE(machine().committing());
  EXPECT_TRUE(sink.take().empty());
  commit();
  EXPECT_EQ(sink.take().size(), 1U);
}

// ---- time to live (section 5.2)

TEST_F(FrcReceiverTest, AnEntryWhoseTimeRanOutBeforeItsCommitIsTakenAsExpiredAndReported) {
  open("p1", 1, greeting());
  data("p1", 1, 1, {{50, "fresh"}});  // committed at once: in time
  data("p1", 1, 2, {{50, "late"}, {0, "forever"}, {200, "soon"}});
  now += 50ms;
  commit();
  auto got = sink.take();
  ASSERT_EQ(got.size(), 1U);
  EXPECT_TRUE(got[0].expired.empty());

  ASSERT_EQ(store.in_flight.size(), 1U);
  {
    const commit_update& u = store.in_flight.front().updates.at(0);
    ASSERT_EQ(u.entries.size(), 3U);
    EXPECT_EQ(u.entries[0].kind, entry_kind::expired);
    EXPECT_EQ(u.entries[0].seq, 2U);
    EXPECT_EQ(u.entries[0].body.size(), 0U) << "an expired body is not handed on";
    EXPECT_EQ(u.entries[1].kind, entry_kind::deliver);
    EXPECT_EQ(view(u.entries[1].body), "forever");
    EXPECT_EQ(u.entries[2].kind, entry_kind::deliver);
    EXPECT_EQ(u.record.taken, 4U);
    ASSERT_TRUE(u.expired_kept);
    EXPECT_EQ(*u.expired_kept, (std::vector<std::uint64_t>{2}));
  }
  commit();
  got = sink.take();
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].taken, 4U);
  EXPECT_EQ(got[0].expired, (std::vector<std::uint64_t>{2}));
  EXPECT_EQ(store.expired[orders], (std::vector<std::uint64_t>{2}));
  const auto c = channel();
  EXPECT_EQ(c->expired, 1U);
  EXPECT_EQ(c->delivered, 3U);
}

TEST_F(FrcReceiverTest, KeptExpiriesAreListedAfterEveryWelcomeUntilAHelloAcknowledgesThem) {
  // A receiver restarted with expiries the sender may not have had.
  store.records[orders] = {inc_a, 9};
  store.expired[orders] = {2, 5, 8};

  const sent w = open("p1", 1, greeting(4, 9));
  EXPECT_EQ(w.welcome.taken, 9U);
  auto got = sink.take();
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].what, command::ack);
  EXPECT_EQ(got[0].taken, 9U);
  EXPECT_EQ(got[0].expired, (std::vector<std::uint64_t>{5, 8})) << "those above the HELLO's acked";
  // The sender had 2 (its acked passed it): forgotten, durably.
  ASSERT_EQ(store.in_flight.size(), 1U);
  {
    const commit_update& u = store.in_flight.front().updates.at(0);
    EXPECT_TRUE(u.entries.empty());
    EXPECT_EQ(u.record, (channel_record{inc_a, 9}));
    ASSERT_TRUE(u.expired_kept);
    EXPECT_EQ(*u.expired_kept, (std::vector<std::uint64_t>{5, 8}));
  }
  commit();
  EXPECT_EQ(store.expired[orders], (std::vector<std::uint64_t>{5, 8}));
  (void)sink.take();

  // The connection is cut before the ACK arrived: the same sender greets again, acked 4.
  goodbye("p1");
  open("p2", 1, greeting(4, 9));
  got = sink.take();
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].expired, (std::vector<std::uint64_t>{5, 8}));
  EXPECT_TRUE(store.in_flight.empty()) << "nothing to forget";

  // Once a HELLO's acked passes them, they are forgotten and no longer listed.
  goodbye("p2");
  open("p3", 1, greeting(9, 9));
  EXPECT_TRUE(sink.take().empty());
  commit();
  EXPECT_TRUE(store.expired[orders].empty());
  (void)sink.take();
  goodbye("p3");
  open("p4", 1, greeting(4, 9));
  EXPECT_TRUE(sink.take().empty()) << "a forgotten expiry is not listed again";
}

TEST_F(FrcReceiverTest, MoreKeptExpiriesThanOneAckHoldsGoOverSeveral) {
  std::vector<std::uint64_t> kept;
  for (std::uint64_t s = 1; s <= 1500; ++s) kept.push_back(2 * s);
  store.records[orders] = {inc_a, 3000};
  store.expired[orders] = kept;
  open("p1", 1, greeting(0, 3000));
  const auto got = sink.take();
  ASSERT_EQ(got.size(), 2U);
  EXPECT_EQ(got[0].expired.size(), max_entries);
  EXPECT_EQ(got[1].expired.size(), 1500 - max_entries);
  std::vector<std::uint64_t> listed = got[0].expired;
  listed.insert(listed.end(), got[1].expired.begin(), got[1].expired.end());
  EXPECT_EQ(listed, kept);
}

TEST_F(FrcReceiverTest, ExpiriesBeyondTheKeptBoundAreReportedOnceAndCounted) {
  settings.max_expired_kept = 1;
  open("p1", 1, greeting());
  data("p1", 1, 1, {{0, "a"}});
  data("p1", 1, 2, {{10, "b"}, {10, "c"}});
  now += 10ms;
  commit();
  (void)sink.take();
  const commit_batch b = commit();
  ASSERT_TRUE(b.updates.at(0).expired_kept);
  EXPECT_EQ(*b.updates[0].expired_kept, (std::vector<std::uint64_t>{2}));
  const auto got = sink.take();
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].expired, (std::vector<std::uint64_t>{2, 3})) << "reported even when not kept";
  EXPECT_EQ(channel()->expiry_reports_dropped, 1U);
  EXPECT_EQ(channel()->expired, 2U);
}

TEST_F(FrcReceiverTest, AFailedCommitForgetsTheExpiriesItWouldHaveKept) {
  open("p1", 1, greeting());
  data("p1", 1, 1, {{0, "a"}});
  data("p1", 1, 2, {{10, "b"}});
  now += 10ms;
  commit();
  (void)sink.take();
  commit(errc::io_error);
  // The sender sends 2 again; in time now, it is delivered, and no expiry is kept or reported.
  data("p1", 1, 2, {{10, "b"}});
  const commit_batch b = commit();
  ASSERT_EQ(b.updates.at(0).entries.size(), 1U);
  EXPECT_EQ(b.updates[0].entries[0].kind, entry_kind::deliver);
  const auto got = sink.take();
  ASSERT_EQ(got.size(), 1U);
  EXPECT_TRUE(got[0].expired.empty());
  EXPECT_TRUE(store.expired[orders].empty());
  EXPECT_EQ(channel()->expired, 0U);
}

// ---- SKIP (section 5.5)

TEST_F(FrcReceiverTest, ASkipIsTakenInOrderAndAcknowledged) {
  open("p1", 1, greeting());
  skip("p1", 1, 1, 3, "expired before it was sent");
  EXPECT_TRUE(sink.take().empty());
  ASSERT_EQ(store.in_flight.size(), 1U);
  {
    const commit_update& u = store.in_flight.front().updates.at(0);
    ASSERT_EQ(u.entries.size(), 1U);
    EXPECT_EQ(u.entries[0].kind, entry_kind::skipped);
    EXPECT_EQ(u.entries[0].seq, 1U);
    EXPECT_EQ(u.entries[0].last, 3U);
    EXPECT_EQ(u.entries[0].reason, "expired before it was sent");
    EXPECT_EQ(u.record.taken, 3U);
  }
  commit();
  const auto got = sink.take();
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].taken, 3U);
  EXPECT_EQ(channel()->skipped, 3U);
  EXPECT_EQ(channel()->delivered, 0U);
}

TEST_F(FrcReceiverTest, SkipsAreJudgedLikeDataDuplicatesGapsAndOverlaps) {
  open("p1", 1, greeting());
  data("p1", 1, 1, 3);
  commit();
  (void)sink.take();

  skip("p1", 1, 2, 3);  // all taken already
  auto got = sink.take();
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].what, command::ack);
  EXPECT_EQ(got[0].taken, 3U);
  EXPECT_EQ(channel()->duplicates, 1U);

  skip("p1", 1, 5, 6);  // 4 missing
  got = sink.take();
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].what, command::nack);
  EXPECT_EQ(got[0].expected, 4U);
  EXPECT_EQ(channel()->gaps, 1U);

  skip("p1", 1, 2, 5);  // overlaps what was taken: only 4 .. 5 are new
  ASSERT_EQ(store.in_flight.size(), 1U);
  const commit_update& u = store.in_flight.front().updates.at(0);
  ASSERT_EQ(u.entries.size(), 1U);
  EXPECT_EQ(u.entries[0].seq, 4U);
  EXPECT_EQ(u.entries[0].last, 5U);
  commit();
  got = sink.take();
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].taken, 5U);
  EXPECT_EQ(channel()->skipped, 2U);
}

// ---- what does not parse

TEST_F(FrcReceiverTest, AnUnknownVersionIsRefusedWithLinkZero) {
  in("p1", raw({"FRC02", "\x01"}));
  const auto got = sink.take();
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].peer, "p1");
  EXPECT_EQ(got[0].what, command::refuse);
  EXPECT_EQ(got[0].link, 0U);
  EXPECT_EQ(got[0].code, "version");
  EXPECT_EQ(got[0].reason, "FRC01");
  EXPECT_EQ(machine().stats().malformed, 1U);
  EXPECT_EQ(machine().stats().refused, 1U);
}

TEST_F(FrcReceiverTest, GarbageIsDroppedWithoutAReply) {
  in("p1", raw({"GET / HTTP/1.1"}));
  in("p1", raw({}));
  machine().on_message(message{}, now);  // not even a routing id
  EXPECT_TRUE(sink.take().empty());
  EXPECT_EQ(machine().stats().malformed, 3U);
  EXPECT_EQ(machine().stats().received, 3U);
  EXPECT_EQ(machine().stats().peers, 0U);
  EXPECT_EQ(machine().next_tick(), time_point::max()) << "no peer came of it";
}

// ---- heartbeats and liveness (sections 5.7 and 8)

TEST_F(FrcReceiverTest, HeartbeatsGoToEachPeerWhenQuiet) {
  open("p1", 1, greeting(0, 0, inc_a, "s1"));
  open("p2", 1, greeting(0, 0, inc_a, "s2"));
  EXPECT_EQ(machine().next_tick(), now + 1000ms);
  now += 500ms;
  data("p1", 1, 1, 1);
  commit();  // an ACK to p1 at +500: p1 needs no heartbeat before +1500
  EXPECT_EQ(sink.take().size(), 1U);

  run_for(500ms);
  auto got = sink.take();
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].peer, "p2");
  EXPECT_EQ(got[0].what, command::heartbeat);

  heartbeat("p1");
  heartbeat("p2");
  run_for(500ms);
  got = sink.take();
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].peer, "p1");
  EXPECT_EQ(got[0].what, command::heartbeat);
  EXPECT_EQ(machine().stats().heartbeats_sent, 2U);
  EXPECT_EQ(machine().stats().peers, 2U);
}

TEST_F(FrcReceiverTest, ASilentPeerIsForgottenAfterLivenessTimesTheLongerHeartbeat) {
  open("slow", 1, greeting(0, 0, inc_a, "s1", 2000));  // announces 2 s: dead after 6 s
  open("fast", 1, greeting(0, 0, inc_a, "s2", 500));   // announces 0.5 s: ours (1 s) rules, 3 s
  open("chatty", 1, greeting(0, 0, inc_a, "s3", 500));
  for (int i = 0; i < 6; ++i) {
    run_for(999ms);
    heartbeat("chatty");
  }
  // At +5994 ms: fast is gone, slow is not.
  EXPECT_FALSE(channel("s2")->linked);
  EXPECT_TRUE(channel("s1")->linked);
  EXPECT_EQ(machine().stats().peers_lost, 1U);
  run_for(5ms);
  heartbeat("chatty");
  run_for(1ms);
  EXPECT_FALSE(channel("s1")->linked);
  EXPECT_TRUE(channel("s3")->linked) << "a peer that is heard from lives on";
  EXPECT_EQ(machine().stats().peers_lost, 2U);
  EXPECT_EQ(machine().stats().peers, 1U);
  EXPECT_EQ(machine().stats().links, 1U);
  (void)sink.take();

  // Its links are gone, its durable state is not.
  data("slow", 1, 1, 1);
  auto got = sink.take();
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].what, command::goodbye);
  EXPECT_EQ(got[0].link, 1U);
  const sent w = open("slow", 1, greeting(0, 0, inc_a, "s1", 2000));
  EXPECT_EQ(w.welcome.taken, 0U);
  EXPECT_TRUE(store.in_flight.empty()) << "known channel: no new record";
}

TEST_F(FrcReceiverTest, DeadPeerDetectionIsDueInTheNextTick) {
  open("p1", 1, greeting());
  heartbeat("p1");
  const time_point heard = now;
  now += 2999ms;
  machine().on_tick(now);
  EXPECT_EQ(machine().stats().peers, 1U);
  EXPECT_LE(machine().next_tick(), heard + 3000ms);
  now = heard + 3000ms;
  machine().on_tick(now);
  EXPECT_EQ(machine().stats().peers, 0U);
  EXPECT_EQ(machine().next_tick(), time_point::max());
}

TEST_F(FrcReceiverTest, GoodbyeWithALinkClosesThatChannelOnly) {
  open("p1", 1, greeting(0, 0, inc_a, "s1"));
  open("p1", 2, greeting(0, 0, inc_a, "s2"));
  goodbye("p1", 1);
  EXPECT_TRUE(sink.take().empty());
  EXPECT_FALSE(channel("s1")->linked);
  EXPECT_TRUE(channel("s2")->linked);
  EXPECT_EQ(machine().stats().links, 1U);
  EXPECT_EQ(machine().stats().peers, 1U);
  goodbye("p1", 1);  // again: nothing to close
  EXPECT_EQ(machine().stats().links, 1U);
  EXPECT_TRUE(sink.take().empty());
}

TEST_F(FrcReceiverTest, GoodbyeWithoutALinkForgetsTheConnectionButNotWhatWasTaken) {
  open("p1", 1, greeting(0, 0, inc_a, "s1"));
  open("p1", 2, greeting(0, 0, inc_a, "s2"));
  data("p1", 1, 1, 2);
  goodbye("p1");
  EXPECT_EQ(machine().stats().peers, 0U);
  EXPECT_EQ(machine().stats().links, 0U);
  EXPECT_EQ(machine().next_tick(), time_point::max());
  commit();  // what was accepted is still taken, but nobody is there to hear the ACK
  EXPECT_TRUE(sink.take().empty());
  EXPECT_EQ(store.records[channel_key("svc-a", "s1")].taken, 2U);
  goodbye("p1");  // from a peer it no longer knows: ignored
  EXPECT_TRUE(sink.take().empty());
}

TEST_F(FrcReceiverTest, SixteenProtocolErrorsWithinAHeartbeatCloseTheConnection) {
  open("p1", 1, greeting());
  for (int i = 0; i < 15; ++i) oversized("p1", 1, 1);
  EXPECT_TRUE(sink.take().empty());
  EXPECT_EQ(machine().stats().protocol_errors, 15U);
  EXPECT_EQ(machine().stats().peers, 1U);
  now += 1000ms;  // still within one interval of the first
  oversized("p1", 1, 1);
  const auto got = sink.take();
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].peer, "p1");
  EXPECT_EQ(got[0].what, command::goodbye);
  EXPECT_EQ(got[0].link, 0U) << "the whole connection";
  EXPECT_EQ(machine().stats().peers, 0U);
  EXPECT_EQ(machine().stats().links, 0U);
  EXPECT_EQ(machine().stats().peers_lost, 1U);
}

TEST_F(FrcReceiverTest, ProtocolErrorsSpreadOverLongerThanAHeartbeatAreTolerated) {
  open("p1", 1, greeting());
  for (int i = 0; i < 15; ++i) oversized("p1", 1, 1);
  now += 1001ms;
  for (int i = 0; i < 15; ++i) oversized("p1", 1, 1);
  EXPECT_TRUE(sink.take().empty());
  EXPECT_EQ(machine().stats().protocol_errors, 30U);
  EXPECT_EQ(machine().stats().peers, 1U);
  EXPECT_TRUE(channel()->linked);
}

TEST_F(FrcReceiverTest, AProtocolErrorThatClosesTheConnectionAfterADuplicateStillAnswersIt) {
  open("p1", 1, greeting());
  data("p1", 1, 1, 1);
  commit();
  (void)sink.take();
  for (int i = 0; i < 15; ++i) oversized("p1", 1, 2);
  // A duplicate, then a body too large: the sixteenth error, in the same DATA.
  ASSERT_NO_THROW(data("p1", 1, 1, {{0, "m1"}, {0, std::string(65, 'x')}}));
  const auto got = sink.take();
  ASSERT_EQ(got.size(), 2U);
  EXPECT_EQ(got[0].what, command::ack);
  EXPECT_EQ(got[0].link, 1U);
  EXPECT_EQ(got[0].taken, 1U);
  EXPECT_EQ(got[1].what, command::goodbye);
  EXPECT_EQ(got[1].link, 0U);
  EXPECT_EQ(machine().stats().peers, 0U);
}

TEST_F(FrcReceiverTest, AProtocolErrorThatClosesTheConnectionKeepsWhatCameBeforeIt) {
  open("p1", 1, greeting());
  data("p1", 1, 1, 1);  // the commit of 1 is in flight
  for (int i = 0; i < 15; ++i) oversized("p1", 1, 2);
  data("p1", 1, 2, {{0, "m2"}, {0, std::string(65, 'x')}});  // 2 accepted, then the sixteenth
  EXPECT_EQ(machine().stats().peers, 0U);
  commit();
  ASSERT_EQ(store.in_flight.size(), 1U) << "2 was accepted in order and is taken";
  EXPECT_EQ(store.in_flight.front().updates.at(0).entries.at(0).seq, 2U);
  commit();
  EXPECT_EQ(store.records[orders].taken, 2U);
}

// ---- stats and the sink

TEST_F(FrcReceiverTest, StatsCountWhatTheReceiverDid) {
  open("p1", 1, greeting(0, 0, inc_a, "s1"));
  open("p2", 1, greeting(0, 0, inc_a, "s2"));
  data("p1", 1, 1, 2);
  data("p1", 1, 4, 1);  // a gap: NACK
  commit();
  data("p1", 1, 1, 1);  // a duplicate: ACK
  heartbeat("p2");
  const receiver_stats& s = machine().stats();
  EXPECT_EQ(s.received, 6U);
  EXPECT_EQ(s.peers, 2U);
  EXPECT_EQ(s.links, 2U);
  EXPECT_EQ(s.commits, 3U);  // two handshakes and 1 .. 2
  EXPECT_EQ(s.acks_sent, 2U);
  EXPECT_EQ(s.nacks_sent, 1U);
  EXPECT_EQ(s.malformed, 0U);
  EXPECT_EQ(s.protocol_errors, 0U);
  EXPECT_EQ(s.send_failures, 0U);

  const auto c = channel("s1");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->sender, "svc-a");
  EXPECT_EQ(c->sender_incarnation, inc_a);
  EXPECT_EQ(c->taken, 2U);
  EXPECT_EQ(c->accepted, 2U);
  EXPECT_EQ(c->pending, 0U);
  EXPECT_TRUE(c->linked);
  EXPECT_EQ(c->delivered, 2U);
  EXPECT_EQ(c->duplicates, 1U);
  EXPECT_EQ(c->gaps, 1U);
  EXPECT_EQ(c->welcomes, 1U);
  EXPECT_EQ(machine().channel_stats().size(), 2U);
}

TEST_F(FrcReceiverTest, ASendTheSinkRefusesIsCountedAndTheMachineCarriesOn) {
  open("p1", 1, greeting());
  data("p1", 1, 1, 1);
  sink.refusing = true;
  commit();  // its ACK is lost
  EXPECT_EQ(machine().stats().send_failures, 1U);
  EXPECT_EQ(store.records[orders].taken, 1U);
  sink.refusing = false;
  data("p1", 1, 1, 1);  // the sender sends again: the duplicate is acknowledged
  const auto got = sink.take();
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].taken, 1U);
}

TEST(FrcReceiverSettingsTest, ConstructionRejectsSettingsOutOfRange) {
  fake_sink sink;
  fake_store store;
  receiver_settings good;
  good.incarnation = self_inc;
  EXPECT_NO_THROW({ const receiver_machine m(good, sink, store); });
  const auto rejects = [&](auto change) {
    receiver_settings s = good;
    change(s);
    try {
      const receiver_machine m(s, sink, store);
      ADD_FAILURE() << "accepted";
    } catch (const error& e) {
      EXPECT_EQ(e.code(), make_error_code(errc::invalid_argument));
    }
  };
  rejects([](receiver_settings& s) { s.incarnation = 0; });
  rejects([](receiver_settings& s) { s.heartbeat = 0ms; });
  rejects([](receiver_settings& s) { s.heartbeat = 3'600'001ms; });
  rejects([](receiver_settings& s) { s.liveness = 0; });
  rejects([](receiver_settings& s) { s.credit = 0; });
  rejects([](receiver_settings& s) { s.max_batch = 0; });
  rejects([](receiver_settings& s) { s.max_links = 0; });
}

// ---- the journal's small codecs

TEST(FrcReceiverCodecTest, ChannelKeysRoundTripAndRejectWhatCouldNotBeAKey) {
  const std::string longest(max_name_size, 'n');
  const std::string binary("\0\xff/x", 4);
  for (const auto& [sender, stream] : std::vector<std::pair<std::string, std::string>>{
           {"svc-a", "orders"}, {"s", "t"}, {longest, longest}, {binary, binary}, {"a/b", "c/d"}}) {
    const std::string key = channel_key(sender, stream);
    EXPECT_EQ(key.size(), 1 + sender.size() + stream.size());
    std::string_view got_sender;
    std::string_view got_stream;
    ASSERT_TRUE(split_channel_key(key, got_sender, got_stream)) << sender << " / " << stream;
    EXPECT_EQ(got_sender, sender);
    EXPECT_EQ(got_stream, stream);
  }
  // The sender's length keeps "a" + "bc" apart from "ab" + "c".
  EXPECT_NE(channel_key("a", "bc"), channel_key("ab", "c"));

  std::string_view a;
  std::string_view b;
  EXPECT_FALSE(split_channel_key("", a, b));
  EXPECT_FALSE(split_channel_key(std::string_view("\0stream", 7), a, b)) << "an empty sender";
  EXPECT_FALSE(split_channel_key("\x05svc-a", a, b)) << "an empty stream";
  EXPECT_FALSE(split_channel_key("\x09svc-a", a, b)) << "a sender longer than the key";
  EXPECT_FALSE(split_channel_key("\x01s" + std::string(max_name_size + 1, 't'), a, b)) << "a stream too long";
}

TEST(FrcReceiverCodecTest, RecordsRoundTripAndRejectWrongSizesAndAZeroIncarnation) {
  for (const channel_record r : {channel_record{1, 0}, channel_record{inc_a, 42},
                                 channel_record{std::numeric_limits<std::uint64_t>::max(),
                                                std::numeric_limits<std::uint64_t>::max()}}) {
    const std::string v = encode_record(r);
    EXPECT_EQ(v.size(), 16U);
    channel_record back;
    ASSERT_TRUE(decode_record(v, back));
    EXPECT_EQ(back, r);
  }
  EXPECT_EQ(encode_record({0x0102030405060708, 0x1112131415161718}),
            std::string("\x01\x02\x03\x04\x05\x06\x07\x08\x11\x12\x13\x14\x15\x16\x17\x18", 16))
      << "big-endian, incarnation first";
  channel_record r;
  const std::string good = encode_record({inc_a, 3});
  EXPECT_FALSE(decode_record("", r));
  EXPECT_FALSE(decode_record(good.substr(0, 15), r));
  EXPECT_FALSE(decode_record(good + '\0', r));
  EXPECT_FALSE(decode_record(encode_record({0, 3}), r)) << "a zero incarnation";
}

TEST(FrcReceiverCodecTest, SeqListsRoundTripAndRejectMalformedLists) {
  constexpr std::uint64_t top = std::numeric_limits<std::uint64_t>::max();
  for (const auto& seqs : std::vector<std::vector<std::uint64_t>>{{}, {1}, {2, 5, 8}, {1, 2, top}}) {
    const std::string v = encode_seqs(seqs);
    EXPECT_EQ(v.size(), 8 * seqs.size());
    std::vector<std::uint64_t> back{99};
    ASSERT_TRUE(decode_seqs(v, back));
    EXPECT_EQ(back, seqs);
  }
  std::vector<std::uint64_t> out;
  EXPECT_FALSE(decode_seqs(std::string(7, '\1'), out)) << "not a whole number of sequences";
  EXPECT_FALSE(decode_seqs(encode_seqs({1}) + "x", out));
  EXPECT_FALSE(decode_seqs(encode_seqs({0}), out)) << "sequence 0";
  EXPECT_FALSE(decode_seqs(encode_seqs({3, 3}), out)) << "repeated";
  EXPECT_FALSE(decode_seqs(encode_seqs({5, 4}), out)) << "decreasing";
}

}  // namespace
}  // namespace fabric::frc
