// fabric::perf::histogram: percentiles within 0.1 % of the truth, exact extremes, merge, reset,
// clamping.
#include "harness/histogram.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

namespace fabric::perf {
namespace {

// The nearest-rank percentile of sorted values: what the histogram approximates.
std::uint64_t exact_percentile(const std::vector<std::uint64_t>& sorted, double p) {
  const auto n = static_cast<double>(sorted.size());
  auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * n - 1e-9));
  rank = std::clamp<std::size_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

void expect_within_a_thousandth(std::uint64_t got, std::uint64_t want, double p) {
  const double error = std::fabs(static_cast<double>(got) - static_cast<double>(want));
  EXPECT_LE(error, 0.001 * static_cast<double>(want))
      << "p" << p << ": got " << got << ", want " << want;
}

constexpr std::array<double, 10> percentiles = {1, 10, 25, 50, 75, 90, 99, 99.9, 99.99, 99.999};

TEST(Histogram, EmptyHistogramReportsZeros) {
  const histogram h;
  EXPECT_EQ(h.count(), 0U);
  EXPECT_EQ(h.min(), 0U);
  EXPECT_EQ(h.max(), 0U);
  EXPECT_EQ(h.mean(), 0.0);
  EXPECT_EQ(h.value_at_percentile(50), 0U);
}

TEST(Histogram, ValuesBelowTwoThousandAreExact) {
  histogram h;
  for (std::uint64_t v = 1; v <= 2000; ++v) h.record(v);
  EXPECT_EQ(h.value_at_percentile(50), 1000U);
  EXPECT_EQ(h.value_at_percentile(90), 1800U);
  EXPECT_EQ(h.value_at_percentile(99.9), 1998U);
  EXPECT_EQ(h.value_at_percentile(100), 2000U);
  EXPECT_EQ(h.value_at_percentile(0), 1U);
}

TEST(Histogram, UniformDistributionPercentilesAreWithinOneThousandth) {
  histogram h;
  std::vector<std::uint64_t> values;
  for (std::uint64_t v = 1; v <= 1'000'000; ++v) {
    h.record(v * 7);
    values.push_back(v * 7);
  }
  for (const double p : percentiles)
    expect_within_a_thousandth(h.value_at_percentile(p), exact_percentile(values, p), p);
}

TEST(Histogram, LogUniformRandomValuesMatchExactPercentiles) {
  histogram h;
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> exponent(0.0, 12.0);  // 1 ns .. 1000 s
  std::vector<std::uint64_t> values;
  for (int i = 0; i < 200'000; ++i) {
    const auto v = static_cast<std::uint64_t>(std::pow(10.0, exponent(rng)));
    values.push_back(v);
    h.record(v);
  }
  std::sort(values.begin(), values.end());
  for (const double p : percentiles)
    expect_within_a_thousandth(h.value_at_percentile(p), exact_percentile(values, p), p);
  EXPECT_EQ(h.value_at_percentile(100), values.back());
}

TEST(Histogram, BimodalLatenciesKeepBothModes) {
  histogram h;
  h.record_n(20'000, 990);    // 20 µs fast path
  h.record_n(5'000'000, 10);  // 5 ms stalls
  expect_within_a_thousandth(h.value_at_percentile(50), 20'000, 50);
  expect_within_a_thousandth(h.value_at_percentile(99), 20'000, 99);
  expect_within_a_thousandth(h.value_at_percentile(99.5), 5'000'000, 99.5);
}

TEST(Histogram, MinMaxCountAndMeanAreExact) {
  histogram h;
  h.record(123'456'789);
  h.record(987'654'321);
  h.record(5'000);
  EXPECT_EQ(h.count(), 3U);
  EXPECT_EQ(h.min(), 5'000U);
  EXPECT_EQ(h.max(), 987'654'321U);
  EXPECT_DOUBLE_EQ(h.mean(), (123'456'789.0 + 987'654'321.0 + 5'000.0) / 3.0);
  EXPECT_EQ(h.value_at_percentile(100), 987'654'321U);
}

TEST(Histogram, PercentileNeverExceedsMaxNorFallsBelowMin) {
  histogram h;
  h.record(1'000'001);
  EXPECT_EQ(h.value_at_percentile(50), 1'000'001U);
  EXPECT_EQ(h.value_at_percentile(0.1), 1'000'001U);
}

TEST(Histogram, RecordNCountsEveryOccurrence) {
  histogram h;
  h.record_n(100, 1000);
  h.record_n(200, 0);
  EXPECT_EQ(h.count(), 1000U);
  EXPECT_EQ(h.min(), 100U);
  EXPECT_EQ(h.max(), 100U);
  EXPECT_DOUBLE_EQ(h.mean(), 100.0);
}

TEST(Histogram, ZeroIsAValidValue) {
  histogram h;
  h.record(0);
  h.record(0);
  h.record(10);
  EXPECT_EQ(h.min(), 0U);
  EXPECT_EQ(h.value_at_percentile(50), 0U);
  EXPECT_EQ(h.value_at_percentile(100), 10U);
}

TEST(Histogram, MergeAddsCountsAndKeepsExtremes) {
  histogram a;
  histogram b;
  histogram both;
  for (std::uint64_t v = 1; v <= 50'000; ++v) {
    a.record(v * 3);
    both.record(v * 3);
  }
  for (std::uint64_t v = 1; v <= 30'000; ++v) {
    b.record(v * 1'000);
    both.record(v * 1'000);
  }
  a.merge(b);
  EXPECT_EQ(a.count(), both.count());
  EXPECT_EQ(a.min(), 3U);
  EXPECT_EQ(a.max(), 30'000'000U);
  EXPECT_DOUBLE_EQ(a.mean(), both.mean());
  for (const double p : percentiles)
    EXPECT_EQ(a.value_at_percentile(p), both.value_at_percentile(p)) << p;
}

TEST(Histogram, MergeIntoEmptyHistogramTakesTheOthersMinimum) {
  histogram a;
  histogram b;
  b.record(777'777);
  a.merge(b);
  EXPECT_EQ(a.min(), 777'777U);
  EXPECT_EQ(a.count(), 1U);
}

TEST(Histogram, MergeFromWiderRangeFoldsIntoLastBucket) {
  histogram narrow(1'000'000);  // 1 ms
  histogram wide;
  narrow.record_n(100, 2);
  wide.record_n(10'000'000'000ULL, 2);  // 10 s
  narrow.merge(wide);
  EXPECT_EQ(narrow.count(), 4U);
  EXPECT_EQ(narrow.max(), 10'000'000'000ULL);
  EXPECT_EQ(narrow.value_at_percentile(50), 100U);
  EXPECT_EQ(narrow.value_at_percentile(75), narrow.highest_trackable());
  EXPECT_EQ(narrow.value_at_percentile(100), 10'000'000'000ULL);
}

TEST(Histogram, ResetForgetsEverything) {
  histogram h;
  h.record(5);
  h.record(5'000'000);
  const std::size_t buckets = h.bucket_count();
  h.reset();
  EXPECT_EQ(h.count(), 0U);
  EXPECT_EQ(h.max(), 0U);
  EXPECT_EQ(h.min(), 0U);
  EXPECT_EQ(h.value_at_percentile(99), 0U);
  EXPECT_EQ(h.bucket_count(), buckets);
  h.record(42);
  EXPECT_EQ(h.min(), 42U);
  EXPECT_EQ(h.value_at_percentile(50), 42U);
}

TEST(Histogram, HugeValuesAreClampedButMaxStaysExact) {
  histogram h;
  const std::uint64_t huge = std::numeric_limits<std::uint64_t>::max();
  h.record(10);
  h.record(huge);
  h.record(huge);
  EXPECT_EQ(h.count(), 3U);
  EXPECT_EQ(h.max(), huge);
  EXPECT_EQ(h.value_at_percentile(100), huge);
  const std::uint64_t p50 = h.value_at_percentile(50);
  EXPECT_LE(p50, h.highest_trackable());
  EXPECT_GE(p50, h.highest_trackable() - h.highest_trackable() / 1024);
}

TEST(Histogram, DefaultRangeCoversAnHourWithConstantMemory) {
  histogram h;
  EXPECT_GE(h.highest_trackable(), 3'600'000'000'000ULL);
  const std::size_t buckets = h.bucket_count();
  EXPECT_LT(buckets, 40'000U);
  for (std::uint64_t v = 1; v < 3'600'000'000'000ULL; v = v * 3 + 1) h.record(v);
  EXPECT_EQ(h.bucket_count(), buckets);
  const std::uint64_t hour = 3'600'000'000'000ULL;
  h.reset();
  h.record(hour);
  h.record(hour - 1);
  expect_within_a_thousandth(h.value_at_percentile(50), hour - 1, 50);
}

TEST(Histogram, BucketsAreContiguousAndNarrowerThanAThousandth) {
  const histogram h;
  for (std::size_t i = 0; i + 1 < h.bucket_count(); ++i) {
    const std::uint64_t lo = histogram::lowest_equivalent(i);
    const std::uint64_t hi = histogram::highest_equivalent(i);
    ASSERT_EQ(histogram::lowest_equivalent(i + 1), hi + 1) << i;
    ASSERT_EQ(histogram::bucket_index(lo), i);
    ASSERT_EQ(histogram::bucket_index(hi), i);
    ASSERT_LE(static_cast<double>(hi - lo),
              static_cast<double>(std::max<std::uint64_t>(lo, 1)) / 1024.0)
        << i;
  }
  EXPECT_EQ(histogram::highest_equivalent(
                histogram::bucket_index(std::numeric_limits<std::uint64_t>::max())),
            std::numeric_limits<std::uint64_t>::max());
}

}  // namespace
}  // namespace fabric::perf
