// Majordomo: a "price" service run by three workers behind a broker, used by a synchronous client
// (one request at a time, retried on silence) and an asynchronous client (many requests in flight,
// each reply matched to its request). Then one worker leaves in the middle of a request: the
// broker gives that request to another worker, and the client never notices.
#include <fabric/fabric.hpp>
#include <fabric/majordomo.hpp>

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

namespace {

// The service: answers "<item>" with "<item>=<price> (by <worker>)". Worker "w0" pretends to
// crash on the request for "doomed": it closes its connection without answering.
void run_worker(fabric::context& ctx, const std::string& broker, const std::string& name,
                std::atomic<bool>& stop, std::atomic<bool>& failed) {
  try {
    auto w = std::make_unique<fabric::mdp::worker>(
        ctx, fabric::mdp::worker_options{.broker = broker, .service = "price",
                                         .heartbeat_interval = 250ms});
    fabric::mdp::worker::request req;
    while (!stop) {
      auto got = w->recv(req, 50ms);
      if (got.is(fabric::errc::timeout)) continue;
      if (!got) fail(name + ": recv failed: " + got.error().message());
      const std::string item(req.body.empty() ? "" : req.body.view(0));
      if (item == "doomed" && name == "w0") {
        std::printf("%s: crashing in the middle of '%s'\n", name.c_str(), item.c_str());
        w.reset();  // gone without a reply: the broker must give the request to someone else
        return;
      }
      const std::string answer = item + "=" + std::to_string(item.size() * 7) + " (by " + name + ")";
      if (auto sent = w->reply(req, fabric::make_message(answer)); !sent)
        fail(name + ": reply failed: " + sent.error().message());
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "majordomo: %s FAILED: %s\n", name.c_str(), e.what());
    failed = true;
  }
}

void run(transport kind) {
  const endpoints where("majordomo", kind);
  fabric::context ctx;
  fabric::mdp::broker_options bo;
  bo.endpoints = {where.bind_address("broker")};
  bo.heartbeat_interval = 250ms;
  fabric::mdp::broker broker(ctx, bo);
  const std::string endpoint = broker.endpoints().at(0);
  std::printf("broker: serving on %s\n", endpoint.c_str());

  std::atomic<bool> stop{false}, failed{false};
  std::vector<std::jthread> workers;
  for (int i = 0; i < 3; ++i)
    workers.emplace_back(run_worker, std::ref(ctx), endpoint, "w" + std::to_string(i), std::ref(stop),
                         std::ref(failed));

  // The synchronous client. Requests sent before any worker has registered simply wait in the
  // broker's queue, so there is nothing to wait for here.
  fabric::mdp::client sync(ctx, {.broker = endpoint, .timeout = 1000ms, .retries = 3});
  for (const char* item : {"apple", "pear", "plum"}) {
    auto reply = sync.request("price", fabric::make_message(item));
    if (!reply) fail(std::string("sync client: ") + item + ": " + reply.error().message());
    std::printf("sync client: %s\n", std::string(reply->view(0)).c_str());
  }
  // 8/MMI: the broker itself says whether a service has live workers.
  for (const char* service : {"price", "weather"}) {
    auto up = sync.request("mmi.service", fabric::make_message(service));
    if (!up) fail("sync client: mmi.service failed: " + up.error().message());
    std::printf("sync client: mmi.service %s -> %s\n", service, std::string(up->view(0)).c_str());
    check(up->view(0) == (std::string_view(service) == "price" ? "200" : "404"), "wrong MMI answer");
  }

  // The asynchronous client: 100 requests in flight at once, matched to replies by id.
  fabric::mdp::async_client async(ctx, {.broker = endpoint});
  std::map<std::uint64_t, std::string> waiting;
  for (int i = 0; i < 100; ++i) {
    const std::string item = "item-" + std::to_string(i);
    auto id = async.send("price", fabric::make_message(item));
    if (!id) fail("async client: send failed: " + id.error().message());
    waiting[*id] = item;
  }
  std::map<std::string, int> by_worker;
  fabric::mdp::async_client::reply reply;
  while (!waiting.empty()) {
    if (auto got = async.recv(reply, patience); !got) fail("async client: " + got.error().message());
    auto it = waiting.find(reply.id);
    check(it != waiting.end(), "async client: a reply for no request");
    const std::string text(reply.body.view(0));
    check(text.rfind(it->second + "=", 0) == 0, "async client: reply '" + text + "' for " + it->second);
    ++by_worker[text.substr(text.find("(by ") + 4, 2)];
    waiting.erase(it);
  }
  std::printf("async client: 100 replies, matched; shares:");
  for (const auto& [name, n] : by_worker) std::printf(" %s=%d", name.c_str(), n);
  std::printf("\n");

  // A request whose worker dies: the broker requeues it and another worker answers.
  for (int i = 0; i < 3; ++i) {
    auto id = async.send("price", fabric::make_message("doomed"));
    if (!id) fail("async client: send failed");
    if (auto got = async.recv(reply, patience); !got) fail("async client: 'doomed' was lost");
    std::printf("async client: %s\n", std::string(reply.body.view(0)).c_str());
  }
  const auto stats = broker.stats();
  std::printf("broker: %s\n", fabric::mdp::to_json(stats).c_str());
  check(stats.requeued >= 1, "broker: the crashed worker's request should have been requeued");

  stop = true;
  workers.clear();
  check(!failed, "a worker failed");
}

void print_usage(std::FILE* out) {
  std::fprintf(out,
               "usage: fabric-example-majordomo [--transport inproc|ipc|tcp] [--help]\n"
               "  A Majordomo broker, three workers, a sync and an async client; one worker\n"
               "  crashes mid-request and its request is served by another. Default: tcp.\n");
}

}  // namespace

int main(int argc, char** argv) {
  transport kind = transport::tcp;
  return run_example({.program = "majordomo", .print_usage = print_usage, .kind = &kind}, argc, argv,
                     [&] { run(kind); });
}
