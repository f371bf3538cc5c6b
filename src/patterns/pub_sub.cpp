// publisher::publish and subscriber's topic filters.
#include <fabric/error.hpp>
#include <fabric/pub_sub.hpp>

#include <zmq.h>

namespace fabric {

result<void> publisher::publish(std::string_view topic, message&& body) {
  frame head = make_frame(topic);
  return send_parts(&head, body, default_wait);
}

result<void> publisher::publish(std::string_view topic, std::string_view body) {
  frame head = make_frame(topic);
  message m(body);
  return send_parts(&head, m, default_wait);
}

subscriber::subscriber(context& ctx, std::initializer_list<std::string_view> topics,
                       const socket_options& options)
    : subscriber(ctx, options) {
  for (std::string_view t : topics) subscribe(t);
}

void subscriber::subscribe(std::string_view prefix) {
  if (zmq_setsockopt(native(), ZMQ_SUBSCRIBE, prefix.data(), prefix.size()) != 0)
    throw_zmq_error(zmq_errno(), "cannot subscribe to '" + std::string(prefix) + "'");
}

void subscriber::unsubscribe(std::string_view prefix) {
  if (zmq_setsockopt(native(), ZMQ_UNSUBSCRIBE, prefix.data(), prefix.size()) != 0)
    throw_zmq_error(zmq_errno(), "cannot unsubscribe from '" + std::string(prefix) + "'");
}

}  // namespace fabric
