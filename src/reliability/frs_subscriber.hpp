// The FRS/1 subscriber (docs/stream.md, sections 6 to 8): per stream, the position it will deliver
// next, the live feed merged with what it fetches from the publisher's replay endpoint, so that
// the application sees each stream once, in order, with no gap, or is told exactly which range is
// gone. Pure, in the vocabulary of core/machine.hpp: port::main is the SUB socket, port::backend
// the DEALER; it delivers through its store, which also knows the durable positions.
//
// Bounds: live messages held while a stream catches up (max_held per stream; beyond it the
// newest are dropped and fetched later), fetches in flight (max_fetches), streams followed
// (max_streams), and deliveries the store has not finished (max_backlog: beyond it nothing more
// is delivered until it drains; live messages are held or dropped, and fetched later).
//
// Thread safety: none; one thread drives a machine.
#pragma once

#include "core/machine.hpp"
#include "reliability/frs.hpp"

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
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace fabric::frs {

inline constexpr detail::port live_port = detail::port::main;
inline constexpr detail::port fetch_port = detail::port::backend;

/// Where a stream starts the first time the subscriber meets it with no durable position.
struct start_position {
  enum class kind : std::uint8_t {
    latest,     ///< the next message published: nothing older is fetched
    from_seq,   ///< from sequence `value` (1: the whole history the publisher holds)
    from_time,  ///< from the first message at or after `value` ns since the Unix epoch
  };
  kind what = kind::latest;
  std::uint64_t value = 0;
};

/// A durable position: the publisher incarnation it belongs to and the next sequence to deliver.
struct position {
  std::uint64_t incarnation = 0;
  std::uint64_t next = 0;
  bool operator==(const position&) const = default;
};

/// One message handed to the application, in order per stream.
struct delivery {
  std::string_view stream;
  std::uint64_t incarnation = 0;
  std::uint64_t seq = 0;
  std::uint64_t time_ns = 0;
  std::string_view body;
  /// The frame that holds the body's bytes (on the live feed, with the command's fields before
  /// them; in a BATCH, among the other entries): the store may share it (zmq copy) rather than
  /// copy the body, keeping the body's offset and size in it; it is not used after.
  frame& holder;
  bool replayed = false;  ///< came by FETCH rather than live
};

/// Things the application is told, never silently passed over.
struct stream_event {
  enum class kind : std::uint8_t {
    gone,                 ///< from .. to were removed by the publisher's retention (or damaged)
    publisher_replaced,   ///< a new publisher journal: the old incarnation's position was `from`
    publisher_regressed,  ///< the publisher is behind this position: it continues from `to`
    publisher_lost,       ///< nothing heard for liveness intervals
    publisher_back,       ///< heard again after publisher_lost
    refused,              ///< the publisher refused the stream (`detail`: "code: reason")
  };
  kind what = kind::gone;
  std::string stream{};  ///< empty for publisher_lost and publisher_back
  std::uint64_t from = 0;
  std::uint64_t to = 0;
  std::uint64_t old_incarnation = 0;
  std::uint64_t new_incarnation = 0;
  std::string detail{};
};

/// The subscriber's side of the application: where deliveries go and where positions are kept.
class subscriber_store {
 public:
  virtual ~subscriber_store() = default;
  /// The durable position of `stream`, nullopt when none (always, for a subscriber that keeps
  /// none).
  virtual result<std::optional<position>> load(std::string_view stream) = 0;
  /// Hands one message over. Messages of one stream come in sequence order, with no gap (a gap
  /// is reported as an event first).
  virtual void deliver(const delivery& d) = 0;
  /// Deliveries handed over and not yet finished (committed, for a subscriber whose handler runs
  /// in its commit): past max_backlog the machine holds back until drained.
  virtual std::size_t backlog() const noexcept { return 0; }
  /// Reports an event to the application.
  virtual void report(const stream_event& e) = 0;
};

struct subscriber_settings {
  start_position start{};
  /// Streams followed from the start, before the publisher names them (by a LIVE or a BEACON).
  std::vector<std::string> streams{};
  /// Silent heartbeat intervals of the publisher before it is reported lost. The interval is the
  /// one its HEARTBEATs announce (assumed_heartbeat until the first).
  std::size_t liveness = 3;
  std::chrono::milliseconds assumed_heartbeat{1000};
  /// Messages asked for by one FETCH.
  std::uint32_t fetch_count = max_count;
  /// An unanswered FETCH is sent again after this long.
  std::chrono::milliseconds fetch_timeout{2000};
  /// A refused stream is asked for again after this long.
  std::chrono::milliseconds refused_retry{10'000};
  /// FETCHes in flight at once, over every stream.
  std::size_t max_fetches = 16;
  /// Live messages held per stream while it catches up.
  std::size_t max_held = 10'000;
  /// Streams followed at once; live messages of any more are dropped and counted.
  std::size_t max_streams = 4096;
  /// Deliveries the store may have unfinished before the machine holds back.
  std::size_t max_backlog = 65'536;
};

struct subscriber_stream_stats {
  std::string stream;
  std::string state;            ///< "waiting" (position unknown), "live", "catching-up", "refused"
  std::uint64_t incarnation = 0;
  std::uint64_t next = 0;       ///< the next sequence to deliver; 0 while unknown
  std::uint64_t delivered = 0;
  std::uint64_t replayed = 0;   ///< delivered from FETCHes
  std::uint64_t duplicates = 0; ///< live or fetched messages already delivered
  std::uint64_t gaps = 0;       ///< times a gap or a lost tail was noticed
  std::uint64_t fetches = 0;
  std::uint64_t gone = 0;       ///< messages reported gone
  std::uint64_t held = 0;       ///< live messages held now
  std::uint64_t held_dropped = 0;
};

struct subscriber_stats {
  std::uint64_t received = 0;          ///< messages on both sockets
  std::uint64_t malformed = 0;         ///< did not parse: dropped
  std::uint64_t protocol_errors = 0;   ///< parsed, but broke a rule (an answer out of place)
  std::uint64_t stale = 0;             ///< answers to requests no longer in flight, or of an old incarnation
  std::uint64_t fetches = 0;
  std::uint64_t fetch_timeouts = 0;
  std::uint64_t refusals = 0;
  std::uint64_t ignored = 0;           ///< live messages of streams past max_streams
  std::uint64_t publisher_losses = 0;
  std::uint64_t publisher_replacements = 0;
  std::uint64_t send_failures = 0;
  std::uint64_t store_errors = 0;
  bool publisher_alive = false;
  std::uint64_t publisher_incarnation = 0;
};

class subscriber_machine {
 public:
  /// Throws: fabric::error(invalid_argument) for settings out of range or a bad stream name.
  subscriber_machine(const subscriber_settings& s, detail::machine_sink& sink, subscriber_store& store);
  subscriber_machine(const subscriber_machine&) = delete;
  subscriber_machine& operator=(const subscriber_machine&) = delete;

  /// Starts following `stream` now (a stream of the settings, or one with a durable position):
  /// its position is loaded, and it catches up from there.
  void follow(std::string_view stream, detail::time_point now);
  void on_message(detail::port from, message&& m, detail::time_point now);
  /// The store finished deliveries (its backlog shrank): continue what was held back.
  void on_drained(detail::time_point now);
  void on_tick(detail::time_point now);
  detail::time_point next_tick() const noexcept;

  const subscriber_stats& stats() const noexcept { return stats_; }
  std::vector<subscriber_stream_stats> stream_stats() const;

 private:
  enum class mode : std::uint8_t { waiting, live, catching_up, refused };
  struct held_message {
    std::uint64_t time_ns;
    frame holder;          // the frame the body is in
    std::size_t offset;    // where the body starts in it; it runs to the end (only LIVE is held)
  };
  struct stream_state {
    std::string name;
    mode state = mode::waiting;
    std::uint64_t incarnation = 0;  // the publisher incarnation `next` belongs to (0: none yet)
    std::uint64_t next = 0;         // 0: unknown (latest, or from_time not yet answered)
    bool by_time = false;           // the next FETCH is a FETCH-TIME from start.value
    std::map<std::uint64_t, held_message> held;
    std::optional<std::uint32_t> request;  // the FETCH in flight
    std::uint64_t asked_from = 0;          // what it asked for (a sequence; 0 for a FETCH-TIME)
    detail::time_point asked_at{};
    bool waiting_room = false;             // in waiting_: wants a FETCH when there is room
    detail::time_point retry_at = detail::time_point::max();  // refused: ask again then
    subscriber_stream_stats counts;
  };

  stream_state* find_or_start(std::string_view name, detail::time_point now, bool& created);
  void on_live(const parsed& p, detail::time_point now);
  void on_answer(const parsed& p, detail::time_point now);
  void on_heartbeat(std::uint64_t inc, std::uint32_t ms, detail::time_point now);
  // Applies section 7 when `inc` is not the publisher incarnation known; false when the message
  // is of a retired incarnation and must be dropped.
  bool check_incarnation(std::uint64_t inc, detail::time_point now);
  void adopt_incarnation(stream_state& st, detail::time_point now);
  void deliver(stream_state& st, std::uint64_t seq, std::uint64_t time_ns, frame& holder, std::string_view body,
               bool replayed);
  void deliver_held(stream_state& st);
  void hold(stream_state& st, std::uint64_t seq, std::uint64_t time_ns, frame&& holder, std::string_view body);
  // After an answer: held messages delivered where they continue, then live again (`at_end`:
  // the publisher had nothing more) or another FETCH.
  void after_answer(stream_state& st, bool at_end, detail::time_point now);
  void drop_request(stream_state& st);
  void serve_waiting(detail::time_point now);
  void catch_up(stream_state& st, detail::time_point now);
  void fetch(stream_state& st, detail::time_point now);
  void report(stream_event&& e);
  bool backlog_full() const noexcept;
  void heard(detail::time_point now);

  subscriber_settings s_;
  detail::machine_sink& sink_;
  subscriber_store& store_;
  // Looked up by a view of each live message's topic: no string is built per message.
  struct name_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view n) const noexcept { return std::hash<std::string_view>{}(n); }
  };
  std::unordered_map<std::string, stream_state, name_hash, std::equal_to<>> streams_;
  std::unordered_map<std::uint32_t, std::string> requests_;  // FETCH in flight -> stream
  std::vector<std::string> waiting_;  // streams that want a FETCH but found no room
  std::uint32_t next_request_ = 1;
  std::uint64_t publisher_inc_ = 0;
  std::unordered_set<std::uint64_t> retired_;  // incarnations replaced, whose messages are dropped
  std::unordered_set<std::string> refused_;    // streams refused, asked for again at retry_at
  std::chrono::milliseconds publisher_heartbeat_{0};
  detail::time_point last_heard_{};
  bool heard_ever_ = false;
  bool lost_ = false;
  subscriber_stats stats_;
  message out_;
};

}  // namespace fabric::frs
