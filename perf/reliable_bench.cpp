// fabric-perf's reliable subcommand: reliable channels end to end (a reliable_sender here, a
// reliable_receiver in a child process, tcp on loopback, each with its own journal), beside raw
// LMDB group commit and raw libzmq PUSH/PULL in the same run.
//
//   thr       closed loop: messages/s from the first send to the last acknowledgement
//   open      open loop at --rate: latency from each message's scheduled time to its acknowledgement
//   one       one message at a time: send, wait for its acknowledgement (beside one raw LMDB
//             fsynced commit)
//   recovery  a backlog of --recovery-count messages sent to nobody, then the receiver starts:
//             messages/s until the last is acknowledged
//
// An acknowledgement leaves the receiver only once its mark is committed under the journal's
// mode, so in sync mode every figure includes an fsync at the sender before sending and one at
// the receiver before acknowledging.
#include "bench.hpp"
#include "harness/histogram.hpp"
#include "harness/stats.hpp"
#include "journal_workloads.hpp"
#include "pattern_workloads.hpp"
#include "reliable_workloads.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

namespace fabric::perf {
namespace {

namespace rb = reliable_bench;
namespace jb = journal_bench;

struct reliable_cli {
  std::vector<std::string> modes{"sync", "periodic"};
  std::vector<std::string> ops{"thr", "one", "open", "recovery"};
  std::size_t size = 256;
  std::uint64_t count = 0;           // thr and open: measured messages; 0: default
  std::uint64_t one_count = 0;       // one: messages; 0: default
  std::uint64_t recovery_count = 0;  // recovery: backlog; 0: default
  std::uint64_t window = 65'536;
  std::vector<std::size_t> batches{1, 64};
  std::uint32_t credit = 65'536;
  std::size_t max_batch = 4096;
  double rate = 20'000;
  std::string dir;
  bool quick = false;
  // The hidden child side.
  std::string child_dir;
  std::string child_mode = "sync";
  bool child_times = false;
};

std::uint64_t thr_count(const reliable_cli& o) { return o.count ? o.count : o.quick ? 3'000 : 500'000; }
std::uint64_t one_count(const reliable_cli& o) { return o.one_count ? o.one_count : o.quick ? 20 : 500; }
std::uint64_t recovery_count(const reliable_cli& o) {
  return o.recovery_count ? o.recovery_count : o.quick ? 3'000 : 1'000'000;
}

durability parse_mode(const std::string& name) {
  if (name == "sync") return durability::sync;
  if (name == "periodic") return durability::periodic;
  if (name == "none") return durability::none;
  throw CLI::ValidationError("--modes", "unknown durability mode '" + name + "'");
}

run base_run(std::string_view op, std::string_view impl, durability mode, std::size_t size, int reps) {
  run r;
  r.set("bench", std::string("reliable"));
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

rb::spec spec_for(const reliable_cli& o, durability mode, std::uint64_t count) {
  rb::spec s;
  s.mode = mode;
  s.size = o.size;
  s.count = count;
  s.window = o.window;
  s.credit = o.credit;
  s.max_batch = o.max_batch;
  return s;
}

// Closed-loop throughput beside raw LMDB committing the same records in as many transactions as
// the receiver made (the ceiling of one durable side at that batch size) and raw PUSH/PULL.
void run_thr(session& s, const reliable_cli& o, durability mode, std::size_t batch, jb::temp_dir& tmp) {
  const int reps = s.options.reps;
  const bool raw = s.options.with_baseline();
  const std::uint64_t count = thr_count(o);
  std::vector<double> rates, lmdb_rates, zmq_rates, batches, ratios_lmdb, ratios_zmq;
  std::vector<histogram> latencies;
  try {
    for (int rep = 0; rep < reps; ++rep) {
      rb::spec sp = spec_for(o, mode, count);
      sp.batch = batch;
      rb::outcome f = rb::throughput(tmp.sub("reliable"), sp);
      std::filesystem::remove_all(tmp.path() / "reliable");
      rates.push_back(f.rate());
      batches.push_back(f.receiver_batch());
      latencies.push_back(std::move(f.latency));
      if (!raw) continue;
      jb::append_spec a;
      a.mode = mode;
      a.size = o.size;
      a.count = count;
      a.map_size = jb::map_size_for(o.size, count);
      const auto commits = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(static_cast<double>(count) / std::max(1.0, f.receiver_batch())));
      const jb::append_outcome b = jb::raw_append(tmp.sub("raw_lmdb"), a, commits);
      std::filesystem::remove_all(tmp.path() / "raw_lmdb");
      lmdb_rates.push_back(b.rate());
      ratios_lmdb.push_back(ratio_pct(f.rate(), b.rate()));
      workload w;
      w.pat = pattern::push_pull;
      w.trans = transport::tcp;
      w.size = o.size;
      w.count = count;
      const double z = measure_throughput(impl::raw, w);
      zmq_rates.push_back(z);
      ratios_zmq.push_back(ratio_pct(f.rate(), z));
    }
  } catch (const std::exception& e) {
    s.fail("reliable thr " + std::string(jb::to_string(mode)) + " batch=" + std::to_string(batch) + ": " + e.what());
    return;
  }
  run f = base_run("thr", "fabric", mode, o.size, reps);
  f.set("count", static_cast<std::int64_t>(count));
  f.set("send_batch", static_cast<std::int64_t>(batch));
  f.set("window", static_cast<std::int64_t>(o.window));
  f.set("credit", static_cast<std::int64_t>(o.credit));
  set_rates(f, rates, o.size);
  f.set("avg_batch", median(batches));  // messages per receiver commit
  set_latency_medians(f, latencies);
  if (raw) {
    f.set("vs_raw_lmdb_pct", median(ratios_lmdb));
    f.set("vs_raw_zmq_pct", median(ratios_zmq));
  }
  s.add(std::move(f));
  if (!raw) return;
  run b = base_run("thr", "raw_lmdb", mode, o.size, reps);
  b.set("count", static_cast<std::int64_t>(count));
  b.set("send_batch", static_cast<std::int64_t>(batch));
  b.set("batch", median(batches));
  set_rates(b, lmdb_rates, o.size);
  s.add(std::move(b));
  run z = base_run("thr", "raw_zmq", mode, o.size, reps);
  z.set("count", static_cast<std::int64_t>(count));
  z.set("send_batch", static_cast<std::int64_t>(batch));
  set_rates(z, zmq_rates, o.size);
  s.add(std::move(z));
}

void run_one(session& s, const reliable_cli& o, durability mode, jb::temp_dir& tmp) {
  const int reps = s.options.reps;
  const bool raw = s.options.with_baseline();
  const std::uint64_t count = one_count(o);
  std::vector<histogram> lat, raw_lat, delivery;
  std::vector<double> rates, raw_rates;
  try {
    for (int rep = 0; rep < reps; ++rep) {
      for (int turn = 0; turn < (raw ? 2 : 1); ++turn) {
        if ((turn + rep) % 2 == 0) {
          rb::outcome f = rb::one_at_a_time(tmp.sub("reliable"), spec_for(o, mode, count));
          std::filesystem::remove_all(tmp.path() / "reliable");
          rates.push_back(f.rate());
          lat.push_back(std::move(f.latency));
          delivery.push_back(std::move(f.delivery));
        } else {
          jb::append_outcome b = jb::raw_append_one(tmp.sub("raw_lmdb"), o.size, count, jb::map_size_for(o.size, count));
          std::filesystem::remove_all(tmp.path() / "raw_lmdb");
          raw_rates.push_back(b.rate());
          raw_lat.push_back(std::move(b.latency));
        }
      }
    }
  } catch (const std::exception& e) {
    s.fail("reliable one " + std::string(jb::to_string(mode)) + ": " + e.what());
    return;
  }
  run f = base_run("one", "fabric", mode, o.size, reps);
  f.set("count", static_cast<std::int64_t>(count));
  set_rates(f, rates, o.size);
  set_latency_medians(f, lat);
  // send() to the receiver's handler (before the receiver's own commit), beside the end to end
  // figures above (send() to the acknowledgement: both sides' commits).
  std::vector<double> d50, d99;
  for (const auto& h : delivery) {
    if (h.count() == 0) continue;
    d50.push_back(static_cast<double>(h.value_at_percentile(50)) / 1000.0);
    d99.push_back(static_cast<double>(h.value_at_percentile(99)) / 1000.0);
  }
  if (!d50.empty()) {
    f.set("delivered_p50_us", median(d50));
    f.set("delivered_p99_us", median(d99));
  }
  if (!raw) {
    s.add(std::move(f));
    return;
  }
  // The baseline is one raw LMDB commit fsynced as sync mode does, whatever the mode measured.
  run b = base_run("one", "raw_lmdb", durability::sync, o.size, reps);
  b.set("count", static_cast<std::int64_t>(count));
  set_rates(b, raw_rates, o.size);
  set_latency_medians(b, raw_lat);
  f.set("p50_vs_raw_pct", ratio_pct(*f.number("p50_us"), *b.number("p50_us")));
  if (f.number("delivered_p50_us"))
    f.set("delivered_p50_vs_raw_pct", ratio_pct(*f.number("delivered_p50_us"), *b.number("p50_us")));
  s.add(std::move(f));
  s.add(std::move(b));
}

void run_open(session& s, const reliable_cli& o, durability mode, jb::temp_dir& tmp) {
  const int reps = s.options.reps;
  const std::uint64_t count = std::max<std::uint64_t>(100, static_cast<std::uint64_t>(o.rate * (o.quick ? 0.1 : 2.0)));
  std::vector<histogram> lat;
  std::vector<double> rates;
  try {
    for (int rep = 0; rep < reps; ++rep) {
      rb::spec sp = spec_for(o, mode, count);
      sp.rate = o.rate;
      rb::outcome f = rb::open_loop(tmp.sub("reliable"), sp);
      std::filesystem::remove_all(tmp.path() / "reliable");
      rates.push_back(f.rate());
      lat.push_back(std::move(f.latency));
    }
  } catch (const std::exception& e) {
    s.fail("reliable open " + std::string(jb::to_string(mode)) + ": " + e.what());
    return;
  }
  run f = base_run("open", "fabric", mode, o.size, reps);
  f.set("count", static_cast<std::int64_t>(count));
  f.set("rate", o.rate);
  set_rates(f, rates, o.size);
  set_latency_medians(f, lat);
  s.add(std::move(f));
}

void run_recovery(session& s, const reliable_cli& o, durability mode, jb::temp_dir& tmp) {
  const int reps = s.options.reps;
  const std::uint64_t count = recovery_count(o);
  std::vector<double> rates, batches;
  try {
    for (int rep = 0; rep < reps; ++rep) {
      const rb::outcome f = rb::recovery(tmp.sub("reliable"), spec_for(o, mode, count));
      std::filesystem::remove_all(tmp.path() / "reliable");
      rates.push_back(f.rate());
      batches.push_back(f.receiver_batch());
    }
  } catch (const std::exception& e) {
    s.fail("reliable recovery " + std::string(jb::to_string(mode)) + ": " + e.what());
    return;
  }
  run f = base_run("recovery", "fabric", mode, o.size, reps);
  f.set("count", static_cast<std::int64_t>(count));
  set_rates(f, rates, o.size);
  f.set("avg_batch", median(batches));  // messages per receiver commit
  s.add(std::move(f));
}

void run_reliable(session& s, const reliable_cli& o) {
  std::vector<durability> modes;
  for (const auto& m : o.modes) modes.push_back(parse_mode(m));
  for (const auto& op : o.ops) {
    if (op != "thr" && op != "one" && op != "open" && op != "recovery")
      throw CLI::ValidationError("--ops", "unknown operation '" + op + "'");
  }
  const auto wants = [&](std::string_view op) { return std::find(o.ops.begin(), o.ops.end(), op) != o.ops.end(); };
  const std::filesystem::path base = o.dir.empty() ? jb::default_base_dir() : std::filesystem::path(o.dir);
  jb::temp_dir tmp("fabric-perf-reliable-", base);
  for (const durability mode : modes) {
    if (wants("thr")) {
      for (const std::size_t batch : o.batches) run_thr(s, o, mode, batch, tmp);
    }
    if (wants("one")) run_one(s, o, mode, tmp);
    if (wants("open")) run_open(s, o, mode, tmp);
    if (wants("recovery")) run_recovery(s, o, mode, tmp);
  }
}

void register_reliable_benchmarks(CLI::App& app, session& s) {
  static reliable_cli opts;
  CLI::App* sub = app.add_subcommand(
      "reliable", "reliable channels end to end between two processes over tcp, durable on both sides, "
                  "beside raw LMDB group commit and raw libzmq PUSH/PULL");
  add_common_options(*sub, s.options);
  sub->add_option("-m,--modes", opts.modes, "journal durability on both sides: sync, periodic, none")
      ->delimiter(',')
      ->capture_default_str();
  sub->add_option("--ops", opts.ops, "thr, one, open, recovery")->delimiter(',')->capture_default_str();
  sub->add_option("-s,--size", opts.size, "message bytes")->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_option("-n,--count", opts.count, "thr: measured messages (default 500,000)");
  sub->add_option("--one-count", opts.one_count, "one: messages, each waited for (default 500)");
  sub->add_option("--recovery-count", opts.recovery_count, "recovery: the backlog (default 1,000,000)");
  sub->add_option("-w,--window", opts.window, "sends not yet durable at once")->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_option("--batch", opts.batches, "thr: messages per call, one run each (1: send_async; more: send_batch)")
      ->delimiter(',')
      ->check(CLI::Range(std::size_t{1}, std::size_t{4096}))
      ->capture_default_str();
  sub->add_option("--credit", opts.credit, "the receiver's credit per channel")->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_option("--max-batch", opts.max_batch, "the receiver's most messages per commit")
      ->check(CLI::Range(std::size_t{1}, std::size_t{4096}))
      ->capture_default_str();
  sub->add_option("--rate", opts.rate, "open: messages per second")->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_option("--dir", opts.dir, "where to make the temporary directory (default $TMPDIR or /tmp)");
  sub->add_flag("--quick", opts.quick, "tiny counts, for smoke tests");
  sub->callback([&s] { run_reliable(s, opts); });

  // The receiving side, run by the benchmark as a child process of itself.
  CLI::App* child = app.add_subcommand("reliable-receiver", "");
  child->group("");
  child->add_option("--dir", opts.child_dir)->required();
  child->add_option("--mode", opts.child_mode);
  child->add_option("--credit", opts.credit);
  child->add_option("--max-batch", opts.max_batch);
  child->add_flag("--times", opts.child_times);
  child->callback([] {
    std::exit(rb::receiver_main(opts.child_dir, parse_mode(opts.child_mode), opts.credit, opts.max_batch,
                                opts.child_times));
  });
}

}  // namespace

FABRIC_PERF_REGISTER(register_reliable_benchmarks);

}  // namespace fabric::perf
