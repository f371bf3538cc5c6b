// socket_options: every setting a fabric socket applies when it is created.
//
// An aggregate, so designated initializers read well:
//   fabric::pusher out(ctx, {.send_hwm = 10'000, .linger = 0ms});
// Thread safety: a plain value.
#pragma once

#include <fabric/security.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace fabric {

/// The default bound on one frame's size (ZMQ_MAXMSGSIZE): 64 MiB.
inline constexpr std::int64_t default_max_message_size = std::int64_t{64} << 20;

/// Settings applied to a socket at creation. Defaults follow libzmq except where libzmq's default
/// is unsafe: linger is bounded, frame size is bounded, and frames per message are bounded.
struct socket_options {
  /// ZMQ_SNDHWM: messages queued per peer before send reports back-pressure; 0 = no limit.
  int send_hwm = 1000;
  /// ZMQ_RCVHWM: messages queued per peer on receive; 0 = no limit.
  int recv_hwm = 1000;
  /// ZMQ_LINGER: how long close waits to flush unsent messages. Always bounded in fabric.
  std::chrono::milliseconds linger{1000};
  /// ZMQ_MAXMSGSIZE: the largest frame accepted from a peer, in bytes; larger ones drop the
  /// connection. -1 means no limit (only for trusted peers).
  std::int64_t max_message_size = default_max_message_size;
  /// The most frames recv() accepts in one message; a longer message is drained, dropped,
  /// counted (see socket::dropped()) and reported as errc::too_large.
  std::size_t max_frames = 256;
  /// Default wait of send()/recv() without an explicit timeout; nullopt waits forever.
  std::optional<std::chrono::milliseconds> send_timeout{};
  std::optional<std::chrono::milliseconds> recv_timeout{};
  /// ZMQ_ROUTING_ID: this socket's identity as seen by ROUTER peers; empty = assigned by the peer.
  std::string routing_id{};
  /// ZMQ_RECONNECT_IVL and ZMQ_RECONNECT_IVL_MAX (0 = no exponential back-off).
  std::chrono::milliseconds reconnect_interval{100};
  std::chrono::milliseconds reconnect_interval_max{0};
  /// ZMTP heartbeats (ZMQ_HEARTBEAT_IVL/TIMEOUT/TTL); 0 disables. Timeout 0 = same as interval.
  std::chrono::milliseconds heartbeat_interval{0};
  std::chrono::milliseconds heartbeat_timeout{0};
  std::chrono::milliseconds heartbeat_ttl{0};
  /// ZMQ_IMMEDIATE: queue messages only to completed connections.
  bool immediate = false;
  /// ZMQ_ROUTER_MANDATORY (ROUTER only): a send to an unknown peer fails with
  /// errc::peer_unreachable instead of vanishing silently. On by default in fabric.
  bool router_mandatory = true;
  /// ZMQ_ROUTER_HANDOVER (ROUTER only): a new peer with a taken routing id takes it over.
  bool router_handover = false;
  /// ZMQ_REQ_RELAXED / ZMQ_REQ_CORRELATE (REQ only): allow a new request after a lost reply.
  /// Correlate adds a request-id frame, which ROUTER-based protocols such as MDP do not expect.
  bool req_relaxed = false;
  bool req_correlate = false;
  /// ZMQ_CONFLATE: keep only the last message (SUB, PULL, DEALER); single-frame messages only.
  bool conflate = false;
  /// ZMQ_TCP_KEEPALIVE: -1 = OS default, 0 = off, 1 = on.
  int tcp_keepalive = -1;
  /// ZMQ_HANDSHAKE_IVL: how long a new connection may take to complete its ZMTP (and CURVE)
  /// handshake before it is closed; 0 = no limit. A peer that connects and says nothing holds a
  /// descriptor this long: daemons facing untrusted networks set it short.
  std::chrono::milliseconds handshake_timeout{30'000};
  /// CURVE server or client keys; none by default.
  security_options security{};
};

}  // namespace fabric
