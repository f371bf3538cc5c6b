// Tests the FRS/1 codec: exact wire layouts, round trips of every builder through the parser of
// the socket that receives it, the bounds of the grammar at their edge and one past it, a table of
// malformed messages each with its own fault, zero-copy views and bodies, and random frames and
// truncations that must never crash and never be accepted unless the builders would write them.
#include "reliability/frs.hpp"

#include "core/byte_order.hpp"

#include <fabric/error.hpp>

#include "support/raw_frames.hpp"
#include "support/support.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fabric::frs {
namespace {

using namespace std::string_literals;
using frames = std::vector<std::string>;

constexpr std::uint64_t max_u64 = std::numeric_limits<std::uint64_t>::max();

message make(const frames& parts) { return testing::message_of(parts); }
frames frames_of(const message& m) { return testing::to_strings(m); }

using testing::join;
using testing::u32;
using testing::u64;

// The parsers' views must not outlive their message: a temporary does not compile.
template <class M>
concept live_parses = requires(M&& m) { parse_live(std::forward<M>(m)); };
template <class M>
concept publisher_parses = requires(M&& m) { parse_at_publisher(std::forward<M>(m)); };
template <class M>
concept subscriber_parses = requires(M&& m) { parse_at_subscriber(std::forward<M>(m)); };
static_assert(live_parses<const message&> && !live_parses<message>);
static_assert(publisher_parses<const message&> && !publisher_parses<message&&>);
static_assert(subscriber_parses<message&> && !subscriber_parses<message>);

constexpr std::uint64_t inc = 0x0102030405060708;

// What the DEALER sends, as the ROUTER sees it: the routing id first.
message routed(message&& m, std::string_view peer = "peer") {
  m.push_front(peer);
  return std::move(m);
}

// What the ROUTER sends, as the DEALER sees it: the routing id gone.
message delivered(message&& m) {
  (void)m.pop_front();
  return std::move(m);
}

TEST(Frs, BuildersProduceTheExactFramesOfTheSpec) {
  // The live feed: the topic, then one packed frame.
  message m;
  write_live(m, "prices.eur", inc, 42, 1'700'000'000'000'000'000, "body");
  EXPECT_EQ(frames_of(m), (frames{"prices.eur", "FRS01\x01"
                                                "\x01\x02\x03\x04\x05\x06\x07\x08"
                                                "\0\0\0\0\0\0\0\x2a"s +
                                                    u64(1'700'000'000'000'000'000) + "body"}));
  EXPECT_EQ(m[1].size(), live_body_offset + 4);
  write_live(m, "s", inc, 1, 0, "");
  EXPECT_EQ(frames_of(m), (frames{"s", "FRS01\x01"s + u64(inc) + u64(1) + u64(0)}));
  EXPECT_EQ(m[1].size(), live_body_offset);
  write_beacon(m, "prices.eur", inc, 0);
  EXPECT_EQ(frames_of(m), (frames{"prices.eur", "FRS01\x02"s + u64(inc) + u64(0)}));
  EXPECT_EQ(m[1].size(), 22U);
  write_heartbeat(m, inc, 1000);
  EXPECT_EQ(frames_of(m), (frames{"\0"s, "FRS01\x03"s + u64(inc) + "\0\0\x03\xe8"s}));
  EXPECT_EQ(m[1].size(), 18U);

  write_fetch(m, 9, {"prices.eur", 17, 1024});
  EXPECT_EQ(frames_of(m), (frames{"FRS01", "\x11", "\0\0\0\x09"s, "prices.eur", u64(17),
                                  "\0\0\x04\0"s}));
  write_fetch_time(m, 10, {"prices.eur", 0, 1});
  EXPECT_EQ(frames_of(m), (frames{"FRS01", "\x12", u32(10), "prices.eur", u64(0), u32(1)}));

  {
    batch_writer w(m, "peer", 11, inc, 5);
    w.add(0x1112131415161718, "a");
    w.add(2, ""s);
    w.finish();
  }
  // BATCH: one entries frame, each entry its time, its length and its body.
  EXPECT_EQ(frames_of(m), (frames{"peer", "FRS01", "\x21", u32(11), u64(inc), u64(5),
                                  "\x11\x12\x13\x14\x15\x16\x17\x18\0\0\0\x01"
                                  "a\0\0\0\0\0\0\0\x02\0\0\0\0"s}));
  EXPECT_EQ(m[6].size(), 2 * batch_entry_head + 1);
  write_end(m, "peer", 12, inc, {8, 7});
  EXPECT_EQ(frames_of(m), (frames{"peer", "FRS01", "\x22", u32(12), u64(inc), u64(8), u64(7)}));
  write_gone(m, "peer", 13, inc, {1, 100});
  EXPECT_EQ(frames_of(m), (frames{"peer", "FRS01", "\x23", u32(13), u64(inc), u64(1), u64(100)}));
  write_refuse(m, "peer", 14, {"unknown-stream", "no such stream"});
  EXPECT_EQ(frames_of(m),
            (frames{"peer", "FRS01", "\x24", u32(14), "unknown-stream", "no such stream"}));
  write_version_refusal(m, "peer");
  EXPECT_EQ(frames_of(m), (frames{"peer", "FRS01", "\x24", u32(0), "version", "FRS01"}));
}

TEST(Frs, BuildersReuseTheMessagesFrameCapacity) {
  message m;
  write_live(m, "s", inc, 1, 0, "x");
  const frame* storage = m.frames().data();
  write_heartbeat(m, inc, 1);
  write_beacon(m, "s", inc, 1);
  EXPECT_EQ(m.frames().data(), storage) << "a smaller message reuses the frame vector";
}

TEST(Frs, LiveRoundTripsIntoViewsOfItsFrames) {
  message m;
  write_live(m, "prices.eur", max_u64, max_u64, max_u64, "a\0b"s);
  const parsed p = parse_live(m);
  ASSERT_TRUE(p) << describe(p.error);
  EXPECT_EQ(p.what, command::live);
  EXPECT_EQ(p.header, header);
  EXPECT_EQ(p.stream, "prices.eur");
  EXPECT_EQ(p.publisher_inc, max_u64);
  EXPECT_EQ(p.live.seq, max_u64);
  EXPECT_EQ(p.live.time_ns, max_u64);
  EXPECT_EQ(p.live.body, "a\0b"s);
  // Views, not copies: the body inside the packed frame, after the fields.
  ASSERT_EQ(m.size(), 2U);
  EXPECT_EQ(p.stream.data(), m[0].data());
  EXPECT_EQ(p.header.data(), m[1].data());
  EXPECT_EQ(p.live.body_frame, &m[1]);
  EXPECT_EQ(p.live.body.data(), static_cast<const char*>(m[1].data()) + live_body_offset);
}

TEST(Frs, LivePacksALargeBodyIntoItsOneFrame) {
  const std::string big(64 * 1024, 'b');
  message m;
  write_live(m, "s", inc, 3, 4, big);
  ASSERT_EQ(m.size(), 2U);
  EXPECT_EQ(m[1].size(), live_body_offset + big.size());
  const parsed p = parse_live(m);
  ASSERT_TRUE(p) << describe(p.error);
  EXPECT_EQ(p.live.body, big);
  EXPECT_EQ(p.live.body.data(), static_cast<const char*>(p.live.body_frame->data()) + live_body_offset);
  EXPECT_EQ(p.live.body.data() + p.live.body.size(),
            static_cast<const char*>(m[1].data()) + m[1].size()) << "the body ends the frame";
}

TEST(Frs, BeaconAndHeartbeatRoundTrip) {
  const std::string longest(max_stream_size, 's');
  for (const std::uint64_t last : {std::uint64_t{0}, std::uint64_t{1}, max_u64}) {
    message m;
    write_beacon(m, longest, 1, last);
    const parsed p = parse_live(m);
    ASSERT_TRUE(p) << describe(p.error);
    EXPECT_EQ(p.what, command::beacon);
    EXPECT_EQ(p.stream, longest);
    EXPECT_EQ(p.stream.data(), m[0].data());
    EXPECT_EQ(p.header.data(), m[1].data());
    EXPECT_EQ(p.publisher_inc, 1U);
    EXPECT_EQ(p.last, last);
  }
  for (const std::uint32_t ms : {std::uint32_t{1}, max_heartbeat_ms}) {
    message m;
    write_heartbeat(m, inc, ms);
    const parsed p = parse_live(m);
    ASSERT_TRUE(p) << describe(p.error);
    EXPECT_EQ(p.what, command::heartbeat);
    EXPECT_TRUE(p.stream.empty()) << "the heartbeat topic is no stream";
    EXPECT_EQ(p.publisher_inc, inc);
    EXPECT_EQ(p.heartbeat_ms, ms);
  }
}

TEST(Frs, FetchAndFetchTimeRoundTripAtThePublisher) {
  const std::string longest(max_stream_size, 's');
  const std::string odd = "a\0\xff"s;  // only the first octet is barred from 0x00
  for (const fetch_fields& f : {fetch_fields{"s", 1, 1}, fetch_fields{longest, max_u64, max_count},
                                fetch_fields{odd, 7, 100}}) {
    message built;
    write_fetch(built, 0xffffffff, f);
    const message m = routed(std::move(built), "rid");
    const parsed p = parse_at_publisher(m);
    ASSERT_TRUE(p) << describe(p.error);
    EXPECT_EQ(p.what, command::fetch);
    EXPECT_EQ(p.peer, "rid");
    EXPECT_EQ(p.peer.data(), m[0].data());
    EXPECT_EQ(p.request, 0xffffffffU);
    EXPECT_EQ(p.fetch, f);
    EXPECT_EQ(p.stream, f.stream);
    EXPECT_EQ(p.fetch.stream.data(), m[4].data());
  }
  for (const std::uint64_t from : {std::uint64_t{0}, std::uint64_t{1'700'000'000}, max_u64}) {
    message built;
    write_fetch_time(built, 0, {"s", from, 16});
    const message m = routed(std::move(built));
    const parsed p = parse_at_publisher(m);
    ASSERT_TRUE(p) << describe(p.error);
    EXPECT_EQ(p.what, command::fetch_time);
    EXPECT_EQ(p.request, 0U);
    EXPECT_EQ(p.fetch, (fetch_fields{"s", from, 16}));
  }
}

TEST(Frs, BatchRoundTripsEveryMessageInOrder) {
  const std::vector<std::pair<std::uint64_t, std::string>> entries = {
      {0, "first"}, {1, ""}, {max_u64, std::string(100000, 'x')}, {250, "a\0b"s}};
  message built;
  batch_writer w(built, "rid", 77, inc, 41);
  std::size_t octets = 0;
  for (const auto& [time, body] : entries) {
    w.add(time, body);
    octets += batch_entry_head + body.size();
    EXPECT_EQ(w.bytes(), octets);
  }
  w.finish();
  EXPECT_EQ(w.size(), entries.size());
  EXPECT_EQ(w.next_seq(), 45U);
  ASSERT_EQ(built.size(), 7U) << "six frames and the routing id, whatever the entries";
  EXPECT_EQ(built[6].size(), octets);
  const message m = delivered(std::move(built));
  const parsed p = parse_at_subscriber(m);
  ASSERT_TRUE(p) << describe(p.error);
  EXPECT_EQ(p.what, command::batch);
  EXPECT_TRUE(p.peer.empty());
  EXPECT_EQ(p.request, 77U);
  EXPECT_EQ(p.publisher_inc, inc);
  ASSERT_EQ(p.batch.size(), entries.size());
  EXPECT_FALSE(p.batch.empty());
  EXPECT_EQ(p.batch.first_seq(), 41U);
  EXPECT_EQ(p.batch.last_seq(), 44U);
  EXPECT_EQ(p.batch.entries_frame(), &m[5]);
  // Views, not copies: each body inside the one entries frame, after its time and length.
  const char* const entries_at = static_cast<const char*>(m[5].data());
  std::size_t i = 0;
  std::size_t at = 0;
  for (const batch_entry e : p.batch) {
    EXPECT_EQ(e.seq, 41 + i);
    EXPECT_EQ(e.time_ns, entries[i].first);
    EXPECT_EQ(e.body, entries[i].second);
    EXPECT_EQ(&e.body_frame, &m[5]);
    EXPECT_EQ(e.body.data(), entries_at + at + batch_entry_head);
    const batch_entry by_index = p.batch[i];
    EXPECT_EQ(by_index.seq, e.seq);
    EXPECT_EQ(by_index.time_ns, e.time_ns);
    EXPECT_EQ(by_index.body.data(), e.body.data());
    EXPECT_EQ(by_index.body.size(), e.body.size());
    at += batch_entry_head + e.body.size();
    ++i;
  }
  EXPECT_EQ(i, entries.size());
  EXPECT_EQ(at, m[5].size()) << "the entries account for the frame exactly";
  auto it = p.batch.begin();
  EXPECT_EQ((*it++).seq, 41U);
  EXPECT_EQ((*it).seq, 42U);
}

TEST(Frs, BatchWriterHandsItsBufferToTheEntriesFrame) {
  // Large bodies make the buffer grow several times; the frame takes what it holds at finish().
  const std::string big(256 * 1024, 'b');
  message built;
  {
    batch_writer w(built, "rid", 1, inc, 1);
    for (int k = 0; k < 8; ++k) w.add(static_cast<std::uint64_t>(k), big);
    w.finish();
    EXPECT_THROW(w.finish(), fabric::error) << "one entries frame";
    EXPECT_THROW(w.add(9, "late"), fabric::error) << "no entry once finished";
    EXPECT_EQ(w.bytes(), 8 * (batch_entry_head + big.size()));
  }  // the writer is gone: the frame owns the bytes
  ASSERT_EQ(built.size(), 7U);
  EXPECT_EQ(built[6].size(), 8 * (batch_entry_head + big.size()));
  const message m = delivered(std::move(built));
  const parsed p = parse_at_subscriber(m);
  ASSERT_TRUE(p) << describe(p.error);
  ASSERT_EQ(p.batch.size(), 8U);
  for (const batch_entry e : p.batch) {
    EXPECT_EQ(e.body, big);
    EXPECT_EQ(e.time_ns, e.seq - 1);
  }
  // A writer dropped before finish() frees its buffer and leaves no entries frame.
  message dropped;
  {
    batch_writer w(dropped, "rid", 1, inc, 1);
    w.add(0, big);
  }
  EXPECT_EQ(dropped.size(), 6U);
}

TEST(Frs, BatchHoldsUpTo1024EntriesAndStopsAtTheLastSequence) {
  message built;
  batch_writer w(built, "rid", 1, inc, 1);
  std::size_t octets = 0;
  for (std::size_t i = 0; i < max_bodies; ++i) {
    EXPECT_FALSE(w.full());
    w.add(i, std::to_string(i));
    octets += batch_entry_head + std::to_string(i).size();
  }
  EXPECT_TRUE(w.full());
  EXPECT_THROW(w.add(0, "one more"), fabric::error);
  w.finish();
  ASSERT_EQ(built.size(), 7U);
  EXPECT_EQ(built[6].size(), octets);
  const message m = delivered(std::move(built));
  const parsed p = parse_at_subscriber(m);
  ASSERT_TRUE(p) << describe(p.error);
  EXPECT_EQ(p.batch.size(), max_bodies);
  EXPECT_EQ(p.batch.last_seq(), max_bodies);
  EXPECT_EQ(p.batch[1023].body, "1023");
  EXPECT_EQ(p.batch[1023].time_ns, 1023U);
  EXPECT_EQ(p.batch[1023].seq, 1024U);

  // One entry more, packed by hand, is one too many.
  std::string over = std::string(view(m[5]));
  over += u64(0) + u32(1) + "x";
  const message too_many = make({"FRS01", "\x21", u32(1), u64(inc), u64(1), over});
  EXPECT_EQ(parse_at_subscriber(too_many).error, fault::too_many_bodies);

  // The sequence space ends at 2^64-1: a BATCH may reach it, not pass it.
  message edge;
  batch_writer last(edge, "rid", 1, inc, max_u64 - 1);
  last.add(0, "a");
  last.add(0, "b");
  EXPECT_TRUE(last.full());
  EXPECT_THROW(last.add(0, "c"), fabric::error);
  last.finish();
  const message e = delivered(std::move(edge));
  const parsed q = parse_at_subscriber(e);
  ASSERT_TRUE(q) << describe(q.error);
  EXPECT_EQ(q.batch.last_seq(), max_u64);
  std::string past = std::string(view(e[5])) + u64(0) + u32(1) + "c";
  const message overflowing = make({"FRS01", "\x21", u32(1), u64(inc), u64(max_u64 - 1), past});
  EXPECT_EQ(parse_at_subscriber(overflowing).error, fault::sequence_overflow);
}

TEST(Frs, EndGoneAndRefuseRoundTripAtTheSubscriber) {
  for (const end_fields& f : {end_fields{1, 0}, end_fields{8, 7}, end_fields{max_u64, max_u64}}) {
    message built;
    write_end(built, "rid", 3, inc, f);
    const message m = delivered(std::move(built));
    const parsed p = parse_at_subscriber(m);
    ASSERT_TRUE(p) << describe(p.error);
    EXPECT_EQ(p.what, command::end);
    EXPECT_EQ(p.request, 3U);
    EXPECT_EQ(p.publisher_inc, inc);
    EXPECT_EQ(p.end, f);
  }
  for (const gone_fields& f : {gone_fields{1, 2}, gone_fields{5, max_u64}}) {
    message built;
    write_gone(built, "rid", 4, inc, f);
    const message m = delivered(std::move(built));
    const parsed p = parse_at_subscriber(m);
    ASSERT_TRUE(p) << describe(p.error);
    EXPECT_EQ(p.what, command::gone);
    EXPECT_EQ(p.request, 4U);
    EXPECT_EQ(p.publisher_inc, inc);
    EXPECT_EQ(p.gone, f);
  }
  const std::string longest_reason(max_reason_size, 'r');
  const std::string longest_code(max_code_size, 'z');
  for (const refuse_fields& f : {refuse_fields{"too-many-requests", ""},
                                 refuse_fields{longest_code, longest_reason},
                                 refuse_fields{"malformed", "max-count"}}) {
    message built;
    write_refuse(built, "rid", 5, f);
    const message m = delivered(std::move(built));
    const parsed p = parse_at_subscriber(m);
    ASSERT_TRUE(p) << describe(p.error);
    EXPECT_EQ(p.what, command::refuse);
    EXPECT_EQ(p.request, 5U);
    EXPECT_EQ(p.refuse, f);
    EXPECT_EQ(p.refuse.code.data(), m[3].data());
    EXPECT_EQ(p.refuse.reason.data(), m[4].data());
  }
}

TEST(Frs, AnotherVersionIsToldApartFromGarbageAndAnsweredWithVersionRefusal) {
  const message other = make({"rid", "FRS02", "\x11", u32(1), "s", u64(1), u32(1)});
  const parsed p = parse_at_publisher(other);
  EXPECT_EQ(p.error, fault::unknown_version);
  EXPECT_EQ(code_of(p.error), make_error_code(errc::not_supported));
  EXPECT_EQ(p.peer, "rid");
  EXPECT_EQ(p.header, "FRS02");

  message answer;
  write_version_refusal(answer, p.peer);
  const message back = delivered(std::move(answer));
  const parsed r = parse_at_subscriber(back);
  ASSERT_TRUE(r) << describe(r.error);
  EXPECT_EQ(r.request, 0U);
  EXPECT_EQ(r.refuse.code, version_code);
  EXPECT_EQ(r.refuse.reason, versions_spoken);

  const message garbage = make({"rid", "MDPC02", "\x11"});
  EXPECT_EQ(parse_at_publisher(garbage).error, fault::unknown_header);
  const message live_of_another_version = make({"s", "FRS99\x01"});
  const parsed l = parse_live(live_of_another_version);
  EXPECT_EQ(l.error, fault::unknown_version);
  EXPECT_EQ(l.header, "FRS99");
}

TEST(Frs, EachReplayCommandIsAcceptedOnlyInItsDirection) {
  message m;
  write_fetch(m, 1, {"s", 1, 1});
  const message fetch_at_subscriber = m.clone();
  const parsed f = parse_at_subscriber(fetch_at_subscriber);
  EXPECT_EQ(f.error, fault::wrong_direction);
  EXPECT_EQ(f.what, command::fetch);
  EXPECT_EQ(code_of(f.error), make_error_code(errc::protocol_error));

  write_end(m, "rid", 1, inc, {1, 0});
  const parsed e = parse_at_publisher(m);  // the routing id stands where the ROUTER puts it
  EXPECT_EQ(e.error, fault::wrong_direction);
  EXPECT_EQ(e.what, command::end);

  // Live commands have another layout: they are no command of the replay endpoint, and back. At
  // the ROUTER a live message's packed frame stands where the header goes, and is no FRS01
  // header.
  write_heartbeat(m, inc, 1000);
  EXPECT_EQ(parse_at_publisher(m).error, fault::unknown_version);
  const message heartbeat_command_at_the_publisher = make({"\0"s, "FRS01", "\x03", u64(inc), u32(1000)});
  EXPECT_EQ(parse_at_publisher(heartbeat_command_at_the_publisher).error, fault::bad_command);
  write_fetch(m, 1, {"s", 1, 1});
  const message fetch_on_the_live_feed = routed(std::move(m), "s");
  EXPECT_EQ(parse_live(fetch_on_the_live_feed).error, fault::extra_frames);
  const message fetch_packed_on_the_live_feed = make({"s", "FRS01\x11"s + u32(1) + "s" + u64(1) + u32(1)});
  EXPECT_EQ(parse_live(fetch_packed_on_the_live_feed).error, fault::bad_command);
}

TEST(Frs, BuildersRefuseWhatTheGrammarForbids) {
  message m;
  const std::string too_long(max_stream_size + 1, 's');
  const std::string nul_first = "\0s"s;
  for (const std::string_view bad : {std::string_view{}, std::string_view{too_long},
                                     std::string_view{nul_first}, heartbeat_topic}) {
    EXPECT_THROW(write_live(m, bad, inc, 1, 0, "b"), fabric::error);
    EXPECT_THROW(write_beacon(m, bad, inc, 1), fabric::error);
    EXPECT_THROW(write_fetch(m, 1, {bad, 1, 1}), fabric::error);
    EXPECT_THROW(write_fetch_time(m, 1, {bad, 1, 1}), fabric::error);
  }
  EXPECT_THROW(write_live(m, "s", 0, 1, 0, "b"), fabric::error);
  EXPECT_THROW(write_live(m, "s", inc, 0, 0, "b"), fabric::error);
  EXPECT_THROW(write_beacon(m, "s", 0, 1), fabric::error);
  EXPECT_THROW(write_heartbeat(m, 0, 1000), fabric::error);
  EXPECT_THROW(write_heartbeat(m, inc, 0), fabric::error);
  EXPECT_THROW(write_heartbeat(m, inc, max_heartbeat_ms + 1), fabric::error);

  EXPECT_THROW(write_fetch(m, 1, {"s", 0, 1}), fabric::error);
  EXPECT_THROW(write_fetch(m, 1, {"s", 1, 0}), fabric::error);
  EXPECT_THROW(write_fetch(m, 1, {"s", 1, max_count + 1}), fabric::error);
  EXPECT_THROW(write_fetch_time(m, 1, {"s", 0, 0}), fabric::error);
  EXPECT_THROW(write_fetch_time(m, 1, {"s", 0, max_count + 1}), fabric::error);

  EXPECT_THROW(batch_writer(m, "rid", 1, 0, 1), fabric::error);
  EXPECT_THROW(batch_writer(m, "rid", 1, inc, 0), fabric::error);
  {
    batch_writer empty(m, "rid", 1, inc, 1);
    EXPECT_THROW(empty.finish(), fabric::error);
    EXPECT_EQ(m.size(), 6U) << "no entries frame for an empty BATCH";
  }
  EXPECT_THROW(write_end(m, "rid", 1, 0, {1, 0}), fabric::error);
  EXPECT_THROW(write_end(m, "rid", 1, inc, {0, 0}), fabric::error);
  EXPECT_THROW(write_gone(m, "rid", 1, 0, {1, 2}), fabric::error);
  EXPECT_THROW(write_gone(m, "rid", 1, inc, {0, 2}), fabric::error);
  EXPECT_THROW(write_gone(m, "rid", 1, inc, {5, 5}), fabric::error);
  EXPECT_THROW(write_gone(m, "rid", 1, inc, {5, 4}), fabric::error);
  for (const char* code : {"", "Upper", "has space", "digit1", "under_score",
                           "abcdefghijklmnopqrstuvwxyzabcdefg"}) {
    EXPECT_THROW(write_refuse(m, "rid", 1, {code, ""}), fabric::error) << code;
  }
  EXPECT_THROW(write_refuse(m, "rid", 1, {"malformed", std::string(max_reason_size + 1, 'r')}),
               fabric::error);
}

TEST(Frs, EveryFaultMapsToItsErrorCodeAndHasADescription) {
  EXPECT_FALSE(code_of(fault::none));
  for (int i = static_cast<int>(fault::no_routing_id);
       i <= static_cast<int>(fault::reason_too_long); ++i) {
    const auto f = static_cast<fault>(i);
    const errc expected = f == fault::unknown_version   ? errc::not_supported
                          : f == fault::wrong_direction ? errc::protocol_error
                                                        : errc::malformed;
    EXPECT_EQ(code_of(f), make_error_code(expected));
    EXPECT_FALSE(describe(f).empty());
    EXPECT_NE(describe(f), "unknown fault");
  }
}

// ---------------------------------------------------------------------------------------------
// Malformed messages, one fault each.

enum class at : std::uint8_t { live, publisher, subscriber };

struct bad_input {
  std::string name;
  at where;
  frames input;  // at the publisher, frame 0 is the routing id; on the live feed, the topic
  fault expected;
};

const std::string I = u64(inc);
const std::string R = u32(9);
const std::string long_stream(max_stream_size + 1, 's');

// A valid message with frame `i` replaced.
frames with(frames f, std::size_t i, std::string value) {
  f[i] = std::move(value);
  return f;
}

// A valid live-feed message with the octets of its packed frame from `offset` replaced.
frames packed_with(frames f, std::size_t offset, const std::string& value) {
  f[1].replace(offset, value.size(), value);
  return f;
}

// A valid live-feed message with its packed frame cut or grown to `size` octets.
frames packed_of_size(frames f, std::size_t size) {
  f[1].resize(size, 'x');
  return f;
}

// Offsets in the live feed's packed frame.
constexpr std::size_t command_octet = 5;
constexpr std::size_t inc_octet = 6;
constexpr std::size_t seq_octet = 14;  // and BEACON's last, HEARTBEAT's heartbeat-ms

const frames a_live{"s", "FRS01\x01"s + I + u64(3) + u64(4) + "body"};
const frames a_beacon{"s", "FRS01\x02"s + I + u64(3)};
const frames a_heartbeat{"\0"s, "FRS01\x03"s + I + u32(1000)};
const frames a_fetch{"p", "FRS01", "\x11", R, "s", u64(1), u32(16)};
const frames a_fetch_time{"p", "FRS01", "\x12", R, "s", u64(0), u32(16)};
const frames an_end{"FRS01", "\x22", R, I, u64(4), u64(3)};
const frames a_gone{"FRS01", "\x23", R, I, u64(1), u64(5)};
const frames a_refuse{"FRS01", "\x24", R, "malformed", ""};

// One BATCH entry: its time, its length and its body.
std::string entry(std::uint64_t time, std::string_view body) {
  return u64(time) + u32(static_cast<std::uint32_t>(body.size())) + std::string(body);
}

// A BATCH of `n` entries, each the body "b", as the DEALER receives it: the entries frame is 5.
frames batch_of(std::uint64_t first, std::size_t n) {
  std::string entries;
  for (std::size_t i = 0; i < n; ++i) entries += entry(i, "b");
  return {"FRS01", "\x21", R, I, u64(first), entries};
}
constexpr std::size_t entries_frame = 5;

// A valid BATCH with its entries frame replaced.
frames batch_with(std::uint64_t first, std::string entries) {
  return with(batch_of(first, 1), entries_frame, std::move(entries));
}

frames without_first(frames f) {
  f.erase(f.begin());
  return f;
}

std::vector<bad_input> bad_inputs() {
  const auto L = at::live;
  const auto P = at::publisher;
  const auto S = at::subscriber;
  return {
      // Framing, on each socket
      {"NoFramesOnTheLiveFeed", L, {}, fault::no_topic},
      {"OnlyTheTopic", L, {"s"}, fault::no_header},
      {"NoFramesAtThePublisher", P, {}, fault::no_routing_id},
      {"OnlyTheRoutingId", P, {"p"}, fault::no_header},
      {"NoFramesAtTheSubscriber", S, {}, fault::no_header},
      {"GarbageHeaderOnTheLiveFeed", L, packed_with(a_live, 0, "FRC01"), fault::unknown_header},
      {"EmptyPackedFrame", L, {"s", ""}, fault::unknown_header},
      {"PackedFrameOfTwoOctets", L, {"s", "FR"}, fault::unknown_header},
      {"EmptyHeaderAtThePublisher", P, {"p", "", "\x11"}, fault::unknown_header},
      {"LowercaseHeaderAtTheSubscriber", S, {"frs01", "\x22"}, fault::unknown_header},
      {"AnotherVersionOnTheLiveFeed", L, packed_with(a_live, 0, "FRS02"), fault::unknown_version},
      {"ShortFrsPackedFrame", L, {"s", "FRS0"}, fault::unknown_version},
      {"AnotherVersionOfTheRightSize", L, packed_with(a_heartbeat, 4, "2"), fault::unknown_version},
      {"AnotherVersionAtThePublisher", P, with(a_fetch, 1, "FRS02"), fault::unknown_version},
      {"ShortFrsHeader", S, with(an_end, 0, "FRS0"), fault::unknown_version},
      {"HeaderWithTrailingNul", P, with(a_fetch, 1, "FRS01\0"s), fault::unknown_version},
      {"NoCommandOnTheLiveFeed", L, {"s", "FRS01"}, fault::bad_command},
      {"NoCommandOnTheHeartbeatTopic", L, {"\0"s, "FRS01"}, fault::bad_command},
      {"EmptyCommandFrame", P, {"p", "FRS01", ""}, fault::bad_command},
      {"TwoByteCommand", S, {"FRS01", "\x22\x22"}, fault::bad_command},
      {"CommandZero", L, packed_with(a_live, command_octet, "\0"s), fault::bad_command},
      {"CommandFour", L, packed_with(a_beacon, command_octet, "\x04"), fault::bad_command},
      {"CommandAsciiOne", L, packed_with(a_heartbeat, command_octet, "1"), fault::bad_command},
      {"CommandThirteen", P, with(a_fetch, 2, "\x13"), fault::bad_command},
      {"CommandTwentyFive", S, with(an_end, 1, "\x25"), fault::bad_command},
      {"ReplayCommandOnTheLiveFeed", L, {"s", "FRS01\x11"s + R + "s" + u64(1) + u32(16)},
       fault::bad_command},
      {"ReplayMessageOnTheLiveFeed", L, a_fetch, fault::extra_frames},
      {"LiveCommandAtThePublisher", P, {"p", "FRS01", "\x01", I, u64(3), u64(4), "body"},
       fault::bad_command},
      {"LiveCommandAtTheSubscriber", S, {"FRS01", "\x03", I, u32(1000)}, fault::bad_command},
      // A live message's packed frame where a replay header belongs is no FRS01 header.
      {"LiveMessageAtThePublisher", P, join({"p"}, without_first(a_live)), fault::unknown_version},
      {"LiveMessageAtTheSubscriber", S, without_first(a_heartbeat), fault::unknown_version},
      // LIVE
      {"LiveOf29Octets", L, packed_of_size(a_live, live_body_offset - 1), fault::truncated},
      {"LiveOfItsCommandOnly", L, packed_of_size(a_live, command_octet + 1), fault::truncated},
      {"LiveTruncatedOnAnEmptyTopic", L, with(packed_of_size(a_live, 29), 0, ""), fault::truncated},
      {"LiveExtraFrame", L, join(a_live, {""}), fault::extra_frames},
      {"LiveBodyInAFrameOfItsOwn", L, join(packed_of_size(a_live, live_body_offset), {"body"}),
       fault::extra_frames},
      {"LiveInSevenFrames", L, {"s", "FRS01", "\x01", I, u64(3), u64(4), "body"},
       fault::extra_frames},
      {"LiveEmptyStream", L, with(a_live, 0, ""), fault::bad_stream},
      {"LiveStreamOf256Octets", L, with(a_live, 0, long_stream), fault::bad_stream},
      {"LiveStreamStartingWithNul", L, with(a_live, 0, "\0s"s), fault::bad_stream},
      {"LiveOnTheHeartbeatTopic", L, with(a_live, 0, "\0"s), fault::bad_stream},
      {"LiveBadStreamBeforeZeroIncarnation", L, with(packed_with(a_live, inc_octet, u64(0)), 0, ""),
       fault::bad_stream},
      {"LiveZeroIncarnation", L, packed_with(a_live, inc_octet, u64(0)), fault::zero_incarnation},
      {"LiveZeroIncarnationBeforeZeroSeq", L,
       packed_with(packed_with(a_live, inc_octet, u64(0)), seq_octet, u64(0)),
       fault::zero_incarnation},
      {"LiveZeroSeq", L, packed_with(a_live, seq_octet, u64(0)), fault::zero_sequence},
      // BEACON
      {"BeaconOf21Octets", L, packed_of_size(a_beacon, beacon_frame_size - 1), fault::truncated},
      {"BeaconOfItsCommandOnly", L, packed_of_size(a_beacon, command_octet + 1), fault::truncated},
      {"BeaconOf23Octets", L, packed_of_size(a_beacon, beacon_frame_size + 1), fault::extra_frames},
      {"BeaconLastOfFourOctets", L, packed_of_size(a_beacon, beacon_frame_size - 4),
       fault::truncated},
      {"BeaconWithABody", L, packed_of_size(a_beacon, live_body_offset + 4), fault::extra_frames},
      {"BeaconExtraFrame", L, join(a_beacon, {u64(1)}), fault::extra_frames},
      {"BeaconInFiveFrames", L, {"s", "FRS01", "\x02", I, u64(3)}, fault::extra_frames},
      {"BeaconExtraOctetOnAnEmptyTopic", L,
       with(packed_of_size(a_beacon, beacon_frame_size + 1), 0, ""), fault::extra_frames},
      {"BeaconEmptyStream", L, with(a_beacon, 0, ""), fault::bad_stream},
      {"BeaconOnTheHeartbeatTopic", L, with(a_beacon, 0, "\0"s), fault::bad_stream},
      {"BeaconZeroIncarnation", L, packed_with(a_beacon, inc_octet, u64(0)), fault::zero_incarnation},
      // HEARTBEAT
      {"HeartbeatOf17Octets", L, packed_of_size(a_heartbeat, heartbeat_frame_size - 1),
       fault::truncated},
      {"HeartbeatOfItsCommandOnly", L, packed_of_size(a_heartbeat, command_octet + 1),
       fault::truncated},
      {"HeartbeatOf19Octets", L, packed_of_size(a_heartbeat, heartbeat_frame_size + 1),
       fault::extra_frames},
      {"HeartbeatMsOfEightOctets", L, {"\0"s, "FRS01\x03"s + I + u64(1000)}, fault::extra_frames},
      {"HeartbeatExtraFrame", L, join(a_heartbeat, {""}), fault::extra_frames},
      {"HeartbeatInFiveFrames", L, {"\0"s, "FRS01", "\x03", I, u32(1000)}, fault::extra_frames},
      {"HeartbeatTruncatedOnAStreamTopic", L,
       with(packed_of_size(a_heartbeat, heartbeat_frame_size - 1), 0, "s"), fault::truncated},
      {"HeartbeatOnAStreamTopic", L, with(a_heartbeat, 0, "s"), fault::bad_topic},
      {"HeartbeatOnALongerNulTopic", L, with(a_heartbeat, 0, "\0\0"s), fault::bad_topic},
      {"HeartbeatOnAnEmptyTopic", L, with(a_heartbeat, 0, ""), fault::bad_topic},
      {"HeartbeatBadTopicBeforeZeroIncarnation", L,
       with(packed_with(a_heartbeat, inc_octet, u64(0)), 0, "s"), fault::bad_topic},
      {"HeartbeatZeroIncarnation", L, packed_with(a_heartbeat, inc_octet, u64(0)),
       fault::zero_incarnation},
      {"HeartbeatZeroIncarnationBeforeZeroMs", L,
       packed_with(packed_with(a_heartbeat, inc_octet, u64(0)), seq_octet, u32(0)),
       fault::zero_incarnation},
      {"HeartbeatZeroMs", L, packed_with(a_heartbeat, seq_octet, u32(0)), fault::bad_heartbeat},
      {"HeartbeatAboveAnHour", L, packed_with(a_heartbeat, seq_octet, u32(max_heartbeat_ms + 1)),
       fault::bad_heartbeat},
      // FETCH and FETCH-TIME
      {"FetchTruncated", P, {"p", "FRS01", "\x11", R, "s", u64(1)}, fault::truncated},
      {"FetchExtraFrame", P, join(a_fetch, {""}), fault::extra_frames},
      {"FetchRequestOfTwoOctets", P, with(a_fetch, 3, "\0\x09"s), fault::bad_width},
      {"FetchEmptyStream", P, with(a_fetch, 4, ""), fault::bad_stream},
      {"FetchStreamOf256Octets", P, with(a_fetch, 4, long_stream), fault::bad_stream},
      {"FetchStreamStartingWithNul", P, with(a_fetch, 4, "\0"s), fault::bad_stream},
      {"FetchFromSeqOfFourOctets", P, with(a_fetch, 5, u32(1)), fault::bad_width},
      {"FetchZeroFromSeq", P, with(a_fetch, 5, u64(0)), fault::zero_sequence},
      {"FetchMaxCountOfEightOctets", P, with(a_fetch, 6, u64(16)), fault::bad_width},
      {"FetchMaxCountZero", P, with(a_fetch, 6, u32(0)), fault::bad_max_count},
      {"FetchMaxCount1025", P, with(a_fetch, 6, u32(max_count + 1)), fault::bad_max_count},
      {"FetchTimeTruncated", P, {"p", "FRS01", "\x12", R}, fault::truncated},
      {"FetchTimeExtraFrame", P, join(a_fetch_time, {u32(1)}), fault::extra_frames},
      {"FetchTimeStreamStartingWithNul", P, with(a_fetch_time, 4, "\0s"s), fault::bad_stream},
      {"FetchTimeFromTimeOfSevenOctets", P, with(a_fetch_time, 5, "1234567"), fault::bad_width},
      {"FetchTimeMaxCountZero", P, with(a_fetch_time, 6, u32(0)), fault::bad_max_count},
      {"FetchTimeMaxCount1025", P, with(a_fetch_time, 6, u32(max_count + 1)),
       fault::bad_max_count},
      // BATCH
      {"BatchWithoutEntriesFrame", S, {"FRS01", "\x21", R, I, u64(1)}, fault::truncated},
      {"BatchWithoutFirstSeq", S, {"FRS01", "\x21", R, I}, fault::truncated},
      {"BatchExtraFrame", S, join(batch_of(1, 1), {entry(0, "b")}), fault::extra_frames},
      {"BatchOfTimesAndABodyFrame", S, {"FRS01", "\x21", R, I, u64(1), u64(0), "b"},
       fault::extra_frames},
      {"BatchRequestOfFiveOctets", S, with(batch_of(1, 1), 2, "12345"), fault::bad_width},
      {"BatchIncarnationOfFourOctets", S, with(batch_of(1, 1), 3, u32(1)), fault::bad_width},
      {"BatchZeroIncarnation", S, with(batch_of(1, 1), 3, u64(0)), fault::zero_incarnation},
      {"BatchFirstSeqOfFourOctets", S, with(batch_of(1, 1), 4, u32(1)), fault::bad_width},
      {"BatchZeroFirstSeq", S, batch_of(0, 1), fault::zero_sequence},
      {"BatchZeroFirstSeqBeforeACutEntry", S, with(batch_of(0, 1), entries_frame, u64(0)),
       fault::zero_sequence},
      {"BatchEmptyEntriesFrame", S, batch_of(1, 0), fault::truncated},
      {"BatchEntryOfItsTimeOnly", S, batch_with(1, u64(0)), fault::truncated},
      {"BatchEntryOfElevenOctets", S, batch_with(1, entry(0, "").substr(0, 11)), fault::truncated},
      {"BatchBodyCutShort", S, batch_with(1, entry(0, "body").substr(0, 15)), fault::truncated},
      {"BatchLengthPastTheFrame", S, batch_with(1, u64(0) + u32(0xffffffff) + "b"),
       fault::truncated},
      {"BatchOctetsLeftOver", S, batch_with(1, entry(0, "b") + "xyz"), fault::truncated},
      {"BatchSecondEntryCutShort", S, batch_with(1, entry(0, "b") + entry(1, "bb").substr(0, 13)),
       fault::truncated},
      {"Batch1025Entries", S, batch_of(1, max_bodies + 1), fault::too_many_bodies},
      {"Batch1024EntriesAndOctetsLeftOver", S,
       with(batch_of(1, max_bodies), entries_frame, batch_of(1, max_bodies)[entries_frame] + "xy"),
       fault::truncated},
      {"Batch1025EntriesBeforeOverflow", S, batch_of(max_u64, max_bodies + 1),
       fault::too_many_bodies},
      {"BatchCutEntryBeforeOverflow", S,
       batch_with(max_u64, entry(0, "b") + entry(1, "b").substr(0, 5)), fault::truncated},
      {"BatchPastTheLastSequence", S, batch_of(max_u64, 2), fault::sequence_overflow},
      {"Batch1024PastTheLastSequence", S, batch_of(max_u64 - 1022, max_bodies),
       fault::sequence_overflow},
      // END
      {"EndTruncated", S, {"FRS01", "\x22", R, I, u64(4)}, fault::truncated},
      {"EndExtraFrame", S, join(an_end, {""}), fault::extra_frames},
      {"EndRequestOfEightOctets", S, with(an_end, 2, u64(9)), fault::bad_width},
      {"EndZeroIncarnation", S, with(an_end, 3, u64(0)), fault::zero_incarnation},
      {"EndZeroNextSeq", S, with(an_end, 4, u64(0)), fault::zero_sequence},
      {"EndNextSeqOfFourOctets", S, with(an_end, 4, u32(4)), fault::bad_width},
      {"EndLastOfFourOctets", S, with(an_end, 5, u32(3)), fault::bad_width},
      // GONE
      {"GoneTruncated", S, {"FRS01", "\x23", R, I, u64(1)}, fault::truncated},
      {"GoneExtraFrame", S, join(a_gone, {""}), fault::extra_frames},
      {"GoneZeroIncarnation", S, with(a_gone, 3, u64(0)), fault::zero_incarnation},
      {"GoneZeroFromSeq", S, with(a_gone, 4, u64(0)), fault::zero_sequence},
      {"GoneFirstHeldOfFourOctets", S, with(a_gone, 5, u32(5)), fault::bad_width},
      {"GoneFirstHeldEqualToFromSeq", S, with(a_gone, 5, u64(1)), fault::first_held_too_low},
      {"GoneFirstHeldBelowFromSeq", S, with(with(a_gone, 4, u64(6)), 5, u64(5)),
       fault::first_held_too_low},
      // REFUSE
      {"RefuseTruncated", S, {"FRS01", "\x24", R, "malformed"}, fault::truncated},
      {"RefuseExtraFrame", S, join(a_refuse, {""}), fault::extra_frames},
      {"RefuseRequestOfTwoOctets", S, with(a_refuse, 2, "\0\x09"s), fault::bad_width},
      {"RefuseEmptyCode", S, with(a_refuse, 3, ""), fault::bad_code},
      {"RefuseCodeOf33Octets", S, with(a_refuse, 3, std::string(33, 'a')), fault::bad_code},
      {"RefuseUppercaseCode", S, with(a_refuse, 3, "Malformed"), fault::bad_code},
      {"RefuseCodeWithAnUnderscore", S, with(a_refuse, 3, "unknown_stream"), fault::bad_code},
      {"RefuseReasonOf256Octets", S, with(a_refuse, 4, std::string(max_reason_size + 1, 'r')),
       fault::reason_too_long},
      // Well-formed, the other way
      {"FetchAtTheSubscriber", S, without_first(a_fetch), fault::wrong_direction},
      {"FetchTimeAtTheSubscriber", S, without_first(a_fetch_time), fault::wrong_direction},
      {"BatchAtThePublisher", P, join({"p"}, batch_of(1, 1)), fault::wrong_direction},
      {"EndAtThePublisher", P, join({"p"}, an_end), fault::wrong_direction},
      {"GoneAtThePublisher", P, join({"p"}, a_gone), fault::wrong_direction},
      {"RefuseAtThePublisher", P, join({"p"}, a_refuse), fault::wrong_direction},
  };
}

parsed parse_on(at where, const message& m) {
  switch (where) {
    case at::live: return parse_live(m);
    case at::publisher: return parse_at_publisher(m);
    case at::subscriber: break;
  }
  return parse_at_subscriber(m);
}

class FrsRejects : public ::testing::TestWithParam<bad_input> {};

TEST_P(FrsRejects, EachMalformedMessageWithItsOwnFault) {
  const bad_input& c = GetParam();
  const message m = make(c.input);
  const parsed p = parse_on(c.where, m);
  EXPECT_EQ(p.error, c.expected) << c.name << ": got '" << describe(p.error) << "', expected '"
                                 << describe(c.expected) << "'";
  EXPECT_FALSE(p);
  if (c.where == at::publisher && !c.input.empty()) {
    EXPECT_EQ(p.peer, c.input[0]) << "the publisher can still answer or count by peer";
  }
}

INSTANTIATE_TEST_SUITE_P(Table, FrsRejects, ::testing::ValuesIn(bad_inputs()),
                         [](const ::testing::TestParamInfo<bad_input>& param_info) {
                           return param_info.param.name;
                         });

TEST(Frs, TheMalformedTableCoversEveryFault) {
  std::set<fault> seen;
  for (const bad_input& c : bad_inputs()) seen.insert(c.expected);
  for (int i = static_cast<int>(fault::no_routing_id);
       i <= static_cast<int>(fault::reason_too_long); ++i) {
    EXPECT_TRUE(seen.count(static_cast<fault>(i)) == 1) << describe(static_cast<fault>(i));
  }
}

TEST(Frs, TheValidMessagesOfTheTableParse) {
  // The table's faults come from one change each to these: they must parse as they are.
  for (const auto& [f, where] : std::vector<std::pair<frames, at>>{
           {a_live, at::live}, {a_beacon, at::live}, {a_heartbeat, at::live},
           {a_fetch, at::publisher}, {a_fetch_time, at::publisher},
           {batch_of(1, 1), at::subscriber}, {batch_of(max_u64, 1), at::subscriber},
           {batch_of(1, max_bodies), at::subscriber},
           {batch_of(max_u64 - 1023, max_bodies), at::subscriber},
           {batch_with(1, entry(0, "") + entry(1, std::string(70000, 'x'))), at::subscriber},
           {an_end, at::subscriber}, {a_gone, at::subscriber}, {a_refuse, at::subscriber}}) {
    const message m = make(f);
    const parsed p = parse_on(where, m);
    EXPECT_TRUE(p) << describe(p.error) << " for the message whose frame 1 is " << f[1];
  }
}

// ---------------------------------------------------------------------------------------------
// Random frames and truncations.

// What the builders write for the values `p` holds, in the form its parser received it.
frames rebuilt(const parsed& p, at where) {
  message out;
  const std::string_view peer = "peer";
  switch (p.what) {
    case command::live: write_live(out, p.stream, p.publisher_inc, p.live.seq, p.live.time_ns,
                                   p.live.body); break;
    case command::beacon: write_beacon(out, p.stream, p.publisher_inc, p.last); break;
    case command::heartbeat: write_heartbeat(out, p.publisher_inc, p.heartbeat_ms); break;
    case command::fetch: write_fetch(out, p.request, p.fetch); break;
    case command::fetch_time: write_fetch_time(out, p.request, p.fetch); break;
    case command::batch: {
      batch_writer w(out, peer, p.request, p.publisher_inc, p.batch.first_seq());
      for (const batch_entry e : p.batch) w.add(e.time_ns, e.body);
      w.finish();
      break;
    }
    case command::end: write_end(out, peer, p.request, p.publisher_inc, p.end); break;
    case command::gone: write_gone(out, peer, p.request, p.publisher_inc, p.gone); break;
    case command::refuse: write_refuse(out, peer, p.request, p.refuse); break;
  }
  frames f = frames_of(out);
  if (where == at::publisher) f.insert(f.begin(), std::string(p.peer));
  else if (where == at::subscriber) f.erase(f.begin());
  return f;
}

// Parses `f` at `where` and checks the answer: a fault, or a message the builders would write
// byte for byte, with the bodies inside the message. Returns whether it was accepted.
bool check(const frames& f, at where) {
  const message m = make(f);
  const parsed p = parse_on(where, m);
  if (!p) return false;
  frames again;
  EXPECT_NO_THROW(again = rebuilt(p, where)) << "accepted what a builder refuses";
  EXPECT_EQ(again, f) << "accepted what no builder writes";
  if (p.what == command::batch) {
    // Every body a view inside the entries frame, which is a frame of the message.
    const frame* entries = p.batch.entries_frame();
    EXPECT_EQ(entries, &m[m.size() - 1]);
    const char* begin = static_cast<const char*>(entries->data());
    for (const batch_entry e : p.batch) {
      EXPECT_EQ(&e.body_frame, entries);
      EXPECT_GE(e.body.data(), begin);
      EXPECT_LE(e.body.data() + e.body.size(), begin + entries->size());
    }
  }
  return true;
}

std::vector<std::pair<frames, at>> valid_messages() {
  std::vector<std::pair<frames, at>> out;
  message m;
  const auto add = [&](at where) {
    out.emplace_back(frames_of(m), where);
    if (where == at::publisher) out.back().first.insert(out.back().first.begin(), "p");
    else if (where == at::subscriber) out.back().first.erase(out.back().first.begin());
  };
  write_live(m, "s", inc, 3, 4, "body");
  add(at::live);
  write_beacon(m, "s", inc, 3);
  add(at::live);
  write_heartbeat(m, inc, 1000);
  add(at::live);
  write_fetch(m, 9, {"s", 1, 16});
  add(at::publisher);
  write_fetch_time(m, 9, {"s", 0, 1024});
  add(at::publisher);
  {
    batch_writer w(m, "p", 9, inc, 3);
    w.add(0, "a");
    w.add(5, "");
    w.add(9, "ccc");
    w.finish();
  }
  add(at::subscriber);
  write_end(m, "p", 9, inc, {4, 3});
  add(at::subscriber);
  write_gone(m, "p", 9, inc, {1, 5});
  add(at::subscriber);
  write_refuse(m, "p", 9, {"unknown-stream", "no"});
  add(at::subscriber);
  write_version_refusal(m, "p");
  add(at::subscriber);
  return out;
}

TEST(Frs, TruncationsAndRandomFramesNeverCrashNorPassUnlessCanonical) {
  constexpr at sockets[] = {at::live, at::publisher, at::subscriber};
  const auto valid = valid_messages();
  for (const auto& [f, where] : valid) {
    for (std::size_t n = 0; n <= f.size(); ++n) {
      const frames prefix(f.begin(), f.begin() + static_cast<std::ptrdiff_t>(n));
      for (const at s : sockets) (void)check(prefix, s);
    }
    // Where BATCH's entries end in its entries frame: the only places it may be cut and parse.
    std::set<std::size_t> entry_ends;
    const bool batch = where == at::subscriber && f.size() > 1 && f[1] == "\x21";
    if (batch) {
      const message m = make(f);
      const parsed p = parse_at_subscriber(m);
      ASSERT_TRUE(p);
      std::size_t end = 0;
      for (const batch_entry e : p.batch) entry_ends.insert(end += batch_entry_head + e.body.size());
      ASSERT_GE(entry_ends.size(), 3U) << "the cuts below should split entries in several ways";
    }
    // Each frame cut short, octet by octet: the live feed's fields share one frame, and BATCH's
    // entries another.
    for (std::size_t i = 0; i < f.size(); ++i) {
      for (std::size_t n = 0; n < f[i].size(); ++n) {
        frames cut = f;
        cut[i].resize(n);
        const bool accepted = check(cut, where);
        EXPECT_FALSE(accepted && where == at::live && i == 1 && n < live_body_offset)
            << "a live-feed command shorter than its fields parsed";
        EXPECT_FALSE(accepted && batch && i == entries_frame && entry_ends.count(n) == 0)
            << "a BATCH entry cut short at octet " << n << " parsed";
        EXPECT_FALSE(!accepted && batch && i == entries_frame && entry_ends.count(n) == 1)
            << "a BATCH of whole entries, cut at octet " << n << ", did not parse";
      }
    }
  }

  std::mt19937_64 rng(20261204);
  const std::vector<std::string> atoms = {
      "", "\0"s, "s", "FRS01", "FRS02", "\x01", "\x02", "\x03", "\x11", "\x12", "\x21", "\x22",
      "\x23", "\x24", u32(0), u32(1), u32(1024), u32(1025), u32(max_heartbeat_ms + 1), u64(0),
      u64(1), u64(4), u64(max_u64), std::string(16, '\0'), "version", "malformed", long_stream,
      "1234567", "FRS01\x01"s + u64(inc) + u64(1) + u64(0), "FRS01\x02"s + u64(inc) + u64(0),
      "FRS01\x03"s + u64(inc) + u32(1), "FRS01\x03"s + u64(inc) + u32(0), entry(0, "b"),
      entry(1, "") + entry(2, "cc"), u64(0) + u32(0xffffffff)};
  const auto pick = [&](std::size_t n) {
    return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng);
  };
  constexpr int iterations = 20000;
  int accepted = 0;
  for (int i = 0; i < iterations; ++i) {
    frames f;
    if (pick(3) == 0) {
      // Pure soup, the header where one of the sockets looks for it more often than not.
      f.resize(pick(12));
      for (auto& s : f) s = atoms[pick(atoms.size())];
      if (!f.empty() && pick(2) == 0) f[std::min<std::size_t>(pick(2), f.size() - 1)] = "FRS01";
    } else {
      // A valid message with a few mutations.
      f = valid[pick(valid.size())].first;
      const std::size_t mutations = 1 + pick(3);
      for (std::size_t k = 0; k < mutations && !f.empty(); ++k) {
        const std::size_t at_frame = pick(f.size());
        const auto it = f.begin() + static_cast<std::ptrdiff_t>(at_frame);
        switch (pick(6)) {
          case 0: f.resize(at_frame); break;
          case 1: f.erase(it); break;
          case 2: f.insert(it, atoms[pick(atoms.size())]); break;
          case 3: f[at_frame] = atoms[pick(atoms.size())]; break;
          case 4:
            if (!f[at_frame].empty()) f[at_frame][pick(f[at_frame].size())] = static_cast<char>(rng());
            break;
          default:
            if (pick(2) == 0 && !f[at_frame].empty()) f[at_frame].pop_back();
            else f[at_frame].push_back(static_cast<char>(rng()));
            break;
        }
      }
    }
    for (const at s : sockets) accepted += check(f, s) ? 1 : 0;
    if (HasFailure()) {
      ADD_FAILURE() << "iteration " << i;
      return;
    }
  }
  // Mutations that keep a message well-formed (a byte changed in a body, a name, a count) must
  // have been tried too, or the canonical check above proved little. Most mutations of FRS/1
  // land in an integer frame or the command byte and break the message, hence the low floor.
  EXPECT_GT(accepted, iterations / 40);
  EXPECT_LT(accepted, iterations);
}

}  // namespace
}  // namespace fabric::frs
