// fabric-perf's writers: machine facts, the aligned text table, JSON, CSV and a self-contained
// HTML page with SVG charts. Every writer accepts any report, including benches it does not know.
#pragma once

#include <cstdint>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "harness/family.hpp"
#include "harness/format.hpp"
#include "harness/record.hpp"

namespace fabric::perf {

/// Facts for `report::machine`, in this order: hostname, cpu_model, logical_cores,
/// memory_total_mib, kernel, libzmq_version, fabric_version, compiler, build_type, timestamp
/// (ISO-8601 UTC). An empty `build_type` means the one this harness was compiled in.
std::vector<std::pair<std::string, value>> machine_info(std::string_view build_type = {});

/// The machine facts as "key: value" lines.
void print_machine(const report& r, std::ostream& out);

/// Aligned text tables, one per bench in order of first appearance. "thr" and "lat" runs are
/// shown fabric beside baseline (paired by `workload_key`); other benches list their fields.
void print_table(const report& r, std::ostream& out);

/// {"machine": {...}, "runs": [{...}, ...]} with every field in its order, one run per line.
/// Integers are written as integers, doubles as the shortest text that reads back the same
/// (with a ".0" when whole); NaN and infinities as null; invalid UTF-8 becomes U+FFFD.
void write_json(const report& r, std::ostream& out);

/// Reads what write_json writes: "runs" an array of objects, "machine" (optional) an object,
/// every value a string, a number or null. Integers stay integers, other numbers and null (NaN)
/// become doubles. Throws std::runtime_error saying what is wrong and where (e.g. "run 3
/// \"size\" is array; ..."); never reads past three levels of nesting.
report read_json(std::string_view text);

/// One header row (every key of every run, in first-seen order) and one row per run, quoted as
/// RFC 4180 says, lines ended by CRLF.
void write_csv(const report& r, std::ostream& out);

/// The one-screen summary: for each family of `families` with runs in `r` (and a default family
/// for any other bench), the geometric mean of the fabric / baseline ratios of throughput and
/// latency with their range, the spread of the repetitions, and an example workload in full.
void print_summary(const report& r, std::span<const family> families, std::ostream& out);
/// print_summary with known_families().
void print_summary(const report& r, std::ostream& out);

/// One self-contained HTML page (inline CSS and SVG, no script, nothing fetched): the summary
/// of every family as a table, then per family its charts (see write_family_charts) and its
/// tables, the machine facts, and every field of every run in a collapsed section. Families are
/// those of `families`, and a default one for any other bench.
void write_html(const report& r, std::span<const family> families, std::ostream& out);
/// write_html with known_families().
void write_html(const report& r, std::ostream& out);

}  // namespace fabric::perf
