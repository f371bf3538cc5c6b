// The core of fabric-perf: a session that collects runs and writes them out, and a registry
// through which each benchmark family (patterns, journal, majordomo, ...) adds its subcommands.
// A new family is one new source file with a FABRIC_PERF_REGISTER line; nothing here changes.
#pragma once

#include "harness/record.hpp"

#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <vector>

namespace fabric::perf {

/// Options every benchmark subcommand shares.
struct common_options {
  int reps = 3;                    ///< repetitions per workload; the median is reported
  std::string baseline = "raw";    ///< "raw" runs the raw baseline beside fabric; "none" skips it
  std::string json_path;           ///< --json FILE
  std::string csv_path;            ///< --csv FILE
  std::string html_path;           ///< --html FILE
  bool quiet = false;              ///< no progress lines on stderr

  bool with_baseline() const { return baseline != "none"; }
};

/// One invocation of fabric-perf: the options, the collected runs, the output.
class session {
 public:
  common_options options;
  report results;

  /// Adds a finished run (and prints a progress line unless quiet).
  void add(run r);
  /// Prints the table and writes the requested files. Returns the process exit code.
  int finish();
  /// Marks the invocation failed (a workload error); finish() then returns non-zero.
  void fail(const std::string& why);

 private:
  bool failed_ = false;
};

/// Adds `options`' flags to a subcommand.
void add_common_options(CLI::App& sub, common_options& options);

/// A benchmark family: called once at start-up to add its subcommands to `app`. Each
/// subcommand's callback runs its workloads and adds runs to `s`.
using registration = std::function<void(CLI::App& app, session& s)>;

std::vector<registration>& registry();

struct registrar {
  explicit registrar(registration r) { registry().push_back(std::move(r)); }
};

}  // namespace fabric::perf

#define FABRIC_PERF_CONCAT2(a, b) a##b
#define FABRIC_PERF_CONCAT(a, b) FABRIC_PERF_CONCAT2(a, b)
/// Registers a benchmark family: FABRIC_PERF_REGISTER(register_pattern_benchmarks);
#define FABRIC_PERF_REGISTER(fn) \
  static const ::fabric::perf::registrar FABRIC_PERF_CONCAT(fabric_perf_registrar_, __LINE__){fn}
