// The outstanding-request table across a failover: the async Majordomo client forgets which
// requests went out plain on the socket it replaced, and marks them again in the order it sends
// them on the new one.
#include "reliability/mdp_outstanding.hpp"

#include <gtest/gtest.h>

#include <cstdint>

namespace fabric::mdp {
namespace {

std::uint64_t id_of(const outstanding_table::entry* e) { return e != nullptr ? e->id : 0; }

TEST(MdpOutstandingFailoverTest, ClearPlainForgetsTheSendOrderButNotTheRequests) {
  outstanding_table t(8);
  const auto a = t.insert("echo", outstanding_table::never);
  const auto b = t.insert("echo", outstanding_table::never);
  const auto c = t.insert("other", outstanding_table::never);
  t.mark_sent_plain(a);
  t.mark_sent_plain(b);
  t.mark_sent_plain(c);
  ASSERT_EQ(id_of(t.oldest_plain_for("echo")), a);

  t.clear_plain();
  EXPECT_EQ(t.oldest_plain_for("echo"), nullptr) << "nothing is on the new socket yet";
  EXPECT_EQ(t.oldest_plain_for("other"), nullptr);
  EXPECT_EQ(t.size(), 3U);
  const auto* entry_a = t.find(a);
  ASSERT_NE(entry_a, nullptr);
  EXPECT_FALSE(entry_a != nullptr && entry_a->plain);

  // Sent again in another order: the new order decides.
  t.mark_sent_plain(b);
  t.mark_sent_plain(a);
  EXPECT_EQ(id_of(t.oldest_plain_for("echo")), b);
  EXPECT_TRUE(t.erase(b));
  EXPECT_EQ(id_of(t.oldest_plain_for("echo")), a);
  EXPECT_EQ(t.oldest_plain_for("other"), nullptr) << "c was not sent again";
  EXPECT_TRUE(t.erase(c));
  EXPECT_TRUE(t.erase(a));
  EXPECT_TRUE(t.empty());
  t.clear_plain();  // on an empty list: nothing to do
  EXPECT_EQ(t.oldest_plain_for("echo"), nullptr);
}

}  // namespace
}  // namespace fabric::mdp
