// The HTML writer: one self-contained page (inline CSS and SVG, no script, nothing fetched). It
// answers "how fast is fabric here?" first, then gives every family its charts and its tables.
#include <cmath>

#include "harness/charts.hpp"
#include "harness/compare.hpp"
#include "harness/format.hpp"
#include "harness/output.hpp"
#include "harness/svg_chart.hpp"
#include "harness/table.hpp"

namespace fabric::perf {

namespace {

using svg::escape;

void html_table(const table& t, std::ostream& out) {
  out << "<div class=\"scroll\"><table>\n<thead>\n";
  if (!t.groups.empty()) {
    out << "<tr class=\"grp\">";
    std::size_t c = 0;
    for (const column_group& g : t.groups) {
      if (g.first > c) out << "<th colspan=\"" << g.first - c << "\"></th>";
      out << "<th colspan=\"" << g.count << "\">" << escape(g.label) << "</th>";
      c = g.first + g.count;
    }
    if (c < t.columns.size()) out << "<th colspan=\"" << t.columns.size() - c << "\"></th>";
    out << "</tr>\n";
  }
  out << "<tr>";
  for (const column& c : t.columns) {
    out << (c.numeric ? "<th class=\"n\">" : "<th>") << escape(c.header) << "</th>";
  }
  out << "</tr>\n</thead>\n<tbody>\n";
  for (const auto& row : t.rows) {
    out << "<tr>";
    for (std::size_t c = 0; c < t.columns.size(); ++c) {
      out << (t.columns[c].numeric ? "<td class=\"n\">" : "<td>")
          << escape(c < row.size() ? row[c] : std::string()) << "</td>";
    }
    out << "</tr>\n";
  }
  out << "</tbody>\n</table></div>\n";
}

constexpr std::string_view css = R"(
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; color: #111;
       max-width: 1240px; margin: 24px auto; padding: 0 16px; line-height: 1.4; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 32px 0 6px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
h3 { font-size: 15px; margin: 18px 0 6px; }
.sub, .note { color: #555; font-size: 13px; margin: 2px 0 8px; }
table { border-collapse: collapse; font-size: 13px; margin: 6px 0 14px; }
th, td { padding: 3px 10px; text-align: left; white-space: nowrap;
         border-bottom: 1px solid #e6e6e6; }
th { background: #f3f3f3; font-weight: 600; }
tr.grp th { text-align: center; background: #fff; border-bottom: 2px solid #bbb; }
th.n, td.n { text-align: right; font-variant-numeric: tabular-nums; }
tbody tr:nth-child(even) td { background: #fafafa; }
table.facts th { background: none; font-weight: 600; }
table.summary td { white-space: normal; vertical-align: top; padding: 6px 12px; }
table.summary td.big { font-size: 22px; font-weight: 600; text-align: right; }
table.summary .small { display: block; color: #555; font-size: 12px; font-weight: normal; }
.faster { color: #1b5e96; }
.slower { color: #b3561b; }
.noise { color: #777; }
.scroll { overflow-x: auto; }
.charts { display: flex; flex-wrap: wrap; align-items: flex-start; gap: 16px; margin: 10px 0 18px; }
.charts svg { border: 1px solid #ddd; border-radius: 4px; max-width: 100%; height: auto; }
details { margin: 18px 0; }
summary { cursor: pointer; font-weight: 600; }
footer { color: #777; font-size: 12px; margin-top: 32px; }
)";

std::string machine_fact(const report& r, std::string_view key) {
  for (const auto& [k, v] : r.machine) {
    if (k == key) return format::readable(v);
  }
  return {};
}

// The cell of one ratio in the summary table: the geometric mean large, coloured by which side
// it favours (grey when closer to 1 than the typical spread), with the count and range under it.
void ratio_cell(const std::optional<ratio_summary>& r, bool higher_is_better, double noise_pct,
                std::ostream& out) {
  if (!r) {
    out << "<td class=\"big\">-</td>";
    return;
  }
  const bool within = std::isfinite(noise_pct) && std::fabs(r->geomean - 1.0) * 100.0 < noise_pct;
  const bool better = higher_is_better ? r->geomean >= 1.0 : r->geomean <= 1.0;
  out << "<td class=\"big " << (within ? "noise" : better ? "faster" : "slower") << "\">"
      << format::ratio(r->geomean) << "<span class=\"small\">" << r->count
      << (r->count == 1 ? " workload" : " workloads");
  if (r->count > 1) {
    out << "<br>" << format::ratio(r->lowest) << " to " << format::ratio(r->highest);
  }
  out << "</span></td>";
}

std::string baseline_of(const family& f) {
  return f.baseline_title.empty() ? (f.baseline.empty() ? std::string("-") : f.baseline)
                                  : f.baseline_title;
}

void summary_section(const std::vector<family_runs>& groups,
                     const std::vector<family_summary>& summaries, std::ostream& out) {
  out << "<h2 id=\"summary\">How fast is fabric here?</h2>\n"
      << "<p class=\"note\">Each number is fabric divided by its baseline on the same workload, "
         "measured in the same run; the large one is the geometric mean over the family's "
         "workloads, with the lowest and highest ratio under it. Throughput above 1 and latency "
         "below 1 mean fabric is faster; grey ones are closer to 1 than the typical spread of the "
         "repetitions, and that close, a ratio is noise.</p>\n"
      << "<table class=\"summary\">\n<thead><tr><th>Family</th><th>Compared with</th>"
      << "<th class=\"n\">Throughput<br>fabric / baseline</th>"
      << "<th class=\"n\">Latency p50<br>fabric / baseline</th>"
      << "<th class=\"n\">Latency p99<br>fabric / baseline</th>"
      << "<th>Spread of repetitions</th><th>For example</th></tr></thead>\n<tbody>\n";
  for (std::size_t i = 0; i < groups.size(); ++i) {
    const family& f = groups[i].about;
    const family_summary& s = summaries[i];
    out << "<tr><td><a href=\"#family-" << escape(f.name) << "\">" << escape(f.name)
        << "</a></td><td>" << escape(baseline_of(f)) << "</td>";
    ratio_cell(s.throughput_ratio, true, s.typical_spread_pct, out);
    ratio_cell(s.p50_ratio, false, s.typical_spread_pct, out);
    ratio_cell(s.p99_ratio, false, s.typical_spread_pct, out);
    out << "<td>";
    if (std::isfinite(s.typical_spread_pct)) {
      out << "\u00b1" << format::percent(s.typical_spread_pct) << " typical<span class=\"small\">"
          << "\u00b1" << format::percent(s.widest_spread_pct) << " at most</span>";
    } else {
      out << "-";
    }
    out << "</td><td>";
    bool any = false;
    if (const auto& c = s.throughput_example) {
      out << escape(workload_label(*c->fabric, s.label_keys)) << ": fabric "
          << format::grouped(field(c->fabric, "msgs_per_s")) << ", " << escape(f.baseline) << ' '
          << format::grouped(field(c->base, "msgs_per_s")) << ' ' << escape(f.unit) << "/s";
      any = true;
    }
    if (const auto& c = s.latency_example) {
      out << (any ? "<br>" : "") << escape(workload_label(*c->fabric, s.label_keys))
          << ": p50 fabric " << format::micros(field(c->fabric, "p50_us")) << ", "
          << escape(f.baseline) << ' ' << format::micros(field(c->base, "p50_us")) << " \u00b5s";
      any = true;
    }
    if (!any) out << "no run with a baseline to compare with";
    out << "</td></tr>\n";
  }
  out << "</tbody>\n</table>\n";
}

void family_section(const family_runs& g, const family_summary& s, std::ostream& out) {
  const family& f = g.about;
  out << "<h2 id=\"family-" << escape(f.name) << "\">" << escape(f.title) << "</h2>\n";
  if (!f.note.empty()) out << "<p class=\"note\">" << escape(f.note) << "</p>\n";
  out << "<p class=\"note\">In the line charts fabric is solid and " << escape(baseline_of(f))
      << " dashed, in the colour of the workload; hover a point or bar for its value.</p>\n"
      << "<div class=\"charts\">\n";
  if (write_family_charts(f, g.runs, s, out) == 0) {
    out << "<p class=\"note\">No chart: no run measured throughput or latency.</p>\n";
  }
  out << "</div>\n";
  // The pattern benches have paired tables of their own; every other bench gets the comparison
  // table, fabric beside its baseline, narrower than the table of every field.
  for (const auto& [bench, runs] : by_bench(g.runs)) {
    const bool paired = bench == "thr" || bench == "lat";
    const table t = paired ? bench_table(bench, runs) : comparison_table(f, runs);
    out << "<h3>" << escape(paired ? t.title : "Table: " + bench) << "</h3>\n";
    if (!t.note.empty()) out << "<p class=\"note\">" << escape(t.note) << "</p>\n";
    html_table(t, out);
  }
}

}  // namespace

void write_html(const report& r, std::ostream& out) { write_html(r, known_families(), out); }

void write_html(const report& r, std::span<const family> families, std::ostream& out) {
  out << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      << "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
      << "<title>fabric-perf report</title>\n<style>" << css << "</style>\n</head>\n<body>\n"
      << "<h1>fabric-perf report</h1>\n";
  // Where and how the figures were made: a debug build or a two-core machine explains a lot.
  std::string sub;
  for (const std::string_view key :
       {"fabric_version", "hostname", "logical_cores", "build_type", "timestamp"}) {
    const std::string fact = machine_fact(r, key);
    if (fact.empty()) continue;
    if (!sub.empty()) sub += " \u00b7 ";
    if (key == "fabric_version") sub += "fabric " + fact;
    else if (key == "logical_cores") sub += fact + " logical cores";
    else if (key == "build_type") sub += fact + " build";
    else sub += fact;
  }
  out << "<p class=\"sub\">" << escape(sub.empty() ? std::string("fabric benchmark results") : sub)
      << " \u00b7 " << r.runs.size() << (r.runs.size() == 1 ? " run" : " runs") << "</p>\n";

  const std::vector<family_runs> groups = group_by_family(r, families);
  std::vector<family_summary> summaries;
  for (const family_runs& g : groups) summaries.push_back(summarise(g.about, g.runs));

  if (groups.empty()) {
    out << "<h2>Results</h2>\n<p class=\"note\">No runs.</p>\n";
  } else {
    summary_section(groups, summaries, out);
  }
  for (std::size_t i = 0; i < groups.size(); ++i) family_section(groups[i], summaries[i], out);

  out << "<h2>Machine</h2>\n";
  if (r.machine.empty()) {
    out << "<p class=\"note\">No machine facts recorded.</p>\n";
  } else {
    out << "<table class=\"facts\">\n";
    for (const auto& [k, v] : r.machine) {
      out << "<tr><th>" << escape(k) << "</th><td>" << escape(format::readable(v))
          << "</td></tr>\n";
    }
    out << "</table>\n";
  }

  const auto benches = by_bench(r);
  if (!benches.empty()) {
    out << "<details>\n<summary>All runs: every field of every run, as in the JSON</summary>\n";
    for (const auto& [bench, runs] : benches) {
      out << "<h3>" << escape(bench) << "</h3>\n";
      html_table(generic_table(bench, runs, true), out);
    }
    out << "</details>\n";
  }
  out << "<footer>Generated by fabric-perf.</footer>\n</body>\n</html>\n";
}

}  // namespace fabric::perf
