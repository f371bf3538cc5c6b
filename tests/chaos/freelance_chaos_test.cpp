// Kill -9 chaos of Freelance (10/FLP): three servers (fabric-test-flp-server,
// tests/support/flp_server_main.cpp), each a process of its own on a tcp port of loopback, and an
// asynchronous client in this process sending a stream of numbered requests with a window of them
// in flight. At random moments (after a random number of answers) the test kills a server -9, or
// two, or all three, or stops one (SIGSTOP) so that it hangs with requests in hand; the servers it
// killed are restarted on the same endpoints up to 250 ms later, and a stopped one is let go
// (SIGCONT) after two to three attempt timeouts, so that its requests have gone elsewhere and it
// answers them late. Once the kills are done, every request must be answered within a bound.
//
// The checker counts: every request sent is answered exactly once, with the reply meant for it
// ("<n>:<server>"), and never fails; nothing arrives for a request that was not sent. Two more
// tests plant a bug in the client (src/reliability/flp_faults.hpp) and show the checker catches
// it: late replies delivered as answers (duplicates, after stopped servers wake up), and the
// requests of a lost server forgotten (lost answers, after kills).
//
// Environment:
//   FABRIC_CHAOS_ITERATIONS  kills in the chaos test (default 100)
//   FABRIC_CHAOS_SEED        seed of the schedule (printed by every run)
#include "support/process.hpp"
#include "support/support.hpp"

#include "reliability/flp_faults.hpp"

#include <fabric/context.hpp>
#include <fabric/freelance.hpp>

#include <gtest/gtest.h>

#include <signal.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <optional>
#include <ostream>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace std::chrono_literals;
using fabric::testing::child_process;
using fabric::testing::env_number;
namespace fl = fabric::freelance;
namespace faults = fabric::flp::faults;
using clock_type = std::chrono::steady_clock;

constexpr std::size_t servers = 3;
constexpr int default_kills = 100;
constexpr std::uint64_t default_seed = 0x666c702d63686173;  // "flp-chas"
constexpr std::size_t window = 8;
constexpr auto start_bound = 10s;

int kills_from_environment() {
  const auto n = env_number("FABRIC_CHAOS_ITERATIONS");
  return n && *n > 0 ? static_cast<int>(std::min<unsigned long long>(*n, 100'000)) : default_kills;
}
std::uint64_t seed_from_environment() { return env_number("FABRIC_CHAOS_SEED").value_or(default_seed); }

// ---------------------------------------------------------------------------------------------
// The checker

/// What the client sent and what came back, judged at the end: each request answered exactly
/// once, with its own reply, and no failure.
class answer_checker {
 public:
  void sent(std::uint64_t id, std::uint64_t n) { requests_[id] = {n, 0}; }
  void completed(const fl::reply& r) {
    const auto it = requests_.find(r.id);
    if (it == requests_.end()) {
      ++unknown_;
      return;
    }
    if (r.status != fl::reply_status::ok) {
      ++failed_;
      return;
    }
    ++it->second.answers;
    const std::string body = r.body.empty() ? std::string() : std::string(r.body.view(0));
    const std::string expected = std::to_string(it->second.n) + ":";
    if (r.body.size() != 1 || !body.starts_with(expected) || r.server.empty()) ++wrong_;
  }

  struct verdict {
    std::size_t requests = 0, answered = 0, lost = 0, duplicated = 0, wrong = 0, failed = 0, unknown = 0;
    bool clean() const { return lost == 0 && duplicated == 0 && wrong == 0 && failed == 0 && unknown == 0; }
  };
  verdict judge() const {
    verdict v;
    v.requests = requests_.size();
    for (const auto& [id, r] : requests_) {
      if (r.answers == 0) ++v.lost;
      if (r.answers >= 1) ++v.answered;
      if (r.answers > 1) ++v.duplicated;
    }
    v.wrong = wrong_;
    v.failed = failed_;
    v.unknown = unknown_;
    return v;
  }
  /// Requests not answered yet.
  std::size_t unanswered() const {
    std::size_t n = 0;
    for (const auto& [id, r] : requests_) n += r.answers == 0 ? 1u : 0u;
    return n;
  }

 private:
  struct record {
    std::uint64_t n = 0;
    int answers = 0;
  };
  std::map<std::uint64_t, record> requests_;
  std::size_t wrong_ = 0, failed_ = 0, unknown_ = 0;
};

std::ostream& operator<<(std::ostream& out, const answer_checker::verdict& v) {
  return out << "requests=" << v.requests << " answered=" << v.answered << " lost=" << v.lost
             << " duplicated=" << v.duplicated << " wrong=" << v.wrong << " failed=" << v.failed
             << " unknown=" << v.unknown;
}

// ---------------------------------------------------------------------------------------------
// The servers and the run

class server_set {
 public:
  server_set() {
    for (std::size_t i = 0; i < servers; ++i) start(i, "tcp://127.0.0.1:*");
  }
  ~server_set() {
    for (auto& p : procs_) p.reset();  // killed and reaped
  }

  const std::vector<std::string>& endpoints() const { return endpoints_; }
  bool up(std::size_t i) const { return procs_[i].has_value(); }
  bool stopped(std::size_t i) const { return stopped_[i]; }

  void kill(std::size_t i) {
    if (!procs_[i]) return;
    procs_[i]->signal(SIGKILL);
    (void)procs_[i]->finish(5s);
    procs_[i].reset();
    stopped_[i] = false;
  }
  void pause(std::size_t i) {
    if (!procs_[i] || stopped_[i]) return;
    procs_[i]->signal(SIGSTOP);
    stopped_[i] = true;
  }
  void resume(std::size_t i) {
    if (!procs_[i] || !stopped_[i]) return;
    procs_[i]->signal(SIGCONT);
    stopped_[i] = false;
  }
  void restart(std::size_t i) {
    if (!procs_[i]) start(i, endpoints_[i]);
  }

 private:
  void start(std::size_t i, const std::string& endpoint) {
    const std::string name = "s" + std::to_string(i);
    // The port of a killed server is free again at once (the kernel closed its listener), but
    // give a start that fails a second chance.
    for (int attempt = 0; attempt < 3; ++attempt) {
      procs_[i].emplace(std::vector<std::string>{FABRIC_TEST_FLP_SERVER, "--endpoint", endpoint, "--name", name,
                                                 "--lifetime", "300"});
      const std::string bound = fabric::testing::listening_endpoint(*procs_[i], start_bound);
      if (!bound.empty()) {
        endpoints_[i] = bound;
        return;
      }
      procs_[i].reset();
    }
    ADD_FAILURE() << "server " << name << " did not start on " << endpoint;
  }

  std::array<std::optional<child_process>, servers> procs_;
  std::array<bool, servers> stopped_{};
  std::vector<std::string> endpoints_ = std::vector<std::string>(servers);
};

struct schedule {
  int kills = 0;            // stop after this many kills
  bool pauses = true;       // also stop servers (SIGSTOP) now and then
  bool kill_servers = true;
  /// How long a killed server stays down: from `restart_min` to `restart_max`.
  std::chrono::milliseconds restart_min{0};
  std::chrono::milliseconds restart_max{250};
  std::size_t max_requests = 100'000;
  std::chrono::milliseconds finish_bound{20'000};
};

struct outcome {
  answer_checker::verdict verdict;
  int kills = 0, pauses = 0, all_down = 0;
  fl::client_stats stats;
};

fl::client_options chaos_options(const std::vector<std::string>& endpoints, std::chrono::milliseconds timeout) {
  fl::client_options o;
  o.servers = endpoints;
  o.ping_interval = 100ms;
  o.server_expiry = 300ms;
  o.timeout = timeout;
  o.request_expiry = 15'000ms;  // longer than any time every server is down in these runs
  return o;
}

// The stream of requests and the chaos, then the wait for every answer; the verdict at the end.
outcome run_chaos(const schedule& plan, std::uint64_t seed, std::chrono::milliseconds timeout) {
  std::mt19937_64 rng(seed);
  const auto pick = [&](std::uint64_t lo, std::uint64_t hi) { return std::uniform_int_distribution<std::uint64_t>(lo, hi)(rng); };
  server_set set;
  fabric::context ctx;
  fl::async_client client(ctx, chaos_options(set.endpoints(), timeout));
  answer_checker checker;
  outcome out;
  std::uint64_t next = 0;
  std::uint64_t answers = 0;
  std::uint64_t next_action = pick(10, 60);
  fl::reply r;
  const auto collect = [&](std::chrono::milliseconds wait) {
    auto got = client.recv(r, wait);
    if (!got) return false;
    checker.completed(r);
    ++answers;
    return true;
  };

  std::vector<std::pair<std::size_t, clock_type::time_point>> killed;  // and when to restart it
  std::vector<std::size_t> paused;
  const auto down_for = [&] {
    return std::chrono::milliseconds(pick(static_cast<std::uint64_t>(plan.restart_min.count()),
                                          static_cast<std::uint64_t>(plan.restart_max.count())));
  };
  const auto restart_due = [&](bool all) {
    const auto now = clock_type::now();
    std::erase_if(killed, [&](const auto& k) {
      if (!all && now < k.second) return false;
      set.restart(k.first);
      return true;
    });
  };
  clock_type::time_point resume_at = clock_type::time_point::max();
  const auto pause_for = [&] { return timeout * 2 + std::chrono::milliseconds(pick(0, static_cast<std::uint64_t>(timeout.count()))); };
  while ((plan.kill_servers ? out.kills < plan.kills : out.pauses < plan.kills) && next < plan.max_requests) {
    restart_due(false);
    if (clock_type::now() >= resume_at) {
      for (const std::size_t i : paused) set.resume(i);
      paused.clear();
      resume_at = clock_type::time_point::max();
    }
    while (client.outstanding() < window) {
      auto id = client.send(fabric::message(std::to_string(next)));
      if (!id) {
        ADD_FAILURE() << "send refused: " << id.error().message();
        break;
      }
      checker.sent(*id, next++);
    }
    (void)collect(20ms);
    if (answers < next_action) continue;
    next_action = answers + pick(10, 60);
    // Killed servers start again when their time is up, and so does a stopped one.
    const std::uint64_t roll = pick(0, 99);
    if (plan.pauses && paused.empty() && (roll < 20 || !plan.kill_servers)) {
      const std::size_t i = pick(0, servers - 1);
      set.pause(i);
      paused.push_back(i);
      resume_at = clock_type::now() + pause_for();
      ++out.pauses;
    } else if (plan.kill_servers) {
      // Mostly one server, sometimes two, now and then all three at once.
      const std::size_t how_many = roll < 85 ? 1 : roll < 95 ? 2 : servers;
      std::vector<std::size_t> order{0, 1, 2};
      std::shuffle(order.begin(), order.end(), rng);
      std::size_t down = 0;
      for (const std::size_t i : order) {
        if (down == how_many || !set.up(i)) continue;
        if (std::find(paused.begin(), paused.end(), i) != paused.end()) {
          paused.clear();  // a stopped server can be killed too; it restarts like the others
          resume_at = clock_type::time_point::max();
        }
        set.kill(i);
        killed.emplace_back(i, clock_type::now() + down_for());
        ++out.kills;
        ++down;
      }
      if (how_many == servers && down == servers) {
        ++out.all_down;
        // Requests keep coming while nobody serves: they wait for a live server.
        for (int k = 0; k < 4; ++k) {
          auto id = client.send(fabric::message(std::to_string(next)));
          if (id) checker.sent(*id, next++);
        }
        (void)collect(50ms);
        restart_due(true);
      }
    }
  }
  restart_due(true);
  for (const std::size_t i : paused) set.resume(i);
  const auto deadline = clock_type::now() + plan.finish_bound;
  while (checker.unanswered() > 0 && clock_type::now() < deadline) (void)collect(50ms);
  // Late duplicates still on their way are part of the verdict: give them a moment to land.
  const auto settle = clock_type::now() + 300ms;
  while (clock_type::now() < settle) (void)collect(20ms);
  out.verdict = checker.judge();
  out.stats = client.stats();
  return out;
}

void print(const char* what, std::uint64_t seed, const outcome& o) {
  std::printf(
      "%s: seed=%llu kills=%d pauses=%d all_down=%d requests=%zu answered=%zu lost=%zu duplicated=%zu "
      "wrong=%zu failed=%zu retries=%llu late_replies=%llu servers_lost=%llu servers_up=%llu\n",
      what, static_cast<unsigned long long>(seed), o.kills, o.pauses, o.all_down, o.verdict.requests,
      o.verdict.answered, o.verdict.lost, o.verdict.duplicated, o.verdict.wrong, o.verdict.failed,
      static_cast<unsigned long long>(o.stats.retries), static_cast<unsigned long long>(o.stats.late_replies),
      static_cast<unsigned long long>(o.stats.servers_lost), static_cast<unsigned long long>(o.stats.servers_up));
  std::fflush(stdout);
}

// Clears the planted faults whatever way a test ends.
struct fault_guard {
  ~fault_guard() {
    faults::set_deliver_late_replies(false);
    faults::set_forget_lost_requests(false);
  }
};

TEST(FreelanceChaosTest, EveryRequestIsAnsweredExactlyOnceWhileServersAreKilledAndRestarted) {
  const std::uint64_t seed = seed_from_environment();
  schedule plan;
  plan.kills = kills_from_environment();
  const outcome o = run_chaos(plan, seed, 150ms);
  print("freelance chaos", seed, o);
  EXPECT_TRUE(o.verdict.clean()) << o.verdict << " (seed " << seed << ")";
  EXPECT_GE(o.kills, plan.kills);
  EXPECT_GT(o.verdict.requests, static_cast<std::size_t>(plan.kills) * 5);
  EXPECT_GT(o.stats.servers_lost, 0u) << "the kills were noticed";
}

TEST(FreelanceChaosTest, CheckerCatchesDuplicatedAnswersWhenLateRepliesAreDelivered) {
  fault_guard guard;
  faults::set_deliver_late_replies(true);
  const std::uint64_t seed = seed_from_environment() + 1;
  schedule plan;
  plan.kills = 8;  // pauses: stopped servers answer late when they wake up
  plan.kill_servers = false;
  const outcome o = run_chaos(plan, seed, 150ms);
  print("planted duplicates", seed, o);
  EXPECT_GT(o.verdict.duplicated, 0u) << o.verdict;
  EXPECT_FALSE(o.verdict.clean());
}

TEST(FreelanceChaosTest, CheckerCatchesLostAnswersWhenALostServersRequestsAreForgotten) {
  fault_guard guard;
  faults::set_forget_lost_requests(true);
  const std::uint64_t seed = seed_from_environment() + 2;
  schedule plan;
  plan.kills = 8;
  plan.pauses = false;
  // Down long enough that the client sees the connection gone (a refused ping) before the server
  // comes back: that is when the bug forgets what the server held.
  plan.restart_min = 500ms;
  plan.restart_max = 500ms;
  plan.finish_bound = 2000ms;  // the lost ones never come
  const outcome o = run_chaos(plan, seed, 2000ms);
  print("planted losses", seed, o);
  EXPECT_GT(o.verdict.lost, 0u) << o.verdict;
  EXPECT_FALSE(o.verdict.clean());
}

}  // namespace
