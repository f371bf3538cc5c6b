// Reliable channels beyond one sender and one receiver on their own threads: across two network
// namespaces standing in for two hosts (with the fault proxy between them), on an application's
// own reactor, and from one journal to two receivers.
#include "support/fault_proxy.hpp"
#include "support/netns.hpp"
#include "support/support.hpp"

#include <fabric/reactor.hpp>
#include <fabric/reliable_channel.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using fabric::context;
using fabric::journal;
using fabric::reliable_delivery;
using fabric::reliable_receiver;
using fabric::reliable_receiver_options;
using fabric::reliable_sender;
using fabric::reliable_sender_options;
using fabric::testing::fault_proxy;
using fabric::testing::netns_pair;
using fabric::testing::temp_dir;
using fabric::testing::wait_bound;

// Sequences a handler saw, per stream, and a wait on their number.
class arrivals {
 public:
  void add(const reliable_delivery& d) {
    std::lock_guard lock(mu_);
    seqs_[std::string(d.stream)].push_back(d.seq);
    ++count_;
    cv_.notify_all();
  }
  bool wait(std::size_t n, std::chrono::milliseconds bound = wait_bound) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, bound, [&] { return count_ >= n; });
  }
  std::size_t count() const {
    std::lock_guard lock(mu_);
    return count_;
  }
  std::vector<std::uint64_t> of(const std::string& stream) const {
    std::lock_guard lock(mu_);
    const auto it = seqs_.find(stream);
    return it == seqs_.end() ? std::vector<std::uint64_t>{} : it->second;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, std::vector<std::uint64_t>> seqs_;
  std::size_t count_ = 0;
};

// 1..n in order; a sequence may come again (at least once, after a fault) but never skip ahead.
void expect_in_order_through(const std::vector<std::uint64_t>& got, std::uint64_t n) {
  std::uint64_t high = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    ASSERT_LE(got[i], high + 1) << "a gap before position " << i;
    high = std::max(high, got[i]);
  }
  EXPECT_EQ(high, n);
}

reliable_sender_options quick_sender(const std::string& receiver, const std::string& endpoint) {
  reliable_sender_options o;
  o.name = "orders";
  o.receiver = receiver;
  o.endpoint = endpoint;
  o.heartbeat = 200ms;
  o.reconnect_interval = 20ms;
  o.reconnect_interval_max = 200ms;
  o.retransmit_interval = 300ms;
  o.send_timeout = wait_bound;
  return o;
}

reliable_receiver_options quick_receiver(arrivals& got) {
  reliable_receiver_options o;
  o.endpoint = "tcp://127.0.0.1:*";
  o.heartbeat = 200ms;
  o.on_message = [&got](const reliable_delivery& d) { got.add(d); };
  return o;
}

struct receiving_host {
  std::unique_ptr<context> ctx;
  std::unique_ptr<reliable_receiver> in;
  std::unique_ptr<fault_proxy> proxy;
};

struct sending_host {
  std::unique_ptr<context> ctx;
  std::unique_ptr<reliable_sender> out;
};

TEST(ReliableChannelHostsTest, CrossesTwoHostsThroughACutAndAStallLongerThanTheDeadPeerTimeout) {
  if (auto why = netns_pair::unavailable()) GTEST_SKIP() << "skipped: " << *why;
  temp_dir dir;
  journal rx = journal::open(dir.path() / "rx", fabric::testing::fast_journal_options());
  journal tx = journal::open(dir.path() / "tx", fabric::testing::fast_journal_options());
  arrivals got;
  netns_pair hosts;
  // Everything that opens connections is made inside its namespace (see netns.hpp); the
  // receiver's thread and the proxy's are started there too, and stay there.
  receiving_host b = hosts.in_b([&] {
    receiving_host h;
    h.ctx = std::make_unique<context>();
    h.in = std::make_unique<reliable_receiver>(*h.ctx, rx, quick_receiver(got));
    const std::string& bound = h.in->endpoint();
    const auto port = static_cast<std::uint16_t>(std::stoul(bound.substr(bound.rfind(':') + 1)));
    h.proxy = std::make_unique<fault_proxy>("127.0.0.1", port, hosts.address_b());
    return h;
  });
  sending_host a = hosts.in_a([&] {
    sending_host h;
    h.ctx = std::make_unique<context>();
    h.out = std::make_unique<reliable_sender>(*h.ctx, tx, quick_sender("billing", b.proxy->endpoint()));
    return h;
  });

  for (int i = 1; i <= 100; ++i) ASSERT_TRUE(a.out->send("payments", std::to_string(i)));
  ASSERT_TRUE(got.wait(100));
  b.proxy->cut();
  for (int i = 101; i <= 200; ++i) ASSERT_TRUE(a.out->send("payments", std::to_string(i)));
  // Silent for longer than three heartbeat intervals: each side declares the other dead.
  b.proxy->stall(true);
  for (int i = 201; i <= 300; ++i) ASSERT_TRUE(a.out->send("payments", std::to_string(i)));
  std::this_thread::sleep_for(1s);  // the subject: a partition longer than the dead-peer timeout
  b.proxy->stall(false);
  const auto deadline = std::chrono::steady_clock::now() + 2 * wait_bound;
  while (std::chrono::steady_clock::now() < deadline) {
    const auto seqs = got.of("payments");
    if (!seqs.empty() && *std::max_element(seqs.begin(), seqs.end()) >= 300) break;
    got.wait(got.count() + 1, 100ms);
  }
  expect_in_order_through(got.of("payments"), 300);
  EXPECT_GE(b.proxy->counters().accepted, 2u) << "the sender came back over a fresh connection";
  EXPECT_GE(a.out->stats().connections_lost, 1u) << "the stall was seen as a dead receiver";
  a.out.reset();
  b.in.reset();
}

TEST(ReliableChannelHostsTest, BothSidesRunOnTheApplicationsReactor) {
  temp_dir dir;
  journal rx = journal::open(dir.path() / "rx", fabric::testing::fast_journal_options());
  journal tx = journal::open(dir.path() / "tx", fabric::testing::fast_journal_options());
  context ctx;
  arrivals got;
  fabric::reactor loop;
  reliable_receiver in(ctx, rx, quick_receiver(got), fabric::deferred_start);
  reliable_sender out(ctx, tx, quick_sender("billing", in.endpoint()), fabric::deferred_start);
  in.attach(loop);
  out.attach(loop);
  EXPECT_THROW(out.attach(loop), fabric::error);
  std::atomic<int> durable{0};
  for (int i = 1; i <= 50; ++i)
    out.send_async("payments", std::to_string(i), [&durable](fabric::result<std::uint64_t> r) {
      if (r) ++durable;
    });
  // One thread runs both machines: the application's.
  const auto deadline = std::chrono::steady_clock::now() + wait_bound;
  while (got.count() < 50 && std::chrono::steady_clock::now() < deadline) ASSERT_TRUE(loop.run_once(10ms));
  expect_in_order_through(got.of("payments"), 50);
  EXPECT_EQ(got.count(), 50u);
  // Stats are answered on the reactor's thread, which is this one.
  while (out.stats().channels.at(0).acknowledged < 50 && std::chrono::steady_clock::now() < deadline)
    ASSERT_TRUE(loop.run_once(10ms));
  EXPECT_EQ(out.stats().channels.at(0).acknowledged, 50u);
  EXPECT_EQ(in.stats().channels.at(0).taken, 50u);
  EXPECT_EQ(durable.load(), 50);
  EXPECT_TRUE(out.detach(loop));
  EXPECT_TRUE(in.detach(loop));
  EXPECT_FALSE(in.detach(loop));
}

TEST(ReliableChannelHostsTest, OneJournalSendsToTwoReceiversEachOnItsOwnChannels) {
  temp_dir dir;
  journal tx = journal::open(dir.path() / "tx", fabric::testing::fast_journal_options());
  journal billing_j = journal::open(dir.path() / "billing", fabric::testing::fast_journal_options());
  journal audit_j = journal::open(dir.path() / "audit", fabric::testing::fast_journal_options());
  context ctx;
  arrivals billing_got;
  arrivals audit_got;
  reliable_receiver billing(ctx, billing_j, quick_receiver(billing_got));
  reliable_receiver audit(ctx, audit_j, quick_receiver(audit_got));
  reliable_sender to_billing(ctx, tx, quick_sender("billing", billing.endpoint()));
  reliable_sender to_audit(ctx, tx, quick_sender("audit", audit.endpoint()));
  for (int i = 1; i <= 40; ++i) {
    ASSERT_TRUE(to_billing.send("payments", "p"));
    ASSERT_TRUE(to_audit.send("payments", "a"));
    if (i % 2 == 0) {
      ASSERT_TRUE(to_audit.send("refunds", "r"));
    }
  }
  ASSERT_TRUE(billing_got.wait(40));
  ASSERT_TRUE(audit_got.wait(60));
  // Each destination has its own sequence per stream, from 1.
  expect_in_order_through(billing_got.of("payments"), 40);
  expect_in_order_through(audit_got.of("payments"), 40);
  expect_in_order_through(audit_got.of("refunds"), 20);
  EXPECT_TRUE(billing_got.of("refunds").empty());
  EXPECT_NE(to_billing.outbox_stream("payments"), to_audit.outbox_stream("payments"));
}

}  // namespace
