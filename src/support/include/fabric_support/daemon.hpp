// What every fabric daemon does besides its service: stop cleanly on SIGINT or SIGTERM, reload on
// SIGHUP, and write one log line per event to stderr. fabric-broker and fabric-titanic use it.
#pragma once

#include <fabric/log.hpp>

#include <csignal>
#include <chrono>
#include <exception>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace fabric::support {

/// "debug", "info", "warning", "error" or "off".
std::string_view to_string(log_level level) noexcept;

/// The level named `name` (as to_string writes it, in any case), or nullopt.
std::optional<log_level> parse_log_level(std::string_view name) noexcept;

/// One log line, without its newline: the time in UTC to the millisecond, the level padded to 7
/// columns, then the text: "2026-11-21T10:00:00.123Z info    worker 0080000041 ready".
std::string format_log_line(std::chrono::system_clock::time_point when, log_level level,
                            std::string_view text);

/// Writes format_log_line(now, level, text) and a newline to stderr, whole lines only however
/// many threads log at once. Fits fabric::log_fn.
void log_to_stderr(log_level level, std::string_view text);

/// SIGINT, SIGTERM and SIGHUP turned from a kill into an event the daemon waits for. The
/// constructor blocks the three signals on the calling thread (so construct it in main() before any thread
/// starts: threads inherit the mask, and no thread is then killed by them), ignores SIGPIPE (a
/// closed stdout or stderr must not kill a daemon), and opens a signalfd: wait_for() blocks on it,
/// or a fabric::reactor watches fd() and calls take(). The destructor closes the fd and restores
/// the signal mask and SIGPIPE's disposition (a stop signal still pending is then delivered as
/// if it had never been blocked). Throws std::system_error if the signalfd cannot be
/// made. Not thread-safe: one thread waits.
/// What a service thread that ended on its own ended with, for a log line: ": <what>" when it
/// threw, "" when it did not (or threw something that is not a std::exception).
std::string failure_text(const std::exception_ptr& e);

class stop_signals;

/// A daemon's main loop: waits for SIGINT or SIGTERM while `running()` holds, calling
/// `log_stats()` every `stats_every` (never when it is zero) and `on_hangup()` on each SIGHUP
/// (which is otherwise ignored).
/// Returns: the stop signal's number, or 0 when `running()` turned false first (the service ended
/// on its own: a failure).
int serve_until_stopped(stop_signals& stop, const std::function<bool()>& running,
                        std::chrono::milliseconds stats_every, const std::function<void()>& log_stats,
                        const std::function<void()>& on_hangup = {});

class stop_signals {
 public:
  stop_signals();
  ~stop_signals();
  stop_signals(const stop_signals&) = delete;
  stop_signals& operator=(const stop_signals&) = delete;

  /// Waits up to `timeout` for SIGINT, SIGTERM or SIGHUP. Returns the signal's number, or 0 on
  /// timeout.
  [[nodiscard]] int wait_for(std::chrono::milliseconds timeout);
  /// The signal received, without waiting: its number, or 0 when none is pending.
  [[nodiscard]] int take() { return wait_for(std::chrono::milliseconds(0)); }
  /// Readable while a signal is pending: for fabric::reactor::add_fd.
  int fd() const noexcept { return fd_; }

  /// "SIGINT", "SIGTERM", "SIGHUP", or "signal <n>".
  static std::string name(int signal);

 private:
  int fd_ = -1;
  sigset_t previous_mask_{};
  struct sigaction previous_sigpipe_{};
};

}  // namespace fabric::support
