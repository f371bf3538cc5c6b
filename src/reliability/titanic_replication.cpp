// FTR/1's wire and the active node's side of Titanic replication (titanic_replication.hpp).
#include "reliability/titanic_replication.hpp"

#include <fabric/error.hpp>

#include <algorithm>
#include <cstring>

namespace fabric::titanic::repl {

using store::be64;
using store::put_u64;

namespace {

// Entries erased from the log by one commit at most, so that a commit after a long silence of
// the follower does not carry a large trim.
constexpr std::uint64_t trim_step = 1024;
// Requests one snapshot page carries at most (and about this many octets).
constexpr std::size_t snapshot_rows = 256;
constexpr std::size_t snapshot_bytes = std::size_t{4} << 20;

}  // namespace

// ---- source

namespace {

socket_options source_socket(const replication_options& o) {
  socket_options so = o.socket;
  so.routing_id.clear();
  so.linger = std::chrono::milliseconds(0);
  so.send_hwm = 0;  // one follower, one answer per fetch
  so.recv_hwm = 0;
  so.max_frames = 1024;  // a handoff: routing id, header, command and a page of requests
  return so;
}

}  // namespace

source::source(context& ctx, journal& j, const replication_options& options)
    : j_(j), options_(options), sock_(ctx, source_socket(options)) {
  if (options_.follower_timeout < std::chrono::milliseconds(10) || options_.follower_timeout > std::chrono::hours(1))
    throw error(errc::invalid_argument, "titanic replication: follower_timeout must be 10 ms .. 1 h");
  if (options_.backlog == 0) throw error(errc::invalid_argument, "titanic replication: backlog must be positive");
  if (options_.max_fetch_bytes == 0)
    throw error(errc::invalid_argument, "titanic replication: max_fetch_bytes must be positive");
  auto head = store::read_head(j);
  if (!head) throw error(head.error(), "titanic replication: the log's head could not be read");
  head_ = *head;
  auto base = j.get(store::pair_table, store::base_key);
  if (!base) throw error(base.error(), "titanic replication: the log's base could not be read");
  if (*base) {
    auto p = store::decode_point(**base);
    if (!p) throw error(errc::malformed, "titanic replication: the log's base is damaged");
    base_ = *p;
  }
  auto kept = store::read_term(j);
  if (!kept) throw error(kept.error(), "titanic replication: the journal's term could not be read");
  if (*kept < options_.term) {
    auto r = j.transact([&](journal_txn& t) { t.put(store::pair_table, store::term_key, be64(options_.term)); });
    if (!r) throw error(r.error(), "titanic replication: the term could not be kept");
  }
  endpoint_ = sock_.bind(options_.bind);
}

std::uint64_t source::reserve() {
  trim_.reset();
  std::uint64_t target = head_.position > options_.backlog ? head_.position - options_.backlog : 0;
  target = std::max(target, std::min(follower_at_, head_.position));
  target = std::min(target, base_.position + trim_step);
  if (target > base_.position) {
    auto v = j_.get(store::replog_table, be64(target));
    if (v && *v) trim_ = log_point{target, store::ops_term(**v)};
  }
  return head_.position + 1;
}

void source::write(journal_txn& t, std::uint64_t position, std::string&& ops) {
  t.put(store::replog_table, be64(position), ops);
  t.put(store::pair_table, store::head_key, store::encode_point({position, options_.term}));
  if (trim_) {
    for (std::uint64_t p = base_.position + 1; p <= trim_->position; ++p) t.erase(store::replog_table, be64(p));
    t.put(store::pair_table, store::base_key, store::encode_point(*trim_));
  }
}

void source::committed(std::uint64_t position, bool ok, time_point now) {
  if (!ok) {
    trim_.reset();
    return;
  }
  head_ = {position, options_.term};
  if (trim_) base_ = *trim_;
  trim_.reset();
  if (parked_ && parked_->from < head_.position) {
    parked p = std::move(*parked_);
    parked_.reset();
    serve(std::move(p.to), p.from, p.max_bytes, now);
  }
}

bool source::must_wait() const noexcept { return options_.mode == replication_mode::sync && in_step_; }

void source::hold(std::uint64_t position, std::function<void(time_point)> release) {
  waiting_.push_back({position, std::move(release)});
  stats_.held = waiting_.size();
}

void source::release_upto(std::uint64_t position, time_point now) {
  while (!waiting_.empty() && waiting_.front().position <= position) {
    auto w = std::move(waiting_.front());
    waiting_.pop_front();
    w.release(now);
  }
  stats_.held = waiting_.size();
}

bool source::matches(log_point at) const {
  if (at.position > head_.position || at.position < base_.position) return false;
  if (at.position == head_.position) return at.term == head_.term;
  if (at.position == base_.position) return at.term == base_.term;
  auto v = j_.get(store::replog_table, be64(at.position));
  return v && *v && store::ops_term(**v) == at.term;
}

void source::on_message(message&& m, time_point now) {
  if (m.size() < 2) {
    ++stats_.malformed;
    return;
  }
  std::string from(m.view(0));
  (void)m.pop_front();
  const parsed p = parse(m);
  if (const auto* f = std::get_if<fetch_fields>(&p)) {
    on_fetch(std::move(from), *f, now);
  } else if (const auto* s = std::get_if<snapshot_fetch_fields>(&p)) {
    on_snapshot_fetch(std::move(from), *s);
  } else if (std::holds_alternative<handoff_fields>(p)) {
    on_handoff_message(std::move(from), m, now);
  } else {
    ++stats_.malformed;
  }
}

log_point source::agreement(log_point at) const {
  log_point best = base_.position <= at.position && base_.term <= at.term ? base_ : log_point{};
  std::uint64_t lo = base_.position + 1;
  std::uint64_t hi = std::min(at.position, head_.position);
  while (lo <= hi) {
    const std::uint64_t mid = lo + (hi - lo) / 2;
    std::uint64_t term = head_.term;
    if (mid != head_.position) {
      auto v = j_.get(store::replog_table, be64(mid));
      if (!v || !*v) break;  // unreadable: agree no further than what was found
      term = store::ops_term(**v);
    }
    if (term <= at.term) {
      best = {mid, term};
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  return best;
}

void source::on_handoff_message(std::string&& to, const message& m, time_point now) {
  std::uint32_t held = 0;
  std::uint32_t total = 0;
  for (std::size_t i = 2; i < m.size(); ++i) {
    store::ops o;
    if (!store::decode_ops(m.view(i), o)) {
      ++stats_.malformed;
      return;  // the follower asks again
    }
    for (auto& c : o.changes) {
      if (c.kind != tsp::change_kind::stored) continue;
      ++total;
      if (adopt_ && adopt_(std::move(c), now) == tsp::adoption::held) ++held;
    }
  }
  stats_.handed_over += total;
  send(to, build_handed(held, total));
}

void source::on_fetch(std::string&& to, const fetch_fields& f, time_point now) {
  ++stats_.fetches;
  follower_ = to;
  follower_seen_ = now;
  if (!matches(f.at)) {
    // Behind the trimmed log, ahead of it, or parted from it: the follower copies afresh.
    ++stats_.resyncs;
    in_step_ = false;
    parked_.reset();
    send(to, build_resync(head_, agreement(f.at)));
    return;
  }
  follower_at_ = f.at.position;
  if (f.at == head_) in_step_ = true;
  release_upto(f.at.position, now);
  serve(std::move(to), f.at.position, std::max<std::uint32_t>(f.max_bytes, 1), now);
}

void source::serve(std::string to, std::uint64_t from, std::uint32_t max_bytes, time_point now) {
  if (from >= head_.position) {
    // Nothing to send yet: answered by the next commit, or empty once half the timeout passed
    // (which tells the follower this node lives).
    parked_ = parked{std::move(to), from, max_bytes, now + options_.follower_timeout / 2};
    return;
  }
  message m = build_records(head_);
  std::size_t bytes = 0;
  std::uint64_t last = from;
  const std::size_t budget = std::min<std::size_t>(max_bytes, options_.max_fetch_bytes);
  auto entries = j_.table_entries(store::replog_table, be64(from), 256);
  if (!entries) {
    parked_ = parked{std::move(to), from, max_bytes, now + options_.follower_timeout / 2};
    return;
  }
  for (auto& [k, v] : *entries) {
    if (k.size() != 8) continue;
    const auto pos = detail::load_be<std::uint64_t>(reinterpret_cast<const unsigned char*>(k.data()));
    if (pos != last + 1 || pos > head_.position) break;  // a gap: never skip an entry
    if (bytes > 0 && bytes + v.size() > budget) break;
    std::string frame = be64(pos);
    frame += v;
    bytes += frame.size();
    m.push_back(frame);
    last = pos;
  }
  stats_.entries_sent += m.size() - 2;
  // A follower that applies this answer is at the head, and counts itself caught up (it may take
  // over from then on, section 9.3): every later commit waits for it, not only those after its
  // next fetch, which may come after another commit.
  if (last == head_.position) in_step_ = true;
  send(to, std::move(m));
}

void source::on_snapshot_fetch(std::string&& to, const snapshot_fetch_fields& f) {
  ++stats_.snapshot_pages;
  const log_point start = head_;
  std::string after = f.after ? std::string(store::uuid_key(*f.after)) : std::string();
  auto rows = j_.table_entries(service::state_table, after, snapshot_rows);
  if (!rows) return;  // the follower asks again
  std::vector<std::string> m;
  std::size_t bytes = 0;
  std::optional<tsp::uuid> last;
  std::size_t taken = 0;
  for (const auto& [k, v] : *rows) {
    if (bytes > snapshot_bytes) break;
    ++taken;
    if (k.size() != 16) continue;
    tsp::uuid id;
    std::memcpy(id.bytes.data(), k.data(), 16);
    last = id;
    auto s = store::decode_state(v);
    if (!s) continue;
    tsp::request_change stored{.kind = tsp::change_kind::stored, .id = id, .key = s->key, .service = s->service};
    bool found = false;
    (void)j_.read_views(service::requests_stream, s->seq, 1, std::size_t{64} << 20, [&](const journal_record_view& rv) {
      store::record rec;
      if (rv.seq == s->seq && store::decode_record(rv.payload, rec, &stored.body) && rec.id == id) found = true;
    });
    if (!found) continue;  // trimmed or damaged: nothing to copy
    std::vector<tsp::request_change> first;
    first.push_back(std::move(stored));
    if (s->state == store::state_open && s->attempts > 0)
      first.push_back({.kind = tsp::change_kind::attempt, .id = id, .attempts = s->attempts});
    std::string ops = store::encode_ops(0, s->stored_ns, first);
    bytes += ops.size();
    m.push_back(std::move(ops));
    if (s->state == store::state_open) continue;
    tsp::request_change end{.id = id, .attempts = s->attempts};
    if (s->state == store::state_replied) {
      auto rep = j_.get(service::replies_table, k);
      if (!rep || !*rep) continue;
      store::reader rd{**rep};
      if (!rd.frames(end.body) || !rd.in.empty()) continue;
      end.kind = tsp::change_kind::replied;
    } else {
      end.kind = tsp::change_kind::given_up;
      end.reason = s->reason;
    }
    std::vector<tsp::request_change> finish;
    finish.push_back(std::move(end));
    std::string fin = store::encode_ops(0, s->finished_ns, finish);
    bytes += fin.size();
    m.push_back(std::move(fin));
  }
  const bool done = taken == rows->size() && rows->size() < snapshot_rows;
  message reply = build_snapshot(start, done, last ? last : f.after);
  for (const auto& frame : m) reply.push_back(frame);
  send(to, std::move(reply));
}

void source::send(std::string_view to, message&& m) {
  m.push_front(to);
  if (!sock_.try_send(std::move(m))) parked_.reset();  // the follower asks again
}

void source::on_tick(time_point now) {
  if (parked_ && now >= parked_->until) {
    parked p = std::move(*parked_);
    parked_.reset();
    send(p.to, build_records(head_));
  }
  if (in_step_ && now - follower_seen_ >= options_.follower_timeout) {
    // The follower is gone: what waits for it is answered from this journal alone, and later
    // answers do not wait (section 9.3).
    in_step_ = false;
    ++stats_.follower_losses;
    release_upto(UINT64_MAX, now);
  }
}

time_point source::next_tick() const noexcept {
  time_point t = time_point::max();
  if (parked_) t = std::min(t, parked_->until);
  if (in_step_) t = std::min(t, follower_seen_ + options_.follower_timeout);
  return t;
}

source_stats source::stats() const noexcept {
  source_stats s = stats_;
  s.head = head_;
  s.follower_at = follower_at_;
  s.follower_in_step = in_step_;
  s.held = waiting_.size();
  return s;
}

}  // namespace fabric::titanic::repl
