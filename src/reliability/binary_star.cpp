// fabric::binary_star: the node and the witness of docs/ha.md on the shared driver. The machines
// (bstar_machine.hpp) decide; this file owns their sockets and moves frames.
#include <fabric/binary_star.hpp>

#include "core/driver.hpp"
#include "reliability/bstar_machine.hpp"

#include <fabric/error.hpp>
#include <fabric/pub_sub.hpp>
#include <fabric/router_dealer.hpp>

#include <nlohmann/json.hpp>

#include <cstring>
#include <optional>
#include <string>
#include <utility>

namespace fabric::binary_star {
namespace {

using detail::port;
using detail::time_point;
using clock = detail::machine_clock;

constexpr int batch = 64;

const std::string& required(const std::string& endpoint, const char* what) {
  if (endpoint.empty()) throw error(errc::invalid_argument, std::string("binary_star: ") + what + " is empty");
  return endpoint;
}

detail::bstar_settings settings_of(const node_options& o) {
  return {.role = static_cast<bstar::role>(o.role),
          .heartbeat = o.heartbeat,
          .expiry = o.expiry,
          .witness = !o.witness.empty()};
}

}  // namespace

std::string_view to_string(role r) noexcept { return bstar::to_string(static_cast<bstar::role>(r)); }
std::string_view to_string(state s) noexcept { return bstar::to_string(static_cast<bstar::status>(s)); }

std::string to_json(const node_stats& s) {
  const nlohmann::ordered_json doc = {{"state", to_string(s.current)},
                                      {"term", s.term},
                                      {"writable", s.writable},
                                      {"peer_alive", s.peer_alive},
                                      {"peer", to_string(s.peer)},
                                      {"states_sent", s.states_sent},
                                      {"states_heard", s.states_heard},
                                      {"malformed", s.malformed},
                                      {"send_failures", s.send_failures},
                                      {"admitted", s.admitted},
                                      {"refused", s.refused},
                                      {"takeovers", s.takeovers},
                                      {"step_downs", s.step_downs},
                                      {"split_brain", s.split_brain},
                                      {"misconfigured", s.misconfigured},
                                      {"both_passive", s.both_passive},
                                      {"not_ready", s.not_ready},
                                      {"leases_sent", s.leases_sent},
                                      {"grants", s.grants},
                                      {"denials", s.denials}};
  return doc.dump();
}

// --- node ---

struct node::impl final : detail::bstar_sink {
  // What the hosted service says of its readiness to take over, as of now.
  void refresh_ready() {
    if (options.ready) machine.set_ready(options.ready());
  }

  impl(context& c, node_options o)
      : options(std::move(o)),
        pub(c, options.bind_socket),
        sub(c, options.peer_socket),
        machine(settings_of(options), *this, clock::now(), options.term),
        driver(c, "binary star node") {
    endpoint = pub.bind(required(options.bind, "the bind endpoint"));
    sub.subscribe(bstar::header);
    sub.connect(required(options.peer, "the peer endpoint"));
    driver.watch(sub, [this](message&& m, time_point now) {
      refresh_ready();
      machine.on_message(port::main, std::move(m), now);
    },
                 batch, [this] { ++oversize; });
    if (!options.witness.empty()) {
      to_witness.emplace(c, options.witness_socket);
      to_witness->connect(options.witness);
      driver.watch(
          *to_witness, [this](message&& m, time_point now) {
            refresh_ready();
            machine.on_message(port::backend, std::move(m), now);
          },
          batch, [this] { ++oversize; });
    }
    driver.ticks([this](time_point now) {
      refresh_ready();
      machine.on_tick(now);
    }, [this] { return machine.next_tick(); });
  }

  result<void> send(port to, message&& m) override {
    if (to == port::backend) {
      if (!to_witness) return errc::closed;
      return to_witness->try_send(std::move(m));
    }
    return pub.try_send(std::move(m));
  }

  void on_state(bstar::status from, bstar::status to, std::uint64_t term) override {
    if (options.log && options.min_log_level <= log_level::info) {
      const auto& st = machine.stats();
      std::string line = std::string("binary star: ") + std::string(bstar::to_string(from)) + " -> " +
                         std::string(bstar::to_string(to)) + ", term " + std::to_string(term);
      if (st.split_brain != logged_split_brain) line += " (split brain: the peer was active too)";
      logged_split_brain = st.split_brain;
      options.log(to == bstar::status::passive && from == bstar::status::active ? log_level::warning
                                                                                 : log_level::info,
                  line);
    }
    if (handler) handler(static_cast<state>(from), static_cast<state>(to), term);
  }

  node_options options;
  publisher pub;
  subscriber sub;
  std::optional<dealer> to_witness;
  detail::bstar_node machine;
  state_handler handler;
  std::string endpoint;
  std::uint64_t oversize = 0;
  std::uint64_t logged_split_brain = 0;
  detail::driver driver;
};

node::node(context& ctx, node_options options) : impl_(std::make_unique<impl>(ctx, std::move(options))) {}

node::~node() = default;

const std::string& node::endpoint() const noexcept { return impl_->endpoint; }

void node::on_state_change(state_handler handler) { impl_->handler = std::move(handler); }

void node::attach(reactor& r) {
  if (impl_->driver.running()) throw error(errc::invalid_state, "binary_star::node::attach: already running");
  impl_->driver.attach(r);
}

bool node::detach(reactor& r) noexcept { return impl_->driver.detach(r); }

void node::start() {
  if (impl_->driver.running()) throw error(errc::invalid_state, "binary_star::node::start: already running");
  impl_->driver.start();
}

result<void> node::run() {
  if (impl_->driver.running()) throw error(errc::invalid_state, "binary_star::node::run: already running");
  return impl_->driver.run();
}

bool node::stop(std::chrono::milliseconds timeout) noexcept { return impl_->driver.stop(timeout); }

bool node::running() const noexcept { return impl_->driver.running(); }

bool node::admit() {
  impl_->refresh_ready();
  return impl_->machine.admit(clock::now());
}

bool node::writable() const noexcept { return impl_->machine.writable(clock::now()); }

state node::current() const noexcept { return static_cast<state>(impl_->machine.state()); }

std::uint64_t node::term() const noexcept { return impl_->machine.term(); }

node_stats node::stats() const noexcept {
  const auto& m = impl_->machine;
  const auto& s = m.stats();
  const time_point now = clock::now();
  return {.current = static_cast<state>(m.state()),
          .term = m.term(),
          .writable = m.writable(now),
          .peer_alive = m.peer_alive(now),
          .peer = static_cast<state>(m.peer_state()),
          .states_sent = s.states_sent,
          .states_heard = s.states_heard,
          .malformed = s.malformed + impl_->oversize,
          .send_failures = s.send_failures,
          .admitted = s.admitted,
          .refused = s.refused,
          .takeovers = s.takeovers,
          .step_downs = s.step_downs,
          .split_brain = s.split_brain,
          .misconfigured = s.misconfigured,
          .both_passive = s.both_passive,
          .not_ready = s.not_ready,
          .leases_sent = s.leases_sent,
          .grants = s.grants,
          .denials = s.denials};
}

// --- witness ---

struct witness::impl final : detail::machine_sink {
  impl(context& c, witness_options o)
      : options(std::move(o)),
        socket(c, options.socket),
        machine({.max_lease = options.max_lease}, *this, clock::now()),
        driver(c, "binary star witness") {
    endpoint = socket.bind(required(options.bind, "the witness bind endpoint"));
    driver.drive(socket, machine, batch);
    driver.commands([this](message&&) {
      const witness_stats s = snapshot();
      message answer;
      answer.push_back(&s, sizeof s);
      return answer;
    });
  }

  result<void> send(port, message&& m) override { return socket.try_send(std::move(m)); }

  witness_stats snapshot() const noexcept {
    const auto& s = machine.stats();
    return {.grants = s.grants,
            .denials = s.denials,
            .holder_changes = s.holder_changes,
            .malformed = s.malformed,
            .send_failures = s.send_failures,
            .holder = machine.holder(),
            .holder_term = machine.holder_term()};
  }

  witness_options options;
  router socket;
  detail::bstar_witness machine;
  std::string endpoint;
  detail::driver driver;
};

witness::witness(context& ctx, witness_options options)
    : impl_(std::make_unique<impl>(ctx, std::move(options))) {}

witness::~witness() = default;

const std::string& witness::endpoint() const noexcept { return impl_->endpoint; }

void witness::attach(reactor& r) {
  if (impl_->driver.running()) throw error(errc::invalid_state, "binary_star::witness::attach: already running");
  impl_->driver.attach(r);
}

bool witness::detach(reactor& r) noexcept { return impl_->driver.detach(r); }

void witness::start() {
  if (impl_->driver.running()) throw error(errc::invalid_state, "binary_star::witness::start: already running");
  impl_->driver.start();
}

result<void> witness::run() {
  if (impl_->driver.running()) throw error(errc::invalid_state, "binary_star::witness::run: already running");
  return impl_->driver.run();
}

bool witness::stop(std::chrono::milliseconds timeout) noexcept { return impl_->driver.stop(timeout); }

bool witness::running() const noexcept { return impl_->driver.running(); }

std::exception_ptr witness::failure() const noexcept { return impl_->driver.failure(); }

witness_stats witness::stats(std::chrono::milliseconds timeout) {
  auto answer = impl_->driver.call(message{}, timeout);
  if (!answer) throw error(answer.error(), "binary_star::witness::stats");
  witness_stats s;
  if (answer->size() != 1 || (*answer)[0].size() != sizeof s)
    throw error(errc::protocol_error, "binary_star::witness::stats: bad answer");
  std::memcpy(&s, (*answer)[0].data(), sizeof s);
  return s;
}

}  // namespace fabric::binary_star
