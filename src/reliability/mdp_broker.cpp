// fabric::mdp::broker: the driver that runs a broker_machine on its own thread (a fabric::actor)
// behind one ROUTER socket. It reads the socket in batches, stamps each batch with one clock
// reading, and calls the machine's tick when it is due; everything else is the machine's.
#include <fabric/majordomo.hpp>

#include "reliability/mdp_broker.hpp"

#include <fabric/actor.hpp>
#include <fabric/error.hpp>
#include <fabric/router_dealer.hpp>

#include <zmq.h>

#include <cerrno>
#include <mutex>
#include <utility>

namespace fabric::mdp {
namespace {

using clock = std::chrono::steady_clock;

constexpr std::string_view stats_command = "$STATS";
// Messages handled per wake-up before the pipe and the timers get a look.
constexpr int batch_limit = 512;

class router_sink final : public broker_sink {
 public:
  router_sink(router& socket, const log_fn& fn) : socket_(socket), log_(fn) {}
  result<void> send(message&& m) override { return socket_.try_send(std::move(m)); }
  void log(log_level level, std::string_view line) override {
    if (log_) log_(level, line);
  }
  std::uint64_t dropped() const noexcept override { return socket_.dropped(); }

 private:
  router& socket_;
  const log_fn& log_;
};

// What the owner and the broker thread share: the snapshot stats() copies out.
struct shared_state {
  std::mutex mu;
  broker_stats snapshot;
};

void serve(context& ctx, const broker_options& options, std::vector<std::string>& endpoints,
           const std::shared_ptr<shared_state>& state, pair_socket& pipe) {
  router socket(ctx, options.socket);
  for (const auto& ep : options.endpoints) endpoints.push_back(socket.bind(ep));
  router_sink sink(socket, options.log);
  broker_machine machine(options, sink, clock::now());
  actor::signal_ready(pipe);

  zmq_pollitem_t items[2] = {{socket.native(), 0, ZMQ_POLLIN, 0}, {pipe.native(), 0, ZMQ_POLLIN, 0}};
  message in;
  message command;
  for (;;) {
    auto now = clock::now();
    if (now >= machine.next_tick()) machine.on_tick(now);
    const auto wait = std::chrono::ceil<std::chrono::milliseconds>(machine.next_tick() - now);
    const int rc = zmq_poll(items, 2, std::max<long>(0, static_cast<long>(wait.count())));
    if (rc < 0) {
      if (zmq_errno() == EINTR) continue;
      if (zmq_errno() == ETERM) return;
      throw error(std::error_code(zmq_errno(), zmq_category()), "majordomo broker: poll failed");
    }
    if ((items[1].revents & ZMQ_POLLIN) != 0) {
      if (!pipe.try_recv(command)) continue;
      if (actor::is_term(command)) return;
      // $STATS | sequence: the snapshot goes to the shared state, the sequence comes back so the
      // owner can tell this answer from a late one to a request it gave up on.
      if (command.size() == 2 && command.view(0) == stats_command) {
        broker_stats s = machine.stats();
        {
          std::lock_guard lock(state->mu);
          state->snapshot = std::move(s);
        }
        message ack;
        ack.push_back(stats_command);
        ack.push_back(std::move(command[1]));
        (void)pipe.send(std::move(ack));
      }
    }
    if ((items[0].revents & ZMQ_POLLIN) != 0) {
      now = clock::now();
      for (int i = 0; i < batch_limit; ++i) {
        auto r = socket.try_recv(in);
        if (!r) {
          if (r.is(errc::too_large)) continue;  // drained and counted by the socket
          break;
        }
        machine.on_message(std::move(in), now);
        in.clear();
      }
    }
  }
}

}  // namespace

struct broker::impl {
  std::vector<std::string> endpoints;
  std::shared_ptr<shared_state> state = std::make_shared<shared_state>();
  std::unique_ptr<actor> runner;
  std::uint64_t stats_sequence = 0;
};

broker::broker(context& ctx, broker_options options) : impl_(std::make_unique<impl>()) {
  if (options.endpoints.empty())
    throw error(errc::invalid_argument, "majordomo broker: give at least one endpoint to bind");
  // Validate the options here, on the caller's thread, so a mistake throws from the constructor.
  {
    struct null_sink final : broker_sink {
      result<void> send(message&&) override { return {}; }
    } sink;
    broker_machine check(options, sink, clock::now());
  }
  auto* endpoints = &impl_->endpoints;
  auto state = impl_->state;
  impl_->runner = std::make_unique<actor>(
      ctx, [&ctx, options = std::move(options), endpoints, state](pair_socket& pipe) {
        serve(ctx, options, *endpoints, state, pipe);
      });
}

broker::~broker() { stop(); }

const std::vector<std::string>& broker::endpoints() const noexcept { return impl_->endpoints; }

broker_stats broker::stats(std::chrono::milliseconds timeout) {
  if (!impl_->runner || !impl_->runner->running())
    throw error(errc::invalid_state, "majordomo broker: not running");
  auto& pipe = impl_->runner->pipe();
  const std::string seq = std::to_string(++impl_->stats_sequence);
  message request;
  request.push_back(stats_command);
  request.push_back(seq);
  if (!pipe.send(std::move(request), timeout))
    throw error(errc::timeout, "majordomo broker: the broker thread did not take the request");
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  message reply;
  for (;;) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 || !pipe.recv(reply, left))
      throw error(errc::timeout, "majordomo broker: the broker thread did not answer");
    if (reply.size() == 2 && reply.view(0) == stats_command) {
      if (reply.view(1) == seq) break;
      continue;  // the answer to an earlier call that timed out
    }
    throw error(errc::invalid_state, "majordomo broker: the broker thread has ended");
  }
  std::lock_guard lock(impl_->state->mu);
  return impl_->state->snapshot;
}

bool broker::stop(std::chrono::milliseconds timeout) noexcept {
  if (!impl_ || !impl_->runner) return true;
  return impl_->runner->stop(timeout);
}

bool broker::running() const noexcept { return impl_->runner && impl_->runner->running(); }

std::exception_ptr broker::failure() const noexcept {
  return impl_->runner ? impl_->runner->failure() : nullptr;
}

}  // namespace fabric::mdp
