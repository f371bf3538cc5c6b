// A family's charts from its runs: the keys it declares (or every numeric workload key) become
// x axes, its chart_by keys split the charts, and whatever else varies names the lines.
#include "harness/charts.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <set>

#include "harness/format.hpp"
#include "harness/svg_chart.hpp"

namespace fabric::perf {

namespace {

// A key's value as it reads in a title or legend: "tcp", "64 B", "20,000/s", "workers 4".
std::string part(const run& r, const std::string& key) {
  const value* v = r.get(key);
  if (v == nullptr) return {};
  if (std::holds_alternative<std::string>(*v)) return std::get<std::string>(*v);
  const double d = r.number(key).value_or(std::nan(""));
  if (key == "size") return format::bytes(d);
  if (key == "rate") return format::grouped(d) + "/s";
  return key + ' ' + format::readable(*v);
}

// The identity keys of `runs` in first-seen order, without "bench" and without `skip`.
std::vector<std::string> identity_keys(const run_list& runs, const std::vector<std::string>& skip) {
  std::vector<std::string> keys;
  for (const run* r : runs) {
    for (const auto& [k, v] : r->fields) {
      if (is_measurement_key(k) || k == "bench") continue;
      if (std::find(skip.begin(), skip.end(), k) != skip.end()) continue;
      if (std::find(keys.begin(), keys.end(), k) == keys.end()) keys.push_back(k);
    }
  }
  return keys;
}

// Lines are named by the keys that vary between a chart's runs; keys every run shares with the
// same value go into the title once instead.
struct naming {
  std::string title;
  std::vector<std::string> labels;  // parallel to the runs
};

naming name_chart(std::string_view what, const family& f, const run_list& runs,
                  const std::vector<std::string>& skip) {
  const std::string head = f.chart_by.empty() ? std::string() : f.chart_by.front();
  std::vector<std::string> skipped = skip;
  skipped.push_back(head);
  const std::vector<std::string> keys = identity_keys(runs, skipped);
  std::vector<std::string> varying;
  for (const std::string& k : varying_keys(runs)) {
    if (std::find(keys.begin(), keys.end(), k) != keys.end()) varying.push_back(k);
  }
  std::vector<std::string> shared;
  for (const std::string& k : keys) {
    const std::string first = key_value(*runs.front(), k);
    const bool same = std::all_of(runs.begin(), runs.end(), [&](const run* r) {
      return r->get(k) != nullptr && key_value(*r, k) == first;
    });
    if (same) shared.push_back(k);
  }

  naming out;
  out.title = std::string(what);
  const std::string head_value = head.empty() ? std::string() : part(*runs.front(), head);
  if (!head_value.empty()) out.title += ": " + head_value;
  std::string common;
  for (const std::string& k : shared) common += (common.empty() ? "" : ", ") + part(*runs.front(), k);
  if (!common.empty()) out.title += " (" + common + ")";

  // When nothing varies, lines keep their full names: a legend of "all" would say nothing.
  const std::vector<std::string>& label_keys = varying.empty() ? shared : varying;
  for (const run* r : runs) {
    std::string label;
    for (const std::string& k : label_keys) {
      const std::string p = part(*r, k);
      if (p.empty()) continue;
      label += (label.empty() ? "" : " ") + p;
    }
    out.labels.push_back(label.empty() ? std::string("all") : label);
  }
  return out;
}

constexpr std::array<const char*, 4> baseline_dashes = {"7 4", "2 3", "9 3 2 3", "4 2"};

// Colours follow the line's label, dashes the implementation, so fabric and its baseline share a
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

// Runs split by the values of the family's chart_by keys, groups in order of first appearance.
std::vector<run_list> chart_groups(const family& f, const run_list& runs) {
  std::vector<std::string> keys;
  std::vector<run_list> groups;
  for (const run* r : runs) {
    std::string key;
    for (const std::string& k : f.chart_by) key += key_value(*r, k) + '\x1f';
    auto it = std::find(keys.begin(), keys.end(), key);
    if (it == keys.end()) {
      keys.push_back(key);
      groups.emplace_back();
      it = std::prev(keys.end());
    }
    groups[static_cast<std::size_t>(it - keys.begin())].push_back(r);
  }
  return groups;
}

bool positive(const run* r, std::string_view key) {
  const double v = field(r, key);
  return std::isfinite(v) && v > 0.0;
}

std::string impl_of(const run& r) { return r.text("impl").value_or("?"); }

const std::string colour_better = "#2b7bba";
const std::string colour_worse = "#e8833a";
const std::string colour_noise = "#a6a6a6";

// Ratios further from 1 than this are drawn at the chart's edge, with their value beside them,
// so that one wild workload does not squeeze every other bar to a sliver.
constexpr double ratio_reach_limit = 10.0;

bool ratio_chart(const family& f, const std::vector<comparison>& pairs,
                 const std::vector<std::string>& keys, std::string_view key, bool latency,
                 std::ostream& out) {
  if (pairs.empty()) return false;
  const std::string base = f.baseline_title.empty() ? f.baseline : f.baseline_title;
  svg::bar_chart c;
  c.title = latency ? "Latency p50, fabric / " + base + ", per workload"
                    : "Throughput, fabric / " + base + ", per workload";
  c.subtitle = latency ? "Below 1: fabric answers sooner. Log scale: 0.5 and 2 are equally far from 1."
                       : "Above 1: fabric is faster. Log scale: 0.5 and 2 are equally far from 1.";
  double lo = 1.0;
  double hi = 1.0;
  for (const comparison& pair : pairs) {
    const double f_value = field(pair.fabric, key);
    const double b_value = field(pair.base, key);
    const double ratio = f_value / b_value;
    lo = std::min(lo, ratio);
    hi = std::max(hi, ratio);
    const double noise = noise_pct(pair, key);
    const bool within = std::isfinite(noise) && std::fabs(ratio - 1.0) * 100.0 < noise;
    const bool better = latency ? ratio <= 1.0 : ratio >= 1.0;
    const std::string label = workload_label(*pair.fabric, keys);
    const std::string figure = latency ? format::micros(f_value) + " vs " +
                                             format::micros(b_value) + " \u00b5s"
                                       : format::grouped(f_value) + " vs " +
                                             format::grouped(b_value) + " " + f.unit + "/s";
    std::string tip = label + ": fabric / " + f.baseline + " = " + format::ratio(ratio) + " (" +
                      figure + ")";
    if (std::isfinite(noise)) tip += ", repetitions stray up to \u00b1" + format::percent(noise);
    c.bars.push_back({label, ratio, format::ratio(ratio),
                      within ? colour_noise : better ? colour_better : colour_worse, tip});
  }
  // Symmetric around 1, so that the bars of a faster and a slower workload compare by length.
  const double reach = std::clamp(std::max(hi, 1.0 / lo), 1.25, ratio_reach_limit);
  c.x = svg::log_axis("fabric / " + f.baseline + " (log scale)", 1.0 / reach, reach,
                      [](double v) { return format::without_trailing_zeros(format::ratio(v)); });
  c.origin = 1.0;
  c.legend = {{latency ? "fabric answers sooner" : "fabric faster", colour_better, {}},
              {latency ? "fabric answers later" : "fabric slower", colour_worse, {}},
              {"within the spread of repetitions", colour_noise, {}}};
  svg::render(c, out);
  return true;
}

std::string axis_name(const std::string& key) { return key == "size" ? "message size" : key; }

std::string tick_text(const std::string& key, double v) {
  return key == "size" ? format::bytes(v) : format::without_trailing_zeros(format::compact(v));
}

bool throughput_chart(const family& f, const run_list& group, const std::string& x_key,
                      std::ostream& out) {
  run_list runs;
  std::set<double> xs;
  for (const run* r : group) {
    if (r->get("rate") != nullptr || !positive(r, "msgs_per_s")) continue;
    const double x = field(r, x_key);
    if (!std::isfinite(x)) continue;
    runs.push_back(r);
    xs.insert(x);
  }
  if (xs.size() < 2) return false;

  const naming names = name_chart("Throughput by " + axis_name(x_key), f, runs, {x_key});
  svg::chart c;
  c.title = names.title;
  styler style;
  std::map<std::pair<std::string, std::string>, std::size_t> line_of;  // (impl, label) -> line
  double lo = INFINITY;
  double hi = 0.0;
  for (std::size_t n = 0; n < runs.size(); ++n) {
    const run* r = runs[n];
    const double x = field(r, x_key);
    const double rate = field(r, "msgs_per_s");
    const std::string& label = names.labels[n];
    const std::string impl = impl_of(*r);
    auto [it, inserted] = line_of.try_emplace({impl, label}, c.lines.size());
    if (inserted) c.lines.push_back({svg::colour(style.colour_of(label)), style.dash_of(impl), {}});
    auto& points = c.lines[it->second].points;
    // A workload measured twice (merged reports) keeps its first figure, not a zigzag.
    if (std::any_of(points.begin(), points.end(), [x](const svg::point& p) { return p.x == x; }))
      continue;
    points.push_back({x, rate,
                      impl + " " + label + ", " + tick_text(x_key, x) + ": " +
                          format::grouped(rate) + " " + f.unit + "/s"});
    lo = std::min(lo, rate);
    hi = std::max(hi, rate);
  }
  for (svg::series& s : c.lines) {
    std::sort(s.points.begin(), s.points.end(),
              [](const svg::point& a, const svg::point& b) { return a.x < b.x; });
  }
  const double x_lo = *xs.begin();
  const double x_hi = *xs.rbegin();
  c.x.log = x_lo > 0.0 && x_hi / x_lo >= 4.0;
  c.x.label = x_key == "size" ? "message size (bytes" + std::string(c.x.log ? ", log scale)" : ")")
                              : x_key + (c.x.log ? " (log scale)" : "");
  if (c.x.log) {
    c.x.lo = x_lo / 1.5;
    c.x.hi = x_hi * 1.5;
  } else {
    const double pad = (x_hi - x_lo) * 0.08;
    c.x.lo = x_lo - pad;
    c.x.hi = x_hi + pad;
  }
  // Ticks at the measured values; at most about eight labelled, so labels never collide.
  const std::size_t every = (xs.size() + 7) / 8;
  std::size_t i = 0;
  for (const double x : xs) c.x.ticks.emplace_back(x, i++ % every == 0 ? tick_text(x_key, x) : "");
  const std::string y_label = f.unit + " per second";
  if (lo > 0.0 && hi / lo > 20.0) {
    c.y = svg::log_axis(y_label + " (log scale)", lo, hi, format::compact);
  } else {
    c.y = svg::linear_axis(y_label, 0.0, hi, format::compact);
  }
  c.legend = style.legend();
  svg::render(c, out);
  return true;
}

// x positions on the "nines" scale: -log10(1 - p/100), so 90, 99, 99.9 are evenly spaced.
constexpr std::array<std::pair<std::string_view, double>, 5> percentile_points = {
    {{"p50_us", 0.30103}, {"p90_us", 1.0}, {"p99_us", 2.0}, {"p999_us", 3.0}, {"max_us", 4.0}}};
constexpr std::array<std::string_view, 5> percentile_names = {"p50", "p90", "p99", "p99.9", "max"};

std::string tick_micros(double v) { return format::without_trailing_zeros(format::micros(v)); }

bool latency_chart(const family& f, const run_list& group, std::ostream& out) {
  run_list runs;
  for (const run* r : group) {
    if (!positive(r, "p50_us")) continue;
    if (f.compare_latency && !f.compare_latency(*r)) continue;
    runs.push_back(r);
  }
  if (runs.empty()) return false;
  const naming names = name_chart("Latency percentiles", f, runs, {});
  svg::chart c;
  c.title = names.title;
  styler style;
  double lo = INFINITY;
  double hi = 0.0;
  for (std::size_t n = 0; n < runs.size(); ++n) {
    const run* r = runs[n];
    const std::string& label = names.labels[n];
    const std::string impl = impl_of(*r);
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
  c.x.label = "percentile (\"nines\" scale)";
  c.x.lo = 0.1;
  c.x.hi = 4.2;
  for (std::size_t i = 0; i < percentile_points.size(); ++i) {
    c.x.ticks.emplace_back(percentile_points[i].second, std::string(percentile_names[i]));
  }
  c.y = svg::log_axis("latency (\u00b5s, log scale)", lo, hi, tick_micros);
  c.legend = style.legend();
  svg::render(c, out);
  return true;
}

}  // namespace

std::size_t write_family_charts(const family& f, const run_list& runs, const family_summary& s,
                                std::ostream& out) {
  std::size_t charts = 0;
  charts += ratio_chart(f, s.throughput, s.label_keys, "msgs_per_s", false, out) ? 1U : 0U;
  charts += ratio_chart(f, s.latency, s.label_keys, "p50_us", true, out) ? 1U : 0U;

  std::vector<std::string> axes = f.x_axes;
  if (axes.empty()) {
    for (const std::string& k : identity_keys(runs, {})) {
      const bool numeric = std::any_of(runs.begin(), runs.end(), [&k](const run* r) {
        return r->number(k).has_value();
      });
      if (numeric) axes.push_back(k);
    }
  }
  const std::vector<run_list> groups = chart_groups(f, runs);
  for (const std::string& x : axes) {
    for (const run_list& g : groups) charts += throughput_chart(f, g, x, out) ? 1U : 0U;
  }
  for (const run_list& g : groups) charts += latency_chart(f, g, out) ? 1U : 0U;
  return charts;
}

}  // namespace fabric::perf
