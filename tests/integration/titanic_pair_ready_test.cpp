// titanic::pair's readiness (docs/ha.md, sections 5 and 9.3): a node told to go passive must not
// say it may take over until its replica has caught up with the active node, at no moment of the
// switch, including while the service it ran until then is being stopped.
#include <fabric/context.hpp>
#include <fabric/journal.hpp>
#include <fabric/majordomo.hpp>
#include <fabric/titanic.hpp>

#include "support/support.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>

namespace fabric::titanic {
namespace {

using namespace std::chrono_literals;
using fabric::testing::eventually;

std::string endpoint_on(std::uint16_t port) { return "tcp://127.0.0.1:" + std::to_string(port); }

TEST(TitanicPairReadyTest, ANodeGoingPassiveIsNeverReadyBeforeItsReplicaCatchesUp) {
  context ctx;
  mdp::broker_options bo;
  bo.endpoints = {"tcp://127.0.0.1:*"};
  bo.heartbeat_interval = 100ms;
  mdp::broker broker(ctx, bo);
  fabric::testing::temp_dir dir;
  journal j = journal::open(dir.path(), fabric::testing::fast_journal_options());
  pair_options o;
  o.role = binary_star::role::primary;
  o.service.broker = broker.endpoints().at(0);
  o.service.heartbeat = 100ms;
  o.service.replication.bind = endpoint_on(fabric::testing::free_tcp_port());
  // Nobody serves the other node's replication: the replica never catches up.
  o.replica.peer = endpoint_on(fabric::testing::free_tcp_port());
  o.replica.timeout = 100ms;
  pair p(ctx, j, o);
  for (std::uint64_t term = 1; term <= 5; ++term) {
    p.on_state_change(binary_star::state::active, term);
    ASSERT_TRUE(eventually([&] { return p.serving(); }));
    EXPECT_TRUE(p.ready()) << "an active node is ready";
    p.on_state_change(binary_star::state::passive, term);
    // From the change on, through the service's stop and the replica's start, and after.
    int ready_while_behind = 0;
    const auto until = std::chrono::steady_clock::now() + 300ms;
    while (std::chrono::steady_clock::now() < until) {
      if (p.ready()) ++ready_while_behind;
    }
    EXPECT_FALSE(p.serving());
    EXPECT_EQ(ready_while_behind, 0) << "term " << term << ": ready " << ready_while_behind
                                     << " times while following a node it never heard";
  }
}

}  // namespace
}  // namespace fabric::titanic
