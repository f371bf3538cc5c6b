// fabric::reliable_receiver: the FRC/1 receiver machine (frc_receiver.hpp) driven over a ROUTER,
// with its store over the application's journal. Each commit the machine asks for runs the
// application's handler (before the transaction, or inside it) and writes the channels' marks;
// its completion comes back through a completion queue, and only then does the machine ACK.
#include <fabric/reliable_channel.hpp>

#include "core/byte_order.hpp"
#include "core/driver.hpp"
#include "reliability/channel_support.hpp"
#include "reliability/frc_faults.hpp"
#include "reliability/frc_receiver.hpp"

#include <fabric/completion_queue.hpp>
#include <fabric/error.hpp>
#include <fabric/router_dealer.hpp>

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <unordered_map>

namespace fabric {
namespace frc::faults {
namespace {
std::atomic<bool> early_ack{false};
}  // namespace
void set_ack_before_durable(bool on) noexcept { early_ack = on; }
bool ack_before_durable() noexcept { return early_ack; }
}  // namespace frc::faults

namespace {

using detail::time_point;
using std::chrono::milliseconds;

constexpr std::string_view in_table = "frc.in";
constexpr std::string_view expired_table = "frc.expired";
constexpr std::string_view history_table = "frc.history";
constexpr std::string_view failed_stream = "frc.failed";
// Replaced incarnations kept per channel (24 bytes each); the oldest go first.
constexpr std::size_t max_history = 1000;

enum class token_kind : std::uint64_t { committed = 1, retry = 2, acknowledged = 3 };
constexpr std::uint64_t make_token(token_kind k, std::uint64_t id) { return (static_cast<std::uint64_t>(k) << 56) | id; }
constexpr token_kind kind_of(std::uint64_t token) { return static_cast<token_kind>(token >> 56); }
constexpr std::uint64_t id_of(std::uint64_t token) { return token & ((std::uint64_t{1} << 56) - 1); }

std::string what_of(std::exception_ptr e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return x.what();
  } catch (...) {
    return "a non-standard exception";
  }
}

}  // namespace

struct reliable_receiver::impl final : frc::receiver_store, detail::machine_sink {
  // A commit the machine asked for, kept until it is durable: its handlers may run more than
  // once (effectively-once retries after a handler threw).
  struct work {
    frc::commit_batch batch;
    // Attempts made per entry (update index, entry index), and the entries given up.
    std::map<std::pair<std::size_t, std::size_t>, std::uint32_t> attempts;
    std::map<std::pair<std::size_t, std::size_t>, std::string> given_up;
    // Set by the transaction when a handler threw inside it.
    std::optional<std::pair<std::size_t, std::size_t>> failed_at;
    std::string failure;
  };

  impl(context& c, journal& jr, reliable_receiver_options o)
      : options(checked(std::move(o))),
        j(jr),
        socket(c, socket_settings(options)),
        machine(frc::receiver_settings{.incarnation = detail::journal_incarnation(jr),
                                       .heartbeat = options.heartbeat,
                                       .liveness = options.liveness,
                                       .credit = options.credit,
                                       .max_message = options.max_message,
                                       .max_links = options.max_links,
                                       .max_batch = options.max_batch},
                *this, *this),
        driver(c, "reliable receiver") {
    bound = socket.bind(options.endpoint);
    driver.watch(
        socket, [this](message&& m, time_point now) { machine.on_message(std::move(m), now); }, 256,
        [this] { ++oversized; });
    driver.watch_fd(done.fd(), [this](time_point now) { on_completions(now); });
    driver.ticks([this](time_point now) { machine.on_tick(now); }, [this] { return machine.next_tick(); });
    driver.commands([this](message&&) {
      take_snapshot();
      return message{};
    });
  }

  ~impl() override {
    driver.stop();
    calls.wait();
  }

  static reliable_receiver_options checked(reliable_receiver_options o) {
    if (o.endpoint.empty()) throw error(errc::invalid_argument, "reliable receiver: give an endpoint to bind");
    if (o.mode != delivery_mode::effectively_once && !o.on_message)
      throw error(errc::invalid_argument, "reliable receiver: at_least_once and manual need on_message");
    if (o.mode == delivery_mode::effectively_once && !o.on_message_in)
      throw error(errc::invalid_argument, "reliable receiver: effectively_once needs on_message_in");
    if (o.max_attempts == 0) throw error(errc::invalid_argument, "reliable receiver: max_attempts must be positive");
    return o;
  }

  static socket_options socket_settings(const reliable_receiver_options& o) {
    socket_options s;
    s.linger = milliseconds(0);
    s.send_hwm = 100'000;  // ACKs and WELCOMEs are small; a full queue costs a retransmission
    s.recv_hwm = 0;        // bounded by the credit each channel grants
    // A DATA with every entry: routing id, header, command, link, first-seq, ttls, the bodies.
    s.max_frames = 6 + frc::max_entries;
    s.max_message_size = static_cast<std::int64_t>(o.max_message) + 64;
    s.security = o.security;
    return s;
  }

  void log_line(log_level level, const std::string& line) {
    if (options.log) options.log(level, line);
  }

  // ---- the store

  result<std::optional<frc::channel_record>> load(std::string_view key) override {
    auto v = j.get(in_table, key);
    if (!v) return v.error();
    if (!*v) return std::optional<frc::channel_record>();
    frc::channel_record r;
    if (!frc::decode_record(**v, r)) {
      log_line(log_level::error, "reliable receiver: a damaged channel record in the journal");
      return errc::malformed;
    }
    return std::optional<frc::channel_record>(r);
  }

  result<std::vector<std::uint64_t>> load_expired(std::string_view key) override {
    auto v = j.get(expired_table, key);
    if (!v) return v.error();
    std::vector<std::uint64_t> seqs;
    if (*v && !frc::decode_seqs(**v, seqs)) return errc::malformed;
    return seqs;
  }

  void report(const frc::channel_event& e) override {
    channel_notice n{};
    std::string text;
    if (e.what == frc::hello_event::joined_late) {
      n.what = channel_notice::kind::joined_late;
      text = "first contact, after sequences 1.." + std::to_string(e.to) + " were taken by another journal";
    } else if (e.what == frc::hello_event::receiver_regressed) {
      n.what = channel_notice::kind::receiver_regressed;
      text = "this journal is behind the sender's acknowledgements: " + std::to_string(e.from) + ".." +
             std::to_string(e.to) + " are sent again";
    } else {
      n.what = channel_notice::kind::sender_replaced;
      text = "a new sender incarnation replaced one that ended at " + std::to_string(e.to);
    }
    n.sender = e.sender;
    n.stream = e.stream;
    n.from = e.from;
    n.to = e.to;
    log_line(log_level::warning, "reliable receiver: " + e.sender + "/" + e.stream + ": " + text);
    if (options.on_notice) options.on_notice(n);
  }

  void commit(frc::commit_batch&& batch) override {
    auto w = std::make_shared<work>();
    w->batch = std::move(batch);
    if (options.mode != delivery_mode::effectively_once) run_handlers(*w);
    works[w->batch.id] = w;
    if (options.mode == delivery_mode::manual) {
      // The marks wait until the application has acknowledged every message it was handed.
      waiting = w;
      submit_if_acknowledged();
      return;
    }
    submit(w);
    if (frc::faults::ack_before_durable()) {
      // The planted bug: "durable" before the transaction is even run. The real completion
      // finds its work gone and is ignored.
      done.push(make_token(token_kind::committed, w->batch.id), std::uint64_t{0});
    }
  }

  reliable_delivery delivery_of(const frc::commit_update& u, const frc::commit_entry& e, std::uint32_t attempt) const {
    return reliable_delivery{.sender = u.sender,
                             .stream = u.stream,
                             .seq = e.seq,
                             .body = std::string_view(static_cast<const char*>(e.body.data()), e.body.size()),
                             .attempt = attempt};
  }

  // At-least-once: every message of the batch, on this thread, before its marks are written.
  void run_handlers(work& w) {
    for (std::size_t ui = 0; ui < w.batch.updates.size(); ++ui) {
      const frc::commit_update& u = w.batch.updates[ui];
      for (std::size_t ei = 0; ei < u.entries.size(); ++ei) {
        const frc::commit_entry& e = u.entries[ei];
        if (e.kind != frc::entry_kind::deliver) continue;
        std::string why;
        std::uint32_t attempt = 1;
        for (; attempt <= options.max_attempts; ++attempt) {
          try {
            options.on_message(delivery_of(u, e, attempt));
            why.clear();
            break;
          } catch (...) {
            ++handler_failures;
            why = what_of(std::current_exception());
          }
        }
        if (attempt > options.max_attempts) {
          w.attempts[{ui, ei}] = options.max_attempts;
          w.given_up[{ui, ei}] = "the handler failed " + std::to_string(options.max_attempts) + " times: " + why;
        }
      }
    }
  }

  // Manual mode: submits the waiting commit once every message of it that reached the
  // application is acknowledged (messages given up after max_attempts need no acknowledgement).
  void submit_if_acknowledged() {
    if (!waiting) return;
    {
      std::lock_guard lock(acks_mu);
      const auto& updates = waiting->batch.updates;
      for (std::size_t ui = 0; ui < updates.size(); ++ui) {
        std::uint64_t need = 0;
        for (std::size_t ei = 0; ei < updates[ui].entries.size(); ++ei) {
          const auto& e = updates[ui].entries[ei];
          if (e.kind == frc::entry_kind::deliver && waiting->given_up.count({ui, ei}) == 0) need = e.seq;
        }
        if (need == 0) continue;
        const auto it = app_acks.find(updates[ui].key);
        if (it == app_acks.end() || it->second < need) return;
      }
    }
    std::shared_ptr<work> w = std::move(waiting);
    waiting.reset();
    submit(w);
  }

  void acknowledge(std::string_view sender, std::string_view stream, std::uint64_t seq) {
    {
      std::lock_guard lock(acks_mu);
      std::uint64_t& at = app_acks[frc::channel_key(sender, stream)];
      at = std::max(at, seq);
    }
    done.push(make_token(token_kind::acknowledged, 0), seq);
  }

  void submit(const std::shared_ptr<work>& w) {
    w->failed_at.reset();
    calls.hold();
    j.transact(
        [this, w](journal_txn& t) { write(*w, t); },
        [this, w](result<void> r, std::exception_ptr thrown) {
          if (thrown && w->failed_at) {
            done.push(make_token(token_kind::retry, w->batch.id), std::uint64_t{0});
          } else if (thrown) {
            log_line(log_level::error, "reliable receiver: a commit failed: " + what_of(thrown));
            done.push(make_token(token_kind::committed, w->batch.id), errc::io_error);
          } else {
            done.push(make_token(token_kind::committed, w->batch.id),
                      r ? result<std::uint64_t>(std::uint64_t{0}) : result<std::uint64_t>(r.error()));
          }
          calls.release();
        });
  }

  // Runs on the journal's writer thread, possibly more than once: it only reads `w` and the
  // options, and records a handler's failure in `w` before the transaction aborts.
  void write(work& w, journal_txn& t) {
    const std::int64_t now_ns = detail::wall_now_ns();
    for (std::size_t ui = 0; ui < w.batch.updates.size(); ++ui) {
      const frc::commit_update& u = w.batch.updates[ui];
      for (std::size_t ei = 0; ei < u.entries.size(); ++ei) {
        const frc::commit_entry& e = u.entries[ei];
        if (e.kind != frc::entry_kind::deliver) continue;
        const auto key = std::make_pair(ui, ei);
        if (const auto gave_up = w.given_up.find(key); gave_up != w.given_up.end()) {
          const std::uint64_t seq =
              t.append(failed_stream, std::string_view(static_cast<const char*>(e.body.data()), e.body.size()));
          const std::string reason = u.sender + "/" + u.stream + " #" + std::to_string(e.seq) + ": " + gave_up->second;
          (void)t.dead_letter(failed_stream, seq, reason.substr(0, 4096), w.attempts[key]);
          continue;
        }
        if (options.mode != delivery_mode::effectively_once) continue;
        const auto tried = w.attempts.find(key);
        const std::uint32_t attempt = (tried == w.attempts.end() ? 0 : tried->second) + 1;
        try {
          options.on_message_in(delivery_of(u, e, attempt), t);
        } catch (...) {
          w.failed_at = key;
          w.failure = what_of(std::current_exception());
          throw;
        }
      }
      t.put(in_table, u.key, frc::encode_record(u.record));
      if (u.archived) {
        auto before = t.get(history_table, u.key);
        if (!before) return;  // the read failed: the transaction will not commit
        std::string h = before->value_or(std::string());
        if (h.size() >= max_history * 24) h.erase(0, h.size() - (max_history - 1) * 24);
        std::string entry(24, '\0');
        detail::store_be(static_cast<std::uint64_t>(now_ns), entry.data());
        detail::store_be(u.archived->sender_incarnation, entry.data() + 8);
        detail::store_be(u.archived->taken, entry.data() + 16);
        t.put(history_table, u.key, h + entry);
      }
      if (u.expired_kept) {
        if (u.expired_kept->empty()) (void)t.erase(expired_table, u.key);
        else t.put(expired_table, u.key, frc::encode_seqs(*u.expired_kept));
      }
    }
  }

  // ---- the sink

  result<void> send(detail::port, message&& m) override { return socket.try_send(std::move(m)); }

  // ---- the machine's thread

  void on_completions(time_point now) {
    done.drain([&](completion_queue::completion c) {
      if (kind_of(c.token) == token_kind::acknowledged) {
        submit_if_acknowledged();
        return;
      }
      const std::uint64_t id = id_of(c.token);
      const auto it = works.find(id);
      if (it == works.end()) return;
      std::shared_ptr<work> w = it->second;
      if (kind_of(c.token) == token_kind::retry) {
        // A handler threw inside the transaction, so nothing of it was kept: try again, and
        // give the message up once it has failed max_attempts times.
        ++handler_failures;
        const auto key = *w->failed_at;
        const std::uint32_t n = ++w->attempts[key];
        if (n >= options.max_attempts)
          w->given_up[key] = "the handler failed " + std::to_string(n) + " times: " + w->failure;
        submit(w);
        return;
      }
      works.erase(it);
      if (c.seq) dead_lettered += w->given_up.size();
      if (!c.seq) log_line(log_level::error, "reliable receiver: a commit failed: " + c.seq.error().message());
      machine.on_committed(id, c.seq ? result<void>() : result<void>(c.seq.error()), now);
    });
  }

  void take_snapshot() {
    reliable_receiver_stats s;
    const frc::receiver_stats& m = machine.stats();
    s.received = m.received;
    s.malformed = m.malformed + oversized;
    s.protocol_errors = m.protocol_errors;
    s.refused = m.refused;
    s.commits = m.commits;
    s.commit_failures = m.commit_failures;
    s.handler_failures = handler_failures;
    s.dead_lettered = dead_lettered;
    s.connections = m.peers;
    for (const auto& c : machine.channel_stats()) {
      s.channels.push_back(receiver_channel_info{.sender = c.sender,
                                                 .stream = c.stream,
                                                 .connected = c.linked,
                                                 .taken = c.taken,
                                                 .received = c.accepted,
                                                 .delivered = c.delivered,
                                                 .duplicates = c.duplicates,
                                                 .gaps = c.gaps,
                                                 .skipped = c.skipped,
                                                 .expired = c.expired,
                                                 .sender_resets = c.sender_resets});
    }
    std::lock_guard lock(snapshot_mu);
    snapshot = std::move(s);
  }

  reliable_receiver_options options;
  journal& j;
  router socket;
  std::string bound;
  completion_queue done;
  std::map<std::uint64_t, std::shared_ptr<work>> works;
  std::shared_ptr<work> waiting;  // manual mode: the commit waiting for the application
  std::mutex acks_mu;             // guards app_acks, written by application threads
  std::unordered_map<std::string, std::uint64_t> app_acks;  // channel key -> acknowledged up to
  std::uint64_t handler_failures = 0;
  std::uint64_t dead_lettered = 0;
  std::uint64_t oversized = 0;  // messages over the frame or size bounds, dropped by the socket

  std::mutex snapshot_mu;
  reliable_receiver_stats snapshot;

  detail::journal_calls calls;  // journal calls whose completions refer to this

  frc::receiver_machine machine;
  detail::driver driver;  // last: stopped before what it drives is destroyed
};

reliable_receiver::reliable_receiver(context& ctx, journal& j, reliable_receiver_options options, deferred_start_t)
    : impl_(std::make_unique<impl>(ctx, j, std::move(options))) {}

reliable_receiver::reliable_receiver(context& ctx, journal& j, reliable_receiver_options options)
    : reliable_receiver(ctx, j, std::move(options), deferred_start) {
  impl_->driver.start();
}

reliable_receiver::~reliable_receiver() = default;

const std::string& reliable_receiver::endpoint() const noexcept { return impl_->bound; }
void reliable_receiver::acknowledge(std::string_view sender, std::string_view stream, std::uint64_t seq) {
  impl_->acknowledge(sender, stream, seq);
}
void reliable_receiver::start() { impl_->driver.start(); }
result<void> reliable_receiver::run() { return impl_->driver.run(); }
void reliable_receiver::request_stop() noexcept { impl_->driver.request_stop(); }
void reliable_receiver::attach(reactor& r) { impl_->driver.attach(r); }
bool reliable_receiver::detach(reactor& r) noexcept { return impl_->driver.detach(r); }
bool reliable_receiver::stop(std::chrono::milliseconds timeout) noexcept {
  return impl_ ? impl_->driver.stop(timeout) : true;
}
bool reliable_receiver::running() const noexcept { return impl_->driver.running(); }
std::exception_ptr reliable_receiver::failure() const noexcept { return impl_->driver.failure(); }

reliable_receiver_stats reliable_receiver::stats(std::chrono::milliseconds timeout) {
  auto answer = impl_->driver.call(message{}, timeout);
  if (!answer) {
    if (answer.is(errc::timeout)) throw error(errc::timeout, "reliable receiver: its thread did not answer");
    throw error(errc::invalid_state, "reliable receiver: not running");
  }
  std::lock_guard lock(impl_->snapshot_mu);
  return impl_->snapshot;
}

}  // namespace fabric
