// CURVE keys and the per-socket security settings.
//
// Thread safety: plain values; key generation is safe from any thread.
#pragma once

#include <string>
#include <variant>

namespace fabric {

/// A CURVE key pair, both keys Z85-encoded (40 characters each).
struct curve_keypair {
  std::string public_key;
  std::string secret_key;

  /// A fresh key pair from libzmq's CSPRNG.
  /// Throws: fabric::error(not_supported) when libzmq was built without CURVE.
  static curve_keypair generate();
  /// The public key belonging to `secret_key` (Z85).
  /// Throws: fabric::error(invalid_argument) for a malformed key.
  static curve_keypair from_secret(const std::string& secret_key);
};

/// True when `key` is a well-formed Z85 CURVE key (40 chars of the Z85 alphabet).
bool is_z85_key(const std::string& key) noexcept;

/// This socket is a CURVE server: it encrypts, and its clients are authenticated by the
/// context's ZAP handler (see context::allow_curve_client).
struct curve_server {
  curve_keypair keys;
  std::string zap_domain = "fabric";  ///< the ZAP domain reported to the handler
};

/// This socket is a CURVE client of a server whose public key is `server_public_key`.
struct curve_client {
  curve_keypair keys;
  std::string server_public_key;
};

/// No security (the default), CURVE server, or CURVE client.
using security_options = std::variant<std::monostate, curve_server, curve_client>;

}  // namespace fabric
