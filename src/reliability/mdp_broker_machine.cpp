// The Majordomo broker's state machine (see mdp_broker.hpp for the model).
#include "reliability/mdp_broker.hpp"
#include "reliability/mdp_broker_state.hpp"

#include "core/byte_order.hpp"
#include "reliability/mdp.hpp"

#include <fabric/error.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <limits>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace fabric::mdp {

namespace {

constexpr std::string_view mmi_services = "mmi.services";
constexpr std::string_view mmi_stats = "mmi.stats";
// The JSON documents stop listing services past this size, so that a service table filled with
// junk names cannot turn each small MMI request into a megabyte reply.
constexpr std::size_t max_json_bytes = 64 * 1024;
// Log lines per tick; past it lines are counted, and the count logged at the next tick.
constexpr std::size_t log_budget = 100;
// Connections whose refused READY was answered in the current heartbeat interval; past it, a
// refusal is counted but not answered.
constexpr std::size_t max_refused_tracked = 4096;
constexpr std::chrono::milliseconds min_tick{10};
constexpr std::chrono::hours max_interval{24};
constexpr std::chrono::hours max_expiry{24 * 30};


using json = nlohmann::ordered_json;  // keys in the order written: the documents' stated layout

// Compact JSON text. A service name is whatever bytes a worker sent: a byte that is not
// well-formed UTF-8 becomes U+FFFD, so the document stays valid JSON and nothing throws.
std::string json_text(const json& doc) { return doc.dump(-1, ' ', false, json::error_handler_t::replace); }

}  // namespace

std::string printable_id(std::string_view id) {
  // Routing ids are often binary (libzmq's are 5 bytes starting with 0x00): show them as hex.
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(id.size() * 2);
  for (const char ch : id) {
    const auto c = static_cast<unsigned char>(ch);
    out.push_back(hex[c >> 4]);
    out.push_back(hex[c & 15]);
  }
  return out;
}

std::string to_json(const broker_stats& s) {
  json doc = {{"requests", s.requests},
              {"replies", s.replies},
              {"mmi_requests", s.mmi_requests},
              {"malformed", s.malformed},
              {"protocol_errors", s.protocol_errors},
              {"workers_registered", s.workers_registered},
              {"workers_expired", s.workers_expired},
              {"workers_departed", s.workers_departed},
              {"requeued", s.requeued},
              {"expired", s.expired},
              {"rejected", s.rejected},
              {"poisoned", s.poisoned},
              {"undeliverable", s.undeliverable},
              {"over_budget", s.over_budget},
              {"late_replies", s.late_replies},
              {"services_dropped", s.services_dropped},
              {"evicted", s.evicted},
              {"workers_refused", s.workers_refused},
              {"refusals_unanswered", s.refusals_unanswered},
              {"not_active", s.not_active},
              {"log_lines_suppressed", s.log_lines_suppressed},
              {"workers", s.workers},
              {"busy_workers", s.busy_workers},
              {"in_flight", s.in_flight},
              {"in_flight_bytes", s.in_flight_bytes},
              {"queued", s.queued},
              {"queued_bytes", s.queued_bytes},
              {"outbound_bytes", s.outbound_bytes}};
  // Services are listed while the text so far (everything before them, `,"services":[`, and the
  // entries with their commas) is under max_json_bytes; the rest are left out, and said to be.
  constexpr std::string_view services_open = R"(,"services":[)";
  std::size_t size = json_text(doc).size() - 1 + services_open.size();
  json services = json::array();
  bool truncated = false;
  for (const auto& svc : s.services) {
    if (size >= max_json_bytes) {
      truncated = true;
      break;
    }
    json entry = {{"name", svc.name},
                  {"workers", svc.workers},
                  {"idle_workers", svc.idle_workers},
                  {"queued", svc.queued},
                  {"requests", svc.requests},
                  {"replies", svc.replies},
                  {"expired", svc.expired},
                  {"rejected", svc.rejected}};
    size += json_text(entry).size() + (services.empty() ? 0 : 1);
    services.push_back(std::move(entry));
  }
  doc["services"] = std::move(services);
  if (truncated) doc["services_truncated"] = true;
  return json_text(doc);
}

broker_machine::broker_machine(const broker_options& options, broker_sink& sink, time_point now)
    : options_(options), sink_(sink) {
  if (options_.heartbeat_interval.count() <= 0)
    throw error(errc::invalid_argument, "majordomo: heartbeat_interval must be positive");
  if (options_.liveness == 0) throw error(errc::invalid_argument, "majordomo: liveness must be >= 1");
  if (options_.request_expiry.count() < 0 || options_.service_idle_timeout.count() < 0)
    throw error(errc::invalid_argument, "majordomo: expiry times must not be negative");
  if (options_.max_queued_per_service == 0 || options_.max_queued_total == 0 ||
      options_.max_services == 0 || options_.max_workers == 0 || options_.max_dispatches == 0 ||
      options_.max_worker_credit == 0 || options_.max_worker_credit > 100000)
    throw error(errc::invalid_argument, "majordomo: queue, table and dispatch bounds must be >= 1");
  if (options_.max_return_frames > 64)
    throw error(errc::invalid_argument, "majordomo: max_return_frames must be <= 64");
  if (options_.max_total_bytes == 0 || options_.max_peer_bytes == 0)
    throw error(errc::invalid_argument,
                "majordomo: max_total_bytes and max_peer_bytes must be >= 1");
  // Upper bounds keep every deadline sum far from overflowing the clock.
  if (options_.heartbeat_interval > max_interval || options_.liveness > 1000)
    throw error(errc::invalid_argument,
                "majordomo: heartbeat_interval must be <= 24 h and liveness <= 1000");
  if (options_.request_expiry > max_expiry || options_.service_idle_timeout > max_expiry)
    throw error(errc::invalid_argument, "majordomo: expiry times must be <= 30 days");
  heartbeat_ = options_.heartbeat_interval;
  worker_ttl_ = heartbeat_ * static_cast<clock::duration::rep>(options_.liveness);
  // Tick often enough for the tightest deadline: heartbeats, and queued-request expiry (which
  // may be up to one tick late; a tiny expiry does not make the broker scan every millisecond).
  clock::duration period = heartbeat_;
  if (options_.request_expiry.count() > 0)
    period = std::min<clock::duration>(
        period, std::max<clock::duration>(options_.request_expiry, min_tick));
  period_ = period;
  next_tick_ = now + period_;
}

broker_machine::~broker_machine() = default;

bool broker_machine::logs(log_level level) const noexcept {
  return level >= options_.min_log_level && level != log_level::off;
}

void broker_machine::log(log_level level, std::string_view line) {
  if (!logs(level)) return;
  // A flood of bad peers must not turn the broker into a logger: a budget per tick.
  if (logged_this_tick_ >= log_budget) {
    ++suppressed_this_tick_;
    ++counters_.log_lines_suppressed;
    return;
  }
  ++logged_this_tick_;
  sink_.log(level, line);
}

void broker_machine::on_message(message&& m, time_point now) {
  // The views in `in` point into m's frames; moving m as a whole keeps them valid.
  const broker_input in = parse_broker_input(m, options_.max_return_frames);
  if (in.error == fault::none) {
    if (in.what == broker_input::kind::client_request)
      on_client(std::move(m), in, now);
    else
      on_worker(std::move(m), in, now);
  } else if (in.error == fault::wrong_direction) {
    // A worker's REQUEST is well-formed but out of place: answered with DISCONNECT.
    const auto it = workers_.find(in.peer);
    protocol_error(in.peer, it == workers_.end() ? nullptr : it->second.get(),
                   "REQUEST sent by a worker", now);
  } else {
    // Anything else the grammar does not allow (a REQUEST or REPLY without a body frame, an
    // 8/MMI request included) is dropped, as 7/MDP asks.
    ++counters_.malformed;
  }
}

void broker_machine::on_client(message&& m, const broker_input& in, time_point now) {
  if (!sink_.admit_request(now)) {
    ++counters_.not_active;
    return;
  }
  pending p;
  p.body_at = static_cast<std::uint16_t>(in.body_at);  // <= 67: max_return_frames <= 64
  p.enqueued = now;
  p.m = std::move(m);
  p.bytes = p.m.byte_size();
  const std::string_view name = p.service();
  if (is_mmi(name)) {
    ++counters_.mmi_requests;
    const std::string copy(name);
    answer_mmi(std::move(p), copy, now);
    return;
  }
  service* s = find_or_create_service(name, now, false);
  if (s == nullptr) {
    ++counters_.rejected;
    return;
  }
  s->last_active = now;
  if (s->unserved) touch_unserved(*s);
  const auto refuse_request = [&](std::string_view why) {
    ++counters_.rejected;
    ++s->counters.rejected;
    if (logs(log_level::debug))
      log(log_level::debug, "request for '" + s->name + "' dropped: " + std::string(why));
  };
  if (!fits(p.client(), p.bytes)) {
    ++counters_.over_budget;
    return refuse_request("byte budget spent (max_total_bytes or max_peer_bytes)");
  }
  p.serial = ++last_serial_;
  // Charged to its client from here until it is answered or dropped.
  charge(p);
  if (s->queue.empty() && s->idle_head != nullptr) {
    const bool given = dispatch(*s, p, now);
    if (given) {
      ++counters_.requests;
      ++s->counters.requests;
    }
    // Workers found dead on the way give their requests back only now, so that they queue
    // ahead of this one and nothing moves under dispatch().
    settle_displaced(now);
    if (given) {
      drain(*s, now);
      return;
    }
  }
  if (s->queue.size() >= options_.max_queued_per_service || queued_ >= options_.max_queued_total) {
    discharge(p);
    return refuse_request("queue full");
  }
  ++counters_.requests;
  ++s->counters.requests;
  enqueue(*s, std::move(p), false);
}

bool broker_machine::fits(std::string_view client, std::size_t bytes) const noexcept {
  const auto it = peer_bytes_.find(client);
  const std::size_t peer =
      (it == peer_bytes_.end() ? 0 : it->second) + sink_.outbound_bytes(client);
  const std::size_t total = queued_bytes_ + in_flight_bytes_ + sink_.outbound_bytes();
  return peer + bytes <= options_.max_peer_bytes && total + bytes <= options_.max_total_bytes;
}

void broker_machine::charge(const pending& p) {
  auto it = peer_bytes_.find(p.client());
  if (it == peer_bytes_.end()) it = peer_bytes_.emplace(std::string(p.client()), 0).first;
  it->second += p.bytes;
}

void broker_machine::discharge(const pending& p) {
  const auto it = peer_bytes_.find(p.client());
  if (it == peer_bytes_.end()) return;  // cannot happen while the books balance
  it->second -= std::min(it->second, p.bytes);
  // An account at zero is erased by the tick, so a client with one request at a time does not
  // allocate an account per request.
}

bool broker_machine::send_to_client(message&& m) {
  if (!fits(m.view(0), m.byte_size())) {
    ++counters_.undeliverable;
    ++counters_.over_budget;
    if (logs(log_level::debug))
      log(log_level::debug, "reply dropped: the client's byte budget is spent (it is not reading)");
    return false;
  }
  if (sink_.send_reply(std::move(m))) return true;
  ++counters_.undeliverable;
  if (logs(log_level::debug)) log(log_level::debug, "reply dropped: the client is gone or full");
  return false;
}

void broker_machine::answer_mmi(pending&& p, std::string_view name, time_point now) {
  (void)now;
  message body;
  if (name == mmi_service) {
    bool found = false;
    if (p.m.size() > p.body_at) {
      auto it = services_.find(p.m.view(p.body_at));
      found = it != services_.end() && it->second->workers > 0;
    }
    body.push_back(found ? mmi_found : mmi_not_found);
  } else if (name == mmi_services) {
    // Both documents are built at most once per tick, however often they are asked for.
    if (!services_json_) {
      std::vector<std::string_view> names;
      for (const auto& [key, s] : services_)
        if (s->workers > 0) names.push_back(key);
      std::sort(names.begin(), names.end());
      json list = json::array();
      std::size_t size = 1;  // "[", then each name and its comma, while under max_json_bytes
      for (std::size_t i = 0; i < names.size() && size < max_json_bytes; ++i) {
        json entry = std::string(names[i]);
        size += json_text(entry).size() + (i != 0 ? 1 : 0);
        list.push_back(std::move(entry));
      }
      services_json_ = json_text(list);
    }
    body.push_back(mmi_found);
    body.push_back(*services_json_);
  } else if (name == mmi_stats) {
    if (!stats_json_) stats_json_ = to_json(stats());
    body.push_back(mmi_found);
    body.push_back(*stats_json_);
  } else {
    body.push_back(mmi_not_implemented);
  }
  p.keep_envelope();
  for (auto& f : body) p.m.push_back(std::move(f));
  (void)send_to_client(std::move(p.m));
}

broker_machine::service* broker_machine::find_or_create_service(std::string_view name,
                                                                time_point now, bool for_worker) {
  if (auto it = services_.find(name); it != services_.end()) return it->second.get();
  if (services_.size() >= options_.max_services) {
    // A worker is worth more than a name nobody serves: make room by evicting the service with
    // no workers that clients asked for least recently (its queued requests go with it). A
    // request never evicts, so names nobody serves can never take a worker's room.
    service* victim = for_worker ? unserved_head_ : nullptr;
    if (victim == nullptr) {
      log(log_level::warning, "service table full (max_services); request or READY refused");
      return nullptr;
    }
    ++table_probes_;
    evict(*victim);
  }
  auto s = std::make_unique<service>();
  s->name.assign(name);
  s->counters.name = s->name;
  s->last_active = now;
  service* raw = s.get();
  services_.emplace(s->name, std::move(s));
  link_unserved(*raw);
  return raw;
}

void broker_machine::evict(service& s) {
  const std::size_t dropped = s.queue.size();
  if (dropped != 0) {
    for (const pending& p : s.queue) {
      queued_bytes_ -= p.bytes;
      discharge(p);
    }
    queued_ -= dropped;
    retired_ += dropped;
    counters_.evicted += dropped;
  }
  ++counters_.services_dropped;
  if (logs(log_level::info))
    log(log_level::info, "service '" + s.name + "' evicted for a worker's service" +
                             (dropped != 0 ? "; " + std::to_string(dropped) +
                                                 " queued request(s) dropped"
                                           : ""));
  forget_service(s);
}

void broker_machine::forget_service(service& s) {
  unlink_unserved(s);
  const std::string name = std::move(s.name);  // the key must outlive the lookup
  services_.erase(name);
}

void broker_machine::link_unserved(service& s) {
  s.unserved = true;
  s.unserved_next = nullptr;
  s.unserved_prev = unserved_tail_;
  (unserved_tail_ != nullptr ? unserved_tail_->unserved_next : unserved_head_) = &s;
  unserved_tail_ = &s;
}

void broker_machine::unlink_unserved(service& s) {
  if (!s.unserved) return;
  (s.unserved_prev != nullptr ? s.unserved_prev->unserved_next : unserved_head_) = s.unserved_next;
  (s.unserved_next != nullptr ? s.unserved_next->unserved_prev : unserved_tail_) = s.unserved_prev;
  s.unserved_prev = s.unserved_next = nullptr;
  s.unserved = false;
}

void broker_machine::touch_unserved(service& s) {
  if (unserved_tail_ == &s) return;
  unlink_unserved(s);
  link_unserved(s);
}

void broker_machine::on_worker(message&& m, const broker_input& in, time_point now) {
  const std::string_view id = in.peer;
  auto it = workers_.find(id);
  worker* w = it == workers_.end() ? nullptr : it->second.get();
  if (!sink_.serving(now) && in.what != broker_input::kind::reply) {
    // A node of a pair that is not active sends its workers to the active one.
    if (w != nullptr) {
      ++counters_.workers_departed;
      remove_worker(w, removal::expired, now);
    } else if (in.what == broker_input::kind::ready) {
      refuse(id, now);
    }
    return;
  }
  switch (in.what) {
    case broker_input::kind::ready: {
      if (w != nullptr) return protocol_error(id, w, "READY from a registered worker", now);
      if (is_mmi(in.service))
        return protocol_error(id, nullptr, "READY for an mmi.* service", now);
      // fabric's credit extension: the broker's cap lowers a larger announcement.
      const auto credit = static_cast<std::uint32_t>(
          std::min<std::size_t>(in.credit, options_.max_worker_credit));
      register_worker(id, in.service, credit, now);
      return;
    }
    case broker_input::kind::reply: {
      // A REPLY without a body frame never gets here (the grammar drops it), so the request
      // stays in the worker's hands until a well-formed reply, the worker's death or the
      // request's expiry.
      if (w == nullptr) return protocol_error(id, nullptr, "REPLY from an unknown worker", now);
      if (w->jobs.empty()) return protocol_error(id, w, "REPLY from a worker with no request", now);
      const std::size_t at = find_job(*w, in.client);
      if (at == w->jobs.size())
        return protocol_error(id, w, "REPLY for a request it was not given", now);
      w->expiry = now + worker_ttl_;
      service& s = *w->svc;
      pending job = std::move(w->jobs[at]);
      w->jobs.erase(w->jobs.begin() + static_cast<std::ptrdiff_t>(at));
      if (w->jobs.empty()) --busy_;
      if (job.expired) {
        // Its request was answered as expired while the worker held it: the worker did nothing
        // wrong, but the client has been told already.
        ++counters_.late_replies;
      } else {
        --in_flight_;
        in_flight_bytes_ -= job.bytes;
        discharge(job);
        ++retired_;
        // The reply travels in the request's envelope (a client-reply has the client-request's
        // shape): id | stack | "" | "MDPC01" | service, then the worker's body frames.
        job.keep_envelope();
        auto& frames = m.frames();
        for (std::size_t i = in.body_at; i < frames.size(); ++i)
          job.m.push_back(std::move(frames[i]));
        s.last_active = now;
        if (deliver(std::move(job.m))) ++s.counters.replies;
      }
      if (!w->idle) worker_idle(*w);
      drain(s, now);
      return;
    }
    case broker_input::kind::heartbeat:
      if (w == nullptr) return protocol_error(id, nullptr, "HEARTBEAT from an unknown worker", now);
      w->expiry = now + worker_ttl_;
      return;
    case broker_input::kind::disconnect:
      if (w != nullptr) {
        ++counters_.workers_departed;
        if (logs(log_level::info))
          log(log_level::info, "worker " + printable_id(id) + " of '" + w->svc->name + "' disconnected");
        remove_worker(w, removal::departed, now);
      }
      return;
    case broker_input::kind::client_request:
      break;  // on_client's
  }
}

std::size_t broker_machine::find_job(const worker& w, std::string_view address) const noexcept {
  if (w.credit == 1) return w.jobs[0].client() == address ? 0 : w.jobs.size();
  // A credit worker was given a token per request, so that replies in any order find theirs.
  if (address.size() != sizeof(std::uint64_t)) return w.jobs.size();
  const auto token = detail::load_be<std::uint64_t>(address.data());
  for (std::size_t i = 0; i < w.jobs.size(); ++i)
    if (w.jobs[i].token == token) return i;
  return w.jobs.size();
}

void broker_machine::register_worker(std::string_view id, std::string_view name,
                                     std::uint32_t credit, time_point now) {
  if (workers_.size() >= options_.max_workers) {
    log(log_level::warning, "worker table full (max_workers); READY refused");
    return refuse(id, now);
  }
  service* s = find_or_create_service(name, now, true);
  if (s == nullptr) return refuse(id, now);
  auto w = std::make_unique<worker>();
  w->id.assign(id);
  w->svc = s;
  w->credit = credit;
  w->jobs.reserve(credit);
  w->expiry = now + worker_ttl_;
  w->last_sent = now;
  worker* raw = w.get();
  workers_.emplace(w->id, std::move(w));
  if (s->workers++ == 0) unlink_unserved(*s);
  s->last_active = now;
  ++counters_.workers_registered;
  if (logs(log_level::info))
    log(log_level::info, "worker " + printable_id(id) + " ready for '" + s->name + "'" +
                             (credit > 1 ? " (credit " + std::to_string(credit) + ")" : ""));
  worker_idle(*raw);
  drain(*s, now);
}

void broker_machine::refuse(std::string_view id, time_point now) {
  // Answered with DISCONNECT at most once per heartbeat interval per connection, so a peer
  // repeating a READY that cannot be granted gets no more from the broker than it sends.
  ++counters_.workers_refused;
  auto it = refused_.find(id);
  if (it != refused_.end() && now - it->second < heartbeat_) {
    ++counters_.refusals_unanswered;
    return;
  }
  if (it != refused_.end()) {
    it->second = now;
  } else if (refused_.size() < max_refused_tracked) {
    refused_.emplace(std::string(id), now);
  } else {
    // More refused connections in one interval than are worth remembering: a flood.
    ++counters_.refusals_unanswered;
    return;
  }
  send_disconnect(id);
}

void broker_machine::send_disconnect(std::string_view id) {
  (void)sink_.send(worker_disconnect_to(id));  // best effort: the peer may already be gone
}

void broker_machine::protocol_error(std::string_view id, worker* w, std::string_view why,
                                    time_point now) {
  ++counters_.protocol_errors;
  if (logs(log_level::warning)) {
    std::string line = "worker " + printable_id(id) + ": ";
    line.append(why);
    line += "; sent DISCONNECT";
    log(log_level::warning, line);
  }
  const std::string copy(id);  // `id` may live in the worker about to be removed
  send_disconnect(copy);
  if (w != nullptr) remove_worker(w, removal::departed, now);
}

broker_machine::service* broker_machine::remove_worker(worker* w, removal how, time_point now,
                                                       bool drain_after) {
  if (how == removal::expired) send_disconnect(w->id);
  service& s = *w->svc;
  unlink_idle(*w);
  if (--s.workers == 0) link_unserved(s);
  s.last_active = now;
  std::vector<pending> jobs = std::move(w->jobs);
  if (!jobs.empty()) --busy_;
  workers_.erase(w->id);  // destroys *w
  if (jobs.empty()) return &s;
  // Back to the front of the queue, in the order they were given out. Every way of losing a
  // worker with requests in hand counts against them, a DISCONNECT included: a worker gives a
  // request back that way when its handler fails on it, and a request that fails every handler
  // must end as poison rather than circulate for ever.
  (void)how;
  for (auto it = jobs.rbegin(); it != jobs.rend(); ++it) {
    pending& job = *it;
    if (job.expired) continue;  // answered as expired already
    --in_flight_;
    in_flight_bytes_ -= job.bytes;
    if (job.dispatches >= options_.max_dispatches) {
      ++counters_.poisoned;
      ++retired_;
      discharge(job);
      if (logs(log_level::warning))
        log(log_level::warning, "request for '" + s.name + "' dropped after " +
                                    std::to_string(job.dispatches) + " workers died handling it");
      continue;
    }
    ++counters_.requeued;
    job.token = 0;
    enqueue(s, std::move(job), true);
  }
  if (drain_after) drain(s, now);
  return &s;
}

bool broker_machine::dispatch(service& s, pending& p, time_point now) {
  while (s.idle_head != nullptr) {
    worker* w = s.idle_head;
    if (now >= w->expiry) {
      // Silent too long, and the tick has not purged it yet: never hand it work.
      ++counters_.workers_expired;
      if (logs(log_level::info))
        log(log_level::info, "worker " + printable_id(w->id) + " of '" + s.name + "' expired");
      displace(*w, removal::expired);
      continue;
    }
    // A 7/MDP worker is given the client's id as the address; a credit worker a fresh token,
    // so that its replies find their request in any order. The body frames are copies that
    // share the request's bytes, so the request stays whole for a requeue.
    std::uint64_t token = 0;
    char address[sizeof token];
    std::string_view client = p.client();
    if (w->credit != 1) {
      token = ++last_token_;
      detail::store_be(token, address);
      client = std::string_view(address, sizeof address);
    }
    write_worker_request(scratch_, w->id, client,
                         std::span<frame>(p.m.frames()).subspan(p.body_at));
    if (sink_.send(std::move(scratch_))) {
      unlink_idle(*w);
      w->last_sent = now;
      ++p.dispatches;
      p.token = token;
      if (w->jobs.empty()) ++busy_;
      ++in_flight_;
      in_flight_bytes_ += p.bytes;
      w->jobs.push_back(std::move(p));
      // With credit to spare it waits again, behind the others: requests spread over workers.
      if (w->jobs.size() < w->credit) worker_idle(*w);
      return true;
    }
    // The worker is gone (or so far behind that its queue is full): forget it and try the next.
    // A credit worker may hold requests while it waits here; they are requeued by
    // settle_displaced(), once the caller has put `p` where it belongs.
    ++counters_.workers_departed;
    if (logs(log_level::info))
      log(log_level::info, "worker " + printable_id(w->id) + " of '" + s.name + "' unreachable");
    displace(*w, removal::unreachable);
  }
  return false;
}

void broker_machine::displace(worker& w, removal how) {
  unlink_idle(w);
  // The farewell goes now, in the order things happened; the removal follows without one.
  if (how == removal::expired) {
    send_disconnect(w.id);
    how = removal::departed;
  }
  displaced_.emplace_back(&w, how);
}

void broker_machine::settle_displaced(time_point now) {
  // Removing a worker requeues at the front of its service's queue; done here, with no request
  // taken out of a queue, the requeued ones simply go ahead of everything waiting.
  while (!displaced_.empty()) {
    const auto [w, how] = displaced_.back();
    displaced_.pop_back();
    remove_worker(w, how, now, false);
  }
}

void broker_machine::drain(service& s, time_point now) {
  while (!s.queue.empty() && s.idle_head != nullptr) {
    // Out of the queue before dispatching, so that nothing dispatch() requeues can take its
    // place; back at the front if no worker took it.
    pending p = std::move(s.queue.front());
    s.queue.pop_front();
    --queued_;
    queued_bytes_ -= p.bytes;
    const bool given = dispatch(s, p, now);
    if (!given) enqueue(s, std::move(p), true);
    settle_displaced(now);
    if (!given) break;
  }
}

void broker_machine::enqueue(service& s, pending&& p, bool front) {
  queued_bytes_ += p.bytes;
  if (front)
    s.queue.push_front(std::move(p));
  else
    s.queue.push_back(std::move(p));
  ++queued_;
}

void broker_machine::worker_idle(worker& w) {
  service& s = *w.svc;
  w.idle = true;
  w.next = nullptr;
  w.prev = s.idle_tail;
  if (s.idle_tail != nullptr)
    s.idle_tail->next = &w;
  else
    s.idle_head = &w;
  s.idle_tail = &w;
  ++s.idle_count;
}

void broker_machine::unlink_idle(worker& w) {
  if (!w.idle) return;
  service& s = *w.svc;
  (w.prev != nullptr ? w.prev->next : s.idle_head) = w.next;
  (w.next != nullptr ? w.next->prev : s.idle_tail) = w.prev;
  w.prev = w.next = nullptr;
  w.idle = false;
  --s.idle_count;
}

bool broker_machine::deliver(message&& reply) {
  if (!send_to_client(std::move(reply))) return false;
  ++counters_.replies;
  return true;
}

void broker_machine::remove_all(std::vector<worker*>& gone, removal how, time_point now) {
  // Two phases, so a request requeued by one removal can never be handed to another worker that
  // is about to be removed too: first take them all off their idle lists, then remove them
  // without draining, then drain each service touched, once.
  for (worker* w : gone) unlink_idle(*w);
  std::vector<service*> touched;
  for (worker* w : gone) {
    service* s = remove_worker(w, how, now, false);
    if (std::find(touched.begin(), touched.end(), s) == touched.end()) touched.push_back(s);
  }
  for (service* s : touched) drain(*s, now);
  gone.clear();
}

void broker_machine::on_tick(time_point now) {
  if (suppressed_this_tick_ != 0) {
    const std::size_t n = suppressed_this_tick_;
    logged_this_tick_ = 0;
    suppressed_this_tick_ = 0;
    log(log_level::warning, std::to_string(n) + " log line(s) suppressed in the last tick");
  }
  logged_this_tick_ = 0;
  std::erase_if(refused_, [&](const auto& kv) { return now - kv.second >= heartbeat_; });
  std::erase_if(peer_bytes_, [](const auto& kv) { return kv.second == 0; });
  services_json_.reset();
  stats_json_.reset();

  std::vector<worker*> gone;
  if (!workers_.empty() && !sink_.serving(now)) {
    // This node of a pair stopped being active: its workers go to the one that is.
    for (const auto& [id, w] : workers_) gone.push_back(w.get());
    counters_.workers_departed += gone.size();
    log(log_level::warning, "not the active node of the pair: " + std::to_string(gone.size()) +
                                " worker(s) sent DISCONNECT");
    remove_all(gone, removal::expired, now);
  }

  // Purge every worker that has been silent too long, wherever it sits in the table.
  for (const auto& [id, w] : workers_) {
    if (now < w->expiry) continue;
    gone.push_back(w.get());
    ++counters_.workers_expired;
    if (logs(log_level::info))
      log(log_level::info, "worker " + printable_id(id) + " of '" + w->svc->name + "' expired" +
                               (w->jobs.empty() ? "" : "; its requests are requeued"));
  }
  remove_all(gone, removal::expired, now);

  // Heartbeat every worker, busy or idle, that has not heard from us in half an interval. One
  // whose connection is gone is removed at once.
  for (const auto& [id, w] : workers_) {
    if (now - w->last_sent < heartbeat_ / 2) continue;
    auto r = sink_.send(worker_heartbeat_to(id));
    if (r) {
      w->last_sent = now;
    } else if (r.is(errc::peer_unreachable)) {
      gone.push_back(w.get());
      ++counters_.workers_departed;
      if (logs(log_level::info))
        log(log_level::info, "worker " + printable_id(id) + " of '" + w->svc->name + "' unreachable" +
                                 (w->jobs.empty() ? "" : "; its requests are requeued"));
    }
  }
  remove_all(gone, removal::unreachable, now);

  // Expire requests held by workers past request_expiry, as if they were queued: the worker
  // keeps the place in its credit until it answers (and its answer is dropped) or is removed.
  const bool expiring = options_.request_expiry.count() > 0;
  const clock::duration expiry = options_.request_expiry;
  if (expiring && in_flight_ != 0) {
    for (const auto& [id, w] : workers_) {
      std::size_t gone_count = 0;
      for (pending& job : w->jobs) {
        if (job.expired || now - job.enqueued < expiry) continue;
        --in_flight_;
        in_flight_bytes_ -= job.bytes;
        discharge(job);
        ++retired_;
        job.keep_client_only();
        ++gone_count;
      }
      if (gone_count == 0) continue;
      counters_.expired += gone_count;
      w->svc->counters.expired += gone_count;
      if (logs(log_level::info))
        log(log_level::info, std::to_string(gone_count) + " request(s) for '" + w->svc->name +
                                 "' expired in the hands of worker " + printable_id(id));
    }
  }

  // Expire queued requests, and forget services nobody serves or asks for.
  for (auto it = services_.begin(); it != services_.end();) {
    service& s = *it->second;
    if (expiring && !s.queue.empty()) {
      std::size_t gone_count = 0;
      std::erase_if(s.queue, [&](const pending& p) {
        if (now - p.enqueued < expiry) return false;
        ++gone_count;
        queued_bytes_ -= p.bytes;
        discharge(p);
        return true;
      });
      if (gone_count != 0) {
        queued_ -= gone_count;
        retired_ += gone_count;
        counters_.expired += gone_count;
        s.counters.expired += gone_count;
        if (logs(log_level::info))
          log(log_level::info, std::to_string(gone_count) + " request(s) for '" + s.name +
                                   "' expired in the queue");
      }
    }
    if (s.workers == 0 && s.queue.empty() &&
        now - s.last_active >= clock::duration(options_.service_idle_timeout)) {
      ++counters_.services_dropped;
      if (logs(log_level::debug)) log(log_level::debug, "service '" + s.name + "' forgotten");
      unlink_unserved(s);
      it = services_.erase(it);
    } else {
      ++it;
    }
  }
  next_tick_ = now + period_;
}

}  // namespace fabric::mdp
