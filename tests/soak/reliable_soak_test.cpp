// The long run of reliable channels (ctest label soak; not in the CI tier): ten million messages
// from a sender to a receiver through a fault proxy that keeps cutting and stalling the
// connection, checked for loss and order, with the heap measured along the way: it must stay flat.
//
// Environment:
//   FABRIC_SOAK_MESSAGES  messages to send (default 10,000,000)
#include "support/fault_proxy.hpp"
#include "support/support.hpp"

#include <fabric/reliable_channel.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using fabric::testing::fault_proxy;
using fabric::testing::temp_dir;

// The process's anonymous resident memory (the heap and stacks; not the journals' mapped files,
// whose pages the kernel may keep resident as it likes), in bytes.
std::uint64_t anonymous_rss() {
  std::ifstream status("/proc/self/status");
  std::string key;
  while (status >> key) {
    if (key == "RssAnon:") {
      std::uint64_t kib = 0;
      status >> kib;
      return kib * 1024;
    }
    std::string rest;
    std::getline(status, rest);
  }
  return 0;
}

std::uint64_t messages_to_send() {
  const char* v = std::getenv("FABRIC_SOAK_MESSAGES");
  return v != nullptr ? std::strtoull(v, nullptr, 10) : 10'000'000;
}

TEST(ReliableChannelSoakTest, TenMillionMessagesThroughCutsAndStallsArriveInOrderWithFlatMemory) {
  const std::uint64_t total = messages_to_send();
  ASSERT_GT(total, 1000u);
  temp_dir dir;
  fabric::context ctx;
  fabric::journal_options jo;
  jo.mode = fabric::durability::periodic;
  fabric::journal rx = fabric::journal::open(dir.path() / "rx", jo);
  fabric::journal tx = fabric::journal::open(dir.path() / "tx", jo);

  // The receiver checks order as it goes: the next sequence, a repeat (allowed after a fault,
  // at least once), or a gap (never).
  std::atomic<std::uint64_t> next{1};
  std::atomic<std::uint64_t> repeats{0};
  std::atomic<std::uint64_t> gaps{0};
  fabric::reliable_receiver_options ro;
  ro.endpoint = "tcp://127.0.0.1:*";
  ro.heartbeat = 200ms;
  ro.on_message = [&](const fabric::reliable_delivery& d) {
    const std::uint64_t want = next.load(std::memory_order_relaxed);
    if (d.seq == want) next.store(want + 1, std::memory_order_relaxed);
    else if (d.seq < want) repeats.fetch_add(1, std::memory_order_relaxed);
    else gaps.fetch_add(1, std::memory_order_relaxed);
  };
  fabric::reliable_receiver in(ctx, rx, ro);
  const auto port = static_cast<std::uint16_t>(std::stoi(in.endpoint().substr(in.endpoint().rfind(':') + 1)));
  fault_proxy proxy("127.0.0.1", port);

  fabric::reliable_sender_options so;
  so.name = "soak";
  so.receiver = "rx";
  so.endpoint = proxy.endpoint();
  so.heartbeat = 200ms;
  so.reconnect_interval = 10ms;
  so.reconnect_interval_max = 200ms;
  so.retransmit_interval = 500ms;
  fabric::reliable_sender out(ctx, tx, so);

  // Faults all along: a cut every second, and every third second a stall of 300 ms.
  std::atomic<bool> sending{true};
  std::thread faults([&] {
    for (int tick = 1; sending; ++tick) {
      std::this_thread::sleep_for(1s);  // the subject: faults at a pace, not a synchronisation
      if (tick % 3 == 0) {
        proxy.stall(true);
        std::this_thread::sleep_for(300ms);
        proxy.stall(false);
      } else {
        proxy.cut();
      }
    }
  });

  const std::string body(64, 'm');
  const std::vector<std::string_view> batch(256, body);
  std::atomic<std::uint64_t> outstanding{0};
  std::atomic<bool> failed{false};
  std::vector<std::uint64_t> heap;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60 + total / 20'000);
  for (std::uint64_t sent = 0; sent < total;) {
    const std::uint64_t n = std::min<std::uint64_t>(batch.size(), total - sent);
    while (outstanding.load() + n > 65'536 && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the journal stopped taking sends";
    outstanding += n;
    out.send_batch("soak", std::span<const std::string_view>(batch.data(), n), [&, n](fabric::result<std::uint64_t> r) {
      if (!r) failed = true;
      outstanding -= n;
    });
    sent += n;
    // The heap, at every tenth of the run.
    if (sent % (total / 10 / batch.size() * batch.size() + batch.size()) < n) heap.push_back(anonymous_rss());
  }
  ASSERT_FALSE(failed);
  while (next.load() <= total && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(10ms);
  sending = false;
  faults.join();
  heap.push_back(anonymous_rss());

  EXPECT_EQ(gaps.load(), 0u);
  EXPECT_EQ(next.load(), total + 1) << "delivered in order up to " << next.load() - 1 << " of " << total;
  EXPECT_GT(proxy.counters().cut, 0u) << "no fault happened: the run proves nothing about them";
  const auto c = proxy.counters();
  std::printf("soak: %llu messages, %llu repeats after faults, %llu connections cut, heap (KiB):",
              static_cast<unsigned long long>(total), static_cast<unsigned long long>(repeats.load()),
              static_cast<unsigned long long>(c.cut));
  for (const auto h : heap) std::printf(" %llu", static_cast<unsigned long long>(h / 1024));
  std::printf("\n");
  // Flat: after the first tenth (the journals' and sockets' working sets are warm by then), the
  // heap grows by at most 10% of what it was.
  ASSERT_GE(heap.size(), 3u);
  const std::uint64_t warm = heap[1];
  for (std::size_t i = 2; i < heap.size(); ++i) EXPECT_LE(heap[i], warm + warm / 10) << "sample " << i;
}

}  // namespace
