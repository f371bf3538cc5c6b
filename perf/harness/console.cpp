// The console writer: tables as aligned text, one per bench, fabric beside its baseline.
#include <algorithm>

#include "harness/output.hpp"
#include "harness/table.hpp"

namespace fabric::perf {

namespace {

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

}  // namespace fabric::perf
