// The CSV writer: a header of every key seen, one row per run, quoted as RFC 4180 says.
#include <set>

#include "harness/format.hpp"
#include "harness/output.hpp"

namespace fabric::perf {

namespace {

std::string csv_value(const value& v) {
  if (const auto* s = std::get_if<std::string>(&v)) return format::csv_cell(*s);
  if (const auto* i = std::get_if<std::int64_t>(&v)) return std::to_string(*i);
  return format::shortest(std::get<double>(v));
}

}  // namespace

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

}  // namespace fabric::perf
