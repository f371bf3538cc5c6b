// freelance::server: a ROUTER bound at its public endpoint, whose identity is that endpoint, and
// the pure server machine (flp_server.hpp). With a handler it runs on the protocol driver
// (core/driver.hpp); without one the application's thread reads it through recv().
#include <fabric/freelance.hpp>
#include <fabric/router_dealer.hpp>

#include "core/driver.hpp"
#include "reliability/flp.hpp"
#include "reliability/flp_server.hpp"
#include "reliability/mdp_peer.hpp"

#include <fabric/error.hpp>

#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace fabric::freelance {

namespace {

using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

// How many messages one readiness event handles before the reactor looks at timers and other
// sockets again.
constexpr int batch = 64;
// Messages recv() handles past its deadline (or try_recv() in all) before it gives up the call.
constexpr int overtime_budget = 256;
// Free ports tried for a wildcard before the bind is given up.
constexpr int port_attempts = 8;

// A tcp endpoint split at its last ':' (an IPv6 host keeps its brackets).
struct tcp_parts {
  std::string host;
  std::string port;
};

std::optional<tcp_parts> split_tcp(std::string_view endpoint) {
  constexpr std::string_view scheme = "tcp://";
  if (!endpoint.starts_with(scheme)) return std::nullopt;
  const std::string_view rest = endpoint.substr(scheme.size());
  const auto colon = rest.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  return tcp_parts{std::string(rest.substr(0, colon)), std::string(rest.substr(colon + 1))};
}

bool is_wildcard_port(const std::optional<tcp_parts>& p) { return p && (p->port == "*" || p->port == "0"); }

// A port the system calls free on `host` now: bound by a plain socket, read back, released. The
// identity must name the port before the ROUTER binds, so libzmq's own wildcard cannot be used.
// Returns 0 when `host` does not resolve or nothing can be bound.
unsigned short probe_free_port(std::string host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* found = nullptr;
  if (::getaddrinfo(host.c_str(), "0", &hints, &found) != 0 || found == nullptr) return 0;
  unsigned short port = 0;
  for (addrinfo* a = found; a != nullptr && port == 0; a = a->ai_next) {
    const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    sockaddr_storage bound{};
    socklen_t length = sizeof bound;
    if (::bind(fd, a->ai_addr, a->ai_addrlen) == 0 &&
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &length) == 0) {
      if (bound.ss_family == AF_INET) port = ntohs(reinterpret_cast<const sockaddr_in*>(&bound)->sin_port);
      if (bound.ss_family == AF_INET6) port = ntohs(reinterpret_cast<const sockaddr_in6*>(&bound)->sin6_port);
    }
    ::close(fd);
  }
  ::freeaddrinfo(found);
  return port;
}

void check_endpoint(const server_options& o) {
  if (o.endpoint.empty()) throw error(errc::invalid_argument, "freelance::server: options.endpoint is empty");
  if (o.endpoint.size() > flp::max_endpoint_size)
    throw error(errc::invalid_argument,
                "freelance::server: options.endpoint is the server's identity and must be at most 255 octets");
  const auto parts = split_tcp(o.endpoint);
  if (parts && parts->host == "*")
    throw error(errc::invalid_argument,
                "freelance::server: options.endpoint is what clients connect to and cannot have the host '*'; "
                "name the host and put the address to bind in options.bind");
  if (!o.bind.empty()) {
    if (is_wildcard_port(parts) || is_wildcard_port(split_tcp(o.bind)))
      throw error(errc::invalid_argument,
                  "freelance::server: with options.bind, name the port in both it and options.endpoint");
  }
  if (o.endpoint.find('*') != std::string::npos && !is_wildcard_port(parts))
    throw error(errc::invalid_argument, "freelance::server: only a tcp port may be '*' in options.endpoint");
}

socket_options socket_for(const server_options& o, const std::string& identity) {
  socket_options s = o.socket;
  s.routing_id = identity;
  s.router_mandatory = true;  // a reply to a client that is gone is counted, not silently lost
  return s;
}

bool address_in_use(const error& e) {
  return e.code().category() == zmq_category() && e.code().value() == EADDRINUSE;
}

}  // namespace

// Members in order of construction: the driver, whose thread uses the socket and the machine, is
// destroyed (and its thread joined) first.
struct server::impl final : detail::machine_sink {
  impl(context& ctx, server_options o, handler h)
      : options(std::move(o)), machine(*this, options.max_control_size, h) {
    check_endpoint(options);
    bind_socket(ctx);
    if (h) {
      driver = std::make_unique<detail::driver>(ctx, "freelance::server");
      driver->watch(
          *sock, [this](message&& m, detail::time_point now) { machine.on_message(std::move(m), now); }, batch,
          [this] { machine.note_malformed(); });
    }
  }
  ~impl() override {
    driver.reset();
    if (sock) mdp::peer::close_now(*sock);
  }
  impl(const impl&) = delete;
  impl& operator=(const impl&) = delete;

  // Makes the ROUTER with the endpoint as identity and binds it; a wildcard port is chosen first.
  void bind_socket(context& ctx) {
    const auto parts = split_tcp(options.endpoint);
    if (!is_wildcard_port(parts)) {
      endpoint = options.endpoint;
      sock.emplace(ctx, socket_for(options, endpoint));
      sock->bind(options.bind.empty() ? endpoint : options.bind);
      return;
    }
    for (int attempt = 1;; ++attempt) {
      const unsigned short port = probe_free_port(parts->host);
      if (port == 0)
        throw error(errc::invalid_argument, "freelance::server: cannot find a free port on '" + parts->host +
                                                "' for " + options.endpoint + "; name the port");
      endpoint = "tcp://" + parts->host + ":" + std::to_string(port);
      sock.emplace(ctx, socket_for(options, endpoint));
      try {
        sock->bind(endpoint);
        return;
      } catch (const error& e) {
        // Another process took the port between the probe and the bind: take another.
        mdp::peer::close_now(*sock);
        sock.reset();
        if (!address_in_use(e) || attempt == port_attempts) throw;
      }
    }
  }

  result<void> send(detail::port, message&& m) override { return sock->try_send(std::move(m)); }

  detail::driver& with_handler(const char* what) {
    if (!driver)
      throw error(errc::invalid_state,
                  std::string("freelance::server::") + what + ": this server has no handler; use recv() and reply()");
    if (driver->running())
      throw error(errc::invalid_state, std::string("freelance::server::") + what + ": the server already runs");
    return *driver;
  }

  void without_handler(const char* what) const {
    if (driver)
      throw error(errc::invalid_state,
                  std::string("freelance::server::") + what + ": this server's handler answers its requests");
  }

  result<void> recv(request& out, std::chrono::milliseconds timeout, bool blocking) {
    const auto deadline = clock::now() + std::min(timeout, mdp::peer::longest_wait);
    for (int overtime = overtime_budget;;) {
      const auto now = clock::now();
      const auto wait = blocking && deadline > now ? std::chrono::ceil<std::chrono::milliseconds>(deadline - now) : 0ms;
      auto r = wait > 0ms ? sock->recv(in, wait) : sock->try_recv(in);
      if (r) {
        if (machine.accept(std::move(in), out)) return {};
      } else if (r.is(errc::too_large)) {
        machine.note_malformed();
      } else if (r.is(errc::timeout) || r.is(errc::would_block)) {
        if (!blocking) return errc::would_block;
        if (clock::now() >= deadline) return errc::timeout;
        continue;
      } else {
        return r;
      }
      // A ping answered or a message dropped: what is queued is still read, but only so much
      // once the caller may not wait any more, so a flood cannot hold it.
      if ((!blocking || clock::now() >= deadline) && --overtime == 0)
        return blocking ? errc::timeout : errc::would_block;
    }
  }

  server_options options;
  std::string endpoint;
  std::optional<router> sock;
  flp::server_machine machine;
  message in;
  std::unique_ptr<detail::driver> driver;
};

server::server(context& ctx, server_options options, handler on_request) {
  if (!on_request) throw error(errc::invalid_argument, "freelance::server: the handler is empty");
  impl_ = std::make_unique<impl>(ctx, std::move(options), std::move(on_request));
}

server::server(context& ctx, server_options options) : impl_(std::make_unique<impl>(ctx, std::move(options), handler())) {}

server::~server() = default;

const std::string& server::endpoint() const noexcept { return impl_->endpoint; }

result<void> server::run() { return impl_->with_handler("run").run(); }
void server::start() { impl_->with_handler("start").start(); }
void server::stop() noexcept {
  if (impl_->driver) impl_->driver->request_stop();
}
void server::attach(reactor& r) { impl_->with_handler("attach").attach(r); }
bool server::detach(reactor& r) noexcept { return impl_->driver && impl_->driver->detach(r); }
bool server::running() const noexcept { return impl_->driver && impl_->driver->running(); }
std::exception_ptr server::failure() const noexcept {
  return impl_->driver ? impl_->driver->failure() : std::exception_ptr();
}

result<void> server::recv(request& out, std::chrono::milliseconds timeout) {
  impl_->without_handler("recv");
  return impl_->recv(out, std::max(timeout, 0ms), true);
}

result<void> server::try_recv(request& out) {
  impl_->without_handler("try_recv");
  return impl_->recv(out, 0ms, false);
}

result<void> server::reply(request& r, message&& body) {
  impl_->without_handler("reply");
  return impl_->machine.reply(r, body);
}

const fabric::socket& server::socket() const noexcept { return *impl_->sock; }

server_stats server::stats() const noexcept { return impl_->machine.stats(); }

}  // namespace fabric::freelance
