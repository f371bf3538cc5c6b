// Tests the fabric envelope: header and envelope round trips, typed payloads, expiry and limits.
#include <fabric/envelope.hpp>
#include <fabric/error.hpp>

#include "support/support.hpp"

#include <gtest/gtest.h>

#include <climits>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace fabric {
namespace {

using fabric::testing::expect_error;

struct reading {
  std::string sensor;
  double value = 0;
  std::vector<std::uint8_t> raw;
  MSGPACK_DEFINE(sensor, value, raw)
  friend bool operator==(const reading&, const reading&) = default;
};

header full_header() {
  header h;
  id_generator ids;
  h.id = ids.next();
  h.producer = "producer-1";
  h.stream = "orders.eu";
  h.seq = 0x0123456789abcdefULL;
  h.timestamp_ns = 1'700'000'000'123'456'789LL;
  h.ttl_ms = 30'000;
  h.user = {{"content-type", "application/msgpack"},
            {"trace", std::string("\x00\xff\x01\x80", 4)},
            {"empty", ""}};
  return h;
}

header minimal_header() {
  header h;
  h.id.bytes.fill(0xab);
  h.producer = "p";
  h.seq = 1;
  h.timestamp_ns = 5;
  return h;
}

header round_trip(const header& h) {
  auto r = decode_header(encode_header(h));
  if (!r) {
    ADD_FAILURE() << "decode_header failed: " << r.error().message();
    return {};
  }
  return *r;
}

TEST(EnvelopeTest, RoundTripsEveryHeaderField) {
  const header h = full_header();
  const header back = round_trip(h);
  EXPECT_EQ(back, h);
  EXPECT_EQ(back.id, h.id);
  EXPECT_EQ(back.producer, "producer-1");
  EXPECT_EQ(back.stream, "orders.eu");
  EXPECT_EQ(back.seq, 0x0123456789abcdefULL);
  EXPECT_EQ(back.timestamp_ns, 1'700'000'000'123'456'789LL);
  EXPECT_EQ(back.ttl_ms, 30'000U);
  EXPECT_EQ(back.user, h.user);
}

TEST(EnvelopeTest, RoundTripsAHeaderWithDefaults) {
  const header h = minimal_header();
  const header back = round_trip(h);
  EXPECT_EQ(back, h);
  EXPECT_TRUE(back.stream.empty());
  EXPECT_EQ(back.ttl_ms, 0U);
  EXPECT_TRUE(back.user.empty());
}

TEST(EnvelopeTest, OmitsOptionalFieldsAtTheirDefaults) {
  const frame f = encode_header(minimal_header());
  auto handle = decode_msgpack(bytes(f));
  ASSERT_TRUE(handle);
  const msgpack::object& root = handle->get();
  ASSERT_EQ(root.type, msgpack::type::MAP);
  EXPECT_EQ(root.via.map.size, 4U);  // id, producer, seq, ts
  EXPECT_GT(encode_header(full_header()).size(), f.size());
}

TEST(EnvelopeTest, RoundTripsExtremeNumbers) {
  header h = minimal_header();
  h.seq = UINT64_MAX;
  h.timestamp_ns = INT64_MIN;
  h.ttl_ms = UINT64_MAX;
  EXPECT_EQ(round_trip(h), h);
  h.timestamp_ns = INT64_MAX;
  h.seq = 0;
  EXPECT_EQ(round_trip(h), h);
  h.timestamp_ns = -1;
  EXPECT_EQ(round_trip(h), h);
}

TEST(EnvelopeTest, RoundTripsBinaryUserHeaderValues) {
  header h = minimal_header();
  std::string every_byte;
  for (int i = 0; i < 256; ++i) every_byte.push_back(static_cast<char>(i));
  h.user = {{"bytes", every_byte}, {"nul", std::string(3, '\0')}};
  const header back = round_trip(h);
  ASSERT_EQ(back.user.size(), 2U);
  EXPECT_EQ(back.user[0].second, every_byte);
  EXPECT_EQ(back.user[1].second, std::string(3, '\0'));
}

TEST(EnvelopeTest, KeepsUserHeaderOrderAndDuplicates) {
  header h = minimal_header();
  h.user = {{"z", "1"}, {"a", "2"}, {"z", "3"}};
  EXPECT_EQ(round_trip(h).user, h.user);
}

TEST(EnvelopeTest, RoundTripsHeadersAtEveryLimit) {
  header h = minimal_header();
  h.producer.assign(header_limits::max_producer, 'p');
  h.stream.assign(header_limits::max_stream, 's');
  for (std::size_t i = 0; i < header_limits::max_user_headers; ++i)
    h.user.emplace_back(std::string("k").append(std::to_string(i)), "v");
  h.user[0].first.assign(header_limits::max_user_key, 'k');
  h.user[1].second.assign(header_limits::max_user_value, 'v');
  EXPECT_EQ(round_trip(h), h);
}

TEST(EnvelopeTest, FindReturnsTheFirstMatchingUserHeader) {
  header h = minimal_header();
  h.user = {{"a", "1"}, {"b", "2"}, {"a", "3"}};
  ASSERT_NE(h.find("a"), nullptr);
  EXPECT_EQ(*h.find("a"), "1");
  ASSERT_NE(h.find("b"), nullptr);
  EXPECT_EQ(*h.find("b"), "2");
  EXPECT_EQ(h.find("c"), nullptr);
}

TEST(EnvelopeTest, MakeEnvelopeLaysOutTagHeaderAndBody) {
  const header h = full_header();
  message body = make_message("one", "two");
  message m = make_envelope(h, std::move(body));
  EXPECT_TRUE(body.empty());  // NOLINT(bugprone-use-after-move): make_envelope consumes the body
  ASSERT_EQ(m.size(), 4U);
  EXPECT_EQ(m.view(0), envelope_tag);
  EXPECT_EQ(m.view(0), "FAB1");
  EXPECT_TRUE(is_envelope(m));
  EXPECT_EQ(m.view(2), "one");
  EXPECT_EQ(m.view(3), "two");
}

TEST(EnvelopeTest, RoundTripsAMultiFrameBody) {
  const header h = full_header();
  message m = make_envelope(h, make_message("first", "", std::string(10'000, 'x')));
  auto e = decode_envelope(std::move(m));
  ASSERT_TRUE(e);
  EXPECT_TRUE(m.empty());  // NOLINT(bugprone-use-after-move): decode_envelope consumes its input
  EXPECT_EQ(e->header, h);
  ASSERT_EQ(e->body.size(), 3U);
  EXPECT_EQ(e->body.view(0), "first");
  EXPECT_EQ(e->body.view(1), "");
  EXPECT_EQ(e->body.view(2), std::string(10'000, 'x'));
}

TEST(EnvelopeTest, RoundTripsAnEmptyBody) {
  auto e = decode_envelope(make_envelope(minimal_header(), message()));
  ASSERT_TRUE(e);
  EXPECT_TRUE(e->body.empty());
  EXPECT_TRUE(body_as<int>(*e).is(errc::malformed));
}

TEST(EnvelopeTest, IsEnvelopeChecksTheTagFrame) {
  EXPECT_FALSE(is_envelope(message()));
  EXPECT_FALSE(is_envelope(make_message("FAB2", "x")));
  EXPECT_FALSE(is_envelope(make_message("FAB1x")));
  EXPECT_TRUE(is_envelope(make_message("FAB1")));
}

template <class T>
T typed_round_trip(const T& value) {
  auto e = decode_envelope(make_envelope_of(minimal_header(), value));
  if (!e) {
    ADD_FAILURE() << "decode_envelope failed: " << e.error().message();
    return T{};
  }
  EXPECT_EQ(e->body.size(), 1U);
  auto v = body_as<T>(*e);
  if (!v) {
    ADD_FAILURE() << "body_as failed: " << v.error().message();
    return T{};
  }
  return *v;
}

TEST(EnvelopeTest, RoundTripsTypedIntegerPayloads) {
  EXPECT_EQ(typed_round_trip(42), 42);
  EXPECT_EQ(typed_round_trip(std::int64_t{-9'000'000'000}), -9'000'000'000);
  EXPECT_EQ(typed_round_trip(std::uint64_t{UINT64_MAX}), UINT64_MAX);
}

TEST(EnvelopeTest, RoundTripsTypedStringPayloads) {
  EXPECT_EQ(typed_round_trip(std::string("hello")), "hello");
  EXPECT_EQ(typed_round_trip(std::string()), "");
  EXPECT_EQ(typed_round_trip(std::string(70'000, 'y')), std::string(70'000, 'y'));
}

TEST(EnvelopeTest, RoundTripsTypedVectorPayloads) {
  const std::vector<int> v{3, -1, 4, 1, 5};
  EXPECT_EQ(typed_round_trip(v), v);
  const std::vector<std::string> s{"a", "bb", ""};
  EXPECT_EQ(typed_round_trip(s), s);
}

TEST(EnvelopeTest, RoundTripsTypedMapPayloads) {
  const std::map<std::string, int> m{{"a", 1}, {"b", -2}};
  EXPECT_EQ(typed_round_trip(m), m);
  const std::map<int, std::vector<std::string>> nested{{1, {"x"}}, {2, {}}};
  EXPECT_EQ(typed_round_trip(nested), nested);
}

TEST(EnvelopeTest, RoundTripsATypedStructPayload) {
  const reading r{"thermo-7", 21.5, {0, 255, 7}};
  EXPECT_EQ(typed_round_trip(r), r);
}

TEST(EnvelopeTest, BodyAsReadsTheFrameAtAnIndex) {
  message body;
  body.push_back(pack(1));
  body.push_back(pack(std::string("two")));
  auto e = decode_envelope(make_envelope(minimal_header(), std::move(body)));
  ASSERT_TRUE(e);
  EXPECT_EQ(body_as<int>(*e, 0).value(), 1);
  EXPECT_EQ(body_as<std::string>(*e, 1).value(), "two");
  EXPECT_TRUE(body_as<int>(*e, 2).is(errc::malformed));
}

TEST(EnvelopeTest, BodyAsRejectsTheWrongType) {
  auto e = decode_envelope(make_envelope_of(minimal_header(), std::string("text")));
  ASSERT_TRUE(e);
  EXPECT_TRUE(body_as<int>(*e).is(errc::malformed));
  EXPECT_TRUE(body_as<reading>(*e).is(errc::malformed));
}

TEST(EnvelopeTest, BodyAsRejectsABodyThatIsNotMsgpack) {
  auto e = decode_envelope(make_envelope(minimal_header(), make_message("\xc1")));
  ASSERT_TRUE(e);
  EXPECT_TRUE(body_as<int>(*e).is(errc::malformed));
}

TEST(EncodeHeaderTest, RefusesAProducerLongerThan255Bytes) {
  header h = minimal_header();
  h.producer.assign(header_limits::max_producer + 1, 'p');
  expect_error(errc::invalid_argument, [&] { (void)encode_header(h); });
  expect_error(errc::invalid_argument, [&] { (void)make_envelope(h, make_message("b")); });
}

TEST(EncodeHeaderTest, RefusesAStreamLongerThan255Bytes) {
  header h = minimal_header();
  h.stream.assign(header_limits::max_stream + 1, 's');
  expect_error(errc::invalid_argument, [&] { (void)encode_header(h); });
}

TEST(EncodeHeaderTest, RefusesMoreThan64UserHeaders) {
  header h = minimal_header();
  for (std::size_t i = 0; i <= header_limits::max_user_headers; ++i)
    h.user.emplace_back(std::string("k").append(std::to_string(i)), "v");
  expect_error(errc::invalid_argument, [&] { (void)encode_header(h); });
  expect_error(errc::invalid_argument, [&] { (void)make_envelope_of(h, 1); });
}

TEST(EncodeHeaderTest, RefusesAnOversizedUserHeaderKey) {
  header h = minimal_header();
  h.user.emplace_back(std::string(header_limits::max_user_key + 1, 'k'), "v");
  expect_error(errc::invalid_argument, [&] { (void)encode_header(h); });
}

TEST(EncodeHeaderTest, RefusesAnOversizedUserHeaderValue) {
  header h = minimal_header();
  h.user.emplace_back("k", std::string(header_limits::max_user_value + 1, 'v'));
  expect_error(errc::invalid_argument, [&] { (void)encode_header(h); });
}

TEST(EncodeHeaderTest, RefusalLeavesTheBodyUntouched) {
  header h = minimal_header();
  h.producer.assign(300, 'p');
  message body = make_message("keep");
  expect_error(errc::invalid_argument, [&] { (void)make_envelope(h, std::move(body)); });
  ASSERT_EQ(body.size(), 1U);
  EXPECT_EQ(body.view(0), "keep");
}

TEST(HeaderExpiryTest, ZeroTtlNeverExpires) {
  header h = minimal_header();
  h.timestamp_ns = 0;
  h.ttl_ms = 0;
  EXPECT_FALSE(h.expired(INT64_MAX));
}

TEST(HeaderExpiryTest, ExpiresStrictlyAfterTimestampPlusTtl) {
  header h = minimal_header();
  h.timestamp_ns = 1'000'000'000;
  h.ttl_ms = 250;
  const std::int64_t deadline = 1'000'000'000 + 250'000'000;
  EXPECT_FALSE(h.expired(h.timestamp_ns));
  EXPECT_FALSE(h.expired(deadline - 1));
  EXPECT_FALSE(h.expired(deadline));
  EXPECT_TRUE(h.expired(deadline + 1));
}

TEST(HeaderExpiryTest, HugeTtlSaturatesInsteadOfOverflowing) {
  header h = minimal_header();
  h.timestamp_ns = 1'000;
  h.ttl_ms = UINT64_MAX;
  EXPECT_FALSE(h.expired(INT64_MAX));
  h.timestamp_ns = INT64_MAX - 10;
  h.ttl_ms = 1;
  EXPECT_FALSE(h.expired(INT64_MAX));
}

TEST(HeaderExpiryTest, WorksWithTheCurrentTime) {
  header h = minimal_header();
  h.timestamp_ns = unix_now_ns();
  h.ttl_ms = 60'000;
  EXPECT_FALSE(h.expired(unix_now_ns()));
  h.timestamp_ns -= 61'000'000'000LL;
  EXPECT_TRUE(h.expired(unix_now_ns()));
}

TEST(HeaderExpiryTest, UnixNowIsAfter2023) {
  EXPECT_GT(unix_now_ns(), 1'672'531'200'000'000'000LL);  // 2023-01-01T00:00:00Z
}

}  // namespace
}  // namespace fabric
