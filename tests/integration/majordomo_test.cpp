// fabric's Majordomo broker, clients and worker together: end to end over inproc and tcp, and
// the failures the broker exists for: a worker killed or paused (SIGSTOP) in the middle of a
// request, and a broker restarted under live workers and clients.
#include <fabric/context.hpp>
#include <fabric/error.hpp>
#include <fabric/majordomo.hpp>
#include <fabric/router_dealer.hpp>

#include "support/process.hpp"
#include "support/support.hpp"

#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace fabric::mdp {
namespace {

using namespace std::chrono_literals;
using fabric::testing::child_process;
using fabric::testing::wait_bound;

#ifdef FABRIC_TEST_MDP_WORKER
constexpr std::string_view worker_program = FABRIC_TEST_MDP_WORKER;
#else
constexpr std::string_view worker_program;
#endif

using fabric::testing::eventually;

// A fabric worker answering on its own thread: echo, prefixed with its name.
class echo_worker {
 public:
  echo_worker(context& ctx, worker_options options, std::string name)
      : worker_(ctx, std::move(options)), name_(std::move(name)) {
    thread_ = std::thread([this] {
      (void)worker_.serve(
          [this](worker::request& req) {
            message out;
            out.push_back(name_);
            for (auto& f : req.body) out.push_back(std::move(f));
            return out;
          },
          [this] { return stop_.load(); }, 20ms);
    });
  }
  ~echo_worker() {
    stop_ = true;
    thread_.join();
  }
  const worker& get() const { return worker_; }

 private:
  worker worker_;
  std::string name_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

class MajordomoTest : public ::testing::Test {
 protected:
  void start_broker(std::vector<std::string> endpoints = {"tcp://127.0.0.1:*"}) {
    broker_options o;
    o.endpoints = std::move(endpoints);
    o.heartbeat_interval = 100ms;
    o.liveness = 3;
    the_broker = std::make_unique<broker>(ctx, o);
    endpoint = the_broker->endpoints().at(0);
  }
  worker_options worker_for(const std::string& service) {
    worker_options o;
    o.broker = endpoint;
    o.service = service;
    o.heartbeat_interval = 100ms;
    o.reconnect_interval = 50ms;
    o.reconnect_interval_max = 200ms;
    return o;
  }
  bool await_workers(std::size_t n) {
    return eventually([&] { return the_broker->stats().workers == n; });
  }

  context ctx;
  std::unique_ptr<broker> the_broker;
  std::string endpoint;
};

TEST_F(MajordomoTest, SyncAndAsyncClientsReachSeveralWorkersOverInprocAndTcp) {
  for (const std::string ep : {"inproc://mdp-e2e", "tcp://127.0.0.1:*"}) {
    SCOPED_TRACE(ep);
    start_broker({ep});
    std::vector<std::unique_ptr<echo_worker>> workers;
    for (int i = 0; i < 3; ++i)
      workers.push_back(std::make_unique<echo_worker>(ctx, worker_for("echo"), "w" + std::to_string(i)));
    ASSERT_TRUE(await_workers(3));

    client_options co;
    co.broker = endpoint;
    client sync(ctx, co);
    for (int i = 0; i < 10; ++i) {
      auto r = sync.request("echo", message("sync-" + std::to_string(i)));
      ASSERT_TRUE(r) << r.error().message();
      ASSERT_EQ(r->size(), 2U);
      EXPECT_EQ(r->view(1), "sync-" + std::to_string(i));
    }

    async_client_options ao;
    ao.broker = endpoint;
    async_client async(ctx, ao);
    std::map<std::uint64_t, std::string> sent;
    for (int i = 0; i < 300; ++i) {
      auto id = async.send("echo", message("async-" + std::to_string(i)));
      ASSERT_TRUE(id);
      sent[*id] = "async-" + std::to_string(i);
    }
    std::map<std::string, int> per_worker;
    async_client::reply rep;
    while (!sent.empty()) {
      ASSERT_TRUE(async.recv(rep, wait_bound)) << sent.size() << " replies missing";
      ASSERT_EQ(rep.status, async_client::reply_status::ok);
      auto it = sent.find(rep.id);
      ASSERT_NE(it, sent.end());
      ASSERT_EQ(rep.body.size(), 2U);
      EXPECT_EQ(rep.body.view(1), it->second);
      ++per_worker[std::string(rep.body.view(0))];
      sent.erase(it);
    }
    EXPECT_EQ(per_worker.size(), 3U) << "every worker should have taken a share";

    auto mmi = sync.request("mmi.service", message("echo"));
    ASSERT_TRUE(mmi);
    EXPECT_EQ(mmi->view(0), "200");
    workers.clear();
    the_broker.reset();
  }
}

TEST_F(MajordomoTest, WorkerKilledMidRequestIsReplacedAndTheRequestServed) {
  if (worker_program.empty()) GTEST_SKIP() << "the test worker is not built";
  start_broker();
  child_process doomed({std::string(worker_program), endpoint, "jobs", "100", "hold"});
  ASSERT_TRUE(doomed.read_until("ready"));
  ASSERT_TRUE(await_workers(1));
  echo_worker heir(ctx, worker_for("jobs"), "heir");
  ASSERT_TRUE(await_workers(2));

  async_client_options ao;
  ao.broker = endpoint;
  // The request must reach a worker before recv() is called: no wait for the probe's answer.
  ao.correlate = correlation::request_id;
  async_client c(ctx, ao);
  ASSERT_TRUE(c.send("jobs", message("precious")));
  ASSERT_TRUE(doomed.read_until("request precious")) << "the longest-idle worker takes it";
  doomed.signal(SIGKILL);

  async_client::reply rep;
  ASSERT_TRUE(c.recv(rep, wait_bound)) << "the request died with its worker";
  ASSERT_EQ(rep.status, async_client::reply_status::ok);
  EXPECT_EQ(rep.body.view(0), "heir");
  EXPECT_EQ(rep.body.view(1), "precious");
  const auto s = the_broker->stats();
  EXPECT_EQ(s.requeued, 1U);
  EXPECT_EQ(s.replies, 1U);
}

TEST_F(MajordomoTest, WorkerPausedWithSigstopIsPurgedItsRequestRequeuedAndItComesBack) {
  if (worker_program.empty()) GTEST_SKIP() << "the test worker is not built";
  start_broker();
  child_process paused({std::string(worker_program), endpoint, "jobs", "100", "echo"});
  ASSERT_TRUE(paused.read_until("ready"));
  ASSERT_TRUE(await_workers(1));
  // Pause it before it can answer anything: its connection stays open, it just goes silent.
  paused.signal(SIGSTOP);
  echo_worker heir(ctx, worker_for("jobs"), "heir");
  ASSERT_TRUE(await_workers(2));

  async_client_options ao;
  ao.broker = endpoint;
  async_client c(ctx, ao);
  ASSERT_TRUE(c.send("jobs", message("while-paused")));
  async_client::reply rep;
  ASSERT_TRUE(c.recv(rep, wait_bound));
  ASSERT_EQ(rep.status, async_client::reply_status::ok);
  EXPECT_EQ(rep.body.view(0), "heir");
  EXPECT_EQ(rep.body.view(1), "while-paused");
  auto s = the_broker->stats();
  EXPECT_EQ(s.workers_expired, 1U);
  EXPECT_EQ(s.requeued, 1U);

  // Resumed, it learns it was dropped (DISCONNECT, or the broker's silence) and registers anew.
  paused.signal(SIGCONT);
  EXPECT_TRUE(await_workers(2));
  EXPECT_EQ(the_broker->stats().replies, 1U) << "the paused worker's late reply must not reach the client";
}

TEST_F(MajordomoTest, BrokerRestartWorkersReRegisterAndClientsRecoverByRetrying) {
  start_broker();
  const std::string fixed = endpoint;  // the restarted broker binds the same port
  echo_worker w(ctx, worker_for("echo"), "w");
  ASSERT_TRUE(await_workers(1));
  client_options co;
  co.broker = fixed;
  co.timeout = 200ms;
  co.retries = 50;
  client c(ctx, co);
  ASSERT_TRUE(c.request("echo", message("before")));

  the_broker.reset();
  // Bind again as soon as the port is free (bounded).
  ASSERT_TRUE(eventually([&] {
    try {
      start_broker({fixed});
      return true;
    } catch (const std::exception&) {
      return false;
    }
  }));

  auto r = c.request("echo", message("after"));
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->view(1), "after");
  EXPECT_GE(w.get().stats().reconnects, 1U);
}

TEST_F(MajordomoTest, CreditWorkerHoldsSeveralRequestsAtOnceAndAnswersThemOutOfOrder) {
  start_broker();
  worker_options wo = worker_for("echo");
  wo.credit = 4;
  worker w(ctx, wo);
  ASSERT_TRUE(await_workers(1));

  // Gathers requests until four are in hand (or none comes for a while), then answers them
  // newest first.
  std::atomic<bool> stop{false};
  std::atomic<std::size_t> most_in_hand{0};
  std::thread serving([&] {
    std::vector<worker::request> held;
    while (!stop.load()) {
      worker::request req;
      auto r = w.recv(req, held.empty() ? 20ms : 200ms);
      if (r) held.push_back(std::move(req));
      if (held.size() < 4 && r) continue;
      if (!r && !r.is(errc::timeout)) return;
      if (held.empty()) continue;
      most_in_hand = std::max(most_in_hand.load(), held.size());
      for (auto it = held.rbegin(); it != held.rend(); ++it) {
        message out;
        for (auto& f : it->body) out.push_back(std::move(f));
        (void)w.reply(*it, std::move(out));
      }
      held.clear();
    }
  });

  async_client_options ao;
  ao.broker = endpoint;
  async_client async(ctx, ao);
  std::map<std::uint64_t, std::string> sent;
  for (int i = 0; i < 100; ++i) {
    auto id = async.send("echo", message("credit-" + std::to_string(i)));
    ASSERT_TRUE(id);
    sent[*id] = "credit-" + std::to_string(i);
  }
  async_client::reply rep;
  while (!sent.empty()) {
    auto r = async.recv(rep, wait_bound);
    if (!r) {
      ADD_FAILURE() << sent.size() << " replies missing";
      break;
    }
    ASSERT_EQ(rep.status, async_client::reply_status::ok);
    auto it = sent.find(rep.id);
    ASSERT_NE(it, sent.end());
    ASSERT_EQ(rep.body.size(), 1U);
    EXPECT_EQ(rep.body.view(0), it->second);
    sent.erase(it);
  }
  stop = true;
  serving.join();

  EXPECT_GT(most_in_hand.load(), 1U) << "the broker should have given the worker several requests at once";
  const auto c = w.stats();
  EXPECT_EQ(c.requests, 100U);
  EXPECT_EQ(c.replies, 100U);
  EXPECT_EQ(c.requests_abandoned, 0U);
  EXPECT_EQ(the_broker->stats().replies, 100U);
}

TEST(MajordomoBoundsTest, RepliesToAClientThatNeverReadsStayWithinItsByteBudget) {
  // A client asks mmi.service with a 4 KiB return stack, again and again, and reads nothing:
  // the broker's replies wait in the client's pipe. They count towards its byte budget until
  // the client takes them, and beyond it they are dropped and counted instead of piling up.
  context ctx;
  broker_options o;
  o.endpoints = {"inproc://mdp-unread-replies"};
  o.max_peer_bytes = 64 * 1024;
  broker b(ctx, o);
  dealer hog(ctx, {.recv_hwm = 0, .linger = 0ms});
  hog.connect(b.endpoints().at(0));
  const std::string stack(4096, 's');
  constexpr int asked = 200;
  for (int i = 0; i < asked; ++i)
    ASSERT_TRUE(hog.send(make_message(stack, "", "MDPC01", "mmi.service", "echo")));
  ASSERT_TRUE(eventually([&] { return b.stats().mmi_requests == asked; }));
  auto s = b.stats();
  EXPECT_LE(s.outbound_bytes, o.max_peer_bytes);
  EXPECT_GE(s.outbound_bytes, o.max_peer_bytes - 5 * 1024);
  EXPECT_GE(s.undeliverable, asked - 16U);
  EXPECT_EQ(s.over_budget, s.undeliverable);
  // Once the client has read what waited for it, the bytes are free again.
  message m;
  int received = 0;
  while (hog.recv(m, 200ms)) {
    ++received;
    m.clear();
  }
  EXPECT_EQ(static_cast<std::uint64_t>(received), asked - s.undeliverable);
  EXPECT_TRUE(eventually([&] { return b.stats().outbound_bytes == 0; }));
  ASSERT_TRUE(hog.send(make_message(stack, "", "MDPC01", "mmi.service", "echo")));
  ASSERT_TRUE(hog.recv(m, wait_bound));
  EXPECT_EQ(m.view(m.size() - 1), "404");
}

// The broker on the caller's thread: run() serves until stop() from another thread.
TEST_F(MajordomoTest, BrokerRunsOnTheCallersThreadUntilStopped) {
  broker_options o;
  o.endpoints = {"tcp://127.0.0.1:*"};
  o.heartbeat_interval = 100ms;
  broker hosted(ctx, o, deferred_start);
  endpoint = hosted.endpoints().at(0);  // bound at construction, before anything is served
  std::optional<result<void>> outcome;
  std::thread host([&] { outcome = hosted.run(); });
  {
    echo_worker w(ctx, worker_for("echo"), "w");
    client_options co;
    co.broker = endpoint;
    client c(ctx, co);
    auto reply = c.request("echo", message("on the caller's thread"));
    EXPECT_TRUE(reply) << reply.error().message();
    if (reply) {
      EXPECT_EQ(reply->view(1), "on the caller's thread");
    }
  }
  EXPECT_THROW(hosted.start(), fabric::error);  // already serving
  EXPECT_TRUE(hosted.stop());
  host.join();
  ASSERT_TRUE(outcome.has_value());
  EXPECT_TRUE(*outcome);
}

// Two brokers (standing in for any two services: a broker and a Titanic, say) attached to one
// reactor the application runs: both serve on its one thread, and detach leaves it as it was.
TEST_F(MajordomoTest, TwoBrokersShareOneReactorTheApplicationRuns) {
  reactor loop;
  std::vector<std::unique_ptr<broker>> brokers;
  std::vector<std::string> endpoints;
  for (const char* ep : {"inproc://mdp-hosted-a", "inproc://mdp-hosted-b"}) {
    broker_options o;
    o.endpoints = {ep};
    o.heartbeat_interval = 100ms;
    brokers.push_back(std::make_unique<broker>(ctx, o, deferred_start));
    brokers.back()->attach(loop);
    endpoints.push_back(ep);
  }
  EXPECT_THROW(brokers[0]->attach(loop), fabric::error);
  EXPECT_THROW(brokers[0]->start(), fabric::error);

  std::vector<std::unique_ptr<echo_worker>> workers;
  for (const auto& ep : endpoints) {
    endpoint = ep;
    workers.push_back(std::make_unique<echo_worker>(ctx, worker_for("echo"), ep));
  }
  for (std::size_t i = 0; i < endpoints.size(); ++i) {
    client_options co;
    co.broker = endpoints[i];
    client c(ctx, co);
    auto pending = std::async(std::launch::async, [&c] { return c.request("echo", message("one loop")); });
    const auto deadline = std::chrono::steady_clock::now() + wait_bound;
    while (pending.wait_for(0ms) != std::future_status::ready && std::chrono::steady_clock::now() < deadline)
      ASSERT_TRUE(loop.run_once(10ms));
    auto reply = pending.get();
    ASSERT_TRUE(reply) << reply.error().message();
    EXPECT_EQ(reply->view(0), endpoints[i]);  // the worker of this broker, not the other's
    EXPECT_EQ(reply->view(1), "one loop");
    // Attached, stats() is answered directly on the reactor's thread (this one).
    EXPECT_EQ(brokers[i]->stats().replies, 1U);
  }
  workers.clear();
  for (auto& b : brokers) EXPECT_TRUE(b->detach(loop));
  EXPECT_FALSE(brokers[0]->detach(loop));
  EXPECT_EQ(loop.socket_count(), 0U);
  EXPECT_EQ(loop.timer_count(), 0U);
}

}  // namespace
}  // namespace fabric::mdp
