// fabric::mdp::broker: a broker_machine behind one ROUTER socket, run by the protocol driver
// (core/driver.hpp) on its own thread, on the caller's, or on a user's reactor. The driver reads
// the socket in batches, stamps each batch with one clock reading, and ticks the machine when it
// is due; the sink below counts replies until the transport has taken them; everything else is
// the machine's.
#include <fabric/majordomo.hpp>

#include "core/driver.hpp"
#include "reliability/mdp.hpp"
#include "reliability/mdp_broker.hpp"

#include <fabric/actor.hpp>
#include <fabric/binary_star.hpp>
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
  router_sink(router& socket, const log_fn& fn, binary_star::node* pair) : socket_(socket), log_(fn), pair_(pair) {}
  using broker_sink::send;
  result<void> send(detail::port, message&& m) override { return socket_.try_send(std::move(m)); }

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

  // On the broker's thread, which is the node's: both are attached to one reactor.
  bool admit_request(detail::time_point) override { return pair_ == nullptr || pair_->admit(); }
  bool serving(detail::time_point) const override {
    return pair_ == nullptr || pair_->current() == binary_star::state::active;
  }

 private:
  struct string_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };

  router& socket_;
  const log_fn& log_;
  binary_star::node* pair_;
  std::shared_ptr<outbound_total> total_ = std::make_shared<outbound_total>();
  std::unordered_map<std::string, std::shared_ptr<outbound_account>, string_hash, std::equal_to<>>
      accounts_;
};

}  // namespace

struct broker::impl {
  impl(context& ctx, broker_options o)
      : options(std::move(o)),
        socket(ctx, checked(options).socket),
        sink(socket, options.log, options.pair),
        machine(options, sink, clock::now()),
        driver(ctx, "majordomo broker") {
    for (const auto& ep : options.endpoints) endpoints.push_back(socket.bind(ep));
    driver.watch(socket, [this](message&& m, detail::time_point now) { machine.on_message(std::move(m), now); },
                 batch_limit);
    driver.ticks(
        [this](detail::time_point now) {
          machine.on_tick(now);
          sink.sweep();
        },
        [this] { return machine.next_tick(); });
    // A stats snapshot, copied out on the machine's thread; the caller reads it after the call.
    driver.commands([this](message&&) {
      broker_stats s = machine.stats();
      std::lock_guard lock(snapshot_mu);
      snapshot = std::move(s);
      return message{};
    });
  }

  static const broker_options& checked(const broker_options& o) {
    if (o.endpoints.empty())
      throw error(errc::invalid_argument, "majordomo broker: give at least one endpoint to bind");
    return o;
  }

  broker_options options;
  router socket;
  router_sink sink;
  broker_machine machine;
  std::vector<std::string> endpoints;
  std::mutex snapshot_mu;
  broker_stats snapshot;
  detail::driver driver;  // last: stopped before what it drives is destroyed
};

broker::broker(context& ctx, broker_options options, deferred_start_t)
    : impl_(std::make_unique<impl>(ctx, std::move(options))) {}

broker::broker(context& ctx, broker_options options)
    : broker(ctx, std::move(options), deferred_start) {
  start();
}

broker::~broker() = default;

const std::vector<std::string>& broker::endpoints() const noexcept { return impl_->endpoints; }

namespace {

// A broker in a pair asks its node on every request: both must run on one thread.
void require_no_pair(const broker_options& o, const char* what) {
  if (o.pair != nullptr)
    throw error(errc::invalid_state, std::string("majordomo broker: ") + what +
                                         ": a broker in a Binary Star pair runs on its node's reactor: "
                                         "construct it with deferred_start and attach() both");
}

}  // namespace

void broker::start() {
  require_no_pair(impl_->options, "start");
  impl_->driver.start();
}

result<void> broker::run() {
  require_no_pair(impl_->options, "run");
  return impl_->driver.run();
}

void broker::attach(reactor& r) { impl_->driver.attach(r); }

bool broker::detach(reactor& r) noexcept { return impl_->driver.detach(r); }

broker_stats broker::stats(std::chrono::milliseconds timeout) {
  auto answer = impl_->driver.call(message{}, timeout);
  if (!answer) {
    if (answer.is(errc::timeout))
      throw error(errc::timeout, "majordomo broker: the broker thread did not answer");
    throw error(errc::invalid_state, "majordomo broker: not running");
  }
  std::lock_guard lock(impl_->snapshot_mu);
  return impl_->snapshot;
}

bool broker::stop(std::chrono::milliseconds timeout) noexcept {
  if (!impl_) return true;
  return impl_->driver.stop(timeout);
}

bool broker::running() const noexcept { return impl_->driver.running(); }

std::exception_ptr broker::failure() const noexcept { return impl_->driver.failure(); }

}  // namespace fabric::mdp
