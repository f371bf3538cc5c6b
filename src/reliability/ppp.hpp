// The 6/PPP (Paranoid Pirate) protocol logic with no sockets and no clock reads: frame
// classification and the queue's state machine, in the vocabulary of core/machine.hpp. The
// worker's heartbeats, liveness and back-off are core/liveness.hpp's, with 6/PPP's settings
// (cadence::fixed). The drivers in ppp_queue.cpp and ppp_worker.cpp move frames between sockets
// and the machines.
//
// Frame grammar (one token = one ZeroMQ frame; a ROUTER's identity frame is never part of it):
//
//   ready      = %x01                                  ; worker -> queue, first in a conversation
//   heartbeat  = %x02                                  ; both directions
//   request    = [ address-stack delimiter ] 1*content ; queue -> worker
//   reply      = [ address-stack delimiter ] 1*content ; worker -> queue
//   address-stack = 1*address
//   address    = 1*OCTET                               ; a non-empty frame
//   delimiter  = ""                                    ; the first empty frame ends the stack
//   content    = *OCTET
//
// A one-frame message holding exactly %x01 or %x02 is always a command. Between a queue and its
// clients a request always carries an address stack: the client's identity first (added by the
// frontend ROUTER), then whatever the client put before its delimiter.
//
// Thread safety: the machines are plain objects used by one thread; their counters may be read
// from any thread (single-writer relaxed atomics).
#pragma once

#include "core/liveness.hpp"
#include "core/machine.hpp"

#include <fabric/message.hpp>
#include <fabric/paranoid_pirate.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <list>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace fabric::ppp {

using clock = detail::machine_clock;
using time_point = detail::time_point;
using detail::port;

/// A counter written by one thread and read by any: increments are a relaxed load and store, not
/// a locked read-modify-write, since only the owning machine writes.
class counter {
 public:
  void add(std::uint64_t n = 1) noexcept { v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
  void set(std::uint64_t n) noexcept { v_.store(n, std::memory_order_relaxed); }
  std::uint64_t get() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> v_{0};
};

/// The READY and HEARTBEAT messages.
message ready_message();
message heartbeat_message();

/// True when `m` is the one-frame, one-byte command `command`.
bool is_command(const message& m, unsigned char command) noexcept;

/// The index of the delimiter (the first empty frame), or nullopt when there is none.
std::optional<std::size_t> find_delimiter(const message& m) noexcept;

/// A message sharing `m`'s frames (zmq_msg_copy: large frames are reference-counted, small ones
/// copied), for keeping a request while a copy of it is sent.
message share(message& m);

/// True when the address stacks (frames up to and including the delimiter) of two messages
/// are byte-for-byte equal.
bool same_address_stack(const message& a, const message& b) noexcept;

/// The queue side of 6/PPP: which workers exist, which are free (least recently used first),
/// which request each busy worker holds, and the bounded queue of requests waiting for one.
///
/// Ports: port::main is the frontend (clients), port::backend the workers. Messages in and out
/// carry the ROUTER's routing id first: the client's on port::main, the worker's on
/// port::backend. A send that fails leaves the message with the machine: a request is kept for
/// another worker, a reply is dropped and counted.
class queue_machine {
 public:
  /// `now` starts the heartbeat clock; `out` must outlive the machine. The endpoints and sockets
  /// of `options` are ignored.
  /// Throws: fabric::error(invalid_argument) for a non-positive heartbeat interval, liveness or
  /// max_workers of 0, a negative request expiry, or max_dispatches of 0.
  queue_machine(const queue_options& options, detail::machine_sink& out, time_point now);
  queue_machine(const queue_machine&) = delete;
  queue_machine& operator=(const queue_machine&) = delete;

  /// A message from a client (port::main: client identity, address stack, delimiter, content)
  /// or from a worker (port::backend: worker identity, then a command or a reply).
  void on_message(port from, message&& m, time_point now);
  /// Sends due heartbeats, purges every expired worker, expires old requests. Call at
  /// next_tick() or later; calling it early is harmless.
  void on_tick(time_point now);
  /// A message the driver had to drop before it reached the machine (too many frames, no
  /// identity): counted as malformed.
  void note_malformed_client() noexcept { stats_.malformed_client.add(); }
  void note_malformed_worker() noexcept { stats_.malformed_worker.add(); }

  /// When on_tick() next has work: the next heartbeat (expiry is checked on heartbeat ticks,
  /// so a dead worker is purged between liveness and liveness+1 intervals after it fell silent).
  time_point next_tick() const noexcept { return heartbeat_at_; }

  /// Introspection, for tests and stats.
  std::size_t idle_count() const noexcept { return idle_.size(); }
  std::size_t busy_count() const noexcept { return workers_.size() - idle_.size(); }
  std::size_t queued_count() const noexcept { return queue_.size(); }
  bool knows(std::string_view worker) const;
  bool is_busy(std::string_view worker) const;
  /// Free workers, the next to get a request first.
  std::vector<std::string> idle_order() const;
  queue_stats stats() const noexcept;

 private:
  struct pending {
    message request;       // client identity | address stack | "" | content
    time_point received;   // when it first arrived, for request_expiry
    std::size_t deliveries = 0;
  };
  struct worker_entry {
    time_point expiry;
    std::optional<pending> in_flight;       // set while busy
    std::list<std::string>::iterator idle_pos;  // valid while idle
    bool idle = false;
  };
  struct counters {
    counter requests_received, requests_dispatched, requests_redelivered, requests_dropped_full,
        requests_expired, requests_poisoned, replies_forwarded, replies_unroutable,
        replies_unmatched, workers_registered, workers_rejected, workers_expired,
        workers_unreachable, heartbeats_sent, heartbeats_received, unknown_worker_messages,
        malformed_client, malformed_worker, workers_idle, workers_busy, queued;
  };

  void on_client(message&& m, time_point now);
  void on_worker(message&& m, time_point now);
  void on_ready(const std::string& id, time_point now);
  void on_reply(const std::string& id, message&& m);
  /// Sends `m` to worker `id`. Returns false, with `m` unchanged, when it cannot be reached.
  bool to_worker(const std::string& id, message& m);
  void make_idle(worker_entry& w, const std::string& id);
  /// Removes a worker; the request it held goes back to the front of the queue.
  void remove_worker(const std::string& id);
  void enqueue_back(pending&& p);
  void requeue_front(pending&& p);
  void enforce_bound();
  void dispatch(time_point now);
  void send_heartbeats();
  void purge(time_point now);
  void expire_requests(time_point now);
  void update_gauges() noexcept;

  std::chrono::steady_clock::duration heartbeat_;
  std::chrono::steady_clock::duration expiry_;  // heartbeat * liveness
  std::size_t max_queued_;
  overflow_policy overflow_;
  std::chrono::steady_clock::duration request_expiry_;  // zero: never
  std::size_t max_workers_;
  std::size_t max_dispatches_;

  detail::machine_sink& out_;
  time_point heartbeat_at_;
  std::unordered_map<std::string, worker_entry> workers_;
  std::list<std::string> idle_;  // front = least recently used = next to get work
  std::deque<pending> queue_;
  counters stats_;
};

/// The worker side of 6/PPP: liveness, heartbeats and back-off come from the shared machine
/// with the settings of `o`, heartbeating at a fixed cadence (6/PPP).
detail::liveness::settings liveness_settings(const worker_options& o) noexcept;

}  // namespace fabric::ppp
