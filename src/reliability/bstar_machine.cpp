// The Binary Star node and witness machines: docs/ha.md sections 5 to 7, one transition table and
// one lease rule, with time passed in.
#include "reliability/bstar_machine.hpp"

#include <fabric/error.hpp>

#include <algorithm>
#include <utility>
#include <variant>

namespace fabric::detail {
namespace {

using std::chrono::milliseconds;
using std::chrono::nanoseconds;

constexpr milliseconds max_interval{bstar::max_interval_ms};

std::uint32_t to_ms(milliseconds d) noexcept { return static_cast<std::uint32_t>(d.count()); }

bstar::status start_state(bstar::role r) noexcept {
  return r == bstar::role::primary ? bstar::status::primary : bstar::status::backup;
}

bstar::status other_start_state(bstar::role r) noexcept {
  return r == bstar::role::primary ? bstar::status::backup : bstar::status::primary;
}

bstar_settings checked(bstar_settings s) {
  if (s.heartbeat < milliseconds(1) || s.heartbeat > max_interval) {
    throw fabric::error(errc::invalid_argument, "binary star: heartbeat must be 1 ms .. 1 h");
  }
  if (s.expiry == milliseconds(0)) s.expiry = 2 * s.heartbeat;
  if (s.expiry < 2 * s.heartbeat || s.expiry > max_interval) {
    throw fabric::error(errc::invalid_argument, "binary star: expiry must be 2 heartbeats .. 1 h");
  }
  return s;
}

}  // namespace

bstar_node::bstar_node(const bstar_settings& settings, bstar_sink& out, time_point now, std::uint64_t term)
    : settings_(checked(settings)),
      out_(out),
      state_(start_state(settings_.role)),
      term_(term),
      next_state_(now),
      last_echo_(now - settings_.heartbeat),
      peer_heard_(now),
      peer_state_(other_start_state(settings_.role)) {}

nanoseconds bstar_node::expiry() const noexcept { return std::max(settings_.expiry, peer_expiry_); }

milliseconds bstar_node::lease() const noexcept { return settings_.expiry * 3 / 4; }

bool bstar_node::peer_expired(time_point now) const noexcept { return now - peer_heard_ >= expiry(); }

std::uint64_t bstar_node::next_seq(time_point now) {
  ++seq_;
  sent_[seq_ % sent_ring] = {seq_, now};
  return seq_;
}

bool bstar_node::sent_at(std::uint64_t seq, time_point& when) const noexcept {
  const auto& entry = sent_[seq % sent_ring];
  if (seq == 0 || entry.first != seq) return false;
  when = entry.second;
  return true;
}

void bstar_node::send_state(time_point now) {
  const bstar::state_fields s{.from = settings_.role,
                              .state = state_,
                              .term = term_,
                              .seq = next_seq(now),
                              .echo = peer_seq_,
                              .expiry_ms = to_ms(settings_.expiry)};
  if (out_.send(port::main, bstar::build(s))) {
    ++stats_.states_sent;
  } else {
    ++stats_.send_failures;
  }
  next_state_ = now + settings_.heartbeat;
}

void bstar_node::send_lease(std::uint64_t term, time_point now) {
  const bstar::lease_fields l{
      .from = settings_.role, .term = term, .seq = next_seq(now), .duration_ms = to_ms(lease())};
  if (out_.send(port::backend, bstar::build(l))) {
    ++stats_.leases_sent;
  } else {
    ++stats_.send_failures;
  }
}

void bstar_node::on_tick(time_point now) {
  if (now < next_state_) return;
  send_state(now);
  if (settings_.witness && state_ == bstar::status::active) send_lease(term_, now);
}

void bstar_node::become(bstar::status next, time_point now) {
  if (next == state_) return;
  const bstar::status from = state_;
  state_ = next;
  pending_term_ = 0;
  peer_passive_since_ = time_point::max();
  if (next == bstar::status::active) {
    ++stats_.takeovers;
    active_since_ = now;
    peer_lease_until_ = time_point::min();
  } else if (from == bstar::status::active) {
    ++stats_.step_downs;
    peer_lease_until_ = time_point::min();
    witness_lease_until_ = time_point::min();
  }
  send_state(now);
  out_.on_state(from, next, term_);
}

void bstar_node::take_over(time_point now) {
  ++term_;
  become(bstar::status::active, now);
  if (settings_.witness) send_lease(term_, now);
}

bool bstar_node::writable(time_point now) const noexcept {
  if (state_ != bstar::status::active) return false;
  if (!settings_.witness) return true;
  return now < peer_lease_until_ || (witness_lease_term_ == term_ && now < witness_lease_until_);
}

bool bstar_node::admit(time_point now) {
  bool alone = false;
  switch (state_) {
    case bstar::status::active:
      if (writable(now)) {
        ++stats_.admitted;
        return true;
      }
      ++stats_.refused;
      return false;
    case bstar::status::primary: alone = peer_expired(now); break;
    case bstar::status::passive: alone = peer_ever_heard_ && peer_expired(now); break;
    case bstar::status::backup: break;
  }
  if (!alone) {
    ++stats_.refused;
    return false;
  }
  if (!ready_) {
    ++stats_.not_ready;
    ++stats_.refused;
    return false;
  }
  if (!settings_.witness) {
    take_over(now);
    ++stats_.admitted;
    return true;
  }
  // With a witness, a takeover waits for its grant. One request per heartbeat at most: a burst
  // of client requests asks once.
  if (pending_term_ == 0 || now - pending_since_ >= settings_.heartbeat) {
    pending_term_ = term_ + 1;
    pending_since_ = now;
    send_lease(pending_term_, now);
  }
  ++stats_.refused;
  return false;
}

void bstar_node::on_message(port from, message&& m, time_point now) {
  const bstar::parsed p = bstar::parse(m);
  if (from == port::main) {
    if (const auto* s = std::get_if<bstar::state_fields>(&p)) {
      on_state_message(*s, now);
      return;
    }
  } else if (const auto* g = std::get_if<bstar::grant_fields>(&p)) {
    on_grant(*g, now);
    return;
  } else if (const auto* d = std::get_if<bstar::deny_fields>(&p)) {
    on_deny(*d, now);
    return;
  }
  ++stats_.malformed;
}

void bstar_node::on_state_message(const bstar::state_fields& s, time_point now) {
  ++stats_.states_heard;
  peer_heard_ = now;
  peer_ever_heard_ = true;
  peer_state_ = s.state;
  peer_seq_ = s.seq;
  peer_expiry_ = milliseconds(s.expiry_ms);
  if (s.from == settings_.role) {
    // Two nodes of one role: neither may decide anything (section 5).
    ++stats_.misconfigured;
    return;
  }
  const std::uint64_t own_term = term_;
  term_ = std::max(term_, s.term);

  using bstar::status;
  switch (state_) {
    case status::primary:
    case status::backup:
      if (s.state == status::active) {
        become(status::passive, now);
      } else if (s.state == status::backup && state_ == status::primary) {
        take_over(now);
      } else if (s.state == status::passive) {
        // A passive peer takes over on hearing a starting node, unless it is not ready (it was
        // still catching up from this node): then this node, whose journal it lacks, does.
        if (peer_passive_since_ == time_point::max()) peer_passive_since_ = now;
        if (now - peer_passive_since_ >= expiry()) take_over(now);
      } else {
        peer_passive_since_ = time_point::max();
      }
      break;
    case status::active:
      if (s.state == status::passive) {
        // The passive peer's echo is its promise not to take over within an expiry of hearing
        // that seq: a lease counted from when this node sent it.
        time_point sent;
        if (sent_at(s.echo, sent)) peer_lease_until_ = std::max(peer_lease_until_, sent + lease());
      } else if (s.state == status::active) {
        ++stats_.split_brain;
        const bool stays =
            own_term > s.term || (own_term == s.term && settings_.role == bstar::role::primary);
        if (!stays) become(status::passive, now);
      }
      break;
    case status::passive:
      if (s.state == status::primary || s.state == status::backup) {
        if (ready_) {
          take_over(now);
        } else {
          ++stats_.not_ready;
        }
      } else if (s.state == status::active) {
        // Echo the active node's seq at once, so that its peer lease is renewed a round trip
        // after each of its heartbeats; at most four times a heartbeat, whatever arrives.
        if (settings_.witness && now - last_echo_ >= settings_.heartbeat / 4) {
          last_echo_ = now;
          send_state(now);
        }
      } else if (s.state == status::passive) {
        ++stats_.both_passive;
        if (settings_.role == bstar::role::primary && ready_) take_over(now);
      }
      break;
  }
}

void bstar_node::on_grant(const bstar::grant_fields& g, time_point now) {
  time_point sent;
  if (!sent_at(g.seq, sent)) return;  // an answer to a lease too old to count
  ++stats_.grants;
  const time_point until = sent + milliseconds(g.duration_ms);
  if (state_ == bstar::status::active && g.term == term_) {
    witness_lease_term_ = g.term;
    witness_lease_until_ = std::max(witness_lease_until_, until);
    return;
  }
  if (pending_term_ != 0 && g.term == pending_term_ && g.term > term_ && ready_ &&
      (state_ == bstar::status::primary || state_ == bstar::status::passive) && peer_expired(now)) {
    term_ = g.term - 1;
    take_over(now);  // term_ is now g.term
    witness_lease_term_ = g.term;
    witness_lease_until_ = until;
  }
}

void bstar_node::on_deny(const bstar::deny_fields& d, time_point now) {
  ++stats_.denials;
  pending_term_ = 0;
  if (d.holder_term <= term_) return;
  term_ = d.holder_term;
  // Another node holds the witness's lease in a later term: this node is out of date.
  if (state_ == bstar::status::active) become(bstar::status::passive, now);
}

// --- the witness ---

bstar_witness::bstar_witness(const bstar_witness_settings& settings, machine_sink& out, time_point now)
    : settings_(settings), out_(out) {
  if (settings_.max_lease < milliseconds(1) || settings_.max_lease > max_interval) {
    throw fabric::error(errc::invalid_argument, "binary star witness: max lease must be 1 ms .. 1 h");
  }
  quiet_until_ = now + settings_.max_lease + margin();
}

nanoseconds bstar_witness::margin() const noexcept { return settings_.max_lease / 4; }

void bstar_witness::on_message(message&& m, time_point now) {
  if (m.size() < 2) {
    ++stats_.malformed;
    return;
  }
  const bstar::parsed p = bstar::parse(m, 1);
  const auto* l = std::get_if<bstar::lease_fields>(&p);
  if (l == nullptr) {
    ++stats_.malformed;
    return;
  }
  const auto asker = static_cast<std::uint8_t>(l->from);
  const milliseconds duration = std::min(milliseconds(l->duration_ms), settings_.max_lease);
  bool grant = false;
  if (now >= quiet_until_) {
    if (holder_ == asker) {
      grant = l->term >= holder_term_;
    } else {
      const bool free = holder_ == 0 || now >= holder_until_ + margin();
      grant = free && l->term > highest_granted_;
      if (grant) ++stats_.holder_changes;
    }
  }
  message reply;
  reply.push_back(std::move(m[0]));
  message body;
  if (grant) {
    holder_ = asker;
    holder_term_ = l->term;
    holder_until_ = now + duration;
    highest_granted_ = std::max(highest_granted_, l->term);
    body = bstar::build(bstar::grant_fields{.term = l->term, .seq = l->seq, .duration_ms = to_ms(duration)});
    ++stats_.grants;
  } else {
    body = bstar::build(bstar::deny_fields{.seq = l->seq, .holder = holder_, .holder_term = holder_term_});
    ++stats_.denials;
  }
  for (frame& f : body) reply.push_back(std::move(f));
  if (!out_.send(port::main, std::move(reply))) ++stats_.send_failures;
}

}  // namespace fabric::detail
