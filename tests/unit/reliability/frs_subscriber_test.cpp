// Tests the FRS/1 subscriber machine on a fake clock, with a sink that parses its FETCHes as the
// publisher's ROUTER would and a store in memory: start positions, the live feed merged with
// fetched history in order and without duplicates, gaps, lost tails, removed history, replaced
// and regressed publishers, every bound, timeouts, refusals and liveness. Last, a publisher and a
// subscriber machine wired together over a feed that drops live messages and answers at random,
// with a slow application, a replaced journal and retention removing history as it goes.
#include "reliability/frs_subscriber.hpp"

#include "reliability/frs.hpp"
#include "reliability/frs_publisher.hpp"

#include <fabric/error.hpp>

#include "support/raw_frames.hpp"
#include "support/support.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fabric::frs {
namespace {

using namespace std::chrono_literals;
using detail::time_point;

constexpr std::uint64_t inc_a = 0xA1;
constexpr std::uint64_t inc_b = 0xB2;

// A FETCH or FETCH-TIME the subscriber sent, as the publisher's ROUTER reads it.
struct sent_fetch {
  command what = command::fetch;
  std::uint32_t request = 0;
  std::string stream;
  std::uint64_t from = 0;
  std::uint32_t max_count = 0;
};

// The DEALER (and the SUB, which the subscriber never sends on).
class fake_sink final : public detail::machine_sink {
 public:
  using machine_sink::send;
  result<void> send(detail::port to, message&& m) override {
    EXPECT_EQ(to, fetch_port) << "the subscriber sent on its SUB";
    if (refusing) return errc::back_pressure;
    message mine = std::move(m);
    mine.push_front("sub");
    const parsed p = parse_at_publisher(mine);
    EXPECT_TRUE(p) << "the subscriber sent what a publisher cannot parse: " << describe(p.error);
    out.push_back({p.what, p.request, std::string(p.stream), p.fetch.from, p.fetch.max_count});
    return {};
  }
  std::vector<sent_fetch> take() { return std::exchange(out, {}); }

  bool refusing = false;
  std::vector<sent_fetch> out;
};

struct got {
  std::string stream;
  std::uint64_t inc = 0;
  std::uint64_t seq = 0;
  std::uint64_t time = 0;
  std::string body;
  bool replayed = false;
};

class fake_store final : public subscriber_store {
 public:
  result<std::optional<position>> load(std::string_view stream) override {
    if (failing_loads) return errc::io_error;
    const auto it = positions.find(std::string(stream));
    if (it == positions.end()) return std::optional<position>();
    return std::optional<position>(it->second);
  }
  void deliver(const delivery& d) override {
    out.push_back({std::string(d.stream), d.incarnation, d.seq, d.time_ns, std::string(d.body), d.replayed});
  }
  std::size_t backlog() const noexcept override { return pending; }
  void report(const stream_event& e) override { events.push_back(e); }

  // The sequences delivered since the last call.
  std::vector<std::uint64_t> seqs() {
    std::vector<std::uint64_t> s;
    for (const auto& g : out) s.push_back(g.seq);
    out.clear();
    return s;
  }

  std::map<std::string, position> positions;
  bool failing_loads = false;
  std::size_t pending = 0;
  std::vector<got> out;
  std::vector<stream_event> events;
};

using seq_list = std::vector<std::uint64_t>;

std::string body_of(std::string_view stream, std::uint64_t seq) { return std::string(stream) + ":" + std::to_string(seq); }

class FrsSubscriberTest : public ::testing::Test {
 protected:
  subscriber_machine& machine() {
    if (!machine_) machine_ = std::make_unique<subscriber_machine>(settings, sink, store);
    return *machine_;
  }
  void from_seq(std::uint64_t n) { settings.start = {start_position::kind::from_seq, n}; }
  void from_time(std::uint64_t t) { settings.start = {start_position::kind::from_time, t}; }
  void follow(std::string_view s = "s") { machine().follow(s, now); }

  void on_live(message&& m) { machine().on_message(live_port, std::move(m), now); }
  void on_answer(message&& m) {
    (void)m.pop_front();  // the ROUTER's routing id: the DEALER never sees it
    machine().on_message(fetch_port, std::move(m), now);
  }
  void live(std::string_view stream, std::uint64_t seq, std::uint64_t inc = inc_a) {
    message m;
    write_live(m, stream, inc, seq, 1000 * seq, body_of(stream, seq));
    on_live(std::move(m));
  }
  void beacon(std::string_view stream, std::uint64_t last, std::uint64_t inc = inc_a) {
    message m;
    write_beacon(m, stream, inc, last);
    on_live(std::move(m));
  }
  void heartbeat(std::uint32_t ms = 1000, std::uint64_t inc = inc_a) {
    message m;
    write_heartbeat(m, inc, ms);
    on_live(std::move(m));
  }
  // A BATCH of `count` messages of `stream` from `first`.
  void batch(std::uint32_t request, std::uint64_t first, std::uint64_t count, std::uint64_t inc = inc_a,
             std::string_view stream = "s") {
    message m;
    batch_writer w(m, "sub", request, inc, first);
    for (std::uint64_t s = first; s < first + count; ++s) w.add(1000 * s, body_of(stream, s));
    w.finish();
    on_answer(std::move(m));
  }
  void end(std::uint32_t request, std::uint64_t next, std::uint64_t last, std::uint64_t inc = inc_a) {
    message m;
    write_end(m, "sub", request, inc, end_fields{.next_seq = next, .last = last});
    on_answer(std::move(m));
  }
  void gone(std::uint32_t request, std::uint64_t from, std::uint64_t first_held, std::uint64_t inc = inc_a) {
    message m;
    write_gone(m, "sub", request, inc, gone_fields{.from_seq = from, .first_held = first_held});
    on_answer(std::move(m));
  }
  void refuse(std::uint32_t request, std::string_view code, std::string_view reason = "") {
    message m;
    write_refuse(m, "sub", request, refuse_fields{.code = code, .reason = reason});
    on_answer(std::move(m));
  }

  // The one FETCH sent since the last take, checked to be for `stream` from `from`.
  sent_fetch fetched(std::uint64_t from, std::string_view stream = "s") {
    auto f = sink.take();
    EXPECT_EQ(f.size(), 1U) << "expected exactly one FETCH";
    if (f.empty()) return {};
    EXPECT_EQ(f[0].what, command::fetch);
    EXPECT_EQ(f[0].stream, stream);
    EXPECT_EQ(f[0].from, from);
    return f[0];
  }
  subscriber_stream_stats stream(std::string_view name = "s") {
    for (auto& s : machine().stream_stats()) {
      if (s.stream == name) return s;
    }
    ADD_FAILURE() << "no stream " << name;
    return {};
  }
  std::vector<stream_event> events() { return std::exchange(store.events, {}); }
  void tick(std::chrono::milliseconds d) {
    now += d;
    machine().on_tick(now);
  }

  subscriber_settings settings;
  fake_sink sink;
  fake_store store;
  time_point now{std::chrono::seconds(1000)};
  std::unique_ptr<subscriber_machine> machine_;
};

// ---- settings

TEST_F(FrsSubscriberTest, RefusesSettingsOutOfRangeAndBadStreamNames) {
  const auto rejects = [&](auto change) {
    subscriber_settings s;
    change(s);
    testing::expect_error(errc::invalid_argument, [&] { subscriber_machine m(s, sink, store); });
  };
  rejects([](subscriber_settings& s) { s.liveness = 0; });
  rejects([](subscriber_settings& s) { s.assumed_heartbeat = 0ms; });
  rejects([](subscriber_settings& s) { s.fetch_count = 0; });
  rejects([](subscriber_settings& s) { s.fetch_count = max_count + 1; });
  rejects([](subscriber_settings& s) { s.fetch_timeout = 0ms; });
  rejects([](subscriber_settings& s) { s.refused_retry = 0ms; });
  rejects([](subscriber_settings& s) { s.max_fetches = 0; });
  rejects([](subscriber_settings& s) { s.max_held = 0; });
  rejects([](subscriber_settings& s) { s.max_streams = 0; });
  rejects([](subscriber_settings& s) { s.max_backlog = 0; });
  rejects([](subscriber_settings& s) { s.start = {start_position::kind::from_seq, 0}; });
  rejects([](subscriber_settings& s) { s.streams = {""}; });
  rejects([](subscriber_settings& s) { s.streams = {std::string("\0x", 2)}; });
  rejects([](subscriber_settings& s) { s.streams = {std::string(256, 'x')}; });
  testing::expect_error(errc::invalid_argument, [&] { follow(""); });
  EXPECT_NO_THROW(follow(std::string(255, 'x')));
}

// ---- start positions (section 6)

TEST_F(FrsSubscriberTest, LatestStartsAtTheFirstLiveMessageAndFetchesNothingOlder) {
  live("s", 5);
  live("s", 6);
  ASSERT_EQ(store.out.size(), 2U);
  EXPECT_EQ(store.out[0].stream, "s");
  EXPECT_EQ(store.out[0].inc, inc_a);
  EXPECT_EQ(store.out[0].seq, 5U);
  EXPECT_EQ(store.out[0].time, 5000U);
  EXPECT_EQ(store.out[0].body, "s:5");
  EXPECT_FALSE(store.out[0].replayed);
  EXPECT_EQ(store.seqs(), (seq_list{5, 6}));
  EXPECT_TRUE(sink.take().empty());
  EXPECT_EQ(stream().state, "live");
  EXPECT_EQ(stream().next, 7U);
  EXPECT_EQ(stream().delivered, 2U);
  EXPECT_TRUE(store.events.empty());
}

TEST_F(FrsSubscriberTest, LatestAfterABeaconStartsAfterItsLast) {
  beacon("s", 7);
  EXPECT_TRUE(store.out.empty());
  EXPECT_TRUE(sink.take().empty());
  EXPECT_EQ(stream().state, "live");
  EXPECT_EQ(stream().next, 8U);
  live("s", 8);
  EXPECT_EQ(store.seqs(), (seq_list{8}));
}

TEST_F(FrsSubscriberTest, LatestWaitsForThePublisherToNameThePosition) {
  follow();
  EXPECT_TRUE(sink.take().empty());
  EXPECT_EQ(stream().state, "waiting");
  EXPECT_EQ(stream().next, 0U);
  EXPECT_EQ(machine().next_tick(), time_point::max()) << "nothing is due before the publisher is heard";
}

TEST_F(FrsSubscriberTest, FromSeqFetchesTheHistoryInOrderThenGoesLive) {
  from_seq(1);
  settings.fetch_count = 3;
  follow();
  sent_fetch f = fetched(1);
  EXPECT_EQ(f.max_count, 3U);
  EXPECT_EQ(stream().state, "catching-up");

  batch(f.request, 1, 3);
  EXPECT_EQ(store.out.size(), 3U);
  for (const auto& g : store.out) EXPECT_TRUE(g.replayed);
  EXPECT_EQ(store.seqs(), (seq_list{1, 2, 3}));
  f = fetched(4);
  batch(f.request, 4, 2);
  EXPECT_EQ(store.seqs(), (seq_list{4, 5}));
  f = fetched(6);
  end(f.request, 6, 5);
  EXPECT_EQ(stream().state, "live");
  EXPECT_TRUE(sink.take().empty());
  live("s", 6);
  ASSERT_EQ(store.out.size(), 1U);
  EXPECT_FALSE(store.out[0].replayed);
  EXPECT_EQ(store.seqs(), (seq_list{6}));
  EXPECT_EQ(stream().replayed, 5U);
  EXPECT_EQ(stream().fetches, 3U);
  EXPECT_EQ(stream().incarnation, inc_a);
}

TEST_F(FrsSubscriberTest, LiveMessagesWhileCatchingUpAreHeldAndMergedWithoutDuplicates) {
  from_seq(1);
  follow();
  const sent_fetch f = fetched(1);
  live("s", 4);
  live("s", 5);
  live("s", 3);
  live("s", 5);
  EXPECT_TRUE(store.out.empty()) << "delivered ahead of the history";
  EXPECT_TRUE(sink.take().empty()) << "a second FETCH while one is in flight";
  EXPECT_EQ(stream().held, 3U);

  batch(f.request, 1, 4);
  EXPECT_EQ(store.seqs(), (seq_list{1, 2, 3, 4, 5}));
  EXPECT_EQ(stream().held, 0U);
  const sent_fetch g = fetched(6);
  end(g.request, 6, 5);
  EXPECT_EQ(stream().state, "live");
  EXPECT_EQ(stream().duplicates, 3U);  // 5 twice, then 3 and 4 held and fetched
}

TEST_F(FrsSubscriberTest, FromTimeSendsAFetchTimeAndStartsWhereItsAnswerBegins) {
  from_time(4500);
  settings.fetch_count = 4;
  follow();
  auto f = sink.take();
  ASSERT_EQ(f.size(), 1U);
  EXPECT_EQ(f[0].what, command::fetch_time);
  EXPECT_EQ(f[0].from, 4500U);
  EXPECT_EQ(f[0].max_count, 4U);
  live("s", 9);  // held: where the stream starts is not known yet
  EXPECT_TRUE(store.out.empty());

  batch(f[0].request, 5, 4);
  EXPECT_EQ(store.seqs(), (seq_list{5, 6, 7, 8, 9}));
  const sent_fetch g = fetched(10);
  end(g.request, 10, 9);
  EXPECT_EQ(stream().state, "live");
}

TEST_F(FrsSubscriberTest, FromTimePastTheEndStartsAtTheNextSequence) {
  from_time(99'000);
  follow();
  auto f = sink.take();
  ASSERT_EQ(f.size(), 1U);
  end(f[0].request, 11, 10);
  EXPECT_EQ(stream().state, "live");
  EXPECT_EQ(stream().next, 11U);
  live("s", 11);
  EXPECT_EQ(store.seqs(), (seq_list{11}));
  EXPECT_TRUE(store.events.empty());
}

TEST_F(FrsSubscriberTest, FromTimeWhoseHistoryWasRemovedReportsItGone) {
  from_time(1);
  follow();
  auto f = sink.take();
  ASSERT_EQ(f.size(), 1U);
  gone(f[0].request, 1, 5);
  const auto e = events();
  ASSERT_EQ(e.size(), 1U);
  EXPECT_EQ(e[0].what, stream_event::kind::gone);
  EXPECT_EQ(e[0].from, 1U);
  EXPECT_EQ(e[0].to, 4U);
  const sent_fetch g = fetched(5);
  batch(g.request, 5, 1);
  EXPECT_EQ(store.seqs(), (seq_list{5}));
}

// ---- gaps and lost tails

TEST_F(FrsSubscriberTest, AGapInTheLiveFeedIsHeldAndFetchedFromNext) {
  live("s", 1);
  live("s", 2);
  (void)store.seqs();
  live("s", 5);
  EXPECT_TRUE(store.out.empty());
  EXPECT_EQ(stream().state, "catching-up");
  EXPECT_EQ(stream().gaps, 1U);
  const sent_fetch f = fetched(3);
  live("s", 6);
  EXPECT_TRUE(sink.take().empty());

  batch(f.request, 3, 2);
  EXPECT_EQ(store.seqs(), (seq_list{3, 4, 5, 6}));
  const sent_fetch g = fetched(7);
  end(g.request, 7, 6);
  EXPECT_EQ(stream().state, "live");
  live("s", 7);
  EXPECT_EQ(store.seqs(), (seq_list{7}));
  EXPECT_EQ(stream().gaps, 1U);
}

TEST_F(FrsSubscriberTest, ALostTailIsNoticedByABeacon) {
  live("s", 1);
  live("s", 2);
  (void)store.seqs();
  beacon("s", 2);
  EXPECT_TRUE(sink.take().empty()) << "a beacon at the position is no gap";
  beacon("s", 4);
  EXPECT_EQ(stream().gaps, 1U);
  const sent_fetch f = fetched(3);
  batch(f.request, 3, 2);
  EXPECT_EQ(store.seqs(), (seq_list{3, 4}));
  const sent_fetch g = fetched(5);
  end(g.request, 5, 4);
  EXPECT_EQ(stream().state, "live");
}

TEST_F(FrsSubscriberTest, ALiveDuplicateIsDroppedAndCounted) {
  live("s", 1);
  live("s", 2);
  live("s", 2);
  live("s", 1);
  EXPECT_EQ(store.seqs(), (seq_list{1, 2}));
  EXPECT_EQ(stream().duplicates, 2U);
}

// ---- removed history

TEST_F(FrsSubscriberTest, GoneIsReportedOnceWithTheRangeAndContinuesFromFirstHeld) {
  from_seq(1);
  follow();
  sent_fetch f = fetched(1);
  gone(f.request, 1, 6);
  auto e = events();
  ASSERT_EQ(e.size(), 1U);
  EXPECT_EQ(e[0].what, stream_event::kind::gone);
  EXPECT_EQ(e[0].stream, "s");
  EXPECT_EQ(e[0].from, 1U);
  EXPECT_EQ(e[0].to, 5U);
  EXPECT_EQ(stream().gone, 5U);
  f = fetched(6);
  batch(f.request, 6, 2);
  EXPECT_EQ(store.seqs(), (seq_list{6, 7}));
  f = fetched(8);
  end(f.request, 8, 7);
  EXPECT_TRUE(events().empty()) << "the range was reported more than once";
}

TEST_F(FrsSubscriberTest, LiveMessagesHeldInsideAGoneRangeAreDeliveredNotReportedGone) {
  from_seq(1);
  follow();
  sent_fetch f = fetched(1);
  live("s", 3);
  live("s", 4);
  gone(f.request, 1, 6);
  auto e = events();
  ASSERT_EQ(e.size(), 1U);
  EXPECT_EQ(e[0].from, 1U);
  EXPECT_EQ(e[0].to, 2U);
  EXPECT_EQ(store.seqs(), (seq_list{3, 4}));
  f = fetched(5);
  gone(f.request, 5, 6);
  e = events();
  ASSERT_EQ(e.size(), 1U);
  EXPECT_EQ(e[0].from, 5U);
  EXPECT_EQ(e[0].to, 5U);
  EXPECT_EQ(stream().gone, 3U);
  f = fetched(6);
  end(f.request, 6, 5);
  EXPECT_EQ(stream().state, "live");
}

// ---- durable positions and incarnations (sections 6 and 7)

TEST_F(FrsSubscriberTest, ResumesFromTheDurablePosition) {
  store.positions["s"] = {inc_a, 10};
  follow();
  const sent_fetch f = fetched(10);
  batch(f.request, 10, 2);
  ASSERT_EQ(store.out.size(), 2U);
  EXPECT_EQ(store.out[0].inc, inc_a);
  EXPECT_EQ(store.seqs(), (seq_list{10, 11}));
  EXPECT_TRUE(store.events.empty());
}

TEST_F(FrsSubscriberTest, ADurablePositionOfAnotherIncarnationIsReportedReplacedAndRestartsFromOne) {
  store.positions["s"] = {inc_a, 10};
  follow();
  const sent_fetch old = fetched(10);
  batch(old.request, 10, 2, inc_b);
  auto e = events();
  ASSERT_EQ(e.size(), 1U);
  EXPECT_EQ(e[0].what, stream_event::kind::publisher_replaced);
  EXPECT_EQ(e[0].stream, "s");
  EXPECT_EQ(e[0].from, 10U);
  EXPECT_EQ(e[0].old_incarnation, inc_a);
  EXPECT_EQ(e[0].new_incarnation, inc_b);
  EXPECT_TRUE(store.out.empty()) << "the old position's answer was delivered";
  const sent_fetch f = fetched(1);
  EXPECT_NE(f.request, old.request);
  batch(f.request, 1, 2, inc_b);
  ASSERT_EQ(store.out.size(), 2U);
  EXPECT_EQ(store.out[0].inc, inc_b);
  EXPECT_EQ(store.seqs(), (seq_list{1, 2}));
  EXPECT_EQ(stream().incarnation, inc_b);
}

TEST_F(FrsSubscriberTest, ADurablePositionMetAfterTheIncarnationIsKnownIsReplacedAtOnce) {
  heartbeat(1000, inc_b);
  store.positions["s"] = {inc_a, 10};
  follow();
  const auto e = events();
  ASSERT_EQ(e.size(), 1U);
  EXPECT_EQ(e[0].what, stream_event::kind::publisher_replaced);
  (void)fetched(1);
}

TEST_F(FrsSubscriberTest, ANewIncarnationMidStreamRestartsEveryStreamFromOneAndDropsTheOld) {
  live("a", 5);
  live("b", 7);
  (void)store.seqs();
  live("a", 1, inc_b);
  auto e = events();
  ASSERT_EQ(e.size(), 2U);
  std::sort(e.begin(), e.end(), [](const auto& x, const auto& y) { return x.stream < y.stream; });
  EXPECT_EQ(e[0].what, stream_event::kind::publisher_replaced);
  EXPECT_EQ(e[0].stream, "a");
  EXPECT_EQ(e[0].from, 6U);
  EXPECT_EQ(e[1].stream, "b");
  EXPECT_EQ(e[1].from, 8U);
  EXPECT_EQ(e[1].old_incarnation, inc_a);
  EXPECT_EQ(e[1].new_incarnation, inc_b);
  auto f = sink.take();
  ASSERT_EQ(f.size(), 2U);
  for (const auto& x : f) EXPECT_EQ(x.from, 1U);
  ASSERT_EQ(store.out.size(), 1U);
  EXPECT_EQ(store.out[0].inc, inc_b);
  EXPECT_EQ(store.seqs(), (seq_list{1}));

  live("a", 6, inc_a);
  beacon("b", 8, inc_a);
  EXPECT_EQ(machine().stats().stale, 2U);
  EXPECT_TRUE(store.out.empty());
  EXPECT_EQ(machine().stats().publisher_replacements, 1U);
  EXPECT_EQ(machine().stats().publisher_incarnation, inc_b);
}

TEST_F(FrsSubscriberTest, AnEndBehindThePositionIsReportedAsRegressed) {
  store.positions["s"] = {inc_a, 10};
  follow();
  const sent_fetch f = fetched(10);
  end(f.request, 6, 5);
  const auto e = events();
  ASSERT_EQ(e.size(), 1U);
  EXPECT_EQ(e[0].what, stream_event::kind::publisher_regressed);
  EXPECT_EQ(e[0].from, 10U);
  EXPECT_EQ(e[0].to, 6U);
  EXPECT_EQ(stream().state, "live");
  live("s", 6);
  EXPECT_EQ(store.seqs(), (seq_list{6}));
}

TEST_F(FrsSubscriberTest, AnEndOvertakenByTheLiveFeedIsNotARegression) {
  // The END was written before the publisher's first message; the live feed got here first.
  from_seq(1);
  follow();
  const sent_fetch f = fetched(1);
  live("s", 1);
  live("s", 2);
  end(f.request, 1, 0);
  EXPECT_TRUE(events().empty());
  EXPECT_EQ(stream().state, "live");
  EXPECT_EQ(stream().next, 3U);
  live("s", 3);
  EXPECT_EQ(store.seqs(), (seq_list{1, 2, 3}));
}

TEST_F(FrsSubscriberTest, ABeaconBehindTheLivePositionIsReportedAsRegressed) {
  live("s", 9);
  beacon("s", 5);
  const auto e = events();
  ASSERT_EQ(e.size(), 1U);
  EXPECT_EQ(e[0].what, stream_event::kind::publisher_regressed);
  EXPECT_EQ(e[0].from, 10U);
  EXPECT_EQ(e[0].to, 6U);
  EXPECT_EQ(stream().next, 6U);
}

TEST_F(FrsSubscriberTest, AnEndDropsHeldLiveMessagesPastItsLastRatherThanAskAgainAtOnce) {
  // A regressed publisher does not hold what the subscriber held live: asking again at each END
  // would be a FETCH per round trip until the publisher caught up.
  store.positions["s"] = {inc_a, 10};
  follow();
  sent_fetch f = fetched(10);
  live("s", 12);
  end(f.request, 6, 5);
  ASSERT_EQ(events().size(), 1U);
  EXPECT_TRUE(sink.take().empty()) << "END after END, each answered at once with another FETCH";
  EXPECT_EQ(stream().state, "live");
  EXPECT_EQ(stream().held, 0U);
  EXPECT_EQ(stream().held_dropped, 1U);
  live("s", 6);
  EXPECT_EQ(store.seqs(), (seq_list{6}));
}

TEST_F(FrsSubscriberTest, ALiveMessageThatOvertookAnEndIsFetchedLater) {
  store.positions["s"] = {inc_a, 5};
  follow();
  const sent_fetch f = fetched(5);
  live("s", 6);  // published after the END was written, and here first: another socket
  end(f.request, 5, 4);
  EXPECT_EQ(stream().state, "live");
  EXPECT_TRUE(sink.take().empty());
  live("s", 7);
  const sent_fetch g = fetched(5);
  batch(g.request, 5, 3);
  EXPECT_EQ(store.seqs(), (seq_list{5, 6, 7}));
}

// ---- bounds

TEST_F(FrsSubscriberTest, HeldMessagesAreBoundedTheNewestDroppedAndFetchedLater) {
  settings.max_held = 2;
  settings.fetch_count = 1;
  from_seq(1);
  follow();
  sent_fetch f = fetched(1);
  live("s", 3);
  live("s", 4);
  live("s", 5);
  EXPECT_EQ(stream().held, 2U);
  EXPECT_EQ(stream().held_dropped, 1U);

  std::uint64_t expect = 1;
  for (int round = 0; round < 10 && f.request != 0; ++round) {
    const std::uint64_t from = f.from;
    if (from > 5) {
      end(f.request, 6, 5);
      break;
    }
    batch(f.request, from, 1);
    for (const std::uint64_t s : store.seqs()) EXPECT_EQ(s, expect++);
    auto more = sink.take();
    if (more.empty()) break;
    f = more.back();
  }
  EXPECT_EQ(expect, 6U) << "1..5 were not all delivered";
  EXPECT_EQ(stream().state, "live");
}

TEST_F(FrsSubscriberTest, FetchesInFlightAreBoundedAndWaitingStreamsServedAsAnswersArrive) {
  settings.max_fetches = 1;
  from_seq(1);
  follow("a");
  follow("b");
  follow("c");
  sent_fetch f = fetched(1, "a");
  end(f.request, 1, 0);
  f = fetched(1, "b");
  end(f.request, 1, 0);
  f = fetched(1, "c");
  end(f.request, 1, 0);
  EXPECT_TRUE(sink.take().empty());
  for (const char* s : {"a", "b", "c"}) EXPECT_EQ(stream(s).state, "live");
}

TEST_F(FrsSubscriberTest, StreamsPastMaxStreamsAreIgnoredAndCounted) {
  settings.max_streams = 1;
  live("a", 1);
  live("b", 1);
  follow("c");
  EXPECT_EQ(store.seqs(), (seq_list{1}));
  EXPECT_EQ(machine().stats().ignored, 2U);
  EXPECT_EQ(machine().stream_stats().size(), 1U);
}

TEST_F(FrsSubscriberTest, AFullBacklogHoldsDeliveryBackUntilDrained) {
  settings.max_backlog = 2;
  live("s", 1);
  (void)store.seqs();
  store.pending = 2;
  live("s", 2);
  live("s", 3);
  EXPECT_TRUE(store.out.empty()) << "delivered past the backlog";
  EXPECT_TRUE(sink.take().empty()) << "fetched what cannot be delivered";
  EXPECT_EQ(stream().held, 2U);

  store.pending = 1;
  machine().on_drained(now);
  EXPECT_EQ(store.seqs(), (seq_list{2, 3}));
  const sent_fetch f = fetched(4);
  end(f.request, 4, 3);
  EXPECT_EQ(stream().state, "live");
}

TEST_F(FrsSubscriberTest, ABatchArrivingOnAFullBacklogIsFetchedAgainOnceDrained) {
  settings.max_backlog = 2;
  from_seq(1);
  follow();
  const sent_fetch f = fetched(1);
  store.pending = 2;
  batch(f.request, 1, 3);
  EXPECT_TRUE(store.out.empty());
  EXPECT_TRUE(sink.take().empty());
  store.pending = 0;
  machine().on_drained(now);
  const sent_fetch g = fetched(1);
  batch(g.request, 1, 3);
  EXPECT_EQ(store.seqs(), (seq_list{1, 2, 3}));
}

// ---- timeouts and refusals

TEST_F(FrsSubscriberTest, AnUnansweredFetchIsSentAgainAndTheStaleAnswerDropped) {
  from_seq(1);
  follow();
  const sent_fetch first = fetched(1);
  EXPECT_EQ(machine().next_tick(), now + settings.fetch_timeout);
  tick(settings.fetch_timeout - 1ms);
  EXPECT_TRUE(sink.take().empty());
  tick(1ms);
  const sent_fetch again = fetched(1);
  EXPECT_NE(again.request, first.request);
  EXPECT_EQ(machine().stats().fetch_timeouts, 1U);

  batch(first.request, 1, 2);
  EXPECT_TRUE(store.out.empty()) << "an answer to a request given up on was taken";
  EXPECT_EQ(machine().stats().stale, 1U);
  batch(again.request, 1, 2);
  EXPECT_EQ(store.seqs(), (seq_list{1, 2}));
}

TEST_F(FrsSubscriberTest, AFetchTheDealerCannotTakeIsCountedAndSentAgainAfterTheTimeout) {
  from_seq(1);
  sink.refusing = true;
  follow();
  EXPECT_EQ(machine().stats().send_failures, 1U);
  sink.refusing = false;
  tick(settings.fetch_timeout);
  (void)fetched(1);
}

TEST_F(FrsSubscriberTest, ARefusedStreamIsReportedAndAskedForAgainAfterTheRetry) {
  settings.assumed_heartbeat = 10s;  // liveness is not what this is about
  from_seq(1);
  follow();
  const sent_fetch f = fetched(1);
  refuse(f.request, "unknown-stream", "no such stream");
  const auto e = events();
  ASSERT_EQ(e.size(), 1U);
  EXPECT_EQ(e[0].what, stream_event::kind::refused);
  EXPECT_EQ(e[0].stream, "s");
  EXPECT_EQ(e[0].detail, "unknown-stream: no such stream");
  EXPECT_EQ(stream().state, "refused");
  EXPECT_EQ(machine().stats().refusals, 1U);
  EXPECT_EQ(machine().next_tick(), now + settings.refused_retry);

  live("s", 1);
  EXPECT_TRUE(store.out.empty()) << "a refused stream delivered";
  tick(settings.refused_retry - 1ms);
  EXPECT_TRUE(sink.take().empty());
  tick(1ms);
  const sent_fetch g = fetched(1);
  batch(g.request, 1, 1);
  EXPECT_EQ(store.seqs(), (seq_list{1}));
}

TEST_F(FrsSubscriberTest, TooManyRequestsAndUnavailableAreAskedAgainAfterTheFetchTimeout) {
  for (const char* code : {"too-many-requests", "unavailable"}) {
    SCOPED_TRACE(code);
    machine_.reset();
    (void)sink.take();
    from_seq(1);
    follow();
    const sent_fetch f = fetched(1);
    refuse(f.request, code);
    EXPECT_EQ(events().size(), 1U);
    EXPECT_EQ(stream().state, "catching-up");
    EXPECT_EQ(machine().next_tick(), now + settings.fetch_timeout);
    tick(settings.fetch_timeout);
    (void)fetched(1);
  }
}

TEST_F(FrsSubscriberTest, AStreamThatFetchedAgainAfterATransientRefusalIsNotAskedTwice) {
  from_seq(1);
  follow();
  const sent_fetch f = fetched(1);
  refuse(f.request, "too-many-requests");
  tick(1000ms);
  live("s", 5);  // a gap: the stream asks again at once
  const sent_fetch g = fetched(1);
  tick(1000ms);  // the refusal's retry falls due
  EXPECT_TRUE(sink.take().empty()) << "a second FETCH for a stream with one in flight";
  batch(g.request, 1, 4);
  EXPECT_EQ(store.seqs(), (seq_list{1, 2, 3, 4, 5}));
}

// ---- liveness (section 9)

TEST_F(FrsSubscriberTest, APublisherSilentForLivenessIntervalsIsLostAndBackOnItsNextMessage) {
  heartbeat(500);
  live("s", 1);
  (void)store.seqs();
  EXPECT_TRUE(machine().stats().publisher_alive);
  EXPECT_EQ(machine().next_tick(), now + 1500ms);
  tick(1499ms);
  EXPECT_TRUE(store.events.empty());
  tick(1ms);
  auto e = events();
  ASSERT_EQ(e.size(), 1U);
  EXPECT_EQ(e[0].what, stream_event::kind::publisher_lost);
  EXPECT_FALSE(machine().stats().publisher_alive);
  EXPECT_EQ(machine().stats().publisher_losses, 1U);
  tick(10s);
  EXPECT_TRUE(events().empty()) << "lost reported twice";

  heartbeat(500);
  e = events();
  ASSERT_EQ(e.size(), 1U);
  EXPECT_EQ(e[0].what, stream_event::kind::publisher_back);
  const sent_fetch f = fetched(2);  // what was published meanwhile may be lost
  end(f.request, 2, 1);
  EXPECT_EQ(stream().state, "live");
}

TEST_F(FrsSubscriberTest, WhenThePublisherIsBackOnlyLiveStreamsAreCheckedAgain) {
  live("a", 1);
  live("b", 1);
  live("b", 3);  // "b" has a gap: catching up
  (void)fetched(2, "b");
  tick(3000ms);  // lost, and b's FETCH timed out and went again
  ASSERT_EQ(events().size(), 1U);
  const sent_fetch fb = fetched(2, "b");
  live("a", 2);
  const auto e = events();
  ASSERT_EQ(e.size(), 1U);
  EXPECT_EQ(e[0].what, stream_event::kind::publisher_back);
  EXPECT_EQ(e[0].stream, "");
  const sent_fetch f = fetched(2, "a");  // "b" has its FETCH in flight already
  EXPECT_NE(f.request, fb.request);
  EXPECT_EQ(store.seqs(), (seq_list{1, 1, 2}));
}

TEST_F(FrsSubscriberTest, LivenessUsesTheAssumedIntervalUntilAHeartbeatAnnouncesOne) {
  settings.assumed_heartbeat = 200ms;
  live("s", 1);
  EXPECT_EQ(machine().next_tick(), now + 600ms);
  tick(600ms);
  ASSERT_EQ(store.events.size(), 1U);
  EXPECT_EQ(store.events[0].what, stream_event::kind::publisher_lost);
}

// ---- faults

TEST_F(FrsSubscriberTest, MalformedAndWrongDirectionInputIsDroppedAndCounted) {
  live("s", 1);
  (void)store.seqs();
  on_live(testing::message_of({"s", "FRS01\x01"}));
  on_live(testing::message_of({"s", "FRS02\x01" + testing::u64(inc_a) + testing::u64(2) + testing::u64(0) + "x"}));
  on_live(message{});
  machine().on_message(fetch_port, testing::message_of({"garbage"}), now);
  EXPECT_EQ(machine().stats().malformed, 4U);
  message wrong;
  write_fetch(wrong, 1, fetch_fields{.stream = "s", .from = 1, .max_count = 1});
  machine().on_message(fetch_port, std::move(wrong), now);
  EXPECT_EQ(machine().stats().protocol_errors, 1U);
  end(12345, 1, 0);  // no such request
  EXPECT_EQ(machine().stats().stale, 1U);
  EXPECT_TRUE(store.out.empty());
  EXPECT_TRUE(sink.take().empty());
  EXPECT_EQ(machine().stats().received, 7U);
  live("s", 2);
  EXPECT_EQ(store.seqs(), (seq_list{2})) << "the stream was disturbed by bad input";
}

TEST_F(FrsSubscriberTest, ABatchThatDoesNotStartWhereAskedIsAProtocolError) {
  from_seq(1);
  follow();
  const sent_fetch f = fetched(1);
  batch(f.request, 3, 2);
  EXPECT_EQ(machine().stats().protocol_errors, 1U);
  EXPECT_TRUE(store.out.empty());
  (void)fetched(1);
}

TEST_F(FrsSubscriberTest, AStreamWhosePositionCannotBeLoadedIsNotStarted) {
  store.failing_loads = true;
  follow();
  EXPECT_TRUE(sink.take().empty());
  EXPECT_TRUE(machine().stream_stats().empty());
  EXPECT_EQ(machine().stats().store_errors, 1U);
  live("s", 1);
  EXPECT_TRUE(store.out.empty()) << "delivered without knowing the durable position";
  EXPECT_EQ(machine().stats().store_errors, 2U);

  store.failing_loads = false;
  store.positions["s"] = {inc_a, 1};
  live("s", 2);
  (void)fetched(1);
}

// ---- a publisher and a subscriber machine together

// Wires a publisher_machine to a subscriber_machine through queues: the PUB drops live messages
// (and heartbeats) at random as a full high-water mark would, and the replay endpoint loses some
// answers. The journal is a vector of bodies whose oldest retention may remove; the application
// may be slow, finishing a few deliveries per tick.
class FrsEndToEndTest : public ::testing::Test {
 protected:
  class journal_store final : public publisher_store {
   public:
    result<std::uint64_t> read(std::string_view, std::uint64_t from, std::size_t max_records, std::size_t max_bytes,
                               const std::function<void(const journal_record_view&)>& fn) override {
      std::uint64_t next = std::max<std::uint64_t>(from, first);
      std::size_t bytes = 0;
      for (std::size_t n = 0; n < max_records && next <= bodies.size(); ++n, ++next) {
        const std::string& b = bodies[next - 1];
        if (n > 0 && bytes + b.size() > max_bytes) break;
        bytes += b.size();
        fn(journal_record_view{next, static_cast<std::int64_t>(next * 10), b});
      }
      return next;
    }
    result<std::uint64_t> seq_at_time(std::string_view, std::uint64_t t) override {
      for (std::uint64_t s = first; s <= bodies.size(); ++s) {
        if (s * 10 >= t) return s;
      }
      return bodies.size() + 1;
    }
    std::vector<std::string> bodies;
    std::uint64_t first = 1;  // retention removed everything before it
  };
  class pipe final : public detail::machine_sink {
   public:
    using machine_sink::send;
    result<void> send(detail::port to, message&& m) override {
      queue.emplace_back(to, std::move(m));
      return {};
    }
    std::deque<std::pair<detail::port, message>> queue;
  };
  class app final : public subscriber_store {
   public:
    result<std::optional<position>> load(std::string_view) override { return std::optional<position>(); }
    void deliver(const delivery& d) override {
      got.push_back(d.seq);
      incs.push_back(d.incarnation);
      story.emplace_back(d.seq, d.seq);
      if (slow) peak = std::max(peak, ++pending);
    }
    std::size_t backlog() const noexcept override { return pending; }
    void report(const stream_event& e) override {
      events.push_back(e);
      if (e.what == stream_event::kind::gone) story.emplace_back(e.from, e.to);
    }
    std::vector<std::uint64_t> got;
    std::vector<std::uint64_t> incs;
    std::vector<stream_event> events;
    // Deliveries (seq, seq) and gone ranges (from, to), in the order the application saw them.
    std::vector<std::pair<std::uint64_t, std::uint64_t>> story;
    bool slow = false;        // deliveries stay pending until a tick finishes some
    std::size_t pending = 0;
    std::size_t peak = 0;
  };

  // Moves everything queued both ways until nothing is left.
  void pump() {
    std::bernoulli_distribution drop_live(0.3);
    std::bernoulli_distribution drop_answer(0.05);
    while (!from_pub.queue.empty() || !from_sub.queue.empty()) {
      while (!from_pub.queue.empty()) {
        auto [to, m] = std::move(from_pub.queue.front());
        from_pub.queue.pop_front();
        if (to == pub_port) {
          if (drop_live(rng)) continue;
          sub->on_message(live_port, std::move(m), now);
        } else {
          if (drop_answer(rng)) continue;
          (void)m.pop_front();
          sub->on_message(fetch_port, std::move(m), now);
        }
      }
      while (!from_sub.queue.empty()) {
        auto [to, m] = std::move(from_sub.queue.front());
        from_sub.queue.pop_front();
        EXPECT_EQ(to, fetch_port);
        m.push_front("sub");
        pub->on_message(std::move(m), now);
      }
    }
  }
  void tick() {
    now += 100ms;
    if (application.pending > 0) {
      application.pending -= std::min<std::size_t>(application.pending, std::uniform_int_distribution<std::size_t>(0, 6)(rng));
      sub->on_drained(now);
    }
    if (pub->next_tick() <= now) pub->on_tick(now);
    if (sub->next_tick() <= now) sub->on_tick(now);
    pump();
  }

  // Fresh machines, journal and application, and a generator seeded with `seed`.
  void start(std::uint64_t seed, std::size_t max_backlog = 65'536) {
    rng.seed(seed);
    journal.bodies.clear();
    journal.first = 1;
    keep = 0;
    application.got.clear();
    application.incs.clear();
    application.events.clear();
    application.story.clear();
    application.slow = false;
    application.pending = 0;
    application.peak = 0;
    from_pub.queue.clear();
    from_sub.queue.clear();
    publisher_settings ps;
    ps.incarnation = inc_a;
    ps.heartbeat = 1000ms;
    ps.max_batch_bytes = 40;  // small batches: many FETCHes
    pub = std::make_unique<publisher_machine>(ps, from_pub, journal);
    subscriber_settings ss;
    ss.start = {start_position::kind::from_seq, 1};
    ss.fetch_count = 7;
    ss.max_held = 16;
    ss.max_fetches = 2;
    ss.max_backlog = max_backlog;
    sub = std::make_unique<subscriber_machine>(ss, from_sub, application);
    pub->adopt("s", 0);
  }

  // Publishes up to `n` messages in bursts, a tick between bursts, retention keeping the newest
  // `keep` (0: all); then lets time pass until the subscriber has settled.
  void publish_all(std::uint64_t n, bool settle = true) {
    std::uniform_int_distribution<int> burst(1, 20);
    pump();
    while (journal.bodies.size() < n) {
      const std::uint64_t k = std::min<std::uint64_t>(static_cast<std::uint64_t>(burst(rng)), n - journal.bodies.size());
      for (std::uint64_t i = 0; i < k; ++i) journal.bodies.push_back("m" + std::to_string(journal.bodies.size() + 1));
      if (keep != 0 && journal.bodies.size() > keep) journal.first = journal.bodies.size() - keep + 1;
      pub->on_durable("s", journal.bodies.size(), now);
      pump();
      tick();
    }
    // Quiet now: beacons reveal a lost tail, timeouts resend lost answers. A lost answer costs a
    // fetch timeout, so the subscriber may be well behind: give it simulated minutes, then a
    // while longer, in which nothing more may come.
    if (!settle) return;
    const auto settled = [&] { return !application.story.empty() && application.story.back().second == n; };
    for (int i = 0; i < 6000 && !settled(); ++i) tick();
    for (int i = 0; i < 100; ++i) tick();
  }

  std::mt19937_64 rng;
  std::uint64_t keep = 0;  // retention: the newest messages the journal keeps (0: all)
  journal_store journal;
  pipe from_pub;
  pipe from_sub;
  app application;
  time_point now{std::chrono::seconds(1000)};
  std::unique_ptr<publisher_machine> pub;
  std::unique_ptr<subscriber_machine> sub;
};

TEST_F(FrsEndToEndTest, ASubscriberOnALossyFeedDeliversEveryMessageOnceInOrder) {
  for (const std::uint64_t seed : {1U, 2U, 3U, 42U, 2026U}) {
    SCOPED_TRACE(seed);
    start(seed);
    sub->follow("s", now);
    publish_all(2000);
    ASSERT_EQ(application.got.size(), 2000U) << "messages missing or duplicated; the subscriber is "
                                             << sub->stream_stats()[0].state << " at " << sub->stream_stats()[0].next;
    for (std::uint64_t i = 0; i < 2000; ++i) ASSERT_EQ(application.got[i], i + 1);
    for (const auto& e : application.events) {
      EXPECT_NE(e.what, stream_event::kind::gone) << "history was reported gone";
      EXPECT_NE(e.what, stream_event::kind::publisher_replaced);
    }
    EXPECT_GT(pub->stats().replayed, 0U) << "nothing was lost, so nothing was tested";
    EXPECT_GT(sub->stats().fetch_timeouts, 0U) << "no answer was lost, so no resend was tested";
    EXPECT_EQ(sub->stream_stats()[0].state, "live") << "caught up but never back on the live feed";
  }
}

TEST_F(FrsEndToEndTest, ASlowApplicationHoldsDeliveryBackAndStillGetsEveryMessageOnceInOrder) {
  for (const std::uint64_t seed : {4U, 5U, 6U}) {
    SCOPED_TRACE(seed);
    start(seed, 8);
    application.slow = true;
    sub->follow("s", now);
    publish_all(1500);
    ASSERT_EQ(application.got.size(), 1500U) << "messages missing or duplicated; the subscriber is "
                                             << sub->stream_stats()[0].state << " at " << sub->stream_stats()[0].next;
    for (std::uint64_t i = 0; i < 1500; ++i) ASSERT_EQ(application.got[i], i + 1);
    for (const auto& e : application.events) EXPECT_NE(e.what, stream_event::kind::gone);
    EXPECT_EQ(application.peak, 8U) << "the backlog never filled, so holding back was not tested";
  }
}

TEST_F(FrsEndToEndTest, AReplacedPublisherIsReportedOnceAndItsStreamDeliveredFromOne) {
  for (const std::uint64_t seed : {11U, 12U, 13U}) {
    SCOPED_TRACE(seed);
    start(seed);
    sub->follow("s", now);
    publish_all(400);
    ASSERT_EQ(application.got.size(), 400U);
    // A new journal behind the same endpoints: what was in flight still arrives.
    publisher_settings ps;
    ps.incarnation = inc_b;
    ps.heartbeat = 1000ms;
    ps.max_batch_bytes = 40;
    pub = std::make_unique<publisher_machine>(ps, from_pub, journal);
    journal.bodies.clear();
    pub->adopt("s", 0);
    publish_all(700);

    std::vector<std::uint64_t> old_run, new_run;
    for (std::size_t i = 0; i < application.got.size(); ++i) {
      (application.incs[i] == inc_a ? old_run : new_run).push_back(application.got[i]);
      if (i > 0 && application.incs[i - 1] == inc_b) {
        EXPECT_EQ(application.incs[i], inc_b) << "the old journal's message after the new one's";
      }
    }
    EXPECT_EQ(old_run.size(), 400U);
    ASSERT_EQ(new_run.size(), 700U) << "the new journal's stream was not delivered whole, once";
    for (std::uint64_t i = 0; i < 700; ++i) ASSERT_EQ(new_run[i], i + 1);
    std::size_t replaced = 0;
    for (const auto& e : application.events) {
      EXPECT_NE(e.what, stream_event::kind::gone);
      if (e.what != stream_event::kind::publisher_replaced) continue;
      ++replaced;
      EXPECT_EQ(e.old_incarnation, inc_a);
      EXPECT_EQ(e.new_incarnation, inc_b);
      EXPECT_EQ(e.from, 401U);
    }
    EXPECT_EQ(replaced, 1U);
  }
}

TEST_F(FrsEndToEndTest, UnderRetentionEverySequenceIsDeliveredOnceOrReportedGoneOnceInOrder) {
  for (const std::uint64_t seed : {7U, 8U, 9U, 99U}) {
    SCOPED_TRACE(seed);
    start(seed);
    keep = 120;
    publish_all(300, false);  // the subscriber joins late: 1 .. 180 are gone already
    sub->follow("s", now);
    publish_all(3000);
    std::uint64_t expected = 1;
    for (const auto& [from, to] : application.story) {
      ASSERT_EQ(from, expected) << "out of order, duplicated or skipped silently";
      ASSERT_GE(to, from);
      expected = to + 1;
    }
    EXPECT_EQ(expected, 3001U) << "the application was not told of every sequence";
    std::uint64_t gone = 0;
    for (const auto& e : application.events) {
      if (e.what == stream_event::kind::gone) gone += e.to - e.from + 1;
    }
    EXPECT_GE(gone, 180U);
    EXPECT_EQ(gone + application.got.size(), 3000U);
    EXPECT_EQ(application.got.back(), 3000U);
    EXPECT_EQ(sub->stream_stats()[0].gone + sub->stream_stats()[0].delivered, 3000U);
  }
}

}  // namespace
}  // namespace fabric::frs
