// Drives the Majordomo broker's state machine with random traffic from well-behaved and careless
// peers (credit workers that vanish, go silent or reply late, clients whose connections come and
// go) on a fake clock, and checks after every step that the machine's books balance and that no
// request is answered twice. Many seeds, a few seconds in all.
#include "reliability/mdp_broker.hpp"

#include "reliability/mdp.hpp"
#include "broker_test_sink.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace fabric::mdp {
namespace {

using namespace std::chrono_literals;
using frames = std::vector<std::string>;

const std::string W = std::string(worker_header);
const std::string C = std::string(client_header);

message make(const frames& f) {
  message m;
  for (const auto& s : f) m.push_back(s);
  return m;
}

// A request a worker was given: the address to reply to and the body to echo.
struct job {
  std::string address;
  std::string body;
};

class fuzzer {
 public:
  explicit fuzzer(std::uint32_t seed) : rng_(seed) {
    options_.heartbeat_interval = 1000ms;
    options_.liveness = 3;
    options_.max_queued_per_service = 1 + rng_() % 30;
    options_.max_dispatches = 1 + rng_() % 4;
    options_.max_worker_credit = 2 + rng_() % 5;
    const std::chrono::milliseconds expiries[] = {0ms, 400ms, 2500ms, 30s};
    options_.request_expiry = expiries[rng_() % 4];
    options_.service_idle_timeout = std::chrono::milliseconds(rng_() % 5000);
    options_.max_services = 2 + rng_() % 4;
    options_.max_workers = 2 + rng_() % 8;
    if (rng_() % 2 == 0) {  // budgets small enough to be hit often
      options_.max_peer_bytes = 300 + rng_() % 3000;
      options_.max_total_bytes = 1000 + rng_() % 8000;
    }
    machine_ = std::make_unique<broker_machine>(options_, sink_, now_);
  }

  // One random event, then the checks. Returns a description of the first thing wrong, if any.
  std::string step() {
    const auto pick = rng_() % 100;
    if (pick < 10)
      ready();
    else if (pick < 32)
      request();
    else if (pick < 52)
      reply();
    else if (pick < 67)
      heartbeat();
    else if (pick < 77)
      say(holder(), static_cast<char>(command::disconnect));
    else if (pick < 87)
      advance();
    else if (pick < 89)
      reading();
    else
      toggle_peer();
    return check();
  }

  broker_stats stats() const { return machine_->stats(); }
  std::uint64_t answered() const { return answered_; }

 private:
  std::string worker() { return "w" + std::to_string(rng_() % 8); }
  std::string client() { return "c" + std::to_string(rng_() % 4); }
  // Mostly one service, so that workers meet in its idle list; a second one; and now and then
  // one of a few rarer names that fill the service table.
  std::string service() {
    const auto pick = rng_() % 10;
    if (pick == 0) return "svc-" + std::to_string(rng_() % 6);
    return pick < 8 ? "a" : "b";
  }

  void in(const frames& f) { machine_->on_message(make(f), now_); }

  void ready() {
    const std::string id = worker();
    held_[id].clear();  // a new session: what it held before is forgotten on its side
    if (rng_() % 5 == 0)
      in({id, "", W, "\x01", service()});
    else
      in({id, "", W, "\x01", service(),
          std::to_string(1 + rng_() % (options_.max_worker_credit + 1))});
  }

  void request() {
    const std::string body =
        "req-" + std::to_string(++requests_) + "|" + std::string(rng_() % 400, 'p');
    const std::string svc = rng_() % 15 == 0 ? "mmi.service" : service();
    if (rng_() % 4 == 0)
      in({client(), "corr", "", C, svc, body});
    else
      in({client(), "", C, svc, body});
  }

  // Mostly a worker that holds requests: the interesting one to lose, block or hear from.
  std::string holder() {
    std::vector<std::string> holders;
    for (const auto& [id, jobs] : held_)
      if (!jobs.empty()) holders.push_back(id);
    return holders.empty() || rng_() % 8 == 0 ? worker() : holders[rng_() % holders.size()];
  }

  void reply() {
    const std::string id = holder();
    auto& jobs = held_[id];
    if (jobs.empty() || rng_() % 10 == 0) {
      // A reply for nothing it holds (a bogus or stale address).
      in({id, "", W, "\x03", rng_() % 2 ? client() : std::string(8, '\x01'), "", "junk"});
      return;
    }
    const std::size_t at = rng_() % jobs.size();
    const job j = jobs[at];
    jobs.erase(jobs.begin() + static_cast<std::ptrdiff_t>(at));
    in({id, "", W, "\x03", j.address, "", j.body});
  }

  void heartbeat() {
    // Mostly the same few workers, so that some live long and others go silent.
    const std::string id = "w" + std::to_string(rng_() % 6);
    say(id, static_cast<char>(command::heartbeat));
  }

  void say(const std::string& id, char cmd) { in({id, "", W, std::string(1, cmd)}); }

  void advance() {
    const auto end = now_ + std::chrono::milliseconds(rng_() % 1200);
    while (machine_->next_tick() <= end) {
      now_ = machine_->next_tick();
      machine_->on_tick(now_);
    }
    now_ = end;
  }

  // A client stops reading its replies, or reads everything waiting for it and goes on reading.
  void reading() {
    const std::string id = client();
    if (sink_.unread.count(id) == 0) {
      sink_.unread.insert(id);
      return;
    }
    sink_.unread.erase(id);
    sink_.read_all(id);
  }

  void toggle_peer() {
    // A connection goes away or fills up; or one that did comes back.
    auto& set = rng_() % 2 ? sink_.unreachable : sink_.full;
    if (!set.empty() && rng_() % 2 == 0) {
      set.erase(std::next(set.begin(), static_cast<std::ptrdiff_t>(rng_() % set.size())));
      return;
    }
    set.insert(rng_() % 5 == 0 ? client() : holder());
  }

  std::string check() {
    // What the broker sent: requests go to workers' hands, replies are counted per request.
    for (const auto& f : sink_.sent) {
      if (f.size() >= 7 && f[2] == W && f[3] == "\x02") {
        held_[f[0]].push_back(job{f[4], f[6]});
      } else if (f.size() == 4 && f[2] == W && f[3] == "\x05") {
        held_[f[0]].clear();  // told to go: it starts again with a new READY
      } else if (f.size() >= 5 && f[f.size() - 3] == C) {
        const std::string& body = f.back();
        if (body.rfind("req-", 0) == 0) {
          ++answered_;
          if (!replied_.insert(body).second) return "request " + body + " was answered twice";
        }
      }
    }
    sink_.sent.clear();
    if (auto why = machine_->check_books(); !why.empty()) return why;
    for (const auto& [peer, bytes] : sink_.waiting)
      if (bytes > options_.max_peer_bytes) return "too many bytes waiting for " + peer;
    return {};
  }

  std::mt19937 rng_;
  broker_options options_;
  testing::recording_sink sink_;
  broker_machine::time_point now_{std::chrono::seconds(1000)};
  std::unique_ptr<broker_machine> machine_;
  std::map<std::string, std::vector<job>> held_;
  std::set<std::string> replied_;
  std::uint64_t requests_ = 0;
  std::uint64_t answered_ = 0;
};

TEST(MdpBrokerFuzzTest, BooksBalanceAfterEveryStepUnderRandomCreditWorkersAndFailures) {
  constexpr std::uint32_t seeds = 200;
  constexpr int steps = 1500;
  std::uint64_t answered = 0;
  std::uint64_t requeued = 0;
  std::uint64_t expired = 0;
  std::uint64_t late = 0;
  std::uint64_t over_budget = 0;
  for (std::uint32_t seed = 1; seed <= seeds; ++seed) {
    fuzzer f(seed);
    for (int step = 0; step < steps; ++step) {
      const std::string why = f.step();
      ASSERT_EQ(why, "") << "seed " << seed << ", step " << step;
    }
    const auto s = f.stats();
    answered += f.answered();
    requeued += s.requeued;
    expired += s.expired;
    late += s.late_replies;
    over_budget += s.over_budget;
  }
  // The traffic reached the paths it is meant to exercise.
  EXPECT_GT(answered, 5'000U);
  EXPECT_GT(requeued, 5'000U);
  EXPECT_GT(expired, 5'000U);
  EXPECT_GT(late, 300U);
  EXPECT_GT(over_budget, 2'000U);
}

}  // namespace
}  // namespace fabric::mdp
