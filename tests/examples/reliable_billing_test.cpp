// The reliable-billing example run as the two services it is: the order service sends payments
// while the billing service is killed (SIGKILL) mid-stream and restarted on the same journal and
// endpoint, and billing's journal must then hold every payment exactly once.
#include <fabric/journal.hpp>

#include "support/process.hpp"
#include "support/support.hpp"

#include <gtest/gtest.h>
#include <signal.h>

#include <charconv>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace {

using fabric::testing::child_process;
using fabric::testing::temp_dir;
using namespace std::chrono_literals;

#ifdef FABRIC_EXAMPLE_RELIABLE_BILLING
constexpr std::string_view program = FABRIC_EXAMPLE_RELIABLE_BILLING;
#else
constexpr std::string_view program;  // examples not built: the test skips
#endif

constexpr std::uint64_t payments = 2000;
// Paced so that the stream outlasts the kills however fast the disk syncs: about 4 s.
constexpr std::uint64_t payments_per_second = 500;
// Billing is killed once it has counted each of these many payments (in its open transaction).
constexpr std::uint64_t kill_at[] = {500, 1000, 1500};

// The number that follows `prefix` in `text`, or nullopt.
std::optional<std::uint64_t> number_after(std::string_view text, std::string_view prefix) {
  const auto at = text.find(prefix);
  if (at == std::string_view::npos) return std::nullopt;
  const char* begin = text.data() + at + prefix.size();
  std::uint64_t n = 0;
  const auto [end, ec] = std::from_chars(begin, text.data() + text.size(), n);
  if (ec != std::errc() || end == begin) return std::nullopt;
  return n;
}

std::uint64_t stored_number(const fabric::journal& j, std::string_view table, std::string_view key) {
  auto v = j.get(table, key);
  EXPECT_TRUE(v) << table << "/" << key << ": " << v.error().message();
  if (!v || !*v) return 0;
  return number_after(**v, "").value_or(0);
}

// One run of the billing service. Its first line says what it holds and where it listens.
struct billing_run {
  child_process process;
  std::uint64_t on_record = 0;
  std::string endpoint;

  billing_run(const std::string& journal, const std::string& bind_to)
      : process({std::string(program), "billing", "--journal", journal, "--endpoint", bind_to}) {
    if (!process.read_until("\n")) {
      ADD_FAILURE() << "billing did not start; stderr: " << process.err;
      return;
    }
    const std::string_view first(process.out.data(), process.out.find('\n'));
    on_record = number_after(first, "billing: ").value_or(0);
    const auto at = first.find("listening on ");
    if (at != std::string_view::npos) endpoint = first.substr(at + 13);
    EXPECT_FALSE(endpoint.empty()) << "no endpoint in '" << first << "'";
  }
};

TEST(ReliableBillingExampleTest, RecordsEveryPaymentOnceThroughBillingKills) {
  if (program.empty()) GTEST_SKIP() << "the examples are not built (FABRIC_BUILD_EXAMPLES=OFF)";
  temp_dir dir("fabric-reliable-billing-");
  const std::string billing_journal = (dir.path() / "billing").string();
  const std::string orders_journal = (dir.path() / "orders").string();

  // The first run picks a free port; every restart binds that same endpoint again.
  auto billing = std::make_unique<billing_run>(billing_journal, "tcp://127.0.0.1:*");
  ASSERT_FALSE(billing->endpoint.empty());
  const std::string endpoint = billing->endpoint;
  EXPECT_EQ(billing->on_record, 0u);

  child_process orders({std::string(program), "orders", "--journal", orders_journal, "--endpoint", endpoint,
                        "--payments", std::to_string(payments), "--rate", std::to_string(payments_per_second)});

  for (const std::uint64_t at : kill_at) {
    const std::string progress = "billing: " + std::to_string(at) + " payments,";
    ASSERT_TRUE(billing->process.read_until(progress, 20s))
        << "billing never reached " << at << " payments; its output:\n"
        << billing->process.out << billing->process.err;
    billing->process.signal(SIGKILL);
    EXPECT_EQ(billing->process.finish(), 128 + SIGKILL);
    billing = std::make_unique<billing_run>(billing_journal, endpoint);
    ASSERT_EQ(billing->endpoint, endpoint);
    // Killed mid-stream: what the restart finds committed is short of the whole stream (and of
    // the next kill point, so that one is reached too).
    EXPECT_GT(billing->on_record, 0u);
    EXPECT_LT(billing->on_record, at + 500) << "the kill at " << at << " came too late";
  }

  // The order service returns once billing has acknowledged every payment.
  ASSERT_EQ(orders.finish(40s), 0) << orders.out << orders.err;
  const auto sent_cents = number_after(orders.out, "payments acknowledged by billing (");
  ASSERT_TRUE(sent_cents) << orders.out;
  EXPECT_NE(orders.out.find("orders 1 to " + std::to_string(payments)), std::string::npos) << orders.out;

  billing->process.signal(SIGTERM);
  ASSERT_EQ(billing->process.finish(), 0) << billing->process.out << billing->process.err;
  EXPECT_NE(billing->process.out.find("stopping with " + std::to_string(payments) + " payments on record (" +
                                      std::to_string(*sent_cents) + " cents)"),
            std::string::npos)
      << billing->process.out;
  billing.reset();

  // The evidence, from billing's journal itself: a row for every order, no other, no payment
  // dead-lettered, and totals that count each payment once (a duplicate would push the count
  // past the rows and the total past what was sent).
  fabric::journal j = fabric::journal::open(billing_journal, {.read_only = true});
  std::uint64_t row_cents = 0;
  for (std::uint64_t order = 1; order <= payments; ++order) {
    auto row = j.get("payments", std::to_string(order));
    ASSERT_TRUE(row && *row) << "order " << order << " was not recorded";
    row_cents += number_after(**row, "").value_or(0);
  }
  auto beyond = j.get("payments", std::to_string(payments + 1));
  ASSERT_TRUE(beyond);
  EXPECT_FALSE(*beyond) << "an order that was never sent was recorded";
  EXPECT_EQ(row_cents, *sent_cents);
  EXPECT_EQ(stored_number(j, "totals", "payments"), payments);
  EXPECT_EQ(stored_number(j, "totals", "cents"), *sent_cents);
  auto letters = j.dead_letters();
  ASSERT_TRUE(letters);
  EXPECT_TRUE(letters->empty()) << letters->size() << " payments dead-lettered, first: " << letters->front().reason;
}

}  // namespace
