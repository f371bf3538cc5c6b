// Tests the bounded msgpack codec: pack/unpack round trips, decode_msgpack's limits and errors.
#include <fabric/codec.hpp>

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

namespace fabric {
namespace {

struct point {
  std::int32_t x = 0;
  std::int32_t y = 0;
  std::string label;
  MSGPACK_DEFINE(x, y, label)
  friend bool operator==(const point&, const point&) = default;
};

std::string raw(const frame& f) { return std::string(view(f)); }

// `depth` arrays nested in each other, the innermost holding nil.
std::string nested_arrays(std::size_t depth) {
  std::string s(depth, '\x91');
  s.push_back('\xc0');
  return s;
}

TEST(CodecTest, PackProducesStandardMsgpack) {
  EXPECT_EQ(raw(pack(1)), "\x01");
  EXPECT_EQ(raw(pack(std::string("ab"))), "\xa2" "ab");
  EXPECT_EQ(raw(pack(std::vector<int>{1, 2})), "\x92\x01\x02");
  EXPECT_EQ(raw(pack(-1)), "\xff");
}

TEST(CodecTest, RoundTripsIntegersAtTheirLimits) {
  for (std::int64_t v : {std::numeric_limits<std::int64_t>::min(), std::int64_t{-1}, std::int64_t{0},
                         std::numeric_limits<std::int64_t>::max()}) {
    auto r = unpack<std::int64_t>(pack(v));
    ASSERT_TRUE(r) << v;
    EXPECT_EQ(*r, v);
  }
  auto big = unpack<std::uint64_t>(pack(std::numeric_limits<std::uint64_t>::max()));
  ASSERT_TRUE(big);
  EXPECT_EQ(*big, std::numeric_limits<std::uint64_t>::max());
}

TEST(CodecTest, RoundTripsStringsWithEveryByteValue) {
  std::string s;
  for (int i = 0; i < 256; ++i) s.push_back(static_cast<char>(i));
  auto r = unpack<std::string>(pack(s));
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, s);
}

TEST(CodecTest, RoundTripsContainers) {
  const std::vector<std::string> v{"a", "", "ccc"};
  auto rv = unpack<std::vector<std::string>>(pack(v));
  ASSERT_TRUE(rv);
  EXPECT_EQ(*rv, v);

  const std::map<std::string, std::vector<int>> m{{"one", {1}}, {"none", {}}, {"many", {1, 2, 3}}};
  auto rm = unpack<std::map<std::string, std::vector<int>>>(pack(m));
  ASSERT_TRUE(rm);
  EXPECT_EQ(*rm, m);
}

TEST(CodecTest, RoundTripsAMsgpackDefineStruct) {
  const point p{-3, 7, "corner"};
  auto r = unpack<point>(pack(p));
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, p);
}

TEST(CodecTest, UnpackAcceptsAByteSpan) {
  const frame f = pack(std::make_tuple(1, std::string("x")));
  auto r = unpack<std::tuple<int, std::string>>(bytes(f));
  ASSERT_TRUE(r);
  EXPECT_EQ(std::get<0>(*r), 1);
  EXPECT_EQ(std::get<1>(*r), "x");
}

TEST(CodecTest, UnpackRejectsTheWrongType) {
  EXPECT_TRUE(unpack<int>(pack(std::string("12"))).is(errc::malformed));
  EXPECT_TRUE(unpack<std::string>(pack(12)).is(errc::malformed));
  EXPECT_TRUE(unpack<std::vector<int>>(pack(std::map<int, int>{{1, 2}})).is(errc::malformed));
  EXPECT_TRUE(unpack<int>(pack(1.5)).is(errc::malformed));
  EXPECT_TRUE(unpack<point>(pack(std::string("not a point"))).is(errc::malformed));
}

TEST(CodecTest, UnpackRejectsIntegersOutOfRange) {
  EXPECT_TRUE(unpack<std::uint8_t>(pack(300)).is(errc::malformed));
  EXPECT_TRUE(unpack<std::uint32_t>(pack(-1)).is(errc::malformed));
  EXPECT_TRUE(unpack<std::int8_t>(pack(-129)).is(errc::malformed));
  EXPECT_TRUE(unpack<std::int64_t>(pack(std::numeric_limits<std::uint64_t>::max())).is(errc::malformed));
}

TEST(CodecTest, UnpackPropagatesDecodeErrors) {
  EXPECT_TRUE(unpack<int>(frame()).is(errc::malformed));
  EXPECT_TRUE(unpack<int>(make_frame("\x01\x02")).is(errc::malformed));
  EXPECT_TRUE(unpack<std::vector<int>>(make_frame(std::string_view("\xdd\xff\xff\xff\xff", 5)))
                  .is(errc::too_large));
}

TEST(CodecTest, DecodeMsgpackReturnsTheObject) {
  const frame f = pack(std::vector<int>{4, 5, 6});
  auto h = decode_msgpack(bytes(f));
  ASSERT_TRUE(h);
  const msgpack::object& o = h->get();
  ASSERT_EQ(o.type, msgpack::type::ARRAY);
  ASSERT_EQ(o.via.array.size, 3U);
  EXPECT_EQ(o.via.array.ptr[2].as<int>(), 6);
}

TEST(CodecTest, DecodeMsgpackReferencesStringsInPlace) {
  const frame f = pack(std::string("zero-copy"));
  auto h = decode_msgpack(bytes(f));
  ASSERT_TRUE(h);
  const msgpack::object& o = h->get();
  ASSERT_EQ(o.type, msgpack::type::STR);
  const char* begin = static_cast<const char*>(f.data());
  EXPECT_GE(o.via.str.ptr, begin);
  EXPECT_LT(o.via.str.ptr, begin + f.size());
}

TEST(CodecTest, DecodeMsgpackAcceptsAStringView) {
  auto h = decode_msgpack(std::string_view("\x93\x01\x02\x03"));
  ASSERT_TRUE(h);
  EXPECT_EQ(h->get().via.array.size, 3U);
}

TEST(CodecTest, DecodeMsgpackAcceptsEmptyContainers) {
  EXPECT_TRUE(decode_msgpack(std::string_view("\x90")));
  EXPECT_TRUE(decode_msgpack(std::string_view("\x80")));
  EXPECT_TRUE(decode_msgpack(std::string_view("\xa0")));
  EXPECT_TRUE(decode_msgpack(std::string_view("\xc4\x00", 2)));
}

TEST(CodecTest, DecodeMsgpackAcceptsExactlyTheMaximumDepth) {
  ASSERT_EQ(max_decode_depth, 32U);
  EXPECT_TRUE(decode_msgpack(nested_arrays(max_decode_depth)));
  std::string empty_innermost(max_decode_depth - 1, '\x91');
  empty_innermost.push_back('\x90');  // 32 arrays, the innermost empty
  EXPECT_TRUE(decode_msgpack(empty_innermost));
}

TEST(CodecTest, DecodeMsgpackRejectsOneLevelDeeper) {
  EXPECT_TRUE(decode_msgpack(nested_arrays(max_decode_depth + 1)).is(errc::too_large));
}

TEST(CodecTest, DecodeMsgpackRejectsVeryDeepNestingWithoutExhaustingTheStack) {
  EXPECT_TRUE(decode_msgpack(nested_arrays(200'000)).is(errc::too_large));
}

TEST(CodecTest, DecodeMsgpackRejectsCountsTheInputCannotHold) {
  // array16 claiming 65535 elements in 3 bytes: refused at the header, before allocating.
  EXPECT_TRUE(decode_msgpack(std::string_view("\xdc\xff\xff", 3)).is(errc::too_large));
  // A claim that does fit the bound but is not backed by bytes is just truncated.
  EXPECT_TRUE(decode_msgpack(std::string_view("\x92\x01", 2)).is(errc::malformed));
  // Three elements claimed in two bytes cannot be backed, whatever follows: over the bound.
  EXPECT_TRUE(decode_msgpack(std::string_view("\x93\x01", 2)).is(errc::too_large));
}

TEST(CodecTest, DecodeMsgpackCountsClaimsOverTheWholeParse) {
  // Two nested arrays of two: 4 elements claimed in 4 bytes, the most those bytes can back.
  EXPECT_TRUE(decode_msgpack(std::string_view("\x92\x92\x01\x02", 4)).is(errc::malformed));
  EXPECT_TRUE(decode_msgpack(std::string_view("\x92\x91\x01\x02", 4)));
  // Each claim alone fits in 5 bytes; together (3 + 3) they do not.
  EXPECT_TRUE(decode_msgpack(std::string_view("\x93\x93\x01\x02\x03", 5)).is(errc::too_large));
}

TEST(CodecTest, DecodeMsgpackHonoursACallersLimits) {
  decode_limits shallow;
  shallow.max_depth = 2;
  EXPECT_TRUE(decode_msgpack(nested_arrays(2), shallow));
  EXPECT_TRUE(decode_msgpack(nested_arrays(3), shallow).is(errc::too_large));
  decode_limits few;
  few.max_elements = 3;
  EXPECT_TRUE(decode_msgpack(std::string_view("\x93\x01\x02\x03", 4), few));
  EXPECT_TRUE(decode_msgpack(std::string_view("\x94\x01\x02\x03\x04", 5), few).is(errc::too_large));
  // A caller cannot raise the depth above max_decode_depth.
  decode_limits deep;
  deep.max_depth = 1000;
  EXPECT_TRUE(decode_msgpack(nested_arrays(max_decode_depth + 1), deep).is(errc::too_large));
}

TEST(CodecTest, DecodeMsgpackAcceptsContainersAsLargeAsTheInputAllows) {
  std::vector<int> many(10'000, 1);  // one byte per element: the count equals the bound's order
  const frame f = pack(many);
  auto r = unpack<std::vector<int>>(f);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->size(), many.size());
}

}  // namespace
}  // namespace fabric
