// fabric::reactor: zmq_poll over registered sockets and fds, with an ordered timer map.
#include <fabric/error.hpp>
#include <fabric/reactor.hpp>

#include <zmq.h>

#include <algorithm>
#include <cerrno>

namespace fabric {

reactor::reactor() = default;
reactor::~reactor() = default;

void reactor::add_watch(void* socket, int fd, handler fn) {
  if (!fn) throw error(errc::invalid_argument, "reactor: a handler is required");
  for (const watch& w : items_) {
    if ((socket != nullptr && w.socket == socket) || (socket == nullptr && w.socket == nullptr && w.fd == fd))
      throw error(errc::invalid_argument, "reactor: this socket or fd is already registered");
  }
  items_.push_back({socket, fd, std::make_shared<handler>(std::move(fn))});
  ++generation_;
}

void reactor::add(zmq::socket_ref s, handler on_readable) {
  if (s.handle() == nullptr) throw error(errc::invalid_argument, "reactor: socket is closed");
  add_watch(s.handle(), -1, std::move(on_readable));
}

void reactor::add_fd(int fd, handler on_readable) {
  if (fd < 0) throw error(errc::invalid_argument, "reactor: invalid file descriptor");
  add_watch(nullptr, fd, std::move(on_readable));
}

bool reactor::remove(zmq::socket_ref s) noexcept {
  auto it = std::find_if(items_.begin(), items_.end(),
                         [&](const watch& w) { return w.socket != nullptr && w.socket == s.handle(); });
  if (it == items_.end()) return false;
  items_.erase(it);
  ++generation_;
  return true;
}

bool reactor::remove_fd(int fd) noexcept {
  auto it = std::find_if(items_.begin(), items_.end(),
                         [&](const watch& w) { return w.socket == nullptr && w.fd == fd; });
  if (it == items_.end()) return false;
  items_.erase(it);
  ++generation_;
  return true;
}

timer_id reactor::schedule(clock::duration delay, clock::duration interval, handler fn) {
  if (!fn) throw error(errc::invalid_argument, "reactor: a timer handler is required");
  if (delay < clock::duration::zero()) delay = clock::duration::zero();
  const std::uint64_t id = next_timer_++;
  const auto deadline = clock::now() + delay;
  timers_.emplace(timer_key{deadline, id}, timer{deadline, interval, std::make_shared<handler>(std::move(fn))});
  timer_deadlines_.emplace(id, deadline);
  return timer_id{id};
}

timer_id reactor::after(clock::duration delay, handler fn) {
  return schedule(delay, clock::duration::zero(), std::move(fn));
}

timer_id reactor::every(clock::duration interval, handler fn) {
  if (interval <= clock::duration::zero())
    throw error(errc::invalid_argument, "reactor: a repeating timer needs a positive interval");
  return schedule(interval, interval, std::move(fn));
}

bool reactor::cancel(timer_id id) noexcept {
  const auto raw = static_cast<std::uint64_t>(id);
  auto it = timer_deadlines_.find(raw);
  if (it == timer_deadlines_.end()) return false;
  timers_.erase(timer_key{it->second, raw});
  timer_deadlines_.erase(it);
  return true;
}

std::size_t reactor::fire_due_timers(clock::time_point now) {
  std::size_t fired = 0;
  // Timers created by the handlers run here wait for the next round, so a handler that
  // schedules a zero-delay timer cannot starve the sockets.
  const std::uint64_t limit = next_timer_;
  while (!timers_.empty() && !stopped_) {
    auto it = timers_.begin();
    // A timer made during this round has a deadline >= now; only one made within the same clock
    // tick could sort first here, and it simply waits for the next round.
    if (it->first.first > now || it->first.second >= limit) break;
    const std::uint64_t id = it->first.second;
    timer t = std::move(it->second);
    timers_.erase(it);
    auto fn = t.fn;
    if (t.interval > clock::duration::zero()) {
      auto next = t.deadline + t.interval;
      if (next <= now) next = now + t.interval;  // missed more than one beat: do not burst
      t.deadline = next;
      timer_deadlines_[id] = next;
      timers_.emplace(timer_key{next, id}, std::move(t));
    } else {
      timer_deadlines_.erase(id);
    }
    (*fn)();
    ++fired;
  }
  return fired;
}

long reactor::poll_timeout_ms(clock::time_point now, std::chrono::milliseconds max_wait) const {
  long timeout = max_wait.count() < 0 ? -1 : static_cast<long>(max_wait.count());
  if (!timers_.empty()) {
    const auto until = timers_.begin()->first.first - now;
    long ms = until <= clock::duration::zero()
                  ? 0
                  : static_cast<long>(std::chrono::ceil<std::chrono::milliseconds>(until).count());
    if (timeout < 0 || ms < timeout) timeout = ms;
  }
  return timeout;
}

result<std::size_t> reactor::run_once(std::chrono::milliseconds max_wait) {
  std::size_t ran = fire_due_timers(clock::now());
  if (stopped_) return ran;

  // Rebuild the poll set only when registrations changed.
  if (poll_items_.size() != items_.size() || poll_generation_ != generation_) {
    poll_items_.clear();
    poll_items_.reserve(items_.size());
    for (const watch& w : items_) poll_items_.push_back({w.socket, w.fd, ZMQ_POLLIN, 0});
    poll_generation_ = generation_;
  }
  const long timeout = ran > 0 ? 0 : poll_timeout_ms(clock::now(), max_wait);
  const int rc = zmq_poll(poll_items_.data(), static_cast<int>(poll_items_.size()), timeout);
  if (rc < 0) {
    const int err = zmq_errno();
    if (err == EINTR) return ran;
    if (err == ETERM) return errc::closed;
    throw_zmq_error(err, "reactor: zmq_poll failed");
  }
  if (rc > 0) {
    // Copy the ready handlers first: a handler may change the registrations.
    ready_.clear();
    for (std::size_t i = 0; i < poll_items_.size(); ++i) {
      if (poll_items_[i].revents & ZMQ_POLLIN) ready_.push_back(items_[i]);
    }
    const std::uint64_t generation = generation_;
    for (const watch& w : ready_) {
      if (stopped_) break;
      if (generation_ != generation) {
        // Registrations changed during this round: skip anything removed since the poll.
        const bool still = std::any_of(items_.begin(), items_.end(), [&](const watch& x) {
          return x.fn == w.fn;
        });
        if (!still) continue;
      }
      (*w.fn)();
      ++ran;
    }
    ready_.clear();
  }
  if (!stopped_) ran += fire_due_timers(clock::now());
  return ran;
}

result<void> reactor::run() {
  stopped_ = false;
  while (!stopped_) {
    if (items_.empty() && timers_.empty()) break;
    auto r = run_once(std::chrono::milliseconds(-1));
    if (!r) return r.error();
  }
  return {};
}

}  // namespace fabric
