// What the Majordomo client and worker drivers share: a DEALER that sends a routing frame ahead
// of a message without rebuilding it, the 8-byte request-id frame, fresh socket identities, and
// closing a socket without waiting for what it still holds.
//
// Thread safety: free functions over values; an mdp_dealer is a fabric::socket (one thread at a
// time).
#pragma once

#include <fabric/error.hpp>
#include <fabric/message.hpp>
#include <fabric/options.hpp>
#include <fabric/result.hpp>
#include <fabric/router_dealer.hpp>

#include "core/byte_order.hpp"

#include <zmq.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace fabric::mdp::peer {

/// A DEALER that can send `head` followed by a message's frames as one message, so a client puts
/// its request-id frame in front of the codec's frames without a second vector.
class mdp_dealer final : public dealer {
 public:
  using dealer::dealer;

  /// Sends head | m... without blocking. On failure both are unchanged; on success `m` is empty
  /// and `head` has been consumed.
  result<void> try_send_with_head(frame& head, message& m) { return send_parts(&head, m, no_wait); }
  /// As try_send_with_head, waiting at most `timeout` for room.
  result<void> send_with_head(frame& head, message& m, std::chrono::milliseconds timeout) {
    return send_parts(&head, m, clamp(timeout));
  }
};

/// The longest single wait: a caller's longer timeout (milliseconds::max() for "forever") is cut
/// to this, so adding it to the clock cannot overflow.
inline constexpr std::chrono::milliseconds longest_wait = std::chrono::hours(24 * 365);

/// The size of a request-id / connection-id frame: a big-endian u64.
inline constexpr std::size_t id_size = 8;

/// A frame holding `id` as 8 big-endian bytes.
inline frame encode_id(std::uint64_t id) {
  unsigned char bytes[id_size];
  detail::store_be(id, bytes);
  return frame(bytes, id_size);
}

/// Reads an id frame. Returns false (leaving `id` alone) when `f` is not exactly 8 bytes.
inline bool decode_id(const frame& f, std::uint64_t& id) noexcept {
  if (f.size() != id_size) return false;
  id = detail::load_be<std::uint64_t>(static_cast<const unsigned char*>(f.data()));
  return true;
}

/// The longest routing-id prefix a caller may give: room is left for "/" and a 20-digit counter.
inline constexpr std::size_t max_identity_prefix = 255 - 21;

/// Throws fabric::error(invalid_argument) when `base.routing_id` cannot serve as a prefix.
inline void check_identity_prefix(const socket_options& base, const char* who) {
  if (base.routing_id.size() > max_identity_prefix)
    throw error(errc::invalid_argument, std::string(who) +
                                            ": socket.routing_id is a prefix and must be at most " +
                                            std::to_string(max_identity_prefix) + " bytes");
}

/// The options for the `n`th socket of one client or worker. Every socket must have an identity
/// of its own (so a late reply to an abandoned one is never taken for an answer), so a routing id
/// given by the caller becomes a prefix: "<routing_id>/<n>". An empty one stays empty and the
/// broker's ROUTER assigns a fresh identity to each new connection.
inline socket_options with_fresh_identity(const socket_options& base, std::uint64_t n) {
  socket_options o = base;
  if (!o.routing_id.empty()) o.routing_id += "/" + std::to_string(n);
  return o;
}

/// Closes `s` at once, discarding whatever it still queues for a peer that no longer answers.
inline void close_now(socket& s) noexcept {
  if (!s.valid()) return;
  const int zero = 0;
  (void)zmq_setsockopt(s.native(), ZMQ_LINGER, &zero, sizeof zero);
  s.close();
}

/// Throws fabric::error(invalid_argument) unless `ms` is in [lo, hi].
inline void check_range(std::chrono::milliseconds ms, std::chrono::milliseconds lo,
                        std::chrono::milliseconds hi, const std::string& what) {
  if (ms < lo || ms > hi)
    throw error(errc::invalid_argument, what + " must be between " + std::to_string(lo.count()) +
                                            " and " + std::to_string(hi.count()) + " ms");
}

}  // namespace fabric::mdp::peer
