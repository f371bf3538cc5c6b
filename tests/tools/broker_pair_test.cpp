// Tests fabric-broker as a Binary Star pair (docs/ha.md), both nodes real child processes on
// loopback: only the active broker answers clients and keeps workers; when it is killed with -9
// the backup takes over on the next client request after one expiry and serves the workers that
// come to it; the witness role runs; and bad pair arguments are refused with exit code 64.
#include "support/process.hpp"
#include "support/raw_frames.hpp"
#include "support/support.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <zmq.hpp>


#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace {

using fabric::testing::child_process;
using namespace std::chrono_literals;
using frames = std::vector<std::string>;

#ifdef FABRIC_BROKER_TOOL
constexpr std::string_view tool_path = FABRIC_BROKER_TOOL;
#else
constexpr std::string_view tool_path;
#endif

std::string tcp(std::uint16_t port) { return "tcp://127.0.0.1:" + std::to_string(port); }

std::vector<std::string> broker_words(const std::vector<std::string>& args) {
  std::vector<std::string> words{std::string(tool_path)};
  words.insert(words.end(), args.begin(), args.end());
  return words;
}

class BrokerPairTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (tool_path.empty()) GTEST_SKIP() << "fabric-broker is not built";
    for (auto* p : {&service_a, &service_b, &state_a, &state_b}) *p = fabric::testing::free_tcp_port();
  }
  std::unique_ptr<child_process> start(bool primary) {
    auto p = std::make_unique<child_process>(broker_words(
        {"--bind", tcp(primary ? service_a : service_b), "--role", primary ? "primary" : "backup",
         "--state-bind", tcp(primary ? state_a : state_b), "--peer", tcp(primary ? state_b : state_a),
         "--pair-heartbeat", "100ms", "--heartbeat", "100ms"}));
    EXPECT_FALSE(fabric::testing::listening_endpoint(*p, 10s).empty()) << p->err;
    return p;
  }
  // A client's request to `endpoint`: the answer, or nothing within `timeout`. `serve` runs
  // between polls, so a worker in this thread can answer meanwhile.
  std::optional<frames> ask(const std::string& endpoint, const std::string& service,
                            std::chrono::milliseconds timeout, const std::function<void()>& serve = {}) {
    zmq::socket_t client(ctx, zmq::socket_type::dealer);
    client.set(zmq::sockopt::linger, 0);
    client.connect(endpoint);
    fabric::testing::send_frames(client, {"", "MDPC01", service, "ping"});
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
      if (auto m = fabric::testing::recv_frames(client, 10ms)) return m;
      if (serve) serve();
    }
    return std::nullopt;
  }

  zmq::context_t ctx;
  std::uint16_t service_a = 0, service_b = 0, state_a = 0, state_b = 0;
};

// A raw 7/MDP worker of service "echo" at `endpoint`: READY, then it answers each request.
class raw_worker {
 public:
  raw_worker(zmq::context_t& ctx, const std::string& endpoint) : s_(ctx, zmq::socket_type::dealer) {
    s_.set(zmq::sockopt::linger, 0);
    s_.connect(endpoint);
    fabric::testing::send_frames(s_, {"", "MDPW01", "\x01", "echo"});
  }
  // Serves for `d`; returns false if the broker sent DISCONNECT.
  bool serve(std::chrono::milliseconds d) {
    const auto end = std::chrono::steady_clock::now() + d;
    while (std::chrono::steady_clock::now() < end) {
      auto m = fabric::testing::recv_frames(s_, 20ms);
      if (!m || m->size() < 3) continue;
      const std::string& command = (*m)[2];
      if (command == "\x05") return false;
      if (command == "\x02" && m->size() >= 6) {
        // REQUEST: "" MDPW01 0x02 client "" body -> REPLY: "" MDPW01 0x03 client "" body
        fabric::testing::send_frames(s_, {"", "MDPW01", "\x03", (*m)[3], "", (*m)[5]});
      } else if (command == "\x04") {
        fabric::testing::send_frames(s_, {"", "MDPW01", "\x04"});
      }
    }
    return true;
  }

 private:
  zmq::socket_t s_;
};

TEST_F(BrokerPairTest, OnlyTheActiveBrokerServesAndTheBackupTakesOverAfterAKill) {
  auto a = start(true);
  auto b = start(false);
  ASSERT_TRUE(a->read_until([&](std::string_view) { return a->err.find("-> active") != std::string::npos; }, 10s))
      << a->err;
  raw_worker at_a(ctx, tcp(service_a));
  raw_worker at_b(ctx, tcp(service_b));
  // The backup sends its worker away; the primary keeps its own and answers.
  std::optional<frames> answer;
  for (int i = 0; i < 20 && !answer; ++i) answer = ask(tcp(service_a), "echo", 500ms, [&] { (void)at_a.serve(10ms); });
  ASSERT_TRUE(answer) << a->err;
  EXPECT_EQ(answer->back(), "ping");
  EXPECT_FALSE(at_b.serve(2s));
  EXPECT_FALSE(ask(tcp(service_b), "mmi.service", 300ms));

  a->signal(SIGKILL);
  (void)a->finish(5s);
  // Clients fail over to the backup and keep asking; a worker comes to it.
  raw_worker moved(ctx, tcp(service_b));
  std::optional<frames> after;
  for (int i = 0; i < 50 && !after; ++i) {
    after = ask(tcp(service_b), "echo", 200ms, [&] {
      if (!moved.serve(10ms)) moved = raw_worker(ctx, tcp(service_b));  // sent away while passive
    });
  }
  (void)b->read_until([&](std::string_view) { return b->err.find("-> active") != std::string::npos; }, 5s);
  ASSERT_TRUE(after) << b->err;
  EXPECT_EQ(after->back(), "ping");
  EXPECT_NE(b->err.find("passive -> active, term 2"), std::string::npos) << b->err;

  b->signal(SIGTERM);
  EXPECT_EQ(b->finish(10s), 0) << b->err;
  EXPECT_NE(b->err.find("\"not_active\""), std::string::npos);
}

TEST_F(BrokerPairTest, TheWitnessRoleServesLeases) {
  child_process w(broker_words({"--role", "witness", "--state-bind", tcp(state_a)}));
  EXPECT_EQ(fabric::testing::listening_endpoint(w, 10s), tcp(state_a)) << w.err;
  w.signal(SIGTERM);
  EXPECT_EQ(w.finish(10s), 0) << w.err;
  EXPECT_NE(w.err.find("witness {\"grants\":0"), std::string::npos) << w.err;
}

TEST_F(BrokerPairTest, BadPairArgumentsAreRefused) {
  const std::vector<std::vector<std::string>> bad = {
      {"--role", "primary", "--peer", tcp(state_b)},            // no --state-bind
      {"--role", "backup", "--state-bind", tcp(state_a)},       // no --peer
      {"--peer", tcp(state_b)},                                  // no --role
      {"--role", "leader", "--state-bind", tcp(state_a)},       // no such role
      {"--role", "primary", "--state-bind", tcp(state_a), "--peer", tcp(state_b), "--titanic", "/tmp/x"},
  };
  for (const auto& args : bad) {
    child_process p(broker_words(args));
    EXPECT_EQ(p.finish(10s), 64) << args[0] << " " << args[1] << ": " << p.err;
  }
}

}  // namespace
