// fabric::context: libzmq context plus the fail-closed ZAP handler.
#include <fabric/context.hpp>
#include <fabric/error.hpp>
#include <fabric/security.hpp>

#include "core/zap.hpp"

#include <iterator>
#include <unordered_set>
#include <utility>
#include <vector>

namespace fabric {

struct context::auth_state {
  std::mutex mutex;  // guards handler and watch
  std::mutex reload_mutex;  // one allowlist read at a time (see allow_curve_clients_from)
  std::shared_ptr<detail::zap_policy> policy = std::make_shared<detail::zap_policy>();
  std::unique_ptr<detail::zap_handler> handler;
  std::unique_ptr<detail::handshake_watch> watch;
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
    auth_->watch.reset();  // joins its thread, closing its sockets
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

namespace {

std::unordered_set<std::string> as_set(std::vector<std::string>&& keys) {
  return {std::make_move_iterator(keys.begin()), std::make_move_iterator(keys.end())};
}

}  // namespace

std::size_t context::allow_curve_clients_from(const std::filesystem::path& dir,
                                              std::string_view zap_domain) {
  // One directory read at a time, read and stored under one lock, so that a read which started
  // before a reload cannot store its older view after the reload's.
  std::lock_guard reading(auth_->reload_mutex);
  std::vector<std::string> keys = load_curve_allowlist(dir);  // throws before anything changes
  const std::size_t count = keys.size();
  std::lock_guard lock(auth_->policy->mutex);
  auth_->policy->directories[std::string(zap_domain)][dir] = as_set(std::move(keys));
  return count;
}

allowlist_reload context::reload_curve_allowlists() {
  std::lock_guard reading(auth_->reload_mutex);
  // Read the directories without holding the policy's lock: handshakes go on meanwhile.
  std::vector<std::pair<std::string, std::filesystem::path>> registered;
  {
    std::lock_guard lock(auth_->policy->mutex);
    for (const auto& [domain, dirs] : auth_->policy->directories)
      for (const auto& [dir, keys] : dirs) registered.emplace_back(domain, dir);
  }
  allowlist_reload out;
  for (const auto& [domain, dir] : registered) {
    ++out.directories;
    std::vector<std::string> keys;
    try {
      // A broken file keeps only its own key out: removals still take effect.
      keys = load_curve_allowlist(dir, &out.errors);
    } catch (const std::exception& e) {
      out.errors.emplace_back(e.what());  // the directory itself is unreadable: it keeps its keys
      continue;
    }
    std::lock_guard lock(auth_->policy->mutex);
    auth_->policy->directories[domain][dir] = as_set(std::move(keys));
  }
  std::lock_guard lock(auth_->policy->mutex);
  for (const auto& [domain, dirs] : auth_->policy->directories)
    for (const auto& [dir, keys] : dirs) out.keys += keys.size();
  return out;
}

void context::set_log(log_fn fn, log_level min_level) {
  std::lock_guard lock(auth_->policy->mutex);
  auth_->policy->log = std::move(fn);
  auth_->policy->min_level = min_level;
}

void context::ensure_authenticator() {
  std::lock_guard lock(auth_->mutex);
  if (!auth_->handler) auth_->handler = detail::start_zap_handler(*this, auth_->policy);
  if (!auth_->watch) auth_->watch = std::make_unique<detail::handshake_watch>(*this, auth_->policy);
}

authenticator_stats context::auth_stats() const noexcept {
  return {auth_->policy->allowed_count.load(std::memory_order_relaxed),
          auth_->policy->denied_count.load(std::memory_order_relaxed),
          auth_->policy->refused_handshakes.load(std::memory_order_relaxed)};
}

namespace detail {

void context_access::watch_handshakes(context& ctx, void* target) {
  ctx.ensure_authenticator();
  std::lock_guard lock(ctx.auth_->mutex);
  ctx.auth_->watch->add(target);
}

}  // namespace detail

}  // namespace fabric
