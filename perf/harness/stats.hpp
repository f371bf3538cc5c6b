// Summaries of repeated measurements: fabric-perf reports the median of its repetitions and their
// min / max as the spread, so one noisy repetition neither hides nor fakes a difference.
#pragma once

#include <cstddef>
#include <span>
#include <string_view>
#include <vector>

#include "harness/histogram.hpp"
#include "harness/record.hpp"

namespace fabric::perf {

/// The median (mean of the middle two for an even count); NaN for no values.
double median(std::span<const double> values);
/// The smallest / largest value; NaN for no values.
double minimum(std::span<const double> values) noexcept;
double maximum(std::span<const double> values) noexcept;

/// All three at once, for one headline figure over repetitions.
struct summary {
  double median = 0.0;
  double min = 0.0;
  double max = 0.0;
  std::size_t count = 0;
};
summary summarise(std::span<const double> values);

/// Sets `key` to the median of `values` and "min_<key>" / "max_<key>" to the spread, the field
/// convention the writers read (e.g. msgs_per_s, min_msgs_per_s, max_msgs_per_s).
void set_summary(run& r, std::string_view key, std::span<const double> values);

/// Sets the latency fields of a "lat" run from a histogram of nanoseconds: p50_us, p90_us,
/// p99_us, p999_us, max_us (microseconds, as doubles) and count.
void set_latency(run& r, const histogram& h);

/// Sets p50_us, p90_us, p99_us, p999_us and max_us, each the median over the repetitions'
/// histograms of that percentile (the one convention of every benchmark family). Returns the
/// per-repetition p99 values, for callers that also report their spread.
std::vector<double> set_latency_medians(run& r, std::span<const histogram> per_rep);

}  // namespace fabric::perf
