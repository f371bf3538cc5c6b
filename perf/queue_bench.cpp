// fabric-perf's queue subcommand: the reliable work queue (a task_producer here over its own
// journal, its task_workers in a child process, tcp on loopback), beside a raw libzmq PUSH/PULL
// pipeline with as many workers in the same run.
//
//   thr   1, 4, 16 workers of --capacity each, a handler that does no work; the producer keeps
//         --window tasks submitted and not completed (submit_batch, --batch per call): tasks/s
//         from the first measured submit until the last completion is recorded, and latency
//         from each task's submit to its completion (beside ventilator PUSH -> worker PULL/PUSH
//         -> sink PULL)
//
// Every task must complete exactly once: anything else fails the run.
#include "bench.hpp"
#include "harness/histogram.hpp"
#include "harness/stats.hpp"
#include "journal_workloads.hpp"
#include "queue_workloads.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

namespace fabric::perf {
namespace {

namespace qb = queue_bench;
namespace jb = journal_bench;

struct queue_cli {
  std::vector<std::string> modes{"sync"};
  std::size_t size = 256;
  std::uint64_t count = 0;  // measured tasks; 0: default
  std::vector<int> workers{1, 4, 16};
  std::uint32_t capacity = 16;
  std::size_t batch = 64;
  std::uint64_t window = 1'024;
  std::string dir;
  bool quick = false;
  // The hidden child side.
  std::string child_impl = "fabric";
  std::string child_endpoint;
  std::string child_result_endpoint;
  int child_workers = 1;
  std::uint32_t child_capacity = 16;
};

std::uint64_t thr_count(const queue_cli& o) { return o.count ? o.count : o.quick ? 2'000 : 200'000; }

durability parse_mode(const std::string& name) {
  if (name == "sync") return durability::sync;
  if (name == "periodic") return durability::periodic;
  if (name == "none") return durability::none;
  throw CLI::ValidationError("--modes", "unknown durability mode '" + name + "'");
}

run base_run(std::string_view op, std::string_view impl, durability mode, std::size_t size, int reps) {
  run r;
  r.set("bench", std::string("queue"));
  r.set("op", std::string(op));
  r.set("mode", std::string(jb::to_string(mode)));
  r.set("size", static_cast<std::int64_t>(size));
  r.set("impl", std::string(impl));
  r.set("reps", static_cast<std::int64_t>(reps));
  r.set("transport", std::string("tcp"));
  return r;
}

void set_rates(run& r, const std::vector<double>& rates, std::size_t size) {
  set_summary(r, "msgs_per_s", rates);
  r.set("mb_per_s", median(rates) * static_cast<double>(size) / 1e6);
}

double ratio_pct(double a, double b) { return b > 0.0 ? a / b * 100.0 : std::nan(""); }

// The workload keys both impls share.
void set_workload(run& r, const queue_cli& o, std::uint64_t count, int workers) {
  r.set("count", static_cast<std::int64_t>(count));
  r.set("workers", static_cast<std::int64_t>(workers));
  r.set("window", static_cast<std::int64_t>(o.window));
  r.set("result_size", static_cast<std::int64_t>(qb::result_size));
}

// `workers` workers through fabric beside the raw pipeline with as many, alternating which goes
// first.
void run_thr(session& s, const queue_cli& o, durability mode, int workers, jb::temp_dir& tmp) {
  const int reps = s.options.reps;
  const bool raw = s.options.with_baseline();
  const std::uint64_t count = thr_count(o);
  std::vector<double> rates, raw_rates, ratios;
  std::vector<histogram> lat, raw_lat;
  try {
    for (int rep = 0; rep < reps; ++rep) {
      qb::spec sp;
      sp.mode = mode;
      sp.size = o.size;
      sp.count = count;
      sp.workers = workers;
      sp.capacity = o.capacity;
      sp.batch = o.batch;
      sp.window = o.window;
      double f = 0;
      double z = 0;
      for (int turn = 0; turn < (raw ? 2 : 1); ++turn) {
        if ((turn + rep) % 2 == 0) {
          qb::outcome out = qb::fabric_queue(tmp.sub("queue"), sp);
          std::filesystem::remove_all(tmp.path() / "queue");
          f = out.rate();
          rates.push_back(f);
          lat.push_back(std::move(out.latency));
        } else {
          qb::outcome out = qb::raw_queue(sp);
          z = out.rate();
          raw_rates.push_back(z);
          raw_lat.push_back(std::move(out.latency));
        }
      }
      if (raw) ratios.push_back(ratio_pct(f, z));
    }
  } catch (const std::exception& e) {
    s.fail("queue thr " + std::string(jb::to_string(mode)) + " workers=" + std::to_string(workers) + ": " + e.what());
    return;
  }
  run f = base_run("thr", "fabric", mode, o.size, reps);
  set_workload(f, o, count, workers);
  f.set("capacity", static_cast<std::int64_t>(o.capacity));
  f.set("send_batch", static_cast<std::int64_t>(o.batch));
  set_rates(f, rates, o.size);
  set_latency_medians(f, lat);
  if (raw) f.set("vs_raw_pct", median(ratios));
  s.add(std::move(f));
  if (!raw) return;
  run z = base_run("thr", "raw", mode, o.size, reps);
  set_workload(z, o, count, workers);
  set_rates(z, raw_rates, o.size);
  set_latency_medians(z, raw_lat);
  s.add(std::move(z));
}

void run_queue(session& s, const queue_cli& o) {
  std::vector<durability> modes;
  for (const auto& m : o.modes) modes.push_back(parse_mode(m));
  if (o.size < 8) throw CLI::ValidationError("--size", "every task is numbered: 8 bytes or more");
  if (o.window < o.batch) throw CLI::ValidationError("--window", "at least --batch tasks");
  const std::filesystem::path base = o.dir.empty() ? jb::default_base_dir() : std::filesystem::path(o.dir);
  jb::temp_dir tmp("fabric-perf-queue-", base);
  for (const durability mode : modes) {
    for (const int workers : o.workers) run_thr(s, o, mode, workers, tmp);
  }
}

void register_queue_benchmarks(CLI::App& app, session& s) {
  static queue_cli opts;
  CLI::App* sub = app.add_subcommand(
      "queue", "the reliable work queue: task_producer to task_workers in a child process over tcp, beside a "
               "raw libzmq PUSH/PULL pipeline with as many workers");
  add_common_options(*sub, s.options);
  sub->add_option("-m,--modes", opts.modes, "the producer's journal durability: sync, periodic, none")
      ->delimiter(',')
      ->capture_default_str();
  sub->add_option("-s,--size", opts.size, "task body bytes")->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_option("-n,--count", opts.count, "measured tasks (default 200,000)");
  sub->add_option("--workers", opts.workers, "worker counts, one run each")
      ->delimiter(',')
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  sub->add_option("--capacity", opts.capacity, "tasks each fabric worker holds at once")
      ->check(CLI::Range(1, 65'536))
      ->capture_default_str();
  sub->add_option("--batch", opts.batch, "tasks per submit_batch call")
      ->check(CLI::Range(std::size_t{1}, std::size_t{4096}))
      ->capture_default_str();
  sub->add_option("-w,--window", opts.window, "tasks submitted and not yet completed at once")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub->add_option("--dir", opts.dir, "where to make the temporary directory (default $TMPDIR or /tmp)");
  sub->add_flag("--quick", opts.quick, "tiny counts, for smoke tests");
  sub->callback([&s] { run_queue(s, opts); });

  // The workers, run by the benchmark as a child process of itself.
  CLI::App* child = app.add_subcommand("queue-workers", "");
  child->group("");
  child->add_option("--impl", opts.child_impl);
  child->add_option("--endpoint", opts.child_endpoint)->required();
  child->add_option("--result-endpoint", opts.child_result_endpoint);
  child->add_option("--workers", opts.child_workers);
  child->add_option("--capacity", opts.child_capacity);
  child->callback([] {
    std::exit(qb::workers_main(opts.child_impl, opts.child_endpoint, opts.child_result_endpoint, opts.child_workers,
                               opts.child_capacity));
  });
}

}  // namespace

FABRIC_PERF_REGISTER(register_queue_benchmarks);

}  // namespace fabric::perf
