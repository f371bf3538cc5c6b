// The workloads behind `fabric-perf reliable`: a reliable_sender in this process and a
// reliable_receiver in a child process (fabric-perf itself, hidden subcommand
// `reliable-receiver`), over tcp on loopback, each side with its own journal. Every figure is
// end to end and durable on both sides: a message counts once the sender has its acknowledgement,
// which the receiver sends only after its mark is committed.
#pragma once

#include "harness/histogram.hpp"

#include <fabric/journal.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

namespace fabric::perf::reliable_bench {

struct spec {
  durability mode = durability::sync;
  std::size_t size = 256;
  std::uint64_t count = 200'000;       ///< messages measured
  std::uint64_t window = 65'536;       ///< messages outstanding (not yet durable) at once
  std::size_t batch = 1;               ///< messages per call: send_async at 1, send_batch above
  std::uint32_t credit = 65'536;       ///< the receiver's credit per channel
  std::size_t max_batch = 4096;        ///< the receiver's most messages per commit
  double rate = 0;                     ///< open loop: messages per second; 0 = closed loop
  std::chrono::milliseconds timeout{60'000};
};

struct outcome {
  double seconds = 0;           ///< first send to the last acknowledgement (or recovery time)
  std::uint64_t messages = 0;
  std::uint64_t receiver_commits = 0;  ///< commits the receiver made for them
  histogram latency;            ///< send (or its scheduled time) to acknowledgement, ns
  /// one_at_a_time only: send() called to the receiver's handler holding the message, ns (the
  /// steady clock is one for every process of the host).
  histogram delivery;

  double rate() const noexcept { return seconds > 0 ? static_cast<double>(messages) / seconds : 0; }
  double receiver_batch() const noexcept {
    return receiver_commits > 0 ? static_cast<double>(messages) / static_cast<double>(receiver_commits) : 0;
  }
};

/// Closed-loop throughput: `count` messages sent asynchronously (`batch` per call), `window` at
/// most not yet durable
/// in the sender's journal; timed from the first send to the acknowledgement of the last.
/// Latency is sampled (every 64th message), send to acknowledgement.
outcome throughput(const std::filesystem::path& dir, const spec& s);

/// Open loop at `s.rate`: each message sent at its scheduled time; latency from that time to
/// its acknowledgement, so a stall shows in every message behind it.
outcome open_loop(const std::filesystem::path& dir, const spec& s);

/// Closed loop, one message at a time: send(), then wait for its acknowledgement.
outcome one_at_a_time(const std::filesystem::path& dir, const spec& s);

/// Recovery: `count` messages wait in the sender's outbox with no receiver; then the receiver
/// starts, and the time runs from its start until the last is acknowledged.
outcome recovery(const std::filesystem::path& dir, const spec& s);

/// The child: binds a reliable_receiver (at least once) on tcp://127.0.0.1:<free port> over a
/// journal in `dir`, prints "endpoint <ep>" to stdout, and runs until its stdin closes; then
/// prints "commits <n> received <n>" and exits. With `times`, it also notes when its handler
/// got each of the first 100,000 messages and prints "delivered <n>" and then "<seq> <ns>" lines.
/// Returns the exit code.
int receiver_main(const std::filesystem::path& dir, durability mode, std::uint32_t credit,
                  std::size_t max_batch, bool times);

/// The raw libzmq baseline: PUSH to PULL over tcp on loopback, `count` messages of `size`.
double raw_push_pull(std::size_t size, std::uint64_t count);

}  // namespace fabric::perf::reliable_bench
