// Lazy Pirate: reliable request/reply over plain REP servers. The primary echo server hangs after
// three requests; the client notices the silence, opens a fresh socket to the backup and carries
// on. With no server answering at all it gives up after its retries and says so.
#include <fabric/fabric.hpp>
#include <fabric/lazy_pirate.hpp>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <cstdio>
#include <exception>
#include <stop_token>
#include <string>
#include <thread>
#include <utility>

#include "example_support.hpp"

using namespace fabric_examples;
using namespace std::chrono_literals;

namespace {

// A plain REP echo server that answers `answers` requests, then takes one more and hangs (never
// replies) until asked to stop, the way a deadlocked or overloaded server looks from outside.
void serve(std::stop_token stop, fabric::replier rep, std::size_t answers, const char* name,
           std::atomic<bool>& failed) {
  try {
    fabric::message m;
    for (std::size_t served = 0; !stop.stop_requested();) {
      auto got = rep.recv(m, 20ms);
      if (got.is(fabric::errc::timeout)) continue;
      if (!got) fail(std::string(name) + ": recv failed: " + got.error().message());
      if (served == answers) {
        std::printf("%s: hanging on a request (no reply will come)\n", name);
        std::mutex mutex;
        std::condition_variable_any never;
        std::unique_lock lock(mutex);
        never.wait(lock, stop, [] { return false; });  // until asked to stop
        return;
      }
      if (auto sent = rep.send(std::move(m), patience); !sent)
        fail(std::string(name) + ": send failed: " + sent.error().message());
      ++served;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lazy_pirate: FAILED: %s\n", e.what());
    failed = true;
  }
}

void print_stats(const char* what, const fabric::lazy_pirate_stats& s) {
  std::printf(
      "%s: requests=%llu attempts=%llu retries=%llu replies=%llu failures=%llu stale=%llu "
      "malformed=%llu sockets=%llu\n",
      what, static_cast<unsigned long long>(s.requests), static_cast<unsigned long long>(s.attempts),
      static_cast<unsigned long long>(s.retries), static_cast<unsigned long long>(s.replies),
      static_cast<unsigned long long>(s.failures), static_cast<unsigned long long>(s.stale_replies),
      static_cast<unsigned long long>(s.malformed_replies),
      static_cast<unsigned long long>(s.sockets_opened));
}

void run(transport kind) {
  const endpoints where("lazy-pirate", kind);
  fabric::context ctx;
  std::atomic<bool> failed{false};

  fabric::replier primary_rep(ctx, {.linger = 0ms});
  const std::string primary = primary_rep.bind(where.bind_address("primary"));
  fabric::replier backup_rep(ctx, {.linger = 0ms});
  const std::string backup = backup_rep.bind(where.bind_address("backup"));
  std::printf("servers: primary on %s, backup on %s\n", primary.c_str(), backup.c_str());

  // Servers are moved to their threads: a socket changes threads only across a barrier such as
  // a thread's start.
  std::jthread primary_thread(serve, std::move(primary_rep), 3, "primary", std::ref(failed));
  auto backup_thread = std::make_unique<std::jthread>(serve, std::move(backup_rep), 1000, "backup",
                                                      std::ref(failed));

  {
    fabric::lazy_pirate_client client(ctx, {.endpoints = {primary, backup}, .timeout = 250ms, .retries = 3});
    for (int i = 1; i <= 10; ++i) {
      const std::string body = "request " + std::to_string(i);
      const std::string before = client.endpoint();
      auto reply = client.request(fabric::make_message(body));
      if (!reply) fail("client: '" + body + "' failed: " + reply.error().message());
      check(reply->size() == 1 && reply->view(0) == body, "client: wrong reply to '" + body + "'");
      if (client.endpoint() != before)
        std::printf("client: %s went unanswered on %s; answered by %s\n", body.c_str(), before.c_str(),
                    client.endpoint().c_str());
      else
        std::printf("client: %s answered by %s\n", body.c_str(), client.endpoint().c_str());
    }
    print_stats("client", client.stats());
    check(client.stats().replies == 10, "client: every request should have been answered");
    check(client.stats().retries >= 1, "client: the hung primary should have cost a retry");
  }

  // Nobody answers now: the client gives up after 1 + 2 attempts and keeps the request.
  backup_thread.reset();  // stops and joins the backup server, closing its socket
  fabric::lazy_pirate_client client(ctx, {.endpoints = {backup}, .timeout = 100ms, .retries = 2});
  fabric::message request = fabric::make_message("is anyone there?");
  auto reply = client.request(std::move(request));
  check(reply.is(fabric::errc::timeout), "client: expected to give up with errc::timeout");
  check(request.size() == 1, "client: a failed request must be left to the caller");  // NOLINT
  std::printf("client: gave up as expected: %s\n", reply.error().message().c_str());
  print_stats("client", client.stats());
  check(client.stats().attempts == 3 && client.stats().failures == 1, "client: expected 3 attempts, 1 failure");

  primary_thread.request_stop();
  primary_thread.join();
  check(!failed, "a server failed");
}

void print_usage(std::FILE* out) {
  std::fprintf(out,
               "usage: fabric-example-lazy-pirate [--transport inproc|ipc|tcp] [--help]\n"
               "  A Lazy Pirate client fails over from a hung REP server to a backup, then gives\n"
               "  up cleanly when no server answers. Default transport: tcp on 127.0.0.1.\n");
}

}  // namespace

int main(int argc, char** argv) {
  transport kind = transport::tcp;
  return run_example({.program = "lazy_pirate", .print_usage = print_usage, .kind = &kind}, argc, argv,
                     [&] { run(kind); });
}
