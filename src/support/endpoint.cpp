// Loopback endpoints and temporary directories; see endpoint.hpp.
#include "fabric_support/endpoint.hpp"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <system_error>

namespace fabric::support {

std::string_view to_string(transport t) noexcept {
  switch (t) {
    case transport::inproc: return "inproc";
    case transport::ipc: return "ipc";
    case transport::tcp: return "tcp";
  }
  return "?";
}

std::optional<transport> parse_transport(std::string_view name) noexcept {
  for (transport t : all_transports)
    if (to_string(t) == name) return t;
  return std::nullopt;
}

std::ostream& operator<<(std::ostream& out, transport t) { return out << to_string(t); }

temp_dir::temp_dir(std::string_view prefix, const std::filesystem::path& base) {
  const std::filesystem::path where = base.empty() ? std::filesystem::temp_directory_path() : base;
  std::string pattern = (where / (std::string(prefix) + "XXXXXX")).string();
  if (::mkdtemp(pattern.data()) == nullptr)
    throw std::system_error(errno, std::generic_category(), "cannot create a directory in " + where.string());
  path_ = pattern;
}

temp_dir::~temp_dir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

std::filesystem::path temp_dir::sub(std::string_view name) const {
  std::filesystem::path p = path_ / name;
  std::filesystem::remove_all(p);
  std::filesystem::create_directory(p);
  return p;
}

std::string loopback_endpoint(transport t, std::string_view name) {
  static std::atomic<unsigned> counter{0};
  const std::string n = std::to_string(counter.fetch_add(1));
  switch (t) {
    case transport::inproc:
      return "inproc://" + std::string(name) + "-" + std::to_string(::getpid()) + "-" + n;
    case transport::ipc: {
      static const temp_dir dir("fabric-ipc-");
      return "ipc://" + (dir.path() / (n + "-" + std::string(name) + ".sock")).string();
    }
    case transport::tcp: break;
  }
  return "tcp://127.0.0.1:*";
}

}  // namespace fabric::support
