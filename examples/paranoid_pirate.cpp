// Paranoid Pirate (6/PPP): a ppp::queue runs in the background with three ppp::workers behind it.
// One worker crashes while it holds a request; the queue notices it is gone, gives that request
// to another worker, and the Lazy Pirate client in front never sees a failure.
#include <fabric/fabric.hpp>
#include <fabric/lazy_pirate.hpp>
#include <fabric/paranoid_pirate.hpp>

#include <atomic>
#include <cstdio>
#include <exception>
#include <stop_token>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "example_support.hpp"

using namespace fabric_examples;
using namespace std::chrono_literals;

namespace {

constexpr int requests = 20;

// A worker application: answers each request with its body followed by the worker's name. With
// `crash_on` > 0 it dies without replying when that request arrives (its thread just ends).
void work(std::stop_token stop, fabric::context& ctx, std::string endpoint, std::string name, int crash_on,
          std::atomic<int>& handled, std::atomic<bool>& failed) {
  try {
    // Liveness 10 (a second of silence): generous, so that a busy machine's scheduling stall is
    // not taken for a dead peer; the crash below is still found well within the client's timeout.
    fabric::ppp::worker w(ctx, {.endpoint = std::move(endpoint),
                                .heartbeat_interval = 100ms,
                                .liveness = 10,
                                .reconnect_interval = 100ms,
                                .reconnect_interval_max = 1000ms});
    for (int n = 1; !stop.stop_requested();) {
      auto req = w.recv(50ms);
      if (req.is(fabric::errc::timeout)) continue;
      if (!req) fail(name + ": recv failed: " + req.error().message());
      if (n == crash_on) {
        std::printf("%s: crashing while holding '%s'\n", name.c_str(), std::string(req->body.view(0)).c_str());
        return;  // the worker's destructor closes its socket; no reply is ever sent
      }
      fabric::message reply = std::move(req->body);
      reply.push_back(name);
      if (auto sent = w.reply(std::move(*req), std::move(reply)); !sent)
        fail(name + ": reply failed: " + sent.error().message());
      ++handled;
      ++n;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "paranoid_pirate: FAILED: %s\n", e.what());
    failed = true;
  }
}

void print_stats(const fabric::ppp::queue_stats& s) {
  auto u = [](std::uint64_t v) { return static_cast<unsigned long long>(v); };
  std::printf(
      "queue: received=%llu dispatched=%llu redelivered=%llu forwarded=%llu registered=%llu "
      "expired=%llu unreachable=%llu heartbeats sent=%llu received=%llu malformed=%llu\n",
      u(s.requests_received), u(s.requests_dispatched), u(s.requests_redelivered), u(s.replies_forwarded),
      u(s.workers_registered), u(s.workers_expired), u(s.workers_unreachable), u(s.heartbeats_sent),
      u(s.heartbeats_received), u(s.malformed_client + s.malformed_worker));
}

void run(transport kind) {
  const endpoints where("paranoid-pirate", kind);
  fabric::context ctx;
  fabric::ppp::queue queue(ctx, {.frontend = where.bind_address("frontend"),
                                 .backend = where.bind_address("backend"),
                                 .heartbeat_interval = 100ms,
                                 .liveness = 10});
  queue.start();
  std::printf("queue: clients on %s, workers on %s\n", queue.frontend_endpoint().c_str(),
              queue.backend_endpoint().c_str());

  std::atomic<int> handled{0};
  std::atomic<bool> failed{false};
  fabric::ppp::queue_stats s;
  {
    std::vector<std::jthread> workers;
    workers.emplace_back(work, std::ref(ctx), queue.backend_endpoint(), "worker-1", 0, std::ref(handled),
                         std::ref(failed));
    workers.emplace_back(work, std::ref(ctx), queue.backend_endpoint(), "worker-2", 3, std::ref(handled),
                         std::ref(failed));
    workers.emplace_back(work, std::ref(ctx), queue.backend_endpoint(), "worker-3", 0, std::ref(handled),
                         std::ref(failed));

    fabric::lazy_pirate_client client(ctx, {.endpoints = {queue.frontend_endpoint()}, .timeout = 2500ms, .retries = 3});
    for (int i = 1; i <= requests; ++i) {
      const std::string body = "job " + std::to_string(i);
      auto reply = client.request(fabric::make_message(body));
      if (!reply) fail("client: '" + body + "' failed: " + reply.error().message());
      check(reply->size() == 2 && reply->view(0) == body, "client: wrong reply to '" + body + "'");
      std::printf("client: %s done by %s\n", body.c_str(), std::string(reply->view(1)).c_str());
    }
    check(client.stats().replies == requests, "client: every request should have been answered");
    s = queue.stats();  // before the workers stop, which the queue would count too
  }  // the workers stop here

  print_stats(s);
  check(handled == requests, "every request should have been handled exactly once by a live worker");
  check(s.requests_redelivered == 1, "the crashed worker's request should have been redelivered once");
  check(s.workers_expired + s.workers_unreachable == 1, "the crashed worker should have been removed");
  check(!failed, "a worker failed");
}

void print_usage(std::FILE* out) {
  std::fprintf(out,
               "usage: fabric-example-paranoid-pirate [--transport inproc|ipc|tcp] [--help]\n"
               "  A Paranoid Pirate queue with three workers, one of which crashes mid-request;\n"
               "  a Lazy Pirate client still gets every reply. Default transport: tcp on 127.0.0.1.\n");
}

}  // namespace

int main(int argc, char** argv) {
  transport kind = transport::tcp;
  return run_example({.program = "paranoid_pirate", .print_usage = print_usage, .kind = &kind}, argc, argv,
                     [&] { run(kind); });
}
