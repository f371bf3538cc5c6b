// The 6/PPP (Paranoid Pirate) protocol logic with no sockets and no clock reads: frame
// classification, the queue's state machine and the worker's liveness/back-off machine. The
// drivers in ppp_queue.cpp and ppp_worker.cpp move frames between sockets and these.
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

using clock = std::chrono::steady_clock;
using time_point = clock::time_point;

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

/// What the queue machine sends. The driver implements it over its two ROUTER sockets.
class queue_sink {
 public:
  virtual ~queue_sink() = default;
  /// Sends `m` (a request or a HEARTBEAT) to the worker whose routing id is `worker`.
  /// Returns: true when sent (then `m` may be left empty); false when the worker cannot be
  /// reached, with `m` unchanged.
  virtual bool to_worker(std::string_view worker, message& m) = 0;
  /// Sends reply `m`, whose first frame is the client's routing id, to the frontend.
  /// Returns: false when the client cannot be reached; the reply is then dropped.
  virtual bool to_client(message& m) = 0;
};

/// The queue side of 6/PPP: which workers exist, which are free (least recently used first),
/// which request each busy worker holds, and the bounded queue of requests waiting for one.
class queue_machine {
 public:
  /// `now` starts the heartbeat clock. The endpoints and sockets of `options` are ignored.
  queue_machine(const queue_options& options, time_point now);
  queue_machine(const queue_machine&) = delete;
  queue_machine& operator=(const queue_machine&) = delete;

  /// A message from the frontend: client identity, address stack, delimiter, content.
  void on_client(message&& m, time_point now, queue_sink& out);
  /// A message from worker `worker` on the backend (its identity frame removed).
  void on_worker(std::string_view worker, message&& m, time_point now, queue_sink& out);
  /// Sends due heartbeats, purges every expired worker, expires old requests. Call at
  /// next_deadline() or later; calling it early is harmless.
  void on_tick(time_point now, queue_sink& out);
  /// A message the driver had to drop before it reached the machine (too many frames, no
  /// identity): counted as malformed.
  void note_malformed_client() noexcept { stats_.malformed_client.add(); }
  void note_malformed_worker() noexcept { stats_.malformed_worker.add(); }

  /// When on_tick() next has work: the next heartbeat (expiry is checked on heartbeat ticks,
  /// so a dead worker is purged between liveness and liveness+1 intervals after it fell silent).
  time_point next_deadline() const noexcept { return heartbeat_at_; }

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
    time_point received;   // when it first arrived, for request_ttl
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
        requests_expired, requests_abandoned, replies_forwarded, replies_unroutable,
        replies_unmatched, workers_registered, workers_rejected, workers_expired,
        workers_unreachable, heartbeats_sent, heartbeats_received, unknown_worker_messages,
        malformed_client, malformed_worker, workers_idle, workers_busy, queued;
  };

  void on_ready(const std::string& id, time_point now, queue_sink& out);
  void on_reply(const std::string& id, message&& m, queue_sink& out);
  void make_idle(worker_entry& w, const std::string& id);
  /// Removes a worker; the request it held goes back to the front of the queue.
  void remove_worker(const std::string& id);
  void enqueue_back(pending&& p);
  void requeue_front(pending&& p);
  void enforce_bound();
  void dispatch(time_point now, queue_sink& out);
  void send_heartbeats(time_point now, queue_sink& out);
  void purge(time_point now);
  void expire_requests(time_point now);
  void update_gauges() noexcept;

  std::chrono::steady_clock::duration heartbeat_;
  std::chrono::steady_clock::duration expiry_;  // heartbeat * liveness
  std::size_t max_queued_;
  overflow_policy overflow_;
  std::chrono::steady_clock::duration request_ttl_;  // zero: never
  std::size_t max_workers_;
  std::size_t max_redeliveries_;

  time_point heartbeat_at_;
  std::unordered_map<std::string, worker_entry> workers_;
  std::list<std::string> idle_;  // front = least recently used = next to get work
  std::deque<pending> queue_;
  counters stats_;
};

/// The worker side of 6/PPP: when to heartbeat, when the queue is dead, and when to reconnect.
///
///   connected --(no message for liveness * heartbeat)--> waiting   [disconnect]
///   waiting   --(back-off elapsed)-------------------->  connected [reconnect: fresh socket + READY]
///
/// The back-off doubles after each disconnect up to the maximum and returns to the initial value
/// whenever the queue is heard from.
class worker_machine {
 public:
  struct timing {
    std::chrono::milliseconds heartbeat{1000};
    std::size_t liveness = 3;
    std::chrono::milliseconds reconnect_initial{1000};
    std::chrono::milliseconds reconnect_max{32000};
  };
  /// What the driver must do after on_tick().
  struct actions {
    bool send_heartbeat = false;
    bool disconnect = false;  ///< close the socket at once (linger 0)
    bool reconnect = false;   ///< open a fresh socket, connect, send READY
  };
  enum class state { connected, waiting };

  /// Starts connected at `now` (the driver has just connected and sent READY).
  worker_machine(const timing& t, time_point now);

  /// Any message from the queue: it is alive.
  void on_traffic(time_point now) noexcept;
  /// Advances time. A disconnect and a reconnect never come from the same call unless the
  /// back-off is zero.
  actions on_tick(time_point now) noexcept;
  /// When on_tick() next has work.
  time_point next_deadline() const noexcept;

  state current() const noexcept { return state_; }
  /// The wait the next disconnect will impose.
  std::chrono::milliseconds next_backoff() const noexcept { return backoff_; }
  /// The instant the queue will be declared dead if nothing arrives (connected only).
  time_point expiry() const noexcept { return last_heard_ + expiry_; }

 private:
  timing t_;
  std::chrono::steady_clock::duration expiry_;
  state state_ = state::connected;
  time_point last_heard_;
  time_point heartbeat_at_;
  time_point reconnect_at_{};
  std::chrono::milliseconds backoff_;
};

}  // namespace fabric::ppp
