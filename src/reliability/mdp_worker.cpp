// The Majordomo worker. The broker session (socket, timing machine, stashed requests) is guarded
// by one mutex: the application's thread holds it inside recv() and reply() and uses the DEALER
// directly, so a request costs what a hand-written worker costs; a keeper thread takes it while
// the application is away (handling a long request, or not calling recv at all) and does the
// session's chores: heartbeats, liveness, reconnection, and reading whatever the broker sends.
//
// Why not an actor that owns the socket and runs a reactor, as every other protocol does (most
// through the shared driver, core/driver.hpp): every request and reply would cross the actor's
// pipe, two extra thread hand-offs per request. Measured through fabric's broker on 2 cores, that cut a worker's
// throughput from about 58K to 17K requests/s. A libzmq socket may move between threads across a
// full memory barrier; the mutex is that barrier, and no two threads ever use the socket at once.
//
// The timing decisions are the shared liveness machine's (core/liveness.hpp, with the settings of
// mdp_worker.hpp: heartbeats only on a quiet connection, as 7/MDP counts any command as one).
// This file moves frames and is the machine's sink: it sends the heartbeats, closes the socket of
// a dead broker and opens fresh ones; whoever holds the mutex runs the machine.
//
// A request is "in hand" from the moment it arrives until it is answered or abandoned: stashed by
// the keeper, or handed to the application by recv(). The machine is told, so that broker silence
// while busy is not taken for death (the reference broker heartbeats only idle workers). Requests
// in hand belong to one connection: when it goes, the broker requeues them, so stashed ones are
// dropped, and a reply to one handed out is dropped by reply(). With a credit above 1, up to that
// many are handed out at once; their client addresses are kept in a vector sized to the credit up front.
#include <fabric/majordomo_worker.hpp>

#include "reliability/mdp.hpp"
#include "reliability/mdp_peer.hpp"
#include "reliability/mdp_worker.hpp"

#include <fabric/error.hpp>

#include <zmq.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace fabric::mdp {
namespace {

using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;
using peer::mdp_dealer;

// Messages the keeper reads per wake-up, and recv() past its deadline, so a flood cannot hold the
// mutex (or the caller) for long.
constexpr int keeper_budget = 256;
// Requests the keeper holds for the application, at least. 7/MDP gives a worker one request at a
// time (fabric's broker up to the worker's credit); a broker that sends more than this, or than
// the credit, meanwhile is broken, and the excess is dropped as malformed.
constexpr std::size_t min_stash_limit = 64;
// The largest credit a worker may announce. fabric's broker lowers a larger announcement to
// its max_worker_credit (256 by default), so asking for more than that only helps with a broker
// configured for it.
constexpr std::uint32_t max_credit = 1024;

// The stats: written under the session mutex, read by any thread without it.
struct shared_stats {
  std::atomic<std::uint64_t> requests{0};
  std::atomic<std::uint64_t> requests_dropped{0};
  std::atomic<std::uint64_t> requests_abandoned{0};
  std::atomic<std::uint64_t> replies{0};
  std::atomic<std::uint64_t> replies_dropped{0};
  std::atomic<std::uint64_t> heartbeats_sent{0};
  std::atomic<std::uint64_t> heartbeats_received{0};
  std::atomic<std::uint64_t> reconnects{0};
  std::atomic<std::uint64_t> broker_expiries{0};
  std::atomic<std::uint64_t> disconnects_received{0};
  std::atomic<std::uint64_t> malformed{0};
};

// Writers are serialised by the session mutex, so a plain load and store: no locked instruction.
void bump(std::atomic<std::uint64_t>& c) noexcept {
  c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}
void unbump(std::atomic<std::uint64_t>& c) noexcept {
  c.store(c.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
}
void add(std::atomic<std::uint64_t>& c, std::uint64_t n) noexcept {
  c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

// Sends `m` without blocking and counts it in `sent`. The count goes up before the send, so
// whoever sees the message (a broker, a test) also sees it counted; a refused send takes it back.
// Returns: what the socket said.
result<void> send_counted(mdp_dealer& sock, message&& m, std::atomic<std::uint64_t>& sent) {
  bump(sent);
  auto r = sock.try_send(std::move(m));
  if (!r) unbump(sent);
  return r;
}

// Takes one failure from the test seam, if any is set.
bool take_injected_open_failure() noexcept {
  int n = detail::worker_open_failures.load(std::memory_order_relaxed);
  while (n > 0 && !detail::worker_open_failures.compare_exchange_weak(n, n - 1)) {
  }
  return n > 0;
}

std::chrono::milliseconds left_until(clock::time_point deadline, clock::time_point now) {
  if (deadline <= now) return 0ms;
  return std::chrono::ceil<std::chrono::milliseconds>(deadline - now);
}

worker_options validated(worker_options o) {
  if (o.broker.empty())
    throw error(errc::invalid_argument, "mdp::worker: options.broker must name the broker's endpoint");
  for (const auto& ep : o.failover) {
    if (ep.empty()) throw error(errc::invalid_argument, "mdp::worker: options.failover holds an empty endpoint");
  }
  if (o.service.empty() || o.service.size() > max_name_size)
    throw error(errc::invalid_argument, "mdp::worker: options.service must be 1 to 255 bytes");
  if (is_mmi(o.service))
    throw error(errc::invalid_argument,
                "mdp::worker: service names starting with \"mmi.\" belong to the broker (8/MMI); "
                "pick another name");
  peer::check_range(o.heartbeat_interval, 1ms, 1h, "mdp::worker: options.heartbeat_interval");
  if (o.liveness < 1 || o.liveness > 1000)
    throw error(errc::invalid_argument, "mdp::worker: options.liveness must be between 1 and 1000");
  peer::check_range(o.reconnect_interval, 0ms, 1h, "mdp::worker: options.reconnect_interval");
  peer::check_range(o.reconnect_interval_max, o.reconnect_interval, 1h,
                    "mdp::worker: options.reconnect_interval_max");
  peer::check_identity_prefix(o.socket, "mdp::worker");
  if (o.credit < 1 || o.credit > max_credit)
    throw error(errc::invalid_argument, "mdp::worker: options.credit must be between 1 and 1024");
  return o;
}

bool is_term(const error& e) noexcept {
  return e.code() == std::error_code(ETERM, zmq_category()) || e.code() == errc::closed;
}

}  // namespace

struct worker::impl final : fabric::detail::machine_sink {
  impl(context& c, worker_options o)
      : ctx(c),
        options(validated(std::move(o))),
        stash_limit(std::max<std::size_t>(min_stash_limit, options.credit)),
        machine(detail::worker_liveness(options), *this, worker_heartbeat, "mdp::worker") {
    handed_clients.resize(options.credit);  // their storage is reused from then on
    {
      std::lock_guard lock(mu);
      act(clock::now());  // opens the first socket: a malformed endpoint throws here, before the
                          // keeper starts
    }
    keeper = std::thread([this] { keep(); });
  }

  // A destructor must not throw: whatever goes wrong here (a send failing in an unexpected way,
  // a thread that cannot be joined) is swallowed, and the socket is closed regardless.
  ~impl() {
    try {
      {
        std::lock_guard lock(mu);
        stopping = true;
      }
      wake.notify_all();
      if (keeper.joinable()) keeper.join();
    } catch (...) {
    }
    try {
      std::lock_guard lock(mu);
      // Tell the broker at once rather than let it wait out our liveness; the socket's own linger
      // (bounded) lets the command leave.
      if (sock && !closed) (void)sock->try_send(worker_disconnect());
      sock.reset();
    } catch (...) {
    }
  }

  impl(const impl&) = delete;
  impl& operator=(const impl&) = delete;

  // ---- everything below runs with `mu` held ----

  // --- fabric::detail::machine_sink: what the liveness machine asks for, from act() ---

  // The machine sends nothing but heartbeats.
  result<void> send(fabric::detail::port, message&& m) override {
    if (!sock) return errc::closed;
    return send_counted(*sock, std::move(m), stats.heartbeats_sent);
  }

  // The broker is dead (silent for `liveness` intervals).
  void close(fabric::detail::port) noexcept override {
    bump(stats.broker_expiries);
    close_socket();
    wake.notify_all();  // the keeper reopens if the application does not come back first
  }

  // A fresh connection is due. A socket that cannot be created is an error to the machine, which
  // schedules the next attempt; the exception waits in open_error for act() to deal with.
  result<void> open(fabric::detail::port) override {
    try {
      return connect();
    } catch (const error& e) {
      open_error = std::current_exception();
      return e.code();
    } catch (...) {
      open_error = std::current_exception();
      return errc::io_error;
    }
  }

  // Opens a fresh socket, connects it and queues READY.
  // Returns: success; errc::closed when the context is shutting down (the worker is then closed);
  // the socket's error when it would not take READY.
  // Throws: what creating or connecting the socket throws (a malformed endpoint, EMFILE).
  result<void> connect() {
    socket_options o = peer::with_fresh_identity(options.socket, connection + 1);
    // READY must be queued now, on the socket that has not connected yet, so that it is the first
    // thing the broker hears from this identity: with ZMQ_IMMEDIATE, libzmq would refuse it until
    // the connection completes, and the broker would meet our first heartbeat as a stranger's.
    // A worker has one peer, so immediate has nothing else to offer it.
    o.immediate = false;
    try {
      if (take_injected_open_failure())
        throw error(std::error_code(EMFILE, zmq_category()), "mdp::worker: cannot create a socket");
      sock.emplace(ctx, o);
      // Connection n (from 0) goes to the n-th broker of broker + failover, round robin.
      const std::size_t at = static_cast<std::size_t>(connection % (options.failover.size() + 1));
      sock->connect(at == 0 ? options.broker : options.failover[at - 1]);
    } catch (const error& e) {
      sock.reset();
      if (is_term(e)) {
        closed = true;  // the context is shutting down: nothing to reconnect to
        return errc::closed;
      }
      throw;
    } catch (...) {
      sock.reset();
      throw;
    }
    if (++connection > 1) bump(stats.reconnects);
    message ready = worker_ready(options.service, options.credit);  // plain READY at credit 1
    if (auto r = sock->try_send(std::move(ready)); !r) {
      // Not expected of a fresh socket without immediate; never heartbeat a broker that has not
      // been told who we are: start again later.
      close_socket();
      if (r.is(errc::closed)) closed = true;
      return r;
    }
    return {};
  }

  // Closes the socket: at once (linger 0) when the broker is gone or sent us away, with the
  // socket's own linger when a last command must reach a working broker. Requests stashed from
  // this connection go with it: the broker requeues them when it loses the connection.
  void close_socket(bool flush = false) noexcept {
    if (!stash.empty()) {
      add(stats.requests_dropped, stash.size());
      stash.clear();
    }
    if (!sock) return;
    if (!flush) peer::close_now(*sock);
    sock.reset();
  }

  // Whether requests handed to the application are still in hand on the current connection.
  bool holding() const noexcept { return handed_count != 0 && handed == connection && sock.has_value(); }

  // Tells the machine whether a request is in hand on the current connection.
  void settle(clock::time_point now) noexcept { machine.busy(holding() || !stash.empty(), now); }

  // Records `req`, returned to the application, as in hand. Those from an earlier connection are
  // forgotten: the broker has requeued them.
  void hand_out(const request& req, clock::time_point now) {
    if (handed != req.connection) {
      handed = req.connection;
      handed_count = 0;
    }
    if (handed_count == handed_clients.size()) handed_clients.emplace_back();  // a broken broker
    handed_clients[handed_count++].assign(req.client);
    settle(now);
  }

  // Takes the request from `client` out of those in hand. Returns: whether it was there.
  bool answer(std::string_view client) noexcept {
    for (std::size_t i = 0; i < handed_count; ++i) {
      if (handed_clients[i] != client) continue;
      std::swap(handed_clients[i], handed_clients[handed_count - 1]);  // no allocation
      if (--handed_count == 0) handed = 0;
      return true;
    }
    return false;
  }

  // Gives up the requests handed to the application, if any. When they came on the current
  // connection, the broker holds them as ours until it hears from us: DISCONNECT, close and start
  // a fresh connection (at once, unless abandoning is all this worker has done lately; see
  // liveness::left), and the broker requeues them (or, should the DISCONNECT be lost,
  // expires the silent old connection and requeues them then).
  void abandon(clock::time_point now) noexcept {
    const bool current = holding();
    const std::size_t given_back = handed_count;
    handed = 0;
    handed_count = 0;
    if (!current) return;
    add(stats.requests_abandoned, given_back);
    try {
      (void)sock->try_send(worker_disconnect());
    } catch (...) {
      // best effort: the broker also learns from the old connection's silence
    }
    close_socket(true);
    machine.left(now);
    wake.notify_all();  // the keeper opens the fresh socket if the application does not first
  }

  // Has the machine do whatever is due. A socket that cannot be created throws to the
  // application; on the keeper it is recorded (see failure()). Either way the machine has
  // scheduled the next attempt, after the back-off.
  void act(clock::time_point now, bool keeper_thread = false) {
    if (closed) return;
    machine.on_tick(now);
    if (!open_error) return;
    auto e = std::exchange(open_error, nullptr);
    if (!keeper_thread) std::rethrow_exception(e);
    record_failure(std::move(e));
  }

  // Handles the message in `in`. A request goes into `*out`, or is stashed when `out` is null.
  // Returns: true when `*out` received a request.
  bool handle(clock::time_point now, request* out) {
    auto cmd = parse_from_broker_for_worker(std::move(in));
    if (!cmd) {
      bump(stats.malformed);
      machine.on_message(now, false);
      return false;
    }
    switch (cmd->kind) {
      case command::request:
        machine.on_message(now, true);
        if (out == nullptr && stash.size() >= stash_limit) {
          bump(stats.malformed);
          return false;
        }
        bump(stats.requests);
        fill(out != nullptr ? *out : stash.emplace_back(), *cmd);
        machine.busy(true, now);
        return out != nullptr;
      case command::heartbeat:
        machine.on_message(now, true);
        bump(stats.heartbeats_received);
        return false;
      case command::disconnect:
        bump(stats.disconnects_received);
        close_socket();
        machine.disconnected(now);
        wake.notify_all();  // the reconnection may be due before the keeper's next wake-up
        return false;
      case command::ready:
      case command::reply:
        break;  // the parser refuses these from a broker; kept so the switch stays exhaustive
    }
    bump(stats.malformed);
    machine.on_message(now, false);
    return false;
  }

  void fill(request& out, worker_command& cmd) {
    out.client.assign(cmd.client);
    out.body = std::move(cmd.body);
    out.connection = connection;
  }

  // A failed receive that is not a timeout. Returns the error to report, if any.
  result<void> receive_failure(const result<void>& r, clock::time_point now) {
    if (r.is(errc::too_large)) {  // drained and dropped by the socket
      bump(stats.malformed);
      machine.on_message(now, false);
      return {};
    }
    if (r.is(errc::closed)) closed = true;
    return r;
  }

  // ---- the keeper thread ----

  void keep() {
    std::unique_lock lock(mu);
    while (!stopping && !closed) {
      wake.wait_until(lock, machine.next_tick());
      if (stopping || closed) break;
      const auto now = clock::now();
      if (now < machine.next_tick()) continue;  // the application's traffic moved it later
      try {
        // Read first: a heartbeat waiting in the socket must count before liveness is judged.
        for (int i = 0; sock && i < keeper_budget; ++i) {
          auto r = sock->try_recv(in);
          if (r) {
            (void)handle(now, nullptr);
          } else if (r.is(errc::would_block) || !receive_failure(r, now)) {
            break;
          }
        }
        act(now, true);
      } catch (...) {
        record_failure(std::current_exception());
        closed = true;
      }
    }
  }

  void record_failure(std::exception_ptr e) noexcept {
    std::lock_guard failed(failure_mu);
    failure = std::move(e);
  }

  // ---- the application's calls ----

  result<void> recv(request& out, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu);
    auto now = clock::now();
    // At most `credit` requests at a time: asking for one more gives up those still unanswered.
    if (handed_count != 0 && !holding()) {
      handed = 0;  // their connection is gone: the broker has requeued them
      handed_count = 0;
    }
    if (handed_count >= options.credit) abandon(now);
    const auto deadline = now + std::clamp(timeout, 0ms, peer::longest_wait);
    int overtime = keeper_budget;
    for (;;) {
      // The keeper may have read a request while the application was away (or while this call
      // waited below without the lock).
      if (!stash.empty()) {
        out = std::move(stash.front());
        stash.pop_front();
        hand_out(out, now);
        return {};
      }
      act(now);
      if (closed) return errc::closed;
      const auto until = std::min(deadline, machine.next_tick());
      if (!sock) {  // waiting out the back-off before reconnecting
        if (now >= deadline) return errc::timeout;
        wake.wait_until(lock, until);
        now = clock::now();
        continue;
      }
      const auto wait = left_until(until, now);
      auto r = wait > 0ms ? sock->recv(in, wait) : sock->try_recv(in);
      now = clock::now();
      if (r) {
        if (handle(now, &out)) {
          hand_out(out, now);
          return {};
        }
      } else if (!r.is(errc::timeout) && !r.is(errc::would_block)) {
        if (auto failed = receive_failure(r, now); !failed) return failed;
      }
      // libzmq's clock is coarser than ours and may end a wait a little early, so the deadline
      // is ours to check. Past it, what is already queued is still read (a request may wait
      // behind a heartbeat), but only so much, so a stream of garbage cannot hold the caller.
      if (now >= deadline && (!r || --overtime == 0)) return errc::timeout;
    }
  }

  result<void> reply(std::uint64_t on, std::string_view client, message& body) {
    // 7/MDP has no REPLY without a body frame (the client is waiting for an answer, so nothing
    // is refused here): an empty reply travels as one empty frame.
    if (body.empty()) body.push_back(std::string_view{});
    message m = worker_reply(client, std::move(body));  // throws on a bad address
    std::lock_guard lock(mu);
    if (closed) {
      bump(stats.replies_dropped);
      return errc::closed;
    }
    if (!sock || (on != 0 && on != connection)) {
      bump(stats.replies_dropped);
      return errc::peer_unreachable;
    }
    if (auto r = send_counted(*sock, std::move(m), stats.replies); !r) {
      bump(stats.replies_dropped);
      if (r.is(errc::closed)) {
        closed = true;
        return r;
      }
      return errc::back_pressure;
    }
    const auto now = clock::now();
    machine.sent(now);
    if (handed == connection && answer(client)) {
      machine.answered();
      settle(now);
    }
    return {};
  }

  void abandon() noexcept {
    std::lock_guard lock(mu);
    abandon(clock::now());
  }

  context& ctx;
  const worker_options options;
  const std::size_t stash_limit;  // the most requests the keeper holds for the application
  shared_stats stats;
  std::mutex failure_mu;
  std::exception_ptr failure;  // guarded by failure_mu

  std::mutex mu;
  std::condition_variable wake;  // wakes the keeper to stop, and a recv waiting to reconnect
  // Guarded by mu:
  fabric::detail::liveness machine;
  std::exception_ptr open_error;  // why the machine's last open() failed, until act() takes it
  std::optional<mdp_dealer> sock;
  std::uint64_t connection = 0;  // which connection `sock` is: 1, 2, ...
  std::deque<request> stash;     // requests the keeper read while the application was away
  std::uint64_t handed = 0;      // the connection of the requests recv() returned that are not
                                 // yet answered or abandoned; 0 when none
  std::vector<std::string> handed_clients;  // their clients: the first handed_count, in no order
  std::size_t handed_count = 0;
  message in;
  bool stopping = false;
  bool closed = false;

  std::thread keeper;  // last: started once everything above exists
};

worker::worker(context& ctx, worker_options options)
    : impl_(std::make_unique<impl>(ctx, std::move(options))) {}
worker::~worker() = default;
worker::worker(worker&&) noexcept = default;
worker& worker::operator=(worker&&) noexcept = default;

result<void> worker::recv(request& out, std::chrono::milliseconds timeout) {
  return impl_->recv(out, timeout);
}

result<worker::request> worker::recv(std::chrono::milliseconds timeout) {
  request out;
  if (auto r = impl_->recv(out, timeout); !r) return r.error();
  return out;
}

result<void> worker::reply(const request& req, message&& body) {
  return impl_->reply(req.connection, req.client, body);
}

result<void> worker::reply(std::string_view client, message&& body) {
  return impl_->reply(0, client, body);
}

result<void> worker::serve(const handler& fn, const std::function<bool()>& stop,
                           std::chrono::milliseconds poll) {
  if (!fn || !stop)
    throw error(errc::invalid_argument, "mdp::worker::serve: a handler and a stop condition are required");
  const auto slice = std::max(poll, 1ms);
  request req;
  while (!stop()) {
    auto r = impl_->recv(req, slice);
    if (!r) {
      if (r.is(errc::timeout)) continue;
      return r;
    }
    message body;
    try {
      body = fn(req);
    } catch (...) {
      impl_->abandon();  // the broker gives the request to another worker
      throw;
    }
    auto sent = impl_->reply(req.connection, req.client, body);
    // A reply the broker can no longer take is counted; serving goes on.
    if (!sent && (sent.is(errc::closed) || sent.is(errc::interrupted))) return sent;
  }
  return {};
}

worker_stats worker::stats() const noexcept {
  const shared_stats& c = impl_->stats;
  constexpr auto relaxed = std::memory_order_relaxed;
  worker_stats out;
  out.requests = c.requests.load(relaxed);
  out.requests_dropped = c.requests_dropped.load(relaxed);
  out.requests_abandoned = c.requests_abandoned.load(relaxed);
  out.replies = c.replies.load(relaxed);
  out.replies_dropped = c.replies_dropped.load(relaxed);
  out.heartbeats_sent = c.heartbeats_sent.load(relaxed);
  out.heartbeats_received = c.heartbeats_received.load(relaxed);
  out.reconnects = c.reconnects.load(relaxed);
  out.broker_expiries = c.broker_expiries.load(relaxed);
  out.disconnects_received = c.disconnects_received.load(relaxed);
  out.malformed = c.malformed.load(relaxed);
  return out;
}

void worker::abandon() noexcept { impl_->abandon(); }

const worker_options& worker::options() const noexcept { return impl_->options; }

std::exception_ptr worker::failure() const noexcept {
  std::lock_guard lock(impl_->failure_mu);
  return impl_->failure;
}

}  // namespace fabric::mdp
