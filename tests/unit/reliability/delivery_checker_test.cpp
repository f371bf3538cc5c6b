// The delivery checker (tests/support/delivery_checker.hpp) finds each kind of broken promise,
// and passes the histories a correct protocol may produce.
#include "support/delivery_checker.hpp"

#include <gtest/gtest.h>

#include <string>

namespace fabric::testing {
namespace {

delivery_history in_order(int n) {
  delivery_history h;
  for (int i = 1; i <= n; ++i) h.sent("s", std::to_string(i));
  for (int i = 1; i <= n; ++i) h.delivered("s", std::to_string(i));
  return h;
}

TEST(DeliveryCheckerTest, ACleanHistoryPassesInBothModes) {
  const auto h = in_order(100);
  for (auto mode : {delivery_mode::at_least_once, delivery_mode::effectively_once}) {
    const auto r = check(h, mode);
    EXPECT_TRUE(r.ok()) << r.describe();
    EXPECT_EQ(r.sent, 100U);
    EXPECT_EQ(r.delivered, 100U);
  }
}

TEST(DeliveryCheckerTest, ALostCompletedSendFails) {
  delivery_history h;
  h.sent("s", "1");
  h.sent("s", "2");
  h.delivered("s", "1");
  const auto r = check(h, delivery_mode::at_least_once);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.lost, 1U);
  ASSERT_FALSE(r.examples.empty());
  EXPECT_EQ(r.examples[0].id, "2");
}

TEST(DeliveryCheckerTest, AnAttemptedSendMayArriveOrNot) {
  delivery_history h;
  h.sent("s", "1");
  h.attempted("s", "2");  // the sender died inside send()
  h.sent("s", "3");
  h.delivered("s", "1");
  h.delivered("s", "3");
  EXPECT_TRUE(check(h, delivery_mode::effectively_once).ok());
  h.delivered("s", "2");  // but not after a message sent later
  const auto r = check(h, delivery_mode::effectively_once);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.reordered, 1U);
}

TEST(DeliveryCheckerTest, DuplicatesFailOnlyEffectivelyOnce) {
  auto h = in_order(3);
  h.delivered("s", "2");  // redelivered after a crash
  h.delivered("s", "3");
  const auto loose = check(h, delivery_mode::at_least_once);
  EXPECT_TRUE(loose.ok()) << loose.describe();
  EXPECT_EQ(loose.duplicated, 2U);
  const auto strict = check(h, delivery_mode::effectively_once);
  EXPECT_FALSE(strict.ok());
  EXPECT_EQ(strict.duplicated, 2U);
}

TEST(DeliveryCheckerTest, ARedeliveryFromEarlierIsADuplicateNotADisorder) {
  // At-least-once after a receiver crash: 1 2 3, then 2 3 4 again from the last durable mark.
  delivery_history h;
  for (const char* id : {"1", "2", "3", "4"}) h.sent("s", id);
  for (const char* id : {"1", "2", "3", "2", "3", "4"}) h.delivered("s", id);
  const auto r = check(h, delivery_mode::at_least_once);
  EXPECT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(r.reordered, 0U);
}

TEST(DeliveryCheckerTest, ARedeliveryThatLeavesOutAMessageFailsInBothModes) {
  // 1 2 3, then a restart repeats 2 and jumps to 4: the receiver lost track of 3.
  delivery_history h;
  for (const char* id : {"1", "2", "3", "4"}) h.sent("s", id);
  for (const char* id : {"1", "2", "3", "2", "4"}) h.delivered("s", id);
  for (auto mode : {delivery_mode::at_least_once, delivery_mode::effectively_once}) {
    const auto r = check(h, mode);
    EXPECT_FALSE(r.ok());
    EXPECT_EQ(r.gaps, 1U);
    EXPECT_EQ(r.lost, 0U);
    EXPECT_EQ(r.reordered, 0U);
    ASSERT_FALSE(r.examples.empty());
    EXPECT_EQ(r.examples.back().what, "delivered next in a redelivery that left out 3");
  }
}

TEST(DeliveryCheckerTest, AJumpOverAnAttemptThatNeverArrivedIsNoGap) {
  delivery_history h;
  h.sent("s", "1");
  h.attempted("s", "2");  // never made durable, so never sent
  h.sent("s", "3");
  for (const char* id : {"1", "3", "1", "3"}) h.delivered("s", id);
  const auto r = check(h, delivery_mode::at_least_once);
  EXPECT_TRUE(r.ok()) << r.describe();
  EXPECT_EQ(r.gaps, 0U);
}

TEST(DeliveryCheckerTest, DisorderFails) {
  delivery_history h;
  for (const char* id : {"1", "2", "3"}) h.sent("s", id);
  for (const char* id : {"1", "3", "2"}) h.delivered("s", id);
  const auto r = check(h, delivery_mode::at_least_once);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.reordered, 1U);
}

TEST(DeliveryCheckerTest, APhantomFails) {
  auto h = in_order(2);
  h.delivered("s", "never");
  h.delivered("other-stream", "1");  // a stream nobody sent on
  const auto r = check(h, delivery_mode::at_least_once);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.phantoms, 2U);
}

TEST(DeliveryCheckerTest, OrderIsPerStream) {
  delivery_history h;
  h.sent("a", "1");
  h.sent("b", "1");
  h.sent("a", "2");
  h.delivered("b", "1");
  h.delivered("a", "1");
  h.delivered("a", "2");
  EXPECT_TRUE(check(h, delivery_mode::effectively_once).ok());
}

TEST(DeliveryCheckerTest, DescribeNamesTheCountsAndTheFirstFindings) {
  delivery_history h;
  h.sent("s", "1");
  const auto text = check(h, delivery_mode::at_least_once).describe();
  EXPECT_NE(text.find("1 lost"), std::string::npos) << text;
  EXPECT_NE(text.find("s / 1: sent (completed) but never delivered"), std::string::npos) << text;
}

}  // namespace
}  // namespace fabric::testing
