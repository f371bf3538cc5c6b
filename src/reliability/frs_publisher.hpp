// The FRS/1 publisher (docs/stream.md): the live feed and the replay endpoint of one journal's
// streams. Pure, in the vocabulary of core/machine.hpp: it is told what arrived on the replay
// endpoint, what the journal has made durable and what time it is, and acts through its sink
// (port::main is the PUB socket, port::backend the ROUTER) and its store (the journal, read only).
//
// The publisher keeps no state per subscriber. A live message goes out once, to the PUB socket,
// after the journal has made it durable: on_durable() names the stream and how far it is durable,
// and the machine reads what it has not published yet back from the journal (so a message
// written inside an application's own transaction is published the same way as one handed to
// publish()). A FETCH is answered at once from the journal, a bounded batch at a time, so a slow
// subscriber costs one batch per request it makes and nothing in between.
//
// Thread safety: none; one thread drives a machine.
#pragma once

#include "core/machine.hpp"
#include "reliability/frs.hpp"

#include <fabric/journal.hpp>
#include <fabric/message.hpp>
#include <fabric/result.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fabric::frs {

inline constexpr detail::port pub_port = detail::port::main;
inline constexpr detail::port replay_port = detail::port::backend;

/// The journal as the publisher reads it. Stream names are those of the wire; the store maps them
/// to its journal streams.
/// The machine never reads past what it was told is durable (adopt(), on_durable()), so a record
/// committed but not yet durable (periodic mode) is neither published nor replayed.
class publisher_store {
 public:
  virtual ~publisher_store() = default;
  /// Calls `fn` for each record of `stream` from the first at or after `from`, at most
  /// `max_records` and (after the first) about `max_bytes` of bodies, as journal::read_views.
  /// Returns: as journal::read_views (errc::malformed when it stopped at a damaged record, the
  /// records before it handed over).
  virtual result<std::uint64_t> read(std::string_view stream, std::uint64_t from, std::size_t max_records,
                                     std::size_t max_bytes,
                                     const std::function<void(const journal_record_view&)>& fn) = 0;
  /// The first sequence of `stream` whose time is at or after `time_ns` (last + 1 when none).
  virtual result<std::uint64_t> seq_at_time(std::string_view stream, std::uint64_t time_ns) = 0;
  /// Whether subscriber `peer` (a ROUTER routing id) may read `stream`. A stream it may not read
  /// is refused as unknown, so that a subscriber cannot tell it from one that does not exist.
  virtual bool allowed(std::string_view peer, std::string_view stream) {
    (void)peer;
    (void)stream;
    return true;
  }
};

struct publisher_settings {
  /// The incarnation of the publisher's journal (non-zero).
  std::uint64_t incarnation = 0;
  /// HEARTBEAT every interval; a BEACON for every stream quiet for an interval.
  std::chrono::milliseconds heartbeat{1000};
  /// The most BEACONs sent per interval; beyond it they take turns.
  std::size_t max_beacons = 1024;
  /// A BATCH's bodies stop growing past this many bytes (it always holds one).
  std::size_t max_batch_bytes = std::size_t{4} << 20;
};

struct publisher_stream_stats {
  std::string stream;
  std::uint64_t published = 0;  ///< the last sequence sent live
  std::uint64_t live_sent = 0;
  std::uint64_t beacons = 0;
};

struct publisher_stats {
  std::uint64_t live_sent = 0;         ///< LIVE messages sent
  std::uint64_t beacons = 0;
  std::uint64_t heartbeats = 0;
  std::uint64_t fetches = 0;           ///< FETCH and FETCH-TIME answered
  std::uint64_t replayed = 0;          ///< messages sent in BATCHes
  std::uint64_t ends = 0;
  std::uint64_t gones = 0;
  std::uint64_t refused = 0;           ///< REFUSEs sent
  std::uint64_t malformed = 0;         ///< did not parse: dropped
  std::uint64_t protocol_errors = 0;   ///< parsed, but a command the publisher never takes
  std::uint64_t damaged = 0;           ///< damaged journal records met (answered as GONE)
  std::uint64_t store_errors = 0;      ///< journal reads that failed
  std::uint64_t send_failures = 0;     ///< answers the ROUTER could not take (the subscriber asks again)
};

class publisher_machine {
 public:
  /// Throws: fabric::error(invalid_argument) for a zero incarnation or a zero interval.
  publisher_machine(const publisher_settings& s, detail::machine_sink& sink, publisher_store& store);
  publisher_machine(const publisher_machine&) = delete;
  publisher_machine& operator=(const publisher_machine&) = delete;

  /// A stream whose history is already in the journal: it is served by replay and beaconed,
  /// and the live feed carries what comes after `last`.
  void adopt(std::string_view stream, std::uint64_t last);
  /// Everything of `stream` up to `through` is durable: publish what has not been yet.
  void on_durable(std::string_view stream, std::uint64_t through, detail::time_point now);
  /// What arrived on the replay endpoint (the ROUTER).
  void on_message(message&& m, detail::time_point now);
  void on_tick(detail::time_point now);
  detail::time_point next_tick() const noexcept { return tick_at_; }

  const publisher_stats& stats() const noexcept { return stats_; }
  std::vector<publisher_stream_stats> stream_stats() const;

 private:
  struct stream_state {
    std::uint64_t durable = 0;    // the journal holds everything up to here, durably
    std::uint64_t published = 0;  // sent live up to here (or known gone)
    bool live_this_interval = false;
    std::uint64_t live_sent = 0;
    std::uint64_t beacons = 0;
  };

  void publish(const std::string& name, stream_state& st);
  void answer_fetch(const parsed& p, std::uint64_t last);
  void answer_fetch_time(const parsed& p, std::uint64_t last);
  // Answers with a BATCH from `from`, or a GONE from `from` to the first record held (from <= last).
  void serve(const parsed& p, std::uint64_t from, std::uint64_t last);
  void send_beacons();
  void send_answer();
  void refuse(std::string_view peer, std::uint32_t request, std::string_view code, std::string_view reason);

  publisher_settings s_;
  detail::machine_sink& sink_;
  publisher_store& store_;
  std::map<std::string, stream_state, std::less<>> streams_;
  std::string beacon_from_;  // where the next round of beacons starts, when they take turns
  detail::time_point tick_at_ = detail::time_point::min();
  publisher_stats stats_;
  message out_;
};

}  // namespace fabric::frs
