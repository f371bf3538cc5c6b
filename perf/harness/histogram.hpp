// Latency histogram for fabric-perf: log-bucketed like HdrHistogram (three significant digits), so
// recording is O(1), allocation-free and constant in memory however many samples a run takes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace fabric::perf {

/// Counts of nanosecond values in buckets whose width is at most 1/1024 of their lowest value.
///
/// Values below 2048 are counted exactly. Above that, each power-of-two range [2^e, 2^(e+1)) is
/// split into 1024 equal sub-buckets, so any value read back (a percentile) is within 1/1024
/// (< 0.1 %) of the recorded one. Values above `highest_trackable()` are counted in the last
/// bucket; `max()`, `min()` and `mean()` stay exact regardless.
class histogram {
 public:
  /// One hour: longer than any latency a benchmark should ever see.
  static constexpr std::uint64_t default_highest_trackable = 3'600'000'000'000ULL;

  /// Allocates every bucket up front (about 270 KiB for the default range) so `record` never does.
  explicit histogram(std::uint64_t highest_trackable = default_highest_trackable);

  /// Counts one value. O(1), no allocation, noexcept.
  void record(std::uint64_t ns) noexcept { record_n(ns, 1); }
  /// Counts `count` occurrences of the same value.
  void record_n(std::uint64_t ns, std::uint64_t count) noexcept;

  /// Adds every value of `other` (which may cover a different range) into this histogram.
  void merge(const histogram& other);
  /// Forgets every value; keeps the buckets.
  void reset() noexcept;

  std::uint64_t count() const noexcept { return count_; }
  /// Exact smallest and largest recorded values; 0 when empty.
  std::uint64_t min() const noexcept { return count_ == 0 ? 0 : min_; }
  std::uint64_t max() const noexcept { return max_; }
  /// Exact arithmetic mean of the recorded values; 0 when empty.
  double mean() const noexcept;

  /// The value below or at which `p` percent of the values lie (p in [0, 100], clamped), given as
  /// the highest value equivalent to its bucket but never above `max()` nor below `min()`; so
  /// p = 100 is `max()` and p = 0 is `min()`. 0 when empty.
  std::uint64_t value_at_percentile(double p) const noexcept;

  /// The range covered without clamping (at least the one asked for at construction).
  std::uint64_t highest_trackable() const noexcept { return highest_trackable_; }
  /// Number of buckets, i.e. the fixed memory footprint in counters.
  std::size_t bucket_count() const noexcept { return counts_.size(); }

  /// The bucket a value falls in, and the lowest / highest values sharing that bucket.
  static std::size_t bucket_index(std::uint64_t ns) noexcept;
  static std::uint64_t lowest_equivalent(std::size_t index) noexcept;
  static std::uint64_t highest_equivalent(std::size_t index) noexcept;

 private:
  std::vector<std::uint64_t> counts_;
  std::uint64_t highest_trackable_ = 0;
  std::uint64_t count_ = 0;
  std::uint64_t min_ = 0;
  std::uint64_t max_ = 0;
  // A double, not an integer, because count * value can exceed 2^64 (hours times billions).
  double sum_ = 0.0;
};

}  // namespace fabric::perf
