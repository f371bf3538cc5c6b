// When the active node holds its follower in step (docs/ha.md, section 9.4), driven by a
// follower played by hand over FTR/1: a follower that was behind and has just been sent every
// entry up to the head counts itself caught up (section 9.3: it may take over from then on), so
// the very next "200" must wait for its acknowledgement. Were it answered at once, a kill of the
// active node before the follower's next fetch would lose a request answered "200" with a caught
// up node taking over: what the Titanic pair chaos test caught.
#include <fabric/context.hpp>
#include <fabric/journal.hpp>
#include <fabric/majordomo.hpp>
#include <fabric/message.hpp>
#include <fabric/router_dealer.hpp>
#include <fabric/titanic.hpp>
#include <fabric/titanic_client.hpp>

#include "reliability/titanic_replication.hpp"
#include "support/support.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <string>

namespace fabric::titanic {
namespace {

using namespace std::chrono_literals;

std::string endpoint_on(std::uint16_t port) { return "tcp://127.0.0.1:" + std::to_string(port); }

TEST(TitanicReplicationStepTest, AFollowerSentEverythingUpToTheHeadIsWaitedForAtTheNextCommit) {
  context ctx;
  mdp::broker_options bo;
  bo.endpoints = {"tcp://127.0.0.1:*"};
  bo.heartbeat_interval = 100ms;
  mdp::broker broker(ctx, bo);
  fabric::testing::temp_dir dir;
  journal j = journal::open(dir.path(), fabric::testing::fast_journal_options());
  service_options o;
  o.broker = broker.endpoints().at(0);
  o.heartbeat = 100ms;
  o.replication.bind = endpoint_on(fabric::testing::free_tcp_port());
  o.replication.term = 2;
  o.replication.follower_timeout = 5s;  // the follower below is never taken for gone
  service s(ctx, j, o);
  client c(ctx, {.broker = o.broker, .timeout = 5s, .retries = 0, .keys = key_mode::keyed, .correlate = true});
  // Stored with no follower: answered once durable here. Nobody serves "later", so nothing else
  // is committed.
  ASSERT_TRUE(c.post("later", message("first")));

  // The follower, behind: it fetches from the start and is sent every entry up to the head.
  socket_options so;
  so.linger = 0ms;
  dealer follower(ctx, so);
  follower.connect(o.replication.bind);
  ASSERT_TRUE(follower.send(repl::build_fetch({}, 1 << 20)));
  message answer;
  ASSERT_TRUE(follower.recv(answer, 5s));
  const repl::parsed first = repl::parse(answer);
  const auto* records = std::get_if<repl::records_fields>(&first);
  ASSERT_NE(records, nullptr);
  ASSERT_GE(answer.size(), 3u) << "no entries sent";
  std::uint64_t last = 0;
  std::string_view ops;
  ASSERT_TRUE(repl::split_entry(answer.view(answer.size() - 1), last, ops));
  ASSERT_EQ(last, records->head.position) << "the answer reaches the head: a replica is caught up now";

  // Before the follower acknowledges that head, another post: it must wait for the follower.
  auto second = std::async(std::launch::async, [&] {
    context own;
    client c2(own, {.broker = o.broker, .timeout = 5s, .retries = 0, .keys = key_mode::keyed, .correlate = true});
    return c2.post("later", message("second")).has_value();
  });
  // The follower's silence: the answer must not come while it has not acknowledged.
  EXPECT_EQ(second.wait_for(500ms), std::future_status::timeout)
      << "a 200 went before the caught-up follower held the request";
  // Its acknowledgement of the head, then of the new entry, releases the answer.
  ASSERT_TRUE(follower.send(repl::build_fetch(records->head, 1 << 20)));
  message more;
  ASSERT_TRUE(follower.recv(more, 5s));
  const repl::parsed then = repl::parse(more);
  const auto* next = std::get_if<repl::records_fields>(&then);
  ASSERT_NE(next, nullptr);
  ASSERT_TRUE(follower.send(repl::build_fetch(next->head, 1 << 20)));
  ASSERT_EQ(second.wait_for(5s), std::future_status::ready);
  EXPECT_TRUE(second.get());
}

}  // namespace
}  // namespace fabric::titanic
