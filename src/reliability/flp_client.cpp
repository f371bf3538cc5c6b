// The Freelance client machine (flp_client.hpp): server liveness, routing, retries, deadlines.
#include "reliability/flp_client.hpp"

#include "reliability/flp.hpp"
#include "reliability/flp_faults.hpp"

#include <fabric/error.hpp>

#include <algorithm>
#include <iterator>

namespace fabric::flp {

namespace {

void check_duration(std::chrono::milliseconds d, std::string_view who, const char* name) {
  if (d < std::chrono::milliseconds(1) || d > longest_setting)
    throw error(errc::invalid_argument,
                std::string(who) + ": options." + name + " must be between 1 ms and 24 h");
}

}  // namespace

void check_options(const freelance::client_options& o, std::string_view who) {
  const std::string w(who);
  if (o.servers.empty()) throw error(errc::invalid_argument, w + ": options.servers must name at least one server");
  if (o.servers.size() > max_servers)
    throw error(errc::invalid_argument, w + ": at most 1024 servers in options.servers");
  std::set<std::string_view> seen;
  for (const std::string& s : o.servers) {
    if (s.empty() || s.size() > max_endpoint_size)
      throw error(errc::invalid_argument, w + ": a server endpoint must be 1 to 255 octets: '" + s + "'");
    if (!seen.insert(s).second)
      throw error(errc::invalid_argument, w + ": server '" + s + "' is listed twice");
  }
  check_duration(o.ping_interval, who, "ping_interval");
  check_duration(o.server_expiry, who, "server_expiry");
  check_duration(o.timeout, who, "timeout");
  check_duration(o.request_expiry, who, "request_expiry");
  if (o.server_expiry <= o.ping_interval)
    throw error(errc::invalid_argument, w + ": options.server_expiry must be longer than options.ping_interval");
  if (o.copies == 0 || o.copies > o.servers.size())
    throw error(errc::invalid_argument, w + ": options.copies must be between 1 and the number of servers");
  if (o.max_outstanding == 0 || o.max_outstanding > max_outstanding_limit)
    throw error(errc::invalid_argument, w + ": options.max_outstanding must be between 1 and 16777216");
}

client_machine::client_machine(const freelance::client_options& o, detail::machine_sink& out, time_point now,
                               std::uint64_t first_sequence)
    : ping_interval_((check_options(o, "freelance client"), o.ping_interval)),
      server_expiry_(o.server_expiry),
      timeout_(o.timeout),
      copies_(o.copies),
      max_outstanding_(o.max_outstanding),
      out_(out),
      first_id_(first_sequence == 0 ? 1 : first_sequence),
      next_id_(first_id_) {
  servers_.reserve(o.servers.size());
  const duration probe = std::min<duration>(first_probe, ping_interval_);
  for (const std::string& endpoint : o.servers) {
    by_endpoint_.emplace(endpoint, static_cast<std::uint32_t>(servers_.size()));
    servers_.push_back({.endpoint = endpoint, .live = false, .last_heard = now, .unanswered_since = {},
                        .ping_at = now, .probe = probe, .in_flight = 0});
  }
}

std::uint64_t client_machine::next_id() noexcept {
  std::uint64_t id = next_id_++;
  if (id == 0) id = next_id_++;
  return id;
}

std::uint32_t client_machine::find(std::string_view endpoint) const noexcept {
  const auto it = by_endpoint_.find(endpoint);
  return it == by_endpoint_.end() ? none : it->second;
}

time_point client_machine::death_time(const server_entry& s) const noexcept {
  // Silent for server_expiry, and asked: a ping unanswered for server_expiry - ping_interval.
  // While the client keeps running both fall due together; after an idle spell only the ping
  // counts, so a client that had not asked does not condemn a server for its own silence.
  return std::max(s.last_heard + server_expiry_, *s.unanswered_since + (server_expiry_ - ping_interval_));
}

std::size_t client_machine::live_servers() const noexcept {
  return static_cast<std::size_t>(
      std::count_if(servers_.begin(), servers_.end(), [](const server_entry& s) { return s.live; }));
}

bool client_machine::is_live(std::string_view endpoint) const noexcept {
  const std::uint32_t i = find(endpoint);
  return i != none && servers_[i].live;
}

std::size_t client_machine::in_flight(std::string_view endpoint) const noexcept {
  const std::uint32_t i = find(endpoint);
  return i == none ? 0 : servers_[i].in_flight;
}

bool client_machine::is_waiting(std::uint64_t id) const noexcept {
  const auto it = requests_.find(id);
  return it != requests_.end() && it->second.waiting;
}

// --- servers ---

void client_machine::heard(std::uint32_t idx, time_point now) {
  server_entry& s = servers_[idx];
  s.last_heard = now;
  s.unanswered_since.reset();
  s.ping_at = now + ping_interval_;
  s.probe = std::min<duration>(first_probe, ping_interval_);
  if (!s.live) {
    s.live = true;
    ++stats_.servers_up;
  }
}

void client_machine::lose(std::uint32_t idx, time_point now, bool unreachable) {
  server_entry& s = servers_[idx];
  if (s.live) {
    s.live = false;
    ++stats_.servers_lost;
  }
  s.unanswered_since.reset();
  if (unreachable) {
    // The connection is gone: look for the server's return soon, then less and less often.
    s.probe = std::min<duration>(first_probe, ping_interval_);
    s.ping_at = now + s.probe;
    s.probe = std::min(s.probe * 2, ping_interval_);
  }
  if (s.in_flight == 0) return;
  const bool forget = faults::forget_lost_requests();
  for (auto it = requests_.begin(); it != requests_.end();) {
    request_entry& e = it->second;
    const auto h = std::find(e.holders.begin(), e.holders.end(), idx);
    if (h == e.holders.end()) {
      ++it;
      continue;
    }
    e.holders.erase(h);
    --s.in_flight;
    if (forget) {  // the planted bug: the request vanishes from the books
      release(e);
      timers_.erase({e.timer, it->first});
      it = requests_.erase(it);
      continue;
    }
    // Its answer can no longer come (a dead process, a dropped connection, a hung server the
    // client gave up on): send it elsewhere at once rather than wait out its timeout.
    if (e.holders.empty()) to_resend_.push_back(it->first);
    ++it;
  }
}

void client_machine::ping(std::uint32_t idx, time_point now) {
  server_entry& s = servers_[idx];
  auto sent = out_.send(ping_to(s.endpoint));
  if (sent) {
    ++stats_.pings;
    if (!s.unanswered_since) s.unanswered_since = now;
    s.ping_at = now + ping_interval_;
    return;
  }
  if (sent.is(errc::peer_unreachable)) {
    // No connection to it (yet): 10/FLP's ROUTER cannot send to a peer it has not met.
    if (s.live) {
      lose(idx, now, true);
    } else {
      s.ping_at = now + s.probe;
      s.probe = std::min(s.probe * 2, ping_interval_);
    }
    return;
  }
  s.ping_at = now + ping_interval_;  // its queue is full: it has our last ping to answer
}

// --- requests ---

std::size_t client_machine::dispatch(std::uint64_t id, request_entry& e, time_point now,
                                     const std::vector<std::uint32_t>& avoid) {
  std::size_t sent = 0;
  std::vector<std::uint32_t> full;  // servers that refused this round: their queue is full
  const auto listed = [](const std::vector<std::uint32_t>& v, std::uint32_t i) {
    return std::find(v.begin(), v.end(), i) != v.end();
  };
  while (sent < copies_) {
    // The least loaded live server, those to avoid last, the first listed on a tie.
    std::uint32_t best = none;
    bool best_avoided = true;
    for (std::uint32_t i = 0; i < servers_.size(); ++i) {
      const server_entry& s = servers_[i];
      if (!s.live || listed(e.holders, i) || listed(full, i)) continue;
      const bool avoided = listed(avoid, i);
      if (best == none || (best_avoided && !avoided) ||
          (best_avoided == avoided && s.in_flight < servers_[best].in_flight)) {
        best = i;
        best_avoided = avoided;
      }
    }
    if (best == none) break;
    auto result = out_.send(request_to(servers_[best].endpoint, id, e.body));
    if (result) {
      ++servers_[best].in_flight;
      e.holders.push_back(best);
      ++sent;
      ++stats_.attempts;
    } else if (result.is(errc::peer_unreachable)) {
      lose(best, now, true);
    } else {
      full.push_back(best);
    }
  }
  if (sent > 0) {
    if (e.rounds > 0) ++stats_.retries;
    ++e.rounds;
  }
  return sent;
}

void client_machine::set_timer(std::uint64_t id, request_entry& e, time_point at) {
  timers_.erase({e.timer, id});
  e.timer = at;
  timers_.emplace(at, id);
}

void client_machine::attempt(std::uint64_t id, request_entry& e, time_point now,
                             const std::vector<std::uint32_t>& avoid) {
  if (dispatch(id, e, now, avoid) > 0) {
    e.waiting = false;
    set_timer(id, e, std::min(now + timeout_, e.expires));
    return;
  }
  if (!e.waiting) {
    // Requests that completed while waiting leave their ids behind: drop those before the queue
    // outgrows the requests it can hold.
    if (waiting_.size() >= max_outstanding_)
      std::erase_if(waiting_, [this](std::uint64_t w) {
        const auto it = requests_.find(w);
        return it == requests_.end() || !it->second.waiting;
      });
    e.waiting = true;
    waiting_.push_back(id);
  }
  set_timer(id, e, e.expires);
  if (live_servers() > 0) retry_at_ = std::min(retry_at_, now + busy_retry);
}

void client_machine::release(request_entry& e) noexcept {
  for (const std::uint32_t i : e.holders) --servers_[i].in_flight;
  e.holders.clear();
}

void client_machine::complete(std::uint64_t id, freelance::reply_status status, std::uint32_t server,
                              message&& body) {
  const auto it = requests_.find(id);
  if (it == requests_.end()) return;
  request_entry& e = it->second;
  release(e);
  timers_.erase({e.timer, id});
  requests_.erase(it);
  freelance::reply& r = done_.emplace_back();
  r.id = id;
  r.status = status;
  if (server != none) r.server = servers_[server].endpoint;
  r.body = std::move(body);
  switch (status) {
    case freelance::reply_status::ok: ++stats_.replies; break;
    case freelance::reply_status::expired: ++stats_.expired; break;
    case freelance::reply_status::unavailable: ++stats_.unavailable; break;
  }
}

void client_machine::flush_waiting(time_point now) {
  for (std::size_t n = waiting_.size(); n > 0 && !waiting_.empty() && live_servers() > 0; --n) {
    const std::uint64_t id = waiting_.front();
    waiting_.pop_front();
    const auto it = requests_.find(id);
    if (it == requests_.end() || !it->second.waiting) continue;  // completed or cancelled meanwhile
    request_entry& e = it->second;
    if (dispatch(id, e, now, {}) > 0) {
      e.waiting = false;
      set_timer(id, e, std::min(now + timeout_, e.expires));
      continue;
    }
    // Every live server refused it (full queues): keep the order, try again shortly.
    waiting_.push_front(id);
    if (live_servers() > 0) retry_at_ = std::min(retry_at_, now + busy_retry);
    break;
  }
}

void client_machine::resend_lost(time_point now) {
  // Each pass can lose more servers (a resend refused), at most all of them: this ends.
  while (!to_resend_.empty()) {
    std::vector<std::uint64_t> ids;
    ids.swap(to_resend_);
    for (const std::uint64_t id : ids) {
      const auto it = requests_.find(id);
      if (it == requests_.end() || !it->second.holders.empty() || it->second.waiting) continue;
      attempt(id, it->second, now, {});
    }
  }
}

void client_machine::on_timer(std::uint64_t id, time_point now) {
  const auto it = requests_.find(id);
  if (it == requests_.end()) return;
  request_entry& e = it->second;
  if (now >= e.expires) {
    complete(id, e.rounds > 0 ? freelance::reply_status::expired : freelance::reply_status::unavailable, none,
             message());
    return;
  }
  if (e.waiting) {
    set_timer(id, e, e.expires);
    return;
  }
  // The attempt timed out: give it up (a late reply is still accepted) and try another server.
  std::vector<std::uint32_t> avoid;
  avoid.swap(e.holders);
  for (const std::uint32_t i : avoid) --servers_[i].in_flight;
  attempt(id, e, now, avoid);
}

result<std::uint64_t> client_machine::submit(message& body, time_point now, duration expiry) {
  if (body.empty())
    throw error(errc::invalid_argument, "freelance client: a request needs at least one body frame");
  if (requests_.size() + done_.size() >= max_outstanding_) {
    ++stats_.back_pressure;
    return errc::back_pressure;
  }
  const std::uint64_t id = next_id();
  request_entry& e = requests_[id];
  e.body = std::move(body);
  e.expires = now + expiry;
  e.timer = e.expires;  // attempt() files the timer
  ++stats_.requests;
  attempt(id, e, now, {});
  resend_lost(now);
  return id;
}

bool client_machine::cancel(std::uint64_t id) noexcept {
  const auto it = requests_.find(id);
  if (it == requests_.end()) return false;
  release(it->second);
  timers_.erase({it->second.timer, id});
  requests_.erase(it);
  ++stats_.cancelled;
  return true;
}

// --- events ---

void client_machine::on_message(message&& m, time_point now) {
  const at_client p = parse_at_client(m);
  if (p.what == at_client::kind::malformed) {
    ++stats_.malformed;
    return;
  }
  const std::uint32_t idx = find(p.server);
  if (idx == none) {
    ++stats_.malformed;
    return;
  }
  const bool was_live = servers_[idx].live;
  heard(idx, now);
  if (p.what == at_client::kind::pong) {
    ++stats_.pongs;
  } else {
    auto& frames = m.frames();
    frames.erase(frames.begin(), frames.begin() + 2);  // identity and control
    if (requests_.count(p.sequence) != 0) {
      complete(p.sequence, freelance::reply_status::ok, idx, std::move(m));
    } else if (faults::deliver_late_replies() && p.sequence - first_id_ < next_id_ - first_id_) {
      // The planted bug: a duplicate or late answer reaches the application.
      freelance::reply& r = done_.emplace_back();
      r.id = p.sequence;
      r.server = servers_[idx].endpoint;
      r.body = std::move(m);
      ++stats_.replies;
    } else {
      ++stats_.late_replies;
    }
  }
  if (!was_live) flush_waiting(now);
  resend_lost(now);
}

void client_machine::on_tick(time_point now) {
  for (std::uint32_t i = 0; i < servers_.size(); ++i) {
    server_entry& s = servers_[i];
    if (s.live && s.unanswered_since && now >= death_time(s)) lose(i, now, false);
    if (now >= s.ping_at) ping(i, now);
  }
  while (!timers_.empty() && timers_.begin()->first <= now) {
    const std::uint64_t id = timers_.begin()->second;
    timers_.erase(timers_.begin());
    on_timer(id, now);
  }
  if (now >= retry_at_) {
    retry_at_ = time_point::max();
    flush_waiting(now);
  }
  resend_lost(now);
}

time_point client_machine::next_tick() const noexcept {
  time_point t = retry_at_;
  if (!timers_.empty()) t = std::min(t, timers_.begin()->first);
  for (const server_entry& s : servers_) {
    t = std::min(t, s.ping_at);
    if (s.live && s.unanswered_since) t = std::min(t, death_time(s));
  }
  return t;
}

bool client_machine::take(freelance::reply& out) {
  if (done_.empty()) return false;
  out = std::move(done_.front());
  done_.pop_front();
  return true;
}

}  // namespace fabric::flp
