// The table model: the paired throughput and latency tables of the pattern benches and the
// field-by-field table of any other bench, as rows of text for the console and HTML writers.
#include "harness/table.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <set>

#include "harness/format.hpp"

namespace fabric::perf {

std::vector<std::pair<std::string, run_list>> by_bench(const run_list& runs) {
  std::vector<std::pair<std::string, run_list>> benches;
  for (const run* one : runs) {
    const std::string bench = one->text("bench").value_or("?");
    auto it = std::find_if(benches.begin(), benches.end(),
                           [&bench](const auto& b) { return b.first == bench; });
    if (it == benches.end()) {
      benches.emplace_back(bench, run_list{});
      it = std::prev(benches.end());
    }
    it->second.push_back(one);
  }
  return benches;
}

std::vector<std::pair<std::string, run_list>> by_bench(const report& r) {
  run_list all;
  for (const run& one : r.runs) all.push_back(&one);
  return by_bench(all);
}

double field(const run* r, std::string_view key) {
  if (r == nullptr) return std::nan("");
  return r->number(key).value_or(std::nan(""));
}

std::string cell(const run& r, std::string_view key) {
  const value* v = r.get(key);
  if (v == nullptr) return "-";
  if (key == "size" && !std::holds_alternative<std::string>(*v)) {
    return format::bytes(r.number(key).value_or(std::nan("")));
  }
  return format::readable(*v);
}

double spread_pct(const run* r, std::string_view key) {
  const double median = field(r, key);
  const double lo = field(r, "min_" + std::string(key));
  const double hi = field(r, "max_" + std::string(key));
  if (!(median > 0.0) || !std::isfinite(lo) || !std::isfinite(hi)) return std::nan("");
  if (field(r, "reps") < 2.0) return std::nan("");  // one repetition has no spread to show
  return std::max(hi - median, median - lo) / median * 100.0;
}

std::string spread(const run* r, std::string_view key) {
  const double pct = spread_pct(r, key);
  if (!std::isfinite(pct)) return "-";
  return "\u00b1" + format::percent(pct);
}

std::string mode_cell(const run& r) {
  std::string mode = r.text("mode").value_or("-");
  if (const auto rate = r.number("rate")) mode += " " + format::grouped(*rate) + "/s";
  return mode;
}

namespace {

bool is_fabric(const run& r) { return r.text("impl").value_or("") == "fabric"; }

struct pairing {
  const run* fabric = nullptr;
  const run* base = nullptr;
  const run& any() const { return fabric != nullptr ? *fabric : *base; }
};

// Every fabric run with every baseline of the same workload; runs without a partner stay alone.
std::vector<pairing> pair_up(const run_list& runs) {
  std::vector<std::string> order;
  std::map<std::string, std::pair<run_list, run_list>> groups;
  for (const run* r : runs) {
    const std::string key = workload_key(*r);
    auto [it, inserted] = groups.try_emplace(key);
    if (inserted) order.push_back(key);
    (is_fabric(*r) ? it->second.first : it->second.second).push_back(r);
  }
  std::vector<pairing> rows;
  for (const std::string& key : order) {
    const auto& [fabrics, bases] = groups[key];
    if (fabrics.empty()) {
      for (const run* b : bases) rows.push_back({nullptr, b});
    } else if (bases.empty()) {
      for (const run* f : fabrics) rows.push_back({f, nullptr});
    } else {
      for (const run* f : fabrics) {
        for (const run* b : bases) rows.push_back({f, b});
      }
    }
  }
  return rows;
}

// "raw" when every baseline is raw, else "baseline" (and the table names each one).
std::string baseline_name(const std::vector<pairing>& rows, bool& mixed) {
  std::set<std::string> names;
  for (const pairing& p : rows) {
    if (p.base != nullptr) names.insert(p.base->text("impl").value_or("?"));
  }
  mixed = names.size() > 1 || (names.size() == 1 && *names.begin() != "raw");
  if (names.size() == 1) return *names.begin();
  return names.empty() ? "raw" : "baseline";
}

// Identity keys that the fixed columns of a bench table do not show, so rows stay distinct.
std::vector<std::string> extra_identity(const run_list& runs,
                                        std::initializer_list<std::string_view> shown) {
  std::vector<std::string> extra;
  for (const run* r : runs) {
    for (const auto& [k, v] : r->fields) {
      if (is_measurement_key(k) || k == "bench") continue;
      if (std::find(shown.begin(), shown.end(), k) != shown.end()) continue;
      if (std::find(extra.begin(), extra.end(), k) == extra.end()) extra.push_back(k);
    }
  }
  return extra;
}

table throughput_table(const run_list& runs) {
  const auto rows = pair_up(runs);
  bool mixed = false;
  const std::string base = baseline_name(rows, mixed);
  const auto extra = extra_identity(runs, {"pattern", "transport", "size", "impl"});

  table t;
  t.title = "Throughput (thr): messages per second, median of the repetitions";
  t.note = "ratio = fabric / " + base +
           " (above 1: fabric is faster); spread = farthest repetition from the median";
  t.columns = {{"pattern", false}, {"transport", false}, {"size", true}};
  for (const auto& k : extra) t.columns.push_back({k, false});
  t.columns.insert(t.columns.end(), {{"fabric msgs/s", true},
                                     {base + " msgs/s", true},
                                     {"ratio", true},
                                     {"fabric MB/s", true},
                                     {"spread", true},
                                     {base + " spread", true}});
  if (mixed) t.columns.push_back({"baseline", false});

  for (const pairing& p : rows) {
    const run& any = p.any();
    std::vector<std::string> row = {cell(any, "pattern"), cell(any, "transport"),
                                    cell(any, "size")};
    for (const auto& k : extra) row.push_back(cell(any, k));
    const double f = field(p.fabric, "msgs_per_s");
    const double b = field(p.base, "msgs_per_s");
    const double mb = field(p.fabric, "mb_per_s");
    row.push_back(format::grouped(f));
    row.push_back(format::grouped(b));
    row.push_back(b > 0.0 ? format::ratio(f / b) : "-");
    row.push_back(!std::isfinite(mb)   ? "-"
                  : mb >= 1000.0 ? format::grouped(mb)
                                 : format::significant(mb));
    row.push_back(spread(p.fabric, "msgs_per_s"));
    row.push_back(spread(p.base, "msgs_per_s"));
    if (mixed) row.push_back(p.base != nullptr ? cell(*p.base, "impl") : "-");
    t.rows.push_back(std::move(row));
  }
  return t;
}

constexpr std::array<std::pair<std::string_view, std::string_view>, 4> latency_columns = {
    {{"p50_us", "p50"}, {"p99_us", "p99"}, {"p999_us", "p99.9"}, {"max_us", "max"}}};

table latency_table(const run_list& runs) {
  const auto rows = pair_up(runs);
  bool mixed = false;
  const std::string base = baseline_name(rows, mixed);
  const auto extra = extra_identity(runs, {"pattern", "transport", "size", "impl", "mode", "rate"});

  table t;
  t.title = "Latency (lat): microseconds";
  t.note = "p50 ratio = fabric p50 / " + base + " p50 (below 1: fabric is faster)";
  t.columns = {{"pattern", false}, {"transport", false}, {"size", true}, {"mode", false}};
  for (const auto& k : extra) t.columns.push_back({k, false});
  t.groups.push_back({"fabric \u00b5s", t.columns.size(), latency_columns.size()});
  for (const auto& [key, header] : latency_columns)
    t.columns.push_back({std::string(header), true});
  t.groups.push_back({base + " \u00b5s", t.columns.size(), latency_columns.size()});
  for (const auto& [key, header] : latency_columns)
    t.columns.push_back({std::string(header), true});
  t.columns.push_back({"p50 ratio", true});
  if (mixed) t.columns.push_back({"baseline", false});

  for (const pairing& p : rows) {
    const run& any = p.any();
    std::vector<std::string> row = {cell(any, "pattern"), cell(any, "transport"), cell(any, "size"),
                                    mode_cell(any)};
    for (const auto& k : extra) row.push_back(cell(any, k));
    for (const run* r : {p.fabric, p.base}) {
      for (const auto& [key, header] : latency_columns)
        row.push_back(format::micros(field(r, key)));
    }
    const double f = field(p.fabric, "p50_us");
    const double b = field(p.base, "p50_us");
    row.push_back(b > 0.0 ? format::ratio(f / b) : "-");
    if (mixed) row.push_back(p.base != nullptr ? cell(*p.base, "impl") : "-");
    t.rows.push_back(std::move(row));
  }
  return t;
}

}  // namespace

table generic_table(const std::string& bench, const run_list& runs, bool keep_bench) {
  table t;
  t.title = bench;
  std::vector<std::string> keys;
  for (const run* r : runs) {
    for (const auto& [k, v] : r->fields) {
      if (!keep_bench && k == "bench") continue;
      if (std::find(keys.begin(), keys.end(), k) == keys.end()) keys.push_back(k);
    }
  }
  for (const auto& k : keys) {
    bool numeric = true;
    for (const run* r : runs) {
      const value* v = r->get(k);
      if (v != nullptr && std::holds_alternative<std::string>(*v)) numeric = false;
    }
    t.columns.push_back({k, numeric});
  }
  for (const run* r : runs) {
    std::vector<std::string> row;
    for (const auto& k : keys) {
      const value* v = r->get(k);
      row.push_back(v == nullptr ? "" : format::readable(*v));
    }
    t.rows.push_back(std::move(row));
  }
  return t;
}

table bench_table(const std::string& bench, const run_list& runs) {
  if (bench == "thr") return throughput_table(runs);
  if (bench == "lat") return latency_table(runs);
  table t = generic_table(bench, runs, false);
  t.title = "Bench \"" + bench + "\"";
  return t;
}

}  // namespace fabric::perf
