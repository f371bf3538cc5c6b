// fabric::actor: a thread reached over an inproc PAIR pipe, started with a ready handshake and
// stopped with a term command and a bounded wait.
#include <fabric/actor.hpp>
#include <fabric/error.hpp>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>

namespace fabric {
namespace {

constexpr std::string_view ready_signal = "$READY";
std::atomic<std::uint64_t> actor_counter{0};

// The owner's end drops what is unread when it closes. The body's end lingers so its last word
// (DONE, after a failure) reaches an owner that is still waiting for READY.
socket_options pipe_options(std::chrono::milliseconds linger) {
  socket_options o;
  o.send_hwm = 0;  // commands between owner and body are never dropped or refused
  o.recv_hwm = 0;
  o.linger = linger;
  return o;
}

}  // namespace

struct actor::shared {
  std::thread thread;
  std::mutex mutex;
  std::condition_variable cv;
  bool finished = false;
  std::exception_ptr failure;
};

actor::actor(context& ctx, body_fn body, std::chrono::milliseconds start_timeout)
    : shared_(std::make_shared<shared>()) {
  if (!body) throw error(errc::invalid_argument, "actor: a body is required");
  const std::string endpoint = "inproc://fabric.actor." + std::to_string(actor_counter.fetch_add(1));
  pipe_ = std::make_unique<pair_socket>(ctx, pipe_options(std::chrono::milliseconds(0)));
  pipe_->bind(endpoint);
  auto child = std::make_unique<pair_socket>(ctx, pipe_options(std::chrono::milliseconds(1000)));
  child->connect(endpoint);

  // The child socket moves to the new thread; std::thread's constructor is the memory barrier
  // libzmq requires for that.
  shared_->thread = std::thread([state = shared_, child = std::move(child), body = std::move(body)]() mutable {
    try {
      body(*child);
    } catch (...) {
      state->failure = std::current_exception();
    }
    (void)child->try_send(make_frame(actor::done_signal));
    child->close();
    {
      std::lock_guard lock(state->mutex);
      state->finished = true;
    }
    state->cv.notify_all();
  });

  // Wait for READY (or DONE, if the body ended or threw first).
  message m;
  auto r = pipe_->recv(m, start_timeout);
  if (r && m.size() == 1 && m.view(0) == ready_signal) return;
  const bool timed_out = !r;
  stop(std::chrono::milliseconds(1000));
  if (shared_->failure) std::rethrow_exception(shared_->failure);
  if (timed_out)
    throw error(errc::timeout, "actor: the body did not call actor::signal_ready in time");
  throw error(errc::invalid_state, "actor: the body returned before calling actor::signal_ready");
}

actor::~actor() { stop(); }

bool actor::stop(std::chrono::milliseconds timeout) noexcept {
  if (stopped_) return true;
  stopped_ = true;
  (void)pipe_->try_send(make_frame(term_command));
  bool finished;
  {
    std::unique_lock lock(shared_->mutex);
    finished = shared_->cv.wait_for(lock, timeout, [&] { return shared_->finished; });
  }
  if (finished) {
    shared_->thread.join();
  } else {
    std::fprintf(stderr,
                 "fabric: an actor did not stop within %lld ms of its term command; its thread "
                 "was detached (the body must return when it receives actor::term_command)\n",
                 static_cast<long long>(timeout.count()));
    shared_->thread.detach();
  }
  pipe_->close();
  return finished;
}

bool actor::running() const noexcept {
  std::lock_guard lock(shared_->mutex);
  return !shared_->finished;
}

std::exception_ptr actor::failure() const noexcept {
  std::lock_guard lock(shared_->mutex);
  return shared_->failure;
}

void actor::signal_ready(pair_socket& pipe) {
  if (auto r = pipe.send(make_frame(ready_signal)); !r)
    throw error(r.error(), "actor: cannot signal ready to the owner");
}

bool actor::is_term(const message& m) noexcept {
  return m.size() == 1 && m.view(0) == term_command;
}

}  // namespace fabric
