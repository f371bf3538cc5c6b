// fabric-perf's freelance subcommand: request/reply round trips per second and their latency
// through fabric's Freelance (10/FLP) client and servers, over 1 and 3 servers, each beside a raw
// cppzmq ROUTER-to-ROUTER baseline doing the same round trips over the same transport in the same
// run (a raw client ROUTER addressing raw server ROUTERs by endpoint, as 10/FLP does, with no
// pings, retries or bookkeeping). Two clients:
//
//   sync   one request at a time (both sides send each request to the first server)
//   async  a window of requests in flight (fabric spreads them by load; raw goes round-robin)
//
// Servers echo the request body and run on threads of this process. Repetitions alternate which
// side goes first.
#include "bench.hpp"
#include "harness/histogram.hpp"
#include "harness/stats.hpp"

#include <fabric/context.hpp>
#include <fabric/freelance.hpp>
#include <fabric_support/endpoint.hpp>

#include <zmq.hpp>
#include <zmq_addon.hpp>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace fabric::perf {
namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;
namespace fl = fabric::freelance;

struct freelance_cli {
  std::vector<std::string> clients{"sync", "async"};
  std::vector<int> servers{1, 3};
  std::size_t size = 256;
  std::string transport = "tcp";
  std::uint64_t count = 0;       // 0: a default per client
  std::size_t window = 64;
  bool quick = false;
};

std::uint64_t count_for(const freelance_cli& o, bool async) {
  if (o.count != 0) return o.count;
  if (o.quick) return async ? 1'000 : 300;
  return async ? 50'000 : 10'000;
}

// A free port on loopback, for a server whose identity must name its port before it binds.
std::string free_tcp_endpoint() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("cannot make a socket to find a free port");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  unsigned short port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
    port = ntohs(a.sin_port);
  ::close(fd);
  if (port == 0) throw std::runtime_error("cannot find a free port on loopback");
  return "tcp://127.0.0.1:" + std::to_string(port);
}

std::string server_endpoint(const std::string& transport, int i) {
  if (transport == "tcp") return free_tcp_endpoint();
  const auto t = fabric::support::parse_transport(transport);
  if (!t) throw std::runtime_error("unknown transport " + transport);
  return fabric::support::loopback_endpoint(*t, "flp" + std::to_string(i));
}

struct outcome {
  double rate = 0;
  histogram latency;
};

// --- raw cppzmq ---

// A 10/FLP echo server in raw cppzmq: ROUTER with its endpoint as identity, PING -> PONG.
class raw_server {
 public:
  raw_server(zmq::context_t& ctx, const std::string& endpoint) : sock_(ctx, zmq::socket_type::router) {
    sock_.set(zmq::sockopt::routing_id, endpoint);
    sock_.set(zmq::sockopt::linger, 0);
    sock_.set(zmq::sockopt::rcvtimeo, 50);
    sock_.set(zmq::sockopt::sndhwm, 0);
    sock_.set(zmq::sockopt::rcvhwm, 0);
    sock_.bind(endpoint);
    thread_ = std::thread([this] { serve(); });
  }
  ~raw_server() {
    stop_ = true;
    thread_.join();
  }

 private:
  void serve() {
    std::vector<zmq::message_t> m;
    while (!stop_) {
      m.clear();
      if (!zmq::recv_multipart(sock_, std::back_inserter(m))) continue;
      if (m.size() == 2) m[1] = zmq::message_t(std::string_view("PONG"));
      (void)zmq::send_multipart(sock_, m);
    }
  }
  zmq::socket_t sock_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

zmq::message_t sequence_frame(std::uint64_t n) {
  std::array<unsigned char, 8> b{};
  for (int i = 7; i >= 0; --i, n >>= 8) b[static_cast<std::size_t>(i)] = static_cast<unsigned char>(n);
  return zmq::message_t(b.data(), b.size());
}
std::uint64_t sequence_of(const zmq::message_t& f) {
  std::uint64_t n = 0;
  const auto* p = static_cast<const unsigned char*>(f.data());
  for (std::size_t i = 0; i < 8 && i < f.size(); ++i) n = (n << 8) | p[i];
  return n;
}

outcome measure_raw(const freelance_cli& o, int servers, bool async) {
  zmq::context_t ctx;
  std::vector<std::string> endpoints;
  std::vector<std::unique_ptr<raw_server>> running;
  for (int i = 0; i < servers; ++i) {
    endpoints.push_back(server_endpoint(o.transport, i));
    running.push_back(std::make_unique<raw_server>(ctx, endpoints.back()));
  }
  zmq::socket_t client(ctx, zmq::socket_type::router);
  client.set(zmq::sockopt::router_mandatory, 1);
  client.set(zmq::sockopt::linger, 0);
  client.set(zmq::sockopt::sndhwm, 0);
  client.set(zmq::sockopt::rcvhwm, 0);
  for (const auto& e : endpoints) client.connect(e);
  // 10/FLP's rule: no request before the server answered a ping.
  for (const auto& e : endpoints) {
    const auto deadline = clock_type::now() + 10s;
    for (;;) {
      try {
        std::array<zmq::message_t, 2> ping{zmq::message_t(e), zmq::message_t(std::string_view("PING"))};
        if (zmq::send_multipart(client, ping)) break;
      } catch (const zmq::error_t& err) {
        if (err.num() != EHOSTUNREACH) throw;
      }
      if (clock_type::now() > deadline) throw std::runtime_error("raw: server " + e + " never connected");
      std::this_thread::yield();
    }
    std::vector<zmq::message_t> pong;
    (void)zmq::recv_multipart(client, std::back_inserter(pong));
  }
  const std::string body(o.size, 'x');
  const std::uint64_t count = count_for(o, async);
  const std::uint64_t warmup = std::max<std::uint64_t>(50, count / 10);
  const std::uint64_t total = count + warmup;
  std::vector<clock_type::time_point> sent_at(total);
  outcome out;
  std::uint64_t next = 0, done = 0;
  clock_type::time_point start{};
  std::vector<zmq::message_t> in;
  const auto send = [&] {
    const std::string& to = endpoints[async ? next % endpoints.size() : 0];
    std::array<zmq::message_t, 3> m{zmq::message_t(to), sequence_frame(next), zmq::message_t(body)};
    sent_at[next] = clock_type::now();
    if (!zmq::send_multipart(client, m)) throw std::runtime_error("raw: send refused");
    ++next;
  };
  const std::size_t window = async ? o.window : 1;
  while (done < total) {
    while (next < total && next - done < window) send();
    in.clear();
    if (!zmq::recv_multipart(client, std::back_inserter(in)) || in.size() != 3)
      throw std::runtime_error("raw: a bad reply");
    const std::uint64_t seq = sequence_of(in[1]);
    const auto now = clock_type::now();
    if (done == warmup) start = now;
    if (seq >= warmup) out.latency.record(static_cast<std::uint64_t>((now - sent_at[seq]).count()));
    ++done;
  }
  const double seconds = std::chrono::duration<double>(clock_type::now() - start).count();
  out.rate = seconds > 0 ? static_cast<double>(count) / seconds : 0;
  return out;
}

// --- fabric ---

outcome measure_fabric(const freelance_cli& o, int servers, bool async) {
  fabric::context ctx;
  std::vector<std::unique_ptr<fl::server>> running;
  std::vector<std::string> endpoints;
  const socket_options unbounded{.send_hwm = 0, .recv_hwm = 0};
  for (int i = 0; i < servers; ++i) {
    auto s = std::make_unique<fl::server>(ctx, fl::server_options{.endpoint = server_endpoint(o.transport, i),
                                                                   .socket = unbounded},
                                          [](message&& m) { return std::move(m); });
    s->start();
    endpoints.push_back(s->endpoint());
    running.push_back(std::move(s));
  }
  fl::client_options co{.servers = endpoints, .timeout = 10s, .request_expiry = 20s};
  co.socket.send_hwm = 0;
  co.socket.recv_hwm = 0;
  const std::string body(o.size, 'x');
  const std::uint64_t count = count_for(o, async);
  const std::uint64_t warmup = std::max<std::uint64_t>(50, count / 10);
  outcome out;
  if (!async) {
    fl::client c(ctx, co);
    clock_type::time_point start{};
    for (std::uint64_t i = 0; i < count + warmup; ++i) {
      if (i == warmup) start = clock_type::now();
      const auto t0 = clock_type::now();
      auto r = c.request(message(body));
      if (!r) throw std::runtime_error("fabric: request failed: " + r.error().message());
      if (i >= warmup) out.latency.record(static_cast<std::uint64_t>((clock_type::now() - t0).count()));
    }
    const double seconds = std::chrono::duration<double>(clock_type::now() - start).count();
    out.rate = seconds > 0 ? static_cast<double>(count) / seconds : 0;
    return out;
  }
  co.max_outstanding = o.window;
  fl::async_client c(ctx, co);
  // Every server live first, as the raw side waits for every PONG.
  fl::reply r;
  const auto ready_by = clock_type::now() + 10s;
  while (c.live_servers() < endpoints.size()) {
    (void)c.recv(r, 1ms);
    if (clock_type::now() > ready_by) throw std::runtime_error("fabric: servers never became live");
  }
  const std::uint64_t total = count + warmup;
  std::vector<clock_type::time_point> sent_at;
  sent_at.reserve(total);
  std::vector<std::uint64_t> index_of_id;  // ids are consecutive from the first one
  std::uint64_t first_id = 0, next = 0, done = 0;
  clock_type::time_point start{};
  while (done < total) {
    while (next < total && next - done < o.window) {
      sent_at.push_back(clock_type::now());
      auto id = c.send(message(body));
      if (!id) throw std::runtime_error("fabric: send failed: " + id.error().message());
      if (next == 0) first_id = *id;
      ++next;
    }
    auto got = c.recv(r, 10s);
    if (!got) throw std::runtime_error("fabric: recv failed: " + got.error().message());
    if (r.status != fl::reply_status::ok) throw std::runtime_error("fabric: a request failed");
    const std::uint64_t seq = r.id - first_id;
    const auto now = clock_type::now();
    if (done == warmup) start = now;
    if (seq >= warmup && seq < sent_at.size())
      out.latency.record(static_cast<std::uint64_t>((now - sent_at[seq]).count()));
    ++done;
  }
  const double seconds = std::chrono::duration<double>(clock_type::now() - start).count();
  out.rate = seconds > 0 ? static_cast<double>(count) / seconds : 0;
  return out;
}

double pct(double a, double b) { return b > 0 ? a / b * 100.0 : std::nan(""); }

void run_freelance(session& s, const freelance_cli& o) {
  for (const std::string& client : o.clients) {
    if (client != "sync" && client != "async")
      throw CLI::ValidationError("--clients", "'" + client + "' is not sync or async");
  }
  for (const std::string& client : o.clients) {
    const bool async = client == "async";
    for (const int servers : o.servers) {
      std::vector<double> rates[2];
      std::vector<histogram> latencies[2];
      std::vector<double> vs_raw;
      bool failed = false;
      for (int rep = 0; rep < s.options.reps && !failed; ++rep) {
        double rate[2] = {0, 0};
        std::vector<int> order{0};
        if (s.options.with_baseline()) order.push_back(1);
        if (rep % 2 == 1) std::reverse(order.begin(), order.end());
        for (const int side : order) {
          try {
            outcome out = side == 0 ? measure_fabric(o, servers, async) : measure_raw(o, servers, async);
            rate[side] = out.rate;
            rates[side].push_back(out.rate);
            latencies[side].push_back(std::move(out.latency));
          } catch (const std::exception& e) {
            s.fail("freelance " + std::string(side == 0 ? "fabric " : "raw ") + client + " servers=" +
                   std::to_string(servers) + ": " + e.what());
            failed = true;
            break;
          }
        }
        if (!failed && rate[1] > 0) vs_raw.push_back(rate[0] / rate[1] * 100.0);
      }
      if (failed || rates[0].empty()) continue;
      std::vector<run> runs;
      for (int side = 0; side < 2; ++side) {
        if (rates[side].empty()) continue;
        run r;
        r.set("bench", std::string("freelance"));
        r.set("impl", std::string(side == 0 ? "fabric" : "raw"));
        r.set("client", client);
        r.set("transport", o.transport);
        r.set("servers", static_cast<std::int64_t>(servers));
        r.set("size", static_cast<std::int64_t>(o.size));
        if (async) r.set("window", static_cast<std::int64_t>(o.window));
        r.set("reps", static_cast<std::int64_t>(rates[side].size()));
        r.set("count", static_cast<std::int64_t>(count_for(o, async)));
        set_summary(r, "msgs_per_s", rates[side]);
        set_latency_medians(r, latencies[side]);
        runs.push_back(std::move(r));
      }
      if (runs.size() == 2) {
        run& f = runs.front();
        if (!vs_raw.empty()) f.set("vs_raw_pct", median(vs_raw));
        f.set("p50_vs_raw_pct", pct(*f.number("p50_us"), *runs[1].number("p50_us")));
        f.set("p99_vs_raw_pct", pct(*f.number("p99_us"), *runs[1].number("p99_us")));
      }
      for (run& r : runs) s.add(std::move(r));
    }
  }
}

void register_freelance_benchmarks(CLI::App& app, session& s) {
  static freelance_cli opts;
  CLI::App* sub = app.add_subcommand(
      "freelance", "Freelance (10/FLP) request/reply over 1 and 3 servers beside raw ROUTER-to-ROUTER round trips");
  add_common_options(*sub, s.options);
  sub->add_option("-c,--clients", opts.clients, "sync, async")->delimiter(',')->capture_default_str();
  sub->add_option("--servers", opts.servers, "server counts, one run each")
      ->delimiter(',')
      ->check(CLI::Range(1, 16))
      ->capture_default_str();
  sub->add_option("-s,--size", opts.size, "request body bytes")->check(CLI::PositiveNumber)->capture_default_str();
  sub->add_option("-t,--transport", opts.transport, "inproc, ipc or tcp")
      ->check(CLI::IsMember({"inproc", "ipc", "tcp"}))
      ->capture_default_str();
  sub->add_option("-n,--count", opts.count, "measured requests per run (default: sync 10,000, async 50,000)");
  sub->add_option("-w,--window", opts.window, "async: requests in flight")
      ->check(CLI::Range(1, 100'000))
      ->capture_default_str();
  sub->add_flag("--quick", opts.quick, "tiny counts, for smoke tests");
  sub->callback([&s] { run_freelance(s, opts); });
}

}  // namespace

FABRIC_PERF_REGISTER(register_freelance_benchmarks);

}  // namespace fabric::perf
