// The Freelance (10/FLP) server as a pure machine: it judges each message its ROUTER received,
// answers PING itself, counts and drops what breaks the grammar, and hands requests on; replies go
// back with the request's control frame. No socket, no clock: freelance_server.cpp runs it on the
// protocol driver (with a handler) or under the application's recv() / reply().
//
//   identity | "PING"               -> identity | "PONG"
//   identity | control | body...    -> a request; its reply: identity | control | reply...
//   anything else                   -> counted as malformed, dropped
//
// Thread safety: one thread drives the machine; stats() may be read from any thread (the counters
// are single-writer relaxed atomics).
#pragma once

#include "core/machine.hpp"

#include <fabric/freelance.hpp>
#include <fabric/message.hpp>
#include <fabric/result.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>

namespace fabric::flp {

/// A counter written by one thread and read by any.
class counter {
 public:
  void add() noexcept { v_.store(v_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed); }
  std::uint64_t get() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> v_{0};
};

class server_machine {
 public:
  /// `out` must outlive the machine. `on_request` may be empty: then requests come out of
  /// accept() instead. Throws: fabric::error(invalid_argument) for max_control over 65536.
  server_machine(detail::machine_sink& out, std::size_t max_control, freelance::server::handler on_request);
  server_machine(const server_machine&) = delete;
  server_machine& operator=(const server_machine&) = delete;

  /// Judges one message: a PING is answered, a malformed message counted and dropped. A request
  /// is moved into `out`.
  /// Returns: true when `out` holds a request.
  bool accept(message&& m, freelance::request& out);
  /// Sends `body` as the reply to `r`; an empty body goes as one empty frame.
  /// Returns: success (`r` and `body` consumed); errc::peer_unreachable, back_pressure or closed
  /// with both unchanged (the first two counted).
  result<void> reply(freelance::request& r, message& body);

  /// With a handler: accept(), run the handler, reply. The vocabulary of core/machine.hpp.
  void on_message(message&& m, detail::time_point now);
  void on_tick(detail::time_point) noexcept {}
  detail::time_point next_tick() const noexcept { return detail::time_point::max(); }
  /// A message the socket dropped before it reached the machine (too many frames): counted.
  void note_malformed() noexcept { malformed_.add(); }

  freelance::server_stats stats() const noexcept;

 private:
  detail::machine_sink& out_;
  std::size_t max_control_;
  freelance::server::handler on_request_;
  freelance::request in_;  // reused by on_message
  counter pings_, requests_, replies_, malformed_, unroutable_, back_pressure_, handler_failures_;
};

}  // namespace fabric::flp
