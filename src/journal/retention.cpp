// Retention: how much of each stream to keep (records, payload bytes, age, and never past what
// named cursors acknowledged), persisted per stream and applied by the writer a bounded amount
// per commit.
//
//   x/retention : stream -> msgpack [max_records u64, max_bytes u64, max_age_s i64, [cursor...]]
#include <fabric/codec.hpp>

#include "journal/journal_impl.hpp"

#include <algorithm>

namespace fabric {

using namespace journal_detail;

namespace {

using policy_tuple = std::tuple<std::uint64_t, std::uint64_t, std::int64_t, std::vector<std::string>>;

// nullopt for a value that does not decode: a damaged policy is never guessed at.
std::optional<retention_policy> decode_policy(const MDB_val& value) {
  auto decoded = unpack<policy_tuple>(to_span(value));
  if (!decoded) return std::nullopt;
  retention_policy p;
  p.max_records = std::get<0>(*decoded);
  p.max_bytes = std::get<1>(*decoded);
  p.max_age = std::chrono::seconds(std::get<2>(*decoded));
  p.ack_cursors = std::get<3>(*decoded);
  return p;
}

}  // namespace

void journal::impl::load_policies(MDB_txn* t) {
  int rc = 0;
  journal_detail::cursor c(t, dbis.at(std::string(retention_db)), rc);
  if (rc != 0) return;
  MDB_val key{}, value{};
  for (int r = c.get(key, value, MDB_FIRST); r == 0; r = c.get(key, value, MDB_NEXT)) {
    auto p = decode_policy(value);
    if (!p) continue;  // an unreadable policy is ignored, not guessed at
    policies.emplace(std::string(static_cast<const char*>(key.mv_data), key.mv_size), std::move(*p));
  }
}

bool journal::impl::has_age_limits() const {
  std::lock_guard lock(dbi_mutex);
  return std::any_of(policies.begin(), policies.end(), [](const auto& p) { return p.second.max_age.count() > 0; });
}

void journal::impl::apply_retention(journal_txn::state& st) {
  std::vector<std::pair<std::string, retention_policy>> todo;
  {
    std::lock_guard lock(dbi_mutex);
    for (const auto& [stream, policy] : policies) todo.emplace_back(stream, policy);
  }
  const MDB_dbi cursors = *find_dbi(cursors_db);
  for (auto& [stream, policy] : todo) {
    const auto dbi = find_dbi(db_name(stream));
    if (!dbi) continue;
    MDB_stat stat{};
    if (mdb_stat(st.txn, *dbi, &stat) != 0 || stat.ms_entries == 0) continue;
    std::uint64_t records = stat.ms_entries;
    std::int64_t bytes;
    {
      std::lock_guard lock(dbi_mutex);
      bytes = static_cast<std::int64_t>(stream_bytes[stream]);
    }
    bytes += st.bytes_delta[stream];
    // A cursor that cannot be read counts as acknowledging nothing: nothing is trimmed for it.
    std::uint64_t acked = UINT64_MAX;
    for (const auto& name : policy.ack_cursors) {
      MDB_val k = to_val(name.data(), name.size());
      MDB_val v{};
      const bool known = mdb_get(st.txn, cursors, &k, &v) == 0 && v.mv_size == 8;
      acked = std::min(acked, known ? detail::load_le<std::uint64_t>(static_cast<const char*>(v.mv_data)) : 0);
    }
    const std::int64_t oldest_kept =
        policy.max_age.count() > 0 ? add_saturating(st.now_ns, -to_ns_saturating(policy.max_age)) : INT64_MIN;
    int rc = 0;
    journal_detail::cursor c(st.txn, *dbi, rc);
    if (rc != 0) continue;
    MDB_val key{}, value{};
    for (int budget = 1024; budget > 0 && c.get(key, value, MDB_FIRST) == 0; --budget) {
      std::uint64_t seq = 0;
      decode_seq_key(to_span(key), seq);
      record_view view;
      const bool readable = decode_record(stream, seq, to_span(value), view) == record_fault::none;
      const auto size = static_cast<std::int64_t>(value.mv_size >= record_header_size ? value.mv_size - record_header_size : 0);
      const bool over = (policy.max_records != 0 && records > policy.max_records) ||
                        (policy.max_bytes != 0 && bytes > static_cast<std::int64_t>(policy.max_bytes)) ||
                        (readable && view.timestamp_ns < oldest_kept);
      if (!over || seq > acked) break;
      if (const int rc_del = c.del(); rc_del != 0) throw lmdb_failure{rc_del};
      --records;
      bytes -= size;
      st.bytes_delta[stream] -= size;
      st.changed = true;
    }
  }
}

result<void> journal::set_retention(std::string_view stream, const retention_policy& policy) {
  if (!valid_stream_name(stream)) return errc::invalid_argument;
  const bool remove = policy == retention_policy{};
  const std::string name(stream);
  auto done = transact([&](journal_txn& t) {
    const MDB_dbi dbi = *impl_->find_dbi(retention_db);
    MDB_val k = to_val(name.data(), name.size());
    if (remove) {
      const int rc = mdb_del(t.state_.txn, dbi, &k, nullptr);
      if (rc != 0 && rc != MDB_NOTFOUND) throw lmdb_failure{rc};
      return;
    }
    const frame encoded = pack(policy_tuple{policy.max_records, policy.max_bytes,
                                            static_cast<std::int64_t>(policy.max_age.count()), policy.ack_cursors});
    MDB_val v = to_val(encoded.data(), encoded.size());
    if (const int rc = mdb_put(t.state_.txn, dbi, &k, &v, 0); rc != 0) throw lmdb_failure{rc};
  });
  if (!done) return done;
  {
    std::lock_guard lock(impl_->dbi_mutex);
    if (remove) impl_->policies.erase(name);
    else impl_->policies[name] = policy;
  }
  {
    // An idle writer sleeps until work arrives; an age limit means it must wake once a second.
    std::lock_guard lock(impl_->queue_mutex);
    impl_->replan = true;
  }
  impl_->queue_cv.notify_one();
  return {};
}

result<std::optional<retention_policy>> journal::retention(std::string_view stream) const {
  if (impl_->read_only()) {
    // Another process writes: read what it last committed.
    using answer = std::optional<retention_policy>;
    return impl_->read_in(retention_db, answer{}, [&](MDB_txn* t, MDB_dbi dbi) -> result<answer> {
      MDB_val k = to_val(stream.data(), stream.size());
      MDB_val v{};
      const int rc = mdb_get(t, dbi, &k, &v);
      if (rc == MDB_NOTFOUND) return answer{};
      if (rc != 0) return lmdb_error(rc);
      auto p = decode_policy(v);
      if (!p) return errc::malformed;
      return answer(std::move(*p));
    });
  }
  std::lock_guard lock(impl_->dbi_mutex);
  if (auto it = impl_->policies.find(stream); it != impl_->policies.end()) return std::optional(it->second);
  return std::optional<retention_policy>();
}

}  // namespace fabric
