// fabric::monitor: watch a socket's connection events (connected, handshake done, disconnected),
// so code can wait for a connection instead of sleeping and hoping.
//
// Thread safety: create and destroy a monitor on the thread that uses the monitored socket (both
// touch the socket); next() and wait_for() may then be called from any one thread.
#pragma once

#include <fabric/context.hpp>
#include <fabric/result.hpp>
#include <fabric/socket.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace fabric {

/// Socket events, with libzmq's bit values (ZMQ_EVENT_*).
enum class socket_event : std::uint16_t {
  connected = 0x0001,
  connect_delayed = 0x0002,
  connect_retried = 0x0004,
  listening = 0x0008,
  bind_failed = 0x0010,
  accepted = 0x0020,
  accept_failed = 0x0040,
  closed = 0x0080,
  close_failed = 0x0100,
  disconnected = 0x0200,
  monitor_stopped = 0x0400,
  handshake_failed_no_detail = 0x0800,
  handshake_succeeded = 0x1000,
  handshake_failed_protocol = 0x2000,
  handshake_failed_auth = 0x4000,
};

/// One event: what happened, libzmq's value (fd, errno, interval...) and the endpoint.
struct monitor_event {
  socket_event event;
  std::uint32_t value = 0;
  std::string endpoint;
};

/// Receives the events of one socket over an inproc pair.
///
/// libzmq delivers events with blocking sends from its I/O thread: read them (next/wait_for) or
/// destroy the monitor. A monitor left alive and unread past about a thousand events stalls the
/// I/O thread, and with it every connection of the context.
class monitor {
 public:
  /// Starts monitoring `target` for every event. Create the monitor before bind/connect so
  /// no event is missed. Throws: fabric::error if libzmq refuses.
  explicit monitor(const socket& target) : monitor(target.owner(), target) {}
  monitor(context& ctx, const socket& target);
  /// Stops libzmq's event feed if the socket is still open, then closes the pair. (libzmq sends
  /// events with blocking sends, so a feed left running with nobody on the other end would
  /// block the I/O thread at the socket's next event.) The socket may be closed first.
  ~monitor();
  monitor(const monitor&) = delete;
  monitor& operator=(const monitor&) = delete;

  /// The next event, waiting at most `timeout`. Returns errc::timeout when none came.
  result<monitor_event> next(std::chrono::milliseconds timeout);
  /// Waits until `event` happens (earlier events are consumed), at most `timeout` in all.
  /// Returns: true when it happened, false on timeout.
  bool wait_for(socket_event event, std::chrono::milliseconds timeout);

 private:
  void* target_;
  std::weak_ptr<detail::socket_liveness> target_liveness_;
  zmq::socket_t pair_;
};

}  // namespace fabric
