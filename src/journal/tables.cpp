// Application state kept beside the streams: tables of keys and values, and named consumer
// offsets (cursors), written through a journal_txn so they commit with whatever else the
// application does, and read back by the journal's readers (a key, or a table's entries in key
// order).
//
//   t/<table>  : app-key (1-511 octets) -> app-value
//   x/cursors  : cursor-name (1-255 octets) -> u64le seq
#include "journal/journal_impl.hpp"

namespace fabric {

using namespace journal_detail;

namespace {

constexpr std::size_t cursor_value_size = 8;

result<std::optional<std::uint64_t>> decode_cursor(int rc, const MDB_val& v) {
  if (rc == MDB_NOTFOUND) return std::optional<std::uint64_t>();
  if (rc != 0) return lmdb_error(rc);
  if (v.mv_size != cursor_value_size) return errc::malformed;
  return std::optional(detail::load_le<std::uint64_t>(static_cast<const char*>(v.mv_data)));
}

}  // namespace

void journal_txn::put(std::string_view table, std::string_view key, std::string_view value) {
  check_table_key(key);
  const MDB_dbi dbi = *state_.owner.dbi_for(state_, table_db(table), true);
  MDB_val k = to_val(key.data(), key.size());
  MDB_val v = to_val(value.data(), value.size());
  if (const int rc = mdb_put(state_.txn, dbi, &k, &v, 0); rc != 0) throw lmdb_failure{rc};
}

result<std::optional<std::string>> journal_txn::get(std::string_view table, std::string_view key) const {
  check_table_key(key);
  const std::string name = table_db(table);
  std::optional<MDB_dbi> dbi;
  try {
    dbi = state_.owner.dbi_for(state_, name, false);
  } catch (const lmdb_failure& f) {
    if (state_.read_failure == 0) state_.read_failure = f.rc;
    return lmdb_error(f.rc);
  }
  if (!dbi) return std::optional<std::string>();
  MDB_val k = to_val(key.data(), key.size());
  MDB_val v{};
  const int rc = mdb_get(state_.txn, *dbi, &k, &v);
  if (rc == MDB_NOTFOUND) return std::optional<std::string>();
  if (rc != 0) {
    if (state_.read_failure == 0) state_.read_failure = rc;
    return lmdb_error(rc);
  }
  return std::optional(std::string(static_cast<const char*>(v.mv_data), v.mv_size));
}

bool journal_txn::erase(std::string_view table, std::string_view key) {
  check_table_key(key);
  const auto dbi = state_.owner.dbi_for(state_, table_db(table), false);
  if (!dbi) return false;
  MDB_val k = to_val(key.data(), key.size());
  const int rc = mdb_del(state_.txn, *dbi, &k, nullptr);
  if (rc == MDB_NOTFOUND) return false;
  if (rc != 0) throw lmdb_failure{rc};
  return true;
}

void journal_txn::set_cursor(std::string_view name, std::uint64_t seq) {
  check_cursor_name(name);
  const MDB_dbi dbi = *state_.owner.find_dbi(cursors_db);
  const std::string value = u64le_value(seq);
  MDB_val k = to_val(name.data(), name.size());
  MDB_val v = to_val(value.data(), value.size());
  if (const int rc = mdb_put(state_.txn, dbi, &k, &v, 0); rc != 0) throw lmdb_failure{rc};
}

result<std::optional<std::uint64_t>> journal_txn::cursor(std::string_view name) const {
  check_cursor_name(name);
  MDB_val k = to_val(name.data(), name.size());
  MDB_val v{};
  const int rc = mdb_get(state_.txn, *state_.owner.find_dbi(cursors_db), &k, &v);
  if (rc != 0 && rc != MDB_NOTFOUND && state_.read_failure == 0) state_.read_failure = rc;
  return decode_cursor(rc, v);
}

result<std::optional<std::uint64_t>> journal::cursor(std::string_view name) const {
  check_cursor_name(name);
  using answer = std::optional<std::uint64_t>;
  return impl_->read_in(cursors_db, answer{}, [&](MDB_txn* t, MDB_dbi dbi) {
    MDB_val k = to_val(name.data(), name.size());
    MDB_val v{};
    return decode_cursor(mdb_get(t, dbi, &k, &v), v);
  });
}

result<std::optional<std::string>> journal::get(std::string_view table, std::string_view key) const {
  check_table_key(key);
  using answer = std::optional<std::string>;
  return impl_->read_in(table_db(table), answer{}, [&](MDB_txn* t, MDB_dbi dbi) -> result<answer> {
    MDB_val k = to_val(key.data(), key.size());
    MDB_val v{};
    const int rc = mdb_get(t, dbi, &k, &v);
    if (rc == MDB_NOTFOUND) return answer{};
    if (rc != 0) return lmdb_error(rc);
    return answer(std::string(static_cast<const char*>(v.mv_data), v.mv_size));
  });
}

result<std::vector<std::pair<std::string, std::string>>> journal::table_entries(std::string_view table,
                                                                                std::string_view after,
                                                                                std::size_t max) const {
  if (after.size() > 511) throw error(errc::invalid_argument, "journal table keys are 1-511 bytes");
  using answer = std::vector<std::pair<std::string, std::string>>;
  return impl_->read_in(table_db(table), answer{}, [&](MDB_txn* t, MDB_dbi dbi) -> result<answer> {
    answer entries;
    if (max == 0) return entries;
    int rc = 0;
    journal_detail::cursor c(t, dbi, rc);
    if (rc != 0) return lmdb_error(rc);
    MDB_val k = to_val(after.data(), after.size());
    MDB_val v{};
    if (after.empty()) {
      rc = c.get(k, v, MDB_FIRST);
    } else {
      rc = c.get(k, v, MDB_SET_RANGE);
      // SET_RANGE lands on `after` itself when it exists; the page starts past it.
      if (rc == 0 && std::string_view(static_cast<const char*>(k.mv_data), k.mv_size) == after)
        rc = c.get(k, v, MDB_NEXT);
    }
    for (; rc == 0; rc = c.get(k, v, MDB_NEXT)) {
      entries.emplace_back(std::string(static_cast<const char*>(k.mv_data), k.mv_size),
                           std::string(static_cast<const char*>(v.mv_data), v.mv_size));
      if (entries.size() >= max) return entries;
    }
    if (rc != MDB_NOTFOUND) return lmdb_error(rc);
    return entries;
  });
}

}  // namespace fabric
