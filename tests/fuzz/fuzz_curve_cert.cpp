// Fuzz target: the CURVE certificate parser (include/fabric/security.hpp), which reads files a
// user or another tool wrote: allowlist directories and secret certificates. The whole input is
// the certificate text. What parses must format again and parse back to the same certificate;
// whatever is refused must be refused with fabric::error, never anything else.
#include "fuzz_frames.hpp"

#include <fabric/error.hpp>
#include <fabric/security.hpp>

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace {

using fabric::fuzz::check;

void check_round_trip(const fabric::curve_certificate& cert) {
  const bool secret = !cert.secret_key.empty();
  std::string text;
  try {
    text = fabric::format_curve_certificate(cert, secret, "fuzz");
  } catch (const fabric::error&) {
    // Metadata ZPL can read but not write back (an unquoted value holding both quote marks) is
    // refused by the writer: allowed, the parse itself was right.
    return;
  }
  const fabric::curve_certificate again = fabric::parse_curve_certificate(text, "again");
  check(again.public_key == cert.public_key, "the public key changed through format and parse");
  check(again.secret_key == cert.secret_key, "the secret key changed through format and parse");
  check(again.metadata == cert.metadata, "the metadata changed through format and parse");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  fabric::curve_certificate cert;
  try {
    cert = fabric::parse_curve_certificate(text, "fuzz");
  } catch (const fabric::error&) {
    return 0;  // refused with a clear error: what a bad file must get
  }
  check(fabric::is_z85_key(cert.public_key), "a parsed public key is not Z85");
  check(cert.secret_key.empty() || fabric::is_z85_key(cert.secret_key), "a parsed secret key is not Z85");
  check_round_trip(cert);
  return 0;
}
