#include "reliability/tsp_server.hpp"

#include "reliability/tsp_faults.hpp"

#include <fabric/error.hpp>

#include <algorithm>
#include <string>
#include <utility>

namespace fabric::tsp {

using detail::time_point;

namespace {

// A request read back from the journal is let go after this much failing, to try again.
constexpr std::chrono::milliseconds read_retry{1000};

// Whether a change ends a request: once durable, the journal no longer lists it as open.
bool ends(change_kind k) noexcept {
  return k == change_kind::replied || k == change_kind::given_up || k == change_kind::closed;
}

std::size_t status_index(status s) noexcept {
  switch (s) {
    case status::ok: return 0;
    case status::pending: return 1;
    case status::unknown: return 2;
    case status::error: return 3;
  }
  return 3;
}

}  // namespace

std::string_view service_name(service_kind k) noexcept {
  switch (k) {
    case service_kind::request: return request_service;
    case service_kind::reply: return reply_service;
    case service_kind::close: return close_service;
    case service_kind::keyed_request: return keyed_request_service;
  }
  return request_service;
}

std::string_view to_string(change_kind k) noexcept {
  switch (k) {
    case change_kind::stored: return "stored";
    case change_kind::attempt: return "attempt";
    case change_kind::replied: return "replied";
    case change_kind::given_up: return "given up";
    case change_kind::closed: return "closed";
    case change_kind::removed: return "removed";
  }
  return "?";
}

server_machine::server_machine(const server_settings& s, server_io& io, server_store& store)
    : s_(s), io_(io), store_(store) {
  if (s_.max_in_flight == 0 || s_.max_in_flight > 1'000'000)
    throw error(errc::invalid_argument, "titanic: max_in_flight must be between 1 and 1000000");
  if (s_.service_window == 0) throw error(errc::invalid_argument, "titanic: service_window must be at least 1");
  if (s_.dispatch_timeout <= std::chrono::milliseconds::zero() || s_.dispatch_timeout > std::chrono::hours(24))
    throw error(errc::invalid_argument, "titanic: dispatch_timeout must be between 1 ms and 24 h");
  if (s_.max_attempts == 0) throw error(errc::invalid_argument, "titanic: max_attempts must be at least 1");
  if (s_.retry_base <= std::chrono::milliseconds::zero() || s_.retry_max < s_.retry_base ||
      s_.retry_max > std::chrono::hours(24))
    throw error(errc::invalid_argument, "titanic: retry back-off must satisfy 0 < base <= max <= 24 h");
  if (s_.request_ttl < std::chrono::milliseconds::zero())
    throw error(errc::invalid_argument, "titanic: request_ttl must not be negative");
  if (s_.service_check_interval <= std::chrono::milliseconds::zero())
    throw error(errc::invalid_argument, "titanic: service_check_interval must be positive");
  if (s_.sweep_interval <= std::chrono::milliseconds::zero())
    throw error(errc::invalid_argument, "titanic: sweep_interval must be positive");
  if (s_.max_in_memory == 0 || s_.page == 0 || s_.max_batch == 0)
    throw error(errc::invalid_argument, "titanic: max_in_memory, page and max_batch must be positive");
}

// ---------------------------------------------------------------------------------------------
// Titanic requests

void server_machine::on_request(origin&& from, message&& body, time_point now) {
  ++stats_.received[static_cast<std::size_t>(from.kind)];
  switch (from.kind) {
    case service_kind::request:
    case service_kind::keyed_request: {
      const bool keyed = from.kind == service_kind::keyed_request;
      const parsed_request p = keyed ? parse_keyed_request(body) : parse_request(body);
      if (!p) {
        ++stats_.malformed;
        answer_status(from, status::unknown, describe(p.error));
        break;
      }
      if (body.byte_size() > s_.max_request_bytes) {
        ++stats_.malformed;
        answer_status(from, status::unknown, "the request is larger than the server takes");
        break;
      }
      const std::string key(p.key);
      const std::string service(p.service);
      auto& frames = body.frames();
      frames.erase(frames.begin(), frames.begin() + (keyed ? 2 : 1));
      on_store_request(std::move(from), key, service, std::move(body), now);
      break;
    }
    case service_kind::reply:
    case service_kind::close: {
      const parsed_uuid_request p = parse_uuid_request(body);
      if (!p) {
        ++stats_.malformed;
        answer_status(from, status::unknown, describe(p.error));
        break;
      }
      if (from.kind == service_kind::reply) {
        on_reply_request(std::move(from), p.id);
      } else {
        on_close_request(std::move(from), p.id);
      }
      break;
    }
  }
  act(now);
}

void server_machine::on_store_request(origin&& from, std::string_view key, std::string_view service,
                                      message&& body, time_point now) {
  // The planted bug of the chaos tests (tsp_faults.hpp): with ignore_keys a keyed retry is not
  // looked up, and is stored again under a new UUID.
  if (!key.empty() && !faults::ignore_keys()) {
    // The same key again while its request is being stored: answered with it, once durable.
    if (const auto it = keys_pending_.find(key); it != keys_pending_.end()) {
      ++stats_.keyed_again;
      for (auto& f : gathering_followups_) {
        if (f.kind == change_kind::stored && f.id == it->second) {
          f.also.push_back(std::move(from));
          return;
        }
      }
      for (auto& f : committing_followups_) {
        if (f.kind == change_kind::stored && f.id == it->second) {
          f.also.push_back(std::move(from));
          return;
        }
      }
      return;  // not reached: a pending key always has its followup
    }
    auto known = store_.find_key(key);
    if (!known) {
      ++stats_.store_errors;
      answer_status(from, status::error, "the journal could not be read");
      return;
    }
    if (*known) {
      ++stats_.keyed_again;
      answer_uuid(from, **known);
      return;
    }
  }
  const uuid id = uuid::ordered();  // time-ordered: new requests go to the end of the tables
  message cached;
  if (cache_room(body.byte_size())) cached = body.clone();
  request_change c{.kind = change_kind::stored, .id = id, .key = std::string(key),
                   .service = std::string(service), .body = std::move(body)};
  followup f{.kind = change_kind::stored, .id = id, .reply_to = std::move(from), .key = std::string(key),
             .service = std::string(service)};
  f.cached = std::move(cached);
  if (s_.request_ttl > std::chrono::milliseconds::zero()) f.expires_at = now + s_.request_ttl;
  c.expires_at = f.expires_at;  // kept with the request, so a reload keeps its TTL
  if (!key.empty()) keys_pending_.emplace(std::string(key), id);
  queue_change(std::move(c), std::move(f));
}

adoption server_machine::adopt(const uuid& id, std::string_view key, std::string_view service, message&& body,
                               time_point now) {
  if (adopting_.contains(id)) return adoption::pending;
  if (service.empty() || service.size() > 255 || key.size() > 255 || body.empty() ||
      body.size() > max_body_frames || body.byte_size() > s_.max_request_bytes) {
    ++stats_.malformed;
    return adoption::held;  // nothing this node could store: not asked for again
  }
  if (!key.empty()) {
    if (keys_pending_.find(key) != keys_pending_.end()) return adoption::pending;
    auto known = store_.find_key(key);
    if (!known) {
      ++stats_.store_errors;
      return adoption::failed;
    }
    if (*known) return adoption::held;  // the client's retry reached this node: stored once
  }
  if (open_.contains(id)) return adoption::held;
  auto found = store_.lookup(id);
  if (!found) {
    ++stats_.store_errors;
    return adoption::failed;
  }
  if (found->what != request_lookup::state::unknown) return adoption::held;
  message cached;
  if (cache_room(body.byte_size())) cached = body.clone();
  request_change c{.kind = change_kind::stored, .id = id, .key = std::string(key), .service = std::string(service),
                   .body = std::move(body)};
  followup f{.kind = change_kind::stored, .id = id, .key = std::string(key), .service = std::string(service)};
  f.cached = std::move(cached);
  if (s_.request_ttl > std::chrono::milliseconds::zero()) f.expires_at = now + s_.request_ttl;
  c.expires_at = f.expires_at;
  if (!key.empty()) keys_pending_.emplace(std::string(key), id);
  adopting_.insert(id);
  ++stats_.adopted;
  queue_change(std::move(c), std::move(f));
  act(now);
  return adoption::pending;
}

void server_machine::on_reply_request(origin&& from, const uuid& id) {
  if (open_.contains(id)) {
    answer_status(from, status::pending);
    return;
  }
  if (const auto cached = replies_.find(id); cached != replies_.end()) {
    message out;
    write_reply_reply(out, cached->second.frames.clone());
    ++stats_.answered[status_index(status::ok)];
    io_.answer(from, std::move(out));
    return;
  }
  auto found = store_.lookup(id);
  if (!found) {
    ++stats_.store_errors;
    answer_status(from, status::error, "the journal could not be read");
    return;
  }
  switch (found->what) {
    case request_lookup::state::unknown:
      answer_status(from, status::unknown);
      return;
    case request_lookup::state::open:
      answer_status(from, status::pending);
      return;
    case request_lookup::state::given_up:
      answer_status(from, status::error, found->reason.empty() ? "given up" : found->reason);
      return;
    case request_lookup::state::replied: {
      if (found->reply.empty()) found->reply.push_back(std::string_view{});
      message out;
      write_reply_reply(out, std::move(found->reply));
      ++stats_.answered[status_index(status::ok)];
      io_.answer(from, std::move(out));
      return;
    }
  }
}

void server_machine::on_close_request(origin&& from, const uuid& id) {
  if (const auto it = open_.find(id); it != open_.end()) unschedule(id, it->second, phase::finishing);
  queue_change({.kind = change_kind::closed, .id = id}, {.kind = change_kind::closed, .id = id, .reply_to = std::move(from)});
}

void server_machine::answer_status(const origin& to, status s, std::string_view text) {
  message out;
  switch (to.kind) {
    case service_kind::request:
    case service_kind::keyed_request: write_request_reply(out, s, text); break;
    case service_kind::reply: write_reply_reply(out, s, text); break;
    case service_kind::close: write_close_reply(out, s, text); break;
  }
  ++stats_.answered[status_index(s)];
  io_.answer(to, std::move(out));
}

void server_machine::answer_uuid(const origin& to, const uuid& id) {
  message out;
  write_request_reply(out, id);
  ++stats_.answered[status_index(status::ok)];
  io_.answer(to, std::move(out));
}

// ---------------------------------------------------------------------------------------------
// Services' answers

void server_machine::on_dispatch_reply(std::uint64_t id, message&& body, time_point now) {
  const auto d = dispatches_.find(id);
  if (d == dispatches_.end()) {
    ++stats_.late_replies;
    return;
  }
  const uuid rid = d->second;
  entry& e = open_.at(rid);
  unschedule(rid, e, phase::finishing);
  auto& svc = service_of(e.service);
  svc.what = service_state::known::present;  // a worker answered: evidence enough
  svc.absences = 0;
  svc.window = std::min(svc.window + 1, s_.max_in_flight);  // it keeps up: one more at once
  svc.checked = now;
  if (body.size() > max_body_frames) {
    give_up(rid, e, "the service's reply has more than " + std::to_string(max_body_frames) + " frames", false);
  } else {
    if (body.empty()) body.push_back(std::string_view{});
    ++stats_.replies;
    followup f{.kind = change_kind::replied, .id = rid};
    if (body.byte_size() <= s_.cache_bytes) f.cached = body.clone();  // the oldest make room
    queue_change({.kind = change_kind::replied, .id = rid, .body = std::move(body)}, std::move(f));
  }
  act(now);
}

void server_machine::on_dispatch_expired(std::uint64_t id, time_point now) {
  const auto d = dispatches_.find(id);
  if (d == dispatches_.end()) return;  // answered, or timed out by the machine's own clock
  const uuid rid = d->second;
  timed_out(rid, open_.at(rid), now);
  act(now);
}

void server_machine::timed_out(const uuid& id, entry& e, time_point now) {
  ++stats_.dispatch_timeouts;
  unschedule(id, e, phase::waiting);
  {
    service_state& svc = service_of(e.service);
    svc.what = service_state::known::unknown;        // ask again before the next one
    svc.window = std::max<std::size_t>(1, svc.window / 2);  // and send it fewer at once
  }
  ++e.attempts;
  if (e.attempts >= s_.max_attempts) {
    give_up(id, e,
            "service " + e.service + " did not answer " + std::to_string(e.attempts) +
                (e.attempts == 1 ? " dispatch" : " dispatches"),
            false);
    return;
  }
  queue_change({.kind = change_kind::attempt, .id = id, .attempts = e.attempts},
               {.kind = change_kind::attempt, .id = id});
  make_waiting(id, e, backoff(e.attempts, now), now);
}

void server_machine::on_service_status(std::string_view service, bool has_workers, time_point now) {
  auto it = services_.find(service);
  if (it == services_.end()) return;  // never asked about: nothing waits for it
  service_state& svc = it->second;
  svc.checked = now;
  if (has_workers) {
    svc.what = service_state::known::present;
    svc.absences = 0;
  } else {
    // Its requests wait, none counting an attempt, and it is asked about again after a back-off.
    svc.what = service_state::known::absent;
    ++svc.absences;
    svc.retry_at = backoff(svc.absences, now);
    ++stats_.no_workers;
  }
  act(now);
}

// ---------------------------------------------------------------------------------------------
// Commits

void server_machine::finished(const followup& f) {
  if (!ends(f.kind)) return;
  const auto it = finishing_.find(f.id);
  if (it != finishing_.end() && --it->second == 0) finishing_.erase(it);
}

void server_machine::queue_change(request_change&& c, followup&& f) {
  if (ends(c.kind)) ++finishing_[c.id];
  gathering_.changes.push_back(std::move(c));
  gathering_followups_.push_back(std::move(f));
}

void server_machine::maybe_commit(time_point now) {
  if (in_commit_ != 0 || gathering_.changes.empty()) return;
  // Under load, a commit right after a large one would carry only what came during the answers
  // to it, and the next one the rest: batches alternate large and small, and the small ones cost
  // an fsync each. So while the last commit was large and this one is small, wait up to
  // commit_linger for it to fill.
  if (s_.commit_linger > std::chrono::microseconds::zero() && last_batch_ >= 64 &&
      gathering_.changes.size() < last_batch_ / 2) {
    if (!commit_due_) commit_due_ = now + s_.commit_linger;
    if (now < *commit_due_) return;
  }
  commit_due_.reset();
  last_batch_ = gathering_.changes.size();
  commit_batch batch;
  batch.id = next_batch_++;
  batch.changes.swap(gathering_.changes);
  committing_followups_.swap(gathering_followups_);
  gathering_followups_.clear();
  // Beyond max_batch, the rest go back to gather for the next commit, in order.
  while (batch.changes.size() > s_.max_batch) {
    gathering_.changes.push_back(std::move(batch.changes.back()));
    batch.changes.pop_back();
    gathering_followups_.push_back(std::move(committing_followups_.back()));
    committing_followups_.pop_back();
  }
  std::reverse(gathering_.changes.begin(), gathering_.changes.end());
  std::reverse(gathering_followups_.begin(), gathering_followups_.end());
  in_commit_ = batch.id;
  batch.in_flight = in_flight_;
  store_.commit(std::move(batch));
}

void server_machine::on_committed(std::uint64_t batch, result<void> outcome, std::vector<std::uint64_t> seqs,
                                  time_point now) {
  if (batch != in_commit_ || in_commit_ == 0) return;
  in_commit_ = 0;
  auto followups = std::move(committing_followups_);
  committing_followups_.clear();
  if (!outcome) {
    ++stats_.commit_failures;
    for (auto& f : followups) {
      if (f.kind == change_kind::stored) {
        keys_pending_.erase(f.key);
        adopting_.erase(f.id);
      }
      if (f.kind == change_kind::removed) --removals_pending_;  // listed again at the next sweep
      finished(f);  // not ended after all: it may be read back
      if (f.reply_to) answer_status(*f.reply_to, status::error, "the journal could not write the request");
      for (const auto& o : f.also) answer_status(o, status::error, "the journal could not write the request");
    }
    reload();
    act(now);
    return;
  }
  ++stats_.commits;
  std::size_t next_seq = 0;
  for (auto& f : followups) {
    finished(f);
    switch (f.kind) {
      case change_kind::stored: {
        const std::uint64_t seq = next_seq < seqs.size() ? seqs[next_seq] : 0;
        ++next_seq;
        ++stats_.stored;
        adopting_.erase(f.id);
        if (!f.key.empty()) keys_pending_.erase(f.key);
        // A lost "200", planted by the chaos tests (tsp_faults.hpp): the client posts again.
        const bool drop = !f.key.empty() && faults::take_dropped_answer();
        if (f.reply_to && !drop) answer_uuid(*f.reply_to, f.id);
        for (const auto& o : f.also) {
          if (!drop) answer_uuid(o, f.id);
        }
        if (complete_ && open_.size() < s_.max_in_memory && seq != 0) {
          if (!open_.contains(f.id)) {
            entry& e = open_[f.id];
            e.seq = seq;
            e.service = std::move(f.service);
            e.expires_at = f.expires_at;
            if (!f.cached.empty() && cache_room(f.cached.byte_size())) {
              body_bytes_ += f.cached.byte_size();
              e.body = std::move(f.cached);
            }
            track_ttl(f.id, e);
            make_waiting(f.id, e, time_point::min(), now);
          }
          loaded_upto_ = std::max(loaded_upto_, seq);
        } else {
          complete_ = false;  // it waits in the journal, read in its turn
        }
        break;
      }
      case change_kind::attempt: break;
      case change_kind::replied:
        forget(f.id);
        if (!f.cached.empty()) cache_reply(f.id, std::move(f.cached));
        break;
      case change_kind::given_up: forget(f.id); break;
      case change_kind::closed:
        forget(f.id);
        uncache_reply(f.id);
        ++stats_.closed;
        if (f.reply_to) answer_status(*f.reply_to, status::ok);
        break;
      case change_kind::removed:
        uncache_reply(f.id);
        ++stats_.removed;
        --removals_pending_;
        break;
    }
  }
  act(now);
}

// After a failed commit nothing in memory can be trusted to match the journal: forget it all and
// read the open requests back. Dispatches in flight are let go (their requests go out again).
void server_machine::reload() {
  for (const auto& [id, rid] : dispatches_) io_.cancel(id);
  dispatches_.clear();
  open_.clear();
  body_bytes_ = 0;
  for (auto& [name, svc] : services_) {
    svc.ready.clear();
    svc.in_flight = 0;
  }
  ready_ = 0;
  delayed_.clear();
  deadlines_.clear();
  ttls_.clear();
  in_flight_ = 0;
  complete_ = false;
  loaded_upto_ = 0;
}

// ---------------------------------------------------------------------------------------------
// Time

void server_machine::on_tick(time_point now) {
  // Dispatches the machine's own clock says are over (the io's expiry may come later).
  while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
    const uuid id = deadlines_.begin()->second;
    timed_out(id, open_.at(id), now);
  }
  page_in(now);
  sweep(now);
  act(now);
}

time_point server_machine::next_tick() const noexcept {
  time_point t = time_point::max();
  if (!delayed_.empty()) t = std::min(t, delayed_.begin()->first);
  if (!deadlines_.empty()) t = std::min(t, deadlines_.begin()->first);
  if (!ttls_.empty()) t = std::min(t, ttls_.begin()->first);
  if (wants_page()) t = std::min(t, retry_read_);
  // A sweep waits for the removals it queued (see sweep()); asking for a tick meanwhile would
  // only spin. Their commit's completion makes next_sweep_ due again.
  if (removals_pending_ == 0) t = std::min(t, next_sweep_);
  if (requery_at_) t = std::min(t, *requery_at_);
  if (commit_due_ && in_commit_ == 0) t = std::min(t, *commit_due_);
  return t;
}

void server_machine::act(time_point now) {
  release_due(now);
  expire_due(now);
  dispatch_due(now);
  maybe_commit(now);
}

void server_machine::release_due(time_point now) {
  while (!delayed_.empty() && delayed_.begin()->first <= now) {
    const uuid id = delayed_.begin()->second;
    delayed_.erase(delayed_.begin());
    const auto it = open_.find(id);
    if (it == open_.end()) continue;
    it->second.not_before = time_point::min();
    add_ready(id, it->second);
  }
}

void server_machine::expire_due(time_point now) {
  while (!ttls_.empty() && ttls_.begin()->first <= now) {
    const uuid id = ttls_.begin()->second;
    ttls_.erase(ttls_.begin());
    const auto it = open_.find(id);
    if (it == open_.end() || it->second.at == phase::finishing) continue;
    it->second.expires_at = time_point::max();
    give_up(id, it->second, "its time to live passed before the service replied", true);
  }
}

void server_machine::note_requery(time_point at) noexcept {
  requery_at_ = requery_at_ ? std::min(*requery_at_, at) : at;
}

// Each service with requests ready is asked about (mmi.service) when its answer is missing or
// stale, and waits while its answer is awaited or it has no workers; of the services known to have
// workers, the oldest request goes first. Each pass costs the services with requests ready, not
// the requests: a long queue for a service that is down costs nothing while it waits.
void server_machine::dispatch_due(time_point now) {
  requery_at_.reset();
  if (ready_ == 0) return;
  using known = service_state::known;
  std::vector<service_state*> open_services;
  for (auto& [name, svc] : services_) {
    if (svc.ready.empty()) continue;
    if (svc.what == known::asking) {
      const time_point again = svc.asked + s_.service_check_interval;
      if (now < again) {
        note_requery(again);
        continue;
      }
      svc.what = known::unknown;  // no answer: ask again
    }
    if (svc.what == known::absent && now < svc.retry_at) {
      note_requery(svc.retry_at);
      continue;
    }
    const bool stale = svc.what == known::absent || now - svc.checked >= s_.service_check_interval;
    if (svc.what == known::unknown || stale) {
      ++stats_.service_queries;
      if (io_.query_service(name)) {
        svc.what = known::asking;
        svc.asked = now;
      } else {
        svc.what = known::unknown;
      }
      note_requery(now + s_.service_check_interval);
      continue;
    }
    if (svc.in_flight < svc.window) open_services.push_back(&svc);
  }
  while (in_flight_ < s_.max_in_flight && !open_services.empty()) {
    // The service whose oldest ready request is the oldest of all.
    auto best = open_services.begin();
    for (auto it = open_services.begin() + 1; it != open_services.end(); ++it) {
      if ((*it)->ready.begin()->first < (*best)->ready.begin()->first) best = it;
    }
    service_state& svc = **best;
    const uuid id = svc.ready.begin()->second;
    if (!dispatch_one(id, open_.at(id), svc, now)) {
      note_requery(now + std::chrono::milliseconds(10));
      return;  // back pressure: the rest wait too
    }
    if (svc.ready.empty() || svc.in_flight >= svc.window) open_services.erase(best);
  }
}

// Dispatches `id`, at the head of `svc`'s ready set. Returns: false when the io refused it (back
// pressure); a body that could not be read is let wait read_retry, and counts as done.
bool server_machine::dispatch_one(const uuid& id, entry& e, service_state& svc, time_point now) {
  result<message> body = errc::not_supported;
  if (!e.body.empty()) {
    body_bytes_ -= e.body.byte_size();
    body = std::move(e.body);
    e.body.clear();
  } else {
    body = store_.read_body(id, e.seq);
  }
  if (!body) {
    ++stats_.store_errors;
    remove_ready(id, e);
    e.not_before = now + read_retry;
    delayed_.emplace(e.not_before, id);
    return true;
  }
  auto sent = io_.dispatch(e.service, std::move(*body), s_.dispatch_timeout);
  if (!sent) {
    ++stats_.dispatch_failures;
    return false;
  }
  svc.ready.erase(svc.ready.begin());
  --ready_;
  e.at = phase::in_flight;
  e.dispatch = *sent;
  e.deadline = now + s_.dispatch_timeout;
  dispatches_.emplace(*sent, id);
  deadlines_.emplace(e.deadline, id);
  ++in_flight_;
  ++svc.in_flight;
  ++stats_.dispatched;
  return true;
}

server_machine::service_state& server_machine::service_of(std::string_view name) {
  auto it = services_.find(name);
  if (it == services_.end()) {
    it = services_.emplace(std::string(name), service_state{}).first;
    it->second.window = std::min(s_.service_window, s_.max_in_flight);
  }
  return it->second;
}

void server_machine::add_ready(const uuid& id, const entry& e) {
  if (service_of(e.service).ready.emplace(e.seq, id).second) ++ready_;
}

void server_machine::remove_ready(const uuid& id, const entry& e) {
  const auto it = services_.find(e.service);
  if (it != services_.end() && it->second.ready.erase({e.seq, id}) != 0) --ready_;
}

// ---------------------------------------------------------------------------------------------
// Memory and the journal

bool server_machine::wants_page() const noexcept { return !complete_ && open_.size() <= s_.max_in_memory / 2; }

void server_machine::page_in(time_point now) {
  std::vector<open_request> batch;
  while (wants_page() && now >= retry_read_) {
    batch.clear();
    const std::size_t room = s_.max_in_memory - open_.size();
    auto done = store_.read_open(loaded_upto_, std::min(room, s_.page), batch);
    if (!done) {
      ++stats_.store_errors;
      retry_read_ = now + read_retry;
      return;
    }
    for (auto& r : batch) {
      loaded_upto_ = std::max(loaded_upto_, r.seq);
      if (open_.contains(r.id)) continue;  // stored by a commit whose completion is on its way
      if (finishing_.contains(r.id)) continue;  // ended by a change on its way to the journal
      entry& e = open_[r.id];
      e.seq = r.seq;
      e.service = std::move(r.service);
      e.attempts = r.attempts;
      e.expires_at = r.expires_at;
      track_ttl(r.id, e);
      make_waiting(r.id, e, time_point::min(), now);
    }
    complete_ = *done;
    if (batch.empty() && !complete_) {
      retry_read_ = now + read_retry;  // nothing came, yet more is said to wait: do not spin
      return;
    }
  }
}

void server_machine::sweep(time_point now) {
  // One page at a time: the next is listed once this one's removals are durable, so none is
  // listed twice. Other commits do not hold it up (a removal of a request closed meanwhile finds
  // nothing to remove), so retention keeps up under any load.
  if (now < next_sweep_ || removals_pending_ != 0) return;
  // Services nothing waits for, whose answer is stale anyway, are forgotten.
  std::erase_if(services_, [&](const auto& kv) {
    const service_state& svc = kv.second;
    return svc.ready.empty() && svc.in_flight == 0 && svc.what != service_state::known::asking &&
           now - svc.checked >= s_.service_check_interval;
  });
  auto due = store_.due_removals(s_.page);
  if (!due) {
    ++stats_.store_errors;
    next_sweep_ = now + read_retry;
    return;
  }
  bool queued = false;
  for (auto& d : *due) {
    if (open_.contains(d.id)) continue;
    queue_change({.kind = change_kind::removed, .id = d.id, .index = std::move(d.index)},
                 {.kind = change_kind::removed, .id = d.id});
    ++removals_pending_;
    queued = true;
  }
  // A full page: more are due, taken once these are durable. A full page with nothing to remove
  // would be listed again as it is: that waits an interval rather than spinning.
  next_sweep_ = due->size() >= s_.page && queued ? now : now + s_.sweep_interval;
}

void server_machine::give_up(const uuid& id, entry& e, std::string reason, bool by_ttl) {
  unschedule(id, e, phase::finishing);
  ++stats_.given_up;
  if (by_ttl) ++stats_.expired;
  queue_change({.kind = change_kind::given_up, .id = id, .seq = e.seq, .attempts = e.attempts, .reason = std::move(reason)},
               {.kind = change_kind::given_up, .id = id});
}

void server_machine::make_waiting(const uuid& id, entry& e, time_point at, time_point now) {
  e.at = phase::waiting;
  if (at <= now) {
    e.not_before = time_point::min();
    add_ready(id, e);
  } else {
    e.not_before = at;
    delayed_.emplace(at, id);
  }
}

// Takes `e` out of whatever schedule holds it (waiting, delayed, in flight) and puts it in `to`.
void server_machine::unschedule(const uuid& id, entry& e, phase to) {
  switch (e.at) {
    case phase::waiting:
      if (e.not_before == time_point::min()) {
        remove_ready(id, e);
      } else {
        delayed_.erase({e.not_before, id});
      }
      break;
    case phase::in_flight:
      io_.cancel(e.dispatch);
      dispatches_.erase(e.dispatch);
      deadlines_.erase({e.deadline, id});
      --in_flight_;
      if (const auto svc = services_.find(e.service); svc != services_.end() && svc->second.in_flight > 0)
        --svc->second.in_flight;
      break;
    case phase::finishing: break;
  }
  e.at = to;
  e.not_before = time_point::min();
  if (to == phase::finishing && e.expires_at != time_point::max()) {
    ttls_.erase({e.expires_at, id});
    e.expires_at = time_point::max();
  }
}

void server_machine::track_ttl(const uuid& id, const entry& e) {
  if (e.expires_at != time_point::max()) ttls_.emplace(e.expires_at, id);
}

void server_machine::forget(const uuid& id) {
  const auto it = open_.find(id);
  if (it == open_.end()) return;
  unschedule(id, it->second, phase::finishing);
  drop_body(it->second);
  open_.erase(it);
}

void server_machine::drop_body(entry& e) noexcept {
  body_bytes_ -= e.body.byte_size();
  e.body.clear();
}

bool server_machine::cache_room(std::size_t bytes) const noexcept {
  return body_bytes_ + reply_bytes_ + bytes <= s_.cache_bytes;
}

// Keeps a stored reply for titanic.reply; the oldest go first when the cache is full.
void server_machine::cache_reply(const uuid& id, message&& frames) {
  const std::size_t bytes = frames.byte_size();
  if (bytes > s_.cache_bytes) return;
  uncache_reply(id);
  while (!cache_room(bytes) && !reply_order_.empty()) uncache_reply(reply_order_.front());
  if (!cache_room(bytes)) return;  // request bodies fill it
  reply_order_.push_back(id);
  reply_bytes_ += bytes;
  replies_.emplace(id, cached_reply{std::move(frames), std::prev(reply_order_.end())});
}

void server_machine::uncache_reply(const uuid& id) noexcept {
  const auto it = replies_.find(id);
  if (it == replies_.end()) return;
  reply_bytes_ -= it->second.frames.byte_size();
  reply_order_.erase(it->second.order);
  replies_.erase(it);
}

time_point server_machine::backoff(std::uint32_t n, time_point now) const {
  auto d = s_.retry_base;
  for (std::uint32_t i = 1; i < n && d < s_.retry_max; ++i) d *= 2;
  return now + std::min(d, s_.retry_max);
}

server_stats server_machine::stats() const noexcept {
  server_stats s = stats_;
  s.open = open_.size();
  s.in_flight = in_flight_;
  s.waiting_in_journal = complete_ ? 0 : 1;
  return s;
}

}  // namespace fabric::tsp
