// Small line charts as inline SVG for fabric-perf's HTML report: axes (linear or log), grid,
// solid or dashed lines with hover tips, and a legend. Knows nothing about runs or benchmarks.
#pragma once

#include <cstddef>
#include <functional>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fabric::perf::svg {

/// One axis: its domain in data units, whether it is logarithmic, and labelled tick positions.
struct axis {
  std::string label;
  double lo = 0.0;
  double hi = 1.0;
  bool log = false;
  std::vector<std::pair<double, std::string>> ticks;
};

/// Formats a tick value for display.
using tick_format = std::function<std::string(double)>;

/// A log axis over [lo, hi] (both > 0) widened to 1-2-5 steps, ticked at 1, 2, 5 x 10^k when it
/// spans at most three decades and at powers of ten otherwise.
axis log_axis(std::string label, double lo, double hi, const tick_format& format);
/// A linear axis over [lo, hi] widened to round steps, about five ticks.
axis linear_axis(std::string label, double lo, double hi, const tick_format& format);

struct point {
  double x = 0.0;
  double y = 0.0;
  std::string tip;  ///< Shown on hover (an SVG <title>, no script).
};

struct series {
  std::string colour;
  std::string dash;  ///< stroke-dasharray; empty for a solid line.
  std::vector<point> points;
};

/// One legend row; an entry with an empty label is a half-row gap between groups of entries.
struct legend_entry {
  std::string label;
  std::string colour;
  std::string dash;
};

struct chart {
  std::string title;
  axis x;
  axis y;
  std::vector<series> lines;
  std::vector<legend_entry> legend;
  int width = 600;
  int height = 380;
};

/// Writes `c` as one <svg> element. Points outside a log axis' positive range are left out.
void render(const chart& c, std::ostream& out);

/// One horizontal bar, drawn from the chart's origin to `value`.
struct bar {
  std::string label;  ///< left of the bar
  double value = 0.0;
  std::string text;   ///< beside the bar's end
  std::string colour;
  std::string tip;
};

/// Horizontal bars on a shared axis, e.g. ratios drawn from 1 on a log axis so that twice as
/// fast and half as fast are bars of the same length.
struct bar_chart {
  std::string title;
  std::string subtitle;  ///< one line under the title, e.g. how to read the bars
  axis x;
  double origin = 1.0;
  std::vector<bar> bars;
  std::vector<legend_entry> legend;  ///< drawn as swatches under the plot
  int width = 580;  ///< at least; two fit side by side on the report's page
};

/// Writes `c` as one <svg> element, as tall as its bars need.
void render(const bar_chart& c, std::ostream& out);

/// Escapes text for HTML / SVG content and attribute values.
std::string escape(std::string_view text);

/// A palette of distinguishable colours, cycled by index.
const std::string& colour(std::size_t index);

}  // namespace fabric::perf::svg
