// Tests Lazy Pirate and Paranoid Pirate (6/PPP) over real sockets: end to end over inproc, ipc and
// tcp, server and queue restarts on the same port, dead and silent workers, malformed frames on
// both sides of the queue, a full queue, and heartbeats while a worker is busy.
#include "support/socket_server.hpp"
#include "support/support.hpp"

#include <fabric/lazy_pirate.hpp>
#include <fabric/paranoid_pirate.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

using namespace std::chrono_literals;
using namespace std::string_literals;
using fabric::actor;
using fabric::context;
using fabric::errc;
using fabric::lazy_pirate_client;
using fabric::lazy_pirate_options;
using fabric::lazy_pirate_sequence;
using fabric::make_message;
using fabric::message;
using fabric::socket_event;
using fabric::testing::loopback_endpoint;
using fabric::testing::to_strings;
using fabric::testing::transport;
using fabric::testing::wait_bound;
namespace ppp = fabric::ppp;
using strings = std::vector<std::string>;

const std::string ready_frame = "\x01";
const std::string heartbeat_frame = "\x02";

// Waits until `condition` holds, checking every 2 ms, for at most `bound`: for state that is
// only observable through counters (a queue's stats), never to wait for time itself to pass.
template <class Condition>
bool eventually(Condition condition, std::chrono::milliseconds bound = wait_bound) {
  const auto deadline = std::chrono::steady_clock::now() + bound;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(2ms);
  }
  return true;
}

using server = fabric::testing::socket_server;

void echo(fabric::any_socket& s, message&& m) { ASSERT_TRUE(s.send(std::move(m), wait_bound)); }

// A 6/PPP worker application on its own thread. `handle` makes the reply body from a request;
// returning nullopt makes the application die on the spot, without replying. The worker is
// created here and handed to the thread; stats() may be read at any time.
class worker_app {
 public:
  using handler = std::function<std::optional<message>(ppp::request&)>;

  worker_app(context& ctx, ppp::worker_options o, handler handle = {})
      : worker_(ctx, std::move(o)),
        handle_(handle ? std::move(handle) : [](ppp::request& r) { return std::optional<message>(std::move(r.body)); }),
        thread_([this] { run(); }) {}
  ~worker_app() { stop(); }
  worker_app(const worker_app&) = delete;
  worker_app& operator=(const worker_app&) = delete;

  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  ppp::worker_stats stats() const { return worker_.stats(); }
  std::size_t handled() const { return handled_.load(); }

 private:
  void run() {
    while (!stop_) {
      auto req = worker_.recv(10ms);
      if (!req) {
        if (req.is(errc::timeout)) continue;
        return;
      }
      auto reply = handle_(*req);
      if (!reply) {
        worker_.stop();
        return;
      }
      ++handled_;
      if (auto sent = worker_.reply(std::move(*req), std::move(*reply)); !sent)
        ADD_FAILURE() << "worker reply: " << sent.error().message();
    }
  }

  ppp::worker worker_;
  handler handle_;
  std::atomic<bool> stop_{false};
  std::atomic<std::size_t> handled_{0};
  std::thread thread_;  // last: starts once everything it uses exists
};

// Fast protocol timing, so expiry takes a fraction of a second.
ppp::queue_options fast_queue(std::string frontend, std::string backend) {
  return {.frontend = std::move(frontend),
          .backend = std::move(backend),
          .heartbeat_interval = 50ms,
          .liveness = 3};
}

ppp::worker_options fast_worker(std::string endpoint) {
  return {.endpoint = std::move(endpoint),
          .heartbeat_interval = 50ms,
          .liveness = 3,
          .reconnect_interval = 50ms,
          .reconnect_interval_max = 200ms,
          .socket = {.linger = 0ms}};
}

lazy_pirate_options patient_client(std::string endpoint) {
  return {.endpoints = {std::move(endpoint)}, .timeout = wait_bound, .retries = 0};
}

// A bare DEALER that plays a worker by hand.
std::unique_ptr<fabric::dealer> raw_worker(context& ctx, const std::string& backend) {
  auto d = std::make_unique<fabric::dealer>(ctx, fabric::socket_options{.linger = 0ms});
  d->connect(backend);
  return d;
}

// Sends READY from a hand-made worker and returns once the queue has registered it (it then
// receives the queue's heartbeats).
void register_by_hand(fabric::dealer& d) {
  ASSERT_TRUE(d.send(make_message(ready_frame), wait_bound));
  auto hb = d.recv(wait_bound);
  ASSERT_TRUE(hb) << "the queue never heartbeated the hand-made worker";
  EXPECT_EQ(to_strings(*hb), (strings{heartbeat_frame}));
}

// Creates a queue, retrying while the previous owner of its port is still releasing it.
std::unique_ptr<ppp::queue> queue_when_port_free(context& ctx, const ppp::queue_options& o) {
  const auto deadline = std::chrono::steady_clock::now() + wait_bound;
  for (;;) {
    try {
      return std::make_unique<ppp::queue>(ctx, o);
    } catch (const fabric::error& e) {
      if (e.code() != std::error_code(EADDRINUSE, fabric::zmq_category()) ||
          std::chrono::steady_clock::now() >= deadline)
        throw;
    }
    std::this_thread::sleep_for(5ms);
  }
}

// ------------------------------------------------------------------------------------------------
// Over every transport

class PirateTransportTest : public ::testing::TestWithParam<transport> {};

TEST_P(PirateTransportTest, LazyPirateGetsRepliesFromPlainRepServerInBothSequenceModes) {
  context ctx;
  auto rep = std::make_shared<fabric::any_socket>(ctx, zmq::socket_type::rep);
  const std::string ep = rep->bind(loopback_endpoint(GetParam(), "lazy-rep"));
  server srv(ctx, rep, echo);
  for (auto mode : {lazy_pirate_sequence::envelope, lazy_pirate_sequence::none}) {
    lazy_pirate_client client(ctx, {.endpoints = {ep}, .timeout = wait_bound, .sequence = mode});
    for (int i = 0; i < 5; ++i) {
      auto reply = client.request(make_message("ping", std::to_string(i)));
      ASSERT_TRUE(reply) << reply.error().message();
      EXPECT_EQ(to_strings(*reply), (strings{"ping", std::to_string(i)}));
    }
    EXPECT_EQ(client.stats().retries, 0u);
  }
}

TEST_P(PirateTransportTest, ClientGetsRepliesThroughQueueFromWorkers) {
  context ctx;
  ppp::queue q(ctx, fast_queue(loopback_endpoint(GetParam(), "ppp-front"),
                               loopback_endpoint(GetParam(), "ppp-back")));
  q.start();
  worker_app w1(ctx, fast_worker(q.backend_endpoint()));
  worker_app w2(ctx, fast_worker(q.backend_endpoint()));
  lazy_pirate_client client(ctx, patient_client(q.frontend_endpoint()));
  for (int i = 0; i < 10; ++i) {
    auto reply = client.request(make_message("job", std::to_string(i)));
    ASSERT_TRUE(reply) << reply.error().message();
    EXPECT_EQ(to_strings(*reply), (strings{"job", std::to_string(i)}));
  }
  EXPECT_EQ(w1.handled() + w2.handled(), 10u);
  // Counted once sent, so possibly just after the client has it.
  EXPECT_TRUE(eventually([&] { return q.stats().replies_forwarded == 10; }));
  EXPECT_EQ(q.stats().malformed_client + q.stats().malformed_worker, 0u);
}

INSTANTIATE_TEST_SUITE_P(AllTransports, PirateTransportTest,
                         ::testing::ValuesIn(fabric::testing::all_transports),
                         fabric::testing::transport_name{});

// ------------------------------------------------------------------------------------------------
// Lazy Pirate

TEST(LazyPirateIntegrationTest, RecoversWhenServerRestartsOnTheSamePort) {
  context ctx;
  // The first server hangs: it takes the request and never answers, then goes away.
  auto hung = std::make_shared<fabric::any_socket>(ctx, zmq::socket_type::router,
                                                   fabric::socket_options{.linger = 0ms});
  fabric::monitor hung_events(*hung);
  const std::string ep = hung->bind("tcp://127.0.0.1:*");
  auto first = std::make_unique<server>(ctx, hung, [](fabric::any_socket&, message&&) {});

  lazy_pirate_client client(ctx, {.endpoints = {ep}, .timeout = 200ms, .retries = 20});
  auto pending = std::async(std::launch::async, [&client] { return client.request(make_message("survive")); });

  ASSERT_TRUE(first->wait_for_messages(1));
  first.reset();  // joins the server thread
  hung->close();
  ASSERT_TRUE(hung_events.wait_for(socket_event::closed, wait_bound)) << "the port was not released";

  auto rep = std::make_shared<fabric::any_socket>(ctx, zmq::socket_type::rep);
  ASSERT_EQ(rep->bind(ep), ep);
  server second(ctx, rep, echo);

  auto reply = pending.get();
  ASSERT_TRUE(reply) << reply.error().message();
  EXPECT_EQ(to_strings(*reply), (strings{"survive"}));
  EXPECT_GE(client.stats().retries, 1u);
  EXPECT_EQ(client.stats().replies, 1u);
  EXPECT_EQ(client.stats().failures, 0u);
}

// ------------------------------------------------------------------------------------------------
// Paranoid Pirate

TEST(PppIntegrationTest, SilentWorkerIsPurgedAndItsRequestGoesToAnotherWorker) {
  context ctx;
  ppp::queue q(ctx, fast_queue(loopback_endpoint(transport::tcp), loopback_endpoint(transport::tcp)));
  q.start();
  // Registered first, so it is the least recently used worker and gets the request; then it
  // never says another word.
  auto zombie = raw_worker(ctx, q.backend_endpoint());
  register_by_hand(*zombie);
  worker_app healthy(ctx, fast_worker(q.backend_endpoint()));
  ASSERT_TRUE(eventually([&] { return q.stats().workers_idle == 2; }));

  lazy_pirate_client client(ctx, patient_client(q.frontend_endpoint()));
  auto reply = client.request(make_message("job"));
  ASSERT_TRUE(reply) << reply.error().message();
  EXPECT_EQ(to_strings(*reply), (strings{"job"}));

  const auto s = q.stats();
  EXPECT_EQ(s.workers_expired, 1u);
  EXPECT_EQ(s.requests_redelivered, 1u);
  EXPECT_EQ(s.requests_dispatched, 2u);
  EXPECT_EQ(healthy.handled(), 1u);
  EXPECT_EQ(client.stats().retries, 0u);  // the queue recovered it, not the client
  // The zombie did get the request first.
  bool zombie_got_it = false;
  message m;
  while (zombie->try_recv(m))
    if (m.size() > 1 && m.view(m.size() - 1) == "job") zombie_got_it = true;
  EXPECT_TRUE(zombie_got_it);
}

TEST(PppIntegrationTest, WorkerThatDiesMidRequestLosesNoRequest) {
  context ctx;
  ppp::queue q(ctx, fast_queue(loopback_endpoint(transport::tcp), loopback_endpoint(transport::tcp)));
  q.start();
  worker_app dying(ctx, fast_worker(q.backend_endpoint()),
                   [](ppp::request&) { return std::optional<message>(); });
  ASSERT_TRUE(eventually([&] { return q.stats().workers_idle == 1; }));
  worker_app healthy(ctx, fast_worker(q.backend_endpoint()));
  ASSERT_TRUE(eventually([&] { return q.stats().workers_idle == 2; }));

  lazy_pirate_client client(ctx, patient_client(q.frontend_endpoint()));
  auto reply = client.request(make_message("precious"));
  ASSERT_TRUE(reply) << reply.error().message();
  EXPECT_EQ(to_strings(*reply), (strings{"precious"}));
  const auto s = q.stats();
  EXPECT_EQ(s.requests_redelivered, 1u);
  EXPECT_EQ(s.workers_expired + s.workers_unreachable, 1u);
  EXPECT_EQ(healthy.handled(), 1u);
  EXPECT_EQ(client.stats().retries, 0u);
}

TEST(PppIntegrationTest, WorkerReconnectsWithBackoffAfterQueueRestart) {
  context ctx;
  auto options = fast_queue(loopback_endpoint(transport::tcp), loopback_endpoint(transport::tcp));
  auto q = std::make_unique<ppp::queue>(ctx, options);
  q->start();
  options.backend = q->backend_endpoint();  // the restarted queue takes the same port

  worker_app w(ctx, fast_worker(q->backend_endpoint()));
  {
    lazy_pirate_client client(ctx, patient_client(q->frontend_endpoint()));
    ASSERT_TRUE(client.request(make_message("before")));
  }
  q.reset();

  // With nobody to hear it, the worker gives up on the queue again and again, waiting longer
  // each time: 50 ms, 100 ms, then 200 ms (the maximum).
  ASSERT_TRUE(eventually([&] { return w.stats().disconnects >= 3; }));
  EXPECT_GE(w.stats().reconnects, 2u);
  EXPECT_EQ(w.stats().next_reconnect_delay, 200ms);

  q = queue_when_port_free(ctx, options);
  q->start();
  lazy_pirate_client client(ctx, patient_client(q->frontend_endpoint()));
  auto reply = client.request(make_message("after"));
  ASSERT_TRUE(reply) << reply.error().message();
  EXPECT_EQ(to_strings(*reply), (strings{"after"}));
  EXPECT_GE(q->stats().workers_registered, 1u);
  // Hearing the queue again resets the back-off.
  EXPECT_TRUE(eventually([&] { return w.stats().next_reconnect_delay == 50ms; }));
  EXPECT_TRUE(w.stats().connected);
}

TEST(PppIntegrationTest, QueueCountsAndDropsMalformedFrames) {
  context ctx;
  ppp::queue q(ctx, fast_queue(loopback_endpoint(transport::tcp), loopback_endpoint(transport::tcp)));
  q.start();

  // From workers: each is dropped; READY afterwards proves they were all read (one connection
  // keeps its order).
  auto bad_worker = raw_worker(ctx, q.backend_endpoint());
  const std::vector<strings> bad_commands = {
      {""}, {"\x03"}, {"\x01\x01"}, {"\x02\x00"s}, {"no address stack"}, {"client", "no delimiter"}, {"c", ""},
  };
  for (const auto& parts : bad_commands) {
    message m;
    for (const auto& p : parts) m.push_back(std::string_view(p));
    ASSERT_TRUE(bad_worker->send(std::move(m), wait_bound));
  }
  register_by_hand(*bad_worker);
  EXPECT_EQ(q.stats().malformed_worker, bad_commands.size());

  // A heartbeat before READY is not a registration.
  auto stranger = raw_worker(ctx, q.backend_endpoint());
  ASSERT_TRUE(stranger->send(make_message(heartbeat_frame), wait_bound));
  ASSERT_TRUE(eventually([&] { return q.stats().unknown_worker_messages == 1; }));
  EXPECT_EQ(q.stats().workers_registered, 1u);

  // From clients: the valid request after them reaches the (hand-made) worker.
  fabric::dealer client(ctx, {.linger = 0ms});
  client.connect(q.frontend_endpoint());
  ASSERT_TRUE(client.send(make_message("no delimiter"), wait_bound));
  ASSERT_TRUE(client.send(make_message(""), wait_bound));
  ASSERT_TRUE(client.send(make_message("a", "b"), wait_bound));
  ASSERT_TRUE(client.send(make_message("", "valid"), wait_bound));
  message job;
  do {
    ASSERT_TRUE(bad_worker->recv(job, wait_bound));
  } while (job.size() == 1);  // heartbeats
  ASSERT_EQ(job.size(), 3u);
  EXPECT_EQ(job.view(1), "");
  EXPECT_EQ(job.view(2), "valid");
  EXPECT_EQ(q.stats().malformed_client, 3u);

  // The queue still works: the hand-made worker answers and the client gets it.
  job.back() = fabric::make_frame("answer");
  ASSERT_TRUE(bad_worker->send(std::move(job), wait_bound));
  auto reply = client.recv(wait_bound);
  ASSERT_TRUE(reply) << reply.error().message();
  EXPECT_EQ(to_strings(*reply), (strings{"", "answer"}));
}

TEST(PppIntegrationTest, WorkerCountsAndDropsMalformedFrames) {
  context ctx;
  // A queue played by hand: a ROUTER the worker connects to.
  fabric::router fake_queue(ctx, {.linger = 0ms});
  const std::string ep = fake_queue.bind(loopback_endpoint(transport::tcp));
  ppp::worker w(ctx, fast_worker(ep));
  auto hello = fake_queue.recv(wait_bound);
  ASSERT_TRUE(hello) << hello.error().message();
  ASSERT_EQ(hello->size(), 2u);
  EXPECT_EQ(hello->view(1), ready_frame);
  const std::string id(hello->view(0));

  for (const auto& parts : std::vector<strings>{{ready_frame}, {""}, {"client", ""}})
    ASSERT_TRUE(fake_queue.send_to(id, [&] {
      message m;
      for (const auto& p : parts) m.push_back(std::string_view(p));
      return m;
    }()));
  message huge = make_message("client", "");  // 256 frames: more than the worker can hand on
  while (huge.size() < 256) huge.push_back("x");
  ASSERT_TRUE(fake_queue.send_to(id, std::move(huge)));
  ASSERT_TRUE(fake_queue.send_to(id, make_message("client", "", "job")));
  ASSERT_TRUE(fake_queue.send_to(id, make_message("bare")));  // no address stack at all

  auto req = w.recv(wait_bound);
  ASSERT_TRUE(req) << req.error().message();
  EXPECT_EQ(to_strings(req->envelope), (strings{"client", ""}));
  EXPECT_EQ(to_strings(req->body), (strings{"job"}));
  EXPECT_EQ(w.stats().malformed, 4u);
  message too_long;
  while (too_long.size() < 254) too_long.push_back("y");
  EXPECT_TRUE(w.reply(std::move(*req), std::move(too_long)).is(errc::too_large));
  EXPECT_EQ(req->envelope.size(), 2u);  // left as it was, to answer properly
  ASSERT_TRUE(w.reply(std::move(*req), make_message("done")));

  auto bare = w.recv(wait_bound);
  ASSERT_TRUE(bare) << bare.error().message();
  EXPECT_TRUE(bare->envelope.empty());
  EXPECT_EQ(to_strings(bare->body), (strings{"bare"}));
  ASSERT_TRUE(w.reply(std::move(*bare), make_message("bare reply")));

  for (const strings& expected : {strings{id, "client", "", "done"}, strings{id, "bare reply"}}) {
    message m;
    do {
      ASSERT_TRUE(fake_queue.recv(m, wait_bound));
    } while (m.size() == 2 && m.view(1) == heartbeat_frame);
    EXPECT_EQ(to_strings(m), expected);
  }
  EXPECT_EQ(w.stats().requests, 2u);
  EXPECT_TRUE(eventually([&] { return w.stats().replies == 2; }));
}

TEST(PppIntegrationTest, FullQueueDropsTheOldestRequestsAndServesTheRest) {
  context ctx;
  auto options = fast_queue(loopback_endpoint(transport::tcp), loopback_endpoint(transport::tcp));
  options.max_queued_requests = 2;
  options.overflow = ppp::overflow_policy::drop_oldest;
  ppp::queue q(ctx, options);
  q.start();

  fabric::dealer client(ctx, {.linger = 0ms});
  client.connect(q.frontend_endpoint());
  for (int i = 1; i <= 5; ++i) ASSERT_TRUE(client.send(make_message("", "r" + std::to_string(i)), wait_bound));
  ASSERT_TRUE(eventually([&] { return q.stats().requests_received == 5; }));
  EXPECT_EQ(q.stats().requests_dropped_full, 3u);
  EXPECT_EQ(q.stats().queued, 2u);

  worker_app w(ctx, fast_worker(q.backend_endpoint()));
  for (const char* expected : {"r4", "r5"}) {
    auto reply = client.recv(wait_bound);
    ASSERT_TRUE(reply) << "waiting for " << expected << ": " << reply.error().message();
    EXPECT_EQ(to_strings(*reply), (strings{"", expected}));
  }
  EXPECT_TRUE(eventually([&] { return q.stats().replies_forwarded == 2; }));
  EXPECT_EQ(q.stats().requests_dispatched, 2u);
  EXPECT_EQ(q.stats().queued, 0u);
}

TEST(PppIntegrationTest, WorkerKeepsHeartbeatingDuringALongRequest) {
  context ctx;
  ppp::queue q(ctx, fast_queue(loopback_endpoint(transport::tcp), loopback_endpoint(transport::tcp)));
  q.start();
  // The application is busy until the queue has heard 12 heartbeats (600 ms, four times the
  // 150 ms expiry) from the worker, which keeps sending them on its own thread.
  std::uint64_t heartbeats_during = 0;
  worker_app w(ctx, fast_worker(q.backend_endpoint()), [&](ppp::request& r) {
    const auto before = q.stats().heartbeats_received;
    EXPECT_TRUE(eventually([&] { return q.stats().heartbeats_received >= before + 12; }));
    heartbeats_during = q.stats().heartbeats_received - before;
    return std::optional<message>(std::move(r.body));
  });
  lazy_pirate_client client(ctx, patient_client(q.frontend_endpoint()));
  auto reply = client.request(make_message("slow job"));
  ASSERT_TRUE(reply) << reply.error().message();
  EXPECT_EQ(to_strings(*reply), (strings{"slow job"}));
  EXPECT_GE(heartbeats_during, 12u);
  const auto s = q.stats();
  EXPECT_EQ(s.workers_expired, 0u);
  EXPECT_EQ(s.requests_redelivered, 0u);
  EXPECT_EQ(w.stats().disconnects, 0u);
  EXPECT_GE(w.stats().heartbeats_received, 1u);  // the queue heartbeated the busy worker too
}

TEST(PppIntegrationTest, RequestsAlternateBetweenTwoWorkersInLruOrder) {
  context ctx;
  ppp::queue q(ctx, fast_queue(loopback_endpoint(transport::inproc), loopback_endpoint(transport::inproc)));
  q.start();
  worker_app a(ctx, fast_worker(q.backend_endpoint()));
  worker_app b(ctx, fast_worker(q.backend_endpoint()));
  ASSERT_TRUE(eventually([&] { return q.stats().workers_idle == 2; }));
  lazy_pirate_client client(ctx, patient_client(q.frontend_endpoint()));
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(client.request(make_message("x")));
  EXPECT_EQ(a.handled(), 3u);
  EXPECT_EQ(b.handled(), 3u);
}

TEST(PppIntegrationTest, QueueRunsOnTheCallerThreadUntilStopped) {
  context ctx;
  ppp::queue q(ctx, fast_queue(loopback_endpoint(transport::inproc), loopback_endpoint(transport::inproc)));
  auto running = std::async(std::launch::async, [&q] { return q.run(); });
  worker_app w(ctx, fast_worker(q.backend_endpoint()));
  lazy_pirate_client client(ctx, patient_client(q.frontend_endpoint()));
  ASSERT_TRUE(client.request(make_message("on the caller's thread")));
  q.stop();
  ASSERT_EQ(running.wait_for(wait_bound), std::future_status::ready);
  EXPECT_TRUE(running.get());
}

TEST(PppIntegrationTest, StopBeforeRunMakesRunReturnAtOnce) {
  context ctx;
  ppp::queue q(ctx, fast_queue(loopback_endpoint(transport::inproc), loopback_endpoint(transport::inproc)));
  q.stop();
  EXPECT_TRUE(q.run());
  q.start();  // and it can still run in the background afterwards
  EXPECT_THROW(q.start(), fabric::error);
}

TEST(PppIntegrationTest, QueueRunsOnAReactorTheCallerOwns) {
  context ctx;
  ppp::queue q(ctx, fast_queue(loopback_endpoint(transport::inproc), loopback_endpoint(transport::inproc)));
  fabric::reactor r;
  q.attach(r);
  EXPECT_THROW(q.attach(r), fabric::error);
  worker_app w(ctx, fast_worker(q.backend_endpoint()));
  lazy_pirate_client client(ctx, patient_client(q.frontend_endpoint()));
  auto pending = std::async(std::launch::async, [&client] { return client.request(make_message("embedded")); });
  const auto deadline = std::chrono::steady_clock::now() + wait_bound;
  while (pending.wait_for(0ms) != std::future_status::ready && std::chrono::steady_clock::now() < deadline)
    ASSERT_TRUE(r.run_once(10ms));
  auto reply = pending.get();
  ASSERT_TRUE(reply) << reply.error().message();
  EXPECT_EQ(to_strings(*reply), (strings{"embedded"}));
  EXPECT_TRUE(q.detach(r));
  EXPECT_FALSE(q.detach(r));
  EXPECT_EQ(r.socket_count(), 0u);
  EXPECT_EQ(r.timer_count(), 0u);
  {
    ppp::queue second(ctx, fast_queue(loopback_endpoint(transport::inproc), loopback_endpoint(transport::inproc)));
    second.attach(r);
    EXPECT_EQ(r.socket_count(), 2u);
  }  // detached by its destructor
  EXPECT_EQ(r.socket_count(), 0u);
  EXPECT_EQ(r.timer_count(), 0u);
}

TEST(PppIntegrationTest, WorkerReportsTimeoutThenClosedAfterStop) {
  context ctx;
  ppp::worker w(ctx, fast_worker(loopback_endpoint(transport::inproc, "nobody")));
  EXPECT_TRUE(w.recv(20ms).is(errc::timeout));
  w.stop();
  EXPECT_TRUE(w.recv(20ms).is(errc::closed));
  EXPECT_TRUE(w.reply(ppp::request{}, make_message("x")).is(errc::closed));
  EXPECT_THROW((void)w.reply(ppp::request{}, message()), fabric::error);
}

TEST(PppIntegrationTest, RejectsUnusableOptions) {
  context ctx;
  EXPECT_THROW(ppp::queue(ctx, {}), fabric::error);
  EXPECT_THROW(ppp::queue(ctx, {.frontend = "inproc://f", .backend = "inproc://b", .heartbeat_interval = 0ms}),
               fabric::error);
  EXPECT_THROW(ppp::worker(ctx, {}), fabric::error);
  EXPECT_THROW(ppp::worker(ctx, {.endpoint = "inproc://w", .liveness = 0}), fabric::error);
  EXPECT_THROW(ppp::worker(ctx, {.endpoint = "nonsense://w"}), fabric::error);
}

}  // namespace
