// Streams end to end, in one process: a stream_publisher over its journal and stream_subscribers
// over ipc, joining late, restarting, falling behind past the high-water marks, starting from a
// sequence, a time or the latest message, and told what retention removed.
#include "support/support.hpp"

#include <fabric/reactor.hpp>
#include <fabric/stream.hpp>

#include <gtest/gtest.h>

#include <atomic>
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
using fabric::journal;
using fabric::stream_delivery;
using fabric::stream_message;
using fabric::stream_notice;
using fabric::stream_publisher;
using fabric::stream_publisher_options;
using fabric::stream_start;
using fabric::stream_subscriber;
using fabric::stream_subscriber_options;
using fabric::testing::temp_dir;
using fabric::testing::wait_bound;

// Everything a subscriber's handlers saw, shared with the test's thread.
class collector {
 public:
  struct item {
    std::string stream;
    std::uint64_t seq;
    std::string body;
    bool replayed;
  };

  void add(const stream_message& m) {
    std::lock_guard lock(mu_);
    items_.push_back({std::string(m.stream), m.seq, std::string(m.body), m.replayed});
    ++events_;
    cv_.notify_all();
  }
  void notice(const stream_notice& n) {
    std::lock_guard lock(mu_);
    notices_.push_back(n);
    ++events_;
    cv_.notify_all();
  }
  // Waits until `pred()` holds, at most `bound`. `pred` runs without the collector's lock, so it
  // may read the collector or a subscriber's stats; it is checked on each delivery or notice, and
  // at least every 10 ms for what changes without one.
  template <class P>
  bool wait(P pred, std::chrono::milliseconds bound = wait_bound) {
    const auto deadline = std::chrono::steady_clock::now() + bound;
    for (;;) {
      if (pred()) return true;
      std::unique_lock lock(mu_);
      const auto seen = events_;
      if (std::chrono::steady_clock::now() >= deadline) return false;
      cv_.wait_for(lock, 10ms, [&] { return events_ != seen; });
    }
  }
  // Waits until `stream` has delivered through `seq`.
  bool wait_through(const std::string& stream, std::uint64_t seq, std::chrono::milliseconds bound = wait_bound) {
    return wait([&] { return last(stream) >= seq; }, bound);
  }
  bool wait_notice(stream_notice::kind k, std::chrono::milliseconds bound = wait_bound) {
    return wait([&] {
      for (const auto& n : notices()) {
        if (n.what == k) return true;
      }
      return false;
    }, bound);
  }
  std::uint64_t last(const std::string& stream) const {
    std::lock_guard lock(mu_);
    std::uint64_t high = 0;
    for (const auto& i : items_) {
      if (i.stream == stream) high = std::max(high, i.seq);
    }
    return high;
  }
  std::vector<std::uint64_t> seqs(const std::string& stream) const {
    std::lock_guard lock(mu_);
    std::vector<std::uint64_t> out;
    for (const auto& i : items_) {
      if (i.stream == stream) out.push_back(i.seq);
    }
    return out;
  }
  std::vector<item> items() const {
    std::lock_guard lock(mu_);
    return items_;
  }
  std::vector<stream_notice> notices() const {
    std::lock_guard lock(mu_);
    return notices_;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<item> items_;
  std::vector<stream_notice> notices_;
  std::uint64_t events_ = 0;
};

// A subscriber's counters, for failure messages.
std::string describe(const fabric::stream_subscriber_stats& s) {
  std::string out = "alive=" + std::to_string(s.publisher_alive) + " received=" + std::to_string(s.received) +
                    " fetches=" + std::to_string(s.fetches) + " timeouts=" + std::to_string(s.fetch_timeouts) +
                    " stale=" + std::to_string(s.stale) + " malformed=" + std::to_string(s.malformed) +
                    " protocol_errors=" + std::to_string(s.protocol_errors);
  for (const auto& st : s.streams) {
    out += "; " + st.stream + ": " + st.state + " next=" + std::to_string(st.next) + " delivered=" +
           std::to_string(st.delivered) + " held=" + std::to_string(st.held) + " gaps=" + std::to_string(st.gaps) +
           " fetches=" + std::to_string(st.fetches);
  }
  return out;
}

// from..to, each once, in order.
void expect_range(const std::vector<std::uint64_t>& got, std::uint64_t from, std::uint64_t to) {
  for (std::size_t i = 1; i < got.size(); ++i) {
    ASSERT_EQ(got[i], got[i - 1] + 1) << "at position " << i << " after " << got[i - 1];
  }
  ASSERT_EQ(got.size(), to - from + 1) << "first " << (got.empty() ? 0 : got.front());
  for (std::uint64_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], from + i) << "at position " << i;
}

class StreamTest : public ::testing::Test {
 protected:
  StreamTest()
      : live_("ipc://" + (dir_.path() / "live.sock").string()),
        replay_("ipc://" + (dir_.path() / "replay.sock").string()) {}

  journal open_journal(const std::string& name) {
    return journal::open(dir_.path() / name, fabric::testing::fast_journal_options());
  }

  stream_publisher_options publisher_options() {
    stream_publisher_options o;
    o.endpoint = live_;
    o.replay_endpoint = replay_;
    o.heartbeat = 100ms;
    return o;
  }

  stream_subscriber_options subscriber_options(collector& c, std::vector<std::string> streams,
                                               stream_start start = stream_start::from_seq(1)) {
    stream_subscriber_options o;
    o.endpoint = live_;
    o.replay_endpoint = replay_;
    o.streams = std::move(streams);
    o.start = start;
    o.fetch_timeout = 500ms;
    o.on_message = [&c](const stream_message& m) { c.add(m); };
    o.on_notice = [&c](const stream_notice& n) { c.notice(n); };
    return o;
  }

  static void publish_n(stream_publisher& p, const std::string& stream, std::uint64_t from, std::uint64_t to) {
    for (std::uint64_t i = from; i <= to; ++i) {
      auto r = p.publish(stream, stream + "#" + std::to_string(i));
      ASSERT_TRUE(r) << r.error().message();
      ASSERT_EQ(*r, i);
    }
  }

  fabric::context ctx_;
  temp_dir dir_;
  std::string live_;
  std::string replay_;
};

TEST_F(StreamTest, LateJoinerGetsTheWholeHistoryThenTheLiveFeed) {
  journal j = open_journal("pub");
  stream_publisher pub(ctx_, j, publisher_options());
  publish_n(pub, "prices", 1, 3000);

  collector c;
  stream_subscriber sub(ctx_, subscriber_options(c, {"prices"}));
  ASSERT_TRUE(c.wait_through("prices", 3000));
  publish_n(pub, "prices", 3001, 3500);
  ASSERT_TRUE(c.wait_through("prices", 3500));
  expect_range(c.seqs("prices"), 1, 3500);
  const auto items = c.items();
  EXPECT_TRUE(items.front().replayed);
  EXPECT_EQ(items[41].body, "prices#42");
  const auto s = sub.stats();
  ASSERT_EQ(s.streams.size(), 1u);
  EXPECT_EQ(s.streams[0].state, "live");
  EXPECT_EQ(s.streams[0].next, 3501u);
  EXPECT_GE(s.streams[0].replayed, 3000u);
  EXPECT_TRUE(s.publisher_alive);
}

TEST_F(StreamTest, LatestStartDeliversOnlyWhatComesAfterJoining) {
  journal j = open_journal("pub");
  stream_publisher pub(ctx_, j, publisher_options());
  publish_n(pub, "ticks", 1, 100);
  // Sent live (to nobody) before the subscriber exists: "latest" is then 101.
  collector c;
  ASSERT_TRUE(c.wait([&] {
    const auto s = pub.stats();
    return !s.streams.empty() && s.streams[0].published == 100;
  }));
  stream_subscriber sub(ctx_, subscriber_options(c, {"ticks"}, stream_start::latest()));
  // The position is learned from a beacon (the stream is quiet) or the first live message.
  ASSERT_TRUE(c.wait([&] {
    const auto s = sub.stats();
    return !s.streams.empty() && s.streams[0].next == 101;
  }));
  publish_n(pub, "ticks", 101, 150);
  ASSERT_TRUE(c.wait_through("ticks", 150));
  expect_range(c.seqs("ticks"), 101, 150);
}

TEST_F(StreamTest, FromTimeStartsAtTheFirstMessageAtOrAfterTheTime) {
  // The journal stamps each commit with its clock: the test sets it.
  auto now = std::make_shared<std::atomic<std::int64_t>>(1'000'000'000'000'000'000);
  auto jo = fabric::testing::fast_journal_options();
  jo.clock = [now] {
    return std::chrono::system_clock::time_point(std::chrono::duration_cast<std::chrono::system_clock::duration>(
        std::chrono::nanoseconds(now->load())));
  };
  journal j = journal::open(dir_.path() / "pub", jo);
  stream_publisher pub(ctx_, j, publisher_options());
  publish_n(pub, "t", 1, 50);
  now->fetch_add(1'000'000'000);
  const auto cut = jo.clock();
  publish_n(pub, "t", 51, 80);

  collector c;
  stream_subscriber sub(ctx_, subscriber_options(c, {"t"}, stream_start::from_time(cut)));
  ASSERT_TRUE(c.wait_through("t", 80));
  expect_range(c.seqs("t"), 51, 80);
}

TEST_F(StreamTest, DurableSubscriberResumesFromItsPositionAfterARestart) {
  journal pj = open_journal("pub");
  journal sj = open_journal("sub");
  stream_publisher pub(ctx_, pj, publisher_options());
  publish_n(pub, "orders", 1, 400);
  collector c;
  {
    auto o = subscriber_options(c, {"orders"});
    o.mode = stream_delivery::at_least_once;
    o.name = "orders-service";
    stream_subscriber sub(ctx_, sj, o);
    ASSERT_TRUE(c.wait_through("orders", 400));
  }  // stopping commits the positions reached
  publish_n(pub, "orders", 401, 700);
  {
    auto o = subscriber_options(c, {"orders"}, stream_start::latest());  // the position wins
    o.mode = stream_delivery::at_least_once;
    o.name = "orders-service";
    stream_subscriber sub(ctx_, sj, o);
    ASSERT_TRUE(c.wait_through("orders", 700));
  }
  expect_range(c.seqs("orders"), 1, 700);
}

TEST_F(StreamTest, EffectivelyOnceCommitsTheHandlersWritesWithThePosition) {
  journal pj = open_journal("pub");
  journal sj = open_journal("sub");
  stream_publisher pub(ctx_, pj, publisher_options());
  publish_n(pub, "pay", 1, 300);
  collector c;
  auto o = subscriber_options(c, {"pay"});
  o.mode = stream_delivery::effectively_once;
  o.name = "ledger";
  o.on_message = {};
  std::atomic<int> failures_left{3};
  o.on_message_in = [&c, &failures_left](const stream_message& m, fabric::journal_txn& t) {
    if (m.seq == 77 && failures_left.fetch_sub(1) > 0) throw std::runtime_error("not yet");
    t.put("ledger", "k" + std::to_string(m.seq), m.body);
    c.add(m);
  };
  {
    stream_subscriber sub(ctx_, sj, o);
    ASSERT_TRUE(c.wait_through("pay", 300));
    ASSERT_TRUE(c.wait([&] { return sub.stats().streams.at(0).delivered == 300; }));
  }
  // Every message is in the handler's table once, and the position is past the last.
  auto rows = sj.table_entries("ledger", {}, 1000);
  ASSERT_TRUE(rows);
  EXPECT_EQ(rows->size(), 300u);
  auto pos = sj.table_entries("frs.cursor");
  ASSERT_TRUE(pos);
  ASSERT_EQ(pos->size(), 1u);
  std::uint64_t next = 0;
  for (const char ch : pos->front().second.substr(8)) next = (next << 8) | static_cast<unsigned char>(ch);
  EXPECT_EQ(next, 301u);
}

TEST_F(StreamTest, RetentionRemovedHistoryIsReportedAsGoneWithItsExactRange) {
  journal j = open_journal("pub");
  auto po = publisher_options();
  po.retention.max_records = 100;
  stream_publisher pub(ctx_, j, po);
  publish_n(pub, "log", 1, 1000);
  // The writer trims a bounded amount per commit, and once a second when idle: wait for it.
  auto infos = j.stream_infos();
  const auto deadline = std::chrono::steady_clock::now() + fabric::testing::wait_bound;
  while (infos && !infos->empty() && infos->front().first_seq == 1 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
    infos = j.stream_infos();
  }
  ASSERT_TRUE(infos);
  ASSERT_GT(infos->front().first_seq, 1u) << "retention trims as the stream grows";

  collector c;
  stream_subscriber sub(ctx_, subscriber_options(c, {"log"}));
  ASSERT_TRUE(c.wait_through("log", 1000));
  const auto notices = c.notices();
  ASSERT_FALSE(notices.empty());
  EXPECT_EQ(notices.front().what, stream_notice::kind::gone);
  EXPECT_EQ(notices.front().from, 1u);
  const std::uint64_t lost = notices.front().to;
  EXPECT_GE(lost, infos->front().first_seq - 1);
  // Exactly what was not reported gone is delivered, once, in order.
  expect_range(c.seqs("log"), lost + 1, 1000);
  EXPECT_EQ(sub.stats().streams.at(0).gone, lost);
}

TEST_F(StreamTest, PublisherRestartOnTheSameJournalLosesNothing) {
  journal j = open_journal("pub");
  collector c;
  stream_subscriber sub(ctx_, subscriber_options(c, {"s"}));
  {
    stream_publisher pub(ctx_, j, publisher_options());
    publish_n(pub, "s", 1, 200);
    ASSERT_TRUE(c.wait_through("s", 200));
  }
  {
    stream_publisher pub(ctx_, j, publisher_options());
    publish_n(pub, "s", 201, 400);
    ASSERT_TRUE(c.wait_through("s", 400));
  }
  expect_range(c.seqs("s"), 1, 400);
  for (const auto& n : c.notices()) EXPECT_NE(n.what, stream_notice::kind::publisher_replaced);
}

TEST_F(StreamTest, AReplacedPublisherJournalIsReportedAndTheStreamStartsAgain) {
  collector c;
  stream_subscriber sub(ctx_, subscriber_options(c, {"s"}));
  {
    journal j = open_journal("old");
    stream_publisher pub(ctx_, j, publisher_options());
    publish_n(pub, "s", 1, 50);
    ASSERT_TRUE(c.wait_through("s", 50));
  }
  journal j = open_journal("new");
  stream_publisher pub(ctx_, j, publisher_options());
  publish_n(pub, "s", 1, 20);
  ASSERT_TRUE(c.wait_notice(stream_notice::kind::publisher_replaced));
  ASSERT_TRUE(c.wait([&] { return c.seqs("s").size() >= 70; }));
  const auto seqs = c.seqs("s");
  std::vector<std::uint64_t> second(seqs.begin() + 50, seqs.end());
  expect_range(second, 1, 20);
}

TEST_F(StreamTest, ASubscriberPastTheHighWaterMarksCatchesUpByReplay) {
  journal j = open_journal("pub");
  auto po = publisher_options();
  po.send_hwm = 20;
  stream_publisher pub(ctx_, j, po);
  collector c;
  std::mutex gate;
  std::unique_lock held(gate);
  auto o = subscriber_options(c, {"fast"});
  o.recv_hwm = 20;
  o.max_held = 50;
  o.on_message = [&c, &gate](const stream_message& m) {
    std::lock_guard wait_for_the_gate(gate);  // the first delivery blocks until the test opens it
    c.add(m);
  };
  stream_subscriber sub(ctx_, o);
  // Published while the subscriber cannot take anything: far more than both queues hold.
  publish_n(pub, "fast", 1, 2000);
  held.unlock();
  ASSERT_TRUE(c.wait_through("fast", 2000)) << describe(sub.stats());
  expect_range(c.seqs("fast"), 1, 2000);
  EXPECT_GT(sub.stats().streams.at(0).replayed, 0u);
}

TEST_F(StreamTest, AStalledSubscriberDoesNotSlowTheOthers) {
  journal j = open_journal("pub");
  auto po = publisher_options();
  po.send_hwm = 100;
  stream_publisher pub(ctx_, j, po);
  collector stuck_c;
  collector ok_c;
  std::mutex gate;
  std::unique_lock held(gate);
  auto stuck_o = subscriber_options(stuck_c, {"q"});
  stuck_o.recv_hwm = 100;
  stuck_o.on_message = [&stuck_c, &gate](const stream_message& m) {
    std::lock_guard wait_for_the_gate(gate);
    stuck_c.add(m);
  };
  stream_subscriber stuck(ctx_, stuck_o);
  stream_subscriber ok(ctx_, subscriber_options(ok_c, {"q"}));
  publish_n(pub, "q", 1, 5000);
  ASSERT_TRUE(ok_c.wait_through("q", 5000));
  expect_range(ok_c.seqs("q"), 1, 5000);
  held.unlock();
  ASSERT_TRUE(stuck_c.wait_through("q", 5000));
  expect_range(stuck_c.seqs("q"), 1, 5000);
}

TEST_F(StreamTest, PrefixesSelectStreamsAndExactNamesDoNotMatchLongerOnes) {
  journal j = open_journal("pub");
  stream_publisher pub(ctx_, j, publisher_options());
  publish_n(pub, "fx.eur", 1, 10);
  publish_n(pub, "fx.gbp", 1, 10);
  publish_n(pub, "rates", 1, 10);
  publish_n(pub, "rates2", 1, 10);
  publish_n(pub, "other", 1, 10);
  collector c;
  auto o = subscriber_options(c, {"rates"});
  o.prefixes = {"fx."};
  stream_subscriber sub(ctx_, o);
  // Streams under a prefix are learned from beacons, then fetched from 1.
  ASSERT_TRUE(c.wait([&] { return c.seqs("fx.eur").size() == 10 && c.seqs("fx.gbp").size() == 10 &&
                                  c.seqs("rates").size() == 10; }));
  publish_n(pub, "rates2", 11, 12);
  publish_n(pub, "rates", 11, 11);
  ASSERT_TRUE(c.wait_through("rates", 11));
  EXPECT_TRUE(c.seqs("rates2").empty());
  EXPECT_TRUE(c.seqs("other").empty());
  expect_range(c.seqs("fx.gbp"), 1, 10);
}

TEST_F(StreamTest, MessagesWrittenInTheApplicationsTransactionGoOutAfterFlush) {
  journal j = open_journal("pub");
  stream_publisher pub(ctx_, j, publisher_options());
  collector c;
  stream_subscriber sub(ctx_, subscriber_options(c, {"box"}));
  for (int round = 0; round < 3; ++round) {
    ASSERT_TRUE(j.transact([&](fabric::journal_txn& t) {
      t.put("orders", "o" + std::to_string(round), "state");
      pub.publish(t, "box", "event " + std::to_string(round));
    }));
    pub.flush();
  }
  ASSERT_TRUE(c.wait_through("box", 3));
  expect_range(c.seqs("box"), 1, 3);
}

TEST_F(StreamTest, BothSidesRunOnTheApplicationsReactor) {
  journal j = open_journal("pub");
  stream_publisher pub(ctx_, j, publisher_options(), fabric::deferred_start);
  collector c;
  stream_subscriber sub(ctx_, subscriber_options(c, {"r"}), fabric::deferred_start);
  fabric::reactor loop;
  pub.attach(loop);
  sub.attach(loop);
  std::thread publisher_thread([&] {
    for (int i = 1; i <= 100; ++i) ASSERT_TRUE(pub.publish("r", "m"));
  });
  const auto deadline = std::chrono::steady_clock::now() + wait_bound;
  while (c.seqs("r").size() < 100 && std::chrono::steady_clock::now() < deadline) ASSERT_TRUE(loop.run_once(10ms));
  publisher_thread.join();
  expect_range(c.seqs("r"), 1, 100);
  pub.detach(loop);
  sub.detach(loop);
}

TEST_F(StreamTest, BadOptionsAreRefused) {
  journal j = open_journal("pub");
  collector c;
  fabric::testing::expect_error(fabric::errc::invalid_argument, [&] {
    auto o = subscriber_options(c, {"s"});
    o.mode = stream_delivery::at_least_once;  // needs a journal
    stream_subscriber s(ctx_, o);
  });
  fabric::testing::expect_error(fabric::errc::invalid_argument, [&] {
    auto o = subscriber_options(c, {});  // nothing to follow
    stream_subscriber s(ctx_, o);
  });
  fabric::testing::expect_error(fabric::errc::invalid_argument, [&] {
    auto o = subscriber_options(c, {std::string("\0x", 2)});
    stream_subscriber s(ctx_, o);
  });
  stream_publisher pub(ctx_, j, publisher_options());
  EXPECT_TRUE(pub.publish("", "x").is(fabric::errc::invalid_argument));
  EXPECT_TRUE(pub.publish(std::string(248, 'n'), "x").is(fabric::errc::invalid_argument));
  EXPECT_TRUE(pub.publish(std::string(247, 'n'), "x"));
}

}  // namespace
