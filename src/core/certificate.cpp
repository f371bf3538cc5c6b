// CURVE certificates: a bounded reader and writer of the ZPL text (RFC 4/ZPL) CZMQ's zcert uses,
// and the file rules around it (the secret twin, its permissions, allowlist directories).
#include <fabric/error.hpp>
#include <fabric/security.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>

namespace fabric {
namespace {

constexpr std::size_t max_depth = 8;
constexpr std::size_t max_name = 255;
constexpr std::size_t max_entries = 1024;

[[noreturn]] void malformed(std::string_view source, std::size_t line, const std::string& what) {
  throw error(errc::malformed, std::string(source) + ": line " + std::to_string(line) + ": " + what);
}

bool is_name_char(char c) noexcept {
  // RFC 4/ZPL: letters, digits and "$-_@.&+/".
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::strchr("$-_@.&+/", c) != nullptr;
}

bool is_space(char c) noexcept { return c == ' ' || c == '\t'; }

// One "name [= value]" line, already stripped of its indentation.
struct zpl_line {
  std::string name;
  std::string value;
};

zpl_line parse_line(std::string_view text, std::string_view source, std::size_t line_no) {
  std::size_t i = 0;
  while (i < text.size() && is_name_char(text[i])) ++i;
  if (i == 0) malformed(source, line_no, "expected a name");
  if (i > max_name) malformed(source, line_no, "a name is longer than 255 characters");
  zpl_line out{std::string(text.substr(0, i)), {}};
  while (i < text.size() && is_space(text[i])) ++i;
  if (i == text.size() || text[i] == '#') return out;
  if (text[i] != '=') malformed(source, line_no, "expected '=' after the name");
  ++i;
  while (i < text.size() && is_space(text[i])) ++i;
  if (i < text.size() && (text[i] == '"' || text[i] == '\'')) {
    const char quote = text[i++];
    const std::size_t end = text.find(quote, i);
    if (end == std::string_view::npos) malformed(source, line_no, "a quoted value is not closed");
    out.value = std::string(text.substr(i, end - i));
    i = end + 1;
  } else {
    // An unquoted value runs to white space: '#' is in the Z85 alphabet, so it starts a
    // comment only after white space.
    const std::size_t start = i;
    while (i < text.size() && !is_space(text[i])) ++i;
    out.value = std::string(text.substr(start, i - start));
  }
  while (i < text.size() && is_space(text[i])) ++i;
  if (i < text.size() && text[i] != '#') malformed(source, line_no, "unexpected text after the value");
  return out;
}

std::string errno_text(int err) { return std::system_category().message(err); }

// Reads a whole file of at most max_certificate_bytes, checking a secret one's mode on the open
// descriptor (so the file checked is the file read).
std::string read_certificate_file(const std::filesystem::path& path, bool* open_to_others) {
  // Non-blocking, so a FIFO in its place cannot hang the read: fstat refuses it below.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) {
    const int err = errno;
    throw error(errc::io_error, "cannot read certificate '" + path.string() + "': " + errno_text(err));
  }
  struct closer {
    int fd;
    ~closer() { ::close(fd); }
  } close_on_exit{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    throw error(errc::io_error, "cannot read certificate '" + path.string() + "': " + errno_text(err));
  }
  if (!S_ISREG(st.st_mode))
    throw error(errc::io_error, "cannot read certificate '" + path.string() + "': not a regular file");
  if (static_cast<std::size_t>(st.st_size) > max_certificate_bytes)
    throw error(errc::too_large, "certificate '" + path.string() + "' is larger than 64 KiB");
  *open_to_others = (st.st_mode & (S_IRWXG | S_IRWXO)) != 0;
  std::string text(static_cast<std::size_t>(st.st_size), '\0');
  std::size_t got = 0;
  while (got < text.size()) {
    const ssize_t n = ::read(fd, text.data() + got, text.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      throw error(errc::io_error, "cannot read certificate '" + path.string() + "': " + errno_text(err));
    }
    if (n == 0) break;  // shrank while being read: parse what is there
    got += static_cast<std::size_t>(n);
  }
  text.resize(got);
  return text;
}

// Writes `text` to `path` with `mode`, whole or not at all: into a temporary file beside it,
// synced, then moved into place (replacing an existing file only with `overwrite`), then the
// directory synced. A crash leaves the old file or the new one, never half of one.
void write_file(const std::filesystem::path& path, const std::string& text, mode_t mode, bool overwrite) {
  const std::filesystem::path temp = path.string() + ".tmp-" + std::to_string(::getpid());
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
  if (fd < 0) {
    const int err = errno;
    throw error(errc::io_error, "cannot write '" + temp.string() + "': " + errno_text(err));
  }
  bool placed = false;
  struct cleanup {
    int fd;
    const std::filesystem::path& temp;
    const bool& placed;
    ~cleanup() {
      if (fd >= 0) ::close(fd);
      if (!placed) ::unlink(temp.c_str());
    }
  } on_exit{fd, temp, placed};
  const auto fail = [&](const char* what) {
    const int err = errno;
    throw error(errc::io_error, std::string("cannot ") + what + " '" + temp.string() + "': " + errno_text(err));
  };
  // The mode given to open() is cut by the umask: set it.
  if (::fchmod(fd, mode) != 0) fail("set the mode of");
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("write");
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) fail("sync");
  if (overwrite) {
    if (::rename(temp.c_str(), path.c_str()) != 0) fail("rename");
  } else {
    // link() refuses an existing name, so a file made meanwhile is never replaced.
    if (::link(temp.c_str(), path.c_str()) != 0) {
      const int err = errno;
      if (err == EEXIST)
        throw error(errc::invalid_argument, "'" + path.string() + "' exists; refusing to overwrite it");
      throw error(errc::io_error, "cannot write '" + path.string() + "': " + errno_text(err));
    }
    ::unlink(temp.c_str());
  }
  placed = true;
  const std::filesystem::path parent = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
  if (const int dir = ::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dir >= 0) {
    (void)::fsync(dir);
    ::close(dir);
  }
}

bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

void append_value(std::string& out, const std::string& value) {
  // A value with a double quote is written in single quotes (ZPL has no escapes).
  const char quote = value.find('"') == std::string::npos ? '"' : '\'';
  out += quote;
  out += value;
  out += quote;
}

}  // namespace

curve_keypair curve_certificate::keypair() const {
  if (secret_key.empty())
    throw error(errc::invalid_argument, "this certificate holds no secret key (it is a public certificate)");
  return {public_key, secret_key};
}

curve_certificate parse_curve_certificate(std::string_view text, std::string_view source) {
  if (text.size() > max_certificate_bytes)
    throw error(errc::too_large, std::string(source) + ": a certificate is at most 64 KiB");
  curve_certificate cert;
  std::vector<std::string> path;  // the names of the open sections, outermost first
  bool seen_public = false;
  bool seen_secret = false;
  std::size_t entries = 0;
  std::size_t line_no = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    std::size_t indent = 0;
    while (indent < line.size() && line[indent] == ' ') ++indent;
    if (indent == line.size() || line[indent] == '#') continue;  // blank or comment
    if (line[indent] == '\t') malformed(source, line_no, "indentation must be spaces, not tabs");
    if (indent % 4 != 0) malformed(source, line_no, "indentation must be a multiple of 4 spaces");
    const std::size_t depth = indent / 4;
    if (depth > path.size()) malformed(source, line_no, "indented more than one level below its parent");
    if (depth >= max_depth) malformed(source, line_no, "nested deeper than 8 levels");
    if (++entries > max_entries) malformed(source, line_no, "more than 1024 entries");
    zpl_line entry = parse_line(line.substr(indent), source, line_no);
    path.resize(depth);
    if (depth == 1 && path[0] == "curve") {
      if (entry.name == "public-key" || entry.name == "secret-key") {
        const bool is_public = entry.name == "public-key";
        bool& seen = is_public ? seen_public : seen_secret;
        if (seen) malformed(source, line_no, "curve/" + entry.name + " is given twice");
        seen = true;
        if (!is_z85_key(entry.value))
          malformed(source, line_no, "curve/" + entry.name + " must be 40 Z85 characters");
        (is_public ? cert.public_key : cert.secret_key) = entry.value;
      }
    } else if (depth == 1 && path[0] == "metadata") {
      cert.metadata.emplace_back(entry.name, entry.value);
    }
    path.push_back(std::move(entry.name));
  }
  if (!seen_public)
    throw error(errc::malformed, std::string(source) + ": no curve/public-key: not a CURVE certificate");
  if (seen_secret) {
    curve_keypair derived;
    try {
      derived = curve_keypair::from_secret(cert.secret_key);
    } catch (const error&) {
      throw error(errc::malformed, std::string(source) + ": curve/secret-key is not a usable key");
    }
    if (derived.public_key != cert.public_key)
      throw error(errc::malformed,
                  std::string(source) + ": curve/secret-key does not belong to curve/public-key");
  }
  return cert;
}

std::string format_curve_certificate(const curve_certificate& cert, bool with_secret,
                                     std::string_view heading) {
  if (!is_z85_key(cert.public_key))
    throw error(errc::invalid_argument, "a certificate's public key must be 40 Z85 characters");
  if (with_secret && !is_z85_key(cert.secret_key))
    throw error(errc::invalid_argument, "a secret certificate needs a 40-character Z85 secret key");
  std::string out;
  std::size_t pos = 0;
  while (pos < heading.size()) {
    std::size_t end = heading.find('\n', pos);
    if (end == std::string_view::npos) end = heading.size();
    out += "#   ";
    out.append(heading.substr(pos, end - pos));
    out += '\n';
    pos = end + 1;
  }
  if (!heading.empty()) out += '\n';
  out += "metadata\n";
  for (const auto& [name, value] : cert.metadata) {
    if (name.empty() || name.size() > max_name ||
        !std::all_of(name.begin(), name.end(), is_name_char))
      throw error(errc::invalid_argument, "metadata name '" + name + "' is not a ZPL name");
    if (value.find('\n') != std::string::npos || value.find('\r') != std::string::npos ||
        (value.find('"') != std::string::npos && value.find('\'') != std::string::npos))
      throw error(errc::invalid_argument,
                  "metadata value for '" + name + "' holds a line break or both kinds of quote");
    out += "    " + name + " = ";
    append_value(out, value);
    out += '\n';
  }
  out += "curve\n    public-key = ";
  append_value(out, cert.public_key);
  out += '\n';
  if (with_secret) {
    out += "    secret-key = ";
    append_value(out, cert.secret_key);
    out += '\n';
  }
  return out;
}

void save_curve_certificate(const curve_certificate& cert, const std::filesystem::path& path,
                            bool overwrite) {
  if (cert.secret_key.empty())
    throw error(errc::invalid_argument, "save_curve_certificate needs a certificate with its secret key");
  if (ends_with(path.filename().string(), "_secret"))
    throw error(errc::invalid_argument,
                "'" + path.string() + "' ends in _secret, the suffix of secret certificates: name the "
                "public one, and its secret twin gets the suffix");
  const std::filesystem::path secret_path = path.string() + "_secret";
  const std::string public_text = format_curve_certificate(
      cert, false,
      "CURVE public certificate (fabric-keygen, ZPL as CZMQ's zcert reads it)\n"
      "Hand it to every peer that must recognise this key; it holds no secret.");
  const std::string secret_text = format_curve_certificate(
      cert, true,
      "CURVE SECRET certificate (fabric-keygen, ZPL as CZMQ's zcert reads it)\n"
      "Whoever reads this file can act as its owner: keep it private (mode 0600).");
  if (!overwrite) {
    // Both or neither: refuse before writing either.
    for (const auto& p : {path, secret_path}) {
      std::error_code ec;
      if (std::filesystem::symlink_status(p, ec).type() != std::filesystem::file_type::not_found)
        throw error(errc::invalid_argument, "'" + p.string() + "' exists; refusing to overwrite it");
    }
  }
  write_file(secret_path, secret_text, 0600, overwrite);
  try {
    write_file(path, public_text, 0644, overwrite);
  } catch (...) {
    if (!overwrite) ::unlink(secret_path.c_str());  // both or neither
    throw;
  }
}

curve_certificate load_curve_certificate(const std::filesystem::path& path) {
  bool open_to_others = false;
  const std::string text = read_certificate_file(path, &open_to_others);
  curve_certificate cert = parse_curve_certificate(text, path.string());
  if (!cert.secret_key.empty() && open_to_others)
    throw error(errc::invalid_argument,
                "secret certificate '" + path.string() +
                    "' can be read or written by group or others; run: chmod 600 '" + path.string() + "'");
  return cert;
}

curve_keypair load_curve_keypair(const std::filesystem::path& path) {
  // The file named, when it holds the secret key (whatever its name); else its "_secret" twin.
  std::error_code ec;
  if (std::filesystem::is_regular_file(path, ec)) {
    curve_certificate cert = load_curve_certificate(path);
    if (!cert.secret_key.empty()) return cert.keypair();
    if (ends_with(path.string(), "_secret"))
      throw error(errc::invalid_argument, "'" + path.string() + "' holds no secret key (a public certificate)");
  }
  const std::filesystem::path secret = path.string() + "_secret";
  curve_certificate cert = load_curve_certificate(secret);
  if (cert.secret_key.empty())
    throw error(errc::invalid_argument, "'" + secret.string() + "' holds no secret key (a public certificate)");
  return cert.keypair();
}

std::string load_curve_public_key(const std::string& key_or_path) {
  if (is_z85_key(key_or_path)) return key_or_path;
  std::error_code ec;
  if (key_or_path.empty() || !std::filesystem::exists(key_or_path, ec))
    throw error(errc::invalid_argument,
                "'" + key_or_path + "' is neither a CURVE public key (40 Z85 characters) nor a certificate file");
  return load_curve_certificate(key_or_path).public_key;
}

std::vector<std::string> load_curve_allowlist(const std::filesystem::path& dir) {
  return load_curve_allowlist(dir, nullptr);
}

std::vector<std::string> load_curve_allowlist(const std::filesystem::path& dir, std::vector<std::string>* errors) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw error(errc::io_error, "allowlist '" + dir.string() + "' is not a readable directory" +
                                    (ec ? ": " + ec.message() : std::string()));
  std::vector<std::string> keys;
  std::size_t files = 0;
  fs::recursive_directory_iterator it(dir, fs::directory_options::none, ec);
  if (ec) throw error(errc::io_error, "cannot list allowlist '" + dir.string() + "': " + ec.message());
  for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;
    const std::string name = it->path().filename().string();
    if (!name.empty() && name[0] == '.') {
      if (it->is_directory(ec)) it.disable_recursion_pending();
      continue;
    }
    if (!it->is_regular_file(ec) || ends_with(name, "_secret")) continue;
    if (++files > max_allowlist_certificates)
      throw error(errc::too_large, "allowlist '" + dir.string() + "' holds more than 100000 certificates");
    try {
      keys.push_back(load_curve_certificate(it->path()).public_key);
    } catch (const error& e) {
      if (errors == nullptr) throw;
      errors->emplace_back(e.what());  // this file's key stays out; the others count
    }
  }
  if (ec) throw error(errc::io_error, "cannot list allowlist '" + dir.string() + "': " + ec.message());
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  return keys;
}

}  // namespace fabric
