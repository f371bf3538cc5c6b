// fabric-perf's titanic subcommand: the cost of persistence. fabric's Majordomo broker, a Titanic
// service on a journal of its own (sync durability unless told otherwise), echo workers and one
// asynchronous 9/TSP client, all in this process over tcp on loopback, beside the same broker
// and workers answering plain Majordomo requests in the same run.
//
//   post   keyed titanic requests with --window outstanding and no worker for their service:
//          requests/s answered "200" (each durable first), and latency from send to "200"
//   lat    one keyed post at a time: send to "200", beside one raw LMDB transaction of one
//          record fsynced by its commit (the floor of anything durable)
//   rtt    full round trips with 1 and 4 workers: post, the worker runs it, titanic.reply until
//          "200" (first asked --first-poll ms after the "200", then backing off to --max-poll),
//          titanic.close;
//          requests/s and latency from post to close, beside Majordomo request/reply with the
//          asynchronous client and as many workers (each worker taking --credit requests at
//          once on both sides, fabric's broker extension)
//   pair   the cost of replication (docs/ha.md, section 9): keyed posts with --window
//          outstanding to a single Titanic node, and to the active node of a pair whose passive
//          node's replica (on a journal of its own, in this process) follows over tcp, in sync
//          mode ("200" once both journals hold it) and async mode, in the same run
//   pair-lat  the same, one post at a time: the latency a sync pair adds to a "200"
#include "bench.hpp"
#include "harness/histogram.hpp"
#include "harness/stats.hpp"
#include "journal_workloads.hpp"
#include "majordomo_workloads.hpp"

#include <fabric/context.hpp>
#include <fabric/journal.hpp>
#include <fabric/majordomo.hpp>
#include <fabric/majordomo_client.hpp>
#include <fabric/majordomo_worker.hpp>
#include <fabric/titanic.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <exception>
#include <memory>
#include <queue>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace fabric::perf {
namespace {

namespace jb = journal_bench;
namespace mb = majordomo_bench;
using clock_type = std::chrono::steady_clock;
using std::chrono::milliseconds;

struct titanic_cli {
  std::vector<std::string> ops{"post", "lat", "rtt", "pair", "pair-lat"};
  std::string mode = "sync";
  std::size_t size = 256;
  std::uint64_t count = 0;  // 0: a default per op
  std::vector<int> workers{1, 4};
  std::size_t window = 1024;
  std::uint32_t worker_credit = 64;
  int first_poll_ms = 10;  // rtt: the first titanic.reply this long after the "200" (the client's default)
  int max_poll_ms = 16;    // rtt: the longest wait between two  // echo workers' credit, both sides (fabric's broker extension)
  std::string dir;
  bool quick = false;
};

std::uint64_t post_count(const titanic_cli& o) { return o.count ? o.count : o.quick ? 500 : 100'000; }
std::uint64_t lat_count(const titanic_cli& o) { return o.count ? std::min<std::uint64_t>(o.count, 5'000) : o.quick ? 50 : 2'000; }
std::uint64_t rtt_count(const titanic_cli& o) { return o.count ? o.count : o.quick ? 300 : 30'000; }

durability parse_mode(const std::string& name) {
  if (name == "sync") return durability::sync;
  if (name == "periodic") return durability::periodic;
  if (name == "none") return durability::none;
  throw CLI::ValidationError("--mode", "unknown durability mode '" + name + "'");
}

// The broker, the Titanic service on its journal and `workers` echo workers for service "echo",
// torn down in reverse order.
// How a rig's service replicates: not at all, or to a replica in sync or async mode.
enum class replicated : std::uint8_t { no, sync, async };

class rig {
 public:
  rig(const std::filesystem::path& dir, durability mode, int workers, std::uint32_t worker_credit,
      replicated repl = replicated::no) {
    mdp::broker_options bo;
    bo.endpoints = {"tcp://127.0.0.1:*"};
    bo.max_worker_credit = 1024;  // what the Titanic service asks for: one commit carries more
    broker_ = std::make_unique<mdp::broker>(ctx_, bo);
    endpoint_ = broker_->endpoints().at(0);
    journal_options jo;
    jo.mode = mode;
    jo.map_size = std::size_t{1} << 30;
    journal_.emplace(journal::open(dir, jo));
    titanic::service_options to;
    to.broker = endpoint_;
    to.max_in_flight = 256;
    if (repl != replicated::no) {
      to.replication.bind = "tcp://127.0.0.1:*";
      to.replication.mode = repl == replicated::sync ? titanic::replication_mode::sync : titanic::replication_mode::async;
    }
    titanic_ = std::make_unique<titanic::service>(ctx_, *journal_, to);
    if (repl != replicated::no) {
      // The passive node's replica, on a journal of its own, as a pair's passive node runs it.
      std::filesystem::create_directories(dir / "replica");
      replica_journal_.emplace(journal::open(dir / "replica", jo));
      replica_ = std::make_unique<titanic::replica>(ctx_, *replica_journal_,
                                                    titanic::replica_options{.peer = titanic_->replication_endpoint()});
      const auto deadline = clock_type::now() + milliseconds(10'000);
      while (!replica_->caught_up() || !titanic_->stats().follower_in_step) {
        if (clock_type::now() > deadline) throw std::runtime_error("the replica did not catch up");
        std::this_thread::sleep_for(milliseconds(1));  // polling a flag another thread sets, bounded
      }
    }
    for (int i = 0; i < workers; ++i) {
      workers_.emplace_back([this, worker_credit] {
        mdp::worker w(ctx_, {.broker = endpoint_, .service = "echo", .credit = worker_credit});
        (void)w.serve([](mdp::worker::request& r) { return std::move(r.body); }, [this] { return stop_.load(); },
                      milliseconds(20));
      });
    }
  }
  ~rig() {
    stop_ = true;
    for (auto& t : workers_) t.join();
    titanic_.reset();
    replica_.reset();
    replica_journal_.reset();
    journal_.reset();
    broker_.reset();
  }
  rig(const rig&) = delete;
  rig& operator=(const rig&) = delete;

  context& ctx() { return ctx_; }
  const std::string& endpoint() const { return endpoint_; }
  titanic::service& service() { return *titanic_; }

 private:
  context ctx_;
  std::string endpoint_;
  std::unique_ptr<mdp::broker> broker_;
  std::optional<journal> journal_;
  std::unique_ptr<titanic::service> titanic_;
  std::optional<journal> replica_journal_;
  std::unique_ptr<titanic::replica> replica_;
  std::atomic<bool> stop_{false};
  std::vector<std::thread> workers_;
};

struct outcome {
  double seconds = 0;
  std::uint64_t completed = 0;
  std::uint64_t polls = 0;  // rtt: titanic.reply requests sent
  double avg_batch = 0;     // changes per journal commit
  histogram latency;
  double rate() const { return seconds > 0 ? static_cast<double>(completed) / seconds : 0; }
};

// A keyed titanic request for "echo": 16 key octets (a random prefix and the request number,
// big-endian, so keys rise as fabric's client's do), then the service and a body of `size` bytes.
message keyed_post(std::uint64_t n, std::uint64_t prefix, std::size_t size) {
  char key[16];
  std::memcpy(key, &prefix, 8);
  for (int i = 0; i < 8; ++i) key[8 + i] = static_cast<char>(n >> (56 - 8 * i));
  message m;
  m.push_back(std::string_view(key, sizeof key));
  m.push_back(std::string_view("echo"));
  std::string body(size, 'x');
  std::memcpy(body.data(), &n, std::min<std::size_t>(8, size));
  m.push_back(body);
  return m;
}

std::uint64_t random_prefix() {
  std::random_device rd;
  return (std::uint64_t{rd()} << 32) | rd();
}

// Waits until the Titanic services have workers at the broker.
void wait_ready(rig& r, const milliseconds bound) {
  mdp::client c(r.ctx(), {.broker = r.endpoint(), .timeout = milliseconds(500), .retries = 0});
  const auto deadline = clock_type::now() + bound;
  while (clock_type::now() < deadline) {
    auto a = c.request("mmi.service", message("titanic.keyed-request"));
    if (a && !a->empty() && a->view(0) == "200") return;
  }
  throw std::runtime_error("the titanic service did not register with the broker");
}

void expect_ok(const mdp::async_client::reply& rep, std::string_view what) {
  if (rep.status != mdp::async_client::reply_status::ok) throw std::runtime_error(std::string(what) + ": no answer in time");
  if (rep.body.empty() || rep.body.view(0).substr(0, 3) != "200")
    throw std::runtime_error(std::string(what) + ": answered " + (rep.body.empty() ? std::string("nothing") : std::string(rep.body.view(0))));
}

// `count` keyed posts, `window` outstanding; no worker: requests are stored and wait.
outcome measure_post(const std::filesystem::path& dir, durability mode, std::size_t size, std::uint64_t count,
                     std::size_t window, replicated repl = replicated::no) {
  rig r(dir, mode, 0, 1, repl);
  wait_ready(r, milliseconds(10'000));
  mdp::async_client c(r.ctx(), {.broker = r.endpoint(), .correlate = mdp::correlation::request_id,
                                 .max_outstanding = window + 1, .request_expiry = milliseconds(30'000)});
  const std::uint64_t prefix = random_prefix();
  std::unordered_map<std::uint64_t, clock_type::time_point> sent;
  outcome out;
  std::uint64_t next = 0;
  const auto start = clock_type::now();
  mdp::async_client::reply rep;
  while (out.completed < count) {
    while (next < count && sent.size() < window) {
      auto id = c.send("titanic.keyed-request", keyed_post(next, prefix, size));
      if (!id) break;
      sent.emplace(*id, clock_type::now());
      ++next;
    }
    if (auto got = c.recv(rep, milliseconds(30'000)); !got) throw std::runtime_error("post: the client failed");
    expect_ok(rep, "post");
    const auto it = sent.find(rep.id);
    if (it == sent.end()) continue;
    out.latency.record(static_cast<std::uint64_t>(std::chrono::nanoseconds(clock_type::now() - it->second).count()));
    sent.erase(it);
    ++out.completed;
  }
  out.seconds = std::chrono::duration<double>(clock_type::now() - start).count();
  const auto st = r.service().stats();
  out.avg_batch = st.commits ? static_cast<double>(st.stored) / static_cast<double>(st.commits) : 0;
  return out;
}

// Full round trips: post, poll titanic.reply (from 1 ms after the "200", doubling to 16 ms while
// "300"), close.
outcome measure_rtt(const std::filesystem::path& dir, durability mode, std::size_t size, std::uint64_t count,
                    std::size_t window, int workers, std::uint32_t credit, milliseconds first_poll,
                    milliseconds max_poll) {
  rig r(dir, mode, workers, credit);
  wait_ready(r, milliseconds(10'000));
  mdp::async_client c(r.ctx(), {.broker = r.endpoint(), .correlate = mdp::correlation::request_id,
                                 .max_outstanding = window * 2 + 1, .request_expiry = milliseconds(30'000)});
  enum class step : std::uint8_t { post, reply, close };
  struct request {
    clock_type::time_point started;
    std::string uuid;
    milliseconds backoff{0};
  };
  std::vector<request> requests(count);
  std::unordered_map<std::uint64_t, std::pair<std::uint64_t, step>> pending;  // call id -> request, step
  using due = std::pair<clock_type::time_point, std::uint64_t>;
  std::priority_queue<due, std::vector<due>, std::greater<>> polls;
  const std::uint64_t prefix = random_prefix();
  outcome out;
  std::uint64_t next = 0;
  std::size_t open = 0;
  const auto ask = [&](std::uint64_t n, step what) {
    message body(requests[n].uuid);
    auto id = c.send(what == step::reply ? "titanic.reply" : "titanic.close", std::move(body));
    if (!id) throw std::runtime_error("rtt: the client refused a request");
    pending.emplace(*id, std::make_pair(n, what));
  };
  const auto start = clock_type::now();
  mdp::async_client::reply rep;
  while (out.completed < count) {
    while (next < count && open < window) {
      auto id = c.send("titanic.keyed-request", keyed_post(next, prefix, size));
      if (!id) break;
      requests[next].started = clock_type::now();
      pending.emplace(*id, std::make_pair(next, step::post));
      ++next;
      ++open;
    }
    auto now = clock_type::now();
    while (!polls.empty() && polls.top().first <= now) {
      const std::uint64_t n = polls.top().second;
      polls.pop();
      ask(n, step::reply);
      ++out.polls;
    }
    // Rounded up: a wait cut to 0 ms would spin until the next poll is due.
    const auto wait = polls.empty() ? milliseconds(30'000)
                                    : std::max(milliseconds(0), std::chrono::ceil<milliseconds>(polls.top().first - now));
    auto got = c.recv(rep, wait);
    if (!got) {
      if (got.is(errc::timeout)) continue;
      throw std::runtime_error("rtt: the client failed");
    }
    const auto it = pending.find(rep.id);
    if (it == pending.end()) continue;
    const auto [n, what] = it->second;
    pending.erase(it);
    if (rep.status != mdp::async_client::reply_status::ok) throw std::runtime_error("rtt: no answer in time");
    now = clock_type::now();
    switch (what) {
      case step::post:
        expect_ok(rep, "rtt post");
        if (rep.body.size() != 2) throw std::runtime_error("rtt post: no UUID");
        requests[n].uuid = std::string(rep.body.view(1));
        requests[n].backoff = first_poll;
        polls.emplace(now + requests[n].backoff, n);
        break;
      case step::reply:
        if (!rep.body.empty() && rep.body.view(0) == "300") {
          requests[n].backoff = std::min(requests[n].backoff * 2, max_poll);
          polls.emplace(now + requests[n].backoff, n);
          break;
        }
        expect_ok(rep, "rtt reply");
        if (rep.body.size() != 2 || rep.body[1].size() != size) throw std::runtime_error("rtt reply: not the echo");
        ask(n, step::close);
        break;
      case step::close:
        expect_ok(rep, "rtt close");
        out.latency.record(static_cast<std::uint64_t>(std::chrono::nanoseconds(now - requests[n].started).count()));
        ++out.completed;
        --open;
        break;
    }
  }
  out.seconds = std::chrono::duration<double>(clock_type::now() - start).count();
  return out;
}

run base_run(std::string_view op, std::string_view impl, const titanic_cli& o, int reps) {
  run r;
  r.set("bench", std::string("titanic"));
  r.set("op", std::string(op));
  r.set("mode", o.mode);
  r.set("size", static_cast<std::int64_t>(o.size));
  r.set("impl", std::string(impl));
  r.set("reps", static_cast<std::int64_t>(reps));
  r.set("transport", std::string("tcp"));
  return r;
}

double ratio_pct(double a, double b) { return b > 0.0 ? a / b * 100.0 : std::nan(""); }

void run_post(session& s, const titanic_cli& o, jb::temp_dir& tmp) {
  const int reps = s.options.reps;
  std::vector<double> rates, batches;
  std::vector<histogram> lat;
  try {
    for (int rep = 0; rep < reps; ++rep) {
      outcome out = measure_post(tmp.sub("titanic"), parse_mode(o.mode), o.size, post_count(o), o.window);
      rates.push_back(out.rate());
      batches.push_back(out.avg_batch);
      lat.push_back(std::move(out.latency));
    }
  } catch (const std::exception& e) {
    s.fail(std::string("titanic post: ") + e.what());
    return;
  }
  run f = base_run("post", "fabric", o, reps);
  f.set("count", static_cast<std::int64_t>(post_count(o)));
  f.set("window", static_cast<std::int64_t>(o.window));
  set_summary(f, "msgs_per_s", rates);
  set_latency_medians(f, lat);
  f.set("avg_batch", median(batches));  // requests stored per journal commit
  s.add(std::move(f));
}

void run_lat(session& s, const titanic_cli& o, jb::temp_dir& tmp) {
  const int reps = s.options.reps;
  const bool raw = s.options.with_baseline();
  std::vector<histogram> lat, raw_lat;
  std::vector<double> p99_ratios;
  try {
    for (int rep = 0; rep < reps; ++rep) {
      for (int turn = 0; turn < (raw ? 2 : 1); ++turn) {
        if ((turn + rep) % 2 == 0) {
          lat.push_back(measure_post(tmp.sub("titanic"), parse_mode(o.mode), o.size, lat_count(o), 1).latency);
        } else {
          raw_lat.push_back(jb::raw_append_one(tmp.sub("raw_lmdb"), o.size, lat_count(o), std::size_t{64} << 20).latency);
        }
      }
      if (raw) {
        p99_ratios.push_back(ratio_pct(static_cast<double>(lat.back().value_at_percentile(99)),
                                       static_cast<double>(raw_lat.back().value_at_percentile(99))));
      }
    }
  } catch (const std::exception& e) {
    s.fail(std::string("titanic lat: ") + e.what());
    return;
  }
  run f = base_run("lat", "fabric", o, reps);
  f.set("count", static_cast<std::int64_t>(lat_count(o)));
  f.set("window", static_cast<std::int64_t>(1));
  set_latency_medians(f, lat);
  if (raw) f.set("p99_vs_raw_pct", median(p99_ratios));
  s.add(std::move(f));
  if (!raw) return;
  run b = base_run("lat", "raw_lmdb", o, reps);
  b.set("count", static_cast<std::int64_t>(lat_count(o)));
  b.set("window", static_cast<std::int64_t>(1));
  set_latency_medians(b, raw_lat);
  s.add(std::move(b));
}

void run_rtt(session& s, const titanic_cli& o, int workers, jb::temp_dir& tmp) {
  const int reps = s.options.reps;
  const bool raw = s.options.with_baseline();
  std::vector<double> rates, mdp_rates, ratios, polls;
  std::vector<histogram> lat, mdp_lat;
  try {
    for (int rep = 0; rep < reps; ++rep) {
      double f = 0;
      double m = 0;
      for (int turn = 0; turn < (raw ? 2 : 1); ++turn) {
        if ((turn + rep) % 2 == 0) {
          outcome out = measure_rtt(tmp.sub("titanic"), parse_mode(o.mode), o.size, rtt_count(o), o.window, workers,
                                    o.worker_credit, milliseconds(o.first_poll_ms), milliseconds(o.max_poll_ms));
          polls.push_back(out.completed ? static_cast<double>(out.polls) / static_cast<double>(out.completed) : 0);
          f = out.rate();
          rates.push_back(f);
          lat.push_back(std::move(out.latency));
        } else {
          mb::spec sp;
          sp.impl = mb::side::fabric;
          sp.client = mb::client_kind::async;
          sp.workers = workers;
          sp.worker_credit = static_cast<int>(o.worker_credit);
          sp.size = o.size;
          sp.count = rtt_count(o);
          sp.warmup = std::max<std::uint64_t>(100, rtt_count(o) / 10);
          sp.window = std::min<std::size_t>(o.window, 256);
          mb::outcome out = mb::measure(sp);
          m = out.rate();
          mdp_rates.push_back(m);
          mdp_lat.push_back(std::move(out.latency));
        }
      }
      if (raw) ratios.push_back(ratio_pct(f, m));
    }
  } catch (const std::exception& e) {
    s.fail("titanic rtt workers=" + std::to_string(workers) + ": " + e.what());
    return;
  }
  run f = base_run("rtt", "fabric", o, reps);
  f.set("workers", static_cast<std::int64_t>(workers));
  f.set("credit", static_cast<std::int64_t>(o.worker_credit));
  f.set("count", static_cast<std::int64_t>(rtt_count(o)));
  f.set("window", static_cast<std::int64_t>(o.window));
  set_summary(f, "msgs_per_s", rates);
  set_latency_medians(f, lat);
  f.set("polls_per_100_pct", median(polls) * 100.0);  // titanic.reply requests per 100 requests
  if (raw) f.set("vs_raw_pct", median(ratios));
  s.add(std::move(f));
  if (!raw) return;
  run m = base_run("rtt", "majordomo", o, reps);
  m.set("workers", static_cast<std::int64_t>(workers));
  m.set("credit", static_cast<std::int64_t>(o.worker_credit));
  m.set("count", static_cast<std::int64_t>(rtt_count(o)));
  m.set("window", static_cast<std::int64_t>(o.window));
  set_summary(m, "msgs_per_s", mdp_rates);
  set_latency_medians(m, mdp_lat);
  s.add(std::move(m));
}

// Keyed posts to a single node and to a pair's active node (sync, async) in turns within each
// repetition, so the three see the same machine; pair-lat does it one post at a time.
void run_pair(session& s, const titanic_cli& o, std::size_t window, jb::temp_dir& tmp) {
  const int reps = s.options.reps;
  const std::string op = window == 1 ? "pair-lat" : "pair";
  const std::uint64_t count = window == 1 ? lat_count(o) : post_count(o) / 2;
  const replicated kinds[3] = {replicated::no, replicated::sync, replicated::async};
  std::vector<double> rates[3], ratios[2], p50_ratios[2];
  std::vector<histogram> lat[3];
  try {
    for (int rep = 0; rep < reps; ++rep) {
      double rate[3] = {};
      double p50[3] = {};
      for (int turn = 0; turn < 3; ++turn) {
        const int k = (turn + rep) % 3;
        outcome out = measure_post(tmp.sub("titanic"), parse_mode(o.mode), o.size, count, window, kinds[k]);
        rate[k] = out.rate();
        p50[k] = static_cast<double>(out.latency.value_at_percentile(50));
        rates[k].push_back(rate[k]);
        lat[k].push_back(std::move(out.latency));
      }
      for (int k = 1; k < 3; ++k) {
        ratios[k - 1].push_back(ratio_pct(rate[k], rate[0]));
        p50_ratios[k - 1].push_back(ratio_pct(p50[k], p50[0]));
      }
    }
  } catch (const std::exception& e) {
    s.fail("titanic " + op + ": " + e.what());
    return;
  }
  const char* names[3] = {"single", "pair_sync", "pair_async"};
  for (int k = 0; k < 3; ++k) {
    run f = base_run(op, names[k], o, reps);
    f.set("count", static_cast<std::int64_t>(count));
    f.set("window", static_cast<std::int64_t>(window));
    set_summary(f, "msgs_per_s", rates[k]);
    set_latency_medians(f, lat[k]);
    if (k > 0) {
      f.set("vs_single_pct", median(ratios[k - 1]));         // throughput against the single node
      f.set("p50_vs_single_pct", median(p50_ratios[k - 1]));  // median latency against it
    }
    s.add(std::move(f));
  }
}

void run_titanic(session& s, const titanic_cli& o) {
  (void)parse_mode(o.mode);
  if (o.size < 8) throw CLI::ValidationError("--size", "every request is numbered: 8 bytes or more");
  const std::filesystem::path base = o.dir.empty() ? jb::default_base_dir() : std::filesystem::path(o.dir);
  jb::temp_dir tmp("fabric-perf-titanic-", base);
  const auto wants = [&o](std::string_view op) { return std::find(o.ops.begin(), o.ops.end(), op) != o.ops.end(); };
  if (wants("post")) run_post(s, o, tmp);
  if (wants("lat")) run_lat(s, o, tmp);
  if (wants("rtt")) {
    for (const int w : o.workers) run_rtt(s, o, w, tmp);
  }
  if (wants("pair")) run_pair(s, o, o.window, tmp);
  if (wants("pair-lat")) run_pair(s, o, 1, tmp);
}

void register_titanic_benchmarks(CLI::App& app, session& s) {
  static titanic_cli opts;
  CLI::App* sub = app.add_subcommand(
      "titanic", "the Titanic (9/TSP) service on its journal: keyed posts, one post's latency beside a raw fsynced "
                 "LMDB commit, full round trips beside Majordomo request/reply, and a replicated pair beside a "
                 "single node, all over tcp");
  add_common_options(*sub, s.options);
  sub->add_option("--ops", opts.ops, "post, lat, rtt, pair, pair-lat")->delimiter(',')->capture_default_str();
  sub->add_option("-m,--mode", opts.mode, "the Titanic journal's durability: sync, periodic, none")->capture_default_str();
  sub->add_option("-s,--size", opts.size, "request body bytes")->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_option("-n,--count", opts.count, "requests per run (default: post 100,000, rtt 30,000, lat 2,000)");
  sub->add_option("--workers", opts.workers, "echo workers for rtt, one run each")
      ->delimiter(',')
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  sub->add_option("--credit", opts.worker_credit, "each echo worker's credit (1: plain 7/MDP), both sides")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  sub->add_option("--first-poll", opts.first_poll_ms, "rtt: ms from the \"200\" to the first titanic.reply")
      ->check(CLI::Range(0, 10'000))
      ->capture_default_str();
  sub->add_option("--max-poll", opts.max_poll_ms, "rtt: longest ms between two titanic.reply while \"300\"")
      ->check(CLI::Range(1, 10'000))
      ->capture_default_str();
  sub->add_option("-w,--window", opts.window, "requests outstanding at once (post, rtt)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{100'000}))
      ->capture_default_str();
  sub->add_option("--dir", opts.dir, "where to make the temporary directory (default $TMPDIR or /tmp)");
  sub->add_flag("--quick", opts.quick, "tiny counts, for smoke tests");
  sub->callback([&s] { run_titanic(s, opts); });
}

}  // namespace

FABRIC_PERF_REGISTER(register_titanic_benchmarks);

}  // namespace fabric::perf
