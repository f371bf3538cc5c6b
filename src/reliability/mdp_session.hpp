// One 7/MDP (Majordomo) worker's conversation with its broker, as a pure machine in the
// vocabulary of core/machine.hpp, for a server that offers several services from one thread: one
// session per service, each on its own DEALER, all run by the shared driver (core/driver.hpp).
// It speaks the same protocol as the thread-based fabric::mdp::worker (mdp_worker.cpp), through
// the same codec (mdp.hpp) and the same liveness machine with the same settings (cadence
// when_quiet), but reads no clock, owns no socket and runs no thread.
//
//            first on_tick: sink.open(), READY          broker silent for liveness intervals
//   closed  ------------------------------------->  open  -------------------------------->  closed
//     ^  \                                           |  \       (not while busy): sink.close()
//     |   `-- open or READY failed: back-off         |   `-- DISCONNECT: sink.close()
//     `----------------- back-off delay -------------'
//   leave(): DISCONNECT, sink.close(), and nothing more, ever
//
// Rules:
//   - sink.open(on) connects a fresh connection (a new identity to the broker); once it succeeds
//     the session sends READY first, with fabric's CREDIT extension when credit > 1. An open that
//     fails, or a READY the socket refuses, is retried after the back-off (a refused READY also
//     closes the connection: a broker must not hear heartbeats from a worker it does not know);
//   - anything from the broker is a sign of life; a HEARTBEAT goes out after an interval in which
//     nothing else was sent; after `liveness` intervals of silence the broker is dead: the
//     connection is closed and a fresh one opened after the back-off (liveness.hpp has the rules
//     of the delay);
//   - while requests taken on the current connection are in hand (delivered, not yet answered),
//     the broker's silence is no sign of death: a 7/MDP broker heartbeats only idle workers;
//   - DISCONNECT from the broker closes the connection and opens a fresh one (at once when the
//     connection had carried a valid message, after the back-off otherwise);
//   - requests belong to the connection they came on. When it goes the broker requeues them, so
//     the session forgets them, and a reply to one is dropped (errc::peer_unreachable);
//   - messages that break the grammar, or that a broker must not send (READY, REPLY), are
//     counted as malformed and dropped; they prove the broker alive but do not reset the
//     back-off. Messages that arrive while no connection is open are counted and dropped;
//   - bounded memory: the client addresses of at most `credit` requests are tracked. A broker
//     that sends more than the credit is broken; its extra requests are still delivered (someone
//     is waiting for them, and a reply is still sent), counted in over_credit, but not tracked,
//     so they do not keep the session busy;
//   - an application that cannot answer a request calls abandon(): DISCONNECT, a fresh
//     connection, and the broker gives the request to another worker.
//
// The driver's side: on_message() with every message the DEALER receives, on_tick() when
// next_tick() is reached. open(on) must connect a DEALER the broker has not seen (e.g. disconnect
// and connect again without a routing id of its own, or a fresh socket), and close(on) must drop
// the connection, so that nothing from the old one is read afterwards: the session cannot tell
// the two apart. After leave() and abandon() the sink's close should let the DISCONNECT just sent
// leave (a short linger); if it is lost, the broker learns from the silence instead.
//
// Thread safety: none; one thread drives a session, its sink and the request callback.
#pragma once

#include "core/liveness.hpp"
#include "core/machine.hpp"

#include <fabric/message.hpp>
#include <fabric/result.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace fabric::mdp {

/// What a worker_session is configured with, read once at construction.
struct session_settings {
  /// The service offered: 1..255 bytes, not beginning "mmi." (8/MMI names belong to the broker).
  std::string service{};
  /// Requests the broker may give at once: 1..1024. Above 1, READY carries fabric's credit
  /// extension (mdp.hpp); a 7/MDP broker ignores it and gives one at a time.
  std::uint32_t credit = 1;
  /// The heartbeat interval: 1 ms .. 1 h.
  std::chrono::milliseconds heartbeat{2500};
  /// Silent intervals after which the broker is taken for dead: 1..1000.
  std::size_t liveness = 3;
  /// The first reconnection delay (0 .. 1 h), doubled after each use up to reconnect_max (at most
  /// 1 h), and back to this after a valid message from the broker.
  std::chrono::milliseconds reconnect_initial{1000};
  std::chrono::milliseconds reconnect_max{32'000};
  /// The sink port of this session's socket.
  fabric::detail::port on = fabric::detail::port::main;
};

/// What a worker_session has done, since construction.
struct session_stats {
  std::uint64_t requests = 0;             ///< REQUESTs delivered to the callback
  std::uint64_t over_credit = 0;          ///< of them, beyond the credit: delivered, not tracked
  std::uint64_t replies = 0;              ///< REPLYs the sink took
  std::uint64_t replies_dropped = 0;      ///< reply() calls that sent nothing
  std::uint64_t abandoned = 0;            ///< requests given back by abandon()
  std::uint64_t heartbeats_sent = 0;      ///< HEARTBEATs the sink took
  std::uint64_t heartbeats_received = 0;  ///< HEARTBEATs from the broker
  std::uint64_t connections = 0;          ///< connections opened with READY sent
  std::uint64_t open_failures = 0;        ///< opens that failed, or whose READY was refused
  std::uint64_t broker_expiries = 0;      ///< connections closed because the broker went silent
  std::uint64_t disconnects_received = 0; ///< DISCONNECTs from the broker
  std::uint64_t malformed = 0;            ///< messages dropped as malformed or wrong-direction
  std::uint64_t stray = 0;                ///< messages that arrived with no connection open
};

class worker_session {
 public:
  /// Called for each REQUEST, from inside on_message(): the client address (an opaque token to
  /// give back to reply(); the view lasts for the call only), the body frames (possibly none),
  /// the connection it came on, and the time. The callback may call reply(), abandon() and
  /// leave() on this session; what it throws propagates out of on_message(), the request still
  /// in hand.
  using request_fn = std::function<void(std::string_view client, message&& body,
                                        std::uint64_t connection, fabric::detail::time_point now)>;

  /// Starts closed; the first on_tick() opens the connection. `sink` (port `s.on`) must outlive
  /// the session.
  /// Throws: fabric::error(invalid_argument) for settings out of the ranges in session_settings,
  /// or an empty `on_request`.
  worker_session(const session_settings& s, fabric::detail::machine_sink& sink, request_fn on_request);
  worker_session(const worker_session&) = delete;
  worker_session& operator=(const worker_session&) = delete;

  /// A message the DEALER received from the broker at `now`: REQUEST (delivered to the
  /// callback), HEARTBEAT or DISCONNECT; anything else is counted and dropped.
  void on_message(message&& m, fabric::detail::time_point now);
  /// Does whatever is due at `now`: heartbeat, close on the broker's silence, open a fresh
  /// connection (the first call opens the first one). Harmless when nothing is due.
  void on_tick(fabric::detail::time_point now);
  /// When on_tick() next has something to do; time_point::max() after leave().
  fabric::detail::time_point next_tick() const noexcept;

  /// Sends the REPLY `body` (no frames: one empty frame is sent) to the request from `client`
  /// taken on connection `connection`.
  /// Returns: success when the sink took it; errc::peer_unreachable when no connection is open
  /// or it is not `connection` any more (the broker has requeued the request); errc::closed after
  /// leave(); the sink's error (errc::back_pressure, errc::would_block, errc::closed) when it
  /// refused the REPLY, the request then still in hand. Every failure counts in replies_dropped.
  /// Throws: fabric::error(invalid_argument) when `client` is empty or over 255 bytes.
  result<void> reply(std::string_view client, std::uint64_t connection, message&& body,
                     fabric::detail::time_point now);

  /// Gives back the requests in hand on the current connection, for an application that cannot
  /// answer them: DISCONNECT, close, and a fresh connection (at once, unless abandoning is all
  /// this session has done lately: liveness.hpp). Nothing happens when none is in hand.
  /// Returns: how many requests were given back.
  std::size_t abandon(fabric::detail::time_point now) noexcept;

  /// Ends the session: DISCONNECT and close when a connection is open; no connection is opened
  /// again, messages are dropped (stray) and replies refused (errc::closed). Idempotent.
  void leave() noexcept;

  /// Whether a connection is open (READY sent) and leave() has not been called.
  bool open() const noexcept;
  /// Whether leave() has been called.
  bool left() const noexcept { return left_; }
  /// The number of the current or last connection: 1, 2, ...; 0 before the first.
  std::uint64_t connection() const noexcept { return connection_; }
  /// Requests taken on the current connection and not yet answered (at most the credit).
  std::size_t in_hand() const noexcept { return in_hand_; }
  /// A snapshot of the counters.
  session_stats stats() const noexcept { return stats_; }
  /// The settings, as given.
  const session_settings& settings() const noexcept { return s_; }

 private:
  // What the liveness machine sees as its sink: it sends heartbeats, closes a silent broker's
  // connection and opens fresh ones; this adds READY, the connection count and the counters.
  class link_sink final : public fabric::detail::machine_sink {
   public:
    explicit link_sink(worker_session& owner) noexcept : owner_(owner) {}
    result<void> send(fabric::detail::port to, message&& m) override;
    void close(fabric::detail::port which) noexcept override;
    result<void> open(fabric::detail::port which) override;

   private:
    worker_session& owner_;
  };

  void forget() noexcept;
  bool answer(std::string_view client) noexcept;
  void drop_connection() noexcept;

  session_settings s_;
  fabric::detail::machine_sink& sink_;
  request_fn on_request_;
  link_sink link_;
  fabric::detail::liveness liveness_;
  std::vector<std::string> clients_;  // sized to the credit; the first in_hand_ are in hand
  std::size_t in_hand_ = 0;
  std::uint64_t connection_ = 0;
  bool left_ = false;
  session_stats stats_;
};

}  // namespace fabric::mdp
