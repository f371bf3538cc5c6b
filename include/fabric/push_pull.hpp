// Pipeline: pusher (PUSH) fans work out round-robin to pullers (PULL), which fair-queue from
// every pusher. Unlike pub/sub, nothing is dropped: a pusher blocks (or reports back-pressure)
// when every puller is at its high-water mark.
//
// Thread safety: as fabric::socket (one thread at a time).
#pragma once

#include <fabric/socket.hpp>

namespace fabric {

/// A PUSH socket.
class pusher : public socket {
 public:
  explicit pusher(context& ctx, const socket_options& options = {})
      : socket(ctx, zmq::socket_type::push, options) {}
  using socket::send;
  using socket::try_send;
};

/// A PULL socket.
class puller : public socket {
 public:
  explicit puller(context& ctx, const socket_options& options = {})
      : socket(ctx, zmq::socket_type::pull, options) {}
  using socket::recv;
  using socket::try_recv;
};

}  // namespace fabric
