// CURVE key generation and validation.
#include <fabric/error.hpp>
#include <fabric/security.hpp>

#include <zmq.h>

#include <array>
#include <cstring>

namespace fabric {

bool is_z85_key(const std::string& key) noexcept {
  static constexpr std::string_view alphabet =
      "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
  if (key.size() != 40) return false;
  for (char c : key)
    if (alphabet.find(c) == std::string_view::npos) return false;
  return true;
}

curve_keypair curve_keypair::generate() {
  if (!zmq_has("curve"))
    throw error(errc::not_supported, "this libzmq was built without CURVE support");
  std::array<char, 41> pub{};
  std::array<char, 41> sec{};
  if (zmq_curve_keypair(pub.data(), sec.data()) != 0)
    throw_zmq_error(zmq_errno(), "zmq_curve_keypair failed");
  return {std::string(pub.data(), 40), std::string(sec.data(), 40)};
}

curve_keypair curve_keypair::from_secret(const std::string& secret_key) {
  if (!is_z85_key(secret_key))
    throw error(errc::invalid_argument, "a CURVE secret key must be 40 Z85 characters");
  if (!zmq_has("curve"))
    throw error(errc::not_supported, "this libzmq was built without CURVE support");
  std::array<char, 41> pub{};
  if (zmq_curve_public(pub.data(), secret_key.c_str()) != 0)
    throw_zmq_error(zmq_errno(), "zmq_curve_public failed");
  return {std::string(pub.data(), 40), secret_key};
}

}  // namespace fabric
