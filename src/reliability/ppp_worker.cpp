// ppp::worker: a background actor owns the DEALER to the queue and the liveness machine
// (core/liveness.hpp, with 6/PPP's fixed heartbeat cadence), so heartbeats keep flowing while the
// application works on a request; requests and replies cross the actor's inproc pipe.
//
// The actor runs its own reactor rather than core/driver.hpp: the driver watches a fixed set of
// sockets, and this one replaces its DEALER at every reconnect.
//
// Pipe messages (owner <-> actor), after actor's own $TERM / $DONE:
//   actor -> owner:  "Q" | request frames as received (address stack, delimiter, content)
//   owner -> actor:  "R" | reply frames to send (address stack, delimiter, content)
// The tag frame keeps a one-frame request or reply from ever looking like $TERM or $DONE.
#include "reliability/ppp.hpp"

#include <fabric/actor.hpp>
#include <fabric/error.hpp>
#include <fabric/paranoid_pirate.hpp>
#include <fabric/reactor.hpp>
#include <fabric/router_dealer.hpp>

#include <algorithm>
#include <atomic>
#include <deque>
#include <iterator>
#include <optional>
#include <utility>

namespace fabric::ppp {

namespace {

constexpr std::string_view request_tag = "Q";
constexpr std::string_view reply_tag = "R";
constexpr int batch = 64;
// Replies made while the queue is being reconnected wait for the new connection, up to this many.
constexpr std::size_t max_held_replies = 64;
// The actor's pipe takes messages of at most socket_options::max_frames frames, one of which is
// the tag.
constexpr std::size_t max_pipe_frames = socket_options{}.max_frames;

}  // namespace

// Counters shared by the actor (the only writer) and the owner (any thread reads).
struct worker_counters {
  counter requests, replies, replies_dropped, heartbeats_sent, heartbeats_received, malformed,
      disconnects, reconnects;
  std::atomic<bool> connected{false};
  std::atomic<std::int64_t> next_backoff_ms{0};
};

namespace {

std::int64_t to_ms(detail::liveness::duration d) noexcept {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

message make_heartbeat() { return heartbeat_message(); }

// Everything that lives on the actor's thread. It is the liveness machine's sink: heartbeats go
// out of the DEALER, close drops it, open makes a fresh one and sends READY.
class worker_loop final : public detail::machine_sink {
 public:
  worker_loop(context& ctx, const worker_options& o, worker_counters& stats, pair_socket& pipe)
      : ctx_(ctx),
        options_(o),
        stats_(stats),
        pipe_(pipe),
        machine_(liveness_settings(o), *this, make_heartbeat, "ppp::worker") {
    connect();
    machine_.opened(r_.now());
    stats_.next_backoff_ms.store(to_ms(machine_.backoff()), std::memory_order_relaxed);
    r_.add(pipe_, [this] { on_pipe(); });
    arm();
  }

  void run() { (void)r_.run(); }

  // --- detail::machine_sink, called by the liveness machine ---

  result<void> send(port, message&& m) override {
    if (!socket_) return errc::closed;
    auto sent = socket_->try_send(std::move(m));
    if (sent) stats_.heartbeats_sent.add();  // the machine sends nothing else
    return sent;
  }

  void close(port) noexcept override {
    close_now();
    stats_.disconnects.add();
  }

  result<void> open(port) override {
    try {
      connect();
    } catch (const error& e) {
      return e.code();
    }
    stats_.reconnects.add();
    return {};
  }

 private:
  void connect() {
    auto s = std::make_unique<dealer>(ctx_, options_.socket);
    s->connect(options_.endpoint);
    // Queued until the connection is up; a conversation starts with READY.
    (void)s->try_send(ready_message());
    r_.add(*s, [this] { on_socket(); });
    socket_ = std::move(s);
    stats_.connected.store(true, std::memory_order_relaxed);
  }

  void close_now() noexcept {
    if (!socket_) return;
    r_.remove(*socket_);
    // Whatever is still queued belongs to a dead conversation.
    try {
      socket_->handle().set(zmq::sockopt::linger, 0);
    } catch (...) {
    }
    socket_.reset();
    stats_.connected.store(false, std::memory_order_relaxed);
  }

  void on_socket() {
    for (int i = 0; i < batch && socket_; ++i) {
      message m;
      auto got = socket_->try_recv(m);
      if (!got) {
        if (got.is(errc::too_large)) {
          stats_.malformed.add();
          continue;
        }
        break;
      }
      handle(std::move(m));
    }
    stats_.next_backoff_ms.store(to_ms(machine_.backoff()), std::memory_order_relaxed);
    arm();
  }

  void handle(message&& m) {
    if (m.size() == 1) {
      if (is_command(m, heartbeat_command)) {
        machine_.on_message(r_.now());
        stats_.heartbeats_received.add();
        return;
      }
      // READY travels only towards the queue, and a lone delimiter has no content.
      if (is_command(m, ready_command) || m[0].size() == 0) {
        stats_.malformed.add();
        return;
      }
    } else if (auto d = find_delimiter(m); d && *d + 1 >= m.size()) {
      stats_.malformed.add();  // an address stack with no content after it
      return;
    }
    machine_.on_message(r_.now());
    if (m.size() >= max_pipe_frames) {
      stats_.malformed.add();  // too many frames to hand to the application
      return;
    }
    m.push_front(make_frame(request_tag));
    // Counted first, so an application that has the request sees it counted. The pipe has no
    // limit: only a closing context refuses it, and then nobody is left to read it anyway.
    stats_.requests.add();
    (void)pipe_.try_send(std::move(m));
  }

  void on_pipe() {
    for (int i = 0; i < batch; ++i) {
      message m;
      if (!pipe_.try_recv(m)) return;
      if (actor::is_term(m)) {
        r_.stop();
        return;
      }
      if (m.size() < 2 || m.view(0) != reply_tag) continue;
      (void)m.pop_front();
      send_reply(std::move(m));
    }
  }

  // In order: a reply made while older ones wait for a connection waits behind them.
  void send_reply(message&& m) {
    if (held_.size() >= max_held_replies) {
      stats_.replies_dropped.add();
      return;
    }
    held_.push_back(std::move(m));
    flush_held();
  }

  void flush_held() {
    while (socket_ && !held_.empty()) {
      if (!socket_->try_send(std::move(held_.front()))) return;
      held_.pop_front();
      stats_.replies.add();
    }
  }

  void on_timer() {
    timer_.reset();
    machine_.on_tick(r_.now());
    flush_held();
    stats_.next_backoff_ms.store(to_ms(machine_.backoff()), std::memory_order_relaxed);
    arm();
  }

  // Keeps one timer armed for the machine's next deadline, moving it only when that changes.
  void arm() {
    const auto deadline = machine_.next_tick();
    if (timer_ && armed_ == deadline) return;
    if (timer_) r_.cancel(*timer_);
    armed_ = deadline;
    timer_ = r_.after(deadline - r_.now(), [this] { on_timer(); });
  }

  context& ctx_;
  const worker_options& options_;
  worker_counters& stats_;
  pair_socket& pipe_;
  reactor r_;
  detail::liveness machine_;
  std::unique_ptr<dealer> socket_;
  std::deque<message> held_;
  std::optional<timer_id> timer_;
  time_point armed_{};
};

}  // namespace

struct worker::impl {
  std::shared_ptr<worker_counters> stats = std::make_shared<worker_counters>();
  std::unique_ptr<actor> body;
  bool closed = false;
};

worker::worker(context& ctx, worker_options options) : impl_(std::make_unique<impl>()) {
  if (options.endpoint.empty()) throw error(errc::invalid_argument, "ppp::worker: the endpoint is empty");
  {
    // Throws for bad timing here, on the caller's thread.
    struct : detail::machine_sink {
      result<void> send(port, message&&) override { return errc::closed; }
    } none;
    (void)detail::liveness(liveness_settings(options), none, make_heartbeat, "ppp::worker");
  }
  impl_->body = std::make_unique<actor>(
      ctx, [&ctx, o = std::move(options), stats = impl_->stats](pair_socket& pipe) {
        worker_loop loop(ctx, o, *stats, pipe);
        actor::signal_ready(pipe);
        loop.run();
      });
}

worker::~worker() { stop(); }

void worker::stop() noexcept {
  if (impl_->body) impl_->body->stop();
  impl_->closed = true;
}

result<request> worker::recv(std::chrono::milliseconds timeout) {
  if (impl_->closed) return errc::closed;
  message m;
  for (;;) {
    auto got = impl_->body->pipe().recv(m, timeout);
    if (!got) return got.is(errc::would_block) ? errc::timeout : got.error();
    if (m.size() == 1 && m.view(0) == actor::done_signal) {
      impl_->closed = true;
      return errc::closed;
    }
    if (m.size() >= 2 && m.view(0) == request_tag) break;
  }
  (void)m.pop_front();
  request out;
  auto& frames = m.frames();
  const auto d = find_delimiter(m);
  const auto split = frames.begin() + static_cast<std::ptrdiff_t>(d ? *d + 1 : 0);
  out.envelope = message(message::container(std::make_move_iterator(frames.begin()), std::make_move_iterator(split)));
  out.body = message(message::container(std::make_move_iterator(split), std::make_move_iterator(frames.end())));
  return out;
}

result<void> worker::reply(request&& to, message&& body) {
  if (body.empty()) throw error(errc::invalid_argument, "ppp::worker::reply: a reply needs at least one frame");
  if (impl_->closed || !impl_->body->running()) return errc::closed;
  if (1 + to.envelope.size() + body.size() > max_pipe_frames) return errc::too_large;
  message out;
  out.reserve(1 + to.envelope.size() + body.size());
  out.push_back(reply_tag);
  for (frame& f : to.envelope) out.push_back(std::move(f));
  for (frame& f : body) out.push_back(std::move(f));
  const std::size_t body_at = 1 + to.envelope.size();
  if (auto sent = impl_->body->pipe().send(std::move(out)); !sent) {
    // Give the caller its frames back, as a failed send does.
    for (std::size_t i = 0; i < body.size(); ++i) body[i] = std::move(out[body_at + i]);
    for (std::size_t i = 0; i < to.envelope.size(); ++i) to.envelope[i] = std::move(out[1 + i]);
    return sent.error();
  }
  body.clear();
  to.envelope.clear();
  to.body.clear();
  return {};
}

zmq::socket_ref worker::handle() const noexcept { return impl_->body->pipe().handle(); }

worker_stats worker::stats() const noexcept {
  const worker_counters& c = *impl_->stats;
  worker_stats s;
  s.requests = c.requests.get();
  s.replies = c.replies.get();
  s.replies_dropped = c.replies_dropped.get();
  s.heartbeats_sent = c.heartbeats_sent.get();
  s.heartbeats_received = c.heartbeats_received.get();
  s.malformed = c.malformed.get();
  s.disconnects = c.disconnects.get();
  s.reconnects = c.reconnects.get();
  s.connected = c.connected.load(std::memory_order_relaxed);
  s.next_reconnect_delay = std::chrono::milliseconds(c.next_backoff_ms.load(std::memory_order_relaxed));
  return s;
}

}  // namespace fabric::ppp
