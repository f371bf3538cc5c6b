// A worker of the service "work" in a process of its own, for the Titanic chaos tests
// (tests/chaos/titanic_chaos_test.cpp): the service Titanic dispatches to, killed -9 now and then.
//
// Each request's body is one frame, the test client's request number n in decimal; the answer is
// "done:<n>". The service's effects live in one journal shared by all its workers (--journal, the
// service's own database): every execution is one transaction that appends "<worker> <n>" to the
// stream "executions" and marks n seen (producer "tsp-client", stream "work", seq n); only when
// the mark is fresh does it append the effect "<n> <worker>" to the stream "effects". Check, mark
// and effect commit together, so whatever Titanic dispatches again (it executes at least once),
// each request's effect is applied once: the effectively-once processing of docs/titanic.md,
// section 4.1. The answer goes back only once the transaction is durable. With --work-ms each
// execution first works that long, so that kills find requests in flight.
//
// A journal has one writing process, so a worker opens the shared journal for each execution and
// closes it after; when the other worker holds it, it tries again (bounded by --lock-wait-ms).
//
// With --failover (repeatable) the worker knows the other brokers of a Binary Star pair
// (mdp::worker_options::failover): each fresh connection goes to the next one, so it settles on
// the active node, as the Titanic pair chaos test (tests/chaos/titanic_pair_chaos_test.cpp) needs.
//
// On stdout: "ready" once the worker runs. The process dies with its parent and gives up after
// --lifetime seconds, so none outlives a test.
#include <fabric/context.hpp>
#include <fabric/error.hpp>
#include <fabric/journal.hpp>
#include <fabric/majordomo_worker.hpp>

#include <signal.h>
#include <sys/prctl.h>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

constexpr const char* usage =
    "usage: fabric-test-tsp-worker --broker EP --name NAME --journal DIR [--heartbeat-ms MS]\n"
    "                              [--work-ms MS] [--lock-wait-ms MS] [--lifetime S]\n"
    "                              [--failover EP]...\n"
    "A worker of the service \"work\" that applies each request's effect once, for fabric's\n"
    "Titanic chaos tests (see the source's header).\n";

enum exit_code : int { exit_usage = 64, exit_failed = 1, exit_lifetime = 15 };

struct settings {
  std::string broker;
  std::vector<std::string> failover;
  std::string name;
  std::string journal_dir;
  std::chrono::milliseconds heartbeat{100};
  std::chrono::milliseconds work{0};
  std::chrono::milliseconds lock_wait{10'000};
  std::chrono::seconds lifetime{600};
};

[[noreturn]] void fail(int code, const std::string& what) {
  std::fprintf(stderr, "fabric-test-tsp-worker: %s\n", what.c_str());
  std::fflush(stderr);
  std::_Exit(code);
}

std::optional<std::uint64_t> number(std::string_view text) {
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return v;
}

settings parse(int argc, char** argv) {
  settings s;
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      std::fputs(usage, stdout);
      std::exit(0);
    }
    if (i + 1 >= argc) fail(exit_usage, std::string(flag) + " needs a value");
    const std::string_view value = argv[++i];
    const auto n = [&] {
      const auto v = number(value);
      if (!v) fail(exit_usage, "bad " + std::string(flag) + ": " + std::string(value));
      return *v;
    };
    if (flag == "--broker") s.broker = value;
    else if (flag == "--failover") s.failover.emplace_back(value);
    else if (flag == "--name") s.name = value;
    else if (flag == "--journal") s.journal_dir = value;
    else if (flag == "--heartbeat-ms") s.heartbeat = std::chrono::milliseconds(n());
    else if (flag == "--work-ms") s.work = std::chrono::milliseconds(n());
    else if (flag == "--lock-wait-ms") s.lock_wait = std::chrono::milliseconds(n());
    else if (flag == "--lifetime") s.lifetime = std::chrono::seconds(n());
    else fail(exit_usage, "unknown flag " + std::string(flag) + "\n" + usage);
  }
  if (s.broker.empty() || s.name.empty() || s.journal_dir.empty()) fail(exit_usage, usage);
  return s;
}

// The shared journal, opened for one execution: another worker may hold it for a moment.
fabric::journal open_shared(const settings& s) {
  fabric::journal_options o;
  o.mode = fabric::durability::sync;
  const auto until = clock_type::now() + s.lock_wait;
  for (;;) {
    try {
      return fabric::journal::open(s.journal_dir, o);
    } catch (const fabric::error& e) {
      if (clock_type::now() > until) fail(exit_failed, std::string("the journal stayed busy: ") + e.what());
    }
    // The other worker's transaction takes a few ms: back off for less than that.
    std::this_thread::sleep_for(1ms);
  }
}

// Runs request n once in the service's journal. Returns: whether the effect was applied now.
bool execute(const settings& s, std::uint64_t n) {
  fabric::journal j = open_shared(s);
  bool fresh = false;
  const std::string seq = std::to_string(n);
  auto r = j.transact([&](fabric::journal_txn& t) {
    t.append("executions", s.name + " " + seq);
    fabric::dedup_key key;
    key.producer = "tsp-client";
    key.stream = "work";
    key.seq = n;
    fresh = t.mark_seen(key) == fabric::dedup_verdict::fresh;
    if (fresh) t.append("effects", seq + " " + s.name);
  });
  if (!r) fail(exit_failed, "the execution of request " + seq + " was not recorded: " + r.error().message());
  return fresh;
}

}  // namespace

int main(int argc, char** argv) {
  const settings s = parse(argc, argv);
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  std::filesystem::create_directories(s.journal_dir);
  fabric::context ctx;
  fabric::mdp::worker_options o;
  o.broker = s.broker;
  o.failover = s.failover;
  o.service = "work";
  o.heartbeat_interval = s.heartbeat;
  o.reconnect_interval = s.heartbeat;
  o.reconnect_interval_max = s.heartbeat * 4;
  fabric::mdp::worker w(ctx, o);
  std::printf("ready\n");
  std::fflush(stdout);
  const auto give_up = clock_type::now() + s.lifetime;
  fabric::mdp::worker::request req;
  for (;;) {
    if (clock_type::now() > give_up) fail(exit_lifetime, "never killed: gave up after --lifetime");
    auto r = w.recv(req, 1s);
    if (!r) {
      if (r.is(fabric::errc::timeout)) continue;
      fail(exit_failed, "recv: " + r.error().message());
    }
    const auto n = req.body.size() == 1 ? number(req.body.view(0)) : std::nullopt;
    if (!n || *n == 0) fail(exit_failed, "a request that is not a request number");
    // The work before the effect: the time a request spends in flight is the subject here.
    if (s.work > 0ms) std::this_thread::sleep_for(s.work);
    (void)execute(s, *n);
    (void)w.reply(req, fabric::message("done:" + std::to_string(*n)));
  }
}
