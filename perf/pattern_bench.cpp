// fabric-perf's pattern subcommands: thr, lat, suite, and the cross-host pairs local_lat,
// remote_lat, local_thr, remote_thr. Each workload runs --reps times for fabric and, beside it in
// the same process, for raw cppzmq; the two alternate order every repetition so drift in the
// machine's state does not favour one of them.
#include "bench.hpp"
#include "harness/histogram.hpp"
#include "harness/stats.hpp"
#include "pattern_workloads.hpp"

#include <algorithm>
#include <cstdio>
#include <map>
#include <iostream>
#include <sstream>
#include <stdexcept>

namespace fabric::perf {
namespace {

struct matrix_options {
  std::vector<std::string> patterns{"all"};
  std::vector<std::string> transports{"all"};
  std::vector<std::size_t> sizes{16, 256, 4096};
  std::uint64_t count = 0;   // 0: a default per bench and size
  std::uint64_t warmup = 0;  // 0: a default per count
  double rate = 0;           // lat: open loop at this rate; 0 = closed loop
  bool quick = false;        // smaller counts, for smoke runs and `make run`
  int timeout_ms = 10000;
};

std::vector<pattern> selected_patterns(const matrix_options& m) {
  std::vector<pattern> out;
  for (const auto& name : m.patterns) {
    if (name == "all") return {std::begin(all_patterns), std::end(all_patterns)};
    auto p = parse_pattern(name);
    if (!p) throw CLI::ValidationError("--pattern", "unknown pattern '" + name + "'");
    out.push_back(*p);
  }
  return out;
}

std::vector<transport> selected_transports(const matrix_options& m) {
  std::vector<transport> out;
  for (const auto& name : m.transports) {
    if (name == "all") return {std::begin(all_transports), std::end(all_transports)};
    auto t = parse_transport(name);
    if (!t) throw CLI::ValidationError("--transport", "unknown transport '" + name + "'");
    out.push_back(*t);
  }
  return out;
}

void add_matrix_options(CLI::App& sub, matrix_options& m) {
  sub.add_option("-p,--pattern", m.patterns, "req_rep, router_dealer, pub_sub, push_pull or all")
      ->delimiter(',')
      ->capture_default_str();
  sub.add_option("-t,--transport", m.transports, "inproc, ipc, tcp or all")
      ->delimiter(',')
      ->capture_default_str();
  sub.add_option("-s,--sizes", m.sizes, "message sizes in bytes")
      ->delimiter(',')
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub.add_option("-n,--count", m.count, "measured messages per run (default: by size)");
  sub.add_option("--warmup", m.warmup, "messages before measuring (default: 5% of count, >= 100)");
  sub.add_flag("--quick", m.quick, "about a tenth of the default counts");
  sub.add_option("--timeout-ms", m.timeout_ms, "bound on any single wait inside a run")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
}

std::vector<impl> impls_for(const session& s) {
  if (!s.options.with_baseline()) return {impl::fabric};
  return {impl::fabric, impl::raw};
}

// Repetitions alternate which implementation goes first.
std::vector<impl> order_for_rep(std::vector<impl> impls, int rep) {
  if (rep % 2 == 1) std::reverse(impls.begin(), impls.end());
  return impls;
}

run base_run(std::string_view bench, const workload& w, impl which, int reps) {
  run r;
  r.set("bench", std::string(bench));
  r.set("pattern", std::string(to_string(w.pat)));
  r.set("transport", std::string(to_string(w.trans)));
  r.set("size", static_cast<std::int64_t>(w.size));
  r.set("impl", std::string(to_string(which)));
  r.set("reps", static_cast<std::int64_t>(reps));
  return r;
}

std::uint64_t warmup_for(const matrix_options& m, std::uint64_t count) {
  return m.warmup != 0 ? m.warmup : std::max<std::uint64_t>(100, count / 20);
}

void run_thr(session& s, const matrix_options& m) {
  const int reps = s.options.reps;
  for (pattern p : selected_patterns(m)) {
    for (transport t : selected_transports(m)) {
      for (std::size_t size : m.sizes) {
        workload w{.pat = p, .trans = t, .size = size};
        // req_rep is lock-step: each message waits a round trip, so it gets latency-sized counts.
        w.count = m.count != 0                 ? m.count
                  : p == pattern::req_rep      ? (m.quick ? 1000 : 10000)
                                               : default_thr_count(size, m.quick ? 0.1 : 1.0);
        w.warmup = warmup_for(m, w.count);
        w.timeout = std::chrono::milliseconds(m.timeout_ms);
        std::map<impl, std::vector<double>> rates;
        try {
          for (int rep = 0; rep < reps; ++rep)
            for (impl which : order_for_rep(impls_for(s), rep))
              rates[which].push_back(measure_throughput(which, w));
        } catch (const std::exception& e) {
          s.fail("thr " + std::string(to_string(p)) + " " + std::string(to_string(t)) + " " +
                 std::to_string(size) + ": " + e.what());
          continue;
        }
        for (auto& [which, values] : rates) {
          const double median_rate = median(values);
          run r = base_run("thr", w, which, reps);
          r.set("count", static_cast<std::int64_t>(w.count));
          r.set("msgs_per_s", median_rate);
          r.set("mb_per_s", median_rate * static_cast<double>(size) / 1e6);
          r.set("min_msgs_per_s", minimum(values));
          r.set("max_msgs_per_s", maximum(values));
          s.add(std::move(r));
        }
      }
    }
  }
}

void add_latency_figures(run& r, const std::vector<histogram>& per_rep) {
  const std::vector<double> p99 = set_latency_medians(r, per_rep);
  r.set("min_p99_us", minimum(p99));
  r.set("max_p99_us", maximum(p99));
  double mean_us = 0;
  for (const histogram& h : per_rep) mean_us += h.mean() / 1000.0;
  r.set("mean_us", mean_us / static_cast<double>(per_rep.size()));
}

void run_lat(session& s, const matrix_options& m) {
  const int reps = s.options.reps;
  for (pattern p : selected_patterns(m)) {
    for (transport t : selected_transports(m)) {
      for (std::size_t size : m.sizes) {
        workload w{.pat = p, .trans = t, .size = size, .rate = m.rate};
        // Closed loop: 10k round trips. Open loop: about a second at the rate (0.05 s quick).
        const std::uint64_t full =
            m.rate > 0 ? static_cast<std::uint64_t>(std::clamp(m.rate, 2000.0, 100000.0)) : 10000;
        w.count = m.count != 0 ? m.count
                  : m.quick    ? std::max<std::uint64_t>(1000, full / 20)
                               : full;
        w.warmup = warmup_for(m, w.count);
        w.timeout = std::chrono::milliseconds(m.timeout_ms);
        if (std::string why; !supports(w, &why)) {
          if (!s.options.quiet)
            std::fprintf(stderr, "skip lat %s %s %zu: %s\n", to_string(p).data(),
                         to_string(t).data(), size, why.c_str());
          continue;
        }
        std::map<impl, std::vector<histogram>> hists;
        try {
          for (int rep = 0; rep < reps; ++rep)
            for (impl which : order_for_rep(impls_for(s), rep))
              hists[which].push_back(measure_latency(which, w));
        } catch (const std::exception& e) {
          s.fail("lat " + std::string(to_string(p)) + " " + std::string(to_string(t)) + " " +
                 std::to_string(size) + ": " + e.what());
          continue;
        }
        for (auto& [which, per_rep] : hists) {
          run r = base_run("lat", w, which, reps);
          r.set("mode", std::string(m.rate > 0 ? "open" : "closed"));
          if (m.rate > 0) r.set("rate", m.rate);
          r.set("count", static_cast<std::int64_t>(w.count));
          add_latency_figures(r, per_rep);
          s.add(std::move(r));
        }
      }
    }
  }
}

impl parse_impl(const std::string& s) {
  if (s == "fabric") return impl::fabric;
  if (s == "raw") return impl::raw;
  throw CLI::ValidationError("--impl", "must be fabric or raw");
}

std::string transport_of(const std::string& endpoint) {
  return endpoint.substr(0, endpoint.find("://"));
}

struct pair_options {
  std::string endpoint;
  std::size_t size = 0;
  std::uint64_t count = 0;
  std::string which = "fabric";
};

void add_pair_arguments(CLI::App& sub, pair_options& o) {
  sub.add_option("endpoint", o.endpoint, "e.g. tcp://*:5555 (local) or tcp://host:5555 (remote)")
      ->required();
  sub.add_option("size", o.size, "message size in bytes")->required()->check(CLI::PositiveNumber);
  sub.add_option("count", o.count, "messages / round trips")->required()->check(CLI::PositiveNumber);
  sub.add_option("--impl", o.which, "fabric or raw")->capture_default_str();
}

run pair_run(std::string_view bench, std::string_view pat, const pair_options& o) {
  run r;
  r.set("bench", std::string(bench));
  r.set("pattern", std::string(pat));
  r.set("transport", transport_of(o.endpoint));
  r.set("size", static_cast<std::int64_t>(o.size));
  r.set("impl", o.which);
  r.set("reps", std::int64_t{1});
  r.set("count", static_cast<std::int64_t>(o.count));
  r.set("endpoint", o.endpoint);
  return r;
}

void register_pattern_benchmarks(CLI::App& app, session& s) {
  static matrix_options thr_opts, lat_opts, suite_opts;
  static double suite_rate = 20000;

  CLI::App* thr = app.add_subcommand("thr", "throughput of each pattern, fabric beside raw libzmq");
  add_common_options(*thr, s.options);
  add_matrix_options(*thr, thr_opts);
  thr->callback([&s] { run_thr(s, thr_opts); });

  CLI::App* lat = app.add_subcommand("lat", "latency percentiles of each pattern, fabric beside raw libzmq");
  add_common_options(*lat, s.options);
  add_matrix_options(*lat, lat_opts);
  lat->add_option("--rate", lat_opts.rate,
                  "open loop at this many messages/s (no coordinated omission); 0 = closed loop")
      ->check(CLI::NonNegativeNumber);
  lat->callback([&s] { run_lat(s, lat_opts); });

  CLI::App* suite = app.add_subcommand(
      "suite", "the whole matrix: thr, closed-loop lat and open-loop lat over every pattern, "
               "transport and size");
  add_common_options(*suite, s.options);
  add_matrix_options(*suite, suite_opts);
  suite->add_option("--rate", suite_rate, "rate of the open-loop latency runs; 0 skips them")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  suite->callback([&s] {
    run_thr(s, suite_opts);
    matrix_options closed = suite_opts;
    closed.rate = 0;
    run_lat(s, closed);
    if (suite_rate > 0) {
      matrix_options open = suite_opts;
      open.rate = suite_rate;
      run_lat(s, open);
    }
  });

  static pair_options local_lat_o, remote_lat_o, local_thr_o, remote_thr_o;
  CLI::App* llat = app.add_subcommand("local_lat", "bind a REP socket and echo <count> messages");
  add_pair_arguments(*llat, local_lat_o);
  llat->callback([] {
    run_local_lat(parse_impl(local_lat_o.which), local_lat_o.endpoint, local_lat_o.size,
                  local_lat_o.count);
  });

  CLI::App* rlat = app.add_subcommand("remote_lat", "connect a REQ socket and time <count> round trips");
  add_common_options(*rlat, s.options);
  add_pair_arguments(*rlat, remote_lat_o);
  rlat->callback([&s] {
    const auto& o = remote_lat_o;
    histogram h = run_remote_lat(parse_impl(o.which), o.endpoint, o.size, o.count);
    std::printf("message size: %zu [B]\nroundtrip count: %llu\naverage latency: %.3f [us]\n",
                o.size, static_cast<unsigned long long>(o.count), h.mean() / 1000.0);
    run r = pair_run("lat", "req_rep", o);
    r.set("mode", std::string("closed"));
    add_latency_figures(r, {h});
    s.add(std::move(r));
  });

  CLI::App* lthr = app.add_subcommand("local_thr", "bind a PULL socket and time <count> messages");
  add_common_options(*lthr, s.options);
  add_pair_arguments(*lthr, local_thr_o);
  lthr->callback([&s] {
    const auto& o = local_thr_o;
    const double rate = run_local_thr(parse_impl(o.which), o.endpoint, o.size, o.count);
    const double megabits = rate * static_cast<double>(o.size) * 8 / 1e6;
    std::printf("message size: %zu [B]\nmessage count: %llu\nmean throughput: %.0f [msg/s]\n"
                "mean throughput: %.3f [Mb/s]\n",
                o.size, static_cast<unsigned long long>(o.count), rate, megabits);
    run r = pair_run("thr", "push_pull", o);
    r.set("msgs_per_s", rate);
    r.set("mb_per_s", rate * static_cast<double>(o.size) / 1e6);
    s.add(std::move(r));
  });

  CLI::App* rthr = app.add_subcommand("remote_thr", "connect a PUSH socket and send <count> messages");
  add_pair_arguments(*rthr, remote_thr_o);
  rthr->callback([] {
    run_remote_thr(parse_impl(remote_thr_o.which), remote_thr_o.endpoint, remote_thr_o.size,
                   remote_thr_o.count);
  });
}

}  // namespace

FABRIC_PERF_REGISTER(register_pattern_benchmarks);

}  // namespace fabric::perf
