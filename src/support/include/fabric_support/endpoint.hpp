// Where fabric's tests, benchmarks and tools listen on one host: the three transports by name, a
// temporary directory that removes itself, and fresh loopback endpoints of each transport.
#pragma once

#include <filesystem>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>

namespace fabric::support {

enum class transport { inproc, ipc, tcp };

/// Every transport, in the order reports list them.
inline constexpr transport all_transports[] = {transport::inproc, transport::ipc, transport::tcp};

/// "inproc", "ipc" or "tcp".
std::string_view to_string(transport t) noexcept;

/// The transport named `name` (as to_string writes it), or nullopt.
std::optional<transport> parse_transport(std::string_view name) noexcept;

/// Prints a transport by name (googletest shows "GetParam() = tcp").
std::ostream& operator<<(std::ostream& out, transport t);

/// A fresh directory, made with mkdtemp as "<base>/<prefix>XXXXXX" and removed with everything
/// in it on destruction (errors ignored), so an exception leaves nothing behind either. `base`
/// defaults to std::filesystem::temp_directory_path() ($TMPDIR, else /tmp). Throws
/// std::system_error when the directory cannot be made.
class temp_dir {
 public:
  explicit temp_dir(std::string_view prefix = "fabric-", const std::filesystem::path& base = {});
  ~temp_dir();
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  const std::filesystem::path& path() const noexcept { return path_; }
  /// A fresh, empty subdirectory "<name>" (whatever was there before is removed), removed with
  /// the rest. Throws std::filesystem::filesystem_error.
  std::filesystem::path sub(std::string_view name) const;

 private:
  std::filesystem::path path_;
};

/// A fresh endpoint to bind on this host, never the same twice in a process:
///   inproc://<name>-<pid>-<n>
///   ipc://<one temp dir per process>/<n>-<name>.sock (the directory is removed at exit)
///   tcp://127.0.0.1:*  (the system picks a free port at bind; bind() returns the resolved one)
/// Keep `name` short: an ipc path is limited to about 100 bytes. Thread-safe.
std::string loopback_endpoint(transport t, std::string_view name = "fabric");

}  // namespace fabric::support
