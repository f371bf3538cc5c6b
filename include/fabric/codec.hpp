// Bounded msgpack encoding and decoding: the only way fabric turns untrusted bytes into objects.
//
// Every decode is of exactly one msgpack object filling the whole input. The input is first
// walked without building anything: it must be complete and well formed, nest at most
// max_decode_depth deep, and claim at most one element per input byte over the whole parse (a
// valid input can hold no more), or a caller's smaller element budget. Only then are objects
// built, so the memory a decode takes is proportional to its input (about 24 bytes per element
// at most) and a hostile input that claims more than it holds allocates nothing. Failures come
// back as errc::malformed or errc::too_large, never as exceptions.
//
// Thread safety: all functions are reentrant.
#pragma once

#include <fabric/message.hpp>
#include <fabric/result.hpp>

#include <msgpack.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string_view>

namespace fabric {

/// Deepest nesting of arrays and maps fabric accepts in any msgpack input.
inline constexpr std::size_t max_decode_depth = 32;

/// Bounds on one decode beyond those the input size implies.
struct decode_limits {
  /// Elements all containers together may claim (a map entry counts as two); the input size
  /// bounds it in any case.
  std::size_t max_elements = SIZE_MAX;
  /// Deepest nesting of arrays and maps; at most max_decode_depth.
  std::size_t max_depth = max_decode_depth;
};

/// Decodes `data` as exactly one msgpack object.
///
/// Strings and binaries in the result point into `data` (no copy): the handle is valid only while
/// `data` is alive and unchanged.
/// Returns: the object, or errc::malformed (truncated, invalid, trailing bytes) or errc::too_large
/// (a count, length, element budget or depth over the limits); when it fails, nothing was
/// allocated for the objects the input claimed.
result<msgpack::object_handle> decode_msgpack(std::span<const std::byte> data,
                                              const decode_limits& limits = {}) noexcept;

inline result<msgpack::object_handle> decode_msgpack(std::string_view data,
                                                     const decode_limits& limits = {}) noexcept {
  return decode_msgpack(std::as_bytes(std::span(data.data(), data.size())), limits);
}

/// Packs `value` with msgpack into a new frame (the buffer is handed to the frame, not copied).
template <class T>
frame pack(const T& value) {
  msgpack::sbuffer buffer;
  msgpack::pack(buffer, value);
  const std::size_t size = buffer.size();
  if (size == 0) return frame();
  char* data = buffer.release();
  return frame(data, size, [](void* p, void*) { std::free(p); }, nullptr);
}

/// Converts a decoded object to T. Returns errc::malformed when the object does not have T's
/// shape (wrong type, integer out of range). Arity follows msgpack-c's versioning rule for
/// std::tuple and MSGPACK_DEFINE types: missing trailing fields keep their defaults and extra
/// ones are ignored, so a newer peer may add fields at the end.
template <class T>
result<T> convert_object(const msgpack::object& object) noexcept {
  try {
    T value{};
    object.convert(value);
    return value;
  } catch (const std::bad_alloc&) {
    return errc::too_large;
  } catch (...) {
    return errc::malformed;
  }
}

/// Decodes `data` as one msgpack object of type T, with the bounds described above.
template <class T>
result<T> unpack(std::span<const std::byte> data) noexcept {
  auto handle = decode_msgpack(data);
  if (!handle) return handle.error();
  return convert_object<T>(handle->get());
}

/// Decodes the bytes of frame `f` as a T.
template <class T>
result<T> unpack(const frame& f) noexcept {
  return unpack<T>(bytes(f));
}

}  // namespace fabric
