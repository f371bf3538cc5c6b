// fabric::socket: the RAII socket every pattern wrapper builds on.
//
// Hot-path calls (send, recv) return result<void>: success, or errc::timeout, would_block,
// back_pressure, peer_unreachable, closed or too_large as a value. Setup calls (construction,
// bind, connect) throw fabric::error. Send and receive go straight to zmq_msg_send/zmq_msg_recv on
// the frames: nothing is copied, and nothing is allocated per message once a receiving message has
// grown to its working size.
//
// Thread safety: like a libzmq socket, a fabric socket is used by one thread at a time. It may be
// handed to another thread across a full memory barrier (e.g. std::thread's constructor).
#pragma once

#include <fabric/context.hpp>
#include <fabric/message.hpp>
#include <fabric/options.hpp>
#include <fabric/result.hpp>

#include <zmq.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace fabric {

namespace detail {
struct socket_liveness;
}  // namespace detail

/// An owning, move-only ZeroMQ socket with fabric's options, error model and bounds. The pattern
/// classes (requester, publisher, router, ...) make public the operations that fit their pattern;
/// pair_socket and any_socket make public all of them.
class socket {
 public:
  /// Creates a socket of `type` in `ctx` and applies `options`.
  /// Throws: fabric::error for an invalid option or key, or if libzmq cannot create the socket.
  socket(context& ctx, zmq::socket_type type, const socket_options& options = {});
  socket(socket&& other) noexcept;
  socket& operator=(socket&& other) noexcept;
  socket(const socket&) = delete;
  socket& operator=(const socket&) = delete;
  /// Closes the socket; waits at most socket_options::linger for queued messages.
  ~socket();

  /// Binds to `endpoint` (inproc://, ipc://, tcp://). A wildcard port ("tcp://127.0.0.1:*") is
  /// resolved: the returned string is the endpoint actually bound.
  /// Throws: fabric::error naming the endpoint (address in use, bad syntax, unknown transport).
  std::string bind(std::string_view endpoint);
  /// Connects to `endpoint`. The connection completes in the background and is re-established
  /// after loss; messages queue meanwhile (unless socket_options::immediate).
  /// Throws: fabric::error naming the endpoint when it is invalid.
  void connect(std::string_view endpoint);
  /// Undoes a bind / connect. Throws: fabric::error when `endpoint` was not bound / connected.
  void unbind(std::string_view endpoint);
  void disconnect(std::string_view endpoint);

  /// Closes the socket now (bounded by linger). Idempotent.
  void close() noexcept;
  /// False after close() or after being moved from.
  bool valid() const noexcept { return handle_ != nullptr; }

  /// A non-owning cppzmq handle, for reactors, polling and cppzmq interop.
  zmq::socket_ref handle() const noexcept;
  /// The raw libzmq socket pointer.
  void* native() const noexcept { return handle_; }
  /// The socket type given at construction.
  zmq::socket_type type() const noexcept { return type_; }
  /// The context the socket was created in.
  context& owner() const noexcept { return *ctx_; }
  /// The options applied at construction.
  const socket_options& options() const noexcept { return options_; }
  /// The last endpoint bound or connected, resolved (ZMQ_LAST_ENDPOINT).
  std::string last_endpoint() const;
  /// Messages recv() dropped because they broke a bound (socket_options::max_frames), or, at a
  /// CURVE server other than REQ or REP, because they came over a ZMTP connection without an
  /// authenticated User-Id.
  std::uint64_t dropped() const noexcept { return dropped_; }

 protected:
  // Send and receive, made public by the pattern classes that allow them.
  /// Sends all frames of `m` as one message, waiting at most the default send timeout
  /// (socket_options::send_timeout; forever if unset).
  /// Returns: success (then `m` is empty), or errc::back_pressure / timeout / peer_unreachable /
  /// closed, in which case `m` is unchanged and may be sent again.
  /// Throws: fabric::error when the socket cannot send in its current state (e.g. REQ twice).
  result<void> send(message&& m) { return send_message(m, default_wait); }
  /// As send(m), waiting at most `timeout`.
  result<void> send(message&& m, std::chrono::milliseconds timeout) {
    return send_message(m, clamp(timeout));
  }
  /// As send(m), never blocking: errc::back_pressure when it cannot be queued now.
  result<void> try_send(message&& m) { return send_message(m, no_wait); }
  /// Sends a one-frame message.
  result<void> send(frame&& f) { return send_frame(f, false, default_wait); }
  result<void> send(frame&& f, std::chrono::milliseconds timeout) {
    return send_frame(f, false, clamp(timeout));
  }
  result<void> try_send(frame&& f) { return send_frame(f, false, no_wait); }
  /// Sends a one-frame message holding a copy of `bytes`.
  result<void> send(std::string_view bytes) {
    frame f(bytes.data(), bytes.size());
    return send_frame(f, false, default_wait);
  }

  /// Receives one whole message into `m`, replacing its contents; waits at most the default
  /// receive timeout (socket_options::recv_timeout; forever if unset).
  /// Returns: success, or errc::timeout / closed, or errc::too_large when the message had more
  /// than socket_options::max_frames frames (it is dropped and counted in dropped()).
  result<void> recv(message& m) { return recv_message(m, default_wait); }
  result<void> recv(message& m, std::chrono::milliseconds timeout) {
    return recv_message(m, clamp(timeout));
  }
  /// As recv(m), never blocking: errc::would_block when no message is waiting.
  result<void> try_recv(message& m) { return recv_message(m, no_wait); }
  /// Receives into a new message.
  result<message> recv();
  result<message> recv(std::chrono::milliseconds timeout);

  static constexpr long default_wait = -2;  // the socket's configured timeout
  static constexpr long forever = -1;
  static constexpr long no_wait = 0;
  static long clamp(std::chrono::milliseconds timeout) noexcept {
    return timeout.count() <= 0 ? no_wait : static_cast<long>(timeout.count());
  }

  /// The workers behind send/recv. `wait_ms` is default_wait, forever, no_wait or a bound in ms.
  result<void> send_message(message& m, long wait_ms) { return send_parts(nullptr, m, wait_ms); }
  /// Sends `head` (when not null) followed by the frames of `m`, as one message. On failure
  /// both are unchanged.
  result<void> send_parts(frame* head, message& m, long wait_ms);
  result<void> send_frame(frame& f, bool more, long wait_ms);
  result<void> recv_message(message& m, long wait_ms);
  result<void> recv_one(message& m, long wait_ms);
  static bool has_authenticated_peer(message& m) noexcept;

 private:
  // The flags for one call. A call with the socket's default timeout, while that is what libzmq
  // has set, costs one comparison; anything else goes through prepare().
  int flags_for(long wait_ms, bool sending) {
    const bool current = sending ? sndtimeo_ == default_sndtimeo_ : rcvtimeo_ == default_rcvtimeo_;
    if (wait_ms == default_wait && current) [[likely]] return 0;
    return prepare(wait_ms, sending);
  }
  int prepare(long wait_ms, bool sending);
  result<void> failure(int err, bool sending, int flags) const;

  context* ctx_;
  void* handle_ = nullptr;
  zmq::socket_type type_;
  socket_options options_;
  std::uint64_t dropped_ = 0;
  bool authenticated_only_ = false;  // a CURVE server (not REQ/REP): drop ZMTP messages without a User-Id
  int sndtimeo_ = -1;  // the ZMQ_SNDTIMEO / ZMQ_RCVTIMEO currently set on the socket
  int rcvtimeo_ = -1;
  int default_sndtimeo_ = -1;  // socket_options::send_timeout / recv_timeout in ms, -1 = forever
  int default_rcvtimeo_ = -1;
  // Shared with monitors so they can stop libzmq's event feed while the socket is open (see
  // monitor::~monitor); moves with the handle.
  friend class monitor;
  std::shared_ptr<detail::socket_liveness> liveness_;
};

/// A PAIR socket (as used by actor pipes) with every operation public.
class pair_socket : public socket {
 public:
  explicit pair_socket(context& ctx, const socket_options& options = {})
      : socket(ctx, zmq::socket_type::pair, options) {}
  using socket::recv;
  using socket::send;
  using socket::try_recv;
  using socket::try_send;
};

/// A socket of any type with every operation public, for types fabric has no class for
/// (XPUB, XSUB, STREAM) and for code that picks the type at run time.
class any_socket : public socket {
 public:
  any_socket(context& ctx, zmq::socket_type type, const socket_options& options = {})
      : socket(ctx, type, options) {}
  using socket::recv;
  using socket::send;
  using socket::try_recv;
  using socket::try_send;
};

}  // namespace fabric
