// fabric-perf's pair subcommand: what a Binary Star pair (docs/ha.md) costs and how fast it
// fails over. Two Majordomo brokers, each hosted with its Binary Star node on a reactor thread of
// its own (as fabric-broker --role runs them), an echo worker beside each, and a client with
// both brokers, all in this process over tcp on loopback.
//
//   gate      request/reply through the active broker of a pair, beside a broker alone, in the
//             same run: the cost of asking the node for every client request. Synchronous
//             round trips (latency) and an asynchronous client with --window outstanding
//             (throughput).
//   failover  --count times: the active node's thread is stopped with a request in flight (its
//             sockets closed, as a process killed -9 leaves them), and the client's next answer
//             timed from then; the stopped node is started again and stands by before the next
//             round. The distribution, with the heartbeat and the client's timeout it came from.
//             (Titanic replication's cost: fabric-perf titanic --ops pair,pair-lat.)
#include "bench.hpp"
#include "harness/histogram.hpp"
#include "harness/stats.hpp"

#include <fabric/binary_star.hpp>
#include <fabric/context.hpp>
#include <fabric/error.hpp>
#include <fabric/majordomo.hpp>
#include <fabric/majordomo_client.hpp>
#include <fabric/majordomo_worker.hpp>
#include <fabric/reactor.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace fabric::perf {
namespace {

using clock_type = std::chrono::steady_clock;
using std::chrono::milliseconds;

struct pair_cli {
  std::vector<std::string> ops{"gate", "failover"};
  std::size_t size = 256;
  std::uint64_t count = 0;  // 0: a default per op
  std::size_t window = 256;
  int heartbeat_ms = 100;
  int client_timeout_ms = 250;
  bool quick = false;
};

std::uint64_t gate_count(const pair_cli& o) { return o.count ? o.count : o.quick ? 2'000 : 50'000; }
std::uint64_t failover_count(const pair_cli& o) { return o.count ? std::min<std::uint64_t>(o.count, 200) : o.quick ? 3 : 30; }

// One node: a broker and, in a pair, its Binary Star node, on a reactor thread of its own.
class node_host {
 public:
  // `role` empty: a broker alone. `endpoint`, `state`, `peer`: "tcp://127.0.0.1:*" the first
  // time; the resolved endpoints when started again.
  node_host(context& ctx, const std::string& endpoint, std::optional<binary_star::role> role, const std::string& state,
            const std::string& peer, milliseconds heartbeat) {
    if (role) {
      node_.emplace(ctx, binary_star::node_options{.role = *role, .bind = state, .peer = peer, .heartbeat = heartbeat});
      node_->on_state_change([this](binary_star::state, binary_star::state to, std::uint64_t) { state_ = to; });
    }
    mdp::broker_options bo;
    bo.endpoints = {endpoint};
    bo.heartbeat_interval = heartbeat;
    if (node_) bo.pair = &*node_;
    broker_.emplace(ctx, bo, mdp::deferred_start);
    endpoint_ = broker_->endpoints().at(0);
    thread_ = std::thread([this] {
      reactor r;
      if (node_) node_->attach(r);
      broker_->attach(r);
      while (!stop_.load()) (void)r.run_once(milliseconds(10));
      broker_->detach(r);
      if (node_) node_->detach(r);
    });
  }
  ~node_host() { stop(); }
  node_host(const node_host&) = delete;
  node_host& operator=(const node_host&) = delete;

  // Stops the thread and closes every socket at once: to its peers, as a killed process.
  void stop() {
    if (!thread_.joinable()) return;
    stop_ = true;
    thread_.join();
    broker_.reset();
    node_.reset();
  }
  const std::string& endpoint() const { return endpoint_; }
  std::string state_endpoint() const { return node_ ? node_->endpoint() : std::string(); }
  binary_star::state state() const { return state_.load(); }

 private:
  std::optional<binary_star::node> node_;
  std::optional<mdp::broker> broker_;
  std::string endpoint_;
  std::atomic<binary_star::state> state_{binary_star::state::primary};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// An echo worker of one broker on a thread of its own. A passive broker sends it away; it comes
// back every heartbeat, so it is there as soon as its broker serves.
class echo_worker {
 public:
  echo_worker(context& ctx, const std::string& broker, milliseconds heartbeat) {
    thread_ = std::thread([this, &ctx, broker, heartbeat] {
      mdp::worker_options wo{.broker = broker,
                             .service = "echo",
                             .heartbeat_interval = heartbeat,
                             .reconnect_interval = heartbeat,
                             .reconnect_interval_max = heartbeat,
                             .credit = 64};
      mdp::worker w(ctx, wo);
      (void)w.serve([](mdp::worker::request& r) { return std::move(r.body); }, [this] { return stop_.load(); },
                    milliseconds(20));
    });
  }
  ~echo_worker() {
    stop_ = true;
    thread_.join();
  }
  echo_worker(const echo_worker&) = delete;
  echo_worker& operator=(const echo_worker&) = delete;

 private:
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// A node on endpoints a node just closed: libzmq releases a closed socket's port on its I/O
// thread, a moment later, so the bind is tried again for a bounded time.
std::unique_ptr<node_host> host_again(context& ctx, const std::string& endpoint, binary_star::role role,
                                      const std::string& state, const std::string& peer, milliseconds heartbeat) {
  const auto deadline = clock_type::now() + milliseconds(5'000);
  for (;;) {
    try {
      return std::make_unique<node_host>(ctx, endpoint, role, state, peer, heartbeat);
    } catch (const error&) {
      if (clock_type::now() > deadline) throw;
      std::this_thread::sleep_for(milliseconds(5));  // waiting for the port, bounded
    }
  }
}

// Two nodes, or one broker alone, with an echo worker.
struct deployment {
  deployment(context& ctx, bool pair, milliseconds heartbeat) : ctx_(ctx), heartbeat_(heartbeat), paired(pair) {
    const std::string any = "tcp://127.0.0.1:*";
    if (!pair) {
      nodes[0] = std::make_unique<node_host>(ctx, any, std::nullopt, "", "", heartbeat);
    } else {
      // The backup first, so that the primary knows where to listen for it; then the backup is
      // started again with the primary's state endpoint.
      auto probe = std::make_unique<node_host>(ctx, any, binary_star::role::backup, any, "tcp://127.0.0.1:1", heartbeat);
      const std::string backup_state = probe->state_endpoint();
      const std::string backup_ep = probe->endpoint();
      probe.reset();
      nodes[0] = std::make_unique<node_host>(ctx, any, binary_star::role::primary, any, backup_state, heartbeat);
      nodes[1] = host_again(ctx, backup_ep, binary_star::role::backup, backup_state, nodes[0]->state_endpoint(),
                            heartbeat);
    }
    for (int i = 0; i < (pair ? 2 : 1); ++i) {
      endpoints[i] = nodes[i]->endpoint();
      states[i] = nodes[i]->state_endpoint();
    }
    for (int i = 0; i < (pair ? 2 : 1); ++i) workers[i] = std::make_unique<echo_worker>(ctx, endpoints[i], heartbeat);
  }

  // Starts node `i` again on its endpoints: it stands by once it hears the active one.
  void restart(int i) {
    nodes[i] = host_again(ctx_, endpoints[i], i == 0 ? binary_star::role::primary : binary_star::role::backup,
                          states[i], states[1 - i], heartbeat_);
  }

  context& ctx_;
  milliseconds heartbeat_;
  bool paired;
  std::unique_ptr<node_host> nodes[2];
  std::string endpoints[2];
  std::string states[2];
  std::unique_ptr<echo_worker> workers[2];
};

std::vector<std::string> failover_of(const deployment& d) {
  return d.paired ? std::vector<std::string>{d.endpoints[1]} : std::vector<std::string>{};
}

// Round trips until one is answered (the pair settles, the worker registers), bounded.
void settle(mdp::client& c, const std::string& body) {
  for (int i = 0; i < 200; ++i) {
    auto r = c.request("echo", message(body));
    if (r) return;
  }
  throw std::runtime_error("no answer from the broker");
}

struct gate_outcome {
  double rate = 0;
  histogram latency;
};

gate_outcome measure_gate(bool pair, const pair_cli& o) {
  context ctx;
  deployment d(ctx, pair, milliseconds(o.heartbeat_ms));
  const std::string body(o.size, 'x');
  gate_outcome out;
  {
    mdp::client c(ctx, {.broker = d.endpoints[0], .failover = failover_of(d), .timeout = milliseconds(1000), .retries = 20});
    settle(c, body);
    const std::uint64_t n = std::max<std::uint64_t>(gate_count(o) / 10, 100);
    for (std::uint64_t i = 0; i < n; ++i) {
      const auto t0 = clock_type::now();
      auto r = c.request("echo", message(body));
      if (!r) throw std::runtime_error("gate: a request went unanswered");
      out.latency.record(static_cast<std::uint64_t>(std::chrono::nanoseconds(clock_type::now() - t0).count()));
    }
  }
  mdp::async_client a(ctx, {.broker = d.endpoints[0], .correlate = mdp::correlation::request_id,
                            .max_outstanding = o.window + 1, .request_expiry = milliseconds(30'000)});
  const std::uint64_t count = gate_count(o);
  std::uint64_t sent = 0;
  std::uint64_t done = 0;
  mdp::async_client::reply rep;
  const auto start = clock_type::now();
  while (done < count) {
    while (sent < count && sent - done < o.window) {
      if (!a.send("echo", message(body))) break;
      ++sent;
    }
    if (!a.recv(rep, milliseconds(30'000)) || rep.status != mdp::async_client::reply_status::ok)
      throw std::runtime_error("gate: the asynchronous client got no answer");
    ++done;
  }
  out.rate = static_cast<double>(count) / std::chrono::duration<double>(clock_type::now() - start).count();
  return out;
}

run base_run(std::string_view op, std::string_view impl, const pair_cli& o, int reps) {
  run r;
  r.set("bench", std::string("pair"));
  r.set("op", std::string(op));
  r.set("impl", std::string(impl));
  r.set("size", static_cast<std::int64_t>(o.size));
  r.set("reps", static_cast<std::int64_t>(reps));
  r.set("transport", std::string("tcp"));
  return r;
}

void run_gate(session& s, const pair_cli& o) {
  const int reps = s.options.reps;
  std::vector<double> rates[2], ratios, p50_ratios;
  std::vector<histogram> lat[2];
  try {
    for (int rep = 0; rep < reps; ++rep) {
      double rate[2] = {};
      double p50[2] = {};
      for (int turn = 0; turn < 2; ++turn) {
        const int k = (turn + rep) % 2;  // 0: a broker alone, 1: the pair
        gate_outcome g = measure_gate(k == 1, o);
        rate[k] = g.rate;
        p50[k] = static_cast<double>(g.latency.value_at_percentile(50));
        rates[k].push_back(g.rate);
        lat[k].push_back(std::move(g.latency));
      }
      ratios.push_back(rate[0] > 0 ? rate[1] / rate[0] * 100.0 : std::nan(""));
      p50_ratios.push_back(p50[0] > 0 ? p50[1] / p50[0] * 100.0 : std::nan(""));
    }
  } catch (const std::exception& e) {
    s.fail(std::string("pair gate: ") + e.what());
    return;
  }
  for (int k = 0; k < 2; ++k) {
    run r = base_run("gate", k == 0 ? "single" : "pair", o, reps);
    r.set("count", static_cast<std::int64_t>(gate_count(o)));
    r.set("window", static_cast<std::int64_t>(o.window));
    set_summary(r, "msgs_per_s", rates[k]);  // the asynchronous client's
    set_latency_medians(r, lat[k]);          // one synchronous round trip at a time
    if (k == 1) {
      r.set("vs_single_pct", median(ratios));
      r.set("p50_vs_single_pct", median(p50_ratios));
    }
    s.add(std::move(r));
  }
}

// Rounds of: requests answered; the active node stopped; requests until one is answered.
std::vector<double> measure_failover(const pair_cli& o) {
  context ctx;
  const milliseconds heartbeat(o.heartbeat_ms);
  deployment d(ctx, true, heartbeat);
  mdp::client c(ctx, {.broker = d.endpoints[0], .failover = failover_of(d),
                      .timeout = milliseconds(o.client_timeout_ms), .retries = 100, .correlate = true});
  const std::string body(o.size, 'x');
  settle(c, body);
  std::vector<double> times;
  for (std::uint64_t round = 0; round < failover_count(o); ++round) {
    for (int i = 0; i < 5; ++i) {
      if (!c.request("echo", message(body))) throw std::runtime_error("failover: a request went unanswered");
    }
    const int active = c.endpoint() == d.endpoints[0] ? 0 : 1;
    d.nodes[active]->stop();
    const auto stopped = clock_type::now();
    if (!c.request("echo", message(body))) throw std::runtime_error("failover: no answer after the active node stopped");
    times.push_back(std::chrono::duration<double, std::milli>(clock_type::now() - stopped).count());
    d.restart(active);
    const auto deadline = clock_type::now() + milliseconds(10'000);
    while (d.nodes[active]->state() != binary_star::state::passive) {
      if (clock_type::now() > deadline) throw std::runtime_error("failover: the restarted node did not stand by");
      std::this_thread::sleep_for(milliseconds(1));  // polling a flag the node's thread sets, bounded
    }
  }
  return times;
}

void run_failover(session& s, const pair_cli& o) {
  std::vector<double> all;
  const int reps = s.options.reps;
  try {
    for (int rep = 0; rep < reps; ++rep) {
      auto t = measure_failover(o);
      all.insert(all.end(), t.begin(), t.end());
    }
  } catch (const std::exception& e) {
    s.fail(std::string("pair failover: ") + e.what());
    return;
  }
  std::sort(all.begin(), all.end());
  const auto at = [&all](double q) { return all[static_cast<std::size_t>(q * static_cast<double>(all.size() - 1))]; };
  run r = base_run("failover", "pair", o, reps);
  r.set("count", static_cast<std::int64_t>(all.size()));
  r.set("heartbeat_ms", static_cast<std::int64_t>(o.heartbeat_ms));
  r.set("client_timeout_ms", static_cast<std::int64_t>(o.client_timeout_ms));
  r.set("failover_min_ms", all.front());
  r.set("failover_p50_ms", at(0.5));
  r.set("failover_p90_ms", at(0.9));
  r.set("failover_max_ms", all.back());
  // Against the goal of two expiries (an expiry is two heartbeats).
  r.set("max_vs_goal_pct", all.back() / (4.0 * o.heartbeat_ms) * 100.0);
  s.add(std::move(r));
}

void run_pair(session& s, const pair_cli& o) {
  const auto wants = [&o](std::string_view op) { return std::find(o.ops.begin(), o.ops.end(), op) != o.ops.end(); };
  if (wants("gate")) run_gate(s, o);
  if (wants("failover")) run_failover(s, o);
}

void register_pair_benchmarks(CLI::App& app, session& s) {
  static pair_cli opts;
  CLI::App* sub = app.add_subcommand(
      "pair", "a Binary Star pair of Majordomo brokers: the cost of the node's gate beside a broker alone, and the "
              "failover time a client sees when the active node stops, over tcp");
  add_common_options(*sub, s.options);
  sub->add_option("--ops", opts.ops, "gate, failover")->delimiter(',')->capture_default_str();
  sub->add_option("-s,--size", opts.size, "request body bytes")->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_option("-n,--count", opts.count, "requests per run (gate, default 50,000) or failovers per run (default 30)");
  sub->add_option("-w,--window", opts.window, "gate: requests outstanding at once")
      ->check(CLI::Range(std::size_t{1}, std::size_t{10'000}))
      ->capture_default_str();
  sub->add_option("--heartbeat", opts.heartbeat_ms, "the pair's heartbeat in ms (a node is taken for dead after two)")
      ->check(CLI::Range(10, 10'000))
      ->capture_default_str();
  sub->add_option("--client-timeout", opts.client_timeout_ms, "failover: the client's timeout per attempt, ms")
      ->check(CLI::Range(10, 60'000))
      ->capture_default_str();
  sub->add_flag("--quick", opts.quick, "tiny counts, for smoke tests");
  sub->callback([&s] { run_pair(s, opts); });
}

}  // namespace

FABRIC_PERF_REGISTER(register_pair_benchmarks);

}  // namespace fabric::perf
