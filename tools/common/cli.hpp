// What the daemons' command lines share: CLI11 validators that turn a duration ("250ms", "2.5s",
// "2m" or a bare number of milliseconds) into whole milliseconds and a log level's name into its
// number, so that range checks apply to every spelling; and the CURVE flags, with the log lines
// that say what security a daemon runs with. Header-only: only tools include CLI11.
#pragma once

#include <fabric/context.hpp>
#include <fabric/log.hpp>
#include <fabric/security.hpp>
#include <fabric_support/daemon.hpp>
#include <fabric_support/duration.hpp>

#include <CLI/CLI.hpp>

#include <string>

namespace fabric::tools {

/// Rewrites a duration to its whole milliseconds, or says why it is not one.
inline CLI::Validator duration_validator() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        const auto d = fabric::support::parse_duration(text);
        if (!d) return "'" + text + "' is not a duration: use 250ms, 2.5s, 2m or a number of ms";
        text = std::to_string(d->count());
        return {};
      },
      "DURATION");
}

/// Rewrites a log level's name to the number CLI11 reads an enum as, or says why it is not one.
inline CLI::Validator log_level_validator() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        const auto parsed = fabric::support::parse_log_level(text);
        if (!parsed) return "'" + text + "' is not a log level: use debug, info, warning, error or off";
        text = std::to_string(static_cast<int>(*parsed));
        return {};
      },
      "LEVEL");
}

/// A daemon's CURVE flags, as given.
struct curve_flags {
  std::string secret;      ///< --curve-secret: this daemon's own secret certificate
  std::string allow_dir;   ///< --curve-allow: the client certificates a server accepts
  std::string server_key;  ///< --curve-server-key: the public key of the server a client connects to
};

/// --curve-secret and --curve-allow, for a daemon that binds (a CURVE server).
inline void add_curve_server_flags(CLI::App& app, curve_flags& f) {
  auto* secret = app.add_option("--curve-secret", f.secret,
                                "require CURVE: this daemon's secret certificate (made by "
                                "fabric-keygen or CZMQ; mode 0600); needs --curve-allow")
                     ->check(CLI::ExistingFile);
  auto* allow = app.add_option("--curve-allow", f.allow_dir,
                               "the directory of client public certificates accepted with "
                               "--curve-secret; read again on SIGHUP")
                    ->check(CLI::ExistingDirectory);
  secret->needs(allow);
  allow->needs(secret);
}

/// --curve-secret and --curve-server-key, for a daemon that connects (a CURVE client).
inline void add_curve_client_flags(CLI::App& app, curve_flags& f) {
  auto* secret = app.add_option("--curve-secret", f.secret,
                                "connect with CURVE: this daemon's secret certificate (its public "
                                "certificate must be in the server's allowlist); needs "
                                "--curve-server-key")
                     ->check(CLI::ExistingFile);
  auto* server = app.add_option("--curve-server-key", f.server_key,
                                "the server's public key: 40 Z85 characters, or its public "
                                "certificate file");
  secret->needs(server);
  server->needs(secret);
}

/// The first log line of a daemon: what its traffic is protected by. Without keys it warns that
/// anyone who reaches it can use it, and sees everything.
inline void log_security(const curve_flags& f, const std::string& what_is_exposed,
                         const curve_keypair* keys, std::size_t allowed, const log_fn& log) {
  if (f.secret.empty()) {
    log(log_level::warning,
        "traffic is unauthenticated and unencrypted: " + what_is_exposed +
            "; give --curve-secret (see fabric-keygen) to require CURVE");
    return;
  }
  std::string line = "CURVE on: public key " + (keys ? keys->public_key : std::string("?"));
  if (!f.allow_dir.empty())
    line += ", " + std::to_string(allowed) + " client key(s) allowed from " + f.allow_dir;
  if (!f.server_key.empty()) line += ", server key from --curve-server-key";
  log(log_level::info, line);
}

/// The authenticator's counters as one log line: "auth {"allowed":3,"denied":1,...}".
inline void log_auth_stats(const context& ctx, const log_fn& log) {
  const authenticator_stats a = ctx.auth_stats();
  log(log_level::info, "auth {\"allowed\":" + std::to_string(a.allowed) + ",\"denied\":" +
                           std::to_string(a.denied) + ",\"refused_handshakes\":" +
                           std::to_string(a.refused_handshakes) + "}");
}

/// Reads the allowlists of `ctx` again and logs what came of it (a daemon's SIGHUP).
inline void reload_allowlists(context& ctx, const log_fn& log) {
  const allowlist_reload r = ctx.reload_curve_allowlists();
  if (r.directories == 0) {
    log(log_level::info, "SIGHUP: no CURVE allowlist to reload");
    return;
  }
  for (const auto& e : r.errors)
    log(log_level::error, "SIGHUP: allowlist not reloaded, its previous keys stay: " + e);
  log(log_level::info, "SIGHUP: " + std::to_string(r.keys) + " client key(s) allowed after reload");
}

}  // namespace fabric::tools
