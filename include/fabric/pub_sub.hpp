// Publish/subscribe: publisher (PUB) and subscriber (SUB) with topic prefix filters. A message's
// topic is its first frame; a subscriber receives the messages whose first frame starts with one
// of its subscribed prefixes ("" matches all). Filtering happens at the publisher for tcp and ipc.
//
// Delivery is best effort: a subscriber that joins late misses what came before, and messages past
// the high-water mark are dropped (libzmq counts them nowhere; fabric's journaled pub/sub does).
//
// Thread safety: as fabric::socket (one thread at a time).
#pragma once

#include <fabric/socket.hpp>

#include <initializer_list>
#include <string>
#include <string_view>

namespace fabric {

/// A PUB socket. send() never blocks: with no subscriber, or past the HWM, messages are dropped.
class publisher : public socket {
 public:
  explicit publisher(context& ctx, const socket_options& options = {})
      : socket(ctx, zmq::socket_type::pub, options) {}
  using socket::send;
  using socket::try_send;

  /// Sends `topic` as the first frame followed by the frames of `body`.
  result<void> publish(std::string_view topic, message&& body);
  /// Sends `topic` then one frame holding a copy of `body`.
  result<void> publish(std::string_view topic, std::string_view body);
};

/// A SUB socket. It receives nothing until it subscribes to at least one prefix.
class subscriber : public socket {
 public:
  explicit subscriber(context& ctx, const socket_options& options = {})
      : socket(ctx, zmq::socket_type::sub, options) {}
  /// A subscriber already subscribed to `topics`.
  subscriber(context& ctx, std::initializer_list<std::string_view> topics,
             const socket_options& options = {});
  using socket::recv;
  using socket::try_recv;

  /// Starts receiving messages whose first frame begins with `prefix`. Subscriptions count:
  /// subscribing twice needs two unsubscribes.
  void subscribe(std::string_view prefix);
  /// Undoes one subscribe(prefix).
  /// Caveat: libzmq 4.3.4 ignores unsubscribing from a prefix whose first byte is 0x01, so such
  /// a subscription stays until the socket closes. Avoid topics starting with that byte.
  void unsubscribe(std::string_view prefix);
};

}  // namespace fabric
