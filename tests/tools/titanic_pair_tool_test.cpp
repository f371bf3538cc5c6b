// Tests of the daemons' Titanic pair flags (docs/ha.md, sections 9 and 13), run as child
// processes: two `fabric-titanic --role primary|backup` beside one fabric-broker store and serve a
// request; when the active one is killed with -9 the other takes over by itself (a passive
// Titanic node is no worker, so it asks to take over each heartbeat) and serves the reply of a
// request posted before the kill; and bad pair flags of fabric-broker and fabric-titanic are
// refused with exit code 64.
#include <fabric/context.hpp>
#include <fabric/majordomo_worker.hpp>
#include <fabric/message.hpp>
#include <fabric/titanic_client.hpp>

#include "support/process.hpp"
#include "support/support.hpp"

#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using fabric::testing::child_process;
using fabric::testing::free_tcp_port;
using fabric::testing::temp_dir;
using namespace std::chrono_literals;
namespace tsp = fabric::titanic;

#if defined(FABRIC_TITANIC_TOOL) && defined(FABRIC_BROKER_TOOL)
constexpr std::string_view titanic_path = FABRIC_TITANIC_TOOL;
constexpr std::string_view broker_path = FABRIC_BROKER_TOOL;
#else
constexpr std::string_view titanic_path;  // tools not built: every test skips
constexpr std::string_view broker_path;
#endif

// Bounds every wait for a child's output or a reply: long enough for a loaded machine.
constexpr std::chrono::milliseconds bound = 15s;

std::string tcp(std::uint16_t port) { return "tcp://127.0.0.1:" + std::to_string(port); }

std::vector<std::string> words(std::string_view program, const std::vector<std::string>& args) {
  std::vector<std::string> w{std::string(program)};
  w.insert(w.end(), args.begin(), args.end());
  return w;
}

// Waits until `p` logged `needle` on stderr.
bool logged(child_process& p, std::string_view needle, std::chrono::milliseconds within = bound) {
  return p.read_until([&](std::string_view) { return p.err.find(needle) != std::string::npos; }, within);
}

// A service on a thread of its own that answers "done:<body>".
class echo_service {
 public:
  echo_service(fabric::context& ctx, const std::string& broker, const std::string& service)
      : worker_(ctx, {.broker = broker, .service = service, .heartbeat_interval = 100ms}),
        thread_([this](std::stop_token stop) {
          while (!stop.stop_requested()) {
            auto req = worker_.recv(20ms);
            if (!req) continue;
            const std::string body(req->body.empty() ? "" : req->body.view(0));
            (void)worker_.reply(*req, fabric::make_message("done:" + body));
          }
        }) {}

 private:
  fabric::mdp::worker worker_;
  std::jthread thread_;  // last: stopped and joined before the worker goes
};

class TitanicPairToolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (titanic_path.empty() || broker_path.empty()) GTEST_SKIP() << "the tools are not built";
    for (auto* p : {&state_[0], &state_[1], &replication_[0], &replication_[1]}) *p = free_tcp_port();
  }

  // fabric-titanic as node `i` of the pair (0 the primary), on a journal of its own.
  std::unique_ptr<child_process> titanic_node(int i, const std::string& broker) {
    const int peer = 1 - i;
    auto p = std::make_unique<child_process>(words(
        titanic_path,
        {"--broker", broker, "--journal", (dir_.path() / ("node-" + std::to_string(i))).string(), "--heartbeat",
         "100ms", "--retry-base", "20ms", "--retry-max", "200ms", "--role", i == 0 ? "primary" : "backup",
         "--state-bind", tcp(state_[i]), "--peer", tcp(state_[peer]), "--replication-bind", tcp(replication_[i]),
         "--peer-replication", tcp(replication_[peer]), "--pair-heartbeat", "100ms"}));
    EXPECT_TRUE(p->read_until("serving\n", bound)) << p->err;
    return p;
  }

  fabric::context ctx_;
  temp_dir dir_{"fabric-tpc-tool-"};
  std::uint16_t state_[2] = {}, replication_[2] = {};
};

TEST_F(TitanicPairToolTest, ThePassiveFabricTitanicTakesOverAfterAKillAndServesWhatWasPostedBefore) {
  child_process broker(words(broker_path, {"--bind", "tcp://127.0.0.1:*", "--heartbeat", "100ms"}));
  const std::string endpoint = fabric::testing::listening_endpoint(broker, bound);
  ASSERT_FALSE(endpoint.empty()) << broker.err;
  auto primary = titanic_node(0, endpoint);
  auto backup = titanic_node(1, endpoint);
  ASSERT_TRUE(logged(*primary, "-> active")) << primary->err;
  ASSERT_TRUE(logged(*backup, "-> passive")) << backup->err;
  ASSERT_TRUE(logged(*backup, "titanic replica: caught up")) << backup->err;

  // A request stored and served by the active node.
  tsp::client c(ctx_, {.broker = endpoint, .timeout = 500ms, .retries = 30, .keys = tsp::key_mode::keyed,
                       .correlate = true});
  {
    echo_service now(ctx_, endpoint, "now");
    auto id = c.post("now", fabric::make_message("1"));
    ASSERT_TRUE(id) << id.error().message() << primary->err;
    auto r = c.wait(*id, bound);
    ASSERT_TRUE(r) << r.error().message();
    ASSERT_EQ(r->state, tsp::reply_state::ready);
    EXPECT_EQ(r->body.view(0), "done:1");
    EXPECT_TRUE(c.close(*id));
  }
  // A request for a service with no worker yet: stored ("200" once the backup holds it too, sync
  // mode), and still open when the active node dies.
  auto later = c.post("later", fabric::make_message("2"));
  ASSERT_TRUE(later) << later.error().message();
  primary->signal(SIGKILL);
  EXPECT_EQ(primary->finish(5s), 128 + SIGKILL);

  // No client request reaches a passive Titanic node: it takes over by itself.
  ASSERT_TRUE(logged(*backup, "passive -> active")) << backup->err;
  echo_service then(ctx_, endpoint, "later");
  auto r = c.wait(*later, bound);
  ASSERT_TRUE(r) << r.error().message() << backup->err;
  ASSERT_EQ(r->state, tsp::reply_state::ready) << backup->err;
  EXPECT_EQ(r->body.view(0), "done:2");
  EXPECT_TRUE(c.close(*later));

  backup->signal(SIGTERM);
  EXPECT_EQ(backup->finish(10s), 0) << backup->err;
}

TEST_F(TitanicPairToolTest, BadPairFlagsOfBothDaemonsAreRefused) {
  const std::string journal = (dir_.path() / "journal").string();
  const std::vector<std::vector<std::string>> broker_bad = {
      // --titanic with --role, no --replication-bind.
      {"--titanic", journal, "--role", "primary", "--state-bind", tcp(state_[0]), "--peer", tcp(state_[1]),
       "--peer-replication", tcp(replication_[1])},
      // --titanic with --role, no --peer-replication.
      {"--titanic", journal, "--role", "backup", "--state-bind", tcp(state_[0]), "--peer", tcp(state_[1]),
       "--replication-bind", tcp(replication_[0])},
      // --replication-bind without --role.
      {"--titanic", journal, "--replication-bind", tcp(replication_[0]), "--peer-replication", tcp(replication_[1])},
      // --peer-replication without --titanic.
      {"--role", "primary", "--state-bind", tcp(state_[0]), "--peer", tcp(state_[1]), "--peer-replication",
       tcp(replication_[1])},
      // a witness holds no data.
      {"--role", "witness", "--state-bind", tcp(state_[0]), "--titanic", journal},
      // no such mode.
      {"--titanic", journal, "--role", "primary", "--state-bind", tcp(state_[0]), "--peer", tcp(state_[1]),
       "--replication-bind", tcp(replication_[0]), "--peer-replication", tcp(replication_[1]), "--replication",
       "eventually"},
  };
  for (const auto& args : broker_bad) {
    child_process p(words(broker_path, args));
    std::string line;
    for (const auto& a : args) line += a + " ";
    EXPECT_EQ(p.finish(10s), 64) << "fabric-broker " << line << ": " << p.err;
  }
  const std::vector<std::vector<std::string>> titanic_bad = {
      // --role without --peer-replication.
      {"--journal", journal, "--role", "primary", "--state-bind", tcp(state_[0]), "--peer", tcp(state_[1]),
       "--replication-bind", tcp(replication_[0])},
      // --role without --replication-bind.
      {"--journal", journal, "--role", "backup", "--state-bind", tcp(state_[0]), "--peer", tcp(state_[1]),
       "--peer-replication", tcp(replication_[1])},
      // --replication-bind without --role.
      {"--journal", journal, "--replication-bind", tcp(replication_[0])},
      // a Titanic node is never a witness.
      {"--journal", journal, "--role", "witness", "--state-bind", tcp(state_[0])},
  };
  for (const auto& args : titanic_bad) {
    child_process p(words(titanic_path, args));
    std::string line;
    for (const auto& a : args) line += a + " ";
    EXPECT_EQ(p.finish(10s), 64) << "fabric-titanic " << line << ": " << p.err;
  }
  // Nothing was refused after the journal was made.
  EXPECT_FALSE(std::filesystem::exists(journal));
}

}  // namespace
