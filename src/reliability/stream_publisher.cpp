// fabric::stream_publisher: the FRS/1 publisher machine (frs_publisher.hpp) driven over a PUB and
// a ROUTER, reading the application's journal. Publishing is an append to the stream's journal
// stream; the append's completion reaches the machine's thread through a completion queue, and
// the machine then reads what became durable back from the journal and sends it live.
#include <fabric/stream.hpp>

#include "core/driver.hpp"
#include "reliability/channel_support.hpp"
#include "reliability/frs_publisher.hpp"

#include <fabric/completion_queue.hpp>
#include <fabric/error.hpp>
#include <fabric/pub_sub.hpp>
#include <fabric/router_dealer.hpp>

#include <atomic>
#include <map>
#include <mutex>
#include <unordered_map>

namespace fabric {
namespace {

using detail::time_point;
using std::chrono::milliseconds;

constexpr std::string_view journal_prefix = "frs.pub/";
// A journal stream name is at most 255 octets; the prefix takes its share.
constexpr std::size_t max_name = 255 - journal_prefix.size();

enum class token_kind : std::uint64_t { durable = 1, flush = 2 };
constexpr std::uint64_t make_token(token_kind k, std::uint64_t id) { return (static_cast<std::uint64_t>(k) << 56) | id; }
constexpr token_kind kind_of(std::uint64_t token) { return static_cast<token_kind>(token >> 56); }
constexpr std::uint64_t id_of(std::uint64_t token) { return token & ((std::uint64_t{1} << 56) - 1); }

bool valid_name(std::string_view s) noexcept {
  return !s.empty() && s.size() <= max_name && s.front() != '\0' && s.find('\0') == std::string_view::npos;
}

}  // namespace

struct stream_publisher::impl final : frs::publisher_store, detail::machine_sink {
  impl(context& c, journal& jr, stream_publisher_options o)
      : options(checked(std::move(o))),
        j(jr),
        pub(c, pub_settings(options)),
        replay(c, router_settings(options)),
        machine(frs::publisher_settings{.incarnation = detail::journal_incarnation(jr),
                                        .heartbeat = options.heartbeat,
                                        .max_batch_bytes = options.max_batch_bytes},
                *this, *this),
        driver(c, "stream publisher") {
    bound = pub.bind(options.endpoint);
    replay_bound = replay.bind(options.replay_endpoint);
    adopt_existing();
    driver.watch(replay, [this](message&& m, time_point now) { machine.on_message(std::move(m), now); }, 64,
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

  static stream_publisher_options checked(stream_publisher_options o) {
    if (o.endpoint.empty() || o.replay_endpoint.empty())
      throw error(errc::invalid_argument, "stream publisher: give both endpoints to bind");
    if (o.heartbeat.count() < 1) throw error(errc::invalid_argument, "stream publisher: the heartbeat must be positive");
    return o;
  }

  static socket_options pub_settings(const stream_publisher_options& o) {
    socket_options s;
    s.linger = milliseconds(0);
    s.send_hwm = o.send_hwm;
    s.security = o.security;
    return s;
  }

  static socket_options router_settings(const stream_publisher_options& o) {
    socket_options s;
    s.linger = milliseconds(0);
    s.send_hwm = 1000;  // answers are asked for one at a time per stream
    s.recv_hwm = 1000;
    s.max_frames = 8;   // a FETCH is the routing id and five frames
    s.max_message_size = 1024;
    s.security = o.security;
    return s;
  }

  void log_line(log_level level, const std::string& line) {
    if (options.log) options.log(level, line);
  }

  // Every stream a publisher wrote in this journal before: served from its history.
  void adopt_existing() {
    auto held = j.streams();
    if (!held) throw error(held.error(), "stream publisher: the journal's streams could not be listed");
    for (const auto& js : *held) {
      if (!js.starts_with(journal_prefix)) continue;
      const std::string_view name = std::string_view(js).substr(journal_prefix.size());
      if (!valid_name(name)) continue;
      auto last = j.last_seq(js);
      if (!last) throw error(last.error(), "stream publisher: a stream's last sequence could not be read");
      machine.adopt(name, last->value_or(0));
      (void)register_stream(name);
    }
  }

  // The id of `name` in the completion tokens, registering it (and its retention) the first time.
  std::uint64_t register_stream(std::string_view name) {
    std::lock_guard lock(names_mu);
    if (auto it = ids.find(std::string(name)); it != ids.end()) return it->second;
    if (options.retention != retention_policy{}) {
      auto set = j.set_retention(journal_stream(name), options.retention);
      if (!set) log_line(log_level::error, "stream publisher: retention not set on " + std::string(name) + ": " + set.error().message());
    }
    const std::uint64_t id = names.size();
    names.emplace_back(name);
    ids.emplace(std::string(name), id);
    return id;
  }

  std::string name_of(std::uint64_t id) {
    std::lock_guard lock(names_mu);
    return id < names.size() ? names[id] : std::string();
  }

  // The callback an append completes with: the driver learns the stream is durable that far.
  stream_publisher::publish_callback completion(std::uint64_t id, std::uint64_t count, publish_callback user) {
    calls.hold();
    return [this, id, count, user = std::move(user)](result<std::uint64_t> r) {
      if (r) done.push(make_token(token_kind::durable, id), *r + count - 1);
      if (user) user(std::move(r));
      calls.release();
    };
  }

  // ---- the store

  result<std::uint64_t> read(std::string_view stream, std::uint64_t from, std::size_t max_records,
                             std::size_t max_bytes,
                             const std::function<void(const journal_record_view&)>& fn) override {
    auto r = j.read_views(journal_stream(stream), from, max_records, max_bytes, fn);
    if (!r && !r.is(errc::malformed)) ++journal_errors;
    if (!r && r.is(errc::malformed))
      log_line(log_level::error, "stream publisher: a damaged record in " + std::string(stream) + " near sequence " +
                                     std::to_string(from));
    return r;
  }

  result<std::uint64_t> seq_at_time(std::string_view stream, std::uint64_t time_ns) override {
    auto r = j.seq_at_time(journal_stream(stream), static_cast<std::int64_t>(time_ns));
    if (!r) ++journal_errors;
    return r;
  }

  // ---- the sink

  result<void> send(detail::port to, message&& m) override {
    return to == frs::pub_port ? pub.try_send(std::move(m)) : replay.try_send(std::move(m));
  }

  // ---- the machine's thread

  void on_completions(time_point now) {
    // Coalesced: many appends of one stream completed together are published by one read.
    durable_through.clear();
    done.drain([&](completion_queue::completion c) {
      if (kind_of(c.token) == token_kind::flush) {
        std::map<std::string, std::uint64_t> lasts;
        {
          std::lock_guard lock(flush_mu);
          const auto it = pending_flushes.find(id_of(c.token));
          if (it == pending_flushes.end()) return;
          lasts = std::move(it->second);
          pending_flushes.erase(it);
        }
        if (!c.seq) return;
        for (const auto& [name, last] : lasts) {
          auto& through = durable_through[name];
          through = std::max(through, last);
        }
        return;
      }
      if (!c.seq) return;
      auto& through = durable_through[name_of(id_of(c.token))];
      through = std::max(through, *c.seq);
    });
    for (const auto& [name, through] : durable_through) {
      if (!name.empty()) machine.on_durable(name, through, now);
    }
  }

  void flush() {
    // Everything committed before this barrier is durable when it completes: note how far each
    // stream is now, and publish that far then.
    std::map<std::string, std::uint64_t> lasts;
    {
      std::lock_guard lock(names_mu);
      for (const auto& name : names) {
        auto last = j.last_seq(journal_stream(name));
        if (last && *last) lasts.emplace(name, **last);
      }
    }
    const std::uint64_t id = next_flush++;
    {
      std::lock_guard lock(flush_mu);
      pending_flushes.emplace(id, std::move(lasts));
    }
    calls.hold();
    j.transact([](journal_txn&) {},
               [this, id](result<void> outcome, std::exception_ptr) {
                 done.push(make_token(token_kind::flush, id),
                           outcome ? result<std::uint64_t>(std::uint64_t{0}) : result<std::uint64_t>(outcome.error()));
                 calls.release();
               });
  }

  void take_snapshot() {
    stream_publisher_stats s;
    const auto& m = machine.stats();
    s.live_sent = m.live_sent;
    s.heartbeats = m.heartbeats;
    s.beacons = m.beacons;
    s.fetches = m.fetches;
    s.replayed = m.replayed;
    s.gones = m.gones;
    s.refused = m.refused;
    s.malformed = m.malformed + oversized;
    s.protocol_errors = m.protocol_errors;
    s.damaged = m.damaged;
    s.journal_errors = journal_errors + m.store_errors;
    s.send_failures = m.send_failures;
    for (auto& st : machine.stream_stats()) {
      s.streams.push_back({.stream = std::move(st.stream), .published = st.published, .live_sent = st.live_sent,
                           .beacons = st.beacons});
    }
    std::lock_guard lock(snapshot_mu);
    snapshot = std::move(s);
  }

  stream_publisher_options options;
  journal& j;
  publisher pub;
  fabric::router replay;
  std::string bound;
  std::string replay_bound;
  completion_queue done;

  std::mutex names_mu;
  std::vector<std::string> names;
  std::unordered_map<std::string, std::uint64_t> ids;

  // flush(): the barrier transactions in flight, with how far each stream was when they began.
  std::mutex flush_mu;
  std::map<std::uint64_t, std::map<std::string, std::uint64_t>> pending_flushes;
  std::atomic<std::uint64_t> next_flush{1};
  std::map<std::string, std::uint64_t> durable_through;

  std::uint64_t journal_errors = 0;
  std::uint64_t oversized = 0;
  std::mutex snapshot_mu;
  stream_publisher_stats snapshot;
  detail::journal_calls calls;

  frs::publisher_machine machine;
  detail::driver driver;  // last: stopped before what it drives is destroyed
};

stream_publisher::stream_publisher(context& ctx, journal& j, stream_publisher_options options, deferred_start_t)
    : impl_(std::make_unique<impl>(ctx, j, std::move(options))) {}

stream_publisher::stream_publisher(context& ctx, journal& j, stream_publisher_options options)
    : stream_publisher(ctx, j, std::move(options), deferred_start) {
  impl_->driver.start();
}

stream_publisher::~stream_publisher() = default;

const std::string& stream_publisher::endpoint() const noexcept { return impl_->bound; }
const std::string& stream_publisher::replay_endpoint() const noexcept { return impl_->replay_bound; }

std::string stream_publisher::journal_stream(std::string_view stream) {
  std::string s(journal_prefix);
  s += stream;
  return s;
}

result<std::uint64_t> stream_publisher::publish(std::string_view stream, std::string_view body) {
  return publish_async(stream, body).get();
}

void stream_publisher::publish_async(std::string_view stream, std::string_view body, publish_callback done) {
  if (!valid_name(stream)) {
    if (done) done(errc::invalid_argument);
    return;
  }
  const std::uint64_t id = impl_->register_stream(stream);
  impl_->j.append(journal_stream(stream), body, impl_->completion(id, 1, std::move(done)));
}

std::future<result<std::uint64_t>> stream_publisher::publish_async(std::string_view stream, std::string_view body) {
  auto promise = std::make_shared<std::promise<result<std::uint64_t>>>();
  auto future = promise->get_future();
  publish_async(stream, body, [promise](result<std::uint64_t> r) { promise->set_value(std::move(r)); });
  return future;
}

void stream_publisher::publish_batch(std::string_view stream, std::span<const std::string_view> bodies,
                                     publish_callback done) {
  if (!valid_name(stream) || bodies.empty()) {
    if (done) done(errc::invalid_argument);
    return;
  }
  const std::uint64_t id = impl_->register_stream(stream);
  impl_->j.append_batch(journal_stream(stream), bodies, impl_->completion(id, bodies.size(), std::move(done)));
}

std::future<result<std::uint64_t>> stream_publisher::publish_batch(std::string_view stream,
                                                                   std::span<const std::string_view> bodies) {
  auto promise = std::make_shared<std::promise<result<std::uint64_t>>>();
  auto future = promise->get_future();
  publish_batch(stream, bodies, [promise](result<std::uint64_t> r) { promise->set_value(std::move(r)); });
  return future;
}

std::uint64_t stream_publisher::publish(journal_txn& t, std::string_view stream, std::string_view body) {
  if (!valid_name(stream)) throw error(errc::invalid_argument, "stream publisher: bad stream name");
  (void)impl_->register_stream(stream);
  return t.append(journal_stream(stream), body);
}

void stream_publisher::flush() { impl_->flush(); }

void stream_publisher::start() { impl_->driver.start(); }
result<void> stream_publisher::run() { return impl_->driver.run(); }
void stream_publisher::request_stop() noexcept { impl_->driver.request_stop(); }
void stream_publisher::attach(reactor& r) { impl_->driver.attach(r); }
bool stream_publisher::detach(reactor& r) noexcept { return impl_->driver.detach(r); }
bool stream_publisher::stop(std::chrono::milliseconds timeout) noexcept {
  return impl_ ? impl_->driver.stop(timeout) : true;
}
bool stream_publisher::running() const noexcept { return impl_->driver.running(); }
std::exception_ptr stream_publisher::failure() const noexcept { return impl_->driver.failure(); }

stream_publisher_stats stream_publisher::stats(std::chrono::milliseconds timeout) {
  auto answer = impl_->driver.call(message{}, timeout);
  if (!answer) {
    if (answer.is(errc::timeout)) throw error(errc::timeout, "stream publisher: its thread did not answer");
    throw error(errc::invalid_state, "stream publisher: not running");
  }
  std::lock_guard lock(impl_->snapshot_mu);
  return impl_->snapshot;
}

}  // namespace fabric
