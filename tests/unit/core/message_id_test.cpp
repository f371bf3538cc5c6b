// Tests message ids: hex text both ways, and the generator's order and prefixes.
#include <fabric/error.hpp>
#include <fabric/message_id.hpp>

#include <gtest/gtest.h>

#include <cstdint>
#include <set>
#include <string>

namespace fabric {
namespace {

TEST(MessageIdTest, ToStringIs32LowercaseHexDigits) {
  message_id id;
  for (std::size_t i = 0; i < id.bytes.size(); ++i) id.bytes[i] = static_cast<std::uint8_t>(i * 17);
  EXPECT_EQ(id.to_string(), "00112233445566778899aabbccddeeff");
  EXPECT_EQ(message_id().to_string(), std::string(32, '0'));
}

TEST(MessageIdTest, ParseInvertsToString) {
  id_generator ids;
  for (int i = 0; i < 100; ++i) {
    const message_id id = ids.next();
    auto parsed = message_id::parse(id.to_string());
    ASSERT_TRUE(parsed);
    EXPECT_EQ(*parsed, id);
  }
}

TEST(MessageIdTest, ParseAcceptsUppercaseHex) {
  auto parsed = message_id::parse("00112233445566778899AABBCCDDEEFF");
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->to_string(), "00112233445566778899aabbccddeeff");
}

TEST(MessageIdTest, ParseRejectsBadInput) {
  EXPECT_TRUE(message_id::parse("").is(errc::malformed));
  EXPECT_TRUE(message_id::parse(std::string(31, '0')).is(errc::malformed));
  EXPECT_TRUE(message_id::parse(std::string(33, '0')).is(errc::malformed));
  EXPECT_TRUE(message_id::parse("0011223344556677889900aabbccddeg").is(errc::malformed));
  EXPECT_TRUE(message_id::parse("0011223344556677 899aabbccddeeff").is(errc::malformed));
  EXPECT_TRUE(message_id::parse("-0112233445566778899aabbccddeeff").is(errc::malformed));
  EXPECT_TRUE(message_id::parse(std::string(32, '\0')).is(errc::malformed));
}

TEST(MessageIdTest, IsZeroOnlyForTheDefault) {
  EXPECT_TRUE(message_id().is_zero());
  message_id id;
  id.bytes[15] = 1;
  EXPECT_FALSE(id.is_zero());
}

TEST(IdGeneratorTest, NeverRepeatsAndAlwaysIncreases) {
  id_generator ids;
  std::set<message_id> seen;
  message_id previous = ids.next();
  EXPECT_FALSE(previous.is_zero());
  seen.insert(previous);
  for (int i = 0; i < 10'000; ++i) {
    const message_id id = ids.next();
    EXPECT_GT(id, previous);
    EXPECT_TRUE(seen.insert(id).second) << id.to_string();
    previous = id;
  }
}

TEST(IdGeneratorTest, KeepsItsPrefixAndCountsFromOne) {
  id_generator ids;
  const message_id first = ids.next();
  const message_id second = ids.next();
  EXPECT_EQ(first.to_string().substr(0, 16), second.to_string().substr(0, 16));
  EXPECT_EQ(first.to_string().substr(16), "0000000000000001");
  EXPECT_EQ(second.to_string().substr(16), "0000000000000002");
}

TEST(IdGeneratorTest, GeneratorsDrawDifferentPrefixes) {
  id_generator a;
  id_generator b;
  // Equal 64-bit random prefixes happen with probability 2^-64.
  EXPECT_NE(a.next().to_string().substr(0, 16), b.next().to_string().substr(0, 16));
}

}  // namespace
}  // namespace fabric
