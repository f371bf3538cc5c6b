// The vocabulary every fabric protocol machine speaks, written down once.
//
// A protocol is two things: a pure machine that holds the protocol's state and decides, and a
// driver that moves frames between sockets and the machine (core/driver.hpp). A machine never
// reads a clock and never touches a socket; time is always an argument (Aeron's agents are the
// model), so its tests move time by hand and every fault can be replayed exactly.
//
//   on_message(m, now)         a message arrived on the machine's socket at `now`
//   on_message(port, m, now)   the same, for a machine with several sockets (which one it came on)
//   on_tick(now)               time passed; do whatever is due at `now`. Calling it early is harmless
//   next_tick()                when on_tick() next has work (time_point::max() for never)
//
// Everything a machine emits goes through one sink, given to it at construction and outliving
// it: send(port, m) returns result<void> like a socket's non-blocking send, and a machine that
// owns a connection (a worker, a client) also asks its sink to close and open it. A machine reads
// its configuration once, at construction, and counts what it does in a stats() it can be asked
// for at any time; the driver asks nothing else of it.
//
// Thread safety: a machine and its sink are used by one thread, the one its driver runs on.
#pragma once

#include <fabric/message.hpp>
#include <fabric/result.hpp>

#include <chrono>
#include <concepts>
#include <cstdint>
#include <utility>

namespace fabric::detail {

/// The clock every machine is fed from. Machines never call it: drivers do, once per batch.
using machine_clock = std::chrono::steady_clock;
using time_point = machine_clock::time_point;

/// Names one of a machine's sockets to its sink. A machine with one socket uses port::main; a
/// queue between clients and workers calls its client side main and its worker side backend.
enum class port : std::uint8_t { main = 0, backend = 1 };

/// Where a machine's output goes. The driver implements it over its sockets.
class machine_sink {
 public:
  virtual ~machine_sink() = default;

  /// Sends `m` out of socket `to` without blocking. For a ROUTER, the first frame of `m` is the
  /// peer's routing id.
  /// Returns: success, with `m` consumed; or an error with `m` left as it was (the machine then
  /// keeps it or drops it): errc::peer_unreachable (no such peer), errc::back_pressure or
  /// errc::would_block (the peer's queue is full), errc::closed (no connection, or the context
  /// is shutting down).
  virtual result<void> send(port to, message&& m) = 0;
  result<void> send(message&& m) { return send(port::main, std::move(m)); }

  /// For machines that own their connection: closes socket `which` at once (linger 0), so that
  /// nothing queued on a dead connection is delivered later.
  virtual void close(port which) noexcept { (void)which; }
  /// For machines that own their connection: opens a fresh socket for `which`, connects it and
  /// sends the protocol's greeting (READY, HELLO).
  /// Returns: errc::not_supported where the driver has no connection to manage; any error
  /// creating the socket (e.g. out of file descriptors), after which the machine retries later.
  virtual result<void> open(port which) {
    (void)which;
    return errc::not_supported;
  }
};

/// A machine with one socket.
template <class M>
concept single_port_machine = requires(M& m, const M& cm, message&& msg, time_point now) {
  m.on_message(std::move(msg), now);
  m.on_tick(now);
  { cm.next_tick() } -> std::convertible_to<time_point>;
};

/// A machine with several sockets, told which one each message came on.
template <class M>
concept multi_port_machine = requires(M& m, const M& cm, port p, message&& msg, time_point now) {
  m.on_message(p, std::move(msg), now);
  m.on_tick(now);
  { cm.next_tick() } -> std::convertible_to<time_point>;
};

template <class M>
concept protocol_machine = single_port_machine<M> || multi_port_machine<M>;

}  // namespace fabric::detail
