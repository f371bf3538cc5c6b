// Tests the pure Titanic (9/TSP) server machine on a fake clock: a recording server_io and a
// memory server_store whose commits complete only when a test says so, so that every test decides
// when a change is durable and checks that nothing is answered before it is. Each test checks the
// exact frames of the answers, what each commit carries, what is dispatched and when, and that
// next_tick() never asks for a tick in the past once a tick has run.
#include "reliability/tsp_server.hpp"

#include <fabric/error.hpp>

#include "support/support.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fabric::tsp {
namespace {

using namespace std::chrono_literals;
using namespace std::string_literals;
using detail::time_point;
using frames = std::vector<std::string>;

message make(const frames& parts) { return testing::message_of(parts); }
frames frames_of(const message& m) { return testing::to_strings(m); }

struct answer_record {
  origin to{};
  frames body{};
};

struct dispatch_record {
  std::uint64_t id = 0;
  std::string service{};
  frames body{};
  std::chrono::milliseconds timeout{};
};

// Records everything the machine sends; dispatch ids count up from 1.
class fake_io final : public server_io {
 public:
  void answer(const origin& to, message&& body) override { answers.push_back({to, frames_of(body)}); }
  result<std::uint64_t> dispatch(std::string_view service, message&& body,
                                 std::chrono::milliseconds timeout) override {
    if (refuse_dispatch) {
      ++refused;
      return errc::back_pressure;
    }
    dispatches.push_back({next_id, std::string(service), frames_of(body), timeout});
    return next_id++;
  }
  result<void> query_service(std::string_view service) override {
    if (refuse_query) return errc::back_pressure;
    queries.emplace_back(service);
    return {};
  }
  void cancel(std::uint64_t id) noexcept override { cancels.push_back(id); }

  std::vector<answer_record> answers;
  std::vector<dispatch_record> dispatches;
  std::vector<std::string> queries;
  std::vector<std::uint64_t> cancels;
  bool refuse_dispatch = false;
  bool refuse_query = false;
  std::size_t refused = 0;
  std::uint64_t next_id = 1;
};

struct stored_request {
  uuid id{};
  std::string key{};
  std::string service{};
  frames body{};
  std::uint32_t attempts = 0;
  time_point expires_at = time_point::max();
};

// The journal in memory. commit() only records the batch; apply() writes one as a successful
// transaction would, and the test then tells the machine.
class memory_store final : public server_store {
 public:
  result<bool> read_open(std::uint64_t after, std::size_t max, std::vector<open_request>& out) override {
    reads.emplace_back(after, max);
    if (fail_reads) return errc::io_error;
    auto it = open.upper_bound(after);
    for (std::size_t n = 0; it != open.end() && n < max; ++it, ++n) {
      out.push_back({.id = it->second.id, .seq = it->first, .service = it->second.service,
                     .attempts = it->second.attempts, .expires_at = it->second.expires_at});
    }
    return it == open.end();
  }
  result<message> read_body(const uuid& id, std::uint64_t seq) override {
    if (fail_reads) return errc::io_error;
    const auto it = open.find(seq);
    if (it == open.end() || it->second.id != id) return errc::io_error;
    return make(it->second.body);
  }
  result<request_lookup> lookup(const uuid& id) override {
    if (fail_reads) return errc::io_error;
    request_lookup out;
    if (find_open(id) != open.end()) {
      out.what = request_lookup::state::open;
    } else if (const auto r = replies.find(id); r != replies.end()) {
      out.what = request_lookup::state::replied;
      out.reply = make(r->second);
    } else if (const auto g = given_up.find(id); g != given_up.end()) {
      out.what = request_lookup::state::given_up;
      out.reason = g->second;
    }
    return out;
  }
  result<std::optional<uuid>> find_key(std::string_view key) override {
    if (fail_reads) return errc::io_error;
    const auto it = keys.find(std::string(key));
    if (it == keys.end()) return std::optional<uuid>{};
    return std::optional<uuid>{it->second};
  }
  result<std::vector<due_removal>> due_removals(std::size_t max) override {
    ++sweeps;
    if (fail_reads) return errc::io_error;
    std::vector<due_removal> out;
    for (std::size_t i = 0; i < due.size() && i < max; ++i) out.push_back(due[i]);
    return out;
  }
  void commit(commit_batch&& batch) override { pending.push_back(std::move(batch)); }

  // Writes `b` as one transaction; returns the records of its stored changes.
  std::vector<std::uint64_t> apply(const commit_batch& b) {
    std::vector<std::uint64_t> seqs;
    for (const auto& c : b.changes) {
      switch (c.kind) {
        case change_kind::stored: {
          const std::uint64_t seq = next_seq++;
          open[seq] = {.id = c.id, .key = c.key, .service = c.service, .body = frames_of(c.body),
                       .expires_at = c.expires_at};
          if (!c.key.empty()) keys[c.key] = c.id;
          seqs.push_back(seq);
          break;
        }
        case change_kind::attempt:
          if (const auto it = find_open(c.id); it != open.end()) it->second.attempts = c.attempts;
          break;
        case change_kind::replied:
          if (const auto it = find_open(c.id); it != open.end()) open.erase(it);
          replies[c.id] = frames_of(c.body);
          break;
        case change_kind::given_up:
          if (const auto it = find_open(c.id); it != open.end()) open.erase(it);
          given_up[c.id] = c.reason;
          break;
        case change_kind::closed:
        case change_kind::removed:
          if (const auto it = find_open(c.id); it != open.end()) open.erase(it);
          replies.erase(c.id);
          given_up.erase(c.id);
          std::erase_if(keys, [&](const auto& k) { return k.second == c.id; });
          std::erase_if(due, [&](const due_removal& d) { return d.id == c.id; });
          break;
      }
    }
    return seqs;
  }
  // Seeds an open request as a previous run of the server left it.
  uuid seed(std::string service, frames body, std::uint32_t attempts = 0) {
    const uuid id = uuid::random();
    open[next_seq++] = {.id = id, .service = std::move(service), .body = std::move(body), .attempts = attempts};
    return id;
  }
  std::map<std::uint64_t, stored_request>::iterator find_open(const uuid& id) {
    for (auto it = open.begin(); it != open.end(); ++it)
      if (it->second.id == id) return it;
    return open.end();
  }

  std::map<std::uint64_t, stored_request> open;  // by record
  std::map<uuid, frames> replies;
  std::map<std::string, uuid> keys;
  std::map<uuid, std::string> given_up;
  std::vector<due_removal> due;
  std::deque<commit_batch> pending;
  std::vector<std::pair<std::uint64_t, std::size_t>> reads;  // read_open(after, max) calls
  std::size_t sweeps = 0;
  std::uint64_t next_seq = 1;
  bool fail_reads = false;
};

server_settings test_settings() {
  server_settings s;
  s.max_in_flight = 64;
  s.dispatch_timeout = 10s;
  s.max_attempts = 3;
  s.retry_base = 1s;
  s.retry_max = 4s;
  s.service_check_interval = 2500ms;
  s.sweep_interval = 60s;
  s.max_in_memory = 1000;
  s.page = 100;
  s.max_batch = 100;
  s.commit_linger = 0us;  // commits go at once; LingersUnderLoad tests the wait
  s.cache_bytes = 0;      // every body and reply read from the store; the cache has its own tests
  return s;
}

class TitanicServer : public ::testing::Test {
 protected:
  void start(const server_settings& s = test_settings()) {
    machine = std::make_unique<server_machine>(s, io, store);
    tick();
  }

  // Ticks as a driver would, and checks the machine never asks for a tick in the past after one.
  void tick() {
    machine->on_tick(now);
    EXPECT_GT(machine->next_tick(), now) << "a tick in the past: the driver would spin";
  }
  void advance(std::chrono::milliseconds d) {
    now += d;
    tick();
  }

  static origin from(service_kind k, std::string client = "C") {
    return {.kind = k, .client = std::move(client), .connection = 7};
  }
  void request(std::string_view service, const frames& body, std::string client = "C") {
    message m;
    write_request(m, service, make(body));
    machine->on_request(from(service_kind::request, std::move(client)), std::move(m), now);
  }
  void keyed(std::string_view key, std::string_view service, const frames& body, std::string client = "C") {
    message m;
    write_keyed_request(m, key, service, make(body));
    machine->on_request(from(service_kind::keyed_request, std::move(client)), std::move(m), now);
  }
  void ask_reply(const uuid& id, std::string client = "C") {
    message m;
    write_uuid_request(m, id);
    machine->on_request(from(service_kind::reply, std::move(client)), std::move(m), now);
  }
  void close(const uuid& id, std::string client = "C") {
    message m;
    write_uuid_request(m, id);
    machine->on_request(from(service_kind::close, std::move(client)), std::move(m), now);
  }
  // Asks titanic.reply about `id` and returns the frames of the answer.
  frames reply_of(const uuid& id) {
    const std::size_t before = io.answers.size();
    ask_reply(id);
    EXPECT_EQ(io.answers.size(), before + 1);
    if (io.answers.size() != before + 1) return {};
    EXPECT_EQ(io.answers.back().to.kind, service_kind::reply);
    return io.answers.back().body;
  }

  // The oldest commit in flight, made durable (or failed); returns what it carried.
  commit_batch complete(bool ok = true) {
    EXPECT_FALSE(store.pending.empty());
    if (store.pending.empty()) return {};
    commit_batch b = std::move(store.pending.front());
    store.pending.pop_front();
    if (ok) {
      auto seqs = store.apply(b);
      machine->on_committed(b.id, {}, std::move(seqs), now);
    } else {
      machine->on_committed(b.id, errc::io_error, {}, now);
    }
    return b;
  }
  void present(std::string_view service = "echo") { machine->on_service_status(service, true, now); }
  void absent(std::string_view service = "echo") { machine->on_service_status(service, false, now); }

  // The UUID of a "200" answer to titanic.request.
  static uuid uuid_of(const answer_record& a) {
    const message m = make(a.body);
    const parsed_reply p = parse_request_reply(m);
    EXPECT_TRUE(p) << describe(p.error);
    EXPECT_EQ(p.code, status::ok);
    return p.id;
  }
  // Stores one request durably and returns its UUID.
  uuid store_one(std::string_view service, const frames& body) {
    request(service, body);
    const commit_batch b = complete();
    EXPECT_EQ(b.changes.size(), 1u);
    EXPECT_FALSE(io.answers.empty());
    if (io.answers.empty()) return {};
    const uuid id = uuid_of(io.answers.back());
    EXPECT_EQ(b.changes.at(0).id, id);
    return id;
  }
  // Stores one request and has it dispatched; returns its UUID.
  uuid in_flight(const frames& body) {
    const uuid id = store_one("echo", body);
    present();
    return id;
  }

  time_point now = time_point{} + 1000s;
  fake_io io;
  memory_store store;
  std::unique_ptr<server_machine> machine;
};

frames status_only(status s, std::string_view text = {}) { return {status_frame(s, text)}; }
frames ok_uuid(const uuid& id) { return {"200", to_string(id)}; }

// ---------------------------------------------------------------------------------------------
// titanic.request

TEST_F(TitanicServer, RequestIsAnswered200OnlyOnceItsCommitIsDurable) {
  start();
  request("echo", {"hello", ""}, "client-1");
  EXPECT_TRUE(io.answers.empty());
  ASSERT_EQ(store.pending.size(), 1u);
  const commit_batch& b = store.pending.front();
  ASSERT_EQ(b.changes.size(), 1u);
  EXPECT_EQ(b.changes[0].kind, change_kind::stored);
  EXPECT_EQ(b.changes[0].service, "echo");
  EXPECT_EQ(b.changes[0].key, "");
  EXPECT_EQ(frames_of(b.changes[0].body), (frames{"hello", ""}));
  const uuid id = b.changes[0].id;
  tick();
  EXPECT_TRUE(io.answers.empty());
  EXPECT_TRUE(io.dispatches.empty()) << "nothing is dispatched before it is stored";

  complete();
  ASSERT_EQ(io.answers.size(), 1u);
  EXPECT_EQ(io.answers[0].to.kind, service_kind::request);
  EXPECT_EQ(io.answers[0].to.client, "client-1");
  EXPECT_EQ(io.answers[0].to.connection, 7u);
  EXPECT_EQ(io.answers[0].body, ok_uuid(id));
  EXPECT_EQ(machine->stats().stored, 1u);
  EXPECT_EQ(machine->stats().answered[0], 1u);
}

TEST_F(TitanicServer, StoredRequestIsDispatchedOnceItsServiceIsKnownPresent) {
  start();
  const uuid id = store_one("echo", {"hello"});
  EXPECT_EQ(io.queries, (frames{"echo"})) << "mmi.service is asked before any dispatch";
  EXPECT_TRUE(io.dispatches.empty());
  tick();
  EXPECT_EQ(io.queries.size(), 1u) << "asked once while the answer is awaited";

  present();
  ASSERT_EQ(io.dispatches.size(), 1u);
  EXPECT_EQ(io.dispatches[0].service, "echo");
  EXPECT_EQ(io.dispatches[0].body, (frames{"hello"}));
  EXPECT_EQ(io.dispatches[0].timeout, 10s);
  EXPECT_EQ(machine->stats().dispatched, 1u);
  EXPECT_EQ(machine->stats().in_flight, 1u);
  EXPECT_EQ(reply_of(id), status_only(status::pending));
  EXPECT_EQ(machine->next_tick(), now + 10s) << "the dispatch deadline";
}

TEST_F(TitanicServer, ServiceAnswerIsTrustedForTheCheckInterval) {
  start();
  in_flight({"a"});
  ASSERT_EQ(io.dispatches.size(), 1u);
  now += 2s;
  store_one("echo", {"b"});
  EXPECT_EQ(io.dispatches.size(), 2u) << "within the interval: dispatched without asking";
  EXPECT_EQ(io.queries.size(), 1u);
  now += 1s;
  store_one("echo", {"c"});
  EXPECT_EQ(io.dispatches.size(), 2u);
  EXPECT_EQ(io.queries.size(), 2u) << "past the interval: asked again";
  present();
  EXPECT_EQ(io.dispatches.size(), 3u);
}

TEST_F(TitanicServer, MalformedBodiesAreAnswered400AndNothingIsStored) {
  start();
  const std::string long_name(256, 'x');
  const frames too_many(max_body_frames + 2, "f");
  struct bad {
    service_kind kind;
    frames body;
    fault why;
  };
  const std::vector<bad> cases = {
      {service_kind::request, {}, fault::no_service},
      {service_kind::request, {"", "body"}, fault::bad_service},
      {service_kind::request, {"has space", "body"}, fault::bad_service},
      {service_kind::request, {long_name, "body"}, fault::bad_service},
      {service_kind::request, {"echo"}, fault::no_body},
      {service_kind::request, too_many, fault::too_many_frames},
      {service_kind::keyed_request, {}, fault::no_key},
      {service_kind::keyed_request, {"", "echo", "body"}, fault::bad_key},
      {service_kind::keyed_request, {"k"}, fault::no_service},
      {service_kind::keyed_request, {"k", "echo"}, fault::no_body},
      {service_kind::keyed_request, {"k", "", "body"}, fault::bad_service},
      {service_kind::reply, {}, fault::no_uuid},
      {service_kind::reply, {"0123"}, fault::bad_uuid},
      {service_kind::reply, {std::string(32, 'g')}, fault::bad_uuid},
      {service_kind::reply, {std::string(32, 'a'), "x"}, fault::extra_frames},
      {service_kind::close, {}, fault::no_uuid},
      {service_kind::close, {"not a uuid"}, fault::bad_uuid},
      {service_kind::close, {std::string(32, 'A'), ""}, fault::extra_frames},
  };
  for (const auto& c : cases) {
    const std::size_t before = io.answers.size();
    machine->on_request(from(c.kind), make(c.body), now);
    ASSERT_EQ(io.answers.size(), before + 1) << describe(c.why);
    EXPECT_EQ(io.answers.back().to.kind, c.kind);
    EXPECT_EQ(io.answers.back().body, status_only(status::unknown, describe(c.why))) << describe(c.why);
  }
  tick();
  EXPECT_TRUE(store.pending.empty());
  EXPECT_TRUE(store.open.empty());
  EXPECT_TRUE(io.queries.empty());
  EXPECT_EQ(machine->stats().malformed, cases.size());
  EXPECT_EQ(machine->stats().answered[2], cases.size());
  EXPECT_EQ(machine->stats().stored, 0u);
}

// ---------------------------------------------------------------------------------------------
// Batching

TEST_F(TitanicServer, RequestsArrivingDuringACommitGoTogetherInTheNextOne) {
  start();
  request("echo", {"a"}, "A");
  ASSERT_EQ(store.pending.size(), 1u);
  request("echo", {"b"}, "B");
  request("other", {"c"}, "C");
  request("echo", {"d"}, "D");
  EXPECT_EQ(store.pending.size(), 1u) << "one commit at a time";
  EXPECT_TRUE(io.answers.empty());

  const commit_batch first = complete();
  ASSERT_EQ(io.answers.size(), 1u);
  EXPECT_EQ(io.answers[0].to.client, "A");
  EXPECT_EQ(io.answers[0].body, ok_uuid(first.changes.at(0).id));
  ASSERT_EQ(store.pending.size(), 1u);
  const commit_batch& next = store.pending.front();
  ASSERT_EQ(next.changes.size(), 3u);
  EXPECT_EQ(frames_of(next.changes[0].body), (frames{"b"}));
  EXPECT_EQ(next.changes[1].service, "other");
  EXPECT_EQ(frames_of(next.changes[2].body), (frames{"d"}));
  EXPECT_GT(next.id, first.id);

  const commit_batch second = complete();
  ASSERT_EQ(io.answers.size(), 4u);
  const frames clients = {"B", "C", "D"};
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(io.answers[i + 1].to.client, clients[i]);
    EXPECT_EQ(io.answers[i + 1].body, ok_uuid(second.changes[i].id));
  }
  EXPECT_NE(second.changes[0].id, second.changes[1].id);
  EXPECT_EQ(machine->stats().commits, 2u);
  EXPECT_TRUE(store.pending.empty());
}

TEST_F(TitanicServer, MaxBatchSplitsTheChangesIntoCommitsInOrder) {
  auto s = test_settings();
  s.max_batch = 2;
  start(s);
  request("echo", {"0"});
  for (int i = 1; i <= 5; ++i) request("echo", {std::to_string(i)});
  EXPECT_EQ(complete().changes.size(), 1u);
  std::vector<std::string> order;
  for (const std::size_t expected : {2u, 2u, 1u}) {
    ASSERT_EQ(store.pending.size(), 1u);
    const commit_batch b = complete();
    ASSERT_EQ(b.changes.size(), expected);
    for (const auto& c : b.changes) order.push_back(frames_of(c.body).at(0));
  }
  EXPECT_EQ(order, (frames{"1", "2", "3", "4", "5"}));
  EXPECT_EQ(io.answers.size(), 6u);
  EXPECT_TRUE(store.pending.empty());
}

// ---------------------------------------------------------------------------------------------
// Keyed requests

TEST_F(TitanicServer, SameKeyWhileStoringIsAnsweredWithTheSameUuidAfterOneChange) {
  start();
  keyed("k1", "echo", {"x"}, "first");
  keyed("k1", "echo", {"x"}, "again-in-commit");  // its request's commit is in flight
  request("echo", {"plain"}, "plain");
  keyed("k2", "echo", {"y"}, "k2-first");
  keyed("k2", "echo", {"y"}, "k2-again");  // its request is still gathering
  EXPECT_TRUE(io.answers.empty());

  const commit_batch one = complete();
  ASSERT_EQ(one.changes.size(), 1u);
  EXPECT_EQ(one.changes[0].key, "k1");
  ASSERT_EQ(io.answers.size(), 2u);
  EXPECT_EQ(io.answers[0].to.client, "first");
  EXPECT_EQ(io.answers[1].to.client, "again-in-commit");
  EXPECT_EQ(io.answers[0].body, ok_uuid(one.changes[0].id));
  EXPECT_EQ(io.answers[1].body, ok_uuid(one.changes[0].id));
  EXPECT_EQ(io.answers[1].to.kind, service_kind::keyed_request);

  const commit_batch two = complete();
  ASSERT_EQ(two.changes.size(), 2u) << "the second k2 stores nothing";
  EXPECT_EQ(two.changes[1].key, "k2");
  ASSERT_EQ(io.answers.size(), 5u);
  EXPECT_EQ(io.answers[3].to.client, "k2-first");
  EXPECT_EQ(io.answers[4].to.client, "k2-again");
  EXPECT_EQ(io.answers[3].body, ok_uuid(two.changes[1].id));
  EXPECT_EQ(io.answers[4].body, ok_uuid(two.changes[1].id));
  EXPECT_EQ(machine->stats().keyed_again, 2u);
  EXPECT_EQ(machine->stats().stored, 3u);
  EXPECT_EQ(store.keys.size(), 2u);
}

TEST_F(TitanicServer, KeyAlreadyStoredIsAnsweredAtOnceStoringNothing) {
  start();
  keyed("k1", "echo", {"x"});
  const commit_batch b = complete();
  const uuid id = b.changes.at(0).id;
  ASSERT_EQ(io.answers.size(), 1u);

  keyed("k1", "echo", {"x"}, "retry");
  ASSERT_EQ(io.answers.size(), 2u) << "answered at once";
  EXPECT_EQ(io.answers[1].to.client, "retry");
  EXPECT_EQ(io.answers[1].body, ok_uuid(id));
  tick();
  EXPECT_TRUE(store.pending.empty());
  EXPECT_EQ(store.open.size(), 1u);
  EXPECT_EQ(machine->stats().keyed_again, 1u);
}

// ---------------------------------------------------------------------------------------------
// adopt: requests handed over by the other node of a pair (docs/ha.md, section 9.5)

TEST_F(TitanicServer, AnAdoptedRequestIsStoredUnderItsOwnUuidAndDispatched) {
  start();
  const uuid id = uuid::ordered();
  EXPECT_EQ(machine->adopt(id, "k-alone", "echo", make({"job"}), now), adoption::pending);
  // Asked again while its commit is in flight: still pending, stored once.
  EXPECT_EQ(machine->adopt(id, "k-alone", "echo", make({"job"}), now), adoption::pending);
  const commit_batch b = complete();
  ASSERT_EQ(b.changes.size(), 1u);
  EXPECT_EQ(b.changes[0].id, id);
  EXPECT_EQ(b.changes[0].key, "k-alone");
  EXPECT_TRUE(io.answers.empty()) << "nobody asked: nobody is answered";
  EXPECT_EQ(machine->adopt(id, "k-alone", "echo", make({"job"}), now), adoption::held);
  present();
  ASSERT_EQ(io.dispatches.size(), 1u);
  EXPECT_EQ(machine->stats().adopted, 1u);
  // Its client, which holds the UUID, finds it.
  EXPECT_EQ(reply_of(id), status_only(status::pending));
}

TEST_F(TitanicServer, ARequestHeldUnderItsUuidOrKeyIsNotAdoptedAgain) {
  start();
  const uuid stored = store_one("echo", {"a"});
  EXPECT_EQ(machine->adopt(stored, "", "echo", make({"a"}), now), adoption::held);
  keyed("k1", "echo", {"b"});
  (void)complete();
  // The client's retry reached this node under another UUID: the copy is not stored twice.
  EXPECT_EQ(machine->adopt(uuid::ordered(), "k1", "echo", make({"b"}), now), adoption::held);
  // A key being stored right now: pending.
  keyed("k2", "echo", {"c"});
  EXPECT_EQ(machine->adopt(uuid::ordered(), "k2", "echo", make({"c"}), now), adoption::pending);
  (void)complete();
  tick();
  EXPECT_TRUE(store.pending.empty());
  EXPECT_EQ(machine->stats().adopted, 0u);
}

TEST_F(TitanicServer, AnAdoptionTheJournalCannotAnswerFailsAndOneItCannotHoldIsDropped) {
  start();
  store.fail_reads = true;
  EXPECT_EQ(machine->adopt(uuid::ordered(), "k", "echo", make({"x"}), now), adoption::failed);
  store.fail_reads = false;
  EXPECT_EQ(machine->adopt(uuid::ordered(), "", "", make({"x"}), now), adoption::held);
  EXPECT_EQ(machine->adopt(uuid::ordered(), "", "echo", message{}, now), adoption::held);
  EXPECT_EQ(machine->stats().malformed, 2u);
  // A failed commit of an adopted request: asked again, it is stored again.
  const uuid id = uuid::ordered();
  EXPECT_EQ(machine->adopt(id, "", "echo", make({"y"}), now), adoption::pending);
  (void)complete(false);
  EXPECT_EQ(machine->adopt(id, "", "echo", make({"y"}), now), adoption::pending);
  (void)complete();
  EXPECT_EQ(machine->adopt(id, "", "echo", make({"y"}), now), adoption::held);
}

TEST_F(TitanicServer, DifferentKeysGetDifferentUuids) {
  start();
  keyed("a", "echo", {"x"});
  keyed("b", "echo", {"x"});
  keyed("\0a"s, "echo", {"x"});
  complete();
  const commit_batch b = complete();
  ASSERT_EQ(b.changes.size(), 2u);
  ASSERT_EQ(io.answers.size(), 3u);
  const uuid a = uuid_of(io.answers[0]);
  const uuid bb = uuid_of(io.answers[1]);
  const uuid c = uuid_of(io.answers[2]);
  EXPECT_NE(a, bb);
  EXPECT_NE(a, c);
  EXPECT_NE(bb, c);
  EXPECT_EQ(machine->stats().keyed_again, 0u);
}

TEST_F(TitanicServer, KeyLookupFailureIsAnswered500) {
  start();
  store.fail_reads = true;
  keyed("k", "echo", {"x"});
  ASSERT_EQ(io.answers.size(), 1u);
  EXPECT_EQ(io.answers[0].body, status_only(status::error, "the journal could not be read"));
  EXPECT_TRUE(store.pending.empty());
}

// ---------------------------------------------------------------------------------------------
// titanic.reply

TEST_F(TitanicServer, ReplyIsPendingUntilTheRepliedCommitIsDurable) {
  start();
  const uuid id = store_one("echo", {"hello"});
  EXPECT_EQ(reply_of(id), status_only(status::pending)) << "waiting";
  present();
  ASSERT_EQ(io.dispatches.size(), 1u);
  EXPECT_EQ(reply_of(id), status_only(status::pending)) << "in flight";

  machine->on_dispatch_reply(io.dispatches[0].id, make({"world", "", "!"}), now);
  ASSERT_EQ(store.pending.size(), 1u);
  ASSERT_EQ(store.pending.front().changes.size(), 1u);
  EXPECT_EQ(store.pending.front().changes[0].kind, change_kind::replied);
  EXPECT_EQ(store.pending.front().changes[0].id, id);
  EXPECT_EQ(frames_of(store.pending.front().changes[0].body), (frames{"world", "", "!"}));
  EXPECT_EQ(reply_of(id), status_only(status::pending)) << "replied, not yet durable";

  complete();
  EXPECT_EQ(reply_of(id), (frames{"200", "world", "", "!"}));
  EXPECT_EQ(reply_of(id), (frames{"200", "world", "", "!"})) << "asking again gives the same";
  EXPECT_EQ(machine->stats().replies, 1u);
  EXPECT_EQ(machine->stats().open, 0u);
  EXPECT_EQ(machine->stats().in_flight, 0u);
}

TEST_F(TitanicServer, ReplyOfAnUnknownUuidIs400) {
  start();
  EXPECT_EQ(reply_of(uuid::random()), status_only(status::unknown));
}

TEST_F(TitanicServer, ReplyWhenTheStoreCannotBeReadIs500) {
  start();
  store.fail_reads = true;
  EXPECT_EQ(reply_of(uuid::random()), status_only(status::error, "the journal could not be read"));
  EXPECT_EQ(machine->stats().store_errors, 1u);
}

TEST_F(TitanicServer, ReplyWithNoFramesIsStoredAsOneEmptyFrame) {
  start();
  const uuid id = in_flight({"hello"});
  machine->on_dispatch_reply(io.dispatches.at(0).id, message{}, now);
  ASSERT_EQ(store.pending.size(), 1u);
  EXPECT_EQ(frames_of(store.pending.front().changes.at(0).body), (frames{""}));
  complete();
  EXPECT_EQ(reply_of(id), (frames{"200", ""}));
}

TEST_F(TitanicServer, ReplyWithTooManyFramesGivesTheRequestUp) {
  start();
  const uuid id = in_flight({"hello"});
  machine->on_dispatch_reply(io.dispatches.at(0).id, make(frames(max_body_frames + 1, "r")), now);
  const commit_batch b = complete();
  ASSERT_EQ(b.changes.size(), 1u);
  EXPECT_EQ(b.changes[0].kind, change_kind::given_up);
  const std::string reason = "the service's reply has more than 1024 frames";
  EXPECT_EQ(b.changes[0].reason, reason);
  EXPECT_EQ(reply_of(id), status_only(status::error, reason));
}

// ---------------------------------------------------------------------------------------------
// titanic.close

TEST_F(TitanicServer, CloseIsAnswered200OnlyAfterItsCommit) {
  start();
  const uuid id = in_flight({"hello"});
  machine->on_dispatch_reply(io.dispatches.at(0).id, make({"world"}), now);
  complete();
  ASSERT_EQ(reply_of(id), (frames{"200", "world"}));

  const std::size_t before = io.answers.size();
  close(id, "closer");
  EXPECT_EQ(io.answers.size(), before);
  ASSERT_EQ(store.pending.size(), 1u);
  ASSERT_EQ(store.pending.front().changes.size(), 1u);
  EXPECT_EQ(store.pending.front().changes[0].kind, change_kind::closed);
  EXPECT_EQ(store.pending.front().changes[0].id, id);
  complete();
  ASSERT_EQ(io.answers.size(), before + 1);
  EXPECT_EQ(io.answers.back().to.kind, service_kind::close);
  EXPECT_EQ(io.answers.back().to.client, "closer");
  EXPECT_EQ(io.answers.back().body, (frames{"200"}));
  EXPECT_EQ(reply_of(id), status_only(status::unknown)) << "closed: removed with its reply";
  EXPECT_EQ(machine->stats().closed, 1u);
}

TEST_F(TitanicServer, CloseOfAnInFlightRequestCancelsItsDispatchAndALateReplyIsCounted) {
  start();
  const uuid id = in_flight({"hello"});
  const std::uint64_t d = io.dispatches.at(0).id;
  close(id);
  EXPECT_EQ(io.cancels, (std::vector<std::uint64_t>{d}));
  EXPECT_EQ(machine->stats().in_flight, 0u);
  complete();
  EXPECT_EQ(io.answers.back().body, (frames{"200"}));

  machine->on_dispatch_reply(d, make({"late"}), now);
  EXPECT_EQ(machine->stats().late_replies, 1u);
  EXPECT_EQ(machine->stats().replies, 0u);
  tick();
  EXPECT_TRUE(store.pending.empty());
  EXPECT_TRUE(store.replies.empty());
  EXPECT_EQ(reply_of(id), status_only(status::unknown));
  EXPECT_EQ(machine->next_tick(), now + 60s) << "only the sweep is left";
}

TEST_F(TitanicServer, CloseOfAnUnknownUuidIsAnswered200) {
  start();
  close(uuid::random());
  EXPECT_TRUE(io.answers.empty());
  complete();
  ASSERT_EQ(io.answers.size(), 1u);
  EXPECT_EQ(io.answers[0].body, (frames{"200"}));
}

// A close of a request still waiting in the journal (not yet read into memory) is not durable
// until its commit is: the journal lists the request as open meanwhile, and reading it in then
// must not bring it back to be dispatched. (Found by tests/fuzz/fuzz_tsp_server.cpp: the service
// ran a request its client had closed, and a reply cache could then hand its reply out after the
// close.)
TEST_F(TitanicServer, RequestClosedWhileWaitingInTheJournalIsNotReadBackAndDispatched) {
  auto s = test_settings();
  s.max_in_memory = 1;
  store.seed("echo", {"a"});
  const uuid b = store.seed("echo", {"b"});
  start(s);
  ASSERT_EQ(machine->stats().open, 1u) << "only the first request fits in memory";
  const uuid a = store.open.begin()->second.id;
  close(a);  // its commit goes at once
  close(b);  // waits for the next commit
  complete();  // a is closed: room in memory, and b's close goes out
  ASSERT_EQ(store.pending.size(), 1u);
  advance(1s);  // the machine reads open requests back into the room
  present();
  EXPECT_TRUE(io.dispatches.empty()) << "a request whose close was on its way to the journal went out";
  complete();  // b is closed
  advance(1s);
  present();
  EXPECT_TRUE(io.dispatches.empty());
  EXPECT_EQ(reply_of(b), status_only(status::unknown));
}

// The same after a failed commit: the machine forgets its memory and reads the open requests back,
// but a close still waiting for its commit keeps its request out.
TEST_F(TitanicServer, RequestWhoseCloseWaitsIsNotReadBackAfterAFailedCommit) {
  auto s = test_settings();
  s.max_batch = 1;
  start(s);
  const uuid a = store_one("echo", {"a"});
  request("echo", {"b"});  // its commit goes out
  close(a);                // waits for the next commit
  complete(false);         // b's commit fails: everything is read back from the journal
  advance(1s);
  present();
  EXPECT_TRUE(io.dispatches.empty()) << "a request whose close was on its way to the journal went out";
  complete();  // a is closed
  EXPECT_EQ(reply_of(a), status_only(status::unknown));
}

// ---------------------------------------------------------------------------------------------
// Dispatch

TEST_F(TitanicServer, CachedBodiesAndRepliesNeedNoJournalRead) {
  auto s = test_settings();
  s.cache_bytes = 1000;
  start(s);
  const uuid a = store_one("echo", {"hello"});
  present();
  store.fail_reads = true;  // only the cache can serve now
  ASSERT_EQ(io.dispatches.size(), 1u) << "dispatched from the cached body";
  EXPECT_EQ(io.dispatches[0].body, (frames{"hello"}));
  machine->on_dispatch_reply(io.dispatches[0].id, make({"world"}), now);
  complete();
  EXPECT_EQ(reply_of(a), (frames{"200", "world"})) << "answered from the cached reply";
  EXPECT_EQ(machine->stats().store_errors, 0u);
  close(a);
  complete();
  EXPECT_EQ(reply_of(a), status_only(status::error, "the journal could not be read"))
      << "closed: no longer cached, and the store is asked";
}

TEST_F(TitanicServer, TheCacheKeepsToItsBytesAndDropsTheOldestReplies) {
  auto s = test_settings();
  s.cache_bytes = 10;
  start(s);
  present();
  const uuid a = in_flight({"aaaa"});
  machine->on_dispatch_reply(io.dispatches.back().id, make({"r1234"}), now);
  complete();
  const uuid b = in_flight({"bbbb"});
  machine->on_dispatch_reply(io.dispatches.back().id, make({"r5678"}), now);
  complete();
  const uuid c = in_flight({"cccc"});
  machine->on_dispatch_reply(io.dispatches.back().id, make({"r9012"}), now);
  complete();
  store.fail_reads = true;
  EXPECT_EQ(reply_of(c), (frames{"200", "r9012"}));
  EXPECT_EQ(reply_of(b), (frames{"200", "r5678"}));
  EXPECT_EQ(reply_of(a), status_only(status::error, "the journal could not be read")) << "the oldest went";
  store.fail_reads = false;
  const std::string big(11, 'x');
  store_one("echo", {big});
  EXPECT_EQ(io.dispatches.back().body, (frames{big})) << "too large to cache: read from the store";
}

TEST_F(TitanicServer, ASmallCommitAfterALargeOneLingersToFill) {
  auto s = test_settings();
  s.max_batch = 1000;
  s.commit_linger = 1ms;
  start(s);
  const auto large = [&] {
    request("echo", {"first"});
    for (int i = 0; i < 100; ++i) request("echo", {std::to_string(i)});
    complete();
    EXPECT_EQ(complete().changes.size(), 100u) << "gathered while the first was in flight";
  };
  large();
  request("echo", {"alone"});
  EXPECT_TRUE(store.pending.empty()) << "after 100, one change waits to be joined";
  EXPECT_EQ(machine->next_tick(), now + 1ms);
  advance(1ms);
  ASSERT_EQ(store.pending.size(), 1u) << "and goes by the clock";
  EXPECT_EQ(complete().changes.size(), 1u);

  large();
  for (int i = 0; i < 49; ++i) request("echo", {std::to_string(i)});
  EXPECT_TRUE(store.pending.empty());
  request("echo", {"half"});
  ASSERT_EQ(store.pending.size(), 1u) << "half the last commit: it goes";
  EXPECT_EQ(complete().changes.size(), 50u);
  request("echo", {"light load"});
  EXPECT_EQ(store.pending.size(), 1u) << "after a commit of under 64, none waits";
}

TEST_F(TitanicServer, AServiceWindowWidensWithRepliesAndHalvesOnTimeouts) {
  auto s = test_settings();
  s.max_in_flight = 6;
  s.service_window = 2;
  s.max_batch = 1000;
  start(s);
  request("slow", {"0"});
  for (int i = 1; i < 40; ++i) request("slow", {std::to_string(i)});
  complete();
  complete();
  present("slow");
  ASSERT_EQ(io.dispatches.size(), 2u) << "a service is first sent service_window at once";

  machine->on_dispatch_reply(io.dispatches[0].id, make({"r"}), now);
  EXPECT_EQ(io.dispatches.size(), 4u) << "one answered: room for it and one more";
  machine->on_dispatch_reply(io.dispatches[1].id, make({"r"}), now);
  machine->on_dispatch_reply(io.dispatches[2].id, make({"r"}), now);
  EXPECT_EQ(machine->stats().in_flight, 5u) << "window 5";
  machine->on_dispatch_reply(io.dispatches[3].id, make({"r"}), now);
  machine->on_dispatch_reply(io.dispatches[4].id, make({"r"}), now);
  EXPECT_EQ(machine->stats().in_flight, 6u) << "capped by max_in_flight";

  // Every dispatch in flight times out: the window halves at each, down to 1.
  advance(10s);
  EXPECT_EQ(machine->stats().dispatch_timeouts, 6u);
  EXPECT_EQ(machine->stats().in_flight, 0u);
  advance(2500ms);  // asked about again
  present("slow");
  EXPECT_EQ(machine->stats().in_flight, 1u) << "after the timeouts, one at a time";
}

TEST_F(TitanicServer, AtMostMaxInFlightAreDispatchedOldestFirst) {
  auto s = test_settings();
  s.max_in_flight = 2;
  s.service_window = 2;
  start(s);
  request("echo", {"0"});
  for (int i = 1; i <= 4; ++i) request("echo", {std::to_string(i)});
  complete();
  complete();
  present();
  ASSERT_EQ(io.dispatches.size(), 2u);
  EXPECT_EQ(io.dispatches[0].body, (frames{"0"}));
  EXPECT_EQ(io.dispatches[1].body, (frames{"1"}));
  tick();
  EXPECT_EQ(io.dispatches.size(), 2u);

  machine->on_dispatch_reply(io.dispatches[1].id, make({"r1"}), now);
  ASSERT_EQ(io.dispatches.size(), 3u) << "room freed by a reply is used at once";
  EXPECT_EQ(io.dispatches[2].body, (frames{"2"}));
  machine->on_dispatch_reply(io.dispatches[0].id, make({"r0"}), now);
  ASSERT_EQ(io.dispatches.size(), 4u);
  EXPECT_EQ(io.dispatches[3].body, (frames{"3"}));
  EXPECT_EQ(machine->stats().in_flight, 2u);
  complete();
  complete();
  EXPECT_EQ(io.dispatches.size(), 4u);
  machine->on_dispatch_reply(io.dispatches[2].id, make({"r2"}), now);
  ASSERT_EQ(io.dispatches.size(), 5u);
  EXPECT_EQ(io.dispatches[4].body, (frames{"4"}));
}

TEST_F(TitanicServer, DispatchTimeoutCountsAnAttemptAndRedispatchesOnlyAfterBackOff) {
  start();
  const uuid id = in_flight({"hello"});
  ASSERT_EQ(io.dispatches.size(), 1u);
  const std::uint64_t first = io.dispatches[0].id;

  // Nothing dispatches it again while it is in flight.
  now += 9999ms;
  tick();
  present();
  store_one("echo", {"other"});
  EXPECT_EQ(io.dispatches.size(), 2u);
  EXPECT_EQ(io.dispatches[1].body, (frames{"other"}));
  machine->on_dispatch_reply(io.dispatches[1].id, make({"o"}), now);
  complete();

  advance(1ms);  // the deadline, by the machine's clock
  EXPECT_EQ(machine->stats().dispatch_timeouts, 1u);
  EXPECT_EQ(io.dispatches.size(), 2u);
  ASSERT_EQ(store.pending.size(), 1u);
  ASSERT_EQ(store.pending.front().changes.size(), 1u);
  EXPECT_EQ(store.pending.front().changes[0].kind, change_kind::attempt);
  EXPECT_EQ(store.pending.front().changes[0].id, id);
  EXPECT_EQ(store.pending.front().changes[0].attempts, 1u);
  complete();
  EXPECT_EQ(store.open.begin()->second.attempts, 1u);
  EXPECT_EQ(machine->next_tick(), now + 1s) << "retry_base";

  machine->on_dispatch_expired(first, now);  // the io's own expiry, later: already counted
  EXPECT_EQ(machine->stats().dispatch_timeouts, 1u);
  EXPECT_TRUE(store.pending.empty());

  advance(999ms);
  EXPECT_EQ(io.dispatches.size(), 2u);
  const std::size_t queries = io.queries.size();
  advance(1ms);
  EXPECT_EQ(io.queries.size(), queries + 1) << "after a timeout the service is asked about again";
  present();
  ASSERT_EQ(io.dispatches.size(), 3u);
  EXPECT_EQ(io.dispatches[2].body, (frames{"hello"}));

  machine->on_dispatch_reply(first, make({"late"}), now);
  EXPECT_EQ(machine->stats().late_replies, 1u);
  EXPECT_TRUE(store.pending.empty());
  machine->on_dispatch_reply(io.dispatches[2].id, make({"world"}), now);
  complete();
  EXPECT_EQ(reply_of(id), (frames{"200", "world"}));
}

TEST_F(TitanicServer, MaxAttemptsTimeoutsGiveTheRequestUpWithAReason) {
  start();  // max_attempts 3, retry 1 s doubling
  const uuid id = in_flight({"hello"});
  for (std::uint32_t attempt = 1; attempt <= 2; ++attempt) {
    ASSERT_EQ(io.dispatches.size(), attempt);
    machine->on_dispatch_expired(io.dispatches.back().id, now);  // reported by the io
    const commit_batch b = complete();
    ASSERT_EQ(b.changes.size(), 1u);
    EXPECT_EQ(b.changes[0].kind, change_kind::attempt);
    EXPECT_EQ(b.changes[0].attempts, attempt);
    advance(std::chrono::milliseconds(1000 << (attempt - 1)));
    present();
  }
  ASSERT_EQ(io.dispatches.size(), 3u);
  machine->on_dispatch_expired(io.dispatches.back().id, now);
  ASSERT_EQ(store.pending.size(), 1u);
  const request_change& c = store.pending.front().changes.at(0);
  EXPECT_EQ(c.kind, change_kind::given_up);
  EXPECT_EQ(c.id, id);
  EXPECT_EQ(c.attempts, 3u);
  EXPECT_EQ(c.seq, store.open.begin()->first);
  const std::string reason = "service echo did not answer 3 dispatches";
  EXPECT_EQ(c.reason, reason);
  EXPECT_EQ(reply_of(id), status_only(status::pending)) << "not durable yet";

  complete();  // `c` is gone with its batch
  EXPECT_EQ(reply_of(id), status_only(status::error, reason));
  EXPECT_EQ(machine->stats().given_up, 1u);
  EXPECT_EQ(machine->stats().expired, 0u);
  EXPECT_EQ(machine->stats().dispatch_timeouts, 3u);
  EXPECT_EQ(machine->stats().open, 0u);
  advance(1h);
  EXPECT_EQ(io.dispatches.size(), 3u);
}

TEST_F(TitanicServer, ServiceWithoutWorkersBacksOffCountingNoAttempt) {
  auto s = test_settings();
  s.max_attempts = 1;  // a counted attempt would give it up
  start(s);            // retry 1 s doubling to 4 s, service answers trusted 2.5 s
  const uuid id = store_one("echo", {"hello"});
  ASSERT_EQ(io.queries.size(), 1u);
  absent();
  EXPECT_TRUE(io.dispatches.empty());
  EXPECT_EQ(machine->stats().no_workers, 1u);
  EXPECT_EQ(machine->next_tick(), now + 1s);

  advance(1s);  // the back-off passed: asked again
  EXPECT_EQ(io.queries.size(), 2u);
  absent();
  EXPECT_EQ(machine->stats().no_workers, 2u);
  EXPECT_EQ(machine->next_tick(), now + 2s) << "twice as long";

  advance(2s);
  EXPECT_EQ(io.queries.size(), 3u);
  absent();
  EXPECT_EQ(machine->stats().no_workers, 3u);
  EXPECT_EQ(machine->next_tick(), now + 4s);

  advance(4s);
  EXPECT_EQ(io.queries.size(), 4u);
  absent();
  EXPECT_EQ(machine->next_tick(), now + 4s) << "capped at retry_max";
  advance(4s);
  EXPECT_EQ(io.queries.size(), 5u);
  present();
  ASSERT_EQ(io.dispatches.size(), 1u);
  EXPECT_EQ(io.dispatches[0].body, (frames{"hello"}));
  EXPECT_TRUE(store.pending.empty()) << "no attempt was counted";
  EXPECT_EQ(machine->stats().given_up, 0u);
  EXPECT_EQ(reply_of(id), status_only(status::pending));
}

TEST_F(TitanicServer, AServiceWithoutWorkersCostsNothingPerWaitingRequest) {
  auto s = test_settings();
  s.max_batch = 5000;
  s.max_in_memory = 10'000;
  start(s);
  for (int i = 0; i < 3000; ++i) request("down", {std::to_string(i)});
  complete();  // the first request alone
  complete();  // the rest, gathered meanwhile
  ASSERT_EQ(io.queries.size(), 1u) << "one question for the service, not one per request";
  absent("down");
  EXPECT_EQ(machine->stats().no_workers, 1u);
  EXPECT_EQ(machine->stats().open, 3000u);
  // Another service's request is dispatched at once, past the 3,000 waiting ones.
  request("up", {"x"});
  complete();
  ASSERT_EQ(io.queries.size(), 2u);
  present("up");
  ASSERT_EQ(io.dispatches.size(), 1u);
  EXPECT_EQ(io.dispatches[0].body, (frames{"x"}));
}

TEST_F(TitanicServer, LongQueueAwaitingItsServiceAnswerDoesNotSpin) {
  auto s = test_settings();
  s.max_batch = 5000;
  s.max_in_flight = 2;
  s.max_in_memory = 10'000;
  start(s);
  request("echo", {"first"});
  for (int i = 0; i < 4200; ++i) request("echo", {std::to_string(i)});
  complete();
  complete();
  ASSERT_EQ(machine->stats().open, 4201u);
  ASSERT_EQ(io.queries.size(), 1u);
  EXPECT_EQ(machine->next_tick(), now + 2500ms) << "nothing to do before the answer or its timeout";
  tick();
  present();
  ASSERT_EQ(io.dispatches.size(), 2u);
  EXPECT_EQ(io.dispatches[0].body, (frames{"first"}));
  EXPECT_EQ(io.dispatches[1].body, (frames{"0"}));
}

TEST_F(TitanicServer, UnansweredServiceQueryIsAskedAgain) {
  start();
  store_one("echo", {"hello"});
  ASSERT_EQ(io.queries.size(), 1u);
  EXPECT_EQ(machine->next_tick(), now + 2500ms);
  advance(2500ms);
  EXPECT_EQ(io.queries.size(), 2u);
  present();
  EXPECT_EQ(io.dispatches.size(), 1u);
}

TEST_F(TitanicServer, RefusedServiceQueryIsTriedAgain) {
  start();
  io.refuse_query = true;
  store_one("echo", {"hello"});
  EXPECT_TRUE(io.queries.empty());
  EXPECT_EQ(machine->stats().service_queries, 1u);
  io.refuse_query = false;
  advance(2500ms);
  EXPECT_EQ(io.queries.size(), 1u);
  present();
  EXPECT_EQ(io.dispatches.size(), 1u);
}

TEST_F(TitanicServer, RefusedDispatchIsRetriedLaterCountingNoAttempt) {
  start();
  store_one("echo", {"a"});
  store_one("echo", {"b"});
  io.refuse_dispatch = true;
  present();
  EXPECT_EQ(io.refused, 1u) << "back pressure: the rest wait too";
  EXPECT_EQ(machine->stats().dispatch_failures, 1u);
  EXPECT_EQ(machine->next_tick(), now + 10ms);
  advance(10ms);
  EXPECT_EQ(io.refused, 2u);
  io.refuse_dispatch = false;
  advance(10ms);
  ASSERT_EQ(io.dispatches.size(), 2u);
  EXPECT_EQ(io.dispatches[0].body, (frames{"a"}));
  EXPECT_EQ(io.dispatches[1].body, (frames{"b"}));
  EXPECT_TRUE(store.pending.empty());
}

TEST_F(TitanicServer, UnreadableBodyIsDispatchedAfterTheStoreRecovers) {
  start();
  store_one("echo", {"a"});
  store.fail_reads = true;
  present();
  EXPECT_TRUE(io.dispatches.empty());
  EXPECT_EQ(machine->stats().store_errors, 1u);
  store.fail_reads = false;
  advance(1s);
  ASSERT_EQ(io.dispatches.size(), 1u);
  EXPECT_EQ(io.dispatches[0].body, (frames{"a"}));
}

// ---------------------------------------------------------------------------------------------
// TTL

TEST_F(TitanicServer, TtlPassingWhileWaitingGivesTheRequestUp) {
  auto s = test_settings();
  s.request_ttl = 5s;
  start(s);
  const uuid id = store_one("echo", {"hello"});
  absent();
  for (int i = 0; i < 4; ++i) advance(1s);
  EXPECT_TRUE(store.pending.empty());
  EXPECT_EQ(machine->next_tick(), now + 1s) << "the TTL";
  advance(1s);
  ASSERT_EQ(store.pending.size(), 1u);
  const std::string reason = "its time to live passed before the service replied";
  EXPECT_EQ(store.pending.front().changes.at(0).kind, change_kind::given_up);
  EXPECT_EQ(store.pending.front().changes.at(0).reason, reason);
  complete();
  EXPECT_EQ(reply_of(id), status_only(status::error, reason));
  EXPECT_EQ(machine->stats().given_up, 1u);
  EXPECT_EQ(machine->stats().expired, 1u);
  present();
  EXPECT_TRUE(io.dispatches.empty());
}

TEST_F(TitanicServer, TtlPassingWhileInFlightGivesTheRequestUpAndCancelsIt) {
  auto s = test_settings();
  s.request_ttl = 5s;
  s.dispatch_timeout = 60s;
  start(s);
  const uuid id = in_flight({"hello"});
  ASSERT_EQ(io.dispatches.size(), 1u);
  EXPECT_EQ(machine->next_tick(), now + 5s);
  advance(5s);
  EXPECT_EQ(io.cancels, (std::vector<std::uint64_t>{io.dispatches[0].id}));
  const commit_batch b = complete();
  ASSERT_EQ(b.changes.size(), 1u);
  EXPECT_EQ(b.changes[0].kind, change_kind::given_up);
  EXPECT_EQ(reply_of(id), status_only(status::error, "its time to live passed before the service replied"));
  machine->on_dispatch_reply(io.dispatches[0].id, make({"late"}), now);
  EXPECT_EQ(machine->stats().late_replies, 1u);
  EXPECT_EQ(machine->stats().expired, 1u);
  EXPECT_TRUE(store.pending.empty());
}

TEST_F(TitanicServer, ReplyBeforeTheTtlKeepsTheRequest) {
  auto s = test_settings();
  s.request_ttl = 5s;
  start(s);
  const uuid id = in_flight({"hello"});
  now += 4s;
  machine->on_dispatch_reply(io.dispatches.at(0).id, make({"world"}), now);
  advance(2s);  // the TTL passes while the reply is being stored
  const commit_batch b = complete();
  ASSERT_EQ(b.changes.size(), 1u);
  EXPECT_EQ(b.changes[0].kind, change_kind::replied);
  EXPECT_TRUE(store.pending.empty());
  EXPECT_EQ(reply_of(id), (frames{"200", "world"}));
  EXPECT_EQ(machine->stats().expired, 0u);
}

// ---------------------------------------------------------------------------------------------
// Commit failures

TEST_F(TitanicServer, FailedCommitAnswers500AndReloadsOpenRequests) {
  start();
  const uuid a = in_flight({"a"});
  request("echo", {"x"}, "X");  // its commit in flight while the next ones gather
  request("echo", {"b"}, "B");
  keyed("k", "echo", {"c"}, "C1");
  keyed("k", "echo", {"c"}, "C2");
  complete();
  ASSERT_EQ(io.answers.size(), 2u);
  ASSERT_EQ(io.dispatches.size(), 2u);
  EXPECT_EQ(io.dispatches[1].body, (frames{"x"}));

  complete(false);
  ASSERT_EQ(io.answers.size(), 5u);
  const frames failed = status_only(status::error, "the journal could not write the request");
  const frames clients = {"B", "C1", "C2"};
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(io.answers[i + 2].to.client, clients[i]);
    EXPECT_EQ(io.answers[i + 2].body, failed);
  }
  EXPECT_EQ(machine->stats().commit_failures, 1u);
  std::vector<std::uint64_t> cancels = io.cancels;
  std::sort(cancels.begin(), cancels.end());
  EXPECT_EQ(cancels, (std::vector<std::uint64_t>{1, 2})) << "what is in memory is not trusted";
  EXPECT_EQ(machine->stats().in_flight, 0u);
  EXPECT_LE(machine->next_tick(), now) << "the open requests are read back at once";

  const std::size_t reads = store.reads.size();
  tick();
  ASSERT_GT(store.reads.size(), reads);
  EXPECT_EQ(store.reads[reads].first, 0u) << "read from the start";
  ASSERT_EQ(io.dispatches.size(), 4u);
  EXPECT_EQ(io.dispatches[2].body, (frames{"a"}));
  EXPECT_EQ(io.dispatches[3].body, (frames{"x"}));
  EXPECT_TRUE(store.pending.empty());

  machine->on_dispatch_reply(1, make({"late"}), now);
  EXPECT_EQ(machine->stats().late_replies, 1u);
  machine->on_dispatch_reply(io.dispatches[2].id, make({"ra"}), now);
  complete();
  EXPECT_EQ(reply_of(a), (frames{"200", "ra"}));

  keyed("k", "echo", {"c"}, "C3");  // the key was not kept: stored now
  ASSERT_EQ(store.pending.size(), 1u);
  EXPECT_EQ(store.pending.front().changes.at(0).key, "k");
  complete();
  EXPECT_EQ(io.answers.back().to.client, "C3");
  EXPECT_EQ(io.answers.back().body.at(0), "200");
}

TEST_F(TitanicServer, FailedCloseIsAnswered500AndTheRequestDispatchedAgain) {
  start();
  const uuid a = in_flight({"a"});
  close(a, "closer");
  ASSERT_EQ(io.cancels.size(), 1u);
  complete(false);
  ASSERT_EQ(io.answers.size(), 2u);
  EXPECT_EQ(io.answers[1].to.kind, service_kind::close);
  EXPECT_EQ(io.answers[1].body, status_only(status::error, "the journal could not write the request"));
  tick();
  ASSERT_EQ(io.dispatches.size(), 2u);
  EXPECT_EQ(io.dispatches[1].body, (frames{"a"}));
  EXPECT_EQ(reply_of(a), status_only(status::pending));
}

TEST_F(TitanicServer, TtlSurvivesAReloadAfterAFailedCommit) {
  auto s = test_settings();
  s.request_ttl = 5s;
  start(s);
  const uuid a = in_flight({"a"});
  request("echo", {"b"});
  complete(false);
  tick();
  ASSERT_EQ(io.dispatches.size(), 2u);
  advance(5s);
  ASSERT_EQ(store.pending.size(), 1u) << "the reloaded request keeps its TTL";
  EXPECT_EQ(store.pending.front().changes.at(0).kind, change_kind::given_up);
  complete();
  EXPECT_EQ(reply_of(a), status_only(status::error, "its time to live passed before the service replied"));
}

TEST_F(TitanicServer, FailedOpenReadIsTriedAgainLater) {
  store.seed("echo", {"a"});
  store.fail_reads = true;
  start();
  EXPECT_EQ(machine->stats().store_errors, 2u) << "the open requests and the retention sweep";
  EXPECT_EQ(machine->next_tick(), now + 1s);
  store.fail_reads = false;
  advance(1s);
  EXPECT_EQ(machine->stats().open, 1u);
  present();
  EXPECT_EQ(io.dispatches.size(), 1u);
}

// ---------------------------------------------------------------------------------------------
// Restart and memory bounds

TEST_F(TitanicServer, RestartReadsStoredRequestsInPagesAndDispatchesThemOldestFirst) {
  std::vector<uuid> ids;
  for (int i = 0; i < 7; ++i) ids.push_back(store.seed("echo", {"r" + std::to_string(i)}, i == 0 ? 2u : 0u));
  auto s = test_settings();
  s.max_in_memory = 4;
  s.page = 2;
  start(s);
  using reads = std::vector<std::pair<std::uint64_t, std::size_t>>;
  EXPECT_EQ(store.reads, (reads{{0, 2}, {2, 2}}));
  EXPECT_EQ(machine->stats().open, 4u);
  EXPECT_EQ(machine->stats().waiting_in_journal, 1u);
  EXPECT_EQ(reply_of(ids[6]), status_only(status::pending)) << "open in the journal";
  present();
  ASSERT_EQ(io.dispatches.size(), 4u);
  for (std::size_t i = 0; i < 4; ++i) EXPECT_EQ(io.dispatches[i].body, (frames{"r" + std::to_string(i)}));

  // r0 kept its attempts: one more timeout gives it up.
  machine->on_dispatch_expired(io.dispatches[0].id, now);
  complete();
  EXPECT_TRUE(store.given_up.contains(ids[0]));
  EXPECT_EQ(machine->stats().open, 3u);
  EXPECT_EQ(store.reads.size(), 2u);
  machine->on_dispatch_reply(io.dispatches[1].id, make({"x1"}), now);
  complete();
  EXPECT_EQ(machine->stats().open, 2u);
  EXPECT_LE(machine->next_tick(), now) << "room: the journal is read";
  tick();
  EXPECT_EQ(store.reads.back(), (std::pair<std::uint64_t, std::size_t>{4, 2}));
  EXPECT_EQ(machine->stats().open, 4u);
  ASSERT_EQ(io.dispatches.size(), 6u);
  EXPECT_EQ(io.dispatches[4].body, (frames{"r4"}));
  EXPECT_EQ(io.dispatches[5].body, (frames{"r5"}));

  for (std::size_t i = 2; i < 6; ++i) machine->on_dispatch_reply(io.dispatches[i].id, make({"x"}), now);
  while (!store.pending.empty()) complete();
  tick();
  ASSERT_EQ(io.dispatches.size(), 7u);
  EXPECT_EQ(io.dispatches[6].body, (frames{"r6"}));
  EXPECT_EQ(machine->stats().waiting_in_journal, 0u);
  machine->on_dispatch_reply(io.dispatches[6].id, make({"x6"}), now);
  complete();
  tick();
  EXPECT_EQ(machine->stats().open, 0u);
  EXPECT_EQ(reply_of(ids[6]), (frames{"200", "x6"}));
}

TEST_F(TitanicServer, RequestsStoredBeyondMemoryAreReadAsRoomFrees) {
  auto s = test_settings();
  s.max_in_memory = 2;
  s.page = 1;
  s.max_in_flight = 1;
  start(s);
  in_flight({"a"});
  store_one("echo", {"b"});
  const uuid c = store_one("echo", {"c"});
  EXPECT_EQ(machine->stats().open, 2u);
  EXPECT_EQ(machine->stats().waiting_in_journal, 1u);
  EXPECT_EQ(reply_of(c), status_only(status::pending));
  ASSERT_EQ(io.dispatches.size(), 1u);

  machine->on_dispatch_reply(io.dispatches[0].id, make({"ra"}), now);
  ASSERT_EQ(io.dispatches.size(), 2u);
  EXPECT_EQ(io.dispatches[1].body, (frames{"b"}));
  complete();
  tick();
  EXPECT_EQ(machine->stats().open, 2u);
  EXPECT_EQ(machine->stats().waiting_in_journal, 0u);
  machine->on_dispatch_reply(io.dispatches[1].id, make({"rb"}), now);
  ASSERT_EQ(io.dispatches.size(), 3u);
  EXPECT_EQ(io.dispatches[2].body, (frames{"c"}));
  machine->on_dispatch_reply(io.dispatches[2].id, make({"rc"}), now);
  while (!store.pending.empty()) complete();
  tick();
  EXPECT_EQ(reply_of(c), (frames{"200", "rc"}));
}

// ---------------------------------------------------------------------------------------------
// Retention

TEST_F(TitanicServer, RetentionSweepRemovesDueRequestsAtItsInterval) {
  start();
  const std::size_t sweeps = store.sweeps;
  const uuid a = in_flight({"a"});
  machine->on_dispatch_reply(io.dispatches.at(0).id, make({"ra"}), now);
  complete();
  const uuid gone = uuid::random();
  store.due = {{a, "ix-a"}, {gone, "ix-gone"}};

  const time_point sweep_at = time_point{} + 1000s + 60s;
  now = sweep_at - 1ms;
  tick();
  EXPECT_EQ(store.sweeps, sweeps);
  EXPECT_TRUE(store.pending.empty());
  advance(1ms);
  EXPECT_EQ(store.sweeps, sweeps + 1);
  ASSERT_EQ(store.pending.size(), 1u);
  const auto& ch = store.pending.front().changes;
  ASSERT_EQ(ch.size(), 2u);
  EXPECT_EQ(ch[0].kind, change_kind::removed);
  EXPECT_EQ(ch[0].id, a);
  EXPECT_EQ(ch[0].index, "ix-a");
  EXPECT_EQ(ch[1].id, gone);
  EXPECT_EQ(ch[1].index, "ix-gone");
  EXPECT_EQ(machine->stats().removed, 0u);
  tick();
  EXPECT_EQ(store.sweeps, sweeps + 1) << "no sweep while its removals are being written";
  complete();
  EXPECT_EQ(machine->stats().removed, 2u);
  EXPECT_EQ(reply_of(a), status_only(status::unknown));
  EXPECT_EQ(machine->next_tick(), sweep_at + 60s);
}

TEST_F(TitanicServer, RetentionSkipsOpenRequestsAndTakesAFullPageAgainOnceDurable) {
  auto s = test_settings();
  s.page = 2;
  start(s);
  const uuid open_one = store_one("echo", {"a"});
  store.due = {{open_one, "ix-open"}, {uuid::random(), "ix-1"}};
  const std::size_t sweeps = store.sweeps;
  advance(60s);
  EXPECT_EQ(store.sweeps, sweeps + 1);
  ASSERT_EQ(store.pending.size(), 1u);
  ASSERT_EQ(store.pending.front().changes.size(), 1u) << "an open request is not removed";
  EXPECT_EQ(store.pending.front().changes[0].index, "ix-1");
  complete();
  EXPECT_LE(machine->next_tick(), now) << "a full page: more may be due";
  tick();
  EXPECT_EQ(store.sweeps, sweeps + 2);
  EXPECT_TRUE(store.pending.empty());
  EXPECT_EQ(machine->stats().removed, 1u);
}

TEST_F(TitanicServer, RetentionPageOfOpenRequestsOnlyWaitsAnInterval) {
  auto s = test_settings();
  s.page = 1;
  start(s);
  const uuid open_one = store_one("echo", {"a"});
  store.due = {{open_one, "ix-open"}, {uuid::random(), "ix-1"}};
  const std::size_t sweeps = store.sweeps;
  advance(60s);  // lists only the open request: nothing to remove, nothing to spin on
  EXPECT_EQ(store.sweeps, sweeps + 1);
  EXPECT_TRUE(store.pending.empty());
  EXPECT_EQ(machine->next_tick(), now + 2500ms) << "the service query, then the next sweep";
}

TEST_F(TitanicServer, SweepGoesAheadWhileOtherCommitsAreInFlight) {
  start();
  const std::size_t sweeps = store.sweeps;
  now += 60s;
  request("echo", {"a"});  // its commit is in flight when the sweep falls due
  tick();
  EXPECT_EQ(store.sweeps, sweeps + 1) << "retention is not held up by other traffic";
  EXPECT_GT(machine->next_tick(), now);
  complete();
  EXPECT_GT(machine->next_tick(), now);
}

// ---------------------------------------------------------------------------------------------
// Ticks and settings

TEST_F(TitanicServer, IdleMachineWakesOnlyForTheRetentionSweep) {
  start();
  EXPECT_EQ(machine->next_tick(), now + 60s);
  const uuid a = in_flight({"a"});
  machine->on_dispatch_reply(io.dispatches.at(0).id, make({"r"}), now);
  complete();
  close(a);
  complete();
  EXPECT_EQ(machine->next_tick(), time_point{} + 1000s + 60s) << "nothing but the sweep is scheduled";
  advance(60s);
  EXPECT_EQ(machine->next_tick(), now + 60s);
}

TEST_F(TitanicServer, SettingsOutOfRangeAreRefused) {
  const auto refused = [&](auto change) {
    server_settings s = test_settings();
    change(s);
    testing::expect_error(errc::invalid_argument, [&] { server_machine m(s, io, store); });
  };
  refused([](server_settings& s) { s.max_in_flight = 0; });
  refused([](server_settings& s) { s.service_window = 0; });
  refused([](server_settings& s) { s.max_in_flight = 1'000'001; });
  refused([](server_settings& s) { s.dispatch_timeout = 0ms; });
  refused([](server_settings& s) { s.dispatch_timeout = 25h; });
  refused([](server_settings& s) { s.max_attempts = 0; });
  refused([](server_settings& s) { s.retry_base = 0ms; });
  refused([](server_settings& s) { s.retry_max = s.retry_base - 1ms; });
  refused([](server_settings& s) { s.retry_max = 25h; });
  refused([](server_settings& s) { s.request_ttl = -1ms; });
  refused([](server_settings& s) { s.service_check_interval = 0ms; });
  refused([](server_settings& s) { s.sweep_interval = 0ms; });
  refused([](server_settings& s) { s.max_in_memory = 0; });
  refused([](server_settings& s) { s.page = 0; });
  refused([](server_settings& s) { s.max_batch = 0; });
  EXPECT_NO_THROW({ server_machine m(test_settings(), io, store); });
  EXPECT_NO_THROW({ server_machine m(server_settings{}, io, store); });
}

}  // namespace
}  // namespace fabric::tsp
