// Asynchronous request/reply: router (ROUTER) addresses peers by routing id; dealer (DEALER)
// talks to any number of routers without lock-step.
//
// A router receives [peer-id, frames...]; it sends a message whose first frame names the peer.
// fabric turns on ROUTER_MANDATORY by default, so a send to an unknown peer returns
// errc::peer_unreachable instead of vanishing (set socket_options::router_mandatory = false for
// libzmq's silent drop).
//
// Thread safety: as fabric::socket (one thread at a time).
#pragma once

#include <fabric/socket.hpp>

#include <string_view>

namespace fabric {

/// A ROUTER socket.
class router : public socket {
 public:
  explicit router(context& ctx, const socket_options& options = {})
      : socket(ctx, zmq::socket_type::router, options) {}
  using socket::recv;
  using socket::send;
  using socket::try_recv;
  using socket::try_send;

  /// Sends `body` to the peer whose routing id is `peer`.
  /// Returns: success, or errc::peer_unreachable / back_pressure / timeout / closed, in which case
  /// `body` is unchanged.
  result<void> send_to(std::string_view peer, message&& body);
  /// As send_to, with the peer id given as the frame received from it.
  result<void> send_to(const frame& peer, message&& body);
};

/// A DEALER socket. Messages go round-robin to connected peers and are fair-queued from them.
class dealer : public socket {
 public:
  explicit dealer(context& ctx, const socket_options& options = {})
      : socket(ctx, zmq::socket_type::dealer, options) {}
  using socket::recv;
  using socket::send;
  using socket::try_recv;
  using socket::try_send;
};

}  // namespace fabric
