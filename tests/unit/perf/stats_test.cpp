// fabric::perf statistics over repetitions and the helpers that store them in runs.
#include "harness/stats.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace fabric::perf {
namespace {

TEST(Stats, MedianOfOddCountIsTheMiddleValue) {
  EXPECT_EQ(median(std::vector<double>{5.0, 1.0, 3.0}), 3.0);
  EXPECT_EQ(median(std::vector<double>{7.0}), 7.0);
}

TEST(Stats, MedianOfEvenCountIsTheMeanOfTheMiddleTwo) {
  EXPECT_EQ(median(std::vector<double>{4.0, 1.0, 3.0, 10.0}), 3.5);
  EXPECT_EQ(median(std::vector<double>{2.0, 1.0}), 1.5);
}

TEST(Stats, MinimumAndMaximumFindTheExtremes) {
  const std::vector<double> v = {3.0, -2.5, 9.0, 0.0};
  EXPECT_EQ(minimum(v), -2.5);
  EXPECT_EQ(maximum(v), 9.0);
}

TEST(Stats, NoValuesGiveNotANumber) {
  const std::vector<double> none;
  EXPECT_TRUE(std::isnan(median(none)));
  EXPECT_TRUE(std::isnan(minimum(none)));
  EXPECT_TRUE(std::isnan(maximum(none)));
  EXPECT_EQ(summarise(none).count, 0U);
}

TEST(Stats, SummariseGivesAllThree) {
  const summary s = summarise(std::vector<double>{10.0, 30.0, 20.0, 40.0});
  EXPECT_EQ(s.median, 25.0);
  EXPECT_EQ(s.min, 10.0);
  EXPECT_EQ(s.max, 40.0);
  EXPECT_EQ(s.count, 4U);
}

TEST(Stats, SetSummaryWritesMedianAndSpreadFields) {
  run r;
  r.set("bench", "thr");
  set_summary(r, "msgs_per_s", std::vector<double>{900.0, 1000.0, 1100.0});
  EXPECT_EQ(r.number("msgs_per_s"), 1000.0);
  EXPECT_EQ(r.number("min_msgs_per_s"), 900.0);
  EXPECT_EQ(r.number("max_msgs_per_s"), 1100.0);
  EXPECT_EQ(r.fields[1].first, "msgs_per_s");
}

TEST(Stats, SetLatencyWritesMicrosecondPercentiles) {
  histogram h;
  for (std::uint64_t v = 1; v <= 1000; ++v) h.record(v * 1000);  // 1 µs .. 1 ms
  run r;
  set_latency(r, h);
  EXPECT_NEAR(*r.number("p50_us"), 500.0, 0.5);
  EXPECT_NEAR(*r.number("p90_us"), 900.0, 0.9);
  EXPECT_NEAR(*r.number("p99_us"), 990.0, 1.0);
  EXPECT_NEAR(*r.number("p999_us"), 999.0, 1.0);
  EXPECT_EQ(r.number("max_us"), 1000.0);
  EXPECT_EQ(r.number("count"), 1000.0);
  ASSERT_NE(r.get("count"), nullptr);
  EXPECT_TRUE(std::holds_alternative<std::int64_t>(*r.get("count")));
}

TEST(Stats, SetLatencyMediansTakesEachPercentileAcrossRepetitions) {
  // Three repetitions, each with every sample at one value: 100, 300 and 200 µs.
  std::vector<histogram> reps(3);
  const std::uint64_t us[] = {100, 300, 200};
  for (std::size_t i = 0; i < reps.size(); ++i)
    for (int k = 0; k < 10; ++k) reps[i].record(us[i] * 1000);
  run r;
  const std::vector<double> p99 = set_latency_medians(r, reps);
  for (const char* key : {"p50_us", "p90_us", "p99_us", "p999_us", "max_us"})
    EXPECT_NEAR(*r.number(key), 200.0, 0.5) << key;
  ASSERT_EQ(p99.size(), 3U);
  EXPECT_NEAR(p99[1], 300.0, 0.5);
}

}  // namespace
}  // namespace fabric::perf
