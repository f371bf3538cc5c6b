// Kill -9 chaos of Titanic (9/TSP): the broker (fabric-broker), the Titanic daemon
// (fabric-titanic) and two workers of the service "work" (fabric-test-tsp-worker,
// tests/support/tsp_worker_main.cpp), each in a process of its own, over one ipc endpoint. A
// test client in this process (fabric::titanic::client, keyed posts, generous retries) posts
// numbered requests on one thread and collects each reply (wait, then close) on another, while
// the test kills the Titanic daemon -9 at random moments and restarts it at once on the same
// journal (at least FABRIC_CHAOS_ITERATIONS times), and now and then kills the broker or a worker
// and restarts it on the same endpoint. Once the kills stop, every request must be collected
// within a bound; then, all processes gone, the Titanic checker (tests/support/titanic_checker.hpp)
// judges the run from the client's record, the service's journal (every execution, and each
// effect applied once under the journal's dedup marks) and the Titanic journal (read-only): every
// request posted was executed and its right reply collected, no effect was applied twice, every
// request has exactly one UUID and the server holds no request the client does not know, and
// nothing closed or posted was left behind. Re-dispatches after a kill are counted and printed.
//
// A second pair of tests shows the checker catches a planted bug (src/reliability/tsp_faults.hpp),
// with fabric-test-tsp-titanic (tests/support/tsp_titanic_main.cpp) in place of the daemon: the
// first answers to keyed stores are dropped, so the client posts them again; a correct server
// finds the key and answers with the first UUID, the broken one (it ignores keys) stores each
// retry as a new request, and the first copies stay behind as orphans, executed for nothing.
//
// Environment:
//   FABRIC_CHAOS_ITERATIONS  kills of the Titanic process in the chaos test (default 60)
//   FABRIC_CHAOS_SEED        seed of the schedule of kills (printed by every run)
//   FABRIC_TSP_IGNORE_KEYS=1 runs fabric-test-tsp-titanic with the bug planted in place of the
//                            daemon (it reads the variable): the chaos test then finds orphans
//                            whenever a kill loses a "200"
#include "support/support.hpp"
#include "support/process.hpp"
#include "support/titanic_checker.hpp"

#include <fabric/context.hpp>
#include <fabric/journal.hpp>
#include <fabric/titanic.hpp>
#include <fabric/titanic_client.hpp>
#include <fabric_support/endpoint.hpp>

#include <gtest/gtest.h>

#include <signal.h>

#include <atomic>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
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
using fabric::testing::titanic_history;
using fabric::testing::titanic_report;
using clock_type = std::chrono::steady_clock;

constexpr int default_kills = 60;
constexpr std::uint64_t default_seed = 0x7473702d63686173;  // "tsp-chas"
/// Requests for each kill of the Titanic process, posted at `post_rate` a second at most: enough
/// that posts go on through most of the kills.
constexpr std::uint64_t requests_per_kill = 10;
constexpr int post_rate = 30;
/// How long each execution of a request works: long enough that most kills of Titanic find
/// requests in flight, which the restarted server dispatches again.
constexpr int work_ms = 20;
/// Requests Titanic dispatches at once: few enough that the workers answer each well within the
/// dispatch timeout (1 s), so that a dispatch times out only when its reply was lost.
constexpr int max_in_flight = 8;
/// The bound on a process's start, and on collecting every request once the kills stop.
constexpr auto start_bound = 10s;
constexpr auto finish_bound = 60s;
const std::vector<std::string> worker_names = {"w1", "w2"};

using fabric::testing::env_number;

int kills_from_environment() {
  const auto n = env_number("FABRIC_CHAOS_ITERATIONS");
  return n && *n > 0 ? static_cast<int>(std::min<unsigned long long>(*n, 100'000)) : default_kills;
}

std::uint64_t seed_from_environment() { return env_number("FABRIC_CHAOS_SEED").value_or(default_seed); }

bool bug_planted_by_environment() {
  const char* v = std::getenv("FABRIC_TSP_IGNORE_KEYS");
  return v != nullptr && std::string_view(v) == "1";
}

std::string reply_of(std::uint64_t n) { return "done:" + std::to_string(n); }

std::optional<std::uint64_t> number(std::string_view text) {
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return v;
}

// ---------------------------------------------------------------------------------------------
// The processes of a run

/// The broker, the Titanic process and the workers of one run, in a temporary directory: the
/// broker's socket, the Titanic journal and the service's journal. Children are killed and reaped
/// before the directory is removed, whatever way a test ends.
class titanic_run {
 public:
  /// `titanic`: the Titanic program and its flags beyond --broker and --journal.
  explicit titanic_run(std::vector<std::string> titanic)
      : titanic_(std::move(titanic)), endpoint_("ipc://" + (dir_.path() / "broker.sock").string()) {}
  ~titanic_run() { kill_all(); }
  titanic_run(const titanic_run&) = delete;
  titanic_run& operator=(const titanic_run&) = delete;

  const std::string& endpoint() const noexcept { return endpoint_; }

  void start_broker() {
    broker_.emplace(std::vector<std::string>{FABRIC_BROKER_TOOL, "--bind", endpoint_, "--heartbeat", "100ms",
                                             "--log-level", "warning"});
    ASSERT_TRUE(broker_->read_until("listening on", start_bound)) << "the broker did not start: " << broker_->err;
  }
  void start_titanic() {
    std::vector<std::string> words = titanic_;
    words.insert(words.begin() + 1, {"--broker", endpoint_, "--journal", (dir_.path() / "titanic").string()});
    titanic_process_.emplace(words);
    ASSERT_TRUE(titanic_process_->read_until("serving\n", start_bound))
        << "the Titanic process did not start: " << titanic_process_->err;
  }
  void start_worker(const std::string& name, int work = 0) {
    auto& slot = workers_[name];
    slot.emplace(std::vector<std::string>{FABRIC_TEST_TSP_WORKER, "--broker", endpoint_, "--name", name, "--journal",
                                          (dir_.path() / "work").string(), "--heartbeat-ms", "100", "--work-ms",
                                          std::to_string(work), "--lifetime", "300"});
    ASSERT_TRUE(slot->read_until("ready\n", start_bound)) << "worker " << name << " did not start: " << slot->err;
  }

  void kill_broker() { ASSERT_NO_FATAL_FAILURE(kill(broker_, "broker")); }
  void kill_titanic() { ASSERT_NO_FATAL_FAILURE(kill(titanic_process_, "Titanic process")); }
  void kill_worker(const std::string& name) { ASSERT_NO_FATAL_FAILURE(kill(workers_[name], "worker " + name)); }

  void kill_all() {
    titanic_process_.reset();  // the destructors kill and reap
    workers_.clear();
    broker_.reset();
  }

  /// Once every child is gone: the service's executions and effects (its journal), and the
  /// requests the Titanic journal still holds, both opened read-only.
  void gather(titanic_history& h) {
    ASSERT_FALSE(titanic_process_ || broker_) << "gather() reads the journals of processes that are gone";
    fabric::journal_options o;
    o.read_only = true;
    if (std::filesystem::exists(dir_.path() / "work")) {
      fabric::journal work = fabric::journal::open(dir_.path() / "work", o);
      for (const std::string_view stream : {"executions", "effects"}) {
        auto read = work.replay(stream, 1, [&](const fabric::journal_record& r) {
          const auto space = r.payload.find(' ');
          const std::string_view text = r.payload;
          if (stream == "executions") {
            const auto n = number(text.substr(space == std::string::npos ? text.size() : space + 1));
            EXPECT_TRUE(n) << "a bad execution record: " << r.payload;
            if (n) h.executed(r.payload.substr(0, space), *n);
          } else {
            const auto n = number(text.substr(0, space));
            EXPECT_TRUE(n && space != std::string::npos) << "a bad effect record: " << r.payload;
            if (n && space != std::string::npos) h.applied(*n, r.payload.substr(space + 1));
          }
          return true;
        });
        ASSERT_TRUE(read) << read.error().message();
      }
    }
    fabric::journal t = fabric::journal::open(dir_.path() / "titanic", o);
    std::string after;
    for (;;) {
      auto rows = t.table_entries(fabric::titanic::service::state_table, after, 1000);
      ASSERT_TRUE(rows) << rows.error().message();
      for (const auto& [key, value] : *rows) {
        ASSERT_EQ(key.size(), 16u) << "a bad tsp.state key";
        fabric::titanic::request_id id;
        std::memcpy(id.bytes.data(), key.data(), key.size());
        h.held_by_server(fabric::titanic::to_string(id));
      }
      if (rows->size() < 1000) break;
      after = rows->back().first;
    }
  }

 private:
  void kill(std::optional<child_process>& p, const std::string& who) {
    ASSERT_TRUE(p) << who << " is not running";
    p->signal(SIGKILL);
    const int status = p->finish(5s);
    ASSERT_EQ(status, 128 + SIGKILL) << "the " << who << " ended otherwise than by the kill: " << p->err;
    p.reset();
  }

  fabric::support::temp_dir dir_{"fabric-tsp-"};
  std::vector<std::string> titanic_;
  std::string endpoint_;
  std::optional<child_process> broker_;
  std::optional<child_process> titanic_process_;
  std::map<std::string, std::optional<child_process>> workers_;
};

// ---------------------------------------------------------------------------------------------
// The test client: posts on one thread, collects on another

/// Posts requests 1..count (at `rate` a second at most, 0 for no limit) and collects each reply
/// in the order posted: wait() until it is final, then close(). Every call is retried until it
/// succeeds or the deadline given to finish() passes, so a post or a collection survives the
/// restarts of Titanic and of the broker.
class test_client {
 public:
  test_client(std::string broker, std::uint64_t count, int rate, std::chrono::milliseconds timeout)
      : count_(count), rate_(rate) {
    options_.broker = std::move(broker);
    options_.timeout = timeout;
    options_.retries = 30;
    options_.keys = fabric::titanic::key_mode::keyed;
    options_.correlate = true;  // fabric's broker: an answer to an abandoned attempt is no answer
    options_.poll_interval = 20ms;
    options_.poll_interval_max = 200ms;
    poster_ = std::thread([this] { post_all(); });
    collector_ = std::thread([this] { collect_all(); });
  }
  ~test_client() { (void)finish(clock_type::now()); }
  test_client(const test_client&) = delete;
  test_client& operator=(const test_client&) = delete;

  /// Waits until every request was posted and collected, or `deadline`; stops the threads.
  /// Returns: true when all were collected in time.
  bool finish(clock_type::time_point deadline) {
    {
      std::unique_lock lock(mutex_);
      (void)changed_.wait_until(lock, deadline,
                                [this] { return posting_done_ && queue_.empty() && !collecting_; });
      stop_ = true;
    }
    changed_.notify_all();
    if (poster_.joinable()) poster_.join();
    if (collector_.joinable()) collector_.join();
    std::lock_guard lock(mutex_);
    return posting_done_ && queue_.empty() && !collecting_ && collected_ == posted_;
  }

  /// What the client did, for the checker; valid after finish().
  void record(titanic_history& h) const {
    std::lock_guard lock(mutex_);
    for (const auto& [n, id] : uuids_) h.posted(n, id);
    for (const auto n : failed_posts_) h.post_failed(n);
    for (const auto& [n, reply] : replies_) h.collected(n, reply);
    for (const auto& [n, reason] : given_up_) h.given_up(n, reason);
    for (const auto n : closed_) h.closed(n);
  }
  std::uint64_t post_retries() const noexcept { return post_retries_; }
  std::uint64_t posted() const {
    std::lock_guard lock(mutex_);
    return posted_;
  }

 private:
  bool stopping() {
    std::lock_guard lock(mutex_);
    return stop_;
  }

  void post_all() {
    fabric::context ctx;
    fabric::titanic::client c(ctx, options_);
    const auto started = clock_type::now();
    const auto rate = static_cast<std::uint64_t>(rate_);
    for (std::uint64_t n = 1; n <= count_ && !stopping(); ++n) {
      // The pace of the posts spreads them over the kills; it synchronises nothing.
      if (rate > 0) std::this_thread::sleep_until(started + std::chrono::milliseconds(1000 * (n - 1) / rate));
      auto id = c.post("work", fabric::message(std::to_string(n)));
      std::lock_guard lock(mutex_);
      if (id) {
        uuids_[n] = fabric::titanic::to_string(*id);
        queue_.emplace_back(n, *id);
        ++posted_;
      } else {
        failed_posts_.push_back(n);
      }
      changed_.notify_all();
    }
    post_retries_ = c.transport_stats().retries;
    std::lock_guard lock(mutex_);
    posting_done_ = true;
    changed_.notify_all();
  }

  void collect_all() {
    fabric::context ctx;
    // Fewer retries than a post: a collection asks again anyway, and notices a stop sooner.
    fabric::titanic::client_options o = options_;
    o.retries = 2;
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
        if (r) got = std::move(*r);  // errors: the broker or Titanic is down; ask again
      }
      bool closed = false;
      while (got && !closed && !stopping()) closed = c.close(id).has_value();
      std::lock_guard lock(mutex_);
      if (got) {
        using fabric::titanic::reply_state;
        if (got->state == reply_state::ready) {
          replies_.emplace_back(n, got->body.empty() ? std::string() : std::string(got->body.view(0)));
        } else {
          given_up_.emplace_back(n, got->state == reply_state::failed ? "500 " + got->reason : "400 unknown");
        }
        ++collected_;
      }
      if (closed) closed_.push_back(n);
      if (got && closed) queue_.pop_front();
      collecting_ = false;
      changed_.notify_all();
      if (!got || !closed) return;  // stopped before the end
    }
  }

  const std::uint64_t count_;
  const int rate_;
  fabric::titanic::client_options options_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<std::pair<std::uint64_t, fabric::titanic::request_id>> queue_;
  std::map<std::uint64_t, std::string> uuids_;
  std::vector<std::uint64_t> failed_posts_;
  std::vector<std::pair<std::uint64_t, std::string>> replies_;
  std::vector<std::pair<std::uint64_t, std::string>> given_up_;
  std::vector<std::uint64_t> closed_;
  std::uint64_t posted_ = 0;
  std::uint64_t collected_ = 0;
  std::atomic<std::uint64_t> post_retries_{0};
  bool posting_done_ = false;
  bool collecting_ = false;
  bool stop_ = false;
  std::thread poster_;
  std::thread collector_;
};

// ---------------------------------------------------------------------------------------------
// The chaos run

std::vector<std::string> titanic_daemon() {
  return {FABRIC_TITANIC_TOOL, "--dispatch-timeout", "1s", "--heartbeat", "100ms", "--max-attempts", "1000",
          "--max-in-flight", std::to_string(max_in_flight), "--retry-base", "100ms", "--retry-max", "1s",
          "--log-level", "warning"};
}

TEST(TitanicChaosTest, EveryRequestIsAnsweredOnceThroughTitanicBrokerAndWorkerKills) {
  const int kills = kills_from_environment();
  const std::uint64_t seed = seed_from_environment();
  const std::uint64_t count = static_cast<std::uint64_t>(kills) * requests_per_kill;
  const bool planted = bug_planted_by_environment();
  std::printf("[ chaos    ] titanic: %d kills of %s, %llu requests, seed %llu (FABRIC_CHAOS_SEED, "
              "FABRIC_CHAOS_ITERATIONS)\n",
              kills, planted ? "fabric-test-tsp-titanic with the bug planted" : "fabric-titanic",
              static_cast<unsigned long long>(count), static_cast<unsigned long long>(seed));
  std::fflush(stdout);
  std::mt19937_64 rng(seed);
  auto between = [&rng](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };

  std::vector<std::string> titanic = titanic_daemon();
  if (planted)
    titanic = {FABRIC_TEST_TSP_TITANIC, "--dispatch-timeout-ms", "1000", "--max-in-flight",
               std::to_string(max_in_flight), "--lifetime", "300"};
  titanic_run run(titanic);
  ASSERT_NO_FATAL_FAILURE(run.start_broker());
  ASSERT_NO_FATAL_FAILURE(run.start_titanic());
  for (const auto& name : worker_names) ASSERT_NO_FATAL_FAILURE(run.start_worker(name, work_ms));
  const auto started = clock_type::now();
  titanic_report r;
  {
    test_client client(run.endpoint(), count, post_rate, 1000ms);
    int titanic_kills = 0;
    int broker_kills = 0;
    int worker_kills = 0;
    while (titanic_kills < kills) {
      SCOPED_TRACE("seed " + std::to_string(seed) + ", after " + std::to_string(titanic_kills) + " Titanic kills");
      // A random moment in Titanic's work: the elapsed time is the subject here.
      std::this_thread::sleep_for(std::chrono::milliseconds(between(50, 450)));
      const int victim = between(0, 11);  // 0-8: Titanic, 9: the broker, 10-11: a worker
      if (victim <= 8) {
        ASSERT_NO_FATAL_FAILURE(run.kill_titanic());
        ++titanic_kills;
        ASSERT_NO_FATAL_FAILURE(run.start_titanic());
      } else if (victim == 9) {
        ASSERT_NO_FATAL_FAILURE(run.kill_broker());
        ++broker_kills;
        ASSERT_NO_FATAL_FAILURE(run.start_broker());
      } else {
        const std::string& name = worker_names[static_cast<std::size_t>(victim - 10)];
        ASSERT_NO_FATAL_FAILURE(run.kill_worker(name));
        ++worker_kills;
        ASSERT_NO_FATAL_FAILURE(run.start_worker(name, work_ms));
      }
    }
    const double chaos_s = std::chrono::duration<double>(clock_type::now() - started).count();
    const bool all = client.finish(clock_type::now() + finish_bound);
    const double finish_s = std::chrono::duration<double>(clock_type::now() - started).count() - chaos_s;
    run.kill_all();
    titanic_history h;
    client.record(h);
    ASSERT_NO_FATAL_FAILURE(run.gather(h));
    r = check_titanic(h, reply_of);
    std::printf("[ chaos    ] titanic: %d kills of Titanic, %d of the broker, %d of workers in %.1f s, all collected "
                "in %.1f s more; %zu requests posted (%llu post retries), %zu collected, %zu executions, %zu "
                "duplicate deliveries (re-dispatches), %zu effects\n",
                titanic_kills, broker_kills, worker_kills, chaos_s, finish_s, r.posted,
                static_cast<unsigned long long>(client.post_retries()), r.collected, r.executions,
                r.duplicate_executions, r.effects);
    EXPECT_TRUE(all) << "the requests were not all collected within " << finish_bound.count() << " s (seed " << seed
                     << "): " << r.describe();
    EXPECT_GE(titanic_kills, 50) << "a CI run kills the Titanic process at least 50 times";
  }
  EXPECT_TRUE(r.ok()) << "seed " << seed << ": " << r.describe();
  EXPECT_EQ(r.posted, count) << "posts failed: " << r.describe();
  EXPECT_EQ(r.failed_posts, 0u);
}

// ---------------------------------------------------------------------------------------------
// The planted bug: a server that ignores client keys, and answers lost on the way

constexpr std::uint64_t planted_count = 8;
constexpr std::uint64_t dropped_answers = 4;

titanic_report post_with_lost_answers(bool ignore_keys) {
  titanic_report report;
  std::vector<std::string> titanic = {FABRIC_TEST_TSP_TITANIC, "--dispatch-timeout-ms", "1000", "--lifetime", "120",
                                      "--drop-stored-answers", std::to_string(dropped_answers)};
  if (ignore_keys) titanic.emplace_back("--ignore-keys");
  titanic_run run(titanic);
  [&] {
    ASSERT_NO_FATAL_FAILURE(run.start_broker());
    ASSERT_NO_FATAL_FAILURE(run.start_titanic());
    ASSERT_NO_FATAL_FAILURE(run.start_worker("w1"));
    titanic_history h;
    {
      test_client client(run.endpoint(), planted_count, 0, 300ms);
      ASSERT_TRUE(client.finish(clock_type::now() + 30s)) << "the requests were not all collected";
      EXPECT_GE(client.post_retries(), dropped_answers) << "every dropped answer costs the client a retry";
      client.record(h);
    }
    run.kill_all();
    ASSERT_NO_FATAL_FAILURE(run.gather(h));
    report = check_titanic(h, reply_of);
  }();
  return report;
}

TEST(TitanicPlantedBugTest, WithoutTheBugARetriedPostGetsItsFirstUuid) {
  const titanic_report r = post_with_lost_answers(false);
  if (HasFatalFailure()) return;
  EXPECT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(r.posted, planted_count);
  EXPECT_EQ(r.orphans, 0u);
  EXPECT_EQ(r.duplicate_executions, 0u) << r.describe();
}

TEST(TitanicPlantedBugTest, TheCheckerCatchesAServerThatStoresARetriedPostAgain) {
  const titanic_report r = post_with_lost_answers(true);
  if (HasFatalFailure()) return;
  EXPECT_FALSE(r.ok()) << "the checker missed the planted bug: " << r.describe();
  EXPECT_EQ(r.orphans, dropped_answers) << r.describe();
  EXPECT_EQ(r.double_effects, 0u) << "the service's dedup marks hold even so: " << r.describe();
  EXPECT_EQ(r.lost, 0u) << r.describe();
  std::printf("[ chaos    ] planted bug: %s\n", r.describe().substr(0, r.describe().find('\n')).c_str());
}

// ---------------------------------------------------------------------------------------------
// The checker itself

titanic_history clean_history() {
  titanic_history h;
  for (std::uint64_t n = 1; n <= 3; ++n) {
    const std::string id = std::string(31, '0') + std::to_string(n);
    h.posted(n, id);
    h.executed("w1", n);
    h.applied(n, "w1");
    h.collected(n, reply_of(n));
    h.closed(n);
  }
  h.executed("w2", 2);  // a re-dispatch after a restart: a figure, not a finding
  return h;
}

TEST(TitanicCheckerTest, AcceptsACleanRunAndCountsRedispatches) {
  const titanic_report r = check_titanic(clean_history(), reply_of);
  EXPECT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(r.posted, 3u);
  EXPECT_EQ(r.duplicate_executions, 1u);
}

TEST(TitanicCheckerTest, ReportsOrphansAndRequestsLeftAfterTheirClose) {
  titanic_history h = clean_history();
  h.held_by_server(std::string(31, '0') + "9");
  h.held_by_server(std::string(31, '0') + "2");
  const titanic_report r = check_titanic(h, reply_of);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.orphans, 1u) << r.describe();
  EXPECT_EQ(r.unclosed, 1u) << r.describe();
}

TEST(TitanicCheckerTest, ReportsEffectsTwiceWrongRepliesAndLostRequests) {
  titanic_history h = clean_history();
  h.applied(2, "w2");
  h.collected(3, "done:4");
  h.posted(4, std::string(31, '0') + "4");
  h.posted(5, std::string(31, '0') + "1");
  const titanic_report r = check_titanic(h, reply_of);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.double_effects, 1u) << r.describe();
  EXPECT_EQ(r.wrong, 1u) << r.describe();
  EXPECT_EQ(r.lost, 2u) << r.describe();
  EXPECT_EQ(r.shared_uuids, 1u) << r.describe();
}

}  // namespace
