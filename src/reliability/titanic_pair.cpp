// fabric::titanic::pair: the service while the node is active, the replica while it is passive
// (docs/ha.md, section 9). The switch runs on the pair's own thread: stopping a service waits for
// its last commits, and starting one reads the journal, neither of which the Binary Star node's
// thread may wait for.
#include <fabric/titanic.hpp>

#include <fabric/error.hpp>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace fabric::titanic {

namespace {
// How long a service or replica that fails to start is tried again before the pair gives up.
constexpr std::chrono::seconds start_bound{5};
}  // namespace

struct pair::impl {
  impl(context& c, journal& jr, pair_options o) : ctx(c), j(jr), options(std::move(o)) {
    if (options.service.replication.bind.empty())
      throw error(errc::invalid_argument, "titanic pair: give service.replication.bind");
    if (options.replica.peer.empty()) throw error(errc::invalid_argument, "titanic pair: give replica.peer");
    worker = std::thread([this] { run(); });
  }

  ~impl() {
    {
      std::lock_guard lock(mu);
      ending = true;
    }
    cv.notify_all();
    worker.join();
  }

  impl(const impl&) = delete;
  impl& operator=(const impl&) = delete;

  enum class want : std::uint8_t { neither, serve, follow };

  void run() {
    std::unique_lock lock(mu);
    for (;;) {
      cv.wait(lock, [this] { return ending || wanted != running_as || (term != running_term && wanted == want::serve); });
      if (ending) break;
      const want next = wanted;
      const std::uint64_t t = term;
      lock.unlock();
      switch_to(next, t);
      lock.lock();
    }
    lock.unlock();
    switch_to(want::neither, 0);
  }

  // Stops what runs, then starts what is wanted. A failure to start is kept for failure() and
  // leaves nothing running (the node then serves no Titanic requests).
  void switch_to(want next, std::uint64_t t) {
    std::unique_ptr<titanic::service> old_service;
    std::unique_ptr<titanic::replica> old_replica;
    {
      std::lock_guard lock(mu);
      old_service = std::move(svc);
      old_replica = std::move(rep);
      // A node on its way to following is not ready until its replica says so (no replica, not
      // ready), also while the service it ran until now stops.
      following.store(next == want::follow);
    }
    old_service.reset();  // waits for its last commits
    old_replica.reset();
    std::unique_ptr<titanic::service> s;
    std::unique_ptr<titanic::replica> r;
    // The replication endpoint the service binds may still be held a moment by the socket a
    // service just closed (libzmq releases it on its I/O thread): tried again, bounded.
    const auto deadline = std::chrono::steady_clock::now() + start_bound;
    for (;;) {
      try {
        if (next == want::serve) {
          service_options so = options.service;
          // Unique to this node in this term: both nodes may be active in one term during a
          // split brain (section 7), and their entries must never be taken for each other's.
          so.replication.term = t * 2 + (options.role == binary_star::role::backup ? 1 : 0);
          s = std::make_unique<titanic::service>(ctx, j, so);
        } else if (next == want::follow) {
          r = std::make_unique<titanic::replica>(ctx, j, options.replica);
        }
        break;
      } catch (const error& e) {
        if (e.code() == make_error_code(errc::invalid_argument) || std::chrono::steady_clock::now() > deadline) {
          std::lock_guard lock(mu);
          failed = std::current_exception();
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));  // before trying again, bounded
      } catch (...) {
        std::lock_guard lock(mu);
        failed = std::current_exception();
        break;
      }
    }
    std::lock_guard lock(mu);
    svc = std::move(s);
    rep = std::move(r);
    following.store(rep != nullptr);
    running_as = next;
    running_term = t;
  }

  context& ctx;
  journal& j;
  pair_options options;
  mutable std::mutex mu;
  std::condition_variable cv;
  want wanted = want::neither;
  want running_as = want::neither;
  std::uint64_t term = 0;
  std::uint64_t running_term = 0;
  bool ending = false;
  std::atomic<bool> following{false};
  std::unique_ptr<titanic::service> svc;
  std::unique_ptr<titanic::replica> rep;
  std::exception_ptr failed;
  std::thread worker;  // last: started once the rest is built
};

pair::pair(context& ctx, journal& j, pair_options options) : impl_(std::make_unique<impl>(ctx, j, std::move(options))) {}

pair::~pair() = default;

void pair::on_state_change(binary_star::state to, std::uint64_t term) {
  {
    std::lock_guard lock(impl_->mu);
    switch (to) {
      case binary_star::state::active: impl_->wanted = impl::want::serve; break;
      case binary_star::state::passive: impl_->wanted = impl::want::follow; break;
      default: impl_->wanted = impl::want::neither; break;
    }
    impl_->term = term;
    // A node about to follow is not ready until its replica says so.
    if (impl_->wanted == impl::want::follow) impl_->following.store(true);
  }
  impl_->cv.notify_all();
}

bool pair::ready() const noexcept {
  if (!impl_->following.load()) return true;
  std::lock_guard lock(impl_->mu);
  return impl_->rep && impl_->rep->caught_up();
}

bool pair::serving() const noexcept {
  std::lock_guard lock(impl_->mu);
  return impl_->svc != nullptr;
}

std::optional<titanic::service_stats> pair::active_stats(std::chrono::milliseconds timeout) {
  std::lock_guard lock(impl_->mu);
  if (!impl_->svc) return std::nullopt;
  return impl_->svc->stats(timeout);
}

std::optional<titanic::replica_stats> pair::passive_stats(std::chrono::milliseconds timeout) {
  std::lock_guard lock(impl_->mu);
  if (!impl_->rep) return std::nullopt;
  return impl_->rep->stats(timeout);
}

std::exception_ptr pair::failure() const noexcept {
  std::lock_guard lock(impl_->mu);
  return impl_->failed;
}

}  // namespace fabric::titanic
