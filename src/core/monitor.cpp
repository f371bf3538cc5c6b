// fabric::monitor over zmq_socket_monitor. Event frames: [u16 event | u32 value] then endpoint.
#include <fabric/error.hpp>
#include <fabric/monitor.hpp>

#include "core/socket_liveness.hpp"

#include <zmq.h>

#include <atomic>
#include <cstring>

namespace fabric {
namespace {
std::atomic<std::uint64_t> monitor_counter{0};
}

monitor::monitor(context& ctx, const socket& target)
    : target_(target.native()),
      target_liveness_(target.liveness_),
      pair_(ctx.native(), zmq::socket_type::pair) {
  if (target_ == nullptr) throw error(errc::closed, "cannot monitor a closed socket");
  const std::string endpoint =
      "inproc://fabric.monitor." + std::to_string(monitor_counter.fetch_add(1));
  if (zmq_socket_monitor(target_, endpoint.c_str(), ZMQ_EVENT_ALL) != 0)
    throw_zmq_error(zmq_errno(), "cannot start a socket monitor");
  pair_.set(zmq::sockopt::linger, 0);
  pair_.connect(endpoint);
}

// libzmq sends monitor events with blocking sends from whichever thread raises them (usually its
// I/O thread). Closing our end alone would leave that feed with no reader, and the socket's next
// event (a disconnect, a reconnect) would block the I/O thread and with it every connection of
// the context. So stop the feed first, while our end still reads, unless the socket is already
// closed (then libzmq stops the feed itself as it destroys the socket, and the handle must not
// be touched).
monitor::~monitor() {
  if (const auto liveness = target_liveness_.lock()) {
    std::lock_guard lock(liveness->mutex);
    if (liveness->handle != nullptr) zmq_socket_monitor(liveness->handle, nullptr, 0);
  }
}

result<monitor_event> monitor::next(std::chrono::milliseconds timeout) {
  zmq_pollitem_t item{pair_.handle(), 0, ZMQ_POLLIN, 0};
  const int rc = zmq_poll(&item, 1, static_cast<long>(timeout.count()));
  if (rc < 0) return zmq_errno() == EINTR ? errc::interrupted : errc::closed;
  if (rc == 0) return errc::timeout;
  zmq::message_t head;
  zmq::message_t address;
  if (!pair_.recv(head, zmq::recv_flags::dontwait)) return errc::timeout;
  if (!head.more() || head.size() != 6) return errc::malformed;
  if (!pair_.recv(address, zmq::recv_flags::dontwait)) return errc::malformed;
  std::uint16_t event = 0;
  std::uint32_t value = 0;
  std::memcpy(&event, head.data(), sizeof event);
  std::memcpy(&value, static_cast<const char*>(head.data()) + 2, sizeof value);
  return monitor_event{static_cast<socket_event>(event), value, address.to_string()};
}

bool monitor::wait_for(socket_event event, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    auto e = next(left);
    if (!e) {
      if (e.is(errc::interrupted)) continue;
      return false;
    }
    if (e->event == event) return true;
  }
}

}  // namespace fabric
