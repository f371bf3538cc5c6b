// The FRS/1 publisher machine: live messages read back from the journal once durable, FETCH and
// FETCH-TIME answered from it, heartbeats and beacons on the interval.
#include "reliability/frs_publisher.hpp"

#include <fabric/error.hpp>

#include <algorithm>
#include <utility>

namespace fabric::frs {
namespace {

constexpr std::string_view unknown_stream = "unknown-stream";
constexpr std::string_view unavailable = "unavailable";
// LIVE messages read from the journal per read: bounds one read transaction.
constexpr std::size_t live_read = 1024;

}  // namespace

publisher_machine::publisher_machine(const publisher_settings& s, detail::machine_sink& sink,
                                     publisher_store& store)
    : s_(s), sink_(sink), store_(store) {
  if (s_.incarnation == 0) throw error(errc::invalid_argument, "stream publisher: the incarnation must not be 0");
  if (s_.heartbeat.count() < 1 || s_.heartbeat.count() > max_heartbeat_ms)
    throw error(errc::invalid_argument, "stream publisher: the heartbeat must be 1 ms .. 1 hour");
  if (s_.max_beacons == 0) throw error(errc::invalid_argument, "stream publisher: max_beacons must be positive");
}

void publisher_machine::adopt(std::string_view stream, std::uint64_t last) {
  auto it = streams_.find(stream);
  if (it == streams_.end()) it = streams_.emplace(std::string(stream), stream_state{}).first;
  it->second.durable = std::max(it->second.durable, last);
  it->second.published = std::max(it->second.published, last);
}

void publisher_machine::on_durable(std::string_view stream, std::uint64_t through, detail::time_point now) {
  (void)now;
  auto it = streams_.find(stream);
  if (it == streams_.end()) it = streams_.emplace(std::string(stream), stream_state{}).first;
  it->second.durable = std::max(it->second.durable, through);
  publish(it->first, it->second);
}

void publisher_machine::publish(const std::string& name, stream_state& st) {
  if (st.published < st.durable) st.live_this_interval = true;
  while (st.published < st.durable) {
    const std::uint64_t from = st.published + 1;
    const std::uint64_t through = st.durable;
    const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(through - st.published, live_read));
    std::uint64_t handed = 0;
    auto next = store_.read(name, from, want, s_.max_batch_bytes, [&](const journal_record_view& v) {
      if (v.seq > through) return;
      write_live(out_, name, s_.incarnation, v.seq, static_cast<std::uint64_t>(v.timestamp_ns), v.payload);
      // A PUB never blocks: a subscriber whose queue is full loses the message and fetches it.
      if (!sink_.send(pub_port, std::move(out_))) ++stats_.send_failures;
      handed = v.seq;
      ++st.live_sent;
      ++stats_.live_sent;
    });
    if (!next) {
      if (next.error() == errc::malformed) {
        // The record after the last handed over is damaged: it cannot go out live. Subscribers
        // see the gap, fetch it, and are told it is gone.
        ++stats_.damaged;
        st.published = std::max(st.published, handed) + 1;
        continue;
      }
      ++stats_.store_errors;  // tried again at the next durable notice or tick
      st.published = std::max(st.published, handed);
      return;
    }
    // Nothing handed over: everything up to `through` was removed (by retention) before it went out.
    st.published = handed == 0 ? through : handed;
  }
}

void publisher_machine::on_message(message&& m, detail::time_point now) {
  (void)now;
  const parsed p = parse_at_publisher(m);
  if (!p) {
    if (p.error == fault::unknown_version) {
      write_version_refusal(out_, p.peer);
      ++stats_.refused;
      send_answer();
    } else if (p.error == fault::wrong_direction) {
      ++stats_.protocol_errors;
    } else {
      ++stats_.malformed;
    }
    return;
  }
  ++stats_.fetches;
  if (!store_.allowed(p.peer, p.stream)) {
    refuse(p.peer, p.request, unknown_stream, "no such stream");
    return;
  }
  // A stream nothing was published on yet is empty, not unknown: streams come into being with
  // their first message, and a subscriber may start first.
  const auto it = streams_.find(p.stream);
  const std::uint64_t last = it == streams_.end() ? 0 : it->second.durable;
  if (p.what == command::fetch) {
    answer_fetch(p, last);
  } else {
    answer_fetch_time(p, last);
  }
}

void publisher_machine::answer_fetch(const parsed& p, std::uint64_t last) {
  if (p.fetch.from > last) {
    write_end(out_, p.peer, p.request, s_.incarnation, end_fields{.next_seq = last + 1, .last = last});
    ++stats_.ends;
    send_answer();
    return;
  }
  serve(p, p.fetch.from, last);
}

void publisher_machine::answer_fetch_time(const parsed& p, std::uint64_t last) {
  auto seq = store_.seq_at_time(p.stream, p.fetch.from);
  if (!seq) {
    ++stats_.store_errors;
    refuse(p.peer, p.request, unavailable, "the journal could not be read");
    return;
  }
  const std::uint64_t from = std::max<std::uint64_t>(*seq, 1);
  if (from > last) {
    write_end(out_, p.peer, p.request, s_.incarnation, end_fields{.next_seq = last + 1, .last = last});
    ++stats_.ends;
    send_answer();
    return;
  }
  if (from > 1) {
    // Whether anything before `from` is still held: if not, retention removed messages whose
    // times are unknown and may be at or after the time asked for. Say so, rather than start
    // quietly at the oldest message held.
    bool previous_held = false;
    auto r = store_.read(p.stream, from - 1, 1, 0, [&](const journal_record_view& v) { previous_held = v.seq == from - 1; });
    if (!r && r.error() != errc::malformed) {
      ++stats_.store_errors;
      refuse(p.peer, p.request, unavailable, "the journal could not be read");
      return;
    }
    if (r && !previous_held) {
      write_gone(out_, p.peer, p.request, s_.incarnation, gone_fields{.from_seq = 1, .first_held = from});
      ++stats_.gones;
      send_answer();
      return;
    }
  }
  serve(p, from, last);
}

void publisher_machine::serve(const parsed& p, std::uint64_t from, std::uint64_t last) {
  std::optional<batch_writer> w;
  std::uint64_t first = 0;
  bool stopped = false;
  const std::size_t want = std::min<std::uint64_t>(p.fetch.max_count, last - from + 1);
  auto next = store_.read(p.stream, from, want, s_.max_batch_bytes, [&](const journal_record_view& v) {
    if (stopped) return;
    if (!w) {
      first = v.seq;
      if (v.seq != from || v.seq > last) {
        stopped = true;
        return;
      }
      w.emplace(out_, p.peer, p.request, s_.incarnation, v.seq);
    } else if (v.seq != w->next_seq() || v.seq > last) {
      stopped = true;  // a hole or past what is durable: the next FETCH finds it
      return;
    }
    w->add(static_cast<std::uint64_t>(v.timestamp_ns), v.payload);
  });
  if (w) {
    w->finish();
    stats_.replayed += w->size();
    send_answer();
    return;
  }
  gone_fields gone{.from_seq = from, .first_held = 0};
  if (first > from) {
    gone.first_held = std::min(first, last + 1);
  } else if (!next && next.error() == errc::malformed) {
    ++stats_.damaged;  // `from` itself is damaged: reported lost, the subscriber moves past it
    gone.first_held = from + 1;
  } else if (!next) {
    ++stats_.store_errors;
    refuse(p.peer, p.request, unavailable, "the journal could not be read");
    return;
  } else {
    gone.first_held = last + 1;  // everything from `from` on was removed
  }
  write_gone(out_, p.peer, p.request, s_.incarnation, gone);
  ++stats_.gones;
  send_answer();
}

void publisher_machine::send_answer() {
  // A subscriber whose queue is full, or gone, asks again after its fetch timeout.
  if (!sink_.send(replay_port, std::move(out_))) ++stats_.send_failures;
}

void publisher_machine::refuse(std::string_view peer, std::uint32_t request, std::string_view code,
                               std::string_view reason) {
  write_refuse(out_, peer, request, refuse_fields{.code = code, .reason = reason});
  ++stats_.refused;
  send_answer();
}

void publisher_machine::on_tick(detail::time_point now) {
  if (now < tick_at_) return;
  // What a failed journal read left unpublished: a quiet stream has no durable notice to come.
  for (auto& [name, st] : streams_) {
    if (st.published < st.durable) publish(name, st);
  }
  write_heartbeat(out_, s_.incarnation, static_cast<std::uint32_t>(s_.heartbeat.count()));
  if (!sink_.send(pub_port, std::move(out_))) ++stats_.send_failures;
  ++stats_.heartbeats;
  if (tick_at_ != detail::time_point::min()) send_beacons();
  for (auto& [name, st] : streams_) st.live_this_interval = false;
  tick_at_ = tick_at_ == detail::time_point::min() || tick_at_ + s_.heartbeat <= now ? now + s_.heartbeat
                                                                                      : tick_at_ + s_.heartbeat;
}

void publisher_machine::send_beacons() {
  // Every stream that sent nothing live during the interval, so that a subscriber that lost the
  // tail of a stream, or never heard of it, learns where it ends. Past max_beacons they take
  // turns, from where the last round stopped.
  std::size_t sent = 0;
  auto it = streams_.lower_bound(beacon_from_);
  for (std::size_t seen = 0; seen < streams_.size(); ++seen, ++it) {
    if (it == streams_.end()) it = streams_.begin();
    auto& [name, st] = *it;
    if (st.live_this_interval || st.durable == 0) continue;
    if (sent == s_.max_beacons) {
      beacon_from_ = name;
      return;
    }
    write_beacon(out_, name, s_.incarnation, st.published);
    if (!sink_.send(pub_port, std::move(out_))) ++stats_.send_failures;
    ++st.beacons;
    ++stats_.beacons;
    ++sent;
  }
  beacon_from_.clear();
}

std::vector<publisher_stream_stats> publisher_machine::stream_stats() const {
  std::vector<publisher_stream_stats> out;
  out.reserve(streams_.size());
  for (const auto& [name, st] : streams_) {
    out.push_back({.stream = name, .published = st.published, .live_sent = st.live_sent, .beacons = st.beacons});
  }
  return out;
}

}  // namespace fabric::frs
