// A program run as a child process by a test: its stdout and stderr collected through pipes, every
// wait bounded by poll() timeouts (nothing sleeps), and the child killed and reaped when the
// object goes away, so no test leaves a process behind.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace fabric::testing {

class child_process {
 public:
  /// Starts `words[0]` with arguments `words[1..]`.
  /// Throws: std::runtime_error when it cannot be started.
  explicit child_process(const std::vector<std::string>& words);
  /// Kills (SIGKILL) and reaps the child if it is still running.
  ~child_process();
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;

  /// Collects output until stdout contains `needle`. Returns false if `bound` passes first or
  /// the child closes its output.
  bool read_until(std::string_view needle, std::chrono::milliseconds bound = std::chrono::seconds(10));
  /// Collects output until `done(out)` holds, for output awaited by its content rather than by
  /// one fixed string. The same bounds and result.
  bool read_until(const std::function<bool(std::string_view out)>& done,
                  std::chrono::milliseconds bound = std::chrono::seconds(10));
  /// Sends `sig` to the child.
  void signal(int sig);
  pid_t pid() const noexcept { return pid_; }

  /// Collects the rest of the output and reaps the child. Returns its exit code, 128 + the
  /// signal that ended it, or -1 when it had not finished within `bound` (it is then killed).
  int finish(std::chrono::milliseconds bound = std::chrono::seconds(20));

  std::string out;
  std::string err;

 private:
  // One poll of both pipes for up to `timeout`. Returns false once both are at end of file.
  bool pump(std::chrono::nanoseconds timeout);

  pid_t pid_ = -1;
  int fds_[2] = {-1, -1};
};

/// `program` followed by `args`: the words of a child_process.
std::vector<std::string> command(std::string_view program, std::vector<std::string> args);

/// The endpoint a daemon prints on stdout as "listening on <endpoint>" once it serves (the first
/// one), read within `bound`; empty when none came.
std::string listening_endpoint(child_process& p, std::chrono::milliseconds bound);

/// The open file descriptors of process `pid` (/proc/<pid>/fd); 0 when it cannot be read.
std::size_t open_fds(pid_t pid);

}  // namespace fabric::testing
