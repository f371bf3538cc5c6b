// Shared by a fabric::socket and the monitors watching it: lets a monitor check, under the mutex,
// that the socket is still open before it touches the libzmq handle.
#pragma once

#include <mutex>

namespace fabric::detail {

struct socket_liveness {
  std::mutex mutex;
  void* handle = nullptr;  // the libzmq socket; null once fabric::socket::close() has run
};

}  // namespace fabric::detail
