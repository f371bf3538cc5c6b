// Tests the FRQ/1 codec: exact wire layouts, round trips of every builder through the parser of
// the socket that receives it, the bounds of the grammar at their edge and one past it, a table of
// malformed messages each with its own fault, zero-copy views and bodies, and random frames and
// truncations that must never crash and never be accepted unless the builders would write them.
#include "reliability/frq.hpp"

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

namespace fabric::frq {
namespace {

using namespace std::string_literals;
using frames = std::vector<std::string>;

constexpr std::uint64_t max_u64 = std::numeric_limits<std::uint64_t>::max();
constexpr std::uint32_t max_u32 = std::numeric_limits<std::uint32_t>::max();

message make(const frames& parts) { return testing::message_of(parts); }
frames frames_of(const message& m) { return testing::to_strings(m); }

using testing::join;
using testing::u32;
using testing::u64;

// The parsers' views must not outlive their message: a temporary does not compile.
template <class M>
concept producer_parses = requires(M&& m) { parse_at_producer(std::forward<M>(m)); };
template <class M>
concept worker_parses = requires(M&& m) { parse_at_worker(std::forward<M>(m)); };
static_assert(producer_parses<const message&> && !producer_parses<message&&>);
static_assert(worker_parses<message&> && !worker_parses<message>);

constexpr std::uint64_t inc = 0x0102030405060708;
constexpr std::uint64_t winc = 0x1112131415161718;

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

TEST(Frq, BuildersProduceTheExactFramesOfTheSpec) {
  message m;
  write_hello(m, {"worker-1", winc, "images", 16, 2500});
  EXPECT_EQ(frames_of(m), (frames{"FRQ01", "\x01", "worker-1", "\x11\x12\x13\x14\x15\x16\x17\x18",
                                  "images", "\0\0\0\x10"s, "\0\0\x09\xc4"s}));
  write_capacity(m, 0);
  EXPECT_EQ(frames_of(m), (frames{"FRQ01", "\x02", u32(0)}));
  write_capacity(m, max_capacity);
  EXPECT_EQ(frames_of(m), (frames{"FRQ01", "\x02", "\0\x01\0\0"s}));
  write_result(m, inc, {42, 3}, status::done, "the answer");
  EXPECT_EQ(frames_of(m), (frames{"FRQ01", "\x03", "\x01\x02\x03\x04\x05\x06\x07\x08",
                                  "\0\0\0\0\0\0\0\x2a"s, "\0\0\0\x03"s, "\0"s, "the answer"}));
  write_result(m, inc, {42, 3}, status::failed, make_frame("disk full"));
  EXPECT_EQ(frames_of(m), (frames{"FRQ01", "\x03", u64(inc), u64(42), u32(3), "\x01", "disk full"}));
  write_result(m, inc, {1, 1}, status::rejected, "");
  EXPECT_EQ(frames_of(m), (frames{"FRQ01", "\x03", u64(inc), u64(1), u32(1), "\x02", ""}));
  write_extend(m, inc, {42, 3}, 60'000);
  EXPECT_EQ(frames_of(m), (frames{"FRQ01", "\x04", u64(inc), u64(42), u32(3), "\0\0\xea\x60"s}));
  write_worker_heartbeat(m);
  EXPECT_EQ(frames_of(m), (frames{"FRQ01", "\x05"}));
  write_bye(m);
  EXPECT_EQ(frames_of(m), (frames{"FRQ01", "\x06"}));

  write_welcome(m, "peer", inc, 1000);
  EXPECT_EQ(frames_of(m), (frames{"peer", "FRQ01", "\x11", u64(inc), "\0\0\x03\xe8"s}));
  write_task(m, "peer", inc, {{42, 3}, 7, 30'000, 1'700'000'000'000'000'000}, "work");
  EXPECT_EQ(frames_of(m), (frames{"peer", "FRQ01", "\x12", u64(inc), u64(42), u32(3), "\x07",
                                  "\0\0\x75\x30"s, u64(1'700'000'000'000'000'000), "work"}));
  write_task(m, "peer", inc, {{1, 1}, 0, 1, 0}, make_frame(""));
  EXPECT_EQ(frames_of(m), (frames{"peer", "FRQ01", "\x12", u64(inc), u64(1), u32(1), "\0"s, u32(1),
                                  u64(0), ""}));
  write_recorded(m, "peer", inc, {42, 3}, verdict::recorded);
  EXPECT_EQ(frames_of(m), (frames{"peer", "FRQ01", "\x13", u64(inc), u64(42), u32(3), "\0"s}));
  write_recorded(m, "peer", inc, {42, 3}, verdict::stale);
  EXPECT_EQ(frames_of(m), (frames{"peer", "FRQ01", "\x13", u64(inc), u64(42), u32(3), "\x01"}));
  write_recorded(m, "peer", inc, {42, 3}, verdict::unknown);
  EXPECT_EQ(frames_of(m), (frames{"peer", "FRQ01", "\x13", u64(inc), u64(42), u32(3), "\x02"}));
  write_cancel(m, "peer", inc, {42, 3});
  EXPECT_EQ(frames_of(m), (frames{"peer", "FRQ01", "\x14", u64(inc), u64(42), u32(3)}));
  write_producer_heartbeat(m, "peer", inc);
  EXPECT_EQ(frames_of(m), (frames{"peer", "FRQ01", "\x15", u64(inc)}));
  write_refuse(m, "peer", {"unknown-queue", "no queue 'images' here"});
  EXPECT_EQ(frames_of(m),
            (frames{"peer", "FRQ01", "\x16", "unknown-queue", "no queue 'images' here"}));
  write_version_refusal(m, "peer");
  EXPECT_EQ(frames_of(m), (frames{"peer", "FRQ01", "\x16", "version", "FRQ01"}));
}

TEST(Frq, BuildersReuseTheMessagesFrameCapacity) {
  message m;
  write_task(m, "peer", inc, {{1, 1}, 0, 1, 0}, "x");
  const frame* storage = m.frames().data();
  write_producer_heartbeat(m, "peer", inc);
  write_bye(m);
  write_hello(m, {"w", winc, "q", 1, 1});
  EXPECT_EQ(m.frames().data(), storage) << "a smaller message reuses the frame vector";
}

TEST(Frq, HelloRoundTripsAtTheProducerIntoViewsOfItsFrames) {
  const std::string longest_name(max_name_size, 'w');
  const std::string longest_queue(max_queue_size, 'q');
  const std::string odd_queue = "q\0\xff"s;  // only the first octet is barred from 0x00
  const std::string nul_name = "\0"s;        // a worker name may be any octets
  for (const hello_fields& h : {hello_fields{"w", 1, "q", 1, 1},
                                hello_fields{longest_name, max_u64, longest_queue, max_capacity,
                                             max_heartbeat_ms},
                                hello_fields{nul_name, winc, odd_queue, 16, 2500}}) {
    message built;
    write_hello(built, h);
    const message m = routed(std::move(built), "rid");
    const parsed p = parse_at_producer(m);
    ASSERT_TRUE(p) << describe(p.error);
    EXPECT_EQ(p.what, command::hello);
    EXPECT_EQ(p.peer, "rid");
    EXPECT_EQ(p.peer.data(), m[0].data());
    EXPECT_EQ(p.header, header);
    EXPECT_EQ(p.header.data(), m[1].data());
    EXPECT_EQ(p.hello, h);
    // Views, not copies.
    EXPECT_EQ(p.hello.worker_name.data(), m[3].data());
    EXPECT_EQ(p.hello.queue.data(), m[5].data());
  }
}

TEST(Frq, CapacityHeartbeatAndByeRoundTripAtTheProducer) {
  for (const std::uint32_t window : {std::uint32_t{0}, std::uint32_t{1}, max_capacity}) {
    message built;
    write_capacity(built, window);
    const message m = routed(std::move(built));
    const parsed p = parse_at_producer(m);
    ASSERT_TRUE(p) << describe(p.error);
    EXPECT_EQ(p.what, command::capacity);
    EXPECT_EQ(p.capacity, window);
  }
  message built;
  write_worker_heartbeat(built);
  const message beat = routed(std::move(built), "w1");
  const parsed b = parse_at_producer(beat);
  ASSERT_TRUE(b) << describe(b.error);
  EXPECT_EQ(b.what, command::worker_heartbeat);
  EXPECT_EQ(b.peer, "w1");
  write_bye(built);
  const message bye = routed(std::move(built), "w1");
  const parsed y = parse_at_producer(bye);
  ASSERT_TRUE(y) << describe(y.error);
  EXPECT_EQ(y.what, command::bye);
}

TEST(Frq, ResultRoundTripsEveryStatus) {
  const std::string big(100'000, 'r');  // a done result is bounded by the socket, not the codec
  const std::string longest_reason(max_reason_size, 'x');
  struct one {
    attempt_key key;
    status s;
    std::string body;
  };
  for (const one& r : {one{{1, 1}, status::done, ""}, one{{max_u64, max_u32}, status::done, big},
                       one{{7, 2}, status::done, "a\0b"s}, one{{7, 2}, status::failed, ""},
                       one{{7, 2}, status::failed, longest_reason},
                       one{{9, 5}, status::rejected, longest_reason}}) {
    message built;
    write_result(built, max_u64, r.key, r.s, r.body);
    const message m = routed(std::move(built));
    const parsed p = parse_at_producer(m);
    ASSERT_TRUE(p) << describe(p.error);
    EXPECT_EQ(p.what, command::result);
    EXPECT_EQ(p.producer_inc, max_u64);
    EXPECT_EQ(p.key, r.key);
    EXPECT_EQ(p.status, r.s);
    EXPECT_EQ(p.body, r.body);
    EXPECT_EQ(p.body.data(), m[7].data());
    EXPECT_EQ(p.body_frame, &m[7]);
  }
}

TEST(Frq, ResultAndTaskMoveTheirBodyFrameInPlace) {
  frame result = make_frame(std::string(64 * 1024, 'r'));
  const void* result_bytes = result.data();
  message built;
  write_result(built, inc, {3, 1}, status::done, std::move(result));
  const message r = routed(std::move(built));
  const parsed p = parse_at_producer(r);
  ASSERT_TRUE(p) << describe(p.error);
  EXPECT_EQ(p.body.data(), result_bytes);
  EXPECT_EQ(p.body.size(), 64U * 1024);

  // The producer shares the journal's bytes into the TASK (zmq copy), not a byte copied.
  frame kept = make_frame(std::string(64 * 1024, 't'));
  frame shared;
  shared.copy(kept);
  write_task(built, "rid", inc, {{3, 1}, 2, 1000, 5}, std::move(shared));
  EXPECT_EQ(built[9].data(), kept.data());
  const message t = delivered(std::move(built));
  const parsed q = parse_at_worker(t);
  ASSERT_TRUE(q) << describe(q.error);
  EXPECT_EQ(q.body.data(), kept.data());
  EXPECT_EQ(q.body_frame, &t[8]);
}

TEST(Frq, ExtendRoundTripsAtTheProducer) {
  for (const std::uint32_t ms : {std::uint32_t{1}, max_extend_ms}) {
    message built;
    write_extend(built, inc, {max_u64, 1}, ms);
    const message m = routed(std::move(built));
    const parsed p = parse_at_producer(m);
    ASSERT_TRUE(p) << describe(p.error);
    EXPECT_EQ(p.what, command::extend);
    EXPECT_EQ(p.producer_inc, inc);
    EXPECT_EQ(p.key, (attempt_key{max_u64, 1}));
    EXPECT_EQ(p.extend_ms, ms);
  }
}

TEST(Frq, TaskRoundTripsAtTheWorkerIntoViewsOfItsFrames) {
  for (std::uint8_t priority = 0; priority < levels; ++priority) {
    for (const std::uint32_t deadline : {std::uint32_t{1}, max_deadline_ms}) {
      const task_fields t{{max_u64 - priority, max_u32}, priority, deadline, max_u64};
      message built;
      write_task(built, "rid", inc, t, "a\0b"s);
      const message m = delivered(std::move(built));
      const parsed p = parse_at_worker(m);
      ASSERT_TRUE(p) << describe(p.error);
      EXPECT_EQ(p.what, command::task);
      EXPECT_TRUE(p.peer.empty());
      EXPECT_EQ(p.header.data(), m[0].data());
      EXPECT_EQ(p.producer_inc, inc);
      EXPECT_EQ(p.task, t);
      EXPECT_EQ(p.key, t.key);
      EXPECT_EQ(p.body, "a\0b"s);
      EXPECT_EQ(p.body.data(), m[8].data());
      EXPECT_EQ(p.body_frame, &m[8]);
    }
  }
}

TEST(Frq, WelcomeRecordedCancelHeartbeatAndRefuseRoundTripAtTheWorker) {
  for (const std::uint32_t ms : {std::uint32_t{1}, max_heartbeat_ms}) {
    message built;
    write_welcome(built, "rid", max_u64, ms);
    const message m = delivered(std::move(built));
    const parsed p = parse_at_worker(m);
    ASSERT_TRUE(p) << describe(p.error);
    EXPECT_EQ(p.what, command::welcome);
    EXPECT_EQ(p.producer_inc, max_u64);
    EXPECT_EQ(p.heartbeat_ms, ms);
  }
  for (const verdict v : {verdict::recorded, verdict::stale, verdict::unknown}) {
    message built;
    write_recorded(built, "rid", inc, {5, 2}, v);
    const message m = delivered(std::move(built));
    const parsed p = parse_at_worker(m);
    ASSERT_TRUE(p) << describe(p.error);
    EXPECT_EQ(p.what, command::recorded);
    EXPECT_EQ(p.producer_inc, inc);
    EXPECT_EQ(p.key, (attempt_key{5, 2}));
    EXPECT_EQ(p.verdict, v);
  }
  {
    message built;
    write_cancel(built, "rid", inc, {1, max_u32});
    const message m = delivered(std::move(built));
    const parsed p = parse_at_worker(m);
    ASSERT_TRUE(p) << describe(p.error);
    EXPECT_EQ(p.what, command::cancel);
    EXPECT_EQ(p.key, (attempt_key{1, max_u32}));
    write_producer_heartbeat(built, "rid", 1);
    const message h = delivered(std::move(built));
    const parsed q = parse_at_worker(h);
    ASSERT_TRUE(q) << describe(q.error);
    EXPECT_EQ(q.what, command::producer_heartbeat);
    EXPECT_EQ(q.producer_inc, 1U);
  }
  const std::string longest_reason(max_reason_size, 'r');
  const std::string longest_code(max_code_size, 'z');
  for (const refuse_fields& f : {refuse_fields{"not-welcome", ""},
                                 refuse_fields{longest_code, longest_reason},
                                 refuse_fields{"too-many-workers", "64 workers already"}}) {
    message built;
    write_refuse(built, "rid", f);
    const message m = delivered(std::move(built));
    const parsed p = parse_at_worker(m);
    ASSERT_TRUE(p) << describe(p.error);
    EXPECT_EQ(p.what, command::refuse);
    EXPECT_EQ(p.refuse, f);
    EXPECT_EQ(p.refuse.code.data(), m[2].data());
    EXPECT_EQ(p.refuse.reason.data(), m[3].data());
  }
}

TEST(Frq, AnotherVersionIsToldApartFromGarbageAndAnsweredWithVersionRefusal) {
  const message other = make({"rid", "FRQ02", "\x01", "w", u64(winc), "q", u32(1), u32(1)});
  const parsed p = parse_at_producer(other);
  EXPECT_EQ(p.error, fault::unknown_version);
  EXPECT_EQ(code_of(p.error), make_error_code(errc::not_supported));
  EXPECT_EQ(p.peer, "rid");
  EXPECT_EQ(p.header, "FRQ02");

  message answer;
  write_version_refusal(answer, p.peer);
  const message back = delivered(std::move(answer));
  const parsed r = parse_at_worker(back);
  ASSERT_TRUE(r) << describe(r.error);
  EXPECT_EQ(r.refuse.code, version_code);
  EXPECT_EQ(r.refuse.reason, versions_spoken);

  const message garbage = make({"rid", "FRS01", "\x11"});
  EXPECT_EQ(parse_at_producer(garbage).error, fault::unknown_header);
  const message task_of_another_version = make({"FRQ99", "\x12"});
  EXPECT_EQ(parse_at_worker(task_of_another_version).error, fault::unknown_version);
}

TEST(Frq, EachCommandIsAcceptedOnlyInItsDirection) {
  message m;
  write_hello(m, {"w", winc, "q", 1, 1});
  const parsed h = parse_at_worker(m);
  EXPECT_EQ(h.error, fault::wrong_direction);
  EXPECT_EQ(h.what, command::hello);
  EXPECT_EQ(code_of(h.error), make_error_code(errc::protocol_error));

  write_task(m, "rid", inc, {{1, 1}, 0, 1, 0}, "b");
  const parsed t = parse_at_producer(m);  // the routing id stands where the ROUTER puts it
  EXPECT_EQ(t.error, fault::wrong_direction);
  EXPECT_EQ(t.what, command::task);
  EXPECT_EQ(t.peer, "rid");

  // The heartbeats of both sides differ in their command byte, so neither passes for the other.
  write_worker_heartbeat(m);
  EXPECT_EQ(parse_at_worker(m).error, fault::wrong_direction);
  write_producer_heartbeat(m, "rid", inc);
  EXPECT_EQ(parse_at_producer(m).error, fault::wrong_direction);
}

TEST(Frq, BuildersRefuseWhatTheGrammarForbids) {
  message m;
  const std::string long_name(max_name_size + 1, 'w');
  const std::string long_queue(max_queue_size + 1, 'q');
  const std::string long_reason(max_reason_size + 1, 'r');
  EXPECT_THROW(write_hello(m, {"", winc, "q", 1, 1}), fabric::error);
  EXPECT_THROW(write_hello(m, {long_name, winc, "q", 1, 1}), fabric::error);
  EXPECT_THROW(write_hello(m, {"w", 0, "q", 1, 1}), fabric::error);
  for (const std::string& bad : {""s, long_queue, "\0q"s}) {
    EXPECT_THROW(write_hello(m, {"w", winc, bad, 1, 1}), fabric::error);
  }
  EXPECT_THROW(write_hello(m, {"w", winc, "q", 0, 1}), fabric::error);
  EXPECT_THROW(write_hello(m, {"w", winc, "q", max_capacity + 1, 1}), fabric::error);
  EXPECT_THROW(write_hello(m, {"w", winc, "q", 1, 0}), fabric::error);
  EXPECT_THROW(write_hello(m, {"w", winc, "q", 1, max_heartbeat_ms + 1}), fabric::error);
  EXPECT_THROW(write_capacity(m, max_capacity + 1), fabric::error);

  EXPECT_THROW(write_result(m, 0, {1, 1}, status::done, ""), fabric::error);
  EXPECT_THROW(write_result(m, inc, {0, 1}, status::done, ""), fabric::error);
  EXPECT_THROW(write_result(m, inc, {1, 0}, status::done, make_frame("")), fabric::error);
  EXPECT_THROW(write_result(m, inc, {1, 1}, static_cast<status>(3), ""), fabric::error);
  EXPECT_THROW(write_result(m, inc, {1, 1}, status::failed, long_reason), fabric::error);
  EXPECT_THROW(write_result(m, inc, {1, 1}, status::rejected, make_frame(long_reason)),
               fabric::error);
  EXPECT_THROW(write_extend(m, 0, {1, 1}, 1), fabric::error);
  EXPECT_THROW(write_extend(m, inc, {0, 1}, 1), fabric::error);
  EXPECT_THROW(write_extend(m, inc, {1, 0}, 1), fabric::error);
  EXPECT_THROW(write_extend(m, inc, {1, 1}, 0), fabric::error);
  EXPECT_THROW(write_extend(m, inc, {1, 1}, max_extend_ms + 1), fabric::error);

  EXPECT_THROW(write_welcome(m, "rid", 0, 1), fabric::error);
  EXPECT_THROW(write_welcome(m, "rid", inc, 0), fabric::error);
  EXPECT_THROW(write_welcome(m, "rid", inc, max_heartbeat_ms + 1), fabric::error);
  EXPECT_THROW(write_task(m, "rid", 0, {{1, 1}, 0, 1, 0}, ""), fabric::error);
  EXPECT_THROW(write_task(m, "rid", inc, {{0, 1}, 0, 1, 0}, ""), fabric::error);
  EXPECT_THROW(write_task(m, "rid", inc, {{1, 0}, 0, 1, 0}, make_frame("")), fabric::error);
  EXPECT_THROW(write_task(m, "rid", inc, {{1, 1}, levels, 1, 0}, ""), fabric::error);
  EXPECT_THROW(write_task(m, "rid", inc, {{1, 1}, 0, 0, 0}, ""), fabric::error);
  EXPECT_THROW(write_task(m, "rid", inc, {{1, 1}, 0, max_deadline_ms + 1, 0}, make_frame("")),
               fabric::error);
  EXPECT_THROW(write_recorded(m, "rid", 0, {1, 1}, verdict::recorded), fabric::error);
  EXPECT_THROW(write_recorded(m, "rid", inc, {0, 1}, verdict::recorded), fabric::error);
  EXPECT_THROW(write_recorded(m, "rid", inc, {1, 0}, verdict::recorded), fabric::error);
  EXPECT_THROW(write_recorded(m, "rid", inc, {1, 1}, static_cast<verdict>(3)), fabric::error);
  EXPECT_THROW(write_cancel(m, "rid", 0, {1, 1}), fabric::error);
  EXPECT_THROW(write_cancel(m, "rid", inc, {0, 1}), fabric::error);
  EXPECT_THROW(write_cancel(m, "rid", inc, {1, 0}), fabric::error);
  EXPECT_THROW(write_producer_heartbeat(m, "rid", 0), fabric::error);
  for (const char* code : {"", "Upper", "has space", "digit1", "under_score",
                           "abcdefghijklmnopqrstuvwxyzabcdefg"}) {
    EXPECT_THROW(write_refuse(m, "rid", {code, ""}), fabric::error) << code;
  }
  EXPECT_THROW(write_refuse(m, "rid", {"malformed", long_reason}), fabric::error);
  testing::expect_error(errc::invalid_argument, [&] { write_capacity(m, max_u32); });
}

TEST(Frq, EveryFaultMapsToItsErrorCodeAndHasADescription) {
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

enum class at : std::uint8_t { producer, worker };

struct bad_input {
  std::string name;
  at where;
  frames input;  // at the producer, frame 0 is the routing id
  fault expected;
};

const std::string I = u64(inc);
const std::string W = u64(winc);
const std::string T = u64(42);
const std::string A = u32(3);
const std::string long_name(max_name_size + 1, 'w');
const std::string long_reason(max_reason_size + 1, 'r');

// A valid message with frame `i` replaced.
frames with(frames f, std::size_t i, std::string value) {
  f[i] = std::move(value);
  return f;
}

frames without_first(frames f) {
  f.erase(f.begin());
  return f;
}

// At the producer: routing id first.
const frames a_hello{"p", "FRQ01", "\x01", "w", W, "q", u32(16), u32(1000)};
const frames a_capacity{"p", "FRQ01", "\x02", u32(16)};
const frames a_result{"p", "FRQ01", "\x03", I, T, A, "\0"s, "result"};
const frames a_failure{"p", "FRQ01", "\x03", I, T, A, "\x01", "reason"};
const frames an_extend{"p", "FRQ01", "\x04", I, T, A, u32(1000)};
const frames a_worker_heartbeat{"p", "FRQ01", "\x05"};
const frames a_bye{"p", "FRQ01", "\x06"};
// At the worker: the header first.
const frames a_welcome{"FRQ01", "\x11", I, u32(1000)};
const frames a_task{"FRQ01", "\x12", I, T, A, "\x03", u32(1000), u64(5), "body"};
const frames a_recorded{"FRQ01", "\x13", I, T, A, "\0"s};
const frames a_cancel{"FRQ01", "\x14", I, T, A};
const frames a_producer_heartbeat{"FRQ01", "\x15", I};
const frames a_refuse{"FRQ01", "\x16", "malformed", ""};

std::vector<bad_input> bad_inputs() {
  const auto P = at::producer;
  const auto K = at::worker;
  return {
      // Framing, on each socket
      {"NoFramesAtTheProducer", P, {}, fault::no_routing_id},
      {"OnlyTheRoutingId", P, {"p"}, fault::no_header},
      {"NoFramesAtTheWorker", K, {}, fault::no_header},
      {"EmptyHeaderAtTheProducer", P, {"p", "", "\x01"}, fault::unknown_header},
      {"StreamHeaderAtTheProducer", P, {"p", "FRS01", "\x11"}, fault::unknown_header},
      {"LowercaseHeaderAtTheWorker", K, {"frq01", "\x11"}, fault::unknown_header},
      {"AnotherVersionAtTheProducer", P, with(a_hello, 1, "FRQ02"), fault::unknown_version},
      {"AnotherVersionAtTheWorker", K, with(a_task, 0, "FRQ02"), fault::unknown_version},
      {"ShortFrqHeader", K, with(a_welcome, 0, "FRQ0"), fault::unknown_version},
      {"HeaderWithTrailingNul", P, with(a_bye, 1, "FRQ01\0"s), fault::unknown_version},
      {"NoCommandAtTheProducer", P, {"p", "FRQ01"}, fault::bad_command},
      {"EmptyCommandFrame", P, {"p", "FRQ01", ""}, fault::bad_command},
      {"TwoByteCommand", K, {"FRQ01", "\x11\x11"}, fault::bad_command},
      {"CommandZero", P, with(a_bye, 2, "\0"s), fault::bad_command},
      {"CommandSeven", P, with(a_bye, 2, "\x07"), fault::bad_command},
      {"CommandSixteen", K, with(a_cancel, 1, "\x10"), fault::bad_command},
      {"CommandTwentyThree", K, with(a_producer_heartbeat, 1, "\x17"), fault::bad_command},
      // HELLO
      {"HelloTruncated", P, {"p", "FRQ01", "\x01", "w", W, "q", u32(16)}, fault::truncated},
      {"HelloExtraFrame", P, join(a_hello, {""}), fault::extra_frames},
      {"HelloEmptyWorkerName", P, with(a_hello, 3, ""), fault::bad_name},
      {"HelloWorkerNameOf256Octets", P, with(a_hello, 3, long_name), fault::bad_name},
      {"HelloWorkerIncOfFourOctets", P, with(a_hello, 4, u32(1)), fault::bad_width},
      {"HelloZeroWorkerInc", P, with(a_hello, 4, u64(0)), fault::zero_incarnation},
      {"HelloEmptyQueue", P, with(a_hello, 5, ""), fault::bad_queue},
      {"HelloQueueOf256Octets", P, with(a_hello, 5, std::string(256, 'q')), fault::bad_queue},
      {"HelloQueueStartingWithNul", P, with(a_hello, 5, "\0q"s), fault::bad_queue},
      {"HelloCapacityOfEightOctets", P, with(a_hello, 6, u64(16)), fault::bad_width},
      {"HelloZeroCapacity", P, with(a_hello, 6, u32(0)), fault::bad_capacity},
      {"HelloCapacityPastTheBound", P, with(a_hello, 6, u32(max_capacity + 1)),
       fault::bad_capacity},
      {"HelloHeartbeatOfTwoOctets", P, with(a_hello, 7, "\x03\xe8"), fault::bad_width},
      {"HelloZeroHeartbeat", P, with(a_hello, 7, u32(0)), fault::bad_heartbeat},
      {"HelloHeartbeatAboveAnHour", P, with(a_hello, 7, u32(max_heartbeat_ms + 1)),
       fault::bad_heartbeat},
      // CAPACITY
      {"CapacityTruncated", P, {"p", "FRQ01", "\x02"}, fault::truncated},
      {"CapacityExtraFrame", P, join(a_capacity, {u32(1)}), fault::extra_frames},
      {"CapacityOfOneOctet", P, with(a_capacity, 3, "\x10"), fault::bad_width},
      {"CapacityPastTheBound", P, with(a_capacity, 3, u32(max_capacity + 1)), fault::bad_capacity},
      // RESULT
      {"ResultTruncated", P, {"p", "FRQ01", "\x03", I, T, A, "\0"s}, fault::truncated},
      {"ResultExtraFrame", P, join(a_result, {"more"}), fault::extra_frames},
      {"ResultIncOfFourOctets", P, with(a_result, 3, u32(1)), fault::bad_width},
      {"ResultZeroProducerInc", P, with(a_result, 3, u64(0)), fault::zero_incarnation},
      {"ResultTaskIdOfFourOctets", P, with(a_result, 4, u32(42)), fault::bad_width},
      {"ResultZeroTaskId", P, with(a_result, 4, u64(0)), fault::zero_task},
      {"ResultAttemptOfEightOctets", P, with(a_result, 5, u64(3)), fault::bad_width},
      {"ResultZeroAttempt", P, with(a_result, 5, u32(0)), fault::zero_attempt},
      {"ResultStatusOfTwoOctets", P, with(a_result, 6, "\0\0"s), fault::bad_width},
      {"ResultEmptyStatus", P, with(a_result, 6, ""), fault::bad_width},
      {"ResultStatusThree", P, with(a_result, 6, "\x03"), fault::bad_status},
      {"FailedResultReasonOf256Octets", P, with(a_failure, 7, long_reason),
       fault::reason_too_long},
      {"RejectedResultReasonOf256Octets", P, with(with(a_failure, 6, "\x02"), 7, long_reason),
       fault::reason_too_long},
      // EXTEND
      {"ExtendTruncated", P, {"p", "FRQ01", "\x04", I, T, A}, fault::truncated},
      {"ExtendExtraFrame", P, join(an_extend, {""}), fault::extra_frames},
      {"ExtendZeroProducerInc", P, with(an_extend, 3, u64(0)), fault::zero_incarnation},
      {"ExtendZeroTaskId", P, with(an_extend, 4, u64(0)), fault::zero_task},
      {"ExtendZeroAttempt", P, with(an_extend, 5, u32(0)), fault::zero_attempt},
      {"ExtendMsOfEightOctets", P, with(an_extend, 6, u64(1000)), fault::bad_width},
      {"ExtendZeroMs", P, with(an_extend, 6, u32(0)), fault::bad_extend},
      {"ExtendAboveAnHour", P, with(an_extend, 6, u32(max_extend_ms + 1)), fault::bad_extend},
      // HEARTBEAT and BYE from the worker
      {"WorkerHeartbeatExtraFrame", P, join(a_worker_heartbeat, {""}), fault::extra_frames},
      {"WorkerHeartbeatWithAnIncarnation", P, join(a_worker_heartbeat, {I}), fault::extra_frames},
      {"ByeExtraFrame", P, join(a_bye, {"why"}), fault::extra_frames},
      // WELCOME
      {"WelcomeTruncated", K, {"FRQ01", "\x11", I}, fault::truncated},
      {"WelcomeExtraFrame", K, join(a_welcome, {""}), fault::extra_frames},
      {"WelcomeIncOfSevenOctets", K, with(a_welcome, 2, "1234567"), fault::bad_width},
      {"WelcomeZeroProducerInc", K, with(a_welcome, 2, u64(0)), fault::zero_incarnation},
      {"WelcomeHeartbeatOfEightOctets", K, with(a_welcome, 3, u64(1000)), fault::bad_width},
      {"WelcomeZeroHeartbeat", K, with(a_welcome, 3, u32(0)), fault::bad_heartbeat},
      {"WelcomeHeartbeatAboveAnHour", K, with(a_welcome, 3, u32(max_heartbeat_ms + 1)),
       fault::bad_heartbeat},
      // TASK
      {"TaskTruncated", K, {"FRQ01", "\x12", I, T, A, "\x03", u32(1000), u64(5)}, fault::truncated},
      {"TaskExtraFrame", K, join(a_task, {"more"}), fault::extra_frames},
      {"TaskZeroProducerInc", K, with(a_task, 2, u64(0)), fault::zero_incarnation},
      {"TaskTaskIdOfNineOctets", K, with(a_task, 3, "123456789"), fault::bad_width},
      {"TaskZeroTaskId", K, with(a_task, 3, u64(0)), fault::zero_task},
      {"TaskAttemptOfTwoOctets", K, with(a_task, 4, "\0\x03"s), fault::bad_width},
      {"TaskZeroAttempt", K, with(a_task, 4, u32(0)), fault::zero_attempt},
      {"TaskPriorityOfFourOctets", K, with(a_task, 5, u32(3)), fault::bad_width},
      {"TaskPriorityEight", K, with(a_task, 5, "\x08"), fault::bad_priority},
      {"TaskPriority255", K, with(a_task, 5, "\xff"), fault::bad_priority},
      {"TaskDeadlineOfEightOctets", K, with(a_task, 6, u64(1000)), fault::bad_width},
      {"TaskZeroDeadline", K, with(a_task, 6, u32(0)), fault::bad_deadline},
      {"TaskDeadlineAboveADay", K, with(a_task, 6, u32(max_deadline_ms + 1)), fault::bad_deadline},
      {"TaskEnqueuedTimeOfFourOctets", K, with(a_task, 7, u32(5)), fault::bad_width},
      // RECORDED
      {"RecordedTruncated", K, {"FRQ01", "\x13", I, T, A}, fault::truncated},
      {"RecordedExtraFrame", K, join(a_recorded, {""}), fault::extra_frames},
      {"RecordedZeroProducerInc", K, with(a_recorded, 2, u64(0)), fault::zero_incarnation},
      {"RecordedZeroTaskId", K, with(a_recorded, 3, u64(0)), fault::zero_task},
      {"RecordedZeroAttempt", K, with(a_recorded, 4, u32(0)), fault::zero_attempt},
      {"RecordedEmptyVerdict", K, with(a_recorded, 5, ""), fault::bad_width},
      {"RecordedVerdictThree", K, with(a_recorded, 5, "\x03"), fault::bad_verdict},
      // CANCEL
      {"CancelTruncated", K, {"FRQ01", "\x14", I, T}, fault::truncated},
      {"CancelExtraFrame", K, join(a_cancel, {""}), fault::extra_frames},
      {"CancelZeroProducerInc", K, with(a_cancel, 2, u64(0)), fault::zero_incarnation},
      {"CancelZeroTaskId", K, with(a_cancel, 3, u64(0)), fault::zero_task},
      {"CancelZeroAttempt", K, with(a_cancel, 4, u32(0)), fault::zero_attempt},
      {"CancelAttemptOfEightOctets", K, with(a_cancel, 4, u64(3)), fault::bad_width},
      // HEARTBEAT from the producer
      {"ProducerHeartbeatTruncated", K, {"FRQ01", "\x15"}, fault::truncated},
      {"ProducerHeartbeatExtraFrame", K, join(a_producer_heartbeat, {u32(1000)}),
       fault::extra_frames},
      {"ProducerHeartbeatZeroInc", K, with(a_producer_heartbeat, 2, u64(0)),
       fault::zero_incarnation},
      {"ProducerHeartbeatIncOfFourOctets", K, with(a_producer_heartbeat, 2, u32(1)),
       fault::bad_width},
      // REFUSE
      {"RefuseTruncated", K, {"FRQ01", "\x16", "malformed"}, fault::truncated},
      {"RefuseExtraFrame", K, join(a_refuse, {""}), fault::extra_frames},
      {"RefuseEmptyCode", K, with(a_refuse, 2, ""), fault::bad_code},
      {"RefuseCodeOf33Octets", K, with(a_refuse, 2, std::string(33, 'a')), fault::bad_code},
      {"RefuseUppercaseCode", K, with(a_refuse, 2, "Malformed"), fault::bad_code},
      {"RefuseCodeWithAnUnderscore", K, with(a_refuse, 2, "unknown_queue"), fault::bad_code},
      {"RefuseReasonOf256Octets", K, with(a_refuse, 3, long_reason), fault::reason_too_long},
      // Well-formed, the other way
      {"HelloAtTheWorker", K, without_first(a_hello), fault::wrong_direction},
      {"CapacityAtTheWorker", K, without_first(a_capacity), fault::wrong_direction},
      {"ResultAtTheWorker", K, without_first(a_result), fault::wrong_direction},
      {"ExtendAtTheWorker", K, without_first(an_extend), fault::wrong_direction},
      {"WorkerHeartbeatAtTheWorker", K, without_first(a_worker_heartbeat), fault::wrong_direction},
      {"ByeAtTheWorker", K, without_first(a_bye), fault::wrong_direction},
      {"WelcomeAtTheProducer", P, join({"p"}, a_welcome), fault::wrong_direction},
      {"TaskAtTheProducer", P, join({"p"}, a_task), fault::wrong_direction},
      {"RecordedAtTheProducer", P, join({"p"}, a_recorded), fault::wrong_direction},
      {"CancelAtTheProducer", P, join({"p"}, a_cancel), fault::wrong_direction},
      {"ProducerHeartbeatAtTheProducer", P, join({"p"}, a_producer_heartbeat),
       fault::wrong_direction},
      {"RefuseAtTheProducer", P, join({"p"}, a_refuse), fault::wrong_direction},
  };
}

parsed parse_on(at where, const message& m) {
  return where == at::producer ? parse_at_producer(m) : parse_at_worker(m);
}

class FrqRejects : public ::testing::TestWithParam<bad_input> {};

TEST_P(FrqRejects, EachMalformedMessageWithItsOwnFault) {
  const bad_input& c = GetParam();
  const message m = make(c.input);
  const parsed p = parse_on(c.where, m);
  EXPECT_EQ(p.error, c.expected) << c.name << ": got '" << describe(p.error) << "', expected '"
                                 << describe(c.expected) << "'";
  EXPECT_FALSE(p);
  if (c.where == at::producer && !c.input.empty()) {
    EXPECT_EQ(p.peer, c.input[0]) << "the producer can still answer or count by peer";
  }
}

INSTANTIATE_TEST_SUITE_P(Table, FrqRejects, ::testing::ValuesIn(bad_inputs()),
                         [](const ::testing::TestParamInfo<bad_input>& param_info) {
                           return param_info.param.name;
                         });

TEST(Frq, TheMalformedTableCoversEveryFault) {
  std::set<fault> seen;
  for (const bad_input& c : bad_inputs()) seen.insert(c.expected);
  for (int i = static_cast<int>(fault::no_routing_id);
       i <= static_cast<int>(fault::reason_too_long); ++i) {
    EXPECT_TRUE(seen.count(static_cast<fault>(i)) == 1) << describe(static_cast<fault>(i));
  }
}

TEST(Frq, TheValidMessagesOfTheTableParse) {
  // The table's faults come from one change each to these: they must parse as they are.
  for (const auto& [f, where] : std::vector<std::pair<frames, at>>{
           {a_hello, at::producer}, {a_capacity, at::producer}, {a_result, at::producer},
           {a_failure, at::producer}, {an_extend, at::producer},
           {a_worker_heartbeat, at::producer}, {a_bye, at::producer}, {a_welcome, at::worker},
           {a_task, at::worker}, {a_recorded, at::worker}, {a_cancel, at::worker},
           {a_producer_heartbeat, at::worker}, {a_refuse, at::worker}}) {
    const message m = make(f);
    const parsed p = parse_on(where, m);
    EXPECT_TRUE(p) << describe(p.error) << " for command frame " << f[where == at::worker ? 1 : 2];
  }
}

// ---------------------------------------------------------------------------------------------
// Random frames and truncations.

// What the builders write for the values `p` holds, in the form its parser received it.
frames rebuilt(const parsed& p, at where) {
  message out;
  const std::string_view peer = "peer";
  switch (p.what) {
    case command::hello: write_hello(out, p.hello); break;
    case command::capacity: write_capacity(out, p.capacity); break;
    case command::result: write_result(out, p.producer_inc, p.key, p.status, p.body); break;
    case command::extend: write_extend(out, p.producer_inc, p.key, p.extend_ms); break;
    case command::worker_heartbeat: write_worker_heartbeat(out); break;
    case command::bye: write_bye(out); break;
    case command::welcome: write_welcome(out, peer, p.producer_inc, p.heartbeat_ms); break;
    case command::task: write_task(out, peer, p.producer_inc, p.task, p.body); break;
    case command::recorded: write_recorded(out, peer, p.producer_inc, p.key, p.verdict); break;
    case command::cancel: write_cancel(out, peer, p.producer_inc, p.key); break;
    case command::producer_heartbeat: write_producer_heartbeat(out, peer, p.producer_inc); break;
    case command::refuse: write_refuse(out, peer, p.refuse); break;
  }
  frames f = frames_of(out);
  const bool from_producer = static_cast<std::uint8_t>(p.what) > 0x10;
  if (where == at::producer && !from_producer) f.insert(f.begin(), std::string(p.peer));
  else if (where == at::worker && from_producer) f.erase(f.begin());
  return f;
}

// Parses `f` at `where` and checks the answer: a fault, or a message the builders would write
// byte for byte, with its body inside the message. Returns whether it was accepted.
bool check(const frames& f, at where) {
  const message m = make(f);
  const parsed p = parse_on(where, m);
  if (!p) return false;
  frames again;
  EXPECT_NO_THROW(again = rebuilt(p, where)) << "accepted what a builder refuses";
  EXPECT_EQ(again, f) << "accepted what no builder writes";
  if (p.body_frame != nullptr) {
    EXPECT_EQ(p.body_frame, &m[m.size() - 1]) << "the body is the last frame, in place";
    EXPECT_EQ(p.body.data(), m[m.size() - 1].data());
  }
  return true;
}

std::vector<std::pair<frames, at>> valid_messages() {
  std::vector<std::pair<frames, at>> out;
  message m;
  const auto add = [&](at where) {
    out.emplace_back(frames_of(m), where);
    if (where == at::producer) out.back().first.insert(out.back().first.begin(), "p");
    else out.back().first.erase(out.back().first.begin());
  };
  write_hello(m, {"w", winc, "q", 16, 1000});
  add(at::producer);
  write_capacity(m, 0);
  add(at::producer);
  write_result(m, inc, {42, 3}, status::done, "result");
  add(at::producer);
  write_result(m, inc, {42, 3}, status::failed, "reason");
  add(at::producer);
  write_result(m, inc, {42, 3}, status::rejected, std::string(max_reason_size, 'r'));
  add(at::producer);
  write_extend(m, inc, {42, 3}, 1000);
  add(at::producer);
  write_worker_heartbeat(m);
  add(at::producer);
  write_bye(m);
  add(at::producer);
  write_welcome(m, "p", inc, 1000);
  add(at::worker);
  write_task(m, "p", inc, {{42, 3}, 7, 1000, 5}, "body");
  add(at::worker);
  write_recorded(m, "p", inc, {42, 3}, verdict::stale);
  add(at::worker);
  write_cancel(m, "p", inc, {42, 3});
  add(at::worker);
  write_producer_heartbeat(m, "p", inc);
  add(at::worker);
  write_refuse(m, "p", {"unknown-queue", "no"});
  add(at::worker);
  write_version_refusal(m, "p");
  add(at::worker);
  return out;
}

TEST(Frq, TruncationsAndRandomFramesNeverCrashNorPassUnlessCanonical) {
  constexpr at sockets[] = {at::producer, at::worker};
  const auto valid = valid_messages();
  for (const auto& [f, where] : valid) {
    for (std::size_t n = 0; n <= f.size(); ++n) {
      const frames prefix(f.begin(), f.begin() + static_cast<std::ptrdiff_t>(n));
      for (const at s : sockets) (void)check(prefix, s);
    }
  }

  std::mt19937_64 rng(20261204);
  const std::vector<std::string> atoms = {
      "", "\0"s, "\x01", "\x02", "\x03", "\x05", "\x06", "\x08", "\x11", "\x12", "\x13", "\x15",
      "\x16", "w", "q", "FRQ01", "FRQ02", u32(0), u32(1), u32(max_capacity),
      u32(max_capacity + 1), u32(max_deadline_ms), u32(max_heartbeat_ms + 1), u64(0), u64(1),
      u64(inc), u64(max_u64), "version", "malformed", long_name, long_reason, "1234567"};
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
      if (!f.empty() && pick(2) == 0) f[std::min<std::size_t>(pick(2), f.size() - 1)] = "FRQ01";
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
  // Mutations that keep a message well-formed (a byte changed in a body, a name, an
  // incarnation) must have been tried too, or the canonical check above proved little.
  EXPECT_GT(accepted, iterations / 40);
  EXPECT_LT(accepted, iterations);
}

}  // namespace
}  // namespace fabric::frq
