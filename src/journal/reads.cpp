// Reading streams: bounded chunks in one short read transaction each (so no reader pins old
// pages for long), replay over them, stream extents, and finding a position by time. A writing
// journal answers last_seq() and streams() from memory; a read-only one reads the disk, where
// another process writes.
#include "journal/journal_impl.hpp"

#include <algorithm>

namespace fabric {

using namespace journal_detail;

result<std::uint64_t> journal::impl::scan(std::string_view stream, std::uint64_t from_seq,
                                         std::size_t max_records, std::size_t max_bytes,
                                         const std::function<void(const journal_record_view&)>& fn,
                                         std::optional<journal_corruption>& corrupt) {
  std::uint64_t next = std::max<std::uint64_t>(from_seq, 1);
  int rc = 0;
  const auto dbi = find_dbi(db_name(stream), &rc);
  if (rc != 0) return lmdb_error(rc);
  if (!dbi || max_records == 0) return next;

  auto reading = begin_read(rc);
  if (!reading) return lmdb_error(rc);
  txn& t = reading->t;
  journal_detail::cursor c(t.get(), *dbi, rc);
  if (rc != 0) return lmdb_error(rc);
  std::byte key_bytes[8];
  encode_seq_key(next, key_bytes);
  MDB_val key = to_val(key_bytes, sizeof key_bytes);
  MDB_val value{};
  std::size_t bytes = 0;
  std::size_t records = 0;
  for (rc = c.get(key, value, MDB_SET_RANGE); rc == 0; rc = c.get(key, value, MDB_NEXT)) {
    std::uint64_t seq = 0;
    record_view view;
    const record_fault fault = decode_seq_key(to_span(key), seq)
                                   ? decode_record(stream, seq, to_span(value), view)
                                   : record_fault::too_short;
    if (fault != record_fault::none) {
      corrupt = journal_corruption{std::string(stream), seq, std::string(to_string(fault))};
      break;
    }
    if (records > 0 && bytes + view.payload.size() > max_bytes) break;
    bytes += view.payload.size();
    fn(journal_record_view{seq, view.timestamp_ns, view.payload});
    next = seq + 1;
    if (++records >= max_records) break;
  }
  if (rc != 0 && rc != MDB_NOTFOUND) return lmdb_error(rc);
  return next;
}

result<journal_chunk> journal::read(std::string_view stream, std::uint64_t from_seq,
                                    std::size_t max_records, std::size_t max_bytes) const {
  if (!valid_stream_name(stream)) return errc::invalid_argument;
  journal_chunk chunk;
  auto next = impl_->scan(
      stream, from_seq, max_records, max_bytes,
      [&chunk](const journal_record_view& r) {
        chunk.records.push_back({r.seq, r.timestamp_ns, std::string(r.payload)});
      },
      chunk.corruption);
  if (!next) return next.error();
  chunk.next_seq = *next;
  return chunk;
}

result<std::uint64_t> journal::read_views(std::string_view stream, std::uint64_t from_seq, std::size_t max_records,
                                          std::size_t max_bytes,
                                          const std::function<void(const journal_record_view&)>& fn) const {
  if (!valid_stream_name(stream)) return errc::invalid_argument;
  std::optional<journal_corruption> corrupt;
  auto next = impl_->scan(stream, from_seq, max_records, max_bytes, fn, corrupt);
  if (next && corrupt) return errc::malformed;
  return next;
}

result<std::uint64_t> journal::replay(std::string_view stream, std::uint64_t from_seq,
                                      const std::function<bool(const journal_record&)>& fn,
                                      const std::function<void(const journal_corruption&)>& on_corrupt) const {
  std::uint64_t delivered = 0;
  std::uint64_t next = from_seq;
  for (;;) {
    auto chunk = read(stream, next, 4096, std::size_t{4} << 20);
    if (!chunk) return chunk.error();
    for (const journal_record& r : chunk->records) {
      ++delivered;
      if (!fn(r)) return delivered;
    }
    if (chunk->corruption) {
      if (on_corrupt) on_corrupt(*chunk->corruption);
      return errc::malformed;
    }
    if (chunk->records.empty()) return delivered;
    next = chunk->next_seq;
  }
}


result<std::optional<std::uint64_t>> journal::last_seq(std::string_view stream) const {
  using answer = std::optional<std::uint64_t>;
  if (!valid_stream_name(stream)) return answer{};
  if (impl_->read_only()) {
    // Another process writes: read what is on disk now, the higher of the last key and the
    // last number handed out (the last records may have been removed since).
    int rc = 0;
    const auto last_db = impl_->find_dbi(stream_last_db, &rc);
    if (rc != 0) return lmdb_error(rc);
    return impl_->read_in(db_name(stream), answer{}, [&](MDB_txn* t, MDB_dbi dbi) -> result<answer> {
      std::uint64_t seq = 0;
      int rc_read = 0;
      journal_detail::cursor c(t, dbi, rc_read);
      if (rc_read != 0) return lmdb_error(rc_read);
      MDB_val key{}, value{};
      if ((rc_read = c.get(key, value, MDB_LAST)) == 0) decode_seq_key(to_span(key), seq);
      else if (rc_read != MDB_NOTFOUND) return lmdb_error(rc_read);
      if (last_db) {
        MDB_val k = to_val(stream.data(), stream.size());
        MDB_val v{};
        rc_read = mdb_get(t, *last_db, &k, &v);
        if (rc_read != 0 && rc_read != MDB_NOTFOUND) return lmdb_error(rc_read);
        if (rc_read == 0 && v.mv_size == 8) seq = std::max(seq, detail::load_le<std::uint64_t>(static_cast<const char*>(v.mv_data)));
      }
      if (seq == 0) return answer{};
      return answer(seq);
    });
  }
  std::lock_guard lock(impl_->dbi_mutex);
  auto it = impl_->last_seq.find(std::string(stream));
  if (it == impl_->last_seq.end() || it->second == 0) return answer{};
  return answer(it->second);
}

result<std::vector<std::string>> journal::streams() const {
  if (impl_->read_only()) return impl_->stream_names_on_disk();
  std::lock_guard lock(impl_->dbi_mutex);
  std::vector<std::string> names;
  for (const auto& [name, dbi] : impl_->dbis)
    if (name.rfind(stream_prefix, 0) == 0) names.push_back(name.substr(stream_prefix.size()));
  return names;
}

result<std::vector<journal_stream_info>> journal::stream_infos() const {
  auto names = streams();
  if (!names) return names.error();
  std::vector<journal_stream_info> infos;
  for (const std::string& stream : *names) {
    journal_stream_info info;
    info.name = stream;
    auto read = impl_->read_in(db_name(stream), 0, [&](MDB_txn* t, MDB_dbi dbi) -> result<int> {
      MDB_stat stat{};
      if (const int rc = mdb_stat(t, dbi, &stat); rc != 0) return lmdb_error(rc);
      info.records = stat.ms_entries;
      int rc = 0;
      journal_detail::cursor c(t, dbi, rc);
      if (rc != 0) return lmdb_error(rc);
      MDB_val key{}, value{};
      if ((rc = c.get(key, value, MDB_FIRST)) == 0) decode_seq_key(to_span(key), info.first_seq);
      if (rc == 0 && (rc = c.get(key, value, MDB_LAST)) == 0) decode_seq_key(to_span(key), info.last_seq);
      if (rc != 0 && rc != MDB_NOTFOUND) return lmdb_error(rc);
      return 0;
    });
    if (!read) return read.error();
    infos.push_back(std::move(info));
  }
  return infos;
}

result<std::uint64_t> journal::seq_at_time(std::string_view stream, std::int64_t timestamp_ns) const {
  if (!valid_stream_name(stream)) return errc::invalid_argument;
  int rc = 0;
  const auto dbi = impl_->find_dbi(db_name(stream), &rc);
  if (rc != 0) return lmdb_error(rc);
  if (!dbi) return std::uint64_t{1};
  auto reading = impl_->begin_read(rc);
  if (!reading) return lmdb_error(rc);
  txn& t = reading->t;
  journal_detail::cursor c(t.get(), *dbi, rc);
  if (rc != 0) return lmdb_error(rc);
  MDB_val key{}, value{};
  std::uint64_t first = 0, last = 0;
  if ((rc = c.get(key, value, MDB_FIRST)) != 0) {
    if (rc != MDB_NOTFOUND) return lmdb_error(rc);
    auto handed_out = last_seq(stream);  // emptied by trimming: after the last number handed out
    if (!handed_out) return handed_out.error();
    return handed_out->value_or(0) + 1;
  }
  decode_seq_key(to_span(key), first);
  c.get(key, value, MDB_LAST);
  decode_seq_key(to_span(key), last);
  // The time of the first record at or after `seq`; nullopt past the end.
  auto time_at = [&](std::uint64_t seq) -> result<std::optional<std::pair<std::uint64_t, std::int64_t>>> {
    std::byte key_bytes[8];
    encode_seq_key(seq, key_bytes);
    MDB_val k = to_val(key_bytes, sizeof key_bytes);
    MDB_val v{};
    const int r = c.get(k, v, MDB_SET_RANGE);
    if (r == MDB_NOTFOUND) return std::optional<std::pair<std::uint64_t, std::int64_t>>();
    if (r != 0) return lmdb_error(r);
    std::uint64_t at = 0;
    decode_seq_key(to_span(k), at);
    record_view view;
    if (decode_record(stream, at, to_span(v), view) != record_fault::none) return errc::malformed;
    return std::optional(std::make_pair(at, view.timestamp_ns));
  };
  // Invariant: every record below `lo` is older than the target; `hi` is a sequence at or after
  // which every record is at least as new.
  std::uint64_t lo = first;
  std::uint64_t hi = last + 1;
  while (lo < hi) {
    const std::uint64_t mid = lo + (hi - lo) / 2;
    auto probe = time_at(mid);
    if (!probe) return probe.error();
    if (!*probe) {
      hi = mid;
      continue;
    }
    const auto [at, ts] = **probe;
    if (ts < timestamp_ns) lo = at + 1;
    else hi = mid;
  }
  // `lo` may fall in a gap (trimmed or removed records): land on the next record that exists.
  auto landed = time_at(lo);
  if (!landed) return landed.error();
  return *landed ? (*landed)->first : last + 1;
}

}  // namespace fabric
