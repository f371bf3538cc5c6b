// Pairs each fabric run with its baseline and sums up the ratios of a family: geometric mean,
// range, the spread of repetitions, and the workloads the summary quotes.
#include "harness/compare.hpp"

#include <algorithm>
#include <cmath>

#include "harness/format.hpp"
#include "harness/stats.hpp"
#include "harness/table.hpp"

namespace fabric::perf {

std::string key_value(const run& r, const std::string& key) {
  const value* v = r.get(key);
  if (v == nullptr) return {};
  if (const auto* s = std::get_if<std::string>(v)) return *s;
  if (const auto* i = std::get_if<std::int64_t>(v)) return std::to_string(*i);
  const double d = std::get<double>(*v);
  if (std::isfinite(d) && d == std::trunc(d) && std::fabs(d) < 9.0e15) {
    return std::to_string(static_cast<std::int64_t>(d));
  }
  return format::shortest(d);
}

bool same_workload(const run& fabric, const run& base) {
  for (const auto& [k, v] : base.fields) {
    if (is_measurement_key(k)) continue;
    if (fabric.get(k) == nullptr || key_value(fabric, k) != key_value(base, k)) return false;
  }
  return true;
}

std::vector<std::string> varying_keys(const run_list& runs) {
  std::vector<std::string> keys;
  for (const run* r : runs) {
    for (const auto& [k, v] : r->fields) {
      if (is_measurement_key(k)) continue;
      if (std::find(keys.begin(), keys.end(), k) == keys.end()) keys.push_back(k);
    }
  }
  std::vector<std::string> varying;
  for (const std::string& k : keys) {
    // Compared within one impl: a key only one side has (fabric's worker credit) says nothing
    // about which workload a run measured.
    bool differs = false;
    for (std::size_t i = 0; i < runs.size() && !differs; ++i) {
      for (std::size_t j = i + 1; j < runs.size() && !differs; ++j) {
        if (key_value(*runs[i], "impl") != key_value(*runs[j], "impl")) continue;
        differs = (runs[i]->get(k) == nullptr) != (runs[j]->get(k) == nullptr) ||
                  key_value(*runs[i], k) != key_value(*runs[j], k);
      }
    }
    if (differs) varying.push_back(k);
  }
  return varying;
}

std::string workload_label(const run& r, const std::vector<std::string>& keys) {
  std::string label;
  for (const std::string& k : keys) {
    const value* v = r.get(k);
    if (v == nullptr) continue;
    std::string part;
    if (std::holds_alternative<std::string>(*v)) {
      part = std::get<std::string>(*v);
    } else if (k == "size") {
      part = format::bytes(r.number(k).value_or(std::nan("")));
    } else if (k == "rate") {
      part = "at " + format::grouped(r.number(k).value_or(std::nan(""))) + "/s";
    } else {
      part = k + ' ' + format::readable(*v);
    }
    if (!label.empty()) label += ' ';
    label += part;
  }
  return label.empty() ? std::string("all") : label;
}

namespace {

bool positive(const run* r, std::string_view key) {
  const double v = field(r, key);
  return std::isfinite(v) && v > 0.0;
}

std::optional<ratio_summary> ratios(const std::vector<comparison>& pairs, std::string_view key) {
  ratio_summary s;
  double log_sum = 0.0;
  for (const comparison& c : pairs) {
    if (!positive(c.fabric, key) || !positive(c.base, key)) continue;
    const double ratio = field(c.fabric, key) / field(c.base, key);
    s.lowest = s.count == 0 ? ratio : std::min(s.lowest, ratio);
    s.highest = s.count == 0 ? ratio : std::max(s.highest, ratio);
    log_sum += std::log(ratio);
    ++s.count;
  }
  if (s.count == 0) return std::nullopt;
  s.geomean = std::exp(log_sum / static_cast<double>(s.count));
  return s;
}

bool matches(const run& r, const std::vector<std::pair<std::string, std::string>>& example) {
  if (example.empty()) return false;
  return std::all_of(example.begin(), example.end(), [&r](const auto& kv) {
    return r.get(kv.first) != nullptr && key_value(r, kv.first) == kv.second;
  });
}

std::optional<comparison> pick(const std::vector<comparison>& pairs, const family& f) {
  if (pairs.empty()) return std::nullopt;
  for (const comparison& c : pairs) {
    if (matches(*c.fabric, f.example)) return c;
  }
  return pairs.front();
}

}  // namespace

double noise_pct(const comparison& c, std::string_view key) {
  const auto of = [&c](std::string_view k) {
    const double a = spread_pct(c.fabric, k);
    const double b = spread_pct(c.base, k);
    if (std::isnan(a)) return b;
    if (std::isnan(b)) return a;
    return std::max(a, b);
  };
  const double own = of(key);
  if (!std::isnan(own) || !key.ends_with("_us")) return own;
  return of("p99_us");
}

family_summary summarise(const family& f, const run_list& runs) {
  family_summary s;
  run_list bases;
  run_list fabrics;
  for (const run* r : runs) {
    const std::string impl = key_value(*r, "impl");
    if (impl == "fabric") fabrics.push_back(r);
    if (!f.baseline.empty() && impl == f.baseline) bases.push_back(r);
  }
  for (const run* fab : fabrics) {
    const auto base = std::find_if(bases.begin(), bases.end(),
                                   [fab](const run* b) { return same_workload(*fab, *b); });
    if (base == bases.end()) continue;
    const comparison c{fab, *base};
    const bool paced = fab->get("rate") != nullptr || (*base)->get("rate") != nullptr;
    if (!paced && positive(fab, "msgs_per_s") && positive(*base, "msgs_per_s")) {
      s.throughput.push_back(c);
    }
    const bool compared = !f.compare_latency || f.compare_latency(*fab);
    if (compared && positive(fab, "p50_us") && positive(*base, "p50_us")) s.latency.push_back(c);
  }
  s.throughput_ratio = ratios(s.throughput, "msgs_per_s");
  s.p50_ratio = ratios(s.latency, "p50_us");
  s.p99_ratio = ratios(s.latency, "p99_us");

  // The spread of the figure each comparison rests on: messages per second, else the p99.
  std::vector<double> spreads;
  const auto add_spreads = [&spreads](const std::vector<comparison>& pairs, std::string_view key) {
    for (const comparison& c : pairs) {
      for (const run* r : {c.fabric, c.base}) {
        const double pct = spread_pct(r, key);
        if (std::isfinite(pct)) spreads.push_back(pct);
      }
    }
  };
  add_spreads(s.throughput, "msgs_per_s");
  if (spreads.empty()) add_spreads(s.latency, "p99_us");
  s.typical_spread_pct = median(spreads);
  s.widest_spread_pct = maximum(spreads);

  s.throughput_example = pick(s.throughput, f);
  s.latency_example = pick(s.latency, f);
  // Labels tell a workload apart from the family's other fabric runs; a family of one workload
  // names it in full.
  std::vector<std::string> keys = varying_keys(fabrics);
  if (keys.empty() && !fabrics.empty()) {
    for (const auto& [k, v] : fabrics.front()->fields) {
      if (!is_measurement_key(k)) keys.push_back(k);
    }
  }
  std::erase(keys, std::string("bench"));
  s.label_keys = std::move(keys);
  return s;
}

table comparison_table(const family& f, const run_list& runs) {
  const std::string base_name = f.baseline.empty() ? std::string("baseline") : f.baseline;
  const std::vector<std::string> keys = varying_keys(runs);
  const bool thr = std::any_of(runs.begin(), runs.end(),
                               [](const run* r) { return positive(r, "msgs_per_s"); });
  const bool lat =
      std::any_of(runs.begin(), runs.end(), [](const run* r) { return positive(r, "p50_us"); });

  // Rows: each fabric run with its baseline, then every other run that no fabric run took.
  std::vector<comparison> rows;
  std::vector<const run*> taken;
  for (const run* r : runs) {
    if (key_value(*r, "impl") != "fabric") continue;
    const auto base = std::find_if(runs.begin(), runs.end(), [&](const run* b) {
      return key_value(*b, "impl") == f.baseline && same_workload(*r, *b);
    });
    rows.push_back({r, base == runs.end() ? nullptr : *base});
    if (base != runs.end()) taken.push_back(*base);
  }
  bool others = false;
  for (const run* r : runs) {
    if (key_value(*r, "impl") == "fabric") continue;
    if (std::find(taken.begin(), taken.end(), r) != taken.end()) continue;
    rows.push_back({nullptr, r});
    others = others || key_value(*r, "impl") != f.baseline;
  }

  table t;
  t.title = f.title;
  t.note = "ratio = fabric / " + base_name +
           " (throughput above 1, latency below 1: fabric is faster); spread = farthest "
           "repetition from the median, of whichever side strays more: a ratio closer to 1 is noise";
  for (const std::string& k : keys) t.columns.push_back({k, false});
  if (thr) {
    const std::string per_s = " " + f.unit + "/s";
    t.columns.insert(t.columns.end(), {{"fabric" + per_s, true},
                                       {base_name + per_s, true},
                                       {"ratio", true},
                                       {"spread", true}});
  }
  if (lat) {
    t.groups.push_back({"p50 \u00b5s", t.columns.size(), 2});
    t.columns.insert(t.columns.end(), {{"fabric", true}, {base_name, true}});
    t.groups.push_back({"p99 \u00b5s", t.columns.size(), 2});
    t.columns.insert(t.columns.end(), {{"fabric", true}, {base_name, true}});
    t.columns.push_back({"p50 ratio", true});
  }
  if (others) t.columns.push_back({"baseline", false});

  for (const comparison& c : rows) {
    const run& any = c.fabric != nullptr ? *c.fabric : *c.base;
    std::vector<std::string> row;
    for (const std::string& k : keys) {
      std::string text = cell(any, k);
      if (k == "rate" && any.get(k) != nullptr) text += "/s";
      row.push_back(text);
    }
    const bool paired = c.fabric != nullptr && c.base != nullptr;
    if (thr) {
      const double fv = field(c.fabric, "msgs_per_s");
      const double bv = field(c.base, "msgs_per_s");
      const bool paced = any.get("rate") != nullptr;
      row.push_back(format::grouped(fv));
      row.push_back(format::grouped(bv));
      row.push_back(paired && !paced && bv > 0.0 ? format::ratio(fv / bv) : "-");
      const double noise = noise_pct({c.fabric, c.base}, "msgs_per_s");
      row.push_back(std::isfinite(noise) ? "\u00b1" + format::percent(noise) : "-");
    }
    if (lat) {
      const double fv = field(c.fabric, "p50_us");
      const double bv = field(c.base, "p50_us");
      row.push_back(format::micros(fv));
      row.push_back(format::micros(bv));
      row.push_back(format::micros(field(c.fabric, "p99_us")));
      row.push_back(format::micros(field(c.base, "p99_us")));
      const bool compared = !f.compare_latency || (c.fabric != nullptr && f.compare_latency(*c.fabric));
      row.push_back(paired && compared && bv > 0.0 ? format::ratio(fv / bv) : "-");
    }
    if (others) row.push_back(c.base != nullptr ? key_value(*c.base, "impl") : "-");
    t.rows.push_back(std::move(row));
  }
  return t;
}

}  // namespace fabric::perf
