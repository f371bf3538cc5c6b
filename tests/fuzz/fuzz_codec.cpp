// Fuzz target: the bounded msgpack decoder (include/fabric/codec.hpp) and the typed payloads
// fabric and its users convert decoded objects into. The first octets pick the limits; the rest
// is one msgpack object. What decodes must pack again and decode to an equal object, and each
// typed value must survive pack and unpack unchanged.
#include "fuzz_frames.hpp"

#include <fabric/codec.hpp>

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <vector>

namespace {

using fabric::fuzz::check;

// A user payload of the usual shape, as the examples define theirs.
struct reading {
  std::string sensor;
  double value = 0;
  std::int64_t at_ns = 0;
  std::vector<std::string> tags;
  std::map<std::string, std::string> labels;
  MSGPACK_DEFINE(sensor, value, at_ns, tags, labels)
};

// The journal's own stored payloads (src/journal/retention.cpp and dead_letters.cpp).
using policy_tuple = std::tuple<std::uint64_t, std::uint64_t, std::int64_t, std::vector<std::string>>;
using dead_letter_tuple =
    std::tuple<std::string, std::uint64_t, std::string, std::uint32_t, std::int64_t, std::string>;
using timed_tuple = std::tuple<std::string, std::string>;

std::string packed(const fabric::frame& f) { return std::string(fabric::view(f)); }

// Converts `object` to T; when that works, T must pack and unpack to the same bytes.
template <class T>
void check_typed(const msgpack::object& object) {
  auto value = fabric::convert_object<T>(object);
  if (!value) return;
  const fabric::frame first = fabric::pack(*value);
  auto again = fabric::unpack<T>(first);
  check(again.has_value(), "a packed typed value does not unpack");
  check(packed(fabric::pack(*again)) == packed(first), "a typed value changed through pack and unpack");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fabric::fuzz::input in(data, size);
  fabric::decode_limits limits;
  const std::uint8_t choice = in.byte();
  if (choice & 1) limits.max_elements = in.number(2);
  if (choice & 2) limits.max_depth = in.byte() % (fabric::max_decode_depth + 1);
  const std::string_view body = in.rest();

  auto handle = fabric::decode_msgpack(body, limits);
  if (!handle) return 0;
  const msgpack::object& object = handle->get();

  // Packing what was decoded, then decoding and packing that again, gives the same bytes
  // (packing may choose shorter encodings than the input's, so those may differ; and bytes,
  // unlike object ==, treat a NaN as equal to itself).
  const fabric::frame repacked = fabric::pack(object);
  auto again = fabric::decode_msgpack(fabric::view(repacked));
  check(again.has_value(), "a repacked object does not decode");
  check(packed(fabric::pack(again->get())) == packed(repacked), "an object changed through pack and decode");

  check_typed<reading>(object);
  check_typed<policy_tuple>(object);
  check_typed<dead_letter_tuple>(object);
  check_typed<timed_tuple>(object);
  check_typed<std::string>(object);
  check_typed<std::int64_t>(object);
  check_typed<std::vector<std::uint32_t>>(object);
  check_typed<std::map<std::string, std::vector<std::string>>>(object);
  return 0;
}
