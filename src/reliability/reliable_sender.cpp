// fabric::reliable_sender: the FRC/1 sender machine (frc_sender.hpp) driven over a DEALER, with
// its store over the application's journal. Application threads append to the outbox; the
// journal's completions reach the machine's thread through a completion queue, so the machine
// only ever sends what is durable.
#include <fabric/reliable_channel.hpp>

#include "core/driver.hpp"
#include "reliability/channel_support.hpp"
#include "reliability/frc_sender.hpp"

#include <fabric/completion_queue.hpp>
#include <fabric/error.hpp>
#include <fabric/log.hpp>
#include <fabric/router_dealer.hpp>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <limits>
#include <mutex>
#include <unordered_map>

namespace fabric {
namespace {

using detail::time_point;
using std::chrono::milliseconds;

constexpr std::string_view peers_table = "frc.peers";
// A receiver name and a stream together, so that every name derived from them stays within the
// journal's 255-byte bound ("frc.acked/" + receiver + "/" + stream).
constexpr std::size_t max_receiver_and_stream = 240;

// How long acknowledged cursors wait to be written, gathering every ACK that arrives meanwhile.
constexpr std::chrono::milliseconds ack_flush_interval{100};

// Completion-queue tokens: the kind in the top byte, the channel below.
enum class token_kind : std::uint64_t { appended = 1, withdrawn = 2, acknowledged = 3, poke = 4 };
constexpr std::uint64_t make_token(token_kind k, std::size_t ch) {
  return (static_cast<std::uint64_t>(k) << 56) | static_cast<std::uint64_t>(ch);
}
constexpr token_kind kind_of(std::uint64_t token) { return static_cast<token_kind>(token >> 56); }
constexpr std::size_t channel_of(std::uint64_t token) {
  return static_cast<std::size_t>(token & ((std::uint64_t{1} << 56) - 1));
}

}  // namespace

struct reliable_sender::impl final : frc::sender_store, detail::machine_sink {
  // What application threads and the machine's thread share about one channel.
  struct shared_channel {
    std::string stream;
    std::string outbox;
    std::string cursor;
    std::string peer_key;
    std::atomic<std::uint64_t> submitted{0};  // appends handed to the journal, durable or not
    std::atomic<std::uint64_t> acked{0};      // as the machine last published
    std::atomic<bool> failed{false};
  };

  impl(context& c, journal& jr, reliable_sender_options o)
      : options(checked(std::move(o))),
        ctx(c),
        j(jr),
        socket(ctx, socket_settings(options)),
        machine(frc::sender_settings{.name = options.name,
                                     .incarnation = detail::journal_incarnation(jr),
                                     .heartbeat = options.heartbeat,
                                     .liveness = options.liveness,
                                     .reconnect_initial = options.reconnect_interval,
                                     .reconnect_max = options.reconnect_interval_max,
                                     .retransmit_interval = options.retransmit_interval,
                                     .max_in_flight = options.max_in_flight},
                *this, *this),
        driver(ctx, "reliable sender") {
    // Every channel this journal holds for the receiver resumes, with those the options name.
    const std::string prefix = "frc.out/" + options.receiver + "/";
    auto names = j.streams();
    if (!names) throw error(errc::io_error, "reliable sender: cannot list the journal's streams: " + names.error().message());
    for (const auto& n : *names) {
      if (n.size() > prefix.size() && n.compare(0, prefix.size(), prefix) == 0) (void)open_channel(n.substr(prefix.size()));
    }
    for (const auto& s : options.streams) {
      auto r = open_channel(s);
      if (!r) throw error(errc::invalid_argument, "reliable sender: bad stream name \"" + s + "\"");
    }
    sync_channels(detail::machine_clock::now());

    driver.watch(
        socket, [this](message&& m, time_point now) { machine.on_message(std::move(m), now); }, 256,
        [this] { ++oversized; });
    driver.watch_fd(done.fd(), [this](time_point now) { on_completions(now); });
    driver.ticks(
        [this](time_point now) {
          machine.on_tick(now);
          if (now >= poll_at) poll(now);
          if (now >= ack_due && !ack_in_flight) write_acks();
        },
        [this] { return std::min({machine.next_tick(), poll_at, ack_due}); });
    driver.after_work([this] { publish(); });
    driver.commands([this](message&&) {
      take_snapshot();
      return message{};
    });
  }

  ~impl() override {
    driver.stop();
    calls.wait();
    // The last cursors, so that a restart sends again as little as it can.
    write_acks();
    calls.wait();
  }

  static reliable_sender_options checked(reliable_sender_options o) {
    if (o.name.empty() || o.name.size() > frc::max_name_size)
      throw error(errc::invalid_argument, "reliable sender: the name must be 1 to 255 bytes");
    if (o.receiver.empty() || o.receiver.find('/') != std::string::npos || o.receiver.size() >= max_receiver_and_stream)
      throw error(errc::invalid_argument, "reliable sender: the receiver's name must be 1 to 239 bytes, without '/'");
    if (o.endpoint.empty()) throw error(errc::invalid_argument, "reliable sender: give the receiver's endpoint");
    if (o.max_backlog == 0) throw error(errc::invalid_argument, "reliable sender: max_backlog must be positive");
    return o;
  }

  static socket_options socket_settings(const reliable_sender_options& o) {
    socket_options s;
    s.linger = milliseconds(0);  // a replaced connection's queue is dropped, never delivered late
    s.send_hwm = 0;              // bounded by the receiver's credit and max_in_flight
    s.recv_hwm = 0;
    // An ACK with every expired sequence: header, command, link, taken, credit, then the list.
    s.max_frames = 5 + frc::max_entries;
    s.reconnect_interval = o.reconnect_interval;
    s.reconnect_interval_max = o.reconnect_interval_max;
    s.security = o.security;
    return s;
  }

  // ---- channels

  // Opens (or finds) the channel of `stream`, from any thread.
  // Opens (or finds) the channel of `stream`, from any thread. `in_transaction`: called inside a
  // transaction of this journal, on its writer thread, where the journal must not be called;
  // the channel is then new to the journal too (every outbox the journal held was opened at
  // construction), so it starts from nothing.
  result<std::size_t> open_channel(std::string_view stream, bool in_transaction = false) {
    std::lock_guard lock(channels_mu);
    if (const auto it = index.find(std::string(stream)); it != index.end()) return it->second;
    if (stream.empty() || stream.size() + options.receiver.size() > max_receiver_and_stream)
      return errc::invalid_argument;
    auto c = std::make_unique<shared_channel>();
    c->stream = std::string(stream);
    c->outbox = "frc.out/" + options.receiver + "/" + c->stream;
    c->cursor = "frc.acked/" + options.receiver + "/" + c->stream;
    c->peer_key = options.receiver + "/" + c->stream;
    if (!in_transaction) {
      auto acked = j.cursor(c->cursor);
      if (!acked) return acked.error();
      auto last = j.last_seq(c->outbox);
      if (!last) return last.error();
      c->acked = acked->value_or(0);
      c->submitted = std::max(last->value_or(0), c->acked.load());
    }
    shared.push_back(std::move(c));
    index.emplace(std::string(stream), shared.size() - 1);
    return shared.size() - 1;
  }

  shared_channel& channel(std::size_t ch) {
    std::lock_guard lock(channels_mu);
    return *shared[ch];
  }

  // On the machine's thread: adds to the machine the channels opened since.
  void sync_channels(time_point now) {
    for (;;) {
      shared_channel* c = nullptr;
      {
        std::lock_guard lock(channels_mu);
        if (machine.channels() >= shared.size()) return;
        c = shared[machine.channels()].get();
      }
      // The outbox keeps what the receiver has not acknowledged; the rest is trimmed. The journal
      // trims only beyond a limit (a cursor only holds records back), so the limit is the least
      // there is, one record: everything acknowledged goes but the newest record.
      auto kept = j.set_retention(c->outbox, retention_policy{.max_records = 1, .ack_cursors = {c->cursor}});
      if (!kept) {
        ++journal_errors;
        log_line(log_level::error, "reliable sender: cannot set the retention of " + c->outbox + ": " +
                                       kept.error().message() + "; acknowledged messages stay in it");
      }
      auto acked = j.cursor(c->cursor);
      auto last = j.last_seq(c->outbox);
      auto seen = j.get(peers_table, c->peer_key);
      const std::uint64_t receiver_seen = seen && *seen ? detail::from_be64(**seen) : 0;
      const std::uint64_t a = acked && *acked ? **acked : 0;
      const std::uint64_t l = std::max(a, last && *last ? **last : 0);
      machine.add_channel(frc::channel_start{.stream = c->stream, .acked = a, .last = l, .receiver_seen = receiver_seen},
                          now);
    }
  }

  // ---- sending, from any thread

  struct admitted {
    std::size_t ch;
    shared_channel* c;
  };

  // Opens the channel if new and takes room for `n` messages in its backlog.
  result<admitted> admit(std::string_view stream, std::uint64_t n, bool may_block,
                         std::chrono::steady_clock::time_point deadline) {
    auto ch = open_channel(stream);
    if (!ch) return ch.error();
    shared_channel& c = channel(*ch);
    if (c.failed) return errc::refused;
    const auto full = [&] {
      const std::uint64_t sub = c.submitted.load();
      return sub - std::min(sub, c.acked.load()) + n > options.max_backlog;
    };
    if (full()) {
      if (!may_block || options.overflow == overflow_policy::fail) return errc::back_pressure;
      std::unique_lock lock(space_mu);
      ++waiting;
      const bool room = space.wait_until(lock, deadline, [&] { return !full() || c.failed; });
      --waiting;
      if (c.failed) return errc::refused;
      if (!room) return errc::timeout;
    }
    c.submitted += n;
    return admitted{*ch, &c};
  }

  std::int64_t expiry(const send_options& o) const {
    return o.ttl.count() > 0 ? detail::wall_now_ns() + std::chrono::duration_cast<std::chrono::nanoseconds>(o.ttl).count() : 0;
  }

  static bool delayed(const send_options& o) {
    const auto at = std::chrono::duration_cast<std::chrono::nanoseconds>(o.deliver_at.time_since_epoch()).count();
    return o.deliver_at.time_since_epoch().count() != 0 && at > detail::wall_now_ns();
  }

  // Once the journal has the messages: the machine learns of them, then the application.
  journal::append_callback completion(admitted a, std::uint64_t n, send_callback cb) {
    calls.hold();
    return [this, a, n, cb = std::move(cb)](result<std::uint64_t> r) {
      if (!r) {
        a.c->submitted -= n;
        done.push(make_token(token_kind::poke, a.ch), r);
      } else {
        done.push(make_token(token_kind::appended, a.ch), *r + n - 1);
      }
      cb(std::move(r));
      calls.release();
    };
  }

  void submit(admitted a, std::string_view body, const send_options& o, send_callback cb) {
    thread_local std::string payload;  // one encoding buffer per sending thread
    frc::encode_outbox(payload, expiry(o), body);
    if (delayed(o)) {
      // A delayed message gets its sequence when due; the sender sees it by polling the outbox.
      --a.c->submitted;
      const auto at = std::chrono::duration_cast<std::chrono::nanoseconds>(o.deliver_at.time_since_epoch()).count();
      auto id = j.schedule(a.c->outbox, payload, at);
      cb(id ? result<std::uint64_t>(std::uint64_t{0}) : result<std::uint64_t>(id.error()));
      return;
    }
    j.append(a.c->outbox, payload, completion(a, 1, std::move(cb)));
  }

  void submit_batch(admitted a, std::span<const std::string_view> bodies, const send_options& o, send_callback cb) {
    const std::int64_t expires = expiry(o);
    std::string encoded;
    std::size_t total = 0;
    for (const auto b : bodies) total += frc::outbox_overhead + b.size();
    encoded.reserve(total);
    std::vector<std::string_view> payloads;
    payloads.reserve(bodies.size());
    std::string one;
    for (const auto b : bodies) {
      frc::encode_outbox(one, expires, b);
      encoded.append(one);
    }
    std::size_t at = 0;
    for (const auto b : bodies) {
      payloads.emplace_back(encoded.data() + at, frc::outbox_overhead + b.size());
      at += frc::outbox_overhead + b.size();
    }
    j.append_batch(a.c->outbox, payloads, completion(a, bodies.size(), std::move(cb)));
  }

  // ---- the store, on the machine's thread

  result<std::uint64_t> read(std::size_t ch, std::uint64_t from, std::uint64_t to, std::size_t max_bytes,
                             std::vector<frc::outbox_record>& out) override {
    shared_channel& c = channel(ch);
    const std::size_t want = static_cast<std::size_t>(to - from + 1);
    std::size_t seen = 0;
    std::uint64_t last_seen = 0;
    // Each body is copied once, from the journal's map into its frame.
    auto next = j.read_views(c.outbox, from, want, max_bytes, [&](const journal_record_view& r) {
      ++seen;
      last_seen = r.seq;
      if (r.seq > to) return;
      std::int64_t expires = 0;
      std::string_view body;
      if (!frc::decode_outbox(r.payload, expires, body)) {
        ++journal_errors;  // not a record this sender wrote: skipped as withdrawn
        return;
      }
      out.push_back(frc::outbox_record{r.seq, expires, frame(body.data(), body.size())});
    });
    if (!next) {
      if (next.is(errc::malformed))
        log_line(log_level::error, "reliable sender: outbox " + c.outbox + " has a damaged record at or after " +
                                       std::to_string(from));
      return next.error();
    }
    // Cut short by bytes, or the stream ends: what was read is known, read on from there.
    if (seen > 0 && seen < want && last_seen < to) return last_seen;
    return to;
  }

  std::uint64_t oldest_held(std::size_t ch) override {
    shared_channel& c = channel(ch);
    auto chunk = j.read(c.outbox, 1, 1, 0);
    if (chunk && !chunk->records.empty()) return chunk->records.front().seq;
    return machine.last(ch) + 1;
  }

  void acknowledge(std::size_t ch, std::uint64_t acked, std::span<const std::uint64_t> expired) override {
    auto& p = pending_acks[ch];
    p.acked = std::max(p.acked, acked);
    p.expired.insert(p.expired.end(), expired.begin(), expired.end());
    // The cursor is written a little later, with whatever else was acknowledged meanwhile: a
    // commit of its own per ACK would put an fsync between consecutive sends. Until it is
    // written, a restart only sends again what the receiver drops as duplicates.
    if (ack_due == time_point::max()) ack_due = detail::machine_clock::now() + ack_flush_interval;
  }

  // One transaction at a time moves the cursors and dead-letters what expired at the receiver,
  // so the cursor never passes an expiry that was not recorded.
  void write_acks() {
    ack_due = time_point::max();
    if (pending_acks.empty()) return;
    struct work {
      std::string outbox;
      std::string cursor;
      std::uint64_t acked;
      std::vector<std::uint64_t> expired;
    };
    auto batch = std::make_shared<std::vector<work>>();
    for (auto& [ch, p] : pending_acks) {
      shared_channel& c = channel(ch);
      batch->push_back(work{c.outbox, c.cursor, p.acked, std::move(p.expired)});
    }
    pending_acks.clear();
    ack_in_flight = true;
    calls.hold();
    j.transact(
        [batch](journal_txn& t) {
          for (const auto& w : *batch) {
            for (const std::uint64_t s : w.expired) (void)t.dead_letter(w.outbox, s, frc::expired_at_receiver_reason, 1);
            t.set_cursor(w.cursor, w.acked);
          }
        },
        [this](result<void> r, std::exception_ptr thrown) {
          done.push(make_token(token_kind::acknowledged, 0),
                    r && !thrown ? result<std::uint64_t>(std::uint64_t{0}) : result<std::uint64_t>(errc::io_error));
          calls.release();
        });
  }

  void withdraw(std::size_t ch, std::uint64_t first, std::uint64_t last, std::string_view reason) override {
    shared_channel& c = channel(ch);
    calls.hold();
    j.transact(
        [outbox = c.outbox, first, last, why = std::string(reason)](journal_txn& t) {
          for (std::uint64_t s = first; s <= last; ++s) (void)t.dead_letter(outbox, s, why, 0);
        },
        [this, ch, last](result<void> r, std::exception_ptr thrown) {
          done.push(make_token(token_kind::withdrawn, ch),
                    r && !thrown ? result<std::uint64_t>(last) : result<std::uint64_t>(errc::io_error));
          calls.release();
        });
  }

  void receiver_seen(std::size_t ch, std::uint64_t incarnation) override {
    calls.hold();
    j.transact([key = channel(ch).peer_key, bytes = detail::be64(incarnation)](journal_txn& t) { t.put(peers_table, key, bytes); },
               [this](result<void>, std::exception_ptr) { calls.release(); });
  }

  std::int64_t wall_ns() const override { return detail::wall_now_ns(); }

  // ---- the sink, on the machine's thread

  result<void> send(detail::port, message&& m) override { return socket.try_send(std::move(m)); }

  void close(detail::port) noexcept override {
    if (!connected) return;
    try {
      socket.disconnect(options.endpoint);
    } catch (const std::exception&) {  // already gone
    }
    connected = false;
  }

  result<void> open(detail::port) override {
    try {
      socket.connect(options.endpoint);
    } catch (const error& e) {
      return e.code();
    }
    connected = true;
    return {};
  }

  // ---- the machine's thread

  void on_completions(time_point now) {
    sync_channels(now);
    done.drain([&](completion_queue::completion c) {
      const std::size_t ch = channel_of(c.token);
      switch (kind_of(c.token)) {
        case token_kind::appended:
          if (c.seq) {
            if (appended.size() <= ch) appended.resize(ch + 1, 0);
            appended[ch] = std::max(appended[ch], *c.seq);
          }
          break;
        case token_kind::withdrawn:
          if (c.seq) machine.on_withdrawn(ch, *c.seq, now);
          else ++journal_errors;  // the machine withdraws again after its next read
          break;
        case token_kind::acknowledged:
          ack_in_flight = false;
          if (!c.seq) ++journal_errors;
          if (!pending_acks.empty() && ack_due == time_point::max()) ack_due = now + ack_flush_interval;
          break;
        case token_kind::poke:
          poll_at = now;
          break;
      }
    });
    sync_channels(now);
    for (std::size_t ch = 0; ch < appended.size(); ++ch) {
      if (appended[ch] != 0 && ch < machine.channels()) machine.on_appended(ch, appended[ch], now);
      appended[ch] = 0;
    }
    if (poll_at <= now) poll(now);
  }

  // Catches what no completion announced: delayed messages that fell due, and outbox appends
  // made in the application's own transactions.
  void poll(time_point now) {
    sync_channels(now);
    for (std::size_t ch = 0; ch < machine.channels(); ++ch) {
      shared_channel& c = channel(ch);
      auto last = j.last_seq(c.outbox);
      if (!last || !*last) continue;
      machine.on_appended(ch, **last, now);
      // Messages appended in the application's own transactions count in the backlog too.
      std::uint64_t sub = c.submitted.load();
      while (sub < **last && !c.submitted.compare_exchange_weak(sub, **last)) {
      }
    }
    poll_at = now + std::min<detail::machine_clock::duration>(milliseconds(250), options.retransmit_interval);
  }

  // After every batch: what application threads wait on.
  void publish() {
    bool moved = false;
    for (std::size_t ch = 0; ch < machine.channels(); ++ch) {
      shared_channel& c = channel(ch);
      const std::uint64_t a = machine.acked(ch);
      if (published.size() <= ch) published.resize(ch + 1, 0);
      if (c.acked.load(std::memory_order_relaxed) < a) {
        c.acked = a;
        moved = true;
      }
      if (published[ch] < a) {
        published[ch] = a;
        if (options.on_acknowledged) options.on_acknowledged(c.stream, a);
      }
      if (machine.state(ch) == frc::link_state::failed && !c.failed) {
        c.failed = true;
        moved = true;
      }
    }
    if (moved && waiting > 0) {
      std::lock_guard lock(space_mu);
      space.notify_all();
    }
  }

  void take_snapshot() {
    reliable_sender_stats s;
    const frc::sender_stats& m = machine.stats();
    s.connected = machine.connected();
    s.connections = m.connections;
    s.connections_lost = m.connections_lost;
    s.malformed = m.malformed + oversized;
    s.protocol_errors = m.protocol_errors;
    s.journal_errors = journal_errors;
    const std::int64_t wall = detail::wall_now_ns();
    for (std::size_t ch = 0; ch < machine.channels(); ++ch) {
      const frc::sender_channel_stats c = machine.channel_stats(ch);
      sender_channel_info i;
      i.stream = c.stream;
      i.state = std::string(frc::to_string(c.state));
      i.last = c.last;
      i.acknowledged = c.acked;
      i.in_flight = c.in_flight;
      i.backlog = c.backlog;
      i.sent = c.messages_sent;
      i.retransmitted = c.retransmitted;
      i.skipped = c.skipped;
      i.dead_lettered = c.withdrawn + c.expired_at_receiver;
      i.receiver_resets = c.receiver_resets;
      i.receiver_regressions = c.receiver_regressions;
      i.refusals = c.refusals;
      i.refusal = c.refusal;
      if (c.backlog > 0) {
        auto chunk = j.read(channel(ch).outbox, c.acked + 1, 1, 0);
        if (chunk && !chunk->records.empty())
          i.lag = milliseconds(std::max<std::int64_t>(0, (wall - chunk->records.front().timestamp_ns) / 1'000'000));
      }
      s.channels.push_back(std::move(i));
    }
    std::lock_guard lock(snapshot_mu);
    snapshot = std::move(s);
  }

  void log_line(log_level level, const std::string& line) {
    if (options.log) options.log(level, line);
  }

  reliable_sender_options options;
  context& ctx;
  journal& j;
  dealer socket;
  completion_queue done;
  bool connected = false;

  std::mutex channels_mu;  // guards shared and index (the channels themselves are stable)
  std::deque<std::unique_ptr<shared_channel>> shared;
  std::unordered_map<std::string, std::size_t> index;

  std::mutex space_mu;  // with `space`: senders waiting for the backlog to shrink
  std::condition_variable space;
  std::atomic<int> waiting{0};

  struct pending_ack {
    std::uint64_t acked = 0;
    std::vector<std::uint64_t> expired;
  };
  std::unordered_map<std::size_t, pending_ack> pending_acks;
  bool ack_in_flight = false;
  time_point ack_due = time_point::max();  // when the pending cursors are written
  std::vector<std::uint64_t> appended;
  std::vector<std::uint64_t> published;  // acked as last told to on_acknowledged
  std::uint64_t journal_errors = 0;
  std::uint64_t oversized = 0;  // messages over the frame bound, dropped by the socket
  time_point poll_at{};

  std::mutex snapshot_mu;
  reliable_sender_stats snapshot;

  detail::journal_calls calls;  // journal calls whose completions refer to this

  frc::sender_machine machine;
  detail::driver driver;  // last: stopped before what it drives is destroyed
};

reliable_sender::reliable_sender(context& ctx, journal& j, reliable_sender_options options, deferred_start_t)
    : impl_(std::make_unique<impl>(ctx, j, std::move(options))) {}

reliable_sender::reliable_sender(context& ctx, journal& j, reliable_sender_options options)
    : reliable_sender(ctx, j, std::move(options), deferred_start) {
  impl_->driver.start();
}

reliable_sender::~reliable_sender() = default;

result<std::uint64_t> reliable_sender::send(std::string_view stream, std::string_view body, const send_options& o) {
  const auto deadline = std::chrono::steady_clock::now() + impl_->options.send_timeout;
  auto a = impl_->admit(stream, 1, true, deadline);
  if (!a) return a.error();
  auto promise = std::make_shared<std::promise<result<std::uint64_t>>>();
  auto future = promise->get_future();
  impl_->submit(*a, body, o, [promise](result<std::uint64_t> r) { promise->set_value(std::move(r)); });
  if (future.wait_until(deadline) != std::future_status::ready) return errc::timeout;
  return future.get();
}

void reliable_sender::send_async(std::string_view stream, std::string_view body, send_callback done,
                                 const send_options& o) {
  auto a = impl_->admit(stream, 1, false, {});
  if (!a) {
    done(a.error());
    return;
  }
  impl_->submit(*a, body, o, std::move(done));
}

std::future<result<std::uint64_t>> reliable_sender::send_async(std::string_view stream, std::string_view body,
                                                               const send_options& o) {
  auto promise = std::make_shared<std::promise<result<std::uint64_t>>>();
  auto future = promise->get_future();
  send_async(stream, body, [promise](result<std::uint64_t> r) { promise->set_value(std::move(r)); }, o);
  return future;
}

void reliable_sender::send_batch(std::string_view stream, std::span<const std::string_view> bodies, send_callback done,
                                 const send_options& o) {
  if (bodies.empty()) {
    done(errc::invalid_argument);
    return;
  }
  if (o.deliver_at.time_since_epoch().count() != 0) {
    done(errc::invalid_argument);  // a delayed message is sent on its own
    return;
  }
  if (bodies.size() > impl_->j.options().max_batch) {
    done(errc::too_large);
    return;
  }
  auto a = impl_->admit(stream, bodies.size(), false, {});
  if (!a) {
    done(a.error());
    return;
  }
  impl_->submit_batch(*a, bodies, o, std::move(done));
}

std::future<result<std::uint64_t>> reliable_sender::send_batch(std::string_view stream,
                                                               std::span<const std::string_view> bodies,
                                                               const send_options& o) {
  auto promise = std::make_shared<std::promise<result<std::uint64_t>>>();
  auto future = promise->get_future();
  send_batch(stream, bodies, [promise](result<std::uint64_t> r) { promise->set_value(std::move(r)); }, o);
  return future;
}

std::uint64_t reliable_sender::send(journal_txn& t, std::string_view stream, std::string_view body,
                                    const send_options& o) {
  auto ch = impl_->open_channel(stream, true);
  if (!ch) throw error(errc::invalid_argument, "reliable sender: bad stream name");
  if (o.deliver_at.time_since_epoch().count() != 0)
    throw error(errc::invalid_argument, "reliable sender: a delayed message cannot be sent in a transaction");
  return t.append(impl_->channel(*ch).outbox, frc::encode_outbox(impl_->expiry(o), body));
}

void reliable_sender::flush() { impl_->done.push(make_token(token_kind::poke, 0), std::uint64_t{0}); }

void reliable_sender::start() { impl_->driver.start(); }
result<void> reliable_sender::run() { return impl_->driver.run(); }
void reliable_sender::request_stop() noexcept { impl_->driver.request_stop(); }
void reliable_sender::attach(reactor& r) { impl_->driver.attach(r); }
bool reliable_sender::detach(reactor& r) noexcept { return impl_->driver.detach(r); }
bool reliable_sender::stop(std::chrono::milliseconds timeout) noexcept {
  return impl_ ? impl_->driver.stop(timeout) : true;
}
bool reliable_sender::running() const noexcept { return impl_->driver.running(); }
std::exception_ptr reliable_sender::failure() const noexcept { return impl_->driver.failure(); }

reliable_sender_stats reliable_sender::stats(std::chrono::milliseconds timeout) {
  auto answer = impl_->driver.call(message{}, timeout);
  if (!answer) {
    if (answer.is(errc::timeout)) throw error(errc::timeout, "reliable sender: its thread did not answer");
    throw error(errc::invalid_state, "reliable sender: not running");
  }
  std::lock_guard lock(impl_->snapshot_mu);
  return impl_->snapshot;
}

std::string reliable_sender::outbox_stream(std::string_view stream) const {
  return "frc.out/" + impl_->options.receiver + "/" + std::string(stream);
}

}  // namespace fabric
