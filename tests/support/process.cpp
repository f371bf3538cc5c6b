// child_process: see process.hpp.
#include "support/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <stdexcept>
#include <system_error>

extern char** environ;

namespace fabric::testing {

using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

child_process::child_process(const std::vector<std::string>& words) {
  if (words.empty()) throw std::runtime_error("child_process: no program given");
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    ::close(out_pipe[0]);
    ::close(out_pipe[1]);
    throw std::runtime_error("pipe2 failed");
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], 2);
  std::vector<std::string> copy = words;
  std::vector<char*> argv;
  for (auto& w : copy) argv.push_back(w.data());
  argv.push_back(nullptr);
  const int rc = ::posix_spawn(&pid_, copy[0].c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  fds_[0] = out_pipe[0];
  fds_[1] = err_pipe[0];
  if (rc != 0) {
    pid_ = -1;
    throw std::runtime_error("cannot start " + copy[0]);
  }
}

child_process::~child_process() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
  for (int fd : fds_)
    if (fd >= 0) ::close(fd);
}

bool child_process::read_until(std::string_view needle, std::chrono::milliseconds bound) {
  const auto deadline = clock_type::now() + bound;
  while (out.find(needle) == std::string::npos) {
    const auto left = deadline - clock_type::now();
    if (left <= 0ms || !pump(left)) return out.find(needle) != std::string::npos;
  }
  return true;
}

bool child_process::read_until(const std::function<bool(std::string_view)>& done, std::chrono::milliseconds bound) {
  const auto deadline = clock_type::now() + bound;
  while (!done(out)) {
    const auto left = deadline - clock_type::now();
    if (left <= 0ms || !pump(left)) return done(out);
  }
  return true;
}

void child_process::signal(int sig) {
  if (pid_ > 0) ::kill(pid_, sig);
}

int child_process::finish(std::chrono::milliseconds bound) {
  const auto deadline = clock_type::now() + bound;
  bool open = true;
  while (open) {
    const auto left = deadline - clock_type::now();
    if (left <= 0ms) break;
    open = pump(left);
  }
  const bool killed = open;
  if (killed) ::kill(pid_, SIGKILL);
  int status = 0;
  ::waitpid(pid_, &status, 0);  // both pipes are closed: the child has exited or been killed
  pid_ = -1;
  if (killed) return -1;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + WTERMSIG(status);
}

bool child_process::pump(std::chrono::nanoseconds timeout) {
  pollfd polled[2];
  nfds_t count = 0;
  for (int fd : fds_)
    if (fd >= 0) polled[count++] = pollfd{fd, POLLIN, 0};
  if (count == 0) return false;
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count() + 1;
  if (::poll(polled, count, static_cast<int>(ms)) < 0) return true;  // EINTR: the caller retries
  for (nfds_t i = 0; i < count; ++i) {
    if (polled[i].revents == 0) continue;
    char buffer[4096];
    const ssize_t n = ::read(polled[i].fd, buffer, sizeof buffer);
    const int slot = polled[i].fd == fds_[0] ? 0 : 1;
    if (n > 0) {
      (slot == 0 ? out : err).append(buffer, static_cast<std::size_t>(n));
    } else {
      ::close(fds_[slot]);
      fds_[slot] = -1;
    }
  }
  return fds_[0] >= 0 || fds_[1] >= 0;
}

std::vector<std::string> command(std::string_view program, std::vector<std::string> args) {
  std::vector<std::string> words;
  words.reserve(args.size() + 1);
  words.emplace_back(program);
  for (auto& a : args) words.push_back(std::move(a));
  return words;
}

std::string listening_endpoint(child_process& p, std::chrono::milliseconds bound) {
  const std::string prefix = "listening on ";
  const auto printed = [&](std::string_view o) {
    const auto at = o.find(prefix);
    return at != o.npos && o.find('\n', at) != o.npos;
  };
  if (!p.read_until(printed, bound)) return {};
  const auto at = p.out.find(prefix) + prefix.size();
  return p.out.substr(at, p.out.find('\n', at) - at);
}

std::size_t open_fds(pid_t pid) {
  std::size_t n = 0;
  std::error_code ec;
  for (std::filesystem::directory_iterator it("/proc/" + std::to_string(pid) + "/fd", ec), end;
       !ec && it != end; it.increment(ec))
    ++n;
  return n;
}

}  // namespace fabric::testing
