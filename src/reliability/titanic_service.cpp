// fabric::titanic::service: the Titanic server machine (tsp_server.hpp) on the shared driver, with
// its store over a fabric::journal and its io over one Majordomo worker session per Titanic
// service and one Majordomo async client (docs/titanic.md).
//
// Journal layout (docs/titanic.md, section 7):
//   stream tsp.requests   one record per request:
//                           version(1) = 1 | uuid(16) | key-size(1) key | service-size(1) service |
//                           frame-count(4) | { frame-size(4) frame }...     (big-endian)
//   table tsp.state       uuid(16) -> state(1) seq(8) attempts(4) stored-ns(8) finished-ns(8)
//                                     key-size(1) key service-size(1) service reason...
//                         state 1 open, 2 replied, 3 given up
//   table tsp.open        seq(8) -> uuid: open requests in the order they were stored
//   table tsp.replies     uuid -> frame-count(4) { frame-size(4) frame }...
//   table tsp.keys        key -> uuid
//   table tsp.finished    finished-ns(8) uuid(16) -> "": replied and given-up requests, oldest
//                         first, for reply_retention
//   table tsp.status      "in-flight" -> count(8) ns(8): requests in flight, written with a commit
//                         at most once a second
//   cursor tsp.scanned    records up to it are the service's own, written once a second: past
//                         it, a second record of a request given up was put back from the
//                         dead-letter queue (fabric-journal dlq requeue) and is opened again at
//                         start
//   cursor tsp.trimmed    records up to it belong to no open request: the stream's retention
//                         trims them
#include <fabric/titanic.hpp>

#include "core/byte_order.hpp"
#include "core/driver.hpp"
#include "reliability/channel_support.hpp"
#include "reliability/mdp.hpp"
#include "reliability/mdp_session.hpp"
#include "reliability/tsp.hpp"
#include "reliability/titanic_replication.hpp"
#include "reliability/titanic_store.hpp"
#include "reliability/tsp_server.hpp"

#include <fabric/completion_queue.hpp>
#include <fabric/error.hpp>
#include <fabric/majordomo_client.hpp>
#include <fabric/router_dealer.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace fabric::titanic {

using detail::time_point;
using std::chrono::milliseconds;

using namespace store;  // the journal layout: this file is its main user

namespace {

// Frames on a Titanic socket beyond the body: MDP's header, command, address and delimiter.
constexpr std::size_t envelope_frames = 8;
// A service's late reply is let go this long after the machine's own dispatch deadline.
constexpr milliseconds expiry_margin{1000};
// What the worker sessions ask of fabric's broker, which lowers it to its own bound
// (broker_options::max_worker_credit, 256 by default): the requests one commit can carry.
constexpr std::uint32_t fabric_broker_credit = 1024;
// The most a request's record holds beyond its body's octets: version (1), UUID (16), key (1 +
// 255), service (1 + 255), frame count (4) and a size (4) per frame, up to max_body_frames.
constexpr std::size_t record_overhead = 1 + 16 + 1 + 255 + 1 + 255 + 4 + 4 * tsp::max_body_frames;


service_options checked(service_options o) {
  const auto bad = [](const std::string& what) { throw error(errc::invalid_argument, "titanic service: " + what); };
  if (o.broker.empty()) bad("give the broker's endpoint");
  if (o.heartbeat < milliseconds(1) || o.heartbeat > std::chrono::hours(1)) bad("heartbeat must be 1 ms .. 1 h");
  if (o.liveness < 1 || o.liveness > 1000) bad("liveness must be 1 .. 1000");
  if (o.reconnect_initial < milliseconds(0) || o.reconnect_max < o.reconnect_initial ||
      o.reconnect_max > std::chrono::hours(1))
    bad("reconnect intervals must satisfy 0 <= initial <= max <= 1 h");
  if (o.credit > 1024) bad("credit must be 0 (automatic) .. 1024");
  if (o.reply_retention < std::chrono::seconds(1)) bad("reply_retention must be at least 1 s");
  if (o.max_request_bytes == 0) bad("max_request_bytes must be positive");
  return o;
}

}  // namespace

struct service::impl final : tsp::server_store, tsp::server_io, detail::machine_sink {
  impl(context& c, journal& jr, service_options o)
      : ctx(c),
        j(jr),
        options(checked(std::move(o))),
        client(c, client_options(options)),
        machine(machine_settings(options, jr.options().max_record_size), *this, *this),
        driver(c, "titanic service") {
    for (std::size_t i = 0; i < tsp::service_kinds; ++i) {
      if (!offered(i)) continue;
      socket_options so = options.socket;
      so.routing_id.clear();  // a fresh identity for every connection, given by the broker
      so.immediate = false;   // READY must be queued before the connection completes
      so.linger = milliseconds(100);  // long enough for a last DISCONNECT; nothing else waits
      so.max_frames = tsp::max_body_frames + envelope_frames + 1;
      // Both ways bounded by the credit (the requests the broker may hand over, and the answers
      // to them, which one commit can release all at once): a high-water mark below it would
      // make the socket refuse answers that have nowhere else to wait.
      so.send_hwm = 0;
      so.recv_hwm = 0;
      dealers[i].emplace(c, so);
    }
    recover();
    if (!options.replication.bind.empty()) {
      source.emplace(c, jr, options.replication);
      source->on_handoff([this](tsp::request_change&& rc, time_point now) {
        return machine.adopt(rc.id, rc.key, rc.service, std::move(rc.body), now);
      });
    }
    retention_policy keep;
    keep.max_records = 1;
    keep.ack_cursors = {std::string(trimmed_cursor)};
    if (auto r = j.set_retention(service::requests_stream, keep); !r)
      throw error(r.error(), "titanic service: the requests stream's retention could not be set");

    for (std::size_t i = 0; i < tsp::service_kinds; ++i) {
      if (!dealers[i]) continue;
      driver.watch(*dealers[i], [this, i](message&& m, time_point now) {
        last_now = now;
        if (sessions[i]) sessions[i]->on_message(std::move(m), now);
      });
    }
    if (source) {
      driver.watch(source->socket(), [this](message&& m, time_point now) {
        last_now = now;
        source->on_message(std::move(m), now);
      });
    }
    reader_adapter.self = this;
    driver.watch(reader_adapter, [this](message&&, time_point now) { on_client_reply(now); }, 256);
    driver.watch_fd(done.fd(), [this](time_point now) { on_completions(now); });
    driver.ticks([this](time_point now) { tick(now); }, [this] { return next_tick(); });
    driver.commands([this](message&&) {
      take_snapshot();
      return message{};
    });
    driver.after_work([this] { log_changes(); });
    // The broker's kind decides the credit: a first question to it tells (see start_sessions).
    if (options.credit != 0) {
      credit = options.credit;
    } else {
      send_probe();
    }
  }

  void send_probe() {
    auto id = client.send(mdp::mmi_service, message(tsp::request_service), options.heartbeat * 2);
    if (id) {
      probe = *id;
    } else {
      credit = 1;
    }
  }

  ~impl() override {
    driver.stop();
    // DISCONNECT to the broker for each session, left to the sockets' linger to deliver (close()
    // does not drop the connection from here on).
    stopping = true;
    for (auto& s : sessions) {
      if (s) s->leave();
    }
    calls.wait();
  }

  impl(const impl&) = delete;
  impl& operator=(const impl&) = delete;

  bool offered(std::size_t i) const noexcept {
    return static_cast<tsp::service_kind>(i) != tsp::service_kind::keyed_request || options.keyed_requests;
  }

  static mdp::async_client_options client_options(const service_options& o) {
    mdp::async_client_options c;
    c.broker = o.broker;
    c.correlate = mdp::correlation::automatic;
    c.probe_timeout = o.heartbeat;
    c.max_outstanding = o.max_in_flight + 4096;  // dispatches, and the mmi.service questions
    c.request_expiry = o.dispatch_timeout + expiry_margin;
    c.socket = o.socket;
    c.socket.routing_id.clear();
    c.socket.max_frames = tsp::max_body_frames + envelope_frames + 1;
    c.socket.send_hwm = 0;  // bounded by max_outstanding
    c.socket.recv_hwm = 0;
    return c;
  }

  // A request's record holds its body and at most record_overhead octets more (version, UUID,
  // key, service, frame sizes): a body the journal could not take in one record would fail the
  // whole commit, and every request in it, so it is refused alone (400) instead.
  static tsp::server_settings machine_settings(const service_options& o, std::size_t max_record_size) {
    tsp::server_settings s;
    s.max_in_flight = o.max_in_flight;
    s.service_window = o.service_window;
    s.dispatch_timeout = o.dispatch_timeout;
    s.max_attempts = o.max_attempts;
    s.retry_base = o.retry_base;
    s.retry_max = o.retry_max;
    s.request_ttl = o.request_ttl;
    s.service_check_interval = o.service_check_interval;
    s.sweep_interval = std::clamp(std::chrono::duration_cast<milliseconds>(o.reply_retention / 10),
                                  milliseconds(100), milliseconds(60'000));
    s.max_in_memory = o.max_in_memory;
    s.max_request_bytes = std::min(o.max_request_bytes,
                                   max_record_size > record_overhead ? max_record_size - record_overhead : 1);
    s.cache_bytes = o.cache_bytes;
    return s;
  }

  // ---- start: requests put back from the dead-letter queue are opened again

  void recover() {
    auto scanned = j.cursor(scanned_cursor);
    if (!scanned) throw error(scanned.error(), "titanic service: the journal could not be read");
    auto last = j.last_seq(service::requests_stream);
    if (!last) throw error(last.error(), "titanic service: the journal could not be read");
    const std::uint64_t from = scanned->value_or(0) + 1;
    const std::uint64_t to = last->value_or(0);
    if (from > to) return;
    std::vector<std::pair<std::uint64_t, std::string>> put_back;
    auto read = j.replay(service::requests_stream, from, [&](const journal_record& r) {
      put_back.emplace_back(r.seq, r.payload);
      return true;
    });
    if (!read) throw error(read.error(), "titanic service: the journal could not be read");
    auto r = j.transact([&](journal_txn& t) {
      const std::int64_t now = wall_ns(j);
      for (const auto& [seq, payload] : put_back) {
        record rec;
        if (!decode_record(payload, rec, nullptr)) continue;  // not a request: left for retention
        // Put back from the dead-letter queue: a second record of a request given up. The
        // service's own records past the cursor (it is written once a second) have a state row
        // naming them, or none once closed; those are left alone. A request whose given-up
        // state was removed by reply_retention before it was put back is unknown by then, and
        // is left alone too.
        auto row = t.get(service::state_table, uuid_key(rec.id));
        if (!row) return;
        if (!*row) continue;
        const auto known = decode_state(**row);
        if (!known || known->state != state_given_up || known->seq == seq) continue;
        state_row s{.state = state_open, .seq = seq, .stored_ns = now, .key = std::string(rec.key),
                    .service = std::string(rec.service)};
        t.put(service::state_table, uuid_key(rec.id), encode_state(s));
        t.put(service::open_table, be64(seq), uuid_key(rec.id));
        if (!rec.key.empty()) t.put(service::keys_table, rec.key, uuid_key(rec.id));
      }
      t.set_cursor(scanned_cursor, to);
    });
    if (!r) throw error(r.error(), "titanic service: requests put back could not be opened");
  }

  // ---- tsp::server_store

  result<bool> read_open(std::uint64_t after, std::size_t max, std::vector<tsp::open_request>& out) override {
    auto entries = j.table_entries(service::open_table, after == 0 ? std::string() : be64(after), max);
    if (!entries) return entries.error();
    const auto steady = detail::machine_clock::now();
    const std::int64_t wall = wall_ns(j);
    for (const auto& [k, v] : *entries) {
      if (k.size() != 8 || v.size() != 16) {
        ++damaged;
        continue;
      }
      tsp::open_request o;
      std::memcpy(o.id.bytes.data(), v.data(), 16);
      o.seq = detail::load_be<std::uint64_t>(reinterpret_cast<const unsigned char*>(k.data()));
      auto row = j.get(service::state_table, v);
      if (!row) return row.error();
      if (!*row) continue;  // closed meanwhile
      auto s = decode_state(**row);
      if (!s || s->state != state_open) continue;
      o.service = std::move(s->service);
      o.attempts = s->attempts;
      if (options.request_ttl > milliseconds::zero()) {
        const std::int64_t left = s->stored_ns + std::chrono::nanoseconds(options.request_ttl).count() - wall;
        o.expires_at = steady + std::chrono::nanoseconds(std::max<std::int64_t>(left, 0));
      }
      out.push_back(std::move(o));
    }
    return entries->size() < max;
  }

  result<message> read_body(const tsp::uuid& id, std::uint64_t seq) override {
    message body;
    bool found = false;
    auto r = j.read_views(service::requests_stream, seq, 1, std::size_t{64} << 20, [&](const journal_record_view& v) {
      record rec;
      if (v.seq == seq && decode_record(v.payload, rec, &body) && rec.id == id) found = true;
    });
    if (!r) return r.error();
    if (!found) {
      ++damaged;
      return errc::malformed;
    }
    return body;
  }

  result<tsp::request_lookup> lookup(const tsp::uuid& id) override {
    tsp::request_lookup out;
    auto row = j.get(service::state_table, uuid_key(id));
    if (!row) return row.error();
    if (!*row) return out;
    auto s = decode_state(**row);
    if (!s) {
      ++damaged;
      return errc::malformed;
    }
    switch (s->state) {
      case state_open: out.what = tsp::request_lookup::state::open; break;
      case state_given_up:
        out.what = tsp::request_lookup::state::given_up;
        out.reason = std::move(s->reason);
        break;
      default: {
        auto rep = j.get(service::replies_table, uuid_key(id));
        if (!rep) return rep.error();
        if (!*rep) return out;  // removed meanwhile: unknown
        reader rd{**rep};
        if (!rd.frames(out.reply) || !rd.in.empty()) {
          ++damaged;
          return errc::malformed;
        }
        out.what = tsp::request_lookup::state::replied;
      }
    }
    return out;
  }

  result<std::optional<tsp::uuid>> find_key(std::string_view key) override {
    auto v = j.get(service::keys_table, key);
    if (!v) return v.error();
    if (!*v) return std::optional<tsp::uuid>();
    if ((*v)->size() != 16) {
      ++damaged;
      return errc::malformed;
    }
    tsp::uuid id;
    std::memcpy(id.bytes.data(), (*v)->data(), 16);
    return std::optional<tsp::uuid>(id);
  }

  result<std::vector<tsp::due_removal>> due_removals(std::size_t max) override {
    auto entries = j.table_entries(service::finished_table, {}, max);
    if (!entries) return entries.error();
    const std::int64_t before = wall_ns(j) - std::chrono::nanoseconds(options.reply_retention).count();
    std::vector<tsp::due_removal> out;
    for (auto& [k, v] : *entries) {
      if (k.size() != 24) continue;
      const auto ns = static_cast<std::int64_t>(detail::load_be<std::uint64_t>(reinterpret_cast<const unsigned char*>(k.data())));
      if (ns > before) break;
      tsp::due_removal d;
      std::memcpy(d.id.bytes.data(), k.data() + 8, 16);
      d.index = std::move(k);
      out.push_back(std::move(d));
    }
    return out;
  }

  void commit(tsp::commit_batch&& batch) override {
    auto work = std::make_shared<tsp::commit_batch>(std::move(batch));
    auto seqs = std::make_shared<std::vector<std::uint64_t>>();
    std::optional<std::uint64_t> trim = trim_point();
    // The in-flight figure for tools, at most once a second: a table more in every commit is
    // pages more to write and flush, on the path of every post.
    const auto steady = detail::machine_clock::now();
    const bool status = steady >= next_status;
    if (status) next_status = steady + std::chrono::seconds(1);
    commit_seqs = seqs;
    calls.hold();
    const std::uint64_t position = source ? source->reserve() : 0;
    commit_position = position;
    j.transact([this, work, seqs, trim, status, position](journal_txn& t) { write(t, *work, *seqs, trim, status, position); },
               [this, id = work->id](result<void> outcome, std::exception_ptr thrown) {
                 if (thrown) outcome = errc::io_error;
                 done.push(id, outcome ? result<std::uint64_t>(std::uint64_t{0}) : result<std::uint64_t>(outcome.error()));
                 calls.release();
               });
  }

  // Where the stream may be trimmed to: below the oldest open request. Read at most once a
  // second, from what is committed (so never above what this commit could open).
  std::optional<std::uint64_t> trim_point() {
    const auto now = detail::machine_clock::now();
    if (now < next_trim) return std::nullopt;
    next_trim = now + std::chrono::seconds(1);
    return store::trim_point(j);
  }

  // The transaction of one commit, on the journal's writer thread. With replication, the same
  // changes go into the replication log, as its next entry, in the same transaction.
  void write(journal_txn& t, const tsp::commit_batch& batch, std::vector<std::uint64_t>& seqs,
             std::optional<std::uint64_t> trim, bool status_due, std::uint64_t position) {
    const std::int64_t now = wall_ns(j);
    store::apply(t, batch.changes, now, seqs, false);
    const std::uint64_t last_stored = seqs.empty() ? 0 : seqs.back();
    if (source) source->write(t, position, store::encode_ops(source->term(), now, batch.changes));
    if (status_due) {
      std::string status = be64(batch.in_flight);
      status += be64(static_cast<std::uint64_t>(now));
      t.put(status_table, "in-flight", status);
    }
    // How far the stream holds the service's own records, for the scan at start; once a second,
    // with the status, so the scan covers about a second of records however long it ran.
    if (last_stored != 0) appended_upto = last_stored;
    if (status_due && appended_upto > cursor_written) {
      t.set_cursor(scanned_cursor, appended_upto);
      cursor_written = appended_upto;
    }
    if (trim) t.set_cursor(trimmed_cursor, *trim);
  }

  // ---- tsp::server_io

  void answer(const tsp::origin& to, message&& body) override {
    auto& s = sessions[static_cast<std::size_t>(to.kind)];
    if (!s || !s->reply(to.client, to.connection, std::move(body), last_now)) ++answers_dropped;
  }

  result<std::uint64_t> dispatch(std::string_view service, message&& body, milliseconds timeout) override {
    return client.send(service, std::move(body), timeout + expiry_margin);
  }

  result<void> query_service(std::string_view service) override {
    auto id = client.send(mdp::mmi_service, message(service), options.service_check_interval);
    if (!id) return id.error();
    queries.emplace(*id, std::string(service));
    return {};
  }

  void cancel(std::uint64_t id) noexcept override { (void)client.cancel(id); }

  // ---- detail::machine_sink: the worker sessions' sockets, one port each

  result<void> send(detail::port p, message&& m) override {
    auto& d = dealers[static_cast<std::size_t>(p)];
    if (!d) return errc::closed;
    return d->try_send(std::move(m));
  }

  void close(detail::port p) noexcept override {
    const auto i = static_cast<std::size_t>(p);
    if (!connected[i] || stopping) return;
    try {
      dealers[i]->disconnect(options.broker);
    } catch (const std::exception&) {  // already gone
    }
    connected[i] = false;
  }

  // A fresh connection: the broker sees a new identity (the DEALER has none of its own).
  result<void> open(detail::port p) override {
    const auto i = static_cast<std::size_t>(p);
    close(p);
    try {
      dealers[i]->connect(options.broker);
    } catch (const error& e) {
      return e.code();
    }
    connected[i] = true;
    return {};
  }

  // ---- the machine's thread

  // Opens the worker sessions once the credit is known.
  void start_sessions(time_point now) {
    for (std::size_t i = 0; i < tsp::service_kinds; ++i) {
      if (!dealers[i]) continue;
      mdp::session_settings s;
      s.service = std::string(tsp::service_name(static_cast<tsp::service_kind>(i)));
      s.credit = credit;
      s.heartbeat = options.heartbeat;
      s.liveness = options.liveness;
      s.reconnect_initial = options.reconnect_initial;
      s.reconnect_max = options.reconnect_max;
      s.on = static_cast<detail::port>(i);
      sessions[i].emplace(s, *this, [this, i](std::string_view client_addr, message&& body, std::uint64_t conn,
                                              time_point at) {
        machine.on_request({.kind = static_cast<tsp::service_kind>(i), .client = std::string(client_addr), .connection = conn},
                           std::move(body), at);
      });
      sessions[i]->on_tick(now);
    }
  }

  void on_client_reply(time_point now) {
    last_now = now;
    auto& r = reader_adapter.last;
    if (probe && r.id == *probe) {
      // Answered (by any broker), or unanswered three times: what the client learnt decides.
      probe.reset();
      if (r.status == mdp::async_client::reply_status::ok || client.correlating() || ++probe_tries >= 3) {
        credit = client.correlating() ? fabric_broker_credit : 1;  // the sessions open at the next tick
      } else {
        send_probe();
      }
      return;
    }
    if (const auto q = queries.find(r.id); q != queries.end()) {
      const std::string service = std::move(q->second);
      queries.erase(q);
      if (r.status == mdp::async_client::reply_status::ok && !r.body.empty()) {
        const auto code = r.body.view(0);
        if (code == mdp::mmi_found) {
          machine.on_service_status(service, true, now);
        } else if (code == mdp::mmi_not_found) {
          machine.on_service_status(service, false, now);
        }
      }
      return;
    }
    if (r.status == mdp::async_client::reply_status::ok) {
      machine.on_dispatch_reply(r.id, std::move(r.body), now);
    } else {
      machine.on_dispatch_expired(r.id, now);
    }
  }

  void on_completions(time_point now) {
    last_now = now;
    std::vector<std::pair<std::uint64_t, result<void>>> finished;
    done.drain([&](completion_queue::completion c) {
      finished.emplace_back(c.token, c.seq ? result<void>() : result<void>(c.seq.error()));
    });
    for (auto& [id, outcome] : finished) {
      if (!outcome) ++commit_failures;
      std::vector<std::uint64_t> seqs;
      if (commit_seqs) seqs = std::move(*commit_seqs);
      commit_seqs.reset();
      if (source) {
        source->committed(commit_position, outcome.has_value(), now);
        if (outcome && source->must_wait()) {
          // Sync replication: answered once the follower holds it too (docs/ha.md, 9.3).
          source->hold(commit_position, [this, id = id, s = std::move(seqs)](time_point at) mutable {
            machine.on_committed(id, result<void>(), std::move(s), at);
          });
          continue;
        }
      }
      machine.on_committed(id, std::move(outcome), std::move(seqs), now);
    }
  }

  void tick(time_point now) {
    last_now = now;
    // Completions the client holds: expiries come out only when asked for.
    if (client.next_deadline() && *client.next_deadline() <= now) {
      while (reader_adapter.try_recv(scratch)) on_client_reply(now);
    }
    if (credit != 0 && !sessions_started) {
      sessions_started = true;
      start_sessions(now);
    }
    for (auto& s : sessions) {
      if (s) s->on_tick(now);
    }
    if (source) source->on_tick(now);
    machine.on_tick(now);
  }

  time_point next_tick() const {
    time_point t = machine.next_tick();
    for (const auto& s : sessions) {
      if (s) t = std::min(t, s->next_tick());
    }
    if (const auto d = client.next_deadline()) t = std::min(t, *d);
    if (source) t = std::min(t, source->next_tick());
    if (credit != 0 && !sessions_started) t = time_point::min();
    return t;
  }

  void log_line(log_level level, const std::string& line) {
    if (options.log) options.log(level, "titanic: " + line);
  }

  // What changed since the last look, as log lines: the broker lost or back, credit decided,
  // requests given up, commits failing. Cheap counters compared after each batch of work; each
  // line says how many happened since the previous one, so a storm makes one line per batch.
  void log_changes() {
    if (!options.log) return;
    if (credit != 0 && !credit_logged) {
      credit_logged = true;
      log_line(log_level::info, "worker sessions open with credit " + std::to_string(credit) +
                                    (credit > 1 ? " (fabric's broker)" : " (a plain 7/MDP broker)"));
    }
    for (std::size_t i = 0; i < tsp::service_kinds; ++i) {
      if (!sessions[i]) continue;
      const auto st = sessions[i]->stats();
      const std::uint64_t lost = st.broker_expiries + st.disconnects_received;
      if (lost > logged_losses[i]) {
        log_line(log_level::warning, std::string(tsp::service_name(static_cast<tsp::service_kind>(i))) +
                                         ": the broker was lost (silent or DISCONNECT); reconnecting");
        logged_losses[i] = lost;
      }
    }
    const auto m = machine.stats();
    if (m.given_up > logged_given_up) {
      log_line(log_level::warning, std::to_string(m.given_up - logged_given_up) +
                                       " request(s) given up (dead-lettered; fabric-journal dlq list)");
      logged_given_up = m.given_up;
    }
    if (commit_failures > logged_commit_failures) {
      log_line(log_level::error, "a journal commit failed; the clients waiting on it were answered 500");
      logged_commit_failures = commit_failures;
    }
  }

  void take_snapshot() {
    const auto m = machine.stats();
    service_stats s;
    s.requests = m.received[0] + m.received[3];
    s.reply_requests = m.received[1];
    s.close_requests = m.received[2];
    s.malformed = m.malformed;
    s.stored = m.stored;
    s.keyed_again = m.keyed_again;
    s.answered_200 = m.answered[0];
    s.answered_300 = m.answered[1];
    s.answered_400 = m.answered[2];
    s.answered_500 = m.answered[3];
    s.answers_dropped = answers_dropped;
    s.dispatched = m.dispatched;
    s.replies = m.replies;
    s.late_replies = m.late_replies;
    s.dispatch_timeouts = m.dispatch_timeouts;
    s.no_workers = m.no_workers;
    s.given_up = m.given_up;
    s.expired = m.expired;
    s.closed = m.closed;
    s.removed = m.removed;
    s.commits = m.commits;
    s.commit_failures = commit_failures;
    s.journal_errors = m.store_errors + damaged;
    s.open = m.open;
    s.in_flight = m.in_flight;
    s.waiting_in_journal = m.waiting_in_journal != 0;
    s.credit = credit;
    if (source) {
      const auto r = source->stats();
      s.replication_head = r.head.position;
      s.follower_at = r.follower_at;
      s.follower_in_step = r.follower_in_step;
      s.answers_waiting = r.held;
      s.resyncs = r.resyncs;
      s.follower_losses = r.follower_losses;
      s.handed_over = m.adopted;
    }
    for (const auto& ss : sessions) {
      if (ss) s.worker_reconnects += ss->stats().connections > 0 ? ss->stats().connections - 1 : 0;
    }
    std::lock_guard lock(snapshot_mu);
    snapshot = s;
  }

  // Lets the driver poll the async client's socket: each completion the client reports is one
  // "message" (left in `last`), handled by on_client_reply.
  struct client_reader {
    impl* self = nullptr;
    mdp::async_client::reply last;
    zmq::socket_ref handle() const { return self->client.socket().handle(); }
    result<void> try_recv(message&) { return self->client.try_recv(last); }
  };

  context& ctx;
  journal& j;
  service_options options;
  mdp::async_client client;
  std::array<std::optional<dealer>, tsp::service_kinds> dealers;
  std::array<bool, tsp::service_kinds> connected{};
  std::array<std::optional<mdp::worker_session>, tsp::service_kinds> sessions;  // after the dealers
  std::unordered_map<std::uint64_t, std::string> queries;  // mmi.service questions in flight
  std::optional<std::uint64_t> probe;  // the question whose answer decides the credit
  int probe_tries = 0;
  std::uint32_t credit = 0;
  bool sessions_started = false;
  bool stopping = false;
  client_reader reader_adapter;
  message scratch;
  time_point last_now{};

  completion_queue done;
  std::shared_ptr<std::vector<std::uint64_t>> commit_seqs;
  std::uint64_t commit_position = 0;      // the replication log entry of the commit in flight
  std::optional<repl::source> source;     // with replication.bind
  detail::journal_calls calls;
  time_point next_trim{};
  time_point next_status{};
  // The writer thread's own: the last record it appended, and the scanned cursor as written.
  std::uint64_t appended_upto = 0;
  std::uint64_t cursor_written = 0;

  std::uint64_t answers_dropped = 0;
  bool credit_logged = false;
  std::array<std::uint64_t, tsp::service_kinds> logged_losses{};
  std::uint64_t logged_given_up = 0;
  std::uint64_t logged_commit_failures = 0;
  std::uint64_t commit_failures = 0;
  std::atomic<std::uint64_t> damaged{0};
  std::mutex snapshot_mu;
  service_stats snapshot;

  tsp::server_machine machine;
  detail::driver driver;  // last: stopped before what it drives is destroyed
};

service::service(context& ctx, journal& j, service_options options, deferred_start_t)
    : impl_(std::make_unique<impl>(ctx, j, std::move(options))) {}

service::service(context& ctx, journal& j, service_options options)
    : service(ctx, j, std::move(options), deferred_start) {
  impl_->driver.start();
}

service::~service() = default;

void service::start() { impl_->driver.start(); }
result<void> service::run() { return impl_->driver.run(); }
void service::request_stop() noexcept { impl_->driver.request_stop(); }
void service::attach(reactor& r) { impl_->driver.attach(r); }
bool service::detach(reactor& r) noexcept { return impl_->driver.detach(r); }
bool service::stop(milliseconds timeout) noexcept { return impl_ ? impl_->driver.stop(timeout) : true; }
bool service::running() const noexcept { return impl_->driver.running(); }
std::exception_ptr service::failure() const noexcept { return impl_->driver.failure(); }
const service_options& service::options() const noexcept { return impl_->options; }

const std::string& service::replication_endpoint() const noexcept {
  static const std::string none;
  return impl_->source ? impl_->source->endpoint() : none;
}

service_stats service::stats(milliseconds timeout) {
  auto answer = impl_->driver.call(message{}, timeout);
  if (!answer) {
    if (answer.is(errc::timeout)) throw error(errc::timeout, "titanic service: its thread did not answer");
    throw error(errc::invalid_state, "titanic service: not running");
  }
  std::lock_guard lock(impl_->snapshot_mu);
  return impl_->snapshot;
}

}  // namespace fabric::titanic
