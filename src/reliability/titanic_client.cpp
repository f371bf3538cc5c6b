// The Titanic (9/TSP) clients: the synchronous one over mdp::client, and the asynchronous one
// over mdp::async_client that follows each request from post to reply by itself.
#include <fabric/titanic_client.hpp>

#include "reliability/mdp_peer.hpp"
#include "reliability/tsp.hpp"

#include <fabric/error.hpp>

#include <algorithm>
#include <deque>
#include <map>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

namespace fabric::titanic {
namespace {

using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

constexpr std::chrono::milliseconds max_timeout = 24h;
constexpr std::chrono::milliseconds max_poll_interval = 1h;
constexpr std::uint32_t max_retries = 1000;
constexpr std::string_view mmi_service = "mmi.service";

tsp::uuid to_uuid(const request_id& id) noexcept { return tsp::uuid{id.bytes}; }
request_id from_uuid(const tsp::uuid& u) noexcept { return request_id{u.bytes}; }

void require_broker(const std::string& endpoint, const char* who) {
  if (endpoint.empty())
    throw error(errc::invalid_argument,
                std::string(who) + ": options.broker must name the broker's endpoint");
}

void check_common(std::chrono::milliseconds timeout, std::uint32_t retries,
                  std::chrono::milliseconds poll, std::chrono::milliseconds poll_max,
                  key_mode keys, const socket_options& socket, const std::string& who,
                  const char* timeout_name) {
  mdp::peer::check_range(timeout, 1ms, max_timeout, who + ": options." + timeout_name);
  if (retries > max_retries)
    throw error(errc::invalid_argument, who + ": options.retries must be at most 1000");
  mdp::peer::check_range(poll, 1ms, max_poll_interval, who + ": options.poll_interval");
  mdp::peer::check_range(poll_max, 1ms, max_poll_interval, who + ": options.poll_interval_max");
  if (poll > poll_max)
    throw error(errc::invalid_argument,
                who + ": options.poll_interval must not exceed options.poll_interval_max");
  if (keys != key_mode::automatic && keys != key_mode::keyed && keys != key_mode::plain)
    throw error(errc::invalid_argument, who + ": options.keys is not a key_mode");
  mdp::peer::check_identity_prefix(socket, who.c_str());
}

// Throws unless `service` and `body` make a request the grammar allows, before anything is
// consumed, so that a refused body is left with the caller.
void check_request(std::string_view service, const message& body, const char* who) {
  const bool name_ok = !service.empty() && service.size() <= tsp::max_service_size &&
                       std::all_of(service.begin(), service.end(),
                                   [](char c) { return c >= 0x21 && c <= 0x7E; });
  if (!name_ok)
    throw error(errc::invalid_argument,
                std::string(who) + ": a service name is 1..255 characters of 0x21..0x7E");
  if (body.empty() || body.size() > tsp::max_body_frames)
    throw error(errc::invalid_argument,
                std::string(who) + ": a request body is 1..1024 frames");
}

// A fresh idempotency key: 16 octets, time-ordered then random (a version 7 UUID's), so that the
// server's table of keys grows at its end rather than one random page per request.
std::string draw_key() {
  const auto u = tsp::uuid::ordered();
  return std::string(reinterpret_cast<const char*>(u.bytes.data()), u.bytes.size());
}

// The request body for titanic.request or titanic.keyed-request; `body` is consumed.
message request_body(const std::string& key, std::string_view service, message&& body) {
  message out;
  if (key.empty())
    tsp::write_request(out, service, std::move(body));
  else
    tsp::write_keyed_request(out, key, service, std::move(body));
  return out;
}

message uuid_body(const request_id& id) {
  message out;
  tsp::write_uuid_request(out, to_uuid(id));
  return out;
}

// What a post's answer means: the id, or the error it maps to.
result<request_id> post_outcome(const tsp::parsed_reply& p) {
  if (!p) return errc::malformed;
  switch (p.code) {
    case tsp::status::ok: return from_uuid(p.id);
    case tsp::status::unknown: return errc::invalid_argument;
    case tsp::status::error: return errc::io_error;
    case tsp::status::pending: break;
  }
  return errc::protocol_error;
}

// titanic.reply's answer as a reply; the reply frames are moved out of `answer`.
reply reply_of(const tsp::parsed_reply& p, message& answer) {
  reply out;
  switch (p.code) {
    case tsp::status::ok: {
      out.state = reply_state::ready;
      const auto first = static_cast<std::size_t>(p.body.data() - answer.frames().data());
      for (std::size_t i = first; i < answer.size(); ++i) out.body.push_back(std::move(answer[i]));
      break;
    }
    case tsp::status::pending: out.state = reply_state::pending; break;
    case tsp::status::unknown: out.state = reply_state::unknown; break;
    case tsp::status::error:
      out.state = reply_state::failed;
      out.reason = std::string(p.text);
      break;
  }
  return out;
}

bool probe_says_offered(const message& answer) {
  return !answer.empty() && answer.view(0) == "200";
}

}  // namespace

std::string to_string(const request_id& id) { return tsp::to_string(to_uuid(id)); }

std::optional<request_id> parse_request_id(std::string_view text) noexcept {
  const auto u = tsp::parse_uuid(text);
  if (!u) return std::nullopt;
  return from_uuid(*u);
}

// ---------------------------------------------------------------------------------------------
// client

struct client::impl {
  impl(context& ctx, client_options o) : options(std::move(o)), mdp(ctx, validated(options)) {
    if (options.keys == key_mode::keyed) keyed = true;
    if (options.keys == key_mode::plain) keyed = false;
  }

  static mdp::client_options validated(const client_options& o) {
    require_broker(o.broker, "titanic::client");
    check_common(o.timeout, o.retries, o.poll_interval, o.poll_interval_max, o.keys, o.socket,
                 "titanic::client", "timeout");
    mdp::client_options m;
    m.broker = o.broker;
    m.failover = o.failover;
    m.timeout = o.timeout;
    m.retries = o.retries;
    m.correlate = o.correlate;
    m.socket = o.socket;
    return m;
  }

  // One Majordomo call; counts a silent broker.
  result<message> ask(std::string_view service, message&& body) {
    auto r = mdp.request(service, std::move(body));
    if (r.is(errc::timeout)) ++stats.timeouts;
    return r;
  }

  result<void> decide_keys() {
    if (keyed) return {};
    auto r = ask(mmi_service, message(tsp::keyed_request_service));
    if (!r) return r.error();
    ++stats.probes;
    keyed = probe_says_offered(*r);
    return {};
  }

  result<request_id> post(std::string_view service, message&& body) {
    check_request(service, body, "titanic::client::post");
    if (auto d = decide_keys(); !d) return d.error();
    const std::string key = *keyed ? draw_key() : std::string();
    ++stats.posts;
    if (*keyed) ++stats.keyed;
    auto r = ask(*keyed ? tsp::keyed_request_service : tsp::request_service,
                 request_body(key, service, std::move(body)));
    if (!r) return r.error();
    const auto parsed = tsp::parse_request_reply(*r);
    auto out = post_outcome(parsed);
    if (!parsed) ++stats.malformed;
    else if (out) ++stats.posted;
    else ++stats.refused;
    return out;
  }

  result<reply> poll(const request_id& id) {
    auto r = ask(tsp::reply_service, uuid_body(id));
    if (!r) return r.error();
    const auto parsed = tsp::parse_reply_reply(*r);
    if (!parsed) {
      ++stats.malformed;
      return errc::malformed;
    }
    ++stats.polls;
    auto out = reply_of(parsed, *r);
    if (out.state == reply_state::ready) ++stats.ready;
    if (out.state == reply_state::failed) ++stats.failed;
    return out;
  }

  result<reply> wait(const request_id& id, std::chrono::milliseconds timeout) {
    if (timeout < 0ms) throw error(errc::invalid_argument, "titanic::client::wait: negative timeout");
    const auto deadline = clock::now() + std::min(timeout, mdp::peer::longest_wait);
    auto pause = options.poll_interval;
    for (;;) {
      auto r = poll(id);
      if (!r || r->state != reply_state::pending) return r;
      const auto now = clock::now();
      if (now >= deadline) return errc::timeout;
      std::this_thread::sleep_for(std::min<clock::duration>(pause, deadline - now));
      pause = std::min(pause * 2, options.poll_interval_max);
    }
  }

  result<void> close(const request_id& id) {
    auto r = ask(tsp::close_service, uuid_body(id));
    if (!r) return r.error();
    const auto parsed = tsp::parse_close_reply(*r);
    if (!parsed) {
      ++stats.malformed;
      return errc::malformed;
    }
    ++stats.closes;
    switch (parsed.code) {
      case tsp::status::ok:
      case tsp::status::unknown: return {};
      case tsp::status::error: return errc::io_error;
      case tsp::status::pending: break;
    }
    return errc::protocol_error;
  }

  result<reply> call(std::string_view service, message&& body, std::chrono::milliseconds timeout) {
    if (timeout < 0ms) throw error(errc::invalid_argument, "titanic::client::call: negative timeout");
    const auto deadline = clock::now() + std::min(timeout, mdp::peer::longest_wait);
    auto id = post(service, std::move(body));
    if (!id) return id.error();
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(
        std::max<clock::duration>(deadline - clock::now(), clock::duration::zero()));
    // wait() reports a request still pending at the deadline and a silent broker alike as
    // errc::timeout; only in the first case is a close worth sending (only this call knows the
    // id), and only then has the count of silent calls not moved.
    const auto silent_before = stats.timeouts;
    auto r = wait(*id, left);
    if (r && r->state == reply_state::unknown) return r;
    if (r || (r.is(errc::timeout) && stats.timeouts == silent_before)) (void)close(*id);
    return r;
  }

  client_options options;
  mdp::client mdp;
  std::optional<bool> keyed;
  client_stats stats{};
};

client::client(context& ctx, client_options options)
    : impl_(std::make_unique<impl>(ctx, std::move(options))) {}
client::~client() = default;
client::client(client&&) noexcept = default;
client& client::operator=(client&&) noexcept = default;

result<request_id> client::post(std::string_view service, message&& body) {
  return impl_->post(service, std::move(body));
}
result<reply> client::poll(const request_id& id) { return impl_->poll(id); }
result<reply> client::wait(const request_id& id, std::chrono::milliseconds timeout) {
  return impl_->wait(id, timeout);
}
result<void> client::close(const request_id& id) { return impl_->close(id); }
result<reply> client::call(std::string_view service, message&& body,
                           std::chrono::milliseconds timeout) {
  return impl_->call(service, std::move(body), timeout);
}
std::optional<bool> client::keyed() const noexcept { return impl_->keyed; }
const client_stats& client::stats() const noexcept { return impl_->stats; }
const mdp::client_stats& client::transport_stats() const noexcept { return impl_->mdp.stats(); }
const client_options& client::options() const noexcept { return impl_->options; }

// ---------------------------------------------------------------------------------------------
// async_client

struct async_client::impl {
  enum class phase : std::uint8_t { awaiting_probe, posting, polling };
  enum class call_kind : std::uint8_t { probe, post, poll, close };

  struct entry {
    phase at = phase::awaiting_probe;
    std::string key;        // empty for a plain post
    std::string service;
    message body;           // kept until stored, for resends
    request_id id{};
    std::uint32_t attempts = 0;  // of the current call
    std::chrono::milliseconds pause{};
    std::optional<clock::time_point> due;  // when scheduled: the key in `schedule`
  };

  struct call {
    call_kind kind = call_kind::probe;
    std::uint64_t token = 0;
  };

  impl(context& ctx, async_client_options o) : options(std::move(o)), mdp(ctx, validated(options)) {
    if (options.keys == key_mode::keyed) keyed = true;
    if (options.keys == key_mode::plain) keyed = false;
  }

  static mdp::async_client_options validated(const async_client_options& o) {
    require_broker(o.broker, "titanic::async_client");
    check_common(o.call_timeout, o.retries, o.poll_interval, o.poll_interval_max, o.keys,
                 o.socket, "titanic::async_client", "call_timeout");
    if (o.max_outstanding < 1 || o.max_outstanding > 1'000'000)
      throw error(errc::invalid_argument,
                  "titanic::async_client: options.max_outstanding must be between 1 and 1000000");
    for (const auto& ep : o.failover)
      if (ep.empty())
        throw error(errc::invalid_argument, "titanic::async_client: options.failover holds an empty endpoint");
    mdp::peer::check_range(o.failover_after, 1ms, max_timeout, "titanic::async_client: options.failover_after");
    mdp::async_client_options m;
    m.broker = o.broker;
    m.failover = o.failover;
    m.failover_after = o.failover_after;
    m.correlate = o.correlate;
    m.probe_timeout = o.call_timeout;
    // Room for a poll or close per request and the probe, so that our own bound is the one met.
    m.max_outstanding = o.max_outstanding * 2 + 1;
    m.request_expiry = o.call_timeout;
    m.socket = o.socket;
    return m;
  }

  // --- sending --------------------------------------------------------------------------------

  result<void> send_call(call_kind kind, std::uint64_t token, std::string_view service,
                         message&& body) {
    auto r = mdp.send(service, std::move(body));
    if (!r) return r.error();
    calls[*r] = call{kind, token};
    return {};
  }

  result<void> send_probe() {
    auto r = send_call(call_kind::probe, 0, mmi_service, message(tsp::keyed_request_service));
    if (r) probing = true;
    return r;
  }

  result<void> send_post(std::uint64_t token, entry& e) {
    e.at = phase::posting;
    const bool with_key = *keyed;
    if (!with_key) e.key.clear();
    return send_call(call_kind::post, token,
                     with_key ? tsp::keyed_request_service : tsp::request_service,
                     request_body(e.key, e.service, e.body.clone()));
  }

  result<void> send_poll(std::uint64_t token, entry& e) {
    return send_call(call_kind::poll, token, tsp::reply_service, uuid_body(e.id));
  }

  void send_close(const request_id& id) {
    if (send_call(call_kind::close, 0, tsp::close_service, uuid_body(id))) ++stats.closes;
  }

  // Sends the entry's current call; on back-pressure it is tried again after a pause, on any
  // other failure the request ends with that error.
  void resend(std::uint64_t token, entry& e, clock::time_point now) {
    auto r = e.at == phase::posting ? send_post(token, e) : send_poll(token, e);
    if (r) return;
    if (r.error() == make_error_code(errc::back_pressure)) {
      plan(token, e, now + options.poll_interval);
      return;
    }
    finish_error(token, e, r.error());
  }

  void plan(std::uint64_t token, entry& e, clock::time_point when) {
    e.due = when;
    schedule.emplace(when, token);
  }

  // --- completions ----------------------------------------------------------------------------

  completion& push(std::uint64_t token, event what) {
    auto& c = done.emplace_back();
    c.token = token;
    c.what = what;
    return c;
  }

  void finish_error(std::uint64_t token, entry& e, std::error_code ec) {
    auto& c = push(token, event::error);
    c.id = e.at == phase::polling ? e.id : request_id{};
    c.error = ec;
    ++stats.errors;
    forget(token);
  }

  void forget(std::uint64_t token) {
    auto it = entries.find(token);
    if (it == entries.end()) return;
    if (it->second.due) {
      auto [lo, hi] = schedule.equal_range(*it->second.due);
      for (auto s = lo; s != hi; ++s)
        if (s->second == token) {
          schedule.erase(s);
          break;
        }
    }
    entries.erase(it);
  }

  // --- answers --------------------------------------------------------------------------------

  void on_answer(mdp::async_client::reply& rep, clock::time_point now) {
    auto c = calls.find(rep.id);
    if (c == calls.end()) return;
    const call what = c->second;
    calls.erase(c);
    const bool expired = rep.status == mdp::async_client::reply_status::expired;
    switch (what.kind) {
      case call_kind::close: return;
      case call_kind::probe: return on_probe(rep, expired);
      case call_kind::post:
      case call_kind::poll: break;
    }
    auto it = entries.find(what.token);
    if (it == entries.end()) return;
    entry& e = it->second;
    if (expired) {
      if (e.attempts >= options.retries) return finish_error(what.token, e, errc::timeout);
      ++e.attempts;
      ++stats.resends;
      return resend(what.token, e, now);
    }
    e.attempts = 0;
    if (what.kind == call_kind::post) on_post_answer(what.token, e, rep.body, now);
    else on_poll_answer(what.token, e, rep.body, now);
  }

  void on_probe(mdp::async_client::reply& rep, bool expired) {
    probing = false;
    const auto now = clock::now();
    if (expired) {
      if (probe_attempts < options.retries) {
        ++probe_attempts;
        ++stats.resends;
        if (send_probe()) return;
      }
      probe_attempts = 0;
      std::vector<std::uint64_t> waiting;
      for (auto& [token, e] : entries)
        if (e.at == phase::awaiting_probe) waiting.push_back(token);
      for (auto token : waiting) finish_error(token, entries.at(token), errc::timeout);
      return;
    }
    probe_attempts = 0;
    keyed = probe_says_offered(rep.body);
    for (auto& [token, e] : entries)
      if (e.at == phase::awaiting_probe) {
        if (*keyed) ++stats.keyed;
        e.at = phase::posting;
        plan(token, e, now);  // sent from the schedule, so a failure can end the entry safely
      }
  }

  void on_post_answer(std::uint64_t token, entry& e, const message& answer, clock::time_point now) {
    const auto parsed = tsp::parse_request_reply(answer);
    if (!parsed) ++stats.malformed;
    auto id = post_outcome(parsed);
    if (!id) return finish_error(token, e, id.error());
    ++stats.posted;
    e.id = *id;
    e.at = phase::polling;
    e.body.clear();
    e.key.clear();
    e.pause = options.poll_interval;
    push(token, event::posted).id = e.id;
    plan(token, e, now + e.pause);
  }

  void on_poll_answer(std::uint64_t token, entry& e, message& answer, clock::time_point now) {
    const auto parsed = tsp::parse_reply_reply(answer);
    if (!parsed) {
      ++stats.malformed;
      return finish_error(token, e, errc::malformed);
    }
    ++stats.polls;
    reply r = reply_of(parsed, answer);
    if (r.state == reply_state::pending) {
      e.pause = std::min(e.pause * 2, options.poll_interval_max);
      return plan(token, e, now + e.pause);
    }
    const request_id id = e.id;
    event what = event::unknown;
    if (r.state == reply_state::ready) {
      what = event::ready;
      ++stats.ready;
    } else if (r.state == reply_state::failed) {
      what = event::failed;
      ++stats.failed;
    } else {
      ++stats.unknown;
    }
    auto& c = push(token, what);
    c.id = id;
    c.body = std::move(r.body);
    c.reason = std::move(r.reason);
    forget(token);
    if (what != event::unknown && options.close_when_done) send_close(id);
  }

  // --- the work loop --------------------------------------------------------------------------

  // Takes what has arrived (or expired) and sends what is due. Returns an error only for a
  // context shut down.
  result<void> pump(clock::time_point now) {
    for (int n = 0; n < 256; ++n) {
      auto r = mdp.try_recv(scratch);
      if (!r) {
        if (r.error() == make_error_code(errc::would_block)) break;
        return r;
      }
      on_answer(scratch, now);
    }
    while (!schedule.empty() && schedule.begin()->first <= now) {
      const auto token = schedule.begin()->second;
      schedule.erase(schedule.begin());
      auto it = entries.find(token);
      if (it == entries.end()) continue;
      it->second.due.reset();
      resend(token, it->second, now);
    }
    return {};
  }

  void take(completion& out) {
    out = std::move(done.front());
    done.pop_front();
  }

  result<void> try_recv(completion& out) {
    if (done.empty()) {
      if (auto r = pump(clock::now()); !r) return r;
    }
    if (done.empty()) return errc::would_block;
    take(out);
    return {};
  }

  result<void> recv(completion& out, std::chrono::milliseconds timeout) {
    const auto deadline = clock::now() + std::clamp(timeout, 0ms, mdp::peer::longest_wait);
    for (;;) {
      if (done.empty()) {
        if (auto r = pump(clock::now()); !r) return r;
      }
      if (!done.empty()) {
        take(out);
        return {};
      }
      const auto now = clock::now();
      if (now >= deadline) return errc::timeout;
      auto until = deadline;
      if (!schedule.empty()) until = std::min(until, schedule.begin()->first);
      const auto wait = std::chrono::ceil<std::chrono::milliseconds>(
          std::max<clock::duration>(until - now, clock::duration::zero()));
      auto r = mdp.recv(scratch, wait);
      if (r) on_answer(scratch, clock::now());
      else if (!r.is(errc::timeout)) return r;
    }
  }

  result<std::uint64_t> post(std::string_view service, message&& body) {
    check_request(service, body, "titanic::async_client::post");
    if (entries.size() >= options.max_outstanding) return errc::back_pressure;
    const auto token = ++last_token;
    entry e;
    e.service = std::string(service);
    e.key = keyed.value_or(true) ? draw_key() : std::string();
    e.body = std::move(body);
    if (keyed) {
      if (auto r = send_post(token, e); !r) {
        body = std::move(e.body);
        return r.error();
      }
      if (*keyed) ++stats.keyed;
    } else if (!probing) {
      if (auto r = send_probe(); !r) {
        body = std::move(e.body);
        return r.error();
      }
    }
    entries.emplace(token, std::move(e));
    ++stats.posts;
    return token;
  }

  std::optional<clock::time_point> next_deadline() const noexcept {
    auto t = mdp.next_deadline();
    if (!done.empty()) return clock::now();
    if (!schedule.empty() && (!t || schedule.begin()->first < *t)) t = schedule.begin()->first;
    return t;
  }

  async_client_options options;
  mdp::async_client mdp;
  std::optional<bool> keyed;
  bool probing = false;
  std::uint32_t probe_attempts = 0;
  std::uint64_t last_token = 0;
  std::unordered_map<std::uint64_t, entry> entries;
  std::unordered_map<std::uint64_t, call> calls;  // by the Majordomo client's request id
  std::multimap<clock::time_point, std::uint64_t> schedule;
  std::deque<completion> done;
  mdp::async_client::reply scratch;
  async_client_stats stats{};
};

async_client::async_client(context& ctx, async_client_options options)
    : impl_(std::make_unique<impl>(ctx, std::move(options))) {}
async_client::~async_client() = default;
async_client::async_client(async_client&&) noexcept = default;
async_client& async_client::operator=(async_client&&) noexcept = default;

result<std::uint64_t> async_client::post(std::string_view service, message&& body) {
  return impl_->post(service, std::move(body));
}
result<void> async_client::recv(completion& out, std::chrono::milliseconds timeout) {
  return impl_->recv(out, timeout);
}
result<async_client::completion> async_client::recv(std::chrono::milliseconds timeout) {
  completion out;
  if (auto r = impl_->recv(out, timeout); !r) return r.error();
  return out;
}
result<void> async_client::try_recv(completion& out) { return impl_->try_recv(out); }
std::size_t async_client::outstanding() const noexcept { return impl_->entries.size(); }
std::optional<async_client::clock::time_point> async_client::next_deadline() const noexcept {
  return impl_->next_deadline();
}
std::optional<bool> async_client::keyed() const noexcept { return impl_->keyed; }
const fabric::socket& async_client::socket() const noexcept { return impl_->mdp.socket(); }
std::uint64_t async_client::socket_generation() const noexcept { return impl_->mdp.socket_generation(); }
const std::string& async_client::endpoint() const noexcept { return impl_->mdp.endpoint(); }
const async_client_stats& async_client::stats() const noexcept { return impl_->stats; }
const mdp::async_client_stats& async_client::transport_stats() const noexcept { return impl_->mdp.stats(); }
const async_client_options& async_client::options() const noexcept { return impl_->options; }

}  // namespace fabric::titanic
