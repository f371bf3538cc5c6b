// fabric-perf's journal subcommand: group-commit append throughput, single-append latency and
// replay speed of fabric::journal, each beside raw LMDB doing the same work in the same run.
//
// The append baseline is not a fixed workload: raw LMDB commits in transactions of the batch size
// the journal itself achieved in the same repetition, which makes it the ceiling group commit can
// reach at that batch size. That is also why append repetitions always run fabric first (its batch
// size is the raw side's input) instead of alternating the order as the other workloads do.
#include "bench.hpp"
#include "harness/histogram.hpp"
#include "harness/stats.hpp"
#include "journal_workloads.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <exception>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace fabric::perf {
namespace {

namespace jb = journal_bench;

struct journal_cli {
  std::vector<std::size_t> sizes{256};
  std::vector<std::string> modes{"sync", "periodic", "none"};
  std::vector<int> producers{1, 4, 16};
  std::vector<std::string> ops{"append", "append_one", "replay"};
  std::uint64_t count = 0;         // appends per run; 0: a default per mode
  std::size_t window = 4096;
  std::size_t batch = 1;           // records per append call (append_batch above 1)
  std::uint64_t one_count = 0;     // append_one samples; 0: default
  std::uint64_t replay_count = 0;  // records replayed; 0: default
  int sync_interval_ms = 10;
  std::string dir;
  bool quick = false;
};

std::optional<durability> parse_mode(const std::string& name) {
  if (name == "sync") return durability::sync;
  if (name == "periodic") return durability::periodic;
  if (name == "none") return durability::none;
  return std::nullopt;
}

std::vector<durability> selected_modes(const journal_cli& o) {
  std::vector<durability> out;
  for (const auto& name : o.modes) {
    if (name == "all") return {durability::sync, durability::periodic, durability::none};
    auto m = parse_mode(name);
    if (!m) throw CLI::ValidationError("--modes", "unknown durability mode '" + name + "'");
    if (std::find(out.begin(), out.end(), *m) == out.end()) out.push_back(*m);
  }
  return out;
}

bool wants(const journal_cli& o, std::string_view op) {
  return std::find(o.ops.begin(), o.ops.end(), op) != o.ops.end() ||
         std::find(o.ops.begin(), o.ops.end(), "all") != o.ops.end();
}

// Sized so that the default run (three modes, three producer counts, three repetitions, both
// implementations) stays under a minute on a two-core VM with a fast fsync. Sync commits wait for
// the disk, so they get fewer records; --quick is for smoke tests and only proves the plumbing.
std::uint64_t append_count(const journal_cli& o, durability mode) {
  if (o.count != 0) return o.count;
  if (o.quick) return 4000;
  switch (mode) {
    case durability::sync: return 200'000;
    case durability::periodic: return 400'000;
    case durability::none: return 400'000;
  }
  return 200'000;
}

std::uint64_t one_count(const journal_cli& o) { return o.one_count != 0 ? o.one_count : o.quick ? 100 : 2000; }
std::uint64_t replay_count(const journal_cli& o) {
  return o.replay_count != 0 ? o.replay_count : o.quick ? 10'000 : 500'000;
}

run base_run(std::string_view op, std::string_view impl, durability mode, int producers,
             std::size_t size, int reps) {
  run r;
  r.set("bench", std::string("journal"));
  r.set("op", std::string(op));
  r.set("mode", std::string(jb::to_string(mode)));
  r.set("producers", static_cast<std::int64_t>(producers));
  r.set("size", static_cast<std::int64_t>(size));
  r.set("impl", std::string(impl));
  r.set("reps", static_cast<std::int64_t>(reps));
  return r;
}

// msgs_per_s with its spread, and mb_per_s of payload.
void set_rates(run& r, const std::vector<double>& rates, std::size_t size) {
  set_summary(r, "msgs_per_s", rates);
  r.set("mb_per_s", median(rates) * static_cast<double>(size) / 1e6);
}

double ratio_pct(double fabric, double base) { return base > 0.0 ? fabric / base * 100.0 : std::nan(""); }

void run_appends(session& s, const journal_cli& o, jb::temp_dir& tmp) {
  const int reps = s.options.reps;
  const bool raw = s.options.with_baseline();
  for (std::size_t size : o.sizes) {
    for (durability mode : selected_modes(o)) {
      for (int producers : o.producers) {
        jb::append_spec spec;
        spec.mode = mode;
        spec.producers = producers;
        spec.size = size;
        spec.count = append_count(o, mode);
        spec.window = o.window;
        spec.batch = o.batch;
        spec.sync_interval = std::chrono::milliseconds(o.sync_interval_ms);
        spec.map_size = jb::map_size_for(size, spec.count);
        std::string label = "append " + std::string(jb::to_string(mode)) + " producers=" +
                            std::to_string(producers) + " size=" + std::to_string(size);
        if (o.batch > 1) label += " append_batch=" + std::to_string(o.batch);
        std::vector<double> fabric_rates, raw_rates, batches, ratios;
        std::vector<histogram> latencies;
        try {
          for (int rep = 0; rep < reps; ++rep) {
            jb::append_outcome f = jb::fabric_append(tmp.sub("fabric"), spec);
            std::filesystem::remove_all(tmp.path() / "fabric");
            fabric_rates.push_back(f.rate());
            batches.push_back(f.avg_batch());
            latencies.push_back(std::move(f.latency));
            if (!raw) continue;
            jb::append_spec same = spec;
            same.map_size = f.map_size;  // what the journal ended with, should it have grown
            const jb::append_outcome b = jb::raw_append(tmp.sub("raw_lmdb"), same, f.commits);
            std::filesystem::remove_all(tmp.path() / "raw_lmdb");
            raw_rates.push_back(b.rate());
            ratios.push_back(ratio_pct(f.rate(), b.rate()));
          }
        } catch (const std::exception& e) {
          s.fail(label + ": " + e.what());
          continue;
        }
        run f = base_run("append", "fabric", mode, producers, size, reps);
        f.set("window", static_cast<std::int64_t>(o.window));
        if (o.batch > 1) f.set("append_batch", static_cast<std::int64_t>(o.batch));
        f.set("count", static_cast<std::int64_t>(spec.count));
        set_rates(f, fabric_rates, size);
        f.set("avg_batch", median(batches));
        f.set("samples", static_cast<std::int64_t>(latencies.front().count()));
        set_latency_medians(f, latencies);
        if (raw) f.set("vs_raw_pct", median(ratios));
        s.add(std::move(f));
        if (!raw) continue;
        run b = base_run("append", "raw_lmdb", mode, producers, size, reps);
        b.set("window", static_cast<std::int64_t>(o.window));
        if (o.batch > 1) b.set("append_batch", static_cast<std::int64_t>(o.batch));
        b.set("count", static_cast<std::int64_t>(spec.count));
        set_rates(b, raw_rates, size);
        b.set("batch", median(batches));
        s.add(std::move(b));
      }
    }
  }
}

void run_append_one(session& s, const journal_cli& o, jb::temp_dir& tmp) {
  const int reps = s.options.reps;
  const bool raw = s.options.with_baseline();
  const std::uint64_t count = one_count(o);
  for (std::size_t size : o.sizes) {
    const std::size_t map_size = jb::map_size_for(size, count);
    std::vector<double> fabric_rates, raw_rates, batches;
    std::vector<histogram> fabric_lat, raw_lat;
    try {
      for (int rep = 0; rep < reps; ++rep) {
        // Alternating which side goes first keeps drift in the disk's state from favouring one.
        for (int turn = 0; turn < (raw ? 2 : 1); ++turn) {
          if ((turn + rep) % 2 == 0) {
            jb::append_outcome f = jb::fabric_append_one(tmp.sub("fabric"), size, count, map_size);
            std::filesystem::remove_all(tmp.path() / "fabric");
            fabric_rates.push_back(f.rate());
            batches.push_back(f.avg_batch());
            fabric_lat.push_back(std::move(f.latency));
          } else {
            jb::append_outcome b = jb::raw_append_one(tmp.sub("raw_lmdb"), size, count, map_size);
            std::filesystem::remove_all(tmp.path() / "raw_lmdb");
            raw_rates.push_back(b.rate());
            raw_lat.push_back(std::move(b.latency));
          }
        }
      }
    } catch (const std::exception& e) {
      s.fail("append_one size=" + std::to_string(size) + ": " + e.what());
      continue;
    }
    run f = base_run("append_one", "fabric", durability::sync, 1, size, reps);
    f.set("window", std::int64_t{1});
    f.set("count", static_cast<std::int64_t>(count));
    set_rates(f, fabric_rates, size);
    f.set("avg_batch", median(batches));
    set_latency_medians(f, fabric_lat);
    if (raw) {
      run b = base_run("append_one", "raw_lmdb", durability::sync, 1, size, reps);
      b.set("window", std::int64_t{1});
      b.set("count", static_cast<std::int64_t>(count));
      set_rates(b, raw_rates, size);
      b.set("batch", 1.0);
      set_latency_medians(b, raw_lat);
      // For latency the ratio is fabric's p50 over raw's: below 100 fabric is faster.
      f.set("p50_vs_raw_pct", ratio_pct(*f.number("p50_us"), *b.number("p50_us")));
      s.add(std::move(f));
      s.add(std::move(b));
    } else {
      s.add(std::move(f));
    }
  }
}

void run_replay(session& s, const journal_cli& o, jb::temp_dir& tmp) {
  const int reps = s.options.reps;
  const bool raw = s.options.with_baseline();
  for (std::size_t size : o.sizes) {
    const std::uint64_t count = replay_count(o);
    const std::size_t map_size = jb::map_size_for(size, count);
    std::vector<double> fabric_rates, raw_rates, ratios;
    std::uint64_t records = 0;
    try {
      // Both sides read the very same environment, one after the other (LMDB must not be open
      // twice in one process), so they see the same pages in the same page-cache state.
      const std::filesystem::path dir = tmp.sub("replay");
      records = jb::fill_for_replay(dir, size, count, map_size);
      for (int rep = 0; rep < reps; ++rep) {
        double f_rate = 0.0, b_rate = 0.0;
        for (int turn = 0; turn < (raw ? 2 : 1); ++turn) {
          if ((turn + rep) % 2 == 0) {
            f_rate = jb::fabric_replay(dir, records).rate();
            fabric_rates.push_back(f_rate);
          } else {
            b_rate = jb::raw_replay(dir, map_size, records).rate();
            raw_rates.push_back(b_rate);
          }
        }
        if (raw) ratios.push_back(ratio_pct(f_rate, b_rate));
      }
      std::filesystem::remove_all(dir);
    } catch (const std::exception& e) {
      s.fail("replay size=" + std::to_string(size) + ": " + e.what());
      continue;
    }
    run f = base_run("replay", "fabric", durability::none, 1, size, reps);
    f.set("count", static_cast<std::int64_t>(records));
    set_rates(f, fabric_rates, size);
    if (raw) f.set("vs_raw_pct", median(ratios));
    s.add(std::move(f));
    if (!raw) continue;
    run b = base_run("replay", "raw_lmdb", durability::none, 1, size, reps);
    b.set("count", static_cast<std::int64_t>(records));
    set_rates(b, raw_rates, size);
    s.add(std::move(b));
  }
}

void run_journal(session& s, const journal_cli& o) {
  selected_modes(o);  // rejects a bad --modes before anything is written
  for (const auto& op : o.ops) {
    if (op != "all" && op != "append" && op != "append_one" && op != "replay")
      throw CLI::ValidationError("--ops", "unknown operation '" + op + "'");
  }
  // A producer waits for room for a whole batch in its window: a batch past it never fits.
  if (o.batch > o.window) throw CLI::ValidationError("--batch", "must not exceed --window");
  const std::filesystem::path base = o.dir.empty() ? jb::default_base_dir() : std::filesystem::path(o.dir);
  jb::temp_dir tmp("fabric-perf-journal-", base);
  if (!s.options.quiet) std::fprintf(stderr, "journal: working in %s\n", tmp.path().c_str());
  if (wants(o, "append")) run_appends(s, o, tmp);
  if (wants(o, "append_one")) run_append_one(s, o, tmp);
  if (wants(o, "replay")) run_replay(s, o, tmp);
}

void register_journal_benchmarks(CLI::App& app, session& s) {
  static journal_cli opts;
  CLI::App* sub = app.add_subcommand(
      "journal", "fabric::journal append throughput, single-append latency and replay speed, "
                 "beside raw LMDB doing the same work");
  add_common_options(*sub, s.options);
  sub->add_option("-s,--sizes", opts.sizes, "payload bytes per record")
      ->delimiter(',')
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub->add_option("-m,--modes", opts.modes, "durability modes: sync, periodic, none or all")
      ->delimiter(',')
      ->capture_default_str();
  sub->add_option("-P,--producers", opts.producers, "appending threads, one run per value")
      ->delimiter(',')
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  sub->add_option("--ops", opts.ops, "append, append_one, replay or all")
      ->delimiter(',')
      ->capture_default_str();
  sub->add_option("-n,--count", opts.count,
                  "appends per append run (default: 200,000 sync, 400,000 periodic and none)");
  sub->add_option("-w,--window", opts.window, "appends each producer keeps outstanding")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub->add_option("--batch", opts.batch,
                  "append: records per call, through journal::append_batch when above 1 (at most the "
                  "window and 4096); the raw baseline commits as many records per transaction as the "
                  "journal did")
      ->check(CLI::Range(std::size_t{1}, std::size_t{4096}))
      ->capture_default_str();
  sub->add_option("--one-count", opts.one_count, "append_one: appends waited for one at a time (default 2,000)");
  sub->add_option("--replay-count", opts.replay_count, "replay: records in the replayed stream (default 500,000)");
  sub->add_option("--sync-interval-ms", opts.sync_interval_ms, "periodic mode: the fsync interval")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub->add_option("--dir", opts.dir,
                  "where to make the temporary directory (default $TMPDIR or /tmp); it is removed "
                  "afterwards");
  sub->add_flag("--quick", opts.quick, "tiny counts, for smoke tests");
  sub->callback([&s] { run_journal(s, opts); });
}

}  // namespace

FABRIC_PERF_REGISTER(register_journal_benchmarks);

}  // namespace fabric::perf
