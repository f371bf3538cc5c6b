// Failover under load for Titanic in a Binary Star pair (docs/ha.md, sections 9 and 13): two real
// `fabric-broker --titanic DIR --role primary|backup` processes, each on a journal of its own and
// replicating it to the other (FTR/1, sync mode), two workers of the service "work"
// (fabric-test-tsp-worker, each given both brokers) and a Titanic client in this process that
// knows both brokers and posts keyed requests on one thread while another collects each reply
// (wait, then close). The active node is killed with -9 at a random moment, while posts are in
// flight, at least FABRIC_CHAOS_ITERATIONS times; each time the test measures the failover the
// client sees (from the reaped kill to the next "200"), restarts the killed node on its journal
// and waits until it stands by with its replica caught up. Then every request is collected within
// a bound, everything is stopped, and the Titanic checker (tests/support/titanic_checker.hpp)
// judges the run from the client's record, the service's journal and the journal of the node
// that was active last: every post answered "200" was executed and its right reply collected
// (none unknown to the server after a failover), each effect was applied once (the service's
// dedup marks), every request has one UUID, and nothing closed is left behind.
//
// The same run with fabric-test-titanic-node (tests/support/titanic_node_main.cpp, the same
// composition as fabric-broker) in place of the daemon: with FABRIC_TSP_REPLICA_SKIPS_APPLY=1 its
// replica acknowledges entries without applying them, and the checker must report the requests a
// failover then loses; without it, a few kills pass, which shows the test binary itself is sound.
//
// Environment:
//   FABRIC_CHAOS_ITERATIONS  kills of the active node in the chaos test (default 30)
//   FABRIC_CHAOS_SEED        seed of the kill moments (printed by every run)
#include "support/process.hpp"
#include "support/support.hpp"
#include "support/titanic_checker.hpp"

#include <fabric/context.hpp>
#include <fabric/titanic_client.hpp>

#include <gtest/gtest.h>

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using fabric::testing::check_titanic;
using fabric::testing::child_process;
using fabric::testing::free_tcp_port;
using fabric::testing::titanic_history;
using fabric::testing::titanic_report;
using clock_type = std::chrono::steady_clock;

#if defined(FABRIC_BROKER_TOOL) && defined(FABRIC_TEST_TSP_WORKER) && defined(FABRIC_TEST_TITANIC_NODE)
constexpr std::string_view broker_tool = FABRIC_BROKER_TOOL;
constexpr std::string_view worker_tool = FABRIC_TEST_TSP_WORKER;
constexpr std::string_view node_tool = FABRIC_TEST_TITANIC_NODE;
#else
constexpr std::string_view broker_tool;
constexpr std::string_view worker_tool;
constexpr std::string_view node_tool;
#endif

constexpr int default_kills = 30;
constexpr std::uint64_t default_seed = 0x7470632d63686173;  // "tpc-chas"
/// Posts a second at most: enough that posts are in flight at every kill, few enough that the
/// run stays short on a loaded machine.
constexpr int post_rate = 40;
/// How long each execution works, so that kills find requests in flight.
constexpr int work_ms = 5;
/// The client's attempt timeout: it bounds the failover the client sees (docs/ha.md, section 10).
constexpr auto client_timeout = 250ms;
/// Bounds: a process's start, a failover, a restarted node's catching up, and collecting every
/// request once the kills stop.
constexpr auto start_bound = 10s;
constexpr auto failover_bound = 15s;
constexpr auto standby_bound = 20s;
constexpr auto finish_bound = 40s;

int kills_from_environment(int fallback) {
  const auto n = fabric::testing::env_number("FABRIC_CHAOS_ITERATIONS");
  return n && *n > 0 ? static_cast<int>(std::min<unsigned long long>(*n, 100'000)) : fallback;
}

std::uint64_t seed_from_environment(std::uint64_t fallback) {
  return fabric::testing::env_number("FABRIC_CHAOS_SEED").value_or(fallback);
}

std::string reply_of(std::uint64_t n) { return "done:" + std::to_string(n); }

std::string tcp(std::uint16_t port) { return "tcp://127.0.0.1:" + std::to_string(port); }

/// The state a node's log last reported ("active", "passive", ...), from its complete lines
/// "binary star: <from> -> <to>, term <n>"; empty when it reported none.
std::string last_state(std::string_view err) {
  std::string state;
  for (std::size_t at = err.find("binary star: "); at != std::string_view::npos;
       at = err.find("binary star: ", at + 1)) {
    const auto eol = err.find('\n', at);
    if (eol == std::string_view::npos) break;  // a line not yet complete
    const auto arrow = err.find(" -> ", at);
    const auto comma = err.find(',', arrow);
    if (arrow < eol && comma < eol) state = std::string(err.substr(arrow + 4, comma - arrow - 4));
  }
  return state;
}

// ---------------------------------------------------------------------------------------------
// The processes of a run

/// Which program runs the nodes.
enum class node_program : std::uint8_t {
  daemon,       ///< fabric-broker --titanic DIR --role ...
  test_node,    ///< fabric-test-titanic-node, the same composition
  planted_bug,  ///< fabric-test-titanic-node with FABRIC_TSP_REPLICA_SKIPS_APPLY=1
};

/// The two nodes and the two workers of one run, with their journals in a temporary directory
/// (node-0, node-1 and the service's "work"). Children are killed and reaped before the directory
/// is removed, whatever way a test ends.
class pair_run {
 public:
  explicit pair_run(node_program program) : program_(program) {
    for (int i = 0; i < 2; ++i) {
      service_[i] = free_tcp_port();
      state_[i] = free_tcp_port();
      replication_[i] = free_tcp_port();
    }
  }
  ~pair_run() { kill_all(); }
  pair_run(const pair_run&) = delete;
  pair_run& operator=(const pair_run&) = delete;

  std::string endpoint(int i) const { return tcp(service_[i]); }
  std::filesystem::path journal(int i) const { return dir_.path() / ("node-" + std::to_string(i)); }
  std::filesystem::path work_journal() const { return dir_.path() / "work"; }

  /// Starts (or restarts) node `i` on its journal: 0 the primary, 1 the backup.
  void start(int i) {
    const int peer = 1 - i;
    std::vector<std::string> words;
    if (program_ == node_program::planted_bug) words = {"/usr/bin/env", "FABRIC_TSP_REPLICA_SKIPS_APPLY=1"};
    words.emplace_back(program_ == node_program::daemon ? broker_tool : node_tool);
    for (auto& w : std::vector<std::string>{"--bind", endpoint(i), "--role", i == 0 ? "primary" : "backup",
                                            "--state-bind", tcp(state_[i]), "--peer", tcp(state_[peer]),
                                            "--titanic", journal(i).string(), "--replication-bind",
                                            tcp(replication_[i]), "--peer-replication", tcp(replication_[peer]),
                                            "--replication", "sync"})
      words.push_back(std::move(w));
    if (program_ == node_program::daemon) {
      for (const char* w : {"--pair-heartbeat", "100ms", "--heartbeat", "100ms", "--log-level", "info"})
        words.emplace_back(w);
    } else {
      for (const char* w : {"--pair-heartbeat-ms", "100", "--heartbeat-ms", "100", "--lifetime", "300"})
        words.emplace_back(w);
    }
    nodes_[i] = std::make_unique<child_process>(words);
    ASSERT_FALSE(fabric::testing::listening_endpoint(*nodes_[i], start_bound).empty())
        << "node " << i << " did not start: " << nodes_[i]->err;
  }

  /// Starts the two workers: each knows both brokers and settles on the active one.
  void start_workers() {
    for (int i = 0; i < 2; ++i) {
      workers_[i] = std::make_unique<child_process>(std::vector<std::string>{
          std::string(worker_tool), "--broker", endpoint(i), "--failover", endpoint(1 - i), "--name",
          "w" + std::to_string(i + 1), "--journal", work_journal().string(), "--heartbeat-ms", "100",
          "--work-ms", std::to_string(work_ms), "--lifetime", "300"});
      ASSERT_TRUE(workers_[i]->read_until("ready\n", start_bound)) << "worker " << i << ": " << workers_[i]->err;
    }
  }

  /// Reads what the running children wrote so far, so that no pipe fills up and their logs are
  /// current.
  void drain() {
    for (auto* set : {&nodes_, &workers_})
      for (auto& p : *set)
        if (p) (void)p->read_until([](std::string_view) { return false; }, 1ms);
  }

  /// The node whose log says it is active, waited for within `bound`; -1 when none is.
  int active(std::chrono::milliseconds bound) {
    const auto deadline = clock_type::now() + bound;
    for (;;) {
      for (int i = 0; i < 2; ++i)
        if (nodes_[i] && last_state(nodes_[i]->err) == "active") return i;
      if (clock_type::now() >= deadline) return -1;
      for (auto& p : nodes_)
        if (p) (void)p->read_until([](std::string_view) { return false; }, 5ms);
    }
  }

  /// Waits until node `i` stands by: passive, with its replica caught up with the active node
  /// (the replica's own log line, docs/ha.md section 9.3).
  bool standing_by(int i, std::chrono::milliseconds bound) {
    child_process& p = *nodes_[i];
    return p.read_until(
        [&](std::string_view) {
          const auto passive = p.err.find("-> passive");
          return passive != std::string::npos && p.err.find("titanic replica: caught up", passive) != std::string::npos;
        },
        bound);
  }

  /// Kills node `i` with -9 and reaps it. Returns: when it was dead for sure.
  clock_type::time_point kill(int i) {
    nodes_[i]->signal(SIGKILL);
    const int status = nodes_[i]->finish(5s);
    const auto dead = clock_type::now();
    EXPECT_EQ(status, 128 + SIGKILL) << "node " << i << " ended otherwise than by the kill: " << nodes_[i]->err;
    nodes_[i].reset();
    return dead;
  }

  void kill_all() {
    for (auto& p : workers_) p.reset();  // the destructors kill and reap
    for (auto& p : nodes_) p.reset();
  }

  /// What node `i` logged, for a failure message.
  std::string log_of(int i) const { return nodes_[i] ? nodes_[i]->err : std::string("(not running)"); }

 private:
  node_program program_;
  fabric::support::temp_dir dir_{"fabric-tpc-"};
  std::uint16_t service_[2] = {}, state_[2] = {}, replication_[2] = {};
  std::unique_ptr<child_process> nodes_[2];
  std::unique_ptr<child_process> workers_[2];
};

// ---------------------------------------------------------------------------------------------
// The client: posts on one thread, collects on another

/// Posts requests 1, 2, ... at `post_rate` a second at most until finish(), and collects each in
/// the order posted: wait() until it is final, then close(). Both know both brokers. Each post
/// answered "200" is time-stamped, for the failover measurement.
class pair_client {
 public:
  pair_client(const std::string& first, const std::string& second) {
    options_.broker = first;
    options_.failover = {second};
    options_.timeout = client_timeout;
    options_.retries = 40;  // 10 s of failover at most
    options_.keys = fabric::titanic::key_mode::keyed;
    options_.correlate = true;
    options_.poll_interval = 20ms;
    options_.poll_interval_max = 200ms;
    poster_ = std::thread([this] { post_all(); });
    collector_ = std::thread([this] { collect_all(); });
  }
  ~pair_client() { (void)finish(clock_type::now()); }
  pair_client(const pair_client&) = delete;
  pair_client& operator=(const pair_client&) = delete;

  /// The time of the first "200" after `after`, waited for within `bound`.
  std::optional<clock_type::time_point> stored_after(clock_type::time_point after, std::chrono::milliseconds bound) {
    std::unique_lock lock(mutex_);
    if (!changed_.wait_for(lock, bound, [&] { return last_stored_ > after; })) return std::nullopt;
    return last_stored_;
  }

  /// Stops posting, waits until everything posted was collected or `deadline`, stops the
  /// threads. Returns: true when all were collected in time.
  bool finish(clock_type::time_point deadline) {
    {
      std::unique_lock lock(mutex_);
      stop_posting_ = true;
      changed_.notify_all();
      (void)changed_.wait_until(lock, deadline, [this] { return posting_done_ && queue_.empty() && !collecting_; });
      stop_ = true;
    }
    changed_.notify_all();
    if (poster_.joinable()) poster_.join();
    if (collector_.joinable()) collector_.join();
    std::lock_guard lock(mutex_);
    return posting_done_ && queue_.empty() && !collecting_;
  }

  /// What the client did, for the checker; valid after finish().
  void record(titanic_history& h) const {
    std::lock_guard lock(mutex_);
    for (const auto& [n, id] : uuids_) h.posted(n, id);
    for (const auto n : failed_posts_) h.post_failed(n);
    for (const auto& [n, reply] : replies_) h.collected(n, reply);
    for (const auto& [n, reason] : given_up_) h.given_up(n, reason);
    for (const auto n : unknown_) h.unknown(n);
    for (const auto n : closed_) h.closed(n);
  }
  std::uint64_t posted() const {
    std::lock_guard lock(mutex_);
    return uuids_.size();
  }
  std::uint64_t post_retries() const {
    std::lock_guard lock(mutex_);
    return post_retries_;
  }

 private:
  void post_all() {
    fabric::context ctx;
    fabric::titanic::client c(ctx, options_);
    const auto started = clock_type::now();
    for (std::uint64_t n = 1;; ++n) {
      {
        std::lock_guard lock(mutex_);
        if (stop_posting_) break;
      }
      // The pace spreads the posts over the kills; it synchronises nothing.
      std::this_thread::sleep_until(started + std::chrono::milliseconds(1000 * (n - 1) / post_rate));
      auto id = c.post("work", fabric::message(std::to_string(n)));
      const auto now = clock_type::now();
      std::lock_guard lock(mutex_);
      if (id) {
        uuids_[n] = fabric::titanic::to_string(*id);
        queue_.emplace_back(n, *id);
        last_stored_ = now;
      } else {
        failed_posts_.push_back(n);
      }
      post_retries_ = c.transport_stats().retries;
      changed_.notify_all();
    }
    std::lock_guard lock(mutex_);
    posting_done_ = true;
    changed_.notify_all();
  }

  bool stopping() {
    std::lock_guard lock(mutex_);
    return stop_;
  }

  void collect_all() {
    fabric::context ctx;
    fabric::titanic::client_options o = options_;
    o.retries = 8;  // a collection asks again anyway, and notices a stop sooner
    fabric::titanic::client c(ctx, o);
    for (;;) {
      std::pair<std::uint64_t, fabric::titanic::request_id> next;
      {
        std::unique_lock lock(mutex_);
        changed_.wait(lock, [this] { return stop_ || !queue_.empty() || posting_done_; });
        if (queue_.empty() || stop_) return;
        next = queue_.front();
        collecting_ = true;
      }
      const auto [n, id] = next;
      std::optional<fabric::titanic::reply> got;
      while (!got && !stopping()) {
        auto r = c.wait(id, 2s);
        if (r) got = std::move(*r);  // errors: a failover in progress; ask again
      }
      bool closed = false;
      while (got && !closed && !stopping()) closed = c.close(id).has_value();
      std::lock_guard lock(mutex_);
      if (got) {
        using fabric::titanic::reply_state;
        if (got->state == reply_state::ready) {
          replies_.emplace_back(n, got->body.empty() ? std::string() : std::string(got->body.view(0)));
        } else if (got->state == reply_state::unknown) {
          unknown_.push_back(n);
        } else {
          given_up_.emplace_back(n, "500 " + got->reason);
        }
      }
      if (closed) closed_.push_back(n);
      if (got && closed) queue_.pop_front();
      collecting_ = false;
      changed_.notify_all();
      if (!got || !closed) return;  // stopped before the end
    }
  }

  fabric::titanic::client_options options_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<std::pair<std::uint64_t, fabric::titanic::request_id>> queue_;
  std::map<std::uint64_t, std::string> uuids_;
  std::vector<std::uint64_t> failed_posts_;
  std::vector<std::pair<std::uint64_t, std::string>> replies_;
  std::vector<std::pair<std::uint64_t, std::string>> given_up_;
  std::vector<std::uint64_t> unknown_;
  std::vector<std::uint64_t> closed_;
  std::uint64_t post_retries_ = 0;
  clock_type::time_point last_stored_{};
  bool stop_posting_ = false;
  bool posting_done_ = false;
  bool collecting_ = false;
  bool stop_ = false;
  std::thread poster_;
  std::thread collector_;
};

// ---------------------------------------------------------------------------------------------
// The chaos run

/// What one run saw.
struct outcome {
  int kills = 0;
  std::vector<std::chrono::milliseconds> failovers;
  bool all_collected = false;
  std::uint64_t post_retries = 0;
  std::size_t held_by_standby = 0;
  titanic_report report;
};

/// `kills` rounds of: posts for a random moment, the active node killed -9, the failover timed,
/// the killed node restarted and waited for until it stands by caught up. Then every request is
/// collected and the run judged on the journal of the node active last.
outcome chaos(node_program program, int kills, std::uint64_t seed) {
  outcome out;
  std::mt19937_64 rng(seed);
  pair_run run(program);
  [&] {
    ASSERT_NO_FATAL_FAILURE(run.start(0));
    ASSERT_NO_FATAL_FAILURE(run.start(1));
    ASSERT_EQ(run.active(start_bound), 0) << run.log_of(0) << run.log_of(1);
    ASSERT_TRUE(run.standing_by(1, standby_bound)) << "the backup did not stand by: " << run.log_of(1);
    ASSERT_NO_FATAL_FAILURE(run.start_workers());
    pair_client client(run.endpoint(0), run.endpoint(1));
    ASSERT_TRUE(client.stored_after(clock_type::time_point{}, failover_bound)) << "no post was stored";
    int last_active = 0;
    for (int round = 0; round < kills; ++round) {
      SCOPED_TRACE("seed " + std::to_string(seed) + ", round " + std::to_string(round));
      run.drain();
      const int active = run.active(start_bound);
      ASSERT_NE(active, -1) << "no node is active: " << run.log_of(0) << run.log_of(1);
      // A random moment in the posts' flow: the elapsed time is the subject, not a synchronisation.
      std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(50, 400)(rng)));
      const auto dead_at = run.kill(active);
      ++out.kills;
      const auto stored = client.stored_after(dead_at, failover_bound);
      ASSERT_TRUE(stored) << "no post was stored within " << failover_bound.count() << " s of the kill of node "
                          << active << ": " << run.log_of(1 - active);
      out.failovers.push_back(std::chrono::duration_cast<std::chrono::milliseconds>(*stored - dead_at));
      last_active = 1 - active;
      ASSERT_NO_FATAL_FAILURE(run.start(active));
      ASSERT_TRUE(run.standing_by(active, standby_bound))
          << "node " << active << " did not stand by caught up after its restart: " << run.log_of(active);
    }
    run.drain();
    ASSERT_EQ(run.active(start_bound), last_active) << run.log_of(0) << run.log_of(1);
    out.all_collected = client.finish(clock_type::now() + finish_bound);
    out.post_retries = client.post_retries();
    run.kill_all();
    titanic_history h;
    client.record(h);
    const std::string work = fabric::testing::read_service_journal(h, run.work_journal());
    ASSERT_TRUE(work.empty()) << work;
    const std::string truth = fabric::testing::read_titanic_journal(h, run.journal(last_active));
    ASSERT_TRUE(truth.empty()) << truth;
    titanic_history standby;
    const std::string other =
        fabric::testing::read_titanic_journal(standby, run.journal(1 - last_active), &out.held_by_standby);
    ASSERT_TRUE(other.empty()) << other;
    out.report = check_titanic(h, reply_of);
  }();
  return out;
}

/// The failover distribution, printed and recorded.
void report_failovers(const outcome& o, std::string_view what) {
  if (o.failovers.empty()) return;
  std::vector<std::chrono::milliseconds> sorted = o.failovers;
  std::sort(sorted.begin(), sorted.end());
  const auto at = [&](double q) { return sorted[static_cast<std::size_t>(q * static_cast<double>(sorted.size() - 1))]; };
  std::printf("[ chaos    ] %s: failover, client-visible (reaped kill to next \"200\"), %zu kills: min %lld ms, "
              "median %lld ms, p90 %lld ms, max %lld ms; %zu requests posted (%llu post retries), %zu executions "
              "(%zu re-dispatches)\n",
              std::string(what).c_str(), sorted.size(), static_cast<long long>(sorted.front().count()),
              static_cast<long long>(at(0.5).count()), static_cast<long long>(at(0.9).count()),
              static_cast<long long>(sorted.back().count()), o.report.posted,
              static_cast<unsigned long long>(o.post_retries), o.report.executions, o.report.duplicate_executions);
  std::fflush(stdout);
  ::testing::Test::RecordProperty("failover_min_ms", static_cast<int>(sorted.front().count()));
  ::testing::Test::RecordProperty("failover_median_ms", static_cast<int>(at(0.5).count()));
  ::testing::Test::RecordProperty("failover_p90_ms", static_cast<int>(at(0.9).count()));
  ::testing::Test::RecordProperty("failover_max_ms", static_cast<int>(sorted.back().count()));
  ::testing::Test::RecordProperty("kills", o.kills);
}

class TitanicPairChaos : public ::testing::Test {
 protected:
  void SetUp() override {
    if (broker_tool.empty() || worker_tool.empty() || node_tool.empty())
      GTEST_SKIP() << "fabric-broker or the test programs are not built";
  }
};

TEST_F(TitanicPairChaos, EveryStoredRequestIsExecutedOnceAndCollectedThroughThirtyKillsOfTheActiveNode) {
  const int kills = kills_from_environment(default_kills);
  const std::uint64_t seed = seed_from_environment(default_seed);
  std::printf("[ chaos    ] titanic pair: %d kills of the active fabric-broker --titanic, seed %llu "
              "(FABRIC_CHAOS_SEED, FABRIC_CHAOS_ITERATIONS)\n",
              kills, static_cast<unsigned long long>(seed));
  std::fflush(stdout);
  const outcome o = chaos(node_program::daemon, kills, seed);
  if (HasFatalFailure()) return;
  report_failovers(o, "titanic pair");
  EXPECT_EQ(o.kills, kills);
  EXPECT_GE(o.kills, std::min(kills, default_kills));
  EXPECT_EQ(o.failovers.size(), static_cast<std::size_t>(o.kills));
  EXPECT_TRUE(o.all_collected) << "not all collected within " << finish_bound.count() << " s: " << o.report.describe();
  EXPECT_TRUE(o.report.ok()) << "seed " << seed << ": " << o.report.describe();
  EXPECT_EQ(o.report.failed_posts, 0u) << o.report.describe();
  EXPECT_EQ(o.report.collected, o.report.posted) << o.report.describe();
  EXPECT_GE(o.report.effects, o.report.posted) << o.report.describe();
  // Well beyond the goal (two expiries, 400 ms here): a failover stuck on something.
  for (const auto f : o.failovers) EXPECT_LT(f, 5s);
}

TEST_F(TitanicPairChaos, TheCheckerCatchesAReplicaThatAcknowledgesWithoutApplying) {
  const std::uint64_t seed = seed_from_environment(default_seed) + 1;
  const outcome o = chaos(node_program::planted_bug, 3, seed);
  if (HasFatalFailure()) return;
  report_failovers(o, "titanic pair, replica bug planted");
  EXPECT_FALSE(o.report.ok()) << "the checker missed the planted bug: " << o.report.describe();
  EXPECT_GT(o.report.lost, 0u) << "requests answered 200 must be unknown after a failover: " << o.report.describe();
  EXPECT_EQ(o.report.double_effects, 0u) << o.report.describe();
  const std::string d = o.report.describe();
  std::printf("[ chaos    ] planted bug: %s\n", d.substr(0, d.find('\n')).c_str());
}

TEST_F(TitanicPairChaos, TheTestNodeWithoutTheBugLosesNothing) {
  const std::uint64_t seed = seed_from_environment(default_seed) + 2;
  const outcome o = chaos(node_program::test_node, 4, seed);
  if (HasFatalFailure()) return;
  report_failovers(o, "titanic pair, test node");
  EXPECT_EQ(o.kills, 4);
  EXPECT_TRUE(o.all_collected) << o.report.describe();
  EXPECT_TRUE(o.report.ok()) << o.report.describe();
  EXPECT_EQ(o.report.failed_posts, 0u) << o.report.describe();
}

// ---------------------------------------------------------------------------------------------
// The checker's new finding: a request unknown to the server after its "200"

TEST(TitanicPairCheckerTest, ReportsARequestUnknownAfterItsStoreAsLost) {
  titanic_history h;
  for (std::uint64_t n = 1; n <= 2; ++n) {
    h.posted(n, std::string(31, '0') + std::to_string(n));
    h.closed(n);
  }
  h.executed("w1", 1);
  h.applied(1, "w1");
  h.collected(1, reply_of(1));
  h.unknown(2);
  const titanic_report r = check_titanic(h, reply_of);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.lost, 1u) << r.describe();
  EXPECT_EQ(r.given_up, 0u) << r.describe();
}

}  // namespace
