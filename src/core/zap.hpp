// The context's ZAP handler (RFC 27/ZAP): authenticates CURVE clients against an allowlist.
// Internal to fabric.
#pragma once

#include "core/driver.hpp"

#include <fabric/context.hpp>
#include <fabric/socket.hpp>

#include <atomic>
#include <memory>
#include <mutex>
#include <set>
#include <string>

namespace fabric::detail {

/// What the handler consults on every handshake; shared with the owning context.
struct zap_policy {
  std::mutex mutex;
  std::set<std::string> allowed;  // Z85 public keys
  bool allow_any = false;
  std::atomic<std::uint64_t> allowed_count{0};
  std::atomic<std::uint64_t> denied_count{0};

  bool permits(const std::string& z85_key);
};

/// The handler: a REP socket at inproc://zeromq.zap.01 answered by the protocol driver on a thread
/// of its own. It has no timers; each request is answered as it comes.
class zap_handler {
 public:
  zap_handler(context& ctx, std::shared_ptr<zap_policy> policy);
  /// Ends the handler's thread (bounded wait). Returns false when it did not end in time.
  bool stop() noexcept { return driver_.stop(); }

 private:
  std::shared_ptr<zap_policy> policy_;
  any_socket rep_;
  driver driver_;  // last: stopped before the socket it reads is closed
};

/// Starts the handler on its own thread, bound at inproc://zeromq.zap.01 in `ctx`.
/// Throws: fabric::error when the endpoint is taken (another ZAP handler in this context).
std::unique_ptr<zap_handler> start_zap_handler(context& ctx, std::shared_ptr<zap_policy> policy);

}  // namespace fabric::detail
