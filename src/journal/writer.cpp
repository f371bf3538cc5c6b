// The journal's writer: one thread per writing journal that takes everything appenders queued and
// commits it in as few LMDB transactions as it can (group commit), makes each commit durable as
// the durability mode says, and only then completes the appends. It also grows the map when full,
// and runs the bounded maintenance (expiry, schedules, dedup pruning, retention) inside its
// commits, plus a once-a-second pass when something is time-driven and the journal is idle.
#include <fabric/envelope.hpp>

#include "journal/journal_impl.hpp"

#include <algorithm>
#include <cstdio>
#include <future>

namespace fabric {

using namespace journal_detail;

void journal_detail::complete(journal::append_callback& done, result<std::uint64_t> r) noexcept {
  if (!done) return;
  try {
    done(std::move(r));
  } catch (...) {
    // A callback must not take the writer down; its owner learns nothing more here.
    std::fputs("fabric: a journal append callback threw; the exception was dropped\n", stderr);
  }
}

std::int64_t journal::impl::clock_now_ns() const {
  using namespace std::chrono;
  system_clock::time_point now;
  try {
    now = options.clock ? options.clock() : system_clock::now();
  } catch (...) {
    now = system_clock::now();  // a clock that throws must not take the writer down either
  }
  return duration_cast<nanoseconds>(now.time_since_epoch()).count();
}

int journal::impl::grow_map() {
  std::unique_lock lock(map_mutex);  // waits for in-flight reads to end
  const std::size_t current = map_size.load();
  if (current >= options.max_map_size) return MDB_MAP_FULL;
  const std::size_t next = std::min(current * 2, options.max_map_size);
  if (const int rc = mdb_env_set_mapsize(environment.get(), next); rc != 0) return rc;
  map_size.store(next);
  map_resizes.fetch_add(1);
  return 0;
}

journal_txn::state::stream_slot& journal::impl::slot_for(journal_txn::state& st, std::string_view stream) {
  if (st.cached != nullptr && st.cached_name == stream) return *st.cached;
  auto it = st.streams.find(stream);
  if (it == st.streams.end()) {
    journal_txn::state::stream_slot slot;
    slot.dbi = *dbi_for(st, db_name(stream), true);
    {
      std::lock_guard lock(dbi_mutex);
      if (auto known = last_seq.find(std::string(stream)); known != last_seq.end()) slot.last = known->second;
    }
    it = st.streams.emplace(std::string(stream), slot).first;
  }
  st.cached_name = it->first;  // node-based map: the key and slot stay put as it grows
  st.cached = &it->second;
  return it->second;
}

std::uint64_t journal::impl::append_in(journal_txn::state& st, std::string_view stream, std::string_view payload) {
  auto& slot = slot_for(st, stream);
  const MDB_dbi dbi = slot.dbi;
  const std::uint64_t seq = ++slot.last;
  std::byte key_bytes[8];
  encode_seq_key(seq, key_bytes);
  MDB_val key = to_val(key_bytes, sizeof key_bytes);
  MDB_val value{record_size(payload.size()), nullptr};
  if (const int rc = mdb_put(st.txn, dbi, &key, &value, MDB_APPEND | MDB_RESERVE); rc != 0)
    throw lmdb_failure{rc};
  const std::uint8_t flags = payload.substr(0, envelope_tag.size()) == envelope_tag ? flag_envelope : 0;
  encode_record(stream, seq, st.now_ns, flags, payload, static_cast<std::byte*>(value.mv_data));
  slot.bytes += static_cast<std::int64_t>(payload.size());
  st.changed = true;
  return seq;
}

std::uint64_t journal::impl::append_batch_in(journal_txn::state& st, const pending_append& a) {
  // Only finding (or creating) the stream can hit a budget: do it before writing anything, so a
  // refused batch leaves no record behind in the commit its neighbours share.
  try {
    slot_for(st, a.stream);
  } catch (const error&) {
    return 0;
  }
  const std::string_view all(a.payload);
  std::uint64_t first = 0;
  std::size_t offset = 0;
  for (const std::size_t size : a.batch_sizes) {
    const std::uint64_t seq = append_in(st, a.stream, all.substr(offset, size));
    if (first == 0) first = seq;
    offset += size;
  }
  return first;
}

std::int64_t journal::impl::remove_record(journal_txn::state& st, const std::string& stream, std::uint64_t seq) {
  const auto dbi = dbi_for(st, db_name(stream), false);
  if (!dbi) return -1;
  std::byte key_bytes[8];
  encode_seq_key(seq, key_bytes);
  MDB_val k = to_val(key_bytes, sizeof key_bytes);
  MDB_val v{};
  if (const int rc = mdb_get(st.txn, *dbi, &k, &v); rc != 0) {
    if (rc != MDB_NOTFOUND) throw lmdb_failure{rc};
    return -1;
  }
  const auto size = static_cast<std::int64_t>(v.mv_size >= record_header_size ? v.mv_size - record_header_size : 0);
  if (const int rc = mdb_del(st.txn, *dbi, &k, nullptr); rc != 0) throw lmdb_failure{rc};
  st.bytes_delta[stream] -= size;
  st.changed = true;
  return size;
}

// Moves the bytes appended per stream into the transaction's byte deltas, for retention and the
// persisted counts.
void journal::impl::fold_stream_bytes(journal_txn::state& st) {
  for (auto& [stream, slot] : st.streams) {
    if (slot.bytes != 0) st.bytes_delta[stream] += slot.bytes;
    slot.bytes = 0;
  }
}

// Records the last sequence of every stream this transaction appended to.
void journal::impl::persist_last_seqs(journal_txn::state& st) {
  for (const auto& [stream, slot] : st.streams) put_in(st, stream_last_db, stream, u64le_value(slot.last));
}

// Writes the per-stream byte counts this transaction changed.
void journal::impl::persist_stream_bytes(journal_txn::state& st) {
  const MDB_dbi bytes_dbi = *find_dbi(stream_bytes_db);
  std::lock_guard lock(dbi_mutex);
  for (const auto& [stream, delta] : st.bytes_delta) {
    if (delta == 0) continue;
    const auto total = static_cast<std::uint64_t>(static_cast<std::int64_t>(stream_bytes[stream]) + delta);
    const std::string encoded = u64le_value(total);
    MDB_val k = to_val(stream.data(), stream.size());
    MDB_val v = to_val(encoded.data(), encoded.size());
    if (const int rc = mdb_put(st.txn, bytes_dbi, &k, &v, 0); rc != 0) throw lmdb_failure{rc};
  }
}

// Publishes what a committed transaction created and advanced.
void journal::impl::publish(journal_txn::state& st) {
  std::lock_guard lock(dbi_mutex);
  for (auto& [name, dbi] : st.opened) dbis.emplace(name, dbi);
  for (auto& [stream, slot] : st.streams) last_seq[stream] = slot.last;
  for (auto& [stream, delta] : st.bytes_delta)
    stream_bytes[stream] = static_cast<std::uint64_t>(static_cast<std::int64_t>(stream_bytes[stream]) + delta);
}

// Runs a batch of appends, or one transaction, in one LMDB transaction; retries after growing the
// map. On success fills `seqs` (one per append).
int journal::impl::write_batch(std::span<pending_append> batch, std::vector<std::uint64_t>& seqs,
                               std::exception_ptr& txn_failure) {
  for (;;) {
    int rc = 0;
    txn t = begin(0, rc);
    if (rc != 0) return rc;
    journal_txn::state st{*this, t.get(), std::max(clock_now_ns(), last_ts), {}, {}};
    seqs.clear();
    txn_failure = nullptr;
    try {
      if (batch.size() == 1 && batch[0].txn) {
        journal_txn view(st);
        try {
          batch[0].txn->fn(view);
        } catch (const lmdb_failure&) {
          throw;
        } catch (...) {
          txn_failure = std::current_exception();  // the application's own failure: abort
        }
        if (!txn_failure && st.read_failure != 0) throw lmdb_failure{st.read_failure};
      } else {
        for (auto& a : batch) {
          if (a.deliver_at > 0) {
            seqs.push_back(add_scheduled(st, a.stream, a.payload, a.deliver_at));
            continue;
          }
          if (!a.batch_sizes.empty()) {
            seqs.push_back(append_batch_in(st, a));
            continue;
          }
          std::uint64_t seq = 0;
          try {
            seq = append_in(st, a.stream, a.payload);
          } catch (const error&) {
            seqs.push_back(0);  // past a budget: this append alone fails (see finish_batch)
            continue;
          }
          if (a.ttl_ns > 0) add_expiry(st, a.stream, seq, a.ttl_ns);
          seqs.push_back(seq);
        }
      }
      if (!txn_failure) {
        run_timed(st);
        fold_stream_bytes(st);
        prune_dedup(st);
        apply_retention(st);
        persist_stream_bytes(st);
        persist_last_seqs(st);
      }
    } catch (const lmdb_failure& f) {
      rc = f.rc;
    }
    if (txn_failure) return 0;  // t aborts on destruction; nothing was kept
    const bool maintenance_only = batch.empty();
    if (rc == 0 && maintenance_only && !st.changed) return 0;  // nothing to commit
    if (rc == 0) rc = t.commit();
    if (rc == MDB_MAP_FULL) {
      t.abort();
      if (const int grown = grow_map(); grown != 0) return grown;
      continue;  // retry the whole batch in the bigger map
    }
    if (rc != 0) return rc;
    publish(st);
    last_ts = st.now_ns;
    timed_entries = static_cast<std::uint64_t>(static_cast<std::int64_t>(timed_entries) + st.timed_delta);
    expired.fetch_add(st.expired, std::memory_order_relaxed);
    delivered_scheduled.fetch_add(st.delivered, std::memory_order_relaxed);
    return 0;
  }
}

// periodic: each commit's pages are already on disk (MDB_NOMETASYNC); the last commit's meta page
// is not, and until it is a crash could undo that commit. Only after this sync may the appends and
// transactions committed since the previous one be completed. run_writer decides when.
void journal::impl::sync_now() {
  const int rc = mdb_env_sync(environment.get(), 1);
  if (rc != 0) {
    std::fprintf(stderr, "fabric: journal %s: fsync failed: %s\n", dir.c_str(), mdb_strerror(rc));
  } else {
    syncs.fetch_add(1, std::memory_order_relaxed);
  }
  // In the order they were handed over: appends and transactions interleaved as committed.
  std::size_t next = 0;
  const auto complete_appends_to = [&](std::size_t end) {
    for (; next < end; ++next) {
      auto& c = unsynced[next];
      complete(c.done, rc != 0 ? result<std::uint64_t>(lmdb_error(rc)) : result<std::uint64_t>(c.seq));
    }
  };
  for (auto& t : unsynced_txns) {
    complete_appends_to(t.after_appends);
    t.done(rc, t.failure);
  }
  complete_appends_to(unsynced.size());
  unsynced.clear();
  unsynced_txns.clear();
}

// Hands an append (or a scheduled record) to the writer, or completes it at once with why not.
void journal::impl::enqueue(pending_append&& work) {
  if (read_only()) {
    complete(work.done, errc::invalid_state);
    return;
  }
  if (!valid_stream_name(work.stream)) {
    complete(work.done, errc::too_large);
    return;
  }
  if (work.batch_sizes.empty()) {
    if (work.payload.size() > options.max_record_size) {
      complete(work.done, errc::too_large);
      return;
    }
  } else if (work.batch_sizes.size() > options.max_batch || work.batch_sizes.size() > options.max_pending) {
    // A batch must fit one commit and the queue whole: one that never could is refused, not split
    // (append_batch checked its payloads' sizes already).
    complete(work.done, errc::too_large);
    return;
  }
  const std::size_t records = work.records();
  // A refusal is decided under the lock but reported after it, so a callback may append again.
  std::optional<errc> refused;
  bool was_empty = false;
  {
    std::lock_guard lock(queue_mutex);
    if (stopping) {
      refused = errc::closed;
    } else if (queued_records + records > options.max_pending) {
      refused = errc::back_pressure;
    } else {
      // The writer sleeps only on an empty queue: a push onto a non-empty one needs no wake-up.
      was_empty = queue.empty();
      queue.push_back(std::move(work));
      queued_records += records;
    }
  }
  if (refused) {
    complete(work.done, *refused);
    return;
  }
  if (was_empty) queue_cv.notify_one();
}

// The number of entries in the unit of work starting at `from`: one transaction alone, or the run
// of appends before the next transaction holding at most max_batch records. A batch is never cut:
// it ends the unit before it when it does not fit (enqueue refused any over max_batch alone).
std::size_t journal::impl::unit_at(const std::vector<pending_append>& taken, std::size_t from) const {
  if (taken[from].txn) return 1;
  std::size_t n = 0;
  std::size_t records = 0;
  while (from + n < taken.size() && !taken[from + n].txn) {
    const std::size_t more = taken[from + n].records();
    if (n > 0 && records + more > options.max_batch) break;
    records += more;
    ++n;
  }
  return n;
}

void journal::impl::finish_batch(std::span<pending_append> batch, const std::vector<std::uint64_t>& seqs,
                                 int rc, std::exception_ptr txn_failure, bool periodic) {
  const bool is_txn = batch.size() == 1 && batch[0].txn;
  if (rc != 0) {
    std::fprintf(stderr, "fabric: journal %s: a commit of %zu %s failed: %s\n", dir.c_str(),
                 batch.size(), is_txn ? "transaction" : "appends", mdb_strerror(rc));
    for (auto& a : batch) {
      if (is_txn) a.txn->done(rc, nullptr);
      else complete(a.done, lmdb_error(rc));
    }
    return;
  }
  if (is_txn) {
    if (txn_failure) {
      batch[0].txn->done(0, txn_failure);  // nothing committed: nothing to wait for
      return;
    }
    commits.fetch_add(1, std::memory_order_relaxed);
    if (periodic) unsynced_txns.push_back({std::move(batch[0].txn->done), nullptr, unsynced.size()});
    else batch[0].txn->done(0, nullptr);
    return;
  }
  commits.fetch_add(1, std::memory_order_relaxed);
  std::uint64_t records = 0;
  for (const auto& a : batch) records += a.records();
  appends.fetch_add(records, std::memory_order_relaxed);
  std::uint64_t largest = largest_batch.load(std::memory_order_relaxed);
  while (records > largest && !largest_batch.compare_exchange_weak(largest, records)) {
  }
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (seqs[i] == 0) complete(batch[i].done, errc::too_large);  // refused before LMDB
    else if (periodic) unsynced.push_back({seqs[i], std::move(batch[i].done)});
    else complete(batch[i].done, seqs[i]);
  }
}

void journal::impl::run_writer() {
  using clock = std::chrono::steady_clock;
  const bool periodic = options.mode == durability::periodic;
  // periodic: when the oldest commit not yet synced was made. Syncing when the queue runs dry
  // gives a lone append sync mode's latency; the interval bounds how long a busy writer lets
  // commits pile up, so under load one sync still serves every commit of an interval.
  clock::time_point first_unsynced{};
  // Age-based retention must trim idle streams too: the writer then wakes once a second.
  constexpr auto maintenance_interval = std::chrono::seconds(1);
  auto next_maintenance = clock::now() + maintenance_interval;
  std::vector<pending_append> taken;  // swapped with the queue: its capacity is reused both ways
  std::vector<std::uint64_t> seqs;
  for (;;) {
    const bool ages = has_age_limits() || timed_entries > 0;
    {
      std::unique_lock lock(queue_mutex);
      auto wake = clock::time_point::max();
      // With commits unsynced the loop comes back here only when work is queued, so this wait
      // returns at once; the deadline keeps the interval should that ever change.
      if (periodic && has_unsynced()) wake = first_unsynced + options.sync_interval;
      if (ages) wake = std::min(wake, next_maintenance);
      auto ready = [&] { return !queue.empty() || stopping || replan; };
      if (wake == clock::time_point::max()) queue_cv.wait(lock, ready);
      else queue_cv.wait_until(lock, wake, ready);
      replan = false;
      taken.clear();
      taken.swap(queue);  // everything queued, in O(1)
      queued_records = 0;
      if (taken.empty() && stopping) break;
    }
    if (taken.empty() && ages && clock::now() >= next_maintenance) {
      std::exception_ptr ignored;
      if (const int rc = write_batch({}, seqs, ignored); rc != 0)
        std::fprintf(stderr, "fabric: journal %s: retention pass failed: %s\n", dir.c_str(), mdb_strerror(rc));
      next_maintenance = clock::now() + maintenance_interval;
    }
    for (std::size_t at = 0; at < taken.size();) {
      const bool had_unsynced = has_unsynced();
      const std::span<pending_append> unit(taken.data() + at, unit_at(taken, at));
      std::exception_ptr txn_failure;
      const int rc = write_batch(unit, seqs, txn_failure);
      finish_batch(unit, seqs, rc, txn_failure, periodic);
      at += unit.size();
      if (!periodic || !has_unsynced()) continue;
      const auto now = clock::now();
      if (!had_unsynced) first_unsynced = now;
      bool more_work = at < taken.size();
      if (!more_work) {
        std::lock_guard lock(queue_mutex);
        more_work = !queue.empty();
      }
      if (!more_work || now - first_unsynced >= options.sync_interval) sync_now();
    }
    // Reached with commits unsynced only through the deadline above, should the loop ever sleep
    // on them: the interval still holds.
    if (periodic && has_unsynced() && clock::now() - first_unsynced >= options.sync_interval) sync_now();
  }
  if (has_unsynced()) sync_now();
}

result<std::uint64_t> journal::impl::enqueue_and_wait(pending_append&& work) {
  auto promise = std::make_shared<std::promise<result<std::uint64_t>>>();
  auto future = promise->get_future();
  work.done = [promise](result<std::uint64_t> r) { promise->set_value(std::move(r)); };
  enqueue(std::move(work));
  return future.get();
}

// ---- the public face of appending

void journal::append(std::string_view stream, std::string_view payload, append_callback done) {
  pending_append work;
  work.stream = std::string(stream);
  work.payload = std::string(payload);
  work.done = std::move(done);
  impl_->enqueue(std::move(work));
}

void journal::append(std::string_view stream, std::string_view payload, completion_queue& queue,
                     std::uint64_t token) {
  // Two words of capture: std::function keeps them inline, so this costs no allocation more
  // than a callback does.
  append(stream, payload, [q = &queue, token](result<std::uint64_t> r) { q->push(token, std::move(r)); });
}

std::future<result<std::uint64_t>> journal::append(std::string_view stream, std::string_view payload) {
  auto promise = std::make_shared<std::promise<result<std::uint64_t>>>();
  auto future = promise->get_future();
  append(stream, payload, [promise](result<std::uint64_t> r) { promise->set_value(std::move(r)); });
  return future;
}

result<std::uint64_t> journal::append_wait(std::string_view stream, std::string_view payload) {
  return append(stream, payload).get();
}

void journal::append_batch(std::string_view stream, std::span<const std::string_view> payloads,
                           append_callback done) {
  if (payloads.empty()) {
    complete(done, errc::invalid_argument);
    return;
  }
  pending_append work;
  work.stream = std::string(stream);
  // Sizes are checked by enqueue: copy nothing of a batch that cannot be taken.
  if (payloads.size() > impl_->options.max_batch || payloads.size() > impl_->options.max_pending) {
    complete(done, errc::too_large);
    return;
  }
  std::size_t total = 0;
  for (const auto p : payloads) {
    if (p.size() > impl_->options.max_record_size) {
      complete(done, errc::too_large);
      return;
    }
    total += p.size();
  }
  work.payload.reserve(total);
  work.batch_sizes.reserve(payloads.size());
  for (const auto p : payloads) {
    work.payload.append(p);
    work.batch_sizes.push_back(p.size());
  }
  work.done = std::move(done);
  impl_->enqueue(std::move(work));
}

void journal::append_batch(std::string_view stream, std::span<const std::string_view> payloads,
                           completion_queue& queue, std::uint64_t token) {
  append_batch(stream, payloads, [q = &queue, token](result<std::uint64_t> r) { q->push(token, std::move(r)); });
}

std::future<result<std::uint64_t>> journal::append_batch(std::string_view stream,
                                                         std::span<const std::string_view> payloads) {
  auto promise = std::make_shared<std::promise<result<std::uint64_t>>>();
  auto future = promise->get_future();
  append_batch(stream, payloads, [promise](result<std::uint64_t> r) { promise->set_value(std::move(r)); });
  return future;
}

result<std::uint64_t> journal::append_batch_wait(std::string_view stream, std::span<const std::string_view> payloads) {
  return append_batch(stream, payloads).get();
}

std::uint64_t journal_txn::append(std::string_view stream, std::string_view payload) {
  if (!valid_stream_name(stream) || payload.size() > state_.owner.options.max_record_size)
    throw error(errc::too_large, "journal_txn::append: bad stream name or payload too large");
  return state_.owner.append_in(state_, stream, payload);
}

result<void> journal::transact(const std::function<void(journal_txn&)>& fn) {
  auto promise = std::make_shared<std::promise<result<void>>>();
  auto future = promise->get_future();
  // `fn` outlives the transaction: this call waits for it.
  transact([&fn](journal_txn& t) { fn(t); }, [promise](result<void> outcome, std::exception_ptr thrown) {
    if (thrown) promise->set_exception(thrown);
    else promise->set_value(std::move(outcome));
  });
  return future.get();
}

void journal::transact(std::function<void(journal_txn&)> fn, transact_callback done) {
  if (impl_->read_only()) {
    done(errc::invalid_state, nullptr);
    return;
  }
  pending_append work;
  work.txn = std::make_unique<pending_append::transaction>();
  work.txn->fn = std::move(fn);
  auto shared_done = std::make_shared<transact_callback>(std::move(done));
  work.txn->done = [shared_done](int rc, std::exception_ptr thrown) {
    if (thrown) (*shared_done)(result<void>(), thrown);
    else if (rc != 0) (*shared_done)(lmdb_error(rc), nullptr);
    else (*shared_done)(result<void>(), nullptr);
  };
  bool closing = false;
  {
    std::lock_guard lock(impl_->queue_mutex);
    closing = impl_->stopping;
    if (!closing) {
      impl_->queue.push_back(std::move(work));
      ++impl_->queued_records;
    }
  }
  if (closing) {
    (*shared_done)(errc::closed, nullptr);
    return;
  }
  impl_->queue_cv.notify_one();
}

}  // namespace fabric
