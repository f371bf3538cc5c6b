// The one-screen summary: per family, fabric beside its baseline as ratios, the spread of the
// repetitions behind them, and one or two workloads quoted in full.
#include <cmath>

#include "harness/compare.hpp"
#include "harness/family.hpp"
#include "harness/format.hpp"
#include "harness/output.hpp"
#include "harness/table.hpp"

namespace fabric::perf {

namespace {

std::string range(const ratio_summary& s) {
  return std::to_string(s.count) + (s.count == 1 ? " workload" : " workloads") +
         (s.count > 1 ? ", " + format::ratio(s.lowest) + " to " + format::ratio(s.highest) : "");
}

void line(std::ostream& out, std::string_view label, const std::string& text) {
  out << "  " << label << std::string(label.size() < 13 ? 13 - label.size() : 1, ' ') << text
      << '\n';
}

}  // namespace

void print_summary(const report& r, std::span<const family> families, std::ostream& out) {
  const auto groups = group_by_family(r, families);
  out << "Summary: fabric / its baseline on the same workload in the same run, the geometric mean\n"
         "over the workloads. Throughput above 1 and latency below 1: fabric is faster.\n";
  if (groups.empty()) out << "\nNo runs.\n";
  for (const family_runs& g : groups) {
    const family& f = g.about;
    const family_summary s = summarise(f, g.runs);
    const std::string base = f.baseline_title.empty() ? f.baseline : f.baseline_title;
    out << '\n' << f.name << (base.empty() ? std::string() : " (vs " + base + ")") << '\n';
    if (s.throughput.empty() && s.latency.empty()) {
      line(out, "-", std::to_string(g.runs.size()) + (g.runs.size() == 1 ? " run" : " runs") +
                         ", none with a baseline run of the same workload to compare with");
      continue;
    }
    if (s.throughput_ratio) {
      line(out, "throughput",
           format::ratio(s.throughput_ratio->geomean) + "   " + range(*s.throughput_ratio));
    }
    if (s.p50_ratio) {
      std::string text = format::ratio(s.p50_ratio->geomean) + "   " + range(*s.p50_ratio);
      if (s.p99_ratio) text += "; p99 " + format::ratio(s.p99_ratio->geomean);
      line(out, "latency p50", text);
    }
    if (std::isfinite(s.typical_spread_pct)) {
      line(out, "noise", "a workload's repetitions stray \u00b1" +
                             format::percent(s.typical_spread_pct) +
                             " from their median (typical), \u00b1" +
                             format::percent(s.widest_spread_pct) + " at most");
    }
    std::string_view label = "e.g.";
    if (const auto& c = s.throughput_example) {
      line(out, label,
           workload_label(*c->fabric, s.label_keys) + ": fabric " +
               format::grouped(field(c->fabric, "msgs_per_s")) + ", " + f.baseline + " " +
               format::grouped(field(c->base, "msgs_per_s")) + " " + f.unit + "/s");
      label = "";
    }
    if (const auto& c = s.latency_example) {
      line(out, label,
           workload_label(*c->fabric, s.label_keys) + ": p50 fabric " +
               format::micros(field(c->fabric, "p50_us")) + ", " + f.baseline + " " +
               format::micros(field(c->base, "p50_us")) + " \u00b5s");
    }
  }
}

void print_summary(const report& r, std::ostream& out) { print_summary(r, known_families(), out); }

}  // namespace fabric::perf
