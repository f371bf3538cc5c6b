// A socket served on its own thread (an actor) for tests: `serve` is called with the socket and
// every message it receives, and the owner is told of each one, so a test can wait until the
// server has seen n messages instead of sleeping. The socket is bound by the caller and handed
// over; stop() (or destruction) joins the thread.
#pragma once

#include <fabric/fabric.hpp>

#include "support/support.hpp"

#include <cstddef>
#include <functional>
#include <memory>

namespace fabric::testing {

class socket_server {
 public:
  using handler = std::function<void(any_socket&, message&&)>;

  socket_server(context& ctx, std::shared_ptr<any_socket> s, handler serve)
      : socket_(s), actor_(ctx, [s, serve = std::move(serve)](pair_socket& pipe) {
          reactor r;
          r.add(pipe, [&] {
            message m;
            if (pipe.try_recv(m) && actor::is_term(m)) r.stop();
          });
          r.add(*s, [&] {
            message m;
            while (s->try_recv(m)) {
              serve(*s, std::move(m));
              (void)pipe.send(make_frame("got"));
            }
          });
          actor::signal_ready(pipe);
          (void)r.run();
        }) {}
  ~socket_server() { stop(); }
  socket_server(const socket_server&) = delete;
  socket_server& operator=(const socket_server&) = delete;

  void stop() { actor_.stop(); }

  /// True once `n` more messages have reached the server, within wait_bound.
  bool wait_for_messages(std::size_t n) {
    for (std::size_t i = 0; i < n; ++i)
      if (!actor_.pipe().recv(wait_bound)) return false;
    return true;
  }

 private:
  std::shared_ptr<any_socket> socket_;
  actor actor_;
};

}  // namespace fabric::testing
