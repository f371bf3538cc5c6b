// fabric-perf: latency and throughput of fabric, side by side with raw libzmq in the same run.
// Benchmark families register their subcommands (see bench.hpp); this file runs the chosen one
// and writes the results.
#include "bench.hpp"
#include "harness/output.hpp"

#include <fabric/version.hpp>

#include <cstdio>
#include <exception>
#include <fstream>
#include <iostream>

namespace fabric::perf {

std::vector<registration>& registry() {
  static std::vector<registration> families;
  return families;
}

void add_common_options(CLI::App& sub, common_options& o) {
  sub.add_option("-r,--reps", o.reps, "repetitions per workload; the median is reported")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub.add_option("--baseline", o.baseline, "raw: run raw libzmq beside fabric; none: skip it")
      ->check(CLI::IsMember({"raw", "none"}))
      ->capture_default_str();
  sub.add_option("--json", o.json_path, "write the results as JSON to FILE");
  sub.add_option("--csv", o.csv_path, "write the results as CSV to FILE");
  sub.add_option("--html", o.html_path, "write a self-contained HTML page with charts to FILE");
  sub.add_flag("-q,--quiet", o.quiet, "no progress lines");
}

void session::add(run r) {
  if (!options.quiet) {
    std::string line;
    for (const auto& [key, v] : r.fields) {
      if (key == "reps" || key.rfind("min_", 0) == 0 || key.rfind("max_p", 0) == 0 ||
          key == "max_msgs_per_s")
        continue;
      line += key + "=";
      if (const auto* i = std::get_if<std::int64_t>(&v)) line += std::to_string(*i);
      else if (const auto* d = std::get_if<double>(&v)) {
        char buffer[32];
        std::snprintf(buffer, sizeof buffer, "%.4g", *d);
        line += buffer;
      } else line += std::get<std::string>(v);
      line += " ";
    }
    std::fprintf(stderr, "%s\n", line.c_str());
  }
  results.runs.push_back(std::move(r));
}

void session::fail(const std::string& why) {
  failed_ = true;
  std::fprintf(stderr, "fabric-perf: FAILED %s\n", why.c_str());
}

namespace {

bool write_file(const std::string& path, void (*writer)(const report&, std::ostream&),
                const report& results) {
  if (path.empty()) return true;
  std::ofstream out(path);
  if (out) writer(results, out);
  if (!out) {
    std::fprintf(stderr, "fabric-perf: cannot write %s\n", path.c_str());
    return false;
  }
  return true;
}

}  // namespace

int session::finish() {
  if (results.runs.empty() && !failed_) return 0;  // a subcommand that reports nothing itself
  results.machine = machine_info();  // the build type comes from CMake's configuration
  print_table(results, std::cout);
  bool ok = write_file(options.json_path, write_json, results);
  ok = write_file(options.csv_path, write_csv, results) && ok;
  ok = write_file(options.html_path, write_html, results) && ok;
  return ok && !failed_ ? 0 : 1;
}

}  // namespace fabric::perf

int main(int argc, char** argv) {
  using namespace fabric::perf;
  CLI::App app{std::string("fabric-perf ") + fabric::version_string +
               ": latency and throughput of fabric beside raw libzmq, measured in the same run"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string(fabric::version_string));
  session s;
  for (const registration& family : registry()) family(app, s);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fabric-perf: %s\n", e.what());
    return 1;
  }
  return s.finish();
}
