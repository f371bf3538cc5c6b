// What the Majordomo worker (mdp_worker.cpp) shares with its tests: the settings it runs the
// shared liveness machine (core/liveness.hpp) with, and its one test seam.
//
// Thread safety: worker_liveness is a pure function; worker_open_failures is an atomic.
#pragma once

#include "core/liveness.hpp"

#include <fabric/majordomo_worker.hpp>

#include <atomic>

namespace fabric::mdp::detail {

/// The liveness settings of a worker with options `o` (already validated). 7/MDP counts any
/// command as a heartbeat, so the worker heartbeats only a connection that has been quiet for an
/// interval (cadence::when_quiet); its one socket is port::main.
inline fabric::detail::liveness::settings worker_liveness(const worker_options& o) noexcept {
  return {.heartbeat = o.heartbeat_interval,
          .liveness = o.liveness,
          .reconnect_initial = o.reconnect_interval,
          .reconnect_max = o.reconnect_interval_max,
          .heartbeats = fabric::detail::liveness::cadence::when_quiet,
          .on = fabric::detail::port::main};
}

/// A test seam: while positive, each attempt of the worker to open a socket fails as if the
/// process were out of file descriptors (EMFILE), and takes one off. Always zero outside tests.
inline std::atomic<int> worker_open_failures{0};

}  // namespace fabric::mdp::detail
