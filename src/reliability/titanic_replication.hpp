// Titanic replication (docs/ha.md, section 9): the wire of FTR/1 and the active node's side,
// which serves its replication log to the passive node and holds answers, in sync mode, until
// the passive node has acknowledged the entry that carries them.
//
// FTR/1, between the passive node's DEALER and the active node's ROUTER; every message is
// "FTR01" then one command frame, then entry frames:
//   fetch           %x01 position(8) term(8) max-bytes(4)   I hold the log up to `position`,
//                                                          whose entry has `term`: send more.
//                                                          Also the acknowledgement.
//   records         %x02 head-position(8) head-term(8)      then entry frames: position(8) ops
//   resync          %x03 head-position(8) head-term(8) agree-position(8) agree-term(8)
//                                                          your log cannot be continued; it may
//                                                          agree with mine up to `agree`
//   snapshot-fetch  %x04 [after(16)]                        the next page of requests
//   snapshot        %x05 start-position(8) start-term(8) done(1) [last(16)]
//                                                          then ops frames (titanic_store.hpp)
//   handoff         %x06                                    then ops frames: requests I accepted
//                                                          that you may lack (section 9.5)
//   handed          %x07 held(4) total(4)                   how many of them my journal holds
// (big-endian; a UUID is 16 octets).
#pragma once

#include "core/machine.hpp"
#include "reliability/titanic_store.hpp"

#include <fabric/context.hpp>
#include <fabric/journal.hpp>
#include <fabric/message.hpp>
#include <fabric/router_dealer.hpp>
#include <fabric/titanic.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace fabric::titanic::repl {

inline constexpr std::string_view header = "FTR01";
enum class command : std::uint8_t {
  fetch = 1,
  records = 2,
  resync = 3,
  snapshot_fetch = 4,
  snapshot = 5,
  handoff = 6,
  handed = 7,
};

using detail::time_point;
using store::log_point;

struct fetch_fields {
  log_point at;
  std::uint32_t max_bytes = 0;
};
struct records_fields {
  log_point head;
};
struct resync_fields {
  log_point head;
  log_point agree;
};
struct snapshot_fetch_fields {
  std::optional<tsp::uuid> after;
};
struct snapshot_fields {
  log_point start;
  bool done = false;
  std::optional<tsp::uuid> last;
};
struct handoff_fields {};
struct handed_fields {
  std::uint32_t held = 0;
  std::uint32_t total = 0;
};
using parsed = std::variant<std::monostate, fetch_fields, records_fields, resync_fields, snapshot_fetch_fields,
                            snapshot_fields, handoff_fields, handed_fields>;

message build_fetch(log_point at, std::uint32_t max_bytes);
message build_records(log_point head);
message build_resync(log_point head, log_point agree);
message build_snapshot_fetch(const std::optional<tsp::uuid>& after);
message build_snapshot(log_point start, bool done, const std::optional<tsp::uuid>& last);
message build_handoff();
message build_handed(std::uint32_t held, std::uint32_t total);
/// Parses the header and command frame (the frames after them are the receiver's to check):
/// monostate for anything malformed.
parsed parse(const message& m);
/// An entry frame of `records`: position(8) ops.
bool split_entry(std::string_view frame, std::uint64_t& position, std::string_view& ops) noexcept;

/// What the active node's side has done, and how its follower stands.
struct source_stats {
  log_point head;                    ///< the last entry committed
  std::uint64_t follower_at = 0;     ///< the follower's last acknowledged position
  bool follower_in_step = false;     ///< answers wait for it (sync mode)
  std::uint64_t fetches = 0;
  std::uint64_t entries_sent = 0;
  std::uint64_t resyncs = 0;         ///< followers told to copy afresh
  std::uint64_t snapshot_pages = 0;
  std::uint64_t follower_losses = 0; ///< times the follower fell silent and answers went on alone
  std::uint64_t held = 0;            ///< answers waiting for the follower now
  std::uint64_t malformed = 0;
  std::uint64_t handed_over = 0;     ///< requests handed over by a follower whose log parted
};

/// The active node's side. Its socket is watched by the service's driver; its write() runs in
/// each commit's transaction, on the journal's writer thread; everything else on the service's
/// thread.
class source {
 public:
  /// Binds options.bind; reads the log's head and base from `j`, and raises the journal's kept
  /// term to options.term.
  /// Throws: fabric::error naming the endpoint when it cannot be bound; what the journal throws.
  source(context& ctx, journal& j, const replication_options& options);

  router& socket() noexcept { return sock_; }
  /// The bound endpoint, its wildcard resolved.
  const std::string& endpoint() const noexcept { return endpoint_; }
  std::uint64_t term() const noexcept { return options_.term; }

  /// The position the next commit writes (commits go one at a time, each reserve() followed by
  /// its write() and committed()); plans the trimming that commit does.
  std::uint64_t reserve();
  /// In the commit's transaction: the entry at `position`, and the trimming of old entries.
  void write(journal_txn& t, std::uint64_t position, std::string&& ops);
  /// The commit that wrote `position` ended (`ok`: durable).
  void committed(std::uint64_t position, bool ok, time_point now);
  /// Whether the answers of the commit at `position` wait for the follower (sync, in step).
  bool must_wait() const noexcept;
  /// Runs `release` once the follower has acknowledged `position`, or is taken for gone.
  void hold(std::uint64_t position, std::function<void(time_point)> release);

  /// Stores a request a follower hands over (tsp::server_machine::adopt).
  using adopt_fn = std::function<tsp::adoption(tsp::request_change&&, time_point)>;
  void on_handoff(adopt_fn fn) { adopt_ = std::move(fn); }

  void on_message(message&& m, time_point now);
  void on_tick(time_point now);
  time_point next_tick() const noexcept;
  source_stats stats() const noexcept;

 private:
  struct waiting {
    std::uint64_t position;
    std::function<void(time_point)> release;
  };
  void on_fetch(std::string&& to, const fetch_fields& f, time_point now);
  void on_snapshot_fetch(std::string&& to, const snapshot_fetch_fields& f);
  void on_handoff_message(std::string&& to, const message& m, time_point now);
  // The last position at most `at.position` whose entry's term is at most `at.term`: where a
  // follower's log may agree with this one (terms never decrease along a log).
  log_point agreement(log_point at) const;
  // Sends the entries after `from` (at most max_bytes), or parks the fetch when there are none.
  void serve(std::string to, std::uint64_t from, std::uint32_t max_bytes, time_point now);
  bool matches(log_point at) const;
  void release_upto(std::uint64_t position, time_point now);
  void send(std::string_view to, message&& m);

  journal& j_;
  replication_options options_;
  router sock_;
  std::string endpoint_;
  log_point head_;   // the last entry committed
  log_point base_;   // the last entry trimmed ({0, 0}: none)
  // The commit in flight trims the entries after base_ up to trim_ (its base from then on).
  // Set by reserve(), read by write() on the writer thread, taken by committed().
  std::optional<log_point> trim_;

  std::string follower_;               // the follower's routing id
  time_point follower_seen_ = time_point::min();
  std::uint64_t follower_at_ = 0;
  bool in_step_ = false;
  struct parked {
    std::string to;
    std::uint64_t from = 0;
    std::uint32_t max_bytes = 0;
    time_point until{};
  };
  std::optional<parked> parked_;
  std::deque<waiting> waiting_;
  adopt_fn adopt_;
  source_stats stats_;
};

}  // namespace fabric::titanic::repl
