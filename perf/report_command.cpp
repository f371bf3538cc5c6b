// fabric-perf report: merges the JSON files of several runs of fabric-perf (--json) into one
// report, prints the one-screen summary and, with --html, writes one page with every family.
#include "bench.hpp"
#include "harness/output.hpp"

#include <cstdio>
#include <fstream>
#include <sstream>
#include <iostream>
#include <iterator>
#include <stdexcept>

namespace fabric::perf {
namespace {

// A report of the whole default suite is a few hundred kilobytes; far more is not one.
constexpr std::streamoff max_report_bytes = 64LL << 20;

report read_report_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw std::runtime_error("report: cannot read " + path);
  const std::streamoff size = in.tellg();
  if (size > max_report_bytes) {
    throw std::runtime_error("report: " + path + " is " + std::to_string(size >> 20) +
                             " MiB; a fabric-perf JSON report is far smaller");
  }
  in.seekg(0);
  std::ostringstream whole;
  whole << in.rdbuf();
  const std::string text = std::move(whole).str();
  try {
    return read_json(text);
  } catch (const std::runtime_error& e) {
    throw std::runtime_error("report: " + path + ": " + e.what() +
                             " (expected a file written by fabric-perf --json)");
  }
}

std::string hostname(const report& r) {
  for (const auto& [k, v] : r.machine) {
    if (k == "hostname") return format::readable(v);
  }
  return "an unnamed host";
}

void merge_and_report(const std::vector<std::string>& files, const std::string& html_path) {
  report merged;
  for (const std::string& path : files) {
    report one = read_report_file(path);
    const std::string host = hostname(one);
    if (!merge_into(merged, std::move(one))) {
      std::fprintf(stderr,
                   "fabric-perf report: %s was measured on %s, not on %s like the files before "
                   "it; the report shows the machine facts of the first\n",
                   path.c_str(), host.c_str(), hostname(merged).c_str());
    }
  }
  print_summary(merged, std::cout);
  if (html_path.empty()) return;
  std::ofstream out(html_path);
  if (out) write_html(merged, out);
  if (!out) throw std::runtime_error("report: cannot write " + html_path);
  std::cout << "\nCharts and tables: " << html_path << '\n';
}

void register_report(CLI::App& app, session&) {
  static std::vector<std::string> files;
  static std::string html_path;
  CLI::App* sub = app.add_subcommand(
      "report",
      "merge JSON results (written with --json) into one report: print a summary of fabric "
      "beside its baselines and, with --html, write one page with charts for every family");
  sub->add_option("files", files, "JSON files written by fabric-perf --json")
      ->required()
      ->check(CLI::ExistingFile);
  sub->add_option("--html", html_path, "write the merged report as one self-contained HTML page");
  sub->callback([] { merge_and_report(files, html_path); });
}

}  // namespace

FABRIC_PERF_REGISTER(register_report);

}  // namespace fabric::perf
