// Tests the FRC/1 sender machine on a fake clock: a sink that records (and can refuse) what the
// machine sends and plays its connection, and an outbox in memory standing in for the sender's
// journal. Replies are built with the receiver's builders of frc.hpp, and what the machine sends
// is read back with the receiver's parser, so these also check the sender's side of the wire.
#include "reliability/frc_sender.hpp"

#include "reliability/frc.hpp"

#include <fabric/error.hpp>

#include "support/support.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fabric::frc {
namespace {

using namespace std::chrono_literals;
using namespace std::string_view_literals;
using detail::time_point;

constexpr std::uint64_t sender_inc = 0x5E5E;
constexpr std::uint64_t receiver_a = 0xA1;
constexpr std::uint64_t receiver_b = 0xB2;
constexpr std::string_view routing_id = "\x00\x6b\x8b\x45\x67"sv;  // as a ROUTER makes them
constexpr std::int64_t ms_ns = 1'000'000;

// One command the machine sent, copied out of its message so that it outlives it.
struct sent_entry {
  std::uint64_t seq = 0;
  std::uint32_t ttl_ms = 0;
  std::string body;
};

struct sent_command {
  command what = command::heartbeat;
  std::uint32_t link = 0;
  std::string stream;  // HELLO
  std::string sender;
  std::uint64_t receiver_inc_seen = 0;
  std::uint64_t sender_inc = 0;
  std::uint64_t acked = 0;
  std::uint64_t last = 0;
  std::uint32_t heartbeat_ms = 0;
  std::vector<sent_entry> entries;  // DATA
  std::uint64_t first_seq = 0;      // DATA, SKIP
  std::uint64_t last_seq = 0;
  std::string reason;  // SKIP

  std::size_t bytes() const {
    std::size_t n = 0;
    for (const auto& e : entries) n += e.body.size();
    return n;
  }
};

// The DEALER, as the machine sees it: every send is read back through the receiver's parser
// (after a routing id is put in front, as a ROUTER would), and it can refuse sends or opens.
class fake_sink final : public detail::machine_sink {
 public:
  using machine_sink::send;
  result<void> send(detail::port to, message&& m) override {
    EXPECT_EQ(to, detail::port::main);
    if (!open_now) ADD_FAILURE() << "sent on a closed connection";
    if (full) return errc::back_pressure;
    message copy = m.clone();
    copy.push_front(routing_id);
    const parsed p = parse_at_receiver(copy);
    if (!p) {
      ADD_FAILURE() << "the machine sent what a receiver cannot parse: " << describe(p.error);
      return {};
    }
    EXPECT_EQ(p.peer, routing_id);
    sent_command c;
    c.what = p.what;
    c.link = p.link;
    switch (p.what) {
      case command::hello:
        c.stream = p.hello.stream;
        c.sender = p.hello.sender;
        c.receiver_inc_seen = p.hello.receiver_inc_seen;
        c.sender_inc = p.hello.sender_inc;
        c.acked = p.hello.acked;
        c.last = p.hello.last;
        c.heartbeat_ms = p.hello.heartbeat_ms;
        break;
      case command::data:
        c.first_seq = p.data.first_seq();
        c.last_seq = p.data.last_seq();
        for (const data_entry e : p.data) c.entries.push_back({e.seq, e.ttl_ms, std::string(e.body)});
        break;
      case command::skip:
        c.first_seq = p.skip.first_seq;
        c.last_seq = p.skip.last_seq;
        c.reason = p.skip.reason;
        break;
      default:
        break;
    }
    sent.push_back(std::move(c));
    m.clear();
    return {};
  }
  void close(detail::port which) noexcept override {
    EXPECT_EQ(which, detail::port::main);
    ++closes;
    open_now = false;
  }
  result<void> open(detail::port which) override {
    EXPECT_EQ(which, detail::port::main);
    if (fail_open) return errc::io_error;
    ++opens;
    open_now = true;
    return {};
  }

  // Takes everything sent so far.
  std::vector<sent_command> take() { return std::exchange(sent, {}); }
  // Takes everything sent so far but heartbeats.
  std::vector<sent_command> take_commands() {
    std::vector<sent_command> out;
    for (auto& c : take()) {
      if (c.what != command::heartbeat) out.push_back(std::move(c));
    }
    return out;
  }

  std::vector<sent_command> sent;
  bool full = false;
  bool fail_open = false;
  bool open_now = false;
  int opens = 0;
  int closes = 0;
};

struct ack_call {
  std::size_t ch;
  std::uint64_t acked;
  std::vector<std::uint64_t> expired;
  bool operator==(const ack_call&) const = default;
};

struct withdraw_call {
  std::size_t ch;
  std::uint64_t first;
  std::uint64_t last;
  std::string reason;
  bool operator==(const withdraw_call&) const = default;
};

// The outbox in memory: per channel, seq -> (expires_ns, body). A withdrawal is only recorded:
// the test makes it durable by calling complete_withdrawal (or leaves it pending).
class memory_store final : public sender_store {
 public:
  struct record {
    std::int64_t expires_ns = 0;
    std::string body;
  };
  struct outbox {
    std::map<std::uint64_t, record> records;
    std::uint64_t last = 0;
  };

  result<std::uint64_t> read(std::size_t ch, std::uint64_t from, std::uint64_t to, std::size_t max_bytes,
                             std::vector<outbox_record>& out) override {
    if (read_fails) return errc::io_error;
    EXPECT_LE(from, to);
    std::size_t bytes = 0;
    const auto& box = boxes.at(ch).records;
    for (auto it = box.lower_bound(from); it != box.end() && it->first <= to; ++it) {
      out.push_back(outbox_record{it->first, it->second.expires_ns, make_frame(it->second.body)});
      bytes += it->second.body.size();
      if (bytes >= max_bytes) return it->first;
    }
    return to;
  }
  std::uint64_t oldest_held(std::size_t ch) override {
    const auto& box = boxes.at(ch);
    return box.records.empty() ? box.last + 1 : box.records.begin()->first;
  }
  void acknowledge(std::size_t ch, std::uint64_t acked, std::span<const std::uint64_t> expired) override {
    acks.push_back({ch, acked, {expired.begin(), expired.end()}});
  }
  void withdraw(std::size_t ch, std::uint64_t first, std::uint64_t last, std::string_view reason) override {
    withdrawals.push_back({ch, first, last, std::string(reason)});
  }
  void receiver_seen(std::size_t ch, std::uint64_t incarnation) override { seen.emplace_back(ch, incarnation); }
  std::int64_t wall_ns() const override { return wall; }

  // Appends to channel `ch`'s outbox; returns the sequence.
  std::uint64_t put(std::size_t ch, std::string body, std::int64_t expires_ns = 0) {
    auto& box = boxes[ch];
    box.records[++box.last] = record{expires_ns, std::move(body)};
    return box.last;
  }
  // Removes the records first..last, as a dead-lettering commit would.
  void drop(std::size_t ch, std::uint64_t first, std::uint64_t last) {
    auto& box = boxes.at(ch).records;
    box.erase(box.lower_bound(first), box.upper_bound(last));
  }

  std::map<std::size_t, outbox> boxes;
  std::vector<ack_call> acks;
  std::vector<withdraw_call> withdrawals;
  std::vector<std::pair<std::size_t, std::uint64_t>> seen;
  std::int64_t wall = 1'767'225'600LL * 1'000'000'000LL;
  bool read_fails = false;
};

// The sequences `c` carries, for DATA.
std::vector<std::uint64_t> seqs_of(const sent_command& c) {
  std::vector<std::uint64_t> out;
  for (const auto& e : c.entries) out.push_back(e.seq);
  return out;
}

std::vector<std::uint64_t> range(std::uint64_t first, std::uint64_t last) {
  std::vector<std::uint64_t> out;
  for (std::uint64_t s = first; s <= last; ++s) out.push_back(s);
  return out;
}

// Every sequence the DATA commands of `sent` carry, in order.
std::vector<std::uint64_t> data_seqs(const std::vector<sent_command>& sent) {
  std::vector<std::uint64_t> out;
  for (const auto& c : sent) {
    if (c.what == command::data) {
      const auto s = seqs_of(c);
      out.insert(out.end(), s.begin(), s.end());
    }
  }
  return out;
}

class FrcSenderTest : public ::testing::Test {
 protected:
  FrcSenderTest() {
    settings.name = "orders";
    settings.incarnation = sender_inc;
    settings.heartbeat = 1000ms;
    settings.liveness = 3;
    settings.reconnect_initial = 100ms;
    settings.reconnect_max = 800ms;
    settings.retransmit_interval = 2000ms;
  }

  sender_machine& machine() {
    if (!machine_) machine_ = std::make_unique<sender_machine>(settings, sink, store);
    return *machine_;
  }

  // A channel whose outbox holds `n` messages "m1".."mn" (none acknowledged, unless `acked`).
  std::size_t channel(const std::string& stream, std::uint64_t n = 0, std::uint64_t acked = 0,
                      std::uint64_t seen = 0) {
    const std::size_t ch = machine().channels();
    store.boxes[ch];
    for (std::uint64_t i = 1; i <= n; ++i) store.put(ch, "m" + std::to_string(i));
    return machine().add_channel({.stream = stream, .acked = acked, .last = n, .receiver_seen = seen}, now);
  }

  // Appends `n` more messages to channel `ch` and tells the machine.
  void append(std::size_t ch, std::uint64_t n, std::int64_t expires_ns = 0) {
    std::uint64_t last = 0;
    for (std::uint64_t i = 0; i < n; ++i) {
      last = store.put(ch, "m" + std::to_string(store.boxes[ch].last + 1), expires_ns);
    }
    machine().on_appended(ch, last, now);
  }

  // Delivers what a receiver's ROUTER would send, less the routing id the DEALER never sees.
  void in(message&& m) {
    EXPECT_EQ(m.view(0), routing_id);
    (void)m.pop_front();
    machine().on_message(std::move(m), now);
  }
  void welcome(std::uint32_t link, std::uint64_t taken, std::uint32_t credit = 1000,
               std::uint64_t receiver = receiver_a, std::uint32_t heartbeat_ms = 1000,
               std::uint32_t max_message = 1 << 20) {
    message m;
    write_welcome(m, routing_id, link,
                  welcome_fields{.receiver_inc = receiver,
                                 .taken = taken,
                                 .credit = credit,
                                 .heartbeat_ms = heartbeat_ms,
                                 .max_message = max_message});
    in(std::move(m));
  }
  void ack(std::uint32_t link, std::uint64_t taken, std::uint32_t credit = 1000,
           const std::vector<std::uint64_t>& expired = {}) {
    message m;
    write_ack(m, routing_id, link, taken, credit, expired);
    in(std::move(m));
  }
  void nack(std::uint32_t link, std::uint64_t expected) {
    message m;
    write_nack(m, routing_id, link, expected);
    in(std::move(m));
  }
  void refuse(std::uint32_t link, std::string_view code, std::string_view reason = "because") {
    message m;
    write_refuse(m, routing_id, link, refuse_fields{.code = code, .reason = reason});
    in(std::move(m));
  }
  void heartbeat() {
    message m;
    write_heartbeat_to(m, routing_id);
    in(std::move(m));
  }
  void goodbye() {
    message m;
    write_goodbye_to(m, routing_id);
    in(std::move(m));
  }
  void goodbye(std::uint32_t link) {
    message m;
    write_goodbye_to(m, routing_id, link);
    in(std::move(m));
  }

  // Opens the connection (the first tick) and returns the HELLOs it sent.
  std::vector<sent_command> connect() {
    machine().on_tick(now);
    return sink.take_commands();
  }

  // Connects and welcomes channel `ch` (link ch + 1) at `taken`; returns what followed the WELCOME.
  std::vector<sent_command> open(std::size_t ch, std::uint64_t taken, std::uint32_t credit = 1000,
                                 std::uint32_t max_message = 1 << 20) {
    if (!machine().connected()) (void)connect();
    welcome(static_cast<std::uint32_t>(ch + 1), taken, credit, receiver_a, 1000, max_message);
    return sink.take_commands();
  }

  // Runs every tick that falls due while the clock moves forward by `d`.
  void run_for(std::chrono::milliseconds d) {
    const time_point end = now + d;
    for (int guard = 0; machine().next_tick() <= end; ++guard) {
      ASSERT_LT(guard, 100000) << "next_tick() does not move on";
      now = std::max(now, machine().next_tick());
      machine().on_tick(now);
    }
    now = end;
  }

  // Runs for `d`, with the receiver heartbeating every `every` so it stays alive.
  void run_alive_for(std::chrono::milliseconds d, std::chrono::milliseconds every = 500ms) {
    const time_point end = now + d;
    while (now + every <= end) {
      run_for(every);
      heartbeat();
    }
    run_for(std::chrono::duration_cast<std::chrono::milliseconds>(end - now));
  }

  sender_channel_stats stats(std::size_t ch) { return machine().channel_stats(ch); }

  // A refusal the sender retries: the channel waits out its back-off (doubling), greets again,
  // and sends once welcomed.
  void expect_retry_after_refusal(std::string_view code) {
    const std::size_t ch = channel("payments", 2);
    (void)connect();
    refuse(1, code, "another one");
    EXPECT_EQ(machine().state(ch), link_state::waiting);
    EXPECT_EQ(stats(ch).refusals, 1U);
    EXPECT_EQ(stats(ch).refusal, std::string(code) + ": another one");
    run_alive_for(99ms);
    EXPECT_TRUE(sink.take_commands().empty());
    run_alive_for(1ms);
    auto sent = sink.take_commands();
    ASSERT_EQ(sent.size(), 1U);
    EXPECT_EQ(sent[0].what, command::hello);
    EXPECT_EQ(machine().state(ch), link_state::greeting);
    refuse(1, code);  // again: the wait doubles
    run_alive_for(199ms);
    EXPECT_TRUE(sink.take_commands().empty());
    run_alive_for(1ms);
    EXPECT_EQ(sink.take_commands().size(), 1U);
    welcome(1, 0);
    EXPECT_EQ(machine().state(ch), link_state::open);
    EXPECT_EQ(data_seqs(sink.take_commands()), range(1, 2));
    EXPECT_TRUE(machine().connected());
  }

  // A final refusal: the channel fails and sends nothing more; the other channel carries on.
  void expect_failed_after_refusal(std::string_view code) {
    const std::size_t ch = channel("payments", 2);
    const std::size_t other = channel("refunds", 1);
    (void)connect();
    refuse(1, code, "no");
    EXPECT_EQ(machine().state(ch), link_state::failed);
    EXPECT_EQ(stats(ch).refusals, 1U);
    EXPECT_EQ(stats(ch).refusal, std::string(code) + ": no");
    append(ch, 1);
    run_alive_for(20s);
    for (const auto& c : sink.take_commands()) EXPECT_NE(c.link, 1U);  // HELLOs of the other one only
    EXPECT_EQ(stats(ch).messages_sent, 0U);
    welcome(2, 0);
    EXPECT_EQ(machine().state(other), link_state::open);
    EXPECT_EQ(machine().state(ch), link_state::failed);
    EXPECT_EQ(data_seqs(sink.take_commands()), range(1, 1));
  }

  sender_settings settings;
  fake_sink sink;
  memory_store store;
  time_point now{std::chrono::seconds(1000)};
  std::unique_ptr<sender_machine> machine_;
};

// ---- settings

TEST_F(FrcSenderTest, RefusesABadNameAZeroIncarnationAndAnAcknowledgedCursorPastTheOutbox) {
  sender_settings s = settings;
  s.name.clear();
  testing::expect_error(errc::invalid_argument, [&] { sender_machine m(s, sink, store); });
  s.name = std::string(256, 'n');
  testing::expect_error(errc::invalid_argument, [&] { sender_machine m(s, sink, store); });
  s = settings;
  s.incarnation = 0;
  testing::expect_error(errc::invalid_argument, [&] { sender_machine m(s, sink, store); });
  s = settings;
  s.max_in_flight = 0;
  testing::expect_error(errc::invalid_argument, [&] { sender_machine m(s, sink, store); });
  testing::expect_error(errc::invalid_argument,
                        [&] { machine().add_channel({.stream = "s", .acked = 3, .last = 2}, now); });
  testing::expect_error(errc::invalid_argument, [&] { machine().add_channel({.stream = ""}, now); });
}

// ---- connecting

TEST_F(FrcSenderTest, TheFirstTickOpensTheConnectionAndGreetsEveryChannel) {
  (void)channel("payments", 7, 4, receiver_a);
  (void)channel("refunds");
  EXPECT_FALSE(machine().connected());
  EXPECT_EQ(machine().next_tick(), time_point::min());  // an attempt to open is due at once
  EXPECT_TRUE(sink.sent.empty());

  machine().on_tick(now);
  EXPECT_TRUE(machine().connected());
  EXPECT_EQ(sink.opens, 1);
  EXPECT_EQ(machine().stats().connections, 1U);
  const auto hellos = sink.take();
  ASSERT_EQ(hellos.size(), 2U);
  EXPECT_EQ(hellos[0].what, command::hello);
  EXPECT_EQ(hellos[0].link, 1U);
  EXPECT_EQ(hellos[0].stream, "payments");
  EXPECT_EQ(hellos[0].sender, "orders");
  EXPECT_EQ(hellos[0].sender_inc, sender_inc);
  EXPECT_EQ(hellos[0].receiver_inc_seen, receiver_a);
  EXPECT_EQ(hellos[0].acked, 4U);
  EXPECT_EQ(hellos[0].last, 7U);
  EXPECT_EQ(hellos[0].heartbeat_ms, 1000U);
  EXPECT_EQ(hellos[1].what, command::hello);
  EXPECT_EQ(hellos[1].link, 2U);
  EXPECT_EQ(hellos[1].stream, "refunds");
  EXPECT_EQ(hellos[1].receiver_inc_seen, 0U);
  EXPECT_EQ(hellos[1].acked, 0U);
  EXPECT_EQ(hellos[1].last, 0U);
  EXPECT_EQ(machine().state(0), link_state::greeting);
  EXPECT_EQ(machine().state(1), link_state::greeting);
}

TEST_F(FrcSenderTest, AChannelAddedWhileConnectedIsGreetedAtOnce) {
  (void)channel("payments");
  (void)connect();
  const std::size_t ch = channel("refunds", 2);
  const auto sent = sink.take();
  ASSERT_EQ(sent.size(), 1U);
  EXPECT_EQ(sent[0].what, command::hello);
  EXPECT_EQ(sent[0].link, ch + 1);
  EXPECT_EQ(sent[0].last, 2U);
}

TEST_F(FrcSenderTest, AConnectionThatCannotBeOpenedIsTriedAgainAfterAWait) {
  (void)channel("payments");
  sink.fail_open = true;
  machine().on_tick(now);
  EXPECT_FALSE(machine().connected());
  EXPECT_TRUE(sink.sent.empty());
  EXPECT_GT(machine().next_tick(), now);
  sink.fail_open = false;
  run_for(100ms);
  EXPECT_TRUE(machine().connected());
  const auto sent = sink.take_commands();
  ASSERT_EQ(sent.size(), 1U);
  EXPECT_EQ(sent[0].what, command::hello);
}

TEST_F(FrcSenderTest, SendsNoDataBeforeTheWelcome) {
  const std::size_t ch = channel("payments", 3);
  (void)connect();
  append(ch, 2);
  run_alive_for(2900ms);
  EXPECT_TRUE(sink.take_commands().empty());
  EXPECT_EQ(stats(ch).messages_sent, 0U);
  EXPECT_EQ(machine().state(ch), link_state::greeting);
}

TEST_F(FrcSenderTest, AHelloWithoutAnAnswerIsSentAgain) {
  const std::size_t ch = channel("payments", 3);
  (void)connect();
  run_alive_for(2900ms);
  EXPECT_TRUE(sink.take_commands().empty());
  run_alive_for(200ms);
  const auto sent = sink.take_commands();
  ASSERT_EQ(sent.size(), 1U);
  EXPECT_EQ(sent[0].what, command::hello);
  EXPECT_EQ(machine().state(ch), link_state::greeting);
}

// ---- WELCOME, credit, batching

TEST_F(FrcSenderTest, TheWelcomeResumesAfterWhatTheReceiverHasTaken) {
  const std::size_t ch = channel("payments", 5);
  const auto sent = open(ch, 2);
  ASSERT_EQ(sent.size(), 1U);
  EXPECT_EQ(sent[0].what, command::data);
  EXPECT_EQ(sent[0].link, 1U);
  EXPECT_EQ(sent[0].first_seq, 3U);
  EXPECT_EQ(seqs_of(sent[0]), range(3, 5));
  EXPECT_EQ(sent[0].entries[0].body, "m3");
  EXPECT_EQ(sent[0].entries[0].ttl_ms, 0U);
  EXPECT_EQ(machine().state(ch), link_state::open);
  EXPECT_EQ(machine().acked(ch), 2U);
  EXPECT_EQ(store.acks, (std::vector<ack_call>{{ch, 2, {}}}));
  EXPECT_EQ(store.seen, (std::vector<std::pair<std::size_t, std::uint64_t>>{{ch, receiver_a}}));
  EXPECT_EQ(stats(ch).receiver_resets, 0U);  // first contact is no change
  EXPECT_EQ(stats(ch).welcomes, 1U);
}

TEST_F(FrcSenderTest, SendsNoFurtherThanTheCredit) {
  const std::size_t ch = channel("payments", 10);
  auto sent = open(ch, 0, 4);
  EXPECT_EQ(data_seqs(sent), range(1, 4));
  EXPECT_EQ(stats(ch).credit_to, 4U);
  append(ch, 1);
  EXPECT_TRUE(sink.take_commands().empty());
  ack(1, 2, 4);
  EXPECT_EQ(data_seqs(sink.take_commands()), range(5, 6));
  ack(1, 6, 10);
  EXPECT_EQ(data_seqs(sink.take_commands()), range(7, 11));
}

TEST_F(FrcSenderTest, SendsNoMoreInFlightThanItsOwnBoundWhateverTheCredit) {
  settings.max_in_flight = 3;
  const std::size_t ch = channel("payments", 10);
  EXPECT_EQ(data_seqs(open(ch, 0, 1000)), range(1, 3));
  EXPECT_EQ(stats(ch).in_flight, 3U);
  ack(1, 1);
  EXPECT_EQ(data_seqs(sink.take_commands()), range(4, 4));
  ack(1, 4);
  EXPECT_EQ(data_seqs(sink.take_commands()), range(5, 7));
}

TEST_F(FrcSenderTest, AnUnboundedWindowLeavesTheCreditAsTheOnlyBound) {
  settings.max_in_flight = std::numeric_limits<std::uint64_t>::max();
  const std::size_t ch = channel("payments", 3);
  EXPECT_EQ(data_seqs(open(ch, 0, 10)), range(1, 3));
  ack(1, 2, 10);
  append(ch, 2);
  EXPECT_EQ(data_seqs(sink.take_commands()), range(4, 5));
}

TEST_F(FrcSenderTest, ADataHoldsAtMost1024Entries) {
  const std::size_t ch = channel("payments", 2500);
  const auto sent = open(ch, 0, 5000);
  ASSERT_EQ(sent.size(), 3U);
  EXPECT_EQ(sent[0].entries.size(), 1024U);
  EXPECT_EQ(sent[1].entries.size(), 1024U);
  EXPECT_EQ(sent[2].entries.size(), 452U);
  EXPECT_EQ(data_seqs(sent), range(1, 2500));
  EXPECT_EQ(stats(ch).messages_sent, 2500U);
}

TEST_F(FrcSenderTest, ADataHoldsAboutMaxDataBytesAndAlwaysOneMessage) {
  settings.max_data_bytes = 100;
  const std::size_t ch = channel("payments");
  for (int i = 0; i < 7; ++i) store.put(ch, std::string(40, static_cast<char>('a' + i)));
  store.put(ch, std::string(250, 'z'));  // larger than a DATA's bytes: goes alone
  store.put(ch, std::string(40, 'y'));
  machine().on_appended(ch, 9, now);
  const auto sent = open(ch, 0);
  EXPECT_EQ(data_seqs(sent), range(1, 9));
  for (const auto& c : sent) {
    ASSERT_EQ(c.what, command::data);
    EXPECT_GE(c.entries.size(), 1U);
    if (c.entries.size() > 1) {
      EXPECT_LE(c.bytes(), 100U);
    }
  }
  ASSERT_GE(sent.size(), 4U);
  EXPECT_EQ(sent[0].entries.size(), 2U);
  bool alone = false;
  for (const auto& c : sent) alone = alone || (c.entries.size() == 1 && c.entries[0].seq == 8);
  EXPECT_TRUE(alone) << "the 250-byte message went with others";
}

// ---- ACK

TEST_F(FrcSenderTest, AnAckMovesTheAcknowledgedCursorAndTellsTheStore) {
  const std::size_t ch = channel("payments", 5);
  (void)open(ch, 0);
  store.acks.clear();
  ack(1, 3);
  EXPECT_EQ(machine().acked(ch), 3U);
  EXPECT_EQ(store.acks, (std::vector<ack_call>{{ch, 3, {}}}));
  const auto s = stats(ch);
  EXPECT_EQ(s.acked, 3U);
  EXPECT_EQ(s.in_flight, 2U);
  EXPECT_EQ(s.backlog, 2U);
  ack(1, 5);
  EXPECT_EQ(stats(ch).in_flight, 0U);
  EXPECT_EQ(stats(ch).backlog, 0U);
}

TEST_F(FrcSenderTest, AnExpiredSequenceIsDeadLetteredOnceHoweverManyAcksListIt) {
  const std::size_t ch = channel("payments", 6);
  (void)open(ch, 0);
  store.acks.clear();
  ack(1, 3, 1000, {2});
  ack(1, 5, 1000, {2, 4});
  ack(1, 5, 1000, {2, 4});  // the same again: nothing new
  EXPECT_EQ(store.acks, (std::vector<ack_call>{{ch, 3, {2}}, {ch, 5, {4}}}));
  EXPECT_EQ(stats(ch).expired_at_receiver, 2U);
  EXPECT_EQ(machine().stats().ignored, 1U);
  // A report of an expiry at or below the cursor is still handed on, once.
  ack(1, 5, 1000, {2, 4, 5});
  EXPECT_EQ(store.acks.back(), (ack_call{ch, 5, {5}}));
  EXPECT_EQ(stats(ch).expired_at_receiver, 3U);
}

TEST_F(FrcSenderTest, AStaleAckStillExtendsTheCredit) {
  // The receiver's journal went back to sequence 5 while the sender holds 10 as acknowledged.
  const std::size_t ch = channel("payments", 30, 10, receiver_a);
  auto sent = open(ch, 5, 3);
  EXPECT_EQ(data_seqs(sent), range(6, 8));
  store.acks.clear();
  ack(1, 8, 10);  // below the sender's cursor: moves nothing, but grants up to 18
  EXPECT_EQ(machine().acked(ch), 10U);
  EXPECT_TRUE(store.acks.empty());
  EXPECT_EQ(stats(ch).credit_to, 18U);
  EXPECT_EQ(data_seqs(sink.take_commands()), range(9, 18));
}

TEST_F(FrcSenderTest, AnAckAboveTheLastSequenceIsAProtocolError) {
  const std::size_t ch = channel("payments", 5);
  (void)open(ch, 0);
  store.acks.clear();
  ack(1, 6);
  EXPECT_EQ(machine().stats().protocol_errors, 1U);
  EXPECT_EQ(machine().acked(ch), 0U);
  EXPECT_TRUE(store.acks.empty());
}

TEST_F(FrcSenderTest, AnAckOrNackBeforeTheWelcomeIsAProtocolError) {
  const std::size_t ch = channel("payments", 5);
  (void)connect();
  ack(1, 2);
  nack(1, 1);
  EXPECT_EQ(machine().stats().protocol_errors, 2U);
  EXPECT_EQ(machine().acked(ch), 0U);
  EXPECT_TRUE(sink.take_commands().empty());
}

// ---- NACK

TEST_F(FrcSenderTest, ANackGoesBackToTheSequenceTheReceiverExpects) {
  const std::size_t ch = channel("payments", 5);
  (void)open(ch, 0);
  nack(1, 3);
  const auto sent = sink.take_commands();
  EXPECT_EQ(data_seqs(sent), range(3, 5));
  EXPECT_EQ(stats(ch).retransmitted, 3U);
  EXPECT_EQ(stats(ch).messages_sent, 8U);
}

TEST_F(FrcSenderTest, ANackAtOrBelowTheCursorOrPastTheNextSequenceIsIgnored) {
  const std::size_t ch = channel("payments", 5);
  (void)open(ch, 0);
  ack(1, 2);
  (void)sink.take();
  const auto ignored = machine().stats().ignored;
  nack(1, 2);
  nack(1, 1);
  nack(1, 7);
  EXPECT_TRUE(sink.take_commands().empty());
  EXPECT_EQ(machine().stats().ignored, ignored + 3);
  EXPECT_EQ(stats(ch).retransmitted, 0U);
  nack(1, 6);  // last + 1: the receiver has everything; nothing to send
  EXPECT_TRUE(sink.take_commands().empty());
  EXPECT_EQ(machine().stats().ignored, ignored + 3);
}

// ---- retransmission

TEST_F(FrcSenderTest, RetransmitsAfterTheIntervalWithoutProgress) {
  const std::size_t ch = channel("payments", 3);
  (void)open(ch, 0);
  run_alive_for(1999ms);
  EXPECT_TRUE(sink.take_commands().empty());
  run_alive_for(1ms);
  EXPECT_EQ(data_seqs(sink.take_commands()), range(1, 3));
  EXPECT_EQ(stats(ch).retransmitted, 3U);
}

TEST_F(FrcSenderTest, ProgressPutsTheRetransmissionOff) {
  const std::size_t ch = channel("payments", 3);
  (void)open(ch, 0);
  run_alive_for(1500ms);
  ack(1, 1);
  run_alive_for(1999ms);  // 2 s from the ACK, not from the DATA
  EXPECT_TRUE(sink.take_commands().empty());
  run_alive_for(1ms);
  EXPECT_EQ(data_seqs(sink.take_commands()), range(2, 3));
  EXPECT_EQ(stats(ch).retransmitted, 2U);
  ack(1, 3);
  run_alive_for(5000ms);  // nothing in flight: nothing to send again
  EXPECT_TRUE(sink.take_commands().empty());
}

TEST_F(FrcSenderTest, AFullSocketIsTriedAgainShortly) {
  const std::size_t ch = channel("payments");
  (void)open(ch, 0);
  sink.full = true;
  append(ch, 2);
  EXPECT_EQ(machine().stats().send_failures, 1U);
  EXPECT_EQ(stats(ch).messages_sent, 0U);
  sink.full = false;
  run_alive_for(100ms);
  EXPECT_EQ(data_seqs(sink.take_commands()), range(1, 2));
  EXPECT_EQ(stats(ch).retransmitted, 0U);
}

TEST_F(FrcSenderTest, AnOutboxThatCannotBeReadIsReadAgainShortly) {
  const std::size_t ch = channel("payments");
  (void)open(ch, 0);
  store.read_fails = true;
  append(ch, 2);
  EXPECT_EQ(stats(ch).store_errors, 1U);
  store.read_fails = false;
  run_alive_for(100ms);
  EXPECT_EQ(data_seqs(sink.take_commands()), range(1, 2));
}

// ---- withdrawal and SKIP

TEST_F(FrcSenderTest, AHoleInTheOutboxIsSkippedAsWithdrawn) {
  const std::size_t ch = channel("payments", 7);
  store.drop(ch, 3, 3);
  store.drop(ch, 6, 7);
  const auto sent = open(ch, 0);
  ASSERT_EQ(sent.size(), 4U);
  EXPECT_EQ(sent[0].what, command::data);
  EXPECT_EQ(seqs_of(sent[0]), range(1, 2));
  EXPECT_EQ(sent[1].what, command::skip);
  EXPECT_EQ(sent[1].first_seq, 3U);
  EXPECT_EQ(sent[1].last_seq, 3U);
  EXPECT_NE(sent[1].reason.find("withdrawn"), std::string::npos) << sent[1].reason;
  EXPECT_EQ(sent[2].what, command::data);
  EXPECT_EQ(seqs_of(sent[2]), range(4, 5));
  EXPECT_EQ(sent[3].what, command::skip);
  EXPECT_EQ(sent[3].first_seq, 6U);
  EXPECT_EQ(sent[3].last_seq, 7U);
  EXPECT_EQ(stats(ch).skipped, 3U);
  EXPECT_EQ(stats(ch).sent, 7U);
  EXPECT_TRUE(store.withdrawals.empty());
}

TEST_F(FrcSenderTest, AnExpiredMessageIsWithdrawnAndSkippedOnlyOnceThatIsDurable) {
  const std::size_t ch = channel("payments");
  store.put(ch, "fresh");
  store.put(ch, "stale", store.wall - 1);
  store.put(ch, "stale too", store.wall);
  store.put(ch, "later", store.wall + 60'000 * ms_ns);
  machine().on_appended(ch, 4, now);
  auto sent = open(ch, 0);
  EXPECT_EQ(data_seqs(sent), range(1, 1));
  EXPECT_EQ(store.withdrawals, (std::vector<withdraw_call>{{ch, 2, 3, "expired before it was sent"}}));
  EXPECT_EQ(stats(ch).withdrawn, 2U);
  // Nothing passes the withdrawal until it is durable, retransmission or not.
  append(ch, 1);
  run_alive_for(2500ms);
  for (const auto& c : sink.take_commands()) {
    EXPECT_NE(c.what, command::skip);
    if (c.what == command::data) {
      EXPECT_EQ(c.last_seq, 1U);
    }
  }
  store.drop(ch, 2, 3);
  machine().on_withdrawn(ch, 3, now);
  sent = sink.take_commands();
  ASSERT_EQ(sent.size(), 2U);
  EXPECT_EQ(sent[0].what, command::skip);
  EXPECT_EQ(sent[0].first_seq, 2U);
  EXPECT_EQ(sent[0].last_seq, 3U);
  EXPECT_EQ(sent[0].reason, "expired before it was sent");
  EXPECT_EQ(sent[1].what, command::data);
  EXPECT_EQ(seqs_of(sent[1]), range(4, 5));
  EXPECT_EQ(sent[1].entries[0].ttl_ms, 60'000U);
  EXPECT_EQ(stats(ch).skipped, 2U);
  EXPECT_EQ(store.withdrawals.size(), 1U);
}

TEST_F(FrcSenderTest, AMessageLargerThanTheReceiverTakesIsWithdrawnAndSkipped) {
  const std::size_t ch = channel("payments");
  store.put(ch, "small");
  store.put(ch, std::string(11, 'L'));
  store.put(ch, std::string(12, 'L'));
  store.put(ch, "tiny");
  machine().on_appended(ch, 4, now);
  auto sent = open(ch, 0, 1000, 10);
  EXPECT_EQ(data_seqs(sent), range(1, 1));
  ASSERT_EQ(store.withdrawals.size(), 1U);
  EXPECT_EQ(store.withdrawals[0], (withdraw_call{ch, 2, 3, "larger than the receiver's max-message"}));
  store.drop(ch, 2, 3);
  machine().on_withdrawn(ch, 3, now);
  sent = sink.take_commands();
  ASSERT_EQ(sent.size(), 2U);
  EXPECT_EQ(sent[0].what, command::skip);
  EXPECT_EQ(sent[0].first_seq, 2U);
  EXPECT_EQ(sent[0].last_seq, 3U);
  EXPECT_EQ(sent[0].reason, "larger than the receiver's max-message");
  EXPECT_EQ(data_seqs({sent[1]}), range(4, 4));
}

TEST_F(FrcSenderTest, AnExpiredRunAndATooLargeRunAreWithdrawnSeparately) {
  const std::size_t ch = channel("payments");
  store.put(ch, "stale", store.wall - 1);
  store.put(ch, std::string(11, 'L'));
  machine().on_appended(ch, 2, now);
  (void)open(ch, 0, 1000, 10);
  EXPECT_EQ(store.withdrawals, (std::vector<withdraw_call>{{ch, 1, 1, "expired before it was sent"}}));
  store.drop(ch, 1, 1);
  machine().on_withdrawn(ch, 1, now);
  EXPECT_EQ(store.withdrawals.back(), (withdraw_call{ch, 2, 2, "larger than the receiver's max-message"}));
}

TEST_F(FrcSenderTest, AMessageThatExpiresAfterItWasSentIsSentAgainRatherThanWithdrawn) {
  // The receiver may hold it already (accepted, not yet durable): only it can tell whether the
  // message was delivered or expired, and it reports the expiry in an ACK.
  const std::size_t ch = channel("payments");
  store.put(ch, "short-lived", store.wall + 1000 * ms_ns);
  machine().on_appended(ch, 1, now);
  auto sent = open(ch, 0);
  ASSERT_EQ(sent.size(), 1U);
  EXPECT_EQ(sent[0].entries[0].ttl_ms, 1000U);
  store.wall += 5000 * ms_ns;
  run_alive_for(2000ms);  // no ACK: sent again
  sent = sink.take_commands();
  ASSERT_EQ(sent.size(), 1U);
  EXPECT_EQ(sent[0].what, command::data);
  EXPECT_EQ(seqs_of(sent[0]), range(1, 1));
  EXPECT_EQ(sent[0].entries[0].ttl_ms, 1U);
  EXPECT_TRUE(store.withdrawals.empty());
  EXPECT_EQ(stats(ch).retransmitted, 1U);
  ack(1, 1, 1000, {1});
  EXPECT_EQ(store.acks.back(), (ack_call{ch, 1, {1}}));
  EXPECT_EQ(stats(ch).expired_at_receiver, 1U);
}

TEST_F(FrcSenderTest, AWithdrawalThatCompletesAfterTheChannelGreetedAgainIsSkippedAsAHole) {
  const std::size_t ch = channel("payments");
  store.put(ch, "stale", store.wall - 1);
  store.put(ch, "fresh");
  machine().on_appended(ch, 2, now);
  (void)open(ch, 0);
  ASSERT_EQ(store.withdrawals.size(), 1U);
  goodbye(1);  // the receiver forgot the link: greet again
  EXPECT_EQ(machine().state(ch), link_state::greeting);
  (void)sink.take();
  store.drop(ch, 1, 1);
  machine().on_withdrawn(ch, 1, now);  // durable now, but no longer this link's business
  EXPECT_TRUE(sink.take_commands().empty());
  welcome(1, 0);
  const auto sent = sink.take_commands();
  ASSERT_EQ(sent.size(), 2U);
  EXPECT_EQ(sent[0].what, command::skip);
  EXPECT_EQ(sent[0].first_seq, 1U);
  EXPECT_EQ(sent[0].last_seq, 1U);
  EXPECT_EQ(data_seqs(sent), range(2, 2));
  EXPECT_EQ(store.withdrawals.size(), 1U);
}

TEST_F(FrcSenderTest, EachDataEntryCarriesTheTimeItHasLeftToLive) {
  const std::size_t ch = channel("payments");
  store.put(ch, "forever");
  store.put(ch, "a second and a half", store.wall + 1500 * ms_ns);
  store.put(ch, "a fraction over", store.wall + 2500 * ms_ns + 1);
  store.put(ch, "a nanosecond", store.wall + 1);
  store.put(ch, "beyond 32 bits of ms", store.wall + (std::int64_t{1} << 33) * ms_ns);
  machine().on_appended(ch, 5, now);
  const auto sent = open(ch, 0);
  ASSERT_EQ(sent.size(), 1U);
  ASSERT_EQ(sent[0].entries.size(), 5U);
  EXPECT_EQ(sent[0].entries[4].ttl_ms, 0xFFFF'FFFFU);
  EXPECT_EQ(sent[0].entries[0].ttl_ms, 0U);
  EXPECT_EQ(sent[0].entries[1].ttl_ms, 1500U);
  EXPECT_EQ(sent[0].entries[2].ttl_ms, 2501U);  // rounded up: never 0, which means forever
  EXPECT_EQ(sent[0].entries[3].ttl_ms, 1U);
}

// ---- REFUSE

TEST_F(FrcSenderTest, ADuplicateSenderRefusalWaitsOutTheBackOffThenGreetsAgain) {
  expect_retry_after_refusal("duplicate-sender");
}

TEST_F(FrcSenderTest, ATooManyLinksRefusalWaitsOutTheBackOffThenGreetsAgain) {
  expect_retry_after_refusal("too-many-links");
}

TEST_F(FrcSenderTest, ASenderRegressedRefusalFailsTheChannel) { expect_failed_after_refusal("sender-regressed"); }

TEST_F(FrcSenderTest, ANotAllowedRefusalFailsTheChannel) { expect_failed_after_refusal("not-allowed"); }

TEST_F(FrcSenderTest, AMalformedRefusalFailsTheChannel) { expect_failed_after_refusal("malformed"); }

TEST_F(FrcSenderTest, AVersionRefusalFailsEveryChannel) {
  const std::size_t a = channel("payments", 2);
  const std::size_t b = channel("refunds", 2);
  (void)connect();
  message m;
  write_version_refusal(m, routing_id);
  in(std::move(m));
  EXPECT_EQ(machine().state(a), link_state::failed);
  EXPECT_EQ(machine().state(b), link_state::failed);
  EXPECT_EQ(stats(a).refusal, "version: FRC01");
  EXPECT_EQ(stats(b).refusals, 1U);
  run_alive_for(20s);
  EXPECT_TRUE(sink.take_commands().empty());
}

// ---- GOODBYE

TEST_F(FrcSenderTest, AGoodbyeForOneLinkGreetsThatChannelAgain) {
  const std::size_t a = channel("payments", 4);
  const std::size_t b = channel("refunds", 1);
  (void)connect();
  welcome(1, 0);
  welcome(2, 0);
  (void)sink.take();
  ack(1, 2);
  goodbye(1);
  auto sent = sink.take_commands();
  ASSERT_EQ(sent.size(), 1U);
  EXPECT_EQ(sent[0].what, command::hello);
  EXPECT_EQ(sent[0].link, 1U);
  EXPECT_EQ(sent[0].acked, 2U);
  EXPECT_EQ(sent[0].last, 4U);
  EXPECT_EQ(machine().state(a), link_state::greeting);
  EXPECT_EQ(machine().state(b), link_state::open);
  EXPECT_EQ(sink.closes, 0);
  welcome(1, 2);
  EXPECT_EQ(data_seqs(sink.take_commands()), range(3, 4));
}

TEST_F(FrcSenderTest, AGoodbyeForTheConnectionClosesItAndGreetsEveryChannelOnANewOne) {
  const std::size_t a = channel("payments", 4);
  const std::size_t b = channel("refunds", 1);
  (void)connect();
  welcome(1, 0);
  welcome(2, 1);
  (void)sink.take();
  goodbye();
  EXPECT_EQ(sink.closes, 1);
  EXPECT_FALSE(machine().connected());
  EXPECT_EQ(machine().stats().connections_lost, 1U);
  EXPECT_EQ(machine().state(a), link_state::closed);
  EXPECT_EQ(machine().state(b), link_state::closed);
  // The connection had carried WELCOMEs: the receiver went away from a working conversation, so
  // a new connection opens at once (core/liveness.hpp).
  machine().on_tick(now);
  EXPECT_TRUE(machine().connected());
  EXPECT_EQ(sink.opens, 2);
  const auto sent = sink.take_commands();
  ASSERT_EQ(sent.size(), 2U);
  EXPECT_EQ(sent[0].what, command::hello);
  EXPECT_EQ(sent[1].what, command::hello);
  EXPECT_EQ(sent[0].receiver_inc_seen, receiver_a);
  EXPECT_EQ(sent[1].acked, 1U);
}

TEST_F(FrcSenderTest, AGoodbyeOnAConnectionThatCarriedNothingElseWaitsTheBackOff) {
  (void)channel("payments", 4);
  (void)connect();
  goodbye();
  EXPECT_FALSE(machine().connected());
  run_for(99ms);
  EXPECT_FALSE(machine().connected());
  EXPECT_TRUE(sink.take().empty());
  run_for(1ms);
  EXPECT_TRUE(machine().connected());
  goodbye();  // again at once: the wait doubles
  run_for(199ms);
  EXPECT_FALSE(machine().connected());
  run_for(1ms);
  EXPECT_TRUE(machine().connected());
}

// ---- dead receiver

TEST_F(FrcSenderTest, ASilentReceiverIsDeclaredDeadAndTheChannelGreetsOnAFreshConnection) {
  const std::size_t ch = channel("payments", 3);
  (void)open(ch, 0);
  run_for(2999ms);
  EXPECT_TRUE(machine().connected());
  EXPECT_EQ(sink.closes, 0);
  run_for(1ms);
  EXPECT_FALSE(machine().connected());
  EXPECT_EQ(sink.closes, 1);
  EXPECT_EQ(machine().stats().connections_lost, 1U);
  EXPECT_EQ(machine().state(ch), link_state::closed);
  (void)sink.take();
  run_for(100ms);
  EXPECT_TRUE(machine().connected());
  EXPECT_EQ(sink.opens, 2);
  const auto sent = sink.take_commands();
  ASSERT_EQ(sent.size(), 1U);
  EXPECT_EQ(sent[0].what, command::hello);
  EXPECT_EQ(sent[0].acked, 0U);
  EXPECT_EQ(sent[0].last, 3U);
  welcome(1, 1);
  EXPECT_EQ(data_seqs(sink.take_commands()), range(2, 3));
}

TEST_F(FrcSenderTest, AReceiverThatHeartbeatsSlowerIsNotDeclaredDeadEarly) {
  const std::size_t ch = channel("payments", 3);
  (void)connect();
  welcome(1, 3, 1000, receiver_a, 5000);  // it heartbeats every 5 s: dead after 15 s
  run_for(14999ms);
  EXPECT_TRUE(machine().connected());
  run_for(1ms);
  EXPECT_FALSE(machine().connected());
  EXPECT_EQ(machine().state(ch), link_state::closed);
}

TEST_F(FrcSenderTest, HeartbeatsGoOutOnlyWhenNothingElseDid) {
  const std::size_t ch = channel("payments", 1);
  (void)open(ch, 1);
  run_alive_for(999ms);
  EXPECT_TRUE(sink.take().empty());
  run_alive_for(1ms);
  auto sent = sink.take();
  ASSERT_EQ(sent.size(), 1U);
  EXPECT_EQ(sent[0].what, command::heartbeat);
  EXPECT_EQ(machine().stats().heartbeats_sent, 1U);
  run_alive_for(500ms);
  append(ch, 1);  // a DATA puts the next heartbeat off
  EXPECT_EQ(data_seqs(sink.take()), range(2, 2));
  run_alive_for(999ms);
  EXPECT_TRUE(sink.take().empty());
}

// ---- WELCOME faults and incarnations

TEST_F(FrcSenderTest, AWelcomeAboveTheLastSequenceIsAProtocolErrorAndTheChannelGreetsAgain) {
  const std::size_t ch = channel("payments", 3);
  (void)connect();
  welcome(1, 4);
  EXPECT_EQ(machine().stats().protocol_errors, 1U);
  EXPECT_EQ(machine().state(ch), link_state::waiting);
  EXPECT_EQ(machine().acked(ch), 0U);
  EXPECT_TRUE(sink.take_commands().empty());
  EXPECT_TRUE(store.acks.empty());
  run_alive_for(100ms);
  const auto sent = sink.take_commands();
  ASSERT_EQ(sent.size(), 1U);
  EXPECT_EQ(sent[0].what, command::hello);
  welcome(1, 3);
  EXPECT_EQ(machine().state(ch), link_state::open);
}

TEST_F(FrcSenderTest, ANewReceiverIncarnationIsCountedRecordedAndGreetedWith) {
  const std::size_t ch = channel("payments", 3, 0, receiver_a);
  (void)connect();
  welcome(1, 0, 1000, receiver_b);
  EXPECT_EQ(stats(ch).receiver_resets, 1U);
  EXPECT_EQ(stats(ch).receiver_incarnation, receiver_b);
  EXPECT_EQ(store.seen, (std::vector<std::pair<std::size_t, std::uint64_t>>{{ch, receiver_b}}));
  goodbye(1);
  const auto sent = sink.take_commands();
  ASSERT_FALSE(sent.empty());
  EXPECT_EQ(sent.back().what, command::hello);
  EXPECT_EQ(sent.back().receiver_inc_seen, receiver_b);
  welcome(1, 0, 1000, receiver_b);  // the same one again: no change
  EXPECT_EQ(stats(ch).receiver_resets, 1U);
  EXPECT_EQ(store.seen.size(), 1U);
}

TEST_F(FrcSenderTest, AReceiverThatWentBackGetsAcknowledgedMessagesAgainAndASkipForWhatIsTrimmed) {
  const std::size_t ch = channel("payments", 12, 10, receiver_a);
  store.drop(ch, 1, 5);  // retention kept 6..12
  const auto sent = open(ch, 3);
  ASSERT_EQ(sent.size(), 2U);
  EXPECT_EQ(sent[0].what, command::skip);
  EXPECT_EQ(sent[0].first_seq, 4U);
  EXPECT_EQ(sent[0].last_seq, 5U);
  EXPECT_EQ(sent[0].reason, "acknowledged before the receiver's journal was restored");
  EXPECT_EQ(data_seqs(sent), range(6, 12));
  EXPECT_EQ(stats(ch).receiver_regressions, 1U);
  EXPECT_EQ(stats(ch).skipped, 2U);
  EXPECT_EQ(machine().acked(ch), 10U);  // the cursor never goes back
  EXPECT_TRUE(store.acks.empty());
  ack(1, 8);  // stale: ignored but for its credit
  EXPECT_EQ(machine().acked(ch), 10U);
  ack(1, 12);
  EXPECT_EQ(machine().acked(ch), 12U);
  EXPECT_EQ(store.acks, (std::vector<ack_call>{{ch, 12, {}}}));
}

TEST_F(FrcSenderTest, AReceiverThatWentBackGetsEverythingAgainWhenTheOutboxKeptIt) {
  const std::size_t ch = channel("payments", 12, 10, receiver_a);
  const auto sent = open(ch, 3);
  EXPECT_EQ(data_seqs(sent), range(4, 12));
  for (const auto& c : sent) EXPECT_NE(c.what, command::skip);
  EXPECT_EQ(stats(ch).receiver_regressions, 1U);
}

// ---- hostile input

TEST_F(FrcSenderTest, MalformedInputIsCountedAndDropped) {
  const std::size_t ch = channel("payments", 3);
  (void)open(ch, 0);
  machine().on_message(testing::message_of({"FRC01"}), now);
  machine().on_message(testing::message_of({"garbage", "\x12"}), now);
  machine().on_message(testing::message_of({}), now);
  message hello;  // a well-formed command of the other direction
  write_hello(hello, 1, hello_fields{.stream = "s", .sender = "x", .sender_inc = 1, .heartbeat_ms = 1});
  machine().on_message(std::move(hello), now);
  EXPECT_EQ(machine().stats().malformed, 4U);
  EXPECT_EQ(machine().stats().received, 5U);  // the WELCOME and these
  EXPECT_EQ(machine().state(ch), link_state::open);
  ack(9, 1);  // a link it never opened
  EXPECT_EQ(machine().stats().protocol_errors, 1U);
  EXPECT_EQ(machine().acked(ch), 0U);
  EXPECT_TRUE(sink.take_commands().empty());
}

TEST_F(FrcSenderTest, MalformedInputStillShowsTheReceiverAlive) {
  const std::size_t ch = channel("payments", 3);
  (void)open(ch, 3);
  run_for(2000ms);
  machine().on_message(testing::message_of({"FRC01"}), now);
  run_for(2999ms);
  EXPECT_TRUE(machine().connected());
  run_for(1ms);
  EXPECT_FALSE(machine().connected());
}

// ---- stats

TEST_F(FrcSenderTest, TheStatsShowTheChannelsPosition) {
  const std::size_t ch = channel("payments", 10, 2, receiver_a);
  EXPECT_EQ(stats(ch).state, link_state::closed);
  (void)open(ch, 2, 5);
  ack(1, 4, 5);
  const auto s = stats(ch);
  EXPECT_EQ(s.stream, "payments");
  EXPECT_EQ(s.state, link_state::open);
  EXPECT_EQ(to_string(s.state), "open");
  EXPECT_EQ(s.last, 10U);
  EXPECT_EQ(s.acked, 4U);
  EXPECT_EQ(s.sent, 9U);
  EXPECT_EQ(s.in_flight, 5U);
  EXPECT_EQ(s.backlog, 6U);
  EXPECT_EQ(s.credit_to, 9U);
  EXPECT_EQ(s.messages_sent, 7U);
  EXPECT_EQ(s.retransmitted, 0U);
  EXPECT_EQ(s.welcomes, 1U);
  EXPECT_EQ(s.refusals, 0U);
  EXPECT_EQ(s.receiver_incarnation, receiver_a);
  EXPECT_EQ(machine().last(ch), 10U);
  const auto& t = machine().stats();
  EXPECT_EQ(t.connections, 1U);
  EXPECT_EQ(t.received, 2U);
  EXPECT_EQ(t.malformed, 0U);
  EXPECT_EQ(t.connections_lost, 0U);
  EXPECT_EQ(t.send_failures, 0U);
}

}  // namespace
}  // namespace fabric::frc
