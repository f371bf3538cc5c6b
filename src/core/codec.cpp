// Bounded msgpack decoding. See codec.hpp for the rules.
#include <fabric/codec.hpp>

#include <new>

namespace fabric {

result<msgpack::object_handle> decode_msgpack(std::span<const std::byte> data) noexcept {
  if (data.empty()) return errc::malformed;
  const std::size_t n = data.size();
  // No container can hold more elements than there are bytes left to encode them (each element
  // is at least one byte, each map entry two), and no string or binary can be longer than the
  // input. These limits make the decoder reject, before allocating, any count that the input
  // cannot back.
  const msgpack::unpack_limit limits(/*array=*/n, /*map=*/n / 2, /*str=*/n, /*bin=*/n,
                                     /*ext=*/n, /*depth=*/max_decode_depth);
  const char* bytes = reinterpret_cast<const char*>(data.data());
  std::size_t offset = 0;
  try {
    // Returning true references strings/binaries in place instead of copying them.
    auto reference_all = [](msgpack::type::object_type, std::size_t, void*) { return true; };
    msgpack::object_handle handle =
        msgpack::unpack(bytes, n, offset, reference_all, nullptr, limits);
    if (offset != n) return errc::malformed;  // trailing bytes
    return handle;
  } catch (const msgpack::size_overflow&) {
    return errc::too_large;  // array/map/str/bin/ext/depth over the limit
  } catch (const std::bad_alloc&) {
    return errc::too_large;
  } catch (...) {
    return errc::malformed;  // insufficient bytes, parse error, ...
  }
}

}  // namespace fabric
