// Shared by the fuzz targets and the seed corpus generator: how a fuzzer's flat input becomes
// choices, numbers and multipart messages, and how a real message is written back in that form.
//
// Input format (each read takes what is left when the input runs short, never more):
//
//   frame    = len8 *OCTET / %xFF len16 *OCTET   ; len8 < 0xFF octets, or a big-endian 16-bit length
//   counted  = count frame*                      ; count: one octet, the number of frames
//   rest     = frame*                            ; frames until the input ends, at most a bound
//
// Every frame is at most 65,535 octets and every message at most the bound its target names, so
// a target's memory is bounded by its input size times a small constant.
#pragma once

#include <fabric/message.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace fabric::fuzz {

/// Stops the process with `what` when `ok` is false: what a fuzzer reports as a crash.
inline void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz invariant broken: %s\n", what);
    std::abort();
  }
}

/// Reads choices, numbers, byte strings and messages from a fuzzer's input, left to right.
class input {
 public:
  input(const std::uint8_t* data, std::size_t size) noexcept
      : data_(reinterpret_cast<const char*>(data)), size_(size) {}

  bool empty() const noexcept { return at_ >= size_; }
  std::size_t left() const noexcept { return size_ - at_; }

  /// One octet; 0 once the input is used up.
  std::uint8_t byte() noexcept { return empty() ? 0 : static_cast<std::uint8_t>(data_[at_++]); }

  /// `n` (at most 8) octets read as a big-endian number; missing octets count as zero.
  std::uint64_t number(std::size_t n) noexcept {
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < n && i < 8; ++i) v = (v << 8) | byte();
    return v;
  }

  /// Up to `n` octets, as a view into the input.
  std::string_view bytes(std::size_t n) noexcept {
    if (n > left()) n = left();
    std::string_view out(data_ + at_, n);
    at_ += n;
    return out;
  }

  /// Everything left, as a view into the input.
  std::string_view rest() noexcept { return bytes(left()); }

  /// One frame's octets (see the grammar above).
  std::string_view frame_bytes() noexcept {
    std::size_t n = byte();
    if (n == 0xFF) n = static_cast<std::size_t>(number(2));
    return bytes(n);
  }

  /// A message of as many frames as the count octet says (fewer when the input runs out).
  message counted_message() {
    message m;
    const std::size_t count = byte();
    for (std::size_t i = 0; i < count && !empty(); ++i) m.push_back(frame_bytes());
    return m;
  }

  /// A message of the frames left in the input, at most `max_frames` of them.
  message rest_message(std::size_t max_frames) {
    message m;
    while (!empty() && m.size() < max_frames) m.push_back(frame_bytes());
    return m;
  }

 private:
  const char* data_;
  std::size_t size_;
  std::size_t at_ = 0;
};

/// Appends `f` as one frame of the input format.
inline void put_frame(std::string& out, std::string_view f) {
  if (f.size() > 0xFFFF) f = f.substr(0, 0xFFFF);
  if (f.size() < 0xFF) {
    out.push_back(static_cast<char>(f.size()));
  } else {
    out.push_back(static_cast<char>(0xFF));
    out.push_back(static_cast<char>(f.size() >> 8));
    out.push_back(static_cast<char>(f.size() & 0xFF));
  }
  out.append(f);
}

/// Appends `m` as `rest` frames (the form input::rest_message() reads).
inline void put_frames(std::string& out, const message& m) {
  for (const auto& f : m) put_frame(out, view(f));
}

/// Appends `m` as a counted message (the form input::counted_message() reads); at most 255 frames.
inline void put_counted(std::string& out, const message& m) {
  const std::size_t count = m.size() < 0xFF ? m.size() : 0xFF;
  out.push_back(static_cast<char>(count));
  for (std::size_t i = 0; i < count; ++i) put_frame(out, m.view(i));
}

/// Appends `v` as `n` big-endian octets (what input::number(n) reads back).
inline void put_number(std::string& out, std::uint64_t v, std::size_t n) {
  for (std::size_t i = n; i-- > 0;) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

/// True when frames [a_from, a.size()) of `a` equal frames [b_from, b.size()) of `b`, byte for byte.
inline bool same_frames(const message& a, std::size_t a_from, const message& b, std::size_t b_from) {
  if (a.size() < a_from || b.size() < b_from) return false;
  if (a.size() - a_from != b.size() - b_from) return false;
  for (std::size_t i = 0; a_from + i < a.size(); ++i)
    if (a.view(a_from + i) != b.view(b_from + i)) return false;
  return true;
}

}  // namespace fabric::fuzz
