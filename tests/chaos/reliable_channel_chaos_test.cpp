// Kill -9 chaos of reliable channels: a sender and a receiver in processes of their own
// (fabric-test-frc-peer, tests/support/frc_peer_main.cpp), each on its own journal, joined over
// tcp through a fault_proxy. The test kills either side, or both, at random moments and restarts
// it on the same journal, while it cuts and stalls the connection between them; then it lets the
// survivors finish and judges the whole run with the delivery checker: every message whose send
// completed was delivered to the application, in order per stream, nothing was delivered that
// was never sent, a redelivery repeats what it repeats without leaving anything out, and in
// effectively-once mode nothing was applied twice (the receiver's own journal is the evidence).
//
// A second pair of tests shows the checker catches a planted bug (the receiver acknowledging
// before its mark is durable): the receiver is killed at a point where its commit is certain
// not to have happened and its acknowledgement certain to have been trimmed from the sender's
// outbox, so the bug loses messages on every run, and the checker must say so.
//
// Environment:
//   FABRIC_CHAOS_ITERATIONS  kills per chaos test (default 30; raise it for soak runs)
//   FABRIC_CHAOS_SEED        seed of the schedule of kills and faults (printed by every run)
//   FABRIC_FRC_ACK_BEFORE_DURABLE=1  plants the bug in every receiver: the random kills of the
//                            effectively-once test then find losses in most runs, not all
#include "support/delivery_checker.hpp"
#include "support/fault_proxy.hpp"
#include "support/process.hpp"
#include "support/support.hpp"

#include <fabric/journal.hpp>

#include <gtest/gtest.h>

#include <signal.h>

#include <array>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using fabric::testing::check;
using fabric::testing::check_report;
using fabric::testing::child_process;
using fabric::testing::delivery_history;
using fabric::testing::delivery_mode;
using fabric::testing::fault_proxy;
using fabric::testing::temp_dir;
using clock_type = std::chrono::steady_clock;

constexpr int default_kills = 30;
constexpr std::uint64_t default_seed = 0x6672632d63686173;  // "frc-chas"
constexpr std::array<std::string_view, 2> streams = {"s1", "s2"};
/// Messages per stream for each kill, sent at `send_rate` per stream: enough that the sender is
/// still sending through most of the kills.
constexpr std::uint64_t messages_per_kill = 70;
constexpr std::uint64_t send_rate = 400;
/// The bound on a peer's start (a journal opened, a socket bound).
constexpr auto start_bound = 10s;
/// The bound on the survivors finishing once the faults stop.
constexpr auto finish_bound = 90s;

using fabric::testing::env_number;

int kills_from_environment() {
  const auto n = env_number("FABRIC_CHAOS_ITERATIONS");
  return n && *n > 0 ? static_cast<int>(std::min<unsigned long long>(*n, 100'000)) : default_kills;
}

std::uint64_t seed_from_environment() { return env_number("FABRIC_CHAOS_SEED").value_or(default_seed); }

std::vector<std::string> lines_of(std::string_view text) {
  std::vector<std::string> out;
  std::size_t at = 0;
  for (std::size_t nl; (nl = text.find('\n', at)) != std::string_view::npos; at = nl + 1)
    out.emplace_back(text.substr(at, nl - at));
  return out;
}

std::vector<std::string> words_of(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

std::optional<std::uint64_t> number(std::string_view text) {
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return v;
}

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

/// How a run's receiver takes messages, and the durability of each side's journal. A kill -9
/// ends a process, not the kernel: every commit LMDB completed is in the file afterwards in
/// every mode, so the modes change only when completions are reported, never what survives.
struct channel_setup {
  delivery_mode mode;
  std::string sender_durability;
  std::string receiver_durability;
  bool async_sends = false;  ///< send_async() with many in flight, rather than send() one by one
};

// The two peers, their journals and logs, and the proxy between them.
class channel_run {
 public:
  explicit channel_run(channel_setup setup) : setup_(std::move(setup)) {}

  ~channel_run() {
    // Children first: they are killed and reaped before the proxy and the directories go.
    sender_.reset();
    receiver_.reset();
  }

  std::filesystem::path receiver_journal() const { return dir_.path() / "rx"; }

  /// Starts the receiver, on a port of the system's choosing the first time and on that same
  /// port after, and the proxy the sender connects through.
  void start_receiver(const std::vector<std::string>& extra = {}) {
    const char* mode = setup_.mode == delivery_mode::at_least_once ? "at-least-once" : "effectively-once";
    std::vector<std::string> words = {FABRIC_TEST_FRC_PEER, "receiver", "--journal", receiver_journal().string(),
                                      "--endpoint", endpoint_.empty() ? "tcp://127.0.0.1:*" : endpoint_,
                                      "--log", (dir_.path() / "rx.log").string(), "--mode", mode,
                                      "--durability", setup_.receiver_durability, "--lifetime", "600"};
    words.insert(words.end(), extra.begin(), extra.end());
    receiver_.emplace(words);
    const bool bound = receiver_->read_until(
        [](std::string_view out) {
          const auto at = out.find("bound ");
          return at != std::string_view::npos && out.find('\n', at) != std::string_view::npos;
        },
        start_bound);
    ASSERT_TRUE(bound) << "the receiver did not start: " << receiver_->err;
    const auto at = receiver_->out.find("bound ") + 6;
    const std::string got = receiver_->out.substr(at, receiver_->out.find('\n', at) - at);
    if (endpoint_.empty()) {
      endpoint_ = got;
      const auto port = number(std::string_view(endpoint_).substr(endpoint_.rfind(':') + 1));
      ASSERT_TRUE(port) << endpoint_;
      proxy_ = std::make_unique<fault_proxy>("127.0.0.1", static_cast<std::uint16_t>(*port));
    }
    ASSERT_EQ(got, endpoint_);
    ++receiver_starts_;
  }

  void start_sender(std::uint64_t count, std::uint64_t rate, const std::vector<std::string>& extra = {}) {
    std::vector<std::string> words = {FABRIC_TEST_FRC_PEER, "sender", "--journal", (dir_.path() / "tx").string(),
                                      "--endpoint", proxy_->endpoint(), "--log", (dir_.path() / "tx.log").string(),
                                      "--count", std::to_string(count), "--rate", std::to_string(rate),
                                      "--durability", setup_.sender_durability, "--lifetime", "600"};
    if (setup_.async_sends) words.emplace_back("--async");
    words.insert(words.end(), extra.begin(), extra.end());
    sender_.emplace(words);
    ASSERT_TRUE(sender_->read_until("ready\n", start_bound)) << "the sender did not start: " << sender_->err;
  }

  /// kill -9, and the proof that it was the kill that ended the process.
  void kill_sender() { ASSERT_NO_FATAL_FAILURE(kill(sender_, "sender")); }
  void kill_receiver() { ASSERT_NO_FATAL_FAILURE(kill(receiver_, "receiver")); }

  child_process& sender() { return *sender_; }
  child_process& receiver() { return *receiver_; }
  fault_proxy& proxy() { return *proxy_; }
  int receiver_starts() const noexcept { return receiver_starts_; }

  /// What the sender knows it sent: per stream, ids reported sent after their send() returned,
  /// and 1..last for every "resume <stream> <last>" (durable in its outbox when it restarted).
  std::map<std::string, std::set<std::uint64_t>, std::less<>> completed_sends() const {
    std::map<std::string, std::set<std::uint64_t>, std::less<>> owed;
    for (const auto& line : lines_of(read_file(dir_.path() / "tx.log"))) {
      const auto w = words_of(line);
      const auto n = w.size() == 3 ? number(w[2]) : std::nullopt;
      EXPECT_TRUE(n && (w[0] == "sent" || w[0] == "resume")) << "a bad sender log line: " << line;
      if (!n) continue;
      auto& ids = owed[w[1]];
      if (w[0] == "sent") ids.insert(*n);
      else
        for (std::uint64_t id = 1; id <= *n; ++id) ids.insert(id);
    }
    return owed;
  }

  /// At least once: what the receiving application saw, in order ("delivered <stream> <id> <seq>").
  std::vector<std::array<std::string, 3>> logged_deliveries() const {
    std::vector<std::array<std::string, 3>> out;
    for (const auto& line : lines_of(read_file(dir_.path() / "rx.log"))) {
      const auto w = words_of(line);
      EXPECT_TRUE(w.size() == 4 && w[0] == "delivered") << "a bad receiver log line: " << line;
      if (w.size() == 4) out.push_back({w[1], w[2], w[3]});
    }
    return out;
  }

 private:
  void kill(std::optional<child_process>& p, const char* who) {
    ASSERT_TRUE(p) << who << " is not running";
    p->signal(SIGKILL);
    const int status = p->finish(5s);
    ASSERT_EQ(status, 128 + SIGKILL) << "the " << who << " ended otherwise than by the kill: " << p->err;
    p.reset();
  }

  channel_setup setup_;
  temp_dir dir_;
  std::string endpoint_;
  std::unique_ptr<fault_proxy> proxy_;
  std::optional<child_process> sender_;
  std::optional<child_process> receiver_;
  int receiver_starts_ = 0;
};

/// Effectively once: what the receiving application applied, read from the receiver's own
/// (closed) journal: the order from its stream applied/<stream>, and per message the count its
/// table "applied" holds. `table_duplicates` gets every "<stream>/<id>" counted more than once.
void read_applied(const std::filesystem::path& dir, std::uint64_t count, delivery_history& h,
                  std::vector<std::string>& table_duplicates, std::size_t& mismatched) {
  fabric::journal_options o;
  o.read_only = true;
  fabric::journal j = fabric::journal::open(dir, o);
  for (const auto stream : streams) {
    auto replayed = j.replay("applied/" + std::string(stream), 1, [&](const fabric::journal_record& r) {
      const auto w = words_of(std::string(r.payload));
      if (w.size() != 2 || w[0] != w[1]) ++mismatched;  // a body that did not match its sequence
      if (!w.empty()) h.delivered(stream, w[0]);
      return true;
    });
    ASSERT_TRUE(replayed) << replayed.error().message();
    for (std::uint64_t id = 1; id <= count; ++id) {
      const std::string key = std::string(stream) + "/" + std::to_string(id);
      auto times = j.get("applied", key);
      ASSERT_TRUE(times) << times.error().message();
      if (*times && **times != "1") table_duplicates.push_back(key + " applied " + **times + " times");
    }
  }
}

/// The history of a finished run: every id 1..count of each stream, completed or only
/// attempted, and what the application saw.
delivery_history history_of(const channel_run& run, std::uint64_t count) {
  delivery_history h;
  const auto owed = run.completed_sends();
  for (const auto stream : streams) {
    const auto it = owed.find(stream);
    for (std::uint64_t id = 1; id <= count; ++id) {
      if (it != owed.end() && it->second.contains(id)) h.sent(stream, std::to_string(id));
      else h.attempted(stream, std::to_string(id));
    }
  }
  return h;
}

// ---------------------------------------------------------------------------------------------
// The kill loop

struct chaos_totals {
  int kills = 0;
  int sender_kills = 0;
  int receiver_kills = 0;
  int cuts = 0;
  int stalls = 0;
};

void run_chaos(const channel_setup& setup, const char* name) {
  const int kills = kills_from_environment();
  const std::uint64_t seed = seed_from_environment();
  const std::uint64_t count = static_cast<std::uint64_t>(kills) * messages_per_kill;
  std::printf("[ chaos    ] %s: %d kills, %llu messages on each of 2 streams, seed %llu "
              "(FABRIC_CHAOS_SEED, FABRIC_CHAOS_ITERATIONS)\n",
              name, kills, static_cast<unsigned long long>(count), static_cast<unsigned long long>(seed));
  std::fflush(stdout);
  std::mt19937_64 rng(seed);
  auto between = [&rng](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };

  channel_run run(setup);
  ASSERT_NO_FATAL_FAILURE(run.start_receiver());
  ASSERT_NO_FATAL_FAILURE(run.start_sender(count, send_rate));
  const auto started = clock_type::now();
  chaos_totals t;
  while (t.kills < kills) {
    SCOPED_TRACE("seed " + std::to_string(seed) + ", after " + std::to_string(t.kills) + " kills");
    // The elapsed time is the subject here: a random moment in the channel's work, and for a
    // stall, how long the path stays black-holed (beyond 3 heartbeats of 100 ms, each side
    // declares the other dead).
    const auto before = std::chrono::milliseconds(between(10, 250));
    const int fault = between(0, 3);  // 0: cut, 1: stall, else none
    const int victim = between(0, 4);  // 0-1: the sender, 2-3: the receiver, 4: both
    if (fault == 1) {
      run.proxy().stall(true);
      ++t.stalls;
    }
    if (fault == 0) {
      std::this_thread::sleep_for(before / 2);
      run.proxy().cut();
      ++t.cuts;
      std::this_thread::sleep_for(before / 2);
    } else {
      std::this_thread::sleep_for(before);
    }
    if (victim <= 1 || victim == 4) {
      ASSERT_NO_FATAL_FAILURE(run.kill_sender());
      ++t.sender_kills;
    }
    if (victim >= 2) {
      ASSERT_NO_FATAL_FAILURE(run.kill_receiver());
      ++t.receiver_kills;
    }
    t.kills = t.sender_kills + t.receiver_kills;
    if (victim >= 2) {
      ASSERT_NO_FATAL_FAILURE(run.start_receiver());
    }
    if (victim <= 1 || victim == 4) {
      ASSERT_NO_FATAL_FAILURE(run.start_sender(count, send_rate));
    }
    if (fault == 1) {
      std::this_thread::sleep_for(std::chrono::milliseconds(between(0, 400)));
      run.proxy().stall(false);
    }
  }
  const double chaos_s = std::chrono::duration<double>(clock_type::now() - started).count();

  // The survivors finish: every message sent and acknowledged into the sender's journal.
  ASSERT_TRUE(run.sender().read_until("complete\n", finish_bound))
      << "the sender did not get every message acknowledged within " << finish_bound.count() << " s (seed " << seed
      << "); its stderr: " << run.sender().err << "; the receiver's: " << run.receiver().err;
  ASSERT_NO_FATAL_FAILURE(run.kill_sender());
  ASSERT_NO_FATAL_FAILURE(run.kill_receiver());

  delivery_history h = history_of(run, count);
  std::size_t mismatched = 0;
  std::vector<std::string> table_duplicates;
  if (setup.mode == delivery_mode::at_least_once) {
    for (const auto& [stream, id, seq] : run.logged_deliveries()) {
      if (id != seq) ++mismatched;
      h.delivered(stream, id);
    }
  } else {
    ASSERT_NO_FATAL_FAILURE(read_applied(run.receiver_journal(), count, h, table_duplicates, mismatched));
  }
  const check_report r = check(h, setup.mode);
  std::printf("[ chaos    ] %s: %d kills (%d of the sender, %d of the receiver), %d cuts, %d stalls in %.1f s, "
              "finished in %.1f s more; %zu sends completed, %zu deliveries (%zu repeated)\n",
              name, t.kills, t.sender_kills, t.receiver_kills, t.cuts, t.stalls, chaos_s,
              std::chrono::duration<double>(clock_type::now() - started).count() - chaos_s, r.sent, r.delivered,
              r.duplicated);
  EXPECT_TRUE(r.ok()) << "seed " << seed << ": " << r.describe();
  EXPECT_EQ(r.sent, 2 * count) << "the sender's log does not account for every message";
  EXPECT_EQ(mismatched, 0U) << "deliveries whose body did not match their sequence";
  EXPECT_TRUE(table_duplicates.empty()) << "applied twice: " << table_duplicates.front();
}

TEST(ReliableChannelChaosTest, AtLeastOnceLosesNothingThroughKillsCutsAndStalls) {
  // A receiver journal in sync mode holds each mark longer between the handler and the commit's
  // completion, so more kills land there and are redelivered.
  run_chaos({.mode = delivery_mode::at_least_once, .sender_durability = "none", .receiver_durability = "sync"},
            "at-least-once");
}

TEST(ReliableChannelChaosTest, EffectivelyOnceAppliesEachMessageOnceThroughKillsCutsAndStalls) {
  run_chaos({.mode = delivery_mode::effectively_once,
             .sender_durability = "periodic",
             .receiver_durability = "sync",
             .async_sends = true},
            "effectively-once");
}

// ---------------------------------------------------------------------------------------------
// The planted bug: acknowledging before the mark is durable

/// Messages per stream, and the one the receiver's handler holds: its transaction never commits.
constexpr std::uint64_t planted_count = 40;
constexpr std::uint64_t held_seq = 5;

struct planted_outcome {
  check_report report;
  bool held_applied = false;  // whether s1 #held_seq is in the receiver's table in the end
};

// The receiver holds inside the transaction of s1 #held_seq and is killed there. With the bug,
// the test first waits until the sender's journal shows that message acknowledged and trimmed
// from its outbox, so the restarted receiver, which never took it, cannot get it back.
planted_outcome crash_inside_the_commit(bool plant_the_bug) {
  planted_outcome result;
  channel_run run(
      {.mode = delivery_mode::effectively_once, .sender_durability = "sync", .receiver_durability = "sync"});
  std::vector<std::string> bug;
  if (plant_the_bug) bug.push_back("--ack-before-durable");
  std::vector<std::string> held = bug;
  held.insert(held.end(), {"--hold-at", "s1:" + std::to_string(held_seq)});
  [&] {
    ASSERT_NO_FATAL_FAILURE(run.start_receiver(held));
    ASSERT_NO_FATAL_FAILURE(run.start_sender(planted_count, 0, {"--report-outbox"}));
    const std::string holding = "holding s1 " + std::to_string(held_seq) + "\n";
    ASSERT_TRUE(run.receiver().read_until(holding, 10s)) << run.receiver().err;
    if (plant_the_bug) {
      const bool trimmed = run.sender().read_until(
          [](std::string_view out) {
            for (const auto& line : lines_of(out)) {
              const auto w = words_of(line);
              if (w.size() == 6 && w[0] == "outbox" && w[1] == "s1" && number(w[5]).value_or(0) > held_seq) return true;
            }
            return false;
          },
          10s);
      ASSERT_TRUE(trimmed) << "the sender never had s1 #" << held_seq << " acknowledged and trimmed: "
                           << run.sender().out;
    }
    ASSERT_NO_FATAL_FAILURE(run.kill_receiver());
    ASSERT_NO_FATAL_FAILURE(run.start_receiver(bug));
    ASSERT_TRUE(run.sender().read_until("complete\n", 30s)) << run.sender().err << run.receiver().err;
    ASSERT_NO_FATAL_FAILURE(run.kill_sender());
    ASSERT_NO_FATAL_FAILURE(run.kill_receiver());
    delivery_history h = history_of(run, planted_count);
    std::size_t mismatched = 0;
    std::vector<std::string> table_duplicates;
    ASSERT_NO_FATAL_FAILURE(read_applied(run.receiver_journal(), planted_count, h, table_duplicates, mismatched));
    EXPECT_EQ(mismatched, 0U);
    EXPECT_TRUE(table_duplicates.empty()) << table_duplicates.front();
    result.report = check(h, delivery_mode::effectively_once);
    fabric::journal_options o;
    o.read_only = true;
    auto applied = fabric::journal::open(run.receiver_journal(), o).get("applied", "s1/" + std::to_string(held_seq));
    ASSERT_TRUE(applied);
    result.held_applied = applied->has_value();
  }();
  return result;
}

TEST(ReliableChannelPlantedBugTest, WithoutTheBugACrashInsideTheCommitLosesNothing) {
  const planted_outcome o = crash_inside_the_commit(false);
  if (HasFatalFailure()) return;
  EXPECT_TRUE(o.report.ok()) << o.report.describe();
  EXPECT_EQ(o.report.sent, 2 * planted_count);
  EXPECT_TRUE(o.held_applied);
}

TEST(ReliableChannelPlantedBugTest, TheCheckerCatchesAnAcknowledgementBeforeTheMarkIsDurable) {
  const planted_outcome o = crash_inside_the_commit(true);
  if (HasFatalFailure()) return;
  EXPECT_FALSE(o.report.ok()) << "the checker missed the planted bug: " << o.report.describe();
  EXPECT_GE(o.report.lost, 1U) << o.report.describe();
  EXPECT_FALSE(o.held_applied) << "s1 #" << held_seq << " should have been lost to the bug";
  std::printf("[ chaos    ] planted bug: %s\n", o.report.describe().c_str());
}

}  // namespace
