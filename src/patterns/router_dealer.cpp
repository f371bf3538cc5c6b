// router::send_to: the peer id goes out as the first frame, without touching the body's frames.
#include <fabric/router_dealer.hpp>

namespace fabric {

result<void> router::send_to(std::string_view peer, message&& body) {
  frame head = make_frame(peer);
  return send_parts(&head, body, default_wait);
}

result<void> router::send_to(const frame& peer, message&& body) {
  frame head(peer.data(), peer.size());
  return send_parts(&head, body, default_wait);
}

}  // namespace fabric
