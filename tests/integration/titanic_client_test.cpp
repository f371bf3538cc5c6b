// The Titanic clients against a small in-memory Titanic server made of Majordomo workers on
// fabric's broker: post, poll, wait, close and call; keys kept across a lost answer; the fall
// back to plain requests; every status the server may answer; the asynchronous client with many
// requests at once; and the options each client refuses.
#include <fabric/context.hpp>
#include <fabric/error.hpp>
#include <fabric/majordomo.hpp>
#include <fabric/titanic_client.hpp>

#include "reliability/tsp.hpp"
#include "support/support.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace fabric::titanic {
namespace {

using namespace std::chrono_literals;
using fabric::testing::wait_bound;

using fabric::testing::eventually;

// What the fake server answers a reply for, by service name: "doomed" requests are given up,
// "slow" ones stay pending, "store-fails" and "refuse-me" are not stored (500 and 400); others
// are answered after `pending_polls` polls with their body reversed (frames and bytes).
struct fake_options {
  bool keyed = true;                  // offer titanic.keyed-request
  int pending_polls = 1;              // "300" answers before the reply
  bool lose_first_keyed_answer = false;  // never deliver the answer to the first keyed request
};

class fake_titanic {
 public:
  fake_titanic(context& ctx, const std::string& broker, fake_options o) : options_(o) {
    start(ctx, broker, std::string(tsp::request_service), 1,
          [this](const message& m) { return on_request(m, false); });
    if (options_.keyed)
      start(ctx, broker, std::string(tsp::keyed_request_service),
            options_.lose_first_keyed_answer ? 2U : 1U,
            [this](const message& m) { return on_request(m, true); });
    start(ctx, broker, std::string(tsp::reply_service), 1,
          [this](const message& m) { return on_reply(m); });
    start(ctx, broker, std::string(tsp::close_service), 1,
          [this](const message& m) { return on_close(m); });
  }
  ~fake_titanic() {
    stop_ = true;
    for (auto& t : threads_) t.join();
  }

  // Runs `f` under the lock.
  template <class F>
  auto locked(F f) const {
    std::lock_guard lock(mutex_);
    return f();
  }

  std::size_t workers() const { return options_.keyed ? 4 : 3; }
  std::size_t stored() const { return locked([&] { return stored_; }); }
  std::size_t open() const { return locked([&] { return requests_.size(); }); }
  std::size_t plain_requests() const { return locked([&] { return plain_; }); }
  std::vector<std::string> keys_seen() const { return locked([&] { return keys_seen_; }); }

 private:
  struct record {
    std::string service;
    std::vector<std::string> body;
    int polls = 0;
  };
  using handler = std::function<message(const message&)>;

  void start(context& ctx, const std::string& broker, const std::string& service,
             std::uint32_t credit, handler fn) {
    mdp::worker_options o;
    o.broker = broker;
    o.service = service;
    o.heartbeat_interval = 100ms;
    o.reconnect_interval = 50ms;
    o.reconnect_interval_max = 200ms;
    o.credit = credit;
    auto w = std::make_shared<mdp::worker>(ctx, o);
    const bool lose_first = credit > 1;
    threads_.emplace_back([this, w, fn = std::move(fn), lose_first] {
      std::optional<mdp::worker::request> held;
      mdp::worker::request req;
      while (!stop_) {
        auto r = w->recv(req, 20ms);
        if (r.is(errc::timeout)) continue;
        if (!r) break;
        message answer = fn(req.body);
        if (lose_first && !lose_done_) {
          // Keep the first answer back until the client has given up on it and resent: it is
          // then sent to a socket the client has closed, and the broker drops it.
          lose_done_ = true;
          held = std::move(req);
          held_answer_ = std::move(answer);
          continue;
        }
        (void)w->reply(req, std::move(answer));
        if (held) {
          (void)w->reply(*held, std::move(held_answer_));
          held.reset();
        }
      }
    });
  }

  message on_request(const message& m, bool keyed) {
    const auto p = keyed ? tsp::parse_keyed_request(m) : tsp::parse_request(m);
    message out;
    std::lock_guard lock(mutex_);
    if (!p || p.service == "refuse-me") {
      tsp::write_request_reply(out, tsp::status::unknown);
      return out;
    }
    if (p.service == "store-fails") {
      tsp::write_request_reply(out, tsp::status::error, "the journal is full");
      return out;
    }
    if (keyed) {
      keys_seen_.emplace_back(p.key);
      if (auto k = keys_.find(std::string(p.key)); k != keys_.end()) {
        tsp::write_request_reply(out, k->second);
        return out;
      }
    } else {
      ++plain_;
    }
    const auto id = tsp::uuid::random();
    record rec;
    rec.service = std::string(p.service);
    for (const auto& f : p.body) rec.body.emplace_back(fabric::view(f));
    requests_.emplace(id, std::move(rec));
    ++stored_;
    if (keyed) keys_.emplace(std::string(p.key), id);
    tsp::write_request_reply(out, id);
    return out;
  }

  message on_reply(const message& m) {
    const auto p = tsp::parse_uuid_request(m);
    message out;
    std::lock_guard lock(mutex_);
    auto it = p ? requests_.find(p.id) : requests_.end();
    if (it == requests_.end()) {
      tsp::write_reply_reply(out, tsp::status::unknown);
    } else if (it->second.service == "doomed") {
      tsp::write_reply_reply(out, tsp::status::error, "service doomed had no workers for 5 attempts");
    } else if (it->second.service == "slow" || it->second.polls < options_.pending_polls) {
      ++it->second.polls;
      tsp::write_reply_reply(out, tsp::status::pending);
    } else {
      message body;
      for (auto f = it->second.body.rbegin(); f != it->second.body.rend(); ++f)
        body.push_back(std::string(f->rbegin(), f->rend()));
      tsp::write_reply_reply(out, std::move(body));
    }
    return out;
  }

  message on_close(const message& m) {
    const auto p = tsp::parse_uuid_request(m);
    std::lock_guard lock(mutex_);
    if (p) {
      requests_.erase(p.id);
      std::erase_if(keys_, [&](const auto& k) { return k.second == p.id; });
    }
    message out;
    tsp::write_close_reply(out);
    return out;
  }

  fake_options options_;
  mutable std::mutex mutex_;
  std::map<tsp::uuid, record> requests_;
  std::map<std::string, tsp::uuid> keys_;
  std::vector<std::string> keys_seen_;
  std::size_t stored_ = 0;
  std::size_t plain_ = 0;
  bool lose_done_ = false;       // the keyed worker's thread only
  message held_answer_;          // the keyed worker's thread only
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
};

class TitanicClientTest : public ::testing::Test {
 protected:
  TitanicClientTest() {
    mdp::broker_options o;
    o.endpoints = {"tcp://127.0.0.1:*"};
    o.heartbeat_interval = 100ms;
    broker_ = std::make_unique<mdp::broker>(ctx_, o);
    endpoint_ = broker_->endpoints().at(0);
  }
  ~TitanicClientTest() override {
    server_.reset();
    broker_.reset();
  }

  void start_server(fake_options o = {}) {
    server_ = std::make_unique<fake_titanic>(ctx_, endpoint_, o);
    ASSERT_TRUE(eventually([&] { return broker_->stats().workers == server_->workers(); }));
  }
  client_options client_for() const {
    client_options o;
    o.broker = endpoint_;
    o.timeout = 1000ms;
    o.retries = 3;
    o.poll_interval = 1ms;
    o.poll_interval_max = 20ms;
    return o;
  }
  async_client_options async_for() const {
    async_client_options o;
    o.broker = endpoint_;
    o.call_timeout = 1000ms;
    o.poll_interval = 1ms;
    o.poll_interval_max = 20ms;
    return o;
  }

  static std::vector<std::string> frames(const message& m) { return fabric::testing::to_strings(m); }

  context ctx_;
  std::unique_ptr<mdp::broker> broker_;
  std::string endpoint_;
  std::unique_ptr<fake_titanic> server_;
};

TEST(TitanicRequestIdTest, PrintsUpperCaseAndParsesEitherCase) {
  request_id id;
  for (std::size_t i = 0; i < id.bytes.size(); ++i) id.bytes[i] = static_cast<std::uint8_t>(0xA0 + i);
  const auto text = to_string(id);
  EXPECT_EQ(text, "A0A1A2A3A4A5A6A7A8A9AAABACADAEAF");
  std::string lower = text;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](char c) {
    return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  });
  EXPECT_EQ(parse_request_id(lower), id);
  EXPECT_EQ(parse_request_id(text), id);
  EXPECT_FALSE(parse_request_id(text.substr(1)));
  EXPECT_FALSE(parse_request_id(text + "0"));
  EXPECT_FALSE(parse_request_id("G0A1A2A3A4A5A6A7A8A9AAABACADAEAF"));
}

TEST_F(TitanicClientTest, PostsPollsWaitsClosesAndCalls) {
  start_server({.pending_polls = 1});
  client c(ctx_, client_for());
  auto id = c.post("echo", fabric::testing::message_of({"hello", "world"}));
  ASSERT_TRUE(id) << id.error().message();
  EXPECT_EQ(c.keyed(), true);

  auto first = c.poll(*id);  // 300 first
  ASSERT_TRUE(first);
  EXPECT_EQ(first->state, reply_state::pending);
  auto second = c.poll(*id);  // then 200 with the reply
  ASSERT_TRUE(second);
  ASSERT_EQ(second->state, reply_state::ready);
  EXPECT_EQ(frames(second->body), (std::vector<std::string>{"dlrow", "olleh"}));
  auto again = c.wait(*id, 1s);  // the reply stays until closed
  ASSERT_TRUE(again);
  EXPECT_EQ(again->state, reply_state::ready);

  ASSERT_TRUE(c.close(*id));
  EXPECT_EQ(server_->open(), 0U);
  auto gone = c.poll(*id);
  ASSERT_TRUE(gone);
  EXPECT_EQ(gone->state, reply_state::unknown);

  auto called = c.call("echo", message("abc"), wait_bound);
  ASSERT_TRUE(called) << called.error().message();
  ASSERT_EQ(called->state, reply_state::ready);
  EXPECT_EQ(frames(called->body), (std::vector<std::string>{"cba"}));
  EXPECT_EQ(server_->open(), 0U) << "call() closes the request";
  EXPECT_EQ(server_->stored(), 2U);
  EXPECT_EQ(server_->plain_requests(), 0U);

  EXPECT_EQ(c.stats().posted, 2U);
  EXPECT_EQ(c.stats().keyed, 2U);
  EXPECT_EQ(c.stats().probes, 1U);
  EXPECT_EQ(c.stats().closes, 2U);
  EXPECT_GE(c.stats().ready, 3U);
}

TEST_F(TitanicClientTest, KeyedPostReusesItsKeyWhenTheFirstAnswerIsLost) {
  start_server({.lose_first_keyed_answer = true});
  auto o = client_for();
  o.timeout = 300ms;
  o.keys = key_mode::keyed;
  client c(ctx_, o);
  auto id = c.post("echo", message("once"));
  ASSERT_TRUE(id) << id.error().message();
  EXPECT_GE(c.transport_stats().retries, 1U);
  const auto keys = server_->keys_seen();
  ASSERT_EQ(keys.size(), 2U) << "the server saw the post twice";
  EXPECT_EQ(keys[0], keys[1]) << "with the same key";
  EXPECT_EQ(keys[0].size(), 16U);
  EXPECT_EQ(server_->stored(), 1U) << "and stored it once";
  auto r = c.wait(*id, wait_bound);
  ASSERT_TRUE(r);
  EXPECT_EQ(frames(r->body), (std::vector<std::string>{"ecno"}));
}

TEST_F(TitanicClientTest, FallsBackToPlainRequestsWhenKeyedRequestHasNoWorkers) {
  start_server({.keyed = false, .pending_polls = 0});
  client c(ctx_, client_for());
  auto r = c.call("echo", message("plain"), wait_bound);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->state, reply_state::ready);
  EXPECT_EQ(c.keyed(), false);
  EXPECT_EQ(c.stats().keyed, 0U);
  EXPECT_EQ(c.stats().probes, 1U);
  EXPECT_EQ(server_->plain_requests(), 1U);
  ASSERT_TRUE(c.post("echo", message("again")));
  EXPECT_EQ(c.stats().probes, 1U) << "the probe is asked once per client";
  EXPECT_EQ(server_->plain_requests(), 2U);
}

TEST_F(TitanicClientTest, UnknownIdIsReportedAsUnknownAndClosesQuietly) {
  start_server();
  client c(ctx_, client_for());
  const auto id = *parse_request_id("0123456789abcdef0123456789ABCDEF");
  auto polled = c.poll(id);
  ASSERT_TRUE(polled);
  EXPECT_EQ(polled->state, reply_state::unknown);
  auto waited = c.wait(id, wait_bound);
  ASSERT_TRUE(waited);
  EXPECT_EQ(waited->state, reply_state::unknown);
  EXPECT_TRUE(c.close(id));
}

TEST_F(TitanicClientTest, GivenUpRequestCarriesTheServersReason) {
  start_server();
  client c(ctx_, client_for());
  auto id = c.post("doomed", message("x"));
  ASSERT_TRUE(id);
  auto r = c.wait(*id, wait_bound);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->state, reply_state::failed);
  EXPECT_EQ(r->reason, "service doomed had no workers for 5 attempts");
  EXPECT_TRUE(r->body.empty());
  auto called = c.call("doomed", message("y"), wait_bound);
  ASSERT_TRUE(called);
  EXPECT_EQ(called->state, reply_state::failed);
  EXPECT_EQ(c.stats().failed, 2U);
}

TEST_F(TitanicClientTest, RefusedPostsMapToErrorCodes) {
  start_server();
  client c(ctx_, client_for());
  auto refused = c.post("refuse-me", message("x"));
  EXPECT_TRUE(refused.is(errc::invalid_argument)) << refused.error().message();
  auto failed = c.post("store-fails", message("x"));
  EXPECT_TRUE(failed.is(errc::io_error)) << failed.error().message();
  EXPECT_EQ(c.stats().refused, 2U);
  EXPECT_EQ(server_->stored(), 0U);
}

TEST_F(TitanicClientTest, WaitAndCallTimeOutWhileThePendingRequestStaysPending) {
  start_server();
  client c(ctx_, client_for());
  auto id = c.post("slow", message("x"));
  ASSERT_TRUE(id);
  auto w = c.wait(*id, 50ms);
  EXPECT_TRUE(w.is(errc::timeout));
  EXPECT_EQ(server_->open(), 1U) << "wait() leaves the request alone";
  ASSERT_TRUE(c.close(*id));
  auto called = c.call("slow", message("y"), 50ms);
  EXPECT_TRUE(called.is(errc::timeout));
  EXPECT_EQ(server_->open(), 0U) << "call() closes what it gave up waiting for";
}

TEST_F(TitanicClientTest, SilentBrokerIsATimeout) {
  // No Titanic server: the broker holds the request, and nobody answers it.
  auto o = client_for();
  o.keys = key_mode::plain;
  o.timeout = 50ms;
  o.retries = 1;
  client c(ctx_, o);
  auto r = c.post("echo", message("x"));
  EXPECT_TRUE(r.is(errc::timeout));
  EXPECT_EQ(c.stats().timeouts, 1U);
  EXPECT_EQ(c.transport_stats().retries, 1U);
}

TEST_F(TitanicClientTest, BadRequestsAndOptionsAreRefused) {
  client c(ctx_, client_for());
  message body("kept");
  EXPECT_THROW((void)c.post("", std::move(body)), fabric::error);
  EXPECT_THROW((void)c.post("has space", std::move(body)), fabric::error);
  EXPECT_THROW((void)c.post(std::string(256, 'a'), std::move(body)), fabric::error);
  EXPECT_EQ(body.size(), 1U) << "a refused body stays with the caller";
  EXPECT_THROW((void)c.post("echo", message()), fabric::error);
  EXPECT_THROW((void)c.wait(request_id{}, -1ms), fabric::error);

  const auto refuses = [&](const std::function<void(client_options&)>& change) {
    auto o = client_for();
    change(o);
    try {
      client bad(ctx_, o);
    } catch (const fabric::error& e) {
      return e.code() == make_error_code(errc::invalid_argument);
    }
    return false;
  };
  EXPECT_TRUE(refuses([](client_options& o) { o.broker.clear(); }));
  EXPECT_TRUE(refuses([](client_options& o) { o.timeout = 0ms; }));
  EXPECT_TRUE(refuses([](client_options& o) { o.timeout = 25h; }));
  EXPECT_TRUE(refuses([](client_options& o) { o.retries = 1001; }));
  EXPECT_TRUE(refuses([](client_options& o) { o.poll_interval = 0ms; }));
  EXPECT_TRUE(refuses([](client_options& o) { o.poll_interval_max = 2h; }));
  EXPECT_TRUE(refuses([](client_options& o) { o.poll_interval = 50ms;
    o.poll_interval_max = 10ms; }));
  EXPECT_TRUE(refuses([](client_options& o) { o.keys = static_cast<key_mode>(7); }));
  EXPECT_TRUE(refuses([](client_options& o) { o.socket.routing_id = std::string(240, 'r'); }));
  EXPECT_FALSE(refuses([](client_options& o) { o.retries = 1000; }));

  const auto async_refuses = [&](const std::function<void(async_client_options&)>& change) {
    auto o = async_for();
    change(o);
    try {
      async_client bad(ctx_, o);
    } catch (const fabric::error& e) {
      return e.code() == make_error_code(errc::invalid_argument);
    }
    return false;
  };
  EXPECT_TRUE(async_refuses([](async_client_options& o) { o.broker.clear(); }));
  EXPECT_TRUE(async_refuses([](async_client_options& o) { o.call_timeout = 0ms; }));
  EXPECT_TRUE(async_refuses([](async_client_options& o) { o.retries = 1001; }));
  EXPECT_TRUE(async_refuses([](async_client_options& o) { o.poll_interval = 2s;
    o.poll_interval_max = 1s; }));
  EXPECT_TRUE(async_refuses([](async_client_options& o) { o.max_outstanding = 0; }));
  EXPECT_TRUE(async_refuses([](async_client_options& o) { o.max_outstanding = 1'000'001; }));
  EXPECT_FALSE(async_refuses([](async_client_options&) {}));
}

TEST_F(TitanicClientTest, AsyncClientFollowsManyRequestsToTheirEnds) {
  start_server({.pending_polls = 2});
  async_client c(ctx_, async_for());
  constexpr int n = 200;
  std::map<std::uint64_t, std::string> sent;
  for (int i = 0; i < n; ++i) {
    const std::string body = "req-" + std::to_string(i);
    auto t = c.post("echo", message(body));
    ASSERT_TRUE(t) << t.error().message();
    sent[*t] = body;
  }
  auto doomed = c.post("doomed", message("d"));
  ASSERT_TRUE(doomed);
  EXPECT_EQ(c.outstanding(), std::size_t{n} + 1);

  std::map<std::uint64_t, request_id> posted;
  std::set<std::uint64_t> finished;
  async_client::completion done;
  while (finished.size() < sent.size() + 1) {
    ASSERT_TRUE(c.recv(done, wait_bound)) << finished.size() << " finished";
    switch (done.what) {
      case async_client::event::posted:
        EXPECT_TRUE(posted.emplace(done.token, done.id).second) << "posted twice";
        break;
      case async_client::event::ready: {
        ASSERT_TRUE(posted.count(done.token)) << "ready before posted";
        EXPECT_EQ(posted.at(done.token), done.id);
        const auto& body = sent.at(done.token);
        EXPECT_EQ(frames(done.body), (std::vector<std::string>{std::string(body.rbegin(), body.rend())}));
        EXPECT_TRUE(finished.insert(done.token).second) << "finished twice";
        break;
      }
      case async_client::event::failed:
        EXPECT_EQ(done.token, *doomed);
        EXPECT_EQ(done.reason, "service doomed had no workers for 5 attempts");
        EXPECT_TRUE(finished.insert(done.token).second);
        break;
      default:
        FAIL() << "unexpected completion " << static_cast<int>(done.what) << " "
               << done.error.message();
    }
  }
  EXPECT_EQ(c.outstanding(), 0U);
  EXPECT_EQ(c.keyed(), true);
  EXPECT_EQ(c.stats().posted, std::uint64_t{n} + 1);
  EXPECT_EQ(c.stats().keyed, std::uint64_t{n} + 1);
  EXPECT_EQ(c.stats().ready, std::uint64_t{n});
  EXPECT_EQ(c.stats().failed, 1U);
  EXPECT_GE(c.stats().polls, std::uint64_t{n} * 3);
  EXPECT_EQ(server_->stored(), std::size_t{n} + 1);
  // The closes go out as each request ends; the server takes them on its own time.
  EXPECT_TRUE(eventually([&] { return server_->open() == 0; }));
  auto none = c.try_recv(done);
  EXPECT_TRUE(none.is(errc::would_block));
}

TEST_F(TitanicClientTest, AsyncClientResendsALostPostWithTheSameKey) {
  start_server({.pending_polls = 0, .lose_first_keyed_answer = true});
  auto o = async_for();
  o.call_timeout = 300ms;
  async_client c(ctx_, o);
  auto t = c.post("echo", message("once"));
  ASSERT_TRUE(t);
  auto posted = c.recv(wait_bound);
  ASSERT_TRUE(posted);
  EXPECT_EQ(posted->what, async_client::event::posted);
  auto ready = c.recv(wait_bound);
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->what, async_client::event::ready);
  EXPECT_EQ(frames(ready->body), (std::vector<std::string>{"ecno"}));
  EXPECT_GE(c.stats().resends, 1U);
  const auto keys = server_->keys_seen();
  ASSERT_EQ(keys.size(), 2U);
  EXPECT_EQ(keys[0], keys[1]);
  EXPECT_EQ(server_->stored(), 1U);
}

TEST_F(TitanicClientTest, AsyncClientEndsARequestWhenEveryResendIsUnanswered) {
  // No server: the broker answers the probe (404), and the plain post is never answered.
  auto o = async_for();
  o.call_timeout = 30ms;
  o.retries = 1;
  o.correlate = mdp::correlation::plain;
  async_client c(ctx_, o);
  auto t = c.post("echo", message("x"));
  ASSERT_TRUE(t);
  ASSERT_TRUE(c.next_deadline().has_value());
  auto done = c.recv(wait_bound);
  ASSERT_TRUE(done);
  EXPECT_EQ(done->token, *t);
  EXPECT_EQ(done->what, async_client::event::error);
  EXPECT_EQ(done->error, make_error_code(errc::timeout));
  EXPECT_EQ(c.outstanding(), 0U);
  EXPECT_EQ(c.keyed(), false) << "the broker answers mmi.service itself: 404";
}

}  // namespace
}  // namespace fabric::titanic
