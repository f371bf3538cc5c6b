// The FRS/1 subscriber machine: the live feed merged with fetched history, per stream, in order
// and without duplicates; gaps, lost tails, replaced publishers and removed history noticed and
// reported.
#include "reliability/frs_subscriber.hpp"

#include <fabric/error.hpp>

#include <algorithm>
#include <utility>

namespace fabric::frs {
namespace {

using detail::time_point;

// Incarnations remembered as replaced; more than this many replacements forgets the oldest.
constexpr std::size_t max_retired = 64;

bool valid_stream(std::string_view name) noexcept {
  return !name.empty() && name.size() <= max_stream_size && name.front() != '\0';
}

std::string_view name_of(std::uint8_t m) {
  switch (m) {
    case 1: return "live";
    case 2: return "catching-up";
    case 3: return "refused";
    default: return "waiting";
  }
}

}  // namespace

subscriber_machine::subscriber_machine(const subscriber_settings& s, detail::machine_sink& sink,
                                       subscriber_store& store)
    : s_(s), sink_(sink), store_(store) {
  const auto bad = [](const char* what) { throw error(errc::invalid_argument, std::string("stream subscriber: ") + what); };
  if (s_.liveness == 0) bad("liveness must be at least 1");
  if (s_.assumed_heartbeat.count() < 1) bad("the assumed heartbeat must be positive");
  if (s_.fetch_count < 1 || s_.fetch_count > max_count) bad("fetch_count must be 1 .. 1024");
  if (s_.fetch_timeout.count() < 1 || s_.refused_retry.count() < 1) bad("timeouts must be positive");
  if (s_.max_fetches == 0 || s_.max_held == 0 || s_.max_streams == 0 || s_.max_backlog == 0)
    bad("bounds must be positive");
  if (s_.start.what == start_position::kind::from_seq && s_.start.value == 0) bad("sequences start at 1");
  for (const auto& name : s_.streams) {
    if (!valid_stream(name)) bad("a stream name must be 1..255 octets, not beginning with 0x00");
  }
  publisher_heartbeat_ = s_.assumed_heartbeat;
}

// ------------------------------------------------------------------------------------ streams

subscriber_machine::stream_state* subscriber_machine::find_or_start(std::string_view name, time_point now,
                                                                    bool& created) {
  created = false;
  if (auto it = streams_.find(std::string(name)); it != streams_.end()) return &it->second;
  if (streams_.size() >= s_.max_streams) return nullptr;
  auto stored = store_.load(name);
  if (!stored) {
    // Not knowing where a durable subscriber stands, it must not guess: the stream is met again
    // with its next message.
    ++stats_.store_errors;
    return nullptr;
  }
  stream_state& st = streams_.emplace(std::string(name), stream_state{}).first->second;
  st.name = std::string(name);
  st.counts.stream = st.name;
  created = true;
  if (*stored) {
    st.incarnation = (*stored)->incarnation;
    st.next = std::max<std::uint64_t>((*stored)->next, 1);
    st.state = mode::catching_up;
  } else if (s_.start.what == start_position::kind::from_seq) {
    st.next = s_.start.value;
    st.state = mode::catching_up;
  } else if (s_.start.what == start_position::kind::from_time) {
    st.by_time = true;
    st.state = mode::catching_up;
  }
  if (publisher_inc_ != 0 && st.incarnation != 0 && st.incarnation != publisher_inc_) {
    adopt_incarnation(st, now);
  } else if (st.state == mode::catching_up) {
    catch_up(st, now);
  }
  return &st;
}

void subscriber_machine::follow(std::string_view stream, time_point now) {
  if (!valid_stream(stream)) throw error(errc::invalid_argument, "stream subscriber: a bad stream name");
  bool created = false;
  if (!find_or_start(stream, now, created) && streams_.size() >= s_.max_streams) ++stats_.ignored;
}

void subscriber_machine::adopt_incarnation(stream_state& st, time_point now) {
  if (st.incarnation == publisher_inc_) return;
  if (st.incarnation == 0) {
    st.incarnation = publisher_inc_;
    return;
  }
  // Section 7: the publisher's journal was replaced; its sequences start again.
  report(stream_event{.what = stream_event::kind::publisher_replaced,
                      .stream = st.name,
                      .from = st.next,
                      .old_incarnation = st.incarnation,
                      .new_incarnation = publisher_inc_});
  st.incarnation = publisher_inc_;
  st.held.clear();
  drop_request(st);
  st.next = 1;
  st.by_time = false;
  catch_up(st, now);
}

bool subscriber_machine::check_incarnation(std::uint64_t inc, time_point now) {
  if (inc == publisher_inc_) return true;
  if (retired_.contains(inc)) return false;
  if (publisher_inc_ != 0) {
    if (retired_.size() >= max_retired) retired_.clear();
    retired_.insert(publisher_inc_);
    ++stats_.publisher_replacements;
  }
  publisher_inc_ = inc;
  stats_.publisher_incarnation = inc;
  for (auto& [name, st] : streams_) {
    if (st.incarnation != 0 && st.incarnation != inc) adopt_incarnation(st, now);
  }
  return true;
}

// ------------------------------------------------------------------------------------ input

void subscriber_machine::on_message(detail::port from, message&& m, time_point now) {
  ++stats_.received;
  if (from == live_port) {
    const parsed p = parse_live(m);
    if (!p) {
      ++stats_.malformed;
      return;
    }
    heard(now);
    if (!check_incarnation(p.publisher_inc, now)) {
      ++stats_.stale;
      return;
    }
    if (p.what == command::heartbeat) {
      on_heartbeat(p.publisher_inc, p.heartbeat_ms, now);
      return;
    }
    on_live(p, now);  // LIVE or BEACON
    return;
  }
  const parsed p = parse_at_subscriber(m);
  if (!p) {
    if (p.error == fault::wrong_direction) {
      ++stats_.protocol_errors;
    } else {
      ++stats_.malformed;
    }
    return;
  }
  heard(now);
  if (p.what != command::refuse && !check_incarnation(p.publisher_inc, now)) {
    ++stats_.stale;
    return;
  }
  on_answer(p, now);
}

void subscriber_machine::heard(time_point now) {
  last_heard_ = now;
  heard_ever_ = true;
  stats_.publisher_alive = true;
  if (!lost_) return;
  lost_ = false;
  report(stream_event{.what = stream_event::kind::publisher_back});
  // Whatever it published meanwhile may have been lost on the way: check every stream.
  for (auto& [name, st] : streams_) {
    if (st.state == mode::live) {
      st.state = mode::catching_up;
      catch_up(st, now);
    }
  }
}

void subscriber_machine::on_heartbeat(std::uint64_t inc, std::uint32_t ms, time_point now) {
  (void)inc;
  (void)now;
  publisher_heartbeat_ = std::chrono::milliseconds(ms);
}

void subscriber_machine::on_live(const parsed& p, time_point now) {
  bool created = false;
  stream_state* found = find_or_start(p.stream, now, created);
  if (!found) {
    ++stats_.ignored;
    return;
  }
  stream_state& st = *found;
  if (st.state == mode::refused) return;
  if (st.incarnation != publisher_inc_) adopt_incarnation(st, now);

  if (p.what == command::beacon) {
    const std::uint64_t last = p.last;
    if (st.next == 0) {
      if (st.by_time) return;  // its FETCH-TIME says where it starts
      st.next = last + 1;      // latest: nothing older is wanted
      st.state = mode::live;
      return;
    }
    if (last >= st.next) {
      if (st.state == mode::live) {
        ++st.counts.gaps;  // a lost tail
        st.state = mode::catching_up;
      }
      catch_up(st, now);
    } else if (last + 1 < st.next && st.state == mode::live) {
      report(stream_event{.what = stream_event::kind::publisher_regressed,
                          .stream = st.name,
                          .from = st.next,
                          .to = last + 1,
                          .old_incarnation = st.incarnation,
                          .new_incarnation = st.incarnation});
      st.next = last + 1;
    }
    return;
  }

  const std::uint64_t seq = p.live.seq;
  // The body sits in the packed frame after the LIVE's fields: it becomes a frame of its own,
  // copied once, and only for a message that is delivered or held.
  const auto body_of = [&p] { return frame(p.live.body.data(), p.live.body.size()); };
  if (st.next == 0) {
    if (st.by_time) {
      hold(st, seq, p.live.time_ns, body_of());
      return;
    }
    st.next = seq;  // latest: this is the first message
    st.state = mode::live;
  }
  if (seq < st.next) {
    ++st.counts.duplicates;
    return;
  }
  if (seq == st.next && !backlog_full()) {
    frame body = body_of();
    deliver(st, seq, p.live.time_ns, body, false);
    deliver_held(st);
    return;
  }
  if (st.state == mode::live) {
    if (seq > st.next) ++st.counts.gaps;
    st.state = mode::catching_up;
  }
  hold(st, seq, p.live.time_ns, body_of());
  catch_up(st, now);
}

void subscriber_machine::on_answer(const parsed& p, time_point now) {
  const auto req = requests_.find(p.request);
  if (req == requests_.end()) {
    ++stats_.stale;
    return;
  }
  const auto found = streams_.find(req->second);
  requests_.erase(req);
  if (found == streams_.end()) return;
  stream_state& st = found->second;
  st.request.reset();

  if (p.what == command::refuse) {
    ++stats_.refusals;
    const std::string detail = std::string(p.refuse.code) + ": " + std::string(p.refuse.reason);
    report(stream_event{.what = stream_event::kind::refused, .stream = st.name, .detail = detail});
    if (p.refuse.code == "too-many-requests" || p.refuse.code == "unavailable") {
      st.retry_at = now + s_.fetch_timeout;  // a passing condition: ask again soon
    } else {
      st.state = mode::refused;
      st.held.clear();
      st.retry_at = now + s_.refused_retry;
    }
    refused_.insert(st.name);
    serve_waiting(now);
    return;
  }
  if (st.incarnation != publisher_inc_) {
    // A stream that knew no incarnation yet takes this one and the answer is its own; one of
    // another journal's sequences is replaced and the answer is about those.
    const bool replaced = st.incarnation != 0;
    adopt_incarnation(st, now);
    if (replaced) {
      serve_waiting(now);
      return;
    }
  }
  const std::uint64_t asked = st.asked_from;

  if (p.what == command::batch) {
    const batch_view& b = p.batch;
    if (st.next == 0) {
      st.next = b.first_seq();  // a FETCH-TIME's answer: the stream starts here
      st.by_time = false;
    }
    if (asked != 0 && b.first_seq() != asked) {
      ++stats_.protocol_errors;  // a batch must start where it was asked to
      after_answer(st, false, now);
      return;
    }
    if (b.first_seq() > st.next) {
      // Delivery stopped (the backlog filled) after this was asked for: ask again from `next`.
      after_answer(st, false, now);
      return;
    }
    // Ask for what follows before delivering this, so the publisher reads while we deliver.
    if (!backlog_full() && (st.held.empty() || st.held.begin()->first > b.last_seq() + 1) &&
        b.last_seq() + 1 >= st.next) {
      const std::uint64_t keep = st.next;
      st.next = b.last_seq() + 1;
      fetch(st, now);
      st.next = keep;
    }
    for (const batch_entry e : b) {
      if (e.seq < st.next) {
        ++st.counts.duplicates;
        continue;
      }
      if (e.seq != st.next || backlog_full()) break;
      deliver(st, e.seq, e.time_ns, const_cast<frame&>(e.body_frame), true);
    }
    after_answer(st, false, now);
    return;
  }

  if (p.what == command::end) {
    const std::uint64_t next = p.end.next_seq;
    if (st.next == 0) {
      st.next = next;  // a FETCH-TIME past the end
      st.by_time = false;
    } else if (next < st.next && st.next == asked) {
      // Behind what was asked, with nothing delivered since asking: the publisher lost messages
      // it had published (a journal restored from an older copy). An END behind a position the
      // live feed moved on meanwhile is merely older than those live messages.
      report(stream_event{.what = stream_event::kind::publisher_regressed,
                          .stream = st.name,
                          .from = st.next,
                          .to = next,
                          .old_incarnation = st.incarnation,
                          .new_incarnation = st.incarnation});
      st.next = next;
    } else if (next > st.next && st.next == asked) {
      ++stats_.protocol_errors;  // END says it has nothing from where we asked: it cannot skip
    }
    // Live messages held past the publisher's last cannot follow this END: they went out after
    // it was written (replay brings them back) or the publisher no longer holds them. Kept, they
    // would have the stream ask again at every END, as fast as the answers come.
    while (!st.held.empty() && st.held.rbegin()->first > p.end.last) {
      st.held.erase(std::prev(st.held.end()));
      ++st.counts.held_dropped;
    }
    after_answer(st, true, now);
    return;
  }

  // GONE
  const std::uint64_t first_held = p.gone.first_held;
  if (st.next == 0) {
    st.next = std::max<std::uint64_t>(p.gone.from_seq, 1);
    st.by_time = false;
  }
  if (first_held > st.next) {
    // Messages held live inside the range are not lost: report up to the first of them.
    std::uint64_t upto = first_held;
    if (!st.held.empty() && st.held.begin()->first < upto) upto = st.held.begin()->first;
    if (upto > st.next) {
      report(stream_event{.what = stream_event::kind::gone, .stream = st.name, .from = st.next, .to = upto - 1});
      st.counts.gone += upto - st.next;
      st.next = upto;
    }
  }
  after_answer(st, false, now);
}

// ---------------------------------------------------------------------------------- delivery

void subscriber_machine::deliver(stream_state& st, std::uint64_t seq, std::uint64_t time_ns, frame& body,
                                 bool replayed) {
  store_.deliver(delivery{.stream = st.name,
                          .incarnation = st.incarnation,
                          .seq = seq,
                          .time_ns = time_ns,
                          .body = body,
                          .replayed = replayed});
  st.next = seq + 1;
  ++st.counts.delivered;
  if (replayed) ++st.counts.replayed;
}

void subscriber_machine::deliver_held(stream_state& st) {
  while (!st.held.empty()) {
    auto first = st.held.begin();
    if (first->first < st.next) {
      ++st.counts.duplicates;
      st.held.erase(first);
      continue;
    }
    if (first->first != st.next || backlog_full()) return;
    deliver(st, first->first, first->second.time_ns, first->second.body, false);
    st.held.erase(first);
  }
}

void subscriber_machine::hold(stream_state& st, std::uint64_t seq, std::uint64_t time_ns, frame&& body) {
  if (st.held.contains(seq)) {
    ++st.counts.duplicates;
    return;
  }
  if (st.held.size() >= s_.max_held) {
    // The newest go first: replay brings them back, and the oldest are the ones delivered next.
    ++st.counts.held_dropped;
    if (seq > st.held.rbegin()->first) return;
    st.held.erase(std::prev(st.held.end()));
  }
  st.held.emplace(seq, held_message{time_ns, std::move(body)});
}

void subscriber_machine::after_answer(stream_state& st, bool at_end, time_point now) {
  deliver_held(st);
  if (st.held.empty() && at_end) {
    st.state = mode::live;
  } else if (!st.request) {
    catch_up(st, now);
  }
  serve_waiting(now);
}

// ---------------------------------------------------------------------------------- fetching

void subscriber_machine::catch_up(stream_state& st, time_point now) {
  if (st.state != mode::refused) st.state = mode::catching_up;
  if (!st.request) fetch(st, now);
}

void subscriber_machine::fetch(stream_state& st, time_point now) {
  if (st.next == 0 && !st.by_time) return;  // latest: nothing to ask until the position is known
  if (backlog_full() || requests_.size() >= s_.max_fetches) {
    if (!st.waiting_room) {
      st.waiting_room = true;
      waiting_.push_back(st.name);
    }
    return;
  }
  std::uint32_t req = next_request_++;
  if (req == 0) req = next_request_++;
  if (st.next == 0) {
    write_fetch_time(out_, req, fetch_fields{.stream = st.name, .from = s_.start.value, .max_count = s_.fetch_count});
    st.asked_from = 0;
  } else {
    write_fetch(out_, req, fetch_fields{.stream = st.name, .from = st.next, .max_count = s_.fetch_count});
    st.asked_from = st.next;
  }
  // Unsent or lost, it is asked again after the fetch timeout.
  if (!sink_.send(fetch_port, std::move(out_))) ++stats_.send_failures;
  st.request = req;
  st.asked_at = now;
  requests_[req] = st.name;
  ++st.counts.fetches;
  ++stats_.fetches;
}

void subscriber_machine::drop_request(stream_state& st) {
  if (!st.request) return;
  requests_.erase(*st.request);
  st.request.reset();
}

void subscriber_machine::serve_waiting(time_point now) {
  while (!waiting_.empty() && !backlog_full() && requests_.size() < s_.max_fetches) {
    const std::string name = std::move(waiting_.front());
    waiting_.erase(waiting_.begin());
    const auto it = streams_.find(name);
    if (it == streams_.end()) continue;
    stream_state& st = it->second;
    st.waiting_room = false;
    deliver_held(st);
    if (st.state == mode::catching_up && !st.request) fetch(st, now);
  }
}

void subscriber_machine::on_drained(time_point now) { serve_waiting(now); }

bool subscriber_machine::backlog_full() const noexcept { return store_.backlog() >= s_.max_backlog; }

void subscriber_machine::report(stream_event&& e) { store_.report(e); }

// ---------------------------------------------------------------------------------- time

void subscriber_machine::on_tick(time_point now) {
  if (heard_ever_ && !lost_ && now >= last_heard_ + publisher_heartbeat_ * s_.liveness) {
    lost_ = true;
    stats_.publisher_alive = false;
    ++stats_.publisher_losses;
    report(stream_event{.what = stream_event::kind::publisher_lost});
  }
  std::vector<std::string> late;
  for (const auto& [req, name] : requests_) {
    const auto it = streams_.find(name);
    if (it != streams_.end() && now >= it->second.asked_at + s_.fetch_timeout) late.push_back(name);
  }
  for (const auto& name : late) {
    stream_state& st = streams_.find(name)->second;
    ++stats_.fetch_timeouts;
    drop_request(st);
    fetch(st, now);
  }
  for (auto it = refused_.begin(); it != refused_.end();) {
    const auto s = streams_.find(*it);
    if (s == streams_.end()) {
      it = refused_.erase(it);
      continue;
    }
    stream_state& st = s->second;
    if (now < st.retry_at) {
      ++it;
      continue;
    }
    st.retry_at = time_point::max();
    it = refused_.erase(it);
    if (st.state == mode::refused) st.state = st.next == 0 && !st.by_time ? mode::waiting : mode::catching_up;
    if (st.state == mode::catching_up && !st.request) fetch(st, now);
  }
  serve_waiting(now);
}

time_point subscriber_machine::next_tick() const noexcept {
  time_point at = time_point::max();
  if (heard_ever_ && !lost_) at = last_heard_ + publisher_heartbeat_ * s_.liveness;
  for (const auto& [req, name] : requests_) {
    const auto it = streams_.find(name);
    if (it != streams_.end()) at = std::min(at, it->second.asked_at + s_.fetch_timeout);
  }
  for (const auto& name : refused_) {
    const auto it = streams_.find(name);
    if (it != streams_.end()) at = std::min(at, it->second.retry_at);
  }
  return at;
}

std::vector<subscriber_stream_stats> subscriber_machine::stream_stats() const {
  std::vector<subscriber_stream_stats> out;
  out.reserve(streams_.size());
  for (const auto& [name, st] : streams_) {
    subscriber_stream_stats c = st.counts;
    c.state = std::string(name_of(static_cast<std::uint8_t>(st.state)));
    c.incarnation = st.incarnation;
    c.next = st.next;
    c.held = st.held.size();
    out.push_back(std::move(c));
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.stream < b.stream; });
  return out;
}

}  // namespace fabric::frs
