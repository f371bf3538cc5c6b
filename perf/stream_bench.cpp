// fabric-perf's stream subcommand: durable publish/subscribe with replay (a stream_publisher
// here over its own journal, its subscribers in a child process, tcp on loopback), beside raw
// libzmq PUB/SUB fan-out and a raw LMDB read of the same records in the same run.
//
//   fanout   1, 4, 16 subscribers from sequence 1, at most once; the publisher publishes as fast
//            as its journal takes it: messages/s each subscriber received, timed from the first
//            measured publish until the slowest holds the last (beside raw PUB/SUB)
//   catchup  a backlog of --catchup-count messages, then one subscriber from sequence 1:
//            messages/s until it holds the last (beside one raw LMDB cursor walk over them)
//   lat      open loop at --rate to one subscriber: latency from each message's scheduled
//            publish to the subscriber's handler
//
// Every subscriber must receive every sequence once, in order: anything else fails the run.
#include "bench.hpp"
#include "harness/histogram.hpp"
#include "harness/stats.hpp"
#include "journal_workloads.hpp"
#include "stream_workloads.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

namespace fabric::perf {
namespace {

namespace sb = stream_bench;
namespace jb = journal_bench;

struct stream_cli {
  std::vector<std::string> modes{"periodic"};
  std::vector<std::string> ops{"fanout", "catchup", "lat"};
  std::size_t size = 256;
  std::uint64_t count = 0;          // fanout: measured messages; 0: default
  std::uint64_t catchup_count = 0;  // catchup: the backlog; 0: default
  std::uint64_t lat_count = 0;      // lat: messages; 0: --rate times 2 s
  std::vector<int> subscribers{1, 4, 16};
  std::size_t batch = 64;
  std::uint64_t window = 65'536;
  double rate = 10'000;
  std::string dir;
  bool quick = false;
  // The hidden child side.
  std::string child_impl = "fabric";
  std::string child_endpoint;
  std::string child_replay_endpoint;
  int child_subscribers = 1;
  std::uint64_t child_total = 0;
  std::uint64_t child_warm = 0;
  bool child_times = false;
  int child_timeout_ms = 60'000;
};

std::uint64_t fanout_count(const stream_cli& o) { return o.count ? o.count : o.quick ? 3'000 : 500'000; }
std::uint64_t catchup_count(const stream_cli& o) {
  return o.catchup_count ? o.catchup_count : o.quick ? 5'000 : 1'000'000;
}
std::uint64_t lat_count(const stream_cli& o) {
  if (o.lat_count) return o.lat_count;
  return std::max<std::uint64_t>(100, static_cast<std::uint64_t>(o.rate * (o.quick ? 0.1 : 2.0)));
}

durability parse_mode(const std::string& name) {
  if (name == "sync") return durability::sync;
  if (name == "periodic") return durability::periodic;
  if (name == "none") return durability::none;
  throw CLI::ValidationError("--modes", "unknown durability mode '" + name + "'");
}

run base_run(std::string_view op, std::string_view impl, durability mode, std::size_t size, int reps) {
  run r;
  r.set("bench", std::string("stream"));
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

sb::spec spec_for(const stream_cli& o, durability mode, std::uint64_t count) {
  sb::spec s;
  s.mode = mode;
  s.size = o.size;
  s.count = count;
  s.batch = o.batch;
  s.window = o.window;
  return s;
}

// Fan-out to `subs` subscribers beside raw PUB/SUB to as many, alternating which goes first.
void run_fanout(session& s, const stream_cli& o, durability mode, int subs, jb::temp_dir& tmp) {
  const int reps = s.options.reps;
  const bool raw = s.options.with_baseline();
  const std::uint64_t count = fanout_count(o);
  std::vector<double> rates, raw_rates, ratios, replayed;
  try {
    for (int rep = 0; rep < reps; ++rep) {
      sb::spec sp = spec_for(o, mode, count);
      sp.subscribers = subs;
      double f = 0;
      double z = 0;
      for (int turn = 0; turn < (raw ? 2 : 1); ++turn) {
        if ((turn + rep) % 2 == 0) {
          const sb::outcome out = sb::fanout(tmp.sub("stream"), sp);
          std::filesystem::remove_all(tmp.path() / "stream");
          f = out.rate();
          rates.push_back(f);
          replayed.push_back(static_cast<double>(out.replayed) /
                             static_cast<double>(count * static_cast<std::uint64_t>(subs)) * 100.0);
        } else {
          z = sb::raw_fanout(sp).rate();
          raw_rates.push_back(z);
        }
      }
      if (raw) ratios.push_back(ratio_pct(f, z));
    }
  } catch (const std::exception& e) {
    s.fail("stream fanout " + std::string(jb::to_string(mode)) + " subscribers=" + std::to_string(subs) + ": " +
           e.what());
    return;
  }
  run f = base_run("fanout", "fabric", mode, o.size, reps);
  f.set("count", static_cast<std::int64_t>(count));
  f.set("subscribers", static_cast<std::int64_t>(subs));
  f.set("send_batch", static_cast<std::int64_t>(o.batch));
  set_rates(f, rates, o.size);
  // Of what the subscribers delivered, the share that came by replay rather than live (a
  // subscriber the live feed outran fetched it).
  f.set("replayed_pct", median(replayed));
  if (raw) f.set("vs_raw_pct", median(ratios));
  s.add(std::move(f));
  if (!raw) return;
  run z = base_run("fanout", "raw", mode, o.size, reps);
  z.set("count", static_cast<std::int64_t>(count));
  z.set("subscribers", static_cast<std::int64_t>(subs));
  set_rates(z, raw_rates, o.size);
  s.add(std::move(z));
}

void run_catchup(session& s, const stream_cli& o, durability mode, jb::temp_dir& tmp) {
  const int reps = s.options.reps;
  const bool raw = s.options.with_baseline();
  const std::uint64_t count = catchup_count(o);
  std::vector<double> rates, raw_rates, ratios;
  try {
    for (int rep = 0; rep < reps; ++rep) {
      std::size_t map_size = 0;
      const sb::outcome f = sb::catchup(tmp.sub("stream"), spec_for(o, mode, count), map_size);
      rates.push_back(f.rate());
      if (raw) {
        // The records the subscriber just fetched, read straight from LMDB (the page cache as
        // warm as it was for the subscriber).
        const sb::outcome b = sb::raw_catchup(tmp.path() / "stream", map_size, count);
        raw_rates.push_back(b.rate());
        ratios.push_back(ratio_pct(f.rate(), b.rate()));
      }
      std::filesystem::remove_all(tmp.path() / "stream");
    }
  } catch (const std::exception& e) {
    s.fail("stream catchup " + std::string(jb::to_string(mode)) + ": " + e.what());
    return;
  }
  run f = base_run("catchup", "fabric", mode, o.size, reps);
  f.set("count", static_cast<std::int64_t>(count));
  set_rates(f, rates, o.size);
  if (raw) f.set("vs_raw_pct", median(ratios));
  s.add(std::move(f));
  if (!raw) return;
  run b = base_run("catchup", "raw", mode, o.size, reps);
  b.set("count", static_cast<std::int64_t>(count));
  set_rates(b, raw_rates, o.size);
  s.add(std::move(b));
}

void run_lat(session& s, const stream_cli& o, durability mode, jb::temp_dir& tmp) {
  const int reps = s.options.reps;
  const std::uint64_t count = lat_count(o);
  std::vector<histogram> lat;
  std::vector<double> rates;
  try {
    for (int rep = 0; rep < reps; ++rep) {
      sb::spec sp = spec_for(o, mode, count);
      sp.rate = o.rate;
      sb::outcome f = sb::latency(tmp.sub("stream"), sp);
      std::filesystem::remove_all(tmp.path() / "stream");
      rates.push_back(f.rate());
      lat.push_back(std::move(f.latency));
    }
  } catch (const std::exception& e) {
    s.fail("stream lat " + std::string(jb::to_string(mode)) + ": " + e.what());
    return;
  }
  run f = base_run("lat", "fabric", mode, o.size, reps);
  f.set("count", static_cast<std::int64_t>(count));
  f.set("subscribers", std::int64_t{1});
  f.set("rate", o.rate);
  set_rates(f, rates, o.size);
  set_latency_medians(f, lat);
  s.add(std::move(f));
}

void run_stream(session& s, const stream_cli& o) {
  std::vector<durability> modes;
  for (const auto& m : o.modes) modes.push_back(parse_mode(m));
  for (const auto& op : o.ops) {
    if (op != "fanout" && op != "catchup" && op != "lat")
      throw CLI::ValidationError("--ops", "unknown operation '" + op + "'");
  }
  if (s.options.with_baseline() && o.size < 8)
    throw CLI::ValidationError("--size", "the raw baseline numbers its messages: 8 bytes or more");
  const auto wants = [&](std::string_view op) { return std::find(o.ops.begin(), o.ops.end(), op) != o.ops.end(); };
  const std::filesystem::path base = o.dir.empty() ? jb::default_base_dir() : std::filesystem::path(o.dir);
  jb::temp_dir tmp("fabric-perf-stream-", base);
  for (const durability mode : modes) {
    if (wants("fanout")) {
      for (const int subs : o.subscribers) run_fanout(s, o, mode, subs, tmp);
    }
    if (wants("catchup")) run_catchup(s, o, mode, tmp);
    if (wants("lat")) run_lat(s, o, mode, tmp);
  }
}

void register_stream_benchmarks(CLI::App& app, session& s) {
  static stream_cli opts;
  CLI::App* sub = app.add_subcommand(
      "stream", "durable publish/subscribe with replay: fan-out beside raw libzmq PUB/SUB, catch-up "
                "by replay beside raw LMDB, subscribers in a child process over tcp");
  add_common_options(*sub, s.options);
  sub->add_option("-m,--modes", opts.modes, "the publisher's journal durability: sync, periodic, none")
      ->delimiter(',')
      ->capture_default_str();
  sub->add_option("--ops", opts.ops, "fanout, catchup, lat")->delimiter(',')->capture_default_str();
  sub->add_option("-s,--size", opts.size, "message bytes")->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_option("-n,--count", opts.count, "fanout: measured messages (default 500,000)");
  sub->add_option("--subscribers", opts.subscribers, "fanout: subscriber counts, one run each")
      ->delimiter(',')
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  sub->add_option("--catchup-count", opts.catchup_count, "catchup: the backlog (default 1,000,000)");
  sub->add_option("--lat-count", opts.lat_count, "lat: messages (default --rate times 2 s)");
  sub->add_option("--batch", opts.batch, "messages per publish call (1: publish_async; more: publish_batch)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{4096}))
      ->capture_default_str();
  sub->add_option("-w,--window", opts.window, "messages published and not yet durable at once")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  sub->add_option("--rate", opts.rate, "lat: messages per second")->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_option("--dir", opts.dir, "where to make the temporary directory (default $TMPDIR or /tmp)");
  sub->add_flag("--quick", opts.quick, "tiny counts, for smoke tests");
  sub->callback([&s] { run_stream(s, opts); });

  // The subscribing side, run by the benchmark as a child process of itself.
  CLI::App* child = app.add_subcommand("stream-subscribers", "");
  child->group("");
  child->add_option("--impl", opts.child_impl);
  child->add_option("--endpoint", opts.child_endpoint)->required();
  child->add_option("--replay-endpoint", opts.child_replay_endpoint);
  child->add_option("--subscribers", opts.child_subscribers);
  child->add_option("--total", opts.child_total)->required();
  child->add_option("--warm", opts.child_warm);
  child->add_option("--timeout-ms", opts.child_timeout_ms);
  child->add_flag("--times", opts.child_times);
  child->callback([] {
    std::exit(sb::subscribers_main(opts.child_impl, opts.child_endpoint, opts.child_replay_endpoint,
                                   opts.child_subscribers, opts.child_total, opts.child_warm, opts.child_times,
                                   std::chrono::milliseconds(opts.child_timeout_ms)));
  });
}

}  // namespace

FABRIC_PERF_REGISTER(register_stream_benchmarks);

}  // namespace fabric::perf
