// Plain helpers for tests that speak a protocol frame by frame, independent of fabric's socket
// classes: integer frames as protocol grammars write them, lists of frames joined, and (over
// cppzmq) a list of strings sent as one multipart message and one received with a bound.
#pragma once

#include <zmq.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace fabric::testing {

using raw_frames = std::vector<std::string>;

/// The frame of an unsigned integer, big-endian, of its own width.
inline std::string u32(std::uint32_t v) {
  std::string s(4, '\0');
  for (int i = 0; i < 4; ++i) s[static_cast<std::size_t>(i)] = static_cast<char>(v >> (24 - 8 * i));
  return s;
}
inline std::string u64(std::uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[static_cast<std::size_t>(i)] = static_cast<char>(v >> (56 - 8 * i));
  return s;
}

/// `a` followed by `b`.
inline raw_frames join(raw_frames a, const raw_frames& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

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
