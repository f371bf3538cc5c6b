// A copy of fabric-perf run as a child process (one of its hidden subcommands, such as
// stream-subscribers or queue-workers), spoken to a line at a time: the parent writes nothing and
// closes the child's stdin to end it; the child reports on its stdout. The families whose peers
// live in another process share it.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

extern char** environ;

namespace fabric::perf {

class line_child {
 public:
  /// Starts this program with `args` (the subcommand first); `what` names the child in errors
  /// ("the subscribers"); every read waits at most `timeout`.
  line_child(const std::vector<std::string>& args, std::string what, std::chrono::milliseconds timeout)
      : what_(std::move(what)), timeout_(timeout) {
    int in[2];
    int out[2];
    if (pipe2(in, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    if (pipe2(out, O_CLOEXEC) != 0) {
      ::close(in[0]);
      ::close(in[1]);
      throw std::runtime_error("pipe failed");
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in[0], 0);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    std::vector<std::string> words{"/proc/self/exe"};
    words.insert(words.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& w : words) argv.push_back(w.data());
    argv.push_back(nullptr);
    const int rc = posix_spawn(&pid_, "/proc/self/exe", &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(in[0]);
    ::close(out[1]);
    to_child_ = in[1];
    from_child_ = out[0];
    if (rc != 0) {
      pid_ = -1;
      throw std::runtime_error("cannot start " + what_ + ": " + std::strerror(rc));
    }
  }

  /// Kills and reaps a child that was not finished.
  ~line_child() {
    if (to_child_ >= 0) ::close(to_child_);
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (from_child_ >= 0) ::close(from_child_);
  }

  line_child(const line_child&) = delete;
  line_child& operator=(const line_child&) = delete;

  /// The child's next line. Throws when it says nothing within the timeout or ends first.
  std::string read_line() {
    const auto deadline = std::chrono::steady_clock::now() + timeout_;
    for (;;) {
      if (const auto nl = buffer_.find('\n'); nl != std::string::npos) {
        std::string line = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        return line;
      }
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
      if (left <= 0) throw std::runtime_error(what_ + " did not answer in time");
      pollfd p{from_child_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
      char chunk[4096];
      const ssize_t n = ::read(from_child_, chunk, sizeof chunk);
      if (n <= 0) throw std::runtime_error(what_ + " ended early");
      buffer_.append(chunk, static_cast<std::size_t>(n));
    }
  }

  /// Reads a line that must be `expected`.
  void expect(const std::string& expected) {
    const std::string line = read_line();
    if (line != expected) throw std::runtime_error(what_ + " said: " + line);
  }

  /// Closes its stdin, which ends it, and reaps it. Throws when it said anything more (an error)
  /// or did not exit with status 0.
  void finish() {
    ::close(to_child_);
    to_child_ = -1;
    std::string rest;
    try {
      rest = read_line();
    } catch (const std::exception&) {
      // End of output: it exited without a word, as it should.
    }
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    if (!rest.empty()) throw std::runtime_error(what_ + " said: " + rest);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) throw std::runtime_error(what_ + " failed");
  }

  const std::string& what() const noexcept { return what_; }

 private:
  std::string what_;
  std::chrono::milliseconds timeout_;
  pid_t pid_ = -1;
  int to_child_ = -1;
  int from_child_ = -1;
  std::string buffer_;
};

}  // namespace fabric::perf
