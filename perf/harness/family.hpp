// Benchmark families as the report presents them: which benches belong together, what fabric is
// compared with, along which keys the charts run and what the summary quotes. A family declared
// here gets its charts and summary lines from the same writers as every other.
#pragma once

#include <functional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "harness/record.hpp"
#include "harness/table.hpp"

namespace fabric::perf {

struct family {
  /// Section id and summary label: "patterns", "journal", "majordomo".
  std::string name;
  /// The section's heading.
  std::string title;
  /// The "bench" values of the family's runs.
  std::vector<std::string> benches;
  /// The "impl" every ratio compares fabric with.
  std::string baseline = "raw";
  /// How the summary names the baseline ("raw libzmq"); empty: `baseline`.
  std::string baseline_title;
  /// What "msgs_per_s" counts in this family: "messages", "records", "requests".
  std::string unit = "messages";
  /// One sentence under the heading: what was measured and how to read it.
  std::string note;
  /// One chart per combination of these keys' values (the first names the chart).
  std::vector<std::string> chart_by;
  /// Numeric keys throughput is drawn against, one chart each where the key takes two or more
  /// values; empty: every numeric key that identifies a workload.
  std::vector<std::string> x_axes;
  /// The workload the summary quotes: keys and values as text, e.g. {"size", "256"}. Where no
  /// workload matches, the first compared one is quoted.
  std::vector<std::pair<std::string, std::string>> example;
  /// Whether a fabric run's latency is compared with its baseline's; unset: every run whose
  /// baseline also measured latency. (A closed loop that keeps a window of requests in flight
  /// measures its queue, not the system: such runs are compared on throughput only.)
  std::function<bool(const run&)> compare_latency;
};

/// The families fabric-perf knows, in the order the report shows them.
const std::vector<family>& known_families();

/// A family and its runs, in report order.
struct family_runs {
  family about;
  run_list runs;
};

/// Groups the runs of `r` by family, in order of each family's first run. A bench that no family
/// in `families` claims becomes a family of its own: named after the bench, compared with the
/// first impl other than "fabric" among its runs, charted along every numeric workload key.
std::vector<family_runs> group_by_family(const report& r, std::span<const family> families);

}  // namespace fabric::perf
