// Tests the FRC/1 codec: exact wire layouts, round trips of every builder through the parser of
// the side that receives it, the bounds of the grammar at their edge and one past it, a table of
// malformed messages each with its own fault, zero-copy views and bodies, and random frames and
// truncations that must never crash and never be accepted unless the builders would write them.
#include "reliability/frc.hpp"

#include "core/byte_order.hpp"

#include <fabric/error.hpp>

#include "support/raw_frames.hpp"
#include "support/support.hpp"

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fabric::frc {
namespace {

using namespace std::string_literals;
using frames = std::vector<std::string>;

constexpr std::uint64_t max_u64 = std::numeric_limits<std::uint64_t>::max();

// Raw protocol input and output, frame by frame (tests/support/support.hpp).
message make(const frames& parts) { return testing::message_of(parts); }
frames frames_of(const message& m) { return testing::to_strings(m); }

using testing::join;
using testing::u32;
using testing::u64;

// The parsers' views must not outlive their message: a temporary does not compile.
template <class M>
concept receiver_parses = requires(M&& m) { parse_at_receiver(std::forward<M>(m)); };
template <class M>
concept sender_parses = requires(M&& m) { parse_at_sender(std::forward<M>(m)); };
static_assert(receiver_parses<const message&> && receiver_parses<message&>);
static_assert(!receiver_parses<message> && !receiver_parses<message&&>);
static_assert(sender_parses<const message&> && !sender_parses<message>);

const hello_fields a_hello{"orders", "svc-a", 0x1111, 0x2222, 3, 5, 1000};
const welcome_fields a_welcome{0x3333, 4, 64, 2500, 1 << 20};

// Sender-side messages as the receiver's ROUTER sees them: the routing id first.
message routed(message&& m, std::string_view peer = "peer") {
  m.push_front(peer);
  return std::move(m);
}

// Receiver-side messages as the sender's DEALER sees them: the routing id gone.
message delivered(message&& m) {
  (void)m.pop_front();
  return std::move(m);
}

TEST(Frc, BuildersProduceTheExactFramesOfTheSpec) {
  message m;
  write_hello(m, 7, a_hello);
  EXPECT_EQ(frames_of(m), (frames{"FRC01", "\x01", "\0\0\0\x07"s, "orders", "svc-a",
                                  "\0\0\0\0\0\0\x11\x11"s, "\0\0\0\0\0\0\x22\x22"s,
                                  "\0\0\0\0\0\0\0\x03"s, "\0\0\0\0\0\0\0\x05"s,
                                  "\0\0\x03\xe8"s}));
  {
    data_writer w(m, 7, 0x0102030405060708);
    w.add(0, "a");
    w.add(0x01020304, ""s);
    w.finish();
  }
  EXPECT_EQ(frames_of(m), (frames{"FRC01", "\x02", "\0\0\0\x07"s, "\x01\x02\x03\x04\x05\x06\x07\x08",
                                  "\0\0\0\0\x01\x02\x03\x04"s, "a", ""}));
  write_skip(m, 7, {9, 12, "expired"});
  EXPECT_EQ(frames_of(m), (frames{"FRC01", "\x03", "\0\0\0\x07"s, u64(9), u64(12), "expired"}));
  write_heartbeat(m);
  EXPECT_EQ(frames_of(m), (frames{"FRC01", "\x04"}));
  write_goodbye(m);
  EXPECT_EQ(frames_of(m), (frames{"FRC01", "\x05"}));
  write_goodbye(m, 7);
  EXPECT_EQ(frames_of(m), (frames{"FRC01", "\x05", "\0\0\0\x07"s}));

  write_welcome(m, "peer", 7, a_welcome);
  EXPECT_EQ(frames_of(m), (frames{"peer", "FRC01", "\x11", u32(7), u64(0x3333), u64(4), u32(64),
                                  u32(2500), "\0\x10\0\0"s}));
  const std::uint64_t expired[] = {2, 4};
  write_ack(m, "peer", 7, 4, 64, expired);
  EXPECT_EQ(frames_of(m),
            (frames{"peer", "FRC01", "\x12", u32(7), u64(4), u32(64), u64(2), u64(4)}));
  write_ack(m, "peer", 7, 0, 0);
  EXPECT_EQ(frames_of(m), (frames{"peer", "FRC01", "\x12", u32(7), u64(0), u32(0)}));
  write_nack(m, "peer", 7, 5);
  EXPECT_EQ(frames_of(m), (frames{"peer", "FRC01", "\x13", u32(7), u64(5)}));
  write_refuse(m, "peer", 7, {"too-many-links", "256 links"});
  EXPECT_EQ(frames_of(m), (frames{"peer", "FRC01", "\x14", u32(7), "too-many-links", "256 links"}));
  write_version_refusal(m, "peer");
  EXPECT_EQ(frames_of(m), (frames{"peer", "FRC01", "\x14", u32(0), "version", "FRC01"}));
  write_heartbeat_to(m, "peer");
  EXPECT_EQ(frames_of(m), (frames{"peer", "FRC01", "\x04"}));
  write_goodbye_to(m, "peer");
  EXPECT_EQ(frames_of(m), (frames{"peer", "FRC01", "\x05"}));
  write_goodbye_to(m, "peer", 7);
  EXPECT_EQ(frames_of(m), (frames{"peer", "FRC01", "\x05", u32(7)}));
}

TEST(Frc, BuildersReuseTheMessagesFrameCapacity) {
  message m;
  write_hello(m, 1, a_hello);
  const frame* storage = m.frames().data();
  write_heartbeat(m);
  write_nack(m, "p", 1, 1);
  write_goodbye(m, 1);
  EXPECT_EQ(m.frames().data(), storage) << "a smaller message reuses the frame vector";
}

TEST(Frc, HelloRoundTripsIntoViewsOfItsFrames) {
  message built;
  write_hello(built, 0xdeadbeef, a_hello);
  const message m = routed(std::move(built), "rid");
  const parsed p = parse_at_receiver(m);
  ASSERT_TRUE(p) << describe(p.error);
  EXPECT_EQ(p.what, command::hello);
  EXPECT_EQ(p.peer, "rid");
  EXPECT_EQ(p.header, header);
  EXPECT_EQ(p.link, 0xdeadbeefU);
  EXPECT_EQ(p.hello, a_hello);
  EXPECT_EQ(p.peer.data(), m[0].data());
  EXPECT_EQ(p.hello.stream.data(), m[4].data());
  EXPECT_EQ(p.hello.sender.data(), m[5].data());
}

TEST(Frc, HelloKeepsExtremeValues) {
  const std::string longest(max_name_size, 'n');
  const std::string odd_bytes = "\0x\xff"s;
  const hello_fields h{longest, odd_bytes, max_u64, max_u64, max_u64, max_u64, max_heartbeat_ms};
  message built;
  write_hello(built, 0xffffffff, h);
  const message m = routed(std::move(built));
  const parsed p = parse_at_receiver(m);
  ASSERT_TRUE(p) << describe(p.error);
  EXPECT_EQ(p.hello, h);
  EXPECT_EQ(p.link, 0xffffffffU);
}

TEST(Frc, WelcomeRoundTrips) {
  message built;
  write_welcome(built, "rid", 3, a_welcome);
  const message m = delivered(std::move(built));
  const parsed p = parse_at_sender(m);
  ASSERT_TRUE(p) << describe(p.error);
  EXPECT_EQ(p.what, command::welcome);
  EXPECT_TRUE(p.peer.empty());
  EXPECT_EQ(p.link, 3U);
  EXPECT_EQ(p.welcome, a_welcome);

  const welcome_fields extreme{max_u64, max_u64, 0xffffffff, 1, 0};
  write_welcome(built, "rid", 3, extreme);
  const message e = delivered(std::move(built));
  const parsed q = parse_at_sender(e);
  ASSERT_TRUE(q) << describe(q.error);
  EXPECT_EQ(q.welcome, extreme);
}

TEST(Frc, DataRoundTripsEveryEntryInOrder) {
  const std::vector<std::pair<std::uint32_t, std::string>> entries = {
      {0, "first"}, {1, ""}, {0xffffffff, std::string(100000, 'x')}, {250, "a\0b"s}};
  message built;
  data_writer w(built, 9, 41);
  for (const auto& [ttl, body] : entries) w.add(ttl, body);
  w.finish();
  EXPECT_EQ(w.size(), entries.size());
  EXPECT_EQ(w.next_seq(), 45U);
  const message m = routed(std::move(built));
  const parsed p = parse_at_receiver(m);
  ASSERT_TRUE(p) << describe(p.error);
  EXPECT_EQ(p.what, command::data);
  EXPECT_EQ(p.link, 9U);
  ASSERT_EQ(p.data.size(), entries.size());
  EXPECT_EQ(p.data.first_seq(), 41U);
  EXPECT_EQ(p.data.last_seq(), 44U);
  std::size_t i = 0;
  for (const data_entry e : p.data) {
    EXPECT_EQ(e.seq, 41 + i);
    EXPECT_EQ(e.ttl_ms, entries[i].first);
    EXPECT_EQ(e.body, entries[i].second);
    // Views, not copies: the body is the message's own frame.
    EXPECT_EQ(&e.body_frame, &m[6 + i]);
    EXPECT_EQ(e.body.data(), m[6 + i].data());
    ++i;
  }
  EXPECT_EQ(i, entries.size());
  EXPECT_EQ(p.data.frames().data(), &m[6]);
  EXPECT_EQ(p.data[3].body, "a\0b"s);
}

TEST(Frc, DataMovesAndSharesBodiesWithoutCopyingThem) {
  const std::string big(64 * 1024, 'b');
  frame moved = make_frame(big);
  frame kept = make_frame(big);
  const void* moved_bytes = moved.data();
  message built;
  data_writer w(built, 1, 1);
  w.add(10, std::move(moved));
  w.share(20, kept);
  w.finish();
  EXPECT_EQ(built[5].data(), moved_bytes);
  EXPECT_EQ(built[6].data(), kept.data()) << "shared, not copied";
  EXPECT_EQ(view(kept), big) << "the shared frame keeps its bytes, for a retransmission";
  const message m = routed(std::move(built));
  const parsed p = parse_at_receiver(m);
  ASSERT_TRUE(p) << describe(p.error);
  ASSERT_EQ(p.data.size(), 2U);
  EXPECT_EQ(p.data[0].body.data(), moved_bytes);
  EXPECT_EQ(p.data[1].body.data(), kept.data());
  EXPECT_EQ(p.data[1].ttl_ms, 20U);
}

TEST(Frc, DataHoldsUpTo1024EntriesAndStopsAtTheLastSequence) {
  message built;
  data_writer w(built, 1, 1);
  for (std::size_t i = 0; i < max_entries; ++i) {
    EXPECT_FALSE(w.full());
    w.add(0, std::to_string(i));
  }
  EXPECT_TRUE(w.full());
  EXPECT_THROW(w.add(0, "one more"), fabric::error);
  w.finish();
  const message m = routed(std::move(built));
  const parsed p = parse_at_receiver(m);
  ASSERT_TRUE(p) << describe(p.error);
  EXPECT_EQ(p.data.size(), max_entries);
  EXPECT_EQ(p.data.last_seq(), max_entries);
  EXPECT_EQ(p.data[1023].body, "1023");

  // The sequence space ends at 2^64-1: a DATA may reach it, not pass it.
  message edge;
  data_writer last(edge, 1, max_u64 - 1);
  last.add(0, "a");
  last.add(0, "b");
  EXPECT_TRUE(last.full());
  EXPECT_THROW(last.add(0, "c"), fabric::error);
  last.finish();
  const message e = routed(std::move(edge));
  const parsed q = parse_at_receiver(e);
  ASSERT_TRUE(q) << describe(q.error);
  EXPECT_EQ(q.data.last_seq(), max_u64);
}

TEST(Frc, SkipRoundTrips) {
  const std::string longest(max_reason_size, 'r');
  for (const skip_fields& s : {skip_fields{1, 1, ""}, skip_fields{5, 9, "too large"},
                               skip_fields{1, max_u64, longest}}) {
    message built;
    write_skip(built, 2, s);
    const message m = routed(std::move(built));
    const parsed p = parse_at_receiver(m);
    ASSERT_TRUE(p) << describe(p.error);
    EXPECT_EQ(p.what, command::skip);
    EXPECT_EQ(p.link, 2U);
    EXPECT_EQ(p.skip, s);
    EXPECT_EQ(p.skip.reason.data(), m[6].data());
  }
}

TEST(Frc, AckRoundTripsWithItsExpiredList) {
  std::vector<std::uint64_t> full(max_entries);
  for (std::size_t i = 0; i < full.size(); ++i) full[i] = i + 1;
  const std::vector<std::vector<std::uint64_t>> lists = {{}, {7}, {1, 3, 7}, full};
  for (const auto& expired : lists) {
    message built;
    write_ack(built, "rid", 4, 2000, 128, expired);
    const message m = delivered(std::move(built));
    const parsed p = parse_at_sender(m);
    ASSERT_TRUE(p) << describe(p.error);
    EXPECT_EQ(p.what, command::ack);
    EXPECT_EQ(p.link, 4U);
    EXPECT_EQ(p.ack.taken, 2000U);
    EXPECT_EQ(p.ack.credit, 128U);
    EXPECT_EQ(std::vector<std::uint64_t>(p.ack.expired.begin(), p.ack.expired.end()), expired);
    if (!expired.empty()) {
      EXPECT_EQ(p.ack.expired.frames().data(), &m[5]);
    }
  }
  // An expired sequence may be taken itself, not above it.
  const std::uint64_t at_taken[] = {9};
  message m;
  write_ack(m, "rid", 4, 9, 0, at_taken);
  const message one = delivered(std::move(m));
  EXPECT_TRUE(parse_at_sender(one));
}

TEST(Frc, NackRefuseHeartbeatAndGoodbyeRoundTrip) {
  message built;
  write_nack(built, "rid", 6, max_u64);
  message m = delivered(std::move(built));
  parsed p = parse_at_sender(m);
  ASSERT_TRUE(p) << describe(p.error);
  EXPECT_EQ(p.what, command::nack);
  EXPECT_EQ(p.link, 6U);
  EXPECT_EQ(p.expected_seq, max_u64);

  const std::string longest_code(max_code_size, '-');
  const std::string longest_reason(max_reason_size, 'r');
  const refuse_fields longest{longest_code, longest_reason};
  for (const refuse_fields& r : {refuse_fields{"sender-regressed", ""}, longest}) {
    write_refuse(built, "rid", 6, r);
    m = delivered(std::move(built));
    p = parse_at_sender(m);
    ASSERT_TRUE(p) << describe(p.error);
    EXPECT_EQ(p.what, command::refuse);
    EXPECT_EQ(p.link, 6U);
    EXPECT_EQ(p.refuse, r);
    EXPECT_EQ(p.refuse.code.data(), m[3].data());
  }

  // Heartbeat and goodbye travel both ways.
  write_heartbeat(built);
  m = routed(std::move(built));
  p = parse_at_receiver(m);
  ASSERT_TRUE(p);
  EXPECT_EQ(p.what, command::heartbeat);
  EXPECT_EQ(p.link, 0U);
  write_heartbeat_to(built, "rid");
  m = delivered(std::move(built));
  p = parse_at_sender(m);
  ASSERT_TRUE(p);
  EXPECT_EQ(p.what, command::heartbeat);

  write_goodbye(built);
  m = routed(std::move(built));
  p = parse_at_receiver(m);
  ASSERT_TRUE(p);
  EXPECT_EQ(p.what, command::goodbye);
  EXPECT_EQ(p.link, 0U) << "no link: the whole connection";
  write_goodbye(built, 11);
  m = routed(std::move(built));
  p = parse_at_receiver(m);
  ASSERT_TRUE(p);
  EXPECT_EQ(p.link, 11U);
  write_goodbye_to(built, "rid");
  m = delivered(std::move(built));
  p = parse_at_sender(m);
  ASSERT_TRUE(p);
  EXPECT_EQ(p.what, command::goodbye);
  EXPECT_EQ(p.link, 0U);
  write_goodbye_to(built, "rid", 12);
  m = delivered(std::move(built));
  p = parse_at_sender(m);
  ASSERT_TRUE(p);
  EXPECT_EQ(p.link, 12U);
}

TEST(Frc, AnotherVersionIsToldApartFromGarbageAndAnsweredWithVersionRefusal) {
  const message future = make({"rid", "FRC02", "\x01", "whatever"});
  const parsed p = parse_at_receiver(future);
  EXPECT_EQ(p.error, fault::unknown_version);
  EXPECT_EQ(p.peer, "rid");
  EXPECT_EQ(p.header, "FRC02");
  EXPECT_EQ(code_of(p.error), make_error_code(errc::not_supported));
  const message garbage = make({"rid", "MDPW01", "\x04"});
  EXPECT_EQ(parse_at_receiver(garbage).error, fault::unknown_header);

  message answer;
  write_version_refusal(answer, p.peer);
  EXPECT_EQ(answer.view(0), "rid");
  const message at_sender = delivered(std::move(answer));
  const parsed r = parse_at_sender(at_sender);
  ASSERT_TRUE(r) << describe(r.error);
  EXPECT_EQ(r.what, command::refuse);
  EXPECT_EQ(r.link, 0U);
  EXPECT_EQ(r.refuse.code, version_code);
  EXPECT_EQ(r.refuse.reason, versions_spoken);
}

TEST(Frc, EachCommandIsAcceptedOnlyInItsDirection) {
  message m;
  write_hello(m, 1, a_hello);
  EXPECT_EQ(parse_at_sender(m).error, fault::wrong_direction);
  write_skip(m, 1, {1, 2, ""});
  EXPECT_EQ(parse_at_sender(m).error, fault::wrong_direction);
  {
    data_writer w(m, 1, 1);
    w.add(0, "x");
    w.finish();
  }
  const parsed d = parse_at_sender(m);
  EXPECT_EQ(d.error, fault::wrong_direction);
  EXPECT_EQ(d.what, command::data);
  EXPECT_EQ(code_of(d.error), make_error_code(errc::protocol_error));

  write_welcome(m, "rid", 1, a_welcome);
  EXPECT_EQ(parse_at_receiver(m).error, fault::wrong_direction);
  write_ack(m, "rid", 1, 0, 1);
  EXPECT_EQ(parse_at_receiver(m).error, fault::wrong_direction);
  write_nack(m, "rid", 1, 1);
  EXPECT_EQ(parse_at_receiver(m).error, fault::wrong_direction);
  write_refuse(m, "rid", 1, {"not-allowed", ""});
  const parsed r = parse_at_receiver(m);
  EXPECT_EQ(r.error, fault::wrong_direction);
  EXPECT_EQ(r.peer, "rid");
}

TEST(Frc, BuildersRefuseWhatTheGrammarForbids) {
  message m;
  const auto hello_with = [](auto change) {
    hello_fields h = a_hello;
    change(h);
    return h;
  };
  EXPECT_THROW(write_hello(m, 0, a_hello), fabric::error);
  EXPECT_THROW(write_hello(m, 1, hello_with([](hello_fields& h) { h.stream = ""; })),
               fabric::error);
  const std::string too_long(max_name_size + 1, 'n');
  EXPECT_THROW(write_hello(m, 1, hello_with([&](hello_fields& h) { h.stream = too_long; })),
               fabric::error);
  EXPECT_THROW(write_hello(m, 1, hello_with([](hello_fields& h) { h.sender = ""; })),
               fabric::error);
  EXPECT_THROW(write_hello(m, 1, hello_with([&](hello_fields& h) { h.sender = too_long; })),
               fabric::error);
  EXPECT_THROW(write_hello(m, 1, hello_with([](hello_fields& h) { h.sender_inc = 0; })),
               fabric::error);
  EXPECT_THROW(write_hello(m, 1, hello_with([](hello_fields& h) { h.last = h.acked - 1; })),
               fabric::error);
  EXPECT_THROW(write_hello(m, 1, hello_with([](hello_fields& h) { h.heartbeat_ms = 0; })),
               fabric::error);
  EXPECT_THROW(write_hello(m, 1, hello_with([](hello_fields& h) {
                 h.heartbeat_ms = max_heartbeat_ms + 1;
               })),
               fabric::error);
  EXPECT_THROW(data_writer(m, 0, 1), fabric::error);
  EXPECT_THROW(data_writer(m, 1, 0), fabric::error);
  EXPECT_THROW(write_skip(m, 0, {1, 1, ""}), fabric::error);
  EXPECT_THROW(write_skip(m, 1, {0, 1, ""}), fabric::error);
  EXPECT_THROW(write_skip(m, 1, {5, 4, ""}), fabric::error);
  EXPECT_THROW(write_skip(m, 1, {1, 1, std::string(max_reason_size + 1, 'r')}), fabric::error);
  EXPECT_THROW(write_goodbye(m, 0), fabric::error);
  EXPECT_THROW(write_goodbye_to(m, "rid", 0), fabric::error);

  EXPECT_THROW(write_welcome(m, "rid", 0, a_welcome), fabric::error);
  welcome_fields w = a_welcome;
  w.receiver_inc = 0;
  EXPECT_THROW(write_welcome(m, "rid", 1, w), fabric::error);
  w = a_welcome;
  w.heartbeat_ms = max_heartbeat_ms + 1;
  EXPECT_THROW(write_welcome(m, "rid", 1, w), fabric::error);
  EXPECT_THROW(write_ack(m, "rid", 0, 1, 1), fabric::error);
  const std::uint64_t zero[] = {0};
  const std::uint64_t above[] = {1, 6};
  EXPECT_THROW(write_ack(m, "rid", 1, 5, 1, zero), fabric::error);
  EXPECT_THROW(write_ack(m, "rid", 1, 5, 1, above), fabric::error);
  const std::uint64_t repeated[] = {2, 2};
  const std::uint64_t descending[] = {3, 2};
  EXPECT_THROW(write_ack(m, "rid", 1, 5, 1, repeated), fabric::error);
  EXPECT_THROW(write_ack(m, "rid", 1, 5, 1, descending), fabric::error);
  const std::vector<std::uint64_t> too_many(max_entries + 1, 1);
  EXPECT_THROW(write_ack(m, "rid", 1, 5, 1, too_many), fabric::error);
  EXPECT_THROW(write_nack(m, "rid", 0, 1), fabric::error);
  EXPECT_THROW(write_nack(m, "rid", 1, 0), fabric::error);
  for (const char* code : {"", "Upper", "has space", "digit1", "under_score",
                           "abcdefghijklmnopqrstuvwxyzabcdefg"}) {
    EXPECT_THROW(write_refuse(m, "rid", 1, {code, ""}), fabric::error) << code;
  }
  EXPECT_THROW(write_refuse(m, "rid", 1, {"malformed", std::string(max_reason_size + 1, 'r')}),
               fabric::error);
  EXPECT_THROW(write_refuse(m, "rid", 0, {"malformed", ""}), fabric::error);
  EXPECT_THROW(write_refuse(m, "rid", 1, {"version", "FRC01"}), fabric::error);
}

TEST(Frc, EveryFaultMapsToItsErrorCodeAndHasADescription) {
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

enum class at : bool { receiver, sender };

struct bad_input {
  std::string name;
  at where;
  frames input;  // at the receiver, frame 0 is the routing id
  fault expected;
};

const std::string L = u32(7);
const std::string long_name(max_name_size + 1, 'n');

// A valid HELLO at the receiver with frame `i` (counted from the routing id) replaced.
frames hello_with(std::size_t i, std::string value) {
  frames f{"p", "FRC01", "\x01", L, "orders", "svc-a", u64(0), u64(9), u64(3), u64(5), u32(1000)};
  f[i] = std::move(value);
  return f;
}

frames without_routing_id(frames f) {
  f.erase(f.begin());
  return f;
}

frames welcome_with(std::size_t i, std::string value) {
  frames f{"FRC01", "\x11", L, u64(9), u64(4), u32(64), u32(2500), u32(1 << 20)};
  f[i] = std::move(value);
  return f;
}

frames data_entries(std::uint64_t first, std::size_t n) {
  frames f{"p", "FRC01", "\x02", L, u64(first), std::string(4 * n, '\0')};
  for (std::size_t i = 0; i < n; ++i) f.push_back("b");
  return f;
}

frames ack_expired(std::uint64_t taken, std::size_t n) {
  frames f{"FRC01", "\x12", L, u64(taken), u32(1)};
  for (std::size_t i = 0; i < n; ++i) f.push_back(u64(1));
  return f;
}

std::vector<bad_input> bad_inputs() {
  const auto R = at::receiver;
  const auto S = at::sender;
  return {
      {"NoFramesAtTheReceiver", R, {}, fault::no_routing_id},
      {"OnlyTheRoutingId", R, {"p"}, fault::no_header},
      {"NoFramesAtTheSender", S, {}, fault::no_header},
      {"GarbageHeader", R, {"p", "MDPW01", "\x04"}, fault::unknown_header},
      {"EmptyHeader", R, {"p", "", "\x04"}, fault::unknown_header},
      {"LowercaseHeader", S, {"frc01", "\x04"}, fault::unknown_header},
      {"HeaderOfAnotherVersion", R, {"p", "FRC02", "\x04"}, fault::unknown_version},
      {"ShortFrcHeader", S, {"FRC0", "\x04"}, fault::unknown_version},
      {"BareFrcHeader", R, {"p", "FRC"}, fault::unknown_version},
      {"HeaderWithTrailingNul", R, {"p", "FRC01\0"s, "\x04"}, fault::unknown_version},
      {"NoCommandFrame", R, {"p", "FRC01"}, fault::bad_command},
      {"EmptyCommandFrame", R, {"p", "FRC01", ""}, fault::bad_command},
      {"TwoByteCommand", R, {"p", "FRC01", "\x04\x04"}, fault::bad_command},
      {"CommandZero", R, {"p", "FRC01", "\0"s}, fault::bad_command},
      {"CommandSix", S, {"FRC01", "\x06"}, fault::bad_command},
      {"CommandSixteen", S, {"FRC01", "\x10"}, fault::bad_command},
      {"CommandTwentyOne", S, {"FRC01", "\x15"}, fault::bad_command},
      {"CommandHighBit", R, {"p", "FRC01", "\xff"}, fault::bad_command},
      // HELLO
      {"HelloTruncated", R, {"p", "FRC01", "\x01", L, "orders", "svc-a", u64(0), u64(9), u64(3),
                             u64(5)}, fault::truncated},
      {"HelloExtraFrame", R, join(hello_with(1, "FRC01"), {""}), fault::extra_frames},
      {"HelloLinkOfThreeOctets", R, hello_with(3, "\0\0\x07"s), fault::bad_width},
      {"HelloLinkOfFiveOctets", R, hello_with(3, "\0\0\0\0\x07"s), fault::bad_width},
      {"HelloZeroLink", R, hello_with(3, u32(0)), fault::zero_link},
      {"HelloEmptyStream", R, hello_with(4, ""), fault::bad_stream},
      {"HelloStreamOf256Octets", R, hello_with(4, long_name), fault::bad_stream},
      {"HelloEmptySender", R, hello_with(5, ""), fault::bad_sender},
      {"HelloSenderOf256Octets", R, hello_with(5, long_name), fault::bad_sender},
      {"HelloSeenIncarnationOfSevenOctets", R, hello_with(6, "1234567"), fault::bad_width},
      {"HelloSenderIncarnationOfNineOctets", R, hello_with(7, "123456789"), fault::bad_width},
      {"HelloZeroSenderIncarnation", R, hello_with(7, u64(0)), fault::zero_incarnation},
      {"HelloAckedOfFourOctets", R, hello_with(8, u32(3)), fault::bad_width},
      {"HelloLastOfFourOctets", R, hello_with(9, u32(5)), fault::bad_width},
      {"HelloLastBelowAcked", R, hello_with(9, u64(2)), fault::last_below_acked},
      {"HelloHeartbeatOfEightOctets", R, hello_with(10, u64(1000)), fault::bad_width},
      {"HelloZeroHeartbeat", R, hello_with(10, u32(0)), fault::bad_heartbeat},
      {"HelloHeartbeatAboveAnHour", R, hello_with(10, u32(max_heartbeat_ms + 1)),
       fault::bad_heartbeat},
      // DATA
      {"DataWithoutEntries", R, data_entries(1, 0), fault::truncated},
      {"DataWithoutFirstSeq", R, {"p", "FRC01", "\x02", L}, fault::truncated},
      {"DataTtlsWithoutBody", R, {"p", "FRC01", "\x02", L, u64(1), u32(0)}, fault::truncated},
      {"DataTtlsForFewerBodies", R, join(data_entries(1, 2), {"b"}), fault::bad_width},
      {"DataTtlsForMoreBodies", R, {"p", "FRC01", "\x02", L, u64(1), u64(0), "b"}, fault::bad_width},
      {"Data1025Entries", R, data_entries(1, max_entries + 1), fault::too_many_entries},
      {"DataZeroLink", R, {"p", "FRC01", "\x02", u32(0), u64(1), u32(0), "b"}, fault::zero_link},
      {"DataFirstSeqOfSevenOctets", R, {"p", "FRC01", "\x02", L, "1234567", u32(0), "b"},
       fault::bad_width},
      {"DataZeroFirstSeq", R, data_entries(0, 1), fault::zero_sequence},
      {"DataPastTheLastSequence", R, data_entries(max_u64, 2), fault::sequence_overflow},
      {"DataTtlsOfFiveOctets", R, {"p", "FRC01", "\x02", L, u64(1), "12345", "b"}, fault::bad_width},
      {"DataTtlsOfNoOctets", R, {"p", "FRC01", "\x02", L, u64(1), "", "b"}, fault::bad_width},
      // SKIP
      {"SkipTruncated", R, {"p", "FRC01", "\x03", L, u64(1), u64(2)}, fault::truncated},
      {"SkipExtraFrame", R, {"p", "FRC01", "\x03", L, u64(1), u64(2), "", ""},
       fault::extra_frames},
      {"SkipZeroLink", R, {"p", "FRC01", "\x03", u32(0), u64(1), u64(2), ""}, fault::zero_link},
      {"SkipFirstOfFourOctets", R, {"p", "FRC01", "\x03", L, u32(1), u64(2), ""},
       fault::bad_width},
      {"SkipZeroFirst", R, {"p", "FRC01", "\x03", L, u64(0), u64(2), ""}, fault::zero_sequence},
      {"SkipLastOfFourOctets", R, {"p", "FRC01", "\x03", L, u64(1), u32(2), ""},
       fault::bad_width},
      {"SkipLastBelowFirst", R, {"p", "FRC01", "\x03", L, u64(3), u64(2), ""},
       fault::last_below_first},
      {"SkipReasonOf256Octets", R,
       {"p", "FRC01", "\x03", L, u64(1), u64(2), std::string(max_reason_size + 1, 'r')},
       fault::reason_too_long},
      // HEARTBEAT and GOODBYE
      {"HeartbeatWithAFrame", R, {"p", "FRC01", "\x04", "x"}, fault::extra_frames},
      {"HeartbeatWithAnEmptyFrame", S, {"FRC01", "\x04", ""}, fault::extra_frames},
      {"GoodbyeWithTwoFrames", R, {"p", "FRC01", "\x05", L, L}, fault::extra_frames},
      {"GoodbyeWithZeroLink", S, {"FRC01", "\x05", u32(0)}, fault::zero_link},
      {"GoodbyeLinkOfTwoOctets", R, {"p", "FRC01", "\x05", "\0\x07"s}, fault::bad_width},
      {"GoodbyeWithAnEmptyFrame", R, {"p", "FRC01", "\x05", ""}, fault::bad_width},
      // WELCOME
      {"WelcomeTruncated", S, {"FRC01", "\x11", L, u64(9), u64(4), u32(64), u32(2500)},
       fault::truncated},
      {"WelcomeExtraFrame", S, join(welcome_with(0, "FRC01"), {""}), fault::extra_frames},
      {"WelcomeZeroLink", S, welcome_with(2, u32(0)), fault::zero_link},
      {"WelcomeIncarnationOfFourOctets", S, welcome_with(3, u32(9)), fault::bad_width},
      {"WelcomeZeroIncarnation", S, welcome_with(3, u64(0)), fault::zero_incarnation},
      {"WelcomeTakenOfFourOctets", S, welcome_with(4, u32(4)), fault::bad_width},
      {"WelcomeCreditOfEightOctets", S, welcome_with(5, u64(64)), fault::bad_width},
      {"WelcomeZeroHeartbeat", S, welcome_with(6, u32(0)), fault::bad_heartbeat},
      {"WelcomeHeartbeatAboveAnHour", S, welcome_with(6, u32(max_heartbeat_ms + 1)),
       fault::bad_heartbeat},
      {"WelcomeMaxMessageOfEightOctets", S, welcome_with(7, u64(1)), fault::bad_width},
      // ACK
      {"AckWithoutCredit", S, {"FRC01", "\x12", L, u64(4)}, fault::truncated},
      {"AckZeroLink", S, {"FRC01", "\x12", u32(0), u64(4), u32(1)}, fault::zero_link},
      {"AckTakenOfFourOctets", S, {"FRC01", "\x12", L, u32(4), u32(1)}, fault::bad_width},
      {"AckCreditOfEightOctets", S, {"FRC01", "\x12", L, u64(4), u64(1)}, fault::bad_width},
      {"Ack1025Expired", S, ack_expired(10, max_entries + 1), fault::too_many_entries},
      {"AckExpiredOfFourOctets", S, join(ack_expired(10, 1), {u32(2)}), fault::bad_width},
      {"AckZeroExpired", S, join(ack_expired(10, 1), {u64(0)}), fault::bad_expired_seq},
      {"AckExpiredAboveTaken", S, join(ack_expired(10, 1), {u64(11)}), fault::bad_expired_seq},
      {"AckExpiredWithNothingTaken", S, ack_expired(0, 1), fault::bad_expired_seq},
      {"AckExpiredRepeated", S, join(ack_expired(10, 1), {u64(3), u64(3)}), fault::bad_expired_seq},
      {"AckExpiredDescending", S, join(ack_expired(10, 1), {u64(5), u64(4)}), fault::bad_expired_seq},
      // NACK
      {"NackTruncated", S, {"FRC01", "\x13", L}, fault::truncated},
      {"NackExtraFrame", S, {"FRC01", "\x13", L, u64(1), ""}, fault::extra_frames},
      {"NackZeroLink", S, {"FRC01", "\x13", u32(0), u64(1)}, fault::zero_link},
      {"NackSeqOfFourOctets", S, {"FRC01", "\x13", L, u32(1)}, fault::bad_width},
      {"NackZeroSeq", S, {"FRC01", "\x13", L, u64(0)}, fault::zero_sequence},
      // REFUSE
      {"RefuseTruncated", S, {"FRC01", "\x14", L, "malformed"}, fault::truncated},
      {"RefuseExtraFrame", S, {"FRC01", "\x14", L, "malformed", "", ""}, fault::extra_frames},
      {"RefuseLinkOfTwoOctets", S, {"FRC01", "\x14", "\0\x07"s, "malformed", ""},
       fault::bad_width},
      {"RefuseEmptyCode", S, {"FRC01", "\x14", L, "", ""}, fault::bad_code},
      {"RefuseCodeOf33Octets", S, {"FRC01", "\x14", L, std::string(33, 'a'), ""}, fault::bad_code},
      {"RefuseUppercaseCode", S, {"FRC01", "\x14", L, "Malformed", ""}, fault::bad_code},
      {"RefuseCodeWithADigit", S, {"FRC01", "\x14", L, "code1", ""}, fault::bad_code},
      {"RefuseCodeWithAnUnderscore", S, {"FRC01", "\x14", L, "too_many", ""}, fault::bad_code},
      {"RefuseReasonOf256Octets", S,
       {"FRC01", "\x14", L, "malformed", std::string(max_reason_size + 1, 'r')},
       fault::reason_too_long},
      {"RefuseZeroLinkWithAnotherCode", S, {"FRC01", "\x14", u32(0), "malformed", ""},
       fault::zero_link},
      {"RefuseVersionOnALink", S, {"FRC01", "\x14", L, "version", "FRC01"},
       fault::version_on_link},
      // Well-formed, the other way
      {"WelcomeAtTheReceiver", R, join({"p"}, welcome_with(0, "FRC01")), fault::wrong_direction},
      {"AckAtTheReceiver", R, {"p", "FRC01", "\x12", L, u64(4), u32(1)}, fault::wrong_direction},
      {"NackAtTheReceiver", R, {"p", "FRC01", "\x13", L, u64(1)}, fault::wrong_direction},
      {"RefuseAtTheReceiver", R, {"p", "FRC01", "\x14", u32(0), "version", "FRC01"},
       fault::wrong_direction},
      {"HelloAtTheSender", S, without_routing_id(hello_with(1, "FRC01")), fault::wrong_direction},
      {"DataAtTheSender", S, {"FRC01", "\x02", L, u64(1), u32(0), "b"}, fault::wrong_direction},
      {"SkipAtTheSender", S, {"FRC01", "\x03", L, u64(1), u64(1), ""}, fault::wrong_direction},
  };
}

parsed parse_on(at where, const message& m) {
  return where == at::receiver ? parse_at_receiver(m) : parse_at_sender(m);
}

class FrcRejects : public ::testing::TestWithParam<bad_input> {};

TEST_P(FrcRejects, EachMalformedMessageWithItsOwnFault) {
  const bad_input& c = GetParam();
  const message m = make(c.input);
  const parsed p = parse_on(c.where, m);
  EXPECT_EQ(p.error, c.expected) << c.name << ": got '" << describe(p.error) << "', expected '"
                                 << describe(c.expected) << "'";
  EXPECT_FALSE(p);
  if (c.where == at::receiver && !c.input.empty()) {
    EXPECT_EQ(p.peer, c.input[0]) << "the receiver can still answer or count by peer";
  }
}

INSTANTIATE_TEST_SUITE_P(Table, FrcRejects, ::testing::ValuesIn(bad_inputs()),
                         [](const ::testing::TestParamInfo<bad_input>& param_info) {
                           return param_info.param.name;
                         });

TEST(Frc, TheMalformedTableCoversEveryFault) {
  std::set<fault> seen;
  for (const bad_input& c : bad_inputs()) seen.insert(c.expected);
  for (int i = static_cast<int>(fault::no_routing_id);
       i <= static_cast<int>(fault::reason_too_long); ++i) {
    EXPECT_TRUE(seen.count(static_cast<fault>(i)) == 1) << describe(static_cast<fault>(i));
  }
}

// ---------------------------------------------------------------------------------------------
// Random frames and truncations.

// What the builders write for the values `p` holds, in the form its parser received it.
frames rebuilt(const parsed& p, at where) {
  message out;
  const std::string_view peer = "peer";
  switch (p.what) {
    case command::hello: write_hello(out, p.link, p.hello); break;
    case command::data: {
      data_writer w(out, p.link, p.data.first_seq());
      for (const data_entry e : p.data) w.add(e.ttl_ms, e.body);
      w.finish();
      break;
    }
    case command::skip: write_skip(out, p.link, p.skip); break;
    case command::heartbeat:
      if (where == at::receiver) write_heartbeat(out);
      else write_heartbeat_to(out, peer);
      break;
    case command::goodbye:
      if (where == at::receiver) {
        if (p.link == 0) write_goodbye(out);
        else write_goodbye(out, p.link);
      } else if (p.link == 0) {
        write_goodbye_to(out, peer);
      } else {
        write_goodbye_to(out, peer, p.link);
      }
      break;
    case command::welcome: write_welcome(out, peer, p.link, p.welcome); break;
    case command::ack: {
      const std::vector<std::uint64_t> expired(p.ack.expired.begin(), p.ack.expired.end());
      write_ack(out, peer, p.link, p.ack.taken, p.ack.credit, expired);
      break;
    }
    case command::nack: write_nack(out, peer, p.link, p.expected_seq); break;
    case command::refuse: write_refuse(out, peer, p.link, p.refuse); break;
  }
  frames f = frames_of(out);
  if (where == at::receiver) f.insert(f.begin(), std::string(p.peer));
  else f.erase(f.begin());
  return f;
}

// Parses `f` on one side and checks the answer: a fault, or a message the builders would write
// byte for byte, with every view inside the message. Returns whether it was accepted.
bool check(const frames& f, at where) {
  const message m = make(f);
  const parsed p = parse_on(where, m);
  if (!p) return false;
  frames again;
  EXPECT_NO_THROW(again = rebuilt(p, where)) << "accepted what a builder refuses";
  EXPECT_EQ(again, f) << "accepted what no builder writes";
  if (p.what == command::data) {
    EXPECT_GE(p.data.frames().data(), m.frames().data());
    EXPECT_LE(p.data.frames().data() + p.data.frames().size(), m.frames().data() + m.size());
  }
  return true;
}

std::vector<std::pair<frames, at>> valid_messages() {
  std::vector<std::pair<frames, at>> out;
  message m;
  const auto add = [&](at where) {
    out.emplace_back(frames_of(m), where);
    if (where == at::receiver) out.back().first.insert(out.back().first.begin(), "p");
    else out.back().first.erase(out.back().first.begin());
  };
  write_hello(m, 7, a_hello);
  add(at::receiver);
  {
    data_writer w(m, 7, 3);
    w.add(0, "a");
    w.add(5, "");
    w.add(9, "ccc");
    w.finish();
  }
  add(at::receiver);
  write_skip(m, 7, {3, 4, "gone"});
  add(at::receiver);
  write_heartbeat(m);
  add(at::receiver);
  write_goodbye(m, 7);
  add(at::receiver);
  write_welcome(m, "p", 7, a_welcome);
  add(at::sender);
  const std::uint64_t expired[] = {1, 3};
  write_ack(m, "p", 7, 4, 16, expired);
  add(at::sender);
  write_nack(m, "p", 7, 5);
  add(at::sender);
  write_refuse(m, "p", 7, {"duplicate-sender", "two of us"});
  add(at::sender);
  write_version_refusal(m, "p");
  add(at::sender);
  return out;
}

TEST(Frc, TruncationsAndRandomFramesNeverCrashNorPassUnlessCanonical) {
  const auto valid = valid_messages();
  // Every prefix of every valid message, on both sides.
  for (const auto& [f, where] : valid) {
    for (std::size_t n = 0; n <= f.size(); ++n) {
      const frames prefix(f.begin(), f.begin() + static_cast<std::ptrdiff_t>(n));
      (void)check(prefix, at::receiver);
      (void)check(prefix, at::sender);
    }
  }

  std::mt19937_64 rng(20261204);
  const std::vector<std::string> atoms = {
      "", "FRC01", "FRC02", "\x01", "\x02", "\x03", "\x04", "\x05", "\x11", "\x12", "\x13",
      "\x14", u32(0), u32(1), u32(7), u32(0xffffffff), u32(max_heartbeat_ms),
      u32(max_heartbeat_ms + 1), u64(0), u64(1), u64(4), u64(max_u64), "version", "malformed",
      "orders", long_name, "\0"s, "1234567"};
  const auto random_frame = [&] {
    return atoms[std::uniform_int_distribution<std::size_t>(0, atoms.size() - 1)(rng)];
  };
  const auto coin = [&](int in) { return std::uniform_int_distribution<int>(0, in - 1)(rng) == 0; };
  constexpr int iterations = 20000;
  int accepted = 0;
  for (int i = 0; i < iterations; ++i) {
    frames f;
    if (coin(3)) {
      // Pure soup, led by the header more often than not.
      f.resize(std::uniform_int_distribution<std::size_t>(0, 12)(rng));
      for (auto& s : f) s = random_frame();
      if (f.size() > 2 && coin(2)) f[1] = "FRC01";
      if (!f.empty() && coin(2)) f[0] = "FRC01";
    } else {
      // A valid message with a few mutations.
      f = valid[std::uniform_int_distribution<std::size_t>(0, valid.size() - 1)(rng)].first;
      const int mutations = std::uniform_int_distribution<int>(1, 3)(rng);
      for (int k = 0; k < mutations && !f.empty(); ++k) {
        const std::size_t at_frame = std::uniform_int_distribution<std::size_t>(0, f.size() - 1)(rng);
        switch (std::uniform_int_distribution<int>(0, 5)(rng)) {
          case 0: f.resize(at_frame); break;                            // truncate
          case 1: f.erase(f.begin() + static_cast<std::ptrdiff_t>(at_frame)); break;
          case 2: f.insert(f.begin() + static_cast<std::ptrdiff_t>(at_frame), random_frame()); break;
          case 3: f[at_frame] = random_frame(); break;
          case 4:
            if (!f[at_frame].empty()) {
              const std::size_t b = std::uniform_int_distribution<std::size_t>(0, f[at_frame].size() - 1)(rng);
              f[at_frame][b] = static_cast<char>(rng());
            }
            break;
          default:
            if (coin(2) && !f[at_frame].empty()) f[at_frame].pop_back();
            else f[at_frame].push_back(static_cast<char>(rng()));
            break;
        }
      }
    }
    accepted += check(f, at::receiver) ? 1 : 0;
    accepted += check(f, at::sender) ? 1 : 0;
    if (HasFailure()) {
      ADD_FAILURE() << "iteration " << i;
      return;
    }
  }
  // Mutations that keep a message well-formed (a byte changed in a body, a name, a count) must
  // have been tried too, or the canonical check above proved little.
  EXPECT_GT(accepted, iterations / 20);
  EXPECT_LT(accepted, iterations);
}

}  // namespace
}  // namespace fabric::frc
