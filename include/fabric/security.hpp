// CURVE keys, certificates and the per-socket security settings.
//
// Certificates are text files in the ZeroMQ Property Language (RFC 4/ZPL), laid out as CZMQ's
// zcert writes them, so a key pair made by fabric-keygen works with CZMQ and the other way round:
// a public certificate `name` holds the public key, and its secret twin `name_secret` (readable by
// its owner only) holds both keys. An allowlist directory holds the public certificates of the
// clients a CURVE server accepts, one per file (see docs/security.md).
//
// Thread safety: plain values and free functions; all are safe to call from any thread.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

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

/// A CURVE certificate: a public key, the matching secret key in a secret certificate (empty in a
/// public one), and name/value metadata (such as "name" or "email") in file order.
struct curve_certificate {
  std::string public_key;
  std::string secret_key;
  std::vector<std::pair<std::string, std::string>> metadata;

  /// The key pair of a secret certificate.
  /// Throws: fabric::error(invalid_argument) when this certificate has no secret key.
  curve_keypair keypair() const;
};

/// Largest certificate file read; a bigger one is refused as malformed before it is parsed.
inline constexpr std::size_t max_certificate_bytes = 64 * 1024;

/// Parses certificate text (ZPL). `source` names it in error messages (a file name).
/// Requires curve/public-key; checks every key is Z85 and, in a secret certificate, that the
/// secret key belongs to the public key.
/// Throws: fabric::error(malformed) naming the source and line, for text that is not ZPL, a
/// missing or malformed key, or a key pair that does not match; fabric::error(too_large) over
/// max_certificate_bytes.
curve_certificate parse_curve_certificate(std::string_view text, std::string_view source = "certificate");

/// The text of `cert` as a public certificate (`with_secret` false: no secret key) or as a
/// secret one. `heading` becomes the comment lines at the top (one per line).
std::string format_curve_certificate(const curve_certificate& cert, bool with_secret,
                                     std::string_view heading = {});

/// Writes `path` (the public certificate, mode 0644) and `path` + "_secret" (the secret one,
/// mode 0600, as CZMQ names it), each whole or not at all (a temporary file moved into place).
/// With `overwrite` false an existing file is an error, and neither file is left behind.
/// Throws: fabric::error(invalid_argument) when `cert` has no secret key, `path` itself ends in
/// "_secret", a metadata name or value cannot be written as ZPL, or a file exists and
/// `overwrite` is false; fabric::error(io_error) when a file cannot be written.
void save_curve_certificate(const curve_certificate& cert, const std::filesystem::path& path,
                            bool overwrite = false);

/// Reads a certificate file: public or secret, as it is. A file holding a secret key must not be
/// readable or writable by group or others.
/// Throws: fabric::error(io_error) for a file that cannot be read (missing, a directory, a FIFO,
/// no permission); fabric::error(too_large) over max_certificate_bytes;
/// fabric::error(invalid_argument) for a secret key file open to others (the message says how
/// to fix it); what parse_curve_certificate throws.
curve_certificate load_curve_certificate(const std::filesystem::path& path);

/// The key pair of a secret certificate: `path` names the secret file itself (any file holding
/// a secret key), or the public certificate whose "_secret" twin is then read. Throws: as load_curve_certificate, and
/// fabric::error(invalid_argument) when the file holds no secret key.
curve_keypair load_curve_keypair(const std::filesystem::path& path);

/// A CURVE public key given on a command line or in a setting: 40 Z85 characters as they are, or
/// the path of a certificate file holding it. Throws: as load_curve_certificate, or
/// fabric::error(invalid_argument) when `key_or_path` is neither.
std::string load_curve_public_key(const std::string& key_or_path);

/// Most certificates read from one allowlist directory.
inline constexpr std::size_t max_allowlist_certificates = 100'000;

/// The public keys of every certificate in `dir` and its subdirectories, sorted, without
/// duplicates. Files whose name ends in "_secret" and names starting with '.' are skipped, as
/// CZMQ's certificate store skips secret files. Every other regular file must be a certificate.
/// Throws: fabric::error(io_error) when `dir` is not a readable directory; what
/// load_curve_certificate throws, naming the file; fabric::error(too_large) past
/// max_allowlist_certificates files.
std::vector<std::string> load_curve_allowlist(const std::filesystem::path& dir);
/// As above, but a file that is not a valid certificate is reported in `errors` (when not null)
/// and left out, instead of failing the whole directory: what a reload uses, so that keys
/// removed from the directory are refused even while another file in it is broken.
std::vector<std::string> load_curve_allowlist(const std::filesystem::path& dir, std::vector<std::string>* errors);

/// This socket is a CURVE server: it encrypts, and its clients are authenticated by the
/// context's ZAP handler, which accepts the keys allowed on the context (context::
/// allow_curve_client) and those of the allowlist directory, if one is given here.
///
/// A CURVE server socket (other than REQ and REP, which cannot drop a message without breaking
/// their alternation) also drops every message that arrives over a ZMTP connection without a
/// "User-Id" (the client key the handler accepted). Messages over inproc come from this process,
/// have no handshake, and are not checked.
struct curve_server {
  curve_keypair keys;
  std::string zap_domain = "fabric";  ///< the ZAP domain reported to the handler
  /// A directory of client public certificates (load_curve_allowlist), read when the socket is
  /// made (so also each time another socket names it) and on context::reload_curve_allowlists().
  /// Its keys are accepted on the sockets of this zap_domain only. Empty: only the context's own
  /// allowed keys.
  std::filesystem::path allowlist_dir{};
};

/// This socket is a CURVE client of a server whose public key is `server_public_key`.
struct curve_client {
  curve_keypair keys;
  std::string server_public_key;
};

/// No security (the default), CURVE server, or CURVE client.
using security_options = std::variant<std::monostate, curve_server, curve_client>;

}  // namespace fabric
