// The Freelance (10/FLP) client as a pure machine, in the vocabulary of core/machine.hpp: which
// servers are live, which requests are outstanding and where, what is due when. No socket, no
// clock: the public clients (freelance_client.cpp) feed it what their ROUTER receives and the
// time, and it sends through its sink, whose first frame is the server's identity.
//
//   server states:   not live --(any well-formed message)--> live
//                    live --(silent server_expiry and a ping unanswered for
//                            server_expiry - ping_interval)--> not live      ("dead")
//                    live --(a send refused: EHOSTUNREACH)--> not live       ("unreachable")
//   a request:       waiting (no live server) --> sent to `copies` live servers
//                    --(timeout)--> sent again elsewhere ... --(reply)--> done(ok)
//                    --(its server lost)--> sent again elsewhere at once
//                    --(request_expiry)--> done(expired, or unavailable if never sent)
//
// docs/freelance.md section 3 is the specification this follows, rule by rule.
//
// Thread safety: none; one thread drives a machine.
#pragma once

#include "core/machine.hpp"

#include <fabric/freelance.hpp>
#include <fabric/message.hpp>
#include <fabric/result.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace fabric::flp {

using time_point = detail::time_point;
using duration = detail::machine_clock::duration;

/// Bounds and fixed timings of the client.
inline constexpr std::size_t max_servers = 1024;
inline constexpr std::size_t max_outstanding_limit = std::size_t{1} << 24;
inline constexpr std::chrono::milliseconds longest_setting = std::chrono::hours(24);
/// The first retry of a ping the ROUTER refused (no connection yet); it doubles up to the ping
/// interval.
inline constexpr std::chrono::milliseconds first_probe{5};
/// How soon requests that no live server could take (all queues full) are tried again.
inline constexpr std::chrono::milliseconds busy_retry{10};

/// Checks `o` as a client needs it; `who` names the caller in messages.
/// Throws: fabric::error(invalid_argument) naming the option that is out of range.
void check_options(const freelance::client_options& o, std::string_view who);

class client_machine {
 public:
  /// `first_sequence` is the first request id (0 is skipped); `out` must outlive the machine.
  /// The first pings are due at `now`.
  /// Throws: what check_options throws.
  client_machine(const freelance::client_options& o, detail::machine_sink& out, time_point now,
                 std::uint64_t first_sequence);
  client_machine(const client_machine&) = delete;
  client_machine& operator=(const client_machine&) = delete;

  /// Accepts a request, deadline `now + expiry`, and sends it if a live server takes it.
  /// Returns: its id; errc::back_pressure at max_outstanding (then `body` is unchanged).
  /// Throws: fabric::error(invalid_argument) when `body` has no frames.
  result<std::uint64_t> submit(message& body, time_point now, duration expiry);
  /// Forgets an outstanding request. Returns false when `id` is not outstanding.
  bool cancel(std::uint64_t id) noexcept;

  /// A message the client's ROUTER received (the server's identity first).
  void on_message(message&& m, time_point now);
  /// Pings, expiries, attempt timeouts, deadlines and retries due at `now`.
  void on_tick(time_point now);
  /// When on_tick() next has work; time_point::max() for never.
  time_point next_tick() const noexcept;
  /// A message the socket dropped before it reached the machine (too many frames): counted.
  void note_malformed() noexcept { ++stats_.malformed; }

  /// Moves the oldest completion into `out`. Returns false when there is none.
  bool take(freelance::reply& out);
  /// Completions waiting to be taken.
  std::size_t completed() const noexcept { return done_.size(); }
  /// Requests accepted and not yet completed.
  std::size_t outstanding() const noexcept { return requests_.size(); }

  std::size_t live_servers() const noexcept;
  /// Whether the server with this endpoint is live; false for an unknown one.
  bool is_live(std::string_view endpoint) const noexcept;
  /// Attempts the server with this endpoint holds now.
  std::size_t in_flight(std::string_view endpoint) const noexcept;
  /// Whether request `id` waits for a live server.
  bool is_waiting(std::uint64_t id) const noexcept;
  const freelance::client_stats& stats() const noexcept { return stats_; }

 private:
  static constexpr std::uint32_t none = UINT32_MAX;

  struct server_entry {
    std::string endpoint;
    bool live = false;
    time_point last_heard{};
    std::optional<time_point> unanswered_since{};  // the first ping since it was last heard
    time_point ping_at{};
    duration probe{};  // the delay before retrying a refused ping
    std::size_t in_flight = 0;
  };
  struct request_entry {
    message body;
    time_point expires{};
    time_point timer{};                  // its entry in timers_
    std::vector<std::uint32_t> holders;  // servers holding the current attempt
    std::size_t rounds = 0;              // attempts that reached at least one server
    bool waiting = false;                // in waiting_
  };

  std::uint64_t next_id() noexcept;
  std::uint32_t find(std::string_view endpoint) const noexcept;
  time_point death_time(const server_entry& s) const noexcept;
  void heard(std::uint32_t idx, time_point now);
  void lose(std::uint32_t idx, time_point now, bool unreachable);
  void ping(std::uint32_t idx, time_point now);
  // Sends request `id` to up to `copies` live servers, preferring those not in `avoid`. Returns
  // how many took it. Servers found unreachable are lost (their requests queued for resend).
  std::size_t dispatch(std::uint64_t id, request_entry& e, time_point now, const std::vector<std::uint32_t>& avoid);
  // Sends `id` now, or puts it in the waiting queue; sets its timer either way.
  void attempt(std::uint64_t id, request_entry& e, time_point now, const std::vector<std::uint32_t>& avoid);
  void set_timer(std::uint64_t id, request_entry& e, time_point at);
  void release(request_entry& e) noexcept;
  void complete(std::uint64_t id, freelance::reply_status status, std::uint32_t server, message&& body);
  void flush_waiting(time_point now);
  void resend_lost(time_point now);
  void on_timer(std::uint64_t id, time_point now);

  duration ping_interval_;
  duration server_expiry_;
  duration timeout_;
  std::size_t copies_;
  std::size_t max_outstanding_;
  detail::machine_sink& out_;

  std::vector<server_entry> servers_;
  std::map<std::string, std::uint32_t, std::less<>> by_endpoint_;
  std::unordered_map<std::uint64_t, request_entry> requests_;
  std::set<std::pair<time_point, std::uint64_t>> timers_;
  std::deque<std::uint64_t> waiting_;  // ids waiting for a live server, oldest first
  std::vector<std::uint64_t> to_resend_;  // ids whose server was lost, to send again at once
  std::deque<freelance::reply> done_;
  time_point retry_at_ = time_point::max();
  std::uint64_t first_id_;
  std::uint64_t next_id_;
  freelance::client_stats stats_{};
};

}  // namespace fabric::flp
