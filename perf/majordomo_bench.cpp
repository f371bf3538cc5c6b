// fabric-perf's majordomo subcommand: requests per second and latency through fabric's
// Majordomo broker with the synchronous and the asynchronous client and N echo workers, each
// beside a raw cppzmq DEALER -> ROUTER/DEALER proxy -> DEALER echo doing the same round trips over
// the same transport in the same run (and, with --lb-credit, a raw load balancer that gives each
// worker a bounded number of requests at once). --credit gives fabric's workers a credit (the
// broker's CREDIT extension). Repetitions alternate which side goes first.
//
// Open-loop runs ("mode": "open") keep a fixed schedule. By default their rate is half of what
// fabric's asynchronous client reached in the same repetition, and both sides run at that rate.
#include "bench.hpp"
#include "harness/histogram.hpp"
#include "harness/stats.hpp"
#include "majordomo_workloads.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <exception>
#include <optional>
#include <string>
#include <vector>

namespace fabric::perf {
namespace {

namespace mb = majordomo_bench;

struct majordomo_cli {
  std::vector<std::string> clients{"sync", "async"};
  std::vector<int> workers{1, 4};
  std::vector<std::size_t> sizes{256};
  std::vector<std::string> transports{"tcp"};
  std::uint64_t count = 0;       // async closed loop: measured requests; 0: default
  std::uint64_t sync_count = 0;  // sync: measured round trips; 0: default
  std::uint64_t warmup = 0;      // 0: a default per count
  std::size_t window = 256;
  std::vector<std::string> rates{"half"};
  double open_seconds = 0;       // open loop: measured seconds at the rate; 0: default
  int timeout_ms = 10000;
  bool quick = false;
  int lb_credit = 0;                    // > 0: also run the raw_lb baseline with this credit
  int credit = 1;                       // fabric workers' credit (1: plain 7/MDP)
  std::uint64_t fail_worker_after = 0;  // testing only: see spec::fail_after
};

// Sized so that the default run (sync, async and one open loop, for 1 and 4 workers, three
// repetitions, both sides) stays well under two minutes on a two-core VM. --quick only proves
// the plumbing.
std::uint64_t async_count(const majordomo_cli& o) {
  return o.count != 0 ? o.count : o.quick ? 2'000 : 100'000;
}
std::uint64_t sync_count(const majordomo_cli& o) {
  return o.sync_count != 0 ? o.sync_count : o.quick ? 300 : 10'000;
}
double open_seconds(const majordomo_cli& o) {
  return o.open_seconds > 0 ? o.open_seconds : o.quick ? 0.05 : 1.0;
}
std::uint64_t warmup_for(const majordomo_cli& o, std::uint64_t count) {
  return o.warmup != 0 ? o.warmup : std::max<std::uint64_t>(100, count / 10);
}

// An open-loop rate: half of fabric's async throughput in the same repetition, or fixed.
struct rate_choice {
  bool half = false;
  double fixed = 0;
};

std::vector<rate_choice> selected_rates(const majordomo_cli& o) {
  std::vector<rate_choice> out;
  for (const std::string& r : o.rates) {
    if (r == "none" || r == "0") continue;
    if (r == "half") {
      out.push_back({.half = true, .fixed = 0});
      continue;
    }
    double v = 0;
    try {
      std::size_t used = 0;
      v = std::stod(r, &used);
      if (used != r.size()) v = -1;
    } catch (const std::exception&) {
      v = -1;
    }
    if (!(v > 0) || !std::isfinite(v))
      throw CLI::ValidationError("--rate", "'" + r + "' is not a rate: give requests/s, half or none");
    out.push_back({.half = false, .fixed = v});
  }
  return out;
}

bool wants(const majordomo_cli& o, mb::client_kind c) {
  return std::find(o.clients.begin(), o.clients.end(), mb::to_string(c)) != o.clients.end();
}

// One workload (a client shape at one rate) over the repetitions, for every side.
struct workload_series {
  bool failed = false;
  struct side_series {
    std::vector<double> rates;
    std::vector<histogram> latencies;
    std::vector<double> counts;
    std::vector<double> send_lag_p50_us;
    double max_send_lag_us = 0;
  };
  side_series sides[3]{};             // indexed by mb::side
  std::vector<double> vs_raw{};       // fabric / raw msgs_per_s per repetition, in percent
  std::vector<double> vs_raw_lb{};    // fabric / raw_lb msgs_per_s per repetition, in percent
  std::vector<double> open_rates{};   // the rate of each repetition (open loop)

  side_series& of(mb::side s) { return sides[static_cast<std::size_t>(s)]; }
  const side_series& of(mb::side s) const { return sides[static_cast<std::size_t>(s)]; }
};

// Every side of one repetition, in `order`. A failure is reported once and ends the workload.
void run_pair(session& s, workload_series& w, mb::spec spec, const std::vector<mb::side>& order) {
  if (w.failed) return;
  double rate[3] = {0, 0, 0};
  for (mb::side which : order) {
    spec.impl = which;
    try {
      mb::outcome out = mb::measure(spec);
      auto& series = w.of(which);
      series.rates.push_back(out.rate());
      series.counts.push_back(static_cast<double>(out.completed));
      series.send_lag_p50_us.push_back(static_cast<double>(out.send_lag_p50_ns) / 1000.0);
      series.max_send_lag_us = std::max(series.max_send_lag_us, static_cast<double>(out.max_send_lag_ns) / 1000.0);
      series.latencies.push_back(std::move(out.latency));
      rate[static_cast<std::size_t>(which)] = out.rate();
    } catch (const std::exception& e) {
      s.fail("majordomo " + mb::describe(spec) + ": " + e.what());
      w.failed = true;
      return;
    }
  }
  const double fabric = rate[static_cast<std::size_t>(mb::side::fabric)];
  if (const double raw = rate[static_cast<std::size_t>(mb::side::raw)]; raw > 0)
    w.vs_raw.push_back(fabric / raw * 100.0);
  if (const double lb = rate[static_cast<std::size_t>(mb::side::raw_lb)]; lb > 0)
    w.vs_raw_lb.push_back(fabric / lb * 100.0);
}

double pct(double a, double b) { return b > 0 ? a / b * 100.0 : std::nan(""); }

// Adds the fabric run and its baselines for one workload; the fabric run carries the ratios.
void emit(session& s, const workload_series& w, const mb::spec& spec, int credit, bool open, bool half) {
  if (w.failed || w.of(mb::side::fabric).rates.empty()) return;
  const int reps = static_cast<int>(w.of(mb::side::fabric).rates.size());
  std::vector<run> runs;
  for (mb::side which : {mb::side::fabric, mb::side::raw, mb::side::raw_lb}) {
    const auto& series = w.of(which);
    if (series.rates.empty()) continue;
    run r;
    r.set("bench", std::string("majordomo"));
    r.set("impl", std::string(mb::to_string(which)));
    r.set("client", std::string(mb::to_string(spec.client)));
    r.set("mode", std::string(open ? "open" : "closed"));
    r.set("transport", std::string(mb::to_string(spec.transport)));
    r.set("workers", static_cast<std::int64_t>(spec.workers));
    r.set("size", static_cast<std::int64_t>(spec.size));
    if (spec.client == mb::client_kind::async && !open) r.set("window", static_cast<std::int64_t>(spec.window));
    if (open) {
      r.set("rate", median(w.open_rates));
      r.set("rate_basis", std::string(half ? "half_async" : "fixed"));
      if (half) {
        r.set("min_rate", minimum(w.open_rates));
        r.set("max_rate", maximum(w.open_rates));
      }
    }
    // "credit": requests a worker may hold at once, on each side that bounds it.
    if (which == mb::side::raw_lb) r.set("credit", static_cast<std::int64_t>(credit));
    if (which == mb::side::fabric) r.set("credit", static_cast<std::int64_t>(spec.worker_credit));
    r.set("reps", static_cast<std::int64_t>(reps));
    r.set("count", static_cast<std::int64_t>(std::llround(median(series.counts))));
    set_summary(r, "msgs_per_s", series.rates);
    set_latency_medians(r, series.latencies);
    if (open) {
      r.set("send_lag_p50_us", median(series.send_lag_p50_us));
      r.set("max_send_lag_us", series.max_send_lag_us);
    }
    runs.push_back(std::move(r));
  }
  run& f = runs.front();
  for (const run& b : runs) {
    const std::string impl = b.text("impl").value_or("");
    if (impl == "raw") {
      if (!open && !w.vs_raw.empty()) f.set("vs_raw_pct", median(w.vs_raw));
      f.set("p50_vs_raw_pct", pct(*f.number("p50_us"), *b.number("p50_us")));
      f.set("p99_vs_raw_pct", pct(*f.number("p99_us"), *b.number("p99_us")));
    } else if (impl == "raw_lb") {
      if (!open && !w.vs_raw_lb.empty()) f.set("vs_raw_lb_pct", median(w.vs_raw_lb));
      f.set("p50_vs_raw_lb_pct", pct(*f.number("p50_us"), *b.number("p50_us")));
    }
  }
  for (run& r : runs) s.add(std::move(r));
}

void run_group(session& s, const majordomo_cli& o, mb::transport_kind t, std::size_t size, int workers) {
  const int reps = s.options.reps;
  const auto order_for = [&](int rep) {
    std::vector<mb::side> order{mb::side::fabric};
    if (s.options.with_baseline()) order.push_back(mb::side::raw);
    if (s.options.with_baseline() && o.lb_credit > 0) order.push_back(mb::side::raw_lb);
    if (rep % 2 == 1) std::reverse(order.begin(), order.end());
    return order;
  };

  mb::spec base;
  base.transport = t;
  base.workers = workers;
  base.size = size;
  base.window = o.window;
  base.timeout = std::chrono::milliseconds(o.timeout_ms);
  base.fail_after = o.fail_worker_after;
  base.credit = std::max(1, o.lb_credit);
  base.worker_credit = o.credit;

  mb::spec async_spec = base;
  async_spec.client = mb::client_kind::async;
  async_spec.count = async_count(o);
  async_spec.warmup = warmup_for(o, async_spec.count);

  mb::spec sync_spec = base;
  sync_spec.client = mb::client_kind::sync;
  sync_spec.count = sync_count(o);
  sync_spec.warmup = warmup_for(o, sync_spec.count);

  const bool async = wants(o, mb::client_kind::async);
  const bool sync = wants(o, mb::client_kind::sync);
  const std::vector<rate_choice> rates = async ? selected_rates(o) : std::vector<rate_choice>{};
  workload_series async_w, sync_w;
  std::vector<workload_series> open_w(rates.size());

  for (int rep = 0; rep < reps; ++rep) {
    const auto order = order_for(rep);
    if (async) run_pair(s, async_w, async_spec, order);
    if (sync) run_pair(s, sync_w, sync_spec, order);
    for (std::size_t k = 0; k < rates.size(); ++k) {
      double rate = rates[k].fixed;
      if (rates[k].half) {
        // Half of what fabric's async client reached in this repetition, to the nearest 100/s.
        const auto& fabric_rates = async_w.of(mb::side::fabric).rates;
        if (async_w.failed || fabric_rates.size() != static_cast<std::size_t>(rep + 1)) continue;
        rate = std::max(100.0, std::round(fabric_rates.back() / 2 / 100) * 100);
      }
      mb::spec open_spec = async_spec;
      open_spec.rate = rate;
      open_spec.count = std::max<std::uint64_t>(o.quick ? 200 : 1000,
                                                static_cast<std::uint64_t>(rate * open_seconds(o)));
      open_spec.warmup = warmup_for(o, open_spec.count);
      if (!open_w[k].failed) open_w[k].open_rates.push_back(rate);
      run_pair(s, open_w[k], open_spec, order);
    }
  }

  if (async) emit(s, async_w, async_spec, base.credit, false, false);
  if (sync) emit(s, sync_w, sync_spec, base.credit, false, false);
  for (std::size_t k = 0; k < rates.size(); ++k) emit(s, open_w[k], async_spec, base.credit, true, rates[k].half);
}

void run_majordomo(session& s, const majordomo_cli& o) {
  std::vector<mb::transport_kind> transports;
  for (const std::string& name : o.transports) {
    const auto t = mb::parse_transport(name);
    if (!t) throw CLI::ValidationError("--transport", "unknown transport '" + name + "'");
    transports.push_back(*t);
  }
  for (const std::string& name : o.clients) {
    if (!mb::parse_client(name)) throw CLI::ValidationError("--clients", "unknown client '" + name + "'");
  }
  selected_rates(o);  // rejects a bad --rate before anything runs
  for (mb::transport_kind t : transports)
    for (std::size_t size : o.sizes)
      for (int workers : o.workers) run_group(s, o, t, size, workers);
}

void register_majordomo_benchmarks(CLI::App& app, session& s) {
  static majordomo_cli opts;
  CLI::App* sub = app.add_subcommand(
      "majordomo", "requests/s and latency through fabric's Majordomo broker (sync and async "
                   "clients, N echo workers), beside a raw DEALER/ROUTER echo over the same hops");
  add_common_options(*sub, s.options);
  sub->add_option("-c,--clients", opts.clients, "sync, async (comma separated)")
      ->delimiter(',')
      ->check(CLI::IsMember({"sync", "async"}))
      ->capture_default_str();
  sub->add_option("-w,--workers", opts.workers, "echo workers behind the broker, one run per value")
      ->delimiter(',')
      ->check(CLI::Range(1, 255))
      ->capture_default_str();
  sub->add_option("-s,--sizes", opts.sizes, "request (and reply) body bytes, at least 8")
      ->delimiter(',')
      ->check(CLI::Range(std::size_t{mb::min_size}, std::size_t{64} << 20))
      ->capture_default_str();
  sub->add_option("-t,--transport", opts.transports, "tcp, ipc or inproc (comma separated)")
      ->delimiter(',')
      ->check(CLI::IsMember({"tcp", "ipc", "inproc"}))
      ->capture_default_str();
  sub->add_option("-n,--count", opts.count,
                  "async closed loop: measured requests per run (default 100,000; --quick 2,000)");
  sub->add_option("--sync-count", opts.sync_count,
                  "sync: measured round trips per run (default 10,000; --quick 300)");
  sub->add_option("--warmup", opts.warmup, "requests before measuring (default: 10% of the count, >= 100)");
  sub->add_option("--window", opts.window, "async closed loop: requests kept outstanding")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1'000'000}))
      ->capture_default_str();
  sub->add_option("--rate", opts.rates,
                  "open-loop rates in requests/s (comma separated); 'half' is half of fabric's async "
                  "throughput in the same repetition; 'none' skips the open loop")
      ->delimiter(',')
      ->capture_default_str();
  sub->add_option("--open-seconds", opts.open_seconds,
                  "open loop: measured seconds at the rate (default 1; --quick 0.05)")
      ->check(CLI::PositiveNumber);
  sub->add_option("--timeout-ms", opts.timeout_ms, "longest wait for any one reply or set-up step")
      ->check(CLI::Range(1, 3'600'000))
      ->capture_default_str();
  sub->add_option("--lb-credit", opts.lb_credit,
                  "also run raw_lb, a raw load balancer giving each worker at most this many requests "
                  "at once (1: the 7/MDP rule); 0: off")
      ->check(CLI::Range(0, 1'000'000))
      ->capture_default_str();
  sub->add_option("--credit", opts.credit,
                  "requests each fabric worker takes at once (worker_options::credit; needs fabric's "
                  "broker); 1: plain 7/MDP")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  sub->add_flag("--quick", opts.quick, "tiny counts, for smoke tests (a few seconds in all)");
  // Not in --help: makes worker 0 (and raw echo thread 0) fail, to test that a run with a dead
  // worker ends with an error instead of hanging.
  sub->add_option("--fail-worker-after", opts.fail_worker_after)->group("");
  sub->callback([&s] { run_majordomo(s, opts); });
}

}  // namespace

FABRIC_PERF_REGISTER(register_majordomo_benchmarks);

}  // namespace fabric::perf
