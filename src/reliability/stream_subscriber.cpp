// fabric::stream_subscriber: the FRS/1 subscriber machine (frs_subscriber.hpp) driven over a SUB
// and a DEALER, with positions kept in the application's journal (table frs.cursor) when it has
// one. at_most_once and at_least_once run the handler on the subscriber's thread as messages are
// delivered; at_least_once commits positions every commit_interval. effectively_once hands each
// run of deliveries to one journal transaction that runs the handler and writes the positions;
// one is in flight at a time, and the machine holds back while max_backlog are waiting.
#include <fabric/stream.hpp>

#include "core/byte_order.hpp"
#include "core/driver.hpp"
#include "reliability/channel_support.hpp"
#include "reliability/frs_faults.hpp"
#include "reliability/frs_subscriber.hpp"

#include <fabric/completion_queue.hpp>
#include <fabric/error.hpp>
#include <fabric/pub_sub.hpp>
#include <fabric/router_dealer.hpp>

#include <atomic>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>

namespace fabric {
namespace frs::faults {
namespace {
std::atomic<bool> one_too_far{false};
}  // namespace
void set_position_one_too_far(bool on) noexcept { one_too_far = on; }
bool position_one_too_far() noexcept { return one_too_far; }
}  // namespace frs::faults

namespace {

using detail::time_point;
using std::chrono::milliseconds;

constexpr std::string_view cursor_table = "frs.cursor";
constexpr std::string_view failed_stream = "frs.failed";
// Deliveries one effectively-once transaction takes.
constexpr std::size_t max_txn_batch = 4096;

bool valid_stream(std::string_view s) noexcept {
  return !s.empty() && s.size() <= frs::max_stream_size && s.front() != '\0';
}

std::string what_of(std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return x.what();
  } catch (...) {
    return "a non-standard exception";
  }
}

// A skipped message as kept in frs.failed: the stream's length (1 octet), the stream, its
// sequence (8 octets), the reason's length (1 octet), the reason, then the body.
std::string failed_record(std::string_view stream, std::uint64_t seq, std::string_view reason, std::string_view body) {
  const std::string_view r = reason.substr(0, 255);
  std::string out;
  out.reserve(2 + stream.size() + 8 + r.size() + body.size());
  out.push_back(static_cast<char>(stream.size()));
  out += stream;
  out += detail::be64(seq);
  out.push_back(static_cast<char>(r.size()));
  out += r;
  out += body;
  return out;
}

}  // namespace

struct stream_subscriber::impl final : frs::subscriber_store, detail::machine_sink {
  // One delivery waiting for (or in) an effectively-once transaction.
  struct pending {
    std::string stream;
    std::uint64_t incarnation;
    std::uint64_t seq;
    std::uint64_t time_ns;
    bool replayed;
    frame holder;        // the frame the body is in
    std::size_t offset;  // where the body starts in it
    std::size_t size;    // the body's octets (a BATCH's entries frame holds other bodies after)
    std::uint32_t attempts = 0;
    bool skip = false;
    std::string failure{};
  };
  struct txn_work {
    std::vector<pending> items;
    std::map<std::string, frs::position> positions;  // what the transaction writes
    std::optional<std::size_t> failed_at;
    std::string failure{};
  };

  impl(context& c, journal* jr, stream_subscriber_options o)
      : options(checked(std::move(o), jr != nullptr)),
        j(jr),
        sub(c, sub_settings(options)),
        fetcher(c, dealer_settings(options)),
        machine(machine_settings(options), *this, *this),
        driver(c, "stream subscriber") {
    sub.subscribe(frs::heartbeat_topic);
    for (const auto& s : options.streams) sub.subscribe(s);
    for (const auto& p : options.prefixes) sub.subscribe(p);
    sub.connect(options.endpoint);
    fetcher.connect(options.replay_endpoint);
    driver.watch(sub, [this](message&& m, time_point now) { on_live(std::move(m), now); }, 256, [this] { ++oversized; });
    driver.watch(fetcher, [this](message&& m, time_point now) { machine.on_message(frs::fetch_port, std::move(m), now); },
                 16, [this] { ++oversized; });
    driver.watch_fd(done.fd(), [this](time_point now) { on_completions(now); });
    driver.ticks([this](time_point now) { on_tick(now); }, [this] { return next_tick(); });
    driver.commands([this](message&&) {
      take_snapshot();
      return message{};
    });
    // Begin with the streams named, and every stream this subscriber has a position for.
    const time_point now = detail::machine_clock::now();
    for (const auto& s : options.streams) machine.follow(s, now);
    for (const auto& s : stored_streams()) {
      if (follows(s)) machine.follow(s, now);  // not a stream it no longer follows
    }
  }

  ~impl() override {
    driver.stop();
    if (options.mode == stream_delivery::at_least_once) commit_positions_now();
    calls.wait();
  }

  static stream_subscriber_options checked(stream_subscriber_options o, bool with_journal) {
    const auto bad = [](const std::string& what) { throw error(errc::invalid_argument, "stream subscriber: " + what); };
    if (o.endpoint.empty() || o.replay_endpoint.empty()) bad("give both endpoints to connect to");
    if (o.mode == stream_delivery::effectively_once ? !o.on_message_in : !o.on_message)
      bad("a handler is missing for the delivery mode");
    if (o.mode != stream_delivery::at_most_once && !with_journal) bad("this delivery mode needs a journal");
    if (with_journal && (o.name.empty() || o.name.size() > 255)) bad("give a name (1..255 octets) to keep positions under");
    if (o.streams.empty() && o.prefixes.empty()) bad("give streams or prefixes to follow");
    for (const auto& s : o.streams) {
      if (!valid_stream(s)) bad("a stream name must be 1..255 octets, not beginning with 0x00");
    }
    for (const auto& p : o.prefixes) {
      if (p.size() > frs::max_stream_size) bad("a prefix is longer than a stream name can be");
    }
    if (o.max_attempts == 0) bad("max_attempts must be positive");
    if (o.start.what == stream_start::kind::from_seq && o.start.seq == 0) bad("sequences start at 1");
    if (o.commit_interval.count() < 1) bad("the commit interval must be positive");
    return o;
  }

  static frs::subscriber_settings machine_settings(const stream_subscriber_options& o) {
    frs::subscriber_settings s;
    if (o.start.what == stream_start::kind::from_seq) {
      s.start = {frs::start_position::kind::from_seq, o.start.seq};
    } else if (o.start.what == stream_start::kind::from_time) {
      const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(o.start.time.time_since_epoch()).count();
      s.start = {frs::start_position::kind::from_time, static_cast<std::uint64_t>(std::max<std::int64_t>(ns, 0))};
    }
    s.streams = o.streams;
    s.liveness = o.liveness;
    s.fetch_count = o.fetch_count;
    s.fetch_timeout = o.fetch_timeout;
    s.max_held = o.max_held;
    s.max_backlog = o.max_backlog;
    return s;
  }

  static socket_options sub_settings(const stream_subscriber_options& o) {
    socket_options s;
    s.linger = milliseconds(0);
    s.recv_hwm = o.recv_hwm;
    s.max_frames = 8;  // a LIVE is seven frames
    s.security = o.security;
    return s;
  }

  static socket_options dealer_settings(const stream_subscriber_options& o) {
    socket_options s;
    s.linger = milliseconds(0);
    s.send_hwm = 1000;
    s.recv_hwm = 1000;
    s.max_frames = 8;  // a BATCH, END or GONE is six frames, its entries packed in one
    s.security = o.security;
    return s;
  }

  void log_line(log_level level, const std::string& line) {
    if (options.log) options.log(level, line);
  }

  std::string cursor_key(std::string_view stream) const {
    std::string k;
    k.push_back(static_cast<char>(options.name.size()));
    k += options.name;
    k += stream;
    return k;
  }

  static std::string encode_position(const frs::position& p) {
    // The planted bug (frs_faults.hpp): the position written skips the next message.
    const std::uint64_t next = p.next + (frs::faults::position_one_too_far() ? 1 : 0);
    return detail::be64(p.incarnation) + detail::be64(next);
  }

  // The streams with a position under this subscriber's name.
  std::vector<std::string> stored_streams() {
    std::vector<std::string> out;
    if (!j) return out;
    const std::string prefix = cursor_key("");
    std::string after;
    for (;;) {
      auto entries = j->table_entries(cursor_table, after, 1000);
      if (!entries) throw error(entries.error(), "stream subscriber: positions could not be read");
      for (const auto& [key, value] : *entries) {
        if (!key.starts_with(prefix)) continue;
        const std::string stream = key.substr(prefix.size());
        if (valid_stream(stream)) out.push_back(stream);
      }
      if (entries->size() < 1000) break;
      after = entries->back().first;
    }
    return out;
  }

  // The live feed, filtered to the streams and prefixes followed: a SUB subscription to a stream
  // name also matches longer names.
  void on_live(message&& m, time_point now) {
    if (!m.empty() && !follows(m.view(0))) return;
    machine.on_message(frs::live_port, std::move(m), now);
  }

  bool follows(std::string_view topic) const {
    if (topic == frs::heartbeat_topic) return true;
    for (const auto& p : options.prefixes) {
      if (topic.starts_with(p)) return true;
    }
    for (const auto& s : options.streams) {
      if (topic == s) return true;
    }
    return false;
  }

  // ---- the store

  result<std::optional<frs::position>> load(std::string_view stream) override {
    using position = std::optional<frs::position>;
    if (auto it = positions.find(std::string(stream)); it != positions.end()) return position(it->second);
    if (!j) return position();
    auto v = j->get(cursor_table, cursor_key(stream));
    if (!v) return v.error();
    if (!*v) return position();
    if ((*v)->size() != 16) {
      log_line(log_level::error, "stream subscriber: a damaged position for " + std::string(stream));
      return errc::malformed;
    }
    return position(frs::position{detail::from_be64(std::string_view(**v).substr(0, 8)),
                                  detail::from_be64(std::string_view(**v).substr(8, 8))});
  }

  void deliver(const frs::delivery& d) override {
    if (options.mode == stream_delivery::effectively_once) {
      pending p{.stream = std::string(d.stream),
                .incarnation = d.incarnation,
                .seq = d.seq,
                .time_ns = d.time_ns,
                .replayed = d.replayed,
                .holder = frame(),
                .offset = static_cast<std::size_t>(d.body.data() - static_cast<const char*>(d.holder.data())),
                .size = d.body.size()};
      p.holder.copy(d.holder);  // shares the bytes; no copy
      waiting.push_back(std::move(p));
      submit_if_idle();
      return;
    }
    const std::string_view body = d.body;
    for (std::uint32_t attempt = 1;; ++attempt) {
      try {
        options.on_message(message_of(d.stream, d.seq, d.time_ns, body, d.replayed, attempt));
        break;
      } catch (...) {
        ++handler_failures;
        if (attempt < options.max_attempts) continue;
        skipped_one(d.stream, d.seq, body, what_of(std::current_exception()));
        break;
      }
    }
    if (options.mode == stream_delivery::at_least_once) {
      // The last stream's entry is kept at hand: no lookup, no string built, per message.
      if (last_position == nullptr || last_stream != d.stream) {
        last_stream = std::string(d.stream);
        last_position = &positions[last_stream];
      }
      *last_position = frs::position{d.incarnation, d.seq + 1};
      dirty = true;
    }
  }

  static stream_message message_of(std::string_view stream, std::uint64_t seq, std::uint64_t time_ns,
                                   std::string_view body, bool replayed, std::uint32_t attempt) {
    return stream_message{.stream = stream,
                          .seq = seq,
                          .time = std::chrono::system_clock::time_point(
                              std::chrono::duration_cast<std::chrono::system_clock::duration>(
                                  std::chrono::nanoseconds(time_ns))),
                          .body = body,
                          .replayed = replayed,
                          .attempt = attempt};
  }

  void skipped_one(std::string_view stream, std::uint64_t seq, std::string_view body, const std::string& why) {
    ++skipped;
    log_line(log_level::error, "stream subscriber: " + std::string(stream) + " " + std::to_string(seq) +
                                   " skipped after " + std::to_string(options.max_attempts) + " attempts: " + why);
    if (j) j->append(failed_stream, failed_record(stream, seq, why, body), journal::append_callback{});
    notify(stream_notice{.what = stream_notice::kind::handler_failed, .stream = std::string(stream), .from = seq,
                         .to = seq, .detail = why});
  }

  std::size_t backlog() const noexcept override { return waiting.size() + (in_flight ? in_flight->items.size() : 0); }

  void report(const frs::stream_event& e) override {
    stream_notice n;
    n.stream = e.stream;
    n.from = e.from;
    n.to = e.to;
    n.detail = e.detail;
    std::string text;
    switch (e.what) {
      case frs::stream_event::kind::gone:
        n.what = stream_notice::kind::gone;
        text = std::to_string(e.from) + ".." + std::to_string(e.to) + " are gone from the publisher";
        break;
      case frs::stream_event::kind::publisher_replaced:
        n.what = stream_notice::kind::publisher_replaced;
        text = "the publisher's journal was replaced; starting again from 1 (was at " + std::to_string(e.from) + ")";
        break;
      case frs::stream_event::kind::publisher_regressed:
        n.what = stream_notice::kind::publisher_regressed;
        text = "the publisher is behind this subscriber: continuing from " + std::to_string(e.to);
        break;
      case frs::stream_event::kind::publisher_lost:
        n.what = stream_notice::kind::publisher_lost;
        text = "the publisher is silent";
        break;
      case frs::stream_event::kind::publisher_back:
        n.what = stream_notice::kind::publisher_back;
        text = "the publisher is back";
        break;
      case frs::stream_event::kind::refused:
        n.what = stream_notice::kind::refused;
        text = "refused: " + e.detail;
        break;
    }
    log_line(log_level::warning, "stream subscriber: " + (e.stream.empty() ? std::string() : e.stream + ": ") + text);
    notify(n);
  }

  void notify(const stream_notice& n) {
    if (!options.on_notice) return;
    try {
      options.on_notice(n);
    } catch (...) {
      log_line(log_level::error, "stream subscriber: on_notice threw: " + what_of(std::current_exception()));
    }
  }

  // ---- the sink

  result<void> send(detail::port to, message&& m) override {
    if (to == frs::fetch_port) return fetcher.try_send(std::move(m));
    return errc::not_supported;  // nothing goes out on the SUB
  }

  // ---- positions and commits (the machine's thread)

  void on_tick(time_point now) {
    machine.on_tick(now);
    if (options.mode == stream_delivery::at_least_once && now >= commit_at) {
      commit_at = now + options.commit_interval;
      commit_positions();
    }
    if (options.mode == stream_delivery::effectively_once && !in_flight && now >= retry_at) submit_if_idle();
  }

  time_point next_tick() const {
    time_point at = machine.next_tick();
    if (options.mode == stream_delivery::at_least_once && (dirty || positions_in_flight))
      at = std::min(at, commit_at);
    if (options.mode == stream_delivery::effectively_once && !in_flight && !waiting.empty())
      at = std::min(at, retry_at);
    return at;
  }

  // at_least_once: the positions reached, written without waiting; one write in flight.
  void commit_positions() {
    if (!dirty || positions_in_flight || !j) return;
    dirty = false;
    positions_in_flight = true;
    auto work = std::make_shared<std::vector<std::pair<std::string, std::string>>>();
    for (const auto& [stream, p] : positions) work->emplace_back(cursor_key(stream), encode_position(p));
    calls.hold();
    j->transact(
        [work](journal_txn& t) {
          for (const auto& [k, v] : *work) t.put(cursor_table, k, v);
        },
        [this](result<void> outcome, std::exception_ptr) {
          done.push(0, outcome ? result<std::uint64_t>(std::uint64_t{1}) : result<std::uint64_t>(outcome.error()));
          calls.release();
        });
  }

  void commit_positions_now() {
    if (!j || !dirty) return;
    auto r = j->transact([this](journal_txn& t) {
      for (const auto& [stream, p] : positions) t.put(cursor_table, cursor_key(stream), encode_position(p));
    });
    if (!r) log_line(log_level::error, "stream subscriber: positions not written at stop: " + r.error().message());
  }

  // effectively_once: the next run of deliveries, in one transaction with the positions.
  void submit_if_idle() {
    if (in_flight || waiting.empty()) return;
    in_flight = std::make_shared<txn_work>();
    const std::size_t n = std::min(waiting.size(), max_txn_batch);
    in_flight->items.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
      auto& p = waiting.front();
      in_flight->positions[p.stream] = frs::position{p.incarnation, p.seq + 1};
      in_flight->items.push_back(std::move(p));
      waiting.pop_front();
    }
    submit(in_flight);
  }

  void submit(const std::shared_ptr<txn_work>& w) {
    calls.hold();
    j->transact(
        [this, w](journal_txn& t) {
          w->failed_at.reset();
          for (std::size_t i = 0; i < w->items.size(); ++i) {
            pending& p = w->items[i];
            const std::string_view body(static_cast<const char*>(p.holder.data()) + p.offset, p.size);
            if (p.skip) {
              t.append(failed_stream, failed_record(p.stream, p.seq, p.failure, body));
              continue;
            }
            try {
              options.on_message_in(message_of(p.stream, p.seq, p.time_ns, body, p.replayed, p.attempts + 1), t);
            } catch (...) {
              w->failed_at = i;
              w->failure = what_of(std::current_exception());
              throw;
            }
          }
          for (const auto& [stream, pos] : w->positions) t.put(cursor_table, cursor_key(stream), encode_position(pos));
        },
        [this](result<void> outcome, std::exception_ptr thrown) {
          std::uint64_t code = 1;
          if (thrown) code = 2;
          done.push(1, outcome ? result<std::uint64_t>(code) : result<std::uint64_t>(outcome.error()));
          calls.release();
        });
  }

  void on_completions(time_point now) {
    done.drain([&](completion_queue::completion c) {
      if (c.token == 0) {  // at_least_once positions
        positions_in_flight = false;
        if (c.seq) {
          ++commits;
        } else {
          ++commit_failures;
          dirty = true;
          log_line(log_level::error, "stream subscriber: positions not written: " + c.seq.error().message());
        }
        return;
      }
      if (!in_flight) return;
      if (!c.seq) {
        ++commit_failures;
        log_line(log_level::error, "stream subscriber: a commit failed: " + c.seq.error().message());
        retry_at = now + milliseconds(100);
        resubmit_later();
        return;
      }
      if (*c.seq == 2) {
        // A handler threw inside the transaction, so nothing was kept: try again, and give the
        // message up once it has failed max_attempts times.
        ++handler_failures;
        if (in_flight->failed_at) {
          pending& p = in_flight->items[*in_flight->failed_at];
          if (++p.attempts >= options.max_attempts) {
            p.skip = true;
            p.failure = in_flight->failure;
            skipped_one_reported(p);
          }
        }
        submit(in_flight);
        return;
      }
      ++commits;
      in_flight.reset();
      submit_if_idle();
      machine.on_drained(now);
    });
  }

  // A failed commit: its deliveries go back to the front of the queue, to be tried again.
  void resubmit_later() {
    auto w = std::move(in_flight);
    for (auto it = w->items.rbegin(); it != w->items.rend(); ++it) waiting.push_front(std::move(*it));
  }

  void skipped_one_reported(const pending& p) {
    ++skipped;
    log_line(log_level::error, "stream subscriber: " + p.stream + " " + std::to_string(p.seq) + " skipped after " +
                                   std::to_string(options.max_attempts) + " attempts: " + p.failure);
    notify(stream_notice{.what = stream_notice::kind::handler_failed, .stream = p.stream, .from = p.seq, .to = p.seq,
                         .detail = p.failure});
  }

  void take_snapshot() {
    stream_subscriber_stats s;
    const auto& m = machine.stats();
    s.publisher_alive = m.publisher_alive;
    s.received = m.received;
    s.malformed = m.malformed + oversized;
    s.protocol_errors = m.protocol_errors;
    s.stale = m.stale;
    s.fetches = m.fetches;
    s.fetch_timeouts = m.fetch_timeouts;
    s.publisher_losses = m.publisher_losses;
    s.publisher_replacements = m.publisher_replacements;
    s.commits = commits;
    s.commit_failures = commit_failures;
    s.handler_failures = handler_failures;
    s.skipped = skipped;
    for (auto& st : machine.stream_stats()) {
      s.streams.push_back({.stream = std::move(st.stream),
                           .state = std::move(st.state),
                           .next = st.next,
                           .delivered = st.delivered,
                           .replayed = st.replayed,
                           .duplicates = st.duplicates,
                           .gaps = st.gaps,
                           .fetches = st.fetches,
                           .gone = st.gone,
                           .held = st.held});
    }
    std::lock_guard lock(snapshot_mu);
    snapshot = std::move(s);
  }

  stream_subscriber_options options;
  journal* j;
  subscriber sub;
  dealer fetcher;
  completion_queue done;

  // Positions reached (at_most_once, at_least_once): what load() answers for a stream met again.
  std::unordered_map<std::string, frs::position> positions;  // at_least_once
  frs::position* last_position = nullptr;  // positions' entry of the last stream delivered
  std::string last_stream;
  bool dirty = false;
  bool positions_in_flight = false;
  time_point commit_at{};

  std::deque<pending> waiting;          // effectively_once: delivered, not yet in a transaction
  std::shared_ptr<txn_work> in_flight;  // effectively_once: the transaction running
  time_point retry_at{};

  std::uint64_t commits = 0;
  std::uint64_t commit_failures = 0;
  std::uint64_t handler_failures = 0;
  std::uint64_t skipped = 0;
  std::uint64_t oversized = 0;
  std::mutex snapshot_mu;
  stream_subscriber_stats snapshot;
  detail::journal_calls calls;

  frs::subscriber_machine machine;
  detail::driver driver;  // last: stopped before what it drives is destroyed
};

stream_subscriber::stream_subscriber(context& ctx, stream_subscriber_options options, deferred_start_t)
    : impl_(std::make_unique<impl>(ctx, nullptr, std::move(options))) {}

stream_subscriber::stream_subscriber(context& ctx, stream_subscriber_options options)
    : stream_subscriber(ctx, std::move(options), deferred_start) {
  impl_->driver.start();
}

stream_subscriber::stream_subscriber(context& ctx, journal& j, stream_subscriber_options options, deferred_start_t)
    : impl_(std::make_unique<impl>(ctx, &j, std::move(options))) {}

stream_subscriber::stream_subscriber(context& ctx, journal& j, stream_subscriber_options options)
    : stream_subscriber(ctx, j, std::move(options), deferred_start) {
  impl_->driver.start();
}

stream_subscriber::~stream_subscriber() = default;

void stream_subscriber::start() { impl_->driver.start(); }
result<void> stream_subscriber::run() { return impl_->driver.run(); }
void stream_subscriber::request_stop() noexcept { impl_->driver.request_stop(); }
void stream_subscriber::attach(reactor& r) { impl_->driver.attach(r); }
bool stream_subscriber::detach(reactor& r) noexcept { return impl_->driver.detach(r); }
bool stream_subscriber::stop(std::chrono::milliseconds timeout) noexcept {
  return impl_ ? impl_->driver.stop(timeout) : true;
}
bool stream_subscriber::running() const noexcept { return impl_->driver.running(); }
std::exception_ptr stream_subscriber::failure() const noexcept { return impl_->driver.failure(); }

stream_subscriber_stats stream_subscriber::stats(std::chrono::milliseconds timeout) {
  auto answer = impl_->driver.call(message{}, timeout);
  if (!answer) {
    if (answer.is(errc::timeout)) throw error(errc::timeout, "stream subscriber: its thread did not answer");
    throw error(errc::invalid_state, "stream subscriber: not running");
  }
  std::lock_guard lock(impl_->snapshot_mu);
  return impl_->snapshot;
}

}  // namespace fabric
