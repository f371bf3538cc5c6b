// The Majordomo worker session (mdp_session.hpp): the codec's frames in, the liveness machine's
// timing, READY on every fresh connection and the bookkeeping of the requests in hand.
#include "reliability/mdp_session.hpp"

#include "reliability/mdp.hpp"

#include <fabric/error.hpp>

#include <string>
#include <utility>

namespace fabric::mdp {
namespace {

using fabric::detail::port;
using fabric::detail::time_point;
using std::chrono::milliseconds;

// The largest credit a session may announce; fabric's broker lowers it further to its own cap.
constexpr std::uint32_t max_credit = 1024;
constexpr std::size_t max_liveness = 1000;
// No interval may exceed this: silence is judged as heartbeat * liveness, which must not overflow.
constexpr milliseconds longest_interval = std::chrono::hours(1);

void check_range(milliseconds ms, milliseconds lo, milliseconds hi, const char* what) {
  if (ms < lo || ms > hi)
    throw error(errc::invalid_argument, std::string("mdp::worker_session: ") + what +
                                            " must be between " + std::to_string(lo.count()) +
                                            " and " + std::to_string(hi.count()) + " ms");
}

const session_settings& checked(const session_settings& s) {
  if (s.service.empty() || s.service.size() > max_name_size)
    throw error(errc::invalid_argument, "mdp::worker_session: the service name must be 1 to 255 bytes");
  if (is_mmi(s.service))
    throw error(errc::invalid_argument,
                "mdp::worker_session: service names starting with \"mmi.\" belong to the broker (8/MMI)");
  if (s.credit < 1 || s.credit > max_credit)
    throw error(errc::invalid_argument, "mdp::worker_session: credit must be between 1 and 1024");
  check_range(s.heartbeat, milliseconds(1), longest_interval, "heartbeat");
  if (s.liveness < 1 || s.liveness > max_liveness)
    throw error(errc::invalid_argument, "mdp::worker_session: liveness must be between 1 and 1000");
  check_range(s.reconnect_initial, milliseconds(0), longest_interval, "reconnect_initial");
  check_range(s.reconnect_max, s.reconnect_initial, longest_interval, "reconnect_max");
  return s;
}

worker_session::request_fn checked_callback(worker_session::request_fn fn) {
  if (!fn) throw error(errc::invalid_argument, "mdp::worker_session: a request callback is required");
  return fn;
}

// The same timing as the thread-based worker (mdp_worker.hpp): 7/MDP counts any command as a
// heartbeat, so one goes out only on a connection quiet for an interval.
fabric::detail::liveness::settings liveness_of(const session_settings& s) noexcept {
  return {.heartbeat = s.heartbeat,
          .liveness = s.liveness,
          .reconnect_initial = s.reconnect_initial,
          .reconnect_max = s.reconnect_max,
          .heartbeats = fabric::detail::liveness::cadence::when_quiet,
          .on = s.on};
}

}  // namespace

// ---- what the liveness machine asks for

// The machine sends nothing but heartbeats.
result<void> worker_session::link_sink::send(port to, message&& m) {
  auto r = owner_.sink_.send(to, std::move(m));
  if (r) ++owner_.stats_.heartbeats_sent;
  return r;
}

// The broker has been silent for `liveness` intervals.
void worker_session::link_sink::close(port which) noexcept {
  ++owner_.stats_.broker_expiries;
  owner_.forget();
  owner_.sink_.close(which);
}

// A fresh connection is due: it counts only once READY has gone out, so that the broker never
// hears a heartbeat from a worker it has not been introduced to.
result<void> worker_session::link_sink::open(port which) {
  worker_session& o = owner_;
  if (auto r = o.sink_.open(which); !r) {
    ++o.stats_.open_failures;
    return r;
  }
  o.forget();
  if (auto r = o.sink_.send(which, worker_ready(o.s_.service, o.s_.credit)); !r) {
    ++o.stats_.open_failures;
    o.sink_.close(which);
    return r;
  }
  ++o.connection_;
  ++o.stats_.connections;
  return {};
}

// ---- set-up

worker_session::worker_session(const session_settings& s, fabric::detail::machine_sink& sink,
                               request_fn on_request)
    : s_(checked(s)),
      sink_(sink),
      on_request_(checked_callback(std::move(on_request))),
      link_(*this),
      liveness_(liveness_of(s_), link_, worker_heartbeat, "mdp::worker_session"),
      clients_(s_.credit) {}

// ---- what arrived

void worker_session::on_message(message&& m, time_point now) {
  if (!open()) {  // read after close() or leave(): the connection it came on is gone
    ++stats_.stray;
    return;
  }
  auto cmd = parse_from_broker_for_worker(std::move(m));
  if (!cmd) {
    ++stats_.malformed;
    liveness_.on_message(now, false);
    return;
  }
  switch (cmd->kind) {
    case command::request:
      liveness_.on_message(now, true);
      ++stats_.requests;
      if (in_hand_ < clients_.size()) {
        clients_[in_hand_++].assign(cmd->client);  // reuses the slot's storage once grown
        liveness_.busy(true, now);
      } else {
        ++stats_.over_credit;
      }
      // Last: the callback may reply, abandon or leave from inside.
      on_request_(cmd->client, std::move(cmd->body), connection_, now);
      return;
    case command::heartbeat:
      liveness_.on_message(now, true);
      ++stats_.heartbeats_received;
      return;
    case command::disconnect:
      ++stats_.disconnects_received;
      drop_connection();
      liveness_.disconnected(now);
      return;
    case command::ready:
    case command::reply:
      break;  // the parser refuses these from a broker; kept so that the switch stays exhaustive
  }
  ++stats_.malformed;
  liveness_.on_message(now, false);
}

// ---- time

void worker_session::on_tick(time_point now) {
  if (left_) return;
  liveness_.on_tick(now);
}

time_point worker_session::next_tick() const noexcept {
  return left_ ? time_point::max() : liveness_.next_tick();
}

// ---- the application's calls

result<void> worker_session::reply(std::string_view client, std::uint64_t connection, message&& body,
                                   time_point now) {
  if (client.empty() || client.size() > max_name_size)
    throw error(errc::invalid_argument,
                "mdp::worker_session::reply: the client address must be 1 to 255 bytes");
  if (left_) {
    ++stats_.replies_dropped;
    return errc::closed;
  }
  if (!liveness_.is_open() || connection != connection_) {
    ++stats_.replies_dropped;
    return errc::peer_unreachable;
  }
  // 7/MDP has no REPLY without a body frame, and the client is waiting for an answer.
  if (body.empty()) body.push_back(std::string_view{});
  if (auto r = sink_.send(s_.on, worker_reply(client, std::move(body))); !r) {
    ++stats_.replies_dropped;
    return r;
  }
  ++stats_.replies;
  liveness_.sent(now);
  if (answer(client)) {
    liveness_.answered();
    liveness_.busy(in_hand_ != 0, now);
  }
  return {};
}

std::size_t worker_session::abandon(time_point now) noexcept {
  if (!open() || in_hand_ == 0) return 0;
  const std::size_t given_back = in_hand_;
  stats_.abandoned += given_back;
  try {
    (void)sink_.send(s_.on, worker_disconnect());
  } catch (...) {
    // best effort: a broker that misses it requeues the requests when the connection goes silent
  }
  drop_connection();
  liveness_.left(now);
  return given_back;
}

void worker_session::leave() noexcept {
  if (left_) return;
  left_ = true;
  if (!liveness_.is_open()) return;
  try {
    (void)sink_.send(s_.on, worker_disconnect());
  } catch (...) {
    // best effort, as above
  }
  drop_connection();
}

bool worker_session::open() const noexcept { return !left_ && liveness_.is_open(); }

// ---- requests in hand

// The connection is gone: the broker requeues what it gave us on it.
void worker_session::forget() noexcept { in_hand_ = 0; }

// Takes `client` out of the requests in hand. Returns: whether it was there.
bool worker_session::answer(std::string_view client) noexcept {
  for (std::size_t i = 0; i < in_hand_; ++i) {
    if (clients_[i] != client) continue;
    std::swap(clients_[i], clients_[in_hand_ - 1]);  // swaps storage: no allocation
    --in_hand_;
    return true;
  }
  return false;
}

void worker_session::drop_connection() noexcept {
  forget();
  sink_.close(s_.on);
}

}  // namespace fabric::mdp
