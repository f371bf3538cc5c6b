// The 6/PPP state machines: the queue's worker registry, LRU dispatch, heartbeats, purging and
// bounded request queue, and the worker's liveness and reconnect back-off. No sockets, no clock.
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

queue_machine::queue_machine(const queue_options& options, time_point now)
    : heartbeat_(options.heartbeat_interval),
      expiry_(options.heartbeat_interval * static_cast<std::int64_t>(options.liveness)),
      max_queued_(options.max_queued_requests),
      overflow_(options.overflow),
      request_ttl_(options.request_ttl),
      max_workers_(options.max_workers),
      max_redeliveries_(options.max_redeliveries),
      heartbeat_at_(now + options.heartbeat_interval) {
  if (options.heartbeat_interval <= std::chrono::milliseconds::zero())
    throw error(errc::invalid_argument, "ppp::queue: heartbeat_interval must be positive");
  if (options.liveness == 0)
    throw error(errc::invalid_argument, "ppp::queue: liveness must be at least 1");
  if (options.max_workers == 0)
    throw error(errc::invalid_argument, "ppp::queue: max_workers must be at least 1");
  if (options.request_ttl < std::chrono::milliseconds::zero())
    throw error(errc::invalid_argument, "ppp::queue: request_ttl must not be negative (0 = no expiry)");
}

bool queue_machine::knows(std::string_view worker) const {
  return workers_.find(std::string(worker)) != workers_.end();
}

bool queue_machine::is_busy(std::string_view worker) const {
  auto it = workers_.find(std::string(worker));
  return it != workers_.end() && !it->second.idle;
}

std::vector<std::string> queue_machine::idle_order() const { return {idle_.begin(), idle_.end()}; }

void queue_machine::on_client(message&& m, time_point now, queue_sink& out) {
  // client identity | address stack... | "" | 1*content; the identity is never empty, so the
  // delimiter is at index 1 or later.
  const auto d = find_delimiter(m);
  if (m.size() < 3 || !d || *d == 0 || *d + 1 >= m.size()) {
    stats_.malformed_client.add();
    return;
  }
  stats_.requests_received.add();
  enqueue_back(pending{std::move(m), now, 0});
  dispatch(now, out);
  enforce_bound();
  update_gauges();
}

void queue_machine::on_worker(std::string_view worker, message&& m, time_point now, queue_sink& out) {
  if (worker.empty() || m.empty()) {
    stats_.malformed_worker.add();
    return;
  }
  const std::string id(worker);
  if (m.size() == 1) {
    if (is_command(m, ready_command)) {
      on_ready(id, now, out);
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
  on_reply(id, std::move(m), out);
  dispatch(now, out);
  update_gauges();
}

void queue_machine::on_ready(const std::string& id, time_point now, queue_sink& out) {
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
  dispatch(now, out);
  update_gauges();
}

void queue_machine::on_reply(const std::string& id, message&& m, queue_sink& out) {
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
  if (out.to_client(m))
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
  if (p.deliveries > max_redeliveries_) {
    stats_.requests_abandoned.add();
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

void queue_machine::dispatch(time_point now, queue_sink& out) {
  while (!queue_.empty() && !idle_.empty()) {
    pending& p = queue_.front();
    if (request_ttl_ > clock::duration::zero() && now - p.received >= request_ttl_) {
      queue_.pop_front();
      stats_.requests_expired.add();
      continue;
    }
    const std::string id = idle_.front();
    // Send a shared copy and keep the original: if the worker dies, the request goes to another.
    message copy = share(p.request);
    if (!out.to_worker(id, copy)) {
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

void queue_machine::on_tick(time_point now, queue_sink& out) {
  purge(now);
  expire_requests(now);
  if (now >= heartbeat_at_) {
    send_heartbeats(now, out);
    heartbeat_at_ += heartbeat_;
    if (heartbeat_at_ <= now) heartbeat_at_ = now + heartbeat_;
  }
  dispatch(now, out);
  update_gauges();
}

void queue_machine::send_heartbeats(time_point, queue_sink& out) {
  std::vector<std::string> unreachable;
  for (auto& [id, w] : workers_) {
    message hb = heartbeat_message();
    if (out.to_worker(id, hb))
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
  if (request_ttl_ <= clock::duration::zero()) return;
  const auto before = queue_.size();
  std::erase_if(queue_, [&](const pending& p) { return now - p.received >= request_ttl_; });
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
  s.requests_abandoned = stats_.requests_abandoned.get();
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
// worker_machine

worker_machine::worker_machine(const timing& t, time_point now)
    : t_(t),
      expiry_(t.heartbeat * static_cast<std::int64_t>(t.liveness)),
      last_heard_(now),
      heartbeat_at_(now + t.heartbeat),
      backoff_(t.reconnect_initial) {
  if (t.heartbeat <= std::chrono::milliseconds::zero())
    throw error(errc::invalid_argument, "ppp::worker: heartbeat_interval must be positive");
  if (t.liveness == 0) throw error(errc::invalid_argument, "ppp::worker: liveness must be at least 1");
  if (t.reconnect_initial < std::chrono::milliseconds::zero() || t.reconnect_max < t.reconnect_initial)
    throw error(errc::invalid_argument,
                "ppp::worker: need 0 <= reconnect_interval <= reconnect_interval_max");
}

void worker_machine::on_traffic(time_point now) noexcept {
  if (state_ == state::connected) last_heard_ = now;
  backoff_ = t_.reconnect_initial;
}

worker_machine::actions worker_machine::on_tick(time_point now) noexcept {
  actions a;
  if (state_ == state::connected) {
    if (now >= last_heard_ + expiry_) {
      a.disconnect = true;
      state_ = state::waiting;
      reconnect_at_ = now + backoff_;
      backoff_ = std::min(backoff_ * 2, t_.reconnect_max);
    } else if (now >= heartbeat_at_) {
      a.send_heartbeat = true;
      heartbeat_at_ += t_.heartbeat;
      if (heartbeat_at_ <= now) heartbeat_at_ = now + t_.heartbeat;
    }
  }
  if (state_ == state::waiting && now >= reconnect_at_) {
    a.reconnect = true;
    state_ = state::connected;
    last_heard_ = now;  // a fresh conversation gets a full liveness period
    heartbeat_at_ = now + t_.heartbeat;
  }
  return a;
}

time_point worker_machine::next_deadline() const noexcept {
  if (state_ == state::waiting) return reconnect_at_;
  return std::min(heartbeat_at_, last_heard_ + expiry_);
}

}  // namespace fabric::ppp
