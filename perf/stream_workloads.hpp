// The workloads behind `fabric-perf stream`: a stream_publisher in this process over its own
// journal, and its subscribers in a child process (fabric-perf itself, hidden subcommand
// `stream-subscribers`), over tcp on loopback; beside raw libzmq PUB/SUB fan-out to the same
// number of subscribers in a child process, and a raw LMDB walk over the same records.
#pragma once

#include "harness/histogram.hpp"

#include <fabric/journal.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

namespace fabric::perf::stream_bench {

/// The stream every workload publishes to.
inline constexpr std::string_view stream_name = "bench";

struct spec {
  durability mode = durability::periodic;  ///< the publisher's journal
  std::size_t size = 256;                  ///< message bytes
  std::uint64_t count = 500'000;           ///< messages measured (fan-out, latency) or the backlog
  int subscribers = 1;
  std::size_t batch = 64;                  ///< messages per call: publish_async at 1, publish_batch above
  std::uint64_t window = 65'536;           ///< messages published and not yet durable at once
  double rate = 0;                         ///< latency: messages per second
  std::chrono::milliseconds timeout{60'000};
};

struct outcome {
  /// Fan-out: the first measured publish to the slowest subscriber holding the last message.
  /// Catch-up: the subscriber's start to it holding the last message of the backlog.
  double seconds = 0;
  std::uint64_t messages = 0;     ///< per subscriber
  std::uint64_t replayed = 0;     ///< fabric: deliveries that came by replay, over all subscribers
  histogram latency;              ///< latency op: scheduled publish to delivery, ns

  /// Messages per second each subscriber received.
  double rate() const noexcept { return seconds > 0 ? static_cast<double>(messages) / seconds : 0; }
};

/// Fan-out through fabric: `s.subscribers` stream_subscribers (from sequence 1, at most once) in
/// a child process; a warm-up every subscriber must hold first, then `s.count` messages published
/// as fast as the journal takes them. Every subscriber must receive every sequence in order.
/// Throws std::runtime_error on a gap, a timeout or a failed publish.
outcome fanout(const std::filesystem::path& dir, const spec& s);

/// The same fan-out over raw libzmq: an XPUB (so that it sees every subscription arrive, and
/// with ZMQ_XPUB_NODROP, so that a slow subscriber holds it back rather than losing messages)
/// to `s.subscribers` SUB sockets in a child process, each message numbered.
outcome raw_fanout(const spec& s);

/// Catch-up: `s.count` messages published with no subscriber; then one subscriber starts from
/// sequence 1 in a child process and the time runs until it holds the last. The journal stays
/// in `dir`, closed, for raw_catchup; `map_size` gets its map size.
outcome catchup(const std::filesystem::path& dir, const spec& s, std::size_t& map_size);

/// The raw baseline of catch-up: one LMDB cursor walk over the records catchup() left in `dir`,
/// each checked as the journal checks it.
outcome raw_catchup(const std::filesystem::path& dir, std::size_t map_size, std::uint64_t count);

/// Open loop at `s.rate` to one subscriber: each message published (publish_async) at its
/// scheduled time; latency from that time to the subscriber's handler holding it (the steady
/// clock is one for every process of the host).
outcome latency(const std::filesystem::path& dir, const spec& s);

/// The child: `subscribers` subscribers of `impl` ("fabric" or "raw") to `endpoint` (and
/// `replay_endpoint`), each expecting sequences 1..`total` in order. Prints "ready" once every
/// one holds `warm` (when `warm` > 0), then "done <start ns> <last ns> <replayed>" once every
/// one holds `total` (start: before the subscribers were made; last: the slowest one's last
/// message), or "error <why>"; with `times`, then "delivered <n>" and "<seq> <ns>" lines for
/// subscriber 0. Exits when its stdin closes. Returns the exit code.
int subscribers_main(const std::string& impl, const std::string& endpoint, const std::string& replay_endpoint,
                     int subscribers, std::uint64_t total, std::uint64_t warm, bool times,
                     std::chrono::milliseconds timeout);

}  // namespace fabric::perf::stream_bench
