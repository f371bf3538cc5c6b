// The table model behind fabric-perf's console and HTML tables: which columns a bench gets and
// how fabric runs are paired with their baselines, built once and rendered by either writer.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "harness/record.hpp"

namespace fabric::perf {

struct column {
  std::string header;
  bool numeric = false;  ///< right-aligned
};

/// A heading spanning `count` columns from `first`, e.g. "fabric µs" over p50..max.
struct column_group {
  std::string label;
  std::size_t first = 0;
  std::size_t count = 0;
};

struct table {
  std::string title;
  std::string note;
  std::vector<column_group> groups;
  std::vector<column> columns;
  std::vector<std::vector<std::string>> rows;
};

using run_list = std::vector<const run*>;

/// Benches in order of first appearance, each with its runs in report order.
std::vector<std::pair<std::string, run_list>> by_bench(const report& r);
std::vector<std::pair<std::string, run_list>> by_bench(const run_list& runs);

/// The table of one bench: "thr" and "lat" show fabric beside its baseline (paired by
/// `workload_key`), any other bench one column per key.
table bench_table(const std::string& bench, const run_list& runs);

/// Every field of every run: one column per key seen, in first-seen order.
table generic_table(const std::string& bench, const run_list& runs, bool keep_bench);

/// `key` of `r` as a number; NaN when `r` is null or has no such number.
double field(const run* r, std::string_view key);

/// `key` of `r` for a table cell: sizes in bytes, others readable; "-" when absent.
std::string cell(const run& r, std::string_view key);

/// The farthest repetition from the median of `key` ("min_<key>" / "max_<key>"), as a
/// percentage of the median; NaN when the run has fewer than two repetitions or no spread.
double spread_pct(const run* r, std::string_view key);

/// `spread_pct` as a cell: "±5.0%", or "-".
std::string spread(const run* r, std::string_view key);

/// "closed", or "open 20,000/s" for a run with a rate.
std::string mode_cell(const run& r);

}  // namespace fabric::perf
