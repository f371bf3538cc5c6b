// The Majordomo clients: the synchronous Lazy Pirate client and the asynchronous client that
// keeps many requests in flight and matches replies by request id where the broker is fabric's,
// by service and order where it is not.
#include <fabric/majordomo_client.hpp>

#include "reliability/mdp.hpp"
#include "reliability/mdp_outstanding.hpp"
#include "reliability/mdp_peer.hpp"
#include "reliability/retrying_request.hpp"

#include <fabric/error.hpp>

#include <zmq.h>

#include <algorithm>
#include <cerrno>
#include <deque>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

namespace fabric::mdp {
namespace {

using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;
using peer::mdp_dealer;

constexpr std::chrono::milliseconds max_timeout = 24h;

void require_broker(const std::string& endpoint, const char* who) {
  if (endpoint.empty())
    throw error(errc::invalid_argument, std::string(who) + ": options.broker must name the broker's endpoint");
}

// Milliseconds left until `deadline`, rounded up so that a wait never ends just short of it and
// spins; 0 when it has passed.
std::chrono::milliseconds left_until(clock::time_point deadline, clock::time_point now) {
  if (deadline <= now) return 0ms;
  return std::chrono::ceil<std::chrono::milliseconds>(deadline - now);
}

// Moves the body frames of a request built by client_request_msg ("" | MDPC01 | service | body...)
// back into `body`, after a send that failed.
void restore_body(message& request, message& body) {
  constexpr std::size_t body_at = 3;
  body.clear();
  for (std::size_t i = body_at; i < request.size(); ++i) body.push_back(std::move(request[i]));
}

// Copies `from` into `to` frame by frame with zmq_msg_copy, which shares the bytes of large
// frames instead of copying them, so that each send can consume its own message.
void share_frames(message& from, message& to) {
  to.clear();
  to.reserve(from.size());
  for (frame& f : from) to.emplace_back().copy(f);
}

// The 8/MMI request whose answer tells fabric's broker, which knows the correlation extension,
// from any other: only fabric's answers it "200" and a JSON array (a fabric extension); 8/MMI has
// every other broker answer "501", and a 7/MDP broker without 8/MMI does not answer at all.
constexpr std::string_view probe_service = "mmi.services";

// Drops the leading request-id frame of a correlated reply. Returns false (malformed) when the
// first frame is not an id.
bool take_request_id(message& m, std::uint64_t& id) {
  if (m.empty() || !peer::decode_id(m.front(), id)) return false;
  m.frames().erase(m.frames().begin());
  return true;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// client

struct client::impl {
  impl(context& c, client_options o) : ctx(&c), options(std::move(o)) {
    require_broker(options.broker, "mdp::client");
    for (const auto& ep : options.failover) require_broker(ep, "mdp::client (failover)");
    peer::check_range(options.timeout, 1ms, max_timeout, "mdp::client: options.timeout");
    if (options.retries > 1000)
      throw error(errc::invalid_argument, "mdp::client: options.retries must be at most 1000");
    peer::check_identity_prefix(options.socket, "mdp::client");
    open();
  }

  ~impl() {
    if (sock) peer::close_now(*sock);
  }

  const std::string& endpoint() const noexcept {
    return current == 0 ? options.broker : options.failover[current - 1];
  }

  void open() {
    sock.emplace(*ctx, peer::with_fresh_identity(options.socket, ++sockets_made));
    sock->connect(endpoint());
  }

  // Replaces the socket by a fresh one, connected to the next broker. Returns false when the
  // context is shutting down.
  bool reopen() {
    if (sock) peer::close_now(*sock);
    sock.reset();
    current = (current + 1) % (options.failover.size() + 1);
    try {
      open();
    } catch (const error& e) {
      sock.reset();
      if (e.code() == std::error_code(ETERM, zmq_category())) return false;
      throw;
    }
    return true;
  }

  // Takes what earlier requests left behind (a duplicate reply, an answer that came after an
  // interrupted wait) so it cannot be mistaken for the next answer.
  void drain() {
    for (;;) {
      auto r = sock->try_recv(in);
      if (r) {
        ++stats.dropped;
      } else if (r.is(errc::too_large)) {
        ++stats.malformed;
      } else {
        return;
      }
    }
  }

  // What one received message means for the request `service` / `seq`.
  enum class verdict { answer, malformed, dropped };
  verdict judge(std::string_view service, std::uint64_t seq, message& reply_body) {
    if (options.correlate) {
      std::uint64_t id = 0;
      if (!take_request_id(in, id)) return verdict::malformed;
      if (id != seq) {
        // Still check the grammar, so that garbage is counted as such.
        return parse_reply_for_client(std::move(in)) ? verdict::dropped : verdict::malformed;
      }
    }
    auto r = parse_reply_for_client(std::move(in));
    if (!r) return verdict::malformed;
    if (r->service != service) return verdict::dropped;
    reply_body = std::move(r->body);
    return verdict::answer;
  }

  result<message> request(std::string_view service, message&& body) {
    message request = client_request_msg(service, std::move(body));  // throws on a bad name
    // A socket whose last request went unanswered may still receive that answer: start afresh.
    if (abandoned && !reopen()) return errc::closed;
    abandoned = true;  // until this request is answered
    ++stats.requests;
    const std::uint64_t seq = ++next_seq;
    drain();
    // Attempts, deadlines and resends follow the retrying request shared with the Lazy Pirate
    // client (retrying_request.hpp): a reply that is not the answer keeps the attempt waiting
    // for the time left.
    struct hooks final : detail::retry_hooks {
      impl& c;
      message& request;
      std::string_view service;
      std::uint64_t seq;

      hooks(impl& client, message& r, std::string_view s, std::uint64_t q)
          : c(client), request(r), service(s), seq(q) {}

      result<void> send(std::size_t attempt) override {
        if (attempt > 1) {
          ++c.stats.retries;
          if (!c.reopen()) return errc::closed;
        }
        // The last attempt sends the original; the others send copies sharing its bytes.
        message* out = &request;
        if (attempt < std::size_t{c.options.retries} + 1) {
          share_frames(request, c.outgoing);
          out = &c.outgoing;
        }
        if (c.options.correlate) {
          frame head = peer::encode_id(seq);
          return c.sock->send_with_head(head, *out, c.options.timeout);
        }
        return c.sock->send(std::move(*out), c.options.timeout);
      }

      result<std::optional<message>> wait(std::chrono::milliseconds at_most) override {
        auto r = c.sock->recv(c.in, at_most);
        if (!r) {
          // libzmq's clock is coarser than ours and may end the wait a little early: the
          // retrying request checks the deadline again.
          if (r.is(errc::timeout)) return std::optional<message>();
          if (r.is(errc::too_large)) {
            ++c.stats.malformed;
            return std::optional<message>();
          }
          return r.error();
        }
        message answer;
        switch (c.judge(service, seq, answer)) {
          case verdict::answer:
            return std::optional<message>(std::move(answer));
          case verdict::malformed:
            ++c.stats.malformed;
            break;
          case verdict::dropped:
            ++c.stats.dropped;
            break;
        }
        return std::optional<message>();
      }
    } h(*this, request, service, seq);

    auto answer = detail::retry_blocking({.timeout = options.timeout, .retries = options.retries}, h);
    if (answer) {
      ++stats.replies;
      abandoned = false;
      return answer;
    }
    if (answer.is(errc::timeout)) ++stats.failures;
    return answer;
  }

  context* ctx;
  client_options options;
  std::optional<mdp_dealer> sock;
  std::uint64_t sockets_made = 0;
  std::size_t current = 0;  // 0: options.broker; i: options.failover[i - 1]
  std::uint64_t next_seq = 0;
  bool abandoned = false;  // the socket carried a request that got no answer (or is gone)
  message in;
  message outgoing;
  client_stats stats;
};

client::client(context& ctx, client_options options)
    : impl_(std::make_unique<impl>(ctx, std::move(options))) {}
client::~client() = default;
client::client(client&&) noexcept = default;
client& client::operator=(client&&) noexcept = default;

result<message> client::request(std::string_view service, message&& body) {
  return impl_->request(service, std::move(body));
}

const client_stats& client::stats() const noexcept { return impl_->stats; }
const client_options& client::options() const noexcept { return impl_->options; }
const std::string& client::endpoint() const noexcept { return impl_->endpoint(); }

// ---------------------------------------------------------------------------------------------
// async_client

struct async_client::impl {
  // Where sending stands: holding requests until the probe's answer (correlation::automatic),
  // or sending them without or with request ids.
  enum class phase : std::uint8_t { probing, plain, correlated };
  // The probe: not needed (or answered, or given up), still to be sent, or sent and unanswered.
  enum class probe_state : std::uint8_t { none, unsent, in_flight };

  // A request send() accepted while the phase was undecided, or one to send again after a
  // failover (`again`): "" | MDPC01 | service | body...
  struct held_request {
    std::uint64_t id;
    message m;
    bool again = false;
  };

  // A sent request's frames, kept while it is outstanding so that a failover can send it again
  // (only with a failover list). `order` is the order of sending, which a failover keeps.
  struct kept_request {
    std::uint64_t order;
    std::size_t bytes;
    message m;
  };

  impl(context& c, async_client_options o)
      : ctx(&c), options(std::move(o)), sock(checked(c, options), options.socket), table(options.max_outstanding) {
    switch (options.correlate) {
      case correlation::automatic:
        now_phase = phase::probing;
        probe = probe_state::unsent;
        break;
      case correlation::plain:
        now_phase = phase::plain;
        break;
      case correlation::request_id:
        now_phase = phase::correlated;
        break;
    }
    sock.connect(options.broker);
    heard_at = clock::now();
  }

  ~impl() { peer::close_now(sock); }

  // Validates the options before the socket is made; returns `ctx` for the socket's constructor.
  static context& checked(context& ctx, const async_client_options& o) {
    require_broker(o.broker, "mdp::async_client");
    for (const auto& ep : o.failover) require_broker(ep, "mdp::async_client (failover)");
    peer::check_range(o.failover_after, 1ms, max_timeout, "mdp::async_client: options.failover_after");
    if (!o.failover.empty()) peer::check_identity_prefix(o.socket, "mdp::async_client");
    peer::check_range(o.request_expiry, 0ms, max_timeout, "mdp::async_client: options.request_expiry");
    peer::check_range(o.probe_timeout, 1ms, max_timeout, "mdp::async_client: options.probe_timeout");
    if (o.max_outstanding == 0 || o.max_outstanding > outstanding_table::max_capacity)
      throw error(errc::invalid_argument,
                  "mdp::async_client: options.max_outstanding must be between 1 and 16777216");
    if (o.correlate != correlation::automatic && o.correlate != correlation::plain &&
        o.correlate != correlation::request_id)
      throw error(errc::invalid_argument, "mdp::async_client: options.correlate is not a correlation");
    return ctx;
  }

  bool holding() const noexcept { return now_phase == phase::probing && !held.empty(); }

  // --- failover -------------------------------------------------------------------------------

  bool failing_over() const noexcept { return !options.failover.empty(); }

  const std::string& endpoint_at(std::size_t i) const noexcept {
    return i == 0 ? options.broker : options.failover[i - 1];
  }

  // When the broker's silence becomes a failover: only while something is outstanding.
  clock::time_point failover_deadline() const noexcept {
    if (!failing_over() || table.empty()) return outstanding_table::never;
    return heard_at + options.failover_after;
  }

  void keep(std::uint64_t id, message&& m) {
    std::size_t bytes = 0;
    for (const frame& f : m) bytes += f.size();
    kept.insert_or_assign(id, kept_request{next_order++, bytes, std::move(m)});
    kept_bytes += bytes;
  }

  // Forgets an outstanding request and whatever was kept to send it again.
  bool forget(std::uint64_t id) noexcept {
    if (!table.erase(id)) return false;
    if (failing_over()) {
      if (auto it = kept.find(id); it != kept.end()) {
        kept_bytes -= it->second.bytes;
        kept.erase(it);
      }
    }
    return true;
  }

  // Replaces the socket by a fresh one connected to the next endpoint, and queues every
  // outstanding request that has not expired to go out again on it, oldest first, ahead of
  // those still held. The new socket is made before the old one is closed, so a failure leaves
  // the client as it was. Returns: errc::closed when the context was shut down.
  // Throws: fabric::error naming the endpoint when it is malformed.
  result<void> fail_over(clock::time_point now) {
    const std::size_t next = (current + 1) % (options.failover.size() + 1);
    heard_at = now;  // after a failure too: the next attempt waits another failover_after
    std::optional<mdp_dealer> fresh;
    try {
      fresh.emplace(*ctx, peer::with_fresh_identity(options.socket, sockets_made + 1));
      fresh->connect(endpoint_at(next));
    } catch (const error& e) {
      if (fresh) peer::close_now(*fresh);
      if (e.code() == std::error_code(ETERM, zmq_category())) return errc::closed;
      throw;
    }
    peer::close_now(sock);
    sock = std::move(*fresh);
    ++sockets_made;
    ++generation;
    current = next;
    ++stats.failovers;

    // Nothing sent on the old socket can be answered on the new one.
    table.clear_plain();
    std::vector<std::pair<std::uint64_t, std::uint64_t>> by_order;  // (order, id)
    by_order.reserve(kept.size());
    for (const auto& [id, k] : kept) {
      const auto* e = table.find(id);
      if (e != nullptr && e->deadline > now) by_order.emplace_back(k.order, id);
    }
    std::sort(by_order.begin(), by_order.end());
    std::deque<held_request> again;
    for (const auto& [order, id] : by_order) again.push_back({id, std::move(kept.at(id).m), true});
    // Expired requests stay in the table, to be reported; their frames are not needed.
    kept.clear();
    kept_bytes = 0;
    for (auto& h : held) again.push_back(std::move(h));
    held = std::move(again);

    if (options.correlate == correlation::automatic) {
      // The new broker may not be fabric's: ask again before anything goes out.
      now_phase = phase::probing;
      probe = probe_state::unsent;
      probe_deadline = now + options.probe_timeout;
    }
    return {};
  }

  // Moves the probe along: sends it (from the first send() on), ends the wait for its answer
  // after probe_timeout, and sends the requests held for it once the phase is decided. Outside
  // send(), also fails over when the broker has been silent too long.
  // Returns: errc::closed when the context was shut down.
  result<void> advance(clock::time_point now, bool sending) {
    if (!sending && now >= failover_deadline()) {
      if (auto r = fail_over(now); !r) return r;
    }
    if (probe == probe_state::unsent && (sending || probe_deadline != outstanding_table::never)) {
      if (probe_deadline == outstanding_table::never) probe_deadline = now + options.probe_timeout;
      message body;
      body.push_back(std::string_view{});  // 7/MDP: at least one body frame
      auto r = sock.try_send(client_request_msg(probe_service, std::move(body)));
      if (r) {
        probe = probe_state::in_flight;
      } else if (r.is(errc::closed)) {
        return r;
      }  // else the socket is full or not connected yet: tried again on the next call
    }
    if (now_phase == phase::probing && now >= probe_deadline) {
      now_phase = phase::plain;  // an answer that comes later may still switch to request ids
      if (probe == probe_state::unsent) probe = probe_state::none;
    }
    if (!held.empty() && now_phase != phase::probing) return flush(now);
    return {};
  }

  // Sends the held requests, oldest first, skipping those that expired or were cancelled
  // meanwhile (a request to send again also once its deadline has passed: it is reported as
  // expired). Stops at a full socket: the rest go on a later call, and new requests queue
  // behind them so the order holds.
  result<void> flush(clock::time_point now) {
    while (!held.empty()) {
      held_request& h = held.front();
      const auto* e = table.find(h.id);
      if (e != nullptr && !(h.again && e->deadline <= now)) {
        if (auto r = transmit(h.id, h.m); !r) return r.is(errc::closed) ? r : result<void>{};
        if (h.again) ++stats.resent;
      }
      held.pop_front();
    }
    return {};
  }

  // Sends request `id` in the current phase. On failure `m` is unchanged; on success it is
  // consumed, or kept for a failover.
  result<void> transmit(std::uint64_t id, message& m) {
    if (!failing_over()) return transmit_now(id, m);
    share_frames(m, outgoing);
    auto r = transmit_now(id, outgoing);
    if (!r) {
      outgoing.clear();
      return r;
    }
    keep(id, std::move(m));
    m.clear();
    return r;
  }

  result<void> transmit_now(std::uint64_t id, message& m) {
    if (now_phase == phase::correlated) {
      frame head = peer::encode_id(id);
      return sock.try_send_with_head(head, m);
    }
    auto r = sock.try_send(std::move(m));
    if (r) table.mark_sent_plain(id);
    return r;
  }

  void hold(std::uint64_t id, message&& m) {
    // Requests that expired or were cancelled while held leave their messages behind: drop
    // those before the queue outgrows the table, so it stays within max_outstanding.
    if (held.size() >= options.max_outstanding)
      std::erase_if(held, [this](const held_request& h) { return table.find(h.id) == nullptr; });
    held.push_back({id, std::move(m)});
  }

  result<std::uint64_t> send(std::string_view service, message& body, std::chrono::milliseconds timeout) {
    // Throws on a bad name or an empty body, before anything is consumed.
    message request = client_request_msg(service, std::move(body));
    if (table.full()) {
      restore_body(request, body);
      ++stats.back_pressure;
      return errc::back_pressure;
    }
    const auto now = clock::now();
    if (auto r = advance(now, true); !r) {
      restore_body(request, body);
      return r.error();
    }
    const auto deadline = timeout == 0ms ? outstanding_table::never : now + timeout;
    if (table.empty()) heard_at = now;  // a silence only counts while something is outstanding
    const std::uint64_t id = table.insert(service, deadline);
    if (now_phase == phase::probing || !held.empty()) {
      hold(id, std::move(request));
      ++stats.sent;
      return id;
    }
    if (auto sent = transmit(id, request); !sent) {
      forget(id);
      restore_body(request, body);
      if (sent.is(errc::back_pressure)) ++stats.back_pressure;
      return sent.error();
    }
    ++stats.sent;
    return id;
  }

  // Reports the oldest request if its deadline has passed.
  bool take_expired(reply& out, clock::time_point now) {
    const auto* oldest = table.oldest();
    if (oldest == nullptr || oldest->deadline > now) return false;
    out.id = oldest->id;
    out.status = reply_status::expired;
    out.service.assign(oldest->service);
    out.body.clear();
    forget(out.id);
    ++stats.expired;
    return true;
  }

  void on_probe_answer(const message& body) {
    probe = probe_state::none;
    if (body.size() == 2 && body.view(0) == mmi_found && body.view(1).starts_with('[')) {
      now_phase = phase::correlated;
    } else if (now_phase == phase::probing) {
      now_phase = phase::plain;
    }
  }

  // Turns the message in `in` into `out` when it answers an outstanding request.
  bool accept(reply& out) {
    // A plain reply starts with the empty delimiter, a correlated one with its request id.
    const bool with_id = !in.empty() && in.front().size() != 0;
    std::uint64_t id = 0;
    if (with_id ? options.correlate == correlation::plain || !take_request_id(in, id)
                : options.correlate == correlation::request_id) {
      ++stats.malformed;
      return false;
    }
    auto r = parse_reply_for_client(std::move(in));
    if (!r) {
      ++stats.malformed;
      return false;
    }
    if (!with_id && probe == probe_state::in_flight && r->service == probe_service) {
      // The probe went out before any request, so the first answer for its service is its own.
      on_probe_answer(r->body);
      return false;
    }
    const outstanding_table::entry* e = with_id ? table.find(id) : table.oldest_plain_for(r->service);
    if (e == nullptr || e->service != r->service || e->plain == with_id) {
      ++stats.dropped;
      return false;
    }
    out.id = e->id;
    forget(out.id);
    out.status = reply_status::ok;
    out.service.assign(r->service);
    out.body = std::move(r->body);
    ++stats.replies;
    return true;
  }

  // Messages a call handles once it may not wait any more (try_recv, or recv past its deadline):
  // what is already queued is still read, since an answer may wait behind garbage, but only so
  // much, so a stream of garbage cannot hold the caller.
  static constexpr int overtime_budget = 256;

  // `blocking` false: no waiting at all, errc::would_block when nothing completed (try_recv).
  result<void> recv(reply& out, std::chrono::milliseconds timeout, bool blocking) {
    auto now = clock::now();
    const auto deadline = now + std::min(timeout, peer::longest_wait);
    for (int overtime = overtime_budget;;) {
      if (auto a = advance(now, false); !a) return a;
      if (take_expired(out, now)) return {};
      // Wait until the caller's deadline, the next expiry, the end of the probe's wait or the
      // failover, whichever comes first.
      auto until = std::min(deadline, failover_deadline());
      if (const auto* oldest = table.oldest(); oldest != nullptr && oldest->deadline < until)
        until = oldest->deadline;
      if (holding() && probe_deadline < until) until = probe_deadline;
      const auto wait = blocking ? left_until(until, now) : 0ms;
      auto r = wait > 0ms ? sock.recv(in, wait) : sock.try_recv(in);
      if (r) {
        if (failing_over()) heard_at = clock::now();
        if (accept(out)) return {};
      } else if (r.is(errc::too_large)) {
        if (failing_over()) heard_at = clock::now();
        ++stats.malformed;
      } else if (r.is(errc::timeout) || r.is(errc::would_block)) {
        // Nothing queued. libzmq's clock is coarser than ours and may end a wait a little early,
        // so the deadline is ours to check.
        now = clock::now();
        if (auto a = advance(now, false); !a) return a;
        if (take_expired(out, now)) return {};
        if (!blocking) return errc::would_block;
        if (now >= deadline) return errc::timeout;
        continue;
      } else {
        return r;
      }
      // A message was dropped (or was the probe's answer).
      now = clock::now();
      if ((!blocking || now >= deadline) && --overtime == 0) {
        if (take_expired(out, now)) return {};
        return blocking ? errc::timeout : errc::would_block;
      }
    }
  }

  std::optional<clock::time_point> next_deadline() const noexcept {
    auto at = outstanding_table::never;
    if (const auto* oldest = table.oldest(); oldest != nullptr) at = oldest->deadline;
    if (holding() && probe_deadline < at) at = probe_deadline;
    at = std::min(at, failover_deadline());
    if (at == outstanding_table::never) return std::nullopt;
    return at;
  }

  context* ctx;
  async_client_options options;
  mdp_dealer sock;
  outstanding_table table;
  phase now_phase = phase::correlated;
  probe_state probe = probe_state::none;
  clock::time_point probe_deadline = outstanding_table::never;  // set by the first send()
  std::deque<held_request> held;
  message in;
  async_client_stats stats;
  // Failover (a failover list only).
  std::size_t current = 0;            // 0: options.broker; i: options.failover[i - 1]
  std::uint64_t sockets_made = 1;     // names the next socket "<routing_id>/<n>"
  std::uint64_t generation = 0;       // sockets replaced
  clock::time_point heard_at{};       // the start of the current silence
  std::unordered_map<std::uint64_t, kept_request> kept;  // by request id: every sent request
  std::uint64_t next_order = 0;
  std::size_t kept_bytes = 0;
  message outgoing;
};

async_client::async_client(context& ctx, async_client_options options)
    : impl_(std::make_unique<impl>(ctx, std::move(options))) {}
async_client::~async_client() = default;
async_client::async_client(async_client&&) noexcept = default;
async_client& async_client::operator=(async_client&&) noexcept = default;

result<std::uint64_t> async_client::send(std::string_view service, message&& body) {
  return impl_->send(service, body, impl_->options.request_expiry);
}

result<std::uint64_t> async_client::send(std::string_view service, message&& body,
                                         std::chrono::milliseconds timeout) {
  peer::check_range(timeout, 0ms, max_timeout, "mdp::async_client: a request timeout");
  return impl_->send(service, body, timeout);
}

result<void> async_client::recv(reply& out, std::chrono::milliseconds timeout) {
  return impl_->recv(out, std::max(timeout, 0ms), true);
}

result<async_client::reply> async_client::recv(std::chrono::milliseconds timeout) {
  reply out;
  if (auto r = impl_->recv(out, std::max(timeout, 0ms), true); !r) return r.error();
  return out;
}

result<void> async_client::try_recv(reply& out) { return impl_->recv(out, 0ms, false); }

bool async_client::cancel(std::uint64_t id) noexcept {
  if (!impl_->forget(id)) return false;
  ++impl_->stats.cancelled;
  return true;
}

std::size_t async_client::outstanding() const noexcept { return impl_->table.size(); }

std::optional<async_client::clock::time_point> async_client::next_deadline() const noexcept {
  return impl_->next_deadline();
}

bool async_client::correlating() const noexcept { return impl_->now_phase == impl::phase::correlated; }

const fabric::socket& async_client::socket() const noexcept { return impl_->sock; }
std::uint64_t async_client::socket_generation() const noexcept { return impl_->generation; }
const std::string& async_client::endpoint() const noexcept { return impl_->endpoint_at(impl_->current); }
std::size_t async_client::retained_bytes() const noexcept { return impl_->kept_bytes; }
const async_client_stats& async_client::stats() const noexcept { return impl_->stats; }
const async_client_options& async_client::options() const noexcept { return impl_->options; }

}  // namespace fabric::mdp
