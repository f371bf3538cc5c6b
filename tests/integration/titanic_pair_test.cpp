// Titanic replication (docs/ha.md, section 9) over loopback: a service with a replication log,
// a replica on a second journal, and what the second journal holds at each point. In sync mode
// a "200" is only ever seen once the replica's journal holds the request; a replica behind the
// trimmed log, or whose log parted from the active node's, copies afresh and ends with the same
// requests; a service started on the replica's journal serves what the first one accepted.
#include <fabric/context.hpp>
#include <fabric/journal.hpp>
#include <fabric/majordomo.hpp>
#include <fabric/majordomo_worker.hpp>
#include <fabric/message.hpp>
#include <fabric/titanic.hpp>
#include <fabric/titanic_client.hpp>

#include "support/support.hpp"

#include <gtest/gtest.h>
#include <zmq.hpp>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace fabric::titanic {
namespace {

using namespace std::chrono_literals;
using fabric::testing::eventually;
using fabric::testing::wait_bound;

std::string endpoint_on(std::uint16_t port) { return "tcp://127.0.0.1:" + std::to_string(port); }

std::string key_of(const request_id& id) {
  return std::string(reinterpret_cast<const char*>(id.bytes.data()), id.bytes.size());
}

// An echo service on its own thread.
class echo_worker {
 public:
  echo_worker(context& ctx, const std::string& broker)
      : worker_(ctx, {.broker = broker, .service = "echo", .heartbeat_interval = 100ms}) {
    thread_ = std::thread([this] {
      while (!stop_) {
        auto req = worker_.recv(20ms);
        if (!req) continue;
        ++runs_;
        message out;
        for (auto& f : req->body) out.push_back(std::move(f));
        (void)worker_.reply(*req, std::move(out));
      }
    });
  }
  ~echo_worker() {
    stop_ = true;
    thread_.join();
  }
  int runs() const { return runs_.load(); }

 private:
  mdp::worker worker_;
  std::atomic<bool> stop_{false};
  std::atomic<int> runs_{0};
  std::thread thread_;
};

// The requests a journal holds, by UUID: state octet and the client's key; and its replies.
struct holdings {
  std::map<std::string, std::pair<char, std::string>> requests;
  std::map<std::string, std::string> replies;
  std::map<std::string, std::string> keys;
  bool operator==(const holdings&) const = default;
};

holdings held_by(const journal& j) {
  holdings h;
  auto rows = j.table_entries(service::state_table, {}, 100'000);
  EXPECT_TRUE(rows);
  for (const auto& [k, v] : *rows) {
    // state(1) seq(8) attempts(4) stored(8) finished(8) key-size(1) key ...
    const std::size_t ks = static_cast<unsigned char>(v.at(29));
    h.requests[k] = {v.at(0), v.substr(30, ks)};
  }
  auto replies = j.table_entries(service::replies_table, {}, 100'000);
  EXPECT_TRUE(replies);
  for (auto& [k, v] : *replies) h.replies[k] = v;
  auto keys = j.table_entries(service::keys_table, {}, 100'000);
  EXPECT_TRUE(keys);
  for (auto& [k, v] : *keys) h.keys[k] = v;
  return h;
}

class TitanicPairTest : public ::testing::Test {
 protected:
  TitanicPairTest() {
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
    options.replication.bind = endpoint_on(fabric::testing::free_tcp_port());
    options.replication.term = 2;
    options.replication.follower_timeout = 500ms;
    replica_options_.peer = options.replication.bind;
    replica_options_.timeout = 500ms;
    if (std::getenv("FABRIC_TEST_LOG") != nullptr) {
      replica_options_.log = [](log_level, std::string_view line) { std::fprintf(stderr, "%.*s\n", static_cast<int>(line.size()), line.data()); };
    }
    a_.emplace(journal::open(dir_a_.path()));
    b_.emplace(journal::open(dir_b_.path()));
  }
  ~TitanicPairTest() override {
    replica_.reset();
    service_.reset();
  }

  void start_service(journal& j) {
    service_ = std::make_unique<service>(ctx, j, options);
    ASSERT_TRUE(eventually([&] { return mdp_has("titanic.request") && mdp_has("titanic.reply"); }));
  }
  void start_replica() { start_replica(*b_); }
  void start_replica(journal& j) { replica_ = std::make_unique<replica>(ctx, j, replica_options_); }

  bool mdp_has(const std::string& service_name) {
    mdp::client c(ctx, {.broker = endpoint, .timeout = 500ms, .retries = 0});
    auto r = c.request("mmi.service", message(service_name));
    return r && !r->empty() && r->view(0) == "200";
  }

  // Posts `n` keyed requests; checks after each "200" that `check` holds for its id.
  template <class Check>
  std::vector<request_id> post(client& c, int n, Check check) {
    std::vector<request_id> ids;
    for (int i = 0; i < n; ++i) {
      auto id = c.post("echo", message("body " + std::to_string(i)));
      EXPECT_TRUE(id) << id.error().message();
      if (!id) break;
      check(*id);
      ids.push_back(*id);
    }
    return ids;
  }

  context ctx;
  std::string endpoint;
  service_options options;
  replica_options replica_options_;
  fabric::testing::temp_dir dir_a_;
  fabric::testing::temp_dir dir_b_;
  std::optional<journal> a_;
  std::optional<journal> b_;
  std::unique_ptr<mdp::broker> broker_;
  std::unique_ptr<service> service_;
  std::unique_ptr<replica> replica_;
};

TEST_F(TitanicPairTest, InSyncModeEvery200IsAlreadyInTheReplicasJournal) {
  start_service(*a_);
  start_replica();
  ASSERT_TRUE(eventually([&] { return replica_->caught_up(); }));
  ASSERT_TRUE(eventually([&] { return service_->stats().follower_in_step; }));
  client c(ctx, {.broker = endpoint, .keys = key_mode::keyed});
  const auto ids = post(c, 40, [&](const request_id& id) {
    auto row = b_->get(service::state_table, key_of(id));
    ASSERT_TRUE(row);
    EXPECT_TRUE(row->has_value()) << "a 200 went back before the replica held the request";
  });
  ASSERT_EQ(ids.size(), 40u);
  echo_worker echo(ctx, endpoint);
  for (const auto& id : ids) {
    auto r = c.wait(id, wait_bound);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->state, reply_state::ready);
    // The reply was offered only once the replica held it too.
    auto rep = b_->get(service::replies_table, key_of(id));
    ASSERT_TRUE(rep);
    EXPECT_TRUE(rep->has_value());
  }
  const auto st = service_->stats();
  EXPECT_GE(st.replication_head, 1u);
  EXPECT_EQ(st.follower_losses, 0u);
  const auto rs = replica_->stats();
  EXPECT_TRUE(rs.caught_up);
  EXPECT_GE(rs.entries_applied, 2u);
  EXPECT_EQ(rs.malformed, 0u);
  EXPECT_EQ(held_by(*a_), held_by(*b_));
}

TEST_F(TitanicPairTest, AServiceStartedOnTheReplicasJournalServesWhatTheFirstAccepted) {
  start_service(*a_);
  start_replica();
  ASSERT_TRUE(eventually([&] { return replica_->caught_up(); }));
  client c(ctx, {.broker = endpoint, .keys = key_mode::keyed});
  const auto ids = post(c, 20, [](const request_id&) {});
  ASSERT_EQ(ids.size(), 20u);
  // The active node dies before any request ran; the other takes over on its own journal.
  service_.reset();
  replica_.reset();
  options.replication.bind = endpoint_on(fabric::testing::free_tcp_port());
  options.replication.term = 5;
  start_service(*b_);
  echo_worker echo(ctx, endpoint);
  for (std::size_t i = 0; i < ids.size(); ++i) {
    auto r = c.wait(ids[i], wait_bound);
    ASSERT_TRUE(r);
    ASSERT_EQ(r->state, reply_state::ready);
    ASSERT_EQ(r->body.size(), 1u);
    EXPECT_EQ(r->body.view(0), "body " + std::to_string(i));
  }
  EXPECT_EQ(echo.runs(), 20);
  // The journal keeps the highest term it saw.
  EXPECT_EQ(stored_term(*b_), 2u);
}

TEST_F(TitanicPairTest, InAsyncModeTheReplicaFollowsBehind) {
  options.replication.mode = replication_mode::async;
  start_service(*a_);
  start_replica();
  client c(ctx, {.broker = endpoint, .keys = key_mode::keyed});
  const auto ids = post(c, 30, [](const request_id&) {});
  ASSERT_EQ(ids.size(), 30u);
  ASSERT_TRUE(eventually([&] { return held_by(*a_) == held_by(*b_) && held_by(*b_).requests.size() == 30; }));
  EXPECT_EQ(service_->stats().answers_waiting, 0u);
}

TEST_F(TitanicPairTest, AReplicaBehindTheTrimmedLogCopiesAfreshAndThenFollows) {
  options.replication.backlog = 4;
  start_service(*a_);
  client c(ctx, {.broker = endpoint, .keys = key_mode::keyed});
  auto ids = post(c, 25, [](const request_id&) {});
  {
    echo_worker echo(ctx, endpoint);
    for (std::size_t i = 0; i < 10; ++i) {
      auto r = c.wait(ids[i], wait_bound);
      ASSERT_TRUE(r);
      ASSERT_EQ(r->state, reply_state::ready);
    }
  }
  ASSERT_TRUE(c.close(ids[0]));
  start_replica();
  ASSERT_TRUE(eventually([&] { return replica_->caught_up(); }));
  const auto rs = replica_->stats();
  EXPECT_EQ(rs.resyncs, 1u);
  EXPECT_GE(rs.snapshot_pages, 1u);
  EXPECT_EQ(held_by(*a_), held_by(*b_));
  EXPECT_EQ(held_by(*b_).requests.size(), 24u);
  // And then follows entry by entry.
  auto more = post(c, 5, [&](const request_id& id) {
    auto row = b_->get(service::state_table, key_of(id));
    ASSERT_TRUE(row);
    EXPECT_TRUE(row->has_value());
  });
  EXPECT_EQ(more.size(), 5u);
  EXPECT_EQ(replica_->stats().resyncs, 1u);
}

TEST_F(TitanicPairTest, AReplicaWhoseLogPartedHandsOverItsOwnAndCopiesTheActiveNodesRequests) {
  // B served alone in a term of its own first.
  {
    options.replication.term = 7;
    start_service(*b_);
    client c(ctx, {.broker = endpoint, .keys = key_mode::keyed});
    EXPECT_EQ(post(c, 3, [](const request_id&) {}).size(), 3u);
    service_.reset();
  }
  options.replication.term = 8;
  options.replication.bind = endpoint_on(fabric::testing::free_tcp_port());
  replica_options_.peer = options.replication.bind;
  start_service(*a_);
  client c(ctx, {.broker = endpoint, .keys = key_mode::keyed});
  EXPECT_EQ(post(c, 5, [](const request_id&) {}).size(), 5u);
  start_replica();
  ASSERT_TRUE(eventually([&] { return replica_->caught_up(); }));
  EXPECT_EQ(replica_->stats().resyncs, 1u);
  // What B accepted alone is handed over to A before B copies A's journal: none is lost.
  EXPECT_EQ(replica_->stats().handed_over, 3u);
  EXPECT_EQ(held_by(*a_), held_by(*b_));
  EXPECT_EQ(held_by(*b_).requests.size(), 8u);
  EXPECT_EQ(service_->stats().resyncs, 1u);
}

TEST_F(TitanicPairTest, AFormerActiveNodeHandsOverWhatItAcceptedAloneBeforeCopying) {
  // A serves with B following; B goes away and A answers three posts alone; A dies; B takes over
  // on its own journal and serves two posts of its own, so the logs part. A comes back as the
  // follower: it hands the three over under their UUIDs, then copies B's journal.
  start_service(*a_);
  start_replica();
  ASSERT_TRUE(eventually([&] { return replica_->caught_up(); }));
  client c(ctx, {.broker = endpoint, .timeout = 5s, .keys = key_mode::keyed});
  const auto shared = post(c, 4, [](const request_id&) {});
  replica_.reset();
  const auto alone = post(c, 3, [&](const request_id& id) {
    auto row = b_->get(service::state_table, key_of(id));
    ASSERT_TRUE(row);
    EXPECT_FALSE(row->has_value());
  });
  ASSERT_EQ(alone.size(), 3u);
  service_.reset();
  options.replication.term = 9;
  options.replication.bind = endpoint_on(fabric::testing::free_tcp_port());
  start_service(*b_);
  const auto own = post(c, 2, [](const request_id&) {});
  ASSERT_EQ(own.size(), 2u);
  // A follows B now.
  replica_options_.peer = options.replication.bind;
  start_replica(*a_);
  ASSERT_TRUE(eventually([&] { return replica_->caught_up(); }));
  const auto rs = replica_->stats();
  EXPECT_EQ(rs.resyncs, 1u);
  EXPECT_EQ(rs.handed_over, 3u);
  EXPECT_EQ(service_->stats().handed_over, 3u);
  // Both journals hold all nine, and every client's UUID is served.
  EXPECT_EQ(held_by(*a_), held_by(*b_));
  EXPECT_EQ(held_by(*a_).requests.size(), 9u);
  echo_worker echo(ctx, endpoint);
  for (const auto* ids : {&shared, &alone, &own}) {
    for (const auto& id : *ids) {
      auto r = c.wait(id, wait_bound);
      ASSERT_TRUE(r);
      EXPECT_EQ(r->state, reply_state::ready);
    }
  }
  EXPECT_EQ(echo.runs(), 9);
}

TEST_F(TitanicPairTest, WithTheReplicaGoneTheActiveNodeAnswersAlone) {
  start_service(*a_);
  start_replica();
  ASSERT_TRUE(eventually([&] { return service_->stats().follower_in_step; }));
  replica_.reset();
  client c(ctx, {.broker = endpoint, .timeout = 5s, .keys = key_mode::keyed});
  auto id = c.post("echo", message("alone"));
  ASSERT_TRUE(id) << id.error().message();
  const auto st = service_->stats();
  EXPECT_EQ(st.follower_losses, 1u);
  EXPECT_FALSE(st.follower_in_step);
  // Back, it catches up with what was answered alone.
  start_replica();
  ASSERT_TRUE(eventually([&] { return replica_->caught_up(); }));
  auto row = b_->get(service::state_table, key_of(*id));
  ASSERT_TRUE(row);
  EXPECT_TRUE(row->has_value());
  EXPECT_EQ(replica_->stats().resyncs, 0u);
}

TEST_F(TitanicPairTest, GarbageOnTheReplicationSocketIsCountedAndDropped) {
  start_service(*a_);
  zmq::context_t raw;
  zmq::socket_t s(raw, zmq::socket_type::dealer);
  s.set(zmq::sockopt::linger, 0);
  s.connect(options.replication.bind);
  for (const std::string_view junk : {"x", "FTR01", "FTR02"}) {
    s.send(zmq::buffer(junk), zmq::send_flags::sndmore);
    s.send(zmq::str_buffer("\x01short"), zmq::send_flags::none);
  }
  // A fetch from far ahead: told to resync, nothing else.
  start_replica();
  ASSERT_TRUE(eventually([&] { return replica_->caught_up(); }));
  client c(ctx, {.broker = endpoint, .keys = key_mode::keyed});
  EXPECT_EQ(post(c, 2, [](const request_id&) {}).size(), 2u);
}

TEST_F(TitanicPairTest, OptionsAreValidated) {
  replica_options r;
  EXPECT_THROW(replica(ctx, *b_, r), error);
  r.peer = "tcp://127.0.0.1:1";
  r.timeout = 1ms;
  EXPECT_THROW(replica(ctx, *b_, r), error);
  r.timeout = 1s;
  r.backlog = 0;
  EXPECT_THROW(replica(ctx, *b_, r), error);
  options.replication.follower_timeout = 1ms;
  EXPECT_THROW(service(ctx, *a_, options), error);
  EXPECT_THROW(pair(ctx, *a_, pair_options{}), error);
}

}  // namespace
}  // namespace fabric::titanic
