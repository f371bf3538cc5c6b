// Plain cppzmq helpers for tests that speak a protocol frame by frame, independent of fabric's
// socket classes: send a list of strings as one multipart message, receive one with a bound.
#pragma once

#include <zmq.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace fabric::testing {

using raw_frames = std::vector<std::string>;

/// Sends `frames` as one message.
inline void send_frames(zmq::socket_t& s, const raw_frames& frames) {
  for (std::size_t i = 0; i < frames.size(); ++i)
    s.send(zmq::buffer(frames[i]), i + 1 < frames.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
}

/// The next message, or nothing within `timeout`.
inline std::optional<raw_frames> recv_frames(zmq::socket_t& s, std::chrono::milliseconds timeout) {
  zmq::pollitem_t item{s.handle(), 0, ZMQ_POLLIN, 0};
  if (zmq::poll(&item, 1, timeout) == 0) return std::nullopt;
  raw_frames out;
  zmq::message_t m;
  do {
    (void)s.recv(m);
    out.emplace_back(m.to_string());
  } while (m.more());
  return out;
}

}  // namespace fabric::testing
