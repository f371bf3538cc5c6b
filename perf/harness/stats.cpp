// Median / min / max over repetitions, and the helpers that store them as run fields.
#include "harness/stats.hpp"

#include <algorithm>
#include <limits>
#include <string>
#include <vector>

namespace fabric::perf {

namespace {
constexpr double not_a_number = std::numeric_limits<double>::quiet_NaN();
}  // namespace

double median(std::span<const double> values) {
  if (values.empty()) return not_a_number;
  std::vector<double> sorted(values.begin(), values.end());
  std::sort(sorted.begin(), sorted.end());
  const std::size_t mid = sorted.size() / 2;
  if (sorted.size() % 2 == 1) return sorted[mid];
  // Halving each term first cannot overflow to infinity for huge values.
  return sorted[mid - 1] / 2.0 + sorted[mid] / 2.0;
}

double minimum(std::span<const double> values) noexcept {
  if (values.empty()) return not_a_number;
  return *std::min_element(values.begin(), values.end());
}

double maximum(std::span<const double> values) noexcept {
  if (values.empty()) return not_a_number;
  return *std::max_element(values.begin(), values.end());
}

summary summarise(std::span<const double> values) {
  return summary{median(values), minimum(values), maximum(values), values.size()};
}

void set_summary(run& r, std::string_view key, std::span<const double> values) {
  const summary s = summarise(values);
  r.set(key, s.median);
  r.set("min_" + std::string(key), s.min);
  r.set("max_" + std::string(key), s.max);
}

void set_latency(run& r, const histogram& h) {
  const auto us = [](std::uint64_t ns) { return static_cast<double>(ns) / 1000.0; };
  r.set("p50_us", us(h.value_at_percentile(50.0)));
  r.set("p90_us", us(h.value_at_percentile(90.0)));
  r.set("p99_us", us(h.value_at_percentile(99.0)));
  r.set("p999_us", us(h.value_at_percentile(99.9)));
  r.set("max_us", us(h.max()));
  r.set("count", static_cast<std::int64_t>(h.count()));
}

std::vector<double> set_latency_medians(run& r, std::span<const histogram> per_rep) {
  struct figure {
    const char* key;
    double percentile;  // < 0: the maximum
  };
  static constexpr figure figures[] = {
      {"p50_us", 50}, {"p90_us", 90}, {"p99_us", 99}, {"p999_us", 99.9}, {"max_us", -1}};
  std::vector<double> p99;
  for (const figure& f : figures) {
    std::vector<double> values;
    values.reserve(per_rep.size());
    for (const histogram& h : per_rep) {
      const std::uint64_t ns = f.percentile < 0 ? h.max() : h.value_at_percentile(f.percentile);
      values.push_back(static_cast<double>(ns) / 1000.0);
    }
    r.set(f.key, median(values));
    if (f.percentile == 99) p99 = values;
  }
  return p99;
}

}  // namespace fabric::perf
