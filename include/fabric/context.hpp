// fabric::context: owns the libzmq context, and the ZAP handler that authenticates CURVE clients.
//
// Thread safety: a context may be shared by every thread of a process; all members are safe to
// call concurrently. Sockets made from it must be closed before it is destroyed.
#pragma once

#include <fabric/log.hpp>

#include <zmq.hpp>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace fabric {

namespace detail {
struct context_access;
}  // namespace detail

/// Settings fixed at context creation.
struct context_options {
  int io_threads = 1;       ///< libzmq I/O threads; one moves ~1 GB/s, more only help many peers
  int max_sockets = 1023;   ///< ZMQ_MAX_SOCKETS
  bool ipv6 = false;        ///< allow IPv6 on tcp endpoints of every socket
};

/// Counters kept by the context's authenticator.
struct authenticator_stats {
  std::uint64_t allowed = 0;  ///< CURVE handshakes accepted
  std::uint64_t denied = 0;   ///< CURVE handshakes refused by the ZAP handler (unknown key)
  /// Handshakes at a CURVE server that failed before a key could be checked: a NULL or PLAIN
  /// peer, a CURVE client with the wrong server key, or a handshake that ended early (a timeout,
  /// a reset).
  std::uint64_t refused_handshakes = 0;
};

/// What context::reload_curve_allowlists() did.
struct allowlist_reload {
  std::size_t directories = 0;      ///< directories read again
  std::size_t keys = 0;             ///< keys they hold now, all domains together
  std::vector<std::string> errors;  ///< one per file left out, or per directory not read (it keeps its old keys)
};

/// The process-wide (or component-wide) libzmq context.
///
/// CURVE servers created from this context are authenticated by a ZAP handler the context starts
/// before the first CURVE socket is configured and keeps for its whole life, so a CURVE server
/// never runs without one (libzmq accepts any client key when no handler is bound). The handler
/// fails closed: a client key is accepted only if it was allowed with allow_curve_client(), is in
/// an allowlist directory of the server socket's ZAP domain, or allow_any_curve_client(true) was
/// called. Handshakes refused are counted (auth_stats) and logged, at most one line per second
/// per kind, through set_log().
class context {
 public:
  /// Creates a context. Throws: fabric::error if libzmq cannot create one.
  context();
  explicit context(const context_options& options);
  /// Stops the ZAP handler and terminates libzmq's context. Blocks until every socket of this
  /// context is closed; fabric sockets have a bounded linger, so this is bounded too.
  ~context();

  context(const context&) = delete;
  context& operator=(const context&) = delete;
  context(context&&) = delete;
  context& operator=(context&&) = delete;

  /// The underlying cppzmq context, for mixing fabric with your own cppzmq sockets.
  zmq::context_t& native() noexcept { return ctx_; }

  /// Makes every blocking call on this context's sockets return errc::closed. Irreversible.
  void shutdown() noexcept;

  /// Accepts CURVE clients presenting `public_key` (Z85, 40 chars).
  /// Throws: fabric::error(invalid_argument) for a malformed key.
  void allow_curve_client(std::string_view public_key);
  /// Stops accepting `public_key` for new handshakes. Existing connections stay up.
  void revoke_curve_client(std::string_view public_key);
  /// With `any` true, accepts every CURVE client that completes the handshake (encryption
  /// without client authentication). Off by default.
  void allow_any_curve_client(bool any);

  /// Accepts the CURVE clients whose public certificates are in `dir` (see load_curve_allowlist)
  /// on the CURVE servers of `zap_domain` only, and remembers `dir` for
  /// reload_curve_allowlists(). Calling it again for the same pair reads the directory again.
  /// Returns: the number of keys read.
  /// Throws: what load_curve_allowlist throws; nothing is changed then.
  std::size_t allow_curve_clients_from(const std::filesystem::path& dir,
                                       std::string_view zap_domain = "fabric");
  /// Reads every allowlist directory again (what a daemon does on SIGHUP): a key added is
  /// accepted from the next handshake on, a key removed is refused from then on. Connections
  /// already made stay up. A file that is not a valid certificate is left out and reported in
  /// the result (so a broken file never stops a removal); a directory that cannot be read at
  /// all keeps the keys it had, and is reported too.
  allowlist_reload reload_curve_allowlists();

  /// Where the authenticator's log lines go (refused peers, at warning) and the least severe
  /// level written; none by default. `fn` is called on the authenticator's threads and must not
  /// block: libzmq's I/O thread waits while refused handshakes go unread.
  void set_log(log_fn fn, log_level min_level = log_level::info);

  /// Starts the ZAP handler if it is not running. Sockets configured as CURVE servers call this
  /// before they apply their keys; you only need it when creating CURVE sockets by hand.
  void ensure_authenticator();

  /// What the authenticator has done so far.
  authenticator_stats auth_stats() const noexcept;

 private:
  friend struct detail::context_access;
  struct auth_state;
  zmq::context_t ctx_;
  std::shared_ptr<auth_state> auth_;
};

}  // namespace fabric
