// The dead-letter queue: records given up on, moved out of their stream with why and how often
// they were tried, to be inspected, requeued under a new sequence number, or discarded.
//
//   x/dlq      : u64be id -> msgpack [stream, seq u64, reason, attempts u32, time-ns i64, payload]
//   x/counters : "dead-letters" -> u64le   ; the last id handed out (ids are never reused)
//
// seq is 0 for a payload that never made it into its stream (an undeliverable schedule).
#include <fabric/codec.hpp>

#include "journal/journal_impl.hpp"

namespace fabric {

using namespace journal_detail;

namespace {

using dead_letter_tuple =
    std::tuple<std::string, std::uint64_t, std::string, std::uint32_t, std::int64_t, std::string>;

std::string letter_key(std::uint64_t id) {
  std::string key;
  detail::append_be(key, id);
  return key;
}

std::optional<dead_letter> decode_dead_letter(const MDB_val& key, const MDB_val& value) {
  if (key.mv_size != 8) return std::nullopt;
  auto decoded = unpack<dead_letter_tuple>(to_span(value));
  if (!decoded) return std::nullopt;
  dead_letter d;
  d.id = detail::load_be<std::uint64_t>(static_cast<const char*>(key.mv_data));
  std::tie(d.stream, d.seq, d.reason, d.attempts, d.timestamp_ns, d.payload) = std::move(*decoded);
  return d;
}

}  // namespace

void journal::impl::dead_letter_raw(journal_txn::state& st, const std::string& stream, const std::string& reason,
                                    const std::string& payload) {
  const std::uint64_t id = next_counter(st, dead_letter_counter);
  const frame value = pack(dead_letter_tuple{stream, 0, reason, 0, st.now_ns, payload});
  put_in(st, dlq_db, letter_key(id), fabric::view(value));
}

std::uint64_t journal_txn::dead_letter(std::string_view stream, std::uint64_t seq, std::string_view reason,
                                       std::uint32_t attempts) {
  if (!valid_stream_name(stream)) throw error(errc::invalid_argument, "dead_letter: bad stream name");
  const auto dbi = state_.owner.dbi_for(state_, db_name(stream), false);
  if (!dbi) return 0;
  std::byte key_bytes[8];
  encode_seq_key(seq, key_bytes);
  MDB_val k = to_val(key_bytes, sizeof key_bytes);
  MDB_val v{};
  const int rc = mdb_get(state_.txn, *dbi, &k, &v);
  if (rc == MDB_NOTFOUND) return 0;
  if (rc != 0) throw lmdb_failure{rc};
  record_view view;
  std::string why(reason);
  std::string payload;
  if (decode_record(stream, seq, to_span(v), view) == record_fault::none) {
    payload = std::string(view.payload);
  } else {
    // Keep the damaged bytes for inspection rather than lose them.
    payload.assign(static_cast<const char*>(v.mv_data), v.mv_size);
    why += " (the record failed its checks; raw value kept)";
  }
  if (state_.owner.remove_record(state_, std::string(stream), seq) < 0) return 0;
  const std::uint64_t id = state_.owner.next_counter(state_, dead_letter_counter);
  const frame value = pack(dead_letter_tuple{std::string(stream), seq, why, attempts, state_.now_ns, payload});
  state_.owner.put_in(state_, dlq_db, letter_key(id), fabric::view(value));
  return id;
}

result<std::vector<dead_letter>> journal::dead_letters(std::uint64_t from, std::size_t max) const {
  using letters = std::vector<dead_letter>;
  return impl_->read_in(dlq_db, letters{}, [&](MDB_txn* t, MDB_dbi dbi) -> result<letters> {
    letters out;
    int rc = 0;
    journal_detail::cursor c(t, dbi, rc);
    if (rc != 0) return lmdb_error(rc);
    const std::string start = letter_key(from);
    MDB_val key = to_val(start.data(), start.size());
    MDB_val value{};
    for (rc = c.get(key, value, MDB_SET_RANGE); rc == 0 && out.size() < max; rc = c.get(key, value, MDB_NEXT)) {
      auto d = decode_dead_letter(key, value);
      if (!d) return errc::malformed;
      out.push_back(std::move(*d));
    }
    if (rc != 0 && rc != MDB_NOTFOUND) return lmdb_error(rc);
    return out;
  });
}

result<std::uint64_t> journal::requeue(std::uint64_t id) {
  std::uint64_t seq = 0;
  auto done = transact([&](journal_txn& t) {
    const std::string key = letter_key(id);
    MDB_val k = to_val(key.data(), key.size());
    MDB_val v{};
    const MDB_dbi dbi = *impl_->find_dbi(dlq_db);
    if (const int rc = mdb_get(t.state_.txn, dbi, &k, &v); rc != 0) {
      if (rc != MDB_NOTFOUND) throw lmdb_failure{rc};
      return;
    }
    auto letter = decode_dead_letter(k, v);
    if (!letter || !valid_stream_name(letter->stream)) return;
    seq = impl_->append_in(t.state_, letter->stream, letter->payload);
    if (const int rc = mdb_del(t.state_.txn, dbi, &k, nullptr); rc != 0) throw lmdb_failure{rc};
  });
  if (!done) return done.error();
  if (seq == 0) return errc::invalid_argument;
  return seq;
}

result<bool> journal::discard_dead_letter(std::uint64_t id) {
  bool existed = false;
  auto done = transact([&](journal_txn& t) {
    const std::string key = letter_key(id);
    MDB_val k = to_val(key.data(), key.size());
    const int rc = mdb_del(t.state_.txn, *impl_->find_dbi(dlq_db), &k, nullptr);
    if (rc != 0 && rc != MDB_NOTFOUND) throw lmdb_failure{rc};
    existed = rc == 0;
    t.state_.changed = true;
  });
  if (!done) return done.error();
  return existed;
}

}  // namespace fabric
