// Titanic (9/TSP): requests that outlive their service's absence and the queue's own restart. A
// broker and a Titanic service start on a temporary journal; a client posts 20 thumbnail jobs
// while no "thumbnail" worker exists, and titanic.reply answers "pending" for each. The Titanic
// service is then stopped and started again on the same journal: all 20 are still there. Only
// then does the thumbnail worker start; the client collects every reply, checks it and closes it.
#include <fabric/fabric.hpp>
#include <fabric/journal.hpp>
#include <fabric/majordomo.hpp>
#include <fabric/titanic.hpp>
#include <fabric/titanic_client.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <stop_token>
#include <thread>
#include <vector>

#include "example_support.hpp"

using namespace fabric_examples;
using namespace std::chrono_literals;

namespace {

constexpr std::size_t jobs = 20;

// The work itself: a stand-in for rendering a thumbnail.
std::string render(std::string_view image) { return "thumb(" + std::string(image) + ")"; }

// The Titanic server with its journal: opened together, closed together (service first).
class titanic_server {
 public:
  titanic_server(fabric::context& ctx, const std::filesystem::path& dir, const std::string& broker)
      : journal_(fabric::journal::open(dir)) {
    fabric::titanic::service_options o;
    o.broker = broker;
    o.heartbeat = 250ms;
    // Short waits, so that the example's requests go out soon after their worker appears; a
    // real deployment keeps the defaults (retries back off from 1 s to a minute).
    o.retry_base = 50ms;
    o.retry_max = 200ms;
    o.service_check_interval = 100ms;
    service_ = std::make_unique<fabric::titanic::service>(ctx, journal_, o);
  }
  ~titanic_server() { service_.reset(); }  // before the journal it writes to
  titanic_server(const titanic_server&) = delete;
  titanic_server& operator=(const titanic_server&) = delete;

  fabric::titanic::service& service() { return *service_; }

 private:
  fabric::journal journal_;
  std::unique_ptr<fabric::titanic::service> service_;
};

// Asks the broker (8/MMI) whether `service` has workers: "200" or "404".
std::string mmi_service(fabric::mdp::client& mmi, const std::string& service) {
  auto answer = mmi.request("mmi.service", fabric::make_message(service));
  if (!answer) fail("mmi.service " + service + ": " + answer.error().message());
  return std::string(answer->view(0));
}

// Waits, bounded, until the broker knows `service`'s workers.
void await_workers(fabric::mdp::client& mmi, const std::string& service) {
  const auto deadline = std::chrono::steady_clock::now() + patience;
  while (mmi_service(mmi, service) != "200") {
    check(std::chrono::steady_clock::now() < deadline, service + " never registered with the broker");
    std::this_thread::sleep_for(20ms);  // a bounded poll of the broker
  }
}

// What titanic.reply says of every request now; fails unless all are pending.
void expect_all_pending(fabric::titanic::client& client, const std::vector<fabric::titanic::request_id>& ids) {
  for (const auto& id : ids) {
    auto r = client.poll(id);
    if (!r) fail("titanic.reply " + fabric::titanic::to_string(id) + ": " + r.error().message());
    check(r->state == fabric::titanic::reply_state::pending,
          "request " + fabric::titanic::to_string(id) + " should still be pending");
  }
}

void run() {
  fabric::context ctx;
  fabric::support::temp_dir dir("fabric-titanic-");
  const auto journal_dir = dir.path() / "titanic";

  fabric::mdp::broker_options bo;
  bo.endpoints = {"tcp://127.0.0.1:*"};
  bo.heartbeat_interval = 250ms;
  fabric::mdp::broker broker(ctx, bo);
  const std::string endpoint = broker.endpoints().at(0);
  std::printf("broker: serving on %s\n", endpoint.c_str());

  auto titanic = std::make_unique<titanic_server>(ctx, journal_dir, endpoint);
  fabric::mdp::client mmi(ctx, {.broker = endpoint, .timeout = 1000ms, .retries = 3});
  await_workers(mmi, "titanic.request");
  std::printf("titanic: serving on journal %s\n", journal_dir.c_str());

  // Every post carries a key, so a post resent after a lost "200" is stored once.
  fabric::titanic::client client(ctx, {.broker = endpoint, .keys = fabric::titanic::key_mode::keyed});
  const std::string thumbnail_up = mmi_service(mmi, "thumbnail");
  std::printf("client: is anyone serving 'thumbnail'? mmi.service says %s\n", thumbnail_up.c_str());
  check(thumbnail_up == "404", "no thumbnail worker should exist yet");
  std::vector<fabric::titanic::request_id> ids;
  for (std::size_t i = 1; i <= jobs; ++i) {
    auto id = client.post("thumbnail", fabric::make_message("image-" + std::to_string(i)));
    if (!id) fail("post " + std::to_string(i) + ": " + id.error().message());
    ids.push_back(*id);
  }
  std::printf("client: posted %zu thumbnail jobs, each stored before its \"200\" (first id %s)\n", ids.size(),
              fabric::titanic::to_string(ids.front()).c_str());
  expect_all_pending(client, ids);
  std::printf("client: titanic.reply answers \"300\" (pending) for all %zu: no worker yet\n", ids.size());

  // The queue itself goes away and comes back: what it answered "200" is in the journal.
  titanic.reset();
  std::printf("titanic: stopped\n");
  titanic = std::make_unique<titanic_server>(ctx, journal_dir, endpoint);
  await_workers(mmi, "titanic.request");
  const auto open = titanic->service().stats().open;
  std::printf("titanic: started again on the same journal; %llu requests open\n",
              static_cast<unsigned long long>(open));
  check(open == jobs, "the restarted service should hold every request");
  expect_all_pending(client, ids);
  std::printf("client: all %zu still pending after the restart\n", ids.size());

  // The worker comes at last; Titanic hands it the waiting jobs.
  // The thread is asked to stop when it goes out of scope, a failure below included.
  std::atomic<std::size_t> rendered{0};
  std::jthread worker_thread([&](std::stop_token stop) {
    try {
      fabric::mdp::worker w(ctx, {.broker = endpoint, .service = "thumbnail", .heartbeat_interval = 250ms});
      auto served = w.serve(
          [&](fabric::mdp::worker::request& req) {
            ++rendered;
            return fabric::make_message(render(req.body.empty() ? "" : req.body.view(0)));
          },
          [&] { return stop.stop_requested(); }, 20ms);
      if (!served) std::fprintf(stderr, "thumbnail worker: %s\n", served.error().message().c_str());
    } catch (const std::exception& e) {
      std::fprintf(stderr, "thumbnail worker: FAILED: %s\n", e.what());
    }
  });
  std::printf("worker: serving 'thumbnail'\n");

  for (std::size_t i = 0; i < ids.size(); ++i) {
    const auto& id = ids[i];
    const std::string name = fabric::titanic::to_string(id);
    auto r = client.wait(id, patience);
    if (!r) fail("waiting for " + name + ": " + r.error().message());
    check(r->state == fabric::titanic::reply_state::ready, "request " + name + " did not complete");
    const std::string expected = render("image-" + std::to_string(i + 1));
    check(r->body.size() == 1 && r->body.view(0) == expected,
          "request " + name + " got the wrong reply (expected " + expected + ")");
    if (auto closed = client.close(id); !closed) fail("closing " + name + ": " + closed.error().message());
    auto after = client.poll(id);
    check(after && after->state == fabric::titanic::reply_state::unknown,
          "request " + name + " should be forgotten once closed");
  }
  worker_thread.request_stop();
  worker_thread.join();

  const auto s = titanic->service().stats();
  std::printf("client: %zu replies collected, each checked and closed\n", ids.size());
  std::printf("summary: %zu posted with no worker, kept across a Titanic restart, %zu rendered once the "
              "worker came, %llu dispatched by the restarted service, %llu closed, %llu open now\n",
              ids.size(), rendered.load(), static_cast<unsigned long long>(s.dispatched),
              static_cast<unsigned long long>(s.closed), static_cast<unsigned long long>(s.open));
  check(s.open == 0 && s.closed == jobs, "the service should have nothing left open");
  check(rendered.load() >= jobs, "every job should have been rendered");
}

void usage(std::FILE* out) {
  std::fprintf(out,
               "usage: fabric-example-titanic [--help]\n"
               "A client posts 20 requests through Titanic (9/TSP) while their service has no\n"
               "worker; Titanic is restarted on its journal, then the worker starts, and the client\n"
               "collects, checks and closes every reply.\n");
}

}  // namespace

int main(int argc, char** argv) {
  const command_line cl{.program = "fabric-example-titanic", .print_usage = usage};
  return run_example(cl, argc, argv, [] { run(); });
}
