// Number and text formatting shared by fabric-perf's writers (console, CSV, HTML, charts).
#pragma once

#include <string>
#include <string_view>

#include "harness/record.hpp"

namespace fabric::perf::format {

/// 1234567.4 -> "1,234,567"; "-" for NaN or infinity.
std::string grouped(double v);
/// Microseconds with three significant digits ("0.123", "12.3", "123"), integers grouped above.
std::string micros(double us);
/// Two decimals ("0.95"), two significant digits below 0.095 ("0.0042").
std::string ratio(double v);
/// A message size in bytes: "64 B", "1 KiB", "1.5 KiB", "64 KiB", "1 MiB".
std::string bytes(double n);
/// Compact rate: "950", "12.3k", "1.23M".
std::string compact(double v);
/// A field value for people: integers as is, doubles with up to four significant digits.
std::string readable(const value& v);
/// Three significant digits without exponents: "0.123", "1.23", "12.3", "123", "1234".
std::string significant(double v);
/// A percentage with one decimal below 10 and none above: "5.0%", "38%".
std::string percent(double pct);
/// "2.50" -> "2.5", "3.00" -> "3": for labels that read better without padding zeros.
std::string without_trailing_zeros(std::string s);
/// The shortest text that reads back as the same double ("0.1", "1500000"); "" if not finite.
std::string shortest(double v);
/// One CSV cell, quoted only when it has to be.
std::string csv_cell(std::string_view s);

}  // namespace fabric::perf::format
