// The FRC/1 sender machine: handshake, credit, retransmission and withdrawal per channel, one
// liveness machine for the connection they share.
#include "reliability/frc_sender.hpp"

#include "core/byte_order.hpp"
#include "reliability/frc_rules.hpp"

#include <fabric/error.hpp>

#include <algorithm>
#include <limits>

namespace fabric::frc {
namespace {

using detail::time_point;
using std::chrono::milliseconds;

constexpr std::string_view reason_expired = "expired before it was sent";
constexpr std::string_view reason_too_large = "larger than the receiver's max-message";
constexpr std::string_view reason_withdrawn = "withdrawn from the outbox";
constexpr std::string_view reason_trimmed = "acknowledged before the receiver's journal was restored";

message heartbeat_message() {
  message m;
  write_heartbeat(m);
  return m;
}

// What a refusal code asks of the sender: true to HELLO again after a back-off.
bool retryable(std::string_view code) noexcept {
  return code == "duplicate-sender" || code == "too-many-links";
}

std::uint32_t ttl_left_ms(std::int64_t expires_ns, std::int64_t wall_ns) noexcept {
  if (expires_ns == 0) return 0;
  const std::int64_t left = expires_ns - wall_ns;  // <= 0 only when sent again after expiry: 1 ms
  const std::int64_t ms = (left + 999'999) / 1'000'000;
  return static_cast<std::uint32_t>(std::clamp<std::int64_t>(ms, 1, std::numeric_limits<std::uint32_t>::max()));
}

}  // namespace

std::string encode_outbox(std::int64_t expires_ns, std::string_view body) {
  std::string out;
  encode_outbox(out, expires_ns, body);
  return out;
}

void encode_outbox(std::string& out, std::int64_t expires_ns, std::string_view body) {
  out.resize(outbox_overhead);
  detail::store_be(static_cast<std::uint64_t>(expires_ns), out.data());
  out.append(body);
}

bool decode_outbox(std::string_view payload, std::int64_t& expires_ns, std::string_view& body) noexcept {
  if (payload.size() < outbox_overhead) return false;
  expires_ns = static_cast<std::int64_t>(detail::load_be<std::uint64_t>(payload.data()));
  body = payload.substr(outbox_overhead);
  return true;
}

std::string_view to_string(link_state s) noexcept {
  switch (s) {
    case link_state::closed: return "closed";
    case link_state::greeting: return "greeting";
    case link_state::open: return "open";
    case link_state::waiting: return "waiting";
    case link_state::failed: return "failed";
  }
  return "unknown";
}

// ---- the liveness machine's sink

result<void> sender_machine::link_sink::send(detail::port to, message&& m) {
  auto r = owner_.sink_.send(to, std::move(m));
  if (r) ++owner_.stats_.heartbeats_sent;
  return r;
}

void sender_machine::link_sink::close(detail::port which) noexcept {
  owner_.sink_.close(which);
  ++owner_.stats_.connections_lost;
  owner_.reset_all(owner_.now_);
}

result<void> sender_machine::link_sink::open(detail::port which) {
  auto r = owner_.sink_.open(which);
  if (!r) return r;
  ++owner_.stats_.connections;
  for (auto& c : owner_.channels_) {
    if (c.state == link_state::closed) owner_.greet(c, owner_.now_);
  }
  return r;
}

// ---- set-up

sender_machine::sender_machine(const sender_settings& s, detail::machine_sink& sink, sender_store& store)
    : s_(s),
      sink_(sink),
      store_(store),
      link_sink_(*this),
      liveness_(
          detail::liveness::settings{.heartbeat = s.heartbeat,
                                     .liveness = s.liveness,
                                     .reconnect_initial = s.reconnect_initial,
                                     .reconnect_max = s.reconnect_max,
                                     .heartbeats = detail::liveness::cadence::when_quiet},
          link_sink_, heartbeat_message, "reliable sender") {
  if (s.name.empty() || s.name.size() > max_name_size)
    throw error(errc::invalid_argument, "reliable sender: the name must be 1 to 255 bytes");
  if (s.incarnation == 0) throw error(errc::invalid_argument, "reliable sender: the incarnation must not be 0");
  if (s.heartbeat.count() > static_cast<long>(max_heartbeat_ms))
    throw error(errc::invalid_argument, "reliable sender: the heartbeat interval is at most an hour");
  if (s.max_in_flight == 0) throw error(errc::invalid_argument, "reliable sender: max_in_flight must be positive");
}

std::size_t sender_machine::add_channel(const channel_start& start, time_point now) {
  if (start.stream.empty() || start.stream.size() > max_name_size)
    throw error(errc::invalid_argument, "reliable sender: a stream name must be 1 to 255 bytes");
  if (start.acked > start.last)
    throw error(errc::invalid_argument, "reliable sender: the acknowledged cursor is past the outbox");
  if (channels_.size() >= std::numeric_limits<std::uint32_t>::max() - 1)
    throw error(errc::too_large, "reliable sender: too many channels");
  now_ = now;
  channel c;
  c.stream = start.stream;
  c.link = static_cast<std::uint32_t>(channels_.size() + 1);
  c.acked = start.acked;
  c.last = start.last;
  c.sent = start.acked;
  c.credit_to = start.acked;
  c.receiver_seen = start.receiver_seen;
  c.backoff = s_.reconnect_initial;
  c.counts.stream = start.stream;
  c.counts.receiver_incarnation = start.receiver_seen;
  channels_.push_back(std::move(c));
  if (liveness_.is_open()) greet(channels_.back(), now);
  return channels_.size() - 1;
}

// ---- sending

bool sender_machine::transmit(message& m, time_point now) {
  if (!sink_.send(detail::port::main, std::move(m))) {
    ++stats_.send_failures;
    return false;
  }
  liveness_.sent(now);
  return true;
}

void sender_machine::greet(channel& c, time_point now) {
  write_hello(out_, c.link,
              hello_fields{.stream = c.stream,
                           .sender = s_.name,
                           .receiver_inc_seen = c.receiver_seen,
                           .sender_inc = s_.incarnation,
                           .acked = c.acked,
                           .last = c.last,
                           .heartbeat_ms = static_cast<std::uint32_t>(s_.heartbeat.count())});
  c.state = link_state::greeting;
  c.withdrawing = 0;
  c.retry_at = time_point::max();
  c.retransmit_at = time_point::max();
  c.resend_at = time_point::max();
  // Sent or not (a full socket), the greeting is judged by its deadline: no WELCOME, greet again.
  (void)transmit(out_, now);
  c.hello_deadline = now + s_.heartbeat * static_cast<long>(s_.liveness);
}

void sender_machine::reset_all(time_point now) noexcept {
  (void)now;
  for (auto& c : channels_) {
    if (c.state == link_state::failed) continue;
    c.state = link_state::closed;
    c.withdrawing = 0;
    c.hello_deadline = time_point::max();
    c.retry_at = time_point::max();
    c.retransmit_at = time_point::max();
    c.resend_at = time_point::max();
  }
}

bool sender_machine::send_skip(channel& c, std::uint64_t first, std::uint64_t last, std::string_view reason,
                               time_point now) {
  write_skip(out_, c.link, skip_fields{.first_seq = first, .last_seq = last, .reason = reason.substr(0, max_reason_size)});
  if (!transmit(out_, now)) return false;
  c.sent = last;
  c.counts.skipped += last - first + 1;
  return true;
}

void sender_machine::withdraw(channel& c, std::uint64_t first, std::uint64_t last, std::string reason) {
  c.withdraw_from = first;
  c.withdrawing = last;
  c.withdraw_reason = std::move(reason);
  c.counts.withdrawn += last - first + 1;
  store_.withdraw(static_cast<std::size_t>(&c - channels_.data()), first, last, c.withdraw_reason);
}

void sender_machine::pump(channel& c, time_point now) {
  if (c.state != link_state::open || c.withdrawing != 0) return;
  const std::size_t ch = static_cast<std::size_t>(&c - channels_.data());
  const auto stalled = [&] { c.resend_at = now + s_.reconnect_initial; };
  while (c.sent < c.last) {
    const std::uint64_t window_to = s_.max_in_flight > std::numeric_limits<std::uint64_t>::max() - c.acked
                                        ? std::numeric_limits<std::uint64_t>::max()
                                        : c.acked + s_.max_in_flight;
    const std::uint64_t upto = std::min({c.last, c.credit_to, window_to});
    if (upto <= c.sent) break;
    const std::uint64_t from = c.sent + 1;
    const std::uint64_t to = std::min<std::uint64_t>(upto, from + max_entries - 1);
    records_.clear();
    auto covered = store_.read(ch, from, to, s_.max_data_bytes, records_);
    if (!covered) {
      ++c.counts.store_errors;
      stalled();  // try the journal again shortly
      return;
    }
    const std::int64_t wall = store_.wall_ns();
    const auto expired = [wall, &c](const outbox_record& r) {
      return r.expires_ns != 0 && r.expires_ns <= wall && r.seq > c.high;
    };
    const auto too_large = [&c](const outbox_record& r) { return c.max_message != 0 && r.body.size() > c.max_message; };
    std::uint64_t next = from;
    std::size_t i = 0;
    while (i < records_.size()) {
      outbox_record& r = records_[i];
      if (r.seq > next) {  // a hole: withdrawn earlier
        if (!send_skip(c, next, r.seq - 1, reason_withdrawn, now)) return stalled();
        next = r.seq;
      }
      if (expired(r) || too_large(r)) {
        // Withdraw the run of records with the same fault, then SKIP it once that is durable.
        const bool by_time = expired(r);
        std::uint64_t end = r.seq;
        for (std::size_t j = i + 1; j < records_.size() && records_[j].seq == end + 1; ++j) {
          const bool same = by_time ? expired(records_[j]) : !expired(records_[j]) && too_large(records_[j]);
          if (!same) break;
          end = records_[j].seq;
        }
        withdraw(c, r.seq, end, std::string(by_time ? reason_expired : reason_too_large));
        return;
      }
      // One DATA of the consecutive deliverable records from here.
      data_writer w(out_, c.link, r.seq);
      std::size_t bytes = 0;
      std::size_t j = i;
      for (; j < records_.size(); ++j) {
        outbox_record& q = records_[j];
        if (q.seq != r.seq + (j - i) || w.full() || expired(q) || too_large(q)) break;
        if (j > i && bytes + q.body.size() > s_.max_data_bytes) break;
        bytes += q.body.size();
        w.add(ttl_left_ms(q.expires_ns, wall), std::move(q.body));
      }
      w.finish();
      const std::uint64_t first = r.seq;
      const std::uint64_t last_in = first + (j - i) - 1;
      if (!transmit(out_, now)) return stalled();
      c.counts.messages_sent += last_in - first + 1;
      if (first <= c.high) c.counts.retransmitted += std::min(last_in, c.high) - first + 1;
      c.sent = last_in;
      c.high = std::max(c.high, last_in);
      next = last_in + 1;
      i = j;
    }
    if (next <= *covered && !send_skip(c, next, *covered, reason_withdrawn, now)) return stalled();
  }
  c.resend_at = time_point::max();
  if (c.sent > c.acked && c.retransmit_at == time_point::max()) c.retransmit_at = now + s_.retransmit_interval;
}

// ---- what happened

void sender_machine::on_appended(std::size_t ch, std::uint64_t last, time_point now) {
  now_ = now;
  channel& c = channels_.at(ch);
  if (last <= c.last) return;
  c.last = last;
  pump(c, now);
}

void sender_machine::on_withdrawn(std::size_t ch, std::uint64_t last, time_point now) {
  now_ = now;
  channel& c = channels_.at(ch);
  if (c.withdrawing != last) return;  // a withdrawal from before a reconnection: SKIPped as a hole
  c.withdrawing = 0;
  if (c.state != link_state::open) return;
  if (c.sent + 1 == c.withdraw_from && !send_skip(c, c.withdraw_from, last, c.withdraw_reason, now)) {
    c.resend_at = now + s_.reconnect_initial;
    return;
  }
  pump(c, now);
}

sender_machine::channel* sender_machine::find(std::uint32_t link) noexcept {
  if (link == 0 || link > channels_.size()) return nullptr;
  return &channels_[link - 1];
}

void sender_machine::on_message(message&& m, time_point now) {
  now_ = now;
  ++stats_.received;
  const parsed p = parse_at_sender(m);
  if (!p) {
    ++stats_.malformed;
    liveness_.on_message(now, false);
    return;
  }
  if (p.what == command::goodbye && p.link == 0) {  // the receiver closes the connection
    sink_.close(detail::port::main);
    ++stats_.connections_lost;
    reset_all(now);
    liveness_.disconnected(now);
    return;
  }
  liveness_.on_message(now);
  if (p.what == command::heartbeat) return;
  if (p.what == command::refuse && p.link == 0) {  // REFUSE `version`: it speaks none of ours
    for (auto& c : channels_) {
      c.state = link_state::failed;
      ++c.counts.refusals;
      c.counts.refusal = std::string(p.refuse.code) + ": " + std::string(p.refuse.reason);
    }
    return;
  }
  channel* c = find(p.link);
  if (c == nullptr || c->state == link_state::failed || c->state == link_state::closed) {
    protocol_error();
    return;
  }
  switch (p.what) {
    case command::welcome:
      if (c->state != link_state::greeting) return protocol_error();
      on_welcome(*c, p.welcome, now);
      break;
    case command::ack:
      if (c->state != link_state::open) return protocol_error();
      on_ack(*c, p.ack, now);
      break;
    case command::nack:
      if (c->state != link_state::open) return protocol_error();
      on_nack(*c, p.expected_seq, now);
      break;
    case command::refuse:
      on_refuse(*c, p.refuse, now);
      break;
    case command::goodbye:  // the receiver forgot the link (it restarted): greet again
      if (c->state == link_state::open) greet(*c, now);
      break;
    default:
      protocol_error();
  }
}

void sender_machine::on_welcome(channel& c, const welcome_fields& w, time_point now) {
  const std::size_t ch = static_cast<std::size_t>(&c - channels_.data());
  const welcome_decision d =
      decide_welcome(w.receiver_inc, w.taken, c.receiver_seen, c.acked, c.last, store_.oldest_held(ch));
  if (!d.valid) {  // it claims more than was ever sent: drop the link, greet again later
    protocol_error();
    c.state = link_state::waiting;
    c.hello_deadline = time_point::max();
    c.retry_at = now + c.backoff;
    c.backoff = std::min<milliseconds>(s_.reconnect_max, c.backoff * 2);
    return;
  }
  ++c.counts.welcomes;
  c.backoff = s_.reconnect_initial;
  if (d.receiver_changed) ++c.counts.receiver_resets;
  if (d.receiver_regressed) ++c.counts.receiver_regressions;
  if (w.receiver_inc != c.receiver_seen) {
    c.receiver_seen = w.receiver_inc;
    c.counts.receiver_incarnation = w.receiver_inc;
    store_.receiver_seen(ch, w.receiver_inc);
  }
  if (d.acked > c.acked) {
    c.acked = d.acked;
    store_.acknowledge(ch, c.acked, {});
  }
  liveness_.peer_interval(milliseconds(w.heartbeat_ms));
  c.state = link_state::open;
  c.hello_deadline = time_point::max();
  c.max_message = w.max_message;
  c.credit_to = w.taken + w.credit;
  c.sent = w.taken;
  c.retransmit_at = time_point::max();
  if (d.skip_from <= d.skip_to && !send_skip(c, d.skip_from, d.skip_to, reason_trimmed, now)) {
    c.resend_at = now + s_.reconnect_initial;
    return;
  }
  pump(c, now);
}

void sender_machine::on_ack(channel& c, const ack_view& a, time_point now) {
  if (a.taken > c.last) return protocol_error();
  // Credit counts from the receiver's taken, even from an ACK that moves nothing (after its
  // journal was restored it acknowledges sequences the sender holds as acknowledged already).
  c.credit_to = std::max(c.credit_to, a.taken + a.credit);
  expired_.clear();
  for (const std::uint64_t s : a.expired) {
    if (s > c.expiries_upto) expired_.push_back(s);
  }
  if (!expired_.empty()) {
    c.expiries_upto = expired_.back();
    c.counts.expired_at_receiver += expired_.size();
  }
  const std::size_t ch = static_cast<std::size_t>(&c - channels_.data());
  if (a.taken > c.acked) {
    c.acked = a.taken;
    c.sent = std::max(c.sent, c.acked);
    c.retransmit_at = c.sent > c.acked ? now + s_.retransmit_interval : time_point::max();
    store_.acknowledge(ch, c.acked, expired_);
  } else if (!expired_.empty()) {
    store_.acknowledge(ch, c.acked, expired_);
  } else {
    ++stats_.ignored;
  }
  pump(c, now);
}

void sender_machine::on_nack(channel& c, std::uint64_t expected, time_point now) {
  if (expected <= c.acked || expected > c.last + 1) {
    ++stats_.ignored;
    return;
  }
  if (expected <= c.sent) c.sent = expected - 1;
  pump(c, now);
}

void sender_machine::on_refuse(channel& c, const refuse_fields& r, time_point now) {
  ++c.counts.refusals;
  c.counts.refusal = std::string(r.code) + ": " + std::string(r.reason);
  c.hello_deadline = time_point::max();
  c.retransmit_at = time_point::max();
  c.resend_at = time_point::max();
  if (retryable(r.code)) {
    c.state = link_state::waiting;
    c.retry_at = now + c.backoff;
    c.backoff = std::min<milliseconds>(s_.reconnect_max, c.backoff * 2);
  } else {
    c.state = link_state::failed;
  }
}

// ---- time

void sender_machine::on_tick(time_point now) {
  now_ = now;
  liveness_.on_tick(now);
  if (!liveness_.is_open()) return;
  for (auto& c : channels_) {
    switch (c.state) {
      case link_state::closed:  // opened while closed channels were added: greet them
        greet(c, now);
        break;
      case link_state::greeting:
        if (now >= c.hello_deadline) greet(c, now);
        break;
      case link_state::waiting:
        if (now >= c.retry_at) greet(c, now);
        break;
      case link_state::open:
        if (now >= c.retransmit_at) {
          c.retransmit_at = time_point::max();
          if (c.sent > c.acked) c.sent = c.acked;  // no progress: go back to the first unacknowledged
          pump(c, now);
        } else if (now >= c.resend_at) {
          c.resend_at = time_point::max();
          pump(c, now);
        }
        break;
      case link_state::failed:
        break;
    }
  }
}

time_point sender_machine::channel_tick(const channel& c) const noexcept {
  switch (c.state) {
    case link_state::greeting: return c.hello_deadline;
    case link_state::waiting: return c.retry_at;
    case link_state::open: return std::min(c.retransmit_at, c.resend_at);
    default: return time_point::max();
  }
}

time_point sender_machine::next_tick() const noexcept {
  time_point t = liveness_.next_tick();
  if (!liveness_.is_open()) return t;
  for (const auto& c : channels_) {
    if (c.state == link_state::closed) return now_;
    t = std::min(t, channel_tick(c));
  }
  return t;
}

sender_channel_stats sender_machine::channel_stats(std::size_t ch) const {
  const channel& c = channels_.at(ch);
  sender_channel_stats s = c.counts;
  s.state = c.state;
  s.last = c.last;
  s.acked = c.acked;
  s.sent = c.sent;
  s.in_flight = c.sent > c.acked ? c.sent - c.acked : 0;
  s.backlog = c.last - c.acked;
  s.credit_to = c.credit_to;
  return s;
}

}  // namespace fabric::frc
