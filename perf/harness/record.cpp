// fabric::perf::run field access and the workload identity used to pair fabric with its baseline.
#include "harness/record.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>

namespace fabric::perf {

run& run::set(std::string_view key, value v) {
  for (auto& [k, existing] : fields) {
    if (k == key) {
      existing = std::move(v);
      return *this;
    }
  }
  fields.emplace_back(std::string(key), std::move(v));
  return *this;
}

const value* run::get(std::string_view key) const noexcept {
  for (const auto& [k, v] : fields) {
    if (k == key) return &v;
  }
  return nullptr;
}

std::optional<std::string> run::text(std::string_view key) const {
  const value* v = get(key);
  if (v == nullptr) return std::nullopt;
  if (const auto* s = std::get_if<std::string>(v)) return *s;
  return std::nullopt;
}

std::optional<double> run::number(std::string_view key) const {
  const value* v = get(key);
  if (v == nullptr) return std::nullopt;
  if (const auto* i = std::get_if<std::int64_t>(v)) return static_cast<double>(*i);
  if (const auto* d = std::get_if<double>(v)) return *d;
  return std::nullopt;
}

bool merge_into(report& into, report part) {
  const auto host = [](const report& r) -> const value* {
    for (const auto& [k, v] : r.machine) {
      if (k == "hostname") return &v;
    }
    return nullptr;
  };
  bool same = true;
  if (into.machine.empty()) {
    into.machine = std::move(part.machine);
  } else if (!part.machine.empty()) {
    const value* a = host(into);
    const value* b = host(part);
    same = (a == nullptr) == (b == nullptr) && (a == nullptr || *a == *b);
  }
  for (run& r : part.runs) into.runs.push_back(std::move(r));
  return same;
}

bool is_measurement_key(std::string_view key) noexcept {
  // "batch" and "avg_batch" are what a journal run achieved (and its raw twin was given), not
  // what distinguishes one workload from another.
  static constexpr std::array<std::string_view, 9> plain = {
      "impl", "reps", "count", "samples", "errors", "lost", "dropped", "batch", "avg_batch"};
  static constexpr std::array<std::string_view, 5> unit_suffixes = {"_s", "_ms", "_us", "_ns",
                                                                    "_pct"};
  if (std::find(plain.begin(), plain.end(), key) != plain.end()) return true;
  if (key.starts_with("min_") || key.starts_with("max_")) return true;
  return std::any_of(unit_suffixes.begin(), unit_suffixes.end(),
                     [key](std::string_view s) { return key.ends_with(s); });
}

namespace {

// Integers and integral doubles print alike, so size=64 pairs with size=64.0.
std::string key_text(const value& v) {
  if (const auto* s = std::get_if<std::string>(&v)) return *s;
  std::array<char, 32> buf{};
  std::to_chars_result res{};
  if (const auto* i = std::get_if<std::int64_t>(&v)) {
    res = std::to_chars(buf.data(), buf.data() + buf.size(), *i);
  } else {
    const double d = std::get<double>(v);
    if (std::isfinite(d) && d == std::trunc(d) && std::fabs(d) < 9.0e15) {
      res = std::to_chars(buf.data(), buf.data() + buf.size(), static_cast<std::int64_t>(d));
    } else {
      res = std::to_chars(buf.data(), buf.data() + buf.size(), d);
    }
  }
  return std::string(buf.data(), res.ptr);
}

// Separators inside values are escaped so that distinct field sets never give the same key.
void append_escaped(std::string& out, std::string_view s) {
  for (const char c : s) {
    if (c == '\\' || c == '=' || c == ';') out += '\\';
    out += c;
  }
}

}  // namespace

std::string workload_key(const run& r) {
  std::vector<std::pair<std::string_view, std::string>> identity;
  for (const auto& [k, v] : r.fields) {
    if (!is_measurement_key(k)) identity.emplace_back(k, key_text(v));
  }
  std::sort(identity.begin(), identity.end());
  std::string key;
  for (const auto& [k, v] : identity) {
    append_escaped(key, k);
    key += '=';
    append_escaped(key, v);
    key += ';';
  }
  return key;
}

}  // namespace fabric::perf
