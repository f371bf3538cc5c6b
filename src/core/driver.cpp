// The protocol driver: watched sockets and a machine's timer on a fabric::reactor, attached to a
// user's loop, run on the caller's thread, or run on an actor thread.
#include "core/driver.hpp"

#include <fabric/error.hpp>

#include <algorithm>
#include <atomic>
#include <string_view>
#include <utility>

namespace fabric::detail {
namespace {

std::atomic<std::uint64_t> driver_counter{0};

// The owner's calls over an actor's pipe: "$CALL" | sequence | request frames..., answered with
// the same two frames before the answer's. The sequence tells an answer from a late one to a call
// that timed out.
constexpr std::string_view call_command = "$CALL";

// Far enough to mean "no tick planned" without overflowing a time_point addition.
constexpr auto longest_delay = std::chrono::hours(24 * 365);

}  // namespace

driver::driver(context& ctx, std::string name)
    : ctx_(ctx),
      name_(std::move(name)),
      control_endpoint_("inproc://fabric.driver." + std::to_string(driver_counter.fetch_add(1)) +
                        ".control"),
      // Bound here, before any thread can call stop(): a stop() made before run() or start()
      // is then waiting for the loop when it begins.
      control_(std::make_unique<any_socket>(ctx, zmq::socket_type::pull,
                                            socket_options{.linger = std::chrono::milliseconds(0)})) {
  control_->bind(control_endpoint_);
}

driver::~driver() {
  if (background_) background_->stop();
  if (attached_ != nullptr) detach(*attached_);
}

void driver::add_watch(zmq::socket_ref s, recv_fn recv, message_fn on_message, int batch,
                       std::function<void()> on_oversize) {
  if (attached_ != nullptr || background_ || in_run_)
    throw error(errc::invalid_state, name_ + ": cannot watch a socket while running");
  watched_.push_back(std::make_unique<watched>(
      watched{s, std::move(recv), std::move(on_message), std::max(1, batch), std::move(on_oversize)}));
}

void driver::watch_fd(int fd, std::function<void(time_point)> on_ready) {
  if (attached_ != nullptr || background_ || in_run_)
    throw error(errc::invalid_state, name_ + ": cannot watch a descriptor while running");
  watched_fds_.emplace_back(fd, std::move(on_ready));
}

void driver::ticks(std::function<void(time_point)> on_tick, std::function<time_point()> next_tick) {
  on_tick_ = std::move(on_tick);
  next_tick_ = std::move(next_tick);
}

void driver::after_work(std::function<void()> fn) { after_work_ = std::move(fn); }

void driver::commands(std::function<message(message&&)> fn) { commands_ = std::move(fn); }

void driver::on_readable(watched& w, reactor& r) {
  const time_point now = r.now();
  message m;
  for (int i = 0; i < w.batch; ++i) {
    auto got = w.recv(m);
    if (!got) {
      if (got.is(errc::too_large)) {  // drained and counted by the socket
        if (w.on_oversize) w.on_oversize();
        continue;
      }
      break;  // would_block; a closed context surfaces from the reactor's poll
    }
    w.on_message(std::move(m), now);
    m.clear();
  }
  if (after_work_) after_work_();
  rearm(r);
}

void driver::on_timer(reactor& r) {
  timer_.reset();
  armed_for_ = time_point::max();
  if (on_tick_) on_tick_(r.now());
  if (after_work_) after_work_();
  rearm(r);
}

void driver::rearm(reactor& r) {
  if (!next_tick_) return;
  const time_point due = next_tick_();
  if (timer_ && due == armed_for_) return;
  if (timer_) r.cancel(*timer_);
  timer_.reset();
  armed_for_ = due;
  const auto now = r.now();
  const auto delay = due <= now ? machine_clock::duration::zero()
                                : std::min<machine_clock::duration>(due - now, longest_delay);
  timer_ = r.after(delay, [this, &r] { on_timer(r); });
}

void driver::register_on(reactor& r) {
  for (auto& w : watched_) {
    watched* p = w.get();
    r.add(p->s, [this, p, &r] { on_readable(*p, r); });
  }
  for (auto& [fd, on_ready] : watched_fds_) {
    auto* fn = &on_ready;
    r.add_fd(fd, [this, fn, &r] {
      (*fn)(r.now());
      if (after_work_) after_work_();
      rearm(r);
    });
  }
  armed_for_ = time_point::max();
  rearm(r);
}

void driver::unregister_from(reactor& r) noexcept {
  for (auto& w : watched_) r.remove(w->s);
  for (auto& entry : watched_fds_) r.remove_fd(entry.first);
  if (timer_) r.cancel(*timer_);
  timer_.reset();
  armed_for_ = time_point::max();
}

void driver::reap() noexcept {
  if (background_ && !background_->running()) {
    background_->stop();
    background_.reset();
  }
}

void driver::attach(reactor& r) {
  reap();
  if (attached_ != nullptr || background_ || in_run_)
    throw error(errc::invalid_state, name_ + ": already attached or running");
  register_on(r);
  attached_ = &r;
}

bool driver::detach(reactor& r) noexcept {
  if (attached_ != &r) return false;
  unregister_from(r);
  attached_ = nullptr;
  return true;
}

result<void> driver::loop(reactor& r, pair_socket* pipe) {
  register_on(r);
  struct cleanup {
    driver* self;
    reactor& r;
    pair_socket* pipe;
    ~cleanup() {
      if (pipe != nullptr) r.remove(*pipe);
      r.remove(*self->control_);
      self->unregister_from(r);
    }
  } guard{this, r, pipe};
  // Watched in both modes, so that stop() can end a started driver from any thread without
  // joining it there.
  r.add(*control_, [this, &r] {
    message m;
    while (control_->try_recv(m)) m.clear();
    r.stop();
  });
  if (pipe != nullptr) {
    r.add(*pipe, [this, pipe, &r] {
      message m;
      while (pipe->try_recv(m)) {
        if (actor::is_term(m)) {
          r.stop();
          return;
        }
        if (m.size() >= 2 && m.view(0) == call_command) {
          message answer;
          answer.push_back(m.pop_front());
          answer.push_back(m.pop_front());
          message body = commands_ ? commands_(std::move(m)) : message{};
          for (auto& f : body) answer.push_back(std::move(f));
          (void)pipe->send(std::move(answer));
        }
        m.clear();
      }
    });
    actor::signal_ready(*pipe);
  }
  return r.run();
}

result<void> driver::run() {
  reap();
  if (attached_ != nullptr || background_ || in_run_)
    throw error(errc::invalid_state, name_ + ": already attached or running");
  in_run_ = true;
  struct reset {
    std::atomic<bool>& flag;
    ~reset() { flag = false; }
  } guard{in_run_};
  reactor r;
  return loop(r, nullptr);
}

void driver::start() {
  reap();
  if (attached_ != nullptr || background_ || in_run_)
    throw error(errc::invalid_state, name_ + ": already attached or running");
  background_ = std::make_unique<actor>(ctx_, [this](pair_socket& pipe) {
    reactor r;
    (void)loop(r, &pipe);
  });
}

void driver::request_stop() noexcept {
  try {
    any_socket p(ctx_, zmq::socket_type::push, socket_options{.linger = std::chrono::milliseconds(1000)});
    p.connect(control_endpoint_);
    (void)p.try_send(make_frame("STOP"));
  } catch (...) {
    // The context is shutting down: the loop returns errc::closed on its own.
  }
}

bool driver::stop(std::chrono::milliseconds timeout) noexcept {
  if (background_) return background_->stop(timeout);
  request_stop();
  return true;
}

bool driver::running() const noexcept { return background_ && background_->running(); }

std::exception_ptr driver::failure() const noexcept {
  return background_ ? background_->failure() : nullptr;
}

result<message> driver::call(message&& request, std::chrono::milliseconds timeout) {
  if (!commands_) return errc::not_supported;
  if (!background_) {
    if (in_run_) return errc::invalid_state;
    return commands_(std::move(request));
  }
  if (!background_->running()) return errc::invalid_state;
  auto& pipe = background_->pipe();
  const std::string seq = std::to_string(++call_sequence_);
  request.push_front(make_frame(seq));
  request.push_front(make_frame(call_command));
  if (!pipe.send(std::move(request), timeout)) return errc::timeout;
  const auto deadline = machine_clock::now() + timeout;
  message reply;
  for (;;) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - machine_clock::now());
    if (left.count() <= 0) return errc::timeout;
    if (!pipe.recv(reply, left)) return errc::timeout;
    if (reply.size() >= 2 && reply.view(0) == call_command) {
      if (reply.view(1) != seq) continue;  // the answer to an earlier call that timed out
      (void)reply.pop_front();
      (void)reply.pop_front();
      return reply;
    }
    return errc::invalid_state;  // actor::done_signal: the thread has ended
  }
}

}  // namespace fabric::detail
