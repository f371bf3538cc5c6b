// The Titanic service (9/TSP) end to end over loopback, spoken frame by frame: a raw DEALER plays
// a plain 9/TSP client of fabric's broker, so every byte the service answers is checked against
// docs/titanic.md section 2 with no fabric client code involved. Real services are fabric MDP
// workers on threads of their own.
#include <fabric/context.hpp>
#include <fabric/journal.hpp>
#include <fabric/majordomo.hpp>
#include <fabric/majordomo_worker.hpp>
#include <fabric/message.hpp>
#include <fabric/titanic.hpp>
#include <fabric/titanic_client.hpp>

#include "support/raw_frames.hpp"
#include "support/support.hpp"

#include <gtest/gtest.h>
#include <zmq.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace fabric::titanic {
namespace {

using namespace std::chrono_literals;
using frames = std::vector<std::string>;
using fabric::testing::wait_bound;

const std::string C = "MDPC01";

using fabric::testing::eventually;

bool is_uuid(const std::string& s) {
  if (s.size() != 32) return false;
  for (const char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'))) return false;
  }
  return true;
}

// A real service on its own thread: answers "<name>" | body..., counting what it ran; or, with
// `silent`, takes requests and never answers (a poison request's service).
class service_worker {
 public:
  service_worker(context& ctx, const std::string& broker, const std::string& service, bool silent = false)
      : worker_(ctx, {.broker = broker, .service = service, .heartbeat_interval = 100ms}), silent_(silent) {
    thread_ = std::thread([this, service] {
      while (!stop_) {
        auto req = worker_.recv(20ms);
        if (!req) continue;
        {
          std::lock_guard lock(mu_);
          std::string seen;
          for (const auto& f : req->body) seen += std::string(view(f)) + "|";
          runs_.push_back(seen);
        }
        if (silent_) continue;
        message out;
        out.push_back(service);
        for (auto& f : req->body) out.push_back(std::move(f));
        (void)worker_.reply(*req, std::move(out));
      }
    });
  }
  ~service_worker() {
    stop_ = true;
    thread_.join();
  }
  std::vector<std::string> runs() {
    std::lock_guard lock(mu_);
    return runs_;
  }

 private:
  mdp::worker worker_;
  bool silent_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<std::string> runs_;
  std::thread thread_;
};

// The wall clock of a journal under test, moved by hand.
struct manual_wall_clock {
  std::atomic<std::int64_t> ns{std::chrono::duration_cast<std::chrono::nanoseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count()};
  std::chrono::system_clock::time_point now() const {
    return std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::nanoseconds(ns.load())));
  }
};

class TitanicTest : public ::testing::Test {
 protected:
  TitanicTest() {
    mdp::broker_options bo;
    bo.endpoints = {"tcp://127.0.0.1:*"};
    bo.heartbeat_interval = 100ms;
    broker_ = std::make_unique<mdp::broker>(ctx, bo);
    endpoint = broker_->endpoints().at(0);
    options.broker = endpoint;
    options.heartbeat = 100ms;
    options.retry_base = 20ms;
    options.retry_max = 100ms;
    options.service_check_interval = 50ms;
    raw_ = zmq::socket_t(raw_ctx_, zmq::socket_type::dealer);
    raw_.set(zmq::sockopt::linger, 0);
    raw_.connect(endpoint);
  }
  ~TitanicTest() override {
    titanic_.reset();
    journal_.reset();
  }

  void open_journal() {
    journal_options jo;
    jo.clock = [this] { return wall.now(); };
    journal_.emplace(journal::open(dir.path(), jo));
  }
  void start() {
    if (!journal_) open_journal();
    titanic_ = std::make_unique<service>(ctx, *journal_, options);
    // Serving once the broker knows every Titanic service's worker (each session says READY on
    // its own connection, in no set order).
    ASSERT_TRUE(eventually([&] {
      return mmi("titanic.request") == "200" && mmi("titanic.reply") == "200" && mmi("titanic.close") == "200" &&
             (!options.keyed_requests || mmi("titanic.keyed-request") == "200");
    }));
  }
  void restart() {
    titanic_.reset();
    start();
  }

  // One 7/MDP request from the raw client; the reply's body frames, or nothing in time.
  std::optional<frames> call(const std::string& service, const frames& body,
                             std::chrono::milliseconds timeout = wait_bound) {
    frames m{"", C, service};
    m.insert(m.end(), body.begin(), body.end());
    fabric::testing::send_frames(raw_, m);
    auto reply = fabric::testing::recv_frames(raw_, timeout);
    if (!reply) return std::nullopt;
    EXPECT_GE(reply->size(), 3u);
    EXPECT_EQ((*reply)[0], "");
    EXPECT_EQ((*reply)[1], C);
    EXPECT_EQ((*reply)[2], service);
    return frames(reply->begin() + 3, reply->end());
  }
  std::string mmi(const std::string& service) {
    auto r = call("mmi.service", {service}, 1s);
    return r && !r->empty() ? r->front() : std::string();
  }
  // titanic.request; the UUID once stored.
  std::string post(const std::string& service, const frames& body) {
    frames b{service};
    b.insert(b.end(), body.begin(), body.end());
    auto r = call("titanic.request", b);
    EXPECT_TRUE(r);
    if (!r) return {};
    EXPECT_EQ(r->size(), 2u);
    EXPECT_EQ(r->at(0), "200");
    EXPECT_TRUE(is_uuid(r->at(1))) << r->at(1);
    return r->at(1);
  }
  // Asks titanic.reply until its status is not 300 (bounded); the last answer.
  frames collect(const std::string& uuid, std::chrono::milliseconds bound = wait_bound) {
    frames last;
    EXPECT_TRUE(eventually(
        [&] {
          auto r = call("titanic.reply", {uuid});
          if (!r || r->empty()) return false;
          last = *r;
          return last.front() != "300";
        },
        bound));
    return last;
  }

  context ctx;
  std::string endpoint;
  service_options options;
  fabric::testing::temp_dir dir;
  manual_wall_clock wall;
  std::optional<journal> journal_;
  std::unique_ptr<mdp::broker> broker_;
  std::unique_ptr<service> titanic_;
  zmq::context_t raw_ctx_;
  zmq::socket_t raw_;
};

TEST_F(TitanicTest, StoresDispatchesRepliesAndCloses) {
  start();
  service_worker echo(ctx, endpoint, "echo");
  const auto id = post("echo", {"hello", "world"});
  EXPECT_EQ(collect(id), (frames{"200", "echo", "hello", "world"}));
  // Asking again gives the same answer: titanic.reply never removes.
  EXPECT_EQ(call("titanic.reply", {id}), (frames{"200", "echo", "hello", "world"}));
  EXPECT_EQ(call("titanic.close", {id}), (frames{"200"}));
  EXPECT_EQ(call("titanic.reply", {id}), (frames{"400"}));
  EXPECT_EQ(echo.runs(), (std::vector<std::string>{"hello|world|"}));
  const auto s = titanic_->stats();
  EXPECT_EQ(s.stored, 1u);
  EXPECT_EQ(s.replies, 1u);
  EXPECT_EQ(s.closed, 1u);
}

TEST_F(TitanicTest, UuidsAreAcceptedInEitherCase) {
  start();
  service_worker echo(ctx, endpoint, "echo");
  const auto id = post("echo", {"x"});
  std::string lower = id;
  for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  EXPECT_EQ(collect(lower), (frames{"200", "echo", "x"}));
}

TEST_F(TitanicTest, UnknownUuidsAreAnswered400AndClosed200) {
  start();
  EXPECT_EQ(call("titanic.reply", {"0123456789ABCDEF0123456789ABCDEF"}), (frames{"400"}));
  EXPECT_EQ(call("titanic.close", {"0123456789ABCDEF0123456789ABCDEF"}), (frames{"200"}));
}

TEST_F(TitanicTest, MalformedBodiesAreAnswered400AndNothingIsStored) {
  start();
  const auto status_of = [&](const std::string& service, const frames& body) {
    auto r = call(service, body);
    return r && !r->empty() ? r->front().substr(0, 3) : std::string("none");
  };
  EXPECT_EQ(status_of("titanic.request", {"echo"}), "400");                    // no body frame
  EXPECT_EQ(status_of("titanic.request", {"", "body"}), "400");                // empty service
  EXPECT_EQ(status_of("titanic.request", {std::string(256, 's'), "b"}), "400");  // service too long
  EXPECT_EQ(status_of("titanic.request", {"bad service", "b"}), "400");       // a space in it
  EXPECT_EQ(status_of("titanic.reply", {"not-a-uuid"}), "400");
  EXPECT_EQ(status_of("titanic.reply", {"0123456789ABCDEF0123456789ABCDEF", "extra"}), "400");
  EXPECT_EQ(status_of("titanic.close", {"0123456789ABCDEF0123456789ABCDE"}), "400");
  EXPECT_EQ(status_of("titanic.keyed-request", {"", "echo", "b"}), "400");     // empty key
  EXPECT_EQ(status_of("titanic.keyed-request", {"key"}), "400");               // no service
  const auto s = titanic_->stats();
  EXPECT_EQ(s.malformed, 9u);
  EXPECT_EQ(s.stored, 0u);
}

TEST_F(TitanicTest, RequestsWaitForWorkersAndRunWhenTheyCome) {
  start();
  const auto a = post("late", {"1"});
  const auto b = post("late", {"2"});
  EXPECT_EQ(call("titanic.reply", {a}), (frames{"300"}));
  ASSERT_TRUE(eventually([&] { return titanic_->stats().no_workers >= 2; }));
  service_worker late(ctx, endpoint, "late");
  EXPECT_EQ(collect(a), (frames{"200", "late", "1"}));
  EXPECT_EQ(collect(b), (frames{"200", "late", "2"}));
  EXPECT_EQ(titanic_->stats().dispatch_timeouts, 0u);
}

TEST_F(TitanicTest, AKeyedRequestRetriedGetsTheSameUuidAndRunsOnce) {
  start();
  EXPECT_EQ(mmi("titanic.keyed-request"), "200");
  auto first = call("titanic.keyed-request", {"key-1", "echo", "body"});
  auto again = call("titanic.keyed-request", {"key-1", "echo", "body"});
  auto other = call("titanic.keyed-request", {"key-2", "echo", "body"});
  ASSERT_TRUE(first && again && other);
  ASSERT_EQ(first->size(), 2u);
  EXPECT_EQ(first->at(0), "200");
  EXPECT_EQ(*again, *first);
  EXPECT_NE(other->at(1), first->at(1));
  service_worker echo(ctx, endpoint, "echo");
  EXPECT_EQ(collect(first->at(1)), (frames{"200", "echo", "body"}));
  EXPECT_EQ(collect(other->at(1)), (frames{"200", "echo", "body"}));
  EXPECT_EQ(echo.runs().size(), 2u);
  EXPECT_EQ(titanic_->stats().keyed_again, 1u);
}

TEST_F(TitanicTest, ARestartResumesEveryStoredRequest) {
  start();
  std::vector<std::string> ids;
  for (int i = 0; i < 20; ++i) ids.push_back(post("resumed", {std::to_string(i)}));
  restart();
  EXPECT_EQ(titanic_->stats().open, 20u);
  service_worker w(ctx, endpoint, "resumed");
  for (int i = 0; i < 20; ++i) EXPECT_EQ(collect(ids[static_cast<std::size_t>(i)]), (frames{"200", "resumed", std::to_string(i)}));
  // And a reply stored before a restart is still there after it.
  restart();
  EXPECT_EQ(call("titanic.reply", {ids[0]}), (frames{"200", "resumed", "0"}));
}

TEST_F(TitanicTest, APoisonRequestIsGivenUpAfterMaxAttemptsAndDeadLettered) {
  options.dispatch_timeout = 100ms;
  options.max_attempts = 2;
  start();
  service_worker silent(ctx, endpoint, "poison", true);
  const auto id = post("poison", {"bad"});
  const auto answer = collect(id);
  ASSERT_EQ(answer.size(), 1u);
  EXPECT_EQ(answer[0].substr(0, 4), "500 ");
  EXPECT_NE(answer[0].find("poison"), std::string::npos) << answer[0];
  auto dead = journal_->dead_letters();
  ASSERT_TRUE(dead);
  ASSERT_EQ(dead->size(), 1u);
  EXPECT_EQ(dead->front().stream, service::requests_stream);
  EXPECT_EQ(dead->front().attempts, 2u);
  const auto s = titanic_->stats();
  EXPECT_EQ(s.given_up, 1u);
  EXPECT_EQ(s.dispatch_timeouts, 2u);
  // Closing a given-up request removes it.
  EXPECT_EQ(call("titanic.close", {id}), (frames{"200"}));
  EXPECT_EQ(call("titanic.reply", {id}), (frames{"400"}));
}

TEST_F(TitanicTest, ARequestPastItsTtlIsGivenUp) {
  options.request_ttl = 200ms;
  start();
  const auto id = post("nobody", {"x"});
  const auto answer = collect(id);
  ASSERT_EQ(answer.size(), 1u);
  EXPECT_EQ(answer[0].substr(0, 4), "500 ");
  EXPECT_EQ(titanic_->stats().expired, 1u);
}

TEST_F(TitanicTest, RepliesNeverCollectedAreRemovedAfterTheirRetention) {
  options.reply_retention = 1s;
  start();
  service_worker echo(ctx, endpoint, "echo");
  const auto id = post("echo", {"x"});
  EXPECT_EQ(collect(id), (frames{"200", "echo", "x"}));
  wall.ns += std::chrono::nanoseconds(2s).count();
  ASSERT_TRUE(eventually([&] { return titanic_->stats().removed == 1; }));
  EXPECT_EQ(call("titanic.reply", {id}), (frames{"400"}));
}

TEST_F(TitanicTest, ARequestPutBackFromTheDeadLetterQueueRunsUnderItsUuid) {
  options.dispatch_timeout = 100ms;
  options.max_attempts = 1;
  start();
  std::string id;
  {
    service_worker silent(ctx, endpoint, "flaky", true);
    id = post("flaky", {"again"});
    ASSERT_EQ(collect(id).at(0).substr(0, 3), "500");
  }
  titanic_.reset();
  auto dead = journal_->dead_letters();
  ASSERT_TRUE(dead);
  ASSERT_EQ(dead->size(), 1u);
  ASSERT_TRUE(journal_->requeue(dead->front().id));
  start();
  service_worker fixed(ctx, endpoint, "flaky");
  EXPECT_EQ(collect(id), (frames{"200", "flaky", "again"}));
}

TEST_F(TitanicTest, AnOversizedRequestIsRefused) {
  options.max_request_bytes = 1000;
  start();
  auto r = call("titanic.request", {"echo", std::string(1001, 'x')});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->front().substr(0, 3), "400");
  EXPECT_EQ(titanic_->stats().stored, 0u);
}

TEST_F(TitanicTest, ARequestTheJournalCouldNotHoldIsRefusedAloneAndOthersAreStored) {
  journal_options jo;
  jo.max_record_size = 64 * 1024;
  journal_.emplace(journal::open(dir.path(), jo));
  start();
  auto big = call("titanic.request", {"echo", std::string(64 * 1024, 'x')});
  ASSERT_TRUE(big);
  EXPECT_EQ(big->front().substr(0, 3), "400");
  const auto id = post("echo", {"small"});
  EXPECT_FALSE(id.empty());
  const auto s = titanic_->stats();
  EXPECT_EQ(s.commit_failures, 0u);
  EXPECT_EQ(s.stored, 1u);
}

TEST_F(TitanicTest, ManyRequestsInFlightAtOnce) {
  options.max_in_flight = 16;
  start();
  std::vector<std::string> ids;
  for (int i = 0; i < 200; ++i) ids.push_back(post("many", {std::to_string(i)}));
  service_worker a(ctx, endpoint, "many");
  service_worker b(ctx, endpoint, "many");
  for (int i = 0; i < 200; ++i) {
    EXPECT_EQ(collect(ids[static_cast<std::size_t>(i)]), (frames{"200", "many", std::to_string(i)}));
  }
  EXPECT_EQ(a.runs().size() + b.runs().size(), 200u);
}

TEST_F(TitanicTest, FabricsClientsPostKeyedAndCollect) {
  start();
  service_worker echo(ctx, endpoint, "echo");
  client c(ctx, {.broker = endpoint});
  auto id = c.post("echo", message("one"));
  ASSERT_TRUE(id) << id.error().message();
  EXPECT_EQ(c.keyed(), std::optional<bool>(true));
  auto r = c.wait(*id, wait_bound);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->state, reply_state::ready);
  ASSERT_EQ(r->body.size(), 2u);
  EXPECT_EQ(r->body.view(1), "one");
  EXPECT_TRUE(c.close(*id));
  auto done = c.call("echo", message("two"), wait_bound);
  ASSERT_TRUE(done);
  EXPECT_EQ(done->state, reply_state::ready);

  async_client a(ctx, {.broker = endpoint});
  constexpr int n = 100;
  for (int i = 0; i < n; ++i) ASSERT_TRUE(a.post("echo", message(std::to_string(i))));
  int posted = 0;
  int ready = 0;
  const auto deadline = std::chrono::steady_clock::now() + wait_bound;
  while (ready < n && std::chrono::steady_clock::now() < deadline) {
    async_client::completion got;
    if (!a.recv(got, 100ms)) continue;
    if (got.what == async_client::event::posted) ++posted;
    if (got.what == async_client::event::ready) ++ready;
  }
  EXPECT_EQ(posted, n);
  EXPECT_EQ(ready, n);
  EXPECT_EQ(echo.runs().size(), static_cast<std::size_t>(n) + 2);
}

TEST_F(TitanicTest, WorksWithPlainReadyAndLogsWhatHappens) {
  options.credit = 1;  // plain 7/MDP READY, as with any 7/MDP broker
  options.dispatch_timeout = 100ms;
  options.max_attempts = 1;
  std::mutex mu;
  std::vector<std::string> lines;
  options.log = [&](log_level, std::string_view line) {
    std::lock_guard lock(mu);
    lines.emplace_back(line);
  };
  start();
  service_worker echo(ctx, endpoint, "echo");
  const auto id = post("echo", {"plain"});
  EXPECT_EQ(collect(id), (frames{"200", "echo", "plain"}));
  EXPECT_EQ(titanic_->stats().credit, 1u);
  service_worker silent(ctx, endpoint, "never", true);
  EXPECT_EQ(collect(post("never", {"x"})).at(0).substr(0, 3), "500");
  const auto logged = [&](std::string_view what) {
    std::lock_guard lock(mu);
    for (const auto& l : lines) {
      if (l.find(what) != std::string::npos) return true;
    }
    return false;
  };
  EXPECT_TRUE(eventually([&] { return logged("credit 1"); }));
  EXPECT_TRUE(eventually([&] { return logged("given up"); }));
}

TEST_F(TitanicTest, OptionsAreValidated) {
  open_journal();
  const auto refused = [&](service_options o) {
    try {
      service s(ctx, *journal_, std::move(o), deferred_start);
    } catch (const error& e) {
      return e.code() == errc::invalid_argument;
    }
    return false;
  };
  service_options o;
  EXPECT_TRUE(refused(o));  // no broker
  o.broker = endpoint;
  o.credit = 2000;
  EXPECT_TRUE(refused(o));
  o.credit = 0;
  o.reply_retention = 10ms;
  EXPECT_TRUE(refused(o));
  o.reply_retention = 1s;
  o.max_in_flight = 0;
  EXPECT_TRUE(refused(o));
}

}  // namespace
}  // namespace fabric::titanic
