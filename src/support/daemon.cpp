// Daemon scaffolding: stop signals and log lines; see daemon.hpp.
#include "fabric_support/daemon.hpp"

#include <poll.h>
#include <pthread.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <ctime>
#include <limits>
#include <mutex>
#include <system_error>

namespace fabric::support {
namespace {

constexpr log_level levels[] = {log_level::debug, log_level::info, log_level::warning, log_level::error,
                                log_level::off};

bool equal_ignoring_case(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

sigset_t stop_set() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  return set;
}

}  // namespace

std::string_view to_string(log_level level) noexcept {
  switch (level) {
    case log_level::debug: return "debug";
    case log_level::info: return "info";
    case log_level::warning: return "warning";
    case log_level::error: return "error";
    case log_level::off: break;
  }
  return "off";
}

std::optional<log_level> parse_log_level(std::string_view name) noexcept {
  for (log_level level : levels)
    if (equal_ignoring_case(name, to_string(level))) return level;
  return std::nullopt;
}

std::string format_log_line(std::chrono::system_clock::time_point when, log_level level,
                            std::string_view text) {
  using namespace std::chrono;
  // Floor, so a time before 1970 still gets a positive millisecond within its second.
  const auto since_epoch = floor<milliseconds>(when.time_since_epoch());
  const auto seconds = floor<std::chrono::seconds>(since_epoch);
  const auto ms = (since_epoch - seconds).count();
  const auto t = static_cast<std::time_t>(seconds.count());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
  char head[64];
  const std::string_view name = to_string(level);
  std::snprintf(head, sizeof head, "%s.%03dZ %-7.*s ", stamp, static_cast<int>(ms),
                static_cast<int>(name.size()), name.data());
  std::string line(head);
  line.append(text);
  return line;
}

void log_to_stderr(log_level level, std::string_view text) {
  static std::mutex mutex;
  std::string line = format_log_line(std::chrono::system_clock::now(), level, text);
  line.push_back('\n');
  std::lock_guard lock(mutex);
  std::fwrite(line.data(), 1, line.size(), stderr);
}

stop_signals::stop_signals() {
  const sigset_t set = stop_set();
  if (const int rc = pthread_sigmask(SIG_BLOCK, &set, &previous_mask_); rc != 0)
    throw std::system_error(rc, std::generic_category(), "cannot block SIGINT, SIGTERM and SIGHUP");
  fd_ = ::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd_ < 0) {
    const int err = errno;
    pthread_sigmask(SIG_SETMASK, &previous_mask_, nullptr);
    throw std::system_error(err, std::generic_category(), "cannot open a signalfd for SIGINT, SIGTERM and SIGHUP");
  }
  struct sigaction ignore{};
  ignore.sa_handler = SIG_IGN;
  sigemptyset(&ignore.sa_mask);
  sigaction(SIGPIPE, &ignore, &previous_sigpipe_);
}

stop_signals::~stop_signals() {
  ::close(fd_);
  sigaction(SIGPIPE, &previous_sigpipe_, nullptr);
  pthread_sigmask(SIG_SETMASK, &previous_mask_, nullptr);
}

int stop_signals::wait_for(std::chrono::milliseconds timeout) {
  pollfd item{fd_, POLLIN, 0};
  const auto ms = std::clamp<std::chrono::milliseconds::rep>(timeout.count(), 0, std::numeric_limits<int>::max());
  const int ready = ::poll(&item, 1, static_cast<int>(ms));
  if (ready <= 0) return 0;  // a timeout, or EINTR from another signal: the caller waits again
  signalfd_siginfo info{};
  if (::read(fd_, &info, sizeof info) != static_cast<ssize_t>(sizeof info)) return 0;
  return static_cast<int>(info.ssi_signo);
}

std::string stop_signals::name(int signal) {
  if (signal == SIGINT) return "SIGINT";
  if (signal == SIGTERM) return "SIGTERM";
  if (signal == SIGHUP) return "SIGHUP";
  return "signal " + std::to_string(signal);
}

std::string failure_text(const std::exception_ptr& e) {
  if (!e) return {};
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return std::string(": ") + ex.what();
  } catch (...) {
  }
  return {};
}

int serve_until_stopped(stop_signals& stop, const std::function<bool()>& running,
                        std::chrono::milliseconds stats_every, const std::function<void()>& log_stats,
                        const std::function<void()>& on_hangup) {
  auto next_stats = std::chrono::steady_clock::now() + stats_every;
  while (running()) {
    const int signal = stop.wait_for(std::chrono::milliseconds(200));
    if (signal == SIGHUP && on_hangup) {
      try {
        on_hangup();
      } catch (const std::exception& e) {  // a failed reload must not end the daemon
        log_to_stderr(log_level::error, std::string("SIGHUP: ") + e.what());
      }
    } else if (signal > 0 && signal != SIGHUP) {
      return signal;
    }
    if (stats_every.count() > 0 && std::chrono::steady_clock::now() >= next_stats) {
      next_stats += stats_every;
      log_stats();
    }
  }
  return 0;
}

}  // namespace fabric::support
