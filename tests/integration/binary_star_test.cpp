// Tests fabric::binary_star over real sockets on loopback: a pair settles, fails over when its
// active node dies and settles again when it returns; with a witness, the active node writes on
// when either other voter dies; and partitions made by the fault injector (between the nodes,
// and around the active node) never leave two writable nodes. Everything runs on one reactor,
// driven from the test's thread, so the test reads both nodes at the same moment.
#include "support/fault_proxy.hpp"
#include "support/support.hpp"

#include <fabric/binary_star.hpp>
#include <fabric/pub_sub.hpp>
#include <fabric/reactor.hpp>

#include <gtest/gtest.h>


#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace {

using namespace std::chrono_literals;
using fabric::context;
using fabric::reactor;
using fabric::binary_star::node;
using fabric::binary_star::node_options;
using fabric::binary_star::role;
using fabric::binary_star::state;
using fabric::binary_star::witness;
using fabric::testing::fault_proxy;

constexpr auto H = 50ms;

std::uint16_t port_of(const std::string& endpoint) {
  return static_cast<std::uint16_t>(std::stoi(endpoint.substr(endpoint.rfind(':') + 1)));
}

// Runs `r` until `done()` holds, at most `bound`.
template <class Pred>
bool spin(reactor& r, Pred&& done, std::chrono::milliseconds bound = 5s) {
  const auto deadline = std::chrono::steady_clock::now() + bound;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    (void)r.run_once(5ms);
  }
  return true;
}

// Runs `r` for `d`, calling `each()` after every wake-up.
template <class Fn>
void run_for(reactor& r, std::chrono::milliseconds d, Fn&& each) {
  const auto end = std::chrono::steady_clock::now() + d;
  while (std::chrono::steady_clock::now() < end) {
    (void)r.run_once(5ms);
    each();
  }
}

node_options options(role which, const std::string& bind, const std::string& peer, const std::string& w = {}) {
  return {.role = which, .bind = bind, .peer = peer, .witness = w, .heartbeat = H};
}

class BinaryStar : public ::testing::Test {
 protected:
  // Two nodes on loopback, each reaching the other directly.
  void make_pair(const std::string& witness_endpoint = {}) {
    port_a = fabric::testing::free_tcp_port();
    port_b = fabric::testing::free_tcp_port();
    a = make(role::primary, witness_endpoint);
    b = make(role::backup, witness_endpoint);
  }
  std::unique_ptr<node> make(role which, const std::string& witness_endpoint) {
    const bool primary = which == role::primary;
    auto n = std::make_unique<node>(
        ctx, options(which, endpoint(primary ? port_a : port_b), endpoint(primary ? port_b : port_a),
                     witness_endpoint));
    n->attach(r);
    return n;
  }
  void kill(std::unique_ptr<node>& n) {
    n->detach(r);
    n.reset();
  }
  static std::string endpoint(std::uint16_t port) { return "tcp://127.0.0.1:" + std::to_string(port); }

  context ctx;
  reactor r;
  std::uint16_t port_a = 0;
  std::uint16_t port_b = 0;
  std::unique_ptr<node> a;
  std::unique_ptr<node> b;
};

TEST_F(BinaryStar, APairSettlesFailsOverAndSettlesAgain) {
  make_pair();
  ASSERT_TRUE(spin(r, [&] { return a->current() == state::active && b->current() == state::passive; }));
  EXPECT_TRUE(a->admit());
  EXPECT_FALSE(b->admit());
  EXPECT_EQ(a->term(), 1U);

  kill(a);
  // Clients retry at the backup; it takes over once the primary has expired.
  const auto died = std::chrono::steady_clock::now();
  ASSERT_TRUE(spin(r, [&] { return b->admit(); }));
  const auto failover = std::chrono::steady_clock::now() - died;
  EXPECT_GE(failover, 2 * H - 10ms);  // never before the expiry (a heartbeat may be in flight)
  EXPECT_EQ(b->current(), state::active);
  EXPECT_EQ(b->term(), 2U);

  // The primary returns and stands by.
  a = make(role::primary, {});
  ASSERT_TRUE(spin(r, [&] { return a->current() == state::passive; }));
  run_for(r, 5 * H, [] {});
  EXPECT_EQ(b->current(), state::active);
  EXPECT_EQ(a->current(), state::passive);
  EXPECT_EQ(a->term(), 2U);
  const auto s = b->stats();
  EXPECT_EQ(s.takeovers, 1U);
  EXPECT_TRUE(s.peer_alive);
  EXPECT_NE(fabric::binary_star::to_json(s).find("\"state\":\"active\""), std::string::npos);
}

TEST_F(BinaryStar, StateChangesReachTheHandler) {
  port_a = fabric::testing::free_tcp_port();
  port_b = fabric::testing::free_tcp_port();
  std::vector<std::pair<state, state>> seen;
  a = std::make_unique<node>(ctx, options(role::primary, endpoint(port_a), endpoint(port_b)));
  a->on_state_change([&](state from, state to, std::uint64_t) { seen.emplace_back(from, to); });
  a->attach(r);
  b = make(role::backup, {});
  ASSERT_TRUE(spin(r, [&] { return !seen.empty(); }));
  EXPECT_EQ(seen.front(), std::make_pair(state::primary, state::active));
}

TEST_F(BinaryStar, TwoPrimariesServeNothing) {
  port_a = fabric::testing::free_tcp_port();
  port_b = fabric::testing::free_tcp_port();
  a = std::make_unique<node>(ctx, options(role::primary, endpoint(port_a), endpoint(port_b)));
  b = std::make_unique<node>(ctx, options(role::primary, endpoint(port_b), endpoint(port_a)));
  a->attach(r);
  b->attach(r);
  ASSERT_TRUE(spin(r, [&] { return a->stats().misconfigured > 0 && b->stats().misconfigured > 0; }));
  run_for(r, 6 * H, [&] {
    EXPECT_FALSE(a->admit());
    EXPECT_FALSE(b->admit());
  });
}

TEST_F(BinaryStar, GarbageFromThePeerIsCountedAndIgnored) {
  fabric::publisher fake_peer(ctx);
  const std::string peer = fake_peer.bind("tcp://127.0.0.1:*");
  a = std::make_unique<node>(ctx, options(role::primary, "tcp://127.0.0.1:*", peer));
  a->attach(r);
  // Published until the subscription is up: only messages starting "FBS01" pass its filter.
  ASSERT_TRUE(spin(r, [&] {
    (void)fake_peer.try_send(fabric::make_message("FBS01", "junk"));
    (void)fake_peer.try_send(fabric::make_message("other", "junk"));
    return a->stats().malformed > 0;
  }));
  EXPECT_EQ(a->current(), state::primary);
  EXPECT_EQ(a->stats().states_heard, 0U);
}

TEST_F(BinaryStar, WithAWitnessTheActiveNodeWritesOnWhenEitherOtherVoterDies) {
  auto w = std::make_unique<witness>(ctx, fabric::binary_star::witness_options{.bind = "tcp://127.0.0.1:*",
                                                                               .max_lease = 3 * H / 2});
  w->attach(r);
  make_pair(w->endpoint());
  ASSERT_TRUE(spin(r, [&] { return a->writable() && w->stats().holder == 1; }));
  kill(b);
  run_for(r, 10 * H, [&] { ASSERT_TRUE(a->writable()); });
  b = make(role::backup, w->endpoint());
  ASSERT_TRUE(spin(r, [&] { return b->current() == state::passive && a->stats().peer_alive; }));
  w->detach(r);
  w.reset();
  run_for(r, 10 * H, [&] { ASSERT_TRUE(a->writable()); });
  EXPECT_FALSE(b->writable());
}

// Both nodes and the witness, every link through a fault proxy.
class BinaryStarPartition : public BinaryStar {
 protected:
  void SetUp() override {
    w = std::make_unique<witness>(ctx, fabric::binary_star::witness_options{.bind = "tcp://127.0.0.1:*",
                                                                            .max_lease = 3 * H / 2});
    w->attach(r);
    port_a = fabric::testing::free_tcp_port();
    port_b = fabric::testing::free_tcp_port();
    to_a = std::make_unique<fault_proxy>("127.0.0.1", port_a);  // B's SUB -> A's PUB
    to_b = std::make_unique<fault_proxy>("127.0.0.1", port_b);  // A's SUB -> B's PUB
    a_to_w = std::make_unique<fault_proxy>("127.0.0.1", port_of(w->endpoint()));
    b_to_w = std::make_unique<fault_proxy>("127.0.0.1", port_of(w->endpoint()));
    a = std::make_unique<node>(ctx, options(role::primary, endpoint(port_a), to_b->endpoint(), a_to_w->endpoint()));
    b = std::make_unique<node>(ctx, options(role::backup, endpoint(port_b), to_a->endpoint(), b_to_w->endpoint()));
    a->attach(r);
    b->attach(r);
  }
  static void partition(fault_proxy& p, bool on) {
    p.refuse(on);
    if (on) p.cut();
  }
  // Clients ask both nodes at every wake-up; never may both accept.
  void clients_at_both(std::chrono::milliseconds d) {
    run_for(r, d, [&] {
      (void)a->admit();
      (void)b->admit();
      ASSERT_FALSE(a->writable() && b->writable());
    });
  }

  std::unique_ptr<witness> w;
  std::unique_ptr<fault_proxy> to_a, to_b, a_to_w, b_to_w;
};

TEST_F(BinaryStarPartition, ACutBetweenTheNodesLeavesTheActiveOneWriting) {
  ASSERT_TRUE(spin(r, [&] { return a->writable() && b->current() == state::passive; }));
  partition(*to_a, true);
  partition(*to_b, true);
  clients_at_both(20 * H);
  EXPECT_TRUE(a->writable());
  EXPECT_EQ(b->current(), state::passive);
  EXPECT_GT(b->stats().denials, 0U);
  partition(*to_a, false);
  partition(*to_b, false);
  ASSERT_TRUE(spin(r, [&] { return b->stats().peer_alive; }));
  clients_at_both(4 * H);
  EXPECT_EQ(a->current(), state::active);
}

TEST_F(BinaryStarPartition, AnActiveNodeCutOffFromBothStopsBeforeThePassiveStarts) {
  ASSERT_TRUE(spin(r, [&] { return a->writable() && b->current() == state::passive; }));
  partition(*to_a, true);
  partition(*to_b, true);
  partition(*a_to_w, true);
  // B takes over once A's leases have ended; A, cut off, has stopped writing by then.
  const auto cut = std::chrono::steady_clock::now();
  ASSERT_TRUE(spin(r, [&] {
    (void)a->admit();
    (void)b->admit();
    EXPECT_FALSE(a->writable() && b->writable());
    return b->writable();
  }));
  const auto takeover = std::chrono::steady_clock::now() - cut;
  EXPECT_FALSE(a->writable());
  EXPECT_GE(takeover, 2 * H - 10ms);
  clients_at_both(10 * H);
  // The cut heals: A hears B active in a later term and stands by.
  partition(*to_a, false);
  partition(*to_b, false);
  partition(*a_to_w, false);
  ASSERT_TRUE(spin(r, [&] { return a->current() == state::passive; }));
  EXPECT_TRUE(b->writable());
}

}  // namespace
