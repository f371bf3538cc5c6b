// Tests for the byte-order helpers every wire and disk integer goes through.
#include "core/byte_order.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace {

using namespace fabric::detail;

TEST(ByteOrderTest, StoresBigEndianMostSignificantByteFirst) {
  std::array<unsigned char, 8> out{};
  store_be(std::uint64_t{0x0102030405060708}, out.data());
  EXPECT_EQ(out, (std::array<unsigned char, 8>{1, 2, 3, 4, 5, 6, 7, 8}));
  EXPECT_EQ(load_be<std::uint64_t>(out.data()), 0x0102030405060708u);
}

TEST(ByteOrderTest, StoresLittleEndianLeastSignificantByteFirst) {
  std::array<std::byte, 4> out{};
  store_le(std::uint32_t{0x01020304}, out.data());
  EXPECT_EQ(out[0], std::byte{4});
  EXPECT_EQ(out[3], std::byte{1});
  EXPECT_EQ(load_le<std::uint32_t>(out.data()), 0x01020304u);
}

TEST(ByteOrderTest, BigEndianKeysSortLikeTheirNumbers) {
  std::string a, b;
  append_be(a, std::uint64_t{255});
  append_be(b, std::uint64_t{256});
  EXPECT_LT(a, b);
  EXPECT_EQ(a.size(), 8u);
}

TEST(ByteOrderTest, RoundTripsEveryWidthThroughChars) {
  std::string s;
  append_le(s, std::uint16_t{0xBEEF});
  append_be(s, std::uint32_t{0xDEADBEEF});
  append_le(s, std::uint64_t{~0ull - 1});
  EXPECT_EQ(load_le<std::uint16_t>(s.data()), 0xBEEF);
  EXPECT_EQ(load_be<std::uint32_t>(s.data() + 2), 0xDEADBEEFu);
  EXPECT_EQ(load_le<std::uint64_t>(s.data() + 6), ~0ull - 1);
}

}  // namespace
