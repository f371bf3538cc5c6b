// The context's ZAP handler (RFC 27/ZAP): authenticates CURVE clients against an allowlist.
// Internal to fabric.
#pragma once

#include <fabric/actor.hpp>
#include <fabric/context.hpp>

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

/// Starts the handler on its own thread, bound at inproc://zeromq.zap.01 in `ctx`.
/// Throws: fabric::error when the endpoint is taken (another ZAP handler in this context).
std::unique_ptr<actor> start_zap_handler(context& ctx, std::shared_ptr<zap_policy> policy);

}  // namespace fabric::detail
