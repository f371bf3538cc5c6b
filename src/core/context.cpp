// fabric::context: libzmq context plus the fail-closed ZAP handler.
#include <fabric/context.hpp>
#include <fabric/error.hpp>
#include <fabric/security.hpp>

#include "core/zap.hpp"

namespace fabric {

struct context::auth_state {
  std::mutex mutex;  // guards handler
  std::shared_ptr<detail::zap_policy> policy = std::make_shared<detail::zap_policy>();
  std::unique_ptr<detail::zap_handler> handler;
};

context::context() : context(context_options{}) {}

context::context(const context_options& options)
    : ctx_(options.io_threads, options.max_sockets), auth_(std::make_shared<auth_state>()) {
  ctx_.set(zmq::ctxopt::ipv6, options.ipv6 ? 1 : 0);
}

context::~context() {
  {
    std::lock_guard lock(auth_->mutex);
    if (auth_->handler) auth_->handler->stop();
    auth_->handler.reset();
  }
  // ctx_'s destructor terminates the libzmq context, waiting for sockets to close.
}

void context::shutdown() noexcept { ctx_.shutdown(); }

void context::allow_curve_client(std::string_view public_key) {
  std::string key(public_key);
  if (!is_z85_key(key))
    throw error(errc::invalid_argument, "allow_curve_client: a CURVE public key is 40 Z85 characters");
  std::lock_guard lock(auth_->policy->mutex);
  auth_->policy->allowed.insert(std::move(key));
}

void context::revoke_curve_client(std::string_view public_key) {
  std::lock_guard lock(auth_->policy->mutex);
  auth_->policy->allowed.erase(std::string(public_key));
}

void context::allow_any_curve_client(bool any) {
  std::lock_guard lock(auth_->policy->mutex);
  auth_->policy->allow_any = any;
}

void context::ensure_authenticator() {
  std::lock_guard lock(auth_->mutex);
  if (!auth_->handler) auth_->handler = detail::start_zap_handler(*this, auth_->policy);
}

authenticator_stats context::auth_stats() const noexcept {
  return {auth_->policy->allowed_count.load(std::memory_order_relaxed),
          auth_->policy->denied_count.load(std::memory_order_relaxed)};
}

}  // namespace fabric
