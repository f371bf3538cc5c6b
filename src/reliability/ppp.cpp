// The 6/PPP queue machine: the worker registry, LRU dispatch, heartbeats, purging and the bounded
// request queue; and the worker's liveness settings. No sockets, no clock.
#include "reliability/ppp.hpp"

#include <fabric/error.hpp>

#include <algorithm>
#include <cstring>
#include <utility>

namespace fabric::ppp {

namespace {

message command_message(unsigned char command) {
  message m;
  m.push_back(&command, 1);
  return m;
}

bool same_bytes(const frame& a, const frame& b) noexcept {
  return a.size() == b.size() && (a.size() == 0 || std::memcmp(a.data(), b.data(), a.size()) == 0);
}

}  // namespace

message ready_message() { return command_message(ready_command); }
message heartbeat_message() { return command_message(heartbeat_command); }

bool is_command(const message& m, unsigned char command) noexcept {
  return m.size() == 1 && m[0].size() == 1 && *static_cast<const unsigned char*>(m[0].data()) == command;
}

std::optional<std::size_t> find_delimiter(const message& m) noexcept {
  for (std::size_t i = 0; i < m.size(); ++i)
    if (m[i].size() == 0) return i;
  return std::nullopt;
}

message share(message& m) {
  message out;
  out.reserve(m.size());
  for (frame& f : m) {
    frame copy;
    copy.copy(f);
    out.push_back(std::move(copy));
  }
  return out;
}

bool same_address_stack(const message& a, const message& b) noexcept {
  const auto da = find_delimiter(a);
  const auto db = find_delimiter(b);
  if (!da || !db || *da != *db) return false;
  for (std::size_t i = 0; i < *da; ++i)
    if (!same_bytes(a[i], b[i])) return false;
  return true;
}

// ------------------------------------------------------------------------------------------------
// queue_machine

queue_machine::queue_machine(const queue_options& options, detail::machine_sink& out, time_point now)
    : heartbeat_(options.heartbeat_interval),
      expiry_(options.heartbeat_interval * static_cast<std::int64_t>(options.liveness)),
      max_queued_(options.max_queued_requests),
      overflow_(options.overflow),
      request_expiry_(options.request_expiry),
      max_workers_(options.max_workers),
      max_dispatches_(options.max_dispatches),
      out_(out),
      heartbeat_at_(now + options.heartbeat_interval) {
  if (options.heartbeat_interval <= std::chrono::milliseconds::zero())
    throw error(errc::invalid_argument, "ppp::queue: heartbeat_interval must be positive");
  if (options.liveness == 0)
    throw error(errc::invalid_argument, "ppp::queue: liveness must be at least 1");
  if (options.max_workers == 0)
    throw error(errc::invalid_argument, "ppp::queue: max_workers must be at least 1");
  if (options.request_expiry < std::chrono::milliseconds::zero())
    throw error(errc::invalid_argument, "ppp::queue: request_expiry must not be negative (0 = no expiry)");
  if (options.max_dispatches == 0)
    throw error(errc::invalid_argument, "ppp::queue: max_dispatches must be at least 1");
}

bool queue_machine::knows(std::string_view worker) const {
  return workers_.find(std::string(worker)) != workers_.end();
}

bool queue_machine::is_busy(std::string_view worker) const {
  auto it = workers_.find(std::string(worker));
  return it != workers_.end() && !it->second.idle;
}

std::vector<std::string> queue_machine::idle_order() const { return {idle_.begin(), idle_.end()}; }

void queue_machine::on_message(port from, message&& m, time_point now) {
  if (from == port::backend)
    on_worker(std::move(m), now);
  else
    on_client(std::move(m), now);
}

bool queue_machine::to_worker(const std::string& id, message& m) {
  m.push_front(make_frame(id));
  if (out_.send(port::backend, std::move(m))) return true;
  (void)m.pop_front();  // the sink left it unchanged: take the routing id off again
  return false;
}

void queue_machine::on_client(message&& m, time_point now) {
  // client identity | address stack... | "" | 1*content; the identity is never empty, so the
  // delimiter is at index 1 or later.
  const auto d = find_delimiter(m);
  if (m.size() < 3 || !d || *d == 0 || *d + 1 >= m.size()) {
    stats_.malformed_client.add();
    return;
  }
  stats_.requests_received.add();
  enqueue_back(pending{std::move(m), now, 0});
  dispatch(now);
  enforce_bound();
  update_gauges();
}

void queue_machine::on_worker(message&& m, time_point now) {
  // worker identity | command or reply; a ROUTER never hands out an empty identity, but the
  // machine does not rely on it.
  if (m.size() < 2 || m[0].size() == 0) {
    stats_.malformed_worker.add();
    return;
  }
  const std::string id(view(m[0]));
  (void)m.pop_front();
  if (m.size() == 1) {
    if (is_command(m, ready_command)) {
      on_ready(id, now);
    } else if (is_command(m, heartbeat_command)) {
      auto it = workers_.find(id);
      if (it == workers_.end()) {
        // 6/PPP: a conversation starts with READY. Ignoring the heartbeat leaves the worker
        // without ours, so it reconnects and sends READY.
        stats_.unknown_worker_messages.add();
        return;
      }
      it->second.expiry = now + expiry_;
      stats_.heartbeats_received.add();
    } else {
      // An unknown command byte, a wrong-sized command, an empty frame, or a reply without an
      // address stack (which cannot be routed to a client).
      stats_.malformed_worker.add();
    }
    return;
  }
  const auto d = find_delimiter(m);
  if (!d || *d == 0 || *d + 1 >= m.size()) {
    stats_.malformed_worker.add();
    return;
  }
  auto it = workers_.find(id);
  if (it != workers_.end()) it->second.expiry = now + expiry_;
  on_reply(id, std::move(m));
  dispatch(now);
  update_gauges();
}

void queue_machine::on_ready(const std::string& id, time_point now) {
  auto it = workers_.find(id);
  if (it == workers_.end()) {
    if (workers_.size() >= max_workers_) {
      stats_.workers_rejected.add();
      return;
    }
    it = workers_.emplace(id, worker_entry{}).first;
  } else if (it->second.in_flight) {
    // The worker started a new conversation: whatever it held is lost with the old one.
    pending held = std::move(*it->second.in_flight);
    it->second.in_flight.reset();
    requeue_front(std::move(held));
  }
  stats_.workers_registered.add();
  it->second.expiry = now + expiry_;
  make_idle(it->second, id);
  dispatch(now);
  update_gauges();
}

void queue_machine::on_reply(const std::string& id, message&& m) {
  auto it = workers_.find(id);
  if (it == workers_.end()) {
    // Purged, or registered with a queue that has since restarted. The reply may still find
    // its client, so it goes on; the worker stays unregistered until it sends READY.
    stats_.unknown_worker_messages.add();
  } else if (it->second.in_flight && same_address_stack(m, it->second.in_flight->request)) {
    it->second.in_flight.reset();
    make_idle(it->second, id);
  } else {
    // A late answer to an earlier request (e.g. one the worker got from a previous conversation):
    // it goes to its client, and the worker keeps the request it holds now.
    stats_.replies_unmatched.add();
  }
  if (out_.send(port::main, std::move(m)))
    stats_.replies_forwarded.add();
  else
    stats_.replies_unroutable.add();
}

void queue_machine::make_idle(worker_entry& w, const std::string& id) {
  if (w.idle) idle_.erase(w.idle_pos);
  w.idle_pos = idle_.insert(idle_.end(), id);
  w.idle = true;
}

void queue_machine::remove_worker(const std::string& id) {
  auto it = workers_.find(id);
  if (it == workers_.end()) return;
  if (it->second.idle) idle_.erase(it->second.idle_pos);
  std::optional<pending> held = std::move(it->second.in_flight);
  workers_.erase(it);
  if (held) requeue_front(std::move(*held));
}

void queue_machine::enqueue_back(pending&& p) { queue_.push_back(std::move(p)); }

void queue_machine::requeue_front(pending&& p) {
  if (p.deliveries >= max_dispatches_) {
    stats_.requests_poisoned.add();
    return;
  }
  stats_.requests_redelivered.add();
  queue_.push_front(std::move(p));
  enforce_bound();
}

void queue_machine::enforce_bound() {
  while (queue_.size() > max_queued_) {
    if (overflow_ == overflow_policy::drop_oldest)
      queue_.pop_front();
    else
      queue_.pop_back();
    stats_.requests_dropped_full.add();
  }
}

void queue_machine::dispatch(time_point now) {
  while (!queue_.empty() && !idle_.empty()) {
    pending& p = queue_.front();
    if (request_expiry_ > clock::duration::zero() && now - p.received >= request_expiry_) {
      queue_.pop_front();
      stats_.requests_expired.add();
      continue;
    }
    const std::string id = idle_.front();
    // Send a shared copy and keep the original: if the worker dies, the request goes to another.
    message copy = share(p.request);
    if (!to_worker(id, copy)) {
      stats_.workers_unreachable.add();
      remove_worker(id);
      continue;
    }
    worker_entry& w = workers_.at(id);
    idle_.pop_front();
    w.idle = false;
    ++p.deliveries;
    w.in_flight = std::move(p);
    queue_.pop_front();
    stats_.requests_dispatched.add();
  }
}

void queue_machine::on_tick(time_point now) {
  purge(now);
  expire_requests(now);
  if (now >= heartbeat_at_) {
    send_heartbeats();
    heartbeat_at_ += heartbeat_;
    if (heartbeat_at_ <= now) heartbeat_at_ = now + heartbeat_;
  }
  dispatch(now);
  update_gauges();
}

void queue_machine::send_heartbeats() {
  std::vector<std::string> unreachable;
  for (auto& [id, w] : workers_) {
    message hb = heartbeat_message();
    if (to_worker(id, hb))
      stats_.heartbeats_sent.add();
    else
      unreachable.push_back(id);
  }
  for (const auto& id : unreachable) {
    stats_.workers_unreachable.add();
    remove_worker(id);
  }
}

void queue_machine::purge(time_point now) {
  // Every expired worker, wherever it sits: the LRU order says nothing about who is alive.
  std::vector<std::string> expired;
  for (const auto& [id, w] : workers_)
    if (w.expiry <= now) expired.push_back(id);
  for (const auto& id : expired) {
    stats_.workers_expired.add();
    remove_worker(id);
  }
}

void queue_machine::expire_requests(time_point now) {
  if (request_expiry_ <= clock::duration::zero()) return;
  const auto before = queue_.size();
  std::erase_if(queue_, [&](const pending& p) { return now - p.received >= request_expiry_; });
  stats_.requests_expired.add(before - queue_.size());
}

void queue_machine::update_gauges() noexcept {
  stats_.workers_idle.set(idle_.size());
  stats_.workers_busy.set(workers_.size() - idle_.size());
  stats_.queued.set(queue_.size());
}

queue_stats queue_machine::stats() const noexcept {
  queue_stats s;
  s.requests_received = stats_.requests_received.get();
  s.requests_dispatched = stats_.requests_dispatched.get();
  s.requests_redelivered = stats_.requests_redelivered.get();
  s.requests_dropped_full = stats_.requests_dropped_full.get();
  s.requests_expired = stats_.requests_expired.get();
  s.requests_poisoned = stats_.requests_poisoned.get();
  s.replies_forwarded = stats_.replies_forwarded.get();
  s.replies_unroutable = stats_.replies_unroutable.get();
  s.replies_unmatched = stats_.replies_unmatched.get();
  s.workers_registered = stats_.workers_registered.get();
  s.workers_rejected = stats_.workers_rejected.get();
  s.workers_expired = stats_.workers_expired.get();
  s.workers_unreachable = stats_.workers_unreachable.get();
  s.heartbeats_sent = stats_.heartbeats_sent.get();
  s.heartbeats_received = stats_.heartbeats_received.get();
  s.unknown_worker_messages = stats_.unknown_worker_messages.get();
  s.malformed_client = stats_.malformed_client.get();
  s.malformed_worker = stats_.malformed_worker.get();
  s.workers_idle = stats_.workers_idle.get();
  s.workers_busy = stats_.workers_busy.get();
  s.queued = stats_.queued.get();
  return s;
}

// ------------------------------------------------------------------------------------------------
// the worker

detail::liveness::settings liveness_settings(const worker_options& o) noexcept {
  return {.heartbeat = o.heartbeat_interval,
          .liveness = o.liveness,
          .reconnect_initial = o.reconnect_interval,
          .reconnect_max = o.reconnect_interval_max,
          .heartbeats = detail::liveness::cadence::fixed,
          .on = port::main};
}

}  // namespace fabric::ppp
