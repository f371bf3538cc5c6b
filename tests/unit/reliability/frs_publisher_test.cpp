// Tests the FRS/1 publisher machine on a fake clock, with a sink that parses what it sends as the
// subscriber's SUB and DEALER would and a journal in memory: the live feed read back from the
// journal only once durable, FETCH and FETCH-TIME answered with BATCH, END, GONE or REFUSE within
// their bounds, damaged and removed records, heartbeats and beacons on the interval, and faults.
#include "reliability/frs_publisher.hpp"

#include "reliability/frs.hpp"

#include <fabric/error.hpp>

#include "support/raw_frames.hpp"
#include "support/support.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fabric::frs {
namespace {

using namespace std::chrono_literals;
using detail::time_point;

constexpr std::uint64_t self_inc = 0x5EC0'0000'0000'0001;

// One message the publisher sent, read by the parser of the socket that receives it.
struct sent {
  detail::port to = pub_port;
  std::string peer;  // replay answers: the routing id
  command what = command::heartbeat;
  std::string stream;
  std::uint32_t request = 0;
  std::uint64_t inc = 0;
  std::uint64_t seq = 0;   // LIVE
  std::uint64_t time = 0;  // LIVE
  std::string body;        // LIVE
  std::uint64_t last = 0;  // BEACON
  std::uint32_t heartbeat_ms = 0;
  std::uint64_t first_seq = 0;  // BATCH
  std::vector<std::uint64_t> times;
  std::vector<std::string> bodies;
  end_fields end;
  gone_fields gone;
  std::string code;
  std::string reason;
};

// The PUB and the ROUTER: records everything, or refuses what goes to a port in `refusing`.
class fake_sink final : public detail::machine_sink {
 public:
  using machine_sink::send;
  result<void> send(detail::port to, message&& m) override {
    if (refusing.contains(to)) return errc::back_pressure;
    message mine = std::move(m);
    sent s;
    s.to = to;
    if (to == pub_port) {
      const parsed p = parse_live(mine);
      EXPECT_TRUE(p) << "the publisher sent what a SUB cannot parse: " << describe(p.error);
      s.what = p.what;
      s.stream = std::string(p.stream);
      s.inc = p.publisher_inc;
      s.seq = p.live.seq;
      s.time = p.live.time_ns;
      s.body = std::string(p.live.body);
      s.last = p.last;
      s.heartbeat_ms = p.heartbeat_ms;
    } else {
      s.peer = std::string(mine.view(0));
      (void)mine.pop_front();
      const parsed p = parse_at_subscriber(mine);
      EXPECT_TRUE(p) << "the publisher sent what a DEALER cannot parse: " << describe(p.error);
      s.what = p.what;
      s.request = p.request;
      s.inc = p.publisher_inc;
      if (p.what == command::batch) {
        s.first_seq = p.batch.first_seq();
        for (const batch_entry e : p.batch) {
          s.times.push_back(e.time_ns);
          s.bodies.emplace_back(e.body);
        }
      }
      s.end = p.end;
      s.gone = p.gone;
      s.code = std::string(p.refuse.code);
      s.reason = std::string(p.refuse.reason);
    }
    out.push_back(std::move(s));
    return {};
  }

  std::vector<sent> take() { return std::exchange(out, {}); }

  std::set<detail::port> refusing;
  std::vector<sent> out;
};

// The journal in memory: records by stream and sequence, read as journal::read_views reads them.
class fake_store final : public publisher_store {
 public:
  struct record {
    std::int64_t time_ns = 0;
    std::string body;
  };

  // Appends records `from` .. `to` of `stream`, bodies "<stream>:<seq>", times 1000 * seq.
  void write(const std::string& stream, std::uint64_t from, std::uint64_t to) {
    for (std::uint64_t s = from; s <= to; ++s) streams[stream][s] = {time_of(s), stream + ":" + std::to_string(s)};
  }
  static std::int64_t time_of(std::uint64_t seq) { return static_cast<std::int64_t>(1000 * seq); }
  // Removes records `from` .. `to` of `stream` (retention).
  void remove(const std::string& stream, std::uint64_t from, std::uint64_t to) {
    for (std::uint64_t s = from; s <= to; ++s) streams[stream].erase(s);
  }

  result<std::uint64_t> read(std::string_view stream, std::uint64_t from, std::size_t max_records,
                             std::size_t max_bytes,
                             const std::function<void(const journal_record_view&)>& fn) override {
    reads.push_back({std::string(stream), from, max_records, max_bytes});
    if (failing) return errc::io_error;
    std::uint64_t next = std::max<std::uint64_t>(from, 1);
    const auto st = streams.find(std::string(stream));
    if (st == streams.end() || max_records == 0) return next;
    std::size_t bytes = 0;
    std::size_t records = 0;
    for (auto it = st->second.lower_bound(next); it != st->second.end(); ++it) {
      if (damaged.contains({std::string(stream), it->first})) return errc::malformed;
      if (records > 0 && bytes + it->second.body.size() > max_bytes) break;
      bytes += it->second.body.size();
      fn(journal_record_view{it->first, it->second.time_ns, it->second.body});
      next = it->first + 1;
      if (++records >= max_records) break;
    }
    return next;
  }

  result<std::uint64_t> seq_at_time(std::string_view stream, std::uint64_t time_ns) override {
    if (failing) return errc::io_error;
    const auto st = streams.find(std::string(stream));
    std::uint64_t last = 0;
    if (st != streams.end()) {
      for (const auto& [seq, r] : st->second) {
        if (static_cast<std::uint64_t>(r.time_ns) >= time_ns) return seq;
        last = seq;
      }
    }
    return last + 1;
  }

  bool allowed(std::string_view peer, std::string_view stream) override {
    return !forbidden.contains({std::string(peer), std::string(stream)});
  }

  struct read_call {
    std::string stream;
    std::uint64_t from;
    std::size_t max_records;
    std::size_t max_bytes;
  };
  std::map<std::string, std::map<std::uint64_t, record>> streams;
  std::set<std::pair<std::string, std::uint64_t>> damaged;
  std::set<std::pair<std::string, std::string>> forbidden;
  std::vector<read_call> reads;
  bool failing = false;
};

message raw(const std::vector<std::string>& frames) { return testing::message_of(frames); }

class FrsPublisherTest : public ::testing::Test {
 protected:
  FrsPublisherTest() {
    settings.incarnation = self_inc;
    settings.heartbeat = 1000ms;
  }

  publisher_machine& machine() {
    if (!machine_) machine_ = std::make_unique<publisher_machine>(settings, sink, store);
    return *machine_;
  }
  // A request from `peer`, as the ROUTER hands it over: the routing id in front.
  void in(message&& m, std::string_view peer = "sub-1") {
    m.push_front(peer);
    machine().on_message(std::move(m), now);
  }
  void fetch(std::uint32_t request, std::string_view stream, std::uint64_t from, std::uint32_t count = 1024,
             std::string_view peer = "sub-1") {
    message m;
    write_fetch(m, request, fetch_fields{.stream = stream, .from = from, .max_count = count});
    in(std::move(m), peer);
  }
  void fetch_time(std::uint32_t request, std::string_view stream, std::uint64_t from_time,
                  std::uint32_t count = 1024) {
    message m;
    write_fetch_time(m, request, fetch_fields{.stream = stream, .from = from_time, .max_count = count});
    in(std::move(m));
  }
  // The one answer on the ROUTER since the last take.
  sent answer() {
    auto got = sink.take();
    EXPECT_EQ(got.size(), 1U) << "expected exactly one answer";
    if (got.empty()) return {};
    EXPECT_EQ(got[0].to, replay_port);
    return got[0];
  }
  // Runs every tick due while the clock moves by `d`.
  void run_for(std::chrono::milliseconds d) {
    const time_point end = now + d;
    while (machine().next_tick() <= end) {
      now = std::max(now, machine().next_tick());
      machine().on_tick(now);
    }
    now = end;
  }
  static std::vector<std::uint64_t> seqs(const std::vector<sent>& v, command what) {
    std::vector<std::uint64_t> out;
    for (const auto& s : v) {
      if (s.what == what) out.push_back(what == command::beacon ? s.last : s.seq);
    }
    return out;
  }
  static std::vector<std::string> beaconed(const std::vector<sent>& v) {
    std::vector<std::string> out;
    for (const auto& s : v) {
      if (s.what == command::beacon) out.push_back(s.stream);
    }
    return out;
  }
  std::optional<publisher_stream_stats> stream(std::string_view name) {
    for (auto& s : machine().stream_stats()) {
      if (s.stream == name) return s;
    }
    return std::nullopt;
  }

  publisher_settings settings;
  fake_sink sink;
  fake_store store;
  time_point now{std::chrono::seconds(1000)};
  std::unique_ptr<publisher_machine> machine_;
};

// ---- settings

TEST_F(FrsPublisherTest, RefusesAZeroIncarnationAnIntervalOutOfRangeAndNoBeacons) {
  settings.incarnation = 0;
  testing::expect_error(errc::invalid_argument, [&] { publisher_machine m(settings, sink, store); });
  settings.incarnation = self_inc;
  settings.heartbeat = 0ms;
  testing::expect_error(errc::invalid_argument, [&] { publisher_machine m(settings, sink, store); });
  settings.heartbeat = std::chrono::milliseconds(max_heartbeat_ms + 1);
  testing::expect_error(errc::invalid_argument, [&] { publisher_machine m(settings, sink, store); });
  settings.heartbeat = std::chrono::milliseconds(max_heartbeat_ms);
  EXPECT_NO_THROW(publisher_machine(settings, sink, store));
  settings.heartbeat = 1000ms;
  settings.max_beacons = 0;
  testing::expect_error(errc::invalid_argument, [&] { publisher_machine m(settings, sink, store); });
}

// ---- the live feed (section 5.1)

TEST_F(FrsPublisherTest, PublishesWhatIsDurableInOrderWithTheJournalsTimesAndNothingBeyond) {
  store.write("s", 1, 5);
  machine().on_durable("s", 3, now);
  auto got = sink.take();
  ASSERT_EQ(got.size(), 3U);
  for (std::uint64_t i = 0; i < 3; ++i) {
    EXPECT_EQ(got[i].to, pub_port);
    EXPECT_EQ(got[i].what, command::live);
    EXPECT_EQ(got[i].stream, "s");
    EXPECT_EQ(got[i].inc, self_inc);
    EXPECT_EQ(got[i].seq, i + 1);
    EXPECT_EQ(got[i].time, 1000 * (i + 1));
    EXPECT_EQ(got[i].body, "s:" + std::to_string(i + 1));
  }
  for (const auto& r : store.reads) EXPECT_LE(r.from + r.max_records - 1, 3U) << "read past what is durable";

  machine().on_durable("s", 3, now);
  machine().on_durable("s", 2, now);
  EXPECT_TRUE(sink.take().empty()) << "nothing new is durable";

  machine().on_durable("s", 5, now);
  EXPECT_EQ(seqs(sink.take(), command::live), (std::vector<std::uint64_t>{4, 5}));
  EXPECT_EQ(machine().stats().live_sent, 5U);
  EXPECT_EQ(stream("s")->published, 5U);
  EXPECT_EQ(stream("s")->live_sent, 5U);
}

TEST_F(FrsPublisherTest, ALongDurableRunIsReadInBoundedChunksAndAllPublished) {
  store.write("s", 1, 2500);
  settings.max_batch_bytes = 64;  // a few records per read
  machine().on_durable("s", 2500, now);
  const auto got = seqs(sink.take(), command::live);
  ASSERT_EQ(got.size(), 2500U);
  for (std::uint64_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i], i + 1);
  for (const auto& r : store.reads) EXPECT_LE(r.max_records, 1024U);
}

TEST_F(FrsPublisherTest, StreamsKeepTheirOwnSequences) {
  store.write("a", 1, 2);
  store.write("b", 1, 1);
  machine().on_durable("a", 2, now);
  machine().on_durable("b", 1, now);
  const auto got = sink.take();
  ASSERT_EQ(got.size(), 3U);
  EXPECT_EQ(got[0].stream, "a");
  EXPECT_EQ(got[1].stream, "a");
  EXPECT_EQ(got[2].stream, "b");
  EXPECT_EQ(got[2].seq, 1U);
}

TEST_F(FrsPublisherTest, AnAdoptedStreamIsNotRepublishedOnlyWhatComesAfter) {
  store.write("s", 1, 7);
  machine().adopt("s", 5);
  EXPECT_TRUE(sink.take().empty());
  machine().on_durable("s", 5, now);
  EXPECT_TRUE(sink.take().empty()) << "adopted history went out live";
  machine().on_durable("s", 7, now);
  EXPECT_EQ(seqs(sink.take(), command::live), (std::vector<std::uint64_t>{6, 7}));

  // Adopted history is served by replay.
  fetch(1, "s", 2, 2);
  const sent a = answer();
  EXPECT_EQ(a.what, command::batch);
  EXPECT_EQ(a.first_seq, 2U);
  EXPECT_EQ(a.bodies, (std::vector<std::string>{"s:2", "s:3"}));
}

TEST_F(FrsPublisherTest, RecordsRemovedBeforePublicationAreSkipped) {
  store.write("s", 1, 6);
  store.remove("s", 1, 3);
  machine().on_durable("s", 6, now);
  EXPECT_EQ(seqs(sink.take(), command::live), (std::vector<std::uint64_t>{4, 5, 6}));

  // Everything durable removed: nothing goes out, and the next record follows.
  store.write("s", 7, 9);
  store.remove("s", 7, 8);
  machine().on_durable("s", 8, now);
  EXPECT_TRUE(sink.take().empty());
  EXPECT_EQ(stream("s")->published, 8U);
  machine().on_durable("s", 9, now);
  EXPECT_EQ(seqs(sink.take(), command::live), (std::vector<std::uint64_t>{9}));
}

TEST_F(FrsPublisherTest, ADamagedRecordIsSkippedAndCountedAndTheRestPublished) {
  store.write("s", 1, 5);
  store.damaged.insert({"s", 3});
  machine().on_durable("s", 5, now);
  EXPECT_EQ(seqs(sink.take(), command::live), (std::vector<std::uint64_t>{1, 2, 4, 5}));
  EXPECT_EQ(machine().stats().damaged, 1U);
  EXPECT_EQ(stream("s")->published, 5U);
}

TEST_F(FrsPublisherTest, AFailedReadIsCountedAndPublishedLater) {
  store.write("s", 1, 3);
  store.failing = true;
  machine().on_durable("s", 3, now);
  EXPECT_TRUE(sink.take().empty());
  EXPECT_EQ(machine().stats().store_errors, 1U);
  store.failing = false;
  machine().on_tick(now);
  EXPECT_EQ(seqs(sink.take(), command::live), (std::vector<std::uint64_t>{1, 2, 3}))
      << "what is durable never went out after the journal recovered";
}

TEST_F(FrsPublisherTest, ALiveMessageThePubCannotTakeIsCountedAndNotResent) {
  store.write("s", 1, 2);
  sink.refusing.insert(pub_port);
  machine().on_durable("s", 1, now);
  EXPECT_EQ(machine().stats().send_failures, 1U);
  sink.refusing.clear();
  machine().on_durable("s", 2, now);
  EXPECT_EQ(seqs(sink.take(), command::live), (std::vector<std::uint64_t>{2}))
      << "a PUB never waits: the subscriber fetches what it lost";
}

// ---- FETCH (section 5.2)

TEST_F(FrsPublisherTest, AFetchIsAnsweredWithABatchOfConsecutiveMessagesAndTheirTimes) {
  store.write("s", 1, 10);
  machine().on_durable("s", 10, now);
  (void)sink.take();
  fetch(77, "s", 3, 4);
  const sent a = answer();
  EXPECT_EQ(a.peer, "sub-1");
  EXPECT_EQ(a.what, command::batch);
  EXPECT_EQ(a.request, 77U);
  EXPECT_EQ(a.inc, self_inc);
  EXPECT_EQ(a.first_seq, 3U);
  EXPECT_EQ(a.times, (std::vector<std::uint64_t>{3000, 4000, 5000, 6000}));
  EXPECT_EQ(a.bodies, (std::vector<std::string>{"s:3", "s:4", "s:5", "s:6"}));
  EXPECT_EQ(machine().stats().fetches, 1U);
  EXPECT_EQ(machine().stats().replayed, 4U);

  fetch(78, "s", 9, 1024);
  const sent b = answer();
  EXPECT_EQ(b.first_seq, 9U);
  EXPECT_EQ(b.bodies.size(), 2U);
}

TEST_F(FrsPublisherTest, ABatchNeverGoesPastWhatIsDurable) {
  store.write("s", 1, 10);
  machine().on_durable("s", 5, now);
  (void)sink.take();
  fetch(1, "s", 3);
  const sent a = answer();
  EXPECT_EQ(a.what, command::batch);
  EXPECT_EQ(a.bodies, (std::vector<std::string>{"s:3", "s:4", "s:5"}));
  fetch(2, "s", 6);
  const sent b = answer();
  EXPECT_EQ(b.what, command::end) << "a record not yet durable was replayed";
  EXPECT_EQ(b.end, (end_fields{.next_seq = 6, .last = 5}));
}

TEST_F(FrsPublisherTest, ABatchStopsGrowingPastTheByteCapAndAlwaysHoldsOne) {
  settings.max_batch_bytes = 10;
  store.write("s", 1, 5);  // bodies of 3 octets
  machine().on_durable("s", 5, now);
  (void)sink.take();
  fetch(1, "s", 1);
  EXPECT_EQ(answer().bodies, (std::vector<std::string>{"s:1", "s:2", "s:3"}));

  store.streams["s"][4].body = std::string(100, 'x');
  fetch(2, "s", 4);
  const sent big = answer();
  ASSERT_EQ(big.bodies.size(), 1U) << "a batch always holds one message";
  EXPECT_EQ(big.bodies[0].size(), 100U);
}

TEST_F(FrsPublisherTest, TheDefaultByteCapIsFourMebibytes) {
  EXPECT_EQ(publisher_settings{}.max_batch_bytes, std::size_t{4} << 20);
  store.write("s", 1, 3);
  for (std::uint64_t s = 1; s <= 3; ++s) store.streams["s"][s].body = std::string(std::size_t{3} << 19, 'x');
  machine().on_durable("s", 3, now);
  (void)sink.take();
  fetch(1, "s", 1);
  EXPECT_EQ(answer().bodies.size(), 2U) << "3 MiB fits in 4 MiB, 4.5 MiB does not";
}

TEST_F(FrsPublisherTest, AHoleInTheMiddleStopsTheBatch) {
  store.write("s", 1, 6);
  machine().on_durable("s", 6, now);
  (void)sink.take();
  store.remove("s", 3, 3);
  fetch(1, "s", 1);
  const sent a = answer();
  EXPECT_EQ(a.what, command::batch);
  EXPECT_EQ(a.first_seq, 1U);
  EXPECT_EQ(a.bodies, (std::vector<std::string>{"s:1", "s:2"}));
}

TEST_F(FrsPublisherTest, AFetchPastTheLastIsAnsweredWithEnd) {
  store.write("s", 1, 4);
  machine().on_durable("s", 4, now);
  (void)sink.take();
  fetch(5, "s", 5);
  const sent a = answer();
  EXPECT_EQ(a.what, command::end);
  EXPECT_EQ(a.request, 5U);
  EXPECT_EQ(a.inc, self_inc);
  EXPECT_EQ(a.end, (end_fields{.next_seq = 5, .last = 4}));
  fetch(6, "s", 100);
  EXPECT_EQ(answer().end, (end_fields{.next_seq = 5, .last = 4}));
  EXPECT_EQ(machine().stats().ends, 2U);
}

TEST_F(FrsPublisherTest, AFetchBelowTheFirstHeldIsAnsweredWithGone) {
  store.write("s", 1, 10);
  machine().on_durable("s", 10, now);
  (void)sink.take();
  store.remove("s", 1, 6);
  fetch(9, "s", 2);
  const sent a = answer();
  EXPECT_EQ(a.what, command::gone);
  EXPECT_EQ(a.request, 9U);
  EXPECT_EQ(a.inc, self_inc);
  EXPECT_EQ(a.gone, (gone_fields{.from_seq = 2, .first_held = 7}));
  EXPECT_EQ(machine().stats().gones, 1U);

  fetch(10, "s", 7);
  EXPECT_EQ(answer().first_seq, 7U);
}

TEST_F(FrsPublisherTest, AFetchWhenEverythingWasRemovedIsGoneUpToTheLast) {
  store.write("s", 1, 5);
  machine().on_durable("s", 5, now);
  (void)sink.take();
  store.remove("s", 1, 5);
  fetch(1, "s", 3);
  const sent a = answer();
  EXPECT_EQ(a.what, command::gone);
  EXPECT_EQ(a.gone, (gone_fields{.from_seq = 3, .first_held = 6}));
}

TEST_F(FrsPublisherTest, WhenOnlyRecordsPastDurableAreHeldTheGoneStopsAtTheLastDurable) {
  store.write("s", 1, 8);
  machine().on_durable("s", 5, now);
  (void)sink.take();
  store.remove("s", 1, 6);  // 7 and 8 are written but not durable
  fetch(1, "s", 2);
  const sent a = answer();
  EXPECT_EQ(a.what, command::gone);
  EXPECT_EQ(a.gone, (gone_fields{.from_seq = 2, .first_held = 6}));
}

TEST_F(FrsPublisherTest, ADamagedRecordAtTheStartOfAFetchIsGoneAloneAndCounted) {
  store.write("s", 1, 5);
  machine().on_durable("s", 5, now);
  (void)sink.take();
  store.damaged.insert({"s", 3});
  fetch(1, "s", 1);
  EXPECT_EQ(answer().bodies, (std::vector<std::string>{"s:1", "s:2"})) << "the batch stops before the damage";
  fetch(2, "s", 3);
  const sent a = answer();
  EXPECT_EQ(a.what, command::gone);
  EXPECT_EQ(a.gone, (gone_fields{.from_seq = 3, .first_held = 4}));
  EXPECT_EQ(machine().stats().damaged, 1U);
  fetch(3, "s", 4);
  EXPECT_EQ(answer().bodies, (std::vector<std::string>{"s:4", "s:5"}));
}

TEST_F(FrsPublisherTest, AStreamNotYetPublishedIsEmptyAndAForbiddenOneIsRefusedAsUnknown) {
  store.write("s", 1, 2);
  machine().on_durable("s", 2, now);
  (void)sink.take();
  fetch(4, "nope", 1);
  sent a = answer();
  EXPECT_EQ(a.what, command::end) << "a subscriber may start before the stream's first message";
  EXPECT_EQ(a.request, 4U);
  EXPECT_EQ(a.end, (end_fields{.next_seq = 1, .last = 0}));

  store.forbidden.insert({"sub-2", "s"});
  fetch(5, "s", 1, 10, "sub-2");
  a = answer();
  EXPECT_EQ(a.peer, "sub-2");
  EXPECT_EQ(a.code, "unknown-stream");
  fetch(6, "s", 1, 10, "sub-1");
  EXPECT_EQ(answer().what, command::batch) << "only the peer forbidden is refused";
  EXPECT_EQ(machine().stats().refused, 1U);
}

TEST_F(FrsPublisherTest, AJournalThatCannotBeReadIsRefusedAsUnavailable) {
  store.write("s", 1, 2);
  machine().on_durable("s", 2, now);
  (void)sink.take();
  store.failing = true;
  fetch(1, "s", 1);
  sent a = answer();
  EXPECT_EQ(a.what, command::refuse);
  EXPECT_EQ(a.code, "unavailable");
  fetch_time(2, "s", 0);
  a = answer();
  EXPECT_EQ(a.what, command::refuse);
  EXPECT_EQ(a.code, "unavailable");
  EXPECT_EQ(machine().stats().store_errors, 2U);
  EXPECT_EQ(machine().stats().refused, 2U);
}

// ---- FETCH-TIME

TEST_F(FrsPublisherTest, AFetchTimeStartsAtTheFirstMessageAtOrAfterTheTime) {
  store.write("s", 1, 10);
  machine().on_durable("s", 10, now);
  (void)sink.take();
  fetch_time(3, "s", 4500, 3);
  const sent a = answer();
  EXPECT_EQ(a.what, command::batch);
  EXPECT_EQ(a.request, 3U);
  EXPECT_EQ(a.first_seq, 5U);
  EXPECT_EQ(a.times, (std::vector<std::uint64_t>{5000, 6000, 7000}));

  fetch_time(4, "s", 0, 1);
  EXPECT_EQ(answer().first_seq, 1U);
}

TEST_F(FrsPublisherTest, AFetchTimePastTheEndIsAnsweredWithEnd) {
  store.write("s", 1, 10);
  machine().on_durable("s", 8, now);
  (void)sink.take();
  fetch_time(3, "s", 99'000);
  const sent a = answer();
  EXPECT_EQ(a.what, command::end);
  EXPECT_EQ(a.end, (end_fields{.next_seq = 9, .last = 8}));
  fetch_time(4, "s", 9000);  // record 9 exists but is not durable
  EXPECT_EQ(answer().end, (end_fields{.next_seq = 9, .last = 8}));
}

TEST_F(FrsPublisherTest, AFetchTimeWhoseAnswerMayHaveBeenRemovedIsGoneFromOne) {
  store.write("s", 1, 10);
  machine().on_durable("s", 10, now);
  (void)sink.take();
  store.remove("s", 1, 4);
  fetch_time(3, "s", 2000);  // the oldest held is 5, and what came before it is unknown
  const sent a = answer();
  EXPECT_EQ(a.what, command::gone);
  EXPECT_EQ(a.gone, (gone_fields{.from_seq = 1, .first_held = 5}));

  fetch_time(4, "s", 6500);  // 6 is held, so 7 is the first at or after the time
  const sent b = answer();
  EXPECT_EQ(b.what, command::batch);
  EXPECT_EQ(b.first_seq, 7U);
}

// ---- faults

TEST_F(FrsPublisherTest, AnotherVersionIsRefusedWithTheVersionsSpoken) {
  store.write("s", 1, 1);
  machine().on_durable("s", 1, now);
  (void)sink.take();
  in(raw({"FRS02", "\x11", testing::u32(5), "s", testing::u64(1), testing::u32(10)}));
  const sent a = answer();
  EXPECT_EQ(a.what, command::refuse);
  EXPECT_EQ(a.request, 0U);
  EXPECT_EQ(a.code, "version");
  EXPECT_EQ(a.reason, versions_spoken);
  EXPECT_EQ(machine().stats().refused, 1U);
  EXPECT_EQ(machine().stats().fetches, 0U);
}

TEST_F(FrsPublisherTest, AnswersSentToThePublisherAreProtocolErrorsAndGarbageIsMalformed) {
  store.write("s", 1, 1);
  machine().on_durable("s", 1, now);
  (void)sink.take();
  message end;
  write_end(end, "x", 1, self_inc, end_fields{.next_seq = 1, .last = 0});
  (void)end.pop_front();
  in(std::move(end));
  EXPECT_EQ(machine().stats().protocol_errors, 1U);

  in(raw({"hello", "world"}));
  in(raw({"FRS01", "\x11", testing::u32(5), "s", testing::u64(0), testing::u32(10)}));  // from-seq 0
  in(raw({"FRS01", "\x11", testing::u32(5), "s", testing::u64(1), testing::u32(0)}));   // max-count 0
  in(raw({"FRS01"}));
  machine().on_message(message{}, now);
  EXPECT_EQ(machine().stats().malformed, 5U);
  EXPECT_TRUE(sink.take().empty()) << "a peer that breaks the grammar gets no reply";
  EXPECT_EQ(machine().stats().fetches, 0U);
}

TEST_F(FrsPublisherTest, AnAnswerTheRouterCannotTakeIsCounted) {
  store.write("s", 1, 3);
  machine().on_durable("s", 3, now);
  (void)sink.take();
  sink.refusing.insert(replay_port);
  fetch(1, "s", 1);
  fetch(2, "s", 9);
  fetch(3, "nope", 1);
  EXPECT_EQ(machine().stats().send_failures, 3U);
  sink.refusing.clear();
  fetch(4, "s", 1);
  EXPECT_EQ(answer().what, command::batch) << "the machine goes on after a failed send";
}

// ---- heartbeats and beacons

TEST_F(FrsPublisherTest, HeartbeatsAtTheFirstTickAndEveryIntervalAfter) {
  EXPECT_EQ(machine().next_tick(), time_point::min()) << "the first heartbeat is due at once";
  machine().on_tick(now);
  auto got = sink.take();
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].to, pub_port);
  EXPECT_EQ(got[0].what, command::heartbeat);
  EXPECT_EQ(got[0].inc, self_inc);
  EXPECT_EQ(got[0].heartbeat_ms, 1000U);
  EXPECT_EQ(machine().next_tick(), now + 1000ms);

  machine().on_tick(now + 999ms);
  EXPECT_TRUE(sink.take().empty()) << "an early tick does nothing";
  run_for(5000ms);
  EXPECT_EQ(sink.take().size(), 5U);
  EXPECT_EQ(machine().stats().heartbeats, 6U);
}

TEST_F(FrsPublisherTest, ALateTickSendsOneHeartbeatAndKeepsTheCadenceOrRestartsIt) {
  machine().on_tick(now);
  (void)sink.take();
  const time_point start = now;
  machine().on_tick(start + 1200ms);  // a little late: the cadence holds
  EXPECT_EQ(sink.take().size(), 1U);
  EXPECT_EQ(machine().next_tick(), start + 2000ms);
  machine().on_tick(start + 7500ms);  // an interval or more late: one heartbeat, no burst
  EXPECT_EQ(sink.take().size(), 1U);
  EXPECT_EQ(machine().next_tick(), start + 8500ms);
}

TEST_F(FrsPublisherTest, BeaconsOnlyStreamsQuietDuringTheInterval) {
  store.write("a", 1, 3);
  store.write("b", 1, 3);
  machine().on_tick(now);
  machine().on_durable("a", 2, now);
  machine().on_durable("b", 2, now);
  machine().adopt("c", 0);  // nothing yet: nothing to beacon
  (void)sink.take();
  run_for(1000ms);
  EXPECT_TRUE(beaconed(sink.take()).empty()) << "streams that sent live this interval are beaconed";

  machine().on_durable("a", 3, now);
  run_for(1000ms);
  auto got = sink.take();
  EXPECT_EQ(beaconed(got), (std::vector<std::string>{"b"}));
  EXPECT_EQ(seqs(got, command::beacon), (std::vector<std::uint64_t>{2}));
  run_for(1000ms);
  got = sink.take();
  EXPECT_EQ(beaconed(got), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(seqs(got, command::beacon), (std::vector<std::uint64_t>{3, 2}));
  EXPECT_EQ(machine().stats().beacons, 3U);
  EXPECT_EQ(stream("a")->beacons, 1U);
}

TEST_F(FrsPublisherTest, AnAdoptedStreamIsBeaconedWithItsLast) {
  machine().adopt("s", 42);
  machine().on_tick(now);
  (void)sink.take();
  run_for(1000ms);
  const auto got = sink.take();
  ASSERT_EQ(beaconed(got), (std::vector<std::string>{"s"}));
  EXPECT_EQ(seqs(got, command::beacon), (std::vector<std::uint64_t>{42}));
}

TEST_F(FrsPublisherTest, PastMaxBeaconsTheStreamsTakeTurnsAcrossIntervals) {
  settings.max_beacons = 2;
  for (const char* s : {"a", "b", "c", "d", "e"}) machine().adopt(s, 1);
  machine().on_tick(now);
  (void)sink.take();
  std::vector<std::string> all;
  for (int i = 0; i < 5; ++i) {
    run_for(1000ms);
    const auto round = beaconed(sink.take());
    EXPECT_EQ(round.size(), 2U);
    all.insert(all.end(), round.begin(), round.end());
  }
  EXPECT_EQ(all, (std::vector<std::string>{"a", "b", "c", "d", "e", "a", "b", "c", "d", "e"}));
}

TEST_F(FrsPublisherTest, ExactlyMaxBeaconsQuietStreamsAreAllBeaconedEachInterval) {
  settings.max_beacons = 2;
  machine().adopt("a", 1);
  machine().adopt("b", 1);
  machine().on_tick(now);
  (void)sink.take();
  run_for(1000ms);
  EXPECT_EQ(beaconed(sink.take()), (std::vector<std::string>{"a", "b"}));
  run_for(1000ms);
  EXPECT_EQ(beaconed(sink.take()), (std::vector<std::string>{"a", "b"}));
}

}  // namespace
}  // namespace fabric::frs
