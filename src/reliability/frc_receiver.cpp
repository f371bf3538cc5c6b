// The FRC/1 receiver machine: handshakes decided on durable state, in-order acceptance within
// credit, one commit in flight, ACKs only for what is durable, heartbeats per connection.
#include "reliability/frc_receiver.hpp"

#include "core/byte_order.hpp"

#include <fabric/error.hpp>

#include <algorithm>
#include <utility>

namespace fabric::frc {
namespace {

using detail::time_point;
using std::chrono::milliseconds;

constexpr std::size_t record_size = 16;

}  // namespace

std::string channel_key(std::string_view sender, std::string_view stream) {
  std::string key;
  key.reserve(1 + sender.size() + stream.size());
  key.push_back(static_cast<char>(static_cast<unsigned char>(sender.size())));
  key.append(sender);
  key.append(stream);
  return key;
}

bool split_channel_key(std::string_view key, std::string_view& sender, std::string_view& stream) noexcept {
  if (key.empty()) return false;
  const std::size_t n = static_cast<unsigned char>(key[0]);
  if (n == 0 || key.size() < 1 + n + 1 || key.size() - 1 - n > max_name_size) return false;
  sender = key.substr(1, n);
  stream = key.substr(1 + n);
  return true;
}

std::string encode_record(const channel_record& r) {
  std::string out(record_size, '\0');
  detail::store_be(r.sender_incarnation, out.data());
  detail::store_be(r.taken, out.data() + 8);
  return out;
}

bool decode_record(std::string_view value, channel_record& r) noexcept {
  if (value.size() != record_size) return false;
  r.sender_incarnation = detail::load_be<std::uint64_t>(value.data());
  r.taken = detail::load_be<std::uint64_t>(value.data() + 8);
  return r.sender_incarnation != 0;
}

std::string encode_seqs(const std::vector<std::uint64_t>& seqs) {
  std::string out(seqs.size() * 8, '\0');
  for (std::size_t i = 0; i < seqs.size(); ++i) detail::store_be(seqs[i], out.data() + 8 * i);
  return out;
}

bool decode_seqs(std::string_view value, std::vector<std::uint64_t>& seqs) {
  seqs.clear();
  if (value.size() % 8 != 0) return false;
  seqs.reserve(value.size() / 8);
  for (std::size_t i = 0; i < value.size(); i += 8) {
    const auto s = detail::load_be<std::uint64_t>(value.data() + i);
    if (s == 0 || (!seqs.empty() && s <= seqs.back())) return false;
    seqs.push_back(s);
  }
  return true;
}

std::size_t commit_batch::messages() const noexcept {
  std::size_t n = 0;
  for (const auto& u : updates) n += u.entries.size();
  return n;
}

// ---- set-up

receiver_machine::receiver_machine(const receiver_settings& s, detail::machine_sink& sink, receiver_store& store)
    : s_(s), sink_(sink), store_(store) {
  if (s.incarnation == 0) throw error(errc::invalid_argument, "reliable receiver: the incarnation must not be 0");
  if (s.heartbeat.count() < 1 || s.heartbeat.count() > static_cast<long>(max_heartbeat_ms))
    throw error(errc::invalid_argument, "reliable receiver: the heartbeat interval must be 1 ms to an hour");
  if (s.liveness == 0) throw error(errc::invalid_argument, "reliable receiver: liveness must be at least 1");
  if (s.credit == 0) throw error(errc::invalid_argument, "reliable receiver: credit must be positive");
  if (s.max_batch == 0) throw error(errc::invalid_argument, "reliable receiver: max_batch must be positive");
  if (s.max_links == 0) throw error(errc::invalid_argument, "reliable receiver: max_links must be positive");
}

// ---- sending

void receiver_machine::send_to(std::string_view peer_id, time_point now) {
  if (!sink_.send(detail::port::main, std::move(out_))) {
    ++stats_.send_failures;
    out_.clear();
    return;
  }
  const auto it = peers_.find(std::string(peer_id));
  if (it != peers_.end()) it->second.heartbeat_at = now + s_.heartbeat;
}

void receiver_machine::refuse(std::string_view peer_id, std::uint32_t link, std::string_view code,
                              std::string_view reason, time_point now) {
  write_refuse(out_, peer_id, link, refuse_fields{.code = code, .reason = reason.substr(0, max_reason_size)});
  ++stats_.refused;
  send_to(peer_id, now);
}

void receiver_machine::welcome(channel& c, time_point now) {
  write_welcome(out_, c.peer, c.link,
                welcome_fields{.receiver_inc = s_.incarnation,
                               .taken = c.durable.taken,
                               .credit = s_.credit,
                               .heartbeat_ms = static_cast<std::uint32_t>(s_.heartbeat.count()),
                               .max_message = s_.max_message});
  ++c.counts.welcomes;
  send_to(c.peer, now);
  // Every expiry the sender may not have had yet: those above the acked cursor it announced.
  const auto from = std::upper_bound(c.expired_kept.begin(), c.expired_kept.end(), c.hello_acked);
  const auto to = std::upper_bound(from, c.expired_kept.end(), c.durable.taken);
  if (from != to) ack(c, std::span<const std::uint64_t>(&*from, static_cast<std::size_t>(to - from)));
}

void receiver_machine::ack(channel& c, std::span<const std::uint64_t> expired) {
  do {
    const std::size_t n = std::min(expired.size(), max_entries);
    write_ack(out_, c.peer, c.link, c.durable.taken, s_.credit, expired.first(n));
    ++stats_.acks_sent;
    send_to(c.peer, now_);
    expired = expired.subspan(n);
  } while (!expired.empty());
}

void receiver_machine::nack(channel& c, time_point now) {
  if (now < c.nack_at) return;
  c.nack_at = now + s_.nack_interval;
  write_nack(out_, c.peer, c.link, c.accepted + 1);
  ++stats_.nacks_sent;
  send_to(c.peer, now);
}

// ---- links and connections

std::size_t receiver_machine::links() const noexcept { return link_count_; }

receiver_machine::channel* receiver_machine::linked_channel(std::string_view peer_id, std::uint32_t link) noexcept {
  const auto p = peers_.find(std::string(peer_id));
  if (p == peers_.end()) return nullptr;
  const auto l = p->second.links.find(link);
  if (l == p->second.links.end()) return nullptr;
  const auto c = channels_.find(l->second);
  return c == channels_.end() ? nullptr : &c->second;
}

void receiver_machine::unlink(channel& c) {
  if (c.peer.empty()) return;
  const auto p = peers_.find(c.peer);
  if (p != peers_.end()) p->second.links.erase(c.link);
  --link_count_;
  stats_.links = link_count_;
  c.peer.clear();
  c.link = 0;
}

void receiver_machine::retire_if_idle(const std::string& key) {
  // Up to max_links channels stay known when idle, with their counters; beyond that, idle ones
  // are forgotten (their durable state is in the journal), so memory stays bounded.
  if (channels_.size() <= s_.max_links) return;
  const auto it = channels_.find(key);
  if (it == channels_.end()) return;
  const channel& c = it->second;
  if (!c.peer.empty() || !c.pending.empty() || c.welcome_waiting || c.record_to_write || c.expired_dirty) return;
  if (in_flight_) {
    for (const auto& part : in_flight_->parts) {
      if (part.key == key) return;
    }
  }
  channels_.erase(it);
}

void receiver_machine::forget_peer(const std::string& peer_id) {
  const auto p = peers_.find(peer_id);
  if (p == peers_.end()) return;
  std::vector<std::string> keys;
  for (const auto& [link, key] : p->second.links) keys.push_back(key);
  for (const auto& key : keys) {
    const auto c = channels_.find(key);
    if (c != channels_.end()) unlink(c->second);
  }
  peers_.erase(peer_id);
  stats_.peers = peers_.size();
  ++stats_.peers_lost;
  for (const auto& key : keys) retire_if_idle(key);
}

void receiver_machine::protocol_error(std::string_view peer_id, time_point now) {
  ++stats_.protocol_errors;
  const auto p = peers_.find(std::string(peer_id));
  if (p == peers_.end()) return;
  peer& who = p->second;
  if (now - who.errors_since > s_.heartbeat) {
    who.errors = 0;
    who.errors_since = now;
  }
  if (++who.errors < s_.max_protocol_errors) return;
  write_goodbye_to(out_, peer_id);
  const std::string id(peer_id);
  send_to(id, now);
  forget_peer(id);
}

// ---- what arrived

void receiver_machine::on_message(message&& m, time_point now) {
  now_ = now;
  ++stats_.received;
  const parsed p = parse_at_receiver(m);
  const auto known = peers_.find(std::string(p.peer));
  if (known != peers_.end()) known->second.last_heard = now;
  if (!p) {
    ++stats_.malformed;
    if (p.error == fault::unknown_version && !p.peer.empty()) {
      write_version_refusal(out_, p.peer);
      ++stats_.refused;
      send_to(p.peer, now);
    } else if (known != peers_.end()) {
      protocol_error(p.peer, now);
    }
    return;
  }
  switch (p.what) {
    case command::hello:
      if (in_flight_) {
        // Decided once the commit in flight is durable; a sender greets again if this is lost.
        if (held_hellos_.size() < s_.max_links) held_hellos_.push_back(std::move(m));
        return;
      }
      on_hello(p, now);
      break;
    case command::data:
    case command::skip:
      if (known == peers_.end() || linked_channel(p.peer, p.link) == nullptr) {
        // A link this receiver does not know (it restarted, or dropped the connection): tell
        // the sender, which greets again.
        ++stats_.unknown_links;
        write_goodbye_to(out_, p.peer, p.link);
        send_to(p.peer, now);
        return;
      }
      on_entries(known->second, p, now);
      break;
    case command::goodbye:
      if (known == peers_.end()) return;
      if (p.link == 0) {
        forget_peer(std::string(p.peer));
      } else if (channel* c = linked_channel(p.peer, p.link)) {
        const std::string key = c->key;
        unlink(*c);
        retire_if_idle(key);
      }
      break;
    default:  // HEARTBEAT: the peer is alive, noted above
      break;
  }
  maybe_commit(now);
}

void receiver_machine::on_hello(const parsed& p, time_point now) {
  const hello_fields& h = p.hello;
  const std::string peer_id(p.peer);
  const std::string key = channel_key(h.sender, h.stream);
  auto it = channels_.find(key);
  if (it == channels_.end()) {
    auto loaded = store_.load(key);
    if (!loaded) {
      ++stats_.store_errors;
      return;
    }
    auto kept = store_.load_expired(key);
    if (!kept) {
      ++stats_.store_errors;
      return;
    }
    channel c;
    c.key = key;
    c.sender = std::string(h.sender);
    c.stream = std::string(h.stream);
    if (*loaded) {
      c.durable = **loaded;
      c.recorded = true;
      c.accepted = c.durable.taken;
    }
    c.expired_kept = std::move(*kept);
    c.counts.sender = c.sender;
    c.counts.stream = c.stream;
    it = channels_.emplace(key, std::move(c)).first;
  }
  channel& c = it->second;
  const bool same_link = c.peer == peer_id && c.link == p.link;
  // A HELLO opens a link only where neither the channel nor the sender's link is open already:
  // a sender reconnecting before its old connection is known dead moves its link, and must get
  // in at the bound (or hear duplicate-sender, from another incarnation).
  const bool opens_link = c.peer.empty() && linked_channel(peer_id, p.link) == nullptr;
  if (opens_link && link_count_ >= s_.max_links) {
    refuse(peer_id, p.link, "too-many-links", "this receiver has as many channels open as it takes", now);
    retire_if_idle(key);
    return;
  }
  const bool other_link_live = !c.peer.empty() && !same_link;
  const hello_decision d =
      decide_hello(hello_facts{.sender_incarnation = h.sender_inc,
                               .receiver_incarnation_seen = h.receiver_inc_seen,
                               .acked = h.acked,
                               .last = h.last},
                   s_.incarnation, c.recorded ? std::optional<channel_record>(c.durable) : std::nullopt,
                   other_link_live);
  if (d.verdict == hello_verdict::refuse_sender_regressed) {
    refuse(peer_id, p.link, "sender-regressed",
           "the sender's last sequence is below what this receiver has taken from it", now);
    retire_if_idle(key);
    return;
  }
  if (d.verdict == hello_verdict::refuse_duplicate_sender) {
    refuse(peer_id, p.link, "duplicate-sender", "another process is sending on this channel under this name", now);
    return;
  }

  // Bind the link here, taking it over from another connection of the same incarnation.
  if (!same_link) {
    unlink(c);
    if (channel* before = linked_channel(peer_id, p.link)) {  // the sender reused the link
      const std::string old_key = before->key;
      unlink(*before);
      retire_if_idle(old_key);
    }
    auto [pit, fresh] = peers_.try_emplace(peer_id);
    stats_.peers = peers_.size();
    peer& who = pit->second;
    if (fresh) {
      who.last_heard = now;
      who.heartbeat_at = now + s_.heartbeat;
    }
    who.their_heartbeat = milliseconds(h.heartbeat_ms);
    who.links[p.link] = key;
    c.peer = peer_id;
    c.link = p.link;
    ++link_count_;
    stats_.links = link_count_;
  }
  c.hello_acked = h.acked;

  const auto tell = [&](hello_event e, std::uint64_t from, std::uint64_t to, std::uint64_t old_inc) {
    store_.report(channel_event{.sender = c.sender, .stream = c.stream, .what = e, .from = from, .to = to,
                                .old_incarnation = old_inc, .new_incarnation = h.sender_inc});
  };
  if (has(d.events, hello_event::joined_late)) {
    ++c.counts.joined_late;
    tell(hello_event::joined_late, 1, h.acked, 0);
  }
  if (has(d.events, hello_event::receiver_regressed)) {
    ++c.counts.regressions;
    tell(hello_event::receiver_regressed, d.regressed_from, d.regressed_to, 0);
  }
  if (has(d.events, hello_event::sender_replaced)) {
    ++c.counts.sender_resets;
    tell(hello_event::sender_replaced, 0, d.archived->taken, d.archived->sender_incarnation);
  }

  if (d.record && (!c.recorded || *d.record != c.durable)) {
    // The journal changes before the WELCOME: first contact, or a new incarnation. What was
    // accepted from an older incarnation and not committed is not its to deliver any more.
    c.pending.clear();
    c.accepted = d.record->taken;
    if (has(d.events, hello_event::sender_replaced) && !c.expired_kept.empty()) {
      c.expired_kept.clear();
      c.expired_dirty = true;
    }
    c.record_to_write = d.record;
    c.archive_to_write = d.archived;
    c.welcome_waiting = true;
    if (std::find(dirty_.begin(), dirty_.end(), key) == dirty_.end()) dirty_.push_back(key);
    return;
  }
  // The sender has had every expiry up to its acked cursor: forget those.
  const auto known_to = std::upper_bound(c.expired_kept.begin(), c.expired_kept.end(), h.acked);
  if (known_to != c.expired_kept.begin()) {
    c.expired_kept.erase(c.expired_kept.begin(), known_to);
    c.expired_dirty = true;
    if (std::find(dirty_.begin(), dirty_.end(), key) == dirty_.end()) dirty_.push_back(key);
  }
  welcome(c, now);
}

void receiver_machine::on_entries(peer& who, const parsed& p, time_point now) {
  (void)who;
  channel* c = linked_channel(p.peer, p.link);
  if (c->welcome_waiting) return protocol_error(p.peer, now);  // DATA before WELCOME
  const std::uint64_t allowed_to = c->durable.taken + s_.credit;
  const std::size_t before = c->pending.size();
  bool duplicate = false;
  bool broke_rules = false;
  if (p.what == command::data) {
    for (const data_entry e : p.data) {
      const std::uint64_t expected = c->accepted + 1;
      if (e.seq < expected) {
        duplicate = true;
        ++c->counts.duplicates;
        continue;
      }
      if (e.seq > expected) {
        ++c->counts.gaps;
        nack(*c, now);
        break;
      }
      if (e.seq > allowed_to || e.body.size() > s_.max_message) {  // beyond its credit or our bound
        broke_rules = true;
        break;
      }
      pending_entry pe{entry_kind::deliver, e.seq, e.seq,
                       e.ttl_ms == 0 ? time_point::max() : now + milliseconds(e.ttl_ms), frame{}, {}};
      pe.body.copy(const_cast<frame&>(e.body_frame));  // shares the bytes; `m` is ours
      c->pending.push_back(std::move(pe));
      c->accepted = e.seq;
    }
  } else {
    const skip_fields& k = p.skip;
    const std::uint64_t expected = c->accepted + 1;
    if (k.last_seq < expected) {
      duplicate = true;
      ++c->counts.duplicates;
    } else if (k.first_seq > expected) {
      ++c->counts.gaps;
      nack(*c, now);
    } else {
      c->pending.push_back(pending_entry{entry_kind::skipped, expected, k.last_seq, time_point::max(), frame{},
                                         std::string(k.reason)});
      c->accepted = k.last_seq;
    }
  }
  if (duplicate) ack(*c, {});
  if (c->pending.size() > before && std::find(dirty_.begin(), dirty_.end(), c->key) == dirty_.end())
    dirty_.push_back(c->key);
  // Last: the sixteenth error closes the connection, which unlinks `c` and may forget it.
  if (broke_rules) protocol_error(p.peer, now);
}

// ---- commits

void receiver_machine::expire(channel& c, std::uint64_t seq, std::vector<std::uint64_t>& into) {
  into.push_back(seq);
  if (c.expired_kept.size() >= s_.max_expired_kept) {
    ++c.counts.expiry_reports_dropped;
    return;
  }
  c.expired_kept.push_back(seq);
}

void receiver_machine::maybe_commit(time_point now) {
  if (in_flight_ || dirty_.empty()) return;
  commit_batch b;
  b.id = next_batch_++;
  in_flight_commit f{b.id, {}};
  std::size_t budget = s_.max_batch;
  std::vector<std::string> still_dirty;
  for (const std::string& key : dirty_) {
    const auto it = channels_.find(key);
    if (it == channels_.end()) continue;
    channel& c = it->second;
    if (budget == 0) {
      still_dirty.push_back(key);
      continue;
    }
    commit_update u;
    u.key = key;
    u.sender = c.sender;
    u.stream = c.stream;
    channel_record r = c.record_to_write.value_or(c.durable);
    u.archived = c.archive_to_write;
    std::vector<std::uint64_t> expired;
    std::uint64_t delivered = 0;
    std::uint64_t skipped = 0;
    while (!c.pending.empty() && budget > 0) {
      pending_entry& pe = c.pending.front();
      commit_entry e;
      e.kind = pe.kind;
      e.seq = pe.seq;
      e.last = pe.last;
      if (pe.kind == entry_kind::deliver && pe.expires_at <= now) {
        e.kind = entry_kind::expired;
        expire(c, pe.seq, expired);
      } else if (pe.kind == entry_kind::deliver) {
        e.body = std::move(pe.body);
      } else {
        e.reason = std::move(pe.reason);
      }
      if (e.kind == entry_kind::deliver) ++delivered;
      if (e.kind == entry_kind::skipped) skipped += e.last - e.seq + 1;
      r.taken = pe.last;
      u.entries.push_back(std::move(e));
      c.pending.pop_front();
      --budget;
    }
    u.record = r;
    const bool expired_written = c.expired_dirty || !expired.empty();
    if (expired_written) {
      u.expired_kept = c.expired_kept;
      c.expired_dirty = false;
    }
    f.parts.push_back({key, r, std::move(expired), c.welcome_waiting, delivered, skipped, expired_written});
    c.record_to_write.reset();
    c.archive_to_write.reset();
    b.updates.push_back(std::move(u));
    if (!c.pending.empty()) still_dirty.push_back(key);
  }
  dirty_ = std::move(still_dirty);
  if (b.updates.empty()) return;
  in_flight_ = std::move(f);
  store_.commit(std::move(b));
}

void receiver_machine::on_committed(std::uint64_t id, result<void> outcome, time_point now) {
  now_ = now;
  if (!in_flight_ || in_flight_->id != id) return;
  in_flight_commit f = std::move(*in_flight_);
  in_flight_.reset();
  if (outcome) {
    ++stats_.commits;
    for (auto& part : f.parts) {
      const auto it = channels_.find(part.key);
      if (it == channels_.end()) continue;
      channel& c = it->second;
      c.durable = part.record;
      c.counts.delivered += part.delivered;
      c.counts.expired += part.expired.size();
      c.counts.skipped += part.skipped;
      c.recorded = true;
      if (part.welcome) {
        c.welcome_waiting = false;
        if (!c.peer.empty()) welcome(c, now);
      } else if (!c.peer.empty()) {
        ack(c, part.expired);
      }
    }
  } else {
    ++stats_.commit_failures;
    for (auto& part : f.parts) {
      const auto it = channels_.find(part.key);
      if (it == channels_.end()) continue;
      channel& c = it->second;
      // Nothing of it was kept: go back to the durable mark. The sender sends it all again
      // (its retransmission, or a NACK at the next DATA); a handshake waiting for this commit
      // is dropped with its link, and the sender greets again.
      c.pending.clear();
      c.accepted = c.durable.taken;
      for (const std::uint64_t s : part.expired) {
        const auto e = std::lower_bound(c.expired_kept.begin(), c.expired_kept.end(), s);
        if (e != c.expired_kept.end() && *e == s) c.expired_kept.erase(e);
      }
      if (part.expired_written) {
        // The list in memory had other changes too (forgotten on a HELLO, cleared for a new
        // incarnation) that the journal did not take: it is the truth again, so read it back.
        // Left as it is, memory would report the wrong expiries, or lose them at the next write.
        if (auto kept = store_.load_expired(part.key)) {
          c.expired_kept = std::move(*kept);
        } else {
          ++stats_.store_errors;
          c.expired_dirty = true;  // written with the channel's next commit instead
        }
      }
      dirty_.erase(std::remove(dirty_.begin(), dirty_.end(), part.key), dirty_.end());
      if (part.welcome) {
        c.welcome_waiting = false;
        unlink(c);
      }
    }
  }
  for (const auto& part : f.parts) retire_if_idle(part.key);

  std::vector<message> held = std::move(held_hellos_);
  held_hellos_.clear();
  for (auto& m : held) {
    if (in_flight_) {
      held_hellos_.push_back(std::move(m));
      continue;
    }
    const parsed p = parse_at_receiver(m);
    if (p && p.what == command::hello) on_hello(p, now);
    maybe_commit(now);
  }
  maybe_commit(now);
}

// ---- time

void receiver_machine::on_tick(time_point now) {
  now_ = now;
  std::vector<std::string> dead;
  for (auto& [id, who] : peers_) {
    const auto ttl = std::max<detail::machine_clock::duration>(s_.heartbeat, who.their_heartbeat) *
                     static_cast<long>(s_.liveness);
    if (now - who.last_heard >= ttl) {
      dead.push_back(id);
    } else if (now >= who.heartbeat_at) {
      write_heartbeat_to(out_, id);
      ++stats_.heartbeats_sent;
      send_to(id, now);
      who.heartbeat_at = now + s_.heartbeat;  // even when the send failed: no burst
    }
  }
  for (const auto& id : dead) forget_peer(id);
}

time_point receiver_machine::next_tick() const noexcept {
  time_point t = time_point::max();
  for (const auto& [id, who] : peers_) {
    const auto ttl = std::max<detail::machine_clock::duration>(s_.heartbeat, who.their_heartbeat) *
                     static_cast<long>(s_.liveness);
    t = std::min({t, who.heartbeat_at, who.last_heard + ttl});
  }
  return t;
}

std::vector<receiver_channel_stats> receiver_machine::channel_stats() const {
  std::vector<receiver_channel_stats> out;
  out.reserve(channels_.size());
  for (const auto& [key, c] : channels_) {
    receiver_channel_stats s = c.counts;
    s.sender_incarnation = c.durable.sender_incarnation;
    s.taken = c.durable.taken;
    s.accepted = c.accepted;
    s.pending = c.pending.size();
    s.linked = !c.peer.empty();
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace fabric::frc
