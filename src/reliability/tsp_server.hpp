// The 9/TSP (Titanic, docs/titanic.md) server: what it decides, with no sockets and no clocks.
// Pure, in the vocabulary of core/machine.hpp: it is told what the Titanic services received,
// what the services it dispatches to answered, what the journal made durable and what time it
// is, and it acts through two interfaces: server_io (answers to Titanic clients, dispatches to
// real services, mmi.service queries) and server_store (the journal).
//
// Every change of a request's durable state goes through one commit at a time, and nothing is
// answered before the commit that carries it is durable: "200" and a UUID after the request is
// stored, a reply offered only once stored, "200" to a close once the removal is. Changes that
// arrive while a commit is in flight wait for the next one, so under load one commit (one fsync)
// carries many requests, replies and closes.
//
//   titanic.request --commit--> waiting --dispatch--> in flight --reply, commit--> replied
//                                  ^                      |                           |
//                                  |  dispatch_timeout:   |           titanic.close   |
//                                  '-- attempt counted ---'            or retention   v
//                                                                              (removed)
//   waiting / in flight --max_attempts timeouts or request_ttl--> given up (dead letter)
//
// Dispatch (section 4.2): waiting requests go out oldest first, at most `max_in_flight` at once.
// Before a service is dispatched to, mmi.service is asked whether it has workers; the answer is
// trusted for `service_check_interval`. A request whose service has no workers waits
// `retry_base`, doubling up to `retry_max`, and is asked about again; those waits count no
// attempt (a request waits for its service as long as its TTL allows: that is what Titanic is
// for). A dispatch unanswered after `dispatch_timeout` counts an attempt; the request is not
// dispatched again before then, so a slow service does not run it twice.
//
// Bounds: at most `max_in_memory` open requests are held in memory; the rest wait in the journal,
// read in the order they were stored (server_store::read_open) as room frees, so the server
// starts and serves with any number of requests stored. Everything else the machine holds is
// bounded by what is in flight: the worker sessions' credit and `max_in_flight`.
//
// Thread safety: none; one thread drives a machine.
#pragma once

#include "core/machine.hpp"
#include "reliability/tsp.hpp"

#include <fabric/message.hpp>
#include <fabric/result.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <list>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace fabric::tsp {

/// The services the server offers, one MDP worker session each.
enum class service_kind : std::uint8_t { request = 0, reply = 1, close = 2, keyed_request = 3 };
inline constexpr std::size_t service_kinds = 4;
/// The MDP service name of `k`.
std::string_view service_name(service_kind k) noexcept;

/// Hashes a UUID by its last eight octets: random in the server's UUIDs (version 7 and version 4
/// alike), where the first eight of a version 7 UUID are a timestamp that many share. The
/// server's tables are keyed only by UUIDs it drew itself.
struct uuid_hash {
  std::size_t operator()(const uuid& u) const noexcept {
    std::size_t h = 0;
    for (std::size_t i = 8; i < u.bytes.size(); ++i) h = (h << 8) | u.bytes[i];
    return h;
  }
};

/// Where a Titanic client's request came from, so that its answer goes back the same way.
struct origin {
  service_kind kind = service_kind::request;
  std::string client{};         ///< the MDP client address the broker gave
  std::uint64_t connection = 0; ///< the worker session's connection it came on
};

/// An open (stored, not yet replied or given up) request as the store reads it back.
struct open_request {
  uuid id;
  std::uint64_t seq = 0;        ///< its record in the requests stream
  std::string service{};
  std::uint32_t attempts = 0;   ///< dispatch timeouts counted so far
  /// When its TTL runs out, in the machine's clock; time_point::max() for never.
  detail::time_point expires_at = detail::time_point::max();
};

/// What the journal knows of a request that is not open in the machine's memory.
struct request_lookup {
  enum class state : std::uint8_t { unknown, open, replied, given_up };
  state what = state::unknown;
  message reply{};              ///< replied: the service's reply frames
  std::string reason{};         ///< given_up: why
};

/// What one change of a commit does to one request.
enum class change_kind : std::uint8_t {
  stored,    ///< append the request's record; state open; index it (and its key)
  attempt,   ///< the open request's attempt count is now `attempts`
  replied,   ///< store `body` as its reply; state replied
  given_up,  ///< dead-letter its record with `reason`; state given up
  closed,    ///< remove the request, its reply and its key, whatever its state
  removed,   ///< retention: remove a replied or given-up request (as closed), counted apart
};
std::string_view to_string(change_kind k) noexcept;

struct request_change {
  change_kind kind = change_kind::stored;
  uuid id;
  std::uint64_t seq = 0;        ///< given_up: its record; stored: filled in by the store
  std::uint32_t attempts = 0;   ///< attempt, given_up
  std::string key{};            ///< stored: the client's key, empty for none
  std::string service{};        ///< stored
  message body{};               ///< stored: the request's frames; replied: the reply's
  std::string reason{};         ///< given_up
  std::string index{};          ///< removed: the retention index entry the store listed
  /// stored: when its TTL runs out, in the machine's clock (time_point::max() for never), for
  /// read_open to give back after a restart or a failed commit.
  detail::time_point expires_at = detail::time_point::max();
};

/// Everything one journal transaction writes, in order (a request may change more than once).
struct commit_batch {
  std::uint64_t id = 0;
  std::vector<request_change> changes;
  /// Requests in flight when the commit was made, recorded for tools (fabric-journal stats).
  std::uint64_t in_flight = 0;
};

/// A replied or given-up request whose retention time has passed, as the store lists them.
struct due_removal {
  uuid id;
  std::string index{};  ///< handed back in the `removed` change, for the store to erase
};

/// The server's side of the journal. The driver implements it over fabric::journal, tests over
/// memory. Reads are synchronous (the journal's reads are short read transactions); commits are
/// not.
class server_store {
 public:
  virtual ~server_store() = default;
  /// Appends to `out` at most `max` open requests stored after record `after`, in record order.
  /// Returns: true when no open request is left after the last one appended; or the journal's
  /// error (the machine tries again at its next tick).
  virtual result<bool> read_open(std::uint64_t after, std::size_t max, std::vector<open_request>& out) = 0;
  /// The body frames of open request `id`, whose record is `seq`.
  virtual result<message> read_body(const uuid& id, std::uint64_t seq) = 0;
  /// What the journal holds of `id`.
  virtual result<request_lookup> lookup(const uuid& id) = 0;
  /// The request stored with client key `key`, if any.
  virtual result<std::optional<uuid>> find_key(std::string_view key) = 0;
  /// Up to `max` replied or given-up requests whose retention time has passed, oldest first.
  virtual result<std::vector<due_removal>> due_removals(std::size_t max) = 0;
  /// Writes `batch` in one transaction without waiting, filling in each `stored` change's seq.
  /// Once durable (or failed) the driver calls server_machine::on_committed with the seqs of the
  /// stored changes, in order.
  virtual void commit(commit_batch&& batch) = 0;
};

/// The server's sockets, as the machine sees them: the worker sessions and the MDP client.
class server_io {
 public:
  virtual ~server_io() = default;
  /// Sends `body` (a whole 9/TSP answer) back to the Titanic client at `to`. An answer that
  /// cannot go (its connection was replaced since) is the io's to count: the client asks again.
  virtual void answer(const origin& to, message&& body) = 0;
  /// Sends a request to `service` as an MDP client, expiring after `timeout`.
  /// Returns: the dispatch id later passed to on_dispatch_reply / on_dispatch_expired; or an
  /// error (back pressure, closed), after which the machine tries again later.
  virtual result<std::uint64_t> dispatch(std::string_view service, message&& body,
                                         std::chrono::milliseconds timeout) = 0;
  /// Asks the broker whether `service` has workers (8/MMI mmi.service); the answer comes to
  /// on_service_status. Returns: an error when it could not be asked (tried again later).
  virtual result<void> query_service(std::string_view service) = 0;
  /// Forgets dispatch `id`: its reply, should it come, is not reported.
  virtual void cancel(std::uint64_t id) noexcept = 0;
};

/// What became of a request handed over by the other node of a pair (server_machine::adopt).
enum class adoption : std::uint8_t {
  held,     ///< durable here: under its UUID, or its key names a request here
  pending,  ///< being stored: ask again once the commit is durable
  failed,   ///< the journal could not be read: ask again later
};

struct server_settings {
  std::size_t max_in_flight = 64;
  /// Requests one service is first sent at once; each reply lets it have one more (up to
  /// max_in_flight), each dispatch timeout halves it (to 1 at least). See section 4.2.
  std::size_t service_window = 8;
  std::chrono::milliseconds dispatch_timeout{60'000};
  std::uint32_t max_attempts = 5;            ///< dispatch timeouts before a request is given up
  std::chrono::milliseconds retry_base{1000};
  std::chrono::milliseconds retry_max{60'000};
  std::chrono::milliseconds request_ttl{0};  ///< 0 = none
  std::chrono::milliseconds service_check_interval{2500};
  /// How often the store is asked for replies past their retention time.
  std::chrono::milliseconds sweep_interval{60'000};
  /// The largest request stored (its body frames' bytes); a larger one is answered 400.
  std::size_t max_request_bytes = std::size_t{16} << 20;
  std::size_t max_in_memory = 100'000;
  std::size_t page = 1024;                   ///< open requests read from the journal at once
  std::size_t max_batch = 4096;              ///< changes one commit carries at most
  /// Request bodies not yet dispatched and replies not yet closed are kept in memory up to this
  /// many bytes, so that a dispatch and a titanic.reply need no journal read (the journal is
  /// read for what does not fit). 0: nothing is kept.
  std::size_t cache_bytes = std::size_t{64} << 20;
  /// Under load (the last commit carried 64 changes or more), a commit with under half as many
  /// waits up to this long to fill. 0: never waits.
  std::chrono::microseconds commit_linger{1000};
};

struct server_stats {
  std::uint64_t received[service_kinds] = {};  ///< Titanic requests, per service_kind
  std::uint64_t malformed = 0;        ///< answered 400: broke the grammar, or over max_request_bytes
  std::uint64_t stored = 0;           ///< requests stored (and answered 200 once durable)
  std::uint64_t keyed_again = 0;      ///< keyed requests answered with a known request's UUID
  std::uint64_t answered[4] = {};     ///< answers sent, by status 200, 300, 400, 500
  std::uint64_t dispatched = 0;
  std::uint64_t replies = 0;          ///< service replies stored
  std::uint64_t late_replies = 0;     ///< service replies for a request no longer in flight
  std::uint64_t dispatch_timeouts = 0;
  std::uint64_t no_workers = 0;       ///< back-offs for a service without workers
  std::uint64_t service_queries = 0;
  std::uint64_t dispatch_failures = 0;  ///< dispatch() refused (back pressure): tried again
  std::uint64_t given_up = 0;
  std::uint64_t expired = 0;          ///< of which by TTL
  std::uint64_t closed = 0;
  std::uint64_t removed = 0;          ///< by retention
  std::uint64_t commits = 0;
  std::uint64_t commit_failures = 0;
  std::uint64_t store_errors = 0;     ///< reads that failed (answered 500 or tried again)
  std::uint64_t adopted = 0;          ///< requests handed over by the other node of a pair, stored
  // Now:
  std::uint64_t open = 0;             ///< stored, not yet replied or given up (in memory)
  std::uint64_t in_flight = 0;
  std::uint64_t waiting_in_journal = 0;  ///< 1 when open requests wait in the journal beyond memory
};

class server_machine {
 public:
  /// Throws: fabric::error(invalid_argument) for settings out of range.
  server_machine(const server_settings& s, server_io& io, server_store& store);

  /// A Titanic client's request, received by the worker session of `from.kind`.
  void on_request(origin&& from, message&& body, detail::time_point now);
  /// A service answered dispatch `id`.
  void on_dispatch_reply(std::uint64_t id, message&& body, detail::time_point now);
  /// Dispatch `id` went unanswered for its timeout.
  void on_dispatch_expired(std::uint64_t id, detail::time_point now);
  /// The broker's answer to query_service(service).
  void on_service_status(std::string_view service, bool has_workers, detail::time_point now);
  /// A request the other node of a pair accepted while this node did not follow it (docs/ha.md,
  /// section 9.5), under the UUID its client holds: stored here unless this journal already
  /// holds that UUID or that key, then dispatched as any other. Idempotent: the other node asks
  /// again until every request it hands over is held.
  adoption adopt(const uuid& id, std::string_view key, std::string_view service, message&& body,
                 detail::time_point now);
  /// Commit `batch` is durable (or failed); `seqs` are the records of its stored changes.
  void on_committed(std::uint64_t batch, result<void> outcome, std::vector<std::uint64_t> seqs,
                    detail::time_point now);
  void on_tick(detail::time_point now);
  detail::time_point next_tick() const noexcept;

  server_stats stats() const noexcept;
  const server_settings& settings() const noexcept { return s_; }

 private:
  enum class phase : std::uint8_t { waiting, in_flight, finishing };
  struct entry {
    std::uint64_t seq = 0;
    std::string service;
    std::uint32_t attempts = 0;
    detail::time_point expires_at = detail::time_point::max();
    message body{};  // the request's frames while cached (see cache_bytes); else read when due
    // waiting: min() while in its service's ready set, else its time in delayed_
    detail::time_point not_before = detail::time_point::min();
    phase at = phase::waiting;
    std::uint64_t dispatch = 0;     // in flight: the dispatch id
    detail::time_point deadline{};  // in flight: when it counts as unanswered
  };
  struct service_state {
    enum class known : std::uint8_t { unknown, asking, present, absent };
    known what = known::unknown;
    detail::time_point checked{};   // when the last answer came
    detail::time_point asked{};     // asking: when the question went
    detail::time_point retry_at{};  // absent: when to ask again
    std::uint32_t absences = 0;     // "no workers" answers in a row
    std::set<std::pair<std::uint64_t, uuid>> ready;  // its waiting, due requests, by record
    std::size_t in_flight = 0;  // its requests dispatched and not yet answered
    std::size_t window = 0;     // how many of them may be at once (section 4.2)
  };

  // What to do once the commit carrying a change is durable: one per change, in order.
  struct followup {
    change_kind kind = change_kind::stored;
    uuid id;
    std::optional<origin> reply_to{};  // stored, closed: the client to answer
    std::vector<origin> also{};        // stored: the same key again, meanwhile
    std::string key{};
    std::string service{};
    detail::time_point expires_at = detail::time_point::max();
    message cached{};                  // stored: the body; replied: the reply (cache_bytes)
  };
  struct cached_reply {
    message frames;
    std::list<uuid>::iterator order;
  };

  void on_store_request(origin&& from, std::string_view key, std::string_view service, message&& body,
                        detail::time_point now);
  void on_reply_request(origin&& from, const uuid& id);
  void on_close_request(origin&& from, const uuid& id);
  void answer_status(const origin& to, status s, std::string_view text = {});
  void answer_uuid(const origin& to, const uuid& id);

  void act(detail::time_point now);
  void queue_change(request_change&& c, followup&& f);
  // The change behind `f` is durable, or failed: it no longer holds its request out of page_in().
  void finished(const followup& f);
  void maybe_commit(detail::time_point now);
  void reload();
  void dispatch_due(detail::time_point now);
  void release_due(detail::time_point now);
  void expire_due(detail::time_point now);
  void timed_out(const uuid& id, entry& e, detail::time_point now);
  bool wants_page() const noexcept;
  void page_in(detail::time_point now);
  void sweep(detail::time_point now);
  service_state& service_of(std::string_view name);
  void add_ready(const uuid& id, const entry& e);
  void remove_ready(const uuid& id, const entry& e);
  bool dispatch_one(const uuid& id, entry& e, service_state& svc, detail::time_point now);
  void note_requery(detail::time_point at) noexcept;
  void give_up(const uuid& id, entry& e, std::string reason, bool by_ttl);
  void make_waiting(const uuid& id, entry& e, detail::time_point at, detail::time_point now);
  void unschedule(const uuid& id, entry& e, phase to);
  void track_ttl(const uuid& id, const entry& e);
  void forget(const uuid& id);
  bool cache_room(std::size_t bytes) const noexcept;
  void cache_reply(const uuid& id, message&& frames);
  void uncache_reply(const uuid& id) noexcept;
  void drop_body(entry& e) noexcept;
  detail::time_point backoff(std::uint32_t n, detail::time_point now) const;

  server_settings s_;
  server_io& io_;
  server_store& store_;

  std::unordered_map<uuid, entry, uuid_hash> open_;           // open requests in memory
  std::size_t ready_ = 0;                                     // requests in services' ready sets
  std::set<std::pair<detail::time_point, uuid>> delayed_;     // waiting, not yet due
  std::set<std::pair<detail::time_point, uuid>> deadlines_;   // in flight, by dispatch deadline
  std::set<std::pair<detail::time_point, uuid>> ttls_;        // open, by TTL
  std::unordered_map<std::uint64_t, uuid> dispatches_;        // dispatch id -> request
  std::map<std::string, service_state, std::less<>> services_;
  std::map<std::string, uuid, std::less<>> keys_pending_;     // keys being stored
  std::unordered_set<uuid, uuid_hash> adopting_;              // handed-over requests being stored
  // Requests with a change that ends them (replied, given up, closed) queued or in a commit not
  // yet durable, and how many such changes: the journal still lists them as open, and page_in()
  // must not read them back (after a failed commit, or when one was not in memory).
  std::unordered_map<uuid, std::uint32_t, uuid_hash> finishing_;
  std::optional<detail::time_point> requery_at_;              // a dispatch pass is due then
  std::unordered_map<uuid, cached_reply, uuid_hash> replies_; // replies stored, not yet closed
  std::list<uuid> reply_order_;                               // replies_, oldest first
  std::size_t body_bytes_ = 0;                                // bytes of entries' bodies
  std::size_t reply_bytes_ = 0;                               // bytes of replies_

  // Commits: one in flight, the next one gathering meanwhile.
  std::uint64_t next_batch_ = 1;
  std::uint64_t in_commit_ = 0;  // the batch in flight, 0 for none
  commit_batch gathering_;
  std::vector<followup> gathering_followups_;
  std::vector<followup> committing_followups_;

  bool complete_ = false;          // every open request of the journal is in memory
  std::uint64_t loaded_upto_ = 0;  // open requests up to this record are in memory (or done)
  detail::time_point retry_read_ = detail::time_point::min();
  detail::time_point next_sweep_ = detail::time_point::min();
  std::size_t in_flight_ = 0;
  std::size_t removals_pending_ = 0;
  std::size_t last_batch_ = 0;                          // changes the last commit carried
  std::optional<detail::time_point> commit_due_;        // a small commit waits until then  // removed changes queued, not yet durable
  server_stats stats_;
};

}  // namespace fabric::tsp
