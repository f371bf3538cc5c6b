// fabric::perf::histogram: bucket arithmetic and the percentile walk.
#include "harness/histogram.hpp"

#include <algorithm>
#include <bit>
#include <cmath>

namespace fabric::perf {

namespace {

// 1024 sub-buckets per power of two keeps the width of every bucket at most 1/1024 of its lowest
// value: three significant decimal digits. The first 2048 values need no rounding at all.
constexpr unsigned sub_bits = 10;
constexpr std::uint64_t linear_limit = std::uint64_t{2} << sub_bits;  // 2048

// How far values in bucket `index` are shifted: 0 in the exact region.
unsigned shift_of(std::size_t index) noexcept {
  const std::size_t group = index >> sub_bits;
  return group <= 1 ? 0U : static_cast<unsigned>(group - 1);
}

}  // namespace

// Above the exact region a value v with top bit e is v >> (e - 10), a number in [1024, 2048), and
// lands at index shift * 1024 + that number: the exact region continues without a gap.
std::size_t histogram::bucket_index(std::uint64_t ns) noexcept {
  if (ns < linear_limit) return static_cast<std::size_t>(ns);
  const auto top_bit = static_cast<unsigned>(std::bit_width(ns)) - 1U;
  const unsigned shift = top_bit - sub_bits;
  return (static_cast<std::size_t>(shift) << sub_bits) + static_cast<std::size_t>(ns >> shift);
}

std::uint64_t histogram::lowest_equivalent(std::size_t index) noexcept {
  const unsigned shift = shift_of(index);
  const std::uint64_t sub = index - (static_cast<std::size_t>(shift) << sub_bits);
  return sub << shift;
}

std::uint64_t histogram::highest_equivalent(std::size_t index) noexcept {
  const unsigned shift = shift_of(index);
  return lowest_equivalent(index) + ((std::uint64_t{1} << shift) - 1U);
}

histogram::histogram(std::uint64_t highest_trackable) {
  const std::size_t last = bucket_index(std::max(highest_trackable, linear_limit - 1U));
  counts_.assign(last + 1U, 0U);
  highest_trackable_ = highest_equivalent(last);
}

void histogram::record_n(std::uint64_t ns, std::uint64_t count) noexcept {
  if (count == 0) return;
  const std::size_t index = std::min(bucket_index(ns), counts_.size() - 1U);
  counts_[index] += count;
  if (count_ == 0 || ns < min_) min_ = ns;
  if (ns > max_) max_ = ns;
  count_ += count;
  sum_ += static_cast<double>(ns) * static_cast<double>(count);
}

// Bucket indices mean the same values whatever the range, so a merge is an element-wise sum with
// the other's excess folded into our last bucket.
void histogram::merge(const histogram& other) {
  if (other.count_ == 0) return;
  const std::size_t last = counts_.size() - 1U;
  for (std::size_t i = 0; i < other.counts_.size(); ++i) {
    if (other.counts_[i] != 0) counts_[std::min(i, last)] += other.counts_[i];
  }
  if (count_ == 0 || other.min_ < min_) min_ = other.min_;
  max_ = std::max(max_, other.max_);
  count_ += other.count_;
  sum_ += other.sum_;
}

void histogram::reset() noexcept {
  std::fill(counts_.begin(), counts_.end(), 0U);
  count_ = 0;
  min_ = 0;
  max_ = 0;
  sum_ = 0.0;
}

double histogram::mean() const noexcept {
  return count_ == 0 ? 0.0 : sum_ / static_cast<double>(count_);
}

// Nearest rank: the smallest value with at least p % of the values at or below it.
std::uint64_t histogram::value_at_percentile(double p) const noexcept {
  if (count_ == 0) return 0;
  if (!(p > 0.0)) return min_;  // also catches NaN
  if (p >= 100.0) return max_;
  // The tiny shave stops 99.9 % of 1000 from rounding up to rank 1000 through binary fractions.
  const long double exact = static_cast<long double>(p) / 100.0L * static_cast<long double>(count_);
  auto rank = static_cast<std::uint64_t>(std::ceil(exact * (1.0L - 1e-12L)));
  rank = std::clamp<std::uint64_t>(rank, 1U, count_);
  if (rank == count_) return max_;
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= rank) return std::clamp(highest_equivalent(i), min_, max_);
  }
  return max_;
}

}  // namespace fabric::perf
