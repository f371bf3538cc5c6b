// The writers of fabric-perf reports: machine facts, text table, JSON, CSV and HTML. The text and
// HTML tables share one table model, so both show the same pairing of fabric with its baseline.
#include "harness/output.hpp"

#include <sys/utsname.h>
#include <zmq.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <fabric/version.hpp>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "harness/svg_chart.hpp"

#ifndef FABRIC_PERF_BUILD_TYPE
#define FABRIC_PERF_BUILD_TYPE ""
#endif

namespace fabric::perf {

// ---------------------------------------------------------------------------------------------
// Formatting
// ---------------------------------------------------------------------------------------------

namespace {

template <typename... Args>
std::string printf_string(const char* pattern, Args... args) {
  std::array<char, 64> buf{};
  const int n = std::snprintf(buf.data(), buf.size(), pattern, args...);
  if (n < 0) return {};
  return std::string(buf.data(), std::min(static_cast<std::size_t>(n), buf.size() - 1U));
}

// "2.50" -> "2.5", "3.00" -> "3": tick labels read better without padding zeros.
std::string trimmed(std::string s) {
  if (s.find('.') == std::string::npos || s.find('e') != std::string::npos) return s;
  while (!s.empty() && s.back() == '0') s.pop_back();
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

// Three significant digits without switching to exponents.
std::string three_digits(double v) {
  const double a = std::fabs(v);
  if (a >= 100.0) return printf_string("%.0f", v);
  if (a >= 10.0) return printf_string("%.1f", v);
  if (a >= 1.0) return printf_string("%.2f", v);
  return printf_string("%.3g", v);
}

}  // namespace

namespace format {

std::string grouped(double v) {
  if (!std::isfinite(v) || std::fabs(v) >= 9.0e18) return "-";
  const long long n = std::llround(v);
  const std::string digits = std::to_string(n < 0 ? -n : n);
  std::string out = n < 0 ? "-" : "";
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i != 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string micros(double us) {
  if (!std::isfinite(us)) return "-";
  if (std::fabs(us) >= 100.0) return grouped(us);
  return three_digits(us);
}

std::string ratio(double v) {
  if (!std::isfinite(v)) return "-";
  return printf_string("%.2f", v);
}

std::string bytes(double n) {
  if (!std::isfinite(n) || n < 0.0) return "-";
  static constexpr std::array<const char*, 4> units = {"KiB", "MiB", "GiB", "TiB"};
  if (n < 1024.0) return printf_string("%.0f B", n);
  double v = n / 1024.0;
  std::size_t unit = 0;
  while (v >= 1024.0 && unit + 1 < units.size()) {
    v /= 1024.0;
    ++unit;
  }
  return trimmed(three_digits(v)) + ' ' + units[unit];
}

std::string compact(double v) {
  if (!std::isfinite(v)) return "-";
  const double a = std::fabs(v);
  if (a >= 1e9) return trimmed(three_digits(v / 1e9)) + "G";
  if (a >= 1e6) return trimmed(three_digits(v / 1e6)) + "M";
  if (a >= 1e3) return trimmed(three_digits(v / 1e3)) + "k";
  return trimmed(three_digits(v));
}

std::string readable(const value& v) {
  if (const auto* s = std::get_if<std::string>(&v)) return *s;
  if (const auto* i = std::get_if<std::int64_t>(&v)) {
    if (*i >= 10000 || *i <= -10000) return grouped(static_cast<double>(*i));
    return std::to_string(*i);
  }
  const double d = std::get<double>(v);
  if (!std::isfinite(d)) return "-";
  if (std::fabs(d) >= 1000.0) return grouped(d);
  if (d == std::trunc(d)) return printf_string("%.0f", d);
  return printf_string("%.4g", d);
}

std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  std::array<char, 32> buf{};
  const auto res = std::to_chars(buf.data(), buf.data() + buf.size(), v);
  return std::string(buf.data(), res.ptr);
}

std::string json_string(std::string_view s) {
  std::string out = "\"";
  const auto byte = [&s](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  const auto continuation = [&](std::size_t i, unsigned lo, unsigned hi) {
    return i < s.size() && byte(i) >= lo && byte(i) <= hi;
  };
  std::size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = byte(i);
    if (c < 0x80) {
      switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
          if (c < 0x20) {
            out += printf_string("\\u%04x", static_cast<unsigned>(c));
          } else {
            out += static_cast<char>(c);
          }
      }
      ++i;
      continue;
    }
    // A well-formed UTF-8 sequence passes through; anything else (stray continuation bytes,
    // overlong forms, surrogates) would make the whole document invalid, so it becomes U+FFFD.
    std::size_t len = 0;
    if (c >= 0xC2 && c <= 0xDF) {
      len = continuation(i + 1, 0x80, 0xBF) ? 2 : 0;
    } else if (c >= 0xE0 && c <= 0xEF) {
      const unsigned lo = c == 0xE0 ? 0xA0 : 0x80;
      const unsigned hi = c == 0xED ? 0x9F : 0xBF;
      len = continuation(i + 1, lo, hi) && continuation(i + 2, 0x80, 0xBF) ? 3 : 0;
    } else if (c >= 0xF0 && c <= 0xF4) {
      const unsigned lo = c == 0xF0 ? 0x90 : 0x80;
      const unsigned hi = c == 0xF4 ? 0x8F : 0xBF;
      len = continuation(i + 1, lo, hi) && continuation(i + 2, 0x80, 0xBF) &&
                    continuation(i + 3, 0x80, 0xBF)
                ? 4
                : 0;
    }
    if (len == 0) {
      out += "\\ufffd";
      ++i;
    } else {
      out.append(s.substr(i, len));
      i += len;
    }
  }
  out += '"';
  return out;
}

std::string csv_cell(std::string_view s) {
  if (s.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(s);
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

}  // namespace format

// ---------------------------------------------------------------------------------------------
// Machine facts
// ---------------------------------------------------------------------------------------------

namespace {

std::string trim(std::string_view s) {
  const auto first = s.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return {};
  const auto last = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(first, last - first + 1));
}

// The first "key : value" line of a /proc file whose key is `key`.
std::string proc_field(const char* path, std::string_view key) {
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    if (trim(std::string_view(line).substr(0, colon)) == key) {
      return trim(std::string_view(line).substr(colon + 1));
    }
  }
  return {};
}

std::string cpu_model() {
  // x86 says "model name"; ARM kernels name the part under other keys, or not at all.
  for (const char* key : {"model name", "Hardware", "Processor", "cpu model", "uarch"}) {
    std::string v = proc_field("/proc/cpuinfo", key);
    if (!v.empty()) return v;
  }
  return "unknown";
}

std::int64_t memory_total_mib() {
  const std::string kib = proc_field("/proc/meminfo", "MemTotal");  // "16318464 kB"
  std::int64_t n = 0;
  std::from_chars(kib.data(), kib.data() + kib.size(), n);
  return n / 1024;
}

std::string compiler() {
#if defined(__clang__)
  return "clang " __clang_version__;
#elif defined(__GNUC__)
  return "g++ " __VERSION__;
#else
  return "unknown";
#endif
}

std::string default_build_type() {
  const std::string configured = FABRIC_PERF_BUILD_TYPE;
  if (!configured.empty()) return configured;
#ifdef NDEBUG
  return "optimised (NDEBUG)";
#else
  return "debug (assertions on)";
#endif
}

std::string utc_timestamp() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  std::array<char, 32> buf{};
  const std::size_t n = std::strftime(buf.data(), buf.size(), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return std::string(buf.data(), n);
}

}  // namespace

std::vector<std::pair<std::string, value>> machine_info(std::string_view build_type) {
  utsname u{};
  const bool have_uname = uname(&u) == 0;
  int major = 0;
  int minor = 0;
  int patch = 0;
  zmq_version(&major, &minor, &patch);

  std::vector<std::pair<std::string, value>> facts;
  facts.emplace_back("hostname", have_uname ? std::string(u.nodename) : std::string("unknown"));
  facts.emplace_back("cpu_model", cpu_model());
  facts.emplace_back("logical_cores",
                     static_cast<std::int64_t>(std::thread::hardware_concurrency()));
  facts.emplace_back("memory_total_mib", memory_total_mib());
  facts.emplace_back("kernel", have_uname
                                   ? std::string(u.sysname) + ' ' + u.release + ' ' + u.machine
                                   : std::string("unknown"));
  facts.emplace_back("libzmq_version", std::to_string(major) + '.' + std::to_string(minor) + '.' +
                                           std::to_string(patch));
  facts.emplace_back("fabric_version", std::string(fabric::version_string));
  facts.emplace_back("compiler", compiler());
  facts.emplace_back("build_type",
                     build_type.empty() ? default_build_type() : std::string(build_type));
  facts.emplace_back("timestamp", utc_timestamp());
  return facts;
}

void print_machine(const report& r, std::ostream& out) {
  std::size_t width = 0;
  for (const auto& [k, v] : r.machine) width = std::max(width, k.size());
  for (const auto& [k, v] : r.machine) {
    out << k << ':' << std::string(width - k.size() + 1, ' ') << format::readable(v) << '\n';
  }
}

// ---------------------------------------------------------------------------------------------
// JSON and CSV
// ---------------------------------------------------------------------------------------------

namespace {

std::string json_value(const value& v) {
  if (const auto* s = std::get_if<std::string>(&v)) return format::json_string(*s);
  if (const auto* i = std::get_if<std::int64_t>(&v)) return std::to_string(*i);
  return format::json_number(std::get<double>(v));
}

void json_object(const std::vector<std::pair<std::string, value>>& fields, std::ostream& out) {
  out << '{';
  bool first = true;
  for (const auto& [k, v] : fields) {
    if (!first) out << ", ";
    first = false;
    out << format::json_string(k) << ": " << json_value(v);
  }
  out << '}';
}

std::string csv_value(const value& v) {
  if (const auto* s = std::get_if<std::string>(&v)) return format::csv_cell(*s);
  if (const auto* i = std::get_if<std::int64_t>(&v)) return std::to_string(*i);
  const double d = std::get<double>(v);
  return std::isfinite(d) ? format::json_number(d) : std::string();
}

}  // namespace

void write_json(const report& r, std::ostream& out) {
  out << "{\"machine\": ";
  json_object(r.machine, out);
  out << ",\n \"runs\": [";
  for (std::size_t i = 0; i < r.runs.size(); ++i) {
    out << (i == 0 ? "\n  " : ",\n  ");
    json_object(r.runs[i].fields, out);
  }
  out << (r.runs.empty() ? "]}\n" : "\n ]}\n");
}

void write_csv(const report& r, std::ostream& out) {
  std::vector<std::string> keys;
  std::set<std::string, std::less<>> seen;
  for (const run& one : r.runs) {
    for (const auto& [k, v] : one.fields) {
      if (seen.insert(k).second) keys.push_back(k);
    }
  }
  if (keys.empty()) return;
  for (std::size_t i = 0; i < keys.size(); ++i)
    out << (i == 0 ? "" : ",") << format::csv_cell(keys[i]);
  out << "\r\n";
  for (const run& one : r.runs) {
    for (std::size_t i = 0; i < keys.size(); ++i) {
      if (i != 0) out << ',';
      if (const value* v = one.get(keys[i])) out << csv_value(*v);
    }
    out << "\r\n";
  }
}

// ---------------------------------------------------------------------------------------------
// The table model: built once per bench, rendered as text or HTML
// ---------------------------------------------------------------------------------------------

namespace {

struct column {
  std::string header;
  bool numeric = false;
};

// A heading spanning `count` columns from `first`, e.g. "fabric µs" over p50..max.
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

// Benches in order of first appearance, each with its runs in report order.
std::vector<std::pair<std::string, run_list>> by_bench(const report& r) {
  std::vector<std::pair<std::string, run_list>> benches;
  for (const run& one : r.runs) {
    const std::string bench = one.text("bench").value_or("?");
    auto it = std::find_if(benches.begin(), benches.end(),
                           [&bench](const auto& b) { return b.first == bench; });
    if (it == benches.end()) {
      benches.emplace_back(bench, run_list{});
      it = std::prev(benches.end());
    }
    it->second.push_back(&one);
  }
  return benches;
}

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

// Largest distance of a repetition from the median, as a percentage of the median.
std::string spread(const run* r, std::string_view key) {
  const double median = field(r, key);
  const double lo = field(r, "min_" + std::string(key));
  const double hi = field(r, "max_" + std::string(key));
  if (!(median > 0.0) || !std::isfinite(lo) || !std::isfinite(hi)) return "-";
  if (field(r, "reps") < 2.0) return "-";  // one repetition has no spread to show
  const double pct = std::max(hi - median, median - lo) / median * 100.0;
  return "\u00b1" + printf_string(pct < 10.0 ? "%.1f%%" : "%.0f%%", pct);
}

std::string mode_cell(const run& r) {
  std::string mode = r.text("mode").value_or("-");
  if (const auto rate = r.number("rate")) mode += " " + format::grouped(*rate) + "/s";
  return mode;
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
    row.push_back(!std::isfinite(mb) ? "-" : mb >= 1000.0 ? format::grouped(mb) : three_digits(mb));
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

// Any bench: one column per key seen, in first-seen order.
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

// Terminal columns, not bytes: "µ" and "±" are two bytes but one column.
std::size_t display_width(std::string_view s) {
  std::size_t n = 0;
  for (const char c : s) {
    if ((static_cast<unsigned char>(c) & 0xC0U) != 0x80U) ++n;
  }
  return n;
}

std::string pad(const std::string& s, std::size_t width, bool right) {
  const std::size_t w = display_width(s);
  if (w >= width) return s;
  const std::string fill(width - w, ' ');
  return right ? fill + s : s + fill;
}

void rstrip_line(std::string& line, std::ostream& out) {
  while (!line.empty() && line.back() == ' ') line.pop_back();
  out << line << '\n';
}

void print_text(const table& t, std::ostream& out) {
  constexpr std::size_t gap = 2;
  std::vector<std::size_t> widths(t.columns.size(), 0);
  for (std::size_t c = 0; c < t.columns.size(); ++c) {
    widths[c] = display_width(t.columns[c].header);
    for (const auto& row : t.rows) {
      if (c < row.size()) widths[c] = std::max(widths[c], display_width(row[c]));
    }
  }
  // A group label wider than its columns widens the last of them.
  for (const column_group& g : t.groups) {
    std::size_t span = 0;
    for (std::size_t c = g.first; c < g.first + g.count; ++c)
      span += widths[c] + (c == g.first ? 0 : gap);
    const std::size_t need = display_width(g.label) + 4;
    if (need > span) widths[g.first + g.count - 1] += need - span;
  }

  out << t.title << '\n';
  if (!t.note.empty()) out << t.note << '\n';
  if (!t.groups.empty()) {
    std::string line;
    std::size_t c = 0;
    for (const column_group& g : t.groups) {
      for (; c < g.first; ++c) line += std::string(widths[c] + gap, ' ');
      std::size_t span = 0;
      for (; c < g.first + g.count; ++c) span += widths[c] + (c == g.first ? 0 : gap);
      const std::string label = " " + g.label + " ";
      const std::size_t dashes = span - display_width(label);
      line += std::string(dashes / 2, '-') + label + std::string(dashes - dashes / 2, '-');
      line += std::string(gap, ' ');
    }
    rstrip_line(line, out);
  }
  std::string header;
  std::string rule;
  for (std::size_t c = 0; c < t.columns.size(); ++c) {
    if (c != 0) {
      header += std::string(gap, ' ');
      rule += std::string(gap, ' ');
    }
    header += pad(t.columns[c].header, widths[c], t.columns[c].numeric);
    rule += std::string(widths[c], '-');
  }
  rstrip_line(header, out);
  rstrip_line(rule, out);
  for (const auto& row : t.rows) {
    std::string line;
    for (std::size_t c = 0; c < t.columns.size(); ++c) {
      if (c != 0) line += std::string(gap, ' ');
      line += pad(c < row.size() ? row[c] : std::string(), widths[c], t.columns[c].numeric);
    }
    rstrip_line(line, out);
  }
}

}  // namespace

void print_table(const report& r, std::ostream& out) {
  if (r.runs.empty()) {
    out << "No runs.\n";
    return;
  }
  bool first = true;
  for (const auto& [bench, runs] : by_bench(r)) {
    if (!first) out << '\n';
    first = false;
    print_text(bench_table(bench, runs), out);
  }
}

// ---------------------------------------------------------------------------------------------
// HTML
// ---------------------------------------------------------------------------------------------

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

std::string tick_micros(double v) { return trimmed(format::micros(v)); }

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
