// Tests of fabric-titanic and of Titanic in fabric-broker (--titanic), run as child processes
// beside a fabric-broker process: their command lines, a 9/TSP round trip through each, a clean
// stop on SIGTERM that keeps every stored request for the next start, and what fabric-journal
// reports of the journal they leave (requests by state, the dead-letter queue).
#include <fabric/context.hpp>
#include <fabric/majordomo.hpp>
#include <fabric/majordomo_worker.hpp>
#include <fabric/message.hpp>
#include <fabric/titanic_client.hpp>
#include <fabric/version.hpp>

#include "support/process.hpp"
#include "support/support.hpp"

#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using fabric::testing::child_process;
using fabric::testing::temp_dir;
using namespace std::chrono_literals;
namespace tsp = fabric::titanic;

#if defined(FABRIC_TITANIC_TOOL) && defined(FABRIC_BROKER_TOOL) && defined(FABRIC_JOURNAL_TOOL)
constexpr std::string_view titanic_path = FABRIC_TITANIC_TOOL;
constexpr std::string_view broker_path = FABRIC_BROKER_TOOL;
constexpr std::string_view journal_path = FABRIC_JOURNAL_TOOL;
#else
constexpr std::string_view titanic_path;  // tools not built: every test skips
constexpr std::string_view broker_path;
constexpr std::string_view journal_path;
#endif

// Bounds every wait for a child's output or a reply: long enough for a loaded machine.
constexpr std::chrono::milliseconds bound = 15s;

// One of the tools running as a child process.
class tool : public child_process {
 public:
  tool(std::string_view path, const std::vector<std::string>& args) : child_process(with(path, args)) {}

 private:
  static std::vector<std::string> with(std::string_view path, const std::vector<std::string>& args) {
    std::vector<std::string> words{std::string(path)};
    words.insert(words.end(), args.begin(), args.end());
    return words;
  }
};

// fabric-broker on a port the OS picks, with short heartbeats; extra arguments after those.
class broker_process : public tool {
 public:
  explicit broker_process(const std::vector<std::string>& extra = {}) : tool(broker_path, args(extra)) {}

  // The endpoint it printed once it serves; empty when it did not within the bound.
  std::string endpoint() { return fabric::testing::listening_endpoint(*this, bound); }

 private:
  static std::vector<std::string> args(const std::vector<std::string>& extra) {
    std::vector<std::string> a{"--bind", "tcp://127.0.0.1:*", "--heartbeat", "100ms"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
};

// fabric-titanic on `journal`, connected to `broker`, with short heartbeats and retries.
class titanic_process : public tool {
 public:
  titanic_process(const std::string& broker, const std::filesystem::path& journal,
                  const std::vector<std::string>& extra = {})
      : tool(titanic_path, args(broker, journal, extra)) {}

 private:
  static std::vector<std::string> args(const std::string& broker, const std::filesystem::path& journal,
                                       const std::vector<std::string>& extra) {
    std::vector<std::string> a{"--broker",     broker, "--journal", journal.string(), "--heartbeat", "100ms",
                               "--retry-base", "20ms", "--retry-max", "200ms"};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
};

struct run_result {
  int code = -1;
  std::string out;
  std::string err;
};

run_result run(std::string_view path, const std::vector<std::string>& args) {
  tool p(path, args);
  const int code = p.finish();
  return {code, p.out, p.err};
}

// `text` without its white space, so JSON is matched whatever its layout.
std::string squeezed(std::string_view text) {
  std::string s;
  for (const char c : text)
    if (!std::isspace(static_cast<unsigned char>(c))) s += c;
  return s;
}

// A real service on a thread of its own: answers "done:<body>", or, `silent`, takes requests
// and never answers.
class service_worker {
 public:
  service_worker(fabric::context& ctx, const std::string& broker, const std::string& service, bool silent = false)
      : worker_(ctx, {.broker = broker, .service = service, .heartbeat_interval = 100ms}),
        thread_([this, silent](std::stop_token stop) {
          while (!stop.stop_requested()) {
            auto req = worker_.recv(20ms);
            if (!req) continue;
            ++requests_;
            if (silent) continue;
            const std::string body(req->body.empty() ? "" : req->body.view(0));
            (void)worker_.reply(*req, fabric::make_message("done:" + body));
          }
        }) {}

  std::size_t requests() const { return requests_; }

 private:
  fabric::mdp::worker worker_;
  std::atomic<std::size_t> requests_{0};
  std::jthread thread_;  // last: stopped and joined before the worker goes
};

class TitanicToolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (titanic_path.empty()) GTEST_SKIP() << "the tools are not built";
  }

  // Waits until the broker at `endpoint` knows workers of `service` (8/MMI).
  bool await_service(const std::string& endpoint, const std::string& service) {
    fabric::mdp::client mmi(ctx, {.broker = endpoint, .timeout = 1000ms, .retries = 3});
    const auto deadline = std::chrono::steady_clock::now() + bound;
    while (std::chrono::steady_clock::now() < deadline) {
      auto answer = mmi.request("mmi.service", fabric::make_message(service));
      if (answer && answer->view(0) == "200") return true;  // each question waits for its answer
    }
    return false;
  }

  tsp::client client_of(const std::string& endpoint) {
    return tsp::client(ctx, {.broker = endpoint, .keys = tsp::key_mode::keyed, .correlate = true});
  }

  // Posts `body` for `service`; an empty id on failure (the test has failed then).
  tsp::request_id post(tsp::client& c, const std::string& service, const std::string& body) {
    auto id = c.post(service, fabric::make_message(body));
    EXPECT_TRUE(id) << id.error().message();
    return id ? *id : tsp::request_id{};
  }

  static tsp::reply_state state_of(tsp::client& c, const tsp::request_id& id) {
    auto r = c.poll(id);
    EXPECT_TRUE(r) << r.error().message();
    return r ? r->state : tsp::reply_state::unknown;
  }

  // Waits for the reply to `id` and returns its first frame; "" when it did not come.
  static std::string collect(tsp::client& c, const tsp::request_id& id) {
    auto r = c.wait(id, bound);
    EXPECT_TRUE(r) << r.error().message();
    if (!r || r->state != tsp::reply_state::ready || r->body.empty()) return {};
    return std::string(r->body.view(0));
  }

  fabric::context ctx;
  temp_dir dir;
};

TEST_F(TitanicToolTest, HelpAndVersionExitWith0) {
  const auto help = run(titanic_path, {"--help"});
  EXPECT_EQ(help.code, 0) << help.err;
  for (const char* flag : {"--broker", "--journal", "--durability", "--max-in-flight", "--dispatch-timeout",
                           "--max-attempts", "--retry-base", "--retry-max", "--request-ttl", "--reply-retention",
                           "--heartbeat", "--credit", "--log-level", "--stats-interval"})
    EXPECT_NE(help.out.find(flag), std::string::npos) << flag << " missing from:\n" << help.out;
  // It says where it connects by default, and what it prints once it serves.
  EXPECT_NE(help.out.find("tcp://127.0.0.1:5555"), std::string::npos) << help.out;
  EXPECT_NE(help.out.find("serving"), std::string::npos) << help.out;

  const auto version = run(titanic_path, {"--version"});
  EXPECT_EQ(version.code, 0) << version.err;
  EXPECT_NE(version.out.find(fabric::version_string), std::string::npos) << version.out;
}

TEST_F(TitanicToolTest, BadArgumentsExitWith64) {
  const std::string j = (dir.path() / "j").string();
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"--journal", j, "--no-such-flag"},
        {"--journal", j, "--durability", "eventually"},
        {"--journal", j, "--max-attempts", "0"},
        {"--journal", j, "--dispatch-timeout", "10parsecs"},
        {"--journal", j, "--credit", "2000"},
        {"--journal", j, "--log-level", "chatty"},
        {"--journal", j, "--retry-base", "2s", "--retry-max", "1s"}}) {
    const auto r = run(titanic_path, args);
    EXPECT_EQ(r.code, 64) << args[2];
    EXPECT_FALSE(r.err.empty()) << args[2];
  }
  // Nothing was opened or created for a command line refused.
  EXPECT_FALSE(std::filesystem::exists(j));
}

TEST_F(TitanicToolTest, AMissingJournalExitsWith64AndSaysSo) {
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{}, {"--broker", "tcp://127.0.0.1:5555"}}) {
    const auto r = run(titanic_path, args);
    EXPECT_EQ(r.code, 64);
    EXPECT_NE(r.err.find("--journal"), std::string::npos) << r.err;
  }
}

TEST_F(TitanicToolTest, ServesARoundTripAndStopsCleanlyOnSigterm) {
  broker_process broker;
  const auto endpoint = broker.endpoint();
  ASSERT_FALSE(endpoint.empty()) << broker.err;
  titanic_process titanic(endpoint, dir.path() / "titanic");
  ASSERT_TRUE(titanic.read_until("serving\n", bound)) << titanic.err;
  ASSERT_TRUE(await_service(endpoint, "titanic.keyed-request"));

  service_worker echo(ctx, endpoint, "echo");
  auto c = client_of(endpoint);
  const auto id = post(c, "echo", "ping");
  EXPECT_EQ(collect(c, id), "done:ping");
  EXPECT_TRUE(c.close(id));
  EXPECT_EQ(state_of(c, id), tsp::reply_state::unknown);

  titanic.signal(SIGTERM);
  EXPECT_EQ(titanic.finish(), 0) << titanic.err;
  EXPECT_NE(titanic.err.find("received SIGTERM"), std::string::npos) << titanic.err;
  // The final counters, as one JSON line.
  const auto stats = titanic.err.find("stats {");
  ASSERT_NE(stats, std::string::npos) << titanic.err;
  const std::string line = titanic.err.substr(stats, titanic.err.find('\n', stats) - stats);
  for (const char* field : {"\"stored\":1,", "\"replies\":1,", "\"closed\":1,", "\"open\":0,"})
    EXPECT_NE(line.find(field), std::string::npos) << field << " not in " << line;

  broker.signal(SIGTERM);
  EXPECT_EQ(broker.finish(), 0) << broker.err;
}

TEST_F(TitanicToolTest, ARequestStoredBeforeAStopIsAnsweredAfterTheRestart) {
  broker_process broker;
  const auto endpoint = broker.endpoint();
  ASSERT_FALSE(endpoint.empty()) << broker.err;
  const auto journal = dir.path() / "titanic";
  auto c = client_of(endpoint);
  tsp::request_id id;
  {
    titanic_process first(endpoint, journal);
    ASSERT_TRUE(first.read_until("serving\n", bound)) << first.err;
    ASSERT_TRUE(await_service(endpoint, "titanic.keyed-request"));
    id = post(c, "later", "stored");
    EXPECT_EQ(state_of(c, id), tsp::reply_state::pending);  // no worker for "later" yet
    first.signal(SIGTERM);
    EXPECT_EQ(first.finish(), 0) << first.err;
    EXPECT_NE(first.err.find("\"open\":1,"), std::string::npos) << first.err;
  }

  titanic_process second(endpoint, journal);
  ASSERT_TRUE(second.read_until("serving\n", bound)) << second.err;
  ASSERT_TRUE(await_service(endpoint, "titanic.reply"));
  EXPECT_EQ(state_of(c, id), tsp::reply_state::pending);
  service_worker later(ctx, endpoint, "later");
  EXPECT_EQ(collect(c, id), "done:stored");
  EXPECT_TRUE(c.close(id));
  EXPECT_GE(later.requests(), 1U);

  second.signal(SIGTERM);
  EXPECT_EQ(second.finish(), 0) << second.err;
  broker.signal(SIGTERM);
  EXPECT_EQ(broker.finish(), 0) << broker.err;
}

TEST_F(TitanicToolTest, TheBrokerServesTitanicInOneProcess) {
  const auto journal = dir.path() / "in-broker";
  broker_process broker({"--titanic", journal.string()});
  const auto endpoint = broker.endpoint();
  ASSERT_FALSE(endpoint.empty()) << broker.err;
  ASSERT_TRUE(await_service(endpoint, "titanic.request"));
  ASSERT_TRUE(await_service(endpoint, "titanic.keyed-request"));

  service_worker echo(ctx, endpoint, "echo");
  auto c = client_of(endpoint);
  const auto closed = post(c, "echo", "one");
  const auto kept = post(c, "echo", "two");
  EXPECT_EQ(collect(c, closed), "done:one");
  EXPECT_EQ(collect(c, kept), "done:two");
  EXPECT_TRUE(c.close(closed));

  broker.signal(SIGTERM);
  EXPECT_EQ(broker.finish(), 0) << broker.err;
  EXPECT_NE(broker.err.find("titanic service on journal"), std::string::npos) << broker.err;
  EXPECT_NE(broker.err.find("received SIGTERM"), std::string::npos) << broker.err;

  // The journal it wrote holds the reply not collected, and nothing else.
  const auto stats = run(journal_path, {"stats", "--json", journal.string()});
  ASSERT_EQ(stats.code, 0) << stats.err;
  const std::string doc = squeezed(stats.out);
  EXPECT_NE(doc.find("\"open\":0"), std::string::npos) << stats.out;
  EXPECT_NE(doc.find("\"replied\":1"), std::string::npos) << stats.out;
  EXPECT_NE(doc.find("\"given_up\":0"), std::string::npos) << stats.out;
}

TEST_F(TitanicToolTest, JournalStatsAndDlqShowTheRequestsByState) {
  broker_process broker;
  const auto endpoint = broker.endpoint();
  ASSERT_FALSE(endpoint.empty()) << broker.err;
  const auto journal = dir.path() / "titanic";
  {
    // One attempt only, so the request whose worker never answers is given up at once.
    titanic_process titanic(endpoint, journal, {"--max-attempts", "1", "--dispatch-timeout", "300ms"});
    ASSERT_TRUE(titanic.read_until("serving\n", bound)) << titanic.err;
    ASSERT_TRUE(await_service(endpoint, "titanic.keyed-request"));
    service_worker echo(ctx, endpoint, "echo");
    service_worker silent(ctx, endpoint, "poison", true);
    auto c = client_of(endpoint);

    const auto replied = post(c, "echo", "kept");      // answered, never closed
    const auto given_up = post(c, "poison", "stuck");  // its worker never answers
    const auto open = post(c, "nobody", "waiting");    // no worker at all
    EXPECT_EQ(collect(c, replied), "done:kept");
    auto r = c.wait(given_up, bound);
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->state, tsp::reply_state::failed);
    EXPECT_EQ(state_of(c, open), tsp::reply_state::pending);

    titanic.signal(SIGTERM);
    ASSERT_EQ(titanic.finish(), 0) << titanic.err;
  }

  const auto text = run(journal_path, {"stats", journal.string()});
  ASSERT_EQ(text.code, 0) << text.err;
  EXPECT_NE(text.out.find("titanic requests"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("open        1 "), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("replied     1 "), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("given up    1 "), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("dead letters 1 "), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("keys        3"), std::string::npos) << text.out;

  const auto json = run(journal_path, {"stats", "--json", journal.string()});
  ASSERT_EQ(json.code, 0) << json.err;
  const std::string doc = squeezed(json.out);
  const auto section = doc.find("\"titanic\":{");
  ASSERT_NE(section, std::string::npos) << json.out;
  const std::string titanic = doc.substr(section, doc.find('}', section) - section);
  for (const char* field : {"\"open\":1", "\"replied\":1", "\"given_up\":1", "\"dead_letters\":1", "\"keys\":3"})
    EXPECT_NE(titanic.find(field), std::string::npos) << field << " not in " << titanic;

  const auto dlq = run(journal_path, {"dlq", "list", journal.string()});
  ASSERT_EQ(dlq.code, 0) << dlq.err;
  EXPECT_NE(dlq.out.find("from 'tsp.requests'"), std::string::npos) << dlq.out;
  EXPECT_NE(dlq.out.find("attempts 1"), std::string::npos) << dlq.out;
  EXPECT_EQ(dlq.out.find("id 2 "), std::string::npos) << "only one request was given up:\n" << dlq.out;

  broker.signal(SIGTERM);
  EXPECT_EQ(broker.finish(), 0) << broker.err;
}

}  // namespace
