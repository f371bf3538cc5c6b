// The charts of one benchmark family, built from its runs alone: fabric / baseline ratios per
// workload, throughput against each key that varies, and latency percentiles.
#pragma once

#include <cstddef>
#include <ostream>

#include "harness/compare.hpp"
#include "harness/family.hpp"
#include "harness/table.hpp"

namespace fabric::perf {

/// Writes the family's charts as <svg> elements, in this order:
/// - throughput ratio fabric / baseline per compared workload, then p50 latency ratio;
/// - for each of the family's x axes (`family::x_axes`, else every numeric workload key) that
///   takes two or more values within a chart group (`family::chart_by`): messages per second
///   against it, runs at a fixed rate left out;
/// - latency percentiles (p50 .. max) per chart group, of the runs the family compares on latency.
/// fabric is drawn solid and the baselines dashed, in the colour of their workload.
/// Returns the number of charts written.
std::size_t write_family_charts(const family& f, const run_list& runs, const family_summary& s,
                                std::ostream& out);

}  // namespace fabric::perf
