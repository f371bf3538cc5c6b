// Tests of fabric-broker, run as a child process: it serves 7/MDP on the endpoint it prints,
// stops cleanly on SIGINT and SIGTERM with its final counters, and refuses bad arguments.
#include "support/process.hpp"
#include "support/raw_frames.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <zmq.hpp>

#include <chrono>
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

class broker_process : public child_process {
 public:
  explicit broker_process(const std::vector<std::string>& args) : child_process(with_tool(args)) {}

  // The first endpoint the broker printed, once it serves.
  std::optional<std::string> endpoint() {
    if (!read_until("\n")) return std::nullopt;
    const std::string prefix = "listening on ";
    const auto at = out.find(prefix);
    if (at == std::string::npos) return std::nullopt;
    const auto end = out.find('\n', at);
    return out.substr(at + prefix.size(), end - at - prefix.size());
  }

 private:
  static std::vector<std::string> with_tool(const std::vector<std::string>& args) {
    std::vector<std::string> words{std::string(tool_path)};
    words.insert(words.end(), args.begin(), args.end());
    return words;
  }
};

void send(zmq::socket_t& s, const frames& f) { fabric::testing::send_frames(s, f); }

// The next message, or nothing within `timeout`.
std::optional<frames> recv(zmq::socket_t& s, std::chrono::milliseconds timeout = 10s) {
  return fabric::testing::recv_frames(s, timeout);
}

class BrokerToolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (tool_path.empty()) GTEST_SKIP() << "fabric-broker is not built";
  }
  zmq::context_t ctx;
};

TEST_F(BrokerToolTest, ServesMdpAndStopsCleanlyOnSigterm) {
  broker_process broker({"--bind", "tcp://127.0.0.1:*", "--heartbeat", "100ms"});
  const auto endpoint = broker.endpoint();
  ASSERT_TRUE(endpoint) << broker.out << broker.err;

  zmq::socket_t worker(ctx, zmq::socket_type::dealer);
  worker.set(zmq::sockopt::linger, 0);
  worker.connect(*endpoint);
  send(worker, {"", "MDPW01", "\x01", "echo"});
  zmq::socket_t client(ctx, zmq::socket_type::req);
  client.set(zmq::sockopt::linger, 0);
  client.connect(*endpoint);
  // The READY and the request race on two connections: ask MMI until the worker is known.
  std::optional<frames> answer;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < deadline) {
    send(client, {"MDPC01", "mmi.service", "echo"});
    answer = recv(client);
    ASSERT_TRUE(answer);
    if (answer->back() == "200") break;
  }
  ASSERT_EQ(answer->back(), "200");

  send(client, {"MDPC01", "echo", "ping"});
  std::optional<frames> request;
  do request = recv(worker);
  while (request && request->size() == 3);  // heartbeats
  ASSERT_TRUE(request);
  ASSERT_EQ(request->size(), 6U);
  send(worker, {"", "MDPW01", "\x03", (*request)[3], "", "pong"});
  EXPECT_EQ(recv(client), (frames{"MDPC01", "echo", "pong"}));

  broker.signal(SIGTERM);
  EXPECT_EQ(broker.finish(), 0) << broker.err;
  EXPECT_NE(broker.err.find("received SIGTERM"), std::string::npos) << broker.err;
  EXPECT_NE(broker.err.find("\"replies\":1"), std::string::npos) << broker.err;
  EXPECT_NE(broker.err.find("ready for 'echo'"), std::string::npos) << broker.err;
}

TEST_F(BrokerToolTest, StopsCleanlyOnSigint) {
  broker_process broker({"-b", "tcp://127.0.0.1:*", "-b", "tcp://127.0.0.1:*"});
  ASSERT_TRUE(broker.read_until("listening on", 10s));
  broker.signal(SIGINT);
  EXPECT_EQ(broker.finish(), 0) << broker.err;
  // Both endpoints were bound and printed.
  std::size_t count = 0;
  for (auto at = broker.out.find("listening on"); at != std::string::npos;
       at = broker.out.find("listening on", at + 1))
    ++count;
  EXPECT_EQ(count, 2U) << broker.out;
}

TEST_F(BrokerToolTest, QuietAtLogLevelOff) {
  broker_process broker({"-b", "tcp://127.0.0.1:*", "--log-level", "off"});
  ASSERT_TRUE(broker.endpoint());
  broker.signal(SIGTERM);
  EXPECT_EQ(broker.finish(), 0);
  EXPECT_TRUE(broker.err.empty()) << broker.err;
}

TEST_F(BrokerToolTest, BadArgumentsExitWith64) {
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"--liveness", "0"}, {"--heartbeat", "-5"}, {"--no-such-flag"},
        {"--log-level", "chatty"}, {"--heartbeat", "10parsecs"}}) {
    broker_process broker(args);
    EXPECT_EQ(broker.finish(), 64) << args[0] << " " << (args.size() > 1 ? args[1] : "");
  }
}

TEST_F(BrokerToolTest, UnbindableEndpointExitsWith1AndSaysWhy) {
  broker_process broker({"-b", "nonsense://nowhere"});
  EXPECT_EQ(broker.finish(), 1);
  EXPECT_FALSE(broker.err.empty());
}

TEST_F(BrokerToolTest, HelpExitsWith0) {
  broker_process broker({"--help"});
  EXPECT_EQ(broker.finish(), 0);
  EXPECT_NE(broker.out.find("--request-expiry"), std::string::npos);
  // It says where it listens by default and how to listen on every interface.
  EXPECT_NE(broker.out.find("tcp://127.0.0.1:5555"), std::string::npos) << broker.out;
  EXPECT_NE(broker.out.find("--bind tcp://*:5555"), std::string::npos) << broker.out;
  EXPECT_NE(broker.out.find("--max-peer-bytes"), std::string::npos) << broker.out;
}

TEST_F(BrokerToolTest, ListensOnLoopbackOnlyByDefault) {
  broker_process broker({});
  const auto endpoint = broker.endpoint();
  if (!endpoint) {
    // Port 5555 is taken on this machine: nothing to learn about the default then.
    EXPECT_EQ(broker.finish(), 1);
    if (broker.err.find("in use") != std::string::npos) GTEST_SKIP() << broker.err;
    FAIL() << broker.out << broker.err;
  }
  EXPECT_EQ(*endpoint, "tcp://127.0.0.1:5555");
  broker.signal(SIGTERM);
  EXPECT_EQ(broker.finish(), 0) << broker.err;
}

}  // namespace
