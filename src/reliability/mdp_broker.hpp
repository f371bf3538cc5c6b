// The Majordomo broker's state machine: everything the broker decides, with no sockets and no
// clock. The driver (mdp_broker.cpp) feeds it each message its ROUTER receives and calls on_tick()
// when next_tick() is due; the machine answers through a broker_sink. Tests drive it directly
// with a fake clock and a recording sink.
//
// Messages in and out are ROUTER messages: frame 0 is the peer's routing id.
//
//   from a client:  id | stack* | "" | "MDPC01" | service | body+      (stack: return addresses)
//   to a client:    id | stack* | "" | "MDPC01" | service | body+      (the same stack, unchanged)
//   from a worker:  id | "" | "MDPW01" | command ...                    (see reliability/mdp.hpp)
//
// The grammar lives in reliability/mdp.hpp: on_message() parses through parse_broker_input()
// (views into the message, nothing copied) and acts only on what it accepts.
//
// Requests live in exactly one place at a time: a service's queue (a deque, oldest first) or the
// worker handling it (check_books() verifies it). Each is charged, from acceptance until it is
// answered or dropped, to its client's byte budget and to the total one; the sink reports the
// bytes of replies it has not yet handed to the network, which count too. A 7/MDP worker holds one request at a time; a worker that announced a
// credit in its READY (fabric's extension) holds up to that many, and is then given an 8-byte
// token per request as the client address, so its replies find their request in any order. A request's frames are kept as received; the worker gets copies of the body
// frames (zmq_msg_copy shares the bytes), so the original can be requeued if the worker dies, and
// the reply reuses the request's envelope frames so nothing is rebuilt on the way back.
//
// Thread safety: none; one thread drives a machine.
#pragma once

#include "core/machine.hpp"
#include "reliability/mdp.hpp"

#include <fabric/majordomo.hpp>
#include <fabric/message.hpp>
#include <fabric/result.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace fabric::mdp {

/// Where the machine's output goes: the protocol sink (send(port::main, m) is a ROUTER message,
/// frame 0 naming the peer; errc::peer_unreachable when no such peer is connected,
/// errc::back_pressure when its queue is full, `m` unchanged on failure), with what a broker also
/// needs of its transport.
class broker_sink : public detail::machine_sink {
 public:
  using machine_sink::send;
  /// A log line at `level` (only called at or above broker_options::min_log_level).
  virtual void log(log_level level, std::string_view line) {
    (void)level;
    (void)line;
  }
  /// Sends a reply to a client (frame 0 names it), like send(). A transport that can tell when
  /// a message has left its queues counts the reply's bytes in outbound_bytes() until then.
  virtual result<void> send_reply(message&& m) { return send(std::move(m)); }
  /// Bytes of replies to `peer` sent with send_reply() and still queued in the transport.
  virtual std::size_t outbound_bytes(std::string_view peer) const noexcept {
    (void)peer;
    return 0;
  }
  /// The same over all peers.
  virtual std::size_t outbound_bytes() const noexcept { return 0; }
  /// Messages the transport itself dropped as malformed (too many frames); added to the stats.
  virtual std::uint64_t dropped() const noexcept { return 0; }
  /// For a broker in a Binary Star pair (docs/ha.md section 8): may this client request be
  /// accepted at `now`? Asking may make a passive node take over. A request refused is dropped
  /// unanswered (its client fails over). Without a pair: always.
  virtual bool admit_request(detail::time_point now) {
    (void)now;
    return true;
  }
  /// Whether the broker serves workers at `now`: false on a node of a pair that is not active,
  /// whose workers are then sent DISCONNECT so that they go to the active node.
  virtual bool serving(detail::time_point now) const {
    (void)now;
    return true;
  }
};

/// A protocol machine in the vocabulary of core/machine.hpp.
/// A routing id as hex, for log lines and check_books(): routing ids are often binary.
std::string printable_id(std::string_view id);

class broker_machine {
 public:
  using clock = detail::machine_clock;
  using time_point = detail::time_point;

  /// Throws: fabric::error(invalid_argument) for an unusable option (zero liveness, zero or
  /// negative heartbeat interval, zero bounds).
  broker_machine(const broker_options& options, broker_sink& sink, time_point now);
  ~broker_machine();
  broker_machine(const broker_machine&) = delete;
  broker_machine& operator=(const broker_machine&) = delete;

  /// Handles one message received by the ROUTER (frame 0 = sender's routing id).
  void on_message(message&& m, time_point now);
  /// Heartbeats, purges silent workers, expires requests (queued or held) and forgets idle
  /// services.
  void on_tick(time_point now);
  /// When on_tick() should next run.
  time_point next_tick() const noexcept { return next_tick_; }

  broker_stats stats() const;

  /// Checks that the books balance: every accepted request is in exactly one place (one
  /// service's queue or one worker's hands) and whole, every running total (counts, bytes, each
  /// client's charge) equals the sum it stands for, the idle and unserved lists match the
  /// tables, and the tables and byte budgets are within their bounds. For tests;
  /// O(requests + workers + services).
  /// Returns: an empty string, or a description of the first imbalance found.
  std::string check_books() const;
  /// Services examined while looking for one to evict from a full table: a work measure, so
  /// tests can tell that refusals and evictions do not scan the table.
  std::uint64_t table_probes() const noexcept { return table_probes_; }

 private:
  struct pending;
  struct worker;
  struct service;
  struct string_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  template <typename T>
  using table = std::unordered_map<std::string, std::unique_ptr<T>, string_hash, std::equal_to<>>;

  /// Why a worker is removed: it decides the farewell and whether its request counts the death.
  enum class removal {
    departed,     ///< it sent DISCONNECT or broke the protocol (and was sent DISCONNECT)
    expired,      ///< silent for `liveness` intervals; it is sent DISCONNECT
    unreachable,  ///< its connection is gone
  };

  /// `in` is `m` parsed (reliability/mdp.hpp); its views stay valid as `m` moves.
  void on_client(message&& m, const broker_input& in, time_point now);
  void on_worker(message&& m, const broker_input& in, time_point now);
  void answer_mmi(pending&& p, std::string_view name, time_point now);
  /// `for_worker`: a READY may evict the least recently asked-for service with no workers when
  /// the table is full.
  service* find_or_create_service(std::string_view name, time_point now, bool for_worker);
  void register_worker(std::string_view id, std::string_view name, std::uint32_t credit,
                       time_point now);
  /// The index in w.jobs of the request a REPLY's client address names, or w.jobs.size().
  std::size_t find_job(const worker& w, std::string_view address) const noexcept;
  void protocol_error(std::string_view id, worker* w, std::string_view why, time_point now);
  void send_disconnect(std::string_view id);
  /// Refuses a READY: counted, and answered with DISCONNECT unless that connection was
  /// answered within the last heartbeat interval.
  void refuse(std::string_view id, time_point now);
  /// Drops `s` and its queued requests (counted) to make room for a worker's service.
  void evict(service& s);
  /// Erases `s` from the table; `s` is gone after.
  void forget_service(service& s);
  void link_unserved(service& s);
  void unlink_unserved(service& s);
  /// Moves `s` (unserved) to the most recently asked-for end of the list.
  void touch_unserved(service& s);
  /// Forgets `w`: its request goes back to the front of its service's queue (or is dropped as
  /// poison), and it leaves its service. Returns that service. With `drain_after`, queued
  /// requests then go to the service's idle workers.
  service* remove_worker(worker* w, removal how, time_point now, bool drain_after = true);
  /// Removes every worker in `gone` (clearing it) so that none of them is handed a request
  /// requeued by another's removal.
  void remove_all(std::vector<worker*>& gone, removal how, time_point now);
  /// Gives `p` (a request in no queue) to the longest-idle worker of `s`. Returns false
  /// (leaving `p` intact) when `s` has no idle worker that could take it. Idle workers found
  /// dead on the way are only taken off the idle list and noted in displaced_: the caller puts
  /// `p` where it belongs, then calls settle_displaced(), so no queue changes under it.
  bool dispatch(service& s, pending& p, time_point now);
  void displace(worker& w, removal how);
  /// Removes the workers dispatch() displaced, requeueing whatever they held, without draining.
  void settle_displaced(time_point now);
  /// Hands queued requests to idle workers while both exist.
  void drain(service& s, time_point now);
  void enqueue(service& s, pending&& p, bool front);
  void worker_idle(worker& w);
  void unlink_idle(worker& w);
  /// Sends a worker's reply to its client (see send_to_client); counts it in `replies`.
  bool deliver(message&& reply);
  /// Sends `m` to the client frame 0 names, unless that would exceed a byte budget; a reply
  /// not sent is counted as undeliverable.
  bool send_to_client(message&& m);
  /// Whether `bytes` more for `client` stay within max_peer_bytes and max_total_bytes.
  bool fits(std::string_view client, std::size_t bytes) const noexcept;
  /// Charges `p` to its client's budget, or takes it off.
  void charge(const pending& p);
  void discharge(const pending& p);
  bool logs(log_level level) const noexcept;
  void log(log_level level, std::string_view line);

  broker_options options_;
  broker_sink& sink_;
  clock::duration heartbeat_;
  clock::duration worker_ttl_;
  clock::duration period_;
  time_point next_tick_;
  table<worker> workers_;
  table<service> services_;
  // Services with no workers, least recently asked for first; O(1) to find room in the table.
  service* unserved_head_ = nullptr;
  service* unserved_tail_ = nullptr;
  // Connections whose refused READY was answered, and when.
  std::unordered_map<std::string, time_point, string_hash, std::equal_to<>> refused_;
  std::size_t queued_ = 0;
  std::size_t queued_bytes_ = 0;
  std::size_t busy_ = 0;       // workers holding at least one request
  std::size_t in_flight_ = 0;  // requests held by workers (not those expired in their hands)
  std::size_t in_flight_bytes_ = 0;
  // Bytes of each client's requests, queued or held, by routing id (zeros erased each tick).
  std::unordered_map<std::string, std::size_t, string_hash, std::equal_to<>> peer_bytes_;
  std::uint64_t last_token_ = 0;
  std::uint64_t last_serial_ = 0;  // numbers accepted requests, for check_books()
  std::uint64_t table_probes_ = 0;
  std::uint64_t retired_ = 0;      // accepted requests that have left (answered or dropped)
  std::size_t logged_this_tick_ = 0;
  std::size_t suppressed_this_tick_ = 0;
  // The MMI documents, built at most once per tick.
  std::optional<std::string> services_json_;
  std::optional<std::string> stats_json_;
  // The counters of broker_stats that are not derived from the tables.
  broker_stats counters_{};
  // Reused for the frames sent to workers, so a dispatch allocates nothing once warm.
  message scratch_;
  // Workers dispatch() found dead, waiting for settle_displaced().
  std::vector<std::pair<worker*, removal>> displaced_;
};

}  // namespace fabric::mdp
