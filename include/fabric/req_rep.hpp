// Request/reply: requester (REQ) and replier (REP). Strict lock-step: a requester sends one
// request then receives one reply; a replier receives one request then sends one reply.
//
// Thread safety: as fabric::socket (one thread at a time).
#pragma once

#include <fabric/socket.hpp>

#include <chrono>

namespace fabric {

/// A REQ socket. Requests are spread round-robin over connected repliers.
///
/// After a timed-out request a plain REQ socket cannot send again; either set
/// socket_options::req_relaxed, or close it and use a new one (what Lazy Pirate does).
class requester : public socket {
 public:
  explicit requester(context& ctx, const socket_options& options = {})
      : socket(ctx, zmq::socket_type::req, options) {}
  using socket::recv;
  using socket::send;
  using socket::try_recv;
  using socket::try_send;

  /// Sends `request` and waits at most `timeout` in all for the reply.
  /// Returns: the reply, or errc::timeout / back_pressure / closed.
  result<message> request(message&& request, std::chrono::milliseconds timeout);
};

/// A REP socket. Replies go back to the requester the last request came from.
class replier : public socket {
 public:
  explicit replier(context& ctx, const socket_options& options = {})
      : socket(ctx, zmq::socket_type::rep, options) {}
  using socket::recv;
  using socket::send;
  using socket::try_recv;
  using socket::try_send;
};

}  // namespace fabric
