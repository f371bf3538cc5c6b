// fabric-broker: the Majordomo (7/MDP + 8/MMI) broker as a daemon. It binds the given endpoints,
// serves until SIGINT or SIGTERM, then stops cleanly and prints its final counters.
#include <fabric/context.hpp>
#include <fabric/majordomo.hpp>
#include <fabric/version.hpp>

#include <CLI/CLI.hpp>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <exception>
#include <iostream>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

namespace {

using fabric::mdp::log_level;

const char* level_name(log_level level) {
  switch (level) {
    case log_level::debug: return "debug";
    case log_level::info: return "info";
    case log_level::warning: return "warning";
    case log_level::error: return "error";
    case log_level::off: break;
  }
  return "off";
}

std::mutex log_mutex;

// One line per event on stderr: UTC time, level, text.
void log_line(log_level level, std::string_view text) {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()) % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
  std::lock_guard lock(log_mutex);
  std::fprintf(stderr, "%s.%03dZ %-7s %.*s\n", stamp, static_cast<int>(ms.count()), level_name(level),
               static_cast<int>(text.size()), text.data());
}

std::chrono::milliseconds millis(double value) {
  return std::chrono::milliseconds(static_cast<long long>(value));
}

// The counters as a log line; a broker too busy to answer in time is reported, not fatal.
void log_stats(fabric::mdp::broker& broker) {
  try {
    log_line(log_level::info, "stats " + fabric::mdp::to_json(broker.stats()));
  } catch (const std::exception& e) {
    log_line(log_level::warning, std::string("stats unavailable: ") + e.what());
  }
}

}  // namespace

int main(int argc, char** argv) {
  fabric::mdp::broker_options o;
  // Loopback unless told otherwise: a broker is reachable from other hosts only on purpose.
  std::vector<std::string> endpoints{"tcp://127.0.0.1:5555"};
  double heartbeat_ms = 2500;
  double expiry_ms = 30'000;
  double service_idle_ms = 60'000;
  double stats_ms = 0;
  log_level level = log_level::info;

  CLI::App app{std::string("fabric-broker ") + fabric::version_string +
               ": a Majordomo (7/MDP, 8/MMI) broker; any MDP client or worker can use it"};
  app.set_version_flag("--version", std::string(fabric::version_string));
  const auto unit = CLI::AsNumberWithUnit(
      std::map<std::string, double>{{"ms", 1.0}, {"s", 1000.0}, {"m", 60'000.0}},
      CLI::AsNumberWithUnit::CASE_SENSITIVE);
  app.add_option("-b,--bind", endpoints,
                 "endpoint to bind, repeatable; loopback only by default: --bind tcp://*:5555 "
                 "listens on every interface (also ipc:///run/mdp.sock, tcp://127.0.0.1:* for a "
                 "free port)")
      ->capture_default_str();
  // Times are whole milliseconds from 1 ms (0 where it means "never") to a day or 30 days.
  const auto interval_range = CLI::Range(1.0, 86'400'000.0);
  const auto expiry_range = CLI::Range(0.0, 30.0 * 86'400'000.0);
  app.add_option("--heartbeat", heartbeat_ms, "heartbeat interval (2500ms, 2.5s; a bare number is ms)")
      ->transform(unit)->check(interval_range)->capture_default_str();
  app.add_option("--liveness", o.liveness, "missed heartbeats before a worker is purged")
      ->check(CLI::Range(1, 1000))->capture_default_str();
  app.add_option("--request-expiry", expiry_ms,
                 "how long a request may wait, queued or with a worker, before it is dropped as "
                 "expired (0 = never)")
      ->transform(unit)->check(expiry_range)->capture_default_str();
  app.add_option("--service-idle", service_idle_ms,
                 "forget a service with no workers and no queue after this long")
      ->transform(unit)->check(expiry_range)->capture_default_str();
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
      ->transform(CLI::CheckedTransformer(
          std::map<std::string, log_level>{{"debug", log_level::debug}, {"info", log_level::info},
                                           {"warning", log_level::warning}, {"error", log_level::error},
                                           {"off", log_level::off}},
          CLI::ignore_case))
      ->default_str("info");
  app.add_option("--stats-interval", stats_ms, "log the counters as JSON this often (0 = only at exit)")
      ->transform(unit)->check(expiry_range)->capture_default_str();
  app.add_option("--max-total-bytes", o.max_total_bytes,
                 "bytes held for all clients together: queued and in-flight requests, unsent replies")
      ->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--max-peer-bytes", o.max_peer_bytes, "the same bytes for one client connection")
      ->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--max-worker-credit", o.max_worker_credit,
                 "most requests one worker holds at once (a larger credit in a READY is lowered)")
      ->check(CLI::Range(1, 100000))->capture_default_str();
  app.footer("Listens on tcp://127.0.0.1:5555 (this host only) unless given --bind; use\n"
             "--bind tcp://*:5555 to serve other hosts. Stops cleanly on SIGINT or SIGTERM. Prints\n"
             "\"listening on <endpoint>\" on stdout for each bound endpoint once it serves.\n"
             "Exit codes: 0 clean stop, 1 failure, 64 bad arguments.");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 64;
  }

  o.endpoints = endpoints;
  o.heartbeat_interval = millis(heartbeat_ms);
  o.request_expiry = millis(expiry_ms);
  o.service_idle_timeout = millis(service_idle_ms);
  o.min_log_level = level;
  o.log = log_line;

  // Block the stop signals before any thread starts, so every thread inherits the mask and only
  // sigtimedwait below ever sees them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  // A closed stdout or stderr (a pipe whose reader left) must not kill the broker.
  std::signal(SIGPIPE, SIG_IGN);

  try {
    fabric::context ctx;
    fabric::mdp::broker broker(ctx, o);
    for (const auto& ep : broker.endpoints()) std::cout << "listening on " << ep << std::endl;
    if (level <= log_level::info)
      log_line(log_level::info, "fabric-broker " + std::string(fabric::version_string) + " serving");

    const auto stats_every = millis(stats_ms);
    auto next_stats = std::chrono::steady_clock::now() + stats_every;
    int signal = 0;
    while (broker.running()) {
      timespec slice{0, 200'000'000};
      signal = sigtimedwait(&stop_signals, nullptr, &slice);
      if (signal > 0) break;
      if (stats_every.count() > 0 && std::chrono::steady_clock::now() >= next_stats) {
        next_stats += stats_every;
        log_stats(broker);
      }
    }
    if (signal <= 0) {
      // The broker thread ended on its own: that is a failure.
      std::string why = "the broker thread stopped";
      if (auto e = broker.failure()) {
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& ex) {
          why += ": ";
          why += ex.what();
        }
      }
      log_line(log_level::error, why);
      return 1;
    }
    if (level <= log_level::info) {
      log_line(log_level::info, std::string("received ") + (signal == SIGINT ? "SIGINT" : "SIGTERM") +
                                    ", stopping");
      log_stats(broker);
    }
    if (!broker.stop()) {
      log_line(log_level::error, "the broker thread did not stop in time");
      return 1;
    }
    return 0;
  } catch (const std::exception& e) {
    log_line(log_level::error, e.what());
    return 1;
  }
}
