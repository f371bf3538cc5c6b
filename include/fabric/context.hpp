// fabric::context: owns the libzmq context, and the ZAP handler that authenticates CURVE clients.
//
// Thread safety: a context may be shared by every thread of a process; all members are safe to
// call concurrently. Sockets made from it must be closed before it is destroyed.
#pragma once

#include <zmq.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace fabric {

/// Settings fixed at context creation.
struct context_options {
  int io_threads = 1;       ///< libzmq I/O threads; one moves ~1 GB/s, more only help many peers
  int max_sockets = 1023;   ///< ZMQ_MAX_SOCKETS
  bool ipv6 = false;        ///< allow IPv6 on tcp endpoints of every socket
};

/// Counters kept by the context's ZAP handler.
struct authenticator_stats {
  std::uint64_t allowed = 0;  ///< CURVE handshakes accepted
  std::uint64_t denied = 0;   ///< CURVE handshakes refused (unknown key, bad request)
};

/// The process-wide (or component-wide) libzmq context.
///
/// CURVE servers created from this context are authenticated by a ZAP handler the context starts
/// before the first CURVE socket is configured and keeps for its whole life, so a CURVE server
/// never runs without one (libzmq accepts any client key when no handler is bound). The handler
/// fails closed: a client key is accepted only if it was allowed with allow_curve_client(), or if
/// allow_any_curve_client(true) was called.
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

  /// Starts the ZAP handler if it is not running. Sockets configured as CURVE servers call this
  /// before they apply their keys; you only need it when creating CURVE sockets by hand.
  void ensure_authenticator();

  /// What the ZAP handler has done so far.
  authenticator_stats auth_stats() const noexcept;

 private:
  struct auth_state;
  zmq::context_t ctx_;
  std::shared_ptr<auth_state> auth_;
};

}  // namespace fabric
