// Failover under load for a fabric-broker Binary Star pair (docs/ha.md): two real broker
// processes, an echo worker beside each, and a client that knows both brokers. The active broker
// is killed with -9 at random moments, mid-request, at least 30 times, and restarted; the checker
// proves every request got its own answer (no loss, no answer to another request) and measures
// the failover time the client sees: from the kill to the next answer. The same run with a
// client that knows only one broker must be caught losing requests, which shows the checker
// catches a lost answer.
#include "support/process.hpp"
#include "support/support.hpp"

#include <fabric/context.hpp>
#include <fabric/majordomo_client.hpp>

#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using fabric::testing::child_process;
using fabric::testing::free_tcp_port;

#if defined(FABRIC_BROKER_TOOL) && defined(FABRIC_TEST_MDP_WORKER)
constexpr std::string_view broker_tool = FABRIC_BROKER_TOOL;
constexpr std::string_view worker_tool = FABRIC_TEST_MDP_WORKER;
#else
constexpr std::string_view broker_tool;
constexpr std::string_view worker_tool;
#endif

std::string tcp(std::uint16_t port) { return "tcp://127.0.0.1:" + std::to_string(port); }

// What one run saw.
struct outcome {
  int kills = 0;
  std::uint64_t requests = 0;
  std::uint64_t answered = 0;
  std::uint64_t wrong = 0;   // answered with another request's body
  std::uint64_t failed = 0;  // given up after every retry
  std::vector<std::chrono::milliseconds> failovers;
};

class pair_run {
 public:
  pair_run() {
    for (auto* p : {&service_[0], &service_[1], &state_[0], &state_[1]}) *p = free_tcp_port();
    for (int i = 0; i < 2; ++i) start(i);
    for (int i = 0; i < 2; ++i)
      workers_[i] = std::make_unique<child_process>(std::vector<std::string>{
          std::string(worker_tool), tcp(service_[i]), "echo", "100", "echo"});
  }

  std::string endpoint(int i) const { return tcp(service_[i]); }

  // Starts (or restarts) broker `i`: 0 the primary, 1 the backup.
  void start(int i) {
    brokers_[i] = std::make_unique<child_process>(std::vector<std::string>{
        std::string(broker_tool), "--bind", tcp(service_[i]), "--role", i == 0 ? "primary" : "backup",
        "--state-bind", tcp(state_[i]), "--peer", tcp(state_[1 - i]), "--pair-heartbeat", "100ms",
        "--heartbeat", "100ms", "--log-level", "info"});
    EXPECT_FALSE(fabric::testing::listening_endpoint(*brokers_[i], 10s).empty()) << brokers_[i]->err;
  }
  // Waits until broker `i` says it stands by (a restarted node hears the active one).
  bool standing_by(int i) {
    return brokers_[i]->read_until(
        [&](std::string_view) { return brokers_[i]->err.find("-> passive") != std::string::npos; }, 10s);
  }
  void kill(int i) {
    brokers_[i]->signal(SIGKILL);
    (void)brokers_[i]->finish(5s);
  }

 private:
  std::uint16_t service_[2] = {}, state_[2] = {};
  std::unique_ptr<child_process> brokers_[2];
  std::unique_ptr<child_process> workers_[2];
};

// `kills` rounds of: a few requests, then the active broker killed while a request is in flight
// (after a random delay), the next answers timed, the killed broker restarted as standby.
outcome chaos(int kills, bool client_knows_both, std::uint64_t seed) {
  pair_run pair;
  fabric::context ctx;
  fabric::mdp::client_options o{.broker = pair.endpoint(0), .timeout = 250ms, .retries = 40, .correlate = true};
  if (client_knows_both) o.failover = {pair.endpoint(1)};
  if (!client_knows_both) o.retries = 8;
  fabric::mdp::client client(ctx, o);
  std::mt19937_64 rng(seed);
  outcome out;
  std::uint64_t n = 0;
  auto one = [&](std::chrono::steady_clock::time_point* answered_at = nullptr) {
    const std::string body = "req-" + std::to_string(++n);
    ++out.requests;
    auto reply = client.request("echo", fabric::make_message(body));
    if (!reply) {
      ++out.failed;
      return false;
    }
    if (answered_at != nullptr) *answered_at = std::chrono::steady_clock::now();
    ++out.answered;
    if (reply->size() != 1 || reply->view(0) != body) ++out.wrong;
    return true;
  };
  // The pair settles and the workers register.
  for (int i = 0; i < 40 && out.answered == 0; ++i) (void)one();
  for (int round = 0; round < kills; ++round) {
    const int count = static_cast<int>(rng() % 8);
    for (int i = 0; i < count; ++i) (void)one();
    // The broker that answered last is the active one.
    const int active = client.endpoint() == pair.endpoint(0) ? 0 : 1;
    const auto delay = std::chrono::milliseconds(rng() % 40);
    // When the broker was dead for sure (reaped), as steady-clock ticks, for the main thread.
    std::atomic<std::chrono::steady_clock::rep> dead_at{0};
    std::thread killer([&] {
      std::this_thread::sleep_for(delay);  // a random moment, not a synchronisation
      pair.kill(active);
      dead_at = std::chrono::steady_clock::now().time_since_epoch().count();
    });
    // Requests keep flowing through the kill until one is answered after it.
    std::chrono::steady_clock::time_point answered_at{};
    std::chrono::steady_clock::time_point killed_at{};
    bool through = false;
    for (int i = 0; i < 400 && !through; ++i) {
      const bool ok = one(&answered_at);
      const auto dead = dead_at.load();
      killed_at = std::chrono::steady_clock::time_point(std::chrono::steady_clock::duration(dead));
      through = ok && dead != 0 && answered_at > killed_at;
      if (!ok && !client_knows_both) break;
    }
    killer.join();
    ++out.kills;
    if (through) {
      out.failovers.push_back(std::chrono::duration_cast<std::chrono::milliseconds>(answered_at - killed_at));
    }
    pair.start(active);
    if (!pair.standing_by(active)) {
      ADD_FAILURE() << "broker " << active << " did not stand by after its restart";
      break;
    }
    if (!client_knows_both && out.failed > 0) break;  // the planted fault has shown itself
  }
  return out;
}

class BrokerPairChaos : public ::testing::Test {
 protected:
  void SetUp() override {
    if (broker_tool.empty() || worker_tool.empty()) GTEST_SKIP() << "fabric-broker or the test worker is not built";
  }
};

TEST_F(BrokerPairChaos, EveryRequestIsAnsweredThroughThirtyKillsOfTheActiveBroker) {
  const outcome o = chaos(30, true, 20261205);
  EXPECT_GE(o.kills, 30);
  EXPECT_EQ(o.failed, 0U);
  EXPECT_EQ(o.wrong, 0U);
  EXPECT_EQ(o.answered, o.requests);
  ASSERT_EQ(o.failovers.size(), static_cast<std::size_t>(o.kills));
  std::vector<std::chrono::milliseconds> sorted = o.failovers;
  std::sort(sorted.begin(), sorted.end());
  const auto at = [&](double q) { return sorted[static_cast<std::size_t>(q * static_cast<double>(sorted.size() - 1))]; };
  std::printf("failover, client-visible (kill to next answer), %zu kills: min %lld ms, median %lld ms, "
              "p90 %lld ms, max %lld ms; %llu requests\n",
              sorted.size(), static_cast<long long>(sorted.front().count()),
              static_cast<long long>(at(0.5).count()), static_cast<long long>(at(0.9).count()),
              static_cast<long long>(sorted.back().count()), static_cast<unsigned long long>(o.requests));
  RecordProperty("failover_median_ms", static_cast<int>(at(0.5).count()));
  RecordProperty("failover_max_ms", static_cast<int>(sorted.back().count()));
}

TEST_F(BrokerPairChaos, TheCheckerCatchesLossWhenTheClientCannotFailOver) {
  const outcome o = chaos(3, false, 7);
  EXPECT_GT(o.failed, 0U) << "a client that knows one broker must lose requests when it dies";
  EXPECT_LT(o.answered, o.requests);
}

}  // namespace
