// fabric-broker: the Majordomo (7/MDP + 8/MMI) broker as a daemon. It binds the given endpoints,
// serves until SIGINT or SIGTERM, then stops cleanly and prints its final counters.
#include <fabric/binary_star.hpp>
#include <fabric/context.hpp>
#include <fabric/log.hpp>
#include <fabric/journal.hpp>
#include <fabric/majordomo.hpp>
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
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace {

using fabric::log_level;
using fabric::support::format_duration;
using fabric::support::log_to_stderr;

// The counters as a log line; a broker too busy to answer in time is reported, not fatal.
void log_stats(fabric::mdp::broker& broker) {
  try {
    log_to_stderr(log_level::info, "stats " + fabric::mdp::to_json(broker.stats()));
  } catch (const std::exception& e) {
    log_to_stderr(log_level::warning, std::string("stats unavailable: ") + e.what());
  }
}

// --role witness: the third vote of a pair, and nothing else.
int run_witness(const std::string& bind, std::chrono::milliseconds heartbeat, log_level level) {
  try {
    fabric::support::stop_signals stop;
    fabric::context ctx;
    fabric::binary_star::witness w(ctx, {.bind = bind, .max_lease = heartbeat * 3 / 2});
    w.start();
    std::cout << "listening on " << w.endpoint() << std::endl;
    const auto log_witness = [&] {
      try {
        const auto s = w.stats();
        log_to_stderr(log_level::info, "witness {\"grants\":" + std::to_string(s.grants) + ",\"denials\":" +
                                           std::to_string(s.denials) + ",\"holder\":" + std::to_string(s.holder) +
                                           ",\"holder_term\":" + std::to_string(s.holder_term) + "}");
      } catch (const std::exception& e) {
        log_to_stderr(log_level::warning, std::string("stats unavailable: ") + e.what());
      }
    };
    if (level <= log_level::info)
      log_to_stderr(log_level::info, "fabric-broker " + std::string(fabric::version_string) + " serving as a witness");
    const int signal = fabric::support::serve_until_stopped(
        stop, [&] { return w.running(); }, std::chrono::milliseconds(0), log_witness, [] {});
    if (signal == 0) {
      log_to_stderr(log_level::error, "the witness thread stopped" + fabric::support::failure_text(w.failure()));
      return 1;
    }
    if (level <= log_level::info) log_witness();
    return w.stop() ? 0 : 1;
  } catch (const std::exception& e) {
    log_to_stderr(log_level::error, e.what());
    return 1;
  }
}

}  // namespace

int main(int argc, char** argv) {
  fabric::mdp::broker_options o;
  // Loopback unless told otherwise: a broker is reachable from other hosts only on purpose.
  std::vector<std::string> endpoints{"tcp://127.0.0.1:5555"};
  // Durations in whole milliseconds, as the flags' validator hands them on.
  long long heartbeat_ms = o.heartbeat_interval.count();
  long long expiry_ms = o.request_expiry.count();
  long long service_idle_ms = o.service_idle_timeout.count();
  long long stats_ms = 0;
  log_level level = log_level::info;
  std::string titanic_dir;

  CLI::App app{std::string("fabric-broker ") + fabric::version_string +
               ": a Majordomo (7/MDP, 8/MMI) broker; any MDP client or worker can use it"};
  app.set_version_flag("--version", std::string(fabric::version_string));
  // "250ms", "2.5s", "2m" or a bare number of milliseconds, handed on to CLI11 as whole
  // milliseconds so that the range checks below apply to every spelling.
  const CLI::Validator duration = fabric::tools::duration_validator();
  app.add_option("-b,--bind", endpoints,
                 "endpoint to bind, repeatable; loopback only by default: --bind tcp://*:5555 "
                 "listens on every interface (also ipc:///run/mdp.sock, tcp://127.0.0.1:* for a "
                 "free port)")
      ->capture_default_str();
  // Times are whole milliseconds from 1 ms (0 where it means "never") to a day or 30 days.
  const auto interval_range = CLI::Range(1LL, 86'400'000LL);
  const auto expiry_range = CLI::Range(0LL, 30LL * 86'400'000LL);
  app.add_option("--heartbeat", heartbeat_ms, "heartbeat interval (2500ms, 2.5s; a bare number is ms)")
      ->transform(duration)->check(interval_range)->default_str(format_duration(o.heartbeat_interval));
  app.add_option("--liveness", o.liveness, "missed heartbeats before a worker is purged")
      ->check(CLI::Range(1, 1000))->capture_default_str();
  app.add_option("--request-expiry", expiry_ms,
                 "how long a request may wait, queued or with a worker, before it is dropped as "
                 "expired (0 = never)")
      ->transform(duration)->check(expiry_range)->default_str(format_duration(o.request_expiry));
  app.add_option("--service-idle", service_idle_ms,
                 "forget a service with no workers and no queue after this long")
      ->transform(duration)->check(expiry_range)->default_str(format_duration(o.service_idle_timeout));
  app.add_option("--max-queue", o.max_queued_per_service, "queued requests per service")
      ->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--max-queued-total", o.max_queued_total, "queued requests over all services")
      ->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--max-workers", o.max_workers, "workers tracked at once")
      ->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--max-services", o.max_services, "services tracked at once")
      ->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--max-dispatches", o.max_dispatches,
                 "workers a request may be given to (after worker deaths) before it is dropped")
      ->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--log-level", level, "debug, info, warning, error or off")
      ->transform(fabric::tools::log_level_validator())
      ->default_str(std::string(fabric::support::to_string(level)));
  app.add_option("--stats-interval", stats_ms, "log the counters as JSON this often (0 = only at exit)")
      ->transform(duration)->check(expiry_range)->default_str("0");
  app.add_option("--max-total-bytes", o.max_total_bytes,
                 "bytes held for all clients together: queued and in-flight requests, unsent replies")
      ->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--max-peer-bytes", o.max_peer_bytes, "the same bytes for one client connection")
      ->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--max-worker-credit", o.max_worker_credit,
                 "most requests one worker holds at once (a larger credit in a READY is lowered)")
      ->check(CLI::Range(1, 100000))->capture_default_str();
  long long handshake_ms = 5000;
  app.add_option("--handshake-timeout", handshake_ms,
                 "close a connection that has not completed its ZMTP/CURVE handshake by then (a "
                 "silent peer holds a descriptor this long)")
      ->transform(duration)->check(interval_range)->default_str("5s");
  app.add_option("--max-message-size", o.socket.max_message_size,
                 "the largest frame accepted; a peer sending a bigger one is disconnected")
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{1} << 40))->capture_default_str();
  fabric::tools::curve_flags curve;
  fabric::tools::add_curve_server_flags(app, curve);
  app.add_option("--titanic", titanic_dir,
                 "also run the Titanic (9/TSP) service in this process, on this journal directory "
                 "(sync durability, fabric-titanic's defaults; run fabric-titanic for its other settings)");
  // Binary Star (docs/ha.md): one node of a pair, or the pair's witness.
  std::string pair_role;
  std::string state_bind;
  std::string peer;
  std::string witness_endpoint;
  long long pair_heartbeat_ms = 1000;
  app.add_option("--role", pair_role,
                     "primary or backup: serve as one node of a Binary Star pair (with --peer and "
                     "--state-bind; only the active node serves, clients fail over); witness: run "
                     "only the third vote of a pair, on --state-bind")
          ->check(CLI::IsMember({"primary", "backup", "witness"}));
  app.add_option("--state-bind", state_bind,
                 "with --role: where this node publishes its state to its peer (or where the "
                 "witness listens), e.g. tcp://10.0.0.1:5556");
  app.add_option("--peer", peer, "with --role primary|backup: the other node's --state-bind endpoint");
  app.add_option("--witness", witness_endpoint,
                 "with --role primary|backup: the witness's endpoint; with one, two nodes never "
                 "accept requests at once, whatever the network does");
  app.add_option("--pair-heartbeat", pair_heartbeat_ms,
                 "with --role: how often the nodes publish their state (a node is taken for dead "
                 "after two)")
      ->transform(duration)->check(interval_range)->default_str("1s");
  // Titanic in a pair (docs/ha.md, section 9): the journal replicated to the passive node.
  std::string replication_bind;
  std::string peer_replication;
  std::string replication_mode = "sync";
  app.add_option("--replication-bind", replication_bind,
                 "with --titanic and --role primary|backup: where this node serves its Titanic "
                 "journal to the passive node while active, e.g. tcp://10.0.0.1:5557");
  app.add_option("--peer-replication", peer_replication,
                 "with --titanic and --role primary|backup: the other node's --replication-bind");
  app.add_option("--replication", replication_mode,
                 "with --titanic and --role: sync answers 200 once the passive node holds the "
                 "request too; async once this node does")
      ->check(CLI::IsMember({"sync", "async"}))->capture_default_str();
  app.footer("Listens on tcp://127.0.0.1:5555 (this host only) unless given --bind; use\n"
             "--bind tcp://*:5555 to serve other hosts. With --curve-secret and --curve-allow every\n"
             "client and worker must connect with CURVE and a key from the allowlist; SIGHUP reads\n"
             "the allowlist again. Stops cleanly on SIGINT or SIGTERM. Prints\n"
             "\"listening on <endpoint>\" on stdout for each bound endpoint once it serves.\n"
             "Exit codes: 0 clean stop, 1 failure, 64 bad arguments.");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 64;
  }

  if (!pair_role.empty() && state_bind.empty()) {
    std::cerr << "--role needs --state-bind\n";
    return 64;
  }
  if ((pair_role == "primary" || pair_role == "backup") && peer.empty()) {
    std::cerr << "--role " << pair_role << " needs --peer\n";
    return 64;
  }
  if (pair_role.empty() && (!state_bind.empty() || !peer.empty() || !witness_endpoint.empty())) {
    std::cerr << "--state-bind, --peer and --witness need --role\n";
    return 64;
  }
  const bool titanic_pair = !titanic_dir.empty() && (pair_role == "primary" || pair_role == "backup");
  if (titanic_pair && (replication_bind.empty() || peer_replication.empty())) {
    std::cerr << "--titanic in a pair needs --replication-bind and --peer-replication\n";
    return 64;
  }
  if (!titanic_pair && (!replication_bind.empty() || !peer_replication.empty())) {
    std::cerr << "--replication-bind and --peer-replication need --titanic and --role primary|backup\n";
    return 64;
  }
  if (pair_role == "witness" && !titanic_dir.empty()) {
    std::cerr << "a witness holds no data: --titanic does not go with --role witness\n";
    return 64;
  }
  if (pair_role == "witness") return run_witness(state_bind, std::chrono::milliseconds(pair_heartbeat_ms), level);

  o.endpoints = endpoints;
  o.heartbeat_interval = std::chrono::milliseconds(heartbeat_ms);
  o.request_expiry = std::chrono::milliseconds(expiry_ms);
  o.service_idle_timeout = std::chrono::milliseconds(service_idle_ms);
  o.socket.handshake_timeout = std::chrono::milliseconds(handshake_ms);
  o.min_log_level = level;
  o.log = log_to_stderr;
  const fabric::log_fn log = [level](log_level l, std::string_view line) {
    if (l >= level) log_to_stderr(l, line);
  };

  try {
    // Before any thread starts, so that every thread inherits the blocked signals and only the
    // wait below ever sees them; it also keeps a closed stdout or stderr from killing us.
    fabric::support::stop_signals stop;
    fabric::context ctx;
    ctx.set_log(log, level);
    std::optional<fabric::curve_keypair> keys;
    std::size_t allowed = 0;
    if (!curve.secret.empty()) {
      keys = fabric::load_curve_keypair(curve.secret);
      // Registered here, for domain "fabric", once: the socket then needs no directory of its own
      // (which would read it a second time), and SIGHUP reads it again.
      allowed = ctx.allow_curve_clients_from(curve.allow_dir);
      o.socket.security = fabric::curve_server{*keys, "fabric"};
    }
    std::string exposed = "anyone who reaches";
    for (const auto& ep : o.endpoints) exposed += " " + ep;
    fabric::tools::log_security(curve, exposed + " can use this broker", keys ? &*keys : nullptr,
                                allowed, log);
    // In a pair, the broker and its node share one thread, the host's.
    std::optional<fabric::binary_star::node> pair_node;
    // Titanic's journal first: a pair's node starts from the term it kept.
    std::optional<fabric::journal> titanic_journal;
    if (!titanic_dir.empty()) {
      std::filesystem::create_directories(titanic_dir);
      titanic_journal.emplace(fabric::journal::open(titanic_dir));
    }
    std::unique_ptr<fabric::titanic::pair> titanic_pair_node;
    if (!pair_role.empty()) {
      pair_node.emplace(ctx, fabric::binary_star::node_options{
                                 .role = pair_role == "primary" ? fabric::binary_star::role::primary
                                                                : fabric::binary_star::role::backup,
                                 .bind = state_bind,
                                 .peer = peer,
                                 .witness = witness_endpoint,
                                 .heartbeat = std::chrono::milliseconds(pair_heartbeat_ms),
                                 .term = titanic_pair ? fabric::titanic::stored_term(*titanic_journal) : 0,
                                 .ready = [&titanic_pair_node] { return !titanic_pair_node || titanic_pair_node->ready(); },
                                 .log = log,
                                 .min_log_level = level});
      o.pair = &*pair_node;
    }
    fabric::mdp::broker broker(ctx, o, fabric::mdp::deferred_start);
    const auto titanic_options = [&] {
      fabric::titanic::service_options to;
      to.broker = broker.endpoints().front();
      to.heartbeat = o.heartbeat_interval;
      if (keys) {
        // Titanic connects with the broker's own key, which the broker then accepts.
        ctx.allow_curve_client(keys->public_key);
        to.socket.security = fabric::curve_client{*keys, keys->public_key};
      }
      to.log = [level](log_level l, std::string_view line) {
        if (l >= level) log_to_stderr(l, line);
      };
      return to;
    };
    if (titanic_pair) {
      // Serves while the node is active, follows the other node's journal while passive. Made
      // before the node runs, so it sees every change of state.
      fabric::titanic::pair_options tp;
      tp.role = pair_role == "primary" ? fabric::binary_star::role::primary : fabric::binary_star::role::backup;
      tp.service = titanic_options();
      tp.service.replication.bind = replication_bind;
      tp.service.replication.mode =
          replication_mode == "async" ? fabric::titanic::replication_mode::async : fabric::titanic::replication_mode::sync;
      tp.service.replication.follower_timeout = std::chrono::milliseconds(pair_heartbeat_ms) * 2;
      tp.service.replication.socket.security = o.socket.security;
      tp.replica.peer = peer_replication;
      tp.replica.timeout = std::chrono::milliseconds(pair_heartbeat_ms) * 2;
      if (keys) tp.replica.socket.security = fabric::curve_client{*keys, keys->public_key};
      tp.replica.log = tp.service.log;
      titanic_pair_node = std::make_unique<fabric::titanic::pair>(ctx, *titanic_journal, tp);
      pair_node->on_state_change([&titanic_pair_node](fabric::binary_star::state, fabric::binary_star::state to,
                                                      std::uint64_t term) { titanic_pair_node->on_state_change(to, term); });
    }
    std::unique_ptr<fabric::tools::reactor_host> host;
    if (pair_node) {
      host = std::make_unique<fabric::tools::reactor_host>(
          ctx,
          [&](fabric::reactor& r) {
            pair_node->attach(r);
            broker.attach(r);
          },
          [&](fabric::reactor& r) {
            broker.detach(r);
            pair_node->detach(r);
          });
      if (level <= log_level::info)
        log_to_stderr(log_level::info, "binary star " + pair_role + ": state on " + pair_node->endpoint() +
                                           ", peer " + peer +
                                           (witness_endpoint.empty() ? ", no witness" : ", witness " + witness_endpoint));
    } else {
      broker.start();
    }
    const auto serving = [&] { return host ? host->running() : broker.running(); };
    // The counters, read on the thread that serves.
    const auto log_all_stats = [&] {
      if (!host) return log_stats(broker);
      try {
        host->call([&] {
          log_stats(broker);
          log_to_stderr(log_level::info, "pair " + fabric::binary_star::to_json(pair_node->stats()));
        });
      } catch (const std::exception& e) {
        log_to_stderr(log_level::warning, std::string("stats unavailable: ") + e.what());
      }
    };
    for (const auto& ep : broker.endpoints()) std::cout << "listening on " << ep << std::endl;
    // Titanic in the same process: a worker and client of the broker like any other, over the
    // first endpoint (the journal is opened before anything is served from it).
    std::unique_ptr<fabric::titanic::service> titanic;
    if (!titanic_dir.empty() && !titanic_pair) {
      titanic = std::make_unique<fabric::titanic::service>(ctx, *titanic_journal, titanic_options());
      if (level <= log_level::info) log_to_stderr(log_level::info, "titanic service on journal " + titanic_dir);
    } else if (titanic_pair && level <= log_level::info) {
      log_to_stderr(log_level::info, "titanic pair on journal " + titanic_dir + ", replication on " + replication_bind +
                                         ", peer " + peer_replication + " (" + replication_mode + ")");
    }
    if (level <= log_level::info)
      log_to_stderr(log_level::info, "fabric-broker " + std::string(fabric::version_string) + " serving");

    const int signal = fabric::support::serve_until_stopped(
        stop,
        [&] {
          return serving() && (!titanic || titanic->running()) && (!titanic_pair_node || !titanic_pair_node->failure());
        },
        std::chrono::milliseconds(stats_ms),
        [&] {
          log_all_stats();
          if (keys) fabric::tools::log_auth_stats(ctx, log);
        },
        [&] { fabric::tools::reload_allowlists(ctx, log); });
    if (signal == 0) {
      // The broker's (or the Titanic service's) thread ended on its own: that is a failure.
      const bool titanic_ended = titanic && !titanic->running();
      const bool pair_failed = titanic_pair_node && titanic_pair_node->failure();
      log_to_stderr(log_level::error,
                    (titanic_ended || pair_failed ? "the titanic service stopped" : "the broker thread stopped") +
                        fabric::support::failure_text(pair_failed     ? titanic_pair_node->failure()
                                                      : titanic_ended ? titanic->failure()
                                                      : host          ? host->failure()
                                                                      : broker.failure()));
      return 1;
    }
    if (level <= log_level::info) {
      log_to_stderr(log_level::info, "received " + fabric::support::stop_signals::name(signal) + ", stopping");
      log_all_stats();
      if (keys) fabric::tools::log_auth_stats(ctx, log);
    }
    if (titanic && !titanic->stop()) {
      log_to_stderr(log_level::error, "the titanic service did not stop in time");
      return 1;
    }
    if (host && !host->stop()) {
      log_to_stderr(log_level::error, "the service thread did not stop in time");
      return 1;
    }
    if (!broker.stop()) {
      log_to_stderr(log_level::error, "the broker thread did not stop in time");
      return 1;
    }
    return 0;
  } catch (const std::exception& e) {
    log_to_stderr(log_level::error, e.what());
    return 1;
  }
}
