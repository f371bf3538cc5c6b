// Number and text formatting for fabric-perf's writers: grouped digits, units, significant digits.
#include "harness/format.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdio>

namespace fabric::perf::format {

namespace {

template <typename... Args>
std::string printf_string(const char* pattern, Args... args) {
  std::array<char, 64> buf{};
  const int n = std::snprintf(buf.data(), buf.size(), pattern, args...);
  if (n < 0) return {};
  return std::string(buf.data(), std::min(static_cast<std::size_t>(n), buf.size() - 1U));
}

}  // namespace

std::string without_trailing_zeros(std::string s) {
  if (s.find('.') == std::string::npos || s.find('e') != std::string::npos) return s;
  while (!s.empty() && s.back() == '0') s.pop_back();
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

std::string significant(double v) {
  const double a = std::fabs(v);
  if (a >= 100.0) return printf_string("%.0f", v);
  if (a >= 10.0) return printf_string("%.1f", v);
  if (a >= 1.0) return printf_string("%.2f", v);
  return printf_string("%.3g", v);
}

std::string percent(double pct) {
  if (!std::isfinite(pct)) return "-";
  return printf_string(std::fabs(pct) < 10.0 ? "%.1f%%" : "%.0f%%", pct);
}

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
  return significant(us);
}

std::string ratio(double v) {
  if (!std::isfinite(v)) return "-";
  // Two decimals would round a ratio of 0.004 to "0.00"; small ones keep two digits instead.
  if (v > 0.0 && v < 0.095) return printf_string("%.2g", v);
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
  return without_trailing_zeros(significant(v)) + ' ' + units[unit];
}

std::string compact(double v) {
  if (!std::isfinite(v)) return "-";
  const double a = std::fabs(v);
  if (a >= 1e9) return without_trailing_zeros(significant(v / 1e9)) + "G";
  if (a >= 1e6) return without_trailing_zeros(significant(v / 1e6)) + "M";
  if (a >= 1e3) return without_trailing_zeros(significant(v / 1e3)) + "k";
  return without_trailing_zeros(significant(v));
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

std::string shortest(double v) {
  if (!std::isfinite(v)) return {};
  std::array<char, 32> buf{};
  const auto res = std::to_chars(buf.data(), buf.data() + buf.size(), v);
  return std::string(buf.data(), res.ptr);
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

}  // namespace fabric::perf::format
