// The context's authenticator: the ZAP handler (RFC 27/ZAP) that checks CURVE client keys against
// the allowlists, and the handshake watch that counts and logs the peers refused before ZAP is
// even asked (NULL or PLAIN peers at a CURVE server, broken CURVE handshakes). Internal to fabric.
#pragma once

#include "core/driver.hpp"

#include <fabric/context.hpp>
#include <fabric/log.hpp>
#include <fabric/socket.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

namespace fabric::detail {

/// Lets through one log line per `interval`, and counts the lines held back in between so the
/// next line can say how many there were. Not thread-safe: one per thread.
class log_limiter {
 public:
  explicit log_limiter(std::chrono::steady_clock::duration interval = std::chrono::seconds(1))
      : interval_(interval) {}
  /// When a line may be written at `now`: the number of lines held back since the last one.
  /// Otherwise nullopt, and this line is counted as held back.
  std::optional<std::uint64_t> admit(std::chrono::steady_clock::time_point now);

 private:
  std::chrono::steady_clock::duration interval_;
  std::optional<std::chrono::steady_clock::time_point> last_;
  std::uint64_t held_ = 0;
};

/// What the handler consults on every handshake; shared with the owning context.
struct zap_policy {
  std::mutex mutex;
  std::set<std::string> allowed;  // Z85 public keys allowed in every domain
  // ZAP domain -> allowlist directory -> its keys, as last read.
  std::map<std::string, std::map<std::filesystem::path, std::unordered_set<std::string>>> directories;
  bool allow_any = false;
  log_fn log;
  log_level min_level = log_level::info;

  std::atomic<std::uint64_t> allowed_count{0};
  std::atomic<std::uint64_t> denied_count{0};
  std::atomic<std::uint64_t> refused_handshakes{0};  // failed before ZAP: mechanism, CURVE errors

  bool permits(const std::string& domain, const std::string& z85_key);
  /// Writes `line` through `log` when it is set and `level` is at least min_level.
  void write(log_level level, const std::string& line);
};

/// The handler: a REP socket at inproc://zeromq.zap.01 answered by the protocol driver on a thread
/// of its own. It has no timers; each request is answered as it comes.
class zap_handler {
 public:
  zap_handler(context& ctx, std::shared_ptr<zap_policy> policy);
  /// Ends the handler's thread (bounded wait). Returns false when it did not end in time.
  bool stop() noexcept { return driver_.stop(); }

 private:
  std::shared_ptr<zap_policy> policy_;
  log_limiter limiter_;
  any_socket rep_;
  driver driver_;  // last: stopped before the socket it reads is closed
};

/// Starts the handler on its own thread, bound at inproc://zeromq.zap.01 in `ctx`.
/// Throws: fabric::error when the endpoint is taken (another ZAP handler in this context).
std::unique_ptr<zap_handler> start_zap_handler(context& ctx, std::shared_ptr<zap_policy> policy);

/// Reads the handshake events of every CURVE server socket of a context on a thread of its own,
/// counting and logging the handshakes that fail before the ZAP handler sees them: on protocol
/// grounds, or ended early (a peer without CURVE, a handshake timeout, a reset). The log hook is called on this thread: it must not block, or libzmq's I/O thread
/// blocks behind the unread events.
///
/// Each watched socket has a PAIR connected to its libzmq monitor endpoint before the monitor
/// starts, so no event waits on a reader that is not there yet (libzmq's event sends block). A
/// socket's watch ends with its MONITOR_STOPPED event: when it closes, or when a fabric::monitor
/// takes over its event feed (libzmq keeps one feed per socket).
class handshake_watch {
 public:
  handshake_watch(context& ctx, std::shared_ptr<zap_policy> policy);
  /// Stops the thread and closes every PAIR; call before the context terminates.
  ~handshake_watch();
  handshake_watch(const handshake_watch&) = delete;
  handshake_watch& operator=(const handshake_watch&) = delete;

  /// Starts watching `target` (a raw libzmq socket). Call on the socket's own thread.
  /// Throws: fabric::error when libzmq refuses the monitor.
  void add(void* target);

 private:
  void run();
  void on_event(std::uint16_t event, std::uint32_t value, const std::string& endpoint);

  context& ctx_;
  std::shared_ptr<zap_policy> policy_;
  int wake_fd_ = -1;
  std::mutex mutex_;
  std::vector<zmq::socket_t> pending_;  // connected by add(), taken over by the thread
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> next_id_{0};
  log_limiter mechanism_limiter_;
  log_limiter curve_limiter_;  // thread_ only
  log_limiter ended_limiter_;
  std::thread thread_;  // last: started once everything it reads exists
};

/// What fabric's sockets reach of a context's private authenticator.
struct context_access {
  /// Starts the ZAP handler and the handshake watch if they are not running.
  static void ensure_authenticator(context& ctx) { ctx.ensure_authenticator(); }
  /// Registers `dir` for `domain` and reads it (context::allow_curve_clients_from).
  static void add_allowlist(context& ctx, const std::string& domain, const std::filesystem::path& dir) {
    (void)ctx.allow_curve_clients_from(dir, domain);
  }
  /// Watches a CURVE server socket's handshakes.
  static void watch_handshakes(context& ctx, void* target);  // defined in context.cpp
};

}  // namespace fabric::detail

// A fault injection point for the tests that prove a CURVE server drops messages without a
// User-Id: never set by the library itself.
namespace fabric::detail::zap_faults {
/// When set, the handler accepts allowed keys with an empty user id.
void set_empty_user_id(bool on) noexcept;
bool empty_user_id() noexcept;
}  // namespace fabric::detail::zap_faults
