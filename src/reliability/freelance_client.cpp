// The Freelance clients: one ROUTER connected to every server, and the pure client machine
// (flp_client.hpp) fed on the application's thread. The synchronous client runs it inside
// request(); the asynchronous one inside send(), recv() and try_recv().
#include <fabric/freelance.hpp>
#include <fabric/router_dealer.hpp>

#include "reliability/flp_client.hpp"
#include "reliability/mdp_peer.hpp"

#include <fabric/error.hpp>
#include <fabric/security.hpp>

#include <zmq.h>

#include <algorithm>
#include <random>
#include <utility>
#include <variant>

namespace fabric::freelance {

namespace {

using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

// Messages one call handles without waiting before it lets its caller look elsewhere.
constexpr int budget = 256;

// A random first sequence number, so that a restarted client cannot take a reply meant for an
// earlier incarnation (on a server that kept it queued) for its own.
std::uint64_t random_sequence() {
  std::random_device rd;
  return (std::uint64_t{rd()} << 32) ^ std::uint64_t{rd()};
}

// Milliseconds from `now` to `until`, rounded up so that a wait never ends just short and spins;
// 0 when it has passed.
std::chrono::milliseconds until_ms(clock::time_point until, clock::time_point now) {
  if (until <= now) return 0ms;
  return std::min(std::chrono::ceil<std::chrono::milliseconds>(until - now), mdp::peer::longest_wait);
}

socket_options socket_for(const client_options& o, const char* who) {
  flp::check_options(o, who);
  if (!o.socket.routing_id.empty())
    throw error(errc::invalid_argument,
                std::string(who) + ": options.socket.routing_id must be empty: 10/FLP clients are transient");
  if (!o.server_keys.empty()) {
    if (!std::holds_alternative<curve_client>(o.socket.security))
      throw error(errc::invalid_argument,
                  std::string(who) + ": options.server_keys needs options.socket.security to be a curve_client");
    if (o.server_keys.size() != o.servers.size())
      throw error(errc::invalid_argument, std::string(who) + ": options.server_keys needs one key per server");
    for (const std::string& k : o.server_keys)
      if (!is_z85_key(k))
        throw error(errc::invalid_argument, std::string(who) + ": a server key is not a Z85 CURVE key");
  }
  socket_options s = o.socket;
  s.router_mandatory = true;  // a send to a server not connected must fail, not vanish
  s.router_handover = true;   // a restarted server takes its identity back at once
  s.linger = 0ms;
  return s;
}

}  // namespace

// The socket, the machine and the loop both clients share. The socket is made before the machine,
// which sends through it (its first pings go out on the first tick).
struct client_core final : detail::machine_sink {
  client_core(context& ctx, client_options o, const char* who)
      : options(std::move(o)),
        sock(ctx, socket_for(options, who)),
        machine(options, *this, clock::now(), random_sequence()) {
    for (std::size_t i = 0; i < options.servers.size(); ++i) {
      if (!options.server_keys.empty()) {
        // libzmq reads the server key when a connection is set up: one key per connect.
        const std::string& key = options.server_keys[i];
        if (zmq_setsockopt(sock.native(), ZMQ_CURVE_SERVERKEY, key.data(), key.size()) != 0)
          throw_zmq_error(zmq_errno(), std::string(who) + ": cannot set the server key of " + options.servers[i]);
      }
      sock.connect(options.servers[i]);
    }
  }
  ~client_core() override { mdp::peer::close_now(sock); }
  client_core(const client_core&) = delete;
  client_core& operator=(const client_core&) = delete;

  // A ROUTER's send leaves `m` unchanged when it fails, as the machine expects.
  result<void> send(detail::port, message&& m) override { return sock.try_send(std::move(m)); }

  void tick(clock::time_point now) {
    if (now >= machine.next_tick()) machine.on_tick(now);
  }

  // Does what is due and handles what is queued, without waiting: at most `budget` messages, and
  // none after a request has completed (each empty non-blocking receive costs libzmq two system
  // calls, so the queue is not drained for its own sake).
  // Returns: an error that ends the caller's call (closed, interrupted).
  result<void> pump() {
    tick(clock::now());
    for (int n = 0; n < budget && machine.completed() == 0; ++n) {
      auto r = sock.try_recv(in);
      if (r) {
        machine.on_message(std::move(in), clock::now());
      } else if (r.is(errc::too_large)) {
        machine.note_malformed();
      } else if (r.is(errc::would_block)) {
        break;
      } else {
        return r;
      }
    }
    tick(clock::now());
    return {};
  }

  // Waits until a message comes or `until` (or the machine's next tick, if sooner) passes, and
  // handles the message. Returns: an error that ends the caller's call.
  result<void> wait(clock::time_point until) {
    const auto now = clock::now();
    const auto wait = until_ms(std::min(until, machine.next_tick()), now);
    if (wait == 0ms) return {};
    auto r = sock.recv(in, wait);
    if (r) {
      machine.on_message(std::move(in), clock::now());
    } else if (r.is(errc::too_large)) {
      machine.note_malformed();
    } else if (!r.is(errc::timeout)) {
      // libzmq's clock is coarser than ours and may end a wait a little early: callers check.
      return r;
    }
    return {};
  }

  client_options options;
  router sock;
  flp::client_machine machine;
  message in;
};

// ---------------------------------------------------------------------------------------------
// client

struct client::impl {
  impl(context& ctx, client_options o) : core(ctx, std::move(o), "freelance::client") {}

  result<message> request(message& body) {
    if (body.empty()) throw error(errc::invalid_argument, "freelance::client::request: a request needs a body frame");
    // What earlier requests left (an answer after an interrupted wait) is dropped by the machine
    // as late, or skipped below by its id.
    reply r;
    while (core.machine.take(r)) {
    }
    // The machine keeps a copy sharing the frames' bytes, so `body` is unchanged on failure.
    message copy;
    copy.reserve(body.size());
    for (frame& f : body) copy.emplace_back().copy(f);
    const auto start = clock::now();
    auto id = core.machine.submit(copy, start, core.options.request_expiry);
    if (!id) return id.error();
    for (;;) {
      core.tick(clock::now());
      while (core.machine.take(r)) {
        if (r.id != *id) continue;  // not ours: nothing else is outstanding
        switch (r.status) {
          case reply_status::ok:
            body.clear();
            return std::move(r.body);
          case reply_status::expired:
            return errc::timeout;
          case reply_status::unavailable:
            return errc::peer_unreachable;
        }
      }
      if (core.machine.outstanding() == 0) return errc::timeout;  // gone without an answer
      if (auto w = core.wait(clock::time_point::max()); !w) {
        core.machine.cancel(*id);
        return w.error();
      }
    }
  }

  client_core core;
};

client::client(context& ctx, client_options options) : impl_(std::make_unique<impl>(ctx, std::move(options))) {}
client::~client() = default;
client::client(client&&) noexcept = default;
client& client::operator=(client&&) noexcept = default;

result<message> client::request(message&& body) {
  if (!impl_) throw error(errc::invalid_state, "freelance::client::request: this client has been moved from");
  return impl_->request(body);
}

std::size_t client::live_servers() const noexcept { return impl_->core.machine.live_servers(); }
const client_stats& client::stats() const noexcept { return impl_->core.machine.stats(); }
const client_options& client::options() const noexcept { return impl_->core.options; }

// ---------------------------------------------------------------------------------------------
// async_client

struct async_client::impl {
  impl(context& ctx, client_options o) : core(ctx, std::move(o), "freelance::async_client") {}

  result<std::uint64_t> send(message& body, std::chrono::milliseconds expiry) {
    if (body.empty())
      throw error(errc::invalid_argument, "freelance::async_client::send: a request needs a body frame");
    const auto now = clock::now();
    core.tick(now);
    return core.machine.submit(body, now, expiry);
  }

  result<void> recv(reply& out, std::chrono::milliseconds timeout, bool blocking) {
    const auto deadline = clock::now() + std::min(timeout, mdp::peer::longest_wait);
    for (;;) {
      core.tick(clock::now());
      if (core.machine.take(out)) return {};
      if (auto p = core.pump(); !p) return p;
      if (core.machine.take(out)) return {};
      if (!blocking) return errc::would_block;
      if (clock::now() >= deadline) return errc::timeout;
      if (auto w = core.wait(deadline); !w) return w;
    }
  }

  client_core core;
};

async_client::async_client(context& ctx, client_options options)
    : impl_(std::make_unique<impl>(ctx, std::move(options))) {}
async_client::~async_client() = default;
async_client::async_client(async_client&&) noexcept = default;
async_client& async_client::operator=(async_client&&) noexcept = default;

result<std::uint64_t> async_client::send(message&& body) {
  return impl_->send(body, impl_->core.options.request_expiry);
}

result<std::uint64_t> async_client::send(message&& body, std::chrono::milliseconds request_expiry) {
  mdp::peer::check_range(request_expiry, 1ms, flp::longest_setting,
                         "freelance::async_client::send: request_expiry");
  return impl_->send(body, request_expiry);
}

result<void> async_client::recv(reply& out, std::chrono::milliseconds timeout) {
  return impl_->recv(out, std::max(timeout, 0ms), true);
}

result<reply> async_client::recv(std::chrono::milliseconds timeout) {
  reply out;
  if (auto r = impl_->recv(out, std::max(timeout, 0ms), true); !r) return r.error();
  return out;
}

result<void> async_client::try_recv(reply& out) { return impl_->recv(out, 0ms, false); }

bool async_client::cancel(std::uint64_t id) noexcept { return impl_->core.machine.cancel(id); }

std::size_t async_client::outstanding() const noexcept { return impl_->core.machine.outstanding(); }

std::optional<async_client::clock::time_point> async_client::next_deadline() const noexcept {
  const auto t = impl_->core.machine.next_tick();
  if (t == clock::time_point::max()) return std::nullopt;
  return t;
}

std::size_t async_client::live_servers() const noexcept { return impl_->core.machine.live_servers(); }
const fabric::socket& async_client::socket() const noexcept { return impl_->core.sock; }
const client_stats& async_client::stats() const noexcept { return impl_->core.machine.stats(); }
const client_options& async_client::options() const noexcept { return impl_->core.options; }

}  // namespace fabric::freelance
