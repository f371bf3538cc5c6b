// The HTML writer: one self-contained page (inline CSS and SVG, no script, nothing fetched) with
// the machine facts, charts of the pattern benches and the tables of every bench.
#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <optional>
#include <set>

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

// Lines are labelled by the identity fields that vary between a chart's runs; fields that every
// run shares go into the title once instead of into every legend entry.
struct series_labels {
  std::vector<std::string> labels;  // parallel to the runs
  std::string common;
};

series_labels label_series(const run_list& runs, std::initializer_list<std::string_view> fixed) {
  using parts = std::vector<std::pair<std::string, std::string>>;
  std::vector<parts> per_run;
  std::vector<std::string> keys;
  for (const run* r : runs) {
    parts p;
    for (const auto& [k, v] : r->fields) {
      if (is_measurement_key(k) || k == "bench") continue;
      if (std::find(fixed.begin(), fixed.end(), k) != fixed.end()) continue;
      p.emplace_back(k, k == "rate" ? format::grouped(r->number(k).value_or(std::nan(""))) + "/s"
                                    : cell(*r, k));
      if (std::find(keys.begin(), keys.end(), k) == keys.end()) keys.push_back(k);
    }
    per_run.push_back(std::move(p));
  }
  const auto text_of = [](const parts& p, const std::string& key) -> std::optional<std::string> {
    for (const auto& [k, t] : p) {
      if (k == key) return t;
    }
    return std::nullopt;
  };
  std::vector<std::string> shared;
  for (const std::string& k : keys) {
    const std::optional<std::string> first = text_of(per_run.front(), k);
    bool same = first.has_value();
    for (const parts& p : per_run) same = same && text_of(p, k) == first;
    if (same) shared.push_back(k);
  }
  // When nothing varies the title still says it all, but lines keep their full names too:
  // a legend of "all" would say nothing.
  const bool name_fully = shared.size() == keys.size();

  series_labels out;
  for (const parts& p : per_run) {
    std::string label;
    for (const auto& [k, t] : p) {
      if (!name_fully && std::find(shared.begin(), shared.end(), k) != shared.end()) continue;
      if (!label.empty()) label += ' ';
      label += t;
    }
    out.labels.push_back(label.empty() ? std::string("all") : label);
  }
  for (const std::string& k : shared) {
    if (!out.common.empty()) out.common += ", ";
    out.common += text_of(per_run.front(), k).value_or("");
  }
  return out;
}

std::string chart_title(std::string_view what, const std::string& pattern,
                        const std::string& common) {
  std::string title =
      std::string(what) + ": " + (pattern.empty() ? std::string("(no pattern)") : pattern);
  if (!common.empty()) title += " (" + common + ")";
  return title;
}

constexpr std::array<const char*, 4> baseline_dashes = {"7 4", "2 3", "9 3 2 3", "4 2"};

// Colours follow the series label, dashes the implementation, so fabric and its baseline share a
// colour and differ by stroke only.
struct styler {
  std::vector<std::string> labels;
  std::vector<std::string> impls;

  std::size_t colour_of(const std::string& label) {
    auto it = std::find(labels.begin(), labels.end(), label);
    if (it == labels.end()) it = labels.insert(labels.end(), label);
    return static_cast<std::size_t>(it - labels.begin());
  }
  std::string dash_of(const std::string& impl) {
    if (impl == "fabric") return {};
    auto it = std::find(impls.begin(), impls.end(), impl);
    if (it == impls.end()) it = impls.insert(impls.end(), impl);
    return baseline_dashes[static_cast<std::size_t>(it - impls.begin()) % baseline_dashes.size()];
  }
  std::vector<svg::legend_entry> legend() const {
    std::vector<svg::legend_entry> entries;
    for (std::size_t i = 0; i < labels.size(); ++i)
      entries.push_back({labels[i], svg::colour(i), {}});
    entries.push_back({});
    entries.push_back({"fabric", "#444", {}});
    for (std::size_t i = 0; i < impls.size(); ++i) {
      entries.push_back({impls[i], "#444", baseline_dashes[i % baseline_dashes.size()]});
    }
    return entries;
  }
};

// One chart per pattern; latency also per mode, since closed- and open-loop latencies answer
// different questions and together they would crowd a chart past its palette.
std::vector<std::pair<std::string, run_list>> chart_groups(const run_list& runs, bool by_mode) {
  std::vector<std::pair<std::string, run_list>> groups;
  std::vector<std::string> keys;
  for (const run* r : runs) {
    const std::string pattern = r->text("pattern").value_or("");
    const std::string key = by_mode ? pattern + '\x1f' + mode_cell(*r) : pattern;
    auto it = std::find(keys.begin(), keys.end(), key);
    if (it == keys.end()) {
      keys.push_back(key);
      groups.emplace_back(pattern, run_list{});
      it = std::prev(keys.end());
    }
    groups[static_cast<std::size_t>(it - keys.begin())].second.push_back(r);
  }
  return groups;
}

// x positions on the "nines" scale: -log10(1 - p/100), so 90, 99, 99.9 are evenly spaced.
constexpr std::array<std::pair<std::string_view, double>, 5> percentile_points = {
    {{"p50_us", 0.30103}, {"p90_us", 1.0}, {"p99_us", 2.0}, {"p999_us", 3.0}, {"max_us", 4.0}}};
constexpr std::array<std::string_view, 5> percentile_names = {"p50", "p90", "p99", "p99.9", "max"};

std::string tick_micros(double v) { return format::without_trailing_zeros(format::micros(v)); }

void latency_chart(const std::string& pattern, const run_list& runs, std::ostream& out) {
  const series_labels names = label_series(runs, {"pattern", "impl"});
  svg::chart c;
  c.title = chart_title("Latency percentiles", pattern, names.common);
  styler style;
  double lo = INFINITY;
  double hi = 0.0;
  for (std::size_t n = 0; n < runs.size(); ++n) {
    const run* r = runs[n];
    const std::string& label = names.labels[n];
    const std::string impl = r->text("impl").value_or("?");
    svg::series s;
    s.colour = svg::colour(style.colour_of(label));
    s.dash = style.dash_of(impl);
    for (std::size_t i = 0; i < percentile_points.size(); ++i) {
      const double v = field(r, percentile_points[i].first);
      if (!(v > 0.0) || !std::isfinite(v)) continue;
      lo = std::min(lo, v);
      hi = std::max(hi, v);
      s.points.push_back({percentile_points[i].second, v,
                          impl + " " + label + ": " + std::string(percentile_names[i]) + " = " +
                              format::micros(v) + " \u00b5s"});
    }
    c.lines.push_back(std::move(s));
  }
  if (hi <= 0.0) return;
  c.x.label = "percentile (\"nines\" scale)";
  c.x.lo = 0.1;
  c.x.hi = 4.2;
  for (std::size_t i = 0; i < percentile_points.size(); ++i) {
    c.x.ticks.emplace_back(percentile_points[i].second, std::string(percentile_names[i]));
  }
  c.y = svg::log_axis("latency (\u00b5s, log scale)", lo, hi, tick_micros);
  c.legend = style.legend();
  svg::render(c, out);
}

void throughput_chart(const std::string& pattern, const run_list& all, std::ostream& out) {
  run_list runs;
  for (const run* r : all) {
    if (field(r, "size") > 0.0 && std::isfinite(field(r, "msgs_per_s"))) runs.push_back(r);
  }
  const series_labels names = label_series(runs, {"pattern", "impl", "size"});
  svg::chart c;
  c.title = chart_title("Throughput by message size", pattern, names.common);
  styler style;
  std::map<std::pair<std::string, std::string>, std::size_t> line_of;  // (impl, label) -> line
  std::set<double> sizes;
  double lo = INFINITY;
  double hi = 0.0;
  for (std::size_t n = 0; n < runs.size(); ++n) {
    const run* r = runs[n];
    const double size = field(r, "size");
    const double rate = field(r, "msgs_per_s");
    const std::string& label = names.labels[n];
    const std::string impl = r->text("impl").value_or("?");
    auto [it, inserted] = line_of.try_emplace({impl, label}, c.lines.size());
    if (inserted) {
      c.lines.push_back({svg::colour(style.colour_of(label)), style.dash_of(impl), {}});
    }
    c.lines[it->second].points.push_back({size, rate,
                                          impl + " " + label + ", " + format::bytes(size) + ": " +
                                              format::grouped(rate) + " msgs/s"});
    sizes.insert(size);
    lo = std::min(lo, rate);
    hi = std::max(hi, rate);
  }
  if (sizes.empty()) return;
  for (svg::series& s : c.lines) {
    std::sort(s.points.begin(), s.points.end(),
              [](const svg::point& a, const svg::point& b) { return a.x < b.x; });
  }
  c.x.label = "message size (bytes, log scale)";
  c.x.log = true;
  c.x.lo = *sizes.begin() / 1.5;
  c.x.hi = *sizes.rbegin() * 1.5;
  // Label at most about eight sizes so the labels never run into each other.
  const std::size_t every = (sizes.size() + 7) / 8;
  std::size_t i = 0;
  for (const double s : sizes) c.x.ticks.emplace_back(s, i++ % every == 0 ? format::bytes(s) : "");
  if (lo > 0.0 && hi / lo > 20.0) {
    c.y = svg::log_axis("messages per second (log scale)", lo, hi, format::compact);
  } else {
    c.y = svg::linear_axis("messages per second", 0.0, hi, format::compact);
  }
  c.legend = style.legend();
  svg::render(c, out);
}

constexpr std::string_view css = R"(
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; color: #111;
       max-width: 1240px; margin: 24px auto; padding: 0 16px; line-height: 1.4; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 28px 0 6px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
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
.scroll { overflow-x: auto; }
.charts { display: flex; flex-wrap: wrap; gap: 16px; }
.charts svg { border: 1px solid #ddd; border-radius: 4px; max-width: 100%; height: auto; }
footer { color: #777; font-size: 12px; margin-top: 32px; }
)";

std::string machine_fact(const report& r, std::string_view key) {
  for (const auto& [k, v] : r.machine) {
    if (k == key) return format::readable(v);
  }
  return {};
}

}  // namespace

void write_html(const report& r, std::ostream& out) {
  out << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      << "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
      << "<title>fabric-perf report</title>\n<style>" << css << "</style>\n</head>\n<body>\n"
      << "<h1>fabric-perf report</h1>\n";
  std::string sub;
  for (const char* key : {"fabric_version", "hostname", "timestamp"}) {
    const std::string fact = machine_fact(r, key);
    if (fact.empty()) continue;
    if (!sub.empty()) sub += " \u00b7 ";
    sub += std::string_view(key) == "fabric_version" ? "fabric " + fact : fact;
  }
  out << "<p class=\"sub\">" << escape(sub.empty() ? std::string("fabric benchmark results") : sub)
      << " \u00b7 " << r.runs.size() << (r.runs.size() == 1 ? " run" : " runs") << "</p>\n";

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
  if (benches.empty()) out << "<h2>Results</h2>\n<p class=\"note\">No runs.</p>\n";
  for (const auto& [bench, runs] : benches) {
    const table t = bench_table(bench, runs);
    out << "<h2>" << escape(t.title) << "</h2>\n";
    if (!t.note.empty()) out << "<p class=\"note\">" << escape(t.note) << "</p>\n";
    if (bench == "lat" || bench == "thr") {
      out << "<p class=\"note\">Solid lines: fabric; dashed: the baseline. Hover a point for its "
             "value.</p>\n<div class=\"charts\">\n";
      for (const auto& [pattern, group] : chart_groups(runs, bench == "lat")) {
        if (bench == "lat") {
          latency_chart(pattern, group, out);
        } else {
          throughput_chart(pattern, group, out);
        }
      }
      out << "</div>\n";
    }
    html_table(t, out);
  }

  if (!benches.empty()) {
    out << "<h2>All runs</h2>\n<p class=\"note\">Every field of every run, as in the JSON.</p>\n";
    for (const auto& [bench, runs] : benches) {
      out << "<h3>" << escape(bench) << "</h3>\n";
      html_table(generic_table(bench, runs, true), out);
    }
  }
  out << "<footer>Generated by fabric-perf.</footer>\n</body>\n</html>\n";
}

}  // namespace fabric::perf
