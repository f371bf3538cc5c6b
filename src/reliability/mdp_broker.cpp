// fabric::mdp::broker: the driver that runs a broker_machine on its own thread (a fabric::actor)
// behind one ROUTER socket. It reads the socket in batches, stamps each batch with one clock
// reading, and calls the machine's tick when it is due; everything else is the machine's.
#include <fabric/majordomo.hpp>

#include "reliability/mdp.hpp"
#include "reliability/mdp_broker.hpp"

#include <fabric/actor.hpp>
#include <fabric/error.hpp>
#include <fabric/router_dealer.hpp>

#include <zmq.h>

#include <atomic>
#include <cerrno>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>

namespace fabric::mdp {
namespace {

using clock = std::chrono::steady_clock;

constexpr std::string_view stats_command = "$STATS";
// Messages handled per wake-up before the pipe and the timers get a look.
constexpr int batch_limit = 512;

// The bytes of replies that libzmq still holds, per client and in total. libzmq releases a
// reply's header frame on one of its I/O threads (or the reader's, over inproc) once the
// transport has taken the frame off the client's pipe, so the counts are atomics, and an
// account lives as long as any reply that names it (shared ownership through the frames).
struct outbound_total {
  std::atomic<std::size_t> bytes{0};
};

struct outbound_account {
  explicit outbound_account(std::shared_ptr<outbound_total> t) : total(std::move(t)) {}
  std::shared_ptr<outbound_total> total;
  std::atomic<std::size_t> bytes{0};
};

// Rides with one reply as the data of its "MDPC01" frame; libzmq hands it back to
// release_reply() when it closes that frame.
struct reply_tag {
  std::shared_ptr<outbound_account> account;
  std::size_t bytes = 0;
  char header[6] = {'M', 'D', 'P', 'C', '0', '1'};
};
static_assert(sizeof(reply_tag::header) == client_header.size());

void release_reply(void* /*data*/, void* hint) noexcept {
  auto* tag = static_cast<reply_tag*>(hint);
  tag->account->bytes.fetch_sub(tag->bytes, std::memory_order_relaxed);
  tag->account->total->bytes.fetch_sub(tag->bytes, std::memory_order_relaxed);
  delete tag;
}

class router_sink final : public broker_sink {
 public:
  router_sink(router& socket, const log_fn& fn) : socket_(socket), log_(fn) {}
  result<void> send(message&& m) override { return socket_.try_send(std::move(m)); }

  // The reply's "MDPC01" frame is swapped for one whose release libzmq reports, so its bytes
  // count until the transport has taken it off the client's pipe: replies to a client that
  // does not read pile up in outbound_bytes(), where the machine's budgets see them. What is
  // not counted is at most the one reply the transport is writing out to each connection.
  result<void> send_reply(message&& m) override {
    std::size_t at = 1;
    while (at < m.size() && m[at].size() != 0) ++at;
    ++at;
    if (at >= m.size() || m.view(at) != client_header) return socket_.try_send(std::move(m));
    auto& account = accounts_[std::string(m.view(0))];
    if (!account) account = std::make_shared<outbound_account>(total_);
    auto tag = std::make_unique<reply_tag>();
    tag->account = account;
    tag->bytes = m.byte_size();
    frame header(tag->header, sizeof tag->header, &release_reply, tag.get());
    const std::size_t bytes = tag->bytes;
    (void)tag.release();  // the frame owns it now
    account->bytes.fetch_add(bytes, std::memory_order_relaxed);
    total_->bytes.fetch_add(bytes, std::memory_order_relaxed);
    m[at] = std::move(header);
    // On failure `m` comes back and is dropped by the machine, which releases the bytes.
    return socket_.try_send(std::move(m));
  }

  std::size_t outbound_bytes(std::string_view peer) const noexcept override {
    const auto it = accounts_.find(peer);
    return it == accounts_.end() ? 0 : it->second->bytes.load(std::memory_order_relaxed);
  }
  std::size_t outbound_bytes() const noexcept override {
    return total_->bytes.load(std::memory_order_relaxed);
  }

  // Forgets the accounts of clients with nothing waiting (run once per tick).
  void sweep() {
    std::erase_if(accounts_, [](const auto& kv) {
      return kv.second->bytes.load(std::memory_order_relaxed) == 0;
    });
  }

  void log(log_level level, std::string_view line) override {
    if (log_) log_(level, line);
  }
  std::uint64_t dropped() const noexcept override { return socket_.dropped(); }

 private:
  struct string_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };

  router& socket_;
  const log_fn& log_;
  std::shared_ptr<outbound_total> total_ = std::make_shared<outbound_total>();
  std::unordered_map<std::string, std::shared_ptr<outbound_account>, string_hash, std::equal_to<>>
      accounts_;
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
    if (now >= machine.next_tick()) {
      machine.on_tick(now);
      sink.sweep();
    }
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
