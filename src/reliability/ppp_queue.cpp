// ppp::queue: the frontend and backend ROUTERs and the pure queue_machine, run by the one protocol
// driver (core/driver.hpp) on the caller's thread, on a reactor the caller runs, or on an actor.
#include "reliability/ppp.hpp"

#include "core/driver.hpp"

#include <fabric/error.hpp>
#include <fabric/paranoid_pirate.hpp>
#include <fabric/router_dealer.hpp>

#include <string>
#include <utility>

namespace fabric::ppp {

namespace {

// How many messages one readiness event handles before the reactor looks at the other socket
// and the timers again: fairness between clients, workers and heartbeats.
constexpr int batch = 64;

const std::string& checked(const std::string& endpoint, const char* which) {
  if (endpoint.empty())
    throw error(errc::invalid_argument, std::string("ppp::queue: the ") + which + " endpoint is empty");
  return endpoint;
}

}  // namespace

// Members in order of construction: the driver, whose thread uses the sockets and the machine,
// is destroyed (and its thread joined) first.
struct queue::impl final : detail::machine_sink {
  impl(context& c, queue_options o)
      : options(std::move(o)),
        machine(options, *this, clock::now()),
        frontend(c, options.frontend_socket),
        backend(c, options.backend_socket),
        driver(c, "ppp::queue") {
    frontend_endpoint = frontend.bind(checked(options.frontend, "frontend"));
    backend_endpoint = backend.bind(checked(options.backend, "backend"));
    driver.watch(
        frontend, [this](message&& m, time_point now) { machine.on_message(port::main, std::move(m), now); },
        batch, [this] { machine.note_malformed_client(); });
    driver.watch(
        backend, [this](message&& m, time_point now) { machine.on_message(port::backend, std::move(m), now); },
        batch, [this] { machine.note_malformed_worker(); });
    driver.ticks([this](time_point now) { machine.on_tick(now); }, [this] { return machine.next_tick(); });
  }

  // A ROUTER's send leaves `m` unchanged when it fails, as the machine expects.
  result<void> send(port to, message&& m) override {
    return to == port::backend ? backend.try_send(std::move(m)) : frontend.try_send(std::move(m));
  }

  queue_options options;
  queue_machine machine;
  router frontend;
  router backend;
  std::string frontend_endpoint;
  std::string backend_endpoint;
  detail::driver driver;
};

queue::queue(context& ctx, queue_options options)
    : impl_(std::make_unique<impl>(ctx, std::move(options))) {}

queue::~queue() = default;

const std::string& queue::frontend_endpoint() const noexcept { return impl_->frontend_endpoint; }
const std::string& queue::backend_endpoint() const noexcept { return impl_->backend_endpoint; }

result<void> queue::run() {
  if (impl_->driver.running())
    throw error(errc::invalid_state, "ppp::queue::run: the queue already runs in the background");
  return impl_->driver.run();
}

void queue::start() {
  if (impl_->driver.running())
    throw error(errc::invalid_state, "ppp::queue::start: the queue already runs or is attached");
  impl_->driver.start();
}

void queue::stop() noexcept { impl_->driver.request_stop(); }

void queue::attach(reactor& r) {
  if (impl_->driver.running())
    throw error(errc::invalid_state, "ppp::queue::attach: the queue runs in the background");
  impl_->driver.attach(r);
}

bool queue::detach(reactor& r) noexcept { return impl_->driver.detach(r); }

queue_stats queue::stats() const noexcept { return impl_->machine.stats(); }

}  // namespace fabric::ppp
