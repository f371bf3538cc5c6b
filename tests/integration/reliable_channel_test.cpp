// Reliable channels end to end, in one process: a reliable_sender and a reliable_receiver over
// ipc, each with its own journal, restarted and starved the ways a service is.
#include "support/support.hpp"

#include <fabric/reliable_channel.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using fabric::errc;
using fabric::journal;
using fabric::journal_txn;
using fabric::reliable_delivery;
using fabric::reliable_receiver;
using fabric::reliable_receiver_options;
using fabric::reliable_sender;
using fabric::reliable_sender_options;
using fabric::testing::temp_dir;
using fabric::testing::wait_bound;

// What a receiver's handler saw, in order, shared with the test's thread.
class collector {
 public:
  struct item {
    std::string stream;
    std::uint64_t seq;
    std::string body;
  };

  void add(const reliable_delivery& d) {
    std::lock_guard lock(mu_);
    items_.push_back({std::string(d.stream), d.seq, std::string(d.body)});
    cv_.notify_all();
  }
  // Waits until `pred(items)` holds, at most `bound`.
  template <class P>
  bool wait(P pred, std::chrono::milliseconds bound = wait_bound) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, bound, [&] { return pred(items_); });
  }
  bool wait_count(std::size_t n, std::chrono::milliseconds bound = wait_bound) {
    return wait([n](const std::vector<item>& v) { return v.size() >= n; }, bound);
  }
  std::vector<item> items() const {
    std::lock_guard lock(mu_);
    return items_;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<item> items_;
};

// The sequences of `stream` in the order they arrived.
std::vector<std::uint64_t> seqs_of(const std::vector<collector::item>& items, const std::string& stream) {
  std::vector<std::uint64_t> out;
  for (const auto& i : items) {
    if (i.stream == stream) out.push_back(i.seq);
  }
  return out;
}

// 1..n, each once, in order.
void expect_exactly(const std::vector<std::uint64_t>& got, std::uint64_t n) {
  ASSERT_EQ(got.size(), n);
  for (std::uint64_t i = 0; i < n; ++i) ASSERT_EQ(got[i], i + 1) << "at position " << i;
}

// 1..n in order, where a message may come again only right after a restart: each sequence is
// either the next one or one already delivered (a redelivery of what was not yet committed).
void expect_complete_in_order(const std::vector<std::uint64_t>& got, std::uint64_t n) {
  std::uint64_t high = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    ASSERT_LE(got[i], high + 1) << "a gap before position " << i;
    high = std::max(high, got[i]);
  }
  EXPECT_EQ(high, n);
}

class ReliableChannelTest : public ::testing::Test {
 protected:
  ReliableChannelTest() : endpoint_("ipc://" + (dir_.path() / "rx.sock").string()) {}

  journal open_journal(const std::string& name) {
    return journal::open(dir_.path() / name, fabric::testing::fast_journal_options());
  }

  reliable_sender_options sender_options(const std::string& name = "orders") {
    reliable_sender_options o;
    o.name = name;
    o.receiver = "billing";
    o.endpoint = endpoint_;
    o.heartbeat = 200ms;
    o.reconnect_interval = 10ms;
    o.reconnect_interval_max = 100ms;
    o.retransmit_interval = 300ms;
    o.send_timeout = wait_bound;
    return o;
  }

  reliable_receiver_options receiver_options(collector& c) {
    reliable_receiver_options o;
    o.endpoint = endpoint_;
    o.heartbeat = 200ms;
    o.on_message = [&c](const reliable_delivery& d) { c.add(d); };
    return o;
  }

  fabric::context ctx_;
  temp_dir dir_;
  std::string endpoint_;
};

TEST_F(ReliableChannelTest, DeliversEveryMessageOnceInOrderPerStream) {
  journal tx = open_journal("tx");
  journal rx = open_journal("rx");
  collector got;
  reliable_receiver in(ctx_, rx, receiver_options(got));
  reliable_sender out(ctx_, tx, sender_options());
  for (int i = 1; i <= 300; ++i) {
    auto a = out.send("payments", "p" + std::to_string(i));
    ASSERT_TRUE(a) << a.error().message();
    EXPECT_EQ(*a, static_cast<std::uint64_t>(i));
    auto b = out.send("refunds", "r" + std::to_string(i));
    ASSERT_TRUE(b) << b.error().message();
  }
  ASSERT_TRUE(got.wait_count(600));
  const auto items = got.items();
  expect_exactly(seqs_of(items, "payments"), 300);
  expect_exactly(seqs_of(items, "refunds"), 300);
  for (const auto& i : items) {
    EXPECT_EQ(i.body, (i.stream == "payments" ? "p" : "r") + std::to_string(i.seq));
  }
  // The sender learns of every acknowledgement.
  const auto deadline = std::chrono::steady_clock::now() + wait_bound;
  fabric::reliable_sender_stats s;
  do {
    s = out.stats();
  } while ((s.channels.size() != 2 || s.channels[0].acknowledged != 300 || s.channels[1].acknowledged != 300) &&
           std::chrono::steady_clock::now() < deadline);
  ASSERT_EQ(s.channels.size(), 2u);
  EXPECT_EQ(s.channels[0].acknowledged, 300u);
  EXPECT_EQ(s.channels[1].acknowledged, 300u);
  EXPECT_EQ(s.channels[0].state, "open");
  const auto r = in.stats();
  EXPECT_EQ(r.channels.size(), 2u);
  EXPECT_EQ(r.malformed, 0u);
}

TEST_F(ReliableChannelTest, TheOutboxIsTrimmedOnceTheReceiverHasAcknowledged) {
  journal tx = open_journal("tx");
  journal rx = open_journal("rx");
  collector got;
  reliable_receiver in(ctx_, rx, receiver_options(got));
  reliable_sender out(ctx_, tx, sender_options());
  for (int i = 1; i <= 50; ++i) ASSERT_TRUE(out.send("payments", std::to_string(i)));
  ASSERT_TRUE(got.wait_count(50));
  // The cursor and the trimming commit together: once the cursor shows 50, the trim is done.
  const auto deadline = std::chrono::steady_clock::now() + wait_bound;
  std::optional<std::uint64_t> acked;
  while (acked != 50u && std::chrono::steady_clock::now() < deadline)
    acked = tx.cursor("frc.acked/billing/payments").value();
  ASSERT_EQ(acked, 50u);
  // Everything acknowledged is gone but the newest record, and the channel's last sequence stays.
  const auto held = tx.read(out.outbox_stream("payments"), 1, 100);
  ASSERT_TRUE(held);
  ASSERT_EQ(held->records.size(), 1u);
  EXPECT_EQ(held->records[0].seq, 50u);
  EXPECT_EQ(tx.last_seq(out.outbox_stream("payments")).value(), 50u);
}

TEST_F(ReliableChannelTest, ResumesWhereTheReceiverLeftOffAfterItRestarts) {
  journal tx = open_journal("tx");
  collector got;
  reliable_sender out(ctx_, tx, sender_options());
  {
    journal rx = open_journal("rx");
    reliable_receiver in(ctx_, rx, receiver_options(got));
    for (int i = 1; i <= 200; ++i) ASSERT_TRUE(out.send("payments", std::to_string(i)));
    ASSERT_TRUE(got.wait_count(50));
  }  // the receiver goes away mid-stream, its journal closed
  for (int i = 201; i <= 400; ++i) ASSERT_TRUE(out.send("payments", std::to_string(i)));
  journal rx = open_journal("rx");
  reliable_receiver in(ctx_, rx, receiver_options(got));
  ASSERT_TRUE(got.wait([](const auto& v) {
    std::uint64_t high = 0;
    for (const auto& i : v) high = std::max(high, i.seq);
    return high >= 400;
  }));
  expect_complete_in_order(seqs_of(got.items(), "payments"), 400);
}

TEST_F(ReliableChannelTest, EffectivelyOnceKeepsEachMessageOnceInTheReceiversOwnState) {
  journal tx = open_journal("tx");
  reliable_sender out(ctx_, tx, sender_options());
  std::atomic<std::uint64_t> high{0};
  auto options = [&] {
    reliable_receiver_options o;
    o.endpoint = endpoint_;
    o.heartbeat = 200ms;
    o.mode = fabric::delivery_mode::effectively_once;
    o.on_message_in = [&high](const reliable_delivery& d, journal_txn& t) {
      const std::string key = std::to_string(d.seq);
      auto before = t.get("payments", key);
      if (before && *before) t.put("duplicates", key, "1");
      t.put("payments", key, std::string(d.body));
      if (d.seq > high) high = d.seq;
    };
    return o;
  };
  {
    journal rx = open_journal("rx");
    reliable_receiver in(ctx_, rx, options());
    for (int i = 1; i <= 150; ++i) ASSERT_TRUE(out.send("payments", "amount " + std::to_string(i)));
    const auto deadline = std::chrono::steady_clock::now() + wait_bound;
    while (high < 40 && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  }
  for (int i = 151; i <= 300; ++i) ASSERT_TRUE(out.send("payments", "amount " + std::to_string(i)));
  {
    journal rx = open_journal("rx");
    reliable_receiver in(ctx_, rx, options());
    const auto deadline = std::chrono::steady_clock::now() + wait_bound;
    while (high < 300 && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
    ASSERT_EQ(high.load(), 300u);
    // The mark of the last message commits with it; wait for the receiver to have taken it.
    bool taken = false;
    while (!taken && std::chrono::steady_clock::now() < deadline) {
      const auto s = in.stats();
      taken = s.channels.size() == 1 && s.channels[0].taken == 300;
    }
    ASSERT_TRUE(taken);
  }
  journal rx = open_journal("rx");
  for (int i = 1; i <= 300; ++i) {
    auto v = rx.get("payments", std::to_string(i));
    ASSERT_TRUE(v && *v) << "payment " << i << " missing";
    EXPECT_EQ(**v, "amount " + std::to_string(i));
    auto d = rx.get("duplicates", std::to_string(i));
    ASSERT_TRUE(d);
    EXPECT_FALSE(*d) << "payment " << i << " was applied twice";
  }
}

TEST_F(ReliableChannelTest, ARestartedSenderSendsItsBacklogFromTheJournal) {
  journal tx = open_journal("tx");
  {
    reliable_sender out(ctx_, tx, sender_options());
    for (int i = 1; i <= 100; ++i) ASSERT_TRUE(out.send("payments", std::to_string(i)));
  }  // no receiver yet: everything waits in the outbox
  collector got;
  journal rx = open_journal("rx");
  reliable_receiver in(ctx_, rx, receiver_options(got));
  reliable_sender out(ctx_, tx, sender_options());  // knows its channels from the journal
  ASSERT_TRUE(got.wait_count(100));
  expect_exactly(seqs_of(got.items(), "payments"), 100);
}

TEST_F(ReliableChannelTest, AMessagePastItsTimeToLiveIsDeadLetteredAtTheSender) {
  journal tx = open_journal("tx");
  reliable_sender out(ctx_, tx, sender_options());
  for (int i = 1; i <= 5; ++i) ASSERT_TRUE(out.send("payments", "late", {.ttl = 1ms}));
  for (int i = 6; i <= 8; ++i) ASSERT_TRUE(out.send("payments", "on time"));
  std::this_thread::sleep_for(5ms);  // the subject: let the first five outlive their ttl
  collector got;
  journal rx = open_journal("rx");
  reliable_receiver in(ctx_, rx, receiver_options(got));
  ASSERT_TRUE(got.wait_count(3));
  const auto items = got.items();
  ASSERT_EQ(items.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(items[i].seq, 6 + i);
    EXPECT_EQ(items[i].body, "on time");
  }
  const auto deadline = std::chrono::steady_clock::now() + wait_bound;
  std::vector<fabric::dead_letter> letters;
  while (letters.size() < 5 && std::chrono::steady_clock::now() < deadline) {
    auto l = tx.dead_letters();
    ASSERT_TRUE(l);
    letters = *l;
  }
  ASSERT_EQ(letters.size(), 5u);
  EXPECT_EQ(letters[0].reason, "expired before it was sent");
}

TEST_F(ReliableChannelTest, AHandlerThatKeepsFailingIsRetriedThenDeadLetteredAndTheChannelMovesOn) {
  journal tx = open_journal("tx");
  journal rx = open_journal("rx");
  collector got;
  std::atomic<int> poison_attempts{0};
  reliable_receiver_options o = receiver_options(got);
  o.max_attempts = 3;
  o.on_message = [&](const reliable_delivery& d) {
    if (d.body == "poison") {
      ++poison_attempts;
      throw std::runtime_error("cannot bill this");
    }
    got.add(d);
  };
  reliable_receiver in(ctx_, rx, o);
  reliable_sender out(ctx_, tx, sender_options());
  ASSERT_TRUE(out.send("payments", "a"));
  ASSERT_TRUE(out.send("payments", "poison"));
  ASSERT_TRUE(out.send("payments", "b"));
  ASSERT_TRUE(got.wait_count(2));
  const auto items = got.items();
  EXPECT_EQ(items[0].body, "a");
  EXPECT_EQ(items[1].body, "b");
  EXPECT_EQ(poison_attempts.load(), 3);
  const auto deadline = std::chrono::steady_clock::now() + wait_bound;
  std::vector<fabric::dead_letter> letters;
  while (letters.empty() && std::chrono::steady_clock::now() < deadline) letters = rx.dead_letters().value();
  ASSERT_EQ(letters.size(), 1u);
  EXPECT_EQ(letters[0].payload, "poison");
  EXPECT_NE(letters[0].reason.find("failed 3 times: cannot bill this"), std::string::npos) << letters[0].reason;
  EXPECT_EQ(in.stats().dead_lettered, 1u);
}

TEST_F(ReliableChannelTest, AFullBacklogIsBackPressureUnderTheFailPolicy) {
  journal tx = open_journal("tx");
  reliable_sender_options o = sender_options();
  o.max_backlog = 10;
  o.overflow = fabric::overflow_policy::fail;
  reliable_sender out(ctx_, tx, o);  // no receiver: nothing is acknowledged
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(out.send("payments", "x"));
  auto r = out.send("payments", "x");
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.is(errc::back_pressure));
}

TEST_F(ReliableChannelTest, ADelayedMessageIsDeliveredWhenDueBehindThoseSentMeanwhile) {
  journal tx = open_journal("tx");
  journal rx = open_journal("rx");
  collector got;
  reliable_receiver in(ctx_, rx, receiver_options(got));
  reliable_sender out(ctx_, tx, sender_options());
  auto delayed = out.send("payments", "later", {.deliver_at = std::chrono::system_clock::now() + 200ms});
  ASSERT_TRUE(delayed);
  EXPECT_EQ(*delayed, 0u);  // no sequence until it is due
  ASSERT_TRUE(out.send("payments", "now"));
  ASSERT_TRUE(got.wait_count(2, 2 * wait_bound));
  const auto items = got.items();
  EXPECT_EQ(items[0].body, "now");
  EXPECT_EQ(items[1].body, "later");
  EXPECT_EQ(items[1].seq, 2u);
}

}  // namespace

namespace {

// The outbox keeps only what the receiver has not acknowledged: a sender whose outbox were never
// trimmed would hold every message it ever sent.
TEST_F(ReliableChannelTest, AStoppingSenderWritesItsLastCursorAndTheOutboxIsTrimmedThrough) {
  journal tx = open_journal("tx");
  journal rx = open_journal("rx");
  collector got;
  reliable_receiver in(ctx_, rx, receiver_options(got));
  std::mutex mu;
  std::condition_variable moved;
  std::uint64_t acked = 0;
  reliable_sender_options so = sender_options();
  so.on_acknowledged = [&](std::string_view, std::uint64_t a) {
    std::lock_guard lock(mu);
    acked = a;
    moved.notify_all();
  };
  std::string outbox;
  {
    reliable_sender out(ctx_, tx, so);
    outbox = out.outbox_stream("payments");
    for (int i = 1; i <= 50; ++i) ASSERT_TRUE(out.send("payments", "p" + std::to_string(i)));
    std::unique_lock lock(mu);
    ASSERT_TRUE(moved.wait_for(lock, wait_bound, [&] { return acked == 50; }));
  }  // a stopping sender writes its last acknowledged cursor
  auto cursor = tx.cursor("frc.acked/billing/payments");
  ASSERT_TRUE(cursor);
  EXPECT_EQ(cursor->value_or(0), 50u);
  auto left = tx.read(outbox, 1, 100);
  ASSERT_TRUE(left);
  // Retention trims through the cursor; it may keep the newest record.
  EXPECT_LE(left->records.size(), 1u) << "the first record left is " << left->records.front().seq;
}

TEST_F(ReliableChannelTest, ManualModeCommitsOnlyWhatTheApplicationAcknowledged) {
  journal tx = open_journal("tx");
  collector got;
  std::atomic<std::uint64_t> acked{0};
  reliable_sender_options so = sender_options();
  so.on_acknowledged = [&acked](std::string_view, std::uint64_t a) { acked = a; };
  reliable_sender out(ctx_, tx, so);
  auto manual = [&] {
    reliable_receiver_options o = receiver_options(got);
    o.mode = fabric::delivery_mode::manual;
    return o;
  };
  std::size_t first_run = 0;
  {
    journal rx = open_journal("rx");
    reliable_receiver in(ctx_, rx, manual());
    for (int i = 1; i <= 10; ++i) ASSERT_TRUE(out.send("payments", std::to_string(i)));
    ASSERT_TRUE(got.wait_count(1));
    // Handed over, not acknowledged by the application: nothing is taken.
    EXPECT_EQ(in.stats().channels.at(0).taken, 0u);
    EXPECT_EQ(acked.load(), 0u);
    first_run = got.items().size();
  }  // the receiver stops with what it handed over unacknowledged: it comes again
  journal rx = open_journal("rx");
  reliable_receiver in(ctx_, rx, manual());
  // The application acknowledges what it is handed; the next messages follow.
  const auto deadline = std::chrono::steady_clock::now() + wait_bound;
  while (acked.load() < 10 && std::chrono::steady_clock::now() < deadline) {
    const auto all = seqs_of(got.items(), "payments");
    if (all.size() > first_run) in.acknowledge("orders", "payments", all.back());
    got.wait_count(all.size() + 1, 20ms);
  }
  EXPECT_EQ(acked.load(), 10u);
  const auto all = seqs_of(got.items(), "payments");
  expect_exactly(std::vector<std::uint64_t>(all.begin() + static_cast<std::ptrdiff_t>(first_run), all.end()), 10);
  EXPECT_EQ(in.stats().channels.at(0).taken, 10u);
}

}  // namespace

namespace {

TEST_F(ReliableChannelTest, TheOutboxFormCommitsTheMessageWithTheApplicationsOwnWrites) {
  journal tx = open_journal("tx");
  journal rx = open_journal("rx");
  collector got;
  reliable_receiver in(ctx_, rx, receiver_options(got));
  reliable_sender out(ctx_, tx, sender_options());
  // A transaction that fails keeps neither the order nor its message.
  EXPECT_THROW((void)tx.transact([&](journal_txn& t) {
                 t.put("orders", "1", "pending");
                 out.send(t, "payments", "order 1 paid");
                 throw std::runtime_error("the order was refused");
               }),
               std::runtime_error);
  ASSERT_TRUE(tx.transact([&](journal_txn& t) {
    t.put("orders", "2", "paid");
    EXPECT_EQ(out.send(t, "payments", "order 2 paid"), 1u) << "the failed one took no sequence";
  }));
  out.flush();
  ASSERT_TRUE(got.wait_count(1));
  const auto items = got.items();
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0].body, "order 2 paid");
  EXPECT_FALSE(tx.get("orders", "1").value());
  EXPECT_EQ(tx.get("orders", "2").value(), "paid");
}

TEST_F(ReliableChannelTest, AFullBacklogBlocksUntilTheSendTimeoutUnderTheBlockPolicy) {
  journal tx = open_journal("tx");
  reliable_sender_options o = sender_options();
  o.max_backlog = 5;
  o.overflow = fabric::overflow_policy::block;
  o.send_timeout = 100ms;
  reliable_sender out(ctx_, tx, o);  // no receiver: nothing is acknowledged
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(out.send("payments", "x"));
  const auto start = std::chrono::steady_clock::now();
  auto r = out.send("payments", "x");
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.is(errc::timeout));
  EXPECT_GE(std::chrono::steady_clock::now() - start, 100ms);
  // send_async never waits: it reports the full backlog at once.
  auto later = out.send_async("payments", "x");
  ASSERT_EQ(later.wait_for(wait_bound), std::future_status::ready);
  EXPECT_TRUE(later.get().is(errc::back_pressure));
}

TEST_F(ReliableChannelTest, EffectivelyOnceRetriesAFailingHandlerWithNothingKeptThenDeadLettersIt) {
  journal tx = open_journal("tx");
  journal rx = open_journal("rx");
  std::atomic<int> poison_attempts{0};
  std::atomic<std::uint64_t> high{0};
  reliable_receiver_options o;
  o.endpoint = endpoint_;
  o.heartbeat = 200ms;
  o.mode = fabric::delivery_mode::effectively_once;
  o.max_attempts = 3;
  o.on_message_in = [&](const reliable_delivery& d, journal_txn& t) {
    t.put("applied", std::to_string(d.seq), std::string(d.body));
    if (d.body == "poison") {
      ++poison_attempts;
      throw std::runtime_error("cannot apply");
    }
    high = d.seq;
  };
  reliable_receiver in(ctx_, rx, o);
  reliable_sender out(ctx_, tx, sender_options());
  ASSERT_TRUE(out.send("payments", "a"));
  ASSERT_TRUE(out.send("payments", "poison"));
  ASSERT_TRUE(out.send("payments", "b"));
  const auto deadline = std::chrono::steady_clock::now() + wait_bound;
  bool taken = false;
  while (!taken && std::chrono::steady_clock::now() < deadline) {
    const auto s = in.stats();
    taken = s.channels.size() == 1 && s.channels[0].taken == 3;
  }
  ASSERT_TRUE(taken);
  EXPECT_EQ(poison_attempts.load(), 3);
  EXPECT_EQ(rx.get("applied", "1").value(), "a");
  EXPECT_FALSE(rx.get("applied", "2").value()) << "what a failing handler wrote is never kept";
  EXPECT_EQ(rx.get("applied", "3").value(), "b");
  const auto letters = rx.dead_letters().value();
  ASSERT_EQ(letters.size(), 1u);
  EXPECT_EQ(letters[0].payload, "poison");
  EXPECT_NE(letters[0].reason.find("failed 3 times: cannot apply"), std::string::npos) << letters[0].reason;
}

}  // namespace
