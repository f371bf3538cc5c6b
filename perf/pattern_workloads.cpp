// The pattern workloads of fabric-perf. See pattern_workloads.hpp.
//
// Every message's first payload byte is a tag: 'D' data, 'P' probe (used to wait until a
// subscription is live), 'S' stop (ends an echo server). Open-loop messages carry their intended
// send time in bytes 1..8. Both socket policies read the tag, so it costs them the same.
#include "pattern_workloads.hpp"

#include <fabric/fabric.hpp>

#include <zmq.hpp>

#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <thread>

namespace fabric::perf {
namespace {

using steady = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr std::byte tag_data{'D'};
constexpr std::byte tag_probe{'P'};
constexpr std::byte tag_stop{'S'};

[[noreturn]] void fail(const std::string& what) { throw std::runtime_error(what); }

std::byte tag_of(const zmq::message_t& f) {
  return f.size() == 0 ? std::byte{0} : *static_cast<const std::byte*>(f.data());
}

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now().time_since_epoch())
      .count();
}

struct socket_config {
  int hwm = 1000;
  bool subscribe_all = false;
  std::chrono::milliseconds timeout{10000};
  std::chrono::milliseconds linger{0};
};

bool poll_readable(void* socket, std::chrono::milliseconds timeout) {
  zmq_pollitem_t item{socket, 0, ZMQ_POLLIN, 0};
  return zmq_poll(&item, 1, static_cast<long>(timeout.count())) > 0;
}

// The baseline: raw cppzmq, written the way a cppzmq user would write it.
class raw_socket {
 public:
  using context_type = zmq::context_t;

  raw_socket(zmq::context_t& ctx, zmq::socket_type type, const socket_config& c) : s_(ctx, type) {
    s_.set(zmq::sockopt::sndhwm, c.hwm);
    s_.set(zmq::sockopt::rcvhwm, c.hwm);
    s_.set(zmq::sockopt::linger, static_cast<int>(c.linger.count()));
    s_.set(zmq::sockopt::sndtimeo, static_cast<int>(c.timeout.count()));
    s_.set(zmq::sockopt::rcvtimeo, static_cast<int>(c.timeout.count()));
    if (c.subscribe_all) s_.set(zmq::sockopt::subscribe, "");
  }
  std::string bind(const std::string& endpoint) {
    s_.bind(endpoint);
    return s_.get(zmq::sockopt::last_endpoint);
  }
  void connect(const std::string& endpoint) { s_.connect(endpoint); }
  void send(const void* data, std::size_t size) {
    zmq::message_t m(data, size);
    if (!s_.send(m, zmq::send_flags::none)) fail("raw: send timed out");
  }
  // Receives one whole message and returns its last frame (the payload).
  const zmq::message_t& recv() {
    std::size_t i = 0;
    do {
      if (i == parts_.size()) parts_.emplace_back();
      if (!s_.recv(parts_[i], zmq::recv_flags::none)) fail("raw: receive timed out (messages lost?)");
    } while (parts_[i++].more());
    received_ = i;
    return parts_[i - 1];
  }
  // Sends the message last received, all its frames (a ROUTER's peer id included), on `out`.
  void forward(raw_socket& out) {
    for (std::size_t i = 0; i < received_; ++i) {
      const auto flags = i + 1 < received_ ? zmq::send_flags::sndmore : zmq::send_flags::none;
      if (!out.s_.send(parts_[i], flags)) fail("raw: send timed out");
    }
  }
  bool readable(std::chrono::milliseconds timeout) { return poll_readable(s_.handle(), timeout); }

 private:
  zmq::socket_t s_;
  std::vector<zmq::message_t> parts_;
  std::size_t received_ = 0;
};

// fabric: a fabric socket used the way the API intends on the hot path: one-frame sends of a
// frame built from the payload, receives into a reused message, forwards by moving the frames.
// any_socket shares its send/recv code with the typed pattern classes (they only re-export it).
class fabric_socket {
 public:
  using context_type = fabric::context;

  fabric_socket(fabric::context& ctx, zmq::socket_type type, const socket_config& c)
      : s_(ctx, type,
           {.send_hwm = c.hwm,
            .recv_hwm = c.hwm,
            .linger = c.linger,
            .send_timeout = c.timeout,
            .recv_timeout = c.timeout}) {
    if (c.subscribe_all) s_.handle().set(zmq::sockopt::subscribe, "");
  }
  std::string bind(const std::string& endpoint) { return s_.bind(endpoint); }
  void connect(const std::string& endpoint) { s_.connect(endpoint); }
  void send(const void* data, std::size_t size) {
    if (auto r = s_.send(fabric::frame(data, size)); !r) fail("fabric: send: " + r.error().message());
  }
  const fabric::frame& recv() {
    if (auto r = s_.recv(in_); !r) fail("fabric: receive: " + r.error().message() + " (messages lost?)");
    return in_.back();
  }
  void forward(fabric_socket& out) {
    if (auto r = out.s_.send(std::move(in_)); !r) fail("fabric: send: " + r.error().message());
  }
  bool readable(std::chrono::milliseconds timeout) { return poll_readable(s_.native(), timeout); }

 private:
  fabric::any_socket s_;
  fabric::message in_;
};

std::string make_endpoint(transport t) { return support::loopback_endpoint(t, "fabric-perf"); }

// Who binds (the server / receiver) and who connects (the client / sender) in each pattern.
struct roles {
  zmq::socket_type server;
  zmq::socket_type client;
  bool two_way_socket;  // the client receives replies on the same socket
};

roles roles_of(pattern p) {
  switch (p) {
    case pattern::req_rep: return {zmq::socket_type::rep, zmq::socket_type::req, true};
    case pattern::router_dealer: return {zmq::socket_type::router, zmq::socket_type::dealer, true};
    case pattern::pub_sub: return {zmq::socket_type::sub, zmq::socket_type::pub, false};
    case pattern::push_pull: return {zmq::socket_type::pull, zmq::socket_type::push, false};
  }
  return {zmq::socket_type::pull, zmq::socket_type::push, false};
}

socket_config config_for(const workload& w, bool receiving_sub) {
  socket_config c;
  c.timeout = w.timeout;
  // PUB drops past its HWM; lift it so every message is counted (the same for both policies).
  if (w.pat == pattern::pub_sub) c.hwm = 0;
  c.subscribe_all = receiving_sub;
  return c;
}

// Waits until a PUB -> SUB path delivers: sends probes until `ready` is set by the receiver.
template <class S>
void send_probes_until(S& tx, const std::atomic<bool>& ready, std::chrono::milliseconds timeout) {
  std::byte probe[1] = {tag_probe};
  const auto deadline = steady::now() + timeout;
  while (!ready.load(std::memory_order_acquire)) {
    if (steady::now() > deadline) fail("subscription did not become live in time");
    tx.send(probe, sizeof probe);
    std::this_thread::sleep_for(1ms);  // pacing the probes, not synchronisation
  }
}

// Runs `body` on a thread; join() rethrows what it threw.
class worker {
 public:
  template <class F>
  explicit worker(F body)
      : thread_([this, body = std::move(body)]() mutable {
          try {
            body();
          } catch (...) {
            error_ = std::current_exception();
          }
        }) {}
  ~worker() {
    if (thread_.joinable()) thread_.join();
  }
  void join() {
    thread_.join();
    if (error_) std::rethrow_exception(error_);
  }

 private:
  std::exception_ptr error_;
  std::thread thread_;
};

// Opened by the receiver once it has every message (or has given up). The sender waits for it
// before closing its socket: a socket closed with linger 0 drops what libzmq has not yet written
// to the connection, and the receiver would wait for a tail that never comes.
class latch {
 public:
  void open() noexcept {
    {
      std::lock_guard lock(mutex_);
      open_ = true;
    }
    cv_.notify_all();
  }
  void wait(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    cv_.wait_for(lock, timeout, [&] { return open_; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool open_ = false;
};

// Opens a latch when it goes out of scope, whether the receiver finished or threw.
struct open_on_exit {
  latch& l;
  ~open_on_exit() { l.open(); }
};

// Echoes every message received on `rx` (back on `rx`, or on `tx` when given) until a stop.
template <class S>
void serve_echo(S& rx, S* tx) {
  for (;;) {
    const bool stop = tag_of(rx.recv()) == tag_stop;
    rx.forward(tx != nullptr ? *tx : rx);
    if (stop) return;
  }
}

// ---- one-way streams (throughput, and open-loop latency)

// Streams `warmup + count` data messages from a client to a server socket of the pattern.
// `send_all(tx, payload, total)` runs on the sending thread and decides how and when to send;
// `on_data(frame, index)` runs on the receiving thread for each data message as it arrives.
template <class S, class SendAll, class OnData>
void one_way_stream(const workload& w, SendAll send_all, OnData on_data) {
  typename S::context_type ctx;
  const roles r = roles_of(w.pat);
  S rx(ctx, r.server, config_for(w, w.pat == pattern::pub_sub));
  const std::string endpoint = rx.bind(make_endpoint(w.trans));
  std::atomic<bool> ready{w.pat != pattern::pub_sub};
  const std::uint64_t total = w.warmup + w.count;
  latch all_received;

  worker sender([&] {
    S tx(ctx, r.client, config_for(w, false));
    tx.connect(endpoint);
    send_probes_until(tx, ready, w.timeout);
    std::vector<std::byte> payload(w.size);
    payload[0] = tag_data;
    send_all(tx, payload, total);
    all_received.wait(w.timeout);
  });

  {
    const open_on_exit release{all_received};
    for (std::uint64_t received = 0; received < total;) {
      const auto& f = rx.recv();
      if (tag_of(f) == tag_probe) {
        ready.store(true, std::memory_order_release);
        continue;
      }
      on_data(f, received++);
    }
  }
  sender.join();
}

template <class S>
double thr_one_way(const workload& w) {
  const std::uint64_t total = w.warmup + w.count;
  steady::time_point start = steady::now();
  steady::time_point end = start;
  one_way_stream<S>(
      w,
      [](S& tx, const std::vector<std::byte>& payload, std::uint64_t n) {
        for (std::uint64_t i = 0; i < n; ++i) tx.send(payload.data(), payload.size());
      },
      [&](const zmq::message_t&, std::uint64_t index) {
        if (index + 1 == w.warmup) start = steady::now();
        if (index + 1 == total) end = steady::now();
      });
  return static_cast<double>(w.count) / std::chrono::duration<double>(end - start).count();
}

template <class S>
double thr_round_trip(const workload& w) {
  typename S::context_type ctx;
  const roles r = roles_of(w.pat);
  S server(ctx, r.server, config_for(w, false));
  const std::string endpoint = server.bind(make_endpoint(w.trans));
  worker echo([&] { serve_echo<S>(server, nullptr); });

  S client(ctx, r.client, config_for(w, false));
  client.connect(endpoint);
  std::vector<std::byte> payload(w.size);
  payload[0] = tag_data;
  steady::time_point start = steady::now();
  for (std::uint64_t i = 0; i < w.warmup + w.count; ++i) {
    if (i == w.warmup) start = steady::now();
    client.send(payload.data(), payload.size());
    (void)client.recv();
  }
  const auto elapsed = std::chrono::duration<double>(steady::now() - start).count();
  payload[0] = tag_stop;
  client.send(payload.data(), payload.size());
  (void)client.recv();
  echo.join();
  return static_cast<double>(w.count) / elapsed;
}

// ---- latency

template <class S>
histogram lat_closed(const workload& w) {
  typename S::context_type ctx;
  const roles r = roles_of(w.pat);
  const bool pubsub = w.pat == pattern::pub_sub;
  // One-way patterns get a second pair for the way back (server PUSH/PUB -> client PULL/SUB).
  const zmq::socket_type back_server = pubsub ? zmq::socket_type::pub : zmq::socket_type::push;
  const zmq::socket_type back_client = pubsub ? zmq::socket_type::sub : zmq::socket_type::pull;

  S server_rx(ctx, r.server, config_for(w, pubsub));
  const std::string rx_endpoint = server_rx.bind(make_endpoint(w.trans));
  std::optional<S> server_tx;
  std::string tx_endpoint;
  if (!r.two_way_socket) {
    server_tx.emplace(ctx, back_server, config_for(w, false));
    tx_endpoint = server_tx->bind(make_endpoint(w.trans));
  }
  worker echo([&] { serve_echo<S>(server_rx, server_tx ? &*server_tx : nullptr); });

  S client_tx(ctx, r.client, config_for(w, false));
  client_tx.connect(rx_endpoint);
  std::optional<S> client_rx_storage;
  if (!r.two_way_socket) {
    client_rx_storage.emplace(ctx, back_client, config_for(w, pubsub));
    client_rx_storage->connect(tx_endpoint);
  }
  S& client_rx = client_rx_storage ? *client_rx_storage : client_tx;

  if (pubsub) {
    // Both subscriptions are live once a probe makes the round trip.
    std::byte probe[1] = {tag_probe};
    const auto deadline = steady::now() + w.timeout;
    for (bool seen = false; !seen;) {
      if (steady::now() > deadline) fail("subscriptions did not become live in time");
      client_tx.send(probe, sizeof probe);
      while (!seen && client_rx.readable(1ms)) seen = tag_of(client_rx.recv()) == tag_probe;
    }
  }
  // Probes still in flight are skipped by tag.
  auto receive_data = [&] {
    while (tag_of(client_rx.recv()) == tag_probe) {
    }
  };

  histogram h;
  std::vector<std::byte> payload(w.size);
  payload[0] = tag_data;
  for (std::uint64_t i = 0; i < w.warmup + w.count; ++i) {
    const auto t0 = steady::now();
    client_tx.send(payload.data(), payload.size());
    receive_data();
    const auto rtt = std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now() - t0);
    if (i >= w.warmup) h.record(static_cast<std::uint64_t>(rtt.count()) / 2);
  }
  payload[0] = tag_stop;
  client_tx.send(payload.data(), payload.size());
  receive_data();  // the stop's echo, for patterns that answer it
  echo.join();
  return h;
}

// Sleeps until shortly before `when`, then spins, so the schedule is kept to about a microsecond
// without burning a core between messages.
void wait_until(std::int64_t when_ns) {
  constexpr std::int64_t spin_ns = 20'000;
  const std::int64_t now = now_ns();
  if (when_ns - now > spin_ns)
    std::this_thread::sleep_for(std::chrono::nanoseconds(when_ns - now - spin_ns));
  while (now_ns() < when_ns) {
  }
}

template <class S>
histogram lat_open(const workload& w) {
  histogram h;
  one_way_stream<S>(
      w,
      [&](S& tx, std::vector<std::byte>& payload, std::uint64_t n) {
        ::prctl(PR_SET_TIMERSLACK, 1UL);  // wake when asked, not up to 50 us late
        const auto period = static_cast<std::int64_t>(1e9 / w.rate);
        const std::int64_t start = now_ns() + 1'000'000;
        for (std::uint64_t i = 0; i < n; ++i) {
          const std::int64_t intended = start + static_cast<std::int64_t>(i) * period;
          wait_until(intended);
          std::memcpy(payload.data() + 1, &intended, sizeof intended);
          tx.send(payload.data(), payload.size());
        }
      },
      [&](const zmq::message_t& f, std::uint64_t index) {
        const std::int64_t arrived = now_ns();
        std::int64_t intended = 0;
        std::memcpy(&intended, static_cast<const std::byte*>(f.data()) + 1, sizeof intended);
        if (index >= w.warmup)
          h.record(static_cast<std::uint64_t>(std::max<std::int64_t>(0, arrived - intended)));
      });
  return h;
}

template <class S>
double throughput(const workload& w) {
  return w.pat == pattern::req_rep ? thr_round_trip<S>(w) : thr_one_way<S>(w);
}

template <class S>
histogram latency(const workload& w) {
  return w.rate > 0 ? lat_open<S>(w) : lat_closed<S>(w);
}

}  // namespace

std::string_view to_string(pattern p) noexcept {
  switch (p) {
    case pattern::req_rep: return "req_rep";
    case pattern::router_dealer: return "router_dealer";
    case pattern::pub_sub: return "pub_sub";
    case pattern::push_pull: return "push_pull";
  }
  return "?";
}

std::string_view to_string(impl i) noexcept { return i == impl::fabric ? "fabric" : "raw"; }

std::optional<pattern> parse_pattern(std::string_view s) noexcept {
  for (pattern p : all_patterns)
    if (to_string(p) == s) return p;
  return std::nullopt;
}


bool supports(const workload& w, std::string* why) {
  auto no = [&](const char* reason) {
    if (why != nullptr) *why = reason;
    return false;
  };
  if (w.size < 1) return no("message size must be at least 1 byte");
  if (w.count < 1) return no("count must be at least 1");
  if (w.rate > 0 && w.pat == pattern::req_rep)
    return no("open-loop latency needs a one-way pattern; req_rep is lock-step");
  if (w.rate > 0 && w.size < 9) return no("open-loop latency needs messages of at least 9 bytes");
  return true;
}

std::uint64_t default_thr_count(std::size_t size, double scale) {
  // About 256 MiB per run, between 50k and 1M messages, then scaled for quick runs.
  const std::uint64_t by_bytes = (std::uint64_t{256} << 20) / std::max<std::size_t>(size, 1);
  const std::uint64_t base = std::clamp<std::uint64_t>(by_bytes, 50'000, 1'000'000);
  return std::max<std::uint64_t>(2'000, static_cast<std::uint64_t>(static_cast<double>(base) * scale));
}

double measure_throughput(impl which, const workload& w) {
  std::string why;
  if (!supports(w, &why)) fail(why);
  return which == impl::fabric ? throughput<fabric_socket>(w) : throughput<raw_socket>(w);
}

histogram measure_latency(impl which, const workload& w) {
  std::string why;
  if (!supports(w, &why)) fail(why);
  return which == impl::fabric ? latency<fabric_socket>(w) : latency<raw_socket>(w);
}

// ---- cross-host pairs

namespace {

// The bound on any single wait of the pair tools; FABRIC_PERF_PAIR_TIMEOUT_MS overrides 60 s.
std::chrono::milliseconds pair_timeout() {
  if (const char* v = std::getenv("FABRIC_PERF_PAIR_TIMEOUT_MS"); v != nullptr && std::atol(v) > 0)
    return std::chrono::milliseconds(std::atol(v));
  return 60s;
}

template <class S>
void local_lat(const std::string& endpoint, std::uint64_t count) {
  typename S::context_type ctx;
  S rep(ctx, zmq::socket_type::rep, {.hwm = 1000, .subscribe_all = false, .timeout = pair_timeout()});
  rep.bind(endpoint);
  for (std::uint64_t i = 0; i < count; ++i) {
    (void)rep.recv();
    rep.forward(rep);
  }
}

template <class S>
histogram remote_lat(const std::string& endpoint, std::size_t size, std::uint64_t count) {
  typename S::context_type ctx;
  S req(ctx, zmq::socket_type::req, {.hwm = 1000, .subscribe_all = false, .timeout = pair_timeout()});
  req.connect(endpoint);
  std::vector<std::byte> payload(std::max<std::size_t>(size, 1));
  payload[0] = tag_data;
  histogram h;
  for (std::uint64_t i = 0; i < count; ++i) {
    const auto t0 = steady::now();
    req.send(payload.data(), size);
    (void)req.recv();
    const auto rtt = std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now() - t0);
    h.record(static_cast<std::uint64_t>(rtt.count()) / 2);
  }
  return h;
}

template <class S>
double local_thr(const std::string& endpoint, std::uint64_t count) {
  typename S::context_type ctx;
  S pull(ctx, zmq::socket_type::pull, {.hwm = 1000, .subscribe_all = false, .timeout = pair_timeout()});
  pull.bind(endpoint);
  (void)pull.recv();  // the clock starts at the first message, as libzmq's local_thr does
  const auto start = steady::now();
  for (std::uint64_t i = 1; i < count; ++i) {
    try {
      (void)pull.recv();
    } catch (const std::exception& e) {
      fail(std::string(e.what()) + " after " + std::to_string(i) + " of " + std::to_string(count) +
           " messages");
    }
  }
  const auto elapsed = std::chrono::duration<double>(steady::now() - start).count();
  return count > 1 ? static_cast<double>(count - 1) / elapsed : 0.0;
}

template <class S>
void remote_thr(const std::string& endpoint, std::size_t size, std::uint64_t count) {
  typename S::context_type ctx;
  // A bounded linger lets the tail of the stream reach the peer before the context ends.
  S push(ctx, zmq::socket_type::push,
         {.hwm = 1000, .subscribe_all = false, .timeout = pair_timeout(), .linger = pair_timeout()});
  push.connect(endpoint);
  std::vector<std::byte> payload(std::max<std::size_t>(size, 1));
  for (std::uint64_t i = 0; i < count; ++i) push.send(payload.data(), size);
}

}  // namespace

void run_local_lat(impl which, const std::string& endpoint, std::size_t, std::uint64_t count) {
  which == impl::fabric ? local_lat<fabric_socket>(endpoint, count)
                        : local_lat<raw_socket>(endpoint, count);
}

histogram run_remote_lat(impl which, const std::string& endpoint, std::size_t size,
                         std::uint64_t count) {
  return which == impl::fabric ? remote_lat<fabric_socket>(endpoint, size, count)
                               : remote_lat<raw_socket>(endpoint, size, count);
}

double run_local_thr(impl which, const std::string& endpoint, std::size_t, std::uint64_t count) {
  return which == impl::fabric ? local_thr<fabric_socket>(endpoint, count)
                               : local_thr<raw_socket>(endpoint, count);
}

void run_remote_thr(impl which, const std::string& endpoint, std::size_t size,
                    std::uint64_t count) {
  which == impl::fabric ? remote_thr<fabric_socket>(endpoint, size, count)
                        : remote_thr<raw_socket>(endpoint, size, count);
}

}  // namespace fabric::perf
