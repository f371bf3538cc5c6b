// Rendering of fabric::perf::svg charts: coordinate mapping, grid, lines, markers, bars, legend.
// The <svg> elements are meant to sit inside an HTML page, which gives them their namespace.
#include "harness/svg_chart.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>

namespace fabric::perf::svg {

std::string escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

const std::string& colour(std::size_t index) {
  // Ten clearly distinct hues, then darker and lighter ones for crowded charts.
  static const std::array<std::string, 20> palette = {
      "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
      "#17becf", "#7f7f7f", "#bcbd22", "#0b3d91", "#ff9896", "#00441b", "#fdbf6f",
      "#3f007d", "#c49c94", "#7a0177", "#9edae5", "#252525", "#6b6b00"};
  return palette[index % palette.size()];
}

namespace {

// The 1-2-5 steps of a decade, the values people read off a log axis without effort.
constexpr std::array<double, 3> steps = {1.0, 2.0, 5.0};

double step_at_or_below(double v) {
  const double decade = std::pow(10.0, std::floor(std::log10(v)));
  double best = decade;
  for (const double s : steps) {
    if (s * decade <= v * (1.0 + 1e-9)) best = s * decade;
  }
  return best;
}

double step_at_or_above(double v) {
  const double decade = std::pow(10.0, std::floor(std::log10(v)));
  for (const double s : steps) {
    if (s * decade >= v * (1.0 - 1e-9)) return s * decade;
  }
  return 10.0 * decade;
}

std::string number(double v) {
  std::array<char, 32> buf{};
  std::snprintf(buf.data(), buf.size(), "%.1f", v);
  return buf.data();
}

}  // namespace

axis log_axis(std::string label, double lo, double hi, const tick_format& format) {
  axis a;
  a.label = std::move(label);
  a.log = true;
  if (!(lo > 0.0) || !std::isfinite(lo)) lo = 1.0;
  if (!(hi >= lo) || !std::isfinite(hi)) hi = lo;
  a.lo = step_at_or_below(lo);
  a.hi = step_at_or_above(hi);
  if (a.hi <= a.lo) a.hi = step_at_or_above(a.lo * 1.5);
  const bool fine = std::log10(a.hi / a.lo) <= 3.0 + 1e-9;
  if (!fine) {
    // Only powers of ten get labels then, so the ends are widened to one to label them too.
    a.lo = std::pow(10.0, std::floor(std::log10(a.lo) + 1e-9));
    a.hi = std::pow(10.0, std::ceil(std::log10(a.hi) - 1e-9));
  }
  for (double decade = std::pow(10.0, std::floor(std::log10(a.lo))); decade <= a.hi * 1.000001;
       decade *= 10.0) {
    for (const double s : steps) {
      const double t = s * decade;
      if (s != 1.0 && !fine) continue;
      if (t >= a.lo * 0.999999 && t <= a.hi * 1.000001) a.ticks.emplace_back(t, format(t));
    }
  }
  return a;
}

axis linear_axis(std::string label, double lo, double hi, const tick_format& format) {
  axis a;
  a.label = std::move(label);
  if (!std::isfinite(lo)) lo = 0.0;
  if (!std::isfinite(hi) || hi < lo) hi = lo;
  if (hi == lo) hi = lo + (lo == 0.0 ? 1.0 : std::fabs(lo));
  const double step = step_at_or_above((hi - lo) / 5.0);
  a.lo = std::floor(lo / step) * step;
  a.hi = std::ceil(hi / step) * step;
  for (double t = a.lo; t <= a.hi + step * 1e-6; t += step) {
    // Snapping kills the 0.30000000000000004 that repeated addition leaves behind.
    const double snapped = std::round(t / step) * step;
    a.ticks.emplace_back(snapped, format(snapped));
  }
  return a;
}

namespace {

struct mapper {
  double lo;
  double hi;
  bool log;
  double from;
  double to;

  bool valid(double v) const { return std::isfinite(v) && (!log || v > 0.0); }
  double operator()(double v) const {
    const double a = log ? std::log10(lo) : lo;
    const double b = log ? std::log10(hi) : hi;
    const double t = ((log ? std::log10(v) : v) - a) / (b - a);
    // Out-of-domain points are pinned just outside the plot rather than thrown far away.
    return from + std::clamp(t, -0.05, 1.05) * (to - from);
  }
};

void text(std::ostream& out, double x, double y, std::string_view anchor, std::string_view s,
          std::string_view extra = {}) {
  out << "<text x=\"" << number(x) << "\" y=\"" << number(y) << "\" text-anchor=\"" << anchor << '"'
      << extra << '>' << escape(s) << "</text>\n";
}

void line(std::ostream& out, double x1, double y1, double x2, double y2, std::string_view stroke,
          std::string_view extra = {}) {
  out << "<line x1=\"" << number(x1) << "\" y1=\"" << number(y1) << "\" x2=\"" << number(x2)
      << "\" y2=\"" << number(y2) << "\" stroke=\"" << stroke << '"' << extra << "/>\n";
}

}  // namespace

void render(const chart& c, std::ostream& out) {
  constexpr double left = 78.0;
  constexpr double top = 40.0;
  // Legend labels are measured roughly (7 px a character at 12 px) to keep them inside the image.
  std::size_t longest = 0;
  for (const legend_entry& e : c.legend) longest = std::max(longest, e.label.size());
  const double legend_width = std::max(150.0, 64.0 + 7.0 * static_cast<double>(longest));
  constexpr double legend_row = 18.0;
  const double legend_height = 20.0 + legend_row * static_cast<double>(c.legend.size());
  const double width = std::max(static_cast<double>(c.width), left + 300.0 + legend_width);
  const double height = std::max(static_cast<double>(c.height), top + legend_height + 60.0);
  const double right = width - legend_width;
  const double bottom = height - 56.0;

  const mapper mx{c.x.lo, c.x.hi, c.x.log, left, right};
  const mapper my{c.y.lo, c.y.hi, c.y.log, bottom, top};

  out << "<svg width=\"" << number(width) << "\" height=\""
      << number(height) << "\" viewBox=\"0 0 " << number(width) << ' ' << number(height)
      << "\" role=\"img\" font-family=\"system-ui, sans-serif\" font-size=\"12\">\n";
  out << "<title>" << escape(c.title) << "</title>\n";
  out << "<rect x=\"0\" y=\"0\" width=\"" << number(width) << "\" height=\"" << number(height)
      << "\" fill=\"#ffffff\"/>\n";
  text(out, left, 22.0, "start", c.title, " font-size=\"14\" font-weight=\"bold\"");

  // Grid and tick labels first so the data lines draw over them.
  for (const auto& [v, label] : c.y.ticks) {
    if (!my.valid(v)) continue;
    const double y = my(v);
    line(out, left, y, right, y, "#e3e3e3");
    text(out, left - 6.0, y + 4.0, "end", label, " fill=\"#333\"");
  }
  for (const auto& [v, label] : c.x.ticks) {
    if (!mx.valid(v)) continue;
    const double x = mx(v);
    line(out, x, top, x, bottom, "#e3e3e3");
    text(out, x, bottom + 16.0, "middle", label, " fill=\"#333\"");
  }
  out << "<rect x=\"" << number(left) << "\" y=\"" << number(top) << "\" width=\""
      << number(right - left) << "\" height=\"" << number(bottom - top)
      << "\" fill=\"none\" stroke=\"#888\"/>\n";
  text(out, (left + right) / 2.0, bottom + 38.0, "middle", c.x.label, " fill=\"#111\"");
  out << "<text transform=\"translate(16 " << number((top + bottom) / 2.0)
      << ") rotate(-90)\" text-anchor=\"middle\" fill=\"#111\">" << escape(c.y.label)
      << "</text>\n";

  for (const series& s : c.lines) {
    std::string points;
    for (const point& p : s.points) {
      if (!mx.valid(p.x) || !my.valid(p.y)) continue;
      if (!points.empty()) points += ' ';
      points += number(mx(p.x)) + ',' + number(my(p.y));
    }
    if (points.empty()) continue;
    out << "<polyline fill=\"none\" stroke=\"" << s.colour << "\" stroke-width=\"2\"";
    if (!s.dash.empty()) out << " stroke-dasharray=\"" << s.dash << '"';
    out << " points=\"" << points << "\"/>\n";
    for (const point& p : s.points) {
      if (!mx.valid(p.x) || !my.valid(p.y)) continue;
      out << "<circle cx=\"" << number(mx(p.x)) << "\" cy=\"" << number(my(p.y))
          << "\" r=\"3.5\" fill=\"" << s.colour << "\"><title>" << escape(p.tip)
          << "</title></circle>\n";
    }
  }

  double y = top + 6.0;
  const double lx = right + 16.0;
  for (const legend_entry& e : c.legend) {
    if (e.label.empty()) {
      y += legend_row / 2.0;
      continue;
    }
    line(out, lx, y, lx + 30.0, y, e.colour,
         e.dash.empty() ? std::string(" stroke-width=\"2\"")
                        : " stroke-width=\"2\" stroke-dasharray=\"" + e.dash + '"');
    text(out, lx + 38.0, y + 4.0, "start", e.label, " fill=\"#111\"");
    y += legend_row;
  }
  out << "</svg>\n";
}

void render(const bar_chart& c, std::ostream& out) {
  constexpr double row = 16.0;
  constexpr double top = 56.0;
  // Between the labels and the plot, and right of it: room for the value beside a bar that
  // reaches the edge, so that it never runs into a label.
  constexpr double gutter = 40.0;
  constexpr double char_width = 6.5;  // labels are measured roughly, at 12 px
  std::size_t longest = 0;
  for (const bar& b : c.bars) longest = std::max(longest, b.label.size());
  const double labels = std::clamp(14.0 + char_width * static_cast<double>(longest), 80.0, 320.0);
  const double left = labels + gutter;
  const double width = std::max(static_cast<double>(c.width), left + 220.0 + gutter);
  const double right = width - gutter;
  const double bottom = top + row * static_cast<double>(std::max<std::size_t>(c.bars.size(), 1));

  // Legend swatches in rows under the axis label, wrapped at the chart's width.
  std::vector<std::pair<double, double>> legend_at;  // (x, y) of each entry
  double lx = 12.0;
  double ly = bottom + 52.0;
  for (const legend_entry& e : c.legend) {
    const double w = 30.0 + char_width * static_cast<double>(e.label.size());
    if (lx > 12.0 && lx + w > width - 12.0) {
      lx = 12.0;
      ly += 20.0;
    }
    legend_at.emplace_back(lx, ly);
    lx += w;
  }
  const double height = (c.legend.empty() ? bottom + 34.0 : ly) + 16.0;
  const mapper mx{c.x.lo, c.x.hi, c.x.log, left, right};

  out << "<svg width=\"" << number(width) << "\" height=\"" << number(height) << "\" viewBox=\"0 0 "
      << number(width) << ' ' << number(height)
      << "\" role=\"img\" font-family=\"system-ui, sans-serif\" font-size=\"12\">\n";
  out << "<title>" << escape(c.title) << "</title>\n";
  out << "<rect x=\"0\" y=\"0\" width=\"" << number(width) << "\" height=\"" << number(height)
      << "\" fill=\"#ffffff\"/>\n";
  text(out, 12.0, 22.0, "start", c.title, " font-size=\"14\" font-weight=\"bold\"");
  if (!c.subtitle.empty()) text(out, 12.0, 40.0, "start", c.subtitle, " fill=\"#555\"");

  for (const auto& [v, label] : c.x.ticks) {
    if (!mx.valid(v)) continue;
    const double x = mx(v);
    line(out, x, top, x, bottom, "#e3e3e3");
    text(out, x, bottom + 16.0, "middle", label, " fill=\"#333\"");
  }
  text(out, (left + right) / 2.0, bottom + 34.0, "middle", c.x.label, " fill=\"#111\"");

  const double origin = mx.valid(c.origin) ? mx(c.origin) : left;
  for (std::size_t i = 0; i < c.bars.size(); ++i) {
    const bar& b = c.bars[i];
    const double y = top + row * static_cast<double>(i);
    text(out, labels, y + 12.0, "end", b.label, " fill=\"#111\"");
    if (!mx.valid(b.value)) continue;
    // A value beyond the axis ends at the plot's edge; its text still says how far it goes.
    const double end = std::clamp(mx(b.value), left, right);
    out << "<rect x=\"" << number(std::min(origin, end)) << "\" y=\"" << number(y + 2.5)
        << "\" width=\"" << number(std::max(std::fabs(end - origin), 1.0))
        << "\" height=\"" << number(row - 5.0) << "\" fill=\"" << b.colour << "\"><title>"
        << escape(b.tip) << "</title></rect>\n";
    const bool after = end >= origin;
    text(out, after ? end + 4.0 : end - 4.0, y + 12.0, after ? "start" : "end", b.text,
         " fill=\"#333\"");
  }
  // The origin over the bars, so that it reads as the line they grow from.
  line(out, origin, top - 4.0, origin, bottom + 2.0, "#222", " stroke-width=\"1.5\"");

  for (std::size_t i = 0; i < c.legend.size(); ++i) {
    const legend_entry& e = c.legend[i];
    if (e.label.empty()) continue;
    const auto [x, y] = legend_at[i];
    out << "<rect x=\"" << number(x) << "\" y=\"" << number(y - 10.0)
        << "\" width=\"12\" height=\"12\" fill=\"" << e.colour << "\"/>\n";
    text(out, x + 17.0, y, "start", e.label, " fill=\"#111\"");
  }
  out << "</svg>\n";
}

}  // namespace fabric::perf::svg
