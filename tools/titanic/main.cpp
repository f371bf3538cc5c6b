// fabric-titanic: the Titanic (9/TSP) service as a daemon. It opens its journal, registers with a
// Majordomo broker as the worker for titanic.request, titanic.reply, titanic.close and
// titanic.keyed-request, serves until SIGINT or SIGTERM, then stops cleanly: everything it
// answered "200" is in the journal, and the next start resumes it.
#include <fabric/binary_star.hpp>
#include <fabric/context.hpp>
#include <fabric/journal.hpp>
#include <fabric/log.hpp>
#include <fabric/titanic.hpp>
#include <fabric/version.hpp>
#include <fabric_support/daemon.hpp>
#include <fabric_support/duration.hpp>

#include <CLI/CLI.hpp>

#include "common/cli.hpp"
#include "common/host.hpp"

#include <chrono>
#include <exception>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>

namespace {

using fabric::log_level;
using fabric::support::format_duration;
using fabric::support::log_to_stderr;

std::string to_json(const fabric::titanic::service_stats& s) {
  std::string out = "{";
  const auto field = [&out](std::string_view name, std::uint64_t v) {
    if (out.size() > 1) out += ",";
    out += "\"";
    out += name;
    out += "\":";
    out += std::to_string(v);
  };
  field("requests", s.requests);
  field("reply_requests", s.reply_requests);
  field("close_requests", s.close_requests);
  field("malformed", s.malformed);
  field("stored", s.stored);
  field("keyed_again", s.keyed_again);
  field("answered_200", s.answered_200);
  field("answered_300", s.answered_300);
  field("answered_400", s.answered_400);
  field("answered_500", s.answered_500);
  field("answers_dropped", s.answers_dropped);
  field("dispatched", s.dispatched);
  field("replies", s.replies);
  field("late_replies", s.late_replies);
  field("dispatch_timeouts", s.dispatch_timeouts);
  field("no_workers", s.no_workers);
  field("given_up", s.given_up);
  field("expired", s.expired);
  field("closed", s.closed);
  field("removed", s.removed);
  field("commits", s.commits);
  field("commit_failures", s.commit_failures);
  field("journal_errors", s.journal_errors);
  field("open", s.open);
  field("in_flight", s.in_flight);
  field("waiting_in_journal", s.waiting_in_journal ? 1 : 0);
  field("credit", s.credit);
  field("worker_reconnects", s.worker_reconnects);
  return out + "}";
}

void log_stats(fabric::titanic::service& t) {
  try {
    log_to_stderr(log_level::info, "stats " + to_json(t.stats()));
  } catch (const std::exception& e) {
    log_to_stderr(log_level::warning, std::string("stats unavailable: ") + e.what());
  }
}

struct pair_flags {
  std::string role;
  std::string state_bind;
  std::string peer;
  std::string witness;
  std::string replication_bind;
  std::string peer_replication;
  std::string mode;
  long long heartbeat_ms = 1000;
};

// One node of a pair: the Binary Star node on a reactor thread of its own, the service or the
// replica switched by titanic::pair. No client request reaches a passive Titanic node (it is no
// worker of the broker then), so the node asks to take over once a heartbeat, as a request
// would: it becomes active once its peer has expired (with a witness, once granted) and it has
// caught up.
int run_pair(fabric::context& ctx, fabric::journal& j, const fabric::titanic::service_options& o,
             fabric::support::stop_signals& stop, log_level level, long long stats_ms, const pair_flags& f) {
  const auto role = f.role == "primary" ? fabric::binary_star::role::primary : fabric::binary_star::role::backup;
  const auto heartbeat = std::chrono::milliseconds(f.heartbeat_ms);
  fabric::titanic::pair_options tp;
  tp.role = role;
  tp.service = o;
  tp.service.replication.bind = f.replication_bind;
  tp.service.replication.mode =
      f.mode == "async" ? fabric::titanic::replication_mode::async : fabric::titanic::replication_mode::sync;
  tp.service.replication.follower_timeout = heartbeat * 2;
  tp.replica.peer = f.peer_replication;
  tp.replica.timeout = heartbeat * 2;
  tp.replica.log = o.log;
  fabric::titanic::pair titanic(ctx, j, tp);
  fabric::binary_star::node node(ctx, {.role = role,
                                       .bind = f.state_bind,
                                       .peer = f.peer,
                                       .witness = f.witness,
                                       .heartbeat = heartbeat,
                                       .term = fabric::titanic::stored_term(j),
                                       .ready = [&titanic] { return titanic.ready(); },
                                       .log = o.log,
                                       .min_log_level = level});
  node.on_state_change([&titanic](fabric::binary_star::state, fabric::binary_star::state to, std::uint64_t term) {
    titanic.on_state_change(to, term);
  });
  fabric::tools::reactor_host host(
      ctx,
      [&](fabric::reactor& r) {
        node.attach(r);
        r.every(heartbeat, [&node] {
          if (node.current() != fabric::binary_star::state::active) (void)node.admit();
        });
      },
      [&](fabric::reactor& r) { node.detach(r); });
  std::cout << "serving" << std::endl;
  if (level <= log_level::info)
    log_to_stderr(log_level::info, "fabric-titanic " + std::string(fabric::version_string) + " " + f.role +
                                       " of a pair: state on " + node.endpoint() + ", peer " + f.peer +
                                       ", replication on " + f.replication_bind + " (" + f.mode + ")");
  const auto log_pair_stats = [&] {
    try {
      if (auto s = titanic.active_stats()) log_to_stderr(log_level::info, "stats " + to_json(*s));
      host.call([&] { log_to_stderr(log_level::info, "pair " + fabric::binary_star::to_json(node.stats())); });
    } catch (const std::exception& e) {
      log_to_stderr(log_level::warning, std::string("stats unavailable: ") + e.what());
    }
  };
  const int signal = fabric::support::serve_until_stopped(
      stop, [&] { return host.running() && !titanic.failure(); }, std::chrono::milliseconds(stats_ms), log_pair_stats,
      [&o] { o.log(log_level::info, "SIGHUP: nothing to reload"); });
  if (signal == 0) {
    log_to_stderr(log_level::error, "the pair stopped" + fabric::support::failure_text(titanic.failure() ? titanic.failure()
                                                                                              : host.failure()));
    return 1;
  }
  if (level <= log_level::info) {
    log_to_stderr(log_level::info, "received " + fabric::support::stop_signals::name(signal) + ", stopping");
    log_pair_stats();
  }
  if (!host.stop()) {
    log_to_stderr(log_level::error, "the node's thread did not stop in time");
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  fabric::titanic::service_options o;
  o.broker = "tcp://127.0.0.1:5555";
  std::string dir;
  std::string durability = "sync";
  long long heartbeat_ms = o.heartbeat.count();
  long long dispatch_timeout_ms = o.dispatch_timeout.count();
  long long retry_base_ms = o.retry_base.count();
  long long retry_max_ms = o.retry_max.count();
  long long ttl_ms = 0;
  long long retention_ms = std::chrono::duration_cast<std::chrono::milliseconds>(o.reply_retention).count();
  long long stats_ms = 0;
  log_level level = log_level::info;

  CLI::App app{std::string("fabric-titanic ") + fabric::version_string +
               ": a persistent request queue (9/TSP) on a Majordomo broker; any 9/TSP client can use it"};
  app.set_version_flag("--version", std::string(fabric::version_string));
  const CLI::Validator duration = fabric::tools::duration_validator();
  const auto interval_range = CLI::Range(1LL, 86'400'000LL);
  const auto long_range = CLI::Range(0LL, 3650LL * 86'400'000LL);
  app.add_option("-b,--broker", o.broker, "the broker's endpoint")->capture_default_str();
  app.add_option("-j,--journal", dir, "the journal directory (created if missing)")->required();
  app.add_option("--durability", durability,
                 "when a request counts as stored: sync (on disk before \"200\"), periodic (synced "
                 "within --sync-interval; a power cut may lose the last few), none (survives a "
                 "process crash only)")
      ->check(CLI::IsMember({"sync", "periodic", "none"}))
      ->capture_default_str();
  app.add_option("--heartbeat", heartbeat_ms, "heartbeat interval of the worker sessions")
      ->transform(duration)->check(interval_range)->default_str(format_duration(o.heartbeat));
  app.add_option("--liveness", o.liveness, "missed heartbeats before the broker is declared dead")
      ->check(CLI::Range(1, 1000))->capture_default_str();
  app.add_option("--credit", o.credit,
                 "Titanic requests each worker session takes at once (0 = ask fabric-broker for 1024, "
                 "which it lowers to its --max-worker-credit; 1 with another 7/MDP broker)")
      ->check(CLI::Range(0, 1024))->capture_default_str();
  app.add_option("--max-in-flight", o.max_in_flight, "requests dispatched to services at once")
      ->check(CLI::Range(1, 1'000'000))->capture_default_str();
  app.add_option("--service-window", o.service_window,
                 "requests one service is first sent at once (grows by one per reply, halves per "
                 "unanswered dispatch)")
      ->check(CLI::Range(1, 1'000'000))->capture_default_str();
  app.add_option("--dispatch-timeout", dispatch_timeout_ms,
                 "how long a dispatched request may go unanswered before it counts an attempt and "
                 "may be dispatched again")
      ->transform(duration)->check(interval_range)->default_str(format_duration(o.dispatch_timeout));
  app.add_option("--max-attempts", o.max_attempts, "unanswered dispatches before a request is given up")
      ->check(CLI::Range(1, 1'000'000))->capture_default_str();
  app.add_option("--retry-base", retry_base_ms, "first wait before a request is tried again")
      ->transform(duration)->check(interval_range)->default_str(format_duration(o.retry_base));
  app.add_option("--retry-max", retry_max_ms, "longest wait before a request is tried again")
      ->transform(duration)->check(interval_range)->default_str(format_duration(o.retry_max));
  app.add_option("--request-ttl", ttl_ms, "give a request up this long after it was stored (0 = never)")
      ->transform(duration)->check(long_range)->default_str("0");
  app.add_option("--reply-retention", retention_ms, "remove replies never closed this long after they came")
      ->transform(duration)->check(CLI::Range(1000LL, 3650LL * 86'400'000LL))
      ->default_str(format_duration(o.reply_retention));
  app.add_option("--max-request-bytes", o.max_request_bytes, "the largest request stored")
      ->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--cache-bytes", o.cache_bytes, "request bodies and replies kept in memory")
      ->check(CLI::Range(std::size_t{0}, std::size_t{1} << 40))->capture_default_str();
  app.add_option("--max-in-memory", o.max_in_memory,
                 "open requests held in memory; the rest wait in the journal")
      ->check(CLI::Range(std::size_t{1}, std::size_t{100'000'000}))->capture_default_str();
  app.add_option("--log-level", level, "debug, info, warning, error or off")
      ->transform(fabric::tools::log_level_validator())
      ->default_str(std::string(fabric::support::to_string(level)));
  app.add_option("--stats-interval", stats_ms, "log the counters as JSON this often (0 = only at exit)")
      ->transform(duration)->check(long_range)->default_str("0");
  fabric::tools::curve_flags curve;
  fabric::tools::add_curve_client_flags(app, curve);
  // One node of a Titanic pair (docs/ha.md, section 9).
  std::string pair_role;
  std::string state_bind;
  std::string peer;
  std::string witness_endpoint;
  std::string replication_bind;
  std::string peer_replication;
  std::string replication_mode = "sync";
  long long pair_heartbeat_ms = 1000;
  app.add_option("--role", pair_role,
                 "primary or backup: one node of a Titanic pair (with --state-bind, --peer, "
                 "--replication-bind and --peer-replication); only the active node serves, the "
                 "passive one keeps a copy of its journal")
      ->check(CLI::IsMember({"primary", "backup"}));
  app.add_option("--state-bind", state_bind, "with --role: where this node publishes its state to its peer");
  app.add_option("--peer", peer, "with --role: the other node's --state-bind endpoint");
  app.add_option("--witness", witness_endpoint,
                 "with --role: a witness's endpoint (fabric-broker --role witness); with one, two "
                 "nodes never serve at once, whatever the network does");
  app.add_option("--replication-bind", replication_bind,
                 "with --role: where this node serves its journal to the passive node while active");
  app.add_option("--peer-replication", peer_replication, "with --role: the other node's --replication-bind");
  app.add_option("--replication", replication_mode,
                 "with --role: sync answers 200 once the passive node holds the request too; async "
                 "once this node does")
      ->check(CLI::IsMember({"sync", "async"}))->capture_default_str();
  app.add_option("--pair-heartbeat", pair_heartbeat_ms,
                 "with --role: how often the nodes publish their state (a node is taken for dead after two)")
      ->transform(duration)->check(interval_range)->default_str("1s");
  app.footer("Connects to tcp://127.0.0.1:5555 unless given --broker; with --curve-secret and\n"
             "--curve-server-key it connects with CURVE (the broker must allow its public key).\n"
             "It binds nothing. Stops cleanly on SIGINT or SIGTERM. Prints \"serving\" on stdout once its journal is open and it runs.\n"
             "Exit codes: 0 clean stop, 1 failure, 64 bad arguments.");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 64;
  }

  o.heartbeat = std::chrono::milliseconds(heartbeat_ms);
  o.dispatch_timeout = std::chrono::milliseconds(dispatch_timeout_ms);
  o.retry_base = std::chrono::milliseconds(retry_base_ms);
  o.retry_max = std::chrono::milliseconds(retry_max_ms);
  o.request_ttl = std::chrono::milliseconds(ttl_ms);
  o.reply_retention = std::chrono::milliseconds(retention_ms);
  const bool paired = !pair_role.empty();
  if (paired && (state_bind.empty() || peer.empty() || replication_bind.empty() || peer_replication.empty())) {
    std::cerr << "--role needs --state-bind, --peer, --replication-bind and --peer-replication\n";
    return 64;
  }
  if (!paired && (!state_bind.empty() || !peer.empty() || !witness_endpoint.empty() || !replication_bind.empty() ||
                  !peer_replication.empty())) {
    std::cerr << "--state-bind, --peer, --witness, --replication-bind and --peer-replication need --role\n";
    return 64;
  }
  if (o.retry_max < o.retry_base) {
    std::cerr << "--retry-max must not be below --retry-base\n";
    return 64;
  }
  o.log = [level](log_level l, std::string_view line) {
    if (l >= level) log_to_stderr(l, line);
  };

  try {
    fabric::support::stop_signals stop;
    fabric::journal_options jo;
    jo.mode = durability == "sync"       ? fabric::durability::sync
              : durability == "periodic" ? fabric::durability::periodic
                                         : fabric::durability::none;
    std::optional<fabric::curve_keypair> keys;
    if (!curve.secret.empty()) {
      keys = fabric::load_curve_keypair(curve.secret);
      o.socket.security = fabric::curve_client{*keys, fabric::load_curve_public_key(curve.server_key)};
    }
    fabric::tools::log_security(curve, "requests and replies cross to " + o.broker + " in the clear",
                                keys ? &*keys : nullptr, 0, o.log);
    std::filesystem::create_directories(dir);
    fabric::journal j = fabric::journal::open(dir, jo);
    fabric::context ctx;
    ctx.set_log(o.log, level);
    if (paired) return run_pair(ctx, j, o, stop, level, stats_ms,
                                {pair_role, state_bind, peer, witness_endpoint, replication_bind, peer_replication,
                                 replication_mode, pair_heartbeat_ms});
    fabric::titanic::service t(ctx, j, o);
    std::cout << "serving" << std::endl;
    if (level <= log_level::info)
      log_to_stderr(log_level::info, "fabric-titanic " + std::string(fabric::version_string) + " serving on broker " +
                                         o.broker + ", journal " + dir + " (" + durability + ")");

    const int signal = fabric::support::serve_until_stopped(
        stop, [&t] { return t.running(); }, std::chrono::milliseconds(stats_ms), [&t] { log_stats(t); },
        [&o] { o.log(log_level::info, "SIGHUP: fabric-titanic binds nothing, so has no allowlist to reload"); });
    if (signal == 0) {
      log_to_stderr(log_level::error, "the service thread stopped" + fabric::support::failure_text(t.failure()));
      return 1;
    }
    if (level <= log_level::info) {
      log_to_stderr(log_level::info, "received " + fabric::support::stop_signals::name(signal) + ", stopping");
      log_stats(t);
    }
    if (!t.stop()) {
      log_to_stderr(log_level::error, "the service thread did not stop in time");
      return 1;
    }
    return 0;
  } catch (const std::exception& e) {
    log_to_stderr(log_level::error, e.what());
    return 1;
  }
}
