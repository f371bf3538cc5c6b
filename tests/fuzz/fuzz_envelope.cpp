// Fuzz target: the FAB1 envelope decoder (include/fabric/envelope.hpp). The first octet picks the
// entry point: a lone header frame (decode_header) or a whole envelope (decode_envelope). What
// decodes must encode again and decode to the same header.
#include "fuzz_frames.hpp"

#include <fabric/envelope.hpp>

#include <cstddef>
#include <cstdint>
#include <utility>

namespace {

using fabric::fuzz::check;

// A header the decoder accepted is within header_limits, so encoding it must work, and decoding
// what was encoded must give it back.
void check_round_trip(const fabric::header& h) {
  const fabric::frame encoded = fabric::encode_header(h);
  auto again = fabric::decode_header(encoded);
  check(again.has_value(), "an encoded header does not decode");
  check(*again == h, "a header changed through encode and decode");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fabric::fuzz::input in(data, size);
  const std::uint8_t mode = in.byte();
  if (mode % 2 == 0) {
    const fabric::frame f = fabric::make_frame(in.rest());
    auto h = fabric::decode_header(f);
    if (h) check_round_trip(*h);
    return 0;
  }
  fabric::message m = in.rest_message(64);
  const bool tagged = fabric::is_envelope(m);
  const std::size_t frames = m.size();
  auto e = fabric::decode_envelope(std::move(m));
  if (!e) return 0;
  check(tagged, "an envelope without the tag frame decoded");
  check(e->body.size() + 2 == frames, "the body lost or gained frames");
  check_round_trip(e->header);
  fabric::message rebuilt = fabric::make_envelope(e->header, std::move(e->body));
  auto again = fabric::decode_envelope(std::move(rebuilt));
  check(again.has_value() && again->header == e->header, "a rebuilt envelope decodes differently");
  return 0;
}
