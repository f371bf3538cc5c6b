// The workloads behind `fabric-perf majordomo`: request/reply round trips through fabric's
// Majordomo broker (fabric::mdp::broker, N fabric::mdp::worker echo threads, a synchronous
// fabric::mdp::client or an asynchronous fabric::mdp::async_client), and the same client shapes
// over raw cppzmq: a DEALER client, a ROUTER/DEALER proxy (zmq_proxy_steerable) and N DEALER
// echo threads, so both sides make the same hops over the same transport. An optional second
// baseline, raw_lb, replaces the proxy by a minimal load balancer on one ROUTER that gives each
// worker at most `credit` requests at a time (1: the 7/MDP rule). fabric's workers may take a
// credit of their own (worker_credit: the broker's CREDIT extension; 1 is plain 7/MDP).
// majordomo_bench.cpp turns the outcomes into runs.
#pragma once

#include "harness/histogram.hpp"

#include <chrono>
#include <fabric_support/endpoint.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace fabric::perf::majordomo_bench {

enum class side { fabric, raw, raw_lb };
enum class client_kind { sync, async };
// Transports and their names are fabric_support's.
using transport_kind = support::transport;
using support::parse_transport;
using support::to_string;

std::string_view to_string(side s) noexcept;
std::string_view to_string(client_kind c) noexcept;
std::optional<client_kind> parse_client(std::string_view s) noexcept;

/// The smallest body: every request carries its send time (or, open loop, its intended send
/// time) in its first 8 bytes, and the echo brings it back.
inline constexpr std::size_t min_size = 8;

/// One measured workload.
struct spec {
  side impl = side::fabric;
  client_kind client = client_kind::async;
  transport_kind transport = transport_kind::tcp;
  int workers = 1;               ///< echo workers (fabric) / echo threads behind the proxy (raw)
  int credit = 1;                ///< raw_lb: requests each worker may hold at once
  int worker_credit = 1;         ///< fabric: each worker's credit (mdp::worker_options::credit)
  std::size_t size = 256;        ///< request and reply body bytes (>= min_size)
  std::uint64_t count = 10'000;  ///< measured requests
  std::uint64_t warmup = 1'000;  ///< requests completed before measuring starts
  std::size_t window = 256;      ///< async closed loop: requests kept outstanding
  double rate = 0;               ///< async: > 0 runs open loop at this many requests per second
  std::chrono::milliseconds timeout{10'000};  ///< longest wait for any one reply or set-up step
  /// For testing the failure path: worker (or echo thread) 0 throws instead of answering its
  /// request number `fail_after + 1`. 0: never.
  std::uint64_t fail_after = 0;
};

/// What one run measured.
struct outcome {
  double seconds = 0;           ///< from the warm-up's last reply to the last reply
  std::uint64_t completed = 0;  ///< measured replies
  /// Nanoseconds per measured request: send to reply (closed loop, sync), intended send time to
  /// reply (open loop).
  histogram latency;
  /// Open loop: how late sends left behind their schedule (the sender's wake-up, back-pressure),
  /// median and largest. Every latency sample includes its request's lag.
  std::uint64_t send_lag_p50_ns = 0;
  std::uint64_t max_send_lag_ns = 0;

  double rate() const noexcept { return seconds > 0 ? static_cast<double>(completed) / seconds : 0; }
};

/// Sets up the broker / proxy, the workers and the client, runs `s`, and tears everything down
/// again (every thread joined, every socket closed) before returning.
/// Throws: std::runtime_error naming what failed (a worker, the broker, a reply that never came,
/// a reply that is not the request's echo). A run that still has not ended well past its
/// expected time has its context shut down; if even that does not end it, the process prints
/// what was stuck and exits, so the benchmark never hangs.
outcome measure(const spec& s);

/// "fabric async closed window=256 workers=4 size=256 tcp", for messages.
std::string describe(const spec& s);

}  // namespace fabric::perf::majordomo_bench
