// The asynchronous Majordomo and Titanic clients given a failover list: two real brokers on
// loopback (or a silent endpoint and a real broker), a broker stopped under a stream of requests,
// ids kept across the move, expiries still reported once, a reactor following the socket, and a
// keyed Titanic post sent again on the second broker and stored once.
#include <fabric/context.hpp>
#include <fabric/error.hpp>
#include <fabric/journal.hpp>
#include <fabric/majordomo.hpp>
#include <fabric/majordomo_client.hpp>
#include <fabric/majordomo_worker.hpp>
#include <fabric/reactor.hpp>
#include <fabric/titanic.hpp>
#include <fabric/titanic_client.hpp>

#include "support/raw_frames.hpp"
#include "support/support.hpp"

#include <gtest/gtest.h>
#include <zmq.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace fabric::mdp {
namespace {

using namespace std::chrono_literals;
using fabric::testing::eventually;
using fabric::testing::expect_error;
using fabric::testing::raw_frames;
using fabric::testing::to_strings;
using fabric::testing::wait_bound;
using steady = std::chrono::steady_clock;

constexpr auto silence = 300ms;

// A worker on its own thread answering "<name>" | body... for one service.
class echo_worker {
 public:
  echo_worker(context& ctx, const std::string& broker, const std::string& service, std::string name)
      : worker_(ctx, {.broker = broker, .service = service, .heartbeat_interval = 100ms}), name_(std::move(name)) {
    thread_ = std::thread([this] {
      worker::request req;
      while (!stop_) {
        auto r = worker_.recv(req, 20ms);
        if (!r) continue;
        message out;
        out.push_back(name_);
        for (auto& f : req.body) out.push_back(std::move(f));
        (void)worker_.reply(req, std::move(out));
      }
    });
  }
  ~echo_worker() {
    stop_ = true;
    thread_.join();
  }
  echo_worker(const echo_worker&) = delete;
  echo_worker& operator=(const echo_worker&) = delete;

 private:
  worker worker_;
  std::string name_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

std::unique_ptr<broker> start_broker(context& ctx) {
  broker_options o;
  o.endpoints = {"tcp://127.0.0.1:*"};
  o.heartbeat_interval = 100ms;
  return std::make_unique<broker>(ctx, o);
}

// Whether `b` has a worker for each of `services`.
bool serves(broker& b, const std::vector<std::string>& services) {
  const auto s = b.stats();
  for (const auto& name : services) {
    bool found = false;
    for (const auto& sv : s.services) found = found || (sv.name == name && sv.workers > 0);
    if (!found) return false;
  }
  return true;
}

// A ROUTER that takes requests and never answers: a broker hung, or a passive node of a pair.
class silent_endpoint {
 public:
  silent_endpoint() : sock_(ctx_, zmq::socket_type::router) {
    sock_.set(zmq::sockopt::linger, 0);
    sock_.bind("tcp://127.0.0.1:*");
    endpoint_ = sock_.get(zmq::sockopt::last_endpoint);
  }
  const std::string& endpoint() const { return endpoint_; }
  // The next message received (the routing id first), or nothing within `timeout`.
  std::optional<raw_frames> next(std::chrono::milliseconds timeout = wait_bound) {
    return fabric::testing::recv_frames(sock_, timeout);
  }

 private:
  zmq::context_t ctx_;
  zmq::socket_t sock_;
  std::string endpoint_;
};

// A plain 7/MDP broker played frame by frame on a thread: it answers every request itself with
// "P" | body..., answers "mmi.services" with 501 as 8/MMI has a broker without fabric's
// extension do, and drops a request that carries a request id, as it would any malformed one.
class plain_broker {
 public:
  plain_broker() : sock_(ctx_, zmq::socket_type::router) {
    sock_.set(zmq::sockopt::linger, 0);
    sock_.bind("tcp://127.0.0.1:*");
    endpoint_ = sock_.get(zmq::sockopt::last_endpoint);
    thread_ = std::thread([this] {
      while (!stop_) {
        auto m = fabric::testing::recv_frames(sock_, 20ms);
        if (!m) continue;
        if (m->size() < 5 || !(*m)[1].empty() || (*m)[2] != "MDPC01") {
          ++dropped_;
          continue;
        }
        raw_frames reply{(*m)[0], "", "MDPC01", (*m)[3]};
        if ((*m)[3] == "mmi.services") {
          reply.emplace_back("501");
        } else {
          reply.emplace_back("P");
          reply.insert(reply.end(), m->begin() + 4, m->end());
        }
        fabric::testing::send_frames(sock_, reply);
      }
    });
  }
  ~plain_broker() {
    stop_ = true;
    thread_.join();
  }
  plain_broker(const plain_broker&) = delete;
  plain_broker& operator=(const plain_broker&) = delete;
  const std::string& endpoint() const { return endpoint_; }
  int dropped() const { return dropped_; }

 private:
  zmq::context_t ctx_;
  zmq::socket_t sock_;
  std::string endpoint_;
  std::atomic<bool> stop_{false};
  std::atomic<int> dropped_{0};
  std::thread thread_;
};

std::string name_of(const ::testing::TestParamInfo<correlation>& info) {
  switch (info.param) {
    case correlation::plain: return "Plain";
    case correlation::request_id: return "RequestId";
    case correlation::automatic: return "Automatic";
  }
  return "Unknown";
}

class AsyncClientFailoverTest : public ::testing::TestWithParam<correlation> {
 protected:
  async_client_options options_for(const std::string& first, const std::string& second) const {
    async_client_options o;
    o.broker = first;
    o.failover = {second};
    o.failover_after = silence;
    o.correlate = GetParam();
    o.request_expiry = 2 * wait_bound;
    return o;
  }

  context ctx;
};

TEST_P(AsyncClientFailoverTest, EveryRequestCompletesOnceWhenTheFirstBrokerStopsMidStream) {
  auto a = start_broker(ctx);
  auto b = start_broker(ctx);
  const std::string ep_a = a->endpoints().at(0);
  const std::string ep_b = b->endpoints().at(0);
  echo_worker wa(ctx, ep_a, "echo", "A");
  echo_worker wb(ctx, ep_b, "echo", "B");
  echo_worker wb_late(ctx, ep_b, "late", "B");  // "late" has no worker on A: its requests wait there
  ASSERT_TRUE(eventually([&] { return serves(*a, {"echo"}) && serves(*b, {"echo", "late"}); }));

  async_client c(ctx, options_for(ep_a, ep_b));
  std::map<std::uint64_t, std::string> bodies;
  std::set<std::uint64_t> echoes_on_a;
  auto send = [&](const std::string& service, const std::string& body) {
    auto id = c.send(service, message(body));
    ASSERT_TRUE(id) << id.error().message();
    bodies[*id] = body;
    if (service == "echo" && bodies.size() <= 30) echoes_on_a.insert(*id);
  };
  for (int i = 0; i < 30; ++i) send(i % 3 == 2 ? "late" : "echo", "first-" + std::to_string(i));
  ASSERT_EQ(echoes_on_a.size(), 20U);

  // The first broker answers the echoes; the "late" requests stay queued on it.
  std::set<std::uint64_t> done;
  async_client::reply rep;
  while (done.size() < echoes_on_a.size()) {
    ASSERT_TRUE(c.recv(rep, wait_bound)) << done.size() << " answered";
    ASSERT_EQ(rep.status, async_client::reply_status::ok);
    ASSERT_TRUE(echoes_on_a.count(rep.id)) << "only the echoes can be answered by the first broker";
    EXPECT_EQ(to_strings(rep.body), (std::vector<std::string>{"A", bodies.at(rep.id)}));
    EXPECT_TRUE(done.insert(rep.id).second) << "reported twice";
  }
  const auto last_heard = steady::now();
  EXPECT_EQ(c.outstanding(), 10U);
  EXPECT_EQ(c.endpoint(), ep_a);
  EXPECT_EQ(c.socket_generation(), 0U);
  EXPECT_GT(c.retained_bytes(), 0U) << "the outstanding requests are kept for a resend";

  // The first broker goes away with ten requests, and twenty more are sent into the void.
  a.reset();
  for (int i = 0; i < 20; ++i) send("echo", "second-" + std::to_string(i));
  EXPECT_EQ(c.outstanding(), 30U);

  std::optional<steady::time_point> first_on_b;
  while (done.size() < bodies.size()) {
    ASSERT_TRUE(c.recv(rep, wait_bound)) << done.size() << " of " << bodies.size() << " answered";
    if (!first_on_b) first_on_b = steady::now();
    ASSERT_EQ(rep.status, async_client::reply_status::ok) << "request " << rep.id << " expired";
    ASSERT_TRUE(bodies.count(rep.id)) << "an id send() never returned";
    EXPECT_EQ(to_strings(rep.body), (std::vector<std::string>{"B", bodies.at(rep.id)}));
    EXPECT_TRUE(done.insert(rep.id).second) << "reported twice";
  }
  // The silence is counted from the last reply received, a little before `last_heard`.
  EXPECT_GE(*first_on_b - last_heard, silence - 20ms) << "the client moved before the silence was long enough";
  EXPECT_EQ(c.stats().failovers, 1U);
  EXPECT_EQ(c.stats().resent, 30U);
  EXPECT_EQ(c.stats().replies, 50U);
  EXPECT_EQ(c.stats().expired, 0U);
  EXPECT_EQ(c.endpoint(), ep_b);
  EXPECT_EQ(c.socket_generation(), 1U);
  EXPECT_EQ(c.outstanding(), 0U);
  EXPECT_EQ(c.retained_bytes(), 0U);
  if (GetParam() != correlation::plain) {
    EXPECT_TRUE(c.correlating()) << "the second broker is fabric's too";
  }
  EXPECT_FALSE(c.next_deadline().has_value()) << "nothing outstanding: no failover pending";
  auto none = c.recv(rep, 100ms);
  EXPECT_TRUE(none.is(errc::timeout)) << "a request reported twice";
}

TEST_P(AsyncClientFailoverTest, RequestsMoveToTheSecondBrokerWhenTheFirstIsSilent) {
  silent_endpoint a;
  auto b = start_broker(ctx);
  const std::string ep_b = b->endpoints().at(0);
  echo_worker wb(ctx, ep_b, "echo", "B");
  ASSERT_TRUE(eventually([&] { return serves(*b, {"echo"}); }));

  async_client c(ctx, options_for(a.endpoint(), ep_b));
  const auto start = steady::now();
  std::map<std::uint64_t, std::string> bodies;
  for (int i = 0; i < 5; ++i) {
    auto id = c.send("echo", message("r" + std::to_string(i)));
    ASSERT_TRUE(id);
    bodies[*id] = "r" + std::to_string(i);
  }
  // What reaches the silent endpoint first: the requests, or the probe they wait behind.
  if (GetParam() == correlation::automatic) {
    auto probe = a.next();
    ASSERT_TRUE(probe);
    ASSERT_EQ(probe->size(), 5U);
    EXPECT_EQ(probe->at(3), "mmi.services");
  } else {
    for (int i = 0; i < 5; ++i) {
      auto m = a.next();
      ASSERT_TRUE(m) << "request " << i << " did not reach the first endpoint";
      EXPECT_EQ(m->back(), "r" + std::to_string(i));
    }
  }
  auto deadline = c.next_deadline();
  ASSERT_TRUE(deadline.has_value());
  EXPECT_LE(*deadline, start + silence + 50ms) << "next_deadline() covers the failover";

  async_client::reply rep;
  std::set<std::uint64_t> done;
  while (done.size() < bodies.size()) {
    ASSERT_TRUE(c.recv(rep, wait_bound)) << done.size() << " answered";
    ASSERT_EQ(rep.status, async_client::reply_status::ok);
    EXPECT_EQ(to_strings(rep.body), (std::vector<std::string>{"B", bodies.at(rep.id)}));
    EXPECT_TRUE(done.insert(rep.id).second);
  }
  EXPECT_GE(steady::now() - start, silence);
  EXPECT_EQ(c.stats().failovers, 1U);
  // Requests held for the probe never went out, so they are sent, not sent again.
  EXPECT_EQ(c.stats().resent, GetParam() == correlation::automatic ? 0U : 5U);
  EXPECT_EQ(c.endpoint(), ep_b);
  if (GetParam() == correlation::automatic) {
    EXPECT_TRUE(c.correlating()) << "the probe was asked again of the second broker";
  }
  EXPECT_FALSE(a.next(0ms)) << "nothing more for the first endpoint";
}

INSTANTIATE_TEST_SUITE_P(Correlations, AsyncClientFailoverTest,
                         ::testing::Values(correlation::plain, correlation::request_id, correlation::automatic),
                         name_of);

class AsyncClientFailoverRulesTest : public ::testing::Test {
 protected:
  context ctx;
};

TEST_F(AsyncClientFailoverRulesTest, IdsAreKeptExpiriesReportedOnceAndCancelledRequestsNotResent) {
  silent_endpoint a;
  auto b = start_broker(ctx);
  const std::string ep_b = b->endpoints().at(0);
  echo_worker wb(ctx, ep_b, "echo", "B");
  ASSERT_TRUE(eventually([&] { return serves(*b, {"echo"}); }));

  async_client c(ctx, {.broker = a.endpoint(), .failover = {ep_b}, .failover_after = silence,
                       .correlate = correlation::request_id, .request_expiry = 2 * wait_bound});
  std::map<std::uint64_t, std::string> answered;
  for (int i = 0; i < 4; ++i) {
    auto id = c.send("echo", message("keep-" + std::to_string(i)));
    ASSERT_TRUE(id);
    answered[*id] = "keep-" + std::to_string(i);
  }
  auto quick = c.send("echo", message("quick"), 50ms);      // expires before the failover
  // No worker anywhere: sent again at the failover, it expires before the second broker's
  // silence (counted from its last reply, after the failover) could move the client again.
  auto nobody = c.send("nobody", message("lost"), silence * 3 / 2);
  auto dropped = c.send("echo", message("never mind"));
  ASSERT_TRUE(quick && nobody && dropped);
  // Every request reaches the first endpoint with its id before the delimiter.
  std::set<std::string> ids_seen;
  for (int i = 0; i < 7; ++i) {
    auto m = a.next();
    ASSERT_TRUE(m);
    ASSERT_GE(m->size(), 3U);
    ids_seen.insert(m->at(1));
  }
  for (const auto& [id, body] : answered) EXPECT_TRUE(ids_seen.count(fabric::testing::u64(id)));
  EXPECT_TRUE(c.cancel(*dropped));

  async_client::reply rep;
  ASSERT_TRUE(c.recv(rep, wait_bound));
  EXPECT_EQ(rep.id, *quick);
  EXPECT_EQ(rep.status, async_client::reply_status::expired);
  EXPECT_EQ(c.stats().failovers, 0U) << "the expiry comes before the silence is long enough";

  std::set<std::uint64_t> done{*quick};
  bool nobody_expired = false;
  while (done.size() < 6) {
    ASSERT_TRUE(c.recv(rep, wait_bound)) << done.size() << " completed";
    EXPECT_TRUE(done.insert(rep.id).second) << "request " << rep.id << " reported twice";
    if (rep.id == *nobody) {
      EXPECT_EQ(rep.status, async_client::reply_status::expired);
      EXPECT_EQ(rep.service, "nobody");
      nobody_expired = true;
      continue;
    }
    ASSERT_TRUE(answered.count(rep.id)) << "not an id send() returned for an echo";
    ASSERT_EQ(rep.status, async_client::reply_status::ok);
    EXPECT_EQ(to_strings(rep.body), (std::vector<std::string>{"B", answered.at(rep.id)}));
  }
  EXPECT_TRUE(nobody_expired);
  EXPECT_EQ(c.stats().failovers, 1U);
  EXPECT_EQ(c.stats().resent, 5U) << "four echoes and the request for nobody; not the expired or cancelled";
  EXPECT_EQ(c.stats().expired, 2U);
  EXPECT_EQ(c.stats().cancelled, 1U);
  EXPECT_EQ(c.stats().replies, 4U);
  EXPECT_EQ(c.outstanding(), 0U);
  EXPECT_EQ(c.retained_bytes(), 0U);
  auto none = c.recv(rep, 100ms);
  EXPECT_TRUE(none.is(errc::timeout));
}

// Automatic correlation asks each broker anew: request ids with fabric's broker, then plain
// 7/MDP on a broker that does not know them (which would drop every request carrying one).
TEST_F(AsyncClientFailoverRulesTest, AutomaticCorrelationAsksTheNewBrokerAgain) {
  auto a = start_broker(ctx);
  const std::string ep_a = a->endpoints().at(0);
  plain_broker b;
  async_client c(ctx, {.broker = ep_a, .failover = {b.endpoint()}, .failover_after = silence,
                       .request_expiry = 2 * wait_bound});
  std::map<std::uint64_t, std::string> bodies;
  for (int i = 0; i < 5; ++i) {
    auto id = c.send("late", message("l" + std::to_string(i)));  // no worker on the first broker
    ASSERT_TRUE(id);
    bodies[*id] = "l" + std::to_string(i);
  }
  // The probe's answer comes while the requests wait on the first broker.
  async_client::reply rep;
  ASSERT_TRUE(eventually([&] {
    EXPECT_TRUE(c.try_recv(rep).is(errc::would_block)) << "nothing can be answered yet";
    return c.correlating();
  })) << "the first broker is fabric's";
  a.reset();

  std::set<std::uint64_t> done;
  while (done.size() < bodies.size()) {
    ASSERT_TRUE(c.recv(rep, wait_bound)) << done.size() << " answered";
    ASSERT_EQ(rep.status, async_client::reply_status::ok);
    EXPECT_EQ(to_strings(rep.body), (std::vector<std::string>{"P", bodies.at(rep.id)}));
    EXPECT_TRUE(done.insert(rep.id).second);
  }
  EXPECT_FALSE(c.correlating()) << "the second broker answered the probe 501";
  EXPECT_EQ(b.dropped(), 0) << "nothing went to the plain broker with a request id";
  EXPECT_EQ(c.stats().failovers, 1U);
  EXPECT_EQ(c.stats().resent, 5U);
}

TEST_F(AsyncClientFailoverRulesTest, AReactorFollowsTheSocketAcrossAFailover) {
  silent_endpoint a;
  auto b = start_broker(ctx);
  const std::string ep_b = b->endpoints().at(0);
  echo_worker wb(ctx, ep_b, "echo", "B");
  ASSERT_TRUE(eventually([&] { return serves(*b, {"echo"}); }));

  async_client c(ctx, {.broker = a.endpoint(), .failover = {ep_b}, .failover_after = silence,
                       .correlate = correlation::request_id});
  reactor r;
  std::set<std::uint64_t> sent;
  std::set<std::uint64_t> done;
  bool failed = false;
  zmq::socket_ref registered = c.socket().handle();
  std::uint64_t generation = c.socket_generation();
  std::optional<timer_id> timer;

  // The pattern the header describes: drain with try_recv(), then re-register the socket if it
  // changed and re-arm the timer for next_deadline(), all before returning to the reactor.
  std::function<void()> drain;
  std::function<void()> rearm = [&] {
    if (c.socket_generation() != generation) {
      EXPECT_TRUE(r.remove(registered));
      registered = c.socket().handle();
      generation = c.socket_generation();
      r.add(registered, drain);
    }
    if (timer) r.cancel(*timer);
    timer.reset();
    if (const auto d = c.next_deadline())
      timer = r.after(*d - steady::now(), [&] {
        timer.reset();
        drain();
      });
  };
  drain = [&] {
    async_client::reply rep;
    for (;;) {
      auto got = c.try_recv(rep);
      if (!got) {
        if (!got.is(errc::would_block)) failed = true;
        break;
      }
      if (rep.status != async_client::reply_status::ok || !done.insert(rep.id).second) failed = true;
    }
    if (failed || done.size() == sent.size()) r.stop();
    rearm();
  };
  for (int i = 0; i < 10; ++i) {
    auto id = c.send("echo", message("x"));
    ASSERT_TRUE(id);
    sent.insert(*id);
  }
  r.add(registered, drain);
  rearm();
  auto guard = r.after(wait_bound, [&] {
    failed = true;
    r.stop();
  });
  ASSERT_TRUE(r.run());
  r.cancel(guard);
  EXPECT_FALSE(failed);
  EXPECT_EQ(done, sent);
  EXPECT_EQ(c.socket_generation(), 1U);
  EXPECT_EQ(registered.handle(), c.socket().handle().handle()) << "the reactor watches the new socket";
}

TEST_F(AsyncClientFailoverRulesTest, OptionsAreChecked) {
  auto refused = [&](const std::function<void(async_client_options&)>& change) {
    async_client_options o;
    o.broker = "tcp://127.0.0.1:5";
    o.failover = {"tcp://127.0.0.1:6"};
    change(o);
    expect_error(errc::invalid_argument, [&] { async_client c(ctx, o); });
  };
  refused([](async_client_options& o) { o.failover.push_back(""); });
  refused([](async_client_options& o) { o.failover_after = 0ms; });
  refused([](async_client_options& o) { o.failover_after = 25h; });
  refused([](async_client_options& o) { o.socket.routing_id = std::string(235, 'x'); });

  // Without a failover list the routing id is used as it is, and may be longer.
  async_client plain(ctx, {.broker = "tcp://127.0.0.1:5", .socket = {.routing_id = std::string(235, 'x')}});
  EXPECT_EQ(plain.endpoint(), "tcp://127.0.0.1:5");
  EXPECT_EQ(plain.retained_bytes(), 0U);
  async_client listed(ctx, {.broker = "tcp://127.0.0.1:5", .failover = {"tcp://127.0.0.1:6"}});
  EXPECT_EQ(listed.endpoint(), "tcp://127.0.0.1:5");
  EXPECT_EQ(listed.options().failover_after, 2500ms);
  EXPECT_FALSE(listed.next_deadline().has_value()) << "nothing outstanding: no silence counts";

  // A failover endpoint libzmq refuses is met at the failover: recv() throws, and the client
  // keeps its socket and its request.
  async_client bad(ctx, {.broker = "tcp://127.0.0.1:5", .failover = {"nosuch://endpoint"}, .failover_after = 1ms,
                         .correlate = correlation::request_id});
  ASSERT_TRUE(bad.send("echo", message("x")));
  bool thrown = false;
  try {
    (void)bad.recv(wait_bound);
  } catch (const error& e) {
    thrown = true;
    EXPECT_NE(std::string(e.what()).find("nosuch://endpoint"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(thrown);
  EXPECT_EQ(bad.endpoint(), "tcp://127.0.0.1:5");
  EXPECT_EQ(bad.socket_generation(), 0U);
  EXPECT_EQ(bad.outstanding(), 1U);

  auto titanic_refused = [&](const std::function<void(titanic::async_client_options&)>& change) {
    titanic::async_client_options o;
    o.broker = "tcp://127.0.0.1:5";
    change(o);
    expect_error(errc::invalid_argument, [&] { titanic::async_client c(ctx, o); });
  };
  titanic_refused([](titanic::async_client_options& o) { o.failover = {""}; });
  titanic_refused([](titanic::async_client_options& o) { o.failover_after = 0ms; });
  titanic_refused([](titanic::async_client_options& o) { o.failover_after = 25h; });
}

// A keyed post reaches the first endpoint, which stores it on the Titanic server (as the active
// node of a pair would before dying) but never answers; after the silence the client posts again
// on the second broker with the same key, and the server answers with the id it already gave.
TEST_F(AsyncClientFailoverRulesTest, TitanicKeyedPostSentAgainOnTheSecondBrokerIsStoredOnce) {
  silent_endpoint a;
  auto b = start_broker(ctx);
  const std::string ep_b = b->endpoints().at(0);
  fabric::testing::temp_dir dir;
  auto j = journal::open(dir.path(), fabric::testing::fast_journal_options());
  titanic::service_options so;
  so.broker = ep_b;
  so.heartbeat = 100ms;
  so.retry_base = 20ms;
  so.retry_max = 100ms;
  so.service_check_interval = 50ms;
  auto server = std::make_unique<titanic::service>(ctx, j, so);
  echo_worker wb(ctx, ep_b, "echo", "B");
  ASSERT_TRUE(eventually([&] {
    return serves(*b, {"echo", "titanic.request", "titanic.keyed-request", "titanic.reply", "titanic.close"});
  }));

  titanic::async_client c(ctx, {.broker = a.endpoint(),
                                .failover = {ep_b},
                                .failover_after = silence,
                                .call_timeout = 2 * wait_bound,
                                .poll_interval = 5ms,
                                .poll_interval_max = 50ms,
                                .keys = titanic::key_mode::keyed,
                                .correlate = correlation::request_id});
  auto token = c.post("echo", message("once"));
  ASSERT_TRUE(token);

  // The post on the first endpoint: id | "" | MDPC01 | titanic.keyed-request | key | echo | once.
  auto first = a.next();
  ASSERT_TRUE(first);
  ASSERT_EQ(first->size(), 8U);
  EXPECT_EQ(first->at(4), "titanic.keyed-request");
  const std::string key = first->at(5);
  EXPECT_EQ(key.size(), 16U);
  EXPECT_EQ(first->at(6), "echo");

  // Stored behind the first endpoint's back, the answer lost.
  client forwarder(ctx, {.broker = ep_b, .timeout = wait_bound, .retries = 0});
  auto stored = forwarder.request("titanic.keyed-request", fabric::testing::message_of({key, "echo", "once"}));
  ASSERT_TRUE(stored) << stored.error().message();
  ASSERT_EQ(stored->size(), 2U);
  ASSERT_EQ(stored->view(0), "200");
  const auto stored_id = titanic::parse_request_id(stored->view(1));
  ASSERT_TRUE(stored_id);

  auto posted = c.recv(wait_bound);
  ASSERT_TRUE(posted) << posted.error().message();
  EXPECT_EQ(posted->token, *token);
  ASSERT_EQ(posted->what, titanic::async_client::event::posted) << posted->error.message();
  EXPECT_EQ(posted->id, *stored_id) << "the post sent again kept its key";
  auto ready = c.recv(wait_bound);
  ASSERT_TRUE(ready) << ready.error().message();
  EXPECT_EQ(ready->token, *token);
  ASSERT_EQ(ready->what, titanic::async_client::event::ready);
  EXPECT_EQ(to_strings(ready->body), (std::vector<std::string>{"B", "once"}));

  EXPECT_EQ(c.transport_stats().failovers, 1U);
  EXPECT_EQ(c.transport_stats().resent, 1U);
  EXPECT_EQ(c.endpoint(), ep_b);
  EXPECT_EQ(c.socket_generation(), 1U);
  EXPECT_EQ(c.stats().resends, 0U) << "the call did not expire: the failover sent it again";
  const auto s = server->stats();
  EXPECT_EQ(s.stored, 1U);
  EXPECT_EQ(s.keyed_again, 1U);
  server.reset();
}

}  // namespace
}  // namespace fabric::mdp
