// Durations as daemons and tools read and write them (src/support/duration.cpp).
#include <fabric_support/duration.hpp>

#include <gtest/gtest.h>

#include <limits>
#include <string>

namespace {

using fabric::support::format_duration;
using fabric::support::parse_duration;
using std::chrono::milliseconds;

TEST(DurationTest, ReadsEachUnitAndBareMilliseconds) {
  EXPECT_EQ(parse_duration("250ms"), milliseconds(250));
  EXPECT_EQ(parse_duration("5s"), milliseconds(5000));
  EXPECT_EQ(parse_duration("2m"), milliseconds(120'000));
  EXPECT_EQ(parse_duration("2500"), milliseconds(2500));
  EXPECT_EQ(parse_duration("0"), milliseconds(0));
}

TEST(DurationTest, ReadsFractionsExactly) {
  EXPECT_EQ(parse_duration("2.5s"), milliseconds(2500));
  EXPECT_EQ(parse_duration("0.29s"), milliseconds(290));
  EXPECT_EQ(parse_duration(".5m"), milliseconds(30'000));
  EXPECT_EQ(parse_duration("3."), milliseconds(3));
}

TEST(DurationTest, DropsFractionsOfAMillisecond) {
  EXPECT_EQ(parse_duration("1.5ms"), milliseconds(1));
  EXPECT_EQ(parse_duration("0.0001s"), milliseconds(0));
}

TEST(DurationTest, AllowsSpacesAroundNumberAndUnit) {
  EXPECT_EQ(parse_duration(" 100 ms "), milliseconds(100));
  EXPECT_EQ(parse_duration("\t3s"), milliseconds(3000));
}

TEST(DurationTest, RejectsWhatIsNotADuration) {
  for (const char* bad : {"", " ", "ms", "s", ".", "-5", "+5", "-5s", "10parsecs", "5 s s", "5h", "5S",
                          "1e3", "5ms5", "1 2", "0x10", "five"})
    EXPECT_EQ(parse_duration(bad), std::nullopt) << "'" << bad << "'";
}

TEST(DurationTest, RejectsValuesTooLargeToHold) {
  EXPECT_EQ(parse_duration("9223372036854775807"), std::nullopt);  // 19 digits
  EXPECT_EQ(parse_duration("999999999999999999m"), std::nullopt);  // fits the digits, not the type
  EXPECT_EQ(parse_duration("0.0000000000000000001s"), std::nullopt);  // 19 fraction digits
  EXPECT_EQ(parse_duration("999999999999999999"), milliseconds(999'999'999'999'999'999));
}

TEST(DurationTest, WritesTheLargestExactUnit) {
  EXPECT_EQ(format_duration(milliseconds(120'000)), "2m");
  EXPECT_EQ(format_duration(milliseconds(30'000)), "30s");
  EXPECT_EQ(format_duration(milliseconds(90'000)), "90s");
  EXPECT_EQ(format_duration(milliseconds(2500)), "2500ms");
  EXPECT_EQ(format_duration(milliseconds(1)), "1ms");
  EXPECT_EQ(format_duration(milliseconds(0)), "0ms");
  EXPECT_EQ(format_duration(milliseconds(-2000)), "-2s");
}

TEST(DurationTest, ReadsBackWhatItWrites) {
  for (const long long ms : {0LL, 1LL, 999LL, 1000LL, 2500LL, 60'000LL, 61'000LL, 86'400'000LL,
                             std::numeric_limits<long long>::max() / 60'000 * 60'000})
    EXPECT_EQ(parse_duration(format_duration(milliseconds(ms))), milliseconds(ms)) << ms;
}

}  // namespace
