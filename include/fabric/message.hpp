// fabric::message: a multipart ZeroMQ message, a sequence of frames moved, never copied, through
// send and receive.
//
// Thread safety: a message is a plain value; do not share one between threads without locking.
#pragma once

#include <zmq.hpp>

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fabric {

/// One ZeroMQ frame. fabric uses cppzmq's message_t as its frame type, so frames move freely
/// between fabric and code that uses cppzmq directly.
using frame = zmq::message_t;

/// Returns a frame holding a copy of `bytes`.
inline frame make_frame(std::string_view bytes) { return frame(bytes.data(), bytes.size()); }

/// Returns the bytes of `f` as a string_view, valid while `f` is alive and unchanged.
inline std::string_view view(const frame& f) noexcept {
  return {static_cast<const char*>(f.data()), f.size()};
}

/// Returns the bytes of `f` as a span, valid while `f` is alive and unchanged.
inline std::span<const std::byte> bytes(const frame& f) noexcept {
  return {static_cast<const std::byte*>(f.data()), f.size()};
}

/// A multipart message: an ordered list of frames.
///
/// Frames are moved in and out; the bytes of a frame are copied only by the helpers that take a
/// string_view. A message keeps its storage across clear(), so receiving into the same message
/// in a loop allocates nothing in the steady state.
class message {
 public:
  using container = std::vector<frame>;
  using iterator = container::iterator;
  using const_iterator = container::const_iterator;

  message() = default;
  /// A message of one frame holding a copy of `body`.
  explicit message(std::string_view body) { push_back(body); }
  /// A message made of `frames`, moved in.
  explicit message(container frames) noexcept : frames_(std::move(frames)) {}

  message(message&&) noexcept = default;
  message& operator=(message&&) noexcept = default;
  message(const message&) = delete;
  message& operator=(const message&) = delete;

  /// A deep copy (frames are copied byte for byte). Explicit because it costs.
  message clone() const;

  std::size_t size() const noexcept { return frames_.size(); }
  bool empty() const noexcept { return frames_.empty(); }
  /// Total payload bytes over all frames.
  std::size_t byte_size() const noexcept;

  frame& operator[](std::size_t i) noexcept { return frames_[i]; }
  const frame& operator[](std::size_t i) const noexcept { return frames_[i]; }
  frame& front() noexcept { return frames_.front(); }
  frame& back() noexcept { return frames_.back(); }
  const frame& front() const noexcept { return frames_.front(); }
  const frame& back() const noexcept { return frames_.back(); }
  iterator begin() noexcept { return frames_.begin(); }
  iterator end() noexcept { return frames_.end(); }
  const_iterator begin() const noexcept { return frames_.begin(); }
  const_iterator end() const noexcept { return frames_.end(); }

  /// The bytes of frame `i` as a string_view (no copy).
  std::string_view view(std::size_t i) const noexcept { return fabric::view(frames_[i]); }

  void push_back(frame&& f) { frames_.push_back(std::move(f)); }
  void push_back(std::string_view bytes) { frames_.emplace_back(bytes.data(), bytes.size()); }
  void push_back(const void* data, std::size_t size) { frames_.emplace_back(data, size); }
  /// Prepends a frame, as routing envelopes do. O(frames).
  void push_front(frame&& f);
  void push_front(std::string_view bytes) { push_front(make_frame(bytes)); }
  /// Removes and returns the first frame. Precondition: !empty().
  frame pop_front();
  /// Removes and returns the last frame. Precondition: !empty().
  frame pop_back();

  /// Appends a fresh empty frame and returns it, for receiving into.
  frame& emplace_back() { return frames_.emplace_back(); }
  void clear() noexcept { frames_.clear(); }
  void reserve(std::size_t n) { frames_.reserve(n); }

  /// The frames, for algorithms that want the container.
  container& frames() noexcept { return frames_; }
  const container& frames() const noexcept { return frames_; }

 private:
  container frames_;
};

/// Builds a message from string-like parts: `make_message("", "MDPC01", service)`.
template <class... Parts>
message make_message(const Parts&... parts) {
  message m;
  m.reserve(sizeof...(Parts));
  (m.push_back(std::string_view(parts)), ...);
  return m;
}

}  // namespace fabric
