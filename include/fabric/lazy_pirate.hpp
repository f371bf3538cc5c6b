// The Lazy Pirate client: reliable request/reply over any REP server (or any device that keeps
// the address stack), by timeout, retry and a fresh socket per retry.
//
// Wire format, defaults and behaviour are described in docs/pirate.md.
//
// Thread safety: a lazy_pirate_client is used by one thread at a time, like a socket.
#pragma once

#include <fabric/context.hpp>
#include <fabric/message.hpp>
#include <fabric/options.hpp>
#include <fabric/result.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace fabric {

class dealer;

/// How a lazy_pirate_client tells the reply to the current request from a stale one.
enum class lazy_pirate_sequence {
  /// Each request travels as `sequence | "" | body...`, where `sequence` is an 8-byte big-endian
  /// number. A REP server, and every ROUTER-based device that keeps the address stack (such as
  /// ppp::queue), sends it back unchanged, so any such server works without knowing about it.
  /// Replies carrying another number are dropped and counted.
  envelope,
  /// Each request travels as `"" | body...`, exactly what a REQ socket sends, for ROUTER servers
  /// that expect a single-frame address stack. Stale replies cannot be recognised; only the
  /// fresh socket of every retry keeps them out.
  none,
};

/// Settings of a lazy_pirate_client. An aggregate: `{.endpoints = {"tcp://host:5555"}}`.
struct lazy_pirate_options {
  /// The servers to try, at least one. Each attempt uses one of them; a retry moves to the next.
  std::vector<std::string> endpoints{};
  /// How long one attempt waits for its reply. Must be positive.
  std::chrono::milliseconds timeout{2500};
  /// Attempts after the first one before giving up; 0 means one attempt only.
  std::size_t retries = 3;
  /// How replies are matched to requests; see lazy_pirate_sequence.
  lazy_pirate_sequence sequence = lazy_pirate_sequence::envelope;
  /// Options of every socket the client opens. Linger is always forced to 0: an abandoned
  /// attempt must not reach a server that comes back later.
  socket_options socket{};
};

/// What a lazy_pirate_client has done so far.
struct lazy_pirate_stats {
  std::uint64_t requests = 0;           ///< calls to request()
  std::uint64_t attempts = 0;           ///< requests sent, first attempts and retries
  std::uint64_t retries = 0;            ///< attempts after a silent one
  std::uint64_t replies = 0;            ///< requests answered
  std::uint64_t failures = 0;           ///< requests given up after the last retry
  std::uint64_t stale_replies = 0;      ///< replies dropped because their sequence did not match
  std::uint64_t malformed_replies = 0;  ///< replies dropped because their frames were malformed
  std::uint64_t sockets_opened = 0;     ///< fresh sockets, including the first one
};

/// A client that makes request/reply reliable against a plain REP server (or any device that
/// keeps the address stack): it sends a request, waits at most options.timeout for the reply,
/// and on silence closes its socket, opens a fresh one and sends again, at most options.retries
/// more times.
///
/// It talks through a DEALER that speaks the REQ wire format, so nothing special is needed on
/// the server side.
///
/// Thread safety: one thread at a time, like a socket. Movable, not copyable.
class lazy_pirate_client {
 public:
  /// Creates the client and connects its first socket to options.endpoints[0].
  /// @param ctx      the context sockets are created in; must outlive the client.
  /// @param options  endpoints, timeout, retries and socket options.
  /// Throws: fabric::error(invalid_argument) when there is no endpoint or the timeout is not
  /// positive; fabric::error from connect() for a malformed endpoint.
  lazy_pirate_client(context& ctx, lazy_pirate_options options);
  /// Closes the socket at once (linger 0).
  ~lazy_pirate_client();
  lazy_pirate_client(lazy_pirate_client&&) noexcept;
  lazy_pirate_client& operator=(lazy_pirate_client&&) noexcept;
  lazy_pirate_client(const lazy_pirate_client&) = delete;
  lazy_pirate_client& operator=(const lazy_pirate_client&) = delete;

  /// Sends `request` and returns its reply, retrying on silence as described above. Every
  /// attempt of one request carries the same sequence number, so a late reply to an earlier
  /// attempt of the same request is accepted.
  /// @param request  one or more frames; the body of the request.
  /// Returns: the reply's body frames (the sequence and delimiter removed); or errc::timeout
  /// when every attempt went unanswered, or errc::closed / interrupted when the context was shut
  /// down or a signal arrived. On success `request` is left empty; on failure it is unchanged,
  /// so it can be sent again.
  /// Throws: fabric::error(invalid_argument) when `request` has no frames; fabric::error
  /// (invalid_state) on a moved-from client; fabric::error when a fresh socket cannot be created.
  result<message> request(message&& request);

  /// What the client has done so far.
  const lazy_pirate_stats& stats() const noexcept { return stats_; }
  /// The endpoint the next attempt will use.
  const std::string& endpoint() const noexcept;
  /// The options given at construction (with linger forced to 0).
  const lazy_pirate_options& options() const noexcept { return options_; }

 private:
  void open_socket();
  void close_socket() noexcept;

  context* ctx_;
  lazy_pirate_options options_;
  std::unique_ptr<dealer> socket_;
  std::size_t current_ = 0;  // index into options_.endpoints
  std::uint64_t sequence_ = 0;
  lazy_pirate_stats stats_{};
};

}  // namespace fabric
