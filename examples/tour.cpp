// fabric-tour: every messaging pattern over inproc, ipc and loopback tcp, each moving a fixed
// number of small, sequence-checked messages; prints what it measured. A demo, not a benchmark.
#include <fabric/fabric.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "example_support.hpp"

using namespace fabric_examples;

namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

constexpr std::size_t payload_size = 32;
constexpr std::size_t dealer_window = 100;  // router/dealer requests in flight at most
constexpr std::size_t default_messages = 10'000;
constexpr std::size_t max_messages = 1'000'000;

// Sockets whose every send and receive gives up after `patience`, so a broken row fails instead of
// hanging the tour.
const fabric::socket_options bounded{.send_timeout = patience, .recv_timeout = patience};

// A small message whose first bytes carry its sequence number, so receivers check that nothing
// was lost, duplicated or reordered rather than trusting a count.
fabric::message make_payload(std::uint64_t seq) {
  std::array<char, payload_size> bytes{};
  std::memcpy(bytes.data(), &seq, sizeof seq);
  return fabric::message(std::string_view(bytes.data(), bytes.size()));
}

bool carries(const fabric::frame& f, std::uint64_t seq) {
  std::uint64_t got = 0;
  if (f.size() != payload_size) return false;
  std::memcpy(&got, f.data(), sizeof got);
  return got == seq;
}

// Connects `s` and, for tcp and ipc, waits for the handshake, so the timings measure messages
// rather than connection set-up. inproc connects at once to a bound peer.
void connect_and_wait(fabric::socket& s, const std::string& address, transport kind) {
  fabric::monitor events(s);
  s.connect(address);
  if (kind != transport::inproc &&
      !events.wait_for(fabric::socket_event::handshake_succeeded, patience))
    fail("no connection to " + address + " within 5 s");
}

// The other end of a row, on its own thread.
class peer_thread {
 public:
  template <class F>
  peer_thread(fabric::context& ctx, F body)
      : ctx_(ctx), thread_([this, body = std::move(body)]() mutable {
          try {
            body();
          } catch (const std::exception& e) {
            failure_ = e.what();
            failed_.store(true, std::memory_order_release);
          }
        }) {}
  ~peer_thread() { stop(); }
  peer_thread(const peer_thread&) = delete;
  peer_thread& operator=(const peer_thread&) = delete;

  // Runs the measuring side of the row, then joins the peer and reports its failure, if any.
  // When the measuring side fails, the peer is stopped at once (shutting the context down makes
  // its blocking calls return errc::closed), and a failure the peer had reported before that
  // goes first in the message: it is usually the cause, the measuring side's timeout the effect.
  template <class F>
  auto measure(F&& side) -> decltype(side()) {
    try {
      auto measured = side();
      thread_.join();
      if (failed_.load(std::memory_order_acquire)) fail(failure_);
      return measured;
    } catch (const std::exception& e) {
      if (!thread_.joinable()) throw;
      const bool peer_failed_first = failed_.load(std::memory_order_acquire);
      stop();
      fail(peer_failed_first ? failure_ + " (then " + e.what() + ")" : std::string(e.what()));
    }
  }

 private:
  void stop() noexcept {
    if (!thread_.joinable()) return;
    ctx_.shutdown();
    thread_.join();
  }

  fabric::context& ctx_;
  std::string failure_;  // written by the peer before failed_, read after it
  std::atomic<bool> failed_{false};
  std::jthread thread_;  // last: started once the members it uses exist
};

std::string nth(std::uint64_t i) { return "message " + std::to_string(i); }

// Each row: set up, connect, then time `n` messages from the first send to the last receive.

clock_type::duration run_req_rep(fabric::context& ctx, const endpoints& where, std::size_t n) {
  fabric::replier rep(ctx, bounded);
  const std::string address = rep.bind(where.bind_address("req-rep"));
  peer_thread server(ctx, [rep = std::move(rep), n]() mutable {
    fabric::message m;
    for (std::size_t i = 0; i < n; ++i) {
      if (auto r = rep.recv(m); !r) fail("replier: " + nth(i) + ": " + r.error().message());
      if (auto s = rep.send(std::move(m)); !s) fail("replier: reply: " + s.error().message());
    }
  });

  return server.measure([&] {
    fabric::requester req(ctx, bounded);
    connect_and_wait(req, address, where.kind());
    const auto start = clock_type::now();
    for (std::uint64_t i = 0; i < n; ++i) {
      auto reply = req.request(make_payload(i), patience);
      if (!reply) fail("requester: " + nth(i) + ": " + reply.error().message());
      check(reply->size() == 1 && carries((*reply)[0], i), "requester: wrong reply to " + nth(i));
    }
    return clock_type::now() - start;
  });
}

constexpr std::string_view data_topic = "tour.data";
constexpr std::string_view probe_topic = "$probe";

clock_type::duration run_pub_sub(fabric::context& ctx, const endpoints& where, std::size_t n) {
  // Unlimited high-water marks: pub/sub drops past the HWM by design, and this row checks that
  // every message arrives, so it must not hit one. Memory grows with `n` instead.
  fabric::publisher pub(ctx, {.send_hwm = 0, .send_timeout = patience});
  const std::string address = pub.bind(where.bind_address("pub-sub"));
  fabric::puller sync(ctx, bounded);
  const std::string sync_address = sync.bind(where.bind_address("pub-sub-sync"));

  clock_type::time_point done;
  peer_thread subscriber(ctx, [&ctx, &done, address, sync_address, n] {
    fabric::subscriber sub(ctx, {.recv_hwm = 0, .recv_timeout = patience});
    sub.subscribe(data_topic);
    sub.subscribe(probe_topic);
    sub.connect(address);
    fabric::pusher ready(ctx, bounded);
    ready.connect(sync_address);
    bool announced = false;
    fabric::message m;
    for (std::uint64_t next = 0; next < n;) {
      if (auto r = sub.recv(m); !r) fail("subscriber: " + nth(next) + ": " + r.error().message());
      if (m.view(0) == probe_topic) {
        if (!announced) {
          if (auto s = ready.send(fabric::make_frame("ready")); !s)
            fail("subscriber: cannot report readiness: " + s.error().message());
          announced = true;
        }
        continue;
      }
      check(m.size() == 2 && carries(m[1], next),
            "subscriber: " + nth(next) + " lost or reordered");
      ++next;
    }
    done = clock_type::now();
  });

  const auto start = subscriber.measure([&] {
    // PUB drops messages until the subscription has reached it; probe until the subscriber
    // says one got through (see examples/pub_sub.cpp).
    const auto deadline = clock_type::now() + patience;
    fabric::message ack;
    for (;;) {
      check(clock_type::now() < deadline, "publisher: no subscriber within 5 s");
      if (auto p = pub.publish(probe_topic, ""); !p)
        fail("publisher: probe: " + p.error().message());
      const auto r = sync.recv(ack, 10ms);  // paces the probes while nobody has answered
      if (r) break;
      if (!r.is(fabric::errc::timeout)) fail("publisher: sync: " + r.error().message());
    }
    const auto first_send = clock_type::now();
    for (std::uint64_t i = 0; i < n; ++i) {
      if (auto p = pub.publish(data_topic, make_payload(i)); !p)
        fail("publisher: " + nth(i) + ": " + p.error().message());
    }
    return first_send;
  });
  return done - start;
}

clock_type::duration run_push_pull(fabric::context& ctx, const endpoints& where, std::size_t n) {
  fabric::puller pull(ctx, bounded);
  const std::string address = pull.bind(where.bind_address("push-pull"));
  clock_type::time_point done;
  peer_thread receiver(ctx, [pull = std::move(pull), &done, n]() mutable {
    fabric::message m;
    for (std::uint64_t i = 0; i < n; ++i) {
      if (auto r = pull.recv(m); !r) fail("puller: " + nth(i) + ": " + r.error().message());
      check(m.size() == 1 && carries(m[0], i), "puller: " + nth(i) + " lost or reordered");
    }
    done = clock_type::now();
  });

  const auto start = receiver.measure([&] {
    fabric::pusher push(ctx, bounded);
    connect_and_wait(push, address, where.kind());
    const auto first_send = clock_type::now();
    for (std::uint64_t i = 0; i < n; ++i) {
      if (auto s = push.send(make_payload(i)); !s)
        fail("pusher: " + nth(i) + ": " + s.error().message());
    }
    return first_send;
  });
  return done - start;
}

clock_type::duration run_router_dealer(fabric::context& ctx, const endpoints& where,
                                       std::size_t n) {
  fabric::router front(ctx, bounded);
  const std::string address = front.bind(where.bind_address("router-dealer"));
  peer_thread server(ctx, [front = std::move(front), n]() mutable {
    fabric::message m;
    for (std::size_t i = 0; i < n; ++i) {
      if (auto r = front.recv(m); !r) fail("router: " + nth(i) + ": " + r.error().message());
      check(m.size() == 2, "router: expected [peer, payload]");
      const fabric::frame peer = m.pop_front();
      if (auto s = front.send_to(peer, std::move(m)); !s)
        fail("router: reply: " + s.error().message());
    }
  });

  return server.measure([&] {
    fabric::dealer client(ctx, {.send_timeout = patience, .recv_timeout = patience,
                                .routing_id = "tour-client"});
    connect_and_wait(client, address, where.kind());
    const auto start = clock_type::now();
    // Keep up to dealer_window requests in flight: enough to pipeline, few enough that neither
    // side's queue fills while the other is blocked sending.
    std::uint64_t sent = 0;
    fabric::message reply;
    for (std::uint64_t received = 0; received < n; ++received) {
      for (; sent < n && sent - received < dealer_window; ++sent) {
        if (auto s = client.send(make_payload(sent)); !s)
          fail("dealer: " + nth(sent) + ": " + s.error().message());
      }
      if (auto r = client.recv(reply); !r)
        fail("dealer: reply to " + nth(received) + ": " + r.error().message());
      check(reply.size() == 1 && carries(reply[0], received),
            "dealer: reply to " + nth(received) + " lost or reordered");
    }
    return clock_type::now() - start;
  });
}

struct pattern {
  const char* name;
  clock_type::duration (*run)(fabric::context&, const endpoints&, std::size_t);
};

constexpr std::array<pattern, 4> patterns = {{
    {"req/rep", run_req_rep},
    {"pub/sub", run_pub_sub},
    {"push/pull", run_push_pull},
    {"router/dealer", run_router_dealer},
}};

int tour(std::size_t n) {
  std::printf("fabric %s tour: %zu messages of %zu bytes per row, loopback only\n\n",
              fabric::version_string, n, payload_size);
  std::printf("%-14s %-9s %10s %12s %12s  %s\n", "pattern", "transport", "messages", "elapsed ms",
              "msgs/s", "result");

  // Set up before the first row, so a tour that cannot make its ipc directory stops at once.
  const std::array<endpoints, 3> all_endpoints = {endpoints("tour", transport::inproc),
                                                  endpoints("tour", transport::ipc),
                                                  endpoints("tour", transport::tcp)};
  std::vector<std::string> failures;
  std::size_t rows = 0;
  for (const pattern& p : patterns) {
    for (const endpoints& where : all_endpoints) {
      ++rows;
      const char* const transport_name = name_of(where.kind());
      std::optional<clock_type::duration> elapsed;
      try {
        fabric::context ctx;  // one per row, so a failed row cannot disturb the next
        elapsed = p.run(ctx, where, n);
      } catch (const std::exception& e) {
        failures.push_back(std::string(p.name) + " over " + transport_name + ": " + e.what());
      }
      if (elapsed) {
        const double ms = std::chrono::duration<double, std::milli>(*elapsed).count();
        const double rate = ms > 0 ? static_cast<double>(n) * 1000.0 / ms : 0.0;
        std::printf("%-14s %-9s %10zu %12.1f %12.0f  OK\n", p.name, transport_name, n, ms, rate);
      } else {
        std::printf("%-14s %-9s %10zu %12s %12s  FAIL\n", p.name, transport_name, n, "-", "-");
      }
      std::fflush(stdout);
    }
  }

  std::printf(
      "\nelapsed: first send to last receive, after the connection is up; one run, no warm-up.\n"
      "req/rep: one round trip per message. router/dealer: round trips, up to %zu in flight.\n"
      "pub/sub and push/pull: one-way; pub/sub runs with unlimited HWM so nothing is dropped.\n"
      "Every message is checked for loss and order. Timings vary run to run and machine to\n"
      "machine; this is a demo, not a benchmark.\n",
      dealer_window);
  if (!failures.empty()) {
    std::fprintf(stderr, "\n%zu of %zu rows FAILED:\n", failures.size(), rows);
    for (const auto& f : failures) std::fprintf(stderr, "  %s\n", f.c_str());
    return EXIT_FAILURE;
  }
  std::printf("\nall %zu rows OK\n", rows);
  return EXIT_SUCCESS;
}

void print_usage(std::FILE* out) {
  std::fprintf(out,
               "usage: fabric-tour [--messages N] [--help]\n"
               "  Runs req/rep, pub/sub, push/pull and router/dealer over inproc, ipc and tcp\n"
               "  on 127.0.0.1, moving N small messages through each (default %zu, at most\n"
               "  %zu), and prints a table. Exits non-zero if any row fails.\n",
               default_messages, max_messages);
}

}  // namespace

int main(int argc, char** argv) {
  std::size_t messages = default_messages;
  return run_example(
      {.program = "fabric-tour",
       .print_usage = print_usage,
       .count = {.flag = "--messages", .value = &messages, .min = 1, .max = max_messages}},
      argc, argv, [&] { return tour(messages); });
}
