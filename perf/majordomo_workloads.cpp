// The Majordomo workloads of fabric-perf. See majordomo_workloads.hpp.
//
// Both sides run the same client loops (closed window, open loop, synchronous); only the
// client, and what stands behind it, differ:
//
//   fabric:  async_client / client  ->  mdp::broker (one ROUTER)  ->  N mdp::worker echo threads
//   raw:     DEALER                 ->  zmq_proxy_steerable (ROUTER | DEALER)  ->  N DEALER echoes
//   raw_lb:  DEALER                 ->  a load balancer on one ROUTER, `credit` requests per
//                                       worker at most  ->  N DEALER echoes
//
// Every request body carries, in its first 8 bytes, the time it was sent (closed loop) or meant
// to be sent (open loop); the echo brings it back, so neither side keeps a table of send times.
#include "majordomo_workloads.hpp"

#include <fabric/context.hpp>
#include <fabric/error.hpp>
#include <fabric/majordomo.hpp>
#include <fabric/majordomo_client.hpp>
#include <fabric/majordomo_worker.hpp>
#include <fabric/message.hpp>

#include <zmq.hpp>

#include <poll.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <deque>
#include <exception>
#include <filesystem>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <utility>
#include <vector>

namespace fabric::perf::majordomo_bench {
namespace {

using steady = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr std::string_view service_name = "echo";
// Every blocking wait inside a run is cut into slices this long, so that a worker, echo thread
// or broker that failed is noticed within a slice rather than at the end of the whole timeout.
constexpr std::chrono::milliseconds slice = 50ms;
// The broker and the proxy get the same high-water marks (the broker's defaults); the clients
// the async client's defaults; workers and echo threads libzmq's.
constexpr int hub_hwm = 100'000;
constexpr int client_hwm = 10'000;
// A probe: a 1-byte body that a raw echo thread answers with its index (readiness check).
constexpr char probe_tag = 'P';
// raw_lb: a worker's first message, "R" and its credit (4 bytes), to the load balancer.
constexpr char ready_tag = 'R';

[[noreturn]] void fail(const std::string& what) { throw std::runtime_error(what); }

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now().time_since_epoch())
      .count();
}

std::int64_t stamp_of(const void* data, std::size_t size, std::size_t expected) {
  if (size != expected)
    fail("a reply body of " + std::to_string(size) + " bytes came back for a request of " +
         std::to_string(expected) + ": not the request's echo");
  std::int64_t stamp = 0;
  std::memcpy(&stamp, data, sizeof stamp);
  return stamp;
}

// ---- endpoints

std::string endpoint_for(transport_kind t, std::string_view role) {
  return support::loopback_endpoint(t, "fabric-perf-mdp-" + std::string(role));
}

// ---- hang protection

// Ends a run that overstays: first by shutting its context down (every blocking call then
// fails, and the run unwinds with an error), and if even that does not end it, by printing what
// was stuck and exiting the process.
class watchdog {
 public:
  watchdog(std::string label, std::chrono::milliseconds limit)
      : label_(std::move(label)), thread_([this, limit] { watch(limit); }) {}
  ~watchdog() {
    {
      std::lock_guard lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  watchdog(const watchdog&) = delete;
  watchdog& operator=(const watchdog&) = delete;

  /// What to call when the limit passes; {} for nothing. Waits for a call in progress.
  void on_expiry(std::function<void()> fn) {
    std::lock_guard lock(mu_);
    unblock_ = std::move(fn);
  }

 private:
  static constexpr std::chrono::seconds grace{15};

  void watch(std::chrono::milliseconds limit) {
    std::unique_lock lock(mu_);
    if (cv_.wait_for(lock, limit, [this] { return done_; })) return;
    std::fprintf(stderr, "fabric-perf: majordomo %s: still running after %.1f s; shutting its context down\n",
                 label_.c_str(), static_cast<double>(limit.count()) / 1000.0);
    if (unblock_) unblock_();
    if (cv_.wait_for(lock, grace, [this] { return done_; })) return;
    std::fprintf(stderr, "fabric-perf: FAILED majordomo %s: stuck even after its context was shut down; exiting\n",
                 label_.c_str());
    std::fflush(stderr);
    std::_Exit(3);
  }

  std::string label_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::function<void()> unblock_;
  std::thread thread_;  // last: starts once the rest exists
};

// Clears a watchdog's action before the context it refers to goes away.
struct expiry_guard {
  watchdog& dog;
  ~expiry_guard() { dog.on_expiry({}); }
};

// Threads (workers, echo threads, the proxy) that run until stop(); the first failure of any of
// them is kept for the client loop to report.
class crew {
 public:
  crew() = default;
  ~crew() { stop(); }
  crew(const crew&) = delete;
  crew& operator=(const crew&) = delete;

  template <class F>
  void spawn(F body) {
    threads_.emplace_back([this, body = std::move(body)]() mutable {
      try {
        body(stop_);
      } catch (const std::exception& e) {
        note(e.what());
      } catch (...) {
        note("unknown exception");
      }
    });
  }
  void note(const std::string& why) {
    std::lock_guard lock(mu_);
    if (error_.empty()) error_ = why;
    failed_.store(true, std::memory_order_release);
  }
  bool failed() const noexcept { return failed_.load(std::memory_order_acquire); }
  std::string error() const {
    std::lock_guard lock(mu_);
    return error_;
  }
  /// Asks every thread to end (each looks at least once a slice) and joins them.
  void stop() {
    stop_.store(true, std::memory_order_release);
    for (auto& t : threads_)
      if (t.joinable()) t.join();
    threads_.clear();
  }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<bool> failed_{false};
  mutable std::mutex mu_;
  std::string error_;
  std::vector<std::thread> threads_;
};

// ---- the client loops, shared by both sides
//
// An async client C has: bool send(std::int64_t stamp) (false: back-pressure, try later);
// std::optional<std::int64_t> recv(std::chrono::milliseconds wait) (the stamp of the next reply,
// nullopt when none came within `wait`; 0 only looks); int fd() and bool readable() (ZMQ_FD and
// ZMQ_EVENTS of its socket, for the open loop's waits). A sync client has
// void round_trip(std::int64_t stamp, const Health&). Health() throws when the rig has failed.

// Keeps `window` requests outstanding; each reply is answered with a new request.
template <class C, class Health>
outcome closed_window(C& c, const spec& s, const Health& health) {
  outcome out;
  const std::uint64_t total = s.warmup + s.count;
  std::uint64_t sent = 0;
  std::uint64_t done = 0;
  std::int64_t start = now_ns();
  std::int64_t end = start;
  std::int64_t last_progress = start;
  const std::int64_t patience = std::chrono::nanoseconds(s.timeout).count();
  while (done < total) {
    while (sent < total && sent - done < s.window) {
      if (!c.send(now_ns())) break;  // back-pressure: read replies first
      ++sent;
    }
    if (auto stamp = c.recv(sent > done ? slice : 1ms)) {
      const std::int64_t t = now_ns();
      if (done >= s.warmup) out.latency.record(static_cast<std::uint64_t>(std::max<std::int64_t>(0, t - *stamp)));
      ++done;
      if (done == s.warmup) start = t;
      end = t;
      last_progress = t;
      continue;
    }
    health();
    if (now_ns() - last_progress > patience)
      fail("no reply for " + std::to_string(s.timeout.count()) + " ms (" + std::to_string(done) +
           " of " + std::to_string(total) + " requests answered, " + std::to_string(sent - done) +
           " outstanding)");
  }
  out.seconds = static_cast<double>(end - start) / 1e9;
  out.completed = s.count;
  return out;
}

void wait_readable(int fd, std::int64_t ns) {
  pollfd p{fd, POLLIN, 0};
  timespec ts{static_cast<std::time_t>(ns / 1'000'000'000), static_cast<long>(ns % 1'000'000'000)};
  (void)::ppoll(&p, 1, &ts, nullptr);
}

// Sends on a fixed schedule of `rate` requests per second whatever the replies do, and records
// each reply's time minus its request's intended send time: a stall delays every request
// scheduled behind it and shows in the figures (no coordinated omission). One thread sends and
// receives; between sends it blocks in ppoll on the socket's ZMQ_FD until a reply or the next
// slot, with 1 us timer slack, instead of spinning a core the broker needs.
template <class C, class Health>
outcome open_loop(C& c, const spec& s, const Health& health) {
  ::prctl(PR_SET_TIMERSLACK, 1UL);
  outcome out;
  histogram send_lag;
  const std::uint64_t total = s.warmup + s.count;
  const double period = 1e9 / s.rate;
  const std::int64_t first = now_ns() + 1'000'000;
  const auto intended = [&](std::uint64_t i) {
    return first + static_cast<std::int64_t>(static_cast<double>(i) * period);
  };
  const int fd = c.fd();
  // Replies come at the rate, so a silence longer than the timeout (or two periods, at a very
  // low rate) means they have stopped.
  const std::int64_t patience =
      std::max(std::chrono::nanoseconds(s.timeout).count(), static_cast<std::int64_t>(2 * period));
  const std::int64_t health_every = std::chrono::nanoseconds(slice).count();
  std::uint64_t sent = 0;
  std::uint64_t done = 0;
  std::int64_t start = first;
  std::int64_t end = first;
  std::int64_t last_progress = first;
  std::int64_t last_health = first;
  while (done < total) {
    std::int64_t now = now_ns();
    while (sent < total && intended(sent) <= now) {
      if (!c.send(intended(sent))) break;  // back-pressure: the request stays due
      send_lag.record(static_cast<std::uint64_t>(now - intended(sent)));
      if (sent == done) last_progress = now;  // waiting for a reply starts now
      ++sent;
    }
    while (auto stamp = c.recv(0ms)) {
      const std::int64_t t = now_ns();
      if (done >= s.warmup) out.latency.record(static_cast<std::uint64_t>(std::max<std::int64_t>(0, t - *stamp)));
      ++done;
      if (done == s.warmup) start = t;
      end = t;
      last_progress = t;
    }
    if (done == total) break;
    now = now_ns();
    if (now - last_health > health_every) {
      health();
      last_health = now;
      if (sent > done && now - last_progress > patience)
        fail("no reply for " + std::to_string(s.timeout.count()) + " ms (" + std::to_string(done) +
             " of " + std::to_string(total) + " requests answered, " + std::to_string(sent - done) +
             " outstanding)");
    }
    const std::int64_t until = sent < total ? intended(sent) : now + health_every;
    if (until - now > 2'000 && !c.readable()) wait_readable(fd, std::min(until - now, health_every));
  }
  out.seconds = static_cast<double>(end - start) / 1e9;
  out.completed = s.count;
  out.send_lag_p50_ns = send_lag.value_at_percentile(50);
  out.max_send_lag_ns = send_lag.max();
  return out;
}

// One request at a time.
template <class C, class Health>
outcome sync_loop(C& c, const spec& s, const Health& health) {
  outcome out;
  const std::uint64_t total = s.warmup + s.count;
  std::int64_t start = now_ns();
  std::int64_t end = start;
  for (std::uint64_t i = 0; i < total; ++i) {
    const std::int64_t t0 = now_ns();
    if (i == s.warmup) start = t0;
    c.round_trip(t0, health);
    end = now_ns();
    if (i >= s.warmup) out.latency.record(static_cast<std::uint64_t>(end - t0));
  }
  out.seconds = static_cast<double>(end - start) / 1e9;
  out.completed = s.count;
  return out;
}

// ---- fabric: broker, workers, clients

socket_options bench_socket(int hwm) {
  socket_options o;
  o.send_hwm = hwm;
  o.recv_hwm = hwm;
  o.linger = 0ms;  // teardown must not wait for peers that are going away too
  return o;
}

// Counts the requests an echo answers; throws in place of answer number `fail_after + 1` of
// echo 0 (spec::fail_after, for testing that a failed worker ends the run with an error).
struct failure_injection {
  std::uint64_t fail_after = 0;
  std::uint64_t answered = 0;
  void before_answer() {
    if (fail_after != 0 && ++answered > fail_after)
      fail("injected failure after " + std::to_string(fail_after) + " requests (--fail-worker-after)");
  }
};

failure_injection injection_for(const spec& s, int index) { return {.fail_after = index == 0 ? s.fail_after : 0, .answered = 0}; }

// With a credit above 1 the broker keeps the next requests queued at the worker, so answering
// them one at a time is enough: the next one is already there when a reply leaves.
void fabric_echo(context& ctx, const std::string& endpoint, int credit, failure_injection inject,
                 const std::atomic<bool>& stop) {
  mdp::worker_options o;
  o.broker = endpoint;
  o.service = std::string(service_name);
  o.socket = bench_socket(socket_options{}.send_hwm);
  o.credit = static_cast<std::uint32_t>(credit);
  mdp::worker w(ctx, std::move(o));
  mdp::worker::request req;
  while (!stop.load(std::memory_order_acquire)) {
    if (auto r = w.recv(req, slice); !r) {
      if (r.is(errc::timeout) || r.is(errc::interrupted)) continue;
      if (stop.load(std::memory_order_acquire)) return;
      fail("worker: recv: " + r.error().message());
    }
    inject.before_answer();
    if (auto r = w.reply(req, std::move(req.body)); !r) {
      if (stop.load(std::memory_order_acquire)) return;
      fail("worker: reply: " + r.error().message());
    }
  }
}

class fabric_rig {
 public:
  fabric_rig(context& ctx, const spec& s) {
    mdp::broker_options o;
    o.endpoints = {endpoint_for(s.transport, "broker")};
    o.socket = bench_socket(hub_hwm);
    broker_.emplace(ctx, std::move(o));
    endpoint_ = broker_->endpoints().front();
    for (int i = 0; i < s.workers; ++i)
      workers_.spawn([&ctx, this, credit = s.worker_credit, inject = injection_for(s, i)](
                         const std::atomic<bool>& stop) { fabric_echo(ctx, endpoint_, credit, inject, stop);
      });
    // Measure only once every worker has registered with the broker.
    const auto deadline = steady::now() + s.timeout;
    for (;;) {
      check();
      const auto stats = broker_->stats(s.timeout);
      if (stats.workers >= static_cast<std::size_t>(s.workers)) break;
      if (steady::now() > deadline)
        fail(std::to_string(stats.workers) + " of " + std::to_string(s.workers) +
             " workers registered with the broker within " + std::to_string(s.timeout.count()) + " ms");
      std::this_thread::sleep_for(1ms);
    }
  }
  ~fabric_rig() {
    workers_.stop();
    if (broker_) broker_->stop();
  }
  fabric_rig(const fabric_rig&) = delete;
  fabric_rig& operator=(const fabric_rig&) = delete;

  const std::string& endpoint() const noexcept { return endpoint_; }

  /// Throws when a worker or the broker has failed.
  void check() const {
    if (workers_.failed()) fail("a worker failed: " + workers_.error());
    if (!broker_->running()) {
      std::string why = "the broker stopped";
      if (const auto e = broker_->failure()) {
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& x) {
          why += std::string(": ") + x.what();
        } catch (...) {
        }
      }
      fail(why);
    }
  }

 private:
  std::optional<mdp::broker> broker_;
  std::string endpoint_;
  crew workers_;  // after the broker: destroyed (joined) first
};

class fabric_async {
 public:
  fabric_async(context& ctx, const std::string& endpoint, const spec& s)
      : client_(ctx, options(endpoint, s)), payload_(s.size), size_(s.size) {}

  bool send(std::int64_t stamp) {
    std::memcpy(payload_.data(), &stamp, sizeof stamp);
    message body;
    body.push_back(payload_.data(), payload_.size());
    auto r = client_.send(service_name, std::move(body));
    if (r) return true;
    if (r.is(errc::back_pressure)) return false;
    fail("async_client: send: " + r.error().message());
  }

  std::optional<std::int64_t> recv(std::chrono::milliseconds wait) {
    auto r = wait > 0ms ? client_.recv(reply_, wait) : client_.try_recv(reply_);
    if (!r) {
      if (r.is(errc::timeout) || r.is(errc::would_block) || r.is(errc::interrupted)) return std::nullopt;
      fail("async_client: recv: " + r.error().message());
    }
    if (reply_.status != mdp::async_client::reply_status::ok)
      fail("async_client: a request expired without a reply");
    if (reply_.body.size() != 1)
      fail("async_client: a reply of " + std::to_string(reply_.body.size()) + " frames: not the request's echo");
    return stamp_of(reply_.body[0].data(), reply_.body[0].size(), size_);
  }

  int fd() const {
    int fd = -1;
    std::size_t len = sizeof fd;
    if (zmq_getsockopt(client_.socket().native(), ZMQ_FD, &fd, &len) != 0) fail("cannot read ZMQ_FD");
    return fd;
  }
  bool readable() const {
    int events = 0;
    std::size_t len = sizeof events;
    return zmq_getsockopt(client_.socket().native(), ZMQ_EVENTS, &events, &len) == 0 &&
           (events & ZMQ_POLLIN) != 0;
  }

 private:
  static mdp::async_client_options options(const std::string& endpoint, const spec& s) {
    mdp::async_client_options o;
    o.broker = endpoint;
    // The broker is fabric's: request ids from the first request, with no probe and no plain
    // matching, as a user who knows the broker would set it.
    o.correlate = mdp::correlation::request_id;
    // Room for the window, or for what an open loop may pile up; a request unanswered for the
    // timeout expires, which the loop reports as a failure.
    o.max_outstanding = std::max<std::size_t>(s.window, client_hwm);
    o.request_expiry = s.timeout;
    o.socket = bench_socket(client_hwm);
    return o;
  }

  mdp::async_client client_;
  std::vector<std::byte> payload_;
  std::size_t size_;
  mdp::async_client::reply reply_;
};

class fabric_sync {
 public:
  fabric_sync(context& ctx, const std::string& endpoint, const spec& s)
      : client_(ctx, options(endpoint, s)), payload_(s.size), size_(s.size), timeout_(s.timeout) {}

  template <class Health>
  void round_trip(std::int64_t stamp, const Health& health) {
    std::memcpy(payload_.data(), &stamp, sizeof stamp);
    message body;
    body.push_back(payload_.data(), payload_.size());
    auto r = client_.request(service_name, std::move(body));
    if (!r) {
      health();  // a failed worker or broker explains the silence better
      fail("client: request: " + r.error().message() + " (timeout " + std::to_string(timeout_.count()) + " ms)");
    }
    if (r->size() != 1) fail("client: a reply of " + std::to_string(r->size()) + " frames: not the request's echo");
    if (stamp_of((*r)[0].data(), (*r)[0].size(), size_) != stamp) fail("client: a reply to another request");
  }

 private:
  static mdp::client_options options(const std::string& endpoint, const spec& s) {
    mdp::client_options o;
    o.broker = endpoint;
    o.timeout = s.timeout;
    o.retries = 0;  // a lost request is a failure of the run, not something to paper over
    o.socket = bench_socket(socket_options{}.send_hwm);
    return o;
  }

  mdp::client client_;
  std::vector<std::byte> payload_;
  std::size_t size_;
  std::chrono::milliseconds timeout_;
};

outcome run_fabric(const spec& s, watchdog& dog) {
  context ctx;
  dog.on_expiry([&ctx] { ctx.shutdown(); });
  const expiry_guard guard{dog};
  fabric_rig rig(ctx, s);
  const auto health = [&rig] { rig.check(); };
  if (s.client == client_kind::sync) {
    fabric_sync c(ctx, rig.endpoint(), s);
    return sync_loop(c, s, health);
  }
  fabric_async c(ctx, rig.endpoint(), s);
  return s.rate > 0 ? open_loop(c, s, health) : closed_window(c, s, health);
}

// ---- raw cppzmq: proxy, echo threads, client

void set_common(zmq::socket_t& sock, int hwm) {
  sock.set(zmq::sockopt::sndhwm, hwm);
  sock.set(zmq::sockopt::rcvhwm, hwm);
  sock.set(zmq::sockopt::linger, 0);
}

// Echoes every message (all its frames, the proxy's routing frame included) back where it came
// from. A probe (1-byte body) is answered with the thread's index instead.
// Behind the load balancer (`credit` > 0) it first announces how many requests it takes at once.
void raw_echo(zmq::context_t& ctx, const std::string& endpoint, int index, failure_injection inject,
              int credit, const std::atomic<bool>& stop) {
  zmq::socket_t sock(ctx, zmq::socket_type::dealer);
  set_common(sock, 1000);
  sock.set(zmq::sockopt::rcvtimeo, static_cast<int>(slice.count()));
  sock.set(zmq::sockopt::sndtimeo, static_cast<int>(slice.count()));
  sock.connect(endpoint);
  if (credit > 0) {
    const auto c = static_cast<std::uint32_t>(credit);
    if (!sock.send(zmq::const_buffer(&ready_tag, 1), zmq::send_flags::sndmore) ||
        !sock.send(zmq::const_buffer(&c, sizeof c), zmq::send_flags::none))
      fail("echo: cannot announce itself to the load balancer");
  }
  std::vector<zmq::message_t> parts(2);
  while (!stop.load(std::memory_order_acquire)) {
    if (!sock.recv(parts[0], zmq::recv_flags::none)) continue;
    std::size_t n = 1;
    while (parts[n - 1].more()) {
      if (n == parts.size()) parts.emplace_back();
      (void)sock.recv(parts[n++], zmq::recv_flags::none);
    }
    if (parts[n - 1].size() == 1) {
      const char answer[2] = {probe_tag, static_cast<char>(index)};
      parts[n - 1].rebuild(answer, sizeof answer);
    } else {
      inject.before_answer();
    }
    for (std::size_t i = 0; i < n;) {
      const auto flags = i + 1 < n ? zmq::send_flags::sndmore : zmq::send_flags::none;
      if (sock.send(parts[i], flags)) {
        ++i;
      } else if (stop.load(std::memory_order_acquire)) {
        return;
      } else if (i == 0) {
        continue;  // no room yet: the proxy will read
      } else {
        fail("echo: the rest of a message could not be sent");
      }
    }
  }
}

class raw_rig {
 public:
  raw_rig(zmq::context_t& ctx, const spec& s) : control_(ctx, zmq::socket_type::pair) {
    zmq::socket_t front(ctx, zmq::socket_type::router);
    zmq::socket_t back(ctx, zmq::socket_type::dealer);
    set_common(front, hub_hwm);
    set_common(back, hub_hwm);
    front.bind(endpoint_for(s.transport, "front"));
    back.bind(endpoint_for(s.transport, "back"));
    front_endpoint_ = front.get(zmq::sockopt::last_endpoint);
    const std::string back_endpoint = back.get(zmq::sockopt::last_endpoint);
    const std::string control_endpoint = endpoint_for(transport_kind::inproc, "control");
    control_.set(zmq::sockopt::linger, 0);
    control_.bind(control_endpoint);
    zmq::socket_t control_peer(ctx, zmq::socket_type::pair);
    control_peer.set(zmq::sockopt::linger, 0);
    control_peer.connect(control_endpoint);
    proxy_ = std::thread([this, front = std::move(front), back = std::move(back),
                          peer = std::move(control_peer)]() mutable {
      try {
        zmq::proxy_steerable(front, back, zmq::socket_ref(), peer);
      } catch (const zmq::error_t& e) {
        if (e.num() != ETERM) threads_.note(std::string("proxy: ") + e.what());
      }
    });
    try {
      for (int i = 0; i < s.workers; ++i)
        threads_.spawn([&ctx, back_endpoint, i, inject = injection_for(s, i)](const std::atomic<bool>& stop) {
          raw_echo(ctx, back_endpoint, i, inject, 0, stop);
        });
    } catch (...) {
      shut_down();
      throw;
    }
  }
  ~raw_rig() { shut_down(); }
  raw_rig(const raw_rig&) = delete;
  raw_rig& operator=(const raw_rig&) = delete;

  const std::string& endpoint() const noexcept { return front_endpoint_; }
  void check() const {
    if (threads_.failed()) fail("the raw echo failed: " + threads_.error());
  }

 private:
  // The proxy first, while the echo threads still read its backend: a proxy blocked sending to a
  // DEALER with no peer left would never see TERMINATE.
  void shut_down() noexcept {
    try {
      (void)control_.send(zmq::str_buffer("TERMINATE"), zmq::send_flags::dontwait);
    } catch (const zmq::error_t&) {
      // the context was shut down: the proxy ends by itself
    }
    if (proxy_.joinable()) proxy_.join();
    threads_.stop();
  }

  zmq::socket_t control_;
  std::string front_endpoint_;
  crew threads_;
  std::thread proxy_;  // joined by the destructor, after the echo threads
};

// The load balancer: one ROUTER for clients and workers. A client sends [body] (the ROUTER adds
// its id); a worker sends "R" + credit once, then [client id, body] for each reply. Requests wait
// in a queue until a worker has credit left; `ready` holds one entry per unit of free credit, so
// the workers take turns.
void serve_lb(zmq::socket_t& sock, const std::atomic<bool>& stop) {
  struct request {
    zmq::message_t client;
    zmq::message_t body;
  };
  std::deque<request> queue;
  std::deque<std::string> ready;
  std::vector<zmq::message_t> parts(3);
  while (!stop.load(std::memory_order_acquire)) {
    if (!sock.recv(parts[0], zmq::recv_flags::none)) continue;
    std::size_t n = 1;
    while (parts[n - 1].more()) {
      if (n == parts.size()) parts.emplace_back();
      (void)sock.recv(parts[n++], zmq::recv_flags::none);
    }
    if (n == 2) {  // a client's request
      queue.push_back({std::move(parts[0]), std::move(parts[1])});
    } else if (n == 3 && parts[1].size() == 1 && *static_cast<const char*>(parts[1].data()) == ready_tag &&
               parts[2].size() == sizeof(std::uint32_t)) {
      std::uint32_t credit = 0;
      std::memcpy(&credit, parts[2].data(), sizeof credit);
      for (std::uint32_t i = 0; i < credit; ++i) ready.push_back(parts[0].to_string());
    } else if (n == 3) {  // a reply: [worker, client, body]
      if (!sock.send(parts[1], zmq::send_flags::sndmore) || !sock.send(parts[2], zmq::send_flags::none))
        fail("load balancer: cannot pass a reply on");
      ready.push_back(parts[0].to_string());
    } else {
      fail("load balancer: a message of " + std::to_string(n) + " frames");
    }
    while (!queue.empty() && !ready.empty()) {
      request& r = queue.front();
      const std::string& worker = ready.front();
      if (!sock.send(zmq::const_buffer(worker.data(), worker.size()), zmq::send_flags::sndmore) ||
          !sock.send(r.client, zmq::send_flags::sndmore) || !sock.send(r.body, zmq::send_flags::none))
        fail("load balancer: cannot pass a request on");
      queue.pop_front();
      ready.pop_front();
    }
  }
}

class raw_lb_rig {
 public:
  raw_lb_rig(zmq::context_t& ctx, const spec& s) {
    zmq::socket_t sock(ctx, zmq::socket_type::router);
    set_common(sock, hub_hwm);
    sock.set(zmq::sockopt::rcvtimeo, static_cast<int>(slice.count()));
    sock.bind(endpoint_for(s.transport, "lb"));
    endpoint_ = sock.get(zmq::sockopt::last_endpoint);
    threads_.spawn([sock = std::move(sock)](const std::atomic<bool>& stop) mutable { serve_lb(sock, stop); });
    for (int i = 0; i < s.workers; ++i)
      threads_.spawn([&ctx, this, i, credit = s.credit, inject = injection_for(s, i)](const std::atomic<bool>& stop) {
        raw_echo(ctx, endpoint_, i, inject, credit, stop);
      });
  }
  raw_lb_rig(const raw_lb_rig&) = delete;
  raw_lb_rig& operator=(const raw_lb_rig&) = delete;

  const std::string& endpoint() const noexcept { return endpoint_; }
  void check() const {
    if (threads_.failed()) fail("the raw load balancer failed: " + threads_.error());
  }

 private:
  std::string endpoint_;
  crew threads_;  // the balancer and the echo threads; joined by crew's destructor
};

class raw_client {
 public:
  raw_client(zmq::context_t& ctx, const std::string& endpoint, const spec& s)
      : sock_(ctx, zmq::socket_type::dealer), payload_(s.size), size_(s.size), timeout_(s.timeout) {
    set_common(sock_, client_hwm);
    sock_.set(zmq::sockopt::rcvtimeo, static_cast<int>(slice.count()));
    sock_.connect(endpoint);
  }

  // Sends probes, one at a time, until each of the `workers` echo threads has answered one:
  // every echo thread is then connected and the proxy's round robin reaches it.
  template <class Health>
  void wait_ready(int workers, const Health& health) {
    std::vector<bool> seen(static_cast<std::size_t>(workers), false);
    int missing = workers;
    const auto deadline = steady::now() + timeout_;
    while (missing > 0) {
      const char probe[1] = {probe_tag};
      if (!sock_.send(zmq::const_buffer(probe, 1), zmq::send_flags::dontwait)) fail("raw: cannot send a probe");
      for (;;) {
        health();
        if (steady::now() > deadline)
          fail(std::to_string(workers - missing) + " of " + std::to_string(workers) +
               " raw echo threads answered within " + std::to_string(timeout_.count()) + " ms");
        if (!sock_.recv(in_, zmq::recv_flags::none)) continue;
        if (in_.size() != 2 || static_cast<const char*>(in_.data())[0] != probe_tag)
          fail("raw: an unexpected reply to a probe");
        const auto index = static_cast<std::size_t>(static_cast<const unsigned char*>(in_.data())[1]);
        if (index < seen.size() && !seen[index]) {
          seen[index] = true;
          --missing;
        }
        break;
      }
    }
  }

  bool send(std::int64_t stamp) {
    std::memcpy(payload_.data(), &stamp, sizeof stamp);
    zmq::message_t m(payload_.data(), payload_.size());
    return sock_.send(m, zmq::send_flags::dontwait).has_value();
  }

  std::optional<std::int64_t> recv(std::chrono::milliseconds wait) {
    // rcvtimeo is one slice: the only blocking wait the loops ask for.
    if (!sock_.recv(in_, wait > 0ms ? zmq::recv_flags::none : zmq::recv_flags::dontwait)) return std::nullopt;
    if (in_.more()) fail("raw: a reply of more than one frame");
    return stamp_of(in_.data(), in_.size(), size_);
  }

  int fd() const { return sock_.get(zmq::sockopt::fd); }
  bool readable() const { return (sock_.get(zmq::sockopt::events) & ZMQ_POLLIN) != 0; }

  template <class Health>
  void round_trip(std::int64_t stamp, const Health& health) {
    std::memcpy(payload_.data(), &stamp, sizeof stamp);
    zmq::message_t m(payload_.data(), payload_.size());
    if (!sock_.send(m, zmq::send_flags::dontwait)) fail("raw: send: no room on an idle socket");
    const auto deadline = steady::now() + timeout_;
    while (!sock_.recv(in_, zmq::recv_flags::none)) {
      health();
      if (steady::now() > deadline)
        fail("raw: no reply within " + std::to_string(timeout_.count()) + " ms");
    }
    if (in_.more() || stamp_of(in_.data(), in_.size(), size_) != stamp)
      fail("raw: a reply that is not the request's echo");
  }

 private:
  zmq::socket_t sock_;
  std::vector<std::byte> payload_;
  std::size_t size_;
  std::chrono::milliseconds timeout_;
  zmq::message_t in_;
};

template <class Rig>
outcome run_raw(const spec& s, watchdog& dog) {
  zmq::context_t ctx;
  dog.on_expiry([&ctx] { ctx.shutdown(); });
  const expiry_guard guard{dog};
  Rig rig(ctx, s);
  const auto health = [&rig] { rig.check(); };
  raw_client c(ctx, rig.endpoint(), s);
  c.wait_ready(s.workers, health);
  if (s.client == client_kind::sync) return sync_loop(c, s, health);
  return s.rate > 0 ? open_loop(c, s, health) : closed_window(c, s, health);
}

}  // namespace

std::string_view to_string(side s) noexcept {
  switch (s) {
    case side::fabric: return "fabric";
    case side::raw: return "raw";
    case side::raw_lb: return "raw_lb";
  }
  return "?";
}

std::string_view to_string(client_kind c) noexcept { return c == client_kind::sync ? "sync" : "async"; }

std::optional<client_kind> parse_client(std::string_view s) noexcept {
  if (s == "sync") return client_kind::sync;
  if (s == "async") return client_kind::async;
  return std::nullopt;
}


std::string describe(const spec& s) {
  std::string d = std::string(to_string(s.impl));
  if (s.impl == side::raw_lb) d += " credit=" + std::to_string(s.credit);
  if (s.impl == side::fabric && s.worker_credit > 1) d += " credit=" + std::to_string(s.worker_credit);
  d += " " + std::string(to_string(s.client));
  if (s.client == client_kind::async) {
    if (s.rate > 0) {
      d += " open rate=" + std::to_string(static_cast<long long>(s.rate));
    } else {
      d += " window=" + std::to_string(s.window);
    }
  }
  d += " workers=" + std::to_string(s.workers) + " size=" + std::to_string(s.size) + " " +
       std::string(to_string(s.transport));
  return d;
}

outcome measure(const spec& s) {
  if (s.size < min_size) fail("bodies must be at least " + std::to_string(min_size) + " bytes");
  if (s.workers < 1 || s.workers > 255) fail("workers must be between 1 and 255");
  if (s.count < 1) fail("count must be at least 1");
  if (s.window < 1) fail("window must be at least 1");
  if (s.rate < 0 || (s.rate > 0 && s.client != client_kind::async))
    fail("an open loop (rate > 0) needs the async client");
  if (s.timeout < 1ms) fail("timeout must be at least 1 ms");
  if (s.credit < 1) fail("credit must be at least 1");
  if (s.worker_credit < 1 || s.worker_credit > 1024) fail("worker credit must be between 1 and 1024");
  // Generous: only a run that is stuck gets near it, since every wait inside is bounded.
  const double total = static_cast<double>(s.warmup + s.count);
  const double expected_s = s.rate > 0 ? total / s.rate : total / 1000.0;
  const auto limit = 3 * s.timeout + std::chrono::milliseconds(static_cast<std::int64_t>(expected_s * 1000)) + 30s;
  watchdog dog(describe(s), limit);
  try {
    switch (s.impl) {
      case side::fabric: return run_fabric(s, dog);
      case side::raw: return run_raw<raw_rig>(s, dog);
      case side::raw_lb: return run_raw<raw_lb_rig>(s, dog);
    }
    fail("unknown side");
  } catch (const zmq::error_t& e) {
    fail(std::string("libzmq: ") + e.what());
  }
}

}  // namespace fabric::perf::majordomo_bench
