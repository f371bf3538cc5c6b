// The pattern workloads of fabric-perf: throughput and latency of req/rep, router/dealer,
// pub/sub and push/pull over inproc, ipc and tcp. Each workload is written once, as a template
// over a socket policy, and run with fabric's sockets and with raw cppzmq sockets, so the two
// differ only in the library under test.
#pragma once

#include "harness/histogram.hpp"

#include <fabric_support/endpoint.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fabric::perf {

enum class pattern { req_rep, router_dealer, pub_sub, push_pull };
using support::transport;
enum class impl { fabric, raw };

std::string_view to_string(pattern p) noexcept;
std::string_view to_string(impl i) noexcept;
std::optional<pattern> parse_pattern(std::string_view s) noexcept;
// Transports by name, and all of them, are fabric_support's.
using support::all_transports;
using support::parse_transport;
using support::to_string;

inline constexpr pattern all_patterns[] = {pattern::req_rep, pattern::router_dealer,
                                           pattern::pub_sub, pattern::push_pull};

/// What to run.
struct workload {
  pattern pat = pattern::push_pull;
  transport trans = transport::tcp;
  std::size_t size = 256;        ///< payload bytes per message (>= 1; >= 9 for open loop)
  std::uint64_t count = 100000;  ///< measured messages (thr) or samples (lat)
  std::uint64_t warmup = 1000;   ///< messages sent and discarded before measuring
  double rate = 0;               ///< open-loop latency: messages per second; 0 = closed loop
  std::chrono::milliseconds timeout{10000};  ///< bound on any single wait
};

/// Throughput: messages per second, timed at the receiver from the first measured message to the
/// last. For req_rep it is round trips per second (the pattern is lock-step).
double measure_throughput(impl which, const workload& w);

/// Latency in ns. Closed loop (rate == 0): a ping-pong, recording half of each round trip, as
/// libzmq's local_lat does. Open loop (rate > 0): the sender keeps a fixed schedule and stamps
/// each message with its intended send time; the receiver records arrival minus intended time,
/// so a stall delays every message scheduled behind it and shows in the figures (no coordinated
/// omission). Open loop does not apply to req_rep.
histogram measure_latency(impl which, const workload& w);

/// True when the workload can run (e.g. open loop needs a one-way pattern and size >= 9).
bool supports(const workload& w, std::string* why = nullptr);

/// A default measured count for a throughput run of `size`-byte messages: enough to last a
/// fraction of a second on loopback, scaled down by `scale` for quick runs.
std::uint64_t default_thr_count(std::size_t size, double scale);

/// Cross-host pairs with libzmq's perf tools' arguments (<endpoint> <size> <count>).
/// local_lat binds and echoes `count` messages; remote_lat connects, pings, and returns the
/// histogram of one-way (half round trip) latencies. local_thr binds a PULL socket and returns
/// messages per second; remote_thr connects a PUSH socket and sends.
void run_local_lat(impl which, const std::string& endpoint, std::size_t size, std::uint64_t count);
histogram run_remote_lat(impl which, const std::string& endpoint, std::size_t size,
                         std::uint64_t count);
double run_local_thr(impl which, const std::string& endpoint, std::size_t size,
                     std::uint64_t count);
void run_remote_thr(impl which, const std::string& endpoint, std::size_t size, std::uint64_t count);

}  // namespace fabric::perf
