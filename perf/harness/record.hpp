// The data model of fabric-perf: one `run` per measured workload, collected into a `report`.
// Benchmarks fill runs with named fields; writers (table, JSON, CSV, HTML) read them. New
// benchmarks (journal, majordomo, ...) add runs with their own extra keys without touching
// the writers.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace fabric::perf {

/// A field value: integer, floating point or text.
using value = std::variant<std::int64_t, double, std::string>;

/// One measured workload. Fields keep insertion order (the JSON and CSV keep it too).
///
/// Keys used by every run: "bench" ("thr", "lat", later "journal", "majordomo"...), "impl"
/// ("fabric", "raw", "raw_lmdb"...), "reps". Pattern benchmarks add "pattern", "transport",
/// "size", "mode" ("closed" or "open" for lat; "rate" for open), and results: "msgs_per_s",
/// "mb_per_s" (thr), "p50_us", "p90_us", "p99_us", "p999_us", "max_us", "count" (lat), and the
/// spread over repetitions: "min_<key>" / "max_<key>" for the headline figure.
struct run {
  std::vector<std::pair<std::string, value>> fields;

  /// Sets `key` (replacing an existing value, keeping its position).
  run& set(std::string_view key, value v);
  /// The value of `key`, or nullptr.
  const value* get(std::string_view key) const noexcept;
  /// The value of `key` as text / number, if present and of a fitting type.
  std::optional<std::string> text(std::string_view key) const;
  std::optional<double> number(std::string_view key) const;
};

/// A whole invocation: facts about the machine and the runs.
struct report {
  std::vector<std::pair<std::string, value>> machine;
  std::vector<run> runs;
};

/// Appends the runs of `part` to `into`, for one report out of several invocations. `into` keeps
/// its machine facts, or takes those of `part` when it has none. Returns false when both have
/// facts and their hostnames differ (the merged report then shows the first machine's).
bool merge_into(report& into, report part);

/// The keys that identify a workload (everything but "impl" and the measured figures), used to
/// pair each fabric run with its baseline run of the same workload. Field order does not matter.
std::string workload_key(const run& r);

/// Whether `key` names a measured figure rather than part of a workload's identity: "impl",
/// "reps", "count", "samples", "errors", "lost", "dropped", "batch", "avg_batch" (the journal's
/// achieved commit size), any "min_..." / "max_..." key, and any key with a unit suffix
/// "_per_s", "_s", "_ms", "_us", "_ns" or "_pct". New benchmarks name their results that way so
/// that `workload_key` ignores them.
bool is_measurement_key(std::string_view key) noexcept;

}  // namespace fabric::perf
