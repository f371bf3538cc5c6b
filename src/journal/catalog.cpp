// The journal's catalog at run time: beginning transactions, the handles of its databases (opened
// once, shared by readers), the budgets on streams and tables, and loading it all at open.
// The layout of every database is the grammar at the top of catalog.hpp.
#include "journal/data_file.hpp"
#include "journal/journal_impl.hpp"

#include <algorithm>

namespace fabric {

using namespace journal_detail;

txn journal::impl::begin(unsigned flags, int& rc) const {
  for (int attempt = 0; attempt < 2; ++attempt) {
    txn t(environment.get(), flags, rc);
    if (rc != MDB_MAP_RESIZED) return t;
    mdb_env_set_mapsize(environment.get(), 0);
  }
  return txn();
}

// When the writing process has grown the map, LMDB asks this one to adopt the new size, which is
// only allowed with no transaction active in the process: the shared lock is then traded for the
// exclusive one while the size is adopted.
std::optional<journal::impl::read_txn> journal::impl::begin_read(int& rc) const {
  for (int attempt = 0; attempt < 3; ++attempt) {
    std::shared_lock shared(map_mutex);
    txn t(environment.get(), MDB_RDONLY, rc);
    if (rc == 0) return read_txn{std::move(shared), std::move(t)};
    if (rc != MDB_MAP_RESIZED) return std::nullopt;
    shared.unlock();
    std::unique_lock exclusive(map_mutex);
    if ((rc = mdb_env_set_mapsize(environment.get(), 0)) != 0) return std::nullopt;
    MDB_envinfo info{};
    if (mdb_env_info(environment.get(), &info) == 0) const_cast<impl*>(this)->map_size = info.me_mapsize;
  }
  return std::nullopt;
}

// Opened in a read transaction of its own under dbi_mutex, as LMDB requires for mdb_dbi_open.
std::optional<MDB_dbi> journal::impl::refresh_dbi(std::string_view full_name, int* rc_out) const {
  std::lock_guard lock(dbi_mutex);
  if (auto it = dbis.find(full_name); it != dbis.end()) return it->second;
  int rc = 0;
  auto reading = begin_read(rc);
  auto fail = [&](int code) -> std::optional<MDB_dbi> {
    if (rc_out != nullptr) *rc_out = code;
    return std::nullopt;
  };
  if (!reading) return fail(rc);
  txn& t = reading->t;
  MDB_dbi dbi = 0;
  const std::string name(full_name);
  if ((rc = mdb_dbi_open(t.get(), name.c_str(), 0, &dbi)) != 0) return rc == MDB_NOTFOUND ? std::nullopt : fail(rc);
  if ((rc = t.commit()) != 0) return fail(rc);
  const_cast<impl*>(this)->dbis.emplace(name, dbi);
  return dbi;
}

result<std::vector<std::string>> journal::impl::stream_names_on_disk() const {
  std::vector<std::string> names;
  int rc = 0;
  auto reading = begin_read(rc);
  if (!reading) return lmdb_error(rc);
  txn& t = reading->t;
  MDB_dbi main_db = 0;
  if ((rc = mdb_dbi_open(t.get(), nullptr, 0, &main_db)) != 0) return lmdb_error(rc);
  journal_detail::cursor c(t.get(), main_db, rc);
  if (rc != 0) return lmdb_error(rc);
  MDB_val key{}, value{};
  for (rc = c.get(key, value, MDB_FIRST); rc == 0; rc = c.get(key, value, MDB_NEXT)) {
    std::string_view name(static_cast<const char*>(key.mv_data), key.mv_size);
    if (name.substr(0, stream_prefix.size()) == stream_prefix) names.emplace_back(name.substr(stream_prefix.size()));
  }
  if (rc != MDB_NOTFOUND) return lmdb_error(rc);
  return names;
}

std::optional<MDB_dbi> journal::impl::find_dbi(std::string_view full_name, int* rc) const {
  {
    std::lock_guard lock(dbi_mutex);
    if (auto it = dbis.find(full_name); it != dbis.end()) return it->second;
  }
  if (read_only()) return refresh_dbi(full_name, rc);
  return std::nullopt;
}

// Refuses before LMDB is touched, so the transaction stays usable and only this append or this
// transaction fails.
void journal::impl::check_budget(const journal_txn::state& st, std::string_view full_name) const {
  const bool stream = full_name.substr(0, stream_prefix.size()) == stream_prefix;
  const bool table = full_name.substr(0, table_prefix.size()) == table_prefix;
  if (!stream && !table) return;
  const std::string_view prefix = stream ? stream_prefix : table_prefix;
  std::size_t count = 0;
  {
    std::lock_guard lock(dbi_mutex);
    for (const auto& [name, dbi] : dbis) if (name.rfind(prefix, 0) == 0) ++count;
  }
  for (const auto& [name, dbi] : st.opened) if (name.rfind(prefix, 0) == 0) ++count;
  if (count >= (stream ? options.max_streams : options.max_tables))
    throw error(errc::too_large, std::string(stream ? "the journal holds max_streams streams already"
                                                    : "the journal holds max_tables tables already"));
}

std::optional<MDB_dbi> journal::impl::dbi_for(journal_txn::state& st, std::string_view full_name, bool create) {
  if (auto known = find_dbi(full_name)) return known;
  for (const auto& [name, dbi] : st.opened)
    if (name == full_name) return dbi;
  if (create) check_budget(st, full_name);
  MDB_dbi dbi = 0;
  const std::string name(full_name);
  const int rc = mdb_dbi_open(st.txn, name.c_str(), create ? MDB_CREATE : 0u, &dbi);
  if (rc == MDB_NOTFOUND && !create) return std::nullopt;
  if (rc != 0) throw lmdb_failure{rc};
  st.opened.emplace_back(name, dbi);
  return dbi;
}

std::optional<dedup_dbs> journal::impl::dedup_dbis() const {
  const auto marks = find_dbi(dedup_marks_db);
  const auto window = find_dbi(dedup_window_db);
  const auto ids = find_dbi(dedup_ids_db);
  const auto times = find_dbi(dedup_times_db);
  if (!marks || !window || !ids || !times) return std::nullopt;
  return dedup_dbs{*marks, *window, *ids, *times};
}

void journal::impl::put_in(journal_txn::state& st, std::string_view name, std::string_view key,
                           std::string_view value) {
  MDB_val k = to_val(key.data(), key.size());
  MDB_val v = to_val(value.data(), value.size());
  if (const int rc = mdb_put(st.txn, *find_dbi(name), &k, &v, 0); rc != 0) throw lmdb_failure{rc};
  st.changed = true;
}

std::uint64_t journal::impl::next_counter(journal_txn::state& st, std::string_view name) {
  MDB_val k = to_val(name.data(), name.size());
  MDB_val v{};
  const int rc = mdb_get(st.txn, *find_dbi(counters_db), &k, &v);
  if (rc != 0 && rc != MDB_NOTFOUND) throw lmdb_failure{rc};
  const std::uint64_t next = (rc == 0 && v.mv_size == 8 ? detail::load_le<std::uint64_t>(static_cast<const char*>(v.mv_data)) : 0) + 1;
  put_in(st, counters_db, name, u64le_value(next));
  return next;
}

// Only during open, when the databases are being loaded under dbi_mutex.
std::uint64_t journal::impl::stored_last_seq(MDB_txn* t, const std::string& stream) const {
  auto it = dbis.find(stream_last_db);
  if (it == dbis.end()) {
    MDB_dbi dbi = 0;
    if (mdb_dbi_open(t, std::string(stream_last_db).c_str(), 0, &dbi) != 0) return 0;
    it = const_cast<impl*>(this)->dbis.emplace(std::string(stream_last_db), dbi).first;
  }
  MDB_val k = to_val(stream.data(), stream.size());
  MDB_val v{};
  if (mdb_get(t, it->second, &k, &v) != 0 || v.mv_size != 8) return 0;
  return detail::load_le<std::uint64_t>(static_cast<const char*>(v.mv_data));
}

// Payload bytes per stream, persisted; counted once for streams that predate the count.
void journal::impl::load_stream_bytes(MDB_txn* t) {
  const MDB_dbi bytes_dbi = dbis.at(std::string(stream_bytes_db));
  for (const auto& [stream, last] : last_seq) {
    MDB_val k = to_val(stream.data(), stream.size());
    MDB_val v{};
    if (mdb_get(t, bytes_dbi, &k, &v) == 0 && v.mv_size == 8) {
      stream_bytes[stream] = detail::load_le<std::uint64_t>(static_cast<const char*>(v.mv_data));
      continue;
    }
    std::uint64_t total = 0;
    int rc = 0;
    journal_detail::cursor c(t, dbis.at(db_name(stream)), rc);
    MDB_val key{}, value{};
    for (int r = rc == 0 ? c.get(key, value, MDB_FIRST) : rc; r == 0; r = c.get(key, value, MDB_NEXT))
      total += value.mv_size >= record_header_size ? value.mv_size - record_header_size : 0;
    stream_bytes[stream] = total;
    const std::string encoded = u64le_value(total);
    MDB_val ev = to_val(encoded.data(), encoded.size());
    mdb_put(t, bytes_dbi, &k, &ev, 0);
  }
}

// Checks, before LMDB reads them, the pages load_databases has it read in transaction `t`: the
// main database, the path to the last record of every stream, the small x/ databases it reads
// whole, and for a writer the free list it reuses pages from. LMDB asserts or faults on a
// damaged page; a damaged one here is refused with fabric::error(malformed) instead. A reader
// whose snapshot a writer has already replaced on disk begins a newer one.
void journal::impl::check_pages_for_open(txn& t, unsigned flags) {
  data_file file(dir / "data.mdb");
  for (int attempt = 0;; ++attempt) {
    // A write transaction's id is one past the snapshot it starts from.
    const std::uint64_t snapshot = mdb_txn_id(t.get()) - (read_only() ? 0 : 1);
    if (const auto meta = file.meta_of(snapshot)) {
      std::string damage;
      walk_handler handler;
      handler.on_database = [](std::string_view name, const lmdb_tree&) {
        if (name == stream_last_db || name == stream_bytes_db || name == retention_db) return walk_depth::all;
        return name.substr(0, stream_prefix.size()) == stream_prefix ? walk_depth::last_path : walk_depth::none;
      };
      handler.on_damage = [&](std::string_view, const std::string& what) {
        if (damage.empty()) damage = what;
      };
      handler.free_list = !read_only();
      if (!walk_snapshot(file, *meta, handler))
        throw error(errc::malformed, file.path().string() + " is damaged: " + damage);
      return;
    }
    if (!read_only() || attempt == 100)
      throw error(errc::malformed, file.path().string() + ": neither meta page holds transaction " +
                                       std::to_string(snapshot) + ", the one LMDB begins from");
    t.abort();
    int rc = 0;
    t = begin(flags, rc);
    if (rc != 0) throw_lmdb(rc, "cannot open the journal at " + dir.string());
  }
}

void journal::impl::load_databases() {
  std::lock_guard lock(dbi_mutex);
  int rc = 0;
  const unsigned flags = read_only() ? MDB_RDONLY : 0u;
  txn t = begin(flags, rc);
  if (rc != 0) throw_lmdb(rc, "cannot open the journal at " + dir.string());
  check_pages_for_open(t, flags);
  MDB_dbi main_db = 0;
  if ((rc = mdb_dbi_open(t.get(), nullptr, 0, &main_db)) != 0) throw_lmdb(rc, "cannot open the main database");
  std::vector<std::string> names;
  {
    journal_detail::cursor c(t.get(), main_db, rc);
    if (rc != 0) throw_lmdb(rc, "cannot list the journal's databases");
    MDB_val key{}, value{};
    for (int r = c.get(key, value, MDB_FIRST); r == 0; r = c.get(key, value, MDB_NEXT))
      names.emplace_back(static_cast<const char*>(key.mv_data), key.mv_size);
  }
  // A writer creates the internal databases a journal written by an older version lacks; a
  // reader changes nothing and does without them.
  if (!read_only())
    for (std::string_view internal : internal_databases)
      if (std::find(names.begin(), names.end(), internal) == names.end()) names.emplace_back(internal);
  for (const auto& name : names) {
    const bool known = name.rfind(stream_prefix, 0) == 0 || name.rfind(table_prefix, 0) == 0 ||
                       name.rfind(internal_prefix, 0) == 0;
    if (!known) continue;
    MDB_dbi dbi = 0;
    if ((rc = mdb_dbi_open(t.get(), name.c_str(), read_only() ? 0u : MDB_CREATE, &dbi)) != 0)
      throw_lmdb(rc, "cannot open database '" + name + "'");
    dbis.emplace(name, dbi);
    if (name.rfind(stream_prefix, 0) != 0) continue;
    const std::string stream = name.substr(stream_prefix.size());
    std::uint64_t last = 0;
    journal_detail::cursor c(t.get(), dbi, rc);
    if (rc != 0) throw_lmdb(rc, "cannot read stream '" + name + "'");
    MDB_val key{}, value{};
    if (c.get(key, value, MDB_LAST) == 0) {
      // A damaged last key must not set the next sequence number (8 bytes of 0xFF would wrap
      // it to 0): only a key that decodes, below the maximum, counts.
      if (!decode_seq_key(to_span(key), last) || last == UINT64_MAX) last = 0;
      record_view view;
      if (decode_record(stream, last, to_span(value), view) == record_fault::none)
        last_ts = std::max(last_ts, view.timestamp_ns);
    }
    last = std::max(last, stored_last_seq(t.get(), stream));
    last_seq.emplace(stream, last);
  }
  if (read_only()) {
    if (dbis.count(std::string(retention_db)) != 0) load_policies(t.get());
  } else {
    load_stream_bytes(t.get());
    load_policies(t.get());
    for (std::string_view timed : {expiry_db, scheduled_db}) {
      MDB_stat stat{};
      if (mdb_stat(t.get(), dbis.at(std::string(timed)), &stat) == 0) timed_entries += stat.ms_entries;
    }
  }
  if ((rc = t.commit()) != 0) throw_lmdb(rc, "cannot open the journal's databases");
}

}  // namespace fabric
