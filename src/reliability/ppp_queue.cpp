// ppp::queue: the driver that moves frames between the frontend/backend ROUTERs and the pure
// queue_machine, on the caller's thread, on a reactor the caller runs, or in a background actor.
#include "reliability/ppp.hpp"

#include <fabric/actor.hpp>
#include <fabric/error.hpp>
#include <fabric/paranoid_pirate.hpp>
#include <fabric/push_pull.hpp>
#include <fabric/reactor.hpp>
#include <fabric/router_dealer.hpp>

#include <atomic>
#include <optional>
#include <string>
#include <utility>

namespace fabric::ppp {

namespace {

std::atomic<std::uint64_t> queue_counter{0};

// How many messages one readiness event handles before the reactor looks at the other socket
// and the timers again: fairness between clients, workers and heartbeats.
constexpr int batch = 64;

const std::string& checked(const std::string& endpoint, const char* which) {
  if (endpoint.empty())
    throw error(errc::invalid_argument, std::string("ppp::queue: the ") + which + " endpoint is empty");
  return endpoint;
}

}  // namespace

struct queue::impl final : queue_sink {
  impl(context& c, queue_options o)
      : ctx(c),
        options(std::move(o)),
        machine(options, clock::now()),
        frontend(c, options.frontend_socket),
        backend(c, options.backend_socket),
        control(c, socket_options{.linger = std::chrono::milliseconds(0)}) {
    frontend_endpoint = frontend.bind(checked(options.frontend, "frontend"));
    backend_endpoint = backend.bind(checked(options.backend, "backend"));
    control_endpoint = "inproc://fabric.ppp.queue." + std::to_string(queue_counter.fetch_add(1)) + ".control";
    control.bind(control_endpoint);
  }

  bool to_worker(std::string_view worker, message& m) override {
    m.push_front(make_frame(worker));
    if (backend.try_send(std::move(m))) return true;
    (void)m.pop_front();  // left unchanged for the machine, which keeps the request
    return false;
  }

  bool to_client(message& m) override { return static_cast<bool>(frontend.try_send(std::move(m))); }

  void on_frontend(reactor& r) {
    for (int i = 0; i < batch; ++i) {
      message m;
      auto got = frontend.try_recv(m);
      if (!got) {
        if (got.is(errc::too_large)) {
          machine.note_malformed_client();
          continue;
        }
        return;  // would_block; closed surfaces from the reactor's poll
      }
      machine.on_client(std::move(m), r.now(), *this);
    }
  }

  void on_backend(reactor& r) {
    for (int i = 0; i < batch; ++i) {
      message m;
      auto got = backend.try_recv(m);
      if (!got) {
        if (got.is(errc::too_large)) {
          machine.note_malformed_worker();
          continue;
        }
        return;
      }
      const frame id = m.pop_front();
      machine.on_worker(view(id), std::move(m), r.now(), *this);
    }
  }

  void on_timer(reactor& r) {
    timer.reset();
    machine.on_tick(r.now(), *this);
    arm(r);
  }

  void arm(reactor& r) {
    const auto delay = machine.next_deadline() - r.now();
    timer = r.after(delay, [this, &r] { on_timer(r); });
  }

  void attach(reactor& r) {
    if (attached != nullptr || background)
      throw error(errc::invalid_state, "ppp::queue: already running or attached");
    r.add(frontend, [this, &r] { on_frontend(r); });
    r.add(backend, [this, &r] { on_backend(r); });
    arm(r);
    attached = &r;
  }

  bool detach(reactor& r) noexcept {
    if (attached != &r) return false;
    r.remove(frontend);
    r.remove(backend);
    if (timer) r.cancel(*timer);
    timer.reset();
    attached = nullptr;
    return true;
  }

  // Runs `r` with the control socket watched, until stop(), a term from `pipe` (when given), or
  // a context shutdown.
  result<void> loop(reactor& r, pair_socket* pipe) {
    attach(r);
    r.add(control, [this, &r] {
      message m;
      while (control.try_recv(m)) {
      }
      r.stop();
    });
    if (pipe != nullptr) {
      r.add(*pipe, [pipe, &r] {
        message m;
        while (pipe->try_recv(m))
          if (actor::is_term(m)) r.stop();
      });
      actor::signal_ready(*pipe);
    }
    struct cleanup {
      impl* self;
      reactor& r;
      pair_socket* pipe;
      ~cleanup() {
        r.remove(self->control);
        if (pipe != nullptr) r.remove(*pipe);
        self->detach(r);
      }
    } guard{this, r, pipe};
    return r.run();
  }

  context& ctx;
  queue_options options;
  queue_machine machine;
  router frontend;
  router backend;
  puller control;
  std::string frontend_endpoint;
  std::string backend_endpoint;
  std::string control_endpoint;
  reactor* attached = nullptr;
  std::optional<timer_id> timer;
  std::unique_ptr<actor> background;

  // Forgets a background run whose body has already returned (after stop() or a shutdown).
  void reap() noexcept {
    if (background && !background->running()) {
      background->stop();
      background.reset();
    }
  }
};

queue::queue(context& ctx, queue_options options)
    : impl_(std::make_unique<impl>(ctx, std::move(options))) {}

queue::~queue() {
  if (impl_->background) impl_->background->stop();
  if (impl_->attached != nullptr) impl_->detach(*impl_->attached);
}

const std::string& queue::frontend_endpoint() const noexcept { return impl_->frontend_endpoint; }
const std::string& queue::backend_endpoint() const noexcept { return impl_->backend_endpoint; }

result<void> queue::run() {
  impl_->reap();
  if (impl_->background)
    throw error(errc::invalid_state, "ppp::queue::run: the queue already runs in the background");
  reactor r;
  return impl_->loop(r, nullptr);
}

void queue::start() {
  impl_->reap();
  if (impl_->background || impl_->attached != nullptr)
    throw error(errc::invalid_state, "ppp::queue::start: the queue already runs or is attached");
  // The sockets move to the actor's thread; its creation is the barrier libzmq asks for, and the
  // join in stop() the one back.
  impl* self = impl_.get();
  impl_->background = std::make_unique<actor>(impl_->ctx, [self](pair_socket& pipe) {
    reactor r;
    (void)self->loop(r, &pipe);
  });
}

void queue::stop() noexcept {
  try {
    pusher p(impl_->ctx, socket_options{.linger = std::chrono::milliseconds(1000)});
    p.connect(impl_->control_endpoint);
    (void)p.try_send(make_frame("STOP"));
  } catch (...) {
    // The context is shutting down: every loop returns errc::closed on its own.
  }
}

void queue::attach(reactor& r) {
  impl_->reap();
  if (impl_->background)
    throw error(errc::invalid_state, "ppp::queue::attach: the queue runs in the background");
  impl_->attach(r);
}

bool queue::detach(reactor& r) noexcept { return impl_->detach(r); }

queue_stats queue::stats() const noexcept { return impl_->machine.stats(); }

}  // namespace fabric::ppp
