// Freelance (10/FLP): request/reply straight to three servers, no broker. The client learns which
// servers are alive by pinging them, sends each request to one, and when a server stops (here: one
// is shut down mid-stream, another hangs on every request) its requests go to the others. Then the
// asynchronous client keeps many requests in flight over the servers left, and a client whose
// servers are all gone says so with a clear error.
#include <fabric/fabric.hpp>
#include <fabric/freelance.hpp>

#include <atomic>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "example_support.hpp"

using namespace fabric_examples;
using namespace std::chrono_literals;
namespace fl = fabric::freelance;

namespace {

void print_stats(const char* who, const fl::client_stats& s) {
  std::printf("%s: requests=%llu replies=%llu attempts=%llu retries=%llu late=%llu servers_up=%llu "
              "servers_lost=%llu\n",
              who, static_cast<unsigned long long>(s.requests), static_cast<unsigned long long>(s.replies),
              static_cast<unsigned long long>(s.attempts), static_cast<unsigned long long>(s.retries),
              static_cast<unsigned long long>(s.late_replies), static_cast<unsigned long long>(s.servers_up),
              static_cast<unsigned long long>(s.servers_lost));
}

void run(transport kind) {
  fabric::context ctx;
  endpoints where("freelance", kind);

  // Two servers, each on its own thread (start()); the handler's reply names the server.
  std::vector<std::unique_ptr<fl::server>> servers;
  for (const char* name : {"alpha", "bravo"}) {
    auto s = std::make_unique<fl::server>(ctx, fl::server_options{.endpoint = where.bind_address(name)},
                                          [name](fabric::message&& m) {
                                            return fabric::message(std::string(m.view(0)) + " (from " + name + ")");
                                          });
    s->start();
    std::printf("server %s: serving on %s\n", name, s->endpoint().c_str());
    servers.push_back(std::move(s));
  }
  // The third one takes requests and never answers them, like a server stuck on a lock; it still
  // answers pings (inside recv()), so the client keeps believing in it and must time out.
  fl::server stuck(ctx, {.endpoint = where.bind_address("charlie")});
  std::atomic<bool> stop{false};
  std::atomic<int> swallowed{0};
  std::jthread stuck_thread([&] {
    fl::request r;
    while (!stop)
      if (stuck.recv(r, 10ms)) ++swallowed;
  });
  std::printf("server charlie: serving on %s (and answering nothing)\n", stuck.endpoint().c_str());

  fl::client_options options{.servers = {stuck.endpoint(), servers[0]->endpoint(), servers[1]->endpoint()},
                             .ping_interval = 200ms,
                             .server_expiry = 600ms,
                             .timeout = 300ms,
                             .request_expiry = 3000ms};

  // The synchronous client: one request at a time.
  const std::string alpha = servers[0]->endpoint();
  fl::client client(ctx, options);
  for (int i = 0; i < 6; ++i) {
    if (i == 3) {
      std::printf("shutting server alpha down\n");
      servers[0].reset();
    }
    auto reply = client.request(fabric::message("request " + std::to_string(i)));
    if (!reply) fail("client: request " + std::to_string(i) + " failed: " + reply.error().message());
    std::printf("client: %s\n", std::string(reply->view(0)).c_str());
  }
  print_stats("client", client.stats());
  check(client.stats().replies == 6, "every request must be answered");

  // The asynchronous client: 50 requests in flight at once, each answered once.
  fl::async_client async(ctx, options);
  std::map<std::uint64_t, int> waiting;
  for (int i = 0; i < 50; ++i) {
    auto id = async.send(fabric::message("job " + std::to_string(i)));
    if (!id) fail("async client: send failed: " + id.error().message());
    waiting[*id] = i;
  }
  std::map<std::string, int> by_server;
  fl::reply r;
  while (!waiting.empty()) {
    if (auto got = async.recv(r, patience); !got) fail("async client: " + got.error().message());
    check(r.status == fl::reply_status::ok, "async client: request " + std::to_string(r.id) + " failed");
    check(waiting.erase(r.id) == 1, "async client: an answer for no request");
    ++by_server[r.server];
  }
  std::printf("async client: 50 answers;");
  for (const auto& [server, n] : by_server) std::printf(" %s=%d", server.c_str(), n);
  std::printf("\n");
  print_stats("async client", async.stats());

  // With every server gone, a request says so instead of hanging.
  servers.clear();
  stop = true;
  stuck_thread.join();
  fl::client lonely(ctx, {.servers = {alpha}, .request_expiry = 300ms});
  auto nobody = lonely.request(fabric::message("anyone?"));
  check(!nobody && nobody.is(fabric::errc::peer_unreachable), "a client with no live server must say so");
  std::printf("client with no live server: errc::peer_unreachable (%s)\n", nobody.error().message().c_str());
  check(swallowed > 0, "server charlie should have been given requests");
}

void print_usage(std::FILE* out) {
  std::fprintf(out,
               "usage: fabric-example-freelance [--transport inproc|ipc|tcp] [--help]\n"
               "  Three Freelance (10/FLP) servers and a client with no broker between them: one\n"
               "  server is shut down mid-stream and one never answers, and every request is\n"
               "  still answered by another. Default: tcp.\n");
}

}  // namespace

int main(int argc, char** argv) {
  transport kind = transport::tcp;
  return run_example({.program = "freelance", .print_usage = print_usage, .kind = &kind}, argc, argv,
                     [&] { run(kind); });
}
