// Tests FBS/1 (docs/ha.md): the codec's exact frames and every fault, then the node's machine
// through every transition of section 5, split brain (section 7), flapping, and the witness's
// leases (section 6.2), with a fake clock and a simulated network whose links can be cut. A
// randomised run of kills, restarts and cuts checks the guarantee of section 6.2: with a witness,
// never two writable nodes; the same checker, run without a witness, must find them.
#include "reliability/bstar.hpp"
#include "reliability/bstar_machine.hpp"

#include <fabric/error.hpp>

#include "support/raw_frames.hpp"
#include "support/support.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <random>
#include <string>
#include <tuple>
#include <utility>
#include <variant>
#include <vector>

namespace fabric::bstar {
namespace {

using namespace std::chrono_literals;
using frames = std::vector<std::string>;
using detail::port;
using detail::time_point;
using testing::u32;
using testing::u64;

std::string octet(std::uint8_t v) { return std::string(1, static_cast<char>(v)); }

// --- codec ---

TEST(Bstar, BuildersWriteTheFramesOfTheSpec) {
  EXPECT_EQ(testing::to_strings(build(state_fields{.from = role::backup,
                                                   .state = status::passive,
                                                   .term = 7,
                                                   .seq = 9,
                                                   .echo = 4,
                                                   .expiry_ms = 1000})),
            (frames{"FBS01", octet(0x01), octet(2), octet(4), u64(7), u64(9), u64(4), u32(1000)}));
  EXPECT_EQ(testing::to_strings(build(lease_fields{.from = role::primary, .term = 3, .seq = 5, .duration_ms = 250})),
            (frames{"FBS01", octet(0x11), octet(1), u64(3), u64(5), u32(250)}));
  EXPECT_EQ(testing::to_strings(build(grant_fields{.term = 3, .seq = 5, .duration_ms = 250})),
            (frames{"FBS01", octet(0x21), u64(3), u64(5), u32(250)}));
  EXPECT_EQ(testing::to_strings(build(deny_fields{.seq = 5, .holder = 2, .holder_term = 8})),
            (frames{"FBS01", octet(0x22), u64(5), octet(2), u64(8)}));
}

TEST(Bstar, EveryCommandRoundTrips) {
  const state_fields s{.from = role::primary, .state = status::active, .term = 1, .seq = 2, .echo = 0, .expiry_ms = 1};
  const lease_fields l{.from = role::backup, .term = 0, .seq = 1, .duration_ms = max_interval_ms};
  const grant_fields g{.term = ~0ULL, .seq = ~0ULL, .duration_ms = 17};
  const deny_fields d{.seq = 3, .holder = 0, .holder_term = 0};
  EXPECT_EQ(std::get<state_fields>(parse(build(s))), s);
  EXPECT_EQ(std::get<lease_fields>(parse(build(l))), l);
  EXPECT_EQ(std::get<grant_fields>(parse(build(g))), g);
  EXPECT_EQ(std::get<deny_fields>(parse(build(d))), d);
  // After a ROUTER's routing id.
  message routed = build(l);
  routed.push_front(std::string_view("id"));
  EXPECT_EQ(std::get<lease_fields>(parse(routed, 1)), l);
}

TEST(Bstar, EachMalformedMessageNamesItsFault) {
  const frames state{"FBS01", octet(1), octet(1), octet(3), u64(1), u64(1), u64(0), u32(1000)};
  struct row {
    frames f;
    fault want;
  };
  auto with = [&](std::size_t i, std::string v) {
    frames f = state;
    f[i] = std::move(v);
    return f;
  };
  frames longer = state;
  longer.push_back("x");
  frames shorter = state;
  shorter.pop_back();
  const std::vector<row> rows = {
      {{}, fault::no_header},
      {{"FBS02", octet(1)}, fault::unknown_header},
      {{"FBS01"}, fault::bad_command},
      {{"FBS01", "xx"}, fault::bad_command},
      {{"FBS01", octet(0x55)}, fault::bad_command},
      {shorter, fault::truncated},
      {longer, fault::extra_frames},
      {with(2, "12"), fault::bad_width},
      {with(2, octet(3)), fault::bad_role},
      {with(2, octet(0)), fault::bad_role},
      {with(3, octet(5)), fault::bad_status},
      {with(3, octet(0)), fault::bad_status},
      {with(4, u32(1)), fault::bad_width},
      {with(5, u64(0)), fault::zero_sequence},
      {with(7, u32(0)), fault::bad_interval},
      {with(7, u32(max_interval_ms + 1)), fault::bad_interval},
      {{"FBS01", octet(0x11), octet(1), u64(1), u64(1), u32(0)}, fault::bad_interval},
      {{"FBS01", octet(0x21), u64(1), u64(0), u32(10)}, fault::zero_sequence},
      {{"FBS01", octet(0x22), u64(1), octet(3), u64(0)}, fault::bad_role},
      {{"FBS01", octet(0x22), u64(1), octet(1)}, fault::truncated},
  };
  for (const row& r : rows) {
    const parsed p = parse(testing::message_of(r.f));
    ASSERT_TRUE(std::holds_alternative<fault>(p)) << describe(r.want);
    EXPECT_EQ(std::get<fault>(p), r.want) << describe(std::get<fault>(p)) << " for " << describe(r.want);
  }
}

TEST(Bstar, BuildersRefuseWhatTheGrammarForbids) {
  EXPECT_THROW(build(state_fields{.seq = 0}), fabric::error);
  EXPECT_THROW(build(state_fields{.expiry_ms = 0}), fabric::error);
  EXPECT_THROW(build(state_fields{.state = static_cast<status>(9)}), fabric::error);
  EXPECT_THROW(build(lease_fields{.from = static_cast<role>(0)}), fabric::error);
  EXPECT_THROW(build(grant_fields{.duration_ms = max_interval_ms + 1}), fabric::error);
  EXPECT_THROW(build(deny_fields{.holder = 3}), fabric::error);
}

TEST(Bstar, RandomBytesNeverCrashAndParseOnlyWhatBuildersWrite) {
  std::mt19937_64 rng(7);
  const frames base{"FBS01", octet(1), octet(1), octet(3), u64(1), u64(1), u64(0), u32(1000)};
  for (int i = 0; i < 20000; ++i) {
    frames f = base;
    const std::size_t keep = rng() % (f.size() + 2);
    f.resize(std::min(keep, f.size() + 1));
    for (std::string& s : f) {
      if (rng() % 4 == 0 && !s.empty()) s[rng() % s.size()] = static_cast<char>(rng());
    }
    const parsed p = parse(testing::message_of(f));
    if (const auto* s = std::get_if<state_fields>(&p)) {
      EXPECT_EQ(testing::to_strings(build(*s)), f);
    }
  }
}

// --- the machines, on a simulated network ---

// A node's sink: what it publishes, the leases it asks for, and its changes of state.
struct node_out final : detail::bstar_sink {
  std::vector<message> states;
  std::vector<message> leases;
  std::vector<std::tuple<status, status, std::uint64_t>> changes;
  bool fail_sends = false;
  result<void> send(port to, message&& m) override {
    if (fail_sends) return errc::would_block;
    (to == port::main ? states : leases).push_back(std::move(m));
    return {};
  }
  void on_state(status from, status to, std::uint64_t term) override { changes.emplace_back(from, to, term); }
};

struct witness_out final : detail::machine_sink {
  std::vector<message> sent;
  result<void> send(port, message&& m) override {
    sent.push_back(std::move(m));
    return {};
  }
};

// Two nodes and an optional witness, on one fake clock. Messages sent during a step arrive at the
// start of the next (one step of latency) unless their link is cut; a dead process neither sends
// nor hears.
class pair_sim {
 public:
  static constexpr auto H = 100ms;

  explicit pair_sim(bool with_witness, time_point start = time_point{} + 1h) : now(start), witness_(with_witness) {
    restart(0);
    restart(1);
    if (with_witness) restart_witness();
  }

  detail::bstar_settings settings(int i) const {
    return {.role = i == 0 ? role::primary : role::backup,
            .heartbeat = i == 0 ? H : backup_heartbeat,
            .expiry = 2 * H,
            .witness = witness_};
  }
  // Kills node `i` (its sockets' queues go with it).
  void kill(int i) {
    node[i].reset();
    out[i] = node_out{};
  }
  // Starts node `i` afresh, with `term` (0 as the broker, or what a journal kept).
  void restart(int i, std::uint64_t term = 0) {
    out[i] = node_out{};
    node[i].emplace(settings(i), out[i], now, term);
  }
  void kill_witness() {
    witness.reset();
    wout = witness_out{};
  }
  void restart_witness() {
    wout = witness_out{};
    witness.emplace(detail::bstar_witness_settings{.max_lease = H * 3 / 2}, wout, now);
  }

  // Moves time by `d`, delivering what was sent before and ticking every live process.
  void step(std::chrono::milliseconds d = 10ms) {
    now += d;
    deliver();
    for (auto& n : node) {
      if (n) n->on_tick(now);
    }
  }
  void run(std::chrono::milliseconds total, std::chrono::milliseconds d = 10ms) {
    for (auto t = 0ms; t < total; t += d) step(d);
  }
  // A client request at node `i`.
  bool request(int i) { return node[i] && node[i]->admit(now); }
  bool writable(int i) const { return node[i] && node[i]->writable(now); }
  // Steps until node `i` hears its peer's next `state`, so that a test counts an expiry from it.
  void until_heard(int i) {
    const auto heard = node[i]->stats().states_heard;
    for (int n = 0; n < 1000 && node[i]->stats().states_heard == heard; ++n) step();
  }
  status state(int i) const { return node[i]->state(); }

  time_point now;
  std::optional<detail::bstar_node> node[2];
  node_out out[2];
  std::optional<detail::bstar_witness> witness;
  witness_out wout;
  std::chrono::milliseconds backup_heartbeat = H;
  bool peer_link = true;           // between the nodes, both ways
  bool witness_link[2] = {true, true};

 private:
  void deliver() {
    // Take everything first: a delivery makes new sends, which wait for the next step.
    std::vector<message> states[2], leases[2];
    for (int i = 0; i < 2; ++i) {
      states[i] = std::move(out[i].states);
      leases[i] = std::move(out[i].leases);
      out[i].states.clear();
      out[i].leases.clear();
    }
    std::vector<message> answers = std::move(wout.sent);
    wout.sent.clear();
    for (int i = 0; i < 2; ++i) {
      const int peer = 1 - i;
      for (message& m : states[i]) {
        if (peer_link && node[peer]) node[peer]->on_message(port::main, std::move(m), now);
      }
      for (message& m : leases[i]) {
        if (!witness || !witness_link[i]) continue;
        m.push_front(std::string_view(i == 0 ? "A" : "B"));
        witness->on_message(std::move(m), now);
      }
    }
    for (message& m : answers) {
      const int to = m.view(0) == "A" ? 0 : 1;
      (void)m.pop_front();
      if (witness_link[to] && node[to]) node[to]->on_message(port::backend, std::move(m), now);
    }
  }

  bool witness_;
};

// --- without a witness: the Binary Star rules ---

TEST(BstarNode, APairStartedTogetherSettlesPrimaryActiveBackupPassive) {
  pair_sim sim(false);
  EXPECT_EQ(sim.state(0), status::primary);
  EXPECT_EQ(sim.state(1), status::backup);
  sim.run(50ms);
  EXPECT_EQ(sim.state(0), status::active);
  EXPECT_EQ(sim.state(1), status::passive);
  EXPECT_EQ(sim.node[0]->term(), 1U);
  EXPECT_EQ(sim.node[1]->term(), 1U);
  EXPECT_TRUE(sim.request(0));
  EXPECT_FALSE(sim.request(1));
  EXPECT_EQ(sim.node[1]->stats().refused, 1U);
  ASSERT_EQ(sim.out[0].changes.size(), 1U);
  EXPECT_EQ(sim.out[0].changes[0], std::make_tuple(status::primary, status::active, std::uint64_t{1}));
}

TEST(BstarNode, SendsItsStateEveryHeartbeatAndAtOnceOnAChange) {
  pair_sim sim(false);
  sim.kill(1);
  EXPECT_EQ(sim.node[0]->next_tick(), sim.now);
  sim.step(1ms);
  EXPECT_EQ(sim.node[0]->stats().states_sent, 1U);
  EXPECT_EQ(sim.node[0]->next_tick(), sim.now + pair_sim::H);
  sim.run(99ms, 1ms);
  EXPECT_EQ(sim.node[0]->stats().states_sent, 1U);
  sim.step(1ms);
  EXPECT_EQ(sim.node[0]->stats().states_sent, 2U);
  // A change of state is announced at once, off the cadence.
  sim.run(200ms);
  const auto before = sim.node[0]->stats().states_sent;
  ASSERT_TRUE(sim.request(0));
  EXPECT_EQ(sim.node[0]->stats().states_sent, before + 1);
  const auto st = std::get<state_fields>(parse(sim.out[0].states.back()));
  EXPECT_EQ(st.state, status::active);
  EXPECT_EQ(st.expiry_ms, 200U);
}

TEST(BstarNode, AFreshPrimaryAloneWaitsOneExpiryBeforeServing) {
  pair_sim sim(false);
  sim.kill(1);
  sim.run(190ms);
  EXPECT_FALSE(sim.request(0));
  EXPECT_EQ(sim.state(0), status::primary);
  sim.run(10ms);
  EXPECT_TRUE(sim.request(0));
  EXPECT_EQ(sim.state(0), status::active);
  EXPECT_EQ(sim.node[0]->stats().takeovers, 1U);
}

TEST(BstarNode, ABackupAloneNeverServes) {
  pair_sim sim(false);
  sim.kill(0);
  for (int i = 0; i < 100; ++i) {
    sim.step(100ms);
    EXPECT_FALSE(sim.request(1));
  }
  EXPECT_EQ(sim.state(1), status::backup);
  // The primary arrives: it becomes active, the backup passive.
  sim.restart(0);
  sim.run(50ms);
  EXPECT_EQ(sim.state(0), status::active);
  EXPECT_EQ(sim.state(1), status::passive);
}

TEST(BstarNode, WhenTheActiveDiesThePassiveTakesOverOnAClientRequestAfterOneExpiry) {
  pair_sim sim(false);
  sim.run(50ms);
  sim.until_heard(1);
  sim.kill(0);
  const time_point died = sim.now;
  // Within the expiry the passive node refuses: the active one may only be slow.
  while (sim.now - died < 2 * pair_sim::H - 10ms) {
    EXPECT_FALSE(sim.request(1));
    sim.step();
  }
  EXPECT_EQ(sim.state(1), status::passive);
  // And without a client it waits however long.
  sim.run(2s);
  EXPECT_EQ(sim.state(1), status::passive);
  EXPECT_TRUE(sim.request(1));
  EXPECT_EQ(sim.state(1), status::active);
  EXPECT_EQ(sim.node[1]->term(), 2U);
  // The old primary comes back and stands by.
  sim.restart(0);
  sim.run(50ms);
  EXPECT_EQ(sim.state(0), status::passive);
  EXPECT_EQ(sim.state(1), status::active);
  EXPECT_EQ(sim.node[0]->term(), 2U);
}

TEST(BstarNode, APassiveNodeTakesOverWhenItsPeerRestarts) {
  pair_sim sim(false);
  sim.run(50ms);
  // The active primary restarts before the passive node noticed it had gone: the node that
  // stayed up holds the more recent state, so it becomes active.
  sim.kill(0);
  sim.restart(0);
  sim.run(50ms);
  EXPECT_EQ(sim.state(1), status::active);
  EXPECT_EQ(sim.state(0), status::passive);
  EXPECT_EQ(sim.node[1]->term(), 2U);
  // The backup restarting while passive changes nothing for the active primary.
  pair_sim other(false);
  other.run(50ms);
  other.kill(1);
  other.restart(1);
  other.run(150ms);
  EXPECT_EQ(other.state(0), status::active);
  EXPECT_EQ(other.state(1), status::passive);
}

// --- readiness (section 9.3): a node whose service has not caught up never becomes active ---

TEST(BstarNode, APassiveNodeThatIsNotReadyRefusesToTakeOver) {
  pair_sim sim(false);
  sim.run(50ms);
  sim.until_heard(1);
  sim.node[1]->set_ready(false);
  sim.kill(0);
  sim.run(2 * pair_sim::H + 50ms);
  for (int i = 0; i < 5; ++i) {
    EXPECT_FALSE(sim.request(1));
    sim.step();
  }
  EXPECT_EQ(sim.state(1), status::passive);
  EXPECT_GE(sim.node[1]->stats().not_ready, 5U);
  // Caught up, it takes over on the next request.
  sim.node[1]->set_ready(true);
  EXPECT_TRUE(sim.request(1));
  EXPECT_EQ(sim.state(1), status::active);
}

TEST(BstarNode, ARestartedNodeTakesOverFromAPassivePeerThatIsNotReady) {
  // The backup follows the active primary but has not caught up when the primary restarts: the
  // backup stays passive, and the primary, whose journal it lacks, takes over after an expiry.
  pair_sim sim(false);
  sim.run(50ms);
  sim.node[1]->set_ready(false);
  sim.kill(0);
  sim.restart(0);
  sim.run(pair_sim::H);
  EXPECT_EQ(sim.state(1), status::passive);
  EXPECT_EQ(sim.state(0), status::primary);
  EXPECT_GE(sim.node[1]->stats().not_ready, 1U);
  sim.run(2 * pair_sim::H + 50ms);
  EXPECT_EQ(sim.state(0), status::active);
  EXPECT_EQ(sim.state(1), status::passive);
  EXPECT_GT(sim.node[0]->term(), 1U);
  // The same with the roles the other way round: a restarted backup takes over too.
  pair_sim other(false);
  other.run(50ms);
  EXPECT_TRUE(other.request(0));
  other.kill(0);
  other.run(2 * pair_sim::H + 10ms);
  EXPECT_TRUE(other.request(1));  // the backup is active now
  other.restart(0);
  other.run(100ms);
  ASSERT_EQ(other.state(0), status::passive);
  other.node[0]->set_ready(false);
  other.kill(1);
  other.restart(1);
  other.run(3 * pair_sim::H + 50ms);
  EXPECT_EQ(other.state(1), status::active);
  EXPECT_EQ(other.state(0), status::passive);
}

TEST(BstarNode, AReadyPassiveNodeStillTakesOverAtOnceWhenItsPeerRestarts) {
  pair_sim sim(false);
  sim.run(50ms);
  sim.kill(0);
  sim.restart(0);
  sim.run(50ms);
  EXPECT_EQ(sim.state(1), status::active);
  EXPECT_EQ(sim.node[1]->stats().not_ready, 0U);
}

TEST(BstarNode, TwoNodesOfOneRoleServeNothing) {
  pair_sim sim(false);
  sim.kill(1);
  sim.out[1] = node_out{};
  sim.node[1].emplace(sim.settings(0), sim.out[1], sim.now);  // a second primary
  for (int i = 0; i < 100; ++i) {
    sim.step(50ms);
    EXPECT_FALSE(sim.request(0));
    EXPECT_FALSE(sim.request(1));
  }
  EXPECT_EQ(sim.state(0), status::primary);
  EXPECT_EQ(sim.state(1), status::primary);
  EXPECT_GT(sim.node[0]->stats().misconfigured, 0U);
  EXPECT_GT(sim.node[1]->stats().misconfigured, 0U);
}

TEST(BstarNode, SplitBrainIsResolvedByTheHigherTerm) {
  pair_sim sim(false);
  sim.run(50ms);
  // The link between the nodes fails; clients still reach both, and one fails over.
  sim.peer_link = false;
  sim.run(300ms);
  EXPECT_TRUE(sim.request(0));
  EXPECT_TRUE(sim.request(1));
  EXPECT_EQ(sim.state(0), status::active);
  EXPECT_EQ(sim.state(1), status::active);
  EXPECT_EQ(sim.node[1]->term(), 2U);
  // The link heals: the later term (the backup's) stays, the primary steps down at once.
  sim.peer_link = true;
  sim.run(20ms);
  EXPECT_EQ(sim.state(0), status::passive);
  EXPECT_EQ(sim.state(1), status::active);
  EXPECT_EQ(sim.node[0]->stats().split_brain, 1U);
  EXPECT_EQ(sim.node[0]->stats().step_downs, 1U);
  EXPECT_FALSE(sim.request(0));
  sim.run(1s);
  EXPECT_EQ(sim.state(0), status::passive);
  EXPECT_EQ(sim.state(1), status::active);
}

TEST(BstarNode, SplitBrainWithEqualTermsKeepsThePrimary) {
  pair_sim sim(false);
  sim.peer_link = false;
  sim.kill(1);
  sim.restart(1, 0);
  // Each alone: the primary takes term 1 on its own; the backup is made active by hand through
  // a passive state it would reach by hearing a restarted primary, then cut off again.
  sim.run(300ms);
  ASSERT_TRUE(sim.request(0));
  detail::bstar_node& b = *sim.node[1];
  b.on_message(port::main,
               build(state_fields{.from = role::primary, .state = status::active, .term = 0, .seq = 1, .expiry_ms = 200}),
               sim.now);
  ASSERT_EQ(b.state(), status::passive);
  b.on_message(port::main,
               build(state_fields{.from = role::primary, .state = status::primary, .term = 0, .seq = 2, .expiry_ms = 200}),
               sim.now);
  ASSERT_EQ(b.state(), status::active);
  ASSERT_EQ(b.term(), 1U);
  ASSERT_EQ(sim.node[0]->term(), 1U);
  sim.peer_link = true;
  sim.run(20ms);
  EXPECT_EQ(sim.state(0), status::active);
  EXPECT_EQ(sim.state(1), status::passive);
}

TEST(BstarNode, BothPassiveMakesThePrimaryActive) {
  pair_sim sim(false);
  sim.run(50ms);
  detail::bstar_node& a = *sim.node[0];
  // The primary loses a split brain to a backup at term 5, which then says it is passive.
  a.on_message(port::main,
               build(state_fields{.from = role::backup, .state = status::active, .term = 5, .seq = 100, .expiry_ms = 200}),
               sim.now);
  ASSERT_EQ(a.state(), status::passive);
  a.on_message(port::main,
               build(state_fields{.from = role::backup, .state = status::passive, .term = 5, .seq = 101, .expiry_ms = 200}),
               sim.now);
  EXPECT_EQ(a.state(), status::active);
  EXPECT_EQ(a.term(), 6U);
  EXPECT_EQ(a.stats().both_passive, 1U);
}

TEST(BstarNode, AFlappingLinkNeverMakesASecondActive) {
  pair_sim sim(false);
  sim.run(50ms);
  // The link drops, again and again, never for so long that a heartbeat period and the cut
  // add up to an expiry; clients try the passive node every step.
  for (int flap = 0; flap < 50; ++flap) {
    sim.peer_link = false;
    for (int i = 0; i < 5; ++i) {
      EXPECT_FALSE(sim.request(1));
      sim.step();
    }
    sim.peer_link = true;
    for (int i = 0; i < 15; ++i) {
      EXPECT_FALSE(sim.request(1));
      sim.step();
    }
  }
  EXPECT_EQ(sim.state(0), status::active);
  EXPECT_EQ(sim.state(1), status::passive);
  EXPECT_EQ(sim.node[1]->stats().takeovers, 0U);
  EXPECT_EQ(sim.node[0]->stats().takeovers, 1U);
  // A node flapping through restarts settles each time with one active.
  for (int round = 0; round < 20; ++round) {
    const int victim = round % 2;
    sim.kill(victim);
    sim.run(round % 3 == 0 ? 300ms : 50ms);
    (void)sim.request(1 - victim);
    sim.restart(victim);
    sim.run(100ms);
    const int actives = (sim.state(0) == status::active) + (sim.state(1) == status::active);
    EXPECT_EQ(actives, 1) << "round " << round;
  }
}

TEST(BstarNode, APeersLongerIntervalLengthensItsExpiry) {
  pair_sim sim(false);
  sim.run(50ms);
  detail::bstar_node& b = *sim.node[1];
  sim.kill(0);
  b.on_message(port::main,
               build(state_fields{.from = role::primary, .state = status::active, .term = 1, .seq = 50, .expiry_ms = 1000}),
               sim.now);
  sim.run(900ms);
  EXPECT_FALSE(sim.request(1));  // the peer's 1 s has not passed
  sim.run(110ms);
  EXPECT_TRUE(sim.request(1));
}

TEST(BstarNode, MalformedMessagesAreCountedAndChangeNothing) {
  pair_sim sim(false);
  sim.run(50ms);
  detail::bstar_node& b = *sim.node[1];
  b.on_message(port::main, make_message("garbage"), sim.now);
  b.on_message(port::main, build(grant_fields{.term = 9, .seq = 1, .duration_ms = 10}), sim.now);
  b.on_message(port::backend,
               build(state_fields{.from = role::primary, .state = status::backup, .term = 0, .seq = 1, .expiry_ms = 200}),
               sim.now);
  EXPECT_EQ(b.stats().malformed, 3U);
  EXPECT_EQ(b.state(), status::passive);
  EXPECT_EQ(b.term(), 1U);
}

TEST(BstarNode, FailedSendsAreCounted) {
  pair_sim sim(false);
  sim.out[0].fail_sends = true;
  sim.step();
  EXPECT_EQ(sim.node[0]->stats().send_failures, 1U);
  EXPECT_EQ(sim.node[0]->stats().states_sent, 0U);
}

TEST(BstarNode, SettingsOutOfRangeAreRefused) {
  node_out out;
  EXPECT_THROW(detail::bstar_node({.heartbeat = 0ms}, out, time_point{}), fabric::error);
  EXPECT_THROW(detail::bstar_node({.heartbeat = 100ms, .expiry = 199ms}, out, time_point{}), fabric::error);
  detail::machine_sink& sink = out;
  EXPECT_THROW(detail::bstar_witness({.max_lease = 0ms}, sink, time_point{}), fabric::error);
}

// --- with a witness: leases ---

TEST(BstarWitness, AnActiveNodeIsWritableOnlyWhileItHoldsALease) {
  pair_sim sim(true);
  sim.run(50ms);
  ASSERT_EQ(sim.state(0), status::active);
  // The passive node's echo, and the witness's grant after its quiet start, each give a lease.
  EXPECT_TRUE(sim.writable(0));
  EXPECT_FALSE(sim.writable(1));
  sim.run(500ms);
  EXPECT_TRUE(sim.writable(0));
  EXPECT_GT(sim.node[0]->stats().grants, 0U);
  EXPECT_EQ(sim.witness->holder(), 1U);
}

TEST(BstarWitness, TheActiveNodeWritesOnWhenEitherOtherVoterDies) {
  pair_sim sim(true);
  sim.run(500ms);
  sim.kill(1);
  for (int i = 0; i < 200; ++i) {
    sim.step();
    ASSERT_TRUE(sim.writable(0)) << "step " << i;
  }
  sim.restart(1);
  sim.run(100ms);
  sim.kill_witness();
  for (int i = 0; i < 200; ++i) {
    sim.step();
    ASSERT_TRUE(sim.writable(0)) << "step " << i;
  }
}

TEST(BstarWitness, ThePeersLeaseAloneKeepsTheActiveNodeWritingWhateverTheirPhase) {
  // The passive node answers each state of the active one at once, so its echo is a round trip
  // old however the two nodes' heartbeats drift against each other (here the backup's is 3%
  // shorter, so its phase sweeps the whole interval).
  pair_sim sim(true);
  sim.kill(1);
  sim.backup_heartbeat = 97ms;
  sim.restart(1);
  sim.run(500ms, 1ms);
  sim.kill_witness();
  for (int i = 0; i < 5000; ++i) {
    sim.step(1ms);
    ASSERT_TRUE(sim.writable(0)) << "step " << i;
  }
}

TEST(BstarWitness, ThePassiveNodeTakesOverWithTheWitnessGrant) {
  pair_sim sim(true);
  sim.run(500ms);
  sim.kill(0);
  const time_point died = sim.now;
  time_point writable_at{};
  while (sim.now - died < 2s) {
    (void)sim.request(1);  // a client retrying every step
    sim.step();
    if (sim.writable(1)) {
      writable_at = sim.now;
      break;
    }
  }
  ASSERT_NE(writable_at, time_point{});
  EXPECT_EQ(sim.state(1), status::active);
  EXPECT_EQ(sim.witness->holder(), 2U);
  // The expiry (200 ms), then the old holder's lease and its margin, then a round trip.
  EXPECT_LE(writable_at - died, 2 * 2 * pair_sim::H);
  EXPECT_TRUE(sim.request(1));
}

TEST(BstarWitness, ACutBetweenTheNodesLeavesOneWriter) {
  pair_sim sim(true);
  sim.run(500ms);
  sim.peer_link = false;
  for (int i = 0; i < 300; ++i) {
    (void)sim.request(1);
    (void)sim.request(0);
    sim.step();
    ASSERT_FALSE(sim.writable(0) && sim.writable(1)) << "step " << i;
    ASSERT_TRUE(sim.writable(0)) << "step " << i;
  }
  EXPECT_EQ(sim.state(1), status::passive);
  EXPECT_GT(sim.node[1]->stats().denials, 0U);
}

TEST(BstarWitness, AnActiveNodeCutOffFromBothStopsWritingBeforeThePassiveStarts) {
  pair_sim sim(true);
  sim.run(500ms);
  sim.peer_link = false;
  sim.witness_link[0] = false;
  const time_point cut = sim.now;
  time_point a_stopped{}, b_started{};
  for (int i = 0; i < 300; ++i) {
    (void)sim.request(0);
    (void)sim.request(1);
    sim.step();
    ASSERT_FALSE(sim.writable(0) && sim.writable(1)) << "step " << i;
    if (!sim.writable(0) && a_stopped == time_point{}) a_stopped = sim.now;
    if (sim.writable(1) && b_started == time_point{}) b_started = sim.now;
  }
  ASSERT_NE(a_stopped, time_point{});
  ASSERT_NE(b_started, time_point{});
  EXPECT_LE(a_stopped - cut, pair_sim::H + 20ms);
  EXPECT_LT(a_stopped, b_started);
  // The old active node hears the new one when the cut heals, and steps down.
  sim.peer_link = true;
  sim.witness_link[0] = true;
  sim.run(50ms);
  EXPECT_EQ(sim.state(0), status::passive);
  EXPECT_EQ(sim.state(1), status::active);
}

TEST(BstarWitness, TheWitnessRules) {
  witness_out out;
  time_point t{};
  detail::bstar_witness w({.max_lease = 100ms}, out, t);
  auto ask = [&](role r, std::uint64_t term, std::uint32_t ms = 100) {
    message m = build(lease_fields{.from = r, .term = term, .seq = 1, .duration_ms = ms});
    m.push_front(std::string_view("peer"));
    w.on_message(std::move(m), t);
    message& answer = out.sent.back();
    EXPECT_EQ(answer.view(0), "peer");
    return parse(answer, 1);
  };
  // Quiet for max-lease plus a quarter after starting.
  EXPECT_TRUE(std::holds_alternative<deny_fields>(ask(role::primary, 1)));
  t += 124ms;
  EXPECT_TRUE(std::holds_alternative<deny_fields>(ask(role::primary, 1)));
  t += 1ms;
  // The first asker gets it, for at most max-lease.
  const auto g = std::get<grant_fields>(ask(role::primary, 1, 5000));
  EXPECT_EQ(g.duration_ms, 100U);
  EXPECT_EQ(w.holder(), 1U);
  // The other role is denied while it is held and for the margin after.
  auto d = std::get<deny_fields>(ask(role::backup, 2));
  EXPECT_EQ(d.holder, 1U);
  EXPECT_EQ(d.holder_term, 1U);
  t += 124ms;
  EXPECT_TRUE(std::holds_alternative<deny_fields>(ask(role::backup, 2)));
  // The holder renews in its term or a later one, not an earlier one.
  EXPECT_TRUE(std::holds_alternative<grant_fields>(ask(role::primary, 1)));
  EXPECT_TRUE(std::holds_alternative<deny_fields>(ask(role::primary, 0)));
  t += 125ms;
  // After the lease and its margin the other role may take it, with a higher term only.
  EXPECT_TRUE(std::holds_alternative<deny_fields>(ask(role::backup, 1)));
  EXPECT_TRUE(std::holds_alternative<grant_fields>(ask(role::backup, 2)));
  EXPECT_EQ(w.holder(), 2U);
  EXPECT_EQ(w.stats().holder_changes, 2U);
  // Malformed input is counted.
  w.on_message(make_message("peer", "junk"), t);
  w.on_message(make_message("peer"), t);
  EXPECT_EQ(w.stats().malformed, 2U);
}

TEST(BstarWitness, ADenialWithALaterTermMakesAnActiveNodeStepDown) {
  pair_sim sim(true);
  sim.run(500ms);
  detail::bstar_node& a = *sim.node[0];
  ASSERT_EQ(a.state(), status::active);
  a.on_message(port::backend, build(deny_fields{.seq = 1, .holder = 2, .holder_term = 9}), sim.now);
  EXPECT_EQ(a.state(), status::passive);
  EXPECT_EQ(a.term(), 9U);
  EXPECT_EQ(a.stats().step_downs, 1U);
}

TEST(BstarWitness, ARestartedNodeWithAnOldTermLearnsTheWitnessTerm) {
  pair_sim sim(true);
  sim.run(500ms);
  // The backup takes over (term 2), then both die; the primary comes back alone with no memory
  // of any term. The witness denies its term 1, naming term 2, and grants it term 3.
  sim.kill(0);
  for (int i = 0; i < 200 && !sim.writable(1); ++i) {
    (void)sim.request(1);
    sim.step();
  }
  ASSERT_TRUE(sim.writable(1));
  ASSERT_EQ(sim.node[1]->term(), 2U);
  sim.kill(1);
  sim.restart(0);
  bool served = false;
  for (int i = 0; i < 200 && !served; ++i) {
    (void)sim.request(0);
    sim.step();
    served = sim.writable(0);
  }
  EXPECT_TRUE(served);
  EXPECT_EQ(sim.node[0]->term(), 3U);
  EXPECT_GT(sim.node[0]->stats().denials, 0U);
}

// A run of random kills, restarts, cuts and client requests. Returns the number of steps at
// which both nodes were writable.
int chaos(bool witness, std::uint64_t seed, int steps) {
  pair_sim sim(witness);
  std::mt19937_64 rng(seed);
  int both = 0;
  for (int i = 0; i < steps; ++i) {
    const auto roll = rng() % 1000;
    if (roll < 4) {
      const int victim = static_cast<int>(rng() % 2);
      if (sim.node[victim]) sim.kill(victim);
      else sim.restart(victim, rng() % 2 == 0 ? 0 : 1);
    } else if (roll < 10) {
      sim.peer_link = !sim.peer_link;
    } else if (roll < 14) {
      const auto w = rng() % 2;
      sim.witness_link[w] = !sim.witness_link[w];
    } else if (roll < 16 && witness) {
      if (sim.witness) sim.kill_witness();
      else sim.restart_witness();
    }
    // Clients keep asking both nodes.
    if (rng() % 3 == 0) (void)sim.request(0);
    if (rng() % 3 == 0) (void)sim.request(1);
    sim.step(std::chrono::milliseconds(1 + rng() % 20));
    if (sim.writable(0) && sim.writable(1)) ++both;
  }
  return both;
}

TEST(BstarWitness, RandomFaultsNeverMakeTwoWriters) {
  for (std::uint64_t seed = 1; seed <= 60; ++seed) {
    EXPECT_EQ(chaos(true, seed, 5000), 0) << "seed " << seed;
  }
}

TEST(BstarWitness, TheCheckerFindsTwoWritersWithoutAWitness) {
  // The same faults without a witness make two active nodes (section 6.1): the checker above
  // would see them.
  int both = 0;
  for (std::uint64_t seed = 1; seed <= 60; ++seed) both += chaos(false, seed, 5000);
  EXPECT_GT(both, 0);
}

}  // namespace
}  // namespace fabric::bstar
