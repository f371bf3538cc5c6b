// Dedup: per (producer, stream) the highest contiguous sequence seen plus a bounded window of
// out-of-order ones, and an index of message ids forgotten by age and count. The check and the
// mark happen in the caller's transaction, which is what makes processing effectively once.
//
//   x/dedup-marks  : len8 producer len8 pstream -> u64le contiguous u64le window-count
//   x/dedup-window : len8 producer len8 pstream u64be seq -> (empty)   ; seqs above contiguous
//   x/dedup-ids    : len8 producer id -> i64le time-marked
//   x/dedup-times  : time len8 producer id -> (empty)                  ; forgetting order
//
// A check never answers "not seen" when it could not look: an LMDB failure or a damaged mark is
// an error.
#include "journal/journal_impl.hpp"

namespace fabric {

using namespace journal_detail;

namespace {

// A (producer, stream)'s mark: the highest contiguous sequence seen, and how many sequences above
// it are remembered in the window.
struct dedup_mark {
  std::uint64_t contiguous = 0;
  std::uint64_t window = 0;
};

constexpr std::size_t mark_value_size = 16;

dedup_mark read_mark(MDB_txn* t, MDB_dbi marks, const std::string& key) {
  MDB_val k = to_val(key.data(), key.size());
  MDB_val v{};
  const int rc = mdb_get(t, marks, &k, &v);
  if (rc == MDB_NOTFOUND) return {};
  if (rc != 0) throw lmdb_failure{rc};
  // A damaged mark cannot say what was seen: guessing "nothing" would let duplicates through.
  if (v.mv_size != mark_value_size)
    throw error(errc::malformed, "a dedup mark is " + std::to_string(v.mv_size) + " bytes, not 16: the journal is damaged");
  const auto* bytes = static_cast<const char*>(v.mv_data);
  return {detail::load_le<std::uint64_t>(bytes), detail::load_le<std::uint64_t>(bytes + 8)};
}

bool lmdb_exists(MDB_txn* t, MDB_dbi dbi, std::string_view key) {
  MDB_val k = to_val(key.data(), key.size());
  MDB_val v{};
  const int rc = mdb_get(t, dbi, &k, &v);
  if (rc != 0 && rc != MDB_NOTFOUND) throw lmdb_failure{rc};
  return rc == 0;
}

std::string window_key(const std::string& mark_key, std::uint64_t seq) {
  std::string k = mark_key;
  detail::append_be(k, seq);
  return k;
}

}  // namespace

void journal_detail::check_dedup_key(const dedup_key& k) {
  // Keys of the dedup databases carry both names plus 10 bytes, within LMDB's 511-byte limit.
  if (k.producer.empty() || k.producer.size() > 255 || k.stream.size() > 255 ||
      k.producer.size() + k.stream.size() > 500)
    throw error(errc::invalid_argument,
                "dedup_key: producer must be 1-255 bytes, stream 0-255, and both together at most 500");
  if (k.seq == 0 && k.id.is_zero())
    throw error(errc::invalid_argument, "dedup_key: needs a sequence number, an id, or both");
}

bool journal_detail::already_seen(MDB_txn* t, const dedup_dbs& dbs, const dedup_key& key) {
  if (!key.id.is_zero() && lmdb_exists(t, dbs.ids, dedup_id_key(key))) return true;
  if (key.seq == 0) return false;
  const std::string mark_key = dedup_mark_key(key);
  if (key.seq <= read_mark(t, dbs.marks, mark_key).contiguous) return true;
  return lmdb_exists(t, dbs.window, window_key(mark_key, key.seq));
}

dedup_verdict journal_txn::mark_seen(const dedup_key& key) {
  check_dedup_key(key);
  const dedup_dbs dbs = *state_.owner.dedup_dbis();
  MDB_txn* t = state_.txn;
  if (already_seen(t, dbs, key)) return dedup_verdict::duplicate;

  auto put = [&](MDB_dbi dbi, const std::string& k, const std::string& v) {
    MDB_val kv = to_val(k.data(), k.size());
    MDB_val vv = to_val(v.data(), v.size());
    if (const int rc = mdb_put(t, dbi, &kv, &vv, 0); rc != 0) throw lmdb_failure{rc};
  };
  if (!key.id.is_zero()) {
    const std::string id_key = dedup_id_key(key);
    put(dbs.ids, id_key, u64le_value(static_cast<std::uint64_t>(state_.now_ns)));
    std::string time_key;
    append_time(time_key, state_.now_ns);
    time_key += id_key;
    put(dbs.times, time_key, std::string());
  }
  if (key.seq == 0) return dedup_verdict::fresh;

  const std::string mark_key = dedup_mark_key(key);
  dedup_mark mark = read_mark(t, dbs.marks, mark_key);
  auto take_from_window = [&](std::uint64_t seq) {
    std::string k = window_key(mark_key, seq);
    MDB_val kv = to_val(k.data(), k.size());
    const int rc = mdb_del(t, dbs.window, &kv, nullptr);
    if (rc == MDB_NOTFOUND) return false;
    if (rc != 0) throw lmdb_failure{rc};
    --mark.window;
    return true;
  };
  if (key.seq == mark.contiguous + 1) {
    mark.contiguous = key.seq;
  } else {
    put(dbs.window, window_key(mark_key, key.seq), std::string());
    ++mark.window;
    if (mark.window > state_.owner.options.dedup_max_window) {
      // Too many gaps held open: give up the lowest one, jumping the mark to the lowest sequence
      // remembered above it.
      int rc = 0;
      journal_detail::cursor c(t, dbs.window, rc);
      if (rc != 0) throw lmdb_failure{rc};
      std::string from = window_key(mark_key, mark.contiguous + 1);
      MDB_val k = to_val(from.data(), from.size());
      MDB_val v{};
      if (c.get(k, v, MDB_SET_RANGE) == 0 && k.mv_size == mark_key.size() + 8 &&
          std::string_view(static_cast<const char*>(k.mv_data), mark_key.size()) == mark_key) {
        const std::uint64_t lowest = detail::load_be<std::uint64_t>(static_cast<const char*>(k.mv_data) + mark_key.size());
        mark.contiguous = lowest - 1;
      }
    }
  }
  // Absorb the window entries that now continue the contiguous run.
  while (mark.window > 0 && take_from_window(mark.contiguous + 1)) ++mark.contiguous;
  std::string value;
  detail::append_le(value, mark.contiguous);
  detail::append_le(value, mark.window);
  put(dbs.marks, mark_key, value);
  return dedup_verdict::fresh;
}

// Bounded per commit, so the work spreads over the writer's commits instead of stalling one.
void journal::impl::prune_dedup(journal_txn::state& st) {
  const MDB_dbi times = *find_dbi(dedup_times_db);
  const MDB_dbi ids = *find_dbi(dedup_ids_db);
  MDB_stat stat{};
  if (mdb_stat(st.txn, times, &stat) != 0 || stat.ms_entries == 0) return;
  std::size_t entries = stat.ms_entries;
  const std::int64_t oldest_kept = add_saturating(st.now_ns, -to_ns_saturating(options.dedup_max_age));
  int rc = 0;
  journal_detail::cursor c(st.txn, times, rc);
  if (rc != 0) return;
  MDB_val key{}, value{};
  for (int budget = 256; budget > 0 && c.get(key, value, MDB_FIRST) == 0; --budget) {
    if (key.mv_size < 9) break;
    const std::int64_t ts = from_sortable_time(detail::load_be<std::uint64_t>(static_cast<const char*>(key.mv_data)));
    if (ts >= oldest_kept && entries <= options.dedup_max_ids) break;
    MDB_val id_key{key.mv_size - 8, static_cast<char*>(key.mv_data) + 8};
    if (const int rc_id = mdb_del(st.txn, ids, &id_key, nullptr); rc_id != 0 && rc_id != MDB_NOTFOUND)
      throw lmdb_failure{rc_id};
    if (const int rc_del = c.del(); rc_del != 0) throw lmdb_failure{rc_del};
    --entries;
    st.changed = true;
  }
}

result<bool> journal::seen(const dedup_key& key) const {
  check_dedup_key(key);
  dedup_dbs dbs;
  for (auto [name, handle] : {std::pair{dedup_marks_db, &dbs.marks}, std::pair{dedup_window_db, &dbs.window},
                              std::pair{dedup_ids_db, &dbs.ids}, std::pair{dedup_times_db, &dbs.times}}) {
    int rc = 0;
    const auto dbi = impl_->find_dbi(name, &rc);
    if (rc != 0) return lmdb_error(rc);
    // Only a read-only journal written before dedup existed lacks them: nothing was ever marked.
    if (!dbi) return false;
    *handle = *dbi;
  }
  int rc = 0;
  auto reading = impl_->begin_read(rc);
  if (!reading) return lmdb_error(rc);
  try {
    return already_seen(reading->t.get(), dbs, key);
  } catch (const lmdb_failure& f) {
    return lmdb_error(f.rc);
  } catch (const error& e) {
    return e.code();
  }
}

}  // namespace fabric
