// fabric::socket: option application, send/receive on the raw libzmq API, error mapping.
#include <fabric/error.hpp>
#include <fabric/socket.hpp>

#include "core/socket_liveness.hpp"
#include "core/zap.hpp"

#include <zmq.h>

#include <cerrno>
#include <chrono>
#include <utility>

namespace fabric {
namespace {

void set_int(void* s, int option, int value, const char* name) {
  if (zmq_setsockopt(s, option, &value, sizeof value) != 0)
    throw_zmq_error(zmq_errno(), std::string("cannot set socket option ") + name);
}

int to_int_ms(std::chrono::milliseconds ms, const char* name) {
  if (ms.count() < 0 || ms.count() > INT32_MAX)
    throw error(errc::invalid_argument, std::string(name) + " must be between 0 and 2^31-1 ms");
  return static_cast<int>(ms.count());
}

void set_key(void* s, int option, const std::string& key, const char* what) {
  if (!is_z85_key(key))
    throw error(errc::invalid_argument, std::string(what) + " must be 40 Z85 characters");
  // A 41-byte value (with the terminating NUL) tells libzmq the key is Z85 text.
  if (zmq_setsockopt(s, option, key.c_str(), key.size() + 1) != 0)
    throw_zmq_error(zmq_errno(), std::string("cannot set ") + what);
}

void apply_security(context& ctx, void* s, const security_options& security) {
  if (std::holds_alternative<std::monostate>(security)) return;
  if (!zmq_has("curve"))
    throw error(errc::not_supported, "CURVE requested but this libzmq was built without it");
  if (const auto* server = std::get_if<curve_server>(&security)) {
    // The ZAP handler must exist before the socket can accept a handshake, or libzmq lets every
    // client in.
    ctx.ensure_authenticator();
    if (!server->allowlist_dir.empty())
      detail::context_access::add_allowlist(ctx, server->zap_domain, server->allowlist_dir);
    if (zmq_setsockopt(s, ZMQ_ZAP_DOMAIN, server->zap_domain.data(), server->zap_domain.size()))
      throw_zmq_error(zmq_errno(), "cannot set the ZAP domain");
    set_int(s, ZMQ_CURVE_SERVER, 1, "ZMQ_CURVE_SERVER");
    set_key(s, ZMQ_CURVE_SECRETKEY, server->keys.secret_key, "the CURVE server secret key");
    // Count and log the peers refused before the ZAP handler is asked (NULL, PLAIN, bad CURVE).
    detail::context_access::watch_handshakes(ctx, s);
  } else if (const auto* client = std::get_if<curve_client>(&security)) {
    set_key(s, ZMQ_CURVE_SERVERKEY, client->server_public_key, "the CURVE server public key");
    set_key(s, ZMQ_CURVE_PUBLICKEY, client->keys.public_key, "the CURVE client public key");
    set_key(s, ZMQ_CURVE_SECRETKEY, client->keys.secret_key, "the CURVE client secret key");
  }
}

void apply_options(context& ctx, void* s, zmq::socket_type type, const socket_options& o) {
  if (o.send_hwm < 0 || o.recv_hwm < 0)
    throw error(errc::invalid_argument, "high-water marks must be >= 0");
  if (o.max_frames == 0) throw error(errc::invalid_argument, "max_frames must be >= 1");
  set_int(s, ZMQ_SNDHWM, o.send_hwm, "ZMQ_SNDHWM");
  set_int(s, ZMQ_RCVHWM, o.recv_hwm, "ZMQ_RCVHWM");
  set_int(s, ZMQ_LINGER, to_int_ms(o.linger, "linger"), "ZMQ_LINGER");
  const std::int64_t max_size = o.max_message_size < 0 ? -1 : o.max_message_size;
  if (zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &max_size, sizeof max_size) != 0)
    throw_zmq_error(zmq_errno(), "cannot set ZMQ_MAXMSGSIZE");
  if (!o.routing_id.empty()) {
    if (o.routing_id.size() > 255 || o.routing_id[0] == '\0')
      throw error(errc::invalid_argument,
                  "routing_id must be 1-255 bytes and must not start with a zero byte");
    if (zmq_setsockopt(s, ZMQ_ROUTING_ID, o.routing_id.data(), o.routing_id.size()) != 0)
      throw_zmq_error(zmq_errno(), "cannot set ZMQ_ROUTING_ID");
  }
  set_int(s, ZMQ_RECONNECT_IVL, to_int_ms(o.reconnect_interval, "reconnect_interval"),
          "ZMQ_RECONNECT_IVL");
  set_int(s, ZMQ_RECONNECT_IVL_MAX, to_int_ms(o.reconnect_interval_max, "reconnect_interval_max"),
          "ZMQ_RECONNECT_IVL_MAX");
  // Checked even when heartbeats are off, so a negative value is refused like any other duration.
  const int heartbeat_ivl = to_int_ms(o.heartbeat_interval, "heartbeat_interval");
  const int heartbeat_timeout = to_int_ms(o.heartbeat_timeout, "heartbeat_timeout");
  const int heartbeat_ttl = to_int_ms(o.heartbeat_ttl, "heartbeat_ttl");
  if (heartbeat_ivl > 0) {
    set_int(s, ZMQ_HEARTBEAT_IVL, heartbeat_ivl, "ZMQ_HEARTBEAT_IVL");
    if (heartbeat_timeout > 0)
      set_int(s, ZMQ_HEARTBEAT_TIMEOUT, heartbeat_timeout, "ZMQ_HEARTBEAT_TIMEOUT");
    if (heartbeat_ttl > 0) set_int(s, ZMQ_HEARTBEAT_TTL, heartbeat_ttl, "ZMQ_HEARTBEAT_TTL");
  }
  if (o.immediate) set_int(s, ZMQ_IMMEDIATE, 1, "ZMQ_IMMEDIATE");
  if (o.tcp_keepalive != -1) set_int(s, ZMQ_TCP_KEEPALIVE, o.tcp_keepalive, "ZMQ_TCP_KEEPALIVE");
  set_int(s, ZMQ_HANDSHAKE_IVL, to_int_ms(o.handshake_timeout, "handshake_timeout"), "ZMQ_HANDSHAKE_IVL");
  if (type == zmq::socket_type::router) {
    set_int(s, ZMQ_ROUTER_MANDATORY, o.router_mandatory ? 1 : 0, "ZMQ_ROUTER_MANDATORY");
    if (o.router_handover) set_int(s, ZMQ_ROUTER_HANDOVER, 1, "ZMQ_ROUTER_HANDOVER");
  }
  if (type == zmq::socket_type::req) {
    if (o.req_relaxed) set_int(s, ZMQ_REQ_RELAXED, 1, "ZMQ_REQ_RELAXED");
    if (o.req_correlate) set_int(s, ZMQ_REQ_CORRELATE, 1, "ZMQ_REQ_CORRELATE");
  }
  if (o.conflate) set_int(s, ZMQ_CONFLATE, 1, "ZMQ_CONFLATE");
  apply_security(ctx, s, o.security);
}

std::string endpoint_error(const char* verb, std::string_view endpoint, int err) {
  std::string what = std::string("cannot ") + verb + " '" + std::string(endpoint) + "'";
  if (err == EADDRINUSE) what += ": the address is in use; pick another port or use ':*'";
  if (err == EPROTONOSUPPORT) what += ": unknown transport; use inproc://, ipc:// or tcp://";
  if (err == EINVAL) what += ": malformed endpoint";
  return what;
}

}  // namespace

socket::socket(context& ctx, zmq::socket_type type, const socket_options& options)
    : ctx_(&ctx), type_(type), options_(options) {
  handle_ = zmq_socket(ctx.native().handle(), static_cast<int>(type));
  if (handle_ == nullptr) throw_zmq_error(zmq_errno(), "cannot create a socket");
  try {
    liveness_ = std::make_shared<detail::socket_liveness>();
    liveness_->handle = handle_;
    apply_options(ctx, handle_, type, options_);
    if (options_.send_timeout) set_int(handle_, ZMQ_SNDTIMEO, to_int_ms(*options_.send_timeout, "send_timeout"), "ZMQ_SNDTIMEO");
    if (options_.recv_timeout) set_int(handle_, ZMQ_RCVTIMEO, to_int_ms(*options_.recv_timeout, "recv_timeout"), "ZMQ_RCVTIMEO");
  } catch (...) {
    close();
    throw;
  }
  // REQ and REP cannot drop a message without breaking their send/receive alternation; with
  // ZAP always running they rely on the handshake alone.
  authenticated_only_ = std::holds_alternative<curve_server>(options_.security) &&
                        type_ != zmq::socket_type::req && type_ != zmq::socket_type::rep;
  default_sndtimeo_ = options_.send_timeout ? static_cast<int>(options_.send_timeout->count()) : -1;
  default_rcvtimeo_ = options_.recv_timeout ? static_cast<int>(options_.recv_timeout->count()) : -1;
  sndtimeo_ = default_sndtimeo_;
  rcvtimeo_ = default_rcvtimeo_;
}

socket::socket(socket&& other) noexcept
    : ctx_(other.ctx_),
      handle_(std::exchange(other.handle_, nullptr)),
      type_(other.type_),
      options_(std::move(other.options_)),
      dropped_(other.dropped_),
      authenticated_only_(other.authenticated_only_),
      sndtimeo_(other.sndtimeo_),
      rcvtimeo_(other.rcvtimeo_),
      default_sndtimeo_(other.default_sndtimeo_),
      default_rcvtimeo_(other.default_rcvtimeo_),
      liveness_(std::move(other.liveness_)) {}

socket& socket::operator=(socket&& other) noexcept {
  if (this != &other) {
    close();
    ctx_ = other.ctx_;
    handle_ = std::exchange(other.handle_, nullptr);
    type_ = other.type_;
    options_ = std::move(other.options_);
    dropped_ = other.dropped_;
    authenticated_only_ = other.authenticated_only_;
    sndtimeo_ = other.sndtimeo_;
    rcvtimeo_ = other.rcvtimeo_;
    default_sndtimeo_ = other.default_sndtimeo_;
    default_rcvtimeo_ = other.default_rcvtimeo_;
    liveness_ = std::move(other.liveness_);
  }
  return *this;
}

socket::~socket() { close(); }

void socket::close() noexcept {
  if (handle_ != nullptr) {
    if (liveness_) {
      // From here on a monitor must not touch the handle: libzmq frees it after zmq_close.
      std::lock_guard lock(liveness_->mutex);
      liveness_->handle = nullptr;
    }
    zmq_close(handle_);
    handle_ = nullptr;
  }
}

zmq::socket_ref socket::handle() const noexcept { return zmq::socket_ref(zmq::from_handle, handle_); }

std::string socket::bind(std::string_view endpoint) {
  if (!handle_) throw error(errc::closed, "bind on a closed socket");
  std::string ep(endpoint);
  if (zmq_bind(handle_, ep.c_str()) != 0) {
    const int err = zmq_errno();
    throw_zmq_error(err, endpoint_error("bind", endpoint, err));
  }
  return last_endpoint();
}

void socket::connect(std::string_view endpoint) {
  if (!handle_) throw error(errc::closed, "connect on a closed socket");
  std::string ep(endpoint);
  if (zmq_connect(handle_, ep.c_str()) != 0) {
    const int err = zmq_errno();
    throw_zmq_error(err, endpoint_error("connect to", endpoint, err));
  }
}

void socket::unbind(std::string_view endpoint) {
  if (!handle_) throw error(errc::closed, "unbind on a closed socket");
  std::string ep(endpoint);
  if (zmq_unbind(handle_, ep.c_str()) != 0) {
    const int err = zmq_errno();
    throw_zmq_error(err, endpoint_error("unbind", endpoint, err));
  }
}

void socket::disconnect(std::string_view endpoint) {
  if (!handle_) throw error(errc::closed, "disconnect on a closed socket");
  std::string ep(endpoint);
  if (zmq_disconnect(handle_, ep.c_str()) != 0) {
    const int err = zmq_errno();
    throw_zmq_error(err, endpoint_error("disconnect from", endpoint, err));
  }
}

std::string socket::last_endpoint() const {
  if (!handle_) throw error(errc::closed, "last_endpoint on a closed socket");
  char buffer[1024];
  std::size_t size = sizeof buffer;
  if (zmq_getsockopt(handle_, ZMQ_LAST_ENDPOINT, buffer, &size) != 0)
    throw_zmq_error(zmq_errno(), "cannot read ZMQ_LAST_ENDPOINT");
  return std::string(buffer, size > 0 ? size - 1 : 0);
}

result<message> socket::recv() {
  message m;
  if (auto r = recv_message(m, default_wait); !r) return r.error();
  return m;
}

result<message> socket::recv(std::chrono::milliseconds timeout) {
  message m;
  if (auto r = recv_message(m, clamp(timeout)); !r) return r.error();
  return m;
}

// Returns the ZMQ flags for one call and, for a blocking call, sets the socket's libzmq timeout
// to the wanted one. The timeout is cached so a loop of calls with one timeout costs no syscall.
int socket::prepare(long wait_ms, bool sending) {
  if (wait_ms == no_wait) return ZMQ_DONTWAIT;
  int wanted;
  if (wait_ms == default_wait) {
    wanted = sending ? default_sndtimeo_ : default_rcvtimeo_;
  } else {
    wanted = wait_ms > INT32_MAX ? INT32_MAX : static_cast<int>(wait_ms);
  }
  int& current = sending ? sndtimeo_ : rcvtimeo_;
  if (current != wanted) {
    if (zmq_setsockopt(handle_, sending ? ZMQ_SNDTIMEO : ZMQ_RCVTIMEO, &wanted, sizeof wanted) == 0)
      current = wanted;
  }
  return 0;
}

result<void> socket::failure(int err, bool sending, int flags) const {
  switch (err) {
    case EAGAIN:
      if (sending) return errc::back_pressure;
      return (flags & ZMQ_DONTWAIT) ? errc::would_block : errc::timeout;
    case EHOSTUNREACH: return errc::peer_unreachable;
    case ETERM:
    case ENOTSOCK: return errc::closed;
    case EINTR: return errc::interrupted;
    case EFSM:
      throw error(std::error_code(err, zmq_category()),
                  sending ? "send not allowed now: this socket type expects a receive first"
                          : "recv not allowed now: this socket type expects a send first");
    case ENOTSUP:
      throw error(std::error_code(err, zmq_category()),
                  sending ? "this socket type cannot send" : "this socket type cannot receive");
    default:
      throw error(std::error_code(err, zmq_category()), sending ? "send failed" : "recv failed");
  }
}

// The hot paths below do not test for a closed socket: libzmq answers a null socket with
// ENOTSOCK, which failure() reports as errc::closed.

result<void> socket::send_parts(frame* head, message& m, long wait_ms) {
  if (!handle_) return errc::closed;  // before the empty check: a closed socket says so first
  if (m.empty() && head == nullptr)
    throw error(errc::invalid_argument, "cannot send a message with no frames");
  const int flags = flags_for(wait_ms, true);
  auto& frames = m.frames();
  const std::size_t n = frames.size();
  // Only the first frame can fail with EAGAIN/EHOSTUNREACH: once it is queued, libzmq accepts
  // the rest of the message. So a failure here leaves `head` and `m` untouched.
  if (head != nullptr) {
    if (zmq_msg_send(head->handle(), handle_, flags | (n > 0 ? ZMQ_SNDMORE : 0)) < 0)
      return failure(zmq_errno(), true, flags);
  }
  for (std::size_t i = 0; i < n; ++i) {
    const int f = flags | (i + 1 < n ? ZMQ_SNDMORE : 0);
    if (zmq_msg_send(frames[i].handle(), handle_, f) < 0) {
      const int err = zmq_errno();
      if (i == 0 && head == nullptr) return failure(err, true, flags);
      m.clear();  // part of the message went out; what is left cannot be sent on its own
      return failure(err, true, flags);
    }
  }
  m.clear();
  return {};
}

result<void> socket::send_frame(frame& f, bool more, long wait_ms) {
  const int flags = flags_for(wait_ms, true);
  if (zmq_msg_send(f.handle(), handle_, flags | (more ? ZMQ_SNDMORE : 0)) < 0) [[unlikely]]
    return failure(zmq_errno(), true, flags);
  return {};
}

result<void> socket::recv_message(message& m, long wait_ms) {
  auto got = recv_one(m, wait_ms);
  if (!got || !authenticated_only_ || has_authenticated_peer(m)) [[likely]] return got;
  // Defence in depth at a CURVE server: a message from a ZMTP connection must carry the User-Id
  // the ZAP handler gave its peer. One without it came past authentication somehow: it is
  // dropped and counted, and the wait goes on for what is left of the caller's bound.
  const long wanted = wait_ms == default_wait ? default_rcvtimeo_ : wait_ms;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(wanted > 0 ? wanted : 0);
  for (;;) {
    m.clear();
    ++dropped_;
    long left = wanted;
    if (wanted > 0) {
      left = static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   deadline - std::chrono::steady_clock::now())
                                   .count());
      if (left <= 0) left = no_wait;
    }
    got = recv_one(m, left);
    if (!got || has_authenticated_peer(m)) return got;
  }
}

bool socket::has_authenticated_peer(message& m) noexcept {
  // The last frame is read: a ROUTER makes the first (the routing id) itself, with no
  // properties. A message with no properties at all came over inproc, from this process, which
  // has no handshake to authenticate; every ZMTP connection has a Socket-Type.
  zmq_msg_t* last = m.frames().back().handle();
  const char* user = zmq_msg_gets(last, "User-Id");
  if (user != nullptr && *user != '\0') return true;
  return zmq_msg_gets(last, "Socket-Type") == nullptr;
}

result<void> socket::recv_one(message& m, long wait_ms) {
  const int flags = flags_for(wait_ms, false);
  // Receive into the frames the message already has: zmq_msg_recv releases a frame's old
  // content itself, so a message reused in a loop costs exactly what raw libzmq costs.
  auto& frames = m.frames();
  if (frames.empty()) frames.emplace_back();
  if (zmq_msg_recv(frames[0].handle(), handle_, flags) < 0) [[unlikely]] {
    const int err = zmq_errno();
    m.clear();
    return failure(err, false, flags);
  }
  // The rest of a multipart message has arrived with its first frame: no waiting from here.
  std::size_t n = 1;
  while (zmq_msg_more(frames[n - 1].handle())) {
    if (n >= options_.max_frames) {
      frame scratch;
      do {
        if (zmq_msg_recv(scratch.handle(), handle_, 0) < 0) break;
      } while (zmq_msg_more(scratch.handle()));
      m.clear();
      ++dropped_;
      return errc::too_large;
    }
    if (n == frames.size()) frames.emplace_back();
    if (zmq_msg_recv(frames[n].handle(), handle_, 0) < 0) {
      const int err = zmq_errno();
      m.clear();
      return failure(err, false, flags);
    }
    ++n;
  }
  if (frames.size() > n) frames.erase(frames.begin() + static_cast<std::ptrdiff_t>(n), frames.end());
  return {};
}

}  // namespace fabric
