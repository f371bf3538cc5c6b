// fabric beside its baseline, per family: which runs measured the same workload, their ratios,
// and the figures the summary and the report's charts are made of.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "harness/family.hpp"
#include "harness/record.hpp"

namespace fabric::perf {

/// A fabric run and the baseline run of the same workload.
struct comparison {
  const run* fabric = nullptr;
  const run* base = nullptr;
};

/// Ratios fabric / baseline over a family's workloads.
struct ratio_summary {
  std::size_t count = 0;
  double geomean = 0.0;  ///< geometric mean: a workload twice as fast and one half as fast give 1
  double lowest = 0.0;
  double highest = 0.0;
};

struct family_summary {
  /// Pairs compared on messages per second: neither side ran at a fixed rate ("rate"), since a
  /// paced run's throughput is its schedule.
  std::vector<comparison> throughput;
  /// Pairs compared on latency: both sides measured p50_us and the family compares the run.
  std::vector<comparison> latency;
  std::optional<ratio_summary> throughput_ratio;  ///< msgs_per_s
  std::optional<ratio_summary> p50_ratio;         ///< p50_us
  std::optional<ratio_summary> p99_ratio;         ///< p99_us
  /// How far a compared run's repetitions stray from its median (see `spread_pct`): the median
  /// over the compared runs and the widest, in percent; NaN without repetitions.
  double typical_spread_pct = 0.0;
  double widest_spread_pct = 0.0;
  /// The workloads the summary quotes (the family's example, else the first compared).
  std::optional<comparison> throughput_example;
  std::optional<comparison> latency_example;
  /// The keys that tell the family's fabric runs apart (all of them for a family of one run),
  /// without "bench": what `workload_label` names a workload by.
  std::vector<std::string> label_keys;
};

/// Whether `base` measured the workload of fabric run `fabric`: every key that identifies the
/// baseline's workload (see `is_measurement_key`) is in the fabric run with the same value. The
/// fabric run may have more (its own settings, such as a worker credit).
bool same_workload(const run& fabric, const run& base);

/// How far the repetitions behind a comparison of `key` stray: the larger `spread_pct` of the two
/// runs, of `key` or, for a latency percentile without a spread of its own, of p99_us. A ratio
/// closer to 1 than this is noise. NaN without repetitions.
double noise_pct(const comparison& c, std::string_view key);

/// Pairs every fabric run of `runs` with the first run of `f.baseline` that measured its workload,
/// and sums up the ratios.
family_summary summarise(const family& f, const run_list& runs);

/// The identity keys (not "impl", nor measurements) whose values differ between runs of one
/// impl, in first-seen order: what tells those runs apart.
std::vector<std::string> varying_keys(const run_list& runs);

/// A short name for `r`'s workload from `keys`: "push_pull tcp 256 B", "async closed workers 4".
std::string workload_label(const run& r, const std::vector<std::string>& keys);

/// The table of a family's runs, fabric beside its baseline: the keys that tell workloads apart,
/// then messages per second of both, their ratio and spreads, then p50 and p99 of both and the
/// p50 ratio (columns only for figures some run has). A ratio is shown only where the summary
/// compares the pair; baseline runs no fabric run matched get rows of their own.
table comparison_table(const family& f, const run_list& runs);

/// `key` of `r` as text for matching: integers and whole doubles alike ("4"), strings as is;
/// empty when absent.
std::string key_value(const run& r, const std::string& key);

}  // namespace fabric::perf
