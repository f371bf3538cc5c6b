// fabric::titanic::replica: the passive node's side of Titanic replication (docs/ha.md,
// section 9), on the shared driver. It asks the active node for the entries after its position
// (FTR/1 fetch), applies each answer to its own journal in one transaction with the position it
// reaches, and asks again: the next fetch is its acknowledgement. Told to resync, it empties
// the service's tables and copies the active node's requests page by page, then follows the log
// from where the copy began; the entries after that point may meet what the copy already holds,
// which store::apply(follower) lets pass.
#include <fabric/titanic.hpp>

#include "core/driver.hpp"
#include "reliability/titanic_replication.hpp"
#include "reliability/titanic_store.hpp"
#include "reliability/tsp_faults.hpp"

#include <fabric/error.hpp>
#include <fabric/router_dealer.hpp>

#include <algorithm>
#include <atomic>
#include <mutex>

namespace fabric::titanic {

using detail::time_point;
using std::chrono::milliseconds;
using store::be64;
using store::log_point;

namespace {

// Rows erased per transaction when the tables are emptied for a copy.
constexpr std::size_t wipe_page = 1024;
// After a failed transaction, the replica asks again this long after.
constexpr milliseconds retry_after{100};
// A page of requests handed over holds at most this many, or about this many bytes; it is asked
// about this many times (retry_after apart) before it is given up.
constexpr std::size_t handoff_page_requests = 256;
constexpr std::size_t handoff_page_bytes = std::size_t{4} << 20;
constexpr int max_page_tries = 100;

replica_options checked(replica_options o) {
  if (o.peer.empty()) throw error(errc::invalid_argument, "titanic replica: give the active node's endpoint");
  if (o.timeout < milliseconds(10) || o.timeout > std::chrono::hours(1))
    throw error(errc::invalid_argument, "titanic replica: timeout must be 10 ms .. 1 h");
  if (o.backlog == 0) throw error(errc::invalid_argument, "titanic replica: backlog must be positive");
  if (o.max_fetch_bytes == 0) throw error(errc::invalid_argument, "titanic replica: max_fetch_bytes must be positive");
  return o;
}

socket_options replica_socket(const replica_options& o) {
  socket_options so = o.socket;
  so.routing_id.clear();
  so.linger = milliseconds(0);
  so.immediate = false;
  so.send_hwm = 0;
  so.recv_hwm = 0;
  so.max_frames = 1024;  // a records answer: 2 + at most 256 entries; a snapshot page: 2 + 512
  return so;
}

}  // namespace

struct replica::impl {
  impl(context& c, journal& jr, replica_options o)
      : j(jr), options(checked(std::move(o))), sock(c, replica_socket(options)), driver(c, "titanic replica") {
    auto head = store::read_head(j);
    if (!head) throw error(head.error(), "titanic replica: the log's head could not be read");
    at = *head;
    auto base = j.get(store::pair_table, store::base_key);
    if (!base) throw error(base.error(), "titanic replica: the log's base could not be read");
    if (*base) {
      if (auto p = store::decode_point(**base)) based = *p;
    }
    // As the service keeps it: records no open request needs are trimmed.
    retention_policy keep;
    keep.max_records = 1;
    keep.ack_cursors = {std::string(store::trimmed_cursor)};
    if (auto r = j.set_retention(service::requests_stream, keep); !r)
      throw error(r.error(), "titanic replica: the requests stream's retention could not be set");
    sock.connect(options.peer);
    driver.watch(sock, [this](message&& m, time_point now) { on_message(std::move(m), now); });
    driver.ticks([this](time_point now) { on_tick(now); }, [this] { return next; });
    driver.commands([this](message&&) {
      std::lock_guard lock(mu);
      snapshot = counters;
      snapshot.position = at.position;
      snapshot.term = at.term;
      snapshot.caught_up = ready.load();
      return message{};
    });
    next = time_point::min();  // the first fetch at once
    driver.start();
  }

  ~impl() { driver.stop(); }
  impl(const impl&) = delete;
  impl& operator=(const impl&) = delete;

  void log_line(log_level level, const std::string& line) {
    if (options.log) options.log(level, "titanic replica: " + line);
  }

  // The question in progress goes (again) now.
  void ask(time_point now) {
    message m;
    switch (now_doing) {
      case phase::following:
        m = repl::build_fetch(at, static_cast<std::uint32_t>(std::min<std::size_t>(options.max_fetch_bytes, UINT32_MAX)));
        ++counters.fetches;
        break;
      case phase::handing:
        m = repl::build_handoff();
        for (const auto& f : page) m.push_back(f);
        break;
      case phase::copying: m = repl::build_snapshot_fetch(cursor); break;
    }
    if (!sock.try_send(std::move(m))) {
      next = now + retry_after;
      return;
    }
    asked = now;
    next = now + options.timeout;
  }

  void on_tick(time_point now) {
    if (now < next) return;
    if (asked != time_point::min() && now - asked >= options.timeout) {
      // Silence: a fresh connection (what the old one held is dropped), and the question again.
      ++counters.reconnects;
      try {
        sock.disconnect(options.peer);
      } catch (const std::exception&) {  // already gone
      }
      sock.connect(options.peer);
    }
    ask(now);
  }

  void on_message(message&& m, time_point now) {
    const repl::parsed p = repl::parse(m);
    bool ok = false;
    if (const auto* r = std::get_if<repl::records_fields>(&p)) {
      ok = now_doing == phase::following && on_records(*r, m);
    } else if (const auto* rs = std::get_if<repl::resync_fields>(&p)) {
      ok = now_doing == phase::following && start_handoff(*rs);
    } else if (const auto* h = std::get_if<repl::handed_fields>(&p)) {
      if (now_doing != phase::handing) return;  // an answer to a question no longer asked
      if (!on_handed(*h)) {
        next = now + retry_after;  // the active node is still storing them: asked again
        asked = time_point::min();
        return;
      }
      ok = true;
    } else if (const auto* s = std::get_if<repl::snapshot_fields>(&p)) {
      ok = now_doing == phase::copying && on_snapshot(*s, m);
    } else {
      ++counters.malformed;
    }
    if (!ok) {
      next = now + retry_after;  // asked again, after a pause
      asked = time_point::min();
      return;
    }
    ask(now);
  }

  bool on_records(const repl::records_fields& r, const message& m) {
    std::vector<std::pair<std::uint64_t, store::ops>> entries;
    std::vector<std::string_view> raw;
    std::uint64_t expect = at.position + 1;
    for (std::size_t i = 2; i < m.size(); ++i) {
      std::uint64_t pos = 0;
      std::string_view payload;
      store::ops o;
      if (!repl::split_entry(m.view(i), pos, payload) || pos != expect || !store::decode_ops(payload, o)) {
        ++counters.malformed;
        return false;
      }
      entries.emplace_back(pos, std::move(o));
      raw.push_back(payload);
      ++expect;
    }
    if (!entries.empty() && !apply(entries, raw)) return false;
    const bool now_ready = at == r.head;
    // Said once each time the replica reaches the active node's head: from then on this node may
    // take over (section 9.3), which operators and the pair tests wait for.
    if (now_ready && !ready.load())
      log_line(log_level::info, "caught up with the active node at entry " + std::to_string(at.position));
    ready.store(now_ready);
    return true;
  }

  // The entries in one transaction, with the position they reach; the log keeps `backlog`.
  bool apply(const std::vector<std::pair<std::uint64_t, store::ops>>& entries, const std::vector<std::string_view>& raw) {
    const log_point last{entries.back().first, entries.back().second.term};
    log_point trim = based;
    if (last.position > options.backlog && last.position - options.backlog > based.position) {
      const std::uint64_t to = std::min(last.position - options.backlog, based.position + 1024);
      auto v = j.get(store::replog_table, be64(to));
      trim = {to, v && *v ? store::ops_term(**v) : 0};
    }
    const auto trimmed = trim_point();
    std::uint64_t max_term = 0;
    auto r = j.transact([&](journal_txn& t) {
      std::vector<std::uint64_t> seqs;
      for (std::size_t i = 0; i < entries.size(); ++i) {
        const auto& [pos, o] = entries[i];
        if (!tsp::faults::replica_skips_apply()) store::apply(t, o.changes, o.wall_ns, seqs, true);
        t.put(store::replog_table, be64(pos), raw[i]);
        max_term = std::max(max_term, o.term);
      }
      t.put(store::pair_table, store::head_key, store::encode_point(last));
      raise_term(t, max_term);
      if (trim.position > based.position) {
        for (std::uint64_t p = based.position + 1; p <= trim.position; ++p) t.erase(store::replog_table, be64(p));
        t.put(store::pair_table, store::base_key, store::encode_point(trim));
      }
      if (!seqs.empty()) t.set_cursor(store::scanned_cursor, seqs.back());
      if (trimmed) t.set_cursor(store::trimmed_cursor, *trimmed);
    });
    if (!r) {
      ++counters.apply_failures;
      log_line(log_level::error, "a batch could not be applied: " + r.error().message());
      return false;
    }
    at = last;
    based = trim;
    counters.entries_applied += entries.size();
    return true;
  }

  static void raise_term(journal_txn& t, std::uint64_t term) {
    auto kept = t.get(store::pair_table, store::term_key);
    std::uint64_t have = 0;
    if (kept && *kept && (*kept)->size() == 8)
      have = detail::load_be<std::uint64_t>(reinterpret_cast<const unsigned char*>((*kept)->data()));
    if (term > have) t.put(store::pair_table, store::term_key, be64(term));
  }

  // Where the requests stream may be trimmed to (below the oldest open request), at most once a
  // second, as the service does.
  std::optional<std::uint64_t> trim_point() {
    const auto now = detail::machine_clock::now();
    if (now < next_trim) return std::nullopt;
    next_trim = now + std::chrono::seconds(1);
    return store::trim_point(j);
  }

  // Told to resync: first the requests this node accepted that the active node may lack (those
  // stored by the entries of this log after the point where the two may agree, and still held
  // here) are handed over, page by page; then the journal is copied afresh.
  bool start_handoff(const repl::resync_fields& r) {
    ready.store(false);
    ++counters.resyncs;
    log_line(log_level::warning, "the log parted from the active node's or is too far behind: handing over "
                                 "what only this node holds, then copying afresh");
    handoff_after = based.position;
    if (r.agree.position >= based.position && r.agree.position <= at.position) {
      std::uint64_t mine = 0;
      if (r.agree.position == at.position) {
        mine = at.term;
      } else if (r.agree.position == based.position) {
        mine = based.term;
      } else if (auto v = j.get(store::replog_table, be64(r.agree.position)); v && *v) {
        mine = store::ops_term(**v);
      }
      if (mine == r.agree.term) handoff_after = r.agree.position;
    }
    now_doing = phase::handing;
    page_tries = 0;
    return next_page() || start_copy();
  }

  // The next page of requests to hand over, from the entries after handoff_after. False when
  // there is none left.
  bool next_page() {
    page.clear();
    std::size_t bytes = 0;
    std::size_t requests = 0;
    while (requests < handoff_page_requests && bytes < handoff_page_bytes) {
      auto entries = j.table_entries(store::replog_table, be64(handoff_after), 16);
      if (!entries || entries->empty()) break;
      for (const auto& [k, v] : *entries) {
        if (k.size() != 8) continue;
        handoff_after = detail::load_be<std::uint64_t>(reinterpret_cast<const unsigned char*>(k.data()));
        store::ops o;
        if (!store::decode_ops(v, o)) continue;
        for (auto& c : o.changes) {
          if (c.kind != tsp::change_kind::stored) continue;
          auto row = j.get(service::state_table, store::uuid_key(c.id));
          if (!row || !*row) continue;  // closed here since: its client is done with it
          std::vector<tsp::request_change> one;
          one.push_back(std::move(c));
          page.push_back(store::encode_ops(0, o.wall_ns, one));
          bytes += page.back().size();
          ++requests;
        }
        if (requests >= handoff_page_requests || bytes >= handoff_page_bytes) break;
      }
    }
    page_tries = 0;
    return !page.empty();
  }

  // The active node's answer to a page: on to the next page, or to the copy, once it holds them
  // all. False while it does not (it is storing them); a page it never takes is given up after a
  // bound, logged.
  bool on_handed(const repl::handed_fields& h) {
    if (h.held < h.total && ++page_tries < max_page_tries) return false;
    if (h.held < h.total) {
      log_line(log_level::error, std::to_string(h.total - h.held) +
                                     " request(s) could not be handed over to the active node and go with this "
                                     "node's copy of the journal");
    }
    counters.handed_over += h.held;
    if (next_page()) return true;
    return start_copy();
  }

  // Empties the service's tables and the log, to copy the active node's requests afresh.
  bool start_copy() {
    for (const std::string_view table : {service::state_table, service::open_table, service::replies_table,
                                         service::keys_table, service::finished_table, store::replog_table}) {
      for (;;) {
        auto rows = j.table_entries(table, {}, wipe_page);
        if (!rows) return fail(rows.error());
        if (rows->empty()) break;
        auto r = j.transact([&](journal_txn& t) {
          for (const auto& row : *rows) t.erase(table, row.first);
        });
        if (!r) return fail(r.error());
      }
    }
    auto last = j.last_seq(service::requests_stream);
    if (!last) return fail(last.error());
    auto r = j.transact([&](journal_txn& t) {
      t.erase(store::pair_table, store::head_key);
      t.erase(store::pair_table, store::base_key);
      // The old records belong to no request any more: past the scan at start, and trimmed.
      if (*last) {
        t.set_cursor(store::scanned_cursor, **last);
        t.set_cursor(store::trimmed_cursor, **last);
      }
    });
    if (!r) return fail(r.error());
    at = {};
    based = {};
    now_doing = phase::copying;
    page.clear();
    cursor.reset();
    start.reset();
    return true;
  }

  bool fail(const std::error_code& e) {
    ++counters.apply_failures;
    log_line(log_level::error, "the journal failed while copying: " + e.message());
    return false;
  }

  bool on_snapshot(const repl::snapshot_fields& s, const message& m) {
    ++counters.snapshot_pages;
    if (!start) start = s.start;
    std::vector<store::ops> pages;
    for (std::size_t i = 2; i < m.size(); ++i) {
      store::ops o;
      if (!store::decode_ops(m.view(i), o)) {
        ++counters.malformed;
        return false;
      }
      pages.push_back(std::move(o));
    }
    auto r = j.transact([&](journal_txn& t) {
      std::vector<std::uint64_t> seqs;
      for (const auto& o : pages) store::apply(t, o.changes, o.wall_ns, seqs, true);
      if (s.done) {
        // The log starts where the copy began: the entries after it come by fetch.
        t.put(store::pair_table, store::head_key, store::encode_point(*start));
        t.put(store::pair_table, store::base_key, store::encode_point(*start));
        raise_term(t, start->term);
      }
      if (!seqs.empty()) t.set_cursor(store::scanned_cursor, seqs.back());
    });
    if (!r) return fail(r.error());
    cursor = s.last;
    if (s.done) {
      at = *start;
      based = *start;
      now_doing = phase::following;
      log_line(log_level::info, "copy done; following from entry " + std::to_string(at.position));
    }
    return true;
  }

  journal& j;
  replica_options options;
  dealer sock;
  log_point at;      // the last entry applied
  log_point based;   // the last entry trimmed from this journal's log
  enum class phase : std::uint8_t { following, handing, copying };
  phase now_doing = phase::following;
  std::uint64_t handoff_after = 0;  // handing: the last entry of this log looked through
  std::vector<std::string> page;    // handing: the page of requests being handed over
  int page_tries = 0;
  std::optional<tsp::uuid> cursor;  // copying: the last request copied
  std::optional<log_point> start;   // copying: where the copy began
  time_point next = time_point::max();
  time_point asked = time_point::min();
  time_point next_trim{};
  std::atomic<bool> ready{false};
  replica_stats counters;
  std::mutex mu;
  replica_stats snapshot;
  detail::driver driver;  // last: stopped before what it drives is destroyed
};

replica::replica(context& ctx, journal& j, replica_options options)
    : impl_(std::make_unique<impl>(ctx, j, std::move(options))) {}

replica::~replica() = default;

bool replica::caught_up() const noexcept { return impl_->ready.load(); }

replica_stats replica::stats(milliseconds timeout) {
  auto answer = impl_->driver.call(message{}, timeout);
  if (!answer) {
    if (answer.is(errc::timeout)) throw error(errc::timeout, "titanic replica: its thread did not answer");
    throw error(errc::invalid_state, "titanic replica: not running");
  }
  std::lock_guard lock(impl_->mu);
  return impl_->snapshot;
}

bool replica::stop(milliseconds timeout) noexcept { return impl_->driver.stop(timeout); }
bool replica::running() const noexcept { return impl_->driver.running(); }
std::exception_ptr replica::failure() const noexcept { return impl_->driver.failure(); }

std::uint64_t stored_term(const journal& j) {
  auto t = store::read_term(j);
  if (!t) throw error(t.error(), "titanic: the journal's term could not be read");
  return *t / 2;
}

}  // namespace fabric::titanic
