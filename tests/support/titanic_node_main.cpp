// One node of a Titanic pair in a process of its own, for the pair chaos tests
// (tests/chaos/titanic_pair_chaos_test.cpp) that plant a bug in the replica. It runs what
// `fabric-broker --titanic DIR --role primary|backup` runs (tools/broker/main.cpp): a Majordomo
// broker and its Binary Star node on one reactor thread, and titanic::pair switching between the
// service and the replica as the node's state changes, with the node's term kept in the journal
// and its takeover held back until the replica has caught up. It links the testing library to
// reach the fault injection points of src/reliability/tsp_faults.hpp: with
// FABRIC_TSP_REPLICA_SKIPS_APPLY=1 (or --replica-skips-apply) the replica acknowledges entries
// without applying them, so that a failover to this node loses requests answered "200".
//
// On stdout: "listening on <endpoint>" once the broker serves; on stderr the same log lines as
// fabric-broker ("binary star: passive -> active, term 2", "titanic replica: caught up ...").
// The process dies with its parent and gives up after --lifetime seconds, so none outlives a
// test; SIGTERM or SIGINT stop it cleanly.
#include <fabric/binary_star.hpp>
#include <fabric/context.hpp>
#include <fabric/journal.hpp>
#include <fabric/log.hpp>
#include <fabric/majordomo.hpp>
#include <fabric/titanic.hpp>
#include <fabric_support/daemon.hpp>

#include "common/host.hpp"
#include "reliability/tsp_faults.hpp"

#include <signal.h>
#include <sys/prctl.h>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace {

using fabric::log_level;
using fabric::support::log_to_stderr;

constexpr const char* usage =
    "usage: fabric-test-titanic-node --bind EP --role primary|backup --state-bind EP --peer EP\n"
    "                                --titanic DIR --replication-bind EP --peer-replication EP\n"
    "                                [--replication sync|async] [--pair-heartbeat-ms MS]\n"
    "                                [--heartbeat-ms MS] [--replica-skips-apply] [--lifetime S]\n"
    "Environment: FABRIC_TSP_REPLICA_SKIPS_APPLY=1 is --replica-skips-apply\n"
    "(src/reliability/tsp_faults.hpp).\n"
    "One node of a Titanic pair, as fabric-broker --titanic --role runs it, for fabric's chaos\n"
    "tests (see the source's header).\n";

constexpr int exit_usage = 64;

struct settings {
  std::string bind;
  std::string role;
  std::string state_bind;
  std::string peer;
  std::string titanic_dir;
  std::string replication_bind;
  std::string peer_replication;
  std::string mode = "sync";
  std::chrono::milliseconds pair_heartbeat{1000};
  std::chrono::milliseconds heartbeat{2500};
  bool skips_apply = false;
  std::chrono::seconds lifetime{600};
};

[[noreturn]] void fail(int code, const std::string& what) {
  std::fprintf(stderr, "fabric-test-titanic-node: %s\n", what.c_str());
  std::fflush(stderr);
  std::_Exit(code);
}

std::uint64_t number(std::string_view text, std::string_view what) {
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v == 0)
    fail(exit_usage, "bad " + std::string(what) + ": " + std::string(text));
  return v;
}

settings parse(int argc, char** argv) {
  settings s;
  if (const char* v = std::getenv("FABRIC_TSP_REPLICA_SKIPS_APPLY"); v != nullptr && std::string_view(v) == "1")
    s.skips_apply = true;
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      std::fputs(usage, stdout);
      std::exit(0);
    }
    if (flag == "--replica-skips-apply") {
      s.skips_apply = true;
      continue;
    }
    if (i + 1 >= argc) fail(exit_usage, std::string(flag) + " needs a value");
    const std::string_view value = argv[++i];
    if (flag == "--bind") s.bind = value;
    else if (flag == "--role") s.role = value;
    else if (flag == "--state-bind") s.state_bind = value;
    else if (flag == "--peer") s.peer = value;
    else if (flag == "--titanic") s.titanic_dir = value;
    else if (flag == "--replication-bind") s.replication_bind = value;
    else if (flag == "--peer-replication") s.peer_replication = value;
    else if (flag == "--replication") s.mode = value;
    else if (flag == "--pair-heartbeat-ms") s.pair_heartbeat = std::chrono::milliseconds(number(value, flag));
    else if (flag == "--heartbeat-ms") s.heartbeat = std::chrono::milliseconds(number(value, flag));
    else if (flag == "--lifetime") s.lifetime = std::chrono::seconds(number(value, flag));
    else fail(exit_usage, "unknown flag " + std::string(flag) + "\n" + usage);
  }
  if (s.bind.empty() || s.state_bind.empty() || s.peer.empty() || s.titanic_dir.empty() ||
      s.replication_bind.empty() || s.peer_replication.empty())
    fail(exit_usage, usage);
  if (s.role != "primary" && s.role != "backup") fail(exit_usage, "--role is primary or backup");
  if (s.mode != "sync" && s.mode != "async") fail(exit_usage, "--replication is sync or async");
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  const settings s = parse(argc, argv);
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  fabric::tsp::faults::set_replica_skips_apply(s.skips_apply);
  const auto role = s.role == "primary" ? fabric::binary_star::role::primary : fabric::binary_star::role::backup;
  const fabric::log_fn log = [](log_level l, std::string_view line) {
    if (l >= log_level::info) log_to_stderr(l, line);
  };
  try {
    // Before any thread starts, as in fabric-broker: only the wait below sees the stop signals.
    fabric::support::stop_signals stop;
    fabric::context ctx;
    ctx.set_log(log, log_level::info);
    // The journal first: the node starts from the term it kept.
    std::filesystem::create_directories(s.titanic_dir);
    fabric::journal j = fabric::journal::open(s.titanic_dir);
    std::unique_ptr<fabric::titanic::pair> titanic;
    fabric::binary_star::node node(ctx, {.role = role,
                                         .bind = s.state_bind,
                                         .peer = s.peer,
                                         .heartbeat = s.pair_heartbeat,
                                         .term = fabric::titanic::stored_term(j),
                                         .ready = [&titanic] { return !titanic || titanic->ready(); },
                                         .log = log,
                                         .min_log_level = log_level::info});
    fabric::mdp::broker_options bo;
    bo.endpoints = {s.bind};
    bo.heartbeat_interval = s.heartbeat;
    bo.min_log_level = log_level::info;
    bo.log = log;
    bo.pair = &node;
    fabric::mdp::broker broker(ctx, bo, fabric::mdp::deferred_start);
    // Made before the node runs, so that it sees every change of state.
    fabric::titanic::pair_options tp;
    tp.role = role;
    tp.service.broker = broker.endpoints().front();
    tp.service.heartbeat = s.heartbeat;
    tp.service.log = log;
    tp.service.replication.bind = s.replication_bind;
    tp.service.replication.mode =
        s.mode == "async" ? fabric::titanic::replication_mode::async : fabric::titanic::replication_mode::sync;
    tp.service.replication.follower_timeout = s.pair_heartbeat * 2;
    tp.replica.peer = s.peer_replication;
    tp.replica.timeout = s.pair_heartbeat * 2;
    tp.replica.log = log;
    titanic = std::make_unique<fabric::titanic::pair>(ctx, j, tp);
    node.on_state_change([&titanic](fabric::binary_star::state, fabric::binary_star::state to, std::uint64_t term) {
      titanic->on_state_change(to, term);
    });
    fabric::tools::reactor_host host(
        ctx,
        [&](fabric::reactor& r) {
          node.attach(r);
          broker.attach(r);
        },
        [&](fabric::reactor& r) {
          broker.detach(r);
          node.detach(r);
        });
    for (const auto& ep : broker.endpoints()) std::printf("listening on %s\n", ep.c_str());
    std::fflush(stdout);
    log_to_stderr(log_level::info, "titanic node " + s.role + " on journal " + s.titanic_dir +
                                       (s.skips_apply ? ", the replica skips applying (a planted bug)" : ""));
    const auto give_up = std::chrono::steady_clock::now() + s.lifetime;
    int signal = 0;
    while (signal == 0) {
      if (!host.running() || titanic->failure())
        fail(1, "the node stopped" + fabric::support::failure_text(titanic->failure() ? titanic->failure()
                                                                                       : host.failure()));
      if (std::chrono::steady_clock::now() > give_up) fail(15, "never killed: gave up after --lifetime");
      signal = stop.wait_for(std::chrono::milliseconds(100));
      if (signal == SIGHUP) signal = 0;
    }
    log_to_stderr(log_level::info, "received " + fabric::support::stop_signals::name(signal) + ", stopping");
    if (!host.stop()) fail(1, "the node's thread did not stop in time");
    titanic.reset();
    return broker.stop() ? 0 : 1;
  } catch (const std::exception& e) {
    fail(1, e.what());
  }
}
